/* config.c — forqd's flags: one table for defaults, parsing and --help. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flags.h"
#include "forq.h"
#include "forq_admin.h"
#include "log.h"
#include "net.h"
#include "parse.h"

/* The CPU-count default of --workers stops here (the flag itself goes to
 * FORQ_MAX_WORKERS). */
#define WORKERS_AUTO_MAX 64

#define C(m) offsetof(struct forqd_config, m)
#define CORE(m) FLAG_FROM(struct forq_options, m)

/* One row a flag, in --help's order. Numbers that libforq also needs as
 * defaults (queue sizes) come from forq_options_default: .from = CORE(...). */
static const struct flag_spec flags[] = {
	{.name = "shm-name", .arg = "NAME", .type = FLAG_STR, .off = C(shm_name), .sdef = "/forq",
	 .help = "shared-memory queue to create or recover"},
	{.name = "workers", .arg = "N", .type = FLAG_INT, .off = C(workers), .lo = 0,
	 .hi = FORQ_MAX_WORKERS, .shown = "number of CPUs",
	 .help = "local consumer processes (0: remote workers only)"},
	{.name = "handler", .arg = "H", .type = FLAG_STR, .off = C(handler), .sdef = "arith",
	 .help = "task handler: arith, noop, json, exec:CMD or proc:CMD"},
	{.name = "tasks", .arg = "FILE", .type = FLAG_STR, .off = C(tasks),
	 .help = "read tasks from FILE, one per line (- for stdin)"},
	{.name = "results", .arg = "FILE", .type = FLAG_STR, .off = C(results), .sdef = "-",
	 .help = "append JSON-lines results to FILE (- stdout, off none)"},
	{.name = "exit-when-done", .type = FLAG_ON, .off = C(exit_when_done),
	 .help = "exit once --tasks is read and every task has finished"},
	{.name = "drain-timeout", .arg = "SEC", .type = FLAG_INT, .off = C(drain_timeout_s), .lo = 0,
	 .hi = 86400, .def = 30, .help = "on shutdown, how long consumers may finish the queue"},
	{.name = "stall-timeout", .arg = "SEC", .type = FLAG_INT, .off = C(stall_timeout_s), .lo = 0,
	 .hi = 86400, .def = 60, .zero = "off",
	 .help = "not ready when tasks wait and none finishes this long, or a worker runs one "
		 "task this long"},
	{.name = "task-timeout", .arg = "MS", .type = FLAG_INT, .off = C(task_timeout_ms), .lo = 0,
	 .hi = 86400000, .def = 0, .zero = "none",
	 .help = "kill an exec: handler, or a proc: child that answers nothing, after MS ms"},
	{.name = "capacity", .arg = "N", .type = FLAG_U32, .off = C(capacity), .lo = 1, .hi = 1 << 26,
	 .from = CORE(capacity), .help = "tasks per priority lane"},
	{.name = "max-payload", .arg = "BYTES", .type = FLAG_U32, .off = C(max_payload), .lo = 8,
	 .hi = 1 << 20, .from = CORE(max_payload), .help = "largest task payload"},
	{.name = "batch", .arg = "N", .type = FLAG_U32, .off = C(batch), .lo = 1, .hi = 1024,
	 .from = CORE(batch_max), .help = "tasks a consumer takes per pop"},
	{.name = "max-attempts", .arg = "N", .type = FLAG_U32, .off = C(max_attempts), .lo = 1,
	 .hi = 1000, .from = CORE(max_attempts), .help = "deliveries before a failing task is dead"},
	{.name = "retry-backoff", .arg = "MS", .type = FLAG_U32, .off = C(backoff_ms), .lo = 0,
	 .hi = 3600000, .from = CORE(backoff_ms), .help = "first retry delay, doubled on each attempt"},
	{.name = "recent", .arg = "N", .type = FLAG_U32, .off = C(recent), .lo = 1, .hi = 1 << 24,
	 .from = CORE(recent_max), .help = "finished tasks kept for lookup by id"},
	{.name = "dead-max", .arg = "N", .type = FLAG_U32, .off = C(dead_max), .lo = 0, .hi = 1 << 20,
	 .from = CORE(dead_max), .help = "dead letters kept (the oldest make way)"},
	{.name = "waiting-max", .arg = "N", .type = FLAG_U32, .off = C(waiting_max), .lo = 1,
	 .hi = 1 << 20, .from = CORE(retry_max),
	 .help = "tasks waiting for a retry backoff or a --delay at once"},
	{.name = "keys-max", .arg = "N", .type = FLAG_U32, .off = C(keys_max), .lo = 1,
	 .hi = 1 << 22, .from = CORE(keys_max),
	 .help = "unique keys held at once (128 bytes each; rounded up to a power of two)"},
	{.name = "rate", .arg = "N", .type = FLAG_REAL, .off = C(rate), .rlo = 0, .rhi = 1e9,
	 .unit = "task starts per second", .rdef = 0, .zero = "no limit",
	 .help = "at most N task starts a second, consumers and remote workers together"},
	{.name = "rate-burst", .arg = "N", .type = FLAG_U32, .off = C(rate_burst), .lo = 0,
	 .hi = 1000000, .def = 0, .zero = "a tenth of --rate",
	 .help = "task starts allowed at once under --rate"},
	{.name = "restart-backoff", .arg = "MS", .type = FLAG_INT, .off = C(restart_backoff_ms),
	 .lo = 0, .hi = 3600000, .def = 100,
	 .help = "first delay before restarting a consumer that keeps dying"},
	{.name = "restart-backoff-max", .arg = "MS", .type = FLAG_INT,
	 .off = C(restart_backoff_max_ms), .lo = 0, .hi = 3600000, .def = 30000,
	 .help = "longest delay between restarts of a crash-looping consumer"},
	{.name = "recover", .type = FLAG_ON, .off = C(recover), .def = 1,
	 .help = "re-attach to a queue left by a dead forqd and give back its tasks"},
	{.name = "no-recover", .type = FLAG_OFF, .off = C(recover),
	 .help = "refuse to start if the queue already exists"},
	{.name = "keep-shm", .type = FLAG_ON, .off = C(keep_shm),
	 .help = "keep the queue in shared memory at exit (unfinished tasks stay)"},
	{.name = "journal", .arg = "DIR", .type = FLAG_STR, .off = C(journal),
	 .help = "write-ahead journal of every task in DIR: the queue survives a reboot"},
	{.name = "fsync", .arg = "MODE", .type = FLAG_STR, .off = C(fsync), .sdef = "always",
	 .help = "with --journal: always (a push returns once on disk), MS (at most MS ms "
		 "apart) or off"},
	{.name = "journal-segment", .arg = "MIB", .type = FLAG_U32, .off = C(journal_segment_mib),
	 .lo = 1, .hi = 4095, .def = 64, .help = "journal segment size before a new one starts"},
	{.name = "upstream", .arg = "URLS", .type = FLAG_STR, .off = C(upstream),
	 .help = "back the queue with a NATS JetStream stream: nats://HOST:PORT[,nats://...]"},
	{.name = "upstream-stream", .arg = "NAME", .type = FLAG_STR, .off = C(upstream_stream),
	 .sdef = "forq", .help = "with --upstream: the stream (subject forq.NAME, consumer forq)"},
	{.name = "upstream-replicas", .arg = "N", .type = FLAG_INT, .off = C(upstream_replicas),
	 .lo = 0, .hi = 5, .def = 0, .zero = "the stream's; 1 if new",
	 .help = "with --upstream: the stream's replicas (an existing one must have as many)"},
	{.name = "upstream-token-file", .arg = "FILE", .type = FLAG_STR,
	 .off = C(upstream_token_file),
	 .help = "with --upstream: NATS token from FILE (or env FORQ_NATS_TOKEN)"},
	{.name = "upstream-creds-file", .arg = "FILE", .type = FLAG_STR,
	 .off = C(upstream_creds_file),
	 .help = "with --upstream: NATS creds file (or env FORQ_NATS_CREDS, a path)"},
	{.name = "http", .arg = "ADDR:PORT", .type = FLAG_STR, .off = C(http), .sdef = "127.0.0.1:8080",
	 .help = "metrics, stats, task API and status page (off: none)"},
	{.name = "tcp", .arg = "ADDR:PORT", .type = FLAG_STR, .off = C(tcp), .sdef = "127.0.0.1:7070",
	 .help = "remote workers and producers (off: none)"},
	{.name = "lease-timeout", .arg = "SEC", .type = FLAG_INT, .off = C(lease_timeout_s), .lo = 1,
	 .hi = 86400, .def = 30, .help = "a remote worker's time to answer a task"},
	{.name = "tcp-idle-timeout", .arg = "SEC", .type = FLAG_INT, .off = C(tcp_idle_timeout_s),
	 .lo = 1, .hi = 86400, .def = 300, .help = "close a TCP connection silent this long"},
	{.name = "tcp-max-conns", .arg = "N", .type = FLAG_U32, .off = C(tcp_max_conns), .lo = 1,
	 .hi = 1000000, .def = 10000, .help = "TCP connections at once; more are refused"},
	{.name = "admin-token-file", .arg = "FILE", .type = FLAG_STR, .off = C(admin_token_file),
	 .help = "admin token for POST /shutdown (or env FORQ_ADMIN_TOKEN)"},
	{.name = "worker-token-file", .arg = "FILE", .type = FLAG_STR, .off = C(worker_token_file),
	 .help = "lesser token for producers and workers: push, lease, results, task reads; "
		 "never shutdown (or env FORQ_WORKER_TOKEN)"},
	{.name = "insecure", .type = FLAG_ON, .off = C(insecure),
	 .help = "allow listening beyond loopback without an admin token"},
	{.name = "demo", .arg = "RATE", .type = FLAG_REAL, .off = C(demo_rate), .rlo = 0, .rhi = 1e9,
	 .unit = "tasks per second", .rdef = 0, .zero = "off",
	 .help = "built-in demo producer: RATE arithmetic tasks per second"},
	{.name = "log-level", .arg = "LEVEL", .type = FLAG_NAME, .off = C(log_level), .def = LOG_INFO,
	 .name_of = log_level_name, .what = "level", .help = "debug, info, warn or error"},
	{.name = "help", .type = FLAG_HELP, .help = "print this help"},
	{.name = "version", .type = FLAG_VERSION, .help = "print the version"},
};
#define NFLAGS (sizeof flags / sizeof flags[0])

