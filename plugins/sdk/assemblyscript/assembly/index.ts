// AssemblyScript guest SDK for helios-wasm operators (ABI v1, see abi.md).
//
//   import { Record, Emitter, register } from "@helios-wasm/sdk/assembly";
//   export * from "@helios-wasm/sdk/assembly/exports";
//
//   function upper(r: Record, out: Emitter): void { ... out.emit(r.key, v); }
//   register(upper);
//
// Build: npx asc op.ts -O3 --noAssert --use abort= -o op.wasm
//
// The SDK exports the ABI functions (via ./exports), decodes each batch,
// encodes the output in a buffer outside the garbage-collected heap, and
// keeps a record's state writes until the record succeeds. AssemblyScript
// has no exceptions: fail a record with out.fail(message, code).

import {
  BATCH_BAD_INPUT, BATCH_HEADER_SIZE, BATCH_MAGIC, ENTRY_HEADER_SIZE, ENTRY_KIND_FAILED, ENTRY_KIND_RECORD,
  FAIL_GENERIC, FAIL_INVALID_INPUT, FAIL_RETRYABLE, FAIL_USER_BASE, LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_WARN,
  MAX_STATE_KEY_LEN, MAX_STATE_VALUE_LEN, OFF_BATCH_COUNT, OFF_BATCH_MAGIC, OFF_OUT_COUNT, OFF_OUT_MAGIC, OFF_OUT_STATUS,
  OFF_REC_HEADERS_LEN, OFF_REC_ID, OFF_REC_KEY_LEN, OFF_REC_OFFSET, OFF_REC_PARTITION, OFF_REC_TIMESTAMP,
  OFF_REC_VALUE_LEN, OUTPUT_HEADER_SIZE, OUTPUT_MAGIC, REC_ID_LEN, RECORD_HEADER_SIZE, STATUS_BAD_ARGUMENT, STATUS_NOT_ALLOWED, STATUS_NOT_FOUND, STATUS_OK,
  STATUS_TOO_LARGE, VERSION,
} from "./abi";

