/*
 * helios.h: C and C++ guest SDK for helios-wasm operators (ABI v1, abi.md).
 *
 * Write a function over one record that emits zero or more records, or
 * fails that record, and register it once per module:
 *
 *     #include "helios.h"
 *     static int upper(const helios_record *r, helios_emitter *out) {
 *         uint8_t *v = helios_emit_reserve(out, r->key, r->value.len); // the output value, in place
 *         for (uint32_t i = 0; i < r->value.len; i++) ...
 *         return HELIOS_OK;              // or: return helios_fail(out, HELIOS_FAIL_GENERIC, "why");
 *     }
 *
 * Also: helios_emit / helios_emit_record (headers, timestamp), helios_state_get /
 * _put / _delete (transactional, kept with the record until it succeeds),
 * helios_config_get, helios_log, helios_header_get, helios_json_field;
 * event-time window aggregates: helios_window.h.
 *     HELIOS_OPERATOR(upper)
 *
 * Build as a WASI reactor:
 *     clang --target=wasm32-wasi -mexec-model=reactor -O2 -msimd128 -mbulk-memory -Wl,--strip-debug -o op.wasm op.c
 * (C++: clang++ ... -fno-exceptions). The header is self-contained: every
 * function is static, and HELIOS_OPERATOR emits the exports. A record's
 * state writes reach the host only if the record succeeds.
 */
#ifndef HELIOS_H
#define HELIOS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helios_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HELIOS_OK 0
#define HELIOS_UNUSED __attribute__((unused))

typedef struct helios_bytes {
	const uint8_t *data;
	uint32_t len;
} helios_bytes;

/* One input record. Its bytes are valid only during the operator call. */
typedef struct helios_record {
	helios_bytes key, value, headers;
	uint32_t partition;
	int64_t offset;    /* source position */
	int64_t timestamp; /* event time, Unix milliseconds */
	uint8_t id[16];    /* message id (UUID bytes) */
} helios_record;

typedef struct helios_header {
	helios_bytes name, value;
} helios_header;

/* A growable byte buffer owned by the SDK. */
typedef struct helios_buf {
	uint8_t *data;
	uint32_t len, cap;
} helios_buf;

typedef struct helios_emitter {
	uint32_t index;
	int64_t timestamp;
	uint32_t fail_code;
	const char *fail_msg;
	uint32_t fail_len;
	helios_buf scratch;
} helios_emitter;

typedef int (*helios_operator_fn)(const helios_record *r, helios_emitter *out);
/* Returns NULL to accept the configuration, or an error message to refuse. */
typedef const char *(*helios_init_fn)(void);

/* ---- host functions (abi.md, "Host functions") ---- */
#define HELIOS_IMPORT(name) __attribute__((import_module("helios_v1"), import_name(name)))
HELIOS_IMPORT("log") void helios_host_log(int32_t level, const uint8_t *msg, uint32_t len);
HELIOS_IMPORT("state_get") int32_t helios_host_state_get(const uint8_t *k, uint32_t kl, uint8_t *buf, uint32_t cap);
HELIOS_IMPORT("state_put") int32_t helios_host_state_put(const uint8_t *k, uint32_t kl, const uint8_t *v, uint32_t vl);
HELIOS_IMPORT("state_delete") int32_t helios_host_state_delete(const uint8_t *k, uint32_t kl);

/* ---- byte helpers ---- */
static inline HELIOS_UNUSED helios_bytes helios_str(const char *s) {
	helios_bytes b = {(const uint8_t *)s, (uint32_t)strlen(s)};
	return b;
}

static inline HELIOS_UNUSED int helios_bytes_eq(helios_bytes a, helios_bytes b) {
	return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

static HELIOS_UNUSED void helios_buf_reserve(helios_buf *b, uint32_t extra) {
	if (b->cap - b->len >= extra) return;
	uint32_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < extra) cap *= 2;
	uint8_t *p = (uint8_t *)realloc(b->data, cap);
	if (!p) __builtin_trap(); /* out of memory: the host isolates the record */
	b->data = p;
	b->cap = cap;
}

static HELIOS_UNUSED void helios_buf_append(helios_buf *b, const void *p, uint32_t n) {
	helios_buf_reserve(b, n);
	if (n) memcpy(b->data + b->len, p, n);
	b->len += n;
}

static HELIOS_UNUSED void helios_buf_u32(helios_buf *b, uint32_t v) { helios_buf_append(b, &v, 4); } /* wasm is little-endian */

