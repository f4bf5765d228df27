// split: one record per word of each value (ASCII whitespace separates
// words: space, \t, \n, \v, \f, \r), keeping the key.
#include <string_view>

#include "helios.h"

static bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static int split(const helios_record *r, helios_emitter *out) {
	std::string_view v(reinterpret_cast<const char *>(r->value.data), r->value.len);
	size_t i = 0;
	while (i < v.size()) {
		while (i < v.size() && is_space(v[i])) i++;
		size_t j = i;
		while (j < v.size() && !is_space(v[j])) j++;
		if (j > i) helios_emit(out, r->key, helios_bytes{r->value.data + i, uint32_t(j - i)});
		i = j;
	}
	return HELIOS_OK;
}

HELIOS_OPERATOR(split)
