/* auth.h — the admin token check: HTTP's protected routes, TCP's AUTH.
 *
 * Only the SHA-256 of the token is kept. A presented token is hashed too and
 * the two digests are compared in constant time, so neither the token's
 * length nor its bytes leak through timing. Nothing here logs the token.
 */
#ifndef FORQ_METRICS_AUTH_H
#define FORQ_METRICS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

struct auth {
	int enabled;                       /* 0: no token configured */
	uint8_t digest[SHA256_DIGEST_LEN]; /* SHA-256 of the token */
};

/* token NULL leaves auth disabled. Returns 0, or -EINVAL for an empty token
 * (refused: it would match "Authorization: Bearer "). */
int auth_init(struct auth *a, const char *token);
/* Wipes the digest. */
void auth_clear(struct auth *a);
/* 1 when a is enabled and token[0..len) is the configured token, else 0.
 * Constant time in the bytes and the length (both sides are hashed first).
 * Every byte counts: one holding a NUL never matches (the configured token
 * is a C string). */
int auth_check_token(const struct auth *a, const char *token, size_t len);
/* 1 when a is enabled and the header is "Bearer <token>" with the configured
 * token (scheme case-insensitive, blanks after it skipped), else 0.
 * NULL or empty header gives 0. */
int auth_check_bearer(const struct auth *a, const char *authorization_header);

#endif
