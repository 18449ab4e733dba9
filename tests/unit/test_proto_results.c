/* test_proto_results.c — the RESULTS batch of tcp/proto.c: parsing items
 * whole and split at every byte, binary values, the cap, cut values, the
 * malformed items that lose the framing, and the batch's formatters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define S(lit) lit, sizeof(lit) - 1

/* max_value 0: values are cut at max_payload, 16 bytes. */
static const struct proto_limits lim_small = {.max_line = 64, .max_payload = 16};

/* A batch with every item kind, a value holding CRLF and a NUL, an empty
 * one, bare-LF line ends, and a command after it. */
static const char batch[] = "RESULTS 3\r\n"
			    "RESULT 1 6\r\na\r\nb\0c\r\n"
			    "fail 2 0\r\n\r\n"
			    "RETRY 18446744073709551615 2\nhi\n"
			    "PING\r\n";

/* Feeds in[0..n) through a buffer of proto_max_request() bytes in pieces
 * of at most `step` bytes (0: all at once), the way the server does, and
 * writes one line per event to ev. Returns the last rc. */
static int feed(struct proto_parser *p, const char *in, size_t n, size_t step, char *ev,
		size_t evcap)
{
	size_t cap = proto_max_request(&p->lim), have = 0, fed = 0, used, el = 0;
	char *conn = malloc(cap);
	struct proto_req req;
	int rc = PROTO_MORE;
	assert_non_null(conn);
	ev[0] = '\0';
	while (fed < n) {
		size_t k = step ? step : n;
		if (k > n - fed)
			k = n - fed;
		if (k > cap - have)
			k = cap - have;
		memcpy(conn + have, in + fed, k);
		have += k;
		fed += k;
		do {
			rc = proto_parse(p, conn, have, &req, &used);
			assert_true(used <= have);
			if (rc == PROTO_PARSED) {
				el += (size_t)snprintf(ev + el, evcap - el, "%s %llu %u %d%d %zu:",
						       proto_cmd_word(req.cmd),
						       (unsigned long long)req.id, req.count,
						       req.item, req.item_last, req.text_len);
				for (size_t i = 0; i < req.text_len && el + 4 < evcap; i++)
					el += (size_t)snprintf(ev + el, evcap - el, "%02x",
							       (unsigned char)req.text[i]);
				el += (size_t)snprintf(ev + el, evcap - el, "\n");
			} else if (rc < 0) {
				el += (size_t)snprintf(ev + el, evcap - el, "ERR %s\n",
						       proto_err_word(rc));
			}
			memmove(conn, conn + used, have - used);
			have -= used;
		} while (rc != PROTO_MORE);
	}
	free(conn);
	return rc;
}

/* Check that a batch yields its header, then each item with its fields. */
static void test_results_batch_items_fill_fields(void **state)
{
	struct proto_parser p;
	struct proto_req req;
	size_t used, off = 0, len = sizeof batch - 1;
	(void)state;
	assert_int_equal(proto_parser_init(&p, &lim_small), 0);
	assert_int_equal(proto_parse(&p, batch, len, &req, &used), PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_RESULTS);
	assert_int_equal(req.count, 3);
	assert_int_equal(req.item, 0);
	assert_true(proto_parser_in_batch(&p));
	off += used;
	assert_int_equal(proto_parse(&p, batch + off, len - off, &req, &used), PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_RESULT);
	assert_int_equal(req.id, 1);
	assert_int_equal(req.text_len, 6);
	assert_memory_equal(req.text, "a\r\nb\0c", 6);
	assert_int_equal(req.item, 1);
	assert_int_equal(req.item_last, 0);
	off += used;
	assert_int_equal(proto_parse(&p, batch + off, len - off, &req, &used), PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_FAIL);
	assert_int_equal(req.id, 2);
	assert_int_equal(req.text_len, 0);
	assert_non_null(req.text);
	off += used;
	assert_int_equal(proto_parse(&p, batch + off, len - off, &req, &used), PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_RETRY);
	assert_true(req.id == UINT64_MAX);
	assert_memory_equal(req.text, "hi", 2);
	assert_int_equal(req.item_last, 1);
	assert_false(proto_parser_in_batch(&p));
	off += used;
	assert_int_equal(proto_parse(&p, batch + off, len - off, &req, &used), PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_PING);
	assert_int_equal(req.item, 0);
	assert_int_equal(off + used, len);
}