const struct flag_spec *config_flags(size_t *n)
{
	*n = NFLAGS;
	return flags;
}

void config_defaults(struct forqd_config *c)
{
	struct forq_options core;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	forq_options_default(&core);
	*c = (struct forqd_config){0};
	flags_defaults(flags, NFLAGS, c, &core);
	/* The one default that is not a constant ("number of CPUs"). */
	c->workers = cpus > 0 ? (int)(cpus > WORKERS_AUTO_MAX ? WORKERS_AUTO_MAX : cpus) : 1;
}

static void usage(const struct forqd_config *defaults)
{
	printf("usage: forqd [FLAGS]\n"
	       "forqd runs a forq task queue: it creates the shared-memory queue, forks\n"
	       "consumer processes, restarts the ones that die and serves metrics.\n\nflags:\n");
	for (size_t i = 0; i < NFLAGS; i++)
		flags_help(stdout, &flags[i], defaults, 28);
	printf("\nenvironment:\n  FORQ_ADMIN_TOKEN             admin token (never pass it as a flag)\n"
	       "  FORQ_WORKER_TOKEN            worker token, for producers and workers\n"
	       "  FORQ_NATS_TOKEN              NATS token, with --upstream\n"
	       "  FORQ_NATS_CREDS              NATS creds file path, with --upstream\n"
	       "\nsignals: SIGTERM/SIGINT drain and exit 0; a second one stops at once.\n");
}

