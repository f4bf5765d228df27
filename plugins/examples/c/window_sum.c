/* window_sum: a window operator. It sums a JSON numeric field (--config
 * field=NAME, required) of each key's records in each event-time window and
 * emits
 *     {"key":K,"window_start":"RFC3339","window_end":"RFC3339","sum":S}
 * once per key and window when the window closes (--emit final), or after
 * every record (--emit updates); the same bytes as the Go example.
 *
 * The sum is a double (8 little-endian bytes of state), added in record
 * order. S is printed as Go's strconv.FormatFloat(S, 'f', -1, 64): the
 * shortest decimal that reads back as the same double, in plain notation
 * (3, 0.30000000000000004, -2.5, 1000000000000000000000), +Inf, -Inf or
 * NaN. A record whose field is missing or not a JSON number (or out of a
 * double's range) fails (code 3). Keys and window bounds are written as in
 * window_count; --config key_field=NAME takes the key from a field as there. */
#include <math.h>

#include "helios.h"
#include "helios_window.h"

#define NAME "window_sum"

static const char *key_field, *field;
static char *err_field;
static helios_buf line, num;

static const char *configure(void) {
	const char *f = helios_config_get("key_field");
	key_field = f && *f ? strdup(f) : NULL;
	f = helios_config_get("field");
	if (!f || !*f) return NAME ": --config field=NAME is required: the JSON numeric field to sum";
	field = strdup(f);
	/* The message of a record without the field, quoted as Go's %q does
	 * for plain names. */
	size_t n = strlen(field) + 64;
	err_field = (char *)malloc(n);
	snprintf(err_field, n, NAME ": field \"%s\" is missing or not a JSON number", field);
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

/* Appends x as Go's strconv.FormatFloat(x, 'f', -1, 64) does: the fewest
 * significant digits that strtod reads back as x, in plain notation. At
 * each precision p, printf's correctly rounded %.*e is the candidate, or,
 * when it misses (x a power of two, whose lower neighbour is nearer), the
 * next p-digit decimal on the other side, as Go's shortest formatting
 * finds it. */
static void append_float(helios_buf *b, double x) {
	char e[40], d[24];
	if (isnan(x) || isinf(x)) {
		helios_buf_append(b, isnan(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf", isnan(x) ? 3 : 4);
		return;
	}
	if (signbit(x)) helios_buf_append(b, "-", 1), x = -x;
	unsigned long long m = 0;
	int k = 0; /* x reads back from m × 10^k */
	for (int p = 1; p <= 17; p++) {
		snprintf(e, sizeof e, "%.*e", p - 1, x); /* D.DDDe±XX */
		m = 0;
		for (const char *s = e; *s != 'e'; s++)
			if (*s != '.') m = m * 10 + (unsigned long long)(*s - '0');
		k = atoi(strchr(e, 'e') + 1) - (p - 1);
		if (strtod(e, NULL) == x || p == 17) break;
		unsigned long long alt = strtod(e, NULL) < x ? m + 1 : m - 1;
		snprintf(e, sizeof e, "%llue%d", alt, k);
		if (strtod(e, NULL) == x) {
			m = alt;
			break;
		}
	}
	for (; m != 0 && m % 10 == 0; m /= 10) k++;
	int n = snprintf(d, sizeof d, "%llu", m), point = n + k; /* digits before the point */
	if (point <= 0) {
		helios_buf_append(b, "0.", 2);
		for (int i = 0; i < -point; i++) helios_buf_append(b, "0", 1);
		helios_buf_append(b, d, (uint32_t)n);
	} else if (point >= n) {
		helios_buf_append(b, d, (uint32_t)n);
		for (int i = n; i < point; i++) helios_buf_append(b, "0", 1);
	} else {
		helios_buf_append(b, d, (uint32_t)point);
		helios_buf_append(b, ".", 1);
		helios_buf_append(b, d + point, (uint32_t)(n - point));
	}
}

/* Sets *s to key's sum (0 when absent). */
static int sum(helios_bytes key, double *s, helios_emitter *out) {
	helios_bytes v;
	int32_t st = helios_state_get(key, &v);
	*s = 0;
	if (st < 0) return helios_fail_status(out, "state get", st);
	if (st == 1) {
		if (v.len != 8) return helios_fail(out, HELIOS_FAIL_GENERIC, NAME ": corrupt state");
		memcpy(s, v.data, 8);
	}
	return HELIOS_OK;
}

static int add(const helios_record *r, const helios_window *w, helios_buf *keybuf, helios_emitter *out) {
	(void)w;
	helios_bytes raw;
	int found = helios_json_field(r->value, field, &raw);
	if (found < 0) return helios_fail(out, HELIOS_FAIL_INVALID_INPUT, NAME ": value is not a JSON object");
	/* A JSON number (validated by helios_json_field) starts with - or a digit. */
	if (!found || raw.len == 0 || !(raw.data[0] == '-' || (raw.data[0] >= '0' && raw.data[0] <= '9')))
		return helios_fail(out, HELIOS_FAIL_INVALID_INPUT, err_field);
	num.len = 0;
	helios_buf_append(&num, raw.data, raw.len);
	helios_buf_append(&num, "", 1);
	double x = strtod((const char *)num.data, NULL);
	if (isinf(x)) return helios_fail(out, HELIOS_FAIL_INVALID_INPUT, err_field); /* out of range, as Go's ParseFloat */
	if (key_of(r, keybuf, out) != HELIOS_OK) return -1;
	helios_bytes key = {keybuf->data, keybuf->len};
	double s;
	if (sum(key, &s, out) != HELIOS_OK) return -1;
	s += x;
	helios_bytes sb = {(const uint8_t *)&s, 8};
	int32_t st = helios_state_put(key, sb);
	return st < 0 ? helios_fail_status(out, "state put", st) : HELIOS_OK;
}

static int result(helios_bytes key, const helios_window *w, helios_emitter *out) {
	double s;
	if (sum(key, &s, out) != HELIOS_OK) return -1;
	begin_line(key, w);
	helios_buf_append(&line, "\"sum\":", 6);
	append_float(&line, s);
	helios_buf_append(&line, "}", 1);
	helios_bytes value = {line.data, line.len};
	helios_emit(out, key, value);
	return HELIOS_OK;
}

HELIOS_WINDOW_OPERATOR_WITH_INIT(add, result, configure)
