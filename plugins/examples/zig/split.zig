//! split: one record per word of each value (ASCII whitespace separates
//! words: space, \t, \n, \v, \f, \r), keeping the key.
const std = @import("std");
const helios = @import("helios.zig");
pub const panic = helios.panic;

fn split(r: *const helios.Record, out: *helios.Emitter) void {
    var words = std.mem.tokenizeAny(u8, r.value, " \t\n\x0b\x0c\r");
    while (words.next()) |w| out.emit(r.key, w);
}

comptime {
    helios.register(split, null);
}
