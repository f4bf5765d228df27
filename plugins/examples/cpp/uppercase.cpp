// uppercase: ASCII-upper-cases each record's value and keeps its key.
#include <algorithm>
#include <string>

#include "helios.h"

static std::string buf;

static int upper(const helios_record *r, helios_emitter *out) {
	buf.assign(reinterpret_cast<const char *>(r->value.data), r->value.len);
	std::transform(buf.begin(), buf.end(), buf.begin(), [](char c) { return c >= 'a' && c <= 'z' ? char(c - 'a' + 'A') : c; });
	helios_emit(out, r->key, helios_bytes{reinterpret_cast<const uint8_t *>(buf.data()), uint32_t(buf.size())});
	return HELIOS_OK;
}

HELIOS_OPERATOR(upper)
