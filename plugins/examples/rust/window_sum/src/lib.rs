//! A window operator: sums a JSON numeric field (`--config field=NAME`,
//! required) of each key's records in each event-time window and emits
//! `{"key":K,"window_start":"RFC3339","window_end":"RFC3339","sum":S}` once
//! per key and window when the window closes (`--emit final`), or after
//! every record (`--emit updates`). The same bytes as the Go example
//! (plugins/examples/go/window_sum).
//!
//! The sum is an f64 (8 little-endian bytes of state), added in record
//! order. S is its shortest decimal that reads back as the same f64, in
//! plain notation, never an exponent, ties to even (Go's
//! `strconv.FormatFloat(S, 'f', -1, 64)`): 3, 0.30000000000000004, -2.5,
//! 1000000000000000000000; an overflowed sum prints as Go does, `+Inf`,
//! `-Inf` or `NaN`. A record whose field is missing or not a JSON number
//! (or out of f64's range) fails (code 3). Keys and window bounds are
//! written as in window_count; `--config key_field=NAME` takes the key from
//! a field as there.

use std::cell::RefCell;
use std::fmt::Write;

use helios::window::{self, Window};
use helios::{json, Config, Emitter, Error, Record};

#[derive(Default)]
struct Scratch {
    state: Vec<u8>,
    line: Vec<u8>,
    /// The failure of a record without the field (built once, by configure).
    err_field: String,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn configure(cfg: &Config) -> Result<(), Error> {
    match cfg.get("field") {
        Some(f) if !f.is_empty() => {
            SCRATCH.with(|s| s.borrow_mut().err_field = format!("window_sum: field {:?} is missing or not a JSON number", f));
            Ok(())
        }
        _ => Err(Error::new("window_sum: --config field=NAME is required: the JSON numeric field to sum")),
    }
}

fn key_of(r: &Record, key: &mut Vec<u8>) -> Result<(), Error> {
    match helios::config().get("key_field").filter(|f| !f.is_empty()) {
        None => key.extend_from_slice(r.key),
        Some(field) => match json::field(r.value, field) {
            Ok(Some(raw)) => {
                json::string(key, raw);
            }
            Ok(None) => {}
            Err(_) => return Err(Error::invalid_input("window_sum: value is not a JSON object")),
        },
    }
    Ok(())
}

fn sum(key: &[u8], buf: &mut Vec<u8>) -> Result<f64, Error> {
    if !helios::state_get_into(key, buf)? {
        return Ok(0.0);
    }
    let b: [u8; 8] = buf.as_slice().try_into().map_err(|_| Error::new("window_sum: corrupt state"))?;
    Ok(f64::from_bits(u64::from_le_bytes(b)))
}

/// The number in raw (a JSON value's text), if it is a finite f64.
fn number(raw: &[u8]) -> Option<f64> {
    match raw.first() {
        Some(b'-' | b'0'..=b'9') => {}
        _ => return None,
    }
    let x: f64 = std::str::from_utf8(raw).ok()?.parse().ok()?;
    if x.is_finite() {
        Some(x) // out of f64's range parses as infinity: Go's ParseFloat fails it
    } else {
        None
    }
}

fn add(r: &Record, _w: &Window, key: &mut Vec<u8>) -> Result<(), Error> {
    let field = helios::config().get("field").unwrap_or("");
    let raw = match json::field(r.value, field) {
        Ok(raw) => raw,
        Err(_) => return Err(Error::invalid_input("window_sum: value is not a JSON object")),
    };
    let x = match raw.and_then(number) {
        Some(x) => x,
        None => return Err(SCRATCH.with(|s| Error::invalid_input(s.borrow().err_field.clone()))),
    };
    key_of(r, key)?;
    SCRATCH.with(|s| {
        let total = sum(key, &mut s.borrow_mut().state)? + x;
        helios::state_put(key, &total.to_bits().to_le_bytes())
    })
}

fn result(key: &[u8], w: &Window, out: &mut Emitter) -> Result<(), Error> {
    SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        let total = sum(key, &mut s.state)?;
        let l = &mut s.line;
        l.clear();
        l.extend_from_slice(b"{\"key\":");
        json::append_string(l, key);
        l.extend_from_slice(b",\"window_start\":\"");
        window::append_time(l, w.start_ms);
        l.extend_from_slice(b"\",\"window_end\":\"");
        window::append_time(l, w.end_ms);
        l.extend_from_slice(b"\",\"sum\":");
        append_float(l, total);
        l.push(b'}');
        out.emit(key, l);
        Ok(())
    })
}

