/* count: keeps a running count per key in host state and emits
 * {"key":K,"count":N} for every record. The key is the record key, or, with
 * --config key_field=NAME, the string value of that top-level field of the
 * JSON value (empty when absent or not a string). The count is stored as 8
 * little-endian bytes. */
#include <stdio.h>

#include "helios.h"

static const char *key_field;
static helios_buf line, keybuf;

static const char *configure(void) {
	const char *f = helios_config_get("key_field");
	key_field = f && *f ? strdup(f) : NULL;
	return NULL;
}

static void append_json_string(helios_buf *b, helios_bytes s) {
	static const char hex[] = "0123456789abcdef";
	helios_buf_append(b, "\"", 1);
	for (uint32_t i = 0; i < s.len; i++) {
		uint8_t c = s.data[i];
		if (c == '"' || c == '\\') {
			uint8_t e[2] = {'\\', c};
			helios_buf_append(b, e, 2);
		} else if (c == '\n') {
			helios_buf_append(b, "\\n", 2);
		} else if (c < 0x20) {
			uint8_t e[6] = {'\\', 'u', '0', '0', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
			helios_buf_append(b, e, 6);
		} else {
			helios_buf_append(b, &c, 1);
		}
	}
	helios_buf_append(b, "\"", 1);
}

static int count(const helios_record *r, helios_emitter *out) {
	helios_bytes key = r->key;
	if (key_field) {
		helios_bytes raw;
		int found = helios_json_field(r->value, key_field, &raw);
		if (found < 0) return helios_fail(out, HELIOS_FAIL_INVALID_INPUT, "count: value is not a JSON object");
		keybuf.len = 0;
		if (found) {
			helios_buf_reserve(&keybuf, raw.len);
			int32_t n = helios_json_string(raw, keybuf.data);
			keybuf.len = n < 0 ? 0 : (uint32_t)n;
		}
		key.data = keybuf.data;
		key.len = keybuf.len;
	}
	helios_bytes v;
	uint64_t n = 0;
	int32_t st = helios_state_get(key, &v);
	if (st < 0) return helios_fail_status(out, "state get", st);
	if (st == 1) {
		if (v.len != 8) return helios_fail(out, HELIOS_FAIL_GENERIC, "count: corrupt state");
		memcpy(&n, v.data, 8);
	}
	n++;
	helios_bytes nb = {(const uint8_t *)&n, 8};
	if ((st = helios_state_put(key, nb)) < 0) return helios_fail_status(out, "state put", st);
	char digits[24];
	int dn = snprintf(digits, sizeof digits, "%llu", (unsigned long long)n);
	line.len = 0;
	helios_buf_append(&line, "{\"key\":", 7);
	append_json_string(&line, key);
	helios_buf_append(&line, ",\"count\":", 9);
	helios_buf_append(&line, digits, (uint32_t)dn);
	helios_buf_append(&line, "}", 1);
	helios_bytes value = {line.data, line.len};
	helios_emit(out, key, value);
	return HELIOS_OK;
}

HELIOS_OPERATOR_WITH_INIT(count, configure)
