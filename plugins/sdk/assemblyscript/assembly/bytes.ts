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

/** Points view at len bytes of buf from offset and returns it, without
 *  allocating: the SDK's views of the batch, of state and of a ByteBuffer
 *  are reused objects. (The minimal runtime has no write barrier.) */
// @ts-ignore: decorator
@inline
export function retarget(view: Uint8Array, buf: ArrayBuffer, offset: usize, len: i32): Uint8Array {
  const p = changetype<usize>(view), b = changetype<usize>(buf);
  store<usize>(p, b, offsetof<Uint8Array>("buffer"));
  __link(p, b, false);
  store<usize>(p, b + offset, offsetof<Uint8Array>("dataStart"));
  store<i32>(p, len, offsetof<Uint8Array>("byteLength"));
  return view;
}

/** A growable byte buffer to build values in without allocating per
 *  record: reset() it, append to it, and emit view(). */
export class ByteBuffer {
  private buf: ArrayBuffer;
  private len: i32 = 0;
  private v: Uint8Array = new Uint8Array(0);

  constructor(capacity: i32 = 256) {
    this.buf = new ArrayBuffer(capacity > 16 ? capacity : 16);
  }

  get length(): i32 { return this.len; }

  /** Empties the buffer (its capacity stays). */
  reset(): void { this.len = 0; }

  /** Makes room for n more bytes and returns the address of the first:
   *  write them there, then call written(n) (or fewer). */
  reserve(n: i32): usize {
    const need = this.len + n, cap = this.buf.byteLength;
    if (need > cap) {
      let c = cap * 2;
      while (c < need) c *= 2;
      const nb = new ArrayBuffer(c);
      memory.copy(changetype<usize>(nb), changetype<usize>(this.buf), <usize>this.len);
      this.buf = nb;
    }
    return changetype<usize>(this.buf) + <usize>this.len;
  }

  /** Counts n bytes written at the address reserve() returned. */
  written(n: i32): void { this.len += n; }

  push(c: u8): void {
    store<u8>(this.reserve(1), c);
    this.len++;
  }

  /** Appends len bytes at ptr. */
  appendRaw(ptr: usize, len: i32): void {
    memory.copy(this.reserve(len), ptr, <usize>len);
    this.len += len;
  }

  append(b: Uint8Array): void { this.appendRaw(b.dataStart, b.length); }

  /** Appends s as UTF-8. */
  appendString(s: string): void {
    const p = this.reserve(String.UTF8.byteLength(s));
    this.len += <i32>String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, p);
  }

  /** Appends n in decimal. */
  appendUint(n: u64): void {
    let d = 1;
    for (let m = n; m >= 10; m /= 10) d++;
    const p = this.reserve(d);
    for (let i = d - 1; i >= 0; i--) {
      store<u8>(p + <usize>i, <u8>(0x30 + n % 10));
      n /= 10;
    }
    this.len += d;
  }

  /** A view of the contents, valid until the buffer changes: emit it, or
   *  slice() it to keep it. The same object is returned every time. */
  view(): Uint8Array { return retarget(this.v, this.buf, 0, this.len); }

  /** A copy of the contents. */
  slice(): Uint8Array { return copyIn(changetype<usize>(this.buf), <u32>this.len); }
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
