/* test_parse.c — base/parse.c (numbers, task ids, token files) and the
 * typed flag tables of base/flags.c that forqd and forq build on. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flags.h"
#include "parse.h"

/* Check whole numbers: the ends of long long, overflow by one, and the
 * forms that are not numbers (blanks, '+', suffixes, empty). */
static void test_parse_num_bounds_and_refusals(void **state)
{
	(void)state;
	long long v = 7;
	char err[200];
	assert_int_equal(parse_num("9223372036854775807", LLONG_MIN, LLONG_MAX, &v, err, sizeof err), 0);
	assert_true(v == LLONG_MAX);
	assert_int_equal(parse_num("-9223372036854775808", LLONG_MIN, LLONG_MAX, &v, err, sizeof err), 0);
	assert_true(v == LLONG_MIN);
	assert_int_equal(parse_num("0", 0, 0, &v, err, sizeof err), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_num("007", 0, 10, &v, err, sizeof err), 0);
	assert_int_equal(v, 7);
	static const char *const bad[] = {"9223372036854775808", "-9223372036854775809", "", "-",
					  " 1", "1 ", "+1", "1k", "0x10", "1.0", "--1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		v = 42;
		assert_int_equal(parse_num(bad[i], LLONG_MIN, LLONG_MAX, &v, NULL, 0), -EINVAL);
		assert_int_equal(v, 42);
	}
	assert_int_equal(parse_num("11", 1, 10, &v, err, sizeof err), -EINVAL);
	assert_string_equal(err, "expected a whole number from 1 to 10, got \"11\"");
	assert_int_equal(parse_num("0", 1, 10, &v, err, sizeof err), -EINVAL);
}

/* Check real numbers: closed and open lower ends, inf and nan refused, and
 * the short text of bounds (1e9, not 1e+09). */
static void test_parse_real_ranges_and_text(void **state)
{
	(void)state;
	double d = 3;
	char err[200], t[32];
	assert_int_equal(parse_real("0", 0, 1e9, 0, NULL, &d, err, sizeof err), 0);
	assert_true(d == 0);
	assert_int_equal(parse_real("0", 0, 1e10, 1, "tasks per second", &d, err, sizeof err), -EINVAL);
	assert_string_equal(err, "expected tasks per second (above 0, up to 1e10), got \"0\"");
	assert_int_equal(parse_real("0.001", 0, 1e10, 1, NULL, &d, err, sizeof err), 0);
	assert_int_equal(parse_real("2e9", 0, 1e9, 0, NULL, &d, err, sizeof err), -EINVAL);
	assert_string_equal(err, "expected a number (0 to 1e9), got \"2e9\"");
	assert_int_equal(parse_real("inf", 0, INFINITY, 0, NULL, &d, err, sizeof err), -EINVAL);
	assert_int_equal(parse_real("nan", -1, 1, 0, NULL, &d, err, sizeof err), -EINVAL);
	assert_int_equal(parse_real("1x", 0, 10, 0, NULL, &d, err, sizeof err), -EINVAL);
	assert_int_equal(parse_real("", 0, 10, 0, NULL, &d, err, sizeof err), -EINVAL);
	assert_string_equal(parse_real_text(1e9, t, sizeof t), "1e9");
	assert_string_equal(parse_real_text(1e10, t, sizeof t), "1e10");
	assert_string_equal(parse_real_text(1e-5, t, sizeof t), "1e-5");
	assert_string_equal(parse_real_text(100, t, sizeof t), "100");
	assert_string_equal(parse_real_text(0.5, t, sizeof t), "0.5");
	assert_string_equal(parse_real_text(0, t, sizeof t), "0");
}

/* Check task ids: 1 to UINT64_MAX, digits only. */
static void test_parse_task_id(void **state)
{
	(void)state;
	uint64_t id = 9;
	assert_int_equal(parse_task_id("1", &id), 0);
	assert_int_equal(id, 1);
	assert_int_equal(parse_task_id("18446744073709551615", &id), 0);
	assert_true(id == UINT64_MAX);
	static const char *const bad[] = {"0", "", "18446744073709551616", "-1", "+1", " 1", "1a",
					  "00"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		id = 9;
		assert_int_equal(parse_task_id(bad[i], &id), -EINVAL);
		assert_int_equal(id, 9);
	}
}

/* Check that a token file may be a pipe (bash's <(...) gives /dev/fd/N),
 * read to its end, and that a directory is refused with the reason. */
