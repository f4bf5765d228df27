// count: keeps a running count per key in host state and emits
// {"key":K,"count":N} for every record. The key is the record key, or, with
// --config key_field=NAME, the string value of that top-level field of the
// JSON value (empty when absent or not a string). The count is stored as 8
// little-endian bytes.
#include <charconv>
#include <cstring>
#include <string>

#include "helios.h"

static std::string key_field, key, line;

static const char *configure() {
	const char *f = helios_config_get("key_field");
	key_field = f ? f : "";
	return nullptr;
}

// Appends s as a JSON string, copying runs of plain bytes at once.
static void append_json_string(std::string &dst, const std::string &s) {
	static const char hex[] = "0123456789abcdef";
	dst += '"';
	size_t run = 0;
	for (size_t i = 0; i < s.size(); i++) {
		unsigned char c = s[i];
		if (c >= 0x20 && c != '"' && c != '\\') continue;
		dst.append(s, run, i - run);
		run = i + 1;
		if (c == '"' || c == '\\') {
			dst += '\\';
			dst += char(c);
		} else if (c == '\n') {
			dst += "\\n";
		} else {
			dst += "\\u00";
			dst += hex[c >> 4];
			dst += hex[c & 15];
		}
	}
	dst.append(s, run, std::string::npos);
	dst += '"';
}

static helios_bytes bytes(const std::string &s) { return helios_bytes{reinterpret_cast<const uint8_t *>(s.data()), uint32_t(s.size())}; }

static int count(const helios_record *r, helios_emitter *out) {
	key.assign(reinterpret_cast<const char *>(r->key.data), r->key.len);
	if (!key_field.empty()) {
		helios_bytes raw;
		int found = helios_json_field(r->value, key_field.c_str(), &raw);
		if (found < 0) return helios_fail(out, HELIOS_FAIL_INVALID_INPUT, "count: value is not a JSON object");
		key.clear();
		if (found) {
			key.resize(raw.len);
			int32_t n = helios_json_string(raw, reinterpret_cast<uint8_t *>(key.data()));
			key.resize(n < 0 ? 0 : size_t(n));
		}
	}
	helios_bytes v;
	uint64_t n = 0;
	int32_t st = helios_state_get(bytes(key), &v);
	if (st < 0) return helios_fail_status(out, "state get", st);
	if (st == 1) {
		if (v.len != 8) return helios_fail(out, HELIOS_FAIL_GENERIC, "count: corrupt state");
		std::memcpy(&n, v.data, 8);
	}
	n++;
	if ((st = helios_state_put(bytes(key), helios_bytes{reinterpret_cast<const uint8_t *>(&n), 8})) < 0) return helios_fail_status(out, "state put", st);
	line = "{\"key\":";
	append_json_string(line, key);
	line += ",\"count\":";
	char digits[20];
	line.append(digits, std::to_chars(digits, digits + sizeof digits, n).ptr);
	line += '}';
	helios_emit(out, bytes(key), bytes(line));
	return HELIOS_OK;
}

HELIOS_OPERATOR_WITH_INIT(count, configure)
