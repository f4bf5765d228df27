//! ABI v1 (abi.md) for the Zig examples, written straight from the spec:
//! the exports, the batch and output layouts, state and the JSON field
//! rules every helios SDK shares. An operator file does:
//!
//!     const helios = @import("helios.zig");
//!     pub const panic = helios.panic;
//!     fn op(r: *const helios.Record, out: *helios.Emitter) void { ... }
//!     comptime { helios.register(op, null); }
const std = @import("std");

const allocator = std.heap.wasm_allocator;

// abi.md: layout and codes.
const batch_magic: u32 = 0x31424c48; // "HLB1"
const output_magic: u32 = 0x314f4c48; // "HLO1"
const batch_header_size = 16;
const record_header_size = 48;
const entry_header_size = 32;
const status_not_found: i32 = -1;
const status_bad_argument: i32 = -2;
const status_too_large: i32 = -3;
const status_not_allowed: i32 = -4;
const max_state_key_len = 64 << 10;
const max_state_value_len = 16 << 20;
pub const fail_generic: u32 = 1;
pub const fail_retryable: u32 = 2;
pub const fail_invalid_input: u32 = 3;

extern "helios_v1" fn log(level: i32, ptr: [*]const u8, len: u32) void;
extern "helios_v1" fn state_get(kp: [*]const u8, kl: u32, bp: [*]u8, bc: u32) i32;
extern "helios_v1" fn state_put(kp: [*]const u8, kl: u32, vp: [*]const u8, vl: u32) i32;
extern "helios_v1" fn state_delete(kp: [*]const u8, kl: u32) i32;

/// A trap, so that the host isolates the record and starts a fresh instance.
pub fn panic(msg: []const u8, _: ?*std.builtin.StackTrace, _: ?usize) noreturn {
    _ = msg;
    @trap();
}

pub const Record = struct {
    key: []const u8,
    value: []const u8,
    headers: []const u8,
    partition: u32,
    offset: i64,
    timestamp: i64,
    id: [16]u8,
};

var out = std.ArrayList(u8).init(allocator);
var out_count: u32 = 0;

fn put32(v: u32) void {
    out.writer().writeIntLittle(u32, v) catch @trap();
}

fn entry(kind: u32, index: u32, code: u32, key: []const u8, value: []const u8, ts: i64) void {
    out.ensureUnusedCapacity(entry_header_size + key.len + value.len) catch @trap();
    for ([_]u32{ kind, index, @intCast(key.len), @intCast(value.len), 0, code }) |v| put32(v);
    out.writer().writeIntLittle(i64, ts) catch @trap();
    out.appendSliceAssumeCapacity(key);
    out.appendSliceAssumeCapacity(value);
    out_count += 1;
}

pub const Emitter = struct {
    index: u32,
    timestamp: i64,
    fail_code: u32 = 0,
    fail_msg: []const u8 = "",

    /// Outputs a record with the input's timestamp and no headers.
    pub fn emit(self: *Emitter, key: []const u8, value: []const u8) void {
        entry(0, self.index, 0, key, value, self.timestamp);
    }

    /// Fails this record with a code and a static message.
    pub fn fail(self: *Emitter, code: u32, msg: []const u8) void {
        if (self.fail_code == 0) {
            self.fail_code = code;
            self.fail_msg = msg;
        }
    }

    /// Fails this record for a negative host status, like every SDK.
    pub fn failStatus(self: *Emitter, comptime op: []const u8, st: i32) void {
        switch (st) {
            status_not_allowed => self.fail(fail_generic, "helios: state is only available while processing a batch"),
            status_too_large => self.fail(fail_generic, "helios: " ++ op ++ ": key or value too large (limits: key 65536, value 16777216 bytes)"),
            status_bad_argument => self.fail(fail_generic, "helios: " ++ op ++ ": host rejected a buffer"),
            else => self.fail(fail_retryable, "helios: " ++ op ++ ": host failure"),
        }
    }
};

