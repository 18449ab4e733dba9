/* json_payload.c — see json_payload.h. */
#include "json_payload.h"

#include <errno.h>
#include <string.h>

#include "errmsg.h"

int json_has_nul_escape(const char *s, size_t n)
{
	/* In valid JSON a backslash only starts an escape inside a string, so
	 * one pass finds any \u0000. */
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\')
			continue;
		if (i + 5 < n && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
			return 1;
		i++; /* skip the escaped character */
	}
	return 0;
}

int json_payload(const cJSON *v, struct buf *out, char *err, size_t errlen)
{
	char *printed = NULL;
	const char *text;
	int r = -EINVAL;
	if (cJSON_IsNull(v)) {
		errmsg_set(err, errlen, "payload is null");
		return r;
	}
	if (cJSON_IsString(v)) {
		text = v->valuestring;
	} else if (!(text = printed = cJSON_PrintUnformatted(v))) {
		return -ENOMEM;
	}
	size_t len = strlen(text);
	if (len == 0)
		errmsg_set(err, errlen, "empty payload");
	else
		r = buf_append(out, text, len);
	cJSON_free(printed);
	return r;
}
