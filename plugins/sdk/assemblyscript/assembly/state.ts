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
import { retarget } from "./bytes";
import { Emitter } from "./output";

@external("helios_v1", "state_get")
declare function hostStateGet(kp: usize, kl: u32, bp: usize, bc: u32): i32;
@external("helios_v1", "state_put")
declare function hostStatePut(kp: usize, kl: u32, vp: usize, vl: u32): i32;
@external("helios_v1", "state_delete")
declare function hostStateDelete(kp: usize, kl: u32): i32;

let inBatch = false;
let current: Emitter = new Emitter();

// Every write of the batch, in order: its key and value bytes in one arena
// (an ArrayBuffer reset every batch, so reads can be views of it) and four
// i32 per write in ents: key offset, key length, value offset, value length
// (-1: delete). Nothing is allocated per record: the arrays only grow.
let arena = new ArrayBuffer(4096);
let arenaLen: i32 = 0;
let ents = new Int32Array(256);
let nEnts: i32 = 0;
// The current record's writes are ents[recStart..nEnts); a failed record's
// are dropped by going back to the committed lengths.
let recStart: i32 = 0;
let committedEnts: i32 = 0;
let committedArena: i32 = 0;

// The batch's layer: one write per key (the first, whose value commitRecord
// replaces with later ones), found through an open-addressing table of
// write index + 1 (0: empty); order lists them in first-write order.
let slots = new Int32Array(64);
let order = new Int32Array(64);
let nOrder: i32 = 0;

// Host reads land in getBuf; stateGetView returns view, retargeted.
let getBuf = new ArrayBuffer(256);
const view = new Uint8Array(0);

// @ts-ignore: decorator
@inline function entKeyOff(e: i32): i32 { return unchecked(ents[e << 2]); }
// @ts-ignore: decorator
@inline function entKeyLen(e: i32): i32 { return unchecked(ents[(e << 2) + 1]); }
// @ts-ignore: decorator
@inline function entValOff(e: i32): i32 { return unchecked(ents[(e << 2) + 2]); }
// @ts-ignore: decorator
@inline function entValLen(e: i32): i32 { return unchecked(ents[(e << 2) + 3]); }

function hash(p: usize, n: i32): u32 { // FNV-1a
  let h: u32 = 2166136261;
  for (let i = 0; i < n; i++) h = (h ^ <u32>load<u8>(p + <usize>i)) * 16777619;
  return h;
}

function keyIs(e: i32, kp: usize, kl: i32): bool {
  return entKeyLen(e) == kl && memory.compare(changetype<usize>(arena) + <usize>entKeyOff(e), kp, <usize>kl) == 0;
}

/** The slot holding the key at kp, or the empty slot where it would go. */
function slotOf(kp: usize, kl: i32): i32 {
  const mask = slots.length - 1;
  let i = <i32>(hash(kp, kl) & <u32>mask);
  for (;;) {
    const s = unchecked(slots[i]);
    if (s == 0 || keyIs(s - 1, kp, kl)) return i;
    i = (i + 1) & mask;
  }
  return -1; // unreachable: the table is never full
}

/** Makes room for n more arena bytes; returns the offset they go at. */
function arenaReserve(n: i32): i32 {
  const need = arenaLen + n;
  if (need > arena.byteLength) {
    let c = arena.byteLength * 2;
    while (c < need) c *= 2;
    const a = new ArrayBuffer(c);
    memory.copy(changetype<usize>(a), changetype<usize>(arena), <usize>arenaLen);
    arena = a; // views of the old one keep it alive until the batch ends
  }
  const at = arenaLen;
  arenaLen = need;
  return at;
}

