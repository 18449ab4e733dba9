/* config.h — forqd's settings: defaults, command-line flags, validation.
 *
 * Every flag is one row of the table in config.c (base/flags.h: name, field,
 * type, default, range, help); the parser, --help and the defaults all come
 * from it, and README.md's flag table is checked against --help
 * (tests/e2e/test_flags_doc.sh). The queue's sizes default to libforq's own
 * (forq_options_default), so those numbers are written once, in core. */
#ifndef FORQ_CONFIG_H
#define FORQ_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct flag_spec;

struct forqd_config {
	const char *config;       /* --config FILE, NULL if none */
	const char *name;         /* the queue's name ("default" for the flags' own queue) */
	int config_line;          /* the line of its [queue NAME] section, 0 if none */
	int handler_line;         /* the config file's line that set handler, 0 if none */
	const char *shm_name;     /* the queue's shared-memory object (the default
				   * queue's; a named queue's is SHM.NAME) */
	int workers;              /* local consumers; default: number of CPUs */
	const char *handler;
	const char *tasks;        /* tasks file, NULL if none */
	const char *results;      /* results file, "-" is stdout, "off" none */
	int exit_when_done;
	int drain_timeout_s;
	int stall_timeout_s;      /* 0: no stall detection */
	int task_timeout_ms;      /* exec handler; 0 = none */
	uint32_t capacity;        /* tasks per lane */
	uint32_t max_payload;     /* bytes */
	uint32_t batch;           /* tasks a consumer pops at once */
	uint32_t max_attempts;
	uint32_t backoff_ms;
	uint32_t recent;          /* results kept for lookup */
	uint32_t dead_max;
	uint32_t waiting_max;     /* tasks waiting for a retry backoff or a delay */
	uint32_t keys_max;        /* unique keys held at once */
	double rate;              /* task starts per second, 0 = no limit */
	uint32_t rate_burst;      /* starts at once under rate, 0 = a tenth of a second's */
	int restart_backoff_ms;   /* first delay before restarting a dying consumer */
	int restart_backoff_max_ms;
	int recover;
	int keep_shm;
	const char *journal;      /* journal directory, NULL if none */
	const char *fsync;        /* always, off or MS */
	int fsync_ms;             /* from fsync: -1 always, -2 off, else ms */
	uint32_t journal_segment_mib;
	const char *upstream;     /* NATS URLs, NULL: no upstream stream */
	const char *upstream_stream;
	int upstream_replicas;    /* 0: the stream's own */
	int upstream_results;     /* final results to forq.results.STREAM */
	const char *upstream_token_file;
	char *upstream_token;     /* from FORQ_NATS_TOKEN or the file; owned */
	const char *upstream_creds_file; /* or FORQ_NATS_CREDS */
	const char *http;         /* ADDR:PORT or "off" */
	const char *tcp;          /* ADDR:PORT or "off" */
	int lease_timeout_s;
	int tcp_idle_timeout_s;
	uint32_t tcp_max_conns;
	const char *admin_token_file;
	char *admin_token;        /* from FORQ_ADMIN_TOKEN or the file; owned */
	const char *worker_token_file;
	char *worker_token;       /* from FORQ_WORKER_TOKEN or the file; owned */
	int insecure;
	double demo_rate;         /* tasks/s from the built-in demo producer, 0 = off */
	int log_level;            /* enum log_level */
	/* Every queue forqd serves: n_queues (at least one) settings, each a
	 * copy of these with its own section's keys; a queue's own queues is
	 * NULL. Owned by the top config, as are the config file's values. */
	struct forqd_config *queues;
	size_t n_queues;
	char **owned;
	size_t n_owned;
};

/* Fills defaults, then parses argv. Returns 0, 1 when --help or --version
 * printed and forqd should exit 0, or -1 with err ("--workers: ..."). Reads
 * and then unsets FORQ_ADMIN_TOKEN. */
int config_parse(struct forqd_config *c, int argc, char **argv, char *err, size_t errlen);

/* Keys that a [queue NAME] section may set: the per-queue flags. */
int config_key_per_queue(const char *key);

/* Wipes and frees the tokens, the queues and the config file's values. */
void config_free(struct forqd_config *c);

/* Every default, as config_parse starts from them (no argv, no environment). */
void config_defaults(struct forqd_config *c);

/* The flag table, for tests: *n rows. */
const struct flag_spec *config_flags(size_t *n);

#endif
