/* config.c — forqd's flags: one table for defaults, parsing and --help. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_file.h"
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
	{.name = "config", .arg = "FILE", .type = FLAG_STR, .off = C(config),
	 .help = "read settings and named queues from FILE (INI; flags given override its "
		 "global section)"},
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
	{.name = "upstream-results", .type = FLAG_ON, .off = C(upstream_results),
	 .help = "with --upstream: publish each final result to forq.results.STREAM (core "
		 "NATS, at most once)"},
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

/* The keys a [queue NAME] section may set; in the global section they are
 * every queue's defaults. */
static const char *const queue_keys[] = {
	"workers", "handler", "tasks", "demo", "task-timeout", "stall-timeout", "capacity",
	"max-payload", "batch", "max-attempts", "retry-backoff", "recent", "dead-max",
	"waiting-max", "keys-max", "rate", "rate-burst", "restart-backoff", "restart-backoff-max",
	"upstream", "upstream-stream", "upstream-results",
};

int config_key_per_queue(const char *key)
{
	for (size_t i = 0; i < sizeof queue_keys / sizeof queue_keys[0]; i++)
		if (!strcmp(key, queue_keys[i]))
			return 1;
	return 0;
}

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
	c->name = "default";
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

/* argv over what c holds. Returns 0, 1 (--help or --version printed) or -1. */
static int parse_argv(struct forqd_config *c, int argc, char **argv, char *err, size_t errlen)
{
	char e[512];
	int first = 0;

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
	return 0;
}

/* A string c keeps until config_free. */
static char *own(struct forqd_config *c, char *s)
{
	char **o = s ? realloc(c->owned, (c->n_owned + 1) * sizeof *o) : NULL;
	if (!o) {
		free(s);
		return NULL;
	}
	c->owned = o;
	return c->owned[c->n_owned++] = s;
}

static char *own_printf(struct forqd_config *c, const char *fmt, const char *a, const char *b)
{
	char *s = NULL;
	return asprintf(&s, fmt, a, b) < 0 ? NULL : own(c, s);
}

/* key's row, if it is a key of the config file. */
static const struct flag_spec *find_key(const char *key)
{
	for (size_t i = 0; i < NFLAGS; i++)
		if (!strcmp(flags[i].name, key))
			return flags[i].type == FLAG_HELP || flags[i].type == FLAG_VERSION ||
					       flags[i].type == FLAG_OFF || !strcmp(key, "config")
				       ? NULL
				       : &flags[i];
	return NULL;
}

/* One `key = value` of the file into q, as its flag would set it; strings
 * are kept by top. Returns 0 or -1 with err (without the file and line). */
static int apply_key(struct forqd_config *top, struct forqd_config *q, const char *key,
		     const char *value, char *err, size_t errlen)
{
	const struct flag_spec *r = find_key(key);
	if (!r) {
		snprintf(err, errlen, "unknown key \"%s\" (the keys are forqd's long flags)", key);
		return -1;
	}
	if (r->type == FLAG_ON) {
		static const char *const yes[] = {"true", "yes", "on", "1"};
		static const char *const no[] = {"false", "no", "off", "0"};
		for (int i = 0; i < 4; i++)
			if (!strcmp(value, yes[i]) || !strcmp(value, no[i])) {
				*(int *)((char *)q + r->off) = !strcmp(value, yes[i]);
				return 0;
			}
		snprintf(err, errlen, "%s: expected true or false, got \"%s\"", key, value);
		return -1;
	}
	char *arg = own_printf(top, "--%s=%s", key, value);
	char *argv[] = {"forqd", arg, NULL};
	int first;
	if (!arg) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return flags_parse(flags, NFLAGS, q, 2, argv, &first, NULL, err, errlen) ? -1 : 0;
}