static void test_parse_token_file_from_a_pipe(void **state)
{
	(void)state;
	int p[2];
	char path[64], err[256], *tok = NULL;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "piped-", 6), 6);
	assert_int_equal(write(p[1], "token\n", 6), 6);
	close(p[1]);
	snprintf(path, sizeof path, "/dev/fd/%d", p[0]);
	assert_int_equal(parse_token_file(path, &tok, err, sizeof err), 0);
	assert_string_equal(tok, "piped-token");
	free(tok);
	close(p[0]);
	tok = NULL;
	assert_true(parse_token_file("/", &tok, err, sizeof err) < 0);
	assert_null(tok);
	assert_string_equal(err, "cannot read /: Is a directory");
	assert_null(parse_token_problem("12345678"));
	assert_string_equal(parse_token_problem(""), "is empty");
	assert_string_equal(parse_token_problem("1234567"), "is shorter than 8 characters");
	assert_string_equal(parse_token_problem("1234\n5678"), "is not one line of printable text");
}

/* A table of every type, as a tool would have it. */
struct t_opts {
	const char *s;
	int i, on, name;
	uint32_t u;
	uint64_t big;
	double r;
};

static const char *color(int i)
{
	static const char *const names[] = {"red", "green", "blue"};
	return i >= 0 && i < 3 ? names[i] : NULL;
}

static const struct flag_spec t_rows[] = {
	{.name = "str", .arg = "S", .type = FLAG_STR, .off = offsetof(struct t_opts, s), .sdef = "x",
	 .help = "a string"},
	{.name = "int", .arg = "N", .type = FLAG_INT, .off = offsetof(struct t_opts, i), .lo = -5,
	 .hi = 5, .def = 1, .help = "an int"},
	{.name = "u32", .arg = "N", .type = FLAG_U32, .off = offsetof(struct t_opts, u), .lo = 0,
	 .hi = UINT32_MAX, .def = 0, .zero = "none", .help = "a u32"},
	{.name = "big", .arg = "N", .type = FLAG_U64, .off = offsetof(struct t_opts, big), .lo = 1,
	 .hi = LLONG_MAX, .def = 1000000, .help = "a u64"},
	{.name = "real", .arg = "R", .type = FLAG_REAL, .off = offsetof(struct t_opts, r), .rlo = 0,
	 .rhi = 1e10, .lo_open = 1, .rdef = 0, .zero = "off", .help = "a real"},
	{.name = "on", .type = FLAG_ON, .off = offsetof(struct t_opts, on), .help = "a switch"},
	{.name = "no-on", .type = FLAG_OFF, .off = offsetof(struct t_opts, on), .help = "its off"},
	{.name = "color", .arg = "C", .type = FLAG_NAME, .off = offsetof(struct t_opts, name),
	 .def = 1, .name_of = color, .what = "color", .help = "a name"},
	{.name = "help", .type = FLAG_HELP, .short_name = 'h', .help = "help"},
};
#define T_N (sizeof t_rows / sizeof t_rows[0])

static int t_parse(struct t_opts *o, uint64_t *given, char *err, int argc, char **argv)
{
	int first = -1;
	*o = (struct t_opts){0};
	flags_defaults(t_rows, T_N, o, NULL);
	int r = flags_parse(t_rows, T_N, o, argc, argv, &first, given, err, 256);
	return r == FLAGS_OK ? first : r - 100;
}

/* Check the parser over every type: values land in their fields, arguments
 * are permuted to the end, *given has the rows seen, and uint32/uint64 take
 * their full ranges. */
static void test_flags_parse_every_type(void **state)
{
	(void)state;
	struct t_opts o;
	uint64_t given;
	char err[256];
	char *argv[] = {"t", "arg1", "--str", "s", "--int=-5", "--u32", "4294967295", "--big",
			"9223372036854775807", "--real", "0.25", "--on", "--color", "blue", "arg2", NULL};
	assert_int_equal(t_parse(&o, &given, err, 15, argv), 13);
	assert_string_equal(argv[13], "arg1");
	assert_string_equal(argv[14], "arg2");
	assert_string_equal(o.s, "s");
	assert_int_equal(o.i, -5);
	assert_true(o.u == UINT32_MAX);
	assert_true(o.big == (uint64_t)LLONG_MAX);
	assert_true(o.r == 0.25);
	assert_int_equal(o.on, 1);
	assert_int_equal(o.name, 2);
	assert_int_equal(given, 0xbf); /* every row but no-on (6) and help (8) */

	char *argv2[] = {"t", "--on", "--no-on", NULL};
	assert_int_equal(t_parse(&o, &given, err, 3, argv2), 3);
	assert_int_equal(o.on, 0);
	assert_int_equal(given, 0x60);

	char *argv3[] = {"t", "-h", NULL};
	assert_int_equal(t_parse(&o, NULL, err, 2, argv3), FLAGS_HELP - 100);

	char *argv4[] = {"t", "--color", "pink", NULL};
	assert_int_equal(t_parse(&o, NULL, err, 3, argv4), FLAGS_BAD_VALUE - 100);
	assert_string_equal(err, "--color: unknown color \"pink\" (use red, green or blue)");

	char *argv5[] = {"t", "--big", "0", NULL};
	assert_int_equal(t_parse(&o, NULL, err, 3, argv5), FLAGS_BAD_VALUE - 100);
	assert_string_equal(err, "--big: expected a whole number from 1 to 9223372036854775807, got \"0\"");

	char *argv6[] = {"t", "-x", NULL};
	assert_int_equal(t_parse(&o, NULL, err, 2, argv6), FLAGS_BAD_FLAG - 100);
	assert_string_equal(err, "unknown flag \"-x\"");

	char *argv7[] = {"t", "--int", NULL};
	assert_int_equal(t_parse(&o, NULL, err, 2, argv7), FLAGS_BAD_FLAG - 100);
	assert_string_equal(err, "--int: missing value");
}

