// The ABI v1 exports. Re-export them from the operator's entry file:
//   export * from "@helios-wasm/sdk/assembly/exports";

import { abiVersion, allocImpl, deallocImpl, initImpl, processImpl } from "./index";

export function helios_abi_version(): u32 {
  return abiVersion();
}

export function helios_alloc(len: u32): usize {
  return allocImpl(len);
}

export function helios_dealloc(ptr: usize, len: u32): void {
  deallocImpl(ptr);
}

export function helios_init(ptr: usize, len: u32): u64 {
  return initImpl(ptr, len);
}

export function helios_process(ptr: usize, len: u32): u64 {
  return processImpl(ptr, len);
}
