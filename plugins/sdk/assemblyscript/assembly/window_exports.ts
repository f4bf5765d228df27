// The window operator's export (abi.md, "Windows"). Re-export it from the
// entry file of a window operator, next to ./exports:
//   export * from "@helios-wasm/sdk/assembly/window_exports";

import { processWith } from "./index";
import { closeOp } from "./window";

export function helios_window_close(ptr: usize, len: u32): u64 {
  return processWith(ptr, len, closeOp);
}
