/* cli.c — the `forq` tool: push tasks, read a queue's figures, handle dead
 * letters, look a task up, run a remote worker or a benchmark.
 * Every command's flags are in one table, which also writes its --help.
 * Exit codes: 0 ok, 1 the operation failed, 2 usage, 3 cannot open the
 * queue. The only place in the tool that exits. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "forq_admin.h"
#include "bench.h"
#include "buf.h"
#include "flags.h"
#include "forq.h"
#include "results.h"
#include "tasks_file.h"
#include "worker.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_QUEUE = 3 };

#define PUSH_BATCH 64   /* tasks per forq_push_batch, all of one priority */

enum flag_id {
	F_END = 0, F_SHM = 256, F_PRIORITY, F_TIMEOUT, F_FILE, F_JSON, F_ALL, F_TASKS, F_WORKERS,
	F_BATCH, F_PAYLOAD, F_HANDLER, F_RATE, F_FORQD, F_QUIET, F_HELP,
};

static const struct flag flags[] = {
	{"shm-name", "NAME", "/forq", "the queue (forqd --shm-name)", F_SHM},
	{"priority", "P", "normal", "high, normal or low (not with --file: its lines say priority=P)", F_PRIORITY},
	{"timeout", "MS", "5000", "how long a push waits while the queue is full", F_TIMEOUT},
	{"file", "FILE", "none", "push each line of FILE (- for stdin), as forqd --tasks reads it", F_FILE},
	{"json", NULL, "off", "print one JSON object", F_JSON},
	{"all", NULL, "off", "every dead letter", F_ALL},
	{"tasks", "N", "1000000", "tasks to push", F_TASKS},
	{"workers", "N", "1", "forqd consumer processes", F_WORKERS},
	{"batch", "N", "64", "tasks per push and per consumer pop (1 to 256)", F_BATCH},
	{"payload-bytes", "N", "8", "bytes per task (8: an 8-byte integer, else padded text)", F_PAYLOAD},
	{"handler", "H", "noop", "forqd --handler: noop, arith, json or exec:CMD", F_HANDLER},
	{"rate", "R", "0 (as fast as possible)", "push R tasks per second (latency at partial load)", F_RATE},
	{"forqd", "PATH", "next to forq, $FORQD, PATH", "the forqd binary to start", F_FORQD},
	{"quiet", NULL, "off", "no progress lines on stderr", F_QUIET},
	{"help", NULL, "", "print this help", F_HELP},
};
#define NFLAGS (sizeof flags / sizeof flags[0])

/* Everything any command's flags set. */
struct opts {
	const char *shm_name;
	int prio, prio_set;
	int timeout_ms;
	const char *file;
	int json, all;
	struct bench_config bench;
};

struct command;
typedef int (*command_fn)(const struct command *cmd, struct opts *o, int argc, char **argv);

struct command {
	const char *name, *args, *summary;
	command_fn run;
	const int *flags; /* F_END-terminated; F_HELP is implied */
};

static const struct flag *flag_by_id(int id)
{
	for (size_t i = 0; i < NFLAGS; i++)
		if (flags[i].id == id)
			return &flags[i];
	return NULL;
}

__attribute__((format(printf, 2, 3)))
static int usage_error(const struct command *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "forq %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see forq %s --help)\n", cmd->name);
	return EXIT_USAGE;
}

__attribute__((format(printf, 3, 4)))
static int failure(const struct command *cmd, int code, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "forq %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static void command_help(const struct command *cmd)
{
	printf("usage: forq %s [FLAGS]%s%s\n%s\n\nflags:\n", cmd->name, *cmd->args ? " " : "",
	       cmd->args, cmd->summary);
	for (const int *id = cmd->flags;; id++) {
		flag_help(stdout, flag_by_id(*id ? *id : F_HELP), 24);
		if (!*id)
			break;
	}
}

static int parse_long(const struct command *cmd, const char *flag, const char *s, long lo,
		      long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return usage_error(cmd, "--%s: expected a whole number from %ld to %ld, got \"%s\"",
				   flag, lo, hi, s);
	*out = v;
	return 0;
}

static int parse_id(const char *s, uint64_t *id)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v == 0)
		return -1;
	*id = v;
	return 0;
}

