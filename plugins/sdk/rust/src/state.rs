//! Operator state (abi.md, "State is transactional"). Writes live in two
//! layers in the guest: a record's, kept until the record succeeds (a failed
//! record leaves no trace), then the batch's, the last write per key, handed
//! to the host once at the end of the batch. Reads look in both before
//! asking the host, so a stateful operator crosses into the host once per
//! distinct key and batch instead of twice per record.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::abi::*;
use crate::{host, Error};

/// FNV-1a: state keys are short, and the guest has no HashDoS to fear
/// (keys come from its own records), so std's SipHash only costs time.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf29ce484222325 } else { self.0 };
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
        self.0 = h;
    }
}

type KeyIndex = HashMap<Vec<u8>, usize, BuildHasherDefault<Fnv>>;

/// The last write per key of the batch's succeeded records, in the order
/// keys were first written.
struct BatchWrites {
    index: Option<KeyIndex>, // created on first use (HashMap::new is not const)
    ents: Vec<(Vec<u8>, Option<Vec<u8>>)>,  // None: delete
    used: usize,                           // ents[..used] are this batch's; the rest keep their buffers
}

static mut BATCH: BatchWrites = BatchWrites { index: None, ents: Vec::new(), used: 0 };

fn batch() -> &'static mut BatchWrites {
    unsafe { &mut *std::ptr::addr_of_mut!(BATCH) }
}

impl BatchWrites {
    fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        let i = *self.index.as_ref()?.get(key)?;
        Some(self.ents[i].1.as_deref())
    }

    fn set(&mut self, key: &[u8], value: Option<&[u8]>) {
        let index = self.index.get_or_insert_with(KeyIndex::default);
        let i = match index.get(key) {
            Some(&i) => i,
            None => {
                let i = self.used;
                self.used += 1;
                if i == self.ents.len() {
                    self.ents.push((Vec::new(), None));
                }
                let k = &mut self.ents[i].0;
                k.clear();
                k.extend_from_slice(key);
                index.insert(key.to_vec(), i);
                i
            }
        };
        match value {
            Some(v) => {
                let slot = self.ents[i].1.get_or_insert_with(Vec::new);
                slot.clear();
                slot.extend_from_slice(v);
            }
            None => self.ents[i].1 = None,
        }
    }

    fn clear(&mut self) {
        if let Some(index) = self.index.as_mut() {
            index.clear();
        }
        self.used = 0;
    }
}

/// One record's writes, in one reused arena: steady-state processing
/// allocates nothing here.
struct Pending {
    arena: Vec<u8>,
    writes: Vec<Write>,
    in_batch: bool,
    buf: Vec<u8>,
}

#[derive(Clone, Copy)]
struct Write {
    key: (usize, usize), // offset, length in arena
    value: Option<(usize, usize)>, // None: delete
}

static mut PENDING: Pending = Pending { arena: Vec::new(), writes: Vec::new(), in_batch: false, buf: Vec::new() };

fn pending() -> &'static mut Pending {
    unsafe { &mut *std::ptr::addr_of_mut!(PENDING) }
}

impl Pending {
    fn bytes(&self, r: (usize, usize)) -> &[u8] {
        &self.arena[r.0..r.0 + r.1]
    }
    fn clear(&mut self) {
        self.arena.clear();
        self.writes.clear();
    }
    /// The record's latest write to key: Some(None) when deleted.
    fn latest(&self, key: &[u8]) -> Option<Option<(usize, usize)>> {
        self.writes.iter().rev().find(|w| self.bytes(w.key) == key).map(|w| w.value)
    }
}

pub(crate) fn begin_batch() {
    pending().in_batch = true;
    batch().clear();
}

pub(crate) fn end_batch() {
    let p = pending();
    p.in_batch = false;
    p.clear();
    batch().clear();
}

/// Hands the batch's writes to the host (at the end of the batch).
pub(crate) fn flush_batch() -> Result<(), Error> {
    let b = batch();
    for (k, v) in b.ents[..b.used].iter() {
        let st = match v {
            Some(v) => host::state_put(k, v),
            None => host::state_delete(k),
        };
        if st != STATUS_OK {
            return Err(status_error("state write", st));
        }
    }
    b.clear();
    Ok(())
}

pub(crate) fn begin_record() {
    pending().clear();
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

/// Takes over a succeeded record's writes into the batch's.
pub(crate) fn commit_record() {
    let p = pending();
    let b = batch();
    for w in p.writes.iter() {
        b.set(p.bytes(w.key), w.value.map(|v| p.bytes(v)));
    }
    p.clear();
}

/// The state stored under `key`. Reads see this record's and this batch's
/// writes. [`state_get_into`] reuses a buffer instead of allocating.
pub fn state_get(key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let mut v = Vec::new();
    Ok(if state_get_into(key, &mut v)? { Some(v) } else { None })
}

/// Reads the state under `key` into `value` (replacing its contents) and
/// returns whether it was found.
pub fn state_get_into(key: &[u8], value: &mut Vec<u8>) -> Result<bool, Error> {
    let p = pending();
    value.clear();
    if !p.in_batch {
        return Err(status_error("state get", STATUS_NOT_ALLOWED));
    }
    if let Some(w) = p.latest(key) {
        return Ok(match w {
            Some(v) => {
                value.extend_from_slice(p.bytes(v));
                true
            }
            None => false,
        });
    }
    if let Some(w) = batch().get(key) {
        return Ok(match w {
            Some(v) => {
                value.extend_from_slice(v);
                true
            }
            None => false,
        });
    }
    if p.buf.len() < 256 {
        p.buf.resize(256, 0);
    }
    loop {
        let n = host::state_get(key, &mut p.buf);
        if n == STATUS_NOT_FOUND {
            return Ok(false);
        }
        if n < 0 {
            return Err(status_error("state get", n));
        }
        if n as usize <= p.buf.len() {
            value.extend_from_slice(&p.buf[..n as usize]);
            return Ok(true);
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
    let k = (p.arena.len(), key.len());
    p.arena.extend_from_slice(key);
    let v = value.map(|v| {
        let r = (p.arena.len(), v.len());
        p.arena.extend_from_slice(v);
        r
    });
    p.writes.push(Write { key: k, value: v });
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
