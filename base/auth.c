/* auth.c — constant-time bearer token check. */
#include "auth.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

int auth_init(struct auth *a, const char *token)
{
	memset(a, 0, sizeof *a);
	if (!token)
		return 0;
	if (!*token)
		return -EINVAL;
	sha256(token, strlen(token), a->digest);
	a->enabled = 1;
	return 0;
}

void auth_clear(struct auth *a)
{
	explicit_bzero(a, sizeof *a);
}

int auth_check_token(const struct auth *a, const char *token, size_t len)
{
	uint8_t d[SHA256_DIGEST_LEN];
	unsigned diff = 0;

	if (!a->enabled || !token)
		return 0;
	/* Hashing first makes the comparison independent of the lengths. */
	sha256(token, len, d);
	for (size_t i = 0; i < SHA256_DIGEST_LEN; i++)
		diff |= (unsigned)(d[i] ^ a->digest[i]);
	explicit_bzero(d, sizeof d);
	return diff == 0;
}

int auth_check_bearer(const struct auth *a, const char *h)
{
	static const char scheme[] = "Bearer";

	if (!a->enabled || !h || strncasecmp(h, scheme, sizeof scheme - 1) != 0)
		return 0;
	h += sizeof scheme - 1;
	if (*h != ' ' && *h != '\t')
		return 0;
	while (*h == ' ' || *h == '\t')
		h++;
	return auth_check_token(a, h, strlen(h));
}
