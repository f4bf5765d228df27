// uppercase: ASCII-upper-cases each record's value and keeps its key.
import { Emitter, Record, register } from "../../sdk/assemblyscript/assembly";
export * from "../../sdk/assemblyscript/assembly/exports";

let buf = new Uint8Array(256);

function upper(r: Record, out: Emitter): void {
  const n = r.value.length;
  if (buf.length < n) buf = new Uint8Array(n * 2);
  for (let i = 0; i < n; i++) {
    const c = unchecked(r.value[i]);
    unchecked((buf[i] = c >= 0x61 && c <= 0x7a ? c - 0x20 : c));
  }
  out.emit(r.key, buf.subarray(0, n));
}

register(upper);
