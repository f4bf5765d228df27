// uppercase: ASCII-upper-cases each record's value and keeps its key.
import { ByteBuffer, Emitter, Record, register } from "../../sdk/assemblyscript/assembly";
export * from "../../sdk/assemblyscript/assembly/exports";

const buf = new ByteBuffer(256); // reused: nothing is allocated per record

function upper(r: Record, out: Emitter): void {
  const v = r.value;
  const n = v.length, src = v.dataStart;
  buf.reset();
  const dst = buf.reserve(n);
  // Raw loads and stores: indexing a view re-reads its fields every byte.
  for (let i = 0; i < n; i++) {
    const c = load<u8>(src + <usize>i);
    store<u8>(dst + <usize>i, c >= 0x61 && c <= 0x7a ? c - 0x20 : c);
  }
  buf.written(n);
  out.emit(r.key, buf.view());
}

register(upper);
