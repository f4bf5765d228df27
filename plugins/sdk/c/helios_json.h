/*
 * helios_json.h: a top-level field of a JSON object, without allocating, and
 * the JSON string literal of some bytes (helios_json_append_string).
 * Included by helios.h. The rules are the same in every helios SDK (see the
 * Go SDK's JSONField), so an operator behaves identically in any language:
 * the whole value is validated (RFC 8259, nesting up to HELIOS_JSON_MAX_DEPTH),
 * member names are compared after decoding escapes, the last of repeated
 * members wins.
 */
#ifndef HELIOS_JSON_H
#define HELIOS_JSON_H

#ifdef __cplusplus
extern "C" {
#endif

#define HELIOS_JSON_MAX_DEPTH 64

typedef struct helios__jp {
	const uint8_t *b;
	uint32_t i, n;
} helios__jp;

static int helios__jvalue(helios__jp *p, int depth);

static void helios__jws(helios__jp *p) {
	while (p->i < p->n && (p->b[p->i] == ' ' || p->b[p->i] == '\t' || p->b[p->i] == '\n' || p->b[p->i] == '\r')) p->i++;
}

static int helios__jeat(helios__jp *p, uint8_t c) {
	if (p->i < p->n && p->b[p->i] == c) {
		p->i++;
		return 1;
	}
	return 0;
}

static int helios__jhex(uint8_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static int helios__jstring(helios__jp *p) {
	if (!helios__jeat(p, '"')) return 0;
	while (p->i < p->n) {
		uint8_t c = p->b[p->i++];
		if (c == '"') return 1;
		if (c < 0x20) return 0;
		if (c == '\\') {
			if (p->i >= p->n) return 0;
			uint8_t e = p->b[p->i++];
			if (e == 'u') {
				for (int k = 0; k < 4; k++, p->i++)
					if (p->i >= p->n || !helios__jhex(p->b[p->i])) return 0;
			} else if (!strchr("\"\\/bfnrt", e) || e == 0) {
				return 0;
			}
		}
	}
	return 0;
}

static int helios__jlit(helios__jp *p, const char *s) {
	uint32_t n = (uint32_t)strlen(s);
	if (p->n - p->i < n || memcmp(p->b + p->i, s, n) != 0) return 0;
	p->i += n;
	return 1;
}

static int helios__jdigits(helios__jp *p) {
	uint32_t s = p->i;
	while (p->i < p->n && p->b[p->i] >= '0' && p->b[p->i] <= '9') p->i++;
	return p->i > s;
}

static int helios__jnumber(helios__jp *p) {
	helios__jeat(p, '-');
	if (!helios__jeat(p, '0')) {
		if (p->i >= p->n || p->b[p->i] < '1' || p->b[p->i] > '9') return 0;
		helios__jdigits(p);
	}
	if (helios__jeat(p, '.') && !helios__jdigits(p)) return 0;
	if (helios__jeat(p, 'e') || helios__jeat(p, 'E')) {
		if (!helios__jeat(p, '+')) helios__jeat(p, '-');
		if (!helios__jdigits(p)) return 0;
	}
	return 1;
}

static int helios__jcontainer(helios__jp *p, int depth) {
	int obj = p->b[p->i] == '{';
	uint8_t end = obj ? '}' : ']';
	p->i++;
	helios__jws(p);
	if (helios__jeat(p, end)) return 1;
	for (;;) {
		if (obj) {
			if (!helios__jstring(p)) return 0;
			helios__jws(p);
			if (!helios__jeat(p, ':')) return 0;
			helios__jws(p);
		}
		if (!helios__jvalue(p, depth)) return 0;
		helios__jws(p);
		if (helios__jeat(p, end)) return 1;
		if (!helios__jeat(p, ',')) return 0;
		helios__jws(p);
	}
}

static int helios__jvalue(helios__jp *p, int depth) {
	if (p->i >= p->n) return 0;
	switch (p->b[p->i]) {
	case '"': return helios__jstring(p);
	case '{':
	case '[': return depth < HELIOS_JSON_MAX_DEPTH && helios__jcontainer(p, depth + 1);
	case 't': return helios__jlit(p, "true");
	case 'f': return helios__jlit(p, "false");
	case 'n': return helios__jlit(p, "null");
	default: return helios__jnumber(p);
	}
}

static uint32_t helios__jhex4(const uint8_t *b) {
	uint32_t r = 0;
	for (int k = 0; k < 4; k++) {
		uint8_t c = b[k];
		r = r << 4 | (uint32_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return r;
}

/* Decodes the JSON string literal raw into dst (room for raw.len bytes is
 * always enough) and returns the text's length, or -1 when raw is not a
 * string. Lone surrogate escapes become U+FFFD; other bytes are kept. */
static HELIOS_UNUSED int32_t helios_json_string(helios_bytes raw, uint8_t *dst) {
	helios__jp p = {raw.data, 0, raw.len};
	if (!helios__jstring(&p) || p.i != raw.len) return -1;
	uint32_t n = 0;
	for (uint32_t i = 1; i < raw.len - 1;) {
		uint8_t c = raw.data[i++];
		if (c != '\\') {
			dst[n++] = c;
			continue;
		}
		uint8_t e = raw.data[i++];
		switch (e) {
		case 'b': dst[n++] = '\b'; break;
		case 'f': dst[n++] = '\f'; break;
		case 'n': dst[n++] = '\n'; break;
		case 'r': dst[n++] = '\r'; break;
		case 't': dst[n++] = '\t'; break;
		case 'u': {
			uint32_t r = helios__jhex4(raw.data + i);
			i += 4;
			if (r >= 0xd800 && r < 0xdc00 && i + 6 <= raw.len - 1 && raw.data[i] == '\\' && raw.data[i + 1] == 'u') {
				uint32_t lo = helios__jhex4(raw.data + i + 2);
				if (lo >= 0xdc00 && lo < 0xe000) {
					r = 0x10000 + ((r - 0xd800) << 10) + (lo - 0xdc00);
					i += 6;
				}
			}
			if (r >= 0xd800 && r < 0xe000) r = 0xfffd;
			if (r < 0x80) {
				dst[n++] = (uint8_t)r;
			} else if (r < 0x800) {
				dst[n++] = (uint8_t)(0xc0 | r >> 6);
				dst[n++] = (uint8_t)(0x80 | (r & 0x3f));
			} else if (r < 0x10000) {
				dst[n++] = (uint8_t)(0xe0 | r >> 12);
				dst[n++] = (uint8_t)(0x80 | ((r >> 6) & 0x3f));
				dst[n++] = (uint8_t)(0x80 | (r & 0x3f));
			} else {
				dst[n++] = (uint8_t)(0xf0 | r >> 18);
				dst[n++] = (uint8_t)(0x80 | ((r >> 12) & 0x3f));
				dst[n++] = (uint8_t)(0x80 | ((r >> 6) & 0x3f));
				dst[n++] = (uint8_t)(0x80 | (r & 0x3f));
			}
			break;
		}
		default: dst[n++] = e;
		}
	}
	return (int32_t)n;
}

/* Copies raw into dst (room for raw.len bytes) without the whitespace
 * outside its strings; returns the length. */
static HELIOS_UNUSED uint32_t helios_json_compact(helios_bytes raw, uint8_t *dst) {
	uint32_t n = 0;
	int in_str = 0;
	for (uint32_t i = 0; i < raw.len; i++) {
		uint8_t c = raw.data[i];
		if (in_str) {
			dst[n++] = c;
			if (c == '\\' && i + 1 < raw.len) dst[n++] = raw.data[++i];
			else if (c == '"') in_str = 0;
		} else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			in_str = c == '"';
			dst[n++] = c;
		}
	}
	return n;
}

static int helios__jkey_equals(helios_bytes raw, helios_bytes name) {
	if (!memchr(raw.data, '\\', raw.len)) {
		helios_bytes inner = {raw.data + 1, raw.len - 2};
		return helios_bytes_eq(inner, name);
	}
	uint8_t small[256];
	uint8_t *t = raw.len <= sizeof small ? small : (uint8_t *)malloc(raw.len);
	if (!t) __builtin_trap();
	int32_t n = helios_json_string(raw, t);
	helios_bytes dec = {t, (uint32_t)n};
	int eq = helios_bytes_eq(dec, name);
	if (t != small) free(t);
	return eq;
}

/* Finds member name of the JSON object in value: returns 1 and sets *raw to
 * its JSON text when found, 0 when absent, -1 when value is not one valid
 * JSON object. */
static HELIOS_UNUSED int helios_json_field(helios_bytes value, const char *name, helios_bytes *raw) {
	helios__jp p = {value.data, 0, value.len};
	helios_bytes want = helios_str(name);
	int found = 0;
	helios__jws(&p);
	if (!helios__jeat(&p, '{')) return -1;
	helios__jws(&p);
	if (!helios__jeat(&p, '}')) {
		for (;;) {
			uint32_t ks = p.i;
			if (!helios__jstring(&p)) return -1;
			helios_bytes key = {value.data + ks, p.i - ks};
			helios__jws(&p);
			if (!helios__jeat(&p, ':')) return -1;
			helios__jws(&p);
			uint32_t vs = p.i;
			if (!helios__jvalue(&p, 1)) return -1;
			if (helios__jkey_equals(key, want)) {
				raw->data = value.data + vs;
				raw->len = p.i - vs;
				found = 1;
			}
			helios__jws(&p);
			if (helios__jeat(&p, '}')) break;
			if (!helios__jeat(&p, ',')) return -1;
			helios__jws(&p);
		}
	}
	helios__jws(&p);
	return p.i == value.len ? found : -1;
}

/* Appends s as a JSON string literal to b, escaping only '"', '\', newline
 * (as \n) and the other control bytes (as \u00XX); other bytes are kept as
 * they are. Every SDK's encoder writes the same bytes. */
static HELIOS_UNUSED void helios_json_append_string(helios_buf *b, helios_bytes s) {
	static const char hex[] = "0123456789abcdef";
	helios_buf_append(b, "\"", 1);
	uint32_t run = 0;
	for (uint32_t i = 0; i < s.len; i++) {
		uint8_t c = s.data[i];
		if (c >= 0x20 && c != '"' && c != '\\') continue;
		helios_buf_append(b, s.data + run, i - run);
		run = i + 1;
		if (c == '"' || c == '\\') {
			uint8_t e[2] = {'\\', c};
			helios_buf_append(b, e, 2);
		} else if (c == '\n') {
			helios_buf_append(b, "\\n", 2);
		} else {
			uint8_t e[6] = {'\\', 'u', '0', '0', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
			helios_buf_append(b, e, 6);
		}
	}
	helios_buf_append(b, s.data + run, s.len - run);
	helios_buf_append(b, "\"", 1);
}

#ifdef __cplusplus
}
#endif

#endif /* HELIOS_JSON_H */
