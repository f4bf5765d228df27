/* split: one record per word of each value (ASCII whitespace separates
 * words: space, \t, \n, \v, \f, \r), keeping the key. */
#include "helios.h"

static int is_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static int split(const helios_record *r, helios_emitter *out) {
	const uint8_t *v = r->value.data;
	uint32_t n = r->value.len, i = 0;
	while (i < n) {
		while (i < n && is_space(v[i])) i++;
		uint32_t j = i;
		while (j < n && !is_space(v[j])) j++;
		if (j > i) {
			helios_bytes word = {v + i, j - i};
			helios_emit(out, r->key, word);
		}
		i = j;
	}
	return HELIOS_OK;
}

HELIOS_OPERATOR(split)
