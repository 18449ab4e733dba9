/* test_proto_replies.c — the TCP protocol's formatters and reply parser
 * (tcp/proto_format.c, tcp/proto_reply.c): exact bytes, refusals, and round
 * trips through the parsers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

#define S(lit) lit, sizeof(lit) - 1

static const struct proto_limits lim_small = {.max_line = 64, .max_payload = 16};

static void parser_new(struct proto_parser *p)
{
	assert_int_equal(proto_parser_init(p, &lim_small), 0);
}

/* Check the exact bytes of every formatter. */
static void test_proto_format_exact_text(void **state)
{
	struct buf b = BUF_INIT;
	(void)state;
#define EXPECT(call, text)                                               \
	do {                                                             \
		buf_reset(&b);                                           \
		assert_int_equal(call, 0);                               \
		assert_int_equal(b.len, sizeof(text) - 1);               \
		assert_memory_equal(b.data, text, sizeof(text) - 1);     \
	} while (0)
	EXPECT(proto_format_task(&b, 42, 1, "a\r\nb\0", 5), "TASK 42 1 5\r\na\r\nb\0\r\n");
	EXPECT(proto_format_task(&b, UINT64_MAX, 3, "", 0), "TASK 18446744073709551615 3 0\r\n\r\n");
	EXPECT(proto_format_tasks(&b, 0), "TASKS 0\r\n");
	EXPECT(proto_format_tasks(&b, 64), "TASKS 64\r\n");
	EXPECT(proto_format_none(&b), "NONE\r\n");
	EXPECT(proto_format_ok(&b), "OK\r\n");
	EXPECT(proto_format_ok_id(&b, 1234567890123ULL), "OK 1234567890123\r\n");
	EXPECT(proto_format_ok_duplicate(&b, 42), "OK 42 duplicate\r\n");
	EXPECT(proto_format_err(&b, PROTO_E_NOT_LEASED), "ERR not-leased\r\n");
	EXPECT(proto_format_err(&b, PROTO_E_LINE_TOO_LONG), "ERR line-too-long\r\n");
	EXPECT(proto_format_pong(&b), "PONG\r\n");
	EXPECT(proto_format_bye(&b), "BYE\r\n");
	EXPECT(proto_format_stats(&b, S("{\"pending\":3}")), "{\"pending\":3}\r\n");
	EXPECT(proto_format_get_task(&b, -1, NULL), "GET_TASK\r\n");
	EXPECT(proto_format_get_task(&b, 250, ""), "GET_TASK WAIT 250\r\n");
	EXPECT(proto_format_get_tasks(&b, 8, -1, NULL), "GET_TASKS 8\r\n");
	EXPECT(proto_format_get_tasks(&b, 8, 0, NULL), "GET_TASKS 8 WAIT 0\r\n");
	EXPECT(proto_format_get_tasks(&b, 8, 0, "a,b"), "GET_TASKS 8 WAIT 0 queue=a,b\r\n");
	EXPECT(proto_format_get_task(&b, -1, "emails"), "GET_TASK queue=emails\r\n");
	EXPECT(proto_format_result(&b, 5, S("42 apples")), "RESULT 5 42 apples\r\n");
	EXPECT(proto_format_result(&b, 5, S("")), "RESULT 5 \r\n");
	EXPECT(proto_format_fail(&b, 6, S("bad json")), "FAIL 6 bad json\r\n");
	EXPECT(proto_format_retry(&b, 7, S("timed out")), "RETRY 7 timed out\r\n");
	EXPECT(proto_format_auth(&b, S("tok en")), "AUTH tok en\r\n");
	EXPECT(proto_format_err(&b, PROTO_E_UNAUTHORIZED), "ERR unauthorized\r\n");
	EXPECT(proto_format_err(&b, PROTO_E_TOO_MANY_ERRORS), "ERR too-many-errors\r\n");
	EXPECT(proto_format_put(&b, FORQ_HIGH, "x\ny", 3), "PUT high 3\r\nx\ny\r\n");
	EXPECT(proto_format_put(&b, FORQ_NORMAL, "", 0), "PUT normal 0\r\n\r\n");
	EXPECT(proto_format_touch(&b, 9), "TOUCH 9\r\n");
	EXPECT(proto_format_simple(&b, PROTO_PING), "PING\r\n");
	EXPECT(proto_format_simple(&b, PROTO_STATS), "STATS\r\n");
	EXPECT(proto_format_simple(&b, PROTO_EXIT), "EXIT\r\n");
#undef EXPECT
	buf_free(&b);
}

