// count: keeps a running count per key in host state and emits
// {"key":K,"count":N} for every record. The key is the record key, or, with
// --config key_field=NAME, the string value of that top-level field of the
// JSON value (empty when absent or not a string). The count is stored as 8
// little-endian bytes.
import { ByteBuffer, Config, Emitter, FAIL_INVALID_INPUT, Record, appendJSONString, bytes, jsonField, jsonString, register, stateGetView, statePut } from "../../sdk/assemblyscript/assembly";
export * from "../../sdk/assemblyscript/assembly/exports";

let keyField = "";

function configure(cfg: Config): string | null {
  keyField = cfg.lookup("key_field", "");
  return null;
}

// Reused from record to record: the per-record path allocates nothing
// (with the record key; key_field's JSON lookup still allocates).
const line = new ByteBuffer(256);
const cnt = new Uint8Array(8);
const empty = new Uint8Array(0);
const head = bytes('{"key":'), mid = bytes(',"count":'); // encoded once

function count(r: Record, out: Emitter): void {
  let key = r.key;
  if (keyField.length > 0) {
    const f = jsonField(r.value, keyField);
    if (!f.valid) {
      out.fail("count: value is not a JSON object", FAIL_INVALID_INPUT);
      return;
    }
    const s = f.found ? jsonString(f.raw) : null;
    key = s !== null ? s : empty;
  }
  let n: u64 = 0;
  const v = stateGetView(key);
  if (out.failed) return;
  if (v !== null) {
    if (v.length != 8) {
      out.fail("count: corrupt state");
      return;
    }
    n = load<u64>(v.dataStart);
  }
  n++;
  store<u64>(cnt.dataStart, n);
  statePut(key, cnt);
  line.reset();
  line.append(head);
  appendJSONString(line, key);
  line.append(mid);
  line.appendUint(n);
  line.push(0x7d);
  out.emit(key, line.view());
}

register(count, configure);
