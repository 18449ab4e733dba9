/* flags.h — command-line flag tables: one row a flag, read by getopt_long and
 * printed by --help, so that the two never disagree. forqd (config.c), forq
 * (cli.c) and forq worker (worker.c) each keep their own table. */
#ifndef FORQ_FLAGS_H
#define FORQ_FLAGS_H

#include <getopt.h>
#include <stdio.h>

struct flag {
	const char *name; /* without the "--" */
	const char *arg;  /* the value's name in --help; NULL: the flag takes none */
	const char *def;  /* the default shown by --help; "": none shown */
	const char *help;
	int id;           /* what getopt_long returns for it: above 255 */
};

/* f's entry for getopt_long's table. */
struct option flag_option(const struct flag *f);

/* Prints f's --help line: "  --name ARG", padded to width, then the help and
 * " (default: def)". */
void flag_help(FILE *out, const struct flag *f, int width);

#endif
