/* count: keeps a running count per key in host state and emits
 * {"key":K,"count":N} for every record. The key is the record key, or, with
 * --config key_field=NAME, the string value of that top-level field of the
 * JSON value (empty when absent or not a string). The count is stored as 8
 * little-endian bytes. */
#include "helios.h"

static const char *key_field;
static helios_buf line, keybuf;

static const char *configure(void) {
	const char *f = helios_config_get("key_field");
	key_field = f && *f ? strdup(f) : NULL;
	return NULL;
}

/* Appends n in decimal. */
static void append_uint(helios_buf *b, uint64_t n) {
	char d[20];
	int i = sizeof d;
	do {
		d[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	helios_buf_append(b, d + i, (uint32_t)(sizeof d - i));
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
	line.len = 0;
	helios_buf_append(&line, "{\"key\":", 7);
	helios_json_append_string(&line, key);
	helios_buf_append(&line, ",\"count\":", 9);
	append_uint(&line, n);
	helios_buf_append(&line, "}", 1);
	helios_bytes value = {line.data, line.len};
	helios_emit(out, key, value);
	return HELIOS_OK;
}

HELIOS_OPERATOR_WITH_INIT(count, configure)
