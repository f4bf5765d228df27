/*
 * helios_state.h: operator state (abi.md, "State is transactional"), part of
 * helios.h. Writes live in two layers in the guest: a record's, kept until
 * the record succeeds (a failed record leaves no trace), then the batch's,
 * the last write per key, handed to the host once at the end of the batch.
 * Reads look in both before asking the host, so a stateful operator crosses
 * into the host once per distinct key and batch instead of twice per record.
 */
#ifndef HELIOS_STATE_H
#define HELIOS_STATE_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct helios__write {
	uint32_t key_off, key_len, val_off, val_len;
	int deleted;
} helios__write;

/* A list of writes whose keys and values live in one arena. */
typedef struct helios__writes {
	helios_buf arena;
	helios__write *w;
	uint32_t n, cap;
} helios__writes;

static helios__writes helios__record; /* this record's writes, in order */
static helios__writes helios__batch;  /* the last write per key of the batch's succeeded records */
static uint32_t *helios__slots;       /* open addressing over helios__batch: index + 1, 0 when empty */
static uint32_t helios__nslots;       /* a power of two, or 0 */
static int helios__in_batch;
static helios_buf helios__getbuf;

static helios_bytes helios__key(const helios__writes *ws, const helios__write *w) {
	helios_bytes b = {ws->arena.data + w->key_off, w->key_len};
	return b;
}

static helios_bytes helios__val(const helios__writes *ws, const helios__write *w) {
	helios_bytes b = {ws->arena.data + w->val_off, w->val_len};
	return b;
}

static helios__write *helios__append(helios__writes *ws, helios_bytes key, helios_bytes val, int deleted) {
	if (ws->n == ws->cap) {
		ws->cap = ws->cap ? ws->cap * 2 : 16;
		ws->w = (helios__write *)realloc(ws->w, ws->cap * sizeof(helios__write));
		if (!ws->w) __builtin_trap();
	}
	helios__write *w = &ws->w[ws->n++];
	w->key_off = ws->arena.len;
	w->key_len = key.len;
	helios_buf_append(&ws->arena, key.data, key.len);
	w->val_off = ws->arena.len;
	w->val_len = val.len;
	helios_buf_append(&ws->arena, val.data, val.len);
	w->deleted = deleted;
	return w;
}

static uint32_t helios__hash(helios_bytes k) { /* FNV-1a */
	uint32_t h = 2166136261u;
	for (uint32_t i = 0; i < k.len; i++) h = (h ^ k.data[i]) * 16777619u;
	return h;
}

/* The batch slot holding key, or the empty slot where it would go. */
static uint32_t *helios__slot(helios_bytes key) {
	uint32_t mask = helios__nslots - 1, i = helios__hash(key) & mask;
	for (;; i = (i + 1) & mask) {
		uint32_t s = helios__slots[i];
		if (s == 0 || helios_bytes_eq(helios__key(&helios__batch, &helios__batch.w[s - 1]), key)) return &helios__slots[i];
	}
}

static void helios__batch_set(helios_bytes key, helios_bytes val, int deleted) {
	if ((helios__batch.n + 1) * 2 > helios__nslots) { /* grow to keep the table at most half full */
		free(helios__slots);
		helios__nslots = helios__nslots ? helios__nslots * 2 : 64;
		helios__slots = (uint32_t *)calloc(helios__nslots, sizeof(uint32_t));
		if (!helios__slots) __builtin_trap();
		for (uint32_t i = 0; i < helios__batch.n; i++) *helios__slot(helios__key(&helios__batch, &helios__batch.w[i])) = i + 1;
	}
	uint32_t *s = helios__slot(key);
	if (*s == 0) {
		helios__append(&helios__batch, key, val, deleted);
		*s = helios__batch.n;
		return;
	}
	/* Rewritten: the new value goes to the end of the arena (reclaimed with the batch). */
	helios__write *w = &helios__batch.w[*s - 1];
	w->val_off = helios__batch.arena.len;
	w->val_len = val.len;
	w->deleted = deleted;
	helios_buf_append(&helios__batch.arena, val.data, val.len);
}

/* Finds key among this record's writes (the latest when several) and, below,
 * the batch's: 1 and *val when written, -1 when deleted, 0 when absent. */
static int helios__lookup_record(helios_bytes key, helios_bytes *val) {
	for (uint32_t i = helios__record.n; i-- > 0;) {
		helios__write *w = &helios__record.w[i];
		if (helios_bytes_eq(helios__key(&helios__record, w), key)) {
			if (w->deleted) return -1;
			*val = helios__val(&helios__record, w);
			return 1;
		}
	}
	return 0;
}

static int helios__lookup_batch(helios_bytes key, helios_bytes *val) {
	if (helios__batch.n == 0) return 0;
	uint32_t s = *helios__slot(key);
	if (s == 0) return 0;
	helios__write *w = &helios__batch.w[s - 1];
	if (w->deleted) return -1;
	*val = helios__val(&helios__batch, w);
	return 1;
}

