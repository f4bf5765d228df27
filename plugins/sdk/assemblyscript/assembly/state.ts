// Operator state (abi.md, "State is transactional"). Writes live in two
// layers in the guest: a record's, kept until the record succeeds (a failed
// record leaves no trace), then the batch's, the last write per key, handed
// to the host once at the end of the batch. Reads look in both before asking
// the host, so a stateful operator crosses into the host once per distinct
// key and batch instead of twice per record.

import {
  FAIL_RETRYABLE, MAX_STATE_KEY_LEN, MAX_STATE_VALUE_LEN, STATUS_BAD_ARGUMENT, STATUS_NOT_ALLOWED, STATUS_NOT_FOUND,
  STATUS_OK, STATUS_TOO_LARGE,
} from "./abi";
import { equal } from "./bytes";
import { Emitter } from "./output";

@external("helios_v1", "state_get")
declare function hostStateGet(kp: usize, kl: u32, bp: usize, bc: u32): i32;
@external("helios_v1", "state_put")
declare function hostStatePut(kp: usize, kl: u32, vp: usize, vl: u32): i32;
@external("helios_v1", "state_delete")
declare function hostStateDelete(kp: usize, kl: u32): i32;

let inBatch = false;
let current: Emitter = new Emitter();
let getBuf = new Uint8Array(256);

// This record's writes, in order (null value: delete).
const recordKeys: Uint8Array[] = [];
const recordValues: Array<Uint8Array | null> = [];

// The batch's: the last write per key, found through an open-addressing
// table of entry index + 1 (0: empty).
const batchKeys: Uint8Array[] = [];
const batchValues: Array<Uint8Array | null> = [];
let slots = new Int32Array(64);

function hash(k: Uint8Array): u32 { // FNV-1a
  let h: u32 = 2166136261;
  for (let i = 0; i < k.length; i++) h = (h ^ <u32>unchecked(k[i])) * 16777619;
  return h;
}

/** The slot holding key, or the empty slot where it would go. */
function slotOf(key: Uint8Array): i32 {
  const mask = slots.length - 1;
  let i = <i32>(hash(key) & <u32>mask);
  for (;;) {
    const s = unchecked(slots[i]);
    if (s == 0 || equal(batchKeys[s - 1], key)) return i;
    i = (i + 1) & mask;
  }
  return -1; // unreachable: the table is never full
}

function batchSet(key: Uint8Array, value: Uint8Array | null): void {
  if ((batchKeys.length + 1) * 2 > slots.length) {
    slots = new Int32Array(slots.length * 2);
    for (let i = 0; i < batchKeys.length; i++) slots[slotOf(batchKeys[i])] = i + 1;
  }
  const at = slotOf(key);
  const s = slots[at];
  if (s == 0) {
    batchKeys.push(key);
    batchValues.push(value);
    slots[at] = batchKeys.length;
  } else {
    batchValues[s - 1] = value;
  }
}

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
  for (let i = recordKeys.length - 1; i >= 0; i--) {
    if (equal(recordKeys[i], key)) {
      const v = recordValues[i];
      return v === null ? null : v.slice(0);
    }
  }
  if (batchKeys.length > 0) {
    const s = slots[slotOf(key)];
    if (s != 0) {
      const v = batchValues[s - 1];
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
  recordKeys.push(key.slice(0));
  recordValues.push(value === null ? null : value.slice(0));
}

/** Stores value under key if the record succeeds. */
export function statePut(key: Uint8Array, value: Uint8Array): void {
  write(key, value);
}

/** Removes key if the record succeeds. */
export function stateDelete(key: Uint8Array): void {
  write(key, null);
}

// ---- the batch's life cycle, driven by processImpl ----

export function beginBatch(): void {
  inBatch = true;
  batchKeys.length = 0;
  batchValues.length = 0;
  slots.fill(0);
}

export function beginRecord(em: Emitter): void {
  current = em;
  recordKeys.length = 0;
  recordValues.length = 0;
}

/** Takes over a succeeded record's writes into the batch's. */
export function commitRecord(): void {
  for (let i = 0; i < recordKeys.length; i++) batchSet(recordKeys[i], recordValues[i]);
  recordKeys.length = 0;
  recordValues.length = 0;
}

/** Hands the batch's writes to the host; the failure's message, or null. */
export function flushBatch(): string | null {
  for (let i = 0; i < batchKeys.length; i++) {
    const k = batchKeys[i], v = batchValues[i];
    const st = v === null ? hostStateDelete(k.dataStart, k.length) : hostStatePut(k.dataStart, k.length, v.dataStart, v.length);
    if (st != STATUS_OK) return "helios: state write: host status " + st.toString();
  }
  return null;
}

export function endBatch(): void {
  inBatch = false;
  recordKeys.length = 0;
  recordValues.length = 0;
  batchKeys.length = 0;
  batchValues.length = 0;
}
