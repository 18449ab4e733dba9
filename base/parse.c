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

int parse_duration_ms(const char *s, uint64_t max_ms, uint64_t *ms, char *err, size_t errlen)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	const char *p = s;
	uint64_t v = 0;
	while (*p >= '0' && *p <= '9' && v <= UINT64_MAX / 10)
		v = v * 10 + (uint64_t)(*p++ - '0');
	if (p != s && !(*p >= '0' && *p <= '9'))
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
			if (strcmp(p, units[i].unit) == 0 && v <= max_ms / units[i].ms) {
				*ms = v * units[i].ms;
				return 0;
			}
	errmsg_set(err, errlen,
		   "expected a duration like 30s, 500ms, 5m, 2h or 1d (at most %llu days), got \"%.40s\"",
		   (unsigned long long)(max_ms / 86400000), s);
	return -EINVAL;
}

/* Digits of a fixed width at *p, moved past. -1 if not all digits. */
static int fixed_digits(const char **p, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
	}
	return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int rfc3339_ms(const char *s, int64_t *out)
{
	const char *p = s;
	int y = fixed_digits(&p, 4);
	if (y < 0 || *p++ != '-')
		return -1;
	int mo = fixed_digits(&p, 2);
	if (mo < 1 || mo > 12 || *p++ != '-')
		return -1;
	int d = fixed_digits(&p, 2);
	if (d < 1 || d > 31 || (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p++;
	int h = fixed_digits(&p, 2);
	if (h < 0 || h > 23 || *p++ != ':')
		return -1;
	int mi = fixed_digits(&p, 2);
	if (mi < 0 || mi > 59 || *p++ != ':')
		return -1;
	int se = fixed_digits(&p, 2);
	if (se < 0 || se > 60)
		return -1;
	int64_t frac = 0, scale = 1000;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		for (; *p >= '0' && *p <= '9'; p++)
			if (scale > 1)
				frac += (scale /= 10) * (*p - '0');
	}
	int64_t off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;
		int oh = fixed_digits(&p, 2);
		if (oh < 0 || oh > 23 || *p++ != ':')
			return -1;
		int om = fixed_digits(&p, 2);
		if (om < 0 || om > 59)
			return -1;
		off = sign * (oh * 60 + om) * 60000LL;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
	*out = ((days * 24 + h) * 60 + mi) * 60000LL + se * 1000LL + frac - off;
	return 0;
}

int parse_time_ms(const char *s, int64_t *unix_ms, char *err, size_t errlen)
{
	long long v;
	if (s[0] == '@' && parse_num(s + 1, 0, 253402300799LL, &v, NULL, 0) == 0) {
		*unix_ms = v * 1000;
		return 0;
	}
	if (s[0] != '@' && rfc3339_ms(s, unix_ms) == 0)
		return 0;
	errmsg_set(err, errlen,
		   "expected a time like 2026-12-03T09:00:00Z or @UNIX_SECONDS, got \"%.40s\"", s);
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
