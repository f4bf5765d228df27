/* The SDK probe (see ../README.md): the C SDK's whole surface. */
#include "helios.h"

static helios_buf getbuf;

/* get(k): the value, or "absent", copied so that later state calls keep it. */
static int get(helios_emitter *out, helios_bytes k, helios_bytes *v) {
	helios_bytes got;
	int32_t st = helios_state_get(k, &got);
	if (st < 0) return helios_fail_status(out, "state get", st);
	if (st == 0) got = helios_str("absent");
	getbuf.len = 0;
	helios_buf_append(&getbuf, got.data, got.len);
	v->data = getbuf.data;
	v->len = getbuf.len;
	return HELIOS_OK;
}

static int probe(const helios_record *r, helios_emitter *out) {
	helios_bytes args[3] = {{0, 0}, {0, 0}, {0, 0}};
	uint32_t n = 0, start = 0;
	for (uint32_t i = 0; i <= r->value.len && n < 3; i++) {
		if (i == r->value.len || r->value.data[i] == ' ') {
			args[n].data = r->value.data + start;
			args[n].len = i - start;
			n++;
			start = i + 1;
		}
	}
	helios_bytes cmd = args[0], k = args[1], v;
	int32_t st;
	if (helios_bytes_eq(cmd, helios_str("put")) || helios_bytes_eq(cmd, helios_str("fail"))) {
		if ((st = helios_state_put(k, args[2])) < 0) return helios_fail_status(out, "state put", st);
		if (helios_bytes_eq(cmd, helios_str("fail"))) {
			helios_emit(out, k, helios_str("dropped"));
			return helios_fail(out, 1001, "probe: failed on request");
		}
		if (get(out, k, &v)) return -1;
		helios_emit(out, k, v);
	} else if (helios_bytes_eq(cmd, helios_str("del"))) {
		if ((st = helios_state_delete(k)) < 0) return helios_fail_status(out, "state delete", st);
		if (get(out, k, &v)) return -1;
		helios_emit(out, k, v);
	} else if (helios_bytes_eq(cmd, helios_str("get"))) {
		if (get(out, k, &v)) return -1;
		helios_emit(out, k, v);
	} else if (helios_bytes_eq(cmd, helios_str("retry"))) {
		return helios_fail(out, HELIOS_FAIL_RETRYABLE, "probe: try again");
	} else if (helios_bytes_eq(cmd, helios_str("invalid"))) {
		return helios_fail(out, HELIOS_FAIL_INVALID_INPUT, "probe: bad input");
	} else if (helios_bytes_eq(cmd, helios_str("hdr"))) {
		char name[256];
		uint32_t nl = k.len < sizeof name - 1 ? k.len : (uint32_t)sizeof name - 1;
		memcpy(name, k.data, nl);
		name[nl] = 0;
		int found;
		helios_bytes hv = helios_header_get(r, name, &found);
		helios_emit(out, k, found ? hv : helios_str("no header"));
	} else if (helios_bytes_eq(cmd, helios_str("rec"))) {
		helios_header hs[2] = {{helios_str("a"), helios_str("1")}, {helios_str("b"), helios_str("")}};
		helios_emit_record(out, helios_str("r"), helios_str("v"), hs, 2, 42);
	} else if (helios_bytes_eq(cmd, helios_str("cfg"))) {
		char key[256];
		uint32_t kl = k.len < sizeof key - 1 ? k.len : (uint32_t)sizeof key - 1;
		memcpy(key, k.data, kl);
		key[kl] = 0;
		const char *cv = helios_config_get(key);
		helios_emit(out, k, helios_str(cv ? cv : "unset"));
	} else if (helios_bytes_eq(cmd, helios_str("multi"))) {
		uint32_t count = 0;
		for (uint32_t i = 0; i < k.len && k.data[i] >= '0' && k.data[i] <= '9'; i++) count = count * 10 + (k.data[i] - '0');
		for (uint32_t i = 0; i < count; i++) {
			char d[12];
			int dl = 0;
			uint32_t x = i;
			do {
				d[dl++] = (char)('0' + x % 10);
				x /= 10;
			} while (x);
			for (int a = 0, b = dl - 1; a < b; a++, b--) {
				char t = d[a];
				d[a] = d[b];
				d[b] = t;
			}
			helios_bytes db = {(const uint8_t *)d, (uint32_t)dl};
			helios_emit(out, helios_str("m"), db);
		}
	} else if (helios_bytes_eq(cmd, helios_str("log"))) {
		helios_host_log(HELIOS_LOG_INFO, k.data, k.len);
		helios_emit(out, helios_str("log"), k);
	} else {
		helios_emit(out, r->key, helios_str("unknown command"));
	}
	return HELIOS_OK;
}

HELIOS_OPERATOR(probe)
