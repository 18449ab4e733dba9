/* main.c — the `forq` tool: push tasks, read a queue's figures, handle dead
 * letters, look a task up, run a remote worker or a benchmark.
 * Every flag is one row of the table below (base/flags.h), from which each
 * command's parser and --help come. The commands that work on a queue are in
 * push.c and inspect.c; this file parses, dispatches and prints bench's report.
 * Exit codes: 0 ok, 1 the operation failed, 2 usage (an unknown queue name
 * too), 3 cannot open the queue. The only place in the tool that exits. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "flags.h"
#include "forq.h"
#include "forq_admin.h"
#include "tasks_file.h"
#include "worker.h"

/* Rows of the flag table; commands list the ones they take. */
enum flag_row {
	F_SHM, F_PRIORITY, F_TIMEOUT, F_FILE, F_FORMAT, F_DELAY, F_AT, F_KEY, F_KEY_WINDOW, F_JSON,
	F_ALL, F_TASKS, F_WORKERS, F_BATCH, F_PAYLOAD, F_HANDLER, F_RATE, F_PUSH_KIND, F_FORQD,
	F_QUIET, F_QUEUE, F_QUEUES, F_JOURNAL, F_FSYNC, F_UPSTREAM, F_UPSTREAM_STREAM,
	F_UPSTREAM_REPLICAS, F_UPSTREAM_TOKEN_FILE, F_UPSTREAM_CREDS_FILE, F_WAIT, F_SYNC_EVERY, F_HELP, NFLAGS
};

static const char *prio_name(int i)
{
	return i >= 0 && i < FORQ_NPRIO ? forq_prio_name((enum forq_prio)i) : NULL;
}

static const char *push_kind_name(int i)
{
	static const char *const names[] = {[BENCH_PUSH_PLAIN] = "plain",
					    [BENCH_PUSH_DELAYED] = "delayed",
					    [BENCH_PUSH_KEYED] = "keyed"};
	return i >= 0 && i <= BENCH_PUSH_KEYED ? names[i] : NULL;
}

static const char *format_name(int i)
{
	static const char *const names[] = {[TASKS_LINES] = "lines", [TASKS_NUL] = "nul",
					    [TASKS_JSONL] = "jsonl"};
	return i >= 0 && i <= TASKS_JSONL ? names[i] : NULL;
}

#define O(m) offsetof(struct opts, m)

