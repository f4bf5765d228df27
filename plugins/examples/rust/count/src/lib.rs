//! Keeps a running count per key in host state and emits
//! `{"key":K,"count":N}` for every record. The key is the record key, or,
//! with `--config key_field=NAME`, the string value of that top-level field
//! of the JSON value (empty when absent or not a string). The count is
//! stored as 8 little-endian bytes.

use helios::{json, Emitter, Error, Record};

fn count(r: &Record, out: &mut Emitter) -> Result<(), Error> {
    let mut key = r.key.to_vec();
    if let Some(field) = helios::config().get("key_field").filter(|f| !f.is_empty()) {
        key.clear();
        match json::field(r.value, field) {
            Ok(Some(raw)) => {
                json::string(&mut key, raw);
            }
            Ok(None) => {}
            Err(_) => return Err(Error::invalid_input("count: value is not a JSON object")),
        }
    }
    let n = match helios::state_get(&key)? {
        None => 0,
        Some(v) if v.len() == 8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&v);
            u64::from_le_bytes(b)
        }
        Some(_) => return Err(Error::new("count: corrupt state")),
    } + 1;
    helios::state_put(&key, &n.to_le_bytes())?;
    let mut line = Vec::with_capacity(key.len() + 32);
    line.extend_from_slice(b"{\"key\":");
    append_json_string(&mut line, &key);
    line.extend_from_slice(b",\"count\":");
    line.extend_from_slice(n.to_string().as_bytes());
    line.push(b'}');
    out.emit(&key, &line);
    Ok(())
}

fn append_json_string(dst: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    dst.push(b'"');
    for &c in s {
        match c {
            b'"' | b'\\' => dst.extend_from_slice(&[b'\\', c]),
            b'\n' => dst.extend_from_slice(b"\\n"),
            0..=0x1f => dst.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]),
            _ => dst.push(c),
        }
    }
    dst.push(b'"');
}

helios::operator!(count);