/* Check --help lines, exactly: range and default from the row and the
 * defaults struct. */
static void test_flags_help_lines(void **state)
{
	(void)state;
	struct t_opts d = {0};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	flags_defaults(t_rows, T_N, &d, NULL);
	for (size_t i = 0; i < T_N; i++)
		flags_help(f, &t_rows[i], &d, 12);
	assert_int_equal(fclose(f), 0);
	assert_string_equal(text,
			    "  --str S      a string (default: x)\n"
			    "  --int N      an int (-5 to 5; default: 1)\n"
			    "  --u32 N      a u32 (0 to 4294967295; default: 0 (none))\n"
			    "  --big N      a u64 (1 to 9223372036854775807; default: 1000000)\n"
			    "  --real R     a real (above 0, up to 1e10; default: 0 (off))\n"
			    "  --on         a switch (default: off)\n"
			    "  --no-on      its off\n"
			    "  --color C    a name (default: green)\n"
			    "  --help       help\n");
	free(text);
}

/* Check durations: each unit, the bound, and what is refused. */
static void test_parse_duration(void **state)
{
	(void)state;
	uint64_t ms = 7;
	char err[160];
	static const struct {
		const char *s;
		uint64_t ms;
	} good[] = {{"250ms", 250}, {"30s", 30000}, {"5m", 300000}, {"2h", 7200000},
		    {"1d", 86400000}, {"0s", 0}};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		assert_int_equal(parse_duration_ms(good[i].s, 366ull * 86400000, &ms, err, sizeof err), 0);
		assert_true(ms == good[i].ms);
	}
	static const char *const bad[] = {"", "30", "s", "-5s", "1.5s", "5 s", "5sec", "367d", "99999999999999999999d"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ms = 7;
		assert_int_equal(parse_duration_ms(bad[i], 366ull * 86400000, &ms, err, sizeof err), -EINVAL);
		assert_true(ms == 7);
		assert_non_null(strstr(err, "expected a duration like 30s"));
	}
}

/* Check times: RFC 3339 in UTC, with an offset and a fraction, Unix seconds,
 * and what is refused. */
static void test_parse_time(void **state)
{
	(void)state;
	int64_t ms = 0;
	char err[160];
	assert_int_equal(parse_time_ms("1970-01-01T00:00:00Z", &ms, err, sizeof err), 0);
	assert_true(ms == 0);
	assert_int_equal(parse_time_ms("2026-12-03T09:00:00Z", &ms, err, sizeof err), 0);
	assert_true(ms == 1796288400000LL);
	assert_int_equal(parse_time_ms("2026-12-03T10:00:00.25+01:00", &ms, err, sizeof err), 0);
	assert_true(ms == 1796288400250LL);
	assert_int_equal(parse_time_ms("2000-02-29T23:59:59-00:30", &ms, err, sizeof err), 0);
	assert_true(ms == 951870599000LL);
	assert_int_equal(parse_time_ms("@1796288400", &ms, err, sizeof err), 0);
	assert_true(ms == 1796288400000LL);
	static const char *const bad[] = {"", "2026-12-03", "2026-12-03T09:00:00", "2026-13-03T09:00:00Z",
					  "2026-12-03T09:00Z", "@", "@-5", "@12x", "tomorrow",
					  "2026-12-03T09:00:00Zjunk"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ms = 7;
		assert_int_equal(parse_time_ms(bad[i], &ms, err, sizeof err), -EINVAL);
		assert_true(ms == 7);
		assert_non_null(strstr(err, "expected a time like"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_num_bounds_and_refusals),
		cmocka_unit_test(test_parse_real_ranges_and_text),
		cmocka_unit_test(test_parse_task_id),
		cmocka_unit_test(test_parse_token_file_from_a_pipe),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_flags_parse_every_type),
		cmocka_unit_test(test_flags_help_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
