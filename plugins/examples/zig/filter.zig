//! filter: keeps the records whose JSON value has a top-level field equal
//! to a configured value (--config field=user --config equals=u1). A string
//! field is compared with its decoded text, any other value with its
//! compact JSON text. A value that is not a JSON object fails the record.
const std = @import("std");
const helios = @import("helios.zig");
pub const panic = helios.panic;

var text = std.ArrayList(u8).init(std.heap.wasm_allocator);

fn configure() ?[]const u8 {
    const f = helios.config("field") orelse "";
    if (f.len == 0 or helios.config("equals") == null) return "filter: needs --config field=NAME --config equals=VALUE";
    return null;
}

fn keep(r: *const helios.Record, out: *helios.Emitter) void {
    const raw = switch (helios.jsonField(r.value, helios.config("field").?)) {
        .not_object => return out.fail(helios.fail_invalid_input, "filter: value is not a JSON object"),
        .absent => return,
        .found => |raw| raw,
    };
    text.resize(raw.len) catch @trap();
    const t = helios.jsonString(raw, text.items) orelse helios.jsonCompact(raw, text.items);
    if (std.mem.eql(u8, t, helios.config("equals").?)) out.emit(r.key, r.value);
}

comptime {
    helios.register(keep, configure);
}
