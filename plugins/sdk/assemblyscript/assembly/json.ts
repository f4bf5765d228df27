// A top-level field of a JSON object. The rules are the same in every
// helios SDK (see the Go SDK's JSONField), so an operator behaves
// identically in any language: the whole value is validated (RFC 8259,
// nesting up to MAX_JSON_DEPTH), member names are compared after decoding
// escapes, and the last of repeated members wins.

import { ByteBuffer } from "./bytes";

export const MAX_JSON_DEPTH = 64;

/** The result of jsonField. */
export class JSONField {
  /** false when the value is not one valid JSON object */
  valid: bool = false;
  found: bool = false;
  /** the member's raw JSON text when found */
  raw: Uint8Array = new Uint8Array(0);
}

class Parser {
  constructor(public b: Uint8Array, public i: i32 = 0) {}

  peek(): i32 { return this.i < this.b.length ? <i32>unchecked(this.b[this.i]) : -1; }

  ws(): void {
    for (;;) {
      const c = this.peek();
      if (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) this.i++;
      else return;
    }
  }

  eat(c: i32): bool {
    if (this.peek() == c) { this.i++; return true; }
    return false;
  }

  value(depth: i32): bool {
    const c = this.peek();
    if (c < 0) return false;
    if (c == 0x22) return this.str();
    if (c == 0x7b || c == 0x5b) return depth < MAX_JSON_DEPTH && this.container(depth + 1);
    if (c == 0x74) return this.lit("true");
    if (c == 0x66) return this.lit("false");
    if (c == 0x6e) return this.lit("null");
    return this.num();
  }

  container(depth: i32): bool {
    const obj = this.peek() == 0x7b;
    const end = obj ? 0x7d : 0x5d;
    this.i++;
    this.ws();
    if (this.eat(end)) return true;
    for (;;) {
      if (obj) {
        if (!this.str()) return false;
        this.ws();
        if (!this.eat(0x3a)) return false;
        this.ws();
      }
      if (!this.value(depth)) return false;
      this.ws();
      if (this.eat(end)) return true;
      if (!this.eat(0x2c)) return false;
      this.ws();
    }
    return false; // unreachable
  }

  str(): bool {
    if (!this.eat(0x22)) return false;
    while (this.i < this.b.length) {
      const c = <i32>unchecked(this.b[this.i++]);
      if (c == 0x22) return true;
      if (c < 0x20) return false;
      if (c == 0x5c) {
        const e = this.peek();
        this.i++;
        if (e == 0x75) {
          for (let k = 0; k < 4; k++) {
            if (!isHex(this.peek())) return false;
            this.i++;
          }
        } else if (!(e == 0x22 || e == 0x5c || e == 0x2f || e == 0x62 || e == 0x66 || e == 0x6e || e == 0x72 || e == 0x74)) {
          return false;
        }
      }
    }
    return false;
  }

  lit(s: string): bool {
    for (let k = 0; k < s.length; k++) {
      if (this.peek() != s.charCodeAt(k)) return false;
      this.i++;
    }
    return true;
  }

  digits(): bool {
    const s = this.i;
    while (this.peek() >= 0x30 && this.peek() <= 0x39) this.i++;
    return this.i > s;
  }

  num(): bool {
    this.eat(0x2d);
    if (!this.eat(0x30)) {
      const c = this.peek();
      if (c < 0x31 || c > 0x39) return false;
      this.digits();
    }
    if (this.eat(0x2e) && !this.digits()) return false;
    if (this.eat(0x65) || this.eat(0x45)) {
      if (!this.eat(0x2b)) this.eat(0x2d);
      if (!this.digits()) return false;
    }
    return true;
  }
}

