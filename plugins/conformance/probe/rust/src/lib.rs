//! The SDK probe (see ../README.md): the Rust SDK's whole surface.

use helios::{Emitter, Error, Level, Output, Record};

fn get(k: &str) -> Result<Vec<u8>, Error> {
    Ok(helios::state_get(k.as_bytes())?.unwrap_or_else(|| b"absent".to_vec()))
}

fn probe(r: &Record, out: &mut Emitter) -> Result<(), Error> {
    let cmd = String::from_utf8_lossy(r.value);
    let args: Vec<&str> = cmd.split(' ').collect();
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    match args[0] {
        "put" => {
            helios::state_put(arg(1).as_bytes(), arg(2).as_bytes())?;
            out.emit(arg(1).as_bytes(), &get(arg(1))?);
        }
        "del" => {
            helios::state_delete(arg(1).as_bytes())?;
            out.emit(arg(1).as_bytes(), &get(arg(1))?);
        }
        "get" => out.emit(arg(1).as_bytes(), &get(arg(1))?),
        "fail" => {
            helios::state_put(arg(1).as_bytes(), arg(2).as_bytes())?;
            out.emit(arg(1).as_bytes(), b"dropped");
            return Err(Error::with_code(1001, "probe: failed on request"));
        }
        "retry" => return Err(Error::retryable("probe: try again")),
        "invalid" => return Err(Error::invalid_input("probe: bad input")),
        "hdr" => out.emit(arg(1).as_bytes(), r.header(arg(1)).unwrap_or(b"no header")),
        "rec" => out.emit_record(&Output { key: b"r", value: b"v", headers: &[(b"a", b"1"), (b"b", b"")], timestamp: 42 }),
        "cfg" => out.emit(arg(1).as_bytes(), helios::config().lookup(arg(1), "unset").as_bytes()),
        "multi" => {
            for i in 0..arg(1).parse::<u32>().unwrap_or(0) {
                out.emit(b"m", i.to_string().as_bytes());
            }
        }
        "log" => {
            helios::log(Level::Info, arg(1));
            out.emit(b"log", arg(1).as_bytes());
        }
        _ => out.emit(r.key, b"unknown command"),
    }
    Ok(())
}

helios::operator!(probe);
