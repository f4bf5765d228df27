// AssemblyScript guest SDK for helios-wasm operators (ABI v1, see abi.md).
//
//   import { Record, Emitter, register } from "@helios-wasm/sdk/assembly";
//   export * from "@helios-wasm/sdk/assembly/exports";
//
//   function upper(r: Record, out: Emitter): void { ... out.emit(r.key, v); }
//   register(upper);
//
// Build: npx asc op.ts -O3 --noAssert --runtime minimal --use abort= \
//          --transform @helios-wasm/sdk/transform.js -o op.wasm
//
// The SDK exports the ABI functions (via ./exports), decodes each batch
// (records are views of it), encodes the output outside the garbage-collected
// heap (./output), keeps state writes per record and batch (./state), and
// collects garbage between batches. AssemblyScript has no exceptions: fail a
// record with out.fail(message, code).

import { KVReader, copyIn, bytes, retarget } from "./bytes";
import { Emitter, batchError, entry, finishOutput, outCount, outLen, resetOutput, rewindOutput } from "./output";
import { beginBatch, beginRecord, commitRecord, endBatch, flushBatch } from "./state";
import {
  BATCH_BAD_INPUT, BATCH_HEADER_SIZE, BATCH_MAGIC, BATCH_OPERATOR_ERR, ENTRY_KIND_FAILED, FAIL_GENERIC,
  FAIL_INVALID_INPUT, FAIL_RETRYABLE, FAIL_USER_BASE, LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_WARN, OFF_BATCH_COUNT,
  OFF_BATCH_MAGIC, OFF_REC_HEADERS_LEN, OFF_REC_ID, OFF_REC_KEY_LEN, OFF_REC_OFFSET, OFF_REC_PARTITION, OFF_REC_TIMESTAMP,
  OFF_REC_VALUE_LEN, REC_ID_LEN, RECORD_HEADER_SIZE, VERSION,
} from "./abi";

