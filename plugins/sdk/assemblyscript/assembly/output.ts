// The output buffer (abi.md, "Output buffer"), kept outside the garbage-
// collected heap, and the Emitter that writes a record's entries into it.

import {
  ENTRY_HEADER_SIZE, ENTRY_KIND_RECORD, FAIL_GENERIC, FAIL_INVALID_INPUT, FAIL_USER_BASE, OFF_OUT_COUNT, OFF_OUT_MAGIC,
  OFF_OUT_STATUS, OUTPUT_HEADER_SIZE, OUTPUT_MAGIC,
} from "./abi";
import { bytes } from "./bytes";

export let outPtr: usize = 0;
let outCap: usize = 0;
export let outLen: usize = 0;
export let outCount: u32 = 0;

/** Drops the entries after a mark (a failed record's outputs). */
export function rewindOutput(len: usize, count: u32): void {
  outLen = len;
  outCount = count;
}

/** Sets the entry count and returns ptr << 32 | len of the output. */
export function finishOutput(): u64 {
  store<u32>(outPtr + OFF_OUT_COUNT, outCount);
  return (<u64>outPtr << 32) | <u64>outLen;
}

function reserve(n: usize): void {
  if (outLen + n <= outCap) return;
  let c: usize = outCap > 0 ? outCap * 2 : 65536;
  while (c < outLen + n) c *= 2;
  outPtr = outPtr == 0 ? heap.alloc(c) : heap.realloc(outPtr, c);
  outCap = c;
}

function put(ptr: usize, len: usize): void {
  memory.copy(outPtr + outLen, ptr, len);
  outLen += len;
}

export function entry(kind: u32, index: u32, code: u32, kp: usize, kl: u32, vp: usize, vl: u32, hp: usize, hl: u32, ts: i64): void {
  reserve(<usize>ENTRY_HEADER_SIZE + kl + vl + hl);
  const e = outPtr + outLen;
  store<u32>(e, kind, 0); store<u32>(e, index, 4); store<u32>(e, kl, 8);
  store<u32>(e, vl, 12); store<u32>(e, hl, 16); store<u32>(e, code, 20); store<i64>(e, ts, 24);
  outLen += ENTRY_HEADER_SIZE;
  put(kp, kl); put(vp, vl); put(hp, hl);
  outCount++;
}

export function resetOutput(): void {
  outLen = 0;
  outCount = 0;
  reserve(OUTPUT_HEADER_SIZE);
  memory.fill(outPtr, 0, OUTPUT_HEADER_SIZE);
  store<u32>(outPtr + OFF_OUT_MAGIC, OUTPUT_MAGIC);
  outLen = OUTPUT_HEADER_SIZE;
}

export function batchError(status: u32, msg: string): u64 {
  const m = bytes(msg);
  resetOutput();
  store<u32>(outPtr + OFF_OUT_STATUS, status);
  store<u32>(outPtr + OFF_OUT_COUNT, m.length);
  reserve(m.length);
  put(m.dataStart, m.length);
  return (<u64>outPtr << 32) | <u64>outLen;
}

/** An output record with headers (see Emitter.emitRecord). */
export class Header {
  constructor(public name: Uint8Array, public value: Uint8Array) {}
}

/** Collects the outputs of one input record. */
export class Emitter {
  index: u32 = 0;
  timestamp: i64 = 0;
  failed: bool = false;
  failCode: u32 = 0;
  failMessage: string = "";

  /** Outputs a record with the input's timestamp and no headers. */
  emit(key: Uint8Array, value: Uint8Array): void {
    entry(ENTRY_KIND_RECORD, this.index, 0, key.dataStart, key.length, value.dataStart, value.length, 0, 0, this.timestamp);
  }

  /** Outputs a record with headers and its own timestamp (0: the input's). */
  emitRecord(key: Uint8Array, value: Uint8Array, headers: Header[], timestamp: i64 = 0): void {
    let size = 4;
    for (let i = 0; i < headers.length; i++) size += 8 + headers[i].name.length + headers[i].value.length;
    const h = new Uint8Array(headers.length > 0 ? size : 0);
    if (headers.length > 0) {
      let p = h.dataStart;
      store<u32>(p, headers.length); p += 4;
      for (let i = 0; i < headers.length; i++) {
        const n = headers[i].name, v = headers[i].value;
        store<u32>(p, n.length); memory.copy(p + 4, n.dataStart, n.length); p += 4 + n.length;
        store<u32>(p, v.length); memory.copy(p + 4, v.dataStart, v.length); p += 4 + v.length;
      }
    }
    entry(ENTRY_KIND_RECORD, this.index, 0, key.dataStart, key.length, value.dataStart, value.length,
      h.dataStart, h.length, timestamp != 0 ? timestamp : this.timestamp);
  }

  /** Fails this record: its outputs and state writes are dropped and it goes
   *  to the dead-letter queue (or is retried, for FAIL_RETRYABLE). Codes are
   *  FAIL_GENERIC, FAIL_RETRYABLE, FAIL_INVALID_INPUT or >= FAIL_USER_BASE. */
  fail(message: string, code: u32 = FAIL_GENERIC): void {
    if (this.failed) return;
    this.failed = true;
    this.failCode = code == 0 || (code > FAIL_INVALID_INPUT && code < FAIL_USER_BASE) ? FAIL_GENERIC : code;
    this.failMessage = message;
  }
}
