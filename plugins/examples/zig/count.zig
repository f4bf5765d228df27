//! count: keeps a running count per key in host state and emits
//! {"key":K,"count":N} for every record. The key is the record key, or,
//! with --config key_field=NAME, the string value of that top-level field of
//! the JSON value (empty when absent or not a string). The count is stored
//! as 8 little-endian bytes.
const std = @import("std");
const helios = @import("helios.zig");
pub const panic = helios.panic;

const alloc = std.heap.wasm_allocator;
var key_buf = std.ArrayList(u8).init(alloc);
var line = std.ArrayList(u8).init(alloc);

fn appendJSONString(w: anytype, s: []const u8) !void {
    try w.writeByte('"');
    for (s) |c| switch (c) {
        '"', '\\' => try w.writeAll(&[_]u8{ '\\', c }),
        '\n' => try w.writeAll("\\n"),
        0...9, 11...0x1f => try w.print("\\u{x:0>4}", .{c}),
        else => try w.writeByte(c),
    };
    try w.writeByte('"');
}

fn count(r: *const helios.Record, out: *helios.Emitter) void {
    var key = r.key;
    if (helios.config("key_field")) |field| if (field.len > 0) {
        key = switch (helios.jsonField(r.value, field)) {
            .not_object => return out.fail(helios.fail_invalid_input, "count: value is not a JSON object"),
            .absent => "",
            .found => |raw| blk: {
                key_buf.resize(raw.len) catch @trap();
                break :blk helios.jsonString(raw, key_buf.items) orelse "";
            },
        };
    };
    var n: u64 = switch (helios.stateGet(key)) {
        .absent => 0,
        .status => |st| return out.failStatus("state get", st),
        .found => |v| if (v.len == 8) std.mem.readIntLittle(u64, v[0..8]) else return out.fail(helios.fail_generic, "count: corrupt state"),
    };
    n += 1;
    var nb: [8]u8 = undefined;
    std.mem.writeIntLittle(u64, &nb, n);
    const st = helios.statePut(key, &nb);
    if (st < 0) return out.failStatus("state put", st);
    line.clearRetainingCapacity();
    const w = line.writer();
    w.writeAll("{\"key\":") catch @trap();
    appendJSONString(w, key) catch @trap();
    w.print(",\"count\":{d}}}", .{n}) catch @trap();
    out.emit(key, line.items);
}

comptime {
    helios.register(count, null);
}