/* Check that refused formats return -EINVAL and leave the buffer unchanged. */
static void test_proto_format_refusals_change_nothing(void **state)
{
	struct buf b = BUF_INIT;
	(void)state;
	assert_int_equal(buf_puts(&b, "keep"), 0);
	assert_int_equal(proto_format_err(&b, 0), -EINVAL);
	assert_int_equal(proto_format_err(&b, -PROTO_E_COUNT - 1), -EINVAL);
	assert_int_equal(proto_format_stats(&b, S("{\"a\":1}\n")), -EINVAL);
	assert_int_equal(proto_format_stats(&b, S("[1]")), -EINVAL);
	assert_int_equal(proto_format_stats(&b, S("")), -EINVAL);
	assert_int_equal(proto_format_result(&b, 1, S("two\r\nlines")), -EINVAL);
	assert_int_equal(proto_format_fail(&b, 1, S("")), -EINVAL);
	assert_int_equal(proto_format_fail(&b, 1, S("a\rb")), -EINVAL);
	assert_int_equal(proto_format_retry(&b, 1, S("")), -EINVAL);
	assert_int_equal(proto_format_retry(&b, 1, S("a\nb")), -EINVAL);
	assert_int_equal(proto_format_auth(&b, S("")), -EINVAL);
	assert_int_equal(proto_format_auth(&b, S("tok\r\n")), -EINVAL);
	assert_int_equal(proto_format_get_tasks(&b, 0, -1, NULL), -EINVAL);
	assert_int_equal(proto_format_get_tasks(&b, 2, 5, "a b"), -EINVAL);
	assert_int_equal(proto_format_get_task(&b, -1, "a\r\n"), -EINVAL);
	assert_int_equal(proto_format_put(&b, (enum forq_prio)3, "x", 1), -EINVAL);
	assert_int_equal(proto_format_simple(&b, PROTO_PUT), -EINVAL);
	assert_int_equal(b.len, 4);
	assert_string_equal(b.data, "keep");
	buf_free(&b);
}

/* Check that every client request the formatters write parses back to itself. */
static void test_proto_format_requests_round_trip_through_parser(void **state)
{
	struct buf b = BUF_INIT;
	struct proto_parser p;
	struct proto_req r[9];
	size_t used, off = 0;
	(void)state;
	assert_int_equal(proto_format_get_task(&b, 100, NULL), 0);
	assert_int_equal(proto_format_get_tasks(&b, 4, -1, NULL), 0);
	assert_int_equal(proto_format_result(&b, 11, S("v a l")), 0);
	assert_int_equal(proto_format_fail(&b, 12, S("oops")), 0);
	assert_int_equal(proto_format_put(&b, FORQ_LOW, "\r\n\r\n", 4), 0);
	assert_int_equal(proto_format_touch(&b, 13), 0);
	assert_int_equal(proto_format_simple(&b, PROTO_PING), 0);
	assert_int_equal(proto_format_simple(&b, PROTO_STATS), 0);
	assert_int_equal(proto_format_simple(&b, PROTO_EXIT), 0);
	parser_new(&p);
	for (int i = 0; i < 9; i++) {
		assert_int_equal(proto_parse(&p, b.data + off, b.len - off, &r[i], &used),
				 PROTO_PARSED);
		off += used;
	}
	assert_int_equal(off, b.len);
	assert_int_equal(r[0].cmd, PROTO_GET_TASK);
	assert_int_equal(r[0].wait_ms, 100);
	assert_int_equal(r[1].count, 4);
	assert_true(r[2].id == 11);
	assert_int_equal(r[2].text_len, 5);
	assert_memory_equal(r[2].text, "v a l", 5);
	assert_true(r[3].id == 12);
	assert_int_equal(r[4].prio, FORQ_LOW);
	assert_int_equal(r[4].text_len, 4);
	assert_true(r[5].id == 13);
	assert_int_equal(r[6].cmd, PROTO_PING);
	assert_int_equal(r[7].cmd, PROTO_STATS);
	assert_int_equal(r[8].cmd, PROTO_EXIT);
	buf_free(&b);
}