export { FAIL_GENERIC, FAIL_RETRYABLE, FAIL_INVALID_INPUT, FAIL_USER_BASE, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
export { jsonField, jsonString, jsonCompact, JSONField } from "./json";

@external("helios_v1", "log")
declare function hostLog(level: i32, ptr: usize, len: u32): void;
@external("helios_v1", "state_get")
declare function hostStateGet(kp: usize, kl: u32, bp: usize, bc: u32): i32;
@external("helios_v1", "state_put")
declare function hostStatePut(kp: usize, kl: u32, vp: usize, vl: u32): i32;
@external("helios_v1", "state_delete")
declare function hostStateDelete(kp: usize, kl: u32): i32;

/** Copies len bytes at ptr into a new array. */
function copyIn(ptr: usize, len: u32): Uint8Array {
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

/** A view of len bytes at ptr inside buf (which starts at base). */
function view(buf: ArrayBuffer | null, base: usize, ptr: usize, len: u32): Uint8Array {
  if (buf === null) return copyIn(ptr, len);
  return Uint8Array.wrap(buf, <i32>(ptr - base), <i32>len);
}

/** One input record. Its arrays are views of the host's batch, valid only
 *  during the operator call: copy them (slice()) to keep them. */
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

  /** The message id (16 UUID bytes), stable across replays. */
  get id(): Uint8Array {
    return copyIn(this.idPtr, REC_ID_LEN);
  }

  /** The value of the first header called name, or null. */
  header(name: string): Uint8Array | null {
    const want = bytes(name);
    let p = this.headersPtr;
    const end = p + this.headersLen;
    if (this.headersLen < 4) return null;
    const n = load<u32>(p);
    p += 4;
    for (let i: u32 = 0; i < n; i++) {
      if (end - p < 4) return null;
      const kl = load<u32>(p);
      if (end - p - 4 < kl) return null;
      const kp = p + 4;
      p = kp + kl;
      if (end - p < 4) return null;
      const vl = load<u32>(p);
      if (end - p - 4 < vl) return null;
      const vp = p + 4;
      p = vp + vl;
      if (kl == <u32>want.length && memory.compare(kp, want.dataStart, kl) == 0) return copyIn(vp, vl);
    }
    return null;
  }
}

// ---- output buffer (abi.md, "Output buffer"), outside the GC heap ----
let outPtr: usize = 0;
let outCap: usize = 0;
let outLen: usize = 0;
let outCount: u32 = 0;

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

function entry(kind: u32, index: u32, code: u32, kp: usize, kl: u32, vp: usize, vl: u32, hp: usize, hl: u32, ts: i64): void {
  reserve(<usize>ENTRY_HEADER_SIZE + kl + vl + hl);
  const e = outPtr + outLen;
  store<u32>(e, kind, 0); store<u32>(e, index, 4); store<u32>(e, kl, 8);
  store<u32>(e, vl, 12); store<u32>(e, hl, 16); store<u32>(e, code, 20); store<i64>(e, ts, 24);
  outLen += ENTRY_HEADER_SIZE;
  put(kp, kl); put(vp, vl); put(hp, hl);
  outCount++;
}

function resetOutput(): void {
  outLen = 0;
  outCount = 0;
  reserve(OUTPUT_HEADER_SIZE);
  memory.fill(outPtr, 0, OUTPUT_HEADER_SIZE);
  store<u32>(outPtr + OFF_OUT_MAGIC, OUTPUT_MAGIC);
  outLen = OUTPUT_HEADER_SIZE;
}

function batchError(status: u32, msg: string): u64 {
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

// ---- state (abi.md, "State is transactional") ----
let inBatch = false;
let current: Emitter = new Emitter();
const pendingKeys: Uint8Array[] = [];
const pendingValues: Array<Uint8Array | null> = []; // null: delete
let getBuf = new Uint8Array(256);

/** Fails the current record for a host status, with the message and code
 *  every SDK uses: limits and misuse fail it, a host failure is retryable. */
function failStatus(op: string, st: i32): void {
  if (st == STATUS_NOT_ALLOWED) current.fail("helios: state is only available while processing a batch");
  else if (st == STATUS_TOO_LARGE)
    current.fail("helios: " + op + ": key or value too large (limits: key " + MAX_STATE_KEY_LEN.toString() +
      ", value " + MAX_STATE_VALUE_LEN.toString() + " bytes)");
  else if (st == STATUS_BAD_ARGUMENT) current.fail("helios: " + op + ": host rejected a buffer");
  else current.fail("helios: " + op + ": host status " + st.toString(), FAIL_RETRYABLE);
}

/** The state stored under key, or null. Reads see this record's and this
 *  batch's writes. A host failure fails the record (retryable). */
export function stateGet(key: Uint8Array): Uint8Array | null {
  if (!inBatch) return null;
  for (let i = pendingKeys.length - 1; i >= 0; i--) {
    if (equal(pendingKeys[i], key)) {
      const v = pendingValues[i];
      return v === null ? null : v.slice(0);
    }
  }
  for (;;) {
    const n = hostStateGet(key.dataStart, key.length, getBuf.dataStart, getBuf.length);
    if (n == STATUS_NOT_FOUND) return null;
    if (n < 0) {
      failStatus("state get", n);
      return null;
    }
    if (n <= getBuf.length) return getBuf.slice(0, n);
    getBuf = new Uint8Array(n);
  }
  return null; // unreachable
}

function write(key: Uint8Array, value: Uint8Array | null): void {
  if (!inBatch) return;
  if (<u32>key.length > <u32>MAX_STATE_KEY_LEN || (value !== null && <u32>value.length > <u32>MAX_STATE_VALUE_LEN)) {
    failStatus("state put", STATUS_TOO_LARGE);
    return;
  }
  pendingKeys.push(key.slice(0));
  pendingValues.push(value === null ? null : value.slice(0));
}

/** Stores value under key if the record succeeds. */
export function statePut(key: Uint8Array, value: Uint8Array): void {
  write(key, value);
}

/** Removes key if the record succeeds. */
export function stateDelete(key: Uint8Array): void {
  write(key, null);
}

function flushWrites(): void {
  for (let i = 0; i < pendingKeys.length; i++) {
    const k = pendingKeys[i], v = pendingValues[i];
    const st = v === null ? hostStateDelete(k.dataStart, k.length) : hostStatePut(k.dataStart, k.length, v.dataStart, v.length);
    if (st != STATUS_OK) {
      failStatus("state write", st);
      return;
    }
  }
}

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
  let p = ptr;
  const end = ptr + len;
  let ok = len == 0 || len >= 4;
  const n: u32 = len >= 4 ? load<u32>(p) : 0;
  p += 4;
  for (let i: u32 = 0; ok && i < n; i++) {
    let kv = new Array<string>(2);
    for (let j = 0; j < 2; j++) {
      if (end - p < 4 || end - p - 4 < <usize>load<u32>(p)) { ok = false; break; }
      const l = load<u32>(p);
      kv[j] = String.UTF8.decodeUnsafe(p + 4, l);
      p += 4 + l;
    }
    if (ok) { config.keys.push(kv[0]); config.values.push(kv[1]); }
  }
  const msg = ok ? onInit(config) : "helios sdk: malformed config block";
  if (msg === null) return 0;
  initError = bytes(msg);
  return (<u64>initError.dataStart << 32) | <u64>initError.length;
}

export function processImpl(ptr: usize, len: u32): u64 {
  if (len < <u32>BATCH_HEADER_SIZE || load<u32>(ptr + OFF_BATCH_MAGIC) != BATCH_MAGIC)
    return batchError(BATCH_BAD_INPUT, "helios sdk: input is not an HLB1 batch");
  const count = load<u32>(ptr + OFF_BATCH_COUNT);
  const end = ptr + len;
  const buf = hostBuffers.has(ptr) ? hostBuffers.get(ptr) : null; // null: not from helios_alloc, copy
  let p = ptr + BATCH_HEADER_SIZE;
  resetOutput();
  inBatch = true;
  for (let i: u32 = 0; i < count; i++) {
    if (end - p < <usize>RECORD_HEADER_SIZE) { inBatch = false; return batchError(BATCH_BAD_INPUT, "helios sdk: batch truncated in a record header"); }
    const kl = load<u32>(p + OFF_REC_KEY_LEN), vl = load<u32>(p + OFF_REC_VALUE_LEN), hl = load<u32>(p + OFF_REC_HEADERS_LEN);
    const body = p + RECORD_HEADER_SIZE;
    if (<u64>(end - body) < <u64>kl + <u64>vl + <u64>hl) { inBatch = false; return batchError(BATCH_BAD_INPUT, "helios sdk: batch truncated in a record body"); }
    const r = new Record(view(buf, ptr, body, kl), view(buf, ptr, body + kl, vl), load<u32>(p + OFF_REC_PARTITION),
      load<i64>(p + OFF_REC_OFFSET), load<i64>(p + OFF_REC_TIMESTAMP), p + OFF_REC_ID, body + kl + vl, hl);
    p = body + kl + vl + hl;
    const markLen = outLen, markCount = outCount;
    const em = emitter;
    em.index = i;
    em.timestamp = r.timestamp;
    em.failed = false;
    current = em;
    pendingKeys.length = 0;
    pendingValues.length = 0;
    operator(r, em);
    if (!em.failed) flushWrites();
    if (em.failed) {
      // A failed record leaves nothing behind: no outputs, no state.
      outLen = markLen;
      outCount = markCount;
      const m = bytes(em.failMessage);
      entry(ENTRY_KIND_FAILED, i, em.failCode, 0, 0, m.dataStart, m.length, 0, 0, 0);
    }
  }
  inBatch = false;
  pendingKeys.length = 0;
  pendingValues.length = 0;
  store<u32>(outPtr + OFF_OUT_COUNT, outCount);
  // The minimal runtime collects only when asked: here, between batches,
  // nothing the batch allocated is referenced from the stack any more.
  __collect();
  return (<u64>outPtr << 32) | <u64>outLen;
}

const emitter = new Emitter();