/// Appends x as Go's strconv.FormatFloat(x, 'f', -1, 64) does: the fewest
/// significant digits that read back as x (Rust's shortest `{:e}`), in
/// plain notation. Where x lies exactly halfway between two such shortest
/// decimals, Go takes the even one and Rust's formatter the upper one, so
/// that case is settled here with x's exact digits.
fn append_float(dst: &mut Vec<u8>, x: f64) {
    if x.is_nan() {
        return dst.extend_from_slice(b"NaN");
    }
    if x.is_infinite() {
        return dst.extend_from_slice(if x > 0.0 { b"+Inf" } else { b"-Inf" });
    }
    if x.is_sign_negative() {
        dst.push(b'-');
    }
    let x = x.abs();
    let mut buf = Stack::default();
    let _ = write!(buf, "{:e}", x);
    let (mut m, lead) = split_exp(buf.bytes());
    let n = digit_count(m);
    let mut k = lead - (n as i32 - 1); // x reads back from m × 10^k
    // x's first 41 significant digits, exact unless x has more.
    let mut exact = Stack::default();
    let _ = write!(exact, "{:.40e}", x);
    let e = exact.bytes();
    let (_, elead) = split_exp(e);
    let mut digits = [0u8; 41];
    let mut nd = 0;
    for &c in e.iter().take_while(|&&c| c != b'e') {
        if c != b'.' {
            digits[nd] = c;
            nd += 1;
        }
    }
    if elead == lead && nd == 41 && digits[n] == b'5' && digits[n + 1..].iter().all(|&c| c == b'0') {
        let floor = digits[..n].iter().fold(0u64, |a, &c| a * 10 + (c - b'0') as u64);
        let even = if floor % 2 == 0 { floor } else { floor + 1 };
        if even != m && reads_back(even, k, x) {
            m = even;
        }
    }
    while m != 0 && m % 10 == 0 {
        m /= 10;
        k += 1;
    }
    let mut d = Stack::default();
    let _ = write!(d, "{}", m);
    let d = d.bytes();
    let point = d.len() as i32 + k; // digits before the decimal point
    if point <= 0 {
        dst.extend_from_slice(b"0.");
        dst.resize(dst.len() + (-point) as usize, b'0');
        dst.extend_from_slice(d);
    } else if point as usize >= d.len() {
        dst.extend_from_slice(d);
        dst.resize(dst.len() + point as usize - d.len(), b'0');
    } else {
        dst.extend_from_slice(&d[..point as usize]);
        dst.push(b'.');
        dst.extend_from_slice(&d[point as usize..]);
    }
}

/// Splits "D.DDDe-X" into its digits as an integer and the exponent of the
/// leading digit.
fn split_exp(s: &[u8]) -> (u64, i32) {
    let at = s.iter().position(|&c| c == b'e').unwrap_or(s.len());
    let m = s[..at].iter().filter(|c| c.is_ascii_digit()).fold(0u64, |a, &c| a.wrapping_mul(10).wrapping_add((c - b'0') as u64));
    let exp = std::str::from_utf8(&s[at + 1..]).ok().and_then(|e| e.parse().ok()).unwrap_or(0);
    (m, exp)
}

fn digit_count(mut m: u64) -> usize {
    let mut n = 1;
    while m >= 10 {
        m /= 10;
        n += 1;
    }
    n
}

fn reads_back(m: u64, k: i32, x: f64) -> bool {
    let mut b = Stack::default();
    let _ = write!(b, "{}e{}", m, k);
    std::str::from_utf8(b.bytes()).ok().and_then(|s| s.parse::<f64>().ok()) == Some(x)
}

/// A formatting buffer on the stack (the hot path allocates nothing).
struct Stack {
    b: [u8; 64],
    n: usize,
}

impl Default for Stack {
    fn default() -> Self {
        Stack { b: [0; 64], n: 0 }
    }
}

impl Stack {
    fn bytes(&self) -> &[u8] {
        &self.b[..self.n]
    }
}

impl std::fmt::Write for Stack {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.n + s.len();
        if end > self.b.len() {
            return Err(std::fmt::Error);
        }
        self.b[self.n..end].copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}

helios::window_operator!(add, result, init = configure);
