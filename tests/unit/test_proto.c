/* test_proto.c — the TCP protocol's request parser (tcp/proto.c); its
 * formatters and reply parser are in test_proto_replies.c. */
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

/* Check that good requests fill the right fields and use the whole input. */
static void test_proto_parse_good_requests_fill_fields(void **state)
{
	static const struct {
		const char *in;
		enum proto_cmd cmd;
		uint64_t id;
		uint32_t count;
		int32_t wait_ms;
		int prio;
		const char *text; /* NULL: no text expected */
		size_t text_len;
	} cases[] = {
		{"GET_TASK\r\n", PROTO_GET_TASK, 0, 0, -1, FORQ_NORMAL, NULL, 0},
		{"get_task\n", PROTO_GET_TASK, 0, 0, -1, FORQ_NORMAL, NULL, 0},
		{"GET_TASK WAIT 500\r\n", PROTO_GET_TASK, 0, 0, 500, FORQ_NORMAL, NULL, 0},
		{"Get_Task wait 0\r\n", PROTO_GET_TASK, 0, 0, 0, FORQ_NORMAL, NULL, 0},
		{"GET_TASK WAIT 2147483647\r\n", PROTO_GET_TASK, 0, 0, INT32_MAX, FORQ_NORMAL, NULL, 0},
		{"GET_TASKS 10\r\n", PROTO_GET_TASKS, 0, 10, -1, FORQ_NORMAL, NULL, 0},
		{"GET_TASKS 1\r\n", PROTO_GET_TASKS, 0, 1, -1, FORQ_NORMAL, NULL, 0},
		{"GET_TASKS 4294967295 WAIT 7\r\n", PROTO_GET_TASKS, 0, UINT32_MAX, 7, FORQ_NORMAL,
		 NULL, 0},
		{"RESULT 42 hello world\r\n", PROTO_RESULT, 42, 0, -1, FORQ_NORMAL, S("hello world")},
		{"RESULT 42\r\n", PROTO_RESULT, 42, 0, -1, FORQ_NORMAL, S("")},
		{"RESULT 42 \r\n", PROTO_RESULT, 42, 0, -1, FORQ_NORMAL, S("")},
		{"RESULT 42  lead\r\n", PROTO_RESULT, 42, 0, -1, FORQ_NORMAL, S(" lead")},
		{"result 0 {\"a\": 1}\n", PROTO_RESULT, 0, 0, -1, FORQ_NORMAL, S("{\"a\": 1}")},
		{"RESULT 18446744073709551615 x\r\n", PROTO_RESULT, UINT64_MAX, 0, -1, FORQ_NORMAL,
		 S("x")},
		{"RESULT 007 x\r\n", PROTO_RESULT, 7, 0, -1, FORQ_NORMAL, S("x")},
		{"FAIL 7 bad input: a b\r\n", PROTO_FAIL, 7, 0, -1, FORQ_NORMAL, S("bad input: a b")},
		{"RETRY 8 exit status 1\r\n", PROTO_RETRY, 8, 0, -1, FORQ_NORMAL, S("exit status 1")},
		{"retry 8 x\n", PROTO_RETRY, 8, 0, -1, FORQ_NORMAL, S("x")},
		{"AUTH s3cret-token\r\n", PROTO_AUTH, 0, 0, -1, FORQ_NORMAL, S("s3cret-token")},
		{"auth \t a b \r\n", PROTO_AUTH, 0, 0, -1, FORQ_NORMAL, S("a b ")},
		{"TOUCH 9\r\n", PROTO_TOUCH, 9, 0, -1, FORQ_NORMAL, NULL, 0},
		{"touch\t9\r\n", PROTO_TOUCH, 9, 0, -1, FORQ_NORMAL, NULL, 0},
		{"PING\r\n", PROTO_PING, 0, 0, -1, FORQ_NORMAL, NULL, 0},
		{"  ping  \r\n", PROTO_PING, 0, 0, -1, FORQ_NORMAL, NULL, 0},
		{"STATS\r\n", PROTO_STATS, 0, 0, -1, FORQ_NORMAL, NULL, 0},
		{"exit\r\n", PROTO_EXIT, 0, 0, -1, FORQ_NORMAL, NULL, 0},
		{"EXIT\n", PROTO_EXIT, 0, 0, -1, FORQ_NORMAL, NULL, 0},
		{"QUIT\r\n", PROTO_EXIT, 0, 0, -1, FORQ_NORMAL, NULL, 0},
		{"PUT 5\r\nhello\r\n", PROTO_PUT, 0, 0, -1, FORQ_NORMAL, S("hello")},
		{"PUT high 3\r\nabc\n", PROTO_PUT, 0, 0, -1, FORQ_HIGH, S("abc")},
		{"put LOW 0\r\n\r\n", PROTO_PUT, 0, 0, -1, FORQ_LOW, S("")},
		{"PUT normal 16\r\n0123456789abcdef\r\n", PROTO_PUT, 0, 0, -1, FORQ_NORMAL,
		 S("0123456789abcdef")},
		{"\r\n\nPING\r\n", PROTO_PING, 0, 0, -1, FORQ_NORMAL, NULL, 0}, /* empty lines */
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct proto_parser p;
		struct proto_req req;
		size_t used = 12345, len = strlen(cases[i].in);
		parser_new(&p);
		int rc = proto_parse(&p, cases[i].in, len, &req, &used);
		if (rc != PROTO_PARSED)
			fail_msg("case %zu \"%s\": rc %d (%s)", i, cases[i].in, rc, proto_err_word(rc));
		assert_int_equal(used, len);
		assert_int_equal(req.cmd, cases[i].cmd);
		assert_true(req.id == cases[i].id);
		assert_int_equal(req.count, cases[i].count);
		assert_int_equal(req.wait_ms, cases[i].wait_ms);
		assert_int_equal(req.prio, cases[i].prio);
		if (!cases[i].text) {
			assert_null(req.text);
			assert_int_equal(req.text_len, 0);
		} else {
			assert_int_equal(req.text_len, cases[i].text_len);
			assert_memory_equal(req.text, cases[i].text, cases[i].text_len);
			assert_true(req.text >= cases[i].in && req.text + req.text_len <= cases[i].in + len);
		}
	}
}