static const struct flag_spec flags[NFLAGS] = {
	[F_SHM] = {.name = "shm-name", .arg = "NAME", .type = FLAG_STR, .off = O(shm_name),
		   .sdef = "/forq", .help = "the queue (forqd --shm-name)"},
	[F_PRIORITY] = {.name = "priority", .arg = "P", .type = FLAG_NAME, .off = O(prio),
			.def = FORQ_NORMAL, .name_of = prio_name, .what = "priority",
			.help = "high, normal or low (with --file, only for --format nul or jsonl: "
				"lines say priority=P)"},
	[F_TIMEOUT] = {.name = "timeout", .arg = "MS", .type = FLAG_INT, .off = O(timeout_ms),
		       .lo = 0, .hi = 86400000, .def = 5000,
		       .help = "how long a push waits while the queue is full"},
	[F_FILE] = {.name = "file", .arg = "FILE", .type = FLAG_STR, .off = O(file),
		    .help = "push each line of FILE (- for stdin), as forqd --tasks reads it"},
	[F_FORMAT] = {.name = "format", .arg = "F", .type = FLAG_NAME, .off = O(format),
		      .def = TASKS_LINES, .name_of = format_name, .what = "format",
		      .help = "--file's form: lines, nul (NUL-ended records, any bytes) or jsonl "
			      "(a JSON value a line)"},
	[F_DELAY] = {.name = "delay", .arg = "DURATION", .type = FLAG_STR, .off = O(delay),
		     .help = "start no sooner than DURATION from now: 500ms, 30s, 5m, 2h or 1d"},
	[F_AT] = {.name = "at", .arg = "TIME", .type = FLAG_STR, .off = O(at),
		  .help = "start no sooner than TIME: 2026-12-03T09:00:00Z or @UNIX_SECONDS"},
	[F_KEY] = {.name = "key", .arg = "KEY", .type = FLAG_STR, .off = O(key),
		   .help = "a unique key (one PAYLOAD): a task holding it already is printed instead"},
	[F_KEY_WINDOW] = {.name = "key-window", .arg = "DURATION", .type = FLAG_STR,
			  .off = O(key_window),
			  .help = "with --key: keep the key this long after its task ends"},
	[F_JSON] = {.name = "json", .type = FLAG_ON, .off = O(json), .help = "print one JSON object"},
	[F_ALL] = {.name = "all", .type = FLAG_ON, .off = O(all), .help = "every dead letter"},
	[F_TASKS] = {.name = "tasks", .arg = "N", .type = FLAG_U64, .off = O(bench.tasks), .lo = 1,
		     .hi = 1000000000000LL, .def = 1000000, .help = "tasks to push"},
	[F_WORKERS] = {.name = "workers", .arg = "N", .type = FLAG_INT, .off = O(bench.workers),
		       .lo = 1, .hi = FORQ_MAX_WORKERS, .def = 1, .help = "forqd consumer processes"},
	[F_BATCH] = {.name = "batch", .arg = "N", .type = FLAG_U32, .off = O(bench.batch), .lo = 1,
		     .hi = FORQ_PUSH_BATCH_MAX, .def = 64,
		     .help = "tasks per push and per consumer pop"},
	[F_PAYLOAD] = {.name = "payload-bytes", .arg = "N", .type = FLAG_U32,
		       .off = O(bench.payload_bytes), .lo = 1, .hi = 1 << 20, .def = 8,
		       .help = "bytes per task (8: an 8-byte integer, else padded text)"},
	[F_HANDLER] = {.name = "handler", .arg = "H", .type = FLAG_STR, .off = O(bench.handler),
		       .sdef = "noop", .help = "forqd --handler: noop, arith, json or exec:CMD"},
	[F_PUSH_KIND] = {.name = "push-kind", .arg = "K", .type = FLAG_NAME, .off = O(bench.push_kind),
			 .def = BENCH_PUSH_PLAIN, .name_of = push_kind_name, .what = "push kind",
			 .help = "plain (batches), delayed (each with a 1 ms delay) or keyed (each "
				 "under its own unique key)"},
	[F_RATE] = {.name = "rate", .arg = "R", .type = FLAG_REAL, .off = O(bench.rate), .rlo = 0,
		    .lo_open = 1, .rhi = 1e10, .unit = "tasks per second", .rdef = 0,
		    .zero = "as fast as possible",
		    .help = "push R tasks per second (latency at partial load)"},
	[F_FORQD] = {.name = "forqd", .arg = "PATH", .type = FLAG_STR, .off = O(bench.forqd),
		     .shown = "next to forq, $FORQD, PATH", .help = "the forqd binary to start"},
	[F_QUIET] = {.name = "quiet", .type = FLAG_ON, .off = O(bench.quiet),
		     .help = "no progress lines on stderr"},
	[F_QUEUE] = {.name = "queue", .arg = "NAME", .type = FLAG_STR, .off = O(queue),
		     .sdef = FORQ_QUEUE_DEFAULT,
		     .help = "the named queue (forqd --config): its object is SHM-NAME.NAME"},
	[F_QUEUES] = {.name = "queues", .arg = "N", .type = FLAG_U32, .off = O(bench.queues), .lo = 1,
		      .hi = BENCH_QUEUES_MAX, .def = 1,
		      .help = "named queues q0, q1, ... each with --workers consumers; batches "
			      "pushed round robin (1: the default queue alone)"},
	[F_JOURNAL] = {.name = "journal", .arg = "DIR", .type = FLAG_STR, .off = O(bench.journal),
		       .help = "forqd --journal DIR (made empty first: a journal of its own)"},
	[F_FSYNC] = {.name = "fsync", .arg = "MODE", .type = FLAG_STR, .off = O(bench.fsync),
		     .sdef = "always", .help = "forqd --fsync with --journal: always, MS or off"},
	[F_UPSTREAM] = {.name = "upstream", .arg = "URLS", .type = FLAG_STR, .off = O(upstream),
			.help = "publish to a NATS JetStream stream (forqd --upstream) instead of "
				"a local queue: nats://HOST:PORT[,...]"},
	[F_UPSTREAM_STREAM] = {.name = "upstream-stream", .arg = "NAME", .type = FLAG_STR,
			       .off = O(upstream_stream), .sdef = "forq",
			       .help = "with --upstream: the stream (made if missing)"},
	[F_UPSTREAM_REPLICAS] = {.name = "upstream-replicas", .arg = "N", .type = FLAG_INT,
				 .off = O(upstream_replicas), .lo = 0, .hi = 5, .def = 0,
				 .zero = "the stream's; 1 if new",
				 .help = "with --upstream: the stream's replicas"},
	[F_UPSTREAM_TOKEN_FILE] = {.name = "upstream-token-file", .arg = "FILE", .type = FLAG_STR,
				   .off = O(upstream_token_file),
				   .help = "with --upstream: NATS token from FILE (or env "
					   "FORQ_NATS_TOKEN)"},
	[F_UPSTREAM_CREDS_FILE] = {.name = "upstream-creds-file", .arg = "FILE", .type = FLAG_STR,
				   .off = O(upstream_creds_file),
				   .help = "with --upstream: NATS creds file (or env FORQ_NATS_CREDS)"},
	[F_WAIT] = {.name = "wait", .arg = "SEC", .type = FLAG_INT, .off = O(wait_s), .lo = 0,
		    .hi = 86400, .def = 0, .zero = "no wait",
		    .help = "with --upstream: wait up to SEC s for each task's result on "
			    "forq.results.STREAM (forqd --upstream-results) and print it"},
	[F_SYNC_EVERY] = {.name = "sync-every", .arg = "N", .type = FLAG_U32,
			  .off = O(bench.sync_every), .lo = 0, .hi = 1 << 30, .def = 4096,
			  .help = "with --journal: push batches without waiting for the disk "
				  "(forq_push_batch_async) and wait once per N tasks (forq_sync); "
				  "0: each batch waits (forq_push_batch)"},
	[F_HELP] = {.name = "help", .type = FLAG_HELP, .short_name = 'h', .help = "print this help"},
};

