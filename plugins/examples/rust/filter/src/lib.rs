//! Keeps the records whose JSON value has a top-level field equal to a
//! configured value (`--config field=user --config equals=u1`). A string
//! field is compared with its decoded text, any other value with its
//! compact JSON text. A value that is not a JSON object fails the record.

use helios::{json, Config, Emitter, Error, Record};

fn configure(cfg: &Config) -> Result<(), Error> {
    match (cfg.get("field"), cfg.get("equals")) {
        (Some(f), Some(_)) if !f.is_empty() => Ok(()),
        _ => Err(Error::new("filter: needs --config field=NAME --config equals=VALUE")),
    }
}

fn keep(r: &Record, out: &mut Emitter) -> Result<(), Error> {
    let cfg = helios::config();
    let (field, equals) = (cfg.get("field").unwrap_or(""), cfg.get("equals").unwrap_or(""));
    let raw = match json::field(r.value, field) {
        Ok(Some(raw)) => raw,
        Ok(None) => return Ok(()),
        Err(_) => return Err(Error::invalid_input("filter: value is not a JSON object")),
    };
    let mut text = Vec::new();
    if !json::string(&mut text, raw) {
        json::compact(&mut text, raw);
    }
    if text == equals.as_bytes() {
        out.emit(r.key, r.value);
    }
    Ok(())
}

helios::operator!(keep, init = configure);
