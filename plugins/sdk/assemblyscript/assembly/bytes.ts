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

/** Walks a headers/config block: u32 n, then n × (u32 len, bytes, u32 len, bytes). */
export class KVReader {
  private p: usize;
  private end: usize;
  private left: u32;
  /** false once the block turned out malformed */
  ok: bool;
  kp: usize = 0;
  kl: u32 = 0;
  vp: usize = 0;
  vl: u32 = 0;

  constructor(ptr: usize, len: u32) {
    this.p = ptr + 4;
    this.end = ptr + len;
    this.ok = len == 0 || len >= 4;
    this.left = len >= 4 ? load<u32>(ptr) : 0;
  }

  /** Moves to the next pair; false at the end or on a malformed block. */
  next(): bool {
    if (!this.ok || this.left == 0) return false;
    this.left--;
    if (!this.field(true) || !this.field(false)) {
      this.ok = false;
      return false;
    }
    return true;
  }

  private field(key: bool): bool {
    const p = this.p;
    if (this.end - p < 4) return false;
    const l = load<u32>(p);
    if (this.end - p - 4 < <usize>l) return false;
    if (key) {
      this.kp = p + 4;
      this.kl = l;
    } else {
      this.vp = p + 4;
      this.vl = l;
    }
    this.p = p + 4 + l;
    return true;
  }
}
