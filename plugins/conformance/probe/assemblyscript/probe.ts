// The SDK probe (see ../README.md): the AssemblyScript SDK's whole surface.
import { Emitter, FAIL_INVALID_INPUT, FAIL_RETRYABLE, Header, LOG_INFO, Record, bytes, config, log, register, stateDelete, stateGet, statePut, text } from "../../../sdk/assemblyscript/assembly";
export * from "../../../sdk/assemblyscript/assembly/exports";

function get(k: string): Uint8Array {
  const v = stateGet(bytes(k));
  return v !== null ? v : bytes("absent");
}

function probe(r: Record, out: Emitter): void {
  const args = text(r.value).split(" ");
  const cmd = args[0];
  const a1 = args.length > 1 ? args[1] : "", a2 = args.length > 2 ? args[2] : "";
  if (cmd == "put" || cmd == "fail") {
    statePut(bytes(a1), bytes(a2));
    if (cmd == "fail") {
      out.emit(bytes(a1), bytes("dropped"));
      out.fail("probe: failed on request", 1001);
      return;
    }
    out.emit(bytes(a1), get(a1));
  } else if (cmd == "del") {
    stateDelete(bytes(a1));
    out.emit(bytes(a1), get(a1));
  } else if (cmd == "get") {
    out.emit(bytes(a1), get(a1));
  } else if (cmd == "retry") {
    out.fail("probe: try again", FAIL_RETRYABLE);
  } else if (cmd == "invalid") {
    out.fail("probe: bad input", FAIL_INVALID_INPUT);
  } else if (cmd == "hdr") {
    const h = r.header(a1);
    out.emit(bytes(a1), h !== null ? h : bytes("no header"));
  } else if (cmd == "rec") {
    out.emitRecord(bytes("r"), bytes("v"), [new Header(bytes("a"), bytes("1")), new Header(bytes("b"), bytes(""))], 42);
  } else if (cmd == "cfg") {
    out.emit(bytes(a1), bytes(config.lookup(a1, "unset")));
  } else if (cmd == "multi") {
    const n = a1.length > 0 ? I32.parseInt(a1) : 0;
    for (let i = 0; i < n; i++) out.emit(bytes("m"), bytes(i.toString()));
  } else if (cmd == "log") {
    log(LOG_INFO, a1);
    out.emit(bytes("log"), bytes(a1));
  } else {
    out.emit(r.key, bytes("unknown command"));
  }
}

register(probe);