static int set_flag(const struct command *cmd, struct opts *o, int id, const char *arg)
{
	const char *name = flag_by_id(id)->name;
	long v = 0; /* gcc -O3 cannot see that parse_long sets it when it returns 0 */
	int r = 0;
	switch (id) {
	case F_SHM: o->shm_name = arg; break;
	case F_PRIORITY:
		if ((o->prio = forq_prio_parse(arg)) < 0)
			return usage_error(cmd, "--priority: unknown priority \"%s\" (use high, normal or low)", arg);
		o->bench.prio = o->prio;
		o->prio_set = 1;
		break;
	case F_TIMEOUT:
		if (!(r = parse_long(cmd, name, arg, 0, 86400000, &v)))
			o->timeout_ms = (int)v;
		break;
	case F_FILE: o->file = arg; break;
	case F_JSON: o->json = 1; break;
	case F_ALL: o->all = 1; break;
	case F_TASKS:
		if (!(r = parse_long(cmd, name, arg, 1, 1000000000000L, &v)))
			o->bench.tasks = (uint64_t)v;
		break;
	case F_WORKERS:
		if (!(r = parse_long(cmd, name, arg, 1, 256, &v)))
			o->bench.workers = (int)v;
		break;
	case F_BATCH:
		if (!(r = parse_long(cmd, name, arg, 1, 256, &v)))
			o->bench.batch = (uint32_t)v;
		break;
	case F_PAYLOAD:
		if (!(r = parse_long(cmd, name, arg, 1, 1 << 20, &v)))
			o->bench.payload_bytes = (uint32_t)v;
		break;
	case F_HANDLER: o->bench.handler = arg; break;
	case F_RATE: {
		char *end;
		errno = 0;
		double d = strtod(arg, &end);
		if (errno || end == arg || *end || !(d > 0 && d <= 1e10))
			return usage_error(cmd, "--rate: expected tasks per second (above 0, up to 1e10), got \"%s\"", arg);
		o->bench.rate = d;
		break;
	}
	case F_FORQD: o->bench.forqd = arg; break;
	case F_QUIET: o->bench.quiet = 1; break;
	}
	return r;
}

/* Parses cmd's flags; positional arguments end up in argv[*first..argc).
 * Returns 0, -1 after --help, or EXIT_USAGE (message printed). */
static int parse_flags(const struct command *cmd, struct opts *o, int argc, char **argv,
		       int *first)
{
	struct option lo[NFLAGS + 1];
	size_t n = 0;
	for (const int *id = cmd->flags;; id++) {
		lo[n++] = flag_option(flag_by_id(*id ? *id : F_HELP));
		if (!*id)
			break;
	}
	lo[n] = (struct option){0, 0, 0, 0};

	optind = 1;
	opterr = 0;
	int c, r;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
		case F_HELP:
			command_help(cmd);
			return -1;
		case ':':
			return usage_error(cmd, "%s: missing value", argv[optind - 1]);
		case '?':
			return usage_error(cmd, "unknown flag \"%s\"", argv[optind - 1]);
		default:
			if ((r = set_flag(cmd, o, c, optarg)))
				return r;
		}
	}
	/* Commands that take no arguments say so here, for all of them. */
	if (!*cmd->args && optind < argc)
		return usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
	*first = optind;
	return 0;
}

static int open_queue(const struct command *cmd, const struct opts *o, struct forq **q)
{
	char err[512];
	if (forq_open(q, o->shm_name, err, sizeof err))
		return failure(cmd, EXIT_QUEUE, "%s", err);
	return 0;
}

/* ---- push ---- */

struct pusher {
	const struct command *cmd;
	struct forq *q;
	int prio, timeout_ms;
	struct forq_msg msgs[PUSH_BATCH];
	uint64_t ids[PUSH_BATCH];
	size_t n, max;      /* max: PUSH_BATCH, or less for a smaller lane */
	char *store;        /* PUSH_BATCH slots of `slot` bytes: copies of file lines */
	size_t slot;
	uint64_t pushed;
};

