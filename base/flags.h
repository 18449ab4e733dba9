/* flags.h — command-line flag tables: one row a flag, from which getopt_long's
 * table, the parser and --help all come, so that they never disagree.
 *
 * A row (struct flag_spec) carries the flag's name, the field it sets
 * (offsetof into the caller's options struct), its type, its default, its
 * range and its help. flags_defaults writes the defaults, flags_parse reads
 * argv into the struct, flags_help prints a --help line with the default read
 * back from a struct that holds the defaults. forqd (service/config.c) and
 * forq (cli/main.c) keep one table each.
 *
 * struct flag below is the older, untyped row (name, --help text, getopt id)
 * that `forq worker` (cli/worker.c) still uses. */
#ifndef FORQ_FLAGS_H
#define FORQ_FLAGS_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum flag_type {
	FLAG_STR = 1, /* const char *: the value as given (argv's own text) */
	FLAG_INT,     /* int, from lo to hi */
	FLAG_U32,     /* uint32_t, from lo to hi */
	FLAG_U64,     /* uint64_t, from lo to hi (hi at most LLONG_MAX) */
	FLAG_REAL,    /* double, from rlo (above it with lo_open) to rhi */
	FLAG_NAME,    /* int: one of the names name_of gives for 0, 1, ... */
	FLAG_ON,      /* int set to 1; takes no value */
	FLAG_OFF,     /* int set to 0 (--no-X beside an FLAG_ON --X row); its
		       * default is the FLAG_ON row's */
	FLAG_HELP,    /* flags_parse returns FLAGS_HELP */
	FLAG_VERSION, /* flags_parse returns FLAGS_VERSION */
};

struct flag_spec {
	const char *name;    /* without the "--" */
	const char *arg;     /* the value's name in --help; NULL: takes none */
	enum flag_type type;
	size_t off;          /* offsetof(the caller's struct, field) */
	long long lo, hi;    /* INT, U32, U64 */
	double rlo, rhi;     /* REAL */
	int lo_open;         /* REAL: rlo itself is refused */
	const char *unit;    /* REAL: what the number is, for errors ("tasks per second") */
	/* The default, by type: def (INT, U32, U64, NAME, ON: 0 off, 1 on), rdef
	 * (REAL), sdef (STR; NULL: none). */
	long long def;
	double rdef;
	const char *sdef;
	size_t from;         /* FLAG_FROM(...): the default is copied from that field of
			      * the struct given to flags_defaults instead */
	const char *shown;   /* the default is not a constant (the caller sets it
			      * after flags_defaults): --help shows this text */
	const char *zero;    /* a default of 0 means this: --help shows "0 (zero)" */
	const char *(*name_of)(int i); /* NAME: i's name, NULL past the last */
	const char *what;    /* NAME: noun for errors: unknown WHAT "x" (use a, b or c) */
	char short_name;     /* also -c (0: none) */
	const char *help;
};

/* The default of a row comes from field m of struct type T. */
#define FLAG_FROM(T, m) (offsetof(T, m) + 1)

enum flags_result {
	FLAGS_OK = 0,
	FLAGS_HELP = 1,    /* --help given: print it, exit 0 */
	FLAGS_VERSION = 2, /* --version given */
	FLAGS_BAD_VALUE = -1, /* err: --name: what is wrong with the value */
	FLAGS_BAD_FLAG = -2,  /* err: unknown flag "--x" / --x: missing value */
};

/* Writes every row's default into the struct at base; rows with `from` copy
 * theirs from the struct at from (which must then not be NULL). */
void flags_defaults(const struct flag_spec *rows, size_t n, void *base, const void *from);

/* Parses argv[1..argc) (argv[0] is the program or command name) into the
 * struct at base with getopt_long, permuting: arguments that are not flags
 * end up at argv[*first..argc). *given gets bit i set for each rows[i] seen
 * (n at most 64; given may be NULL). Returns a flags_result; on an error err
 * has the reason, without a "see --help" (callers add their own). */
int flags_parse(const struct flag_spec *rows, size_t n, void *base, int argc, char **argv,
		int *first, uint64_t *given, char *err, size_t errlen);

/* r's default as --help shows it, read from defaults (a struct filled by
 * flags_defaults and the caller): "64", "/forq", "none", "off", "0 (none)",
 * "normal", or r->shown; "" for HELP, VERSION and OFF rows. Returns out. */
const char *flags_default_text(const struct flag_spec *r, const void *defaults, char *out,
			       size_t cap);

/* Prints r's --help line: "  --name ARG", padded to width, the help, then
 * " (LO to HI; default: D)" (the range for numbers only, the default where
 * there is one). */
void flags_help(FILE *out, const struct flag_spec *r, const void *defaults, int width);

/* ---- untyped rows (forq worker) ---- */

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