/* The entries of section (the global one: "") into q. */
static int apply_section(struct forqd_config *top, struct forqd_config *q,
			 const struct config_entry *e, size_t n, const char *section, char *err,
			 size_t errlen)
{
	char e2[512];
	for (size_t i = 0; i < n; i++) {
		if (strcmp(e[i].section, section) || !e[i].key)
			continue;
		if (*section && !config_key_per_queue(e[i].key)) {
			snprintf(e2, sizeof e2, "\"%s\" is not a queue's key: %s", e[i].key,
				 find_key(e[i].key) ? "set it in the global section, before any "
						      "[queue NAME]"
						    : "unknown key");
		} else if (!apply_key(top, q, e[i].key, e[i].value, e2, sizeof e2)) {
			if (!strcmp(e[i].key, "handler"))
				q->handler_line = e[i].line;
			continue;
		}
		snprintf(err, errlen, "%s:%d: %s", top->config, e[i].line, e2);
		return -1;
	}
	return 0;
}
/* q, a queue named name over the global settings in c. Only the default
 * queue reads the global tasks and demo: every queue reading one file would
 * run each task once per queue. */
static int add_queue(struct forqd_config *c, const char *name, int line)
{
	struct forqd_config *q = &c->queues[c->n_queues];
	*q = *c;
	q->queues = NULL;
	q->n_queues = 0;
	q->owned = NULL;
	q->n_owned = 0;
	q->config_line = line;
	if (!(q->name = own(c, strdup(name))))
		return -1;
	if (strcmp(name, "default")) {
		q->tasks = NULL;
		q->demo_rate = 0;
		if (!(q->shm_name = own_printf(c, "%s.%s", c->shm_name, name)))
			return -1;
		/* Each queue its own stream, as its own shared memory. */
		if (!(q->upstream_stream = own_printf(c, "%s-%s", c->upstream_stream, name)))
			return -1;
	}
	if (c->journal && c->config && !(q->journal = own_printf(c, "%s/%s", c->journal, name)))
		return -1;
	c->n_queues++;
	return 0;
}

/* Every queue: the file's [queue NAME] sections, each over the global
 * settings, or else the flags' own queue, "default". */
