//! The output buffer (abi.md, "Output buffer").

use crate::abi::*;

/// A fully specified output record for [`Emitter::emit_record`].
pub struct Output<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub headers: &'a [(&'a [u8], &'a [u8])],
    /// 0 keeps the input record's timestamp.
    pub timestamp: i64,
}

/// Collects the outputs of one input record.
pub struct Emitter<'a> {
    pub(crate) w: &'a mut Writer,
    pub(crate) index: u32,
    pub(crate) timestamp: i64,
}

impl<'a> Emitter<'a> {
    /// Outputs a record with the input's timestamp and no headers.
    pub fn emit(&mut self, key: &[u8], value: &[u8]) {
        self.w.entry(ENTRY_KIND_RECORD, self.index, 0, key, value, &[], self.timestamp);
    }


    /// Outputs a record whose value `fill` writes in place: `value_len`
    /// bytes, straight into the output buffer (no intermediate copy).
    ///
    /// ```ignore
    /// out.emit_with(r.key, r.value.len(), |v| {
    ///     v.copy_from_slice(r.value);
    ///     v.make_ascii_uppercase();
    /// });
    /// ```
    pub fn emit_with(&mut self, key: &[u8], value_len: usize, fill: impl FnOnce(&mut [u8])) {
        let start = self.w.entry(ENTRY_KIND_RECORD, self.index, 0, key, &[], &[], self.timestamp);
        let b = &mut self.w.buf;
        b[start + OFF_ENT_VALUE_LEN..start + OFF_ENT_VALUE_LEN + 4].copy_from_slice(&(value_len as u32).to_le_bytes());
        let at = b.len();
        b.resize(at + value_len, 0);
        fill(&mut b[at..]);
    }

    /// Outputs a record with headers and, optionally, its own timestamp.
    pub fn emit_record(&mut self, o: &Output) {
        let ts = if o.timestamp == 0 { self.timestamp } else { o.timestamp };
        let mut hdrs = Vec::new();
        if !o.headers.is_empty() {
            put_u32(&mut hdrs, o.headers.len() as u32);
            for (k, v) in o.headers {
                put_u32(&mut hdrs, k.len() as u32);
                hdrs.extend_from_slice(k);
                put_u32(&mut hdrs, v.len() as u32);
                hdrs.extend_from_slice(v);
            }
        }
        self.w.entry(ENTRY_KIND_RECORD, self.index, 0, o.key, o.value, &hdrs, ts);
    }

}

pub(crate) fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

/// Encodes entries into one reusable buffer owned by the guest.
pub struct Writer {
    pub(crate) buf: Vec<u8>,
    count: u32,
}

impl Writer {
    pub(crate) const fn new() -> Self {
        Writer { buf: Vec::new(), count: 0 }
    }

    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.buf.resize(OUTPUT_HEADER_SIZE, 0);
        self.buf[OFF_OUT_MAGIC..OFF_OUT_MAGIC + 4].copy_from_slice(&OUTPUT_MAGIC.to_le_bytes());
        self.count = 0;
    }

    /// Appends an entry and returns where it starts.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn entry(&mut self, kind: u32, index: u32, code: u32, key: &[u8], value: &[u8], headers: &[u8], ts: i64) -> usize {
        let start = self.buf.len();
        let b = &mut self.buf;
        b.reserve(ENTRY_HEADER_SIZE + key.len() + value.len() + headers.len());
        for v in [kind, index, key.len() as u32, value.len() as u32, headers.len() as u32, code] {
            put_u32(b, v);
        }
        b.extend_from_slice(&ts.to_le_bytes());
        b.extend_from_slice(key);
        b.extend_from_slice(value);
        b.extend_from_slice(headers);
        self.count += 1;
        start
    }

    /// Position to rewind to when a record fails.
    pub(crate) fn mark(&self) -> (usize, u32) {
        (self.buf.len(), self.count)
    }

    pub(crate) fn rewind(&mut self, m: (usize, u32)) {
        self.buf.truncate(m.0);
        self.count = m.1;
    }

    pub(crate) fn finish(&mut self) -> &[u8] {
        self.buf[OFF_OUT_COUNT..OFF_OUT_COUNT + 4].copy_from_slice(&self.count.to_le_bytes());
        &self.buf
    }

    /// Replaces everything with a batch-level failure.
    pub(crate) fn batch_error(&mut self, status: u32, msg: &str) -> &[u8] {
        self.reset();
        self.buf[OFF_OUT_STATUS..OFF_OUT_STATUS + 4].copy_from_slice(&status.to_le_bytes());
        self.buf[OFF_OUT_COUNT..OFF_OUT_COUNT + 4].copy_from_slice(&(msg.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(msg.as_bytes());
        &self.buf
    }
}
