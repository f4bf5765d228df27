/* uppercase: ASCII-upper-cases each record's value and keeps its key. */
#include "helios.h"

static int upper(const helios_record *r, helios_emitter *out) {
	/* Written straight into the output buffer: no intermediate copy. */
	uint8_t *v = helios_emit_reserve(out, r->key, r->value.len);
	for (uint32_t i = 0; i < r->value.len; i++) {
		uint8_t c = r->value.data[i];
		v[i] = (c >= 'a' && c <= 'z') ? (uint8_t)(c - 'a' + 'A') : c;
	}
	return HELIOS_OK;
}

HELIOS_OPERATOR(upper)
