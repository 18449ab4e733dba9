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

int auth_add_worker(struct auth *a, const char *worker_token)
{
	if (!worker_token)
		return 0;
	if (!*worker_token || !a->enabled)
		return -EINVAL;
	sha256(worker_token, strlen(worker_token), a->worker);
	a->has_worker = 1;
	return 0;
}

enum auth_role auth_role_of(const struct auth *a, const char *token, size_t len)
{
	uint8_t d[SHA256_DIGEST_LEN];
	unsigned admin = 0, worker = 0;

	if (!a->enabled || !token)
		return AUTH_NONE;
	/* Hashing first makes the comparison independent of the lengths; both
	 * digests are always compared, so the time says nothing of which. */
	sha256(token, len, d);
	for (size_t i = 0; i < SHA256_DIGEST_LEN; i++) {
		admin |= (unsigned)(d[i] ^ a->digest[i]);
		worker |= (unsigned)(d[i] ^ a->worker[i]);
	}
	explicit_bzero(d, sizeof d);
	return admin == 0 ? AUTH_ADMIN : worker == 0 && a->has_worker ? AUTH_WORKER : AUTH_NONE;
}

enum auth_role auth_role_bearer(const struct auth *a, const char *h)
{
	static const char scheme[] = "Bearer";

	if (!a->enabled || !h || strncasecmp(h, scheme, sizeof scheme - 1) != 0)
		return AUTH_NONE;
	h += sizeof scheme - 1;
	if (*h != ' ' && *h != '\t')
		return AUTH_NONE;
	while (*h == ' ' || *h == '\t')
		h++;
	return auth_role_of(a, h, strlen(h));
}

int auth_check_token(const struct auth *a, const char *token, size_t len)
{
	return auth_role_of(a, token, len) == AUTH_ADMIN;
}

int auth_check_bearer(const struct auth *a, const char *h)
{
	return auth_role_bearer(a, h) == AUTH_ADMIN;
}
