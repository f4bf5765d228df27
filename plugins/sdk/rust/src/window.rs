//! Event-time window operators (abi.md, "Windows"), mirroring the Go SDK's
//! `window` package. The host assigns records to windows, calls the
//! operator once per window of a batch with its state scoped to that
//! window, and calls `helios_window_close` when a window closes. An
//! aggregate is then two functions, registered with [`window_operator!`]:
//!
//! ```ignore
//! // Folds r into its key's accumulator (state_get_into / state_put reach
//! // the window's state only) and writes that key into `key`.
//! fn add(r: &helios::Record, w: &helios::window::Window, key: &mut Vec<u8>) -> Result<(), helios::Error> { .. }
//! // Emits key's result in w from its state.
//! fn result(key: &[u8], w: &helios::window::Window, out: &mut helios::Emitter) -> Result<(), helios::Error> { .. }
//! helios::window_operator!(add, result); // or (add, result, init = configure)
//! ```
//!
//! `add` runs from `helios_process` for every record, followed by `result`
//! for its key under `--emit updates`; `result` runs from
//! `helios_window_close` for every state key of a closing window under
//! `--emit final` (nothing is emitted at close under updates). Keep one
//! state entry per key, its accumulator.
//!
//! [`window_operator!`]: crate::window_operator

use crate::abi::*;
use crate::{host, Emitter, Error, Record};

/// The event-time window `[start_ms, end_ms)` of the current call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Unix milliseconds.
    pub start_ms: i64,
    pub end_ms: i64,
    /// The pipeline emits updates (`--emit updates`): the result after
    /// every record, nothing at close.
    pub updates: bool,
    /// This is the window's close call, not a process call.
    pub closing: bool,
}

// The window of the current call, read from the host once per call (a
// wasm32 guest is single-threaded; only this module touches these).
static mut CUR: Option<Window> = None;
static mut CUR_VALID: bool = false;
static mut KEY: Vec<u8> = Vec::new();

/// Forgets the cached window: called by the runtime at each batch call.
pub(crate) fn new_call() {
    unsafe { CUR_VALID = false }
}

/// The window of the current call; `None` outside a window call (a
/// pipeline without windows, or outside the operator).
pub fn current() -> Option<Window> {
    unsafe {
        if !CUR_VALID {
            CUR_VALID = true;
            let mut d = [0u8; WINDOW_INFO_SIZE];
            CUR = if host::window_get(&mut d) == WINDOW_INFO_SIZE as i32 { Some(decode(&d)) } else { None };
        }
        CUR
    }
}

/// Decodes a window descriptor (24 bytes, little-endian).
pub fn decode(d: &[u8; WINDOW_INFO_SIZE]) -> Window {
    let i64_at = |o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&d[o..o + 8]);
        i64::from_le_bytes(a)
    };
    let flags = u32::from_le_bytes([d[OFF_WINDOW_FLAGS], d[OFF_WINDOW_FLAGS + 1], d[OFF_WINDOW_FLAGS + 2], d[OFF_WINDOW_FLAGS + 3]]);
    Window {
        start_ms: i64_at(OFF_WINDOW_START),
        end_ms: i64_at(OFF_WINDOW_END),
        updates: flags & WINDOW_FLAG_UPDATES != 0,
        closing: flags & WINDOW_FLAG_CLOSING != 0,
    }
}

/// The failure of a record processed outside a window.
pub fn no_window() -> Error {
    Error::new("window operator: this call has no window: run the pipeline with --window (and --event-time)")
}

/// The operator of `helios_process` (`window_operator!`): add, then the
/// key's result under updates.
#[doc(hidden)]
pub fn run_add(
    r: &Record,
    out: &mut Emitter,
    add: fn(&Record, &Window, &mut Vec<u8>) -> Result<(), Error>,
    result: fn(&[u8], &Window, &mut Emitter) -> Result<(), Error>,
) -> Result<(), Error> {
    let w = match current() {
        Some(w) => w,
        None => return Err(no_window()),
    };
    let key = unsafe { &mut *std::ptr::addr_of_mut!(KEY) };
    key.clear();
    add(r, &w, key)?;
    if w.updates {
        result(key, &w, out)
    } else {
        Ok(())
    }
}