/* Pushes the batch and prints its ids. 0, or EXIT_FAILED (message printed). */
static int pusher_flush(struct pusher *p)
{
	if (!p->n)
		return 0;
	int r = forq_push_batch(p->q, (enum forq_prio)p->prio, p->msgs, p->n, p->timeout_ms, p->ids);
	switch (r) {
	case 0:
		break;
	case -EAGAIN:
		return failure(p->cmd, EXIT_FAILED,
			       "queue full: no room for %zu more tasks within %d ms "
			       "(%" PRIu64 " pushed before; raise --timeout or add workers)",
			       p->n, p->timeout_ms, p->pushed);
	case -ESHUTDOWN:
		return failure(p->cmd, EXIT_FAILED,
			       "the queue is not accepting tasks: forqd is draining or gone "
			       "(%" PRIu64 " pushed before)", p->pushed);
	default:
		return failure(p->cmd, EXIT_FAILED, "push failed: %s (%" PRIu64 " pushed before)",
			       strerror(-r), p->pushed);
	}
	for (size_t i = 0; i < p->n; i++)
		printf("%" PRIu64 "\n", p->ids[i]);
	p->pushed += p->n;
	p->n = 0;
	return 0;
}

/* Adds a task; a full batch, or one of another priority, goes out first. */
static int pusher_add(struct pusher *p, int prio, const char *payload, size_t len)
{
	int r;
	if (p->n && (prio != p->prio || p->n == p->max) && (r = pusher_flush(p)))
		return r;
	p->prio = prio;
	if (p->store) {
		char *dst = p->store + p->n * p->slot;
		memcpy(dst, payload, len);
		payload = dst;
	}
	p->msgs[p->n++] = (struct forq_msg){payload, (uint32_t)len};
	return 0;
}

static int push_args(struct pusher *p, const struct opts *o, uint32_t max_payload, int argc,
		     char **argv)
{
	for (int i = 0; i < argc; i++) {
		size_t len = strlen(argv[i]);
		if (len > max_payload)
			return failure(p->cmd, EXIT_FAILED,
				       "argument %d is %zu bytes, over the queue's limit of %u "
				       "(forqd --max-payload); nothing pushed", i + 1, len, max_payload);
	}
	for (int i = 0; i < argc; i++) {
		int r = pusher_add(p, o->prio, argv[i], strlen(argv[i]));
		if (r)
			return r;
	}
	return pusher_flush(p);
}

static int push_file(struct pusher *p, const struct opts *o, uint32_t max_payload)
{
	struct tasks_reader *rd = NULL;
	struct task_line t;
	unsigned line;
	char err[1024];
	unsigned long long bad = 0;
	int r, code = EXIT_OK;

	p->slot = max_payload;
	if (!(p->store = malloc((size_t)PUSH_BATCH * max_payload)))
		return failure(p->cmd, EXIT_FAILED, "out of memory");
	if (tasks_reader_open(&rd, o->file, max_payload, err, sizeof err)) {
		code = failure(p->cmd, EXIT_FAILED, "%s", err);
		goto out;
	}
	while ((r = tasks_reader_next(rd, &t, &line, err, sizeof err)) != 0) {
		if (r == -1) {
			fprintf(stderr, "%s\n", err);
			bad++;
			continue;
		}
		if (r < 0) {
			code = failure(p->cmd, EXIT_FAILED, "%s", err);
			break;
		}
		if ((code = pusher_add(p, t.prio, t.payload, t.len)))
			break;
	}
	if (!code)
		code = pusher_flush(p);
	if (!code && bad)
		code = failure(p->cmd, EXIT_FAILED, "%llu bad line%s skipped, %" PRIu64 " tasks pushed",
			       bad, bad == 1 ? "" : "s", p->pushed);
out:
	tasks_reader_close(rd);
	free(p->store);
	p->store = NULL;
	return code;
}

