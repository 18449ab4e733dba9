/* parse.h — numbers and tokens from text a user typed: flag values, task ids
 * in a URL or on a command line, token files. One parser for each, so forqd,
 * forq and forq worker accept the same text and refuse it with the same words.
 *
 * Functions return 0 or -errno; on failure *out is unchanged and err (which
 * may be NULL) says why, without naming the flag: callers put "--name: " in
 * front. They never print. */
#ifndef FORQ_PARSE_H
#define FORQ_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* A whole number in decimal: an optional '-' then digits, nothing else (no
 * blanks, no '+', no unit suffix: no flag uses one), from lo to hi. Returns 0,
 * or -EINVAL with err:  expected a whole number from LO to HI, got "S"  */
int parse_num(const char *s, long long lo, long long hi, long long *out, char *err,
	      size_t errlen);

/* A real number (strtod's forms, "inf" and "nan" refused) from lo to hi, or
 * above lo when lo_open. what names the quantity ("tasks per second"; NULL:
 * "a number"). Returns 0, or -EINVAL with err:
 *   expected WHAT (LO to HI), got "S"   or   expected WHAT (above LO, up to HI), got "S"
 * with LO and HI as parse_real_text writes them. */
int parse_real(const char *s, double lo, double hi, int lo_open, const char *what, double *out,
	       char *err, size_t errlen);

/* v as short text for messages and --help: 0, 100, 0.5, 1e9 (not 1e+09).
 * Returns out. */
const char *parse_real_text(double v, char *out, size_t cap);

/* A duration: a whole number and a unit, ms, s, m, h or d ("250ms", "30s",
 * "2h"), at most max_ms. Returns 0 with *ms, or -EINVAL with err:
 *   expected a duration like 30s, 500ms, 5m, 2h or 1d (at most N days), got "S" */
int parse_duration_ms(const char *s, uint64_t max_ms, uint64_t *ms, char *err, size_t errlen);

/* A point in time as RFC 3339 text in UTC or with an offset
 * ("2026-12-03T09:00:00Z", "2026-12-03T10:00:00.5+01:00"), or "@" and Unix
 * seconds ("@1796288400"). Returns 0 with *unix_ms, or -EINVAL with err:
 *   expected a time like 2026-12-03T09:00:00Z or @UNIX_SECONDS, got "S" */
int parse_time_ms(const char *s, int64_t *unix_ms, char *err, size_t errlen);

/* A task id: decimal digits only, 1 to UINT64_MAX. Returns 0 or -EINVAL (no
 * text: each caller says it in its own words). */
int parse_task_id(const char *s, uint64_t *id);

/* Token files (forqd --admin-token-file, forq worker --token-file). The
 * rules, the same for both:
 *   - the file is read whole (a pipe or /dev/fd/N is fine) and may hold at
 *     most PARSE_TOKEN_FILE_MAX bytes;
 *   - trailing blanks and line ends are trimmed (echo's newline, CRLF);
 *   - what is left is the token: not empty, one line, no control
 *     characters, at least PARSE_TOKEN_MIN characters.
 * No permission check: a secret mounted 0644 (Kubernetes' default) works.
 * Returns 0 with *out a malloc'd copy (the caller wipes and frees it), or
 * -errno with err one of:
 *   cannot open P: REASON / cannot read P: REASON / P is over 1024 bytes, not a token file /
 *   P holds no token / the token in P is not one line of printable text /
 *   the token in P is shorter than 8 characters
 * Buffers that held the token are wiped. */
#define PARSE_TOKEN_FILE_MAX 1024
#define PARSE_TOKEN_MIN 8
int parse_token_file(const char *path, char **out, char *err, size_t errlen);

/* The same rules for a token from elsewhere (an environment variable):
 * NULL if tok is fine, else what is wrong, to follow its name: "is empty",
 * "is not one line of printable text", "is shorter than 8 characters". */
const char *parse_token_problem(const char *tok);

#endif
