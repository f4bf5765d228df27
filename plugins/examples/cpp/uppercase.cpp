// uppercase: ASCII-upper-cases each record's value and keeps its key.
#include <algorithm>

#include "helios.h"

static int upper(const helios_record *r, helios_emitter *out) {
	// Written straight into the output buffer: no intermediate copy.
	uint8_t *v = helios_emit_reserve(out, r->key, r->value.len);
	std::transform(r->value.data, r->value.data + r->value.len, v,
	               [](uint8_t c) { return c >= 'a' && c <= 'z' ? uint8_t(c - 'a' + 'A') : c; });
	return HELIOS_OK;
}

HELIOS_OPERATOR(upper)