/* Check that every reply the server writes parses back on the client side, also
 * when it arrives byte by byte. */
static void test_proto_parse_reply_round_trips_formatted_replies(void **state)
{
	struct buf b = BUF_INIT;
	struct proto_reply rep;
	size_t used, off = 0;
	(void)state;
	assert_int_equal(proto_format_tasks(&b, 2), 0);
	assert_int_equal(proto_format_task(&b, 7, 1, "p\r\n", 3), 0);
	assert_int_equal(proto_format_task(&b, 8, 2, "", 0), 0);
	assert_int_equal(proto_format_none(&b), 0);
	assert_int_equal(proto_format_ok(&b), 0);
	assert_int_equal(proto_format_ok_id(&b, 99), 0);
	assert_int_equal(proto_format_err(&b, PROTO_E_QUEUE_FULL), 0);
	assert_int_equal(proto_format_pong(&b), 0);
	assert_int_equal(proto_format_stats(&b, S("{\"x\": 1}")), 0);
	assert_int_equal(proto_format_bye(&b), 0);
	assert_int_equal(proto_format_ok_duplicate(&b, 5), 0);

	static const enum proto_reply_kind kinds[] = {
		PROTO_REP_TASKS, PROTO_REP_TASK, PROTO_REP_TASK, PROTO_REP_NONE, PROTO_REP_OK,
		PROTO_REP_OK_ID, PROTO_REP_ERR,  PROTO_REP_PONG, PROTO_REP_STATS, PROTO_REP_BYE,
		PROTO_REP_OK_ID,
	};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		/* Grow the visible input one byte at a time until the reply completes. */
		size_t have = 0;
		int rc;
		while ((rc = proto_parse_reply(&lim_small, b.data + off, have, &rep, &used)) ==
		       PROTO_MORE) {
			assert_int_equal(used, 0);
			assert_true(off + have < b.len);
			have++;
		}
		assert_int_equal(rc, PROTO_PARSED);
		assert_int_equal(used, have);
		assert_int_equal(rep.kind, kinds[i]);
		switch (i) {
		case 0: assert_int_equal(rep.count, 2); break;
		case 1:
			assert_true(rep.id == 7);
			assert_int_equal(rep.attempt, 1);
			assert_int_equal(rep.text_len, 3);
			assert_memory_equal(rep.text, "p\r\n", 3);
			break;
		case 2: assert_int_equal(rep.text_len, 0); break;
		case 5: assert_true(rep.id == 99 && !rep.duplicate); break;
		case 10: assert_true(rep.id == 5 && rep.duplicate); break;
		case 6:
			assert_int_equal(rep.text_len, 10);
			assert_memory_equal(rep.text, "queue-full", 10);
			break;
		case 8:
			assert_int_equal(rep.text_len, 8);
			assert_memory_equal(rep.text, "{\"x\": 1}", 8);
			break;
		}
		off += used;
	}
	assert_int_equal(off, b.len);
	buf_free(&b);
}