static inline uint32_t helios_rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline int64_t helios_rd64(const uint8_t *p) { int64_t v; memcpy(&v, p, 8); return v; }

/* ---- output buffer (abi.md, "Output buffer") ---- */
static helios_buf helios__out;
static uint32_t helios__count;

static void helios__entry(uint32_t kind, uint32_t index, uint32_t code, helios_bytes key, helios_bytes value,
                          helios_bytes headers, int64_t ts) {
	helios_buf *b = &helios__out;
	helios_buf_reserve(b, HELIOS_ENTRY_HEADER_SIZE + key.len + value.len + headers.len);
	uint32_t h[6] = {kind, index, key.len, value.len, headers.len, code};
	helios_buf_append(b, h, sizeof h);
	helios_buf_append(b, &ts, 8);
	helios_buf_append(b, key.data, key.len);
	helios_buf_append(b, value.data, value.len);
	helios_buf_append(b, headers.data, headers.len);
	helios__count++;
}

/* Outputs a record with the input's timestamp and no headers. */
static HELIOS_UNUSED void helios_emit(helios_emitter *e, helios_bytes key, helios_bytes value) {
	helios_bytes none = {0, 0};
	helios__entry(HELIOS_ENTRY_KIND_RECORD, e->index, 0, key, value, none, e->timestamp);
}

/* Outputs a record whose value_len-byte value the caller writes at the
 * returned pointer, straight into the output buffer (no intermediate copy).
 * The pointer is valid until the next emit. */
static HELIOS_UNUSED uint8_t *helios_emit_reserve(helios_emitter *e, helios_bytes key, uint32_t value_len) {
	helios_bytes none = {0, 0};
	helios_buf_reserve(&helios__out, HELIOS_ENTRY_HEADER_SIZE + key.len + value_len);
	uint32_t start = helios__out.len;
	helios__entry(HELIOS_ENTRY_KIND_RECORD, e->index, 0, key, none, none, e->timestamp);
	memcpy(helios__out.data + start + HELIOS_OFF_ENT_VALUE_LEN, &value_len, 4);
	helios__out.len += value_len;
	return helios__out.data + helios__out.len - value_len;
}

/* Outputs a record with headers and its own timestamp (0: the input's). */
static HELIOS_UNUSED void helios_emit_record(helios_emitter *e, helios_bytes key, helios_bytes value,
                                             const helios_header *headers, uint32_t n, int64_t timestamp) {
	static helios_buf hb;
	hb.len = 0;
	if (n) {
		helios_buf_u32(&hb, n);
		for (uint32_t i = 0; i < n; i++) {
			helios_buf_u32(&hb, headers[i].name.len);
			helios_buf_append(&hb, headers[i].name.data, headers[i].name.len);
			helios_buf_u32(&hb, headers[i].value.len);
			helios_buf_append(&hb, headers[i].value.data, headers[i].value.len);
		}
	}
	helios_bytes hdr = {hb.data, hb.len};
	helios__entry(HELIOS_ENTRY_KIND_RECORD, e->index, 0, key, value, hdr, timestamp ? timestamp : e->timestamp);
}

/* Fails the current record with code (HELIOS_FAIL_GENERIC, _RETRYABLE,
 * _INVALID_INPUT or >= HELIOS_FAIL_USER_BASE) and msg (copied); return its
 * result from the operator. Outputs already emitted for it are dropped. */
static HELIOS_UNUSED int helios_fail(helios_emitter *e, uint32_t code, const char *msg) {
	static helios_buf mb;
	mb.len = 0;
	helios_buf_append(&mb, msg, (uint32_t)strlen(msg) + 1); /* kept NUL-terminated */
	e->fail_code = (code == 0 || (code > HELIOS_FAIL_INVALID_INPUT && code < HELIOS_FAIL_USER_BASE)) ? HELIOS_FAIL_GENERIC : code;
	e->fail_msg = (const char *)mb.data;
	e->fail_len = mb.len - 1;
	return -1;
}

/* A scratch buffer of n bytes, reused from record to record. */
static HELIOS_UNUSED uint8_t *helios_scratch(helios_emitter *e, uint32_t n) {
	e->scratch.len = 0;
	helios_buf_reserve(&e->scratch, n ? n : 1);
	return e->scratch.data;
}