/* Reads key into *value (valid until the next state call). Returns 1 when
 * found, 0 when absent, or a negative HELIOS_STATUS_* code. Reads see this
 * record's and this batch's writes. */
static HELIOS_UNUSED int32_t helios_state_get(helios_bytes key, helios_bytes *value) {
	value->data = 0;
	value->len = 0;
	if (!helios__in_batch) return HELIOS_STATUS_NOT_ALLOWED;
	int found = helios__lookup_record(key, value);
	if (found == 0) found = helios__lookup_batch(key, value);
	if (found != 0) {
		if (found < 0) {
			value->data = 0;
			value->len = 0;
		}
		return found > 0;
	}
	helios_buf_reserve(&helios__getbuf, 256);
	for (;;) {
		int32_t n = helios_host_state_get(key.data, key.len, helios__getbuf.data, helios__getbuf.cap);
		if (n == HELIOS_STATUS_NOT_FOUND) return 0;
		if (n < 0) return n;
		if ((uint32_t)n <= helios__getbuf.cap) {
			value->data = helios__getbuf.data;
			value->len = (uint32_t)n;
			return 1;
		}
		helios_buf_reserve(&helios__getbuf, (uint32_t)n);
	}
}

static int32_t helios__state_write(helios_bytes key, helios_bytes value, int deleted) {
	if (!helios__in_batch) return HELIOS_STATUS_NOT_ALLOWED;
	if (key.len > HELIOS_MAX_STATE_KEY_LEN || value.len > HELIOS_MAX_STATE_VALUE_LEN) return HELIOS_STATUS_TOO_LARGE;
	helios__append(&helios__record, key, value, deleted);
	return HELIOS_STATUS_OK;
}

/* Stores value under key if the record succeeds. 0 or a negative status. */
static HELIOS_UNUSED int32_t helios_state_put(helios_bytes key, helios_bytes value) {
	return helios__state_write(key, value, 0);
}

/* Removes key if the record succeeds. 0 or a negative status. */
static HELIOS_UNUSED int32_t helios_state_delete(helios_bytes key) {
	helios_bytes none = {0, 0};
	return helios__state_write(key, none, 1);
}

/* Fails the record for a negative status from a state call, with the
 * message and code every SDK uses (limits and misuse fail the record, a
 * host failure is retryable); returns -1 for the operator to return. */
static HELIOS_UNUSED int helios_fail_status(helios_emitter *e, const char *op, int32_t st) {
	char msg[128];
	uint32_t code = HELIOS_FAIL_GENERIC;
	if (st == HELIOS_STATUS_NOT_ALLOWED) {
		snprintf(msg, sizeof msg, "helios: state is only available while processing a batch");
	} else if (st == HELIOS_STATUS_TOO_LARGE) {
		snprintf(msg, sizeof msg, "helios: %s: key or value too large (limits: key %d, value %d bytes)", op,
		         HELIOS_MAX_STATE_KEY_LEN, HELIOS_MAX_STATE_VALUE_LEN);
	} else if (st == HELIOS_STATUS_BAD_ARGUMENT) {
		snprintf(msg, sizeof msg, "helios: %s: host rejected a buffer", op);
	} else {
		snprintf(msg, sizeof msg, "helios: %s: host status %d", op, (int)st);
		code = HELIOS_FAIL_RETRYABLE;
	}
	return helios_fail(e, code, msg);
}

/* ---- batch life cycle, driven by helios__process ---- */
static void helios__batch_begin(void) {
	helios__in_batch = 1;
	helios__batch.n = 0;
	helios__batch.arena.len = 0;
	if (helios__nslots) memset(helios__slots, 0, helios__nslots * sizeof(uint32_t));
}

static void helios__record_begin(void) {
	helios__record.n = 0;
	helios__record.arena.len = 0;
}

/* Takes over a succeeded record's writes into the batch's. */
static void helios__record_commit(void) {
	for (uint32_t i = 0; i < helios__record.n; i++) {
		helios__write *w = &helios__record.w[i];
		helios__batch_set(helios__key(&helios__record, w), helios__val(&helios__record, w), w->deleted);
	}
	helios__record_begin();
}

/* Hands the batch's writes to the host: HELIOS_STATUS_OK or the failure. */
static int32_t helios__batch_flush(void) {
	for (uint32_t i = 0; i < helios__batch.n; i++) {
		helios__write *w = &helios__batch.w[i];
		helios_bytes k = helios__key(&helios__batch, w), v = helios__val(&helios__batch, w);
		int32_t st = w->deleted ? helios_host_state_delete(k.data, k.len) : helios_host_state_put(k.data, k.len, v.data, v.len);
		if (st != HELIOS_STATUS_OK) return st;
	}
	return HELIOS_STATUS_OK;
}

static void helios__batch_end(void) {
	helios__in_batch = 0;
	helios__record_begin();
	helios__batch.n = 0;
	helios__batch.arena.len = 0;
	if (helios__nslots) memset(helios__slots, 0, helios__nslots * sizeof(uint32_t));
}

#ifdef __cplusplus
}
#endif

#endif /* HELIOS_STATE_H */
