/* config_file.c — the config file, read into entries with libinih. */
#include "config_file.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INI_LONG_TEXT "198" /* INI_MAX_LINE - 2: fgets keeps a NUL and the newline */
_Static_assert(INI_MAX_LINE == 200, "INI_LONG_TEXT follows INI_MAX_LINE");

struct reader {
	FILE *f;
	const char *path;
	int line;          /* the line inih is on */
	int long_line;     /* a line that did not fit INI_MAX_LINE */
	char section[256]; /* the section of the last header seen */
	int section_line;
	struct config_entry *e;
	size_t n, cap;
	char why[200];     /* the first of our own refusals, at fail_line */
	int fail_line;
};

/* inih reads a line at a time through this, so the count is the line it is
 * on when it calls back. A line longer than its buffer would be split into
 * two "lines": refused instead. */
static int fail(struct reader *r, const char *why)
{
	if (!r->fail_line) {
		snprintf(r->why, sizeof r->why, "%s", why);
		r->fail_line = r->line;
	}
	return 0;
}

static int add(struct reader *r, const char *section, const char *key, const char *value)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct config_entry *e = realloc(r->e, cap * sizeof *e);
		if (!e)
			return fail(r, "out of memory");
		r->e = e;
		r->cap = cap;
	}
	struct config_entry *e = &r->e[r->n];
	*e = (struct config_entry){.line = r->line, .section_line = r->section_line};
	e->section = strdup(section);
	e->key = key ? strdup(key) : NULL;
	e->value = value ? strdup(value) : NULL;
	r->n++;
	if (!e->section || (key && !e->key) || (value && !e->value))
		return fail(r, "out of memory");
	for (char *p = e->key; p && *p; p++)
		if (*p == '_')
			*p = '-';
	return 1;
}

/* inih reads a line at a time through this, so the count is the line it is
 * on when it calls back. It says nothing of a section header with no keys
 * under it: headers are seen here. A line longer than inih's buffer would be
 * split into two "lines": refused instead. */
static char *read_line(char *str, int num, void *stream)
{
	struct reader *r = stream;
	if (!fgets(str, num, r->f))
		return NULL;
	r->line++;
	size_t len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n' && !feof(r->f)) {
		if (!r->long_line)
			r->long_line = r->line;
		int c;
		while ((c = fgetc(r->f)) != EOF && c != '\n')
			;
		str[0] = '\0'; /* a blank line to inih; the error is ours */
		return str;
	}
	const char *p = str + strspn(str, " \t"), *end = strchr(p, ']');
	if (*p == '[' && end) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		size_t n = (size_t)(end - p);
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		snprintf(r->section, sizeof r->section, "%.*s", (int)n, p);
		r->section_line = r->line;
		add(r, r->section, NULL, NULL);
	}
	return str;
}

static int on_entry(void *user, const char *section, const char *key, const char *value)
{
	struct reader *r = user;
	(void)section; /* inih's is r->section, as read_line saw it */
	return add(r, r->section, key, value);
}

int config_file_load(const char *path, struct config_entry **out, size_t *n, char *err,
		     size_t errlen)
{
	struct reader r = {.path = path};
	*out = NULL;
	*n = 0;
	if (!(r.f = fopen(path, "r"))) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	int bad = ini_parse_stream(read_line, &r, on_entry, &r);
	fclose(r.f);
	/* The first line that is wrong, whoever saw it. */
	int first = bad > 0 ? bad : 0;
	const char *why = "expected `key = value`, a [queue NAME] header or a comment";
	if (r.long_line && (!first || r.long_line <= first)) {
		first = r.long_line;
		why = "line longer than " INI_LONG_TEXT " bytes";
	}
	if (r.fail_line && (!first || r.fail_line < first)) {
		first = r.fail_line;
		why = r.why;
	}
	if (first || bad < 0) {
		if (first)
			snprintf(err, errlen, "%s:%d: %s", path, first, why);
		else
			snprintf(err, errlen, "%s: cannot be read", path);
		config_file_free(r.e, r.n);
		return -1;
	}
	*out = r.e;
	*n = r.n;
	return 0;
}

void config_file_free(struct config_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].section);
		free(e[i].key);
		free(e[i].value);
	}
	free(e);
}
