// uppercase: ASCII-upper-cases each record's value and keeps its key.
import { Emitter, Record, register } from "../../sdk/assemblyscript/assembly";
export * from "../../sdk/assemblyscript/assembly/exports";

function upper(r: Record, out: Emitter): void {
  const v = r.value;
  for (let i = 0; i < v.length; i++) {
    const c = unchecked(v[i]);
    if (c >= 0x61 && c <= 0x7a) unchecked((v[i] = c - 0x20));
  }
  out.emit(r.key, v);
}

register(upper);