/* Finds name in a headers/config block (u32 n, then n × (u32 len, bytes,
 * u32 len, bytes)): the first match, or with last the last one. Returns 1
 * and sets *value when found; 0 when absent or the block is malformed. */
static int helios__kv_find(helios_bytes block, helios_bytes name, int last, helios_bytes *value) {
	const uint8_t *p = block.data, *end = p + block.len;
	int found = 0;
	if (block.len < 4) return 0;
	uint32_t n = helios_rd32(p);
	p += 4;
	for (uint32_t i = 0; i < n; i++) {
		helios_bytes kv[2];
		for (int j = 0; j < 2; j++) {
			if (end - p < 4 || (uint32_t)(end - p - 4) < helios_rd32(p)) return 0;
			kv[j].len = helios_rd32(p);
			kv[j].data = p + 4;
			p += 4 + kv[j].len;
		}
		if (helios_bytes_eq(kv[0], name)) {
			*value = kv[1];
			found = 1;
			if (!last) return 1;
		}
	}
	return found;
}

/* The value of the first header called name, or {NULL, 0} with *found = 0. */
static HELIOS_UNUSED helios_bytes helios_header_get(const helios_record *r, const char *name, int *found) {
	helios_bytes v = {0, 0};
	*found = helios__kv_find(r->headers, helios_str(name), 0, &v);
	return v;
}

/* ---- configuration ---- */
static helios_buf helios__cfg; /* the config block, kept from helios_init */

/* The value of --config key (the last when repeated) as a NUL-terminated
 * string valid until the next call, or NULL when unset. */
static HELIOS_UNUSED const char *helios_config_get(const char *key) {
	static helios_buf val;
	helios_bytes block = {helios__cfg.data, helios__cfg.len}, v;
	if (!helios__kv_find(block, helios_str(key), 1, &v)) return NULL;
	val.len = 0;
	helios_buf_append(&val, v.data, v.len);
	helios_buf_append(&val, "", 1);
	return (const char *)val.data;
}

/* ---- logging ---- */
static HELIOS_UNUSED void helios_log(int32_t level, const char *msg) {
	helios_host_log(level, (const uint8_t *)msg, (uint32_t)strlen(msg));
}

#include "helios_state.h"

/* ---- the exports' bodies ---- */
static inline uint64_t helios__pack(const void *p, uint32_t len) { return (uint64_t)(uintptr_t)p << 32 | len; }

static uint64_t helios__batch_error(uint32_t status, const char *msg) {
	uint32_t n = (uint32_t)strlen(msg), h[4] = {HELIOS_OUTPUT_MAGIC, status, n, 0};
	helios__out.len = 0;
	helios_buf_append(&helios__out, h, sizeof h);
	helios_buf_append(&helios__out, msg, n);
	return helios__pack(helios__out.data, helios__out.len);
}

static HELIOS_UNUSED uint64_t helios__init(const uint8_t *cfg, uint32_t len, helios_init_fn check) {
	static helios_buf err;
	helios__cfg.len = 0;
	helios_buf_append(&helios__cfg, cfg, len);
	const char *msg = check ? check() : NULL;
	if (!msg) return 0;
	err.len = 0;
	helios_buf_append(&err, msg, (uint32_t)strlen(msg));
	return helios__pack(err.data, err.len);
}

static uint32_t helios__calls; /* batch export calls so far (helios_window.h caches per call) */