// ---- state: a record's writes are kept until it succeeds, then the
// batch's (last write per key) are handed to the host at the end of the
// batch: one host call per key and batch instead of two per record ----
const Write = struct { key: []u8, value: ?[]u8 };
var writes = std.ArrayList(Write).init(allocator);
var batch = std.StringArrayHashMap(?[]u8).init(allocator);
var get_buf: []u8 = &[_]u8{};

/// Takes over a succeeded record's writes (and their memory) into the batch's.
fn commitRecord() void {
    for (writes.items) |w| {
        const gop = batch.getOrPut(w.key) catch @trap();
        if (gop.found_existing) {
            allocator.free(w.key);
            if (gop.value_ptr.*) |old| allocator.free(old);
        }
        gop.value_ptr.* = w.value;
    }
    writes.clearRetainingCapacity();
}

fn flushBatch() i32 {
    var it = batch.iterator();
    while (it.next()) |e| {
        const k = e.key_ptr.*;
        const st = if (e.value_ptr.*) |v|
            state_put(k.ptr, @intCast(k.len), v.ptr, @intCast(v.len))
        else
            state_delete(k.ptr, @intCast(k.len));
        if (st != 0) return st;
    }
    return 0;
}

fn clearBatch() void {
    var it = batch.iterator();
    while (it.next()) |e| {
        allocator.free(e.key_ptr.*);
        if (e.value_ptr.*) |v| allocator.free(v);
    }
    batch.clearRetainingCapacity();
}

fn clearWrites() void {
    for (writes.items) |w| {
        allocator.free(w.key);
        if (w.value) |v| allocator.free(v);
    }
    writes.clearRetainingCapacity();
}

/// The value under key (valid until the next call), null when absent, or a
/// negative status.
pub fn stateGet(key: []const u8) union(enum) { found: []const u8, absent, status: i32 } {
    var i = writes.items.len;
    while (i > 0) {
        i -= 1;
        const w = writes.items[i];
        if (std.mem.eql(u8, w.key, key)) return if (w.value) |v| .{ .found = v } else .absent;
    }
    if (batch.get(key)) |bv| return if (bv) |v| .{ .found = v } else .absent;
    if (get_buf.len == 0) get_buf = allocator.alloc(u8, 256) catch @trap();
    while (true) {
        const n = state_get(key.ptr, @intCast(key.len), get_buf.ptr, @intCast(get_buf.len));
        if (n == status_not_found) return .absent;
        if (n < 0) return .{ .status = n };
        const len: usize = @intCast(n);
        if (len <= get_buf.len) return .{ .found = get_buf[0..len] };
        allocator.free(get_buf);
        get_buf = allocator.alloc(u8, len) catch @trap();
    }
}

/// Stores value under key if the record succeeds: 0 or a negative status.
pub fn statePut(key: []const u8, value: []const u8) i32 {
    if (key.len > max_state_key_len or value.len > max_state_value_len) return status_too_large;
    const k = allocator.dupe(u8, key) catch @trap();
    const v = allocator.dupe(u8, value) catch @trap();
    writes.append(.{ .key = k, .value = v }) catch @trap();
    return 0;
}

/// Removes key if the record succeeds: 0 or a negative status.
pub fn stateDelete(key: []const u8) i32 {
    if (key.len > max_state_key_len) return status_too_large;
    const k = allocator.dupe(u8, key) catch @trap();
    writes.append(.{ .key = k, .value = null }) catch @trap();
    return 0;
}

// ---- configuration ----
var config_block: []u8 = &[_]u8{};

fn rd32(b: []const u8, off: usize) u32 {
    return std.mem.readIntLittle(u32, b[off..][0..4]);
}

/// The value of --config key (the last when repeated), or null.
pub fn config(key: []const u8) ?[]const u8 {
    var i = config_pairs.items.len;
    while (i > 0) {
        i -= 1;
        if (std.mem.eql(u8, config_pairs.items[i][0], key)) return config_pairs.items[i][1];
    }
    return null;
}

var config_pairs = std.ArrayList([2][]const u8).init(allocator);