int usage_error(const struct command *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "forq %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see forq %s --help)\n", cmd->name);
	return EXIT_USAGE;
}

int failure(const struct command *cmd, int code, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "forq %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int open_queue(const struct command *cmd, const struct opts *o, struct forq **q)
{
	char err[512];
	int r = forq_open_queue(q, o->shm_name, o->queue, err, sizeof err);
	if (r == -ENOENT && strcmp(o->queue, FORQ_QUEUE_DEFAULT))
		return failure(cmd, EXIT_USAGE, "unknown queue \"%s\" (%s)", o->queue, err);
	if (r)
		return failure(cmd, EXIT_QUEUE, "%s", err);
	return 0;
}

void cli_json_u64(cJSON *obj, const char *name, uint64_t v)
{
	char num[24];
	snprintf(num, sizeof num, "%" PRIu64, v);
	cJSON_AddRawToObject(obj, name, num);
}

/* Bytes as a JSON string, escaped as results lines are (bad UTF-8 -> U+FFFD). */
void cli_json_bytes(cJSON *obj, const char *name, const char *p, size_t len)
{
	struct buf b = BUF_INIT;
	if (buf_putc(&b, '"') || buf_json_escape(&b, p, len) || buf_putc(&b, '"'))
		cJSON_AddNullToObject(obj, name);
	else
		cJSON_AddRawToObject(obj, name, b.data);
	buf_free(&b);
}

int cli_json_print(const struct command *cmd, cJSON *root)
{
	char *text = root ? cJSON_PrintUnformatted(root) : NULL;
	cJSON_Delete(root);
	if (!text)
		return failure(cmd, EXIT_FAILED, "out of memory");
	puts(text);
	free(text);
	return EXIT_OK;
}

/* cmd's rows, in the order it lists them (F_HELP last). Returns how many. */
static size_t command_rows(const struct command *cmd, struct flag_spec rows[NFLAGS])
{
	size_t n = 0;
	for (const int *id = cmd->flags;; id++) {
		rows[n++] = flags[*id];
		if (*id == F_HELP)
			return n;
	}
}

static void defaults(struct opts *o)
{
	*o = (struct opts){0};
	flags_defaults(flags, NFLAGS, o, NULL);
}

static void command_help(const struct command *cmd)
{
	struct flag_spec rows[NFLAGS];
	struct opts d;
	size_t n = command_rows(cmd, rows);
	defaults(&d);
	printf("usage: forq %s [FLAGS]%s%s\n%s\n\nflags:\n", cmd->name, *cmd->args ? " " : "",
	       cmd->args, cmd->summary);
	for (size_t i = 0; i < n; i++)
		flags_help(stdout, &rows[i], &d, 24);
}

/* Parses cmd's flags; positional arguments end up in argv[*first..argc).
 * Returns 0, -1 after --help, or EXIT_USAGE (message printed). */
static int parse_flags(const struct command *cmd, struct opts *o, int argc, char **argv,
		       int *first)
{
	struct flag_spec rows[NFLAGS];
	size_t n = command_rows(cmd, rows);
	uint64_t given = 0;
	char err[512];

	switch (flags_parse(rows, n, o, argc, argv, first, &given, err, sizeof err)) {
	case FLAGS_OK: break;
	case FLAGS_HELP: command_help(cmd); return -1;
	default: return usage_error(cmd, "%s", err);
	}
	for (size_t i = 0; i < n; i++) /* rows[i] is flags[cmd->flags[i]] */
		if (cmd->flags[i] == F_PRIORITY)
			o->prio_set = (int)(given >> i & 1);
	/* Commands that take no arguments say so here, for all of them. */
	if (!*cmd->args && *first < argc)
		return usage_error(cmd, "unexpected argument \"%s\"", argv[*first]);
	return 0;
}

/* ---- bench ---- */

static int cmd_bench(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	(void)argc, (void)argv; /* none: parse_flags saw to that */
	struct bench_report r;
	char err[1024];
	const struct bench_config *c = &o->bench;
	o->bench.prio = o->prio;
	int e = bench_run(c, &r, err, sizeof err);
	if (e)
		return failure(cmd, e == BENCH_ERR_START ? EXIT_QUEUE : EXIT_FAILED, "%s", err);
	if (o->json) {
		cJSON *root = cJSON_CreateObject();
		cli_json_u64(root, "tasks", r.tasks);
		cli_json_u64(root, "done", r.done);
		cli_json_u64(root, "failed", r.failed);
		cli_json_u64(root, "dead", r.dead);
		cJSON_AddNumberToObject(root, "workers", c->workers);
		cJSON_AddNumberToObject(root, "queues", c->queues);
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
		cli_json_u64(root, "peak_rss_kib", r.peak_rss_kib);
		cli_json_u64(root, "private_kib", r.private_kib);
		cli_json_u64(root, "producer_rss_kib", r.self_rss_kib);
		cli_json_u64(root, "shm_bytes", r.shm_bytes);
		cli_json_u64(root, "full_waits", r.full_waits);
		if (c->journal) {
			cJSON_AddNumberToObject(root, "sync_every", c->sync_every);
			cJSON_AddNumberToObject(root, "durable_p50_us", r.durable_p50_us);
			cJSON_AddNumberToObject(root, "durable_p99_us", r.durable_p99_us);
			cli_json_u64(root, "syncs", r.syncs);
		}
		cJSON_AddStringToObject(root, "forqd", r.forqd_path);
		return cli_json_print(cmd, root);
	}
	printf("tasks         %" PRIu64 " (done %" PRIu64 ", failed %" PRIu64 ", dead %" PRIu64 ")\n",
	       r.tasks, r.done, r.failed, r.dead);
	printf("setup         %u queue%s, workers %d%s, batch %u, payload %u bytes, handler %s, "
	       "priority %s\n",
	       c->queues, c->queues == 1 ? "" : "s", c->workers, c->queues == 1 ? "" : " each",
	       c->batch, c->payload_bytes, c->handler, forq_prio_name((enum forq_prio)c->prio));
	if (c->rate > 0)
		printf("rate          %.0f tasks/s asked\n", c->rate);
	printf("throughput    %.0f tasks/s (%.3f s from first push to last done; pushing took %.3f s)\n",
	       r.tasks_per_s, r.seconds, r.push_seconds);
	printf("wait          p50 %.2f us, p99 %.2f us, p99.9 %.2f us (enqueue to start)\n",
	       r.wait_p50_us, r.wait_p99_us, r.wait_p999_us);
	printf("run           p50 %.3f us, p99 %.3f us (handler)\n", r.run_p50_us, r.run_p99_us);
	printf("cpu           %.1f ns per task (forqd, consumers and this producer)\n",
	       r.cpu_ns_per_task);
	if (c->journal) {
		printf("journal       --fsync %s, ", c->fsync ? c->fsync : "always");
		if (c->sync_every && c->push_kind == BENCH_PUSH_PLAIN)
			printf("batches pushed without waiting, a sync every %u tasks (%" PRIu64
			       " syncs)\n", c->sync_every, r.syncs);
		else
			printf("each push waits for the journal\n");
		printf("durable       p50 %.1f us, p99 %.1f us (a batch's push to journaled, as the "
		       "producer saw it)\n", r.durable_p50_us, r.durable_p99_us);
	}
	printf("memory        queue %.1f MiB of shared memory; forqd + consumers %" PRIu64
	       " KiB private (%" PRIu64 " KiB peak RSS, the queue counted in each); producer %" PRIu64
	       " KiB RSS\n",
	       (double)r.shm_bytes / (1024.0 * 1024.0), r.private_kib, r.peak_rss_kib, r.self_rss_kib);
	printf("queue full    %" PRIu64 " pushes waited for room\n", r.full_waits);
	return EXIT_OK;
}

/* ---- dispatch ---- */

static const int push_flags[] = {F_SHM, F_QUEUE, F_PRIORITY, F_TIMEOUT, F_FILE, F_FORMAT, F_DELAY, F_AT,
				 F_KEY, F_KEY_WINDOW, F_UPSTREAM, F_UPSTREAM_STREAM,
				 F_UPSTREAM_REPLICAS, F_UPSTREAM_TOKEN_FILE, F_UPSTREAM_CREDS_FILE,
				 F_WAIT, F_HELP};
static const int stats_flags[] = {F_SHM, F_QUEUE, F_JSON, F_HELP};
static const int dead_flags[] = {F_SHM, F_QUEUE, F_JSON, F_HELP};
static const int retry_flags[] = {F_SHM, F_QUEUE, F_ALL, F_HELP};
static const int status_flags[] = {F_SHM, F_QUEUE, F_JSON, F_HELP};
static const int queue_flags[] = {F_SHM, F_HELP};
static const int cancel_flags[] = {F_SHM, F_QUEUE, F_HELP};
static const int bench_flags[] = {F_TASKS, F_WORKERS, F_BATCH, F_PAYLOAD, F_HANDLER, F_RATE,
				  F_PUSH_KIND, F_PRIORITY, F_QUEUES, F_JSON, F_FORQD, F_QUIET, F_JOURNAL,
				  F_FSYNC, F_SYNC_EVERY, F_HELP};

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
	{"pause", "NAME", "Pauses queue NAME (default): consumers and remote workers take no task\n"
	 "from it, the ones running finish, pushes go on. It stays paused across forqd\n"
	 "restarts until `forq resume NAME`.", cmd_pause, queue_flags},
	{"resume", "NAME", "Resumes queue NAME: consumers take tasks again.", cmd_resume, queue_flags},
	{"purge", "NAME", "Drops every task pending in queue NAME or waiting for a retry (running\n"
	 "ones are not touched); forqd writes a result record with status \"purged\" for\n"
	 "each and the count is printed. Needs forqd running (exit 1 otherwise).",
	 cmd_purge, queue_flags},
	{"cancel", "ID", "Cancels task ID: a queued one (pending, or waiting for a retry or its\n"
	 "delay) never runs; a running one is stopped (its consumer and handler killed, the\n"
	 "consumer started again; a remote worker's lease revoked). Either way forqd writes\n"
	 "its result record with status \"cancelled\". One that is not queued: exit 1.",
	 cmd_cancel, cancel_flags},
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
		   "  pause       pause queue NAME (default): no task is started\n"
		   "  resume      resume queue NAME\n"
		   "  purge       drop queue NAME's pending tasks (results say purged)\n"
		   "  cancel      cancel queued task ID (--queue NAME; its result says cancelled)\n"
		   "  worker      run a remote worker against forqd's TCP port\n"
		   "  bench       benchmark a private forqd end to end\n\n"
		   "`forq COMMAND --help` lists a command's flags and their defaults; commands that\n"
		   "touch a queue take --shm-name NAME (default /forq).\n\n"
		   "exit codes:\n"
		   "  0  ok\n"
		   "  1  the operation failed (queue full, some bad lines, unknown id, ...)\n"
		   "  2  usage: bad command, flag or argument (an unknown queue name too)\n"
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
	struct opts o;
	defaults(&o);
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
