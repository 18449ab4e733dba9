/* flags.c — flag tables: defaults, parsing and --help from one row a flag
 * (see flags.h). */
#include "flags.h"

#include <string.h>

#include "errmsg.h"
#include "parse.h"

#define ROWS_MAX 64 /* bits of *given */
#define ID_BASE 256 /* getopt_long's value for rows[i]: ID_BASE + i, above any char */

static void *field(void *base, const struct flag_spec *r)
{
	return (char *)base + r->off;
}

static const void *cfield(const void *base, const struct flag_spec *r)
{
	return (const char *)base + r->off;
}

void flags_defaults(const struct flag_spec *rows, size_t n, void *base, const void *from)
{
	for (size_t i = 0; i < n; i++) {
		const struct flag_spec *r = &rows[i];
		void *f = field(base, r);
		const void *src = r->from ? (const char *)from + r->from - 1 : NULL;
		switch (r->type) {
		case FLAG_STR: *(const char **)f = src ? *(const char *const *)src : r->sdef; break;
		case FLAG_INT:
		case FLAG_NAME:
		case FLAG_ON: *(int *)f = src ? *(const int *)src : (int)r->def; break;
		case FLAG_U32: *(uint32_t *)f = src ? *(const uint32_t *)src : (uint32_t)r->def; break;
		case FLAG_U64: *(uint64_t *)f = src ? *(const uint64_t *)src : (uint64_t)r->def; break;
		case FLAG_REAL: *(double *)f = src ? *(const double *)src : r->rdef; break;
		case FLAG_OFF:
		case FLAG_HELP:
		case FLAG_VERSION: break;
		}
	}
}

/* "unknown level "x" (use debug, info, warn or error)" */
static int set_name(const struct flag_spec *r, int *f, const char *arg, char *err, size_t errlen)
{
	char list[256] = "";
	size_t len = 0;
	int count = 0;
	for (int i = 0; r->name_of(i); i++)
		count++;
	for (int i = 0; i < count; i++) {
		if (!strcmp(arg, r->name_of(i))) {
			*f = i;
			return 0;
		}
	}
	for (int i = 0; i < count && len < sizeof list; i++)
		len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
					i == 0 ? "" : i == count - 1 ? " or " : ", ", r->name_of(i));
	errmsg_set(err, errlen, "--%s: unknown %s \"%s\" (use %s)", r->name, r->what, arg, list);
	return FLAGS_BAD_VALUE;
}

/* Sets rows[i]'s field from arg. Returns 0 or FLAGS_BAD_VALUE (err set). */
static int set_value(const struct flag_spec *r, void *base, const char *arg, char *err,
		     size_t errlen)
{
	char why[200];
	long long v = 0; /* gcc -O3 cannot see that parse_num sets it on success */
	double d = 0;
	void *f = field(base, r);

	switch (r->type) {
	case FLAG_STR: *(const char **)f = arg; return 0;
	case FLAG_ON: *(int *)f = 1; return 0;
	case FLAG_OFF: *(int *)f = 0; return 0;
	case FLAG_NAME: return set_name(r, f, arg, err, errlen);
	case FLAG_INT:
	case FLAG_U32:
	case FLAG_U64:
		if (parse_num(arg, r->lo, r->hi, &v, why, sizeof why))
			break;
		if (r->type == FLAG_INT)
			*(int *)f = (int)v;
		else if (r->type == FLAG_U32)
			*(uint32_t *)f = (uint32_t)v;
		else
			*(uint64_t *)f = (uint64_t)v;
		return 0;
	case FLAG_REAL:
		if (parse_real(arg, r->rlo, r->rhi, r->lo_open, r->unit, &d, why, sizeof why))
			break;
		*(double *)f = d;
		return 0;
	case FLAG_HELP:
	case FLAG_VERSION: return 0;
	}
	errmsg_set(err, errlen, "--%s: %s", r->name, why);
	return FLAGS_BAD_VALUE;
}

