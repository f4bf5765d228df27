// count: keeps a running count per key in host state and emits
// {"key":K,"count":N} for every record. The key is the record key, or, with
// --config key_field=NAME, the string value of that top-level field of the
// JSON value (empty when absent or not a string). The count is stored as 8
// little-endian bytes.
import { Config, Emitter, FAIL_INVALID_INPUT, Record, bytes, jsonField, jsonString, register, stateGet, statePut } from "../../sdk/assemblyscript/assembly";
export * from "../../sdk/assemblyscript/assembly/exports";

let keyField = "";

function configure(cfg: Config): string | null {
  keyField = cfg.lookup("key_field", "");
  return null;
}

const HEX = "0123456789abcdef";

function appendJSONString(dst: Array<u8>, s: Uint8Array): void {
  dst.push(0x22);
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c == 0x22 || c == 0x5c) { dst.push(0x5c); dst.push(c); }
    else if (c == 0x0a) { dst.push(0x5c); dst.push(0x6e); }
    else if (c < 0x20) {
      dst.push(0x5c); dst.push(0x75); dst.push(0x30); dst.push(0x30);
      dst.push(<u8>HEX.charCodeAt(c >> 4)); dst.push(<u8>HEX.charCodeAt(c & 15));
    } else dst.push(c);
  }
  dst.push(0x22);
}

function count(r: Record, out: Emitter): void {
  let key = r.key;
  if (keyField.length > 0) {
    const f = jsonField(r.value, keyField);
    if (!f.valid) {
      out.fail("count: value is not a JSON object", FAIL_INVALID_INPUT);
      return;
    }
    const s = f.found ? jsonString(f.raw) : null;
    key = s !== null ? s : new Uint8Array(0);
  }
  let n: u64 = 0;
  const v = stateGet(key);
  if (out.failed) return;
  if (v !== null) {
    if (v.length != 8) {
      out.fail("count: corrupt state");
      return;
    }
    n = load<u64>(v.dataStart);
  }
  n++;
  const nb = new Uint8Array(8);
  store<u64>(nb.dataStart, n);
  statePut(key, nb);
  const line = new Array<u8>();
  const head = bytes('{"key":'), mid = bytes(',"count":'), digits = bytes(n.toString());
  for (let i = 0; i < head.length; i++) line.push(head[i]);
  appendJSONString(line, key);
  for (let i = 0; i < mid.length; i++) line.push(mid[i]);
  for (let i = 0; i < digits.length; i++) line.push(digits[i]);
  line.push(0x7d);
  const value = new Uint8Array(line.length);
  for (let i = 0; i < line.length; i++) value[i] = line[i];
  out.emit(key, value);
}

register(count, configure);
