//! The `helios_v1` host functions (abi.md, "Host functions").

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "helios_v1")]
extern "C" {
    #[link_name = "log"]
    fn host_log(level: i32, ptr: *const u8, len: u32);
    #[link_name = "state_get"]
    fn host_state_get(kp: *const u8, kl: u32, bp: *mut u8, bc: u32) -> i32;
    #[link_name = "state_put"]
    fn host_state_put(kp: *const u8, kl: u32, vp: *const u8, vl: u32) -> i32;
    #[link_name = "state_delete"]
    fn host_state_delete(kp: *const u8, kl: u32) -> i32;
    #[link_name = "window_get"]
    fn host_window_get(bp: *mut u8, bc: u32) -> i32;
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn log(level: i32, msg: &[u8]) {
    unsafe { host_log(level, msg.as_ptr(), msg.len() as u32) }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn state_get(key: &[u8], buf: &mut [u8]) -> i32 {
    unsafe { host_state_get(key.as_ptr(), key.len() as u32, buf.as_mut_ptr(), buf.len() as u32) }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn state_put(key: &[u8], value: &[u8]) -> i32 {
    unsafe { host_state_put(key.as_ptr(), key.len() as u32, value.as_ptr(), value.len() as u32) }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn state_delete(key: &[u8]) -> i32 {
    unsafe { host_state_delete(key.as_ptr(), key.len() as u32) }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn window_get(buf: &mut [u8]) -> i32 {
    unsafe { host_window_get(buf.as_mut_ptr(), buf.len() as u32) }
}

// Off wasm32 (for `cargo test` of pure helpers) there is no host.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn log(_level: i32, _msg: &[u8]) {}
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn state_get(_key: &[u8], _buf: &mut [u8]) -> i32 {
    crate::abi::STATUS_NOT_ALLOWED
}
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn state_put(_key: &[u8], _value: &[u8]) -> i32 {
    crate::abi::STATUS_NOT_ALLOWED
}
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn state_delete(_key: &[u8]) -> i32 {
    crate::abi::STATUS_NOT_ALLOWED
}
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn window_get(_buf: &mut [u8]) -> i32 {
    crate::abi::STATUS_NOT_FOUND
}
