//! Keeps a running count per key in host state and emits
//! `{"key":K,"count":N} for every record. The key is the record key, or,
//! with `--config key_field=NAME`, the string value of that top-level field
//! of the JSON value (empty when absent or not a string). The count is
//! stored as 8 little-endian bytes.

use std::cell::RefCell;

use helios::{json, Emitter, Error, Record};

/// Buffers reused from record to record.
#[derive(Default)]
struct Scratch {
    key: Vec<u8>,
    state: Vec<u8>,
    line: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn count(r: &Record, out: &mut Emitter) -> Result<(), Error> {
    SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        let key: &[u8] = match helios::config().get("key_field").filter(|f| !f.is_empty()) {
            None => r.key,
            Some(field) => {
                s.key.clear();
                match json::field(r.value, field) {
                    Ok(Some(raw)) => {
                        json::string(&mut s.key, raw);
                    }
                    Ok(None) => {}
                    Err(_) => return Err(Error::invalid_input("count: value is not a JSON object")),
                }
                &s.key
            }
        };
        let n = if helios::state_get_into(key, &mut s.state)? {
            let b: [u8; 8] = s.state.as_slice().try_into().map_err(|_| Error::new("count: corrupt state"))?;
            u64::from_le_bytes(b)
        } else {
            0
        } + 1;
        helios::state_put(key, &n.to_le_bytes())?;
        let line = &mut s.line;
        line.clear();
        line.extend_from_slice(b"{\"key\":");
        json::append_string(line, key);
        line.extend_from_slice(b",\"count\":");
        append_uint(line, n);
        line.push(b'}');
        out.emit(key, line);
        Ok(())
    })
}

fn append_uint(dst: &mut Vec<u8>, mut n: u64) {
    let mut d = [0u8; 20];
    let mut i = d.len();
    loop {
        i -= 1;
        d[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.extend_from_slice(&d[i..]);
}

helios::operator!(count);
