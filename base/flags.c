/* flags.c — flag table rows for getopt_long and --help (see flags.h). */
#include "flags.h"

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
