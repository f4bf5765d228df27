//! uppercase: ASCII-upper-cases each record's value and keeps its key.
const std = @import("std");
const helios = @import("helios.zig");
pub const panic = helios.panic;

var buf = std.ArrayList(u8).init(std.heap.wasm_allocator);

fn upper(r: *const helios.Record, out: *helios.Emitter) void {
    buf.resize(r.value.len) catch @trap();
    _ = std.ascii.upperString(buf.items, r.value);
    out.emit(r.key, buf.items);
}

comptime {
    helios.register(upper, null);
}