static int cmd_push(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	if (o->file && argc)
		return usage_error(cmd, "give payloads as arguments or with --file, not both");
	if (!o->file && !argc)
		return usage_error(cmd, "nothing to push: give PAYLOAD... or --file FILE");
	if (o->file && o->prio_set)
		return usage_error(cmd, "--priority is for PAYLOAD arguments; in --file each line "
				   "sets its own with a priority= prefix");
	for (int i = 0; i < argc; i++)
		if (!*argv[i])
			return usage_error(cmd, "argument %d is an empty payload", i + 1);
	struct forq *q;
	int code = open_queue(cmd, o, &q);
	if (code)
		return code;
	struct forq_stats s;
	forq_stats_read(q, &s);
	/* A batch must fit in a lane (forq_push_batch refuses more). */
	struct pusher p = {.cmd = cmd, .q = q, .prio = o->prio, .timeout_ms = o->timeout_ms,
			   .max = s.capacity < PUSH_BATCH ? (size_t)s.capacity : PUSH_BATCH};
	code = o->file ? push_file(&p, o, s.max_payload) : push_args(&p, o, s.max_payload, argc, argv);
	forq_close(q);
	return code;
}

/* ---- stats ---- */

static void add_u64(cJSON *obj, const char *name, uint64_t v)
{
	char num[24];
	snprintf(num, sizeof num, "%" PRIu64, v);
	cJSON_AddRawToObject(obj, name, num);
}

/* Bytes as a JSON string, escaped as results lines are (bad UTF-8 -> U+FFFD). */
static void add_bytes(cJSON *obj, const char *name, const char *p, size_t len)
{
	struct buf b = BUF_INIT;
	if (buf_putc(&b, '"') || buf_json_escape(&b, p, len) || buf_putc(&b, '"'))
		cJSON_AddNullToObject(obj, name);
	else
		cJSON_AddRawToObject(obj, name, b.data);
	buf_free(&b);
}

static int print_json(const struct command *cmd, cJSON *root)
{
	char *text = root ? cJSON_PrintUnformatted(root) : NULL;
	cJSON_Delete(root);
	if (!text)
		return failure(cmd, EXIT_FAILED, "out of memory");
	puts(text);
	free(text);
	return EXIT_OK;
}

static int stats_json(const struct command *cmd, const struct forq_stats *s)
{
	cJSON *root = cJSON_CreateObject(), *pend = cJSON_AddObjectToObject(root, "pending");
	for (int p = 0; p < FORQ_NPRIO; p++)
		add_u64(pend, forq_prio_name((enum forq_prio)p), s->pending[p]);
	add_u64(root, "pending_total", s->pending[0] + s->pending[1] + s->pending[2]);
	add_u64(root, "in_progress", s->in_progress);
	add_u64(root, "retry_waiting", s->retry_waiting);
	add_u64(root, "dead_letters", s->dead_letters);
	add_u64(root, "enqueued", s->enqueued);
	add_u64(root, "started", s->started);
	add_u64(root, "done", s->done);
	add_u64(root, "failed", s->failed);
	add_u64(root, "dead", s->dead);
	add_u64(root, "retried", s->retried);
	add_u64(root, "crashes", s->crashes);
	add_u64(root, "requeued", s->requeued);
	add_u64(root, "capacity", s->capacity);
	add_u64(root, "max_payload", s->max_payload);
	cJSON_AddBoolToObject(root, "accepting", s->accepting);
	cJSON *lanes = cJSON_AddObjectToObject(root, "lanes");
	for (int p = 0; lanes && p < FORQ_NPRIO; p++) {
		cJSON *l = cJSON_AddObjectToObject(lanes, forq_prio_name((enum forq_prio)p));
		if (!l)
			break;
		add_u64(l, "enqueued", s->lane[p].enqueued);
		add_u64(l, "started", s->lane[p].started);
		add_u64(l, "done", s->lane[p].done);
		add_u64(l, "failed", s->lane[p].failed);
	}
	return print_json(cmd, root);
}

static void print_lanes(const char *what, uint64_t high, uint64_t normal, uint64_t low)
{
	printf("%-14s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "\n", what, high, normal,
	       low, high + normal + low);
}