/// Splits the config block into its pairs once, at init. A malformed block
/// leaves no pairs.
fn parseConfig(b: []const u8) void {
    config_pairs.clearRetainingCapacity();
    if (b.len < 4) return;
    var p: usize = 4;
    var n = rd32(b, 0);
    while (n > 0) : (n -= 1) {
        var kv: [2][]const u8 = undefined;
        for (&kv) |*f| {
            if (b.len - p < 4 or b.len - p - 4 < rd32(b, p)) return config_pairs.clearRetainingCapacity();
            const l = rd32(b, p);
            f.* = b[p + 4 .. p + 4 + l];
            p += 4 + l;
        }
        config_pairs.append(kv) catch @trap();
    }
}

pub fn logInfo(msg: []const u8) void {
    log(1, msg.ptr, @intCast(msg.len));
}

// ---- exports ----
pub const OperatorFn = fn (r: *const Record, out: *Emitter) void;
/// Returns null to accept the configuration, or an error message.
pub const InitFn = fn () ?[]const u8;

fn pack(p: [*]const u8, len: usize) u64 {
    return @as(u64, @intFromPtr(p)) << 32 | @as(u64, len);
}

/// A batch-level failure: status 1 the input could not be decoded, 2 the
/// operator failed the batch.
fn batchError(status: u32, msg: []const u8) u64 {
    out.clearRetainingCapacity();
    for ([_]u32{ output_magic, status, @intCast(msg.len), 0 }) |v| put32(v);
    out.appendSlice(msg) catch @trap();
    return pack(out.items.ptr, out.items.len);
}

fn processBatch(in: []const u8, comptime op: OperatorFn) u64 {
    if (in.len < batch_header_size or rd32(in, 0) != batch_magic) return batchError(1, "helios: input is not an HLB1 batch");
    const count = rd32(in, 4);
    clearBatch(); // a batch that failed to decode may have left writes behind
    out.clearRetainingCapacity();
    out_count = 0;
    for ([_]u32{ output_magic, 0, 0, 0 }) |v| put32(v);
    var pos: usize = batch_header_size;
    var i: u32 = 0;
    while (i < count) : (i += 1) {
        if (in.len - pos < record_header_size) return batchError(1, "helios: batch truncated in a record header");
        const h = in[pos .. pos + record_header_size];
        const kl: usize = rd32(h, 0);
        const vl: usize = rd32(h, 4);
        const hl: usize = rd32(h, 8);
        const body = pos + record_header_size;
        if (in.len - body < kl + vl + hl) return batchError(1, "helios: batch truncated in a record body");
        const r = Record{
            .key = in[body .. body + kl],
            .value = in[body + kl .. body + kl + vl],
            .headers = in[body + kl + vl .. body + kl + vl + hl],
            .partition = rd32(h, 12),
            .offset = std.mem.readIntLittle(i64, h[16..24]),
            .timestamp = std.mem.readIntLittle(i64, h[24..32]),
            .id = h[32..48].*,
        };
        pos = body + kl + vl + hl;
        const mark_len = out.items.len;
        const mark_count = out_count;
        var em = Emitter{ .index = i, .timestamp = r.timestamp };
        clearWrites();
        op(&r, &em);
        if (em.fail_code == 0) commitRecord();
        if (em.fail_code != 0) {
            // A failed record leaves nothing behind.
            out.shrinkRetainingCapacity(mark_len);
            out_count = mark_count;
            entry(1, i, em.fail_code, "", em.fail_msg, 0);
        }
    }
    clearWrites();
    const st = flushBatch();
    clearBatch();
    if (st != 0) return batchError(2, "helios: state write refused by the host");
    std.mem.writeIntLittle(u32, out.items[8..12], out_count);
    return pack(out.items.ptr, out.items.len);
}

fn abiVersion() callconv(.C) u32 {
    return 1;
}

fn alloc(len: u32) callconv(.C) u32 {
    const b = allocator.alloc(u8, @max(len, 1)) catch @trap();
    return @intCast(@intFromPtr(b.ptr));
}

