/* parse.c — numbers, task ids and token files from user text (see parse.h). */
#include "parse.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errmsg.h"

#define PARSE_STR_(x) #x
#define PARSE_STR(x) PARSE_STR_(x)

int parse_num(const char *s, long long lo, long long hi, long long *out, char *err,
	      size_t errlen)
{
	const char *p = s;
	int neg = *p == '-';
	unsigned long long v = 0, limit;

	p += neg;
	/* Magnitude limit: LLONG_MAX, or one more for a negative number. */
	limit = neg ? (unsigned long long)LLONG_MAX + 1u : (unsigned long long)LLONG_MAX;
	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (limit - d) / 10)
			goto bad;
		v = v * 10 + d;
	}
	if (*p)
		goto bad;
	long long x = neg ? (v == (unsigned long long)LLONG_MAX + 1u ? LLONG_MIN : -(long long)v)
			  : (long long)v;
	if (x < lo || x > hi)
		goto bad;
	*out = x;
	return 0;
bad:
	errmsg_set(err, errlen, "expected a whole number from %lld to %lld, got \"%s\"", lo, hi, s);
	return -EINVAL;
}

const char *parse_real_text(double v, char *out, size_t cap)
{
	char tmp[32], *e;
	snprintf(tmp, sizeof tmp, "%g", v);
	/* "1e+09" -> "1e9", "1e-05" -> "1e-5" */
	if ((e = strchr(tmp, 'e'))) {
		char *d = e + 1, *src = e + 1;
		if (*src == '+')
			src++;
		else if (*src == '-')
			*d++ = *src++;
		while (*src == '0' && src[1])
			src++;
		memmove(d, src, strlen(src) + 1);
	}
	snprintf(out, cap, "%s", tmp);
	return out;
}

int parse_real(const char *s, double lo, double hi, int lo_open, const char *what, double *out,
	       char *err, size_t errlen)
{
	char *end, a[32], b[32];
	errno = 0;
	double v = strtod(s, &end);
	if (!errno && end != s && !*end && isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi) {
		*out = v;
		return 0;
	}
	parse_real_text(lo, a, sizeof a);
	parse_real_text(hi, b, sizeof b);
	errmsg_set(err, errlen, lo_open ? "expected %s (above %s, up to %s), got \"%s\""
					: "expected %s (%s to %s), got \"%s\"",
		   what ? what : "a number", a, b, s);
	return -EINVAL;
}

int parse_task_id(const char *s, uint64_t *id)
{
	uint64_t v = 0;
	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (v == 0)
		return -EINVAL;
	*id = v;
	return 0;
}

const char *parse_token_problem(const char *tok)
{
	size_t n = 0;
	if (!*tok)
		return "is empty";
	for (; tok[n]; n++)
		if ((unsigned char)tok[n] < 0x20 || tok[n] == 0x7f)
			return "is not one line of printable text";
	if (n < PARSE_TOKEN_MIN)
		return "is shorter than " PARSE_STR(PARSE_TOKEN_MIN) " characters";
	return NULL;
}

int parse_token_file(const char *path, char **out, char *err, size_t errlen)
{
	char b[PARSE_TOKEN_FILE_MAX + 1];
	size_t n = 0;
	int r = 0, fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	const char *why;

	if (fd < 0) {
		r = -errno;
		errmsg_set(err, errlen, "cannot open %s: %s", path, strerror(-r));
		return r;
	}
	/* Up to one byte past the limit, so that a longer file is seen. */
	while (n < sizeof b) {
		ssize_t k = read(fd, b + n, sizeof b - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			errmsg_set(err, errlen, "cannot read %s: %s", path, strerror(-r));
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	if (n > PARSE_TOKEN_FILE_MAX) {
		r = -EFBIG;
		errmsg_set(err, errlen, "%s is over %d bytes, not a token file", path,
			   PARSE_TOKEN_FILE_MAX);
		goto out;
	}
	while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' ' || b[n - 1] == '\t'))
		n--;
	b[n] = '\0';
	if (n == 0) {
		r = -ENODATA;
		errmsg_set(err, errlen, "%s holds no token", path);
		goto out;
	}
	/* A NUL inside would cut the token short unseen: refuse it too. */
	if (strlen(b) != n) {
		why = "is not one line of printable text";
	} else {
		why = parse_token_problem(b);
	}
	if (why) {
		r = -EINVAL;
		errmsg_set(err, errlen, "the token in %s %s", path, why);
		goto out;
	}
	if (!(*out = strdup(b))) {
		r = -ENOMEM;
		errmsg_set(err, errlen, "out of memory");
	}
out:
	close(fd);
	explicit_bzero(b, sizeof b);
	return r;
}