/* Check that the batch split at every byte, and fed a byte at a time, gives
 * the same events as all at once. */
static void test_results_batch_split_at_every_byte(void **state)
{
	struct proto_parser p;
	char whole[1024], part[1024];
	size_t len = sizeof batch - 1;
	(void)state;
	assert_int_equal(proto_parser_init(&p, &lim_small), 0);
	assert_int_equal(feed(&p, batch, len, 0, whole, sizeof whole), PROTO_MORE);
	assert_non_null(strstr(whole, "RESULT 1 0 10 6:610d0a620063\n"));
	assert_non_null(strstr(whole, "RETRY 18446744073709551615 0 11 2:6869\nPING"));
	for (size_t step = 1; step <= len; step++) {
		assert_int_equal(proto_parser_init(&p, &lim_small), 0);
		feed(&p, batch, len, step, part, sizeof part);
		assert_string_equal(part, whole);
	}
	for (size_t cut = 1; cut < len; cut++) { /* two pieces, split at cut */
		struct proto_parser q;
		char ev2[1024], *both = malloc(len);
		struct proto_req req;
		size_t used, have = cut, el;
		assert_int_equal(proto_parser_init(&q, &lim_small), 0);
		assert_non_null(both);
		memcpy(both, batch, cut);
		/* the first piece as far as it goes, then the rest */
		for (;;) {
			int rc = proto_parse(&q, both, have, &req, &used);
			memmove(both, both + used, have - used);
			have -= used;
			if (rc == PROTO_MORE)
				break;
		}
		memcpy(both + have, batch + cut, len - cut);
		el = have + len - cut;
		feed(&q, both, el, 0, ev2, sizeof ev2);
		/* the tail's events are the whole's last ones */
		assert_non_null(strstr(whole, ev2));
		free(both);
	}
}

/* Check that RESULTS 0 is answered on its own: what follows is a command. */
static void test_results_zero_is_the_probe(void **state)
{
	struct proto_parser p;
	char ev[256];
	(void)state;
	assert_int_equal(proto_parser_init(&p, &lim_small), 0);
	feed(&p, S("results 0\r\nRESULT 5 ok\r\n"), 0, ev, sizeof ev);
	assert_string_equal(ev, "RESULTS 0 0 00 0:\nRESULT 5 0 00 2:6f6b\n");
	assert_false(proto_parser_in_batch(&p));
}

/* Check the cap on k, and that a bad RESULTS line loses the framing: what
 * follows (its items, probably) is dropped. */
