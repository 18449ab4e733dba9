/* auth.h — the token checks of HTTP and TCP, with two roles:
 *   AUTH_ADMIN   the admin token: everything, POST /shutdown included;
 *   AUTH_WORKER  the lesser worker token (optional): what producers and
 *                workers need (push, lease, results, task reads), never an
 *                admin action.
 *
 * Only the SHA-256 of a token is kept. A presented token is hashed too and
 * the two digests are compared in constant time, so neither the token's
 * length nor its bytes leak through timing. Nothing here logs the token.
 */
#ifndef FORQ_METRICS_AUTH_H
#define FORQ_METRICS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

enum auth_role { AUTH_NONE = 0, AUTH_WORKER = 1, AUTH_ADMIN = 2 };

struct auth {
	int enabled;                       /* 0: no token configured */
	int has_worker;                    /* a worker token is configured too */
	uint8_t digest[SHA256_DIGEST_LEN]; /* SHA-256 of the admin token */
	uint8_t worker[SHA256_DIGEST_LEN]; /* SHA-256 of the worker token */
};

/* token NULL leaves auth disabled. Returns 0, or -EINVAL for an empty token
 * (refused: it would match "Authorization: Bearer "). */
int auth_init(struct auth *a, const char *token);
/* Adds the worker token (after auth_init with an admin token; NULL: none).
 * Returns 0, or -EINVAL for an empty token or one without an admin token. */
int auth_add_worker(struct auth *a, const char *worker_token);
/* The role token[0..len) grants (both digests compared, in constant time). */
enum auth_role auth_role_of(const struct auth *a, const char *token, size_t len);
/* The role an "Authorization: Bearer <token>" header grants. */
enum auth_role auth_role_bearer(const struct auth *a, const char *authorization_header);
/* Wipes the digest. */
void auth_clear(struct auth *a);
/* 1 when a is enabled and token[0..len) is the admin token, else 0.
 * Constant time in the bytes and the length (both sides are hashed first).
 * Every byte counts: one holding a NUL never matches (the configured token
 * is a C string). */
int auth_check_token(const struct auth *a, const char *token, size_t len);
/* 1 when a is enabled and the header is "Bearer <token>" with the admin
 * token (scheme case-insensitive, blanks after it skipped), else 0.
 * NULL or empty header gives 0. */
int auth_check_bearer(const struct auth *a, const char *authorization_header);

#endif
