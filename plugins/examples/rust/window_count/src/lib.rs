//! A window operator: counts the records of each key in each event-time
//! window and emits `{"key":K,"window_start":"RFC3339","window_end":"RFC3339","count":N}`
//! once per key and window when the window closes (`--emit final`), or
//! after every record (`--emit updates`). Run it with `--event-time` and
//! `--window`. The same bytes as the Go example (plugins/examples/go/window_count).
//!
//! The key is the record key, or, with `--config key_field=NAME`, the
//! string value of that top-level field of the JSON value (empty when
//! absent or not a string; a value that is not a JSON object fails the
//! record). The count is stored as 8 little-endian bytes in the window's
//! state.

use std::cell::RefCell;

use helios::window::{self, Window};
use helios::{json, Emitter, Error, Record};

/// Buffers reused from record to record.
#[derive(Default)]
struct Scratch {
    state: Vec<u8>,
    line: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Writes the record's key into `key`.
fn key_of(r: &Record, key: &mut Vec<u8>) -> Result<(), Error> {
    match helios::config().get("key_field").filter(|f| !f.is_empty()) {
        None => key.extend_from_slice(r.key),
        Some(field) => match json::field(r.value, field) {
            Ok(Some(raw)) => {
                json::string(key, raw);
            }
            Ok(None) => {}
            Err(_) => return Err(Error::invalid_input("window_count: value is not a JSON object")),
        },
    }
    Ok(())
}

fn count(key: &[u8], buf: &mut Vec<u8>) -> Result<u64, Error> {
    if !helios::state_get_into(key, buf)? {
        return Ok(0);
    }
    let b: [u8; 8] = buf.as_slice().try_into().map_err(|_| Error::new("window_count: corrupt state"))?;
    Ok(u64::from_le_bytes(b))
}

fn add(r: &Record, _w: &Window, key: &mut Vec<u8>) -> Result<(), Error> {
    key_of(r, key)?;
    SCRATCH.with(|s| {
        let n = count(key, &mut s.borrow_mut().state)? + 1;
        helios::state_put(key, &n.to_le_bytes())
    })
}

fn result(key: &[u8], w: &Window, out: &mut Emitter) -> Result<(), Error> {
    SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        let n = count(key, &mut s.state)?;
        let l = &mut s.line;
        l.clear();
        l.extend_from_slice(b"{\"key\":");
        json::append_string(l, key);
        l.extend_from_slice(b",\"window_start\":\"");
        window::append_time(l, w.start_ms);
        l.extend_from_slice(b"\",\"window_end\":\"");
        window::append_time(l, w.end_ms);
        l.extend_from_slice(b"\",\"count\":");
        append_uint(l, n);
        l.push(b'}');
        out.emit(key, l);
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

helios::window_operator!(add, result);