fn dealloc(ptr: u32, len: u32) callconv(.C) void {
    const p: [*]u8 = @ptrFromInt(ptr);
    allocator.free(p[0..@max(len, 1)]);
}

fn slice(ptr: u32, len: u32) []const u8 {
    if (len == 0) return &[_]u8{};
    const p: [*]const u8 = @ptrFromInt(ptr);
    return p[0..len];
}

/// Emits the ABI exports for op and an optional configuration check.
pub fn register(comptime op: OperatorFn, comptime init: ?InitFn) void {
    const S = struct {
        fn process(ptr: u32, len: u32) callconv(.C) u64 {
            return processBatch(slice(ptr, len), op);
        }
        fn initialize(ptr: u32, len: u32) callconv(.C) u64 {
            config_block = allocator.dupe(u8, slice(ptr, len)) catch @trap();
            parseConfig(config_block);
            if (init) |f| if (f()) |msg| return pack(msg.ptr, msg.len);
            return 0;
        }
    };
    @export(abiVersion, .{ .name = "helios_abi_version" });
    @export(alloc, .{ .name = "helios_alloc" });
    @export(dealloc, .{ .name = "helios_dealloc" });
    @export(S.initialize, .{ .name = "helios_init" });
    @export(S.process, .{ .name = "helios_process" });
}

// ---- JSON: the top-level field rules every helios SDK shares ----
pub const max_json_depth = 64;

const Parser = struct {
    b: []const u8,
    i: usize = 0,

    fn peek(p: *Parser) ?u8 {
        return if (p.i < p.b.len) p.b[p.i] else null;
    }
    fn ws(p: *Parser) void {
        while (p.peek()) |c| {
            if (c != ' ' and c != '\t' and c != '\n' and c != '\r') return;
            p.i += 1;
        }
    }
    fn eat(p: *Parser, c: u8) bool {
        if (p.peek() == c) {
            p.i += 1;
            return true;
        }
        return false;
    }
    fn value(p: *Parser, depth: usize) bool {
        const c = p.peek() orelse return false;
        return switch (c) {
            '"' => p.str(),
            '{', '[' => depth < max_json_depth and p.container(depth + 1),
            't' => p.lit("true"),
            'f' => p.lit("false"),
            'n' => p.lit("null"),
            else => p.num(),
        };
    }
    fn container(p: *Parser, depth: usize) bool {
        const obj = p.b[p.i] == '{';
        const end: u8 = if (obj) '}' else ']';
        p.i += 1;
        p.ws();
        if (p.eat(end)) return true;
        while (true) {
            if (obj) {
                if (!p.str()) return false;
                p.ws();
                if (!p.eat(':')) return false;
                p.ws();
            }
            if (!p.value(depth)) return false;
            p.ws();
            if (p.eat(end)) return true;
            if (!p.eat(',')) return false;
            p.ws();
        }
    }
    fn str(p: *Parser) bool {
        if (!p.eat('"')) return false;
        while (p.peek()) |c| {
            p.i += 1;
            if (c == '"') return true;
            if (c < 0x20) return false;
            if (c == '\\') {
                const e = p.peek() orelse return false;
                p.i += 1;
                switch (e) {
                    '"', '\\', '/', 'b', 'f', 'n', 'r', 't' => {},
                    'u' => {
                        var k: usize = 0;
                        while (k < 4) : (k += 1) {
                            const hx = p.peek() orelse return false;
                            if (!std.ascii.isHex(hx)) return false;
                            p.i += 1;
                        }
                    },
                    else => return false,
                }
            }
        }
        return false;
    }
    fn lit(p: *Parser, s: []const u8) bool {
        if (!std.mem.startsWith(u8, p.b[p.i..], s)) return false;
        p.i += s.len;
        return true;
    }
    fn digits(p: *Parser) bool {
        const s = p.i;
        while (p.peek()) |c| {
            if (c < '0' or c > '9') break;
            p.i += 1;
        }
        return p.i > s;
    }
    fn num(p: *Parser) bool {
        _ = p.eat('-');
        if (!p.eat('0')) {
            const c = p.peek() orelse return false;
            if (c < '1' or c > '9') return false;
            _ = p.digits();
        }
        if (p.eat('.') and !p.digits()) return false;
        if (p.eat('e') or p.eat('E')) {
            if (!p.eat('+')) _ = p.eat('-');
            if (!p.digits()) return false;
        }
        return true;
    }
};

