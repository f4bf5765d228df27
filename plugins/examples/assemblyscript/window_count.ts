// window_count: a window operator. It counts the records of each key in
// each event-time window and emits
//   {"key":K,"window_start":"RFC3339","window_end":"RFC3339","count":N}
// once per key and window when the window closes (--emit final), or after
// every record (--emit updates); the same bytes as the Go example. Run it
// with --event-time and --window. The key is the record key, or, with
// --config key_field=NAME, the string value of that top-level field of the
// JSON value (empty when absent or not a string; a value that is not a JSON
// object fails the record). The count is stored as 8 little-endian bytes in
// the window's state.
import { ByteBuffer, Config, Emitter, FAIL_INVALID_INPUT, Record, appendJSONString, bytes, jsonField, jsonString, stateGetView, statePut } from "../../sdk/assemblyscript/assembly";
import { Window, appendTime, registerWindow } from "../../sdk/assemblyscript/assembly/window";
export * from "../../sdk/assemblyscript/assembly/exports";
export * from "../../sdk/assemblyscript/assembly/window_exports";

let keyField = "";

function configure(cfg: Config): string | null {
  keyField = cfg.lookup("key_field", "");
  return null;
}

// Reused from record to record (key_field's JSON lookup still allocates).
const line = new ByteBuffer(256);
const cnt = new Uint8Array(8);
const head = bytes('{"key":'), start = bytes(',"window_start":"'), end = bytes('","window_end":"'), mid = bytes('","count":');

/** key's count, 0 when absent; fails out (and returns 0) on corrupt state. */
function count(key: Uint8Array, out: Emitter): u64 {
  const v = stateGetView(key);
  if (out.failed || v === null) return 0;
  if (v.length != 8) {
    out.fail("window_count: corrupt state");
    return 0;
  }
  return load<u64>(v.dataStart);
}

function add(r: Record, w: Window, key: ByteBuffer, out: Emitter): void {
  if (keyField.length == 0) {
    key.append(r.key);
  } else {
    const f = jsonField(r.value, keyField);
    if (!f.valid) {
      out.fail("window_count: value is not a JSON object", FAIL_INVALID_INPUT);
      return;
    }
    const s = f.found ? jsonString(f.raw) : null;
    if (s !== null) key.append(s);
  }
  const k = key.view();
  const n = count(k, out) + 1;
  if (out.failed) return;
  store<u64>(cnt.dataStart, n);
  statePut(k, cnt);
}

function result(key: Uint8Array, w: Window, out: Emitter): void {
  const n = count(key, out);
  if (out.failed) return;
  line.reset();
  line.append(head);
  appendJSONString(line, key);
  line.append(start);
  appendTime(line, w.startMs);
  line.append(end);
  appendTime(line, w.endMs);
  line.append(mid);
  line.appendUint(n);
  line.push(0x7d);
  out.emit(key, line.view());
}

registerWindow(add, result, configure);