function batchSet(e: i32): void {
  if ((nOrder + 1) * 2 > slots.length) {
    slots = new Int32Array(slots.length * 2);
    for (let i = 0; i < nOrder; i++) {
      const o = unchecked(order[i]);
      unchecked((slots[slotOf(changetype<usize>(arena) + <usize>entKeyOff(o), entKeyLen(o))] = o + 1));
    }
  }
  const at = slotOf(changetype<usize>(arena) + <usize>entKeyOff(e), entKeyLen(e));
  const s = unchecked(slots[at]);
  if (s == 0) {
    if (nOrder == order.length) {
      const o = new Int32Array(order.length * 2);
      o.set(order);
      order = o;
    }
    unchecked((order[nOrder++] = e));
    unchecked((slots[at] = e + 1));
  } else {
    unchecked((ents[((s - 1) << 2) + 2] = entValOff(e)));
    unchecked((ents[((s - 1) << 2) + 3] = entValLen(e)));
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

/** Looks key up in this record's and this batch's writes, then in the
 *  host: 1 found (at foundBuf + foundOff, foundLen bytes), 0 absent, or a
 *  negative host status. */
let foundBuf: ArrayBuffer = getBuf;
let foundOff: i32 = 0;
let foundLen: i32 = 0;

function find(key: Uint8Array): i32 {
  if (!inBatch) return STATUS_NOT_ALLOWED;
  const kp = key.dataStart, kl = key.length;
  let e = -1;
  for (let i = nEnts - 1; i >= recStart; i--) {
    if (keyIs(i, kp, kl)) { e = i; break; }
  }
  if (e < 0 && nOrder > 0) {
    const s = unchecked(slots[slotOf(kp, kl)]);
    if (s != 0) e = s - 1;
  }
  if (e >= 0) {
    const vl = entValLen(e);
    if (vl < 0) return 0;
    foundBuf = arena;
    foundOff = entValOff(e);
    foundLen = vl;
    return 1;
  }
  for (;;) {
    const n = hostStateGet(kp, kl, changetype<usize>(getBuf), getBuf.byteLength);
    if (n == STATUS_NOT_FOUND) return 0;
    if (n < 0) return n;
    if (n <= getBuf.byteLength) {
      foundBuf = getBuf;
      foundOff = 0;
      foundLen = n;
      return 1;
    }
    getBuf = new ArrayBuffer(n);
  }
  return 0; // unreachable
}

/** The state stored under key, or null, as a new array. Reads see this
 *  record's and this batch's writes. A host failure fails the record
 *  (retryable). stateGetView reads without allocating. */
export function stateGet(key: Uint8Array): Uint8Array | null {
  const v = stateGetView(key);
  return v === null ? null : v.slice(0);
}

/** Like stateGet, but returns a view that stays valid only until the next
 *  state call (slice() it to keep it), and allocates nothing: the same
 *  object is returned every time. */
export function stateGetView(key: Uint8Array): Uint8Array | null {
  const st = find(key);
  if (st > 0) return retarget(view, foundBuf, <usize>foundOff, foundLen);
  if (st < 0 && inBatch) failStatus("state get", st);
  return null;
}

function write(key: Uint8Array, value: Uint8Array | null): void {
  if (!inBatch) return;
  if (<u32>key.length > <u32>MAX_STATE_KEY_LEN || (value !== null && <u32>value.length > <u32>MAX_STATE_VALUE_LEN)) {
    failStatus("state put", STATUS_TOO_LARGE);
    return;
  }
  const kl = key.length, vl = value !== null ? value.length : 0;
  // Reserve first: key or value may be views of the arena, which growing
  // replaces (the old one stays alive, referenced by the view).
  const ko = arenaReserve(kl + vl);
  memory.copy(changetype<usize>(arena) + <usize>ko, key.dataStart, <usize>kl);
  if (value !== null) memory.copy(changetype<usize>(arena) + <usize>(ko + kl), value.dataStart, <usize>vl);
  if ((nEnts + 1) << 2 > ents.length) {
    const a = new Int32Array(ents.length * 2);
    a.set(ents);
    ents = a;
  }
  const b = nEnts << 2;
  unchecked((ents[b] = ko));
  unchecked((ents[b + 1] = kl));
  unchecked((ents[b + 2] = ko + kl));
  unchecked((ents[b + 3] = value !== null ? vl : -1));
  nEnts++;
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
  arenaLen = 0;
  nEnts = 0;
  recStart = 0;
  committedEnts = 0;
  committedArena = 0;
  nOrder = 0;
  slots.fill(0);
}

/** Starts a record, dropping the writes of the last one if it failed. */
export function beginRecord(em: Emitter): void {
  current = em;
  nEnts = committedEnts;
  arenaLen = committedArena;
  recStart = nEnts;
}

/** Takes over a succeeded record's writes into the batch's. */
export function commitRecord(): void {
  for (let e = recStart; e < nEnts; e++) batchSet(e);
  committedEnts = nEnts;
  committedArena = arenaLen;
  recStart = nEnts;
}

/** Hands the batch's writes to the host; the failure's message, or null. */
export function flushBatch(): string | null {
  for (let i = 0; i < nOrder; i++) {
    const e = unchecked(order[i]);
    const a = changetype<usize>(arena);
    const kp = a + <usize>entKeyOff(e), kl = <u32>entKeyLen(e), vl = entValLen(e);
    const st = vl < 0 ? hostStateDelete(kp, kl) : hostStatePut(kp, kl, a + <usize>entValOff(e), <u32>vl);
    if (st != STATUS_OK) return "helios: state write: host status " + st.toString();
  }
  return null;
}

export function endBatch(): void {
  inBatch = false;
  nEnts = 0;
  arenaLen = 0;
  committedEnts = 0;
  committedArena = 0;
  recStart = 0;
  nOrder = 0;
}
