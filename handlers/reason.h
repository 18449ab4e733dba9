/* reason.h — the text of a task's failure, as every handler writes it.
 * Private to handlers/: callers see it in handler_run's out. */
#ifndef FORQ_REASON_H
#define FORQ_REASON_H

#include <stddef.h>

#include "buf.h"
#include "handler.h"

/* Drops what the run appended to out since mark and puts the reason there.
 * Returns st, or HANDLER_RETRY if the reason does not fit. */
enum handler_status handler__reason(struct buf *out, size_t mark, enum handler_status st,
				    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Copies at most n bytes of s into dst as one printable line (control bytes
 * become '?', so a reason never breaks a line-based reader). */
void handler__printable(char *dst, size_t cap, const char *s, size_t n);

/* Copies s (n bytes, any bytes) into dst as the inside of key="..." in a
 * log line: ", \ and control bytes escaped (\xNN), cut to fit cap. */
void handler__quote(char *dst, size_t cap, const char *s, size_t n);

/* Keeps the last cap bytes of a stream in tail (*n of them used). */
void handler__keep_tail(char *tail, size_t cap, size_t *n, const char *p, size_t len);

/* The last non-blank line of e (n bytes, a stream's tail) into dst as
 * handler__printable writes it ("" if none): where tools and tracebacks say
 * what went wrong. */
void handler__last_line(char *dst, size_t cap, const char *e, size_t n);

#endif
