/* test_http_parse.c — the pure body parsers of POST /tasks and POST
 * .../dead/retry (web/http_tasks.h) on edge cases the HTTP tests do not
 * reach, and the dead-letter routes (web/route.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http.h"
#include "route.h"

#define MAX_PAYLOAD 64

/* Check the pure body parser on edge cases the HTTP tests do not reach. */
static void test_http_parse_tasks_table(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		int r;
		const char *err;     /* for r != 0 */
		size_t n;            /* for r == 0 */
		const char *payload; /* first task's, for r == 0 */
		int prio;
	} cases[] = {
		{"{\"payload\":\"x\",\"priority\":null}", 0, NULL, 1, "x", 1},
		{"{\"payload\":\"\\\\u0000\"}", 0, NULL, 1, "\\u0000", 1}, /* escaped backslash */
		{"[{\"payload\":[true,false,null]}]", 0, NULL, 1, "[true,false,null]", 1},
		{"{\"payload\":\"a\\u0000b\"}", -EINVAL, "\\u0000 is not allowed in payloads", 0, NULL, 0},
		{"{\"payload\":\"a\",\"payload\":\"b\"}", -EINVAL, "field \"payload\" given twice", 0, NULL, 0},
		{"{\"payload\":\"x\",\"priority\":1}", -EINVAL,
		 "priority must be a string (high, normal or low)", 0, NULL, 0},
		{"{\"payload\":null}", -EINVAL, "payload is null", 0, NULL, 0},
		{"[{\"payload\":\"x\"},3]", -EINVAL,
		 "tasks[1]: expected an object like {\"payload\": \"...\"}", 0, NULL, 0},
		{"{\"payload\":\"x\"} x", -EINVAL, "malformed JSON at offset 16: text after the value", 0, NULL, 0},
		{"  {\"payload\": \"x\",}", -EINVAL, "malformed JSON at offset 18", 0, NULL, 0},
		{"{\"payload\":\"x\"", -EINVAL, "malformed JSON at offset 13", 0, NULL, 0},
		{"", -EINVAL, "empty body (expected a JSON object or array of objects)", 0, NULL, 0},
		{"{\"payload\":\"a\xff\"}", -EINVAL, "invalid UTF-8 at offset 13", 0, NULL, 0},
		{" {\"payload\":\"\xed\xa0\x80\"}", -EINVAL, "invalid UTF-8 at offset 13", 0, NULL, 0},
		{"{\"payload\":\"\xc3\xa9\"}", 0, NULL, 1, "\xc3\xa9", 1},
	};
	char err[256];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct http_tasks t;
		size_t len = strlen(cases[i].body);
		char *copy = malloc(len + 1); /* no NUL inside the length */
		memcpy(copy, cases[i].body, len);
		copy[len] = '#';
		err[0] = '\0';
		int r = http_parse_tasks(copy, len, MAX_PAYLOAD, &t, err, sizeof err);
		if (r != cases[i].r)
			fail_msg("%s: r=%d err=%s", cases[i].body, r, err);
		if (r) {
			assert_string_equal(err, cases[i].err);
			assert_null(t.v);
		} else {
			assert_int_equal(t.n, cases[i].n);
			assert_int_equal(t.v[0].len, strlen(cases[i].payload));
			assert_memory_equal(t.v[0].payload, cases[i].payload, t.v[0].len);
			assert_int_equal(t.v[0].prio, cases[i].prio);
			http_tasks_free(&t);
		}
		free(copy);
	}
}

/* Check HTTP_TASKS_MAX tasks pass and one more is refused with -E2BIG. */
static void test_http_parse_tasks_max_items(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	struct http_tasks t;
	char err[256];
	for (int extra = 0; extra <= 1; extra++) {
		buf_reset(&b);
		buf_putc(&b, '[');
		for (int i = 0; i < HTTP_TASKS_MAX + extra; i++)
			buf_printf(&b, "%s{\"payload\":\"%d\"}", i ? "," : "", i);
		buf_putc(&b, ']');
		int r = http_parse_tasks(b.data, b.len, MAX_PAYLOAD, &t, err, sizeof err);
		if (!extra) {
			assert_int_equal(r, 0);
			assert_int_equal(t.n, HTTP_TASKS_MAX);
			assert_memory_equal(t.v[HTTP_TASKS_MAX - 1].payload, "9999", 4);
			http_tasks_free(&t);
		} else {
			assert_int_equal(r, -E2BIG);
			assert_string_equal(err, "10001 tasks, over the limit of 10000 per request");
		}
	}
	buf_free(&b);
}

