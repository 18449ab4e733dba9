/* test_arith.c — arith_eval and arith_format. Every expression is evaluated
 * from an exact-size heap copy without a NUL, so ASan catches a read past len. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arith.h"

/* Evaluates len bytes of s from a heap copy of exactly len bytes. */
static int eval_n(const char *s, size_t len, double *out, char *err, size_t errlen)
{
	char *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, s, len);
	int r = arith_eval(copy, len, out, err, errlen);
	free(copy);
	return r;
}

static int eval(const char *s, double *out, char *err, size_t errlen)
{
	return eval_n(s, strlen(s), out, err, errlen);
}

struct good_case {
	const char *expr;
	double want;
};

/* Check that each valid expression gives exactly the expected double. */
static void test_arith_good_expressions_give_exact_results(void **state)
{
	(void)state;
	static const struct good_case cases[] = {
		/* precedence and associativity */
		{"1+2*3", 7},
		{"(1+2)*3", 9},
		{"2-3*4", -10},
		{"8-3-2", 3},
		{"100/10/5", 2},
		{"2*3%4", 2},
		{"2+3%2", 3},
		{"2*(3+4)*5", 70},
		{"((((1))))", 1},
		/* unary signs */
		{"-3", -3},
		{"+3", 3},
		{"-(-3)", 3},
		{"--3", 3},
		{"-+-3", 3},
		{"2*-3", -6},
		{"2 - -3", 5},
		{"-2*3", -6},
		{"-(1+2)*2", -6},
		/* division and remainder */
		{"7/2", 3.5},
		{"1/4", 0.25},
		{"10%3", 1},
		{"5.5%2", 1.5},
		{"-7%3", -1},
		{"7%-3", 1},
		{"0%5", 0},
		/* numbers */
		{"0", 0},
		{"007", 7},
		{"2.5", 2.5},
		{".5+.25", 0.75},
		{"1.", 1},
		{"0.000001", 1e-6},
		{"1e3", 1000},
		{"2.5E-1", 0.25},
		{"1e+2", 100},
		{"1.5e23", 1.5e23},
		{"1e-400", 0},
		{"0.1+0.2", 0.1 + 0.2},
		{"9007199254740993", 9007199254740992.0},
		{"123456789012345678901234567890", 123456789012345678901234567890.0},
		{"0.1234567890123456789", 0.1234567890123456789},
		{"1e308", 1e308},
		{"4.9e-324", 4.9e-324},
		{"999999999999999", 999999999999999.0},
		{"1e22*1e22", 1e44},
		/* blanks */
		{" \t1 +\t2 ", 3},
		{"\r\n 2\n*\n3 \r\n", 6},
		{"( 1 + 2 ) * 3", 9},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[128] = "";
		double v = NAN;
		if (eval(cases[i].expr, &v, err, sizeof err) != 0)
			fail_msg("\"%s\": unexpected error: %s", cases[i].expr, err);
		if (v != cases[i].want)
			fail_msg("\"%s\": got %.17g, want %.17g", cases[i].expr, v, cases[i].want);
	}
}

/* Check that "-0" keeps its sign (arith_format prints it as "0"). */
static void test_arith_negative_zero_is_negative(void **state)
{
	(void)state;
	double v = 1;
	assert_int_equal(eval("-0", &v, NULL, 0), 0);
	assert_true(v == 0 && signbit(v));
}

struct bad_case {
	const char *expr;
	const char *want; /* substring of err */
};

