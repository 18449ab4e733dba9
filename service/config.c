/* config.c — forqd's flags, one table for parsing and --help. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flags.h"
#include "forq.h"
#include "log.h"
#include "net.h"

enum opt_id {
	O_SHM = 256, O_WORKERS, O_HANDLER, O_TASKS, O_RESULTS, O_EXIT_DONE, O_DRAIN, O_TASK_TIMEOUT,
	O_CAPACITY, O_MAX_PAYLOAD, O_BATCH, O_MAX_ATTEMPTS, O_BACKOFF, O_RECENT, O_DEAD_MAX,
	O_RESTART_BACKOFF, O_RESTART_BACKOFF_MAX, O_RECOVER, O_NO_RECOVER, O_KEEP_SHM, O_HTTP, O_TCP, O_LEASE, O_TCP_IDLE, O_TCP_MAX_CONNS, O_TOKEN_FILE, O_INSECURE,
	O_DEMO, O_LOG_LEVEL, O_HELP, O_VERSION,
};

static const struct flag flags[] = {
	{"shm-name", "NAME", "/forq", "shared-memory queue to create or recover", O_SHM},
	{"workers", "N", "number of CPUs", "local consumer processes (0: remote workers only)", O_WORKERS},
	{"handler", "H", "arith", "task handler: arith, noop, json or exec:CMD", O_HANDLER},
	{"tasks", "FILE", "none", "read tasks from FILE, one per line (- for stdin)", O_TASKS},
	{"results", "FILE", "-", "append JSON-lines results to FILE (- stdout, off none)", O_RESULTS},
	{"exit-when-done", NULL, "off", "exit once --tasks is read and every task has finished", O_EXIT_DONE},
	{"drain-timeout", "SEC", "30", "on shutdown, how long consumers may finish the queue", O_DRAIN},
	{"task-timeout", "MS", "0 (none)", "kill an exec: handler after MS milliseconds", O_TASK_TIMEOUT},
	{"capacity", "N", "65536", "tasks per priority lane", O_CAPACITY},
	{"max-payload", "BYTES", "1024", "largest task payload", O_MAX_PAYLOAD},
	{"batch", "N", "64", "tasks a consumer takes per pop", O_BATCH},
	{"max-attempts", "N", "3", "deliveries before a failing task is dead", O_MAX_ATTEMPTS},
	{"retry-backoff", "MS", "100", "first retry delay, doubled on each attempt", O_BACKOFF},
	{"recent", "N", "65536", "finished tasks kept for lookup by id", O_RECENT},
	{"dead-max", "N", "1024", "dead letters kept (the oldest make way)", O_DEAD_MAX},
	{"restart-backoff", "MS", "100", "first delay before restarting a consumer that keeps dying", O_RESTART_BACKOFF},
	{"restart-backoff-max", "MS", "30000", "longest delay between restarts of a crash-looping consumer", O_RESTART_BACKOFF_MAX},
	{"recover", NULL, "on", "re-attach to a queue left by a dead forqd and give back its tasks", O_RECOVER},
	{"no-recover", NULL, "", "refuse to start if the queue already exists", O_NO_RECOVER},
	{"keep-shm", NULL, "off", "keep the queue in shared memory at exit (unfinished tasks stay)", O_KEEP_SHM},
	{"http", "ADDR:PORT", "127.0.0.1:8080", "metrics, stats, task API and status page (off: none)", O_HTTP},
	{"tcp", "ADDR:PORT", "127.0.0.1:7070", "remote workers and producers (off: none)", O_TCP},
	{"lease-timeout", "SEC", "30", "a remote worker's time to answer a task", O_LEASE},
	{"tcp-idle-timeout", "SEC", "300", "close a TCP connection silent this long", O_TCP_IDLE},
	{"tcp-max-conns", "N", "10000", "TCP connections at once; more are refused", O_TCP_MAX_CONNS},
	{"admin-token-file", "FILE", "none", "admin token for POST /shutdown (or env FORQ_ADMIN_TOKEN)", O_TOKEN_FILE},
	{"insecure", NULL, "off", "allow listening beyond loopback without an admin token", O_INSECURE},
	{"demo", "RATE", "0 (off)", "built-in demo producer: RATE arithmetic tasks per second", O_DEMO},
	{"log-level", "LEVEL", "info", "debug, info, warn or error", O_LOG_LEVEL},
	{"help", NULL, "", "print this help", O_HELP},
	{"version", NULL, "", "print the version", O_VERSION},
};
#define NFLAGS (sizeof flags / sizeof flags[0])

static void usage(void)
{
	printf("usage: forqd [FLAGS]\n"
	       "forqd runs a forq task queue: it creates the shared-memory queue, forks\n"
	       "consumer processes, restarts the ones that die and serves metrics.\n\nflags:\n");
	for (size_t i = 0; i < NFLAGS; i++)
		flag_help(stdout, &flags[i], 28);
	printf("\nenvironment:\n  FORQ_ADMIN_TOKEN             admin token (never pass it as a flag)\n"
	       "\nsignals: SIGTERM/SIGINT drain and exit 0; a second one stops at once.\n");
}

static int parse_long(const char *flag, const char *s, long lo, long hi, long *out, char *err,
		      size_t errlen)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		snprintf(err, errlen, "--%s: expected a whole number from %ld to %ld, got \"%s\"",
			 flag, lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

static char *read_token_file(const char *path, char *err, size_t errlen)
{
	char buf[512];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "--admin-token-file: cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "--admin-token-file: cannot read %s", path);
		return NULL;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	if (n < 8) {
		snprintf(err, errlen, "--admin-token-file: the token in %s is shorter than 8 characters",
			 path);
		return NULL;
	}
	return strdup(buf);
}

/* A whole-number flag: its range and its field (one of i, u). */
struct num_flag {
	int id;
	long lo, hi;
	int *i;
	uint32_t *u;
};