static int build_queues(struct forqd_config *c, const struct config_entry *e, size_t n,
			char *err, size_t errlen)
{
	size_t headers = 0;
	int tasks_read = 0;
	for (size_t i = 0; i < n; i++)
		headers += !e[i].key && e[i].section[0];
	if (!(c->queues = calloc(headers ? headers : 1, sizeof *c->queues)))
		goto oom;
	if (!headers) {
		if (add_queue(c, "default", 0))
			goto oom;
		tasks_read = !!c->tasks;
	}
	for (size_t i = 0; i < n; i++) {
		if (e[i].key || !e[i].section[0])
			continue;
		char word[16], name[64], rest[2];
		int line = e[i].line;
		if (sscanf(e[i].section, "%15s %63s %1s", word, name, rest) != 2 ||
		    strcmp(word, "queue")) {
			snprintf(err, errlen, "%s:%d: expected [queue NAME], got [%s]", c->config, line,
				 e[i].section);
			return -1;
		}
		if (!forq_queue_name_ok(name)) {
			snprintf(err, errlen, "%s:%d: queue name \"%s\": use 1 to %d letters, digits, "
				 "'_' or '-'", c->config, line, name, FORQ_QUEUE_NAME_MAX);
			return -1;
		}
		for (size_t k = 0; k < c->n_queues; k++)
			if (!strcmp(c->queues[k].name, name)) {
				snprintf(err, errlen, "%s:%d: queue \"%s\" is declared twice (first at "
					 "line %d)", c->config, line, name, c->queues[k].config_line);
				return -1;
			}
		/* Task ids are unique across the queues (TCP's RESULT <id> names
		 * no queue): each queue's range must be its own. */
		for (size_t k = 0; k < c->n_queues; k++)
			if (forq_admin_queue_first_id(c->queues[k].name) ==
			    forq_admin_queue_first_id(name)) {
				snprintf(err, errlen, "%s:%d: queue \"%s\" would share its task ids "
					 "with queue \"%s\" (line %d), their names hash alike: "
					 "rename one", c->config, line, name, c->queues[k].name,
					 c->queues[k].config_line);
				return -1;
			}
		if (add_queue(c, name, line))
			goto oom;
		struct forqd_config *q = &c->queues[c->n_queues - 1];
		if (apply_section(c, q, e, n, e[i].section, err, errlen))
			return -1;
		if (q->tasks && q->demo_rate > 0) {
			snprintf(err, errlen, "%s:%d: queue \"%s\": tasks and demo cannot be used "
				 "together", c->config, line, name);
			return -1;
		}
		tasks_read |= !!q->tasks;
	}
	if (c->exit_when_done && !tasks_read) {
		snprintf(err, errlen, headers ? "--exit-when-done needs a queue with tasks FILE"
					      : "--exit-when-done needs --tasks FILE");
		return -1;
	}
	if (headers && (c->tasks || c->demo_rate > 0) && !tasks_read) {
		int has_default = 0;
		for (size_t k = 0; k < c->n_queues; k++)
			has_default |= !strcmp(c->queues[k].name, "default");
		if (!has_default) {
			snprintf(err, errlen, "--tasks and --demo feed the queue \"default\", which %s "
				 "does not declare: set them in a [queue NAME] section", c->config);
			return -1;
		}
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* --upstream: per queue (the config file's upstream and upstream-stream
 * keys), each its own stream; the NATS credentials and replicas are the
 * service's. */
static int check_upstream(struct forqd_config *c, char *err, size_t errlen)
{
	int any = 0, results = 0;
	for (size_t i = 0; i < c->n_queues; i++) {
		struct forqd_config *q = &c->queues[i];
		results |= q->upstream_results;
		if (!q->upstream)
			continue;
		any = 1;
		if (q->journal && !c->config) {
			snprintf(err, errlen, "--upstream and --journal cannot be used together (the "
				 "stream holds the tasks)");
			return -1;
		}
		/* A config file's journal is its local queues': the stream holds
		 * this one's tasks (redelivered after a crash), so a journal of
		 * them would only run them twice. */
		q->journal = NULL;
		for (size_t k = 0; k < i; k++)
			if (c->queues[k].upstream && !strcmp(c->queues[k].upstream, q->upstream) &&
			    !strcmp(c->queues[k].upstream_stream, q->upstream_stream)) {
				snprintf(err, errlen, "%s:%d: queues \"%s\" and \"%s\" both take the "
					 "stream %s: give each its own upstream-stream", c->config,
					 q->config_line, c->queues[k].name, q->name,
					 q->upstream_stream);
				return -1;
			}
	}
	if (read_token(c->upstream_token_file, "--upstream-token-file", "FORQ_NATS_TOKEN",
		       &c->upstream_token, err, errlen))
		return -1;
	if (!any && (c->upstream_token_file || c->upstream_creds_file || c->upstream_replicas ||
		     results)) {
		snprintf(err, errlen, "--upstream-replicas, --upstream-results, "
			 "--upstream-token-file and --upstream-creds-file need --upstream URLS");
		return -1;
	}
	if (!c->upstream_creds_file && getenv("FORQ_NATS_CREDS") && *getenv("FORQ_NATS_CREDS"))
		c->upstream_creds_file = getenv("FORQ_NATS_CREDS");
	if (c->upstream_token && c->upstream_creds_file) {
		snprintf(err, errlen, "give a NATS token or a creds file, not both");
		return -1;
	}
	return 0;
}

int config_parse(struct forqd_config *c, int argc, char **argv, char *err, size_t errlen)
{
	struct config_entry *e = NULL;
	size_t n = 0;
	int r;

	config_defaults(c);
	if ((r = parse_argv(c, argc, argv, err, errlen)))
		return r;
	if (c->config) {
		/* Defaults, then the file's global section, then the flags again:
		 * a flag given wins over the file. */
		const char *path = c->config;
		if (config_file_load(path, &e, &n, err, errlen))
			return -1;
		config_defaults(c);
		c->config = path;
		if (apply_section(c, c, e, n, "", err, errlen)) {
			r = -1;
			goto out;
		}
		const char *from_file = c->handler;
		if (parse_argv(c, argc, argv, err, errlen)) {
			r = -1;
			goto out;
		}
		if (c->handler != from_file) /* --handler won */
			c->handler_line = 0;
	}
	if (check(c, err, errlen) || build_queues(c, e, n, err, errlen) ||
	    check_upstream(c, err, errlen))
		r = -1;
out:
	config_file_free(e, n);
	if (r)
		config_free(c);
	return r;
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
	for (size_t i = 0; i < c->n_owned; i++)
		free(c->owned[i]);
	free(c->owned);
	free(c->queues);
	c->owned = NULL;
	c->n_owned = 0;
	c->queues = NULL;
	c->n_queues = 0;
}
