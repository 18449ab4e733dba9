/* test_auth.c — SHA-256 against FIPS 180-2 vectors, and the bearer check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "sha256.h"

static void hex(const uint8_t d[SHA256_DIGEST_LEN], char out[65])
{
	for (int i = 0; i < SHA256_DIGEST_LEN; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

/* Check the FIPS 180-2 appendix B vectors, plus the empty string and a
 * message of exactly 55/56/64 bytes (padding edges). */
static void test_sha256_fips_vectors(void **state)
{
	(void)state;
	static const struct {
		const char *msg;
		const char *digest;
	} cases[] = {
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"The quick brown fox jumps over the lazy dog",
		 "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"},
	};
	uint8_t d[SHA256_DIGEST_LEN];
	char h[65];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sha256(cases[i].msg, strlen(cases[i].msg), d);
		hex(d, h);
		assert_string_equal(h, cases[i].digest);
	}
}

/* Check FIPS 180-2 B.3: one million 'a', fed in uneven pieces. */
static void test_sha256_million_a_in_pieces(void **state)
{
	(void)state;
	char chunk[997];
	struct sha256 c;
	uint8_t d[SHA256_DIGEST_LEN];
	char h[65];
	size_t left = 1000000;
	memset(chunk, 'a', sizeof chunk);
	sha256_init(&c);
	while (left) {
		size_t n = left < sizeof chunk ? left : sizeof chunk;
		sha256_update(&c, chunk, n);
		left -= n;
	}
	sha256_final(&c, d);
	hex(d, h);
	assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Check that streaming in any split gives the one-shot digest. */
static void test_sha256_split_matches_one_shot(void **state)
{
	(void)state;
	char msg[200];
	uint8_t a[SHA256_DIGEST_LEN], b[SHA256_DIGEST_LEN];
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (char)(i * 7 + 1);
	for (size_t len = 0; len <= sizeof msg; len += 13) {
		sha256(msg, len, a);
		for (size_t cut = 0; cut <= len; cut += 5) {
			struct sha256 c;
			sha256_init(&c);
			sha256_update(&c, msg, cut);
			sha256_update(&c, msg + cut, len - cut);
			sha256_final(&c, b);
			assert_memory_equal(a, b, sizeof a);
		}
	}
}

/* Check the bearer check on a table of headers. */
static void test_auth_bearer_table(void **state)
{
	(void)state;
	static const struct {
		const char *header;
		int ok;
	} cases[] = {
		{"Bearer s3cret-token", 1},
		{"bearer s3cret-token", 1},      /* scheme is case-insensitive */
		{"Bearer   s3cret-token", 1},    /* blanks after the scheme */
		{"Bearer s3cret-tokeN", 0},      /* wrong token */
		{"Bearer s3cret-toke", 0},       /* shorter */
		{"Bearer s3cret-token2", 0},     /* longer */
		{"Bearer s3cret-token ", 0},     /* trailing blank is part of it */
		{"s3cret-token", 0},             /* missing "Bearer " */
		{"Bearers3cret-token", 0},       /* no blank after the scheme */
		{"Basic czNjcmV0LXRva2Vu", 0},   /* other scheme */
		{"Bearer ", 0},                  /* empty token */
		{"Bearer", 0},
		{"", 0},                         /* empty header */
		{NULL, 0},                       /* no header */
	};
	struct auth a;
	assert_int_equal(auth_init(&a, "s3cret-token"), 0);
	assert_true(a.enabled);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (auth_check_bearer(&a, cases[i].header) != cases[i].ok)
			fail_msg("case %zu \"%s\": want %d", i,
				 cases[i].header ? cases[i].header : "(null)", cases[i].ok);
	}
	auth_clear(&a);
	assert_false(a.enabled);
	assert_int_equal(auth_check_bearer(&a, "Bearer s3cret-token"), 0);
}