static void test_results_count_cap_and_bad_lines(void **state)
{
	static const struct {
		const char *in;
		const char *ev;
	} cases[] = {
		{"RESULTS 65536\r\n", "RESULTS 0 65536 00 0:\n"},
		{"RESULTS 65537\r\nPING\r\n", "ERR bad-count\n"},
		{"RESULTS 18446744073709551616\r\nPING\r\n", "ERR bad-count\n"},
		{"RESULTS x\r\nPING\r\n", "ERR bad-count\n"},
		{"RESULTS\r\nPING\r\n", "ERR bad-args\n"},
		{"RESULTS 1 2\r\nPING\r\n", "ERR bad-args\n"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct proto_parser p;
		char ev[256];
		assert_int_equal(proto_parser_init(&p, &lim_small), 0);
		feed(&p, cases[i].in, strlen(cases[i].in), 0, ev, sizeof ev);
		assert_string_equal(ev, cases[i].ev);
		assert_int_equal(proto_parser_lost(&p), i > 0);
	}
}

#define H1 "RESULTS 0 1 00 0:\n" /* the batch's header, as feed() writes it */
#define H2 "RESULTS 0 2 00 0:\n"

/* Check that each malformed item loses the framing: one ERR, then every
 * later byte dropped with PROTO_MORE. */
static void test_results_malformed_items_lose_framing(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		const char *ev;
	} cases[] = {
		{S("RESULTS 1\r\nPUT 1 1\r\nx\r\nPING\r\n"), H1 "ERR bad-args\n"},
		{S("RESULTS 1\r\n\r\nRESULT 1 1\r\nx\r\n"), H1 "ERR bad-args\n"},
		{S("RESULTS 1\r\nRESULT 1\r\nPING\r\n"), H1 "ERR bad-args\n"},
		{S("RESULTS 1\r\nRESULT 1 1 2\r\nPING\r\n"), H1 "ERR bad-args\n"},
		{S("RESULTS 1\r\nRESULT x 1\r\ny\r\nPING\r\n"), H1 "ERR bad-id\n"},
		{S("RESULTS 1\r\nRESULT -1 1\r\ny\r\nPING\r\n"), H1 "ERR bad-id\n"},
		{S("RESULTS 1\r\nRESULT 1 x\r\nPING\r\n"), H1 "ERR bad-length\n"},
		{S("RESULTS 1\r\nRESULT 1 1\r\nab\r\nPING\r\n"), H1 "ERR bad-payload-terminator\n"},
		{S("RESULTS 1\r\nRESULT 1 1\r\na\rPING\r\n"), H1 "ERR bad-payload-terminator\n"},
		{S("RESULTS 2\r\nRESULT 1 1\r\na\r\nRESULT 9999999999999999999999 0\r\n\r\n"),
		 H2 "RESULT 1 0 10 1:61\nERR bad-id\n"},
		{S("RESULTS 1\r\nRESULT 1 1 "
		   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"),
		 H1 "ERR line-too-long\n"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct proto_parser p;
		struct proto_req req;
		size_t used;
		char ev[256];
		assert_int_equal(proto_parser_init(&p, &lim_small), 0);
		feed(&p, cases[i].in, cases[i].len, 0, ev, sizeof ev);
		assert_string_equal(ev, cases[i].ev);
		assert_true(proto_parser_lost(&p));
		assert_false(proto_parser_in_batch(&p));
		assert_int_equal(proto_parse(&p, S("PING\r\n"), &req, &used), PROTO_MORE);
		assert_int_equal(used, 6);
		/* split at every byte: the same */
		for (size_t step = 1; step < 8; step++) {
			assert_int_equal(proto_parser_init(&p, &lim_small), 0);
			feed(&p, cases[i].in, cases[i].len, step, ev, sizeof ev);
			assert_string_equal(ev, cases[i].ev);
		}
	}
}

/* Check that a value over max_value is cut, its rest dropped as it comes
 * (never buffered: a buffer of proto_max_request() bytes suffices), and the
 * batch goes on; a cut value's wrong line end still loses the framing. */
static void test_results_long_value_cut_and_rest_dropped(void **state)
{
	struct proto_parser p;
	char in[4096], ev[512];
	size_t n = 0;
	(void)state;
	n += (size_t)sprintf(in + n, "RESULTS 2\r\nRESULT 1 3000\r\n");
	memset(in + n, 'v', 3000);
	n += 3000;
	n += (size_t)sprintf(in + n, "\r\nRESULT 2 1\r\nz\r\nPING\r\n");
	for (size_t step = 0; step < 40; step += 7) {
		assert_int_equal(proto_parser_init(&p, &lim_small), 0);
		feed(&p, in, n, step, ev, sizeof ev);
		assert_string_equal(ev, "RESULTS 0 2 00 0:\n"
					"RESULT 1 0 10 16:76767676767676767676767676767676\n"
					"RESULT 2 0 11 1:7a\nPING 0 0 00 0:\n");
	}
	/* The cut tail ends in "x" rather than a line end. */
	n = (size_t)sprintf(in, "RESULTS 1\r\nRESULT 1 20\r\n%s", "0123456789abcdefghijxPING\r\n");
	assert_int_equal(proto_parser_init(&p, &lim_small), 0);
	feed(&p, in, n, 5, ev, sizeof ev);
	assert_string_equal(ev, H1 "RESULT 1 0 11 16:30313233343536373839616263646566\n"
				   "ERR bad-payload-terminator\n");
	assert_true(proto_parser_lost(&p));
	/* A bigger max_value: the buffer bound grows with it. */
	struct proto_limits big = {.max_line = 64, .max_payload = 16, .max_value = 1000};
	assert_int_equal(proto_max_request(&big), 64 + 1000 + 2);
	assert_int_equal(proto_max_request(&lim_small), 64 + 16 + 2);
	struct proto_limits huge = {.max_line = 64, .max_payload = 16, .max_value = SIZE_MAX - 10};
	assert_int_equal(proto_parser_init(&p, &huge), -EINVAL);
}

/* Check the batch's formatters and that the reply parser reads its reply. */
static void test_results_format_and_reply(void **state)
{
	struct buf b = BUF_INIT;
	struct proto_reply rep;
	struct proto_limits lim = {.max_line = 256, .max_payload = 16};
	size_t used;
	(void)state;
	assert_int_equal(proto_format_results(&b, 3), 0);
	assert_int_equal(proto_format_item(&b, PROTO_RESULT, 7, "a\r\n\0", 4), 0);
	assert_int_equal(proto_format_item(&b, PROTO_FAIL, 8, "", 0), 0);
	assert_int_equal(proto_format_item(&b, PROTO_RETRY, UINT64_MAX, "x", 1), 0);
	assert_int_equal(b.len, 11 + 12 + 4 + 2 + 10 + 2 + 30 + 1 + 2);
	assert_memory_equal(b.data, "RESULTS 3\r\nRESULT 7 4\r\na\r\n\0\r\nFAIL 8 0\r\n\r\n"
			    "RETRY 18446744073709551615 1\r\nx\r\n", b.len);
	size_t len = b.len;
	assert_int_equal(proto_format_results(&b, PROTO_RESULTS_MAX + 1), -EINVAL);
	assert_int_equal(proto_format_item(&b, PROTO_PUT, 1, "x", 1), -EINVAL);
	assert_int_equal(b.len, len);
	/* what the formatters wrote parses back */
	struct proto_parser p;
	char ev[512];
	struct proto_limits pl = {.max_line = 64, .max_payload = 16};
	assert_int_equal(proto_parser_init(&p, &pl), 0);
	feed(&p, b.data, b.len, 0, ev, sizeof ev);
	assert_string_equal(ev, "RESULTS 0 3 00 0:\nRESULT 7 0 10 4:610d0a00\nFAIL 8 0 10 0:\n"
				"RETRY 18446744073709551615 0 11 1:78\n");
	buf_reset(&b);
	assert_int_equal(proto_format_results_reply(&b, 3, 1), 0);
	assert_string_equal(b.data, "RESULTS 3 1\r\n");
	assert_int_equal(proto_parse_reply(&lim, b.data, b.len, &rep, &used), PROTO_PARSED);
	assert_int_equal(rep.kind, PROTO_REP_RESULTS);
	assert_int_equal(rep.count, 3);
	assert_int_equal(rep.not_leased, 1);
	assert_int_equal(used, b.len);
	assert_int_equal(proto_parse_reply(&lim, S("RESULTS 3\r\n"), &rep, &used), PROTO_E_BAD_REPLY);
	assert_int_equal(proto_parse_reply(&lim, S("RESULTS 3 x\r\n"), &rep, &used),
			 PROTO_E_BAD_REPLY);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_results_batch_items_fill_fields),
		cmocka_unit_test(test_results_batch_split_at_every_byte),
		cmocka_unit_test(test_results_zero_is_the_probe),
		cmocka_unit_test(test_results_count_cap_and_bad_lines),
		cmocka_unit_test(test_results_malformed_items_lose_framing),
		cmocka_unit_test(test_results_long_value_cut_and_rest_dropped),
		cmocka_unit_test(test_results_format_and_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
