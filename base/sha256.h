/* sha256.h — SHA-256 (FIPS 180-4), small and portable, for auth.c.
 * Not for bulk hashing: it favours clarity over speed. */
#ifndef FORQ_METRICS_SHA256_H
#define FORQ_METRICS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32

struct sha256 {
	uint32_t h[8];
	uint64_t len;       /* bytes hashed so far */
	uint8_t block[64];  /* partial block */
	size_t fill;        /* bytes used in block */
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t n);
/* Writes the digest and wipes the context. */
void sha256_final(struct sha256 *c, uint8_t out[SHA256_DIGEST_LEN]);
/* One call: out = SHA-256(data[0..n)). */
void sha256(const void *data, size_t n, uint8_t out[SHA256_DIGEST_LEN]);

#endif
