// filter: keeps the records whose JSON value has a top-level field equal to
// a configured value (--config field=user --config equals=u1). A string
// field is compared with its decoded text, any other value with its compact
// JSON text. A value that is not a JSON object fails the record.
import { Config, Emitter, FAIL_INVALID_INPUT, Record, bytes, equal, jsonCompact, jsonField, jsonString, register } from "../../sdk/assemblyscript/assembly";
export * from "../../sdk/assemblyscript/assembly/exports";

let field = "";
let equals = new Uint8Array(0);

function configure(cfg: Config): string | null {
  const f = cfg.get("field"), e = cfg.get("equals");
  if (f === null || f.length == 0 || e === null) return "filter: needs --config field=NAME --config equals=VALUE";
  field = f;
  equals = bytes(e);
  return null;
}

function keep(r: Record, out: Emitter): void {
  const f = jsonField(r.value, field);
  if (!f.valid) {
    out.fail("filter: value is not a JSON object", FAIL_INVALID_INPUT);
    return;
  }
  if (!f.found) return;
  const s = jsonString(f.raw);
  const text = s !== null ? s : jsonCompact(f.raw);
  if (equal(text, equals)) out.emit(r.key, r.value);
}

register(keep, configure);
