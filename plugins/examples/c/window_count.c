/* window_count: a window operator. It counts the records of each key in
 * each event-time window and emits
 *     {"key":K,"window_start":"RFC3339","window_end":"RFC3339","count":N}
 * once per key and window when the window closes (--emit final), or after
 * every record (--emit updates); the same bytes as the Go example. Run it
 * with --event-time and --window. The key is the record key, or, with
 * --config key_field=NAME, the string value of that top-level field of the
 * JSON value (empty when absent or not a string; a value that is not a
 * JSON object fails the record). The count is stored as 8 little-endian
 * bytes in the window's state. */
#include "helios.h"
#include "helios_window.h"

#define NAME "window_count"

static const char *key_field;
static helios_buf line;

static const char *configure(void) {
	const char *f = helios_config_get("key_field");
	key_field = f && *f ? strdup(f) : NULL;
	return NULL;
}

/* Appends the record's key to *key: the record key, or the string value of
 * the key_field member (empty when absent or not a string). */
static int key_of(const helios_record *r, helios_buf *key, helios_emitter *out) {
	if (!key_field) {
		helios_buf_append(key, r->key.data, r->key.len);
		return HELIOS_OK;
	}
	helios_bytes raw;
	int found = helios_json_field(r->value, key_field, &raw);
	if (found < 0) return helios_fail(out, HELIOS_FAIL_INVALID_INPUT, NAME ": value is not a JSON object");
	if (found) {
		helios_buf_reserve(key, raw.len);
		int32_t n = helios_json_string(raw, key->data);
		key->len = n < 0 ? 0 : (uint32_t)n;
	}
	return HELIOS_OK;
}

/* Appends {"key":K,"window_start":"...","window_end":"...", to line. */
static void begin_line(helios_bytes key, const helios_window *w) {
	line.len = 0;
	helios_buf_append(&line, "{\"key\":", 7);
	helios_json_append_string(&line, key);
	helios_buf_append(&line, ",\"window_start\":\"", 17);
	helios_window_append_time(&line, w->start_ms);
	helios_buf_append(&line, "\",\"window_end\":\"", 16);
	helios_window_append_time(&line, w->end_ms);
	helios_buf_append(&line, "\",", 2);
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

/* Sets *n to key's count (0 when absent). */
static int count(helios_bytes key, uint64_t *n, helios_emitter *out) {
	helios_bytes v;
	int32_t st = helios_state_get(key, &v);
	*n = 0;
	if (st < 0) return helios_fail_status(out, "state get", st);
	if (st == 1) {
		if (v.len != 8) return helios_fail(out, HELIOS_FAIL_GENERIC, NAME ": corrupt state");
		memcpy(n, v.data, 8);
	}
	return HELIOS_OK;
}

static int add(const helios_record *r, const helios_window *w, helios_buf *keybuf, helios_emitter *out) {
	(void)w;
	uint64_t n;
	if (key_of(r, keybuf, out) != HELIOS_OK) return -1;
	helios_bytes key = {keybuf->data, keybuf->len};
	if (count(key, &n, out) != HELIOS_OK) return -1;
	n++;
	helios_bytes nb = {(const uint8_t *)&n, 8};
	int32_t st = helios_state_put(key, nb);
	return st < 0 ? helios_fail_status(out, "state put", st) : HELIOS_OK;
}

static int result(helios_bytes key, const helios_window *w, helios_emitter *out) {
	uint64_t n;
	if (count(key, &n, out) != HELIOS_OK) return -1;
	begin_line(key, w);
	helios_buf_append(&line, "\"count\":", 8);
	append_uint(&line, n);
	helios_buf_append(&line, "}", 1);
	helios_bytes value = {line.data, line.len};
	helios_emit(out, key, value);
	return HELIOS_OK;
}

HELIOS_WINDOW_OPERATOR_WITH_INIT(add, result, configure)