int flags_parse(const struct flag_spec *rows, size_t n, void *base, int argc, char **argv,
		int *first, uint64_t *given, char *err, size_t errlen)
{
	struct option lo[ROWS_MAX + 1];
	char shorts[2 * ROWS_MAX + 2] = ":";
	size_t ns = 1;
	int c, r;

	if (n > ROWS_MAX) {
		errmsg_set(err, errlen, "too many flags in the table");
		return FLAGS_BAD_FLAG;
	}
	for (size_t i = 0; i < n; i++) {
		int has_arg = rows[i].arg ? required_argument : no_argument;
		lo[i] = (struct option){rows[i].name, has_arg, NULL, ID_BASE + (int)i};
		if (rows[i].short_name) {
			shorts[ns++] = rows[i].short_name;
			if (has_arg)
				shorts[ns++] = ':';
		}
	}
	lo[n] = (struct option){0, 0, 0, 0};
	shorts[ns] = '\0';
	if (given)
		*given = 0;

	optind = 0; /* glibc: 0 starts over completely (1 may keep a half-read "-abc") */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		size_t i = n;
		if (c >= ID_BASE && (size_t)(c - ID_BASE) < n) {
			i = (size_t)(c - ID_BASE);
		} else if (c != ':' && c != '?') {
			for (i = 0; i < n && rows[i].short_name != c; i++)
				;
		}
		if (c == ':') {
			errmsg_set(err, errlen, "%s: missing value", argv[optind - 1]);
			return FLAGS_BAD_FLAG;
		}
		if (i == n) {
			errmsg_set(err, errlen, "unknown flag \"%s\"", argv[optind - 1]);
			return FLAGS_BAD_FLAG;
		}
		if (given)
			*given |= (uint64_t)1 << i;
		if (rows[i].type == FLAG_HELP)
			return FLAGS_HELP;
		if (rows[i].type == FLAG_VERSION)
			return FLAGS_VERSION;
		if ((r = set_value(&rows[i], base, optarg, err, errlen)))
			return r;
	}
	*first = optind;
	return FLAGS_OK;
}

const char *flags_default_text(const struct flag_spec *r, const void *defaults, char *out,
			       size_t cap)
{
	const void *f = cfield(defaults, r);
	unsigned long long u = 0;
	double d = 0;
	char num[32];

	if (r->shown) {
		snprintf(out, cap, "%s", r->shown);
		return out;
	}
	switch (r->type) {
	case FLAG_STR: {
		const char *s = *(const char *const *)f;
		snprintf(out, cap, "%s", s ? s : "none");
		return out;
	}
	case FLAG_ON: snprintf(out, cap, "%s", *(const int *)f ? "on" : "off"); return out;
	case FLAG_NAME: {
		const char *s = r->name_of(*(const int *)f);
		snprintf(out, cap, "%s", s ? s : "?");
		return out;
	}
	case FLAG_INT: u = (unsigned long long)*(const int *)f; break;
	case FLAG_U32: u = *(const uint32_t *)f; break;
	case FLAG_U64: u = *(const uint64_t *)f; break;
	case FLAG_REAL: d = *(const double *)f; break;
	case FLAG_OFF:
	case FLAG_HELP:
	case FLAG_VERSION: snprintf(out, cap, "%s", ""); return out;
	}
	if (r->type == FLAG_REAL)
		parse_real_text(d, num, sizeof num);
	else if (r->type == FLAG_INT)
		snprintf(num, sizeof num, "%d", *(const int *)f);
	else
		snprintf(num, sizeof num, "%llu", u);
	if (r->zero && (r->type == FLAG_REAL ? d == 0 : u == 0))
		snprintf(out, cap, "%s (%s)", num, r->zero);
	else
		snprintf(out, cap, "%s", num);
	return out;
}

void flags_help(FILE *out, const struct flag_spec *r, const void *defaults, int width)
{
	char left[64], range[96] = "", def[128], a[32], b[32];
	snprintf(left, sizeof left, "--%s%s%s", r->name, r->arg ? " " : "", r->arg ? r->arg : "");
	if (r->type == FLAG_INT || r->type == FLAG_U32 || r->type == FLAG_U64)
		snprintf(range, sizeof range, "%lld to %lld", r->lo, r->hi);
	else if (r->type == FLAG_REAL)
		snprintf(range, sizeof range, r->lo_open ? "above %s, up to %s" : "%s to %s",
			 parse_real_text(r->rlo, a, sizeof a), parse_real_text(r->rhi, b, sizeof b));
	flags_default_text(r, defaults, def, sizeof def);
	fprintf(out, "  %-*s %s", width, left, r->help);
	if (*range && *def)
		fprintf(out, " (%s; default: %s)", range, def);
	else if (*range || *def)
		fprintf(out, " (%s%s)", *def ? "default: " : "", *def ? def : range);
	fputc('\n', out);
}

/* ---- untyped rows (forq worker) ---- */

struct option flag_option(const struct flag *f)
{
	return (struct option){f->name, f->arg ? required_argument : no_argument, NULL, f->id};
}

void flag_help(FILE *out, const struct flag *f, int width)
{
	char left[64];
	snprintf(left, sizeof left, "--%s%s%s", f->name, f->arg ? " " : "", f->arg ? f->arg : "");
	fprintf(out, "  %-*s %s", width, left, f->help);
	if (*f->def)
		fprintf(out, " (default: %s)", f->def);
	fputc('\n', out);
}