/* Check PUT's delay option: alone, after a priority, and its bounds. */
static void test_proto_parse_put_delay(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int prio;
		uint64_t delay_ms;
	} cases[] = {
		{"PUT delay=1500 2\r\nab\r\n", FORQ_NORMAL, 1500},
		{"PUT high delay=0 2\r\nab\r\n", FORQ_HIGH, 0},
		{"PUT low delay=31622400000 2\r\nab\r\n", FORQ_LOW, 31622400000ull},
		{"PUT 2\r\nab\r\n", FORQ_NORMAL, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct proto_parser p;
		struct proto_req req;
		size_t used = 0;
		assert_int_equal(proto_parser_init(&p, &lim_small), 0);
		req.key = NULL;
		assert_int_equal(proto_parse(&p, cases[i].in, strlen(cases[i].in), &req, &used),
				 PROTO_PARSED);
		assert_int_equal(req.cmd, PROTO_PUT);
		assert_int_equal(req.prio, cases[i].prio);
		assert_true(req.delay_ms == cases[i].delay_ms);
		assert_int_equal(req.text_len, 2);
	}
}

/* Check PUT's key options: key= alone, with window= and delay= in any
 * order after the priority. */
static void test_proto_parse_put_key(void **state)
{
	(void)state;
	static const char in[] = "PUT low window=600000 key=user:42 delay=5 2\r\nab\r\n";
	struct proto_parser p;
	struct proto_req req;
	size_t used = 0;
	parser_new(&p);
	assert_int_equal(proto_parse(&p, in, strlen(in), &req, &used), PROTO_PARSED);
	assert_int_equal(req.prio, FORQ_LOW);
	assert_int_equal(req.key_len, 7);
	assert_memory_equal(req.key, "user:42", 7);
	assert_true(req.window_ms == 600000 && req.delay_ms == 5);
	static const char plain[] = "PUT 2\r\nab\r\n";
	assert_int_equal(proto_parse(&p, plain, strlen(plain), &req, &used), PROTO_PARSED);
	assert_null(req.key);
	assert_true(req.window_ms == 0);
}

/* Check the queue options: GET_TASK(S)'s queue= list before or after WAIT,
 * PUT's queue= among its options, STATS's optional name; without them no
 * queue (the default); proto_queue_next walks a list and refuses empty
 * names. */