/* Check the raw token check (TCP AUTH): exact bytes and length, no NUL. */
static void test_auth_token_table(void **state)
{
	(void)state;
	static const struct {
		const char *token;
		size_t len;
		int ok;
	} cases[] = {
		{"s3cret-token", 12, 1},
		{"s3cret-token", 11, 0},      /* a prefix */
		{"s3cret-token2", 13, 0},     /* longer */
		{"S3cret-token", 12, 0},      /* case matters */
		{"s3cret-token ", 13, 0},     /* a trailing blank is part of it */
		{"s3cret-token\0x", 14, 0},   /* the token, then a NUL and more */
		{"", 0, 0},
		{NULL, 0, 0},
	};
	struct auth a;
	assert_int_equal(auth_init(&a, "s3cret-token"), 0);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (auth_check_token(&a, cases[i].token, cases[i].len) != cases[i].ok)
			fail_msg("case %zu: want %d", i, cases[i].ok);
	auth_clear(&a);
	assert_int_equal(auth_check_token(&a, "s3cret-token", 12), 0);
}

/* Check that without a token nothing passes, and an empty token is refused. */
static void test_auth_disabled_and_empty_token(void **state)
{
	(void)state;
	struct auth a;
	assert_int_equal(auth_init(&a, NULL), 0);
	assert_false(a.enabled);
	assert_int_equal(auth_check_bearer(&a, "Bearer "), 0);
	assert_int_equal(auth_check_bearer(&a, "Bearer anything"), 0);
	assert_int_equal(auth_init(&a, ""), -EINVAL);
	assert_false(a.enabled);
}

/* Check the two roles: the admin token is ADMIN, the worker token WORKER
 * (never ADMIN: auth_check_* stay admin-only), anything else NONE; a worker
 * token needs an admin token and cannot be empty. */
static void test_auth_roles(void **state)
{
	(void)state;
	struct auth a;
	assert_int_equal(auth_init(&a, NULL), 0);
	assert_int_equal(auth_add_worker(&a, "worker-token-1"), -EINVAL);
	assert_int_equal(auth_init(&a, "admin-token-1"), 0);
	assert_int_equal(auth_role_of(&a, "worker-token-1", 14), AUTH_NONE); /* none set yet */
	assert_int_equal(auth_add_worker(&a, ""), -EINVAL);
	assert_int_equal(auth_add_worker(&a, "worker-token-1"), 0);
	assert_int_equal(auth_role_of(&a, "admin-token-1", 13), AUTH_ADMIN);
	assert_int_equal(auth_role_of(&a, "worker-token-1", 14), AUTH_WORKER);
	assert_int_equal(auth_role_of(&a, "worker-token-", 13), AUTH_NONE);
	assert_int_equal(auth_role_of(&a, "", 0), AUTH_NONE);
	assert_int_equal(auth_role_bearer(&a, "Bearer worker-token-1"), AUTH_WORKER);
	assert_int_equal(auth_role_bearer(&a, "bearer  admin-token-1"), AUTH_ADMIN);
	assert_int_equal(auth_role_bearer(&a, NULL), AUTH_NONE);
	assert_int_equal(auth_check_bearer(&a, "Bearer worker-token-1"), 0);
	assert_int_equal(auth_check_token(&a, "worker-token-1", 14), 0);
	assert_int_equal(auth_check_token(&a, "admin-token-1", 13), 1);
	auth_clear(&a);
	assert_int_equal(auth_role_of(&a, "admin-token-1", 13), AUTH_NONE);
}

/* Check that only the digest is kept, not the token's bytes. */
static void test_auth_keeps_only_the_digest(void **state)
{
	(void)state;
	struct auth a;
	uint8_t d[SHA256_DIGEST_LEN];
	assert_int_equal(auth_init(&a, "abc"), 0);
	sha256("abc", 3, d);
	assert_memory_equal(a.digest, d, sizeof d);
	assert_null(memmem(&a, sizeof a, "abc", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_fips_vectors),
		cmocka_unit_test(test_sha256_million_a_in_pieces),
		cmocka_unit_test(test_sha256_split_matches_one_shot),
		cmocka_unit_test(test_auth_bearer_table),
		cmocka_unit_test(test_auth_token_table),
		cmocka_unit_test(test_auth_disabled_and_empty_token),
		cmocka_unit_test(test_auth_keeps_only_the_digest),
		cmocka_unit_test(test_auth_roles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