function isHex(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

function hex4(b: Uint8Array, i: i32): u32 {
  let r: u32 = 0;
  for (let k = 0; k < 4; k++) {
    const c = <u32>b[i + k];
    r = (r << 4) | (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10);
  }
  return r;
}

/** The decoded text of the JSON string literal raw, or null when raw is not
 *  a string. Lone surrogate escapes become U+FFFD; other bytes are kept. */
export function jsonString(raw: Uint8Array): Uint8Array | null {
  const p = new Parser(raw);
  if (!p.str() || p.i != raw.length) return null;
  const dst = new Uint8Array(raw.length);
  let n = 0;
  let i = 1;
  while (i < raw.length - 1) {
    const c = raw[i++];
    if (c != 0x5c) { dst[n++] = c; continue; }
    const e = raw[i++];
    if (e == 0x62) dst[n++] = 8;
    else if (e == 0x66) dst[n++] = 12;
    else if (e == 0x6e) dst[n++] = 10;
    else if (e == 0x72) dst[n++] = 13;
    else if (e == 0x74) dst[n++] = 9;
    else if (e == 0x75) {
      let r = hex4(raw, i);
      i += 4;
      if (r >= 0xd800 && r < 0xdc00 && i + 6 <= raw.length - 1 && raw[i] == 0x5c && raw[i + 1] == 0x75) {
        const lo = hex4(raw, i + 2);
        if (lo >= 0xdc00 && lo < 0xe000) {
          r = 0x10000 + ((r - 0xd800) << 10) + (lo - 0xdc00);
          i += 6;
        }
      }
      if (r >= 0xd800 && r < 0xe000) r = 0xfffd;
      if (r < 0x80) dst[n++] = <u8>r;
      else if (r < 0x800) { dst[n++] = <u8>(0xc0 | (r >> 6)); dst[n++] = <u8>(0x80 | (r & 0x3f)); }
      else if (r < 0x10000) {
        dst[n++] = <u8>(0xe0 | (r >> 12)); dst[n++] = <u8>(0x80 | ((r >> 6) & 0x3f)); dst[n++] = <u8>(0x80 | (r & 0x3f));
      } else {
        dst[n++] = <u8>(0xf0 | (r >> 18)); dst[n++] = <u8>(0x80 | ((r >> 12) & 0x3f));
        dst[n++] = <u8>(0x80 | ((r >> 6) & 0x3f)); dst[n++] = <u8>(0x80 | (r & 0x3f));
      }
    } else dst[n++] = e;
  }
  return dst.slice(0, n);
}

/** raw without the whitespace outside its strings. */
export function jsonCompact(raw: Uint8Array): Uint8Array {
  const dst = new Uint8Array(raw.length);
  let n = 0;
  let inStr = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (inStr) {
      dst[n++] = c;
      if (c == 0x5c && i + 1 < raw.length) dst[n++] = raw[++i];
      else if (c == 0x22) inStr = false;
    } else if (!(c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d)) {
      inStr = c == 0x22;
      dst[n++] = c;
    }
  }
  return dst.slice(0, n);
}

function keyEquals(raw: Uint8Array, name: Uint8Array): bool {
  // Without escapes the member name is its bytes between the quotes.
  let plain = true;
  for (let i = 1; i < raw.length - 1; i++) {
    if (unchecked(raw[i]) == 0x5c) { plain = false; break; }
  }
  if (plain) return raw.length - 2 == name.length && memory.compare(raw.dataStart + 1, name.dataStart, name.length) == 0;
  const t = jsonString(raw);
  if (t === null || t.length != name.length) return false;
  return memory.compare(t.dataStart, name.dataStart, t.length) == 0;
}

// The last name looked up, encoded once rather than on every call.
let lastName = "";
let lastWant = new Uint8Array(0);

/** Member name of the JSON object in value. */
export function jsonField(value: Uint8Array, name: string): JSONField {
  const res = new JSONField();
  if (name != lastName) {
    lastWant = Uint8Array.wrap(String.UTF8.encode(name));
    lastName = name;
  }
  const want = lastWant;
  const p = new Parser(value);
  p.ws();
  if (!p.eat(0x7b)) return res;
  p.ws();
  if (!p.eat(0x7d)) {
    for (;;) {
      const ks = p.i;
      if (!p.str()) return res;
      const key = value.subarray(ks, p.i);
      p.ws();
      if (!p.eat(0x3a)) return res;
      p.ws();
      const vs = p.i;
      if (!p.value(1)) return res;
      if (keyEquals(key, want)) {
        res.found = true;
        res.raw = value.slice(vs, p.i);
      }
      p.ws();
      if (p.eat(0x7d)) break;
      if (!p.eat(0x2c)) return res;
      p.ws();
    }
  }
  p.ws();
  if (p.i != value.length) {
    res.found = false;
    return res;
  }
  res.valid = true;
  return res;
}

// @ts-ignore: decorator
@inline function hexDigit(d: u8): u8 { return d < 10 ? 0x30 + d : 0x57 + d; }

/** Appends s as a JSON string literal to dst, escaping only '"', '\',
 *  newline (as \n) and the other control bytes (as \u00XX); other bytes
 *  are kept as they are. Every SDK's encoder writes the same bytes. */
export function appendJSONString(dst: ByteBuffer, s: Uint8Array): void {
  const n = s.length;
  const p = dst.reserve(6 * n + 2);
  let w: usize = 0;
  store<u8>(p, 0x22);
  w++;
  for (let i = 0; i < n; i++) {
    const c = unchecked(s[i]);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) {
      store<u8>(p + w++, c);
    } else if (c == 0x22 || c == 0x5c) {
      store<u8>(p + w++, 0x5c); store<u8>(p + w++, c);
    } else if (c == 0x0a) {
      store<u8>(p + w++, 0x5c); store<u8>(p + w++, 0x6e);
    } else {
      // \u00XX
      store<u8>(p + w++, 0x5c); store<u8>(p + w++, 0x75); store<u8>(p + w++, 0x30); store<u8>(p + w++, 0x30);
      store<u8>(p + w++, hexDigit(c >> 4)); store<u8>(p + w++, hexDigit(c & 15));
    }
  }
  store<u8>(p + w++, 0x22);
  dst.written(<i32>w);
}