static void test_proto_parse_queues(void **state)
{
	(void)state;
	static const char in[] = "GET_TASK queue=a,bb WAIT 5\r\n"
				 "GET_TASKS 3 WAIT 7 queue=emails\r\n"
				 "GET_TASKS 3\r\n"
				 "PUT high queue=emails delay=5 2\r\nab\r\n"
				 "STATS emails\r\nSTATS\r\n";
	struct proto_parser p;
	struct proto_req req;
	size_t used, at = 0;
	struct proto_limits lim = {.max_line = 256, .max_payload = 16};
	assert_int_equal(proto_parser_init(&p, &lim), 0);
#define NEXT()                                                                            \
	do {                                                                              \
		assert_int_equal(proto_parse(&p, in + at, strlen(in) - at, &req, &used),    \
				 PROTO_PARSED);                                           \
		at += used;                                                               \
	} while (0)
	NEXT();
	assert_int_equal(req.cmd, PROTO_GET_TASK);
	assert_int_equal(req.wait_ms, 5);
	assert_int_equal(req.queue_len, 4);
	assert_memory_equal(req.queue, "a,bb", 4);
	const char *it = req.queue, *name;
	size_t n;
	assert_int_equal(proto_queue_next(&it, req.queue + req.queue_len, &name, &n), 1);
	assert_true(n == 1 && name[0] == 'a');
	assert_int_equal(proto_queue_next(&it, req.queue + req.queue_len, &name, &n), 1);
	assert_true(n == 2 && memcmp(name, "bb", 2) == 0);
	assert_int_equal(proto_queue_next(&it, req.queue + req.queue_len, &name, &n), 0);
	NEXT();
	assert_true(req.cmd == PROTO_GET_TASKS && req.count == 3 && req.wait_ms == 7);
	assert_int_equal(req.queue_len, 6);
	assert_memory_equal(req.queue, "emails", 6);
	NEXT();
	assert_true(req.cmd == PROTO_GET_TASKS && req.wait_ms == -1);
	assert_null(req.queue);
	assert_int_equal(req.queue_len, 0);
	NEXT();
	assert_true(req.cmd == PROTO_PUT && req.prio == FORQ_HIGH && req.delay_ms == 5);
	assert_int_equal(req.queue_len, 6);
	assert_memory_equal(req.queue, "emails", 6);
	assert_int_equal(req.text_len, 2);
	NEXT();
	assert_int_equal(req.cmd, PROTO_STATS);
	assert_int_equal(req.queue_len, 6);
	NEXT();
	assert_int_equal(req.cmd, PROTO_STATS);
	assert_null(req.queue);
	assert_int_equal(at, strlen(in));
#undef NEXT
	static const char *const bad[] = {",a", "a,", "a,,b", ""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *b = bad[i], *end = b + strlen(b);
		int r;
		while ((r = proto_queue_next(&b, end, &name, &n)) > 0)
			;
		assert_int_equal(r, bad[i][0] ? -1 : 0);
	}
}

/* Check that each malformed line gives its ERR word, drops exactly that line,
 * and that the next command on the connection still parses. */