static int cmd_stats(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	(void)argc, (void)argv; /* none: parse_flags saw to that */
	struct forq *q;
	int code = open_queue(cmd, o, &q);
	if (code)
		return code;
	struct forq_stats s;
	forq_stats_read(q, &s);
	forq_close(q);
	if (o->json)
		return stats_json(cmd, &s);
	printf("queue          %s (%s)\n", o->shm_name, s.accepting ? "accepting tasks" : "not accepting tasks");
	printf("pending        %" PRIu64 " (high %" PRIu64 ", normal %" PRIu64 ", low %" PRIu64 ")\n",
	       s.pending[0] + s.pending[1] + s.pending[2], s.pending[0], s.pending[1], s.pending[2]);
	printf("in progress    %" PRIu64 "\n", s.in_progress);
	printf("retry waiting  %" PRIu64 "\n", s.retry_waiting);
	printf("dead letters   %" PRIu64 "\n", s.dead_letters);
	printf("               %12s %12s %12s %12s\n", "high", "normal", "low", "total");
	print_lanes("enqueued", s.lane[0].enqueued, s.lane[1].enqueued, s.lane[2].enqueued);
	print_lanes("started", s.lane[0].started, s.lane[1].started, s.lane[2].started);
	print_lanes("done", s.lane[0].done, s.lane[1].done, s.lane[2].done);
	print_lanes("failed", s.lane[0].failed, s.lane[1].failed, s.lane[2].failed);
	printf("dead           %" PRIu64 "\n", s.dead);
	printf("retried        %" PRIu64 "\n", s.retried);
	printf("crashes        %" PRIu64 "\n", s.crashes);
	printf("requeued       %" PRIu64 "\n", s.requeued);
	printf("capacity       %" PRIu64 " tasks per priority, %u bytes per task\n", s.capacity,
	       s.max_payload);
	return EXIT_OK;
}

/* ---- dead letters ---- */

struct dead_copy {
	uint64_t id;
	int prio;
	unsigned attempts;
	int64_t died_unix_ns;
	char error[64];
	char *payload;
	uint32_t len;
};

struct dead_list {
	struct dead_copy *v;
	size_t n, cap;
	int oom;
};

/* Runs under the dead table's lock: copies only. */
static void collect_dead(void *ctx, const struct forq_dead_info *d)
{
	struct dead_list *l = ctx;
	if (l->oom)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct dead_copy *v = realloc(l->v, cap * sizeof *v);
		if (!v) {
			l->oom = 1;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	struct dead_copy *c = &l->v[l->n];
	*c = (struct dead_copy){.id = d->id, .prio = d->prio, .attempts = d->attempts,
				.died_unix_ns = d->died_unix_ns, .len = d->len};
	snprintf(c->error, sizeof c->error, "%s", d->error ? d->error : "");
	if (!(c->payload = malloc(d->len + 1u))) {
		l->oom = 1;
		return;
	}
	memcpy(c->payload, d->payload, d->len);
	l->n++;
}

static void time_iso(int64_t unix_ns, char *out, size_t cap)
{
	time_t secs = (time_t)(unix_ns / 1000000000);
	struct tm tm;
	if (unix_ns <= 0 || !gmtime_r(&secs, &tm)) {
		snprintf(out, cap, "-");
		return;
	}
	char day[32];
	strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, cap, "%s.%03dZ", day, (int)(unix_ns / 1000000 % 1000));
}

static int dead_json(const struct command *cmd, const struct dead_list *l)
{
	cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "dead_letters");
	char when[40];
	for (size_t i = 0; i < l->n && arr; i++) {
		const struct dead_copy *d = &l->v[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddItemToArray(arr, o);
		add_u64(o, "id", d->id);
		cJSON_AddStringToObject(o, "priority", forq_prio_name((enum forq_prio)d->prio));
		add_u64(o, "attempts", d->attempts);
		time_iso(d->died_unix_ns, when, sizeof when);
		cJSON_AddStringToObject(o, "died_at", when);
		add_bytes(o, "error", d->error, strlen(d->error));
		add_bytes(o, "payload", d->payload, d->len);
	}
	return print_json(cmd, root);
}

static void free_dead(struct dead_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].payload);
	free(l->v);
}

