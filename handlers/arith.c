/* arith.c — recursive-descent evaluator for arith.h. Recursion happens only
 * at "(", bounded by ARITH_DEPTH_MAX; everything else is a loop. */
#include "arith.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	const unsigned char *s;
	size_t len;
	size_t pos;   /* next byte to read, <= len */
	int depth;    /* open parentheses */
	char *err;
	size_t errlen;
};

/* 10^0 .. 10^22 are exact doubles: the Clinger fast path below needs that. */
static const double pow10_exact[] = {
	1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};
#define POW10_EXACT_MAX 22
#define FAST_DIGITS_MAX 15 /* 10^15 < 2^53: the mantissa is exact */

static int fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parser *p, const char *fmt, ...)
{
	if (p->err && p->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->err, p->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Names the byte at p->pos, or the end of the input. */
static int fail_unexpected(struct parser *p)
{
	if (p->pos >= p->len)
		return fail(p, "unexpected end of expression");
	unsigned char c = p->s[p->pos];
	if (c > 0x20 && c < 0x7f && c != '\'')
		return fail(p, "syntax error at column %zu: unexpected '%c'", p->pos + 1, c);
	return fail(p, "syntax error at column %zu: unexpected byte 0x%02x", p->pos + 1, c);
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static void skip_blanks(struct parser *p)
{
	while (p->pos < p->len) {
		unsigned char c = p->s[p->pos];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			break;
		p->pos++;
	}
}

/* The exact conversion for literals the fast path cannot do. Kept out of
 * line so its buffer is not on the stack of every recursion level. */
__attribute__((noinline)) static int number_slow(struct parser *p, size_t start, size_t n, double *v)
{
	char tmp[ARITH_NUMBER_MAX + 1];
	if (n > ARITH_NUMBER_MAX)
		return fail(p, "number too long at column %zu (max %d characters)", start + 1,
			    ARITH_NUMBER_MAX);
	memcpy(tmp, p->s + start, n);
	tmp[n] = '\0';
	double d = strtod(tmp, NULL);
	if (!isfinite(d))
		return fail(p, "number out of range at column %zu", start + 1);
	*v = d; /* underflow to 0 or a subnormal is fine */
	return 0;
}

/* Reads a literal at p->pos, which holds a digit or "." followed by a digit. */
static int parse_number(struct parser *p, double *v)
{
	const unsigned char *s = p->s;
	size_t n = p->len, i = p->pos, start = p->pos;
	uint64_t mant = 0;
	int ndig = 0;   /* significant digits in mant */
	int exp10 = 0;  /* value = mant * 10^exp10 */
	int slow = 0;   /* too many digits for the fast path */

	for (; i < n && is_digit(s[i]); i++) {
		if (mant == 0 && s[i] == '0')
			continue;
		if (ndig == FAST_DIGITS_MAX) {
			slow = 1;
			continue;
		}
		mant = mant * 10 + (uint64_t)(s[i] - '0');
		ndig++;
	}
	if (i < n && s[i] == '.') {
		for (i++; i < n && is_digit(s[i]); i++) {
			if (mant == 0 && s[i] == '0') {
				if (exp10 > -ARITH_NUMBER_MAX) /* longer is refused anyway */
					exp10--;
				else
					slow = 1;
				continue;
			}
			if (ndig == FAST_DIGITS_MAX) {
				slow = 1;
				continue;
			}
			mant = mant * 10 + (uint64_t)(s[i] - '0');
			ndig++;
			exp10--;
		}
	}
	/* An exponent only counts when digits follow: "2e" is 2 then a stray 'e'. */
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t j = i + 1;
		int neg = 0;
		long e = 0;
		if (j < n && (s[j] == '+' || s[j] == '-'))
			neg = s[j++] == '-';
		if (j < n && is_digit(s[j])) {
			for (; j < n && is_digit(s[j]); j++)
				if (e < 100000) /* saturate; strtod sees the real value */
					e = e * 10 + (s[j] - '0');
			i = j;
			if (e > POW10_EXACT_MAX * 2)
				slow = 1;
			else
				exp10 += (int)(neg ? -e : e);
		}
	}
	p->pos = i;

	if (!slow && mant == 0) {
		*v = 0.0;
		return 0;
	}
	if (slow || exp10 > POW10_EXACT_MAX || exp10 < -POW10_EXACT_MAX)
		return number_slow(p, start, i - start, v);
	/* Both operands exact, one IEEE operation: correctly rounded. */
	if (exp10 >= 0)
		*v = (double)mant * pow10_exact[exp10];
	else
		*v = (double)mant / pow10_exact[-exp10];
	return 0;
}

static int parse_expr(struct parser *p, double *v);

/* unary = { "-" | "+" } primary, as a loop. */
static int parse_unary(struct parser *p, double *v)
{
	int neg = 0;
	for (;;) {
		skip_blanks(p);
		if (p->pos >= p->len)
			return fail(p, "unexpected end of expression");
		unsigned char c = p->s[p->pos];
		if (c == '-')
			neg = !neg;
		else if (c != '+')
			break;
		p->pos++;
	}

	unsigned char c = p->s[p->pos];
	double x;
	if (c == '(') {
		if (p->depth == ARITH_DEPTH_MAX)
			return fail(p, "expression nested too deeply (max %d parentheses)",
				    ARITH_DEPTH_MAX);
		p->depth++;
		p->pos++;
		if (parse_expr(p, &x))
			return -1;
		skip_blanks(p);
		if (p->pos >= p->len)
			return fail(p, "unexpected end of expression (missing ')')");
		if (p->s[p->pos] != ')')
			return fail_unexpected(p);
		p->pos++;
		p->depth--;
	} else if (is_digit(c) || (c == '.' && p->pos + 1 < p->len && is_digit(p->s[p->pos + 1]))) {
		if (parse_number(p, &x))
			return -1;
	} else {
		return fail_unexpected(p);
	}
	*v = neg ? -x : x;
	return 0;
}

static int apply(struct parser *p, unsigned char op, double a, double b, double *r)
{
	double x;
	switch (op) {
	case '+': x = a + b; break;
	case '-': x = a - b; break;
	case '*': x = a * b; break;
	case '/':
		if (b == 0.0)
			return fail(p, "division by zero");
		x = a / b;
		break;
	default: /* '%' */
		if (b == 0.0)
			return fail(p, "division by zero");
		x = fmod(a, b);
		break;
	}
	/* Operands are finite, so only overflow gets here (never NaN). */
	if (!isfinite(x))
		return fail(p, "result out of range");
	*r = x;
	return 0;
}

/* One precedence level of left-associative operators: operand { op operand },
 * op one of ops, each operand parsed by next. */
static int parse_level(struct parser *p, const char *ops, int (*next)(struct parser *, double *),
		       double *v)
{
	double acc, rhs;
	if (next(p, &acc))
		return -1;
	for (;;) {
		skip_blanks(p);
		if (p->pos >= p->len)
			break;
		unsigned char op = p->s[p->pos];
		if (op == '\0' || !strchr(ops, op)) /* strchr finds the NUL too */
			break;
		p->pos++;
		if (next(p, &rhs) || apply(p, op, acc, rhs, &acc))
			return -1;
	}
	*v = acc;
	return 0;
}

/* term = unary { ("*" | "/" | "%") unary } */
static int parse_term(struct parser *p, double *v)
{
	return parse_level(p, "*/%", parse_unary, v);
}

/* expr = term { ("+" | "-") term } */
static int parse_expr(struct parser *p, double *v)
{
	return parse_level(p, "+-", parse_term, v);
}

int arith_eval(const char *expr, size_t len, double *out, char *err, size_t errlen)
{
	struct parser p = {(const unsigned char *)expr, len, 0, 0, err, errlen};
	double v;

	skip_blanks(&p);
	if (p.pos == p.len)
		return fail(&p, "empty expression");
	if (parse_expr(&p, &v))
		return -1;
	skip_blanks(&p);
	if (p.pos < p.len) /* a stray ")" or a second operand: "1 2" */
		return fail_unexpected(&p);
	*out = v;
	return 0;
}

size_t arith_format(double v, char *buf, size_t cap)
{
	char tmp[ARITH_FORMAT_MAX];
	int n = 0;

	/* 2^53: beyond it not every integer is representable, so %g says it better. */
	if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == trunc(v)) {
		n = snprintf(tmp, sizeof tmp, "%lld", (long long)v); /* -0 → "0" */
	} else {
		for (int prec = 15; prec <= 17; prec++) {
			n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
			if (strtod(tmp, NULL) == v)
				break;
		}
	}
	if (n < 0)
		n = 0;
	if (cap) {
		size_t k = (size_t)n < cap - 1 ? (size_t)n : cap - 1;
		memcpy(buf, tmp, k);
		buf[k] = '\0';
	}
	return (size_t)n;
}
