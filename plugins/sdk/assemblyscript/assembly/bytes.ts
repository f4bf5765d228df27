// Byte helpers shared by the SDK's files and its users.

/** Copies len bytes at ptr into a new array. */
export function copyIn(ptr: usize, len: u32): Uint8Array {
  const a = new Uint8Array(len);
  memory.copy(a.dataStart, ptr, len);
  return a;
}

/** The UTF-8 bytes of s. */
export function bytes(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

/** The text of UTF-8 bytes b. */
export function text(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, b.length);
}

/** Whether a and b hold the same bytes. */
export function equal(a: Uint8Array, b: Uint8Array): bool {
  if (a.length != b.length) return false;
  return memory.compare(a.dataStart, b.dataStart, a.length) == 0;
}