static int cmd_dead(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	(void)argc, (void)argv; /* none: parse_flags saw to that */
	struct forq *q;
	int code = open_queue(cmd, o, &q);
	if (code)
		return code;
	struct dead_list l = {0};
	int r = forq_dead_list(q, collect_dead, &l);
	forq_close(q);
	if (r < 0 || l.oom) {
		code = failure(cmd, EXIT_FAILED, "cannot read the dead letters: %s",
			       strerror(r < 0 ? -r : ENOMEM));
		goto out;
	}
	if (o->json) {
		code = dead_json(cmd, &l);
		goto out;
	}
	if (!l.n) {
		printf("no dead letters\n");
		goto out;
	}
	printf("%-10s %-8s %-8s %-24s %-24s %s\n", "ID", "PRIORITY", "ATTEMPTS", "DIED AT", "ERROR",
	       "PAYLOAD");
	struct buf e = BUF_INIT, b = BUF_INIT;
	for (size_t i = 0; i < l.n; i++) {
		const struct dead_copy *d = &l.v[i];
		char when[40];
		time_iso(d->died_unix_ns, when, sizeof when);
		/* Error and payload quoted and escaped: any bytes stay on one line. */
		buf_reset(&e);
		buf_putc(&e, '"');
		buf_json_escape(&e, d->error, strlen(d->error));
		buf_putc(&e, '"');
		buf_reset(&b);
		buf_putc(&b, '"');
		buf_json_escape(&b, d->payload, d->len);
		buf_putc(&b, '"');
		printf("%-10" PRIu64 " %-8s %-8u %-24s %-24s %s\n", d->id,
		       forq_prio_name((enum forq_prio)d->prio), d->attempts, when,
		       e.data ? e.data : "", b.data ? b.data : "");
	}
	buf_free(&e);
	buf_free(&b);
out:
	free_dead(&l);
	return code;
}

static int cmd_retry_dead(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	if (!o->all && !argc)
		return usage_error(cmd, "say which: ID... or --all");
	if (o->all && argc)
		return usage_error(cmd, "give IDs or --all, not both");
	uint64_t *ids = calloc((size_t)argc + 1, sizeof *ids);
	if (!ids)
		return failure(cmd, EXIT_FAILED, "out of memory");
	for (int i = 0; i < argc; i++)
		if (parse_id(argv[i], &ids[i])) {
			free(ids);
			return usage_error(cmd, "\"%s\" is not a task id (a number from 1)", argv[i]);
		}
	struct forq *q;
	int code = open_queue(cmd, o, &q);
	if (code) {
		free(ids);
		return code;
	}
	long long requeued = 0;
	for (int i = 0; i < (o->all ? 1 : argc); i++) {
		int r = forq_dead_retry(q, o->all ? 0 : ids[i]);
		if (r >= 0)
			requeued += r;
		else if (r == -ENOENT)
			code = failure(cmd, EXIT_FAILED, "no dead letter with id %" PRIu64, ids[i]);
		else
			code = failure(cmd, EXIT_FAILED, "cannot re-queue: %s", strerror(-r));
	}
	forq_close(q);
	free(ids);
	printf("re-queued %lld dead letter%s\n", requeued, requeued == 1 ? "" : "s");
	return code;
}

/* ---- status ---- */

static int cmd_status(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	uint64_t id;
	if (argc != 1)
		return usage_error(cmd, "expected one task ID, got %d arguments", argc);
	if (parse_id(argv[0], &id))
		return usage_error(cmd, "\"%s\" is not a task id (a number from 1)", argv[0]);
	struct forq *q;
	int code = open_queue(cmd, o, &q);
	if (code)
		return code;
	static const char *const where_names[] = {
		[FORQ_WHERE_PENDING] = "pending", [FORQ_WHERE_RUNNING] = "running",
		[FORQ_WHERE_RETRYING] = "retrying"};
	int status = 0;
	unsigned attempts = 0;
	char text[FORQ_RESULT_TEXT_MAX + 64];
	int w = forq_task_where(q, id, &status, &attempts, text, sizeof text);
	forq_close(q);
	if (w == FORQ_WHERE_UNKNOWN)
		return failure(cmd, EXIT_FAILED,
			       "task %" PRIu64 " is unknown: never pushed, or finished long ago and "
			       "forgotten (forqd --recent)", id);
	const char *name = w == FORQ_WHERE_FINISHED ? result_status_name(status) : where_names[w];
	const char *label = w != FORQ_WHERE_FINISHED ? NULL
			    : status == FORQ_RESULT_DONE ? "result" : "error";
	if (o->json) {
		cJSON *root = cJSON_CreateObject();
		add_u64(root, "id", id);
		cJSON_AddStringToObject(root, "status", name);
		add_u64(root, "attempts", attempts);
		if (label)
			add_bytes(root, label, text, strlen(text));
		return print_json(cmd, root);
	}
	printf("id        %" PRIu64 "\nstatus    %s\nattempts  %u\n", id, name, attempts);
	if (label)
		printf("%-9s %s\n", label, text);
	return EXIT_OK;
}

