/* filter: keeps the records whose JSON value has a top-level field equal to
 * a configured value (--config field=user --config equals=u1). A string
 * field is compared with its decoded text, any other value with its compact
 * JSON text. A value that is not a JSON object fails the record. */
#include "helios.h"

static const char *field, *equals;
static size_t equals_len;

static const char *configure(void) {
	field = helios_config_get("field");
	if (field) field = strdup(field);
	equals = helios_config_get("equals");
	if (!field || !*field || !equals) return "filter: needs --config field=NAME --config equals=VALUE";
	equals = strdup(equals);
	equals_len = strlen(equals);
	return NULL;
}

static int keep(const helios_record *r, helios_emitter *out) {
	helios_bytes raw;
	int found = helios_json_field(r->value, field, &raw);
	if (found < 0) return helios_fail(out, HELIOS_FAIL_INVALID_INPUT, "filter: value is not a JSON object");
	if (!found) return HELIOS_OK;
	uint8_t *text = helios_scratch(out, raw.len);
	int32_t n = helios_json_string(raw, text);
	if (n < 0) n = (int32_t)helios_json_compact(raw, text);
	if ((size_t)n == equals_len && memcmp(text, equals, equals_len) == 0) helios_emit(out, r->key, r->value);
	return HELIOS_OK;
}

HELIOS_OPERATOR_WITH_INIT(keep, configure)
