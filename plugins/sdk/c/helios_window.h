/*
 * helios_window.h: event-time window operators for the C and C++ SDK
 * (abi.md, "Windows"), mirroring the Go SDK's window package. Include it
 * after helios.h. The host assigns records to windows, calls the operator
 * once per window of a batch with its state scoped to that window, and
 * calls helios_window_close when a window closes. An aggregate is two
 * functions:
 *
 *     // Folds r into its key's accumulator (helios_state_get / _put reach
 *     // the window's state only) and appends that key to *key.
 *     static int add(const helios_record *r, const helios_window *w, helios_buf *key, helios_emitter *out);
 *     // Emits key's result in w from its state.
 *     static int result(helios_bytes key, const helios_window *w, helios_emitter *out);
 *     HELIOS_WINDOW_OPERATOR(add, result) // or HELIOS_WINDOW_OPERATOR_WITH_INIT(add, result, configure)
 *
 * Both return HELIOS_OK or helios_fail(out, ...). add runs from
 * helios_process for every record, followed by result for its key under
 * --emit updates; result runs from helios_window_close for every state key
 * of a closing window under --emit final (nothing is emitted at close
 * under updates). Keep one state entry per key, its accumulator.
 */
#ifndef HELIOS_WINDOW_H
#define HELIOS_WINDOW_H

#include "helios.h"