/* Parses flag o if it is in nums; 1 if it is not, else 0 or -1 (err set). */
static int set_num_flag(const struct num_flag *nums, size_t n, int o, const char *fname,
			char *err, size_t errlen)
{
	for (size_t k = 0; k < n; k++) {
		long v = 0;
		if (nums[k].id != o)
			continue;
		if (parse_long(fname, optarg, nums[k].lo, nums[k].hi, &v, err, errlen))
			return -1;
		if (nums[k].i)
			*nums[k].i = (int)v;
		else
			*nums[k].u = (uint32_t)v;
		return 0;
	}
	return 1;
}

int config_parse(struct forqd_config *c, int argc, char **argv, char *err, size_t errlen)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	*c = (struct forqd_config){
		.shm_name = "/forq", .workers = n > 0 ? (int)(n > 64 ? 64 : n) : 1,
		.handler = "arith", .results = "-", .drain_timeout_s = 30, .capacity = 65536,
		.max_payload = 1024, .batch = 64, .max_attempts = 3, .backoff_ms = 100,
		.recent = 65536, .dead_max = 1024, .recover = 1, .restart_backoff_ms = 100,
		.restart_backoff_max_ms = 30000, .http = "127.0.0.1:8080",
		.tcp = "127.0.0.1:7070", .lease_timeout_s = 30, .tcp_idle_timeout_s = 300,
		.tcp_max_conns = 10000, .log_level = LOG_INFO};

	const struct num_flag nums[] = {
		{O_WORKERS, 0, 256, &c->workers, NULL},
		{O_DRAIN, 0, 86400, &c->drain_timeout_s, NULL},
		{O_TASK_TIMEOUT, 0, 86400000, &c->task_timeout_ms, NULL},
		{O_CAPACITY, 1, 1 << 26, NULL, &c->capacity},
		{O_MAX_PAYLOAD, 8, 1 << 20, NULL, &c->max_payload},
		{O_BATCH, 1, 1024, NULL, &c->batch},
		{O_MAX_ATTEMPTS, 1, 1000, NULL, &c->max_attempts},
		{O_BACKOFF, 0, 3600000, NULL, &c->backoff_ms},
		{O_RECENT, 1, 1 << 24, NULL, &c->recent},
		{O_DEAD_MAX, 0, 1 << 20, NULL, &c->dead_max},
		{O_RESTART_BACKOFF, 0, 3600000, &c->restart_backoff_ms, NULL},
		{O_RESTART_BACKOFF_MAX, 0, 3600000, &c->restart_backoff_max_ms, NULL},
		{O_LEASE, 1, 86400, &c->lease_timeout_s, NULL},
		{O_TCP_IDLE, 1, 86400, &c->tcp_idle_timeout_s, NULL},
		{O_TCP_MAX_CONNS, 1, 1000000, NULL, &c->tcp_max_conns},
	};
	struct option lo[NFLAGS + 1];
	for (size_t i = 0; i < NFLAGS; i++)
		lo[i] = flag_option(&flags[i]);
	lo[NFLAGS] = (struct option){0, 0, 0, 0};

	optind = 1;
	opterr = 0;
	int o, r;
	while ((o = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
		const char *fname = "";
		for (size_t i = 0; i < NFLAGS; i++)
			if (flags[i].id == o)
				fname = flags[i].name;
		if ((r = set_num_flag(nums, sizeof nums / sizeof nums[0], o, fname, err, errlen)) <= 0) {
			if (r < 0)
				return -1;
			continue;
		}
		switch (o) {
		case O_SHM: c->shm_name = optarg; break;
		case O_HANDLER: c->handler = optarg; break;
		case O_TASKS: c->tasks = optarg; break;
		case O_RESULTS: c->results = optarg; break;
		case O_EXIT_DONE: c->exit_when_done = 1; break;
		case O_RECOVER: c->recover = 1; break;
		case O_NO_RECOVER: c->recover = 0; break;
		case O_KEEP_SHM: c->keep_shm = 1; break;
		case O_HTTP: c->http = optarg; break;
		case O_TCP: c->tcp = optarg; break;
		case O_TOKEN_FILE: c->admin_token_file = optarg; break;
		case O_INSECURE: c->insecure = 1; break;
		case O_DEMO: {
			char *end;
			c->demo_rate = strtod(optarg, &end);
			if (end == optarg || *end || !(c->demo_rate >= 0 && c->demo_rate <= 1e9)) {
				snprintf(err, errlen, "--demo: expected tasks per second (0 to 1e9), got \"%s\"", optarg);
				return -1;
			}
			break;
		}
		case O_LOG_LEVEL:
			if ((c->log_level = log_level_parse(optarg)) < 0) {
				snprintf(err, errlen, "--log-level: unknown level \"%s\" (use debug, info, warn or error)", optarg);
				return -1;
			}
			break;
		case O_HELP: usage(); return 1;
		case O_VERSION: printf("forqd %s\n", FORQ_VERSION); return 1;
		case ':':
			snprintf(err, errlen, "%s: missing value (see forqd --help)", argv[optind - 1]);
			return -1;
		default:
			snprintf(err, errlen, "unknown flag \"%s\" (see forqd --help)", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument \"%s\" (see forqd --help)", argv[optind]);
		return -1;
	}
	if (c->exit_when_done && !c->tasks) {
		snprintf(err, errlen, "--exit-when-done needs --tasks FILE");
		return -1;
	}
	if (c->tasks && c->demo_rate > 0) {
		snprintf(err, errlen, "--tasks and --demo cannot be used together");
		return -1;
	}
	const char *env = getenv("FORQ_ADMIN_TOKEN");
	if (c->admin_token_file) {
		if (!(c->admin_token = read_token_file(c->admin_token_file, err, errlen)))
			return -1;
	} else if (env && *env) {
		if (strlen(env) < 8) {
			snprintf(err, errlen, "FORQ_ADMIN_TOKEN is shorter than 8 characters");
			return -1;
		}
		c->admin_token = strdup(env);
	}
	/* Read once, then gone: consumers and exec: handlers must not inherit it. */
	unsetenv("FORQ_ADMIN_TOKEN");
	char host[NET_HOST_MAX];
	uint16_t port;
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

void config_free(struct forqd_config *c)
{
	if (c->admin_token) {
		/* Wipe it: it is a secret. */
		explicit_bzero(c->admin_token, strlen(c->admin_token));
		free(c->admin_token);
		c->admin_token = NULL;
	}
}