/* Check the body of POST .../dead/retry: ids or all, and each bad form's
 * reason (nothing to free then). */
static void test_http_parse_dead_retry(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		int r;
		const char *err; /* for r != 0 */
		size_t n;        /* for r == 0 */
		uint64_t last;   /* the last id, for n > 0 */
	} cases[] = {
		{"{\"ids\":[7, 9007199254740991]}", 0, NULL, 2, 9007199254740991ull},
		{" {\"all\":true} ", 0, NULL, 0, 0},
		{"{\"all\":false}", -EINVAL, "all: expected true", 0, 0},
		{"{\"ids\":[1],\"all\":true}", -EINVAL, "give ids or all, one of them", 0, 0},
		{"{}", -EINVAL, "give ids or all, one of them", 0, 0},
		{"{\"ids\":[]}", -EINVAL, "ids: expected an array of 1 to 10000 task ids", 0, 0},
		{"{\"ids\":7}", -EINVAL, "ids: expected an array of 1 to 10000 task ids", 0, 0},
		{"{\"ids\":[1,0]}", -EINVAL,
		 "ids[1]: expected a task id (a whole number from 1)", 0, 0},
		{"{\"ids\":[1.5]}", -EINVAL,
		 "ids[0]: expected a task id (a whole number from 1)", 0, 0},
		{"{\"ids\":[\"7\"]}", -EINVAL,
		 "ids[0]: expected a task id (a whole number from 1)", 0, 0},
		{"{\"ids\":[9007199254740992]}", -EINVAL,
		 "ids[0]: expected a task id (a whole number from 1)", 0, 0},
		{"{\"id\":7}", -EINVAL, "unknown or repeated field \"id\" (use ids or all)", 0, 0},
		{"[7]", -EINVAL, "expected an object: {\"ids\":[...]} or {\"all\":true}", 0, 0},
		{"", -EINVAL, "empty body (expected {\"ids\":[...]} or {\"all\":true})", 0, 0},
		{"{\"all\":true", -EINVAL, "malformed JSON at offset 10", 0, 0},
	};
	char err[256];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t *ids = (uint64_t *)1;
		size_t n = 99;
		err[0] = '\0';
		int r = http_parse_dead_retry(cases[i].body, strlen(cases[i].body), &ids, &n, err,
					      sizeof err);
		if (r != cases[i].r)
			fail_msg("%s: r=%d err=%s", cases[i].body, r, err);
		if (r) {
			assert_string_equal(err, cases[i].err);
			assert_null(ids);
			continue;
		}
		assert_int_equal(n, cases[i].n);
		if (n)
			assert_true(ids[n - 1] == cases[i].last);
		free(ids);
	}
}

/* Check the dead-letter paths, named and unnamed, and what is not one. */
static void test_http_route_dead(void **state)
{
	(void)state;
	char name[QUEUE_NAME_MAX];
	assert_int_equal(route_dead("/dead", name), R_DEAD);
	assert_string_equal(name, "");
	assert_int_equal(route_dead("/dead/retry", name), R_DEAD_RETRY);
	assert_int_equal(route_dead("/queues/emails/dead", name), R_DEAD);
	assert_string_equal(name, "emails");
	assert_int_equal(route_dead("/queues/emails/dead/retry", name), R_DEAD_RETRY);
	static const char *const no[] = {"/dead/", "/deadx", "/queues//dead", "/queues/a/dead/x",
					 "/queues/a/b/dead", "/dead/retry/"};
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		if (route_dead(no[i], name) != R_NONE)
			fail_msg("%s is a dead-letter route", no[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_parse_tasks_table),
		cmocka_unit_test(test_http_parse_tasks_max_items),
		cmocka_unit_test(test_http_parse_dead_retry),
		cmocka_unit_test(test_http_route_dead),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