static HELIOS_UNUSED uint64_t helios__process(const uint8_t *in, uint32_t len, helios_operator_fn op) {
	static helios_emitter em;
	helios__calls++;
	if (len < HELIOS_BATCH_HEADER_SIZE || helios_rd32(in + HELIOS_OFF_BATCH_MAGIC) != HELIOS_BATCH_MAGIC)
		return helios__batch_error(HELIOS_BATCH_BAD_INPUT, "helios sdk: input is not an HLB1 batch");
	uint32_t count = helios_rd32(in + HELIOS_OFF_BATCH_COUNT), pos = HELIOS_BATCH_HEADER_SIZE;
	uint32_t h[4] = {HELIOS_OUTPUT_MAGIC, HELIOS_BATCH_OK, 0, 0};
	helios__out.len = 0;
	helios__count = 0;
	helios_buf_append(&helios__out, h, sizeof h);
	helios__batch_begin();
	for (uint32_t i = 0; i < count; i++) {
		if (len - pos < HELIOS_RECORD_HEADER_SIZE) {
			helios__batch_end();
			return helios__batch_error(HELIOS_BATCH_BAD_INPUT, "helios sdk: batch truncated in a record header");
		}
		const uint8_t *rh = in + pos;
		helios_record r;
		r.key.len = helios_rd32(rh + HELIOS_OFF_REC_KEY_LEN);
		r.value.len = helios_rd32(rh + HELIOS_OFF_REC_VALUE_LEN);
		r.headers.len = helios_rd32(rh + HELIOS_OFF_REC_HEADERS_LEN);
		uint64_t body = (uint64_t)r.key.len + r.value.len + r.headers.len;
		pos += HELIOS_RECORD_HEADER_SIZE;
		if ((uint64_t)(len - pos) < body) {
			helios__batch_end();
			return helios__batch_error(HELIOS_BATCH_BAD_INPUT, "helios sdk: batch truncated in a record body");
		}
		r.partition = helios_rd32(rh + HELIOS_OFF_REC_PARTITION);
		r.offset = helios_rd64(rh + HELIOS_OFF_REC_OFFSET);
		r.timestamp = helios_rd64(rh + HELIOS_OFF_REC_TIMESTAMP);
		memcpy(r.id, rh + HELIOS_OFF_REC_ID, HELIOS_REC_ID_LEN);
		r.key.data = in + pos;
		r.value.data = r.key.data + r.key.len;
		r.headers.data = r.value.data + r.value.len;
		pos += (uint32_t)body;

		uint32_t mark_len = helios__out.len, mark_count = helios__count;
		helios__record_begin();
		em.index = i;
		em.timestamp = r.timestamp;
		em.fail_code = 0;
		int rc = op(&r, &em);
		if (rc == HELIOS_OK) {
			helios__record_commit();
		} else if (em.fail_code == 0) {
			helios_fail(&em, HELIOS_FAIL_GENERIC, "operator returned an error");
		}
		if (rc != HELIOS_OK) {
			/* A failed record leaves nothing behind: no outputs, no state. */
			helios__out.len = mark_len;
			helios__count = mark_count;
			helios_bytes none = {0, 0}, msg = {(const uint8_t *)em.fail_msg, em.fail_len};
			helios__entry(HELIOS_ENTRY_KIND_FAILED, i, em.fail_code, none, msg, none, 0);
		}
	}
	int32_t st = helios__batch_flush();
	helios__batch_end();
	if (st != HELIOS_STATUS_OK) {
		helios_fail_status(&em, "state write", st);
		return helios__batch_error(HELIOS_BATCH_OPERATOR_ERR, em.fail_msg);
	}
	memcpy(helios__out.data + HELIOS_OFF_OUT_COUNT, &helios__count, 4);
	return helios__pack(helios__out.data, helios__out.len);
}

#define HELIOS_EXPORT(name) __attribute__((export_name(name)))

/* Registers the operator and emits the ABI exports (once per module). */
#define HELIOS_OPERATOR(op) HELIOS_OPERATOR_WITH_INIT(op, NULL)

/* Like HELIOS_OPERATOR, with a configuration check run by helios_init. */
#define HELIOS_OPERATOR_WITH_INIT(op, init)                                                              \
	HELIOS_EXPORT("helios_abi_version") uint32_t helios_abi_version(void) { return HELIOS_VERSION; }    \
	HELIOS_EXPORT("helios_alloc") uint32_t helios_alloc(uint32_t len) {                                  \
		void *p = malloc(len ? len : 1);                                                                 \
		if (!p) __builtin_trap();                                                                        \
		return (uint32_t)(uintptr_t)p;                                                                   \
	}                                                                                                    \
	HELIOS_EXPORT("helios_dealloc") void helios_dealloc(uint32_t ptr, uint32_t len) {                    \
		(void)len;                                                                                       \
		free((void *)(uintptr_t)ptr);                                                                    \
	}                                                                                                    \
	HELIOS_EXPORT("helios_init") uint64_t helios_init(uint32_t ptr, uint32_t len) {                      \
		return helios__init((const uint8_t *)(uintptr_t)ptr, len, init);                                 \
	}                                                                                                    \
	HELIOS_EXPORT("helios_process") uint64_t helios_process(uint32_t ptr, uint32_t len) {                \
		return helios__process((const uint8_t *)(uintptr_t)ptr, len, op);                                \
	}

#ifdef __cplusplus
}
#endif

#include "helios_json.h"

#endif /* HELIOS_H */
