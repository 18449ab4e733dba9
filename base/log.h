/* log.h — structured log lines on stderr:
 *   2026-11-23T09:20:00.123Z level=info pid=123 event=worker_started worker=0
 * One write(2) per line, so lines from forqd and its consumers never mix. */
#ifndef FORQ_LOG_H
#define FORQ_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level l);
enum log_level log_get_level(void);
int log_level_parse(const char *s); /* "debug".."error" -> level, else -1 */
const char *log_level_name(int l);  /* level -> "debug".."error", else NULL */
int log_enabled(enum log_level l);
/* fmt is the key=value part after event=EVENT (may be ""). */
void log_event(enum log_level l, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Escapes s for use inside key="..." (", \ and control bytes); returns buf. */
const char *log_quote(const char *s, char *buf, size_t cap);

#endif