/// The operator of `helios_window_close`: each record stands for one state
/// key of the closing window.
#[doc(hidden)]
pub fn run_close(r: &Record, out: &mut Emitter, result: fn(&[u8], &Window, &mut Emitter) -> Result<(), Error>) -> Result<(), Error> {
    let w = match current() {
        Some(w) => w,
        None => return Err(no_window()),
    };
    if w.updates {
        return Ok(()); // every result was emitted as it changed
    }
    result(r.key, &w, out)
}

/// Appends a window bound in the examples' format, the same bytes in every
/// language (the Go SDK's `window.AppendTime`): RFC 3339 in UTC,
/// `2006-01-02T15:04:05Z`, with `.000` milliseconds only when they are not
/// zero.
pub fn append_time(dst: &mut Vec<u8>, ms: i64) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    if year < 0 {
        dst.push(b'-');
    }
    pad(dst, year.unsigned_abs(), 4);
    dst.push(b'-');
    pad(dst, month as u64, 2);
    dst.push(b'-');
    pad(dst, day as u64, 2);
    dst.push(b'T');
    pad(dst, (rem / 3_600_000) as u64, 2);
    dst.push(b':');
    pad(dst, (rem / 60_000 % 60) as u64, 2);
    dst.push(b':');
    pad(dst, (rem / 1000 % 60) as u64, 2);
    if rem % 1000 != 0 {
        dst.push(b'.');
        pad(dst, (rem % 1000) as u64, 3);
    }
    dst.push(b'Z');
}

/// Appends n in decimal, zero-padded to at least width digits.
fn pad(dst: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut d = [b'0'; 20];
    let mut i = d.len();
    while n > 0 || d.len() - i < width {
        i -= 1;
        d[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    dst.extend_from_slice(&d[i..]);
}

/// Registers a window aggregate (see the [`window`](crate::window) module)
/// and emits the ABI exports, `helios_window_close` included:
///
/// ```ignore
/// helios::window_operator!(add, result);
/// helios::window_operator!(add, result, init = configure);
/// ```
#[macro_export]
macro_rules! window_operator {
    ($add:path, $result:path) => {
        $crate::window_operator!($add, $result, init = $crate::rt::accept_config);
    };
    ($add:path, $result:path, init = $init:path) => {
        $crate::__module_exports!($init);
        fn __helios_window_add(r: &$crate::Record, out: &mut $crate::Emitter) -> Result<(), $crate::Error> {
            $crate::window::run_add(r, out, $add, $result)
        }
        fn __helios_window_result(r: &$crate::Record, out: &mut $crate::Emitter) -> Result<(), $crate::Error> {
            $crate::window::run_close(r, out, $result)
        }
        #[no_mangle]
        pub extern "C" fn helios_process(ptr: u32, len: u32) -> u64 {
            $crate::rt::process_window(ptr, len, __helios_window_add)
        }
        #[no_mangle]
        pub extern "C" fn helios_window_close(ptr: u32, len: u32) -> u64 {
            $crate::rt::process_window(ptr, len, __helios_window_result)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_time_matches_go() {
        // Expected strings from Go's window.AppendTime.
        for (ms, want) in [
            (0i64, "1970-01-01T00:00:00Z"),
            (1_700_000_060_000, "2023-11-14T22:14:20Z"),
            (1_700_000_060_123, "2023-11-14T22:14:20.123Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (951_782_400_000, "2000-02-29T00:00:00Z"),
            (-62_135_596_800_000, "0001-01-01T00:00:00Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (-62_135_596_800_001, "0000-12-31T23:59:59.999Z"),
            (-62_198_755_200_000, "-0001-01-01T00:00:00Z"),
        ] {
            let mut b = Vec::new();
            append_time(&mut b, ms);
            assert_eq!(std::str::from_utf8(&b).unwrap(), want, "ms {}", ms);
        }
    }
}