/* A token from its file, else from the environment variable; either way the
 * variable is unset (read once, then gone: consumers and handlers must not
 * inherit it). */
static int read_token(const char *file, const char *flag, const char *var, char **out, char *err,
		      size_t errlen)
{
	const char *env = getenv(var), *why;
	char e[512];
	int r = 0;
	if (file) {
		if (parse_token_file(file, out, e, sizeof e)) {
			snprintf(err, errlen, "%s: %s", flag, e);
			r = -1;
		}
	} else if (env && *env) {
		if ((why = parse_token_problem(env))) {
			snprintf(err, errlen, "%s %s", var, why);
			r = -1;
		} else if (!(*out = strdup(env))) {
			snprintf(err, errlen, "out of memory");
			r = -1;
		}
	}
	unsetenv(var);
	return r;
}

/* What the flags cannot say alone: pairs that exclude each other, the
 * tokens, the addresses. */
static int check(struct forqd_config *c, char *err, size_t errlen)
{
	char host[NET_HOST_MAX];
	uint16_t port;

	if (c->exit_when_done && !c->tasks) {
		snprintf(err, errlen, "--exit-when-done needs --tasks FILE");
		return -1;
	}
	if (c->tasks && c->demo_rate > 0) {
		snprintf(err, errlen, "--tasks and --demo cannot be used together");
		return -1;
	}
	if (read_token(c->admin_token_file, "--admin-token-file", "FORQ_ADMIN_TOKEN",
		       &c->admin_token, err, errlen) ||
	    read_token(c->worker_token_file, "--worker-token-file", "FORQ_WORKER_TOKEN",
		       &c->worker_token, err, errlen))
		return -1;
	if (c->worker_token && !c->admin_token) {
		snprintf(err, errlen, "a worker token needs an admin token too (set FORQ_ADMIN_TOKEN "
			 "or --admin-token-file)");
		return -1;
	}
	if (c->worker_token && c->admin_token && !strcmp(c->worker_token, c->admin_token)) {
		snprintf(err, errlen, "the worker token must differ from the admin token");
		return -1;
	}
	if (read_token(c->upstream_token_file, "--upstream-token-file", "FORQ_NATS_TOKEN",
		       &c->upstream_token, err, errlen))
		return -1;
	if (!c->upstream && (c->upstream_token_file || c->upstream_creds_file ||
			     c->upstream_replicas)) {
		snprintf(err, errlen, "--upstream-replicas, --upstream-token-file and "
			 "--upstream-creds-file need --upstream URLS");
		return -1;
	}
	if (c->upstream && c->journal) {
		snprintf(err, errlen, "--upstream and --journal cannot be used together (the stream "
			 "holds the tasks)");
		return -1;
	}
	if (!c->upstream_creds_file && getenv("FORQ_NATS_CREDS") && *getenv("FORQ_NATS_CREDS"))
		c->upstream_creds_file = getenv("FORQ_NATS_CREDS");
	if (c->upstream_token && c->upstream_creds_file) {
		snprintf(err, errlen, "give a NATS token or a creds file, not both");
		return -1;
	}
	if (!strcmp(c->fsync, "always")) {
		c->fsync_ms = -1;
	} else if (!strcmp(c->fsync, "off")) {
		c->fsync_ms = -2;
	} else {
		char *end;
		long ms = strtol(c->fsync, &end, 10);
		if (end == c->fsync || *end || ms < 0 || ms > 60000) {
			snprintf(err, errlen, "--fsync: expected always, off or milliseconds 0..60000, "
				 "got \"%s\"", c->fsync);
			return -1;
		}
		c->fsync_ms = (int)ms;
	}
	if (strcmp(c->http, "off") && net_parse_addr(c->http, host, &port)) {
		snprintf(err, errlen, "--http: expected ADDR:PORT or off, got \"%s\"", c->http);
		return -1;
	}
	if (strcmp(c->tcp, "off") && net_parse_addr(c->tcp, host, &port)) {
		snprintf(err, errlen, "--tcp: expected ADDR:PORT or off, got \"%s\"", c->tcp);
		return -1;
	}
	return 0;
}

