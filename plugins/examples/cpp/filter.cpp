// filter: keeps the records whose JSON value has a top-level field equal to
// a configured value (--config field=user --config equals=u1). A string
// field is compared with its decoded text, any other value with its compact
// JSON text. A value that is not a JSON object fails the record.
#include <string>
#include <string_view>

#include "helios.h"

static std::string field, equals, text;

static const char *configure() {
	const char *f = helios_config_get("field");
	field = f ? f : "";
	const char *e = helios_config_get("equals");
	if (field.empty() || !e) return "filter: needs --config field=NAME --config equals=VALUE";
	equals = e;
	return nullptr;
}

static int keep(const helios_record *r, helios_emitter *out) {
	helios_bytes raw;
	int found = helios_json_field(r->value, field.c_str(), &raw);
	if (found < 0) return helios_fail(out, HELIOS_FAIL_INVALID_INPUT, "filter: value is not a JSON object");
	if (found == 0) return HELIOS_OK;
	text.resize(raw.len);
	auto *dst = reinterpret_cast<uint8_t *>(text.data());
	int32_t n = helios_json_string(raw, dst);
	if (n < 0) n = int32_t(helios_json_compact(raw, dst));
	if (std::string_view(text.data(), size_t(n)) == equals) helios_emit(out, r->key, r->value);
	return HELIOS_OK;
}

HELIOS_OPERATOR_WITH_INIT(keep, configure)
