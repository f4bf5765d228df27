//! Operator state (abi.md, "State is transactional"). Writes are kept with
//! the record and reach the host only when the record succeeds.

use crate::abi::*;
use crate::{host, Error};

struct Pending {
    writes: Vec<(Vec<u8>, Option<Vec<u8>>)>, // None: delete
    in_batch: bool,
    buf: Vec<u8>,
}

static mut PENDING: Pending = Pending { writes: Vec::new(), in_batch: false, buf: Vec::new() };

fn pending() -> &'static mut Pending {
    unsafe { &mut *std::ptr::addr_of_mut!(PENDING) }
}

pub(crate) fn begin_batch() {
    pending().in_batch = true;
}

pub(crate) fn end_batch() {
    let p = pending();
    p.in_batch = false;
    p.writes.clear();
}

pub(crate) fn begin_record() {
    pending().writes.clear();
}

fn status_error(op: &str, st: i32) -> Error {
    match st {
        STATUS_NOT_ALLOWED => Error::new("helios: state is only available while processing a batch"),
        STATUS_TOO_LARGE => Error::new(format!(
            "helios: {}: key or value too large (limits: key {}, value {} bytes)",
            op, MAX_STATE_KEY_LEN, MAX_STATE_VALUE_LEN
        )),
        STATUS_BAD_ARGUMENT => Error::new(format!("helios: {}: host rejected a buffer", op)),
        _ => Error::retryable(format!("helios: {}: host status {}", op, st)),
    }
}

pub(crate) fn flush_record() -> Result<(), Error> {
    let p = pending();
    for (k, v) in p.writes.iter() {
        let st = match v {
            Some(v) => host::state_put(k, v),
            None => host::state_delete(k),
        };
        if st != STATUS_OK {
            return Err(status_error("state write", st));
        }
    }
    p.writes.clear();
    Ok(())
}

/// The state stored under `key`. Reads see this record's and this batch's
/// writes.
pub fn state_get(key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let p = pending();
    if !p.in_batch {
        return Err(status_error("state get", STATUS_NOT_ALLOWED));
    }
    if let Some((_, v)) = p.writes.iter().rev().find(|(k, _)| k.as_slice() == key) {
        return Ok(v.clone());
    }
    if p.buf.len() < 256 {
        p.buf.resize(256, 0);
    }
    loop {
        let n = host::state_get(key, &mut p.buf);
        if n == STATUS_NOT_FOUND {
            return Ok(None);
        }
        if n < 0 {
            return Err(status_error("state get", n));
        }
        if n as usize <= p.buf.len() {
            return Ok(Some(p.buf[..n as usize].to_vec()));
        }
        p.buf.resize(n as usize, 0);
    }
}

fn write(key: &[u8], value: Option<&[u8]>) -> Result<(), Error> {
    let p = pending();
    if !p.in_batch {
        return Err(status_error("state put", STATUS_NOT_ALLOWED));
    }
    if key.len() > MAX_STATE_KEY_LEN || value.map_or(0, |v| v.len()) > MAX_STATE_VALUE_LEN {
        return Err(status_error("state put", STATUS_TOO_LARGE));
    }
    p.writes.push((key.to_vec(), value.map(|v| v.to_vec())));
    Ok(())
}

/// Stores `value` under `key`, committed with the batch's outputs and
/// source offsets if the record succeeds.
pub fn state_put(key: &[u8], value: &[u8]) -> Result<(), Error> {
    write(key, Some(value))
}

/// Removes `key` (like [`state_put`], only if the record succeeds).
pub fn state_delete(key: &[u8]) -> Result<(), Error> {
    write(key, None)
}
