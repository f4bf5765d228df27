// split: one record per word of each value (ASCII whitespace separates
// words: space, \t, \n, \v, \f, \r), keeping the key.
import { Emitter, Record, register } from "../../sdk/assemblyscript/assembly";
export * from "../../sdk/assemblyscript/assembly/exports";

function isSpace(c: u8): bool {
  return c == 0x20 || (c >= 0x09 && c <= 0x0d);
}

function split(r: Record, out: Emitter): void {
  const v = r.value;
  let i = 0;
  while (i < v.length) {
    while (i < v.length && isSpace(v[i])) i++;
    let j = i;
    while (j < v.length && !isSpace(v[j])) j++;
    if (j > i) out.emit(r.key, v.subarray(i, j));
    i = j;
  }
}

register(split);