int config_parse(struct forqd_config *c, int argc, char **argv, char *err, size_t errlen)
{
	char e[512];
	int first = 0;

	config_defaults(c);
	switch (flags_parse(flags, NFLAGS, c, argc, argv, &first, NULL, e, sizeof e)) {
	case FLAGS_OK: break;
	case FLAGS_HELP: {
		struct forqd_config d;
		config_defaults(&d);
		usage(&d);
		return 1;
	}
	case FLAGS_VERSION: printf("forqd %s\n", FORQ_VERSION); return 1;
	case FLAGS_BAD_VALUE: snprintf(err, errlen, "%s", e); return -1;
	default: snprintf(err, errlen, "%s (see forqd --help)", e); return -1;
	}
	if (first < argc) {
		snprintf(err, errlen, "unexpected argument \"%s\" (see forqd --help)", argv[first]);
		return -1;
	}
	if (check(c, err, errlen)) {
		config_free(c);
		return -1;
	}
	return 0;
}

/* Wipes and frees a token: it is a secret. */
static void wipe(char **t)
{
	if (*t) {
		explicit_bzero(*t, strlen(*t));
		free(*t);
		*t = NULL;
	}
}

void config_free(struct forqd_config *c)
{
	wipe(&c->admin_token);
	wipe(&c->worker_token);
	wipe(&c->upstream_token);
}