fn hex4(b: []const u8) u32 {
    var r: u32 = 0;
    for (b[0..4]) |c| r = r << 4 | (std.fmt.charToDigit(c, 16) catch 0);
    return r;
}

/// Decodes the JSON string literal raw into dst (raw.len bytes suffice);
/// null when raw is not a string.
pub fn jsonString(raw: []const u8, dst: []u8) ?[]u8 {
    var p = Parser{ .b = raw };
    if (!p.str() or p.i != raw.len) return null;
    var n: usize = 0;
    var i: usize = 1;
    while (i < raw.len - 1) {
        const c = raw[i];
        i += 1;
        if (c != '\\') {
            dst[n] = c;
            n += 1;
            continue;
        }
        const e = raw[i];
        i += 1;
        if (e == 'u') {
            var r = hex4(raw[i..]);
            i += 4;
            if (r >= 0xd800 and r < 0xdc00 and i + 6 <= raw.len - 1 and raw[i] == '\\' and raw[i + 1] == 'u') {
                const lo = hex4(raw[i + 2 ..]);
                if (lo >= 0xdc00 and lo < 0xe000) {
                    r = 0x10000 + ((r - 0xd800) << 10) + (lo - 0xdc00);
                    i += 6;
                }
            }
            if (r >= 0xd800 and r < 0xe000) r = 0xfffd;
            n += std.unicode.utf8Encode(@intCast(r), dst[n..]) catch unreachable;
            continue;
        }
        dst[n] = switch (e) {
            'b' => 8,
            'f' => 12,
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            else => e,
        };
        n += 1;
    }
    return dst[0..n];
}

/// Copies raw into dst (raw.len bytes suffice) without the whitespace
/// outside its strings.
pub fn jsonCompact(raw: []const u8, dst: []u8) []u8 {
    var n: usize = 0;
    var in_str = false;
    var i: usize = 0;
    while (i < raw.len) : (i += 1) {
        const c = raw[i];
        if (in_str) {
            dst[n] = c;
            n += 1;
            if (c == '\\' and i + 1 < raw.len) {
                i += 1;
                dst[n] = raw[i];
                n += 1;
            } else if (c == '"') in_str = false;
        } else if (c != ' ' and c != '\t' and c != '\n' and c != '\r') {
            in_str = c == '"';
            dst[n] = c;
            n += 1;
        }
    }
    return dst[0..n];
}

var key_scratch = std.ArrayList(u8).init(allocator);

fn keyEquals(raw: []const u8, name: []const u8) bool {
    key_scratch.resize(raw.len) catch @trap();
    const t = jsonString(raw, key_scratch.items) orelse return false;
    return std.mem.eql(u8, t, name);
}

pub const Field = union(enum) { not_object, absent, found: []const u8 };

/// Member name of the JSON object in value.
pub fn jsonField(value: []const u8, name: []const u8) Field {
    var p = Parser{ .b = value };
    var res: Field = .absent;
    p.ws();
    if (!p.eat('{')) return .not_object;
    p.ws();
    if (!p.eat('}')) {
        while (true) {
            const ks = p.i;
            if (!p.str()) return .not_object;
            const key = value[ks..p.i];
            p.ws();
            if (!p.eat(':')) return .not_object;
            p.ws();
            const vs = p.i;
            if (!p.value(1)) return .not_object;
            if (keyEquals(key, name)) res = .{ .found = value[vs..p.i] };
            p.ws();
            if (p.eat('}')) break;
            if (!p.eat(',')) return .not_object;
            p.ws();
        }
    }
    p.ws();
    return if (p.i == value.len) res else .not_object;
}