static void test_proto_parse_bad_requests_give_err_word_and_skip_line(void **state)
{
	static const struct {
		const char *in;
		const char *word;
	} cases[] = {
		{"HELLO\r\n", "unknown-command"},
		{"GET_TASKX\r\n", "unknown-command"},
		{"GET\r\n", "unknown-command"},
		{"\x01\x02\xff\r\n", "unknown-command"},
		{"GET_TASK now\r\n", "bad-args"},
		{"GET_TASK WAIT\r\n", "bad-wait"},
		{"GET_TASK WAIT -1\r\n", "bad-wait"},
		{"GET_TASK WAIT 2147483648\r\n", "bad-wait"},
		{"GET_TASK WAIT 1s\r\n", "bad-wait"},
		{"GET_TASK WAIT 5 6\r\n", "bad-args"},
		{"GET_TASKS\r\n", "bad-args"},
		{"GET_TASKS 0\r\n", "bad-count"},
		{"GET_TASKS 4294967296\r\n", "bad-count"},
		{"GET_TASKS ten\r\n", "bad-count"},
		{"GET_TASKS 2 SLEEP 5\r\n", "bad-args"},
		{"GET_TASKS 2 WAIT x\r\n", "bad-wait"},
		{"RESULT\r\n", "bad-args"},
		{"RESULT x1 v\r\n", "bad-id"},
		{"RESULT 1x v\r\n", "bad-id"},
		{"RESULT -1 v\r\n", "bad-id"},
		{"RESULT +1 v\r\n", "bad-id"},
		{"RESULT 18446744073709551616 v\r\n", "bad-id"},    /* UINT64_MAX + 1 */
		{"RESULT 99999999999999999999 v\r\n", "bad-id"},    /* 20 digits, over */
		{"RESULT 123456789012345678901 v\r\n", "bad-id"},   /* 21 digits */
		{"FAIL 3\r\n", "bad-args"},
		{"FAIL 3 \r\n", "bad-args"},
		{"FAIL\r\n", "bad-args"},
		{"RETRY 3\r\n", "bad-args"},
		{"RETRY 3 \r\n", "bad-args"},
		{"RETRY x why\r\n", "bad-id"},
		{"AUTH\r\n", "bad-args"},
		{"AUTH   \r\n", "bad-args"},
		{"TOUCH\r\n", "bad-args"},
		{"TOUCH 1 2\r\n", "bad-args"},
		{"TOUCH 18446744073709551616\r\n", "bad-id"},
		{"PING now\r\n", "bad-args"},
		{"STATS all of them\r\n", "bad-args"},
		{"GET_TASK queue=\r\n", "bad-args"},
		{"GET_TASK queue=a,,b\r\n", "bad-args"},
		{"GET_TASK queue=a, WAIT 5\r\n", "bad-args"},
		{"GET_TASK queue=a queue=b\r\n", "bad-args"},
		{"GET_TASK queue=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q\r\n", "bad-args"}, /* 17 */
		{"GET_TASKS 2 queue=a WAIT x\r\n", "bad-wait"},
		{"GET_TASKS queue=a 2\r\n", "bad-count"},
		{"PUT queue= 3\r\n", "bad-args"},
		{"PUT queue=a queue=b 3\r\n", "bad-args"},
		{"EXIT 0\r\n", "bad-args"},
		{"PUT\r\n", "bad-args"},
		{"PUT high 3 4\r\n", "bad-args"},
		{"PUT urgent 3\r\n", "bad-priority"},
		{"PUT delay=abc 3\r\n", "bad-delay"},
		{"PUT key= 3\r\n", "bad-key"},
		{"PUT window=5 3\r\n", "bad-key"},
		{"PUT key=a window=x 3\r\n", "bad-key"},
		{"PUT key=a key=b 3\r\n", "bad-args"},
		{"PUT colour=red 3\r\n", "bad-args"},
		{"PUT high delay=31622400001 3\r\n", "bad-delay"},
		{"PUT delay=5 high 3\r\n", "bad-args"},
		{"PUT high delay=5 3 4\r\n", "bad-args"},
		{"PUT abc\r\n", "bad-length"},
		{"PUT high\r\n", "bad-length"},
		{"PUT -1\r\n", "bad-length"},
		{"PUT 18446744073709551616\r\n", "bad-length"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char in[128];
		struct proto_parser p;
		struct proto_req req;
		size_t used, len = strlen(cases[i].in);
		snprintf(in, sizeof in, "%sPING\r\n", cases[i].in);
		parser_new(&p);
		int rc = proto_parse(&p, in, strlen(in), &req, &used);
		if (rc >= 0 || strcmp(proto_err_word(rc), cases[i].word) != 0)
			fail_msg("case %zu \"%s\": rc %d (%s), want %s", i, cases[i].in, rc,
				 rc < 0 ? proto_err_word(rc) : "-", cases[i].word);
		assert_int_equal(used, len);
		assert_null(req.text);
		rc = proto_parse(&p, in + used, strlen(in) - used, &req, &used);
		assert_int_equal(rc, PROTO_PARSED);
		assert_int_equal(req.cmd, PROTO_PING);
		assert_int_equal(used, 6);
	}
}

/* Check that an incomplete line or PUT asks for more and consumes nothing. */
static void test_proto_parse_incomplete_input_asks_for_more(void **state)
{
	static const char *const cases[] = {
		"", "P", "PING", "PING\r", "PUT 5\r\n", "PUT 5\r\nhel", "PUT 5\r\nhello",
		"PUT 5\r\nhello\r", "RESULT 1 abc",
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct proto_parser p;
		struct proto_req req;
		size_t used = 99;
		parser_new(&p);
		assert_int_equal(proto_parse(&p, cases[i], strlen(cases[i]), &req, &used), PROTO_MORE);
		assert_int_equal(used, 0);
		assert_null(req.text);
	}
}

/* Check that pipelined commands in one buffer come out one at a time, in order. */
static void test_proto_parse_pipelined_commands_in_one_buffer(void **state)
{
	static const char in[] = "PING\r\nGET_TASKS 3\nPUT low 4\r\na\r\nb\r\nRESULT 5 ok\r\nPING";
	struct proto_parser p;
	struct proto_req req;
	size_t used, off = 0;
	(void)state;
	parser_new(&p);

	assert_int_equal(proto_parse(&p, in + off, sizeof in - 1 - off, &req, &used), PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_PING);
	off += used;
	assert_int_equal(proto_parse(&p, in + off, sizeof in - 1 - off, &req, &used), PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_GET_TASKS);
	assert_int_equal(req.count, 3);
	off += used;
	assert_int_equal(proto_parse(&p, in + off, sizeof in - 1 - off, &req, &used), PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_PUT);
	assert_int_equal(req.prio, FORQ_LOW);
	assert_int_equal(req.text_len, 4);
	assert_memory_equal(req.text, "a\r\nb", 4);
	off += used;
	assert_int_equal(proto_parse(&p, in + off, sizeof in - 1 - off, &req, &used), PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_RESULT);
	assert_true(req.id == 5);
	assert_int_equal(req.text_len, 2);
	off += used;
	/* The last PING has no newline yet. */
	assert_int_equal(proto_parse(&p, in + off, sizeof in - 1 - off, &req, &used), PROTO_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(sizeof in - 1 - off, 4);
}

/* Check that a PUT payload is binary-safe: CR, LF, NUL and a fake command
 * inside are payload, found by length only. */
static void test_proto_parse_put_payload_is_binary_safe(void **state)
{
	static const char in[] = "PUT 12\r\n\r\nPING\r\n\0\n\r\xff\r\nPING\r\n";
	struct proto_parser p;
	struct proto_req req;
	size_t used;
	(void)state;
	parser_new(&p);
	assert_int_equal(proto_parse(&p, in, sizeof in - 1, &req, &used), PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_PUT);
	assert_int_equal(req.text_len, 12);
	assert_memory_equal(req.text, "\r\nPING\r\n\0\n\r\xff", 12);
	assert_int_equal(used, 8 + 12 + 2);
	assert_int_equal(proto_parse(&p, in + used, sizeof in - 1 - used, &req, &used),
			 PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_PING);
}

/* Check that a payload not followed by CRLF/LF is refused, and that the header,
 * the payload and the rest of that line are dropped. */
static void test_proto_parse_put_wrong_terminator_is_refused(void **state)
{
	static const struct {
		const char *in;
		size_t drop; /* bytes dropped before the trailing PING */
	} cases[] = {
		{"PUT 3\r\nabcd\r\nPING\r\n", 13},  /* one byte too many */
		{"PUT 3\r\nabc\rX\nPING\r\n", 13},  /* CR then not LF */
		/* One too few: the payload eats "\r\n" and the rest of the next line goes. */
		{"PUT 4\r\nab\r\nQUIT\r\nPING\r\n", 17},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct proto_parser p;
		struct proto_req req;
		size_t used, len = strlen(cases[i].in);
		parser_new(&p);
		int rc = proto_parse(&p, cases[i].in, len, &req, &used);
		assert_int_equal(rc, PROTO_E_BAD_PAYLOAD_TERMINATOR);
		assert_string_equal(proto_err_word(rc), "bad-payload-terminator");
		assert_int_equal(used, cases[i].drop);
		rc = proto_parse(&p, cases[i].in + used, len - used, &req, &used);
		assert_int_equal(rc, PROTO_PARSED);
		assert_int_equal(req.cmd, PROTO_PING);
	}
}

/* Check that a line of max_line bytes (terminator included) is accepted and
 * one byte more is refused as soon as max_line bytes arrived. */
static void test_proto_parse_line_length_limit_max_and_max_plus_one(void **state)
{
	char line[200];
	struct proto_parser p;
	struct proto_req req;
	size_t used;
	(void)state;

	/* "RESULT 1 xxx…x\r\n", exactly 64 bytes. */
	memset(line, 'x', sizeof line);
	memcpy(line, "RESULT 1 ", 9);
	memcpy(line + 62, "\r\n", 2);
	parser_new(&p);
	assert_int_equal(proto_parse(&p, line, 64, &req, &used), PROTO_PARSED);
	assert_int_equal(used, 64);
	assert_int_equal(req.text_len, 53);

	/* 65 bytes: the CR is byte 64, so the 64th byte arrives without a LF. */
	memcpy(line + 62, "x\r\n", 3);
	parser_new(&p);
	assert_int_equal(proto_parse(&p, line, 63, &req, &used), PROTO_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(proto_parse(&p, line, 64, &req, &used), PROTO_E_LINE_TOO_LONG);
	assert_int_equal(used, 64);
	/* The rest of the line is dropped, then parsing goes on. */
	memcpy(line + 65, "PING\r\n", 6);
	assert_int_equal(proto_parse(&p, line + 64, 7, &req, &used), PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_PING);
	assert_int_equal(used, 7);
}

/* Check that an endless line is reported once and then dropped as it comes,
 * without the caller having to buffer it. */
static void test_proto_parse_overlong_line_is_dropped_as_it_arrives(void **state)
{
	char junk[100];
	struct proto_parser p;
	struct proto_req req;
	size_t used;
	(void)state;
	memset(junk, 'A', sizeof junk);
	parser_new(&p);
	assert_int_equal(proto_parse(&p, junk, sizeof junk, &req, &used), PROTO_E_LINE_TOO_LONG);
	assert_int_equal(used, sizeof junk); /* reported once, everything dropped */
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(proto_parse(&p, junk, sizeof junk, &req, &used), PROTO_MORE);
		assert_int_equal(used, sizeof junk);
	}
	assert_int_equal(proto_parse(&p, S("AA\r\nSTATS\r\n"), &req, &used), PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_STATS);
	assert_int_equal(used, 11);
}

/* Check that a PUT over max_payload is refused at its header, before the
 * payload arrives, and the announced payload is then dropped by count (a LF
 * inside it is not taken for a line end). */
static void test_proto_parse_put_over_max_payload_refused_and_skipped(void **state)
{
	char payload[40];
	struct proto_parser p;
	struct proto_req req;
	size_t used;
	(void)state;
	memset(payload, '\n', sizeof payload);
	parser_new(&p);
	assert_int_equal(proto_parse(&p, S("PUT high 40\r\n"), &req, &used),
			 PROTO_E_PAYLOAD_TOO_LARGE);
	assert_int_equal(used, 13);
	assert_string_equal(proto_err_word(PROTO_E_PAYLOAD_TOO_LARGE), "payload-too-large");
	assert_int_equal(proto_parse(&p, payload, 25, &req, &used), PROTO_MORE);
	assert_int_equal(used, 25);
	assert_int_equal(proto_parse(&p, payload, 15, &req, &used), PROTO_MORE);
	assert_int_equal(used, 15);
	assert_int_equal(proto_parse(&p, S("\r\nPING\r\n"), &req, &used), PROTO_PARSED);
	assert_int_equal(req.cmd, PROTO_PING);
	assert_int_equal(used, 8);

	/* max_payload itself is fine (16 here), max + 1 is not. */
	parser_new(&p);
	assert_int_equal(proto_parse(&p, S("PUT 17\r\n"), &req, &used), PROTO_E_PAYLOAD_TOO_LARGE);
	assert_int_equal(proto_parse(&p, S("PUT 18446744073709551615\r\n"), &req, &used), PROTO_MORE);
}

/* Stream driver: feeds `in` to a fresh parser in pieces of `chunk` bytes
 * through a connection-like buffer and writes one text line per event. */
static void run_stream(const char *in, size_t len, size_t chunk, struct buf *events)
{
	char conn[64 + 16 + 2]; /* exactly proto_max_request(&lim_small) */
	size_t have = 0, fed = 0;
	struct proto_parser p;
	struct proto_req req;
	assert_int_equal(sizeof conn, proto_max_request(&lim_small));
	parser_new(&p);
	while (fed < len || have) {
		size_t n = len - fed < chunk ? len - fed : chunk;
		if (n > sizeof conn - have)
			n = sizeof conn - have;
		memcpy(conn + have, in + fed, n);
		have += n;
		fed += n;
		for (;;) {
			size_t used;
			int rc = proto_parse(&p, conn, have, &req, &used);
			assert_true(used <= have);
			if (rc == PROTO_PARSED) {
				assert_int_equal(buf_printf(events, "%s id=%" PRIu64 " n=%u w=%d p=%d ",
							    proto_cmd_name(req.cmd), req.id, req.count,
							    req.wait_ms, req.prio),
						 0);
				assert_int_equal(buf_json_escape(events, req.text ? req.text : "",
								 req.text_len),
						 0);
				assert_int_equal(buf_putc(events, '\n'), 0);
			} else if (rc < 0) {
				assert_int_equal(buf_printf(events, "ERR %s\n", proto_err_word(rc)), 0);
			}
			memmove(conn, conn + used, have - used);
			have -= used;
			if (rc == PROTO_MORE) {
				/* A full buffer must always make progress. */
				assert_true(used > 0 || have < sizeof conn);
				break;
			}
		}
		if (fed == len)
			break;
	}
}

/* Check that feeding a mixed stream one byte (or a few) at a time gives exactly
 * the events that feeding it all at once gives. */
static void test_proto_parse_fragmented_stream_matches_whole(void **state)
{
	static const char in[] =
		"PING\r\n"
		"get_task wait 100\n"
		"\r\n"
		"PUT high 7\r\nab\r\ncd\0\r\n"
		"RESULT 12 done: 3 items\r\n"
		"BOGUS\r\n"
		"PUT 3\r\nabcXYZ\r\n"
		"PUT 30\r\n012345678901234567890123456789\r\n"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
		"FAIL 13 timeout\r\n"
		"GET_TASKS 99999999999\r\n"
		"TOUCH 77\r\n"
		"PUT low 16\r\n0123456789abcdef\n"
		"STATS\r\n"
		"QUIT\r\n";
	static const char want[] =
		"ping id=0 n=0 w=-1 p=1 \n"
		"get_task id=0 n=0 w=100 p=1 \n"
		"put id=0 n=0 w=-1 p=0 ab\\r\\ncd\\u0000\n"
		"result id=12 n=0 w=-1 p=1 done: 3 items\n"
		"ERR unknown-command\n"
		"ERR bad-payload-terminator\n"
		"ERR payload-too-large\n"
		"ERR line-too-long\n"
		"fail id=13 n=0 w=-1 p=1 timeout\n"
		"ERR bad-count\n"
		"touch id=77 n=0 w=-1 p=1 \n"
		"put id=0 n=0 w=-1 p=2 0123456789abcdef\n"
		"stats id=0 n=0 w=-1 p=1 \n"
		"exit id=0 n=0 w=-1 p=1 \n";
	static const size_t chunks[] = {1, 2, 3, 5, 7, 13, 64, 82, 4096};
	struct buf whole = BUF_INIT;
	(void)state;
	run_stream(in, sizeof in - 1, sizeof in, &whole);
	assert_string_equal(whole.data, want);
	for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
		struct buf part = BUF_INIT;
		run_stream(in, sizeof in - 1, chunks[i], &part);
		if (strcmp(part.data, whole.data) != 0)
			fail_msg("chunk %zu:\n%s\nwant:\n%s", chunks[i], part.data, whole.data);
		buf_free(&part);
	}
	buf_free(&whole);
}

/* Check that limits too small to hold a header, or overflowing, are refused. */
static void test_proto_parser_init_rejects_bad_limits(void **state)
{
	struct proto_parser p;
	struct proto_limits lim = {.max_line = PROTO_MIN_LINE - 1, .max_payload = 10};
	(void)state;
	assert_int_equal(proto_parser_init(&p, &lim), -EINVAL);
	lim.max_line = PROTO_MIN_LINE;
	lim.max_payload = SIZE_MAX - 10;
	assert_int_equal(proto_parser_init(&p, &lim), -EINVAL);
	lim.max_payload = 1 << 20;
	assert_int_equal(proto_parser_init(&p, &lim), 0);
	assert_int_equal(proto_max_request(&lim), PROTO_MIN_LINE + (1 << 20) + 2);
}

/* Check that every command and error has a distinct name, and out-of-range
 * values give "?". */
static void test_proto_names_are_complete_and_distinct(void **state)
{
	(void)state;
	for (int i = 0; i < PROTO_CMD_COUNT; i++) {
		assert_string_not_equal(proto_cmd_name((enum proto_cmd)i), "?");
		for (int j = 0; j < i; j++)
			assert_string_not_equal(proto_cmd_name((enum proto_cmd)i),
						proto_cmd_name((enum proto_cmd)j));
	}
	assert_string_equal(proto_cmd_name(PROTO_GET_TASK), "get_task");
	assert_string_equal(proto_cmd_name(PROTO_RETRY), "retry");
	assert_string_equal(proto_cmd_name(PROTO_AUTH), "auth");
	assert_string_equal(proto_cmd_name(PROTO_CMD_COUNT), "?");
	for (int e = -1; e >= -PROTO_E_COUNT; e--) {
		assert_string_not_equal(proto_err_word(e), "?");
		assert_null(strpbrk(proto_err_word(e), " \r\n"));
		for (int f = -1; f > e; f--)
			assert_string_not_equal(proto_err_word(e), proto_err_word(f));
	}
	assert_string_equal(proto_err_word(PROTO_E_NOT_LEASED), "not-leased");
	assert_string_equal(proto_err_word(PROTO_E_UNAUTHORIZED), "unauthorized");
	assert_string_equal(proto_err_word(PROTO_E_TOO_MANY_ERRORS), "too-many-errors");
	assert_string_equal(proto_err_word(PROTO_E_TOO_MANY_CONNECTIONS), "too-many-connections");
	assert_string_equal(proto_err_word(0), "?");
	assert_string_equal(proto_err_word(-PROTO_E_COUNT - 1), "?");
}

/* Check DEAD [queue] and RETRY_DEAD <queue> ALL|<id>...: the fields, the
 * ids read back, and each bad form's ERR word with the next line still
 * parsed. */
static void test_proto_parse_dead_letters(void **state)
{
	(void)state;
	static const char in[] = "DEAD\r\ndead emails\r\n"
				 "RETRY_DEAD emails ALL\r\n"
				 "RETRY_DEAD emails 7 18446744073709551615  9\r\n";
	struct proto_parser p;
	struct proto_req req;
	size_t used, at = 0;
	uint64_t id;
	parser_new(&p);
#define NEXT(rc)                                                                           \
	do {                                                                               \
		assert_int_equal(proto_parse(&p, in + at, strlen(in) - at, &req, &used), rc); \
		at += used;                                                                \
	} while (0)
	NEXT(PROTO_PARSED);
	assert_true(req.cmd == PROTO_DEAD && !req.queue);
	NEXT(PROTO_PARSED);
	assert_true(req.cmd == PROTO_DEAD && req.queue_len == 6);
	assert_memory_equal(req.queue, "emails", 6);
	NEXT(PROTO_PARSED);
	assert_true(req.cmd == PROTO_RETRY_DEAD && req.count == 0 && req.queue_len == 6);
	NEXT(PROTO_PARSED);
	assert_true(req.cmd == PROTO_RETRY_DEAD && req.count == 3);
	const char *it = req.text, *end = req.text + req.text_len;
	assert_int_equal(proto_ids_next(&it, end, &id), 1);
	assert_int_equal(id, 7);
	assert_int_equal(proto_ids_next(&it, end, &id), 1);
	assert_true(id == UINT64_MAX);
	assert_int_equal(proto_ids_next(&it, end, &id), 1);
	assert_int_equal(id, 9);
	assert_int_equal(proto_ids_next(&it, end, &id), 0);
	assert_int_equal(at, strlen(in));
#undef NEXT
	static const struct {
		const char *line;
		int err;
	} bad[] = {
		{"DEAD a b\r\n", PROTO_E_BAD_ARGS},	    {"RETRY_DEAD\r\n", PROTO_E_BAD_ARGS},
		{"RETRY_DEAD a\r\n", PROTO_E_BAD_ARGS},   {"RETRY_DEAD a ALL 7\r\n", PROTO_E_BAD_ARGS},
		{"RETRY_DEAD a 7 x\r\n", PROTO_E_BAD_ID}, {"RETRY_DEAD a 0\r\n", PROTO_E_BAD_ID},
		{"RETRY_DEAD a 18446744073709551616\r\n", PROTO_E_BAD_ID},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char buf[80];
		snprintf(buf, sizeof buf, "%sPING\r\n", bad[i].line);
		parser_new(&p);
		assert_int_equal(proto_parse(&p, buf, strlen(buf), &req, &used), bad[i].err);
		assert_int_equal(used, strlen(bad[i].line));
		assert_int_equal(proto_parse(&p, buf + used, strlen(buf) - used, &req, &used),
				 PROTO_PARSED);
		assert_int_equal(req.cmd, PROTO_PING);
	}
	assert_string_equal(proto_err_word(PROTO_E_NOT_DEAD), "not-dead");
}

/* Check that each command's wire word parses back to it: the one table
 * serves the parser, the formatters and the metrics labels. */
static void test_proto_cmd_words_parse_back(void **state)
{
	struct proto_parser p;
	(void)state;
	assert_int_equal(proto_parser_init(&p, &lim_small), 0);
	for (int c = 0; c < PROTO_CMD_COUNT; c++) {
		char line[32];
		struct proto_req req;
		size_t used;
		snprintf(line, sizeof line, "%s\r\n", proto_cmd_word((enum proto_cmd)c));
		int rc = proto_parse(&p, line, strlen(line), &req, &used);
		assert_int_equal(used, strlen(line));
		/* Those that need arguments say so; none is unknown. */
		assert_int_not_equal(rc, PROTO_E_UNKNOWN_COMMAND);
		if (rc == PROTO_PARSED)
			assert_int_equal(req.cmd, c);
		assert_string_not_equal(proto_cmd_word((enum proto_cmd)c), "?");
	}
	assert_string_equal(proto_cmd_word(PROTO_GET_TASKS), "GET_TASKS");
	assert_string_equal(proto_cmd_word(PROTO_CMD_COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proto_parse_good_requests_fill_fields),
		cmocka_unit_test(test_proto_parse_put_delay),
		cmocka_unit_test(test_proto_parse_put_key),
		cmocka_unit_test(test_proto_parse_queues),
		cmocka_unit_test(test_proto_parse_bad_requests_give_err_word_and_skip_line),
		cmocka_unit_test(test_proto_parse_incomplete_input_asks_for_more),
		cmocka_unit_test(test_proto_parse_pipelined_commands_in_one_buffer),
		cmocka_unit_test(test_proto_parse_put_payload_is_binary_safe),
		cmocka_unit_test(test_proto_parse_put_wrong_terminator_is_refused),
		cmocka_unit_test(test_proto_parse_line_length_limit_max_and_max_plus_one),
		cmocka_unit_test(test_proto_parse_overlong_line_is_dropped_as_it_arrives),
		cmocka_unit_test(test_proto_parse_put_over_max_payload_refused_and_skipped),
		cmocka_unit_test(test_proto_parse_fragmented_stream_matches_whole),
		cmocka_unit_test(test_proto_parser_init_rejects_bad_limits),
		cmocka_unit_test(test_proto_names_are_complete_and_distinct),
		cmocka_unit_test(test_proto_cmd_words_parse_back),
		cmocka_unit_test(test_proto_parse_dead_letters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