export { FAIL_GENERIC, FAIL_RETRYABLE, FAIL_INVALID_INPUT, FAIL_USER_BASE, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
export { appendJSONString, jsonField, jsonString, jsonCompact, JSONField } from "./json";

export { ByteBuffer, bytes, equal, text } from "./bytes";
export { Emitter, Header } from "./output";
export { stateDelete, stateGet, stateGetView, statePut } from "./state";

@external("helios_v1", "log")
declare function hostLog(level: i32, ptr: usize, len: u32): void;

// ---- buffers the host writes into ----
// They are pinned ArrayBuffers, so that a record's key and value can be
// views of the host's batch instead of copies.
const hostBuffers = new Map<usize, ArrayBuffer>();

export function allocImpl(len: u32): usize {
  const buf = new ArrayBuffer(len > 0 ? <i32>len : 1);
  const ptr = changetype<usize>(buf);
  __pin(ptr);
  hostBuffers.set(ptr, buf);
  return ptr;
}

export function deallocImpl(ptr: usize): void {
  if (!hostBuffers.has(ptr)) return;
  hostBuffers.delete(ptr);
  __unpin(ptr);
}

/** v pointed at len bytes at ptr inside buf (which starts at base). */
function view(v: Uint8Array, buf: ArrayBuffer | null, base: usize, ptr: usize, len: u32): Uint8Array {
  if (buf === null) return copyIn(ptr, len);
  return retarget(v, buf, ptr - base, <i32>len);
}

/** One input record. Its arrays are views of the host's batch, valid only
 *  during the operator call: copy them (slice()) to keep them. The SDK
 *  reuses the record and view objects from one record to the next. */
export class Record {
  key: Uint8Array;
  value: Uint8Array;
  partition: u32;
  /** source position (log offset or file byte offset) */
  offset: i64;
  /** event time, Unix milliseconds */
  timestamp: i64;
  private idPtr: usize;
  private headersPtr: usize;
  private headersLen: u32;

  constructor(key: Uint8Array, value: Uint8Array, partition: u32, offset: i64, timestamp: i64, idPtr: usize, hp: usize, hl: u32) {
    this.key = key; this.value = value; this.partition = partition; this.offset = offset;
    this.timestamp = timestamp; this.idPtr = idPtr; this.headersPtr = hp; this.headersLen = hl;
  }

  /** SDK-internal: points the record at the next one of the batch. */
  load(key: Uint8Array, value: Uint8Array, partition: u32, offset: i64, timestamp: i64, idPtr: usize, hp: usize, hl: u32): void {
    this.key = key; this.value = value; this.partition = partition; this.offset = offset;
    this.timestamp = timestamp; this.idPtr = idPtr; this.headersPtr = hp; this.headersLen = hl;
  }

  /** The message id (16 UUID bytes), stable across replays. */
  get id(): Uint8Array {
    return copyIn(this.idPtr, REC_ID_LEN);
  }

  /** The value of the first header called name, or null. */
  header(name: string): Uint8Array | null {
    const want = bytes(name);
    const kv = new KVReader(this.headersPtr, this.headersLen);
    while (kv.next()) {
      if (kv.kl == <u32>want.length && memory.compare(kv.kp, want.dataStart, kv.kl) == 0) return copyIn(kv.vp, kv.vl);
    }
    return null;
  }
}

// ---- configuration ----
/** The operator configuration (--config key=value). */
export class Config {
  keys: string[] = [];
  values: string[] = [];

  /** The value of key (the last one when repeated), or null. */
  get(key: string): string | null {
    for (let i = this.keys.length - 1; i >= 0; i--) if (this.keys[i] == key) return this.values[i];
    return null;
  }

  /** The value of key, or def when unset. */
  lookup(key: string, def: string): string {
    const v = this.get(key);
    return v !== null ? v : def;
  }
}

export const config = new Config();

// ---- logging ----
/** Writes msg to the host log at level (LOG_DEBUG..LOG_ERROR). */
export function log(level: i32, msg: string): void {
  const b = bytes(msg);
  hostLog(level, b.dataStart, b.length);
}

// ---- registration and the exports' bodies ----
export type Operator = (r: Record, out: Emitter) => void;
/** Returns null to accept the configuration, or an error message. */
export type InitFunc = (cfg: Config) => string | null;

function noOperator(r: Record, out: Emitter): void {
  out.fail("helios sdk: no operator registered: call register()");
}
function acceptAll(cfg: Config): string | null { return null; }

let operator: Operator = noOperator;
let onInit: InitFunc = acceptAll;

/** Registers the operator and, optionally, a configuration check run once
 *  before the first batch. Call it at the top level of the entry file. */
export function register(op: Operator, init: InitFunc = acceptAll): void {
  operator = op;
  onInit = init;
}

let initError: Uint8Array = new Uint8Array(0);

export function abiVersion(): u32 { return VERSION; }

export function initImpl(ptr: usize, len: u32): u64 {
  const kv = new KVReader(ptr, len);
  while (kv.next()) {
    config.keys.push(String.UTF8.decodeUnsafe(kv.kp, kv.kl));
    config.values.push(String.UTF8.decodeUnsafe(kv.vp, kv.vl));
  }
  const ok = kv.ok;
  const msg = ok ? onInit(config) : "helios sdk: malformed config block";
  if (msg === null) return 0;
  initError = bytes(msg);
  return (<u64>initError.dataStart << 32) | <u64>initError.length;
}

export function processImpl(ptr: usize, len: u32): u64 {
  return processWith(ptr, len, operator);
}

let calls: u32 = 0;

/** SDK-internal: batch export calls so far (./window caches per call). */
export function callCount(): u32 { return calls; }

/** SDK-internal: runs op over the batch at ptr, as helios_process does
 *  (helios_window_close runs the window's close operator). */
export function processWith(ptr: usize, len: u32, op: Operator): u64 {
  calls++;
  if (len < <u32>BATCH_HEADER_SIZE || load<u32>(ptr + OFF_BATCH_MAGIC) != BATCH_MAGIC)
    return batchError(BATCH_BAD_INPUT, "helios sdk: input is not an HLB1 batch");
  const count = load<u32>(ptr + OFF_BATCH_COUNT);
  const end = ptr + len;
  const buf = hostBuffers.has(ptr) ? hostBuffers.get(ptr) : null; // null: not from helios_alloc, copy
  let p = ptr + BATCH_HEADER_SIZE;
  resetOutput();
  beginBatch();
  for (let i: u32 = 0; i < count; i++) {
    if (end - p < <usize>RECORD_HEADER_SIZE) { endBatch(); return batchError(BATCH_BAD_INPUT, "helios sdk: batch truncated in a record header"); }
    const kl = load<u32>(p + OFF_REC_KEY_LEN), vl = load<u32>(p + OFF_REC_VALUE_LEN), hl = load<u32>(p + OFF_REC_HEADERS_LEN);
    const body = p + RECORD_HEADER_SIZE;
    if (<u64>(end - body) < <u64>kl + <u64>vl + <u64>hl) { endBatch(); return batchError(BATCH_BAD_INPUT, "helios sdk: batch truncated in a record body"); }
    const r = record;
    r.load(view(keyView, buf, ptr, body, kl), view(valueView, buf, ptr, body + kl, vl), load<u32>(p + OFF_REC_PARTITION),
      load<i64>(p + OFF_REC_OFFSET), load<i64>(p + OFF_REC_TIMESTAMP), p + OFF_REC_ID, body + kl + vl, hl);
    p = body + kl + vl + hl;
    const markLen = outLen, markCount = outCount;
    const em = emitter;
    em.index = i;
    em.timestamp = r.timestamp;
    em.failed = false;
    beginRecord(em);
    op(r, em);
    if (em.failed) {
      // A failed record leaves nothing behind: no outputs, no state.
      rewindOutput(markLen, markCount);
      const m = bytes(em.failMessage);
      entry(ENTRY_KIND_FAILED, i, em.failCode, 0, 0, m.dataStart, m.length, 0, 0, 0);
    } else {
      commitRecord();
    }
  }
  const flushErr = flushBatch();
  endBatch();
  const result = flushErr !== null ? batchError(BATCH_OPERATOR_ERR, flushErr) : finishOutput();
  // The minimal runtime collects only when asked: here, between batches,
  // nothing the batch allocated is referenced from the stack any more.
  __collect();
  return result;
}

const emitter = new Emitter();
// The record and its views, reused: nothing is allocated per record.
const keyView = new Uint8Array(0), valueView = new Uint8Array(0);
const record = new Record(keyView, valueView, 0, 0, 0, 0, 0, 0);