/* Check that garbage and oversized replies are refused. */
static void test_proto_parse_reply_refuses_bad_replies(void **state)
{
	static const struct {
		const char *in;
		int rc;
	} cases[] = {
		{"HELLO\r\n", PROTO_E_BAD_REPLY},
		{"\r\n", PROTO_E_BAD_REPLY},
		{"OK x\r\n", PROTO_E_BAD_REPLY},
		{"OK 1 2\r\n", PROTO_E_BAD_REPLY},
		{"OK 1 duplicates\r\n", PROTO_E_BAD_REPLY},
		{"TASK 1 1\r\n", PROTO_E_BAD_REPLY},
		{"TASK 1 4294967296 0\r\n\r\n", PROTO_E_BAD_REPLY},
		{"TASK 1 1 3\r\nabcd\r\n", PROTO_E_BAD_REPLY},
		{"TASK 1 1 17\r\n", PROTO_E_PAYLOAD_TOO_LARGE},
		{"TASKS -1\r\n", PROTO_E_BAD_REPLY},
		{"NONE 1\r\n", PROTO_E_BAD_REPLY},
		{"TASK 1 1 1 1 1\r\n", PROTO_E_BAD_REPLY},
		{"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		 PROTO_E_LINE_TOO_LONG},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct proto_reply rep;
		size_t used;
		int rc = proto_parse_reply(&lim_small, cases[i].in, strlen(cases[i].in), &rep, &used);
		if (rc != cases[i].rc)
			fail_msg("case %zu \"%s\": rc %d, want %d", i, cases[i].in, rc, cases[i].rc);
		assert_true(used <= strlen(cases[i].in));
	}
}

/* Check INFO both ways: the request line, the reply's exact text, its keys
 * read back in any order with unknown ones skipped, and bad values refused. */
static void test_proto_info_request_and_reply(void **state)
{
	static const struct proto_limits lim = {.max_line = 256, .max_payload = 16};
	struct proto_parser p;
	struct proto_req req;
	struct proto_reply rep;
	struct buf b = BUF_INIT;
	size_t used;
	(void)state;
	assert_int_equal(proto_parser_init(&p, &lim), 0);
	assert_int_equal(proto_parse(&p, "info\r\n", 6, &req, &used), PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_INFO);
	assert_int_equal(proto_parse(&p, "INFO x\r\n", 8, &req, &used), PROTO_E_BAD_ARGS);
	assert_int_equal(proto_format_simple(&b, PROTO_INFO), 0);
	assert_string_equal(b.data, "INFO\r\n");
	buf_reset(&b);
	struct proto_info in = {.lease_timeout_ms = 30000, .max_payload = 1024, .batch_max = 64};
	assert_int_equal(proto_format_info(&b, &in), 0);
	assert_string_equal(b.data, "INFO lease_timeout_ms=30000 max_payload=1024 batch_max=64\r\n");
	assert_int_equal(proto_parse_reply(&lim, b.data, b.len, &rep, &used), PROTO_PARSED);
	assert_int_equal(used, b.len);
	assert_int_equal(rep.kind, PROTO_REP_INFO);
	assert_memory_equal(&rep.info, &in, sizeof in);
	static const char *later = "INFO batch_max=2 color=blue lease_timeout_ms=5\r\n";
	assert_int_equal(proto_parse_reply(&lim, later, strlen(later), &rep, &used), PROTO_PARSED);
	assert_int_equal(rep.info.lease_timeout_ms, 5);
	assert_int_equal(rep.info.batch_max, 2);
	assert_int_equal(rep.info.max_payload, 0); /* not sent */
	static const char *bad[] = {"INFO lease_timeout_ms=x\r\n", "INFO lease_timeout_ms\r\n",
				    "INFO batch_max=4294967296\r\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(proto_parse_reply(&lim, bad[i], strlen(bad[i]), &rep, &used),
				 PROTO_E_BAD_REPLY);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proto_format_exact_text),
		cmocka_unit_test(test_proto_format_refusals_change_nothing),
		cmocka_unit_test(test_proto_format_requests_round_trip_through_parser),
		cmocka_unit_test(test_proto_parse_reply_round_trips_formatted_replies),
		cmocka_unit_test(test_proto_parse_reply_refuses_bad_replies),
		cmocka_unit_test(test_proto_info_request_and_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
