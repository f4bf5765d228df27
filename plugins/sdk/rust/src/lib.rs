//! Rust guest SDK for helios-wasm operators (ABI v1, see `abi.md`).
//!
//! Write a function over one record that emits zero or more records or
//! returns an [`Error`] for that record, and register it with [`operator!`]:
//!
//! ```ignore
//! fn upper(r: &helios::Record, out: &mut helios::Emitter) -> Result<(), helios::Error> {
//!     out.emit(r.key, &r.value.to_ascii_uppercase());
//!     Ok(())
//! }
//! helios::operator!(upper);
//! ```
//!
//! Build for `wasm32-unknown-unknown` as a `cdylib`. The SDK has no
//! dependencies and compiles with Rust 1.63. It exports the ABI functions,
//! decodes each batch in place, and keeps a record's state writes until the
//! record succeeds, so a failed record leaves no trace.

pub mod abi;
pub mod json;
mod host;
mod output;
#[doc(hidden)]
pub mod rt;
mod state;
pub mod window;

pub use output::{Emitter, Output};
pub use state::{state_delete, state_get, state_get_into, state_put};

/// One input record. Its slices borrow the host's batch buffer and are only
/// valid during the call to the operator.
pub struct Record<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub partition: u32,
    /// Source position (log offset, or byte offset of a file line).
    pub offset: i64,
    /// Event time, Unix milliseconds (0 when the source has none).
    pub timestamp: i64,
    /// Message id (UUID bytes), stable across replays.
    pub id: [u8; 16],
    pub(crate) headers: &'a [u8],
}

impl<'a> Record<'a> {
    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        let mut it = rt::KvIter::new(self.headers)?;
        while let Some((k, v)) = it.next() {
            if k == name.as_bytes() {
                return Some(v);
            }
        }
        None
    }
}

/// A record failure: the record goes to the dead-letter queue (or is retried
/// when [`Error::retryable`]) and the rest of the batch carries on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: u32,
    message: String,
}

impl Error {
    /// A generic failure (code 1).
    pub fn new(message: impl Into<String>) -> Self {
        Error { code: abi::FAIL_GENERIC, message: message.into() }
    }
    /// A transient failure (code 2): the host may retry the record.
    pub fn retryable(message: impl Into<String>) -> Self {
        Error { code: abi::FAIL_RETRYABLE, message: message.into() }
    }
    /// The operator cannot parse the record (code 3).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error { code: abi::FAIL_INVALID_INPUT, message: message.into() }
    }
    /// An application-defined code (>= 1000; smaller codes become generic).
    pub fn with_code(code: u32, message: impl Into<String>) -> Self {
        let code = if code < abi::FAIL_USER_BASE { abi::FAIL_GENERIC } else { code };
        Error { code, message: message.into() }
    }
    pub fn code(&self) -> u32 {
        self.code
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Error::new(s)
    }
}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Error::new(s)
    }
}

/// The operator configuration (`--config key=value`).
pub struct Config {
    pairs: Vec<(String, String)>,
}

impl Config {
    pub(crate) const fn empty() -> Self {
        Config { pairs: Vec::new() }
    }
    /// The value of `key`, if set (the last one when repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    /// The value of `key`, or `default` when unset.
    pub fn lookup<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }
    /// Every pair, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The configuration passed to `helios_init`.
pub fn config() -> &'static Config {
    rt::config()
}

/// Log levels.
#[derive(Clone, Copy, Debug)]
#[repr(i32)]
pub enum Level {
    Debug = abi::LOG_DEBUG,
    Info = abi::LOG_INFO,
    Warn = abi::LOG_WARN,
    Error = abi::LOG_ERROR,
}

/// Writes `msg` to the host's log; the host adds pipeline, plugin and
/// record position.
pub fn log(level: Level, msg: &str) {
    host::log(level as i32, msg.as_bytes());
}

/// Names this SDK in the module's `helios.sdk` custom section, for
/// `helios-wasm plugin inspect`. Build with `strip = "debuginfo"` (not
/// `true`, which drops custom sections).
#[doc(hidden)]
pub const SDK_NAME: [u8; 10] = *b"rust/0.1.0";

/// Registers the operator (and optionally a configuration check run once
/// by `helios_init`) and emits the ABI exports. Use it once per crate:
///
/// ```ignore
/// helios::operator!(process);
/// helios::operator!(process, init = configure); // fn configure(&helios::Config) -> Result<(), helios::Error>
/// ```
#[macro_export]
macro_rules! operator {
    ($process:path) => {
        $crate::operator!($process, init = $crate::rt::accept_config);
    };
    ($process:path, init = $init:path) => {
        $crate::__module_exports!($init);
        #[no_mangle]
        pub extern "C" fn helios_process(ptr: u32, len: u32) -> u64 {
            $crate::rt::process(ptr, len, $process)
        }
    };
}

/// The exports every module has (the SDK's name section, ABI version,
/// allocator, init): shared by [`operator!`] and [`migrator!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __module_exports {
    ($init:path) => {
        #[link_section = "helios.sdk"]
        #[used]
        static HELIOS_SDK_NAME: [u8; $crate::SDK_NAME.len()] = $crate::SDK_NAME;
        #[no_mangle]
        pub extern "C" fn helios_abi_version() -> u32 {
            $crate::abi::VERSION
        }
        #[no_mangle]
        pub extern "C" fn helios_alloc(len: u32) -> u32 {
            $crate::rt::alloc(len)
        }
        #[no_mangle]
        pub extern "C" fn helios_dealloc(ptr: u32, len: u32) {
            $crate::rt::dealloc(ptr, len)
        }
        #[no_mangle]
        pub extern "C" fn helios_init(ptr: u32, len: u32) -> u64 {
            $crate::rt::init(ptr, len, $init)
        }
    };
}

/// Registers a schema migrator (`abi.md`, "Schema migrators") and emits the
/// ABI exports, `helios_migrate` included. The function has an operator's
/// signature: each record's `value` is a JSON record at schema version N, and
/// it emits exactly one record, its value at version N+1 (key and headers are
/// ignored), or returns an [`Error`] for it. A migrator module has no
/// operator: its `helios_process` fails every batch.
///
/// ```ignore
/// helios::migrator!(upgrade);
/// ```
#[macro_export]
macro_rules! migrator {
    ($migrate:path) => {
        $crate::__module_exports!($crate::rt::accept_config);
        #[no_mangle]
        pub extern "C" fn helios_process(_ptr: u32, _len: u32) -> u64 {
            $crate::rt::no_operator()
        }
        #[no_mangle]
        pub extern "C" fn helios_migrate(ptr: u32, len: u32) -> u64 {
            $crate::rt::process(ptr, len, $migrate)
        }
    };
}
