/* worker_opts.c — `forq worker`'s flags (worker_opts.h). */
#include "worker_opts.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flags.h"
#include "forq.h"
#include "parse.h"
#include "proto.h"

enum flag_id {
	F_CONNECT = 256, F_HANDLER, F_CONCURRENCY, F_BATCH, F_TASK_TIMEOUT, F_TOKEN_FILE,
	F_WAIT_MS, F_MAX_TASKS, F_QUEUE, F_QUIET, F_HELP,
};

static const struct flag flags[] = {
	{"connect", "HOST:PORT", "127.0.0.1:7070", "forqd's TCP address (forqd --tcp)", F_CONNECT},
	{"handler", "H", "arith", "task handler: noop, arith, json, exec:CMD or proc:CMD", F_HANDLER},
	{"concurrency", "N", "1", "connections, each in its own process", F_CONCURRENCY},
	{"batch", "N", "64", "tasks per request (GET_TASKS N; 1: GET_TASK)", F_BATCH},
	{"task-timeout", "MS", "0 (none)", "kill an exec: handler after MS milliseconds", F_TASK_TIMEOUT},
	{"token-file", "FILE", "none", "send AUTH with the token in FILE (or env FORQ_TOKEN)", F_TOKEN_FILE},
	{"wait-ms", "MS", "1000", "how long one request waits on an empty queue", F_WAIT_MS},
	{"max-tasks", "N", "0 (no limit)", "exit after N tasks (per connection)", F_MAX_TASKS},
	{"queue", "NAME[,NAME]", "default", "the queues to serve (up to 16; taken in turn)", F_QUEUE},
	{"quiet", NULL, "off", "log only warnings and errors", F_QUIET},
	{"help", NULL, "", "print this help", F_HELP},
};
#define NFLAGS (sizeof flags / sizeof flags[0])


static void usage(FILE *f)
{
	fprintf(f, "usage: forq worker [FLAGS]\n"
		   "Takes tasks from forqd over TCP and runs them, like forqd's own consumers.\n"
		   "\nflags:\n");
	for (size_t i = 0; i < NFLAGS; i++)
		flag_help(f, &flags[i], 26);
	fprintf(f, "\nenvironment:\n  FORQ_TOKEN                 token for AUTH (when forqd listens "
		   "beyond loopback)\n"
		   "\nsignals: SIGINT/SIGTERM finish the tasks in hand, send their results, say EXIT;\n"
		   "a second one exits at once.\n");
}

static int bad_flag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_flag(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "forq worker: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see forq worker --help)\n");
	return -1;
}

static int num_flag(const char *flag, const char *s, long long min, long long max, long long *v)
{
	char why[200];
	if (parse_num(s, min, max, v, why, sizeof why))
		return bad_flag("--%s: %s", flag, why);
	return 0;
}

/* --queue A[,B...]: each a queue name, at most PROTO_QUEUES_MAX. */
static int queues_flag(const char *s)
{
	char name[FORQ_QUEUE_NAME_MAX + 2];
	const char *at = s, *w;
	size_t n, count = 0;
	int r;
	while ((r = proto_queue_next(&at, s + strlen(s), &w, &n)) > 0) {
		snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name - 1 ? n : sizeof name - 1), w);
		if (n > FORQ_QUEUE_NAME_MAX || !forq_queue_name_ok(name))
			return bad_flag("--queue: bad queue name \"%.*s\" (1 to %d letters, digits, "
					"'_' or '-')", (int)n, w, FORQ_QUEUE_NAME_MAX);
		count++;
	}
	if (r < 0 || count == 0)
		return bad_flag("--queue: expected NAME[,NAME...], got \"%s\"", s);
	if (count > PROTO_QUEUES_MAX)
		return bad_flag("--queue: at most %d queues", PROTO_QUEUES_MAX);
	return 0;
}

/* The token file, with forqd's rules (base/parse.h). */
static int read_token(const char *path, char **out)
{
	char why[600];
	if (parse_token_file(path, out, why, sizeof why))
		return bad_flag("--token-file: %s", why);
	return 0;
}

int worker_opts_parse(struct worker_opts *o, int argc, char **argv)
{
	struct option lo[NFLAGS + 1];
	const char *token_file = NULL;
	long long v = 0; /* gcc -O3 cannot see that parse_num sets it on success */
	int c;
	*o = (struct worker_opts){.connect = "127.0.0.1:7070", .handler = "arith", .concurrency = 1,
			    .batch = 64, .wait_ms = 1000};
	for (size_t i = 0; i < NFLAGS; i++)
		lo[i] = flag_option(&flags[i]);
	lo[NFLAGS] = (struct option){0};
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (c) {
		case F_CONNECT: o->connect = optarg; break;
		case F_HANDLER: o->handler = optarg; break;
		case F_CONCURRENCY:
			if (num_flag("concurrency", optarg, 1, 1024, &v))
				return -1;
			o->concurrency = (long)v;
			break;
		case F_BATCH:
			if (num_flag("batch", optarg, 1, 4096, &v))
				return -1;
			o->batch = (uint32_t)v;
			break;
		case F_TASK_TIMEOUT:
			if (num_flag("task-timeout", optarg, 0, INT32_MAX, &v))
				return -1;
			o->task_timeout_ms = (int)v;
			break;
		case F_TOKEN_FILE: token_file = optarg; break;
		case F_WAIT_MS:
			if (num_flag("wait-ms", optarg, 0, INT32_MAX, &v))
				return -1;
			o->wait_ms = (int32_t)v;
			break;
		case F_MAX_TASKS:
			if (num_flag("max-tasks", optarg, 0, INT64_MAX, &v))
				return -1;
			o->max_tasks = (uint64_t)v;
			break;
		case F_QUEUE:
			if (queues_flag(optarg))
				return -1;
			o->queues = optarg;
			break;
		case F_QUIET: o->quiet = 1; break;
		case 'h':
		case F_HELP: usage(stdout); return 1;
		case ':': return bad_flag("%s: missing value", argv[optind - 1]);
		default: return bad_flag("unknown flag \"%s\"", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad_flag("unexpected argument \"%s\"", argv[optind]);
	uint16_t port;
	if (net_parse_addr(o->connect, o->host, &port) || port == 0)
		return bad_flag("--connect: expected HOST:PORT, got \"%s\"", o->connect);
	snprintf(o->port, sizeof o->port, "%u", (unsigned)port);
	const char *env = getenv("FORQ_TOKEN");
	int r = 0;
	if (token_file)
		r = read_token(token_file, &o->token);
	else if (env && *env && !(o->token = strdup(env)))
		r = bad_flag("out of memory");
	unsetenv("FORQ_TOKEN"); /* exec: handlers must not inherit it */
	return r;
}
void worker_opts_free(struct worker_opts *o)
{
	if (o->token) {
		explicit_bzero(o->token, strlen(o->token));
		free(o->token);
		o->token = NULL;
	}
}
