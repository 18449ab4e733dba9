/* errmsg.h — the one way modules fill a caller's error buffer. err may be
 * NULL or errlen 0: then nothing is written. The text is cut to fit. */
#ifndef FORQ_ERRMSG_H
#define FORQ_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>

void errmsg_set(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void errmsg_vset(char *err, size_t errlen, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#endif
