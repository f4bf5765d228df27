// Event-time window operators (abi.md, "Windows"), mirroring the Go SDK's
// window package. The host assigns records to windows, calls the operator
// once per window of a batch with its state scoped to that window, and
// calls helios_window_close when a window closes. An aggregate is two
// functions:
//
//   import { Window, registerWindow } from "@helios-wasm/sdk/assembly/window";
//   export * from "@helios-wasm/sdk/assembly/exports";
//   export * from "@helios-wasm/sdk/assembly/window_exports"; // helios_window_close
//
//   // Folds r into its key's accumulator (stateGetView / statePut reach the
//   // window's state only) and appends that key to `key`; out.fail fails r.
//   function add(r: Record, w: Window, key: ByteBuffer, out: Emitter): void { ... }
//   // Emits key's result in w from its state.
//   function result(key: Uint8Array, w: Window, out: Emitter): void { ... }
//   registerWindow(add, result);
//
// add runs from helios_process for every record, followed by result for
// its key under --emit updates; result runs from helios_window_close for
// every state key of a closing window under --emit final (nothing is
// emitted at close under updates). Keep one state entry per key.
import { ByteBuffer } from "./bytes";
import { Emitter } from "./output";
import { Config, InitFunc, Record, callCount, register } from "./index";
import { OFF_WINDOW_END, OFF_WINDOW_FLAGS, OFF_WINDOW_START, WINDOW_FLAG_CLOSING, WINDOW_FLAG_UPDATES, WINDOW_INFO_SIZE } from "./abi";

@external("helios_v1", "window_get")
declare function hostWindowGet(ptr: usize, cap: u32): i32;

/** The event-time window [startMs, endMs) of the current call. */
export class Window {
  /** Unix milliseconds */
  startMs: i64 = 0;
  endMs: i64 = 0;
  /** --emit updates: the result after every record, nothing at close */
  updates: bool = false;
  /** this is the window's close call */
  closing: bool = false;
}

export type AddFunc = (r: Record, w: Window, key: ByteBuffer, out: Emitter) => void;
export type ResultFunc = (key: Uint8Array, w: Window, out: Emitter) => void;

const cur = new Window();
let curOK = false;
let curCall: u32 = 0; // callCount() + 1 when cur was read
const desc = memory.data(WINDOW_INFO_SIZE);

/** The window of the current call (read from the host once per call and
 *  reused: do not keep it), or null outside a window call (a pipeline
 *  without windows, or outside the operator). */
export function currentWindow(): Window | null {
  if (curCall != callCount() + 1) {
    curCall = callCount() + 1;
    curOK = hostWindowGet(desc, WINDOW_INFO_SIZE) == WINDOW_INFO_SIZE;
    if (curOK) {
      const flags = load<u32>(desc + OFF_WINDOW_FLAGS);
      cur.startMs = load<i64>(desc + OFF_WINDOW_START);
      cur.endMs = load<i64>(desc + OFF_WINDOW_END);
      cur.updates = (flags & WINDOW_FLAG_UPDATES) != 0;
      cur.closing = (flags & WINDOW_FLAG_CLOSING) != 0;
    }
  }
  return curOK ? cur : null;
}

const NO_WINDOW = "window operator: this call has no window: run the pipeline with --window (and --event-time)";

function noAdd(r: Record, w: Window, key: ByteBuffer, out: Emitter): void { out.fail("helios sdk: no window aggregate registered: call registerWindow()"); }
function noResult(key: Uint8Array, w: Window, out: Emitter): void { out.fail("helios sdk: no window aggregate registered: call registerWindow()"); }
function acceptAll(cfg: Config): string | null { return null; }

let addFn: AddFunc = noAdd;
let resultFn: ResultFunc = noResult;
const key = new ByteBuffer(64);

function addOp(r: Record, out: Emitter): void {
  const w = currentWindow();
  if (w === null) {
    out.fail(NO_WINDOW);
    return;
  }
  key.reset();
  addFn(r, w, key, out);
  if (!out.failed && w.updates) resultFn(key.view(), w, out);
}

/** SDK-internal: the operator of helios_window_close; each record stands
 *  for one state key of the closing window. */
export function closeOp(r: Record, out: Emitter): void {
  const w = currentWindow();
  if (w === null) {
    out.fail(NO_WINDOW);
    return;
  }
  if (w.updates) return; // every result was emitted as it changed
  resultFn(r.key, w, out);
}

/** Registers a window aggregate and, optionally, a configuration check.
 *  Call it at the top level of the entry file, which also re-exports
 *  ./window_exports. */
export function registerWindow(add: AddFunc, result: ResultFunc, init: InitFunc = acceptAll): void {
  addFn = add;
  resultFn = result;
  register(addOp, init);
}

// @ts-ignore: decorator
@inline function pad(dst: ByteBuffer, n: u64, width: i32): void {
  let d = 1;
  for (let m = n; m >= 10; m /= 10) d++;
  for (let i = d; i < width; i++) dst.push(0x30);
  dst.appendUint(n);
}

/** Appends a window bound in the examples' format, the same bytes in every
 *  language (the Go SDK's window.AppendTime): RFC 3339 in UTC,
 *  2006-01-02T15:04:05Z, with .000 milliseconds only when they are not zero. */
export function appendTime(dst: ByteBuffer, ms: i64): void {
  let days = ms / 86400000, rem = ms % 86400000;
  if (rem < 0) { rem += 86400000; days--; }
  // Days since 1970-01-01 to a civil date (proleptic Gregorian).
  const z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
  const doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  const day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0) dst.push(0x2d);
  pad(dst, <u64>(year < 0 ? -year : year), 4);
  dst.push(0x2d);
  pad(dst, <u64>month, 2);
  dst.push(0x2d);
  pad(dst, <u64>day, 2);
  dst.push(0x54);
  pad(dst, <u64>(rem / 3600000), 2);
  dst.push(0x3a);
  pad(dst, <u64>(rem / 60000 % 60), 2);
  dst.push(0x3a);
  pad(dst, <u64>(rem / 1000 % 60), 2);
  if (rem % 1000 != 0) {
    dst.push(0x2e);
    pad(dst, <u64>(rem % 1000), 3);
  }
  dst.push(0x5a);
}
