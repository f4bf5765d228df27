// The ABI v1 exports. Re-export them from the operator's entry file:
//   export * from "@helios-wasm/sdk/assembly/exports";

import { abiVersion, initImpl, processImpl } from "./index";

export function helios_abi_version(): u32 {
  return abiVersion();
}

/** Host-visible buffers live outside the garbage-collected heap. */
export function helios_alloc(len: u32): usize {
  return heap.alloc(len > 0 ? <usize>len : 1);
}

export function helios_dealloc(ptr: usize, len: u32): void {
  heap.free(ptr);
}

export function helios_init(ptr: usize, len: u32): u64 {
  return initImpl(ptr, len);
}

export function helios_process(ptr: usize, len: u32): u64 {
  return processImpl(ptr, len);
}