/* ---- bench ---- */

static int cmd_bench(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	(void)argc, (void)argv; /* none: parse_flags saw to that */
	struct bench_report r;
	char err[1024];
	const struct bench_config *c = &o->bench;
	int e = bench_run(c, &r, err, sizeof err);
	if (e)
		return failure(cmd, e == BENCH_ERR_START ? EXIT_QUEUE : EXIT_FAILED, "%s", err);
	if (o->json) {
		cJSON *root = cJSON_CreateObject();
		add_u64(root, "tasks", r.tasks);
		add_u64(root, "done", r.done);
		add_u64(root, "failed", r.failed);
		add_u64(root, "dead", r.dead);
		cJSON_AddNumberToObject(root, "workers", c->workers);
		cJSON_AddNumberToObject(root, "batch", c->batch);
		cJSON_AddNumberToObject(root, "payload_bytes", c->payload_bytes);
		cJSON_AddStringToObject(root, "handler", c->handler);
		cJSON_AddStringToObject(root, "priority", forq_prio_name((enum forq_prio)c->prio));
		cJSON_AddNumberToObject(root, "rate", c->rate);
		cJSON_AddNumberToObject(root, "seconds", r.seconds);
		cJSON_AddNumberToObject(root, "push_seconds", r.push_seconds);
		cJSON_AddNumberToObject(root, "tasks_per_s", r.tasks_per_s);
		cJSON_AddNumberToObject(root, "wait_p50_us", r.wait_p50_us);
		cJSON_AddNumberToObject(root, "wait_p99_us", r.wait_p99_us);
		cJSON_AddNumberToObject(root, "wait_p999_us", r.wait_p999_us);
		cJSON_AddNumberToObject(root, "run_p50_us", r.run_p50_us);
		cJSON_AddNumberToObject(root, "run_p99_us", r.run_p99_us);
		cJSON_AddNumberToObject(root, "cpu_ns_per_task", r.cpu_ns_per_task);
		add_u64(root, "peak_rss_kib", r.peak_rss_kib);
		add_u64(root, "private_kib", r.private_kib);
		add_u64(root, "producer_rss_kib", r.self_rss_kib);
		add_u64(root, "shm_bytes", r.shm_bytes);
		add_u64(root, "full_waits", r.full_waits);
		cJSON_AddStringToObject(root, "forqd", r.forqd_path);
		return print_json(cmd, root);
	}
	printf("tasks         %" PRIu64 " (done %" PRIu64 ", failed %" PRIu64 ", dead %" PRIu64 ")\n",
	       r.tasks, r.done, r.failed, r.dead);
	printf("setup         workers %d, batch %u, payload %u bytes, handler %s, priority %s\n",
	       c->workers, c->batch, c->payload_bytes, c->handler,
	       forq_prio_name((enum forq_prio)c->prio));
	if (c->rate > 0)
		printf("rate          %.0f tasks/s asked\n", c->rate);
	printf("throughput    %.0f tasks/s (%.3f s from first push to last done; pushing took %.3f s)\n",
	       r.tasks_per_s, r.seconds, r.push_seconds);
	printf("wait          p50 %.2f us, p99 %.2f us, p99.9 %.2f us (enqueue to start)\n",
	       r.wait_p50_us, r.wait_p99_us, r.wait_p999_us);
	printf("run           p50 %.3f us, p99 %.3f us (handler)\n", r.run_p50_us, r.run_p99_us);
	printf("cpu           %.1f ns per task (forqd, consumers and this producer)\n",
	       r.cpu_ns_per_task);
	printf("memory        queue %.1f MiB of shared memory; forqd + consumers %" PRIu64
	       " KiB private (%" PRIu64 " KiB peak RSS, the queue counted in each); producer %" PRIu64
	       " KiB RSS\n",
	       (double)r.shm_bytes / (1024.0 * 1024.0), r.private_kib, r.peak_rss_kib, r.self_rss_kib);
	printf("queue full    %" PRIu64 " pushes waited for room\n", r.full_waits);
	return EXIT_OK;
}