/* Check that each invalid expression fails with the expected reason. */
static void test_arith_bad_expressions_fail_with_reason(void **state)
{
	(void)state;
	static const struct bad_case cases[] = {
		{"1/0", "division by zero"},
		{"1%0", "division by zero"},
		{"1/(2-2)", "division by zero"},
		{"1/-0", "division by zero"},
		{"(1+2", "unexpected end of expression (missing ')')"},
		{"1+", "unexpected end of expression"},
		{"-", "unexpected end of expression"},
		{"(", "unexpected end of expression"},
		{"abc", "syntax error at column 1: unexpected 'a'"},
		{"1 2", "syntax error at column 3: unexpected '2'"},
		{"1)", "syntax error at column 2: unexpected ')'"},
		{"()", "syntax error at column 2: unexpected ')'"},
		{"(1 2)", "syntax error at column 4: unexpected '2'"},
		{"1+*2", "syntax error at column 3: unexpected '*'"},
		{".", "syntax error at column 1: unexpected '.'"},
		{"1..2", "syntax error at column 3: unexpected '.'"},
		{"2e", "syntax error at column 2: unexpected 'e'"},
		{"2e+", "syntax error at column 2: unexpected 'e'"},
		{"0x10", "syntax error at column 2: unexpected 'x'"},
		{"1 \x01", "syntax error at column 3: unexpected byte 0x01"},
		{"1'", "syntax error at column 2: unexpected byte 0x27"},
		{"inf", "syntax error at column 1: unexpected 'i'"},
		{"", "empty expression"},
		{" \t ", "empty expression"},
		{"1e999", "number out of range"},
		{"-1e309", "number out of range"},
		{"1e308*10", "result out of range"},
		{"1e308+1e308", "result out of range"},
		{"1/1e-308/1e-308", "result out of range"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[128] = "";
		double v = 42;
		if (eval(cases[i].expr, &v, err, sizeof err) != -1)
			fail_msg("\"%s\": succeeded with %.17g, want error \"%s\"", cases[i].expr, v,
				 cases[i].want);
		if (!strstr(err, cases[i].want))
			fail_msg("\"%s\": got error \"%s\", want \"%s\"", cases[i].expr, err, cases[i].want);
		assert_true(v == 42); /* unchanged on error */
		assert_null(strchr(err, '\n'));
	}
}

/* Check that a NUL byte inside len is an error, not the end of the input. */
static void test_arith_nul_byte_inside_len_is_a_syntax_error(void **state)
{
	(void)state;
	char err[128];
	double v;
	assert_int_equal(eval_n("1+2\0+3", 6, &v, err, sizeof err), -1);
	assert_string_equal(err, "syntax error at column 4: unexpected byte 0x00");
}

/* Check that only len bytes are read: "1+2" with len 2 is "1+". */
static void test_arith_reads_only_len_bytes(void **state)
{
	(void)state;
	char err[128];
	double v;
	assert_int_equal(eval_n("1+2", 2, &v, err, sizeof err), -1);
	assert_string_equal(err, "unexpected end of expression");
	assert_int_equal(eval_n("12", 1, &v, err, sizeof err), 0);
	assert_true(v == 1);
	assert_int_equal(eval_n("1.5e3", 4, &v, err, sizeof err), -1); /* "1.5e" */
	assert_int_equal(eval_n("1.5e3", 3, &v, err, sizeof err), 0);
	assert_true(v == 1.5);
}

/* Builds `open` "(", then "1", then `close` ")" into a heap buffer. */
static char *nested(int open, int close, size_t *len)
{
	char *s = malloc((size_t)open + (size_t)close + 1);
	assert_non_null(s);
	memset(s, '(', (size_t)open);
	s[open] = '1';
	memset(s + open + 1, ')', (size_t)close);
	*len = (size_t)open + (size_t)close + 1;
	return s;
}

/* Check that ARITH_DEPTH_MAX parentheses work and one more is refused. */
static void test_arith_nesting_limit_is_max_depth(void **state)
{
	(void)state;
	char err[128];
	double v;
	size_t len;
	char *s = nested(ARITH_DEPTH_MAX, ARITH_DEPTH_MAX, &len);
	assert_int_equal(eval_n(s, len, &v, err, sizeof err), 0);
	assert_true(v == 1);
	free(s);

	s = nested(ARITH_DEPTH_MAX + 1, ARITH_DEPTH_MAX + 1, &len);
	assert_int_equal(eval_n(s, len, &v, err, sizeof err), -1);
	assert_non_null(strstr(err, "expression nested too deeply"));
	free(s);

	/* Far deeper, unbalanced: still a clean error, no stack overflow. */
	s = nested(1000000, 0, &len);
	assert_int_equal(eval_n(s, len, &v, err, sizeof err), -1);
	assert_non_null(strstr(err, "expression nested too deeply"));
	free(s);
}

/* Check that a long chain of unary signs is fine (they do not recurse). */
static void test_arith_long_unary_chain_is_evaluated(void **state)
{
	(void)state;
	size_t n = 100000;
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, '-', n);
	s[n] = '5';
	double v;
	assert_int_equal(eval_n(s, n + 1, &v, NULL, 0), 0);
	assert_true(v == 5); /* an even number of minus signs */
	free(s);
}

/* Check that ARITH_NUMBER_MAX digits parse and one more is refused. */
static void test_arith_number_length_limit(void **state)
{
	(void)state;
	char *s = malloc(ARITH_NUMBER_MAX + 1);
	assert_non_null(s);
	memset(s, '1', ARITH_NUMBER_MAX + 1);
	char err[128];
	double v;
	/* 512 ones overflow a double; 300 do not. */
	assert_int_equal(eval_n(s, 300, &v, err, sizeof err), 0);
	assert_true(v > 1.1e299 && v < 1.12e299);
	assert_int_equal(eval_n(s, ARITH_NUMBER_MAX, &v, err, sizeof err), -1);
	assert_non_null(strstr(err, "number out of range"));
	assert_int_equal(eval_n(s, ARITH_NUMBER_MAX + 1, &v, err, sizeof err), -1);
	assert_non_null(strstr(err, "number too long"));
	free(s);
}