#ifdef __cplusplus
extern "C" {
#endif

HELIOS_IMPORT("window_get") int32_t helios_host_window_get(uint8_t *buf, uint32_t cap);

/* The event-time window [start_ms, end_ms) of the current call. */
typedef struct helios_window {
	int64_t start_ms, end_ms; /* Unix milliseconds */
	int updates;              /* --emit updates: the result after every record, nothing at close */
	int closing;              /* this is the window's close call */
} helios_window;

typedef int (*helios_window_add_fn)(const helios_record *r, const helios_window *w, helios_buf *key, helios_emitter *out);
typedef int (*helios_window_result_fn)(helios_bytes key, const helios_window *w, helios_emitter *out);

static helios_window helios__win;
static int helios__win_ok;
static uint32_t helios__win_call; /* helios__calls when helios__win was read, + 1 */
static helios_window_add_fn helios__win_add;
static helios_window_result_fn helios__win_result;
static helios_buf helios__win_key;

/* Decodes a window descriptor (HELIOS_WINDOW_INFO_SIZE bytes). */
static HELIOS_UNUSED helios_window helios_window_decode(const uint8_t *d) {
	helios_window w;
	uint32_t flags = helios_rd32(d + HELIOS_OFF_WINDOW_FLAGS);
	w.start_ms = helios_rd64(d + HELIOS_OFF_WINDOW_START);
	w.end_ms = helios_rd64(d + HELIOS_OFF_WINDOW_END);
	w.updates = (flags & HELIOS_WINDOW_FLAG_UPDATES) != 0;
	w.closing = (flags & HELIOS_WINDOW_FLAG_CLOSING) != 0;
	return w;
}

/* Sets *w to the window of the current call (read from the host once per
 * call) and returns 1; 0 outside a window call (a pipeline without
 * windows, or outside the operator). */
static HELIOS_UNUSED int helios_window_current(helios_window *w) {
	if (helios__win_call != helios__calls + 1) {
		uint8_t d[HELIOS_WINDOW_INFO_SIZE];
		helios__win_call = helios__calls + 1;
		helios__win_ok = helios_host_window_get(d, sizeof d) == HELIOS_WINDOW_INFO_SIZE;
		if (helios__win_ok) helios__win = helios_window_decode(d);
	}
	if (helios__win_ok) *w = helios__win;
	return helios__win_ok;
}

#define HELIOS__NO_WINDOW "window operator: this call has no window: run the pipeline with --window (and --event-time)"

static HELIOS_UNUSED int helios__window_add_op(const helios_record *r, helios_emitter *out) {
	helios_window w;
	if (!helios_window_current(&w)) return helios_fail(out, HELIOS_FAIL_GENERIC, HELIOS__NO_WINDOW);
	helios__win_key.len = 0;
	int rc = helios__win_add(r, &w, &helios__win_key, out);
	if (rc != HELIOS_OK || !w.updates) return rc;
	helios_bytes key = {helios__win_key.data, helios__win_key.len};
	return helios__win_result(key, &w, out);
}

/* The operator of a close call: each record stands for one state key of
 * the closing window. */
static HELIOS_UNUSED int helios__window_close_op(const helios_record *r, helios_emitter *out) {
	helios_window w;
	if (!helios_window_current(&w)) return helios_fail(out, HELIOS_FAIL_GENERIC, HELIOS__NO_WINDOW);
	if (w.updates) return HELIOS_OK; /* every result was emitted as it changed */
	return helios__win_result(r->key, &w, out);
}

static HELIOS_UNUSED void helios__pad(helios_buf *b, uint64_t n, int width) {
	char d[20];
	int i = sizeof d;
	while (n > 0 || (int)sizeof d - i < width) {
		d[--i] = (char)('0' + n % 10);
		n /= 10;
	}
	helios_buf_append(b, d + i, (uint32_t)(sizeof d - i));
}

/* Appends a window bound in the examples' format, the same bytes in every
 * language (the Go SDK's window.AppendTime): RFC 3339 in UTC,
 * 2006-01-02T15:04:05Z, with .000 milliseconds only when they are not zero. */
static HELIOS_UNUSED void helios_window_append_time(helios_buf *b, int64_t ms) {
	int64_t days = ms / 86400000, rem = ms % 86400000;
	if (rem < 0) rem += 86400000, days--;
	/* Days since 1970-01-01 to a civil date (proleptic Gregorian). */
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	int64_t day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
	int64_t year = yoe + era * 400 + (month <= 2);
	if (year < 0) helios_buf_append(b, "-", 1);
	helios__pad(b, (uint64_t)(year < 0 ? -year : year), 4);
	helios_buf_append(b, "-", 1);
	helios__pad(b, (uint64_t)month, 2);
	helios_buf_append(b, "-", 1);
	helios__pad(b, (uint64_t)day, 2);
	helios_buf_append(b, "T", 1);
	helios__pad(b, (uint64_t)(rem / 3600000), 2);
	helios_buf_append(b, ":", 1);
	helios__pad(b, (uint64_t)(rem / 60000 % 60), 2);
	helios_buf_append(b, ":", 1);
	helios__pad(b, (uint64_t)(rem / 1000 % 60), 2);
	if (rem % 1000) {
		helios_buf_append(b, ".", 1);
		helios__pad(b, (uint64_t)(rem % 1000), 3);
	}
	helios_buf_append(b, "Z", 1);
}

/* Registers a window aggregate and emits the ABI exports, helios_window_close included. */
#define HELIOS_WINDOW_OPERATOR(add, result) HELIOS_WINDOW_OPERATOR_WITH_INIT(add, result, NULL)

/* Like HELIOS_WINDOW_OPERATOR, with a configuration check run by helios_init. */
#define HELIOS_WINDOW_OPERATOR_WITH_INIT(add, result, init)                                                  \
	static int helios__window_process_op(const helios_record *r, helios_emitter *out) {                       \
		helios__win_add = add;                                                                               \
		helios__win_result = result;                                                                         \
		return helios__window_add_op(r, out);                                                                \
	}                                                                                                        \
	HELIOS_OPERATOR_WITH_INIT(helios__window_process_op, init)                                               \
	HELIOS_EXPORT("helios_window_close") uint64_t helios_window_close(uint32_t ptr, uint32_t len) {          \
		helios__win_result = result;                                                                         \
		return helios__process((const uint8_t *)(uintptr_t)ptr, len, helios__window_close_op);               \
	}

#ifdef __cplusplus
}
#endif

#endif /* HELIOS_WINDOW_H */