/* ---- dispatch ---- */

static const int push_flags[] = {F_SHM, F_PRIORITY, F_TIMEOUT, F_FILE, F_END};
static const int stats_flags[] = {F_SHM, F_JSON, F_END};
static const int dead_flags[] = {F_SHM, F_JSON, F_END};
static const int retry_flags[] = {F_SHM, F_ALL, F_END};
static const int status_flags[] = {F_SHM, F_JSON, F_END};
static const int bench_flags[] = {F_TASKS, F_WORKERS, F_BATCH, F_PAYLOAD, F_HANDLER, F_RATE,
				  F_PRIORITY, F_JSON, F_FORQD, F_QUIET, F_END};

static const struct command commands[] = {
	{"push", "PAYLOAD... | --file FILE",
	 "Pushes each PAYLOAD (or each line of FILE) as a task and prints each task's id on its\n"
	 "own line. A full queue is waited for up to --timeout, then the push fails (exit 1);\n"
	 "bad lines of FILE are reported as FILE:LINE (exit 1), the good ones still pushed.",
	 cmd_push, push_flags},
	{"stats", "", "Prints the queue's figures: pending tasks by priority, in progress,\n"
	 "counters, retries waiting, dead letters, capacity.", cmd_stats, stats_flags},
	{"dead", "", "Lists the dead letters (tasks whose attempts ran out), oldest first.",
	 cmd_dead, dead_flags},
	{"retry-dead", "ID... | --all", "Puts dead letters back in the queue with their attempts reset.",
	 cmd_retry_dead, retry_flags},
	{"status", "ID", "Says where task ID is: pending, running, retrying, done, failed or dead,\n"
	 "with its result or error.", cmd_status, status_flags},
	{"bench", "",
	 "Starts a private forqd (queue /forq-bench-PID, no HTTP, no TCP, no results), pushes\n"
	 "--tasks tasks through libforq in batches, and reports throughput, wait and run time\n"
	 "percentiles, CPU time per task and memory; then stops forqd and checks it exited 0.",
	 cmd_bench, bench_flags},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
	fprintf(f, "usage: forq COMMAND [FLAGS] [ARGS]\n"
		   "forq works on a forq task queue (the shared-memory queue forqd runs).\n\n"
		   "commands:\n"
		   "  push        push tasks: PAYLOAD... or --file FILE\n"
		   "  stats       the queue's figures (--json)\n"
		   "  dead        list dead letters (--json)\n"
		   "  retry-dead  re-queue dead letters: ID... or --all\n"
		   "  status      where task ID is, with its result\n"
		   "  worker      run a remote worker against forqd's TCP port\n"
		   "  bench       benchmark a private forqd end to end\n\n"
		   "`forq COMMAND --help` lists a command's flags and their defaults; commands that\n"
		   "touch a queue take --shm-name NAME (default /forq).\n\n"
		   "exit codes:\n"
		   "  0  ok\n"
		   "  1  the operation failed (queue full, some bad lines, unknown id, ...)\n"
		   "  2  usage: bad command, flag or argument\n"
		   "  3  cannot open the queue (is forqd running? is --shm-name right?)\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(name, "--version")) {
		printf("forq %s\n", FORQ_VERSION);
		return EXIT_OK;
	}
	if (!strcmp(name, "worker"))
		return worker_main(argc - 1, argv + 1);
	const struct command *cmd = NULL;
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "forq: unknown command \"%s\" (see forq --help)\n", name);
		return EXIT_USAGE;
	}
	struct opts o = {
		.shm_name = "/forq", .prio = FORQ_NORMAL, .timeout_ms = 5000,
		.bench = {.tasks = 1000000, .workers = 1, .batch = 64, .payload_bytes = 8,
			  .handler = "noop", .prio = FORQ_NORMAL}};
	int first = 0;
	int r = parse_flags(cmd, &o, argc - 1, argv + 1, &first);
	if (r)
		return r < 0 ? EXIT_OK : r;
	int code = cmd->run(cmd, &o, argc - 1 - first, argv + 1 + first);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "forq %s: cannot write the output: %s\n", cmd->name, strerror(errno));
		return code ? code : EXIT_FAILED;
	}
	return code;
}