/* Check that err may be NULL or tiny, and is truncated, never overrun. */
static void test_arith_error_buffer_is_optional_and_truncated(void **state)
{
	(void)state;
	double v;
	assert_int_equal(eval("1/0", &v, NULL, 0), -1);
	char small[9];
	memset(small, 'x', sizeof small);
	assert_int_equal(eval("1/0", &v, small, 8), -1);
	assert_string_equal(small, "divisio");
	assert_int_equal(small[8], 'x');
}

struct fmt_case {
	double v;
	const char *want;
};

/* Check that results print as integers when exact, else shortest round-trip. */
static void test_arith_format_prints_shortest_text(void **state)
{
	(void)state;
	const struct fmt_case cases[] = {
		{7, "7"},
		{-3, "-3"},
		{0, "0"},
		{-0.0, "0"},
		{3.5, "3.5"},
		{-2.5, "-2.5"},
		{0.1, "0.1"},
		{0.1 + 0.2, "0.30000000000000004"},
		{1.0 / 3, "0.3333333333333333"},
		{2.0 / 3, "0.6666666666666666"},
		{1e15, "1000000000000000"},
		{9007199254740991.0, "9007199254740991"},
		{-9007199254740991.0, "-9007199254740991"},
		{9007199254740992.0, "9007199254740992"}, /* %.16g: no exponent */
		{1e16, "1e+16"},
		{1e20, "1e+20"},
		{1e-7, "1e-07"},
		{123456.789, "123456.789"},
		{1.7976931348623157e308, "1.7976931348623157e+308"},
		{-4.9e-324, "-4.94065645841247e-324"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[ARITH_FORMAT_MAX];
		size_t n = arith_format(cases[i].v, buf, sizeof buf);
		if (strcmp(buf, cases[i].want) != 0)
			fail_msg("%.17g: got \"%s\", want \"%s\"", cases[i].v, buf, cases[i].want);
		assert_int_equal(n, strlen(cases[i].want));
		assert_true(strtod(buf, NULL) == cases[i].v);
	}
}

/* Check that a short buffer gets a truncated, terminated prefix and the full length. */
static void test_arith_format_truncates_like_snprintf(void **state)
{
	(void)state;
	char buf[4] = "zzz";
	assert_int_equal(arith_format(12345, buf, 3), 5);
	assert_string_equal(buf, "12");
	assert_int_equal(arith_format(12345, buf, 0), 5);
	assert_string_equal(buf, "12");
}

/* Check that eval then format round-trips: the printed result evaluates to itself. */
static void test_arith_eval_then_format(void **state)
{
	(void)state;
	static const struct {
		const char *expr, *want;
	} cases[] = {
		{"1+2*3", "7"}, {"7/2", "3.5"}, {"1/3", "0.3333333333333333"},
		{"-0", "0"},    {"0*-1", "0"},  {"1e20", "1e+20"},
		{"-7%3", "-1"}, {"5.5%2", "1.5"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		double v, back;
		char buf[ARITH_FORMAT_MAX];
		assert_int_equal(eval(cases[i].expr, &v, NULL, 0), 0);
		arith_format(v, buf, sizeof buf);
		assert_string_equal(buf, cases[i].want);
		assert_int_equal(eval(buf, &back, NULL, 0), 0);
		assert_true(back == v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arith_good_expressions_give_exact_results),
		cmocka_unit_test(test_arith_negative_zero_is_negative),
		cmocka_unit_test(test_arith_bad_expressions_fail_with_reason),
		cmocka_unit_test(test_arith_nul_byte_inside_len_is_a_syntax_error),
		cmocka_unit_test(test_arith_reads_only_len_bytes),
		cmocka_unit_test(test_arith_nesting_limit_is_max_depth),
		cmocka_unit_test(test_arith_long_unary_chain_is_evaluated),
		cmocka_unit_test(test_arith_number_length_limit),
		cmocka_unit_test(test_arith_error_buffer_is_optional_and_truncated),
		cmocka_unit_test(test_arith_format_prints_shortest_text),
		cmocka_unit_test(test_arith_format_truncates_like_snprintf),
		cmocka_unit_test(test_arith_eval_then_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
