/* config.h — forqd's settings: defaults, command-line flags, validation.
 * Every flag is listed once, in the table in config.c, which also writes
 * --help (each flag with its default). */
#ifndef FORQ_CONFIG_H
#define FORQ_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct forqd_config {
	const char *shm_name;     /* /forq */
	int workers;              /* local consumers; default: number of CPUs */
	const char *handler;      /* arith */
	const char *tasks;        /* tasks file, NULL if none */
	const char *results;      /* results file, "-" is stdout, "off" none */
	int exit_when_done;
	int drain_timeout_s;      /* 30 */
	int task_timeout_ms;      /* exec handler; 0 = none */
	uint32_t capacity;        /* 65536 tasks per lane */
	uint32_t max_payload;     /* 1024 bytes */
	uint32_t batch;           /* 64 */
	uint32_t max_attempts;    /* 3 */
	uint32_t backoff_ms;      /* 100 */
	uint32_t recent;          /* 65536 results kept for lookup */
	uint32_t dead_max;        /* 1024 */
	int restart_backoff_ms;   /* 100: first delay before restarting a dying consumer */
	int restart_backoff_max_ms; /* 30000 */
	int recover;              /* 1 */
	int keep_shm;             /* 0 */
	const char *http;         /* 127.0.0.1:8080, "off" */
	const char *tcp;          /* 127.0.0.1:7070, "off" */
	int lease_timeout_s;      /* 30 */
	int tcp_idle_timeout_s;   /* 300 */
	uint32_t tcp_max_conns;   /* 10000 */
	const char *admin_token_file;
	char *admin_token;        /* from FORQ_ADMIN_TOKEN or the file; owned */
	int insecure;
	double demo_rate;         /* tasks/s from the built-in demo producer, 0 = off */
	int log_level;
};

/* Fills defaults, then parses argv. Returns 0, 1 when --help or --version
 * printed and forqd should exit 0, or -1 with err ("--workers: ..."). */
int config_parse(struct forqd_config *c, int argc, char **argv, char *err, size_t errlen);
void config_free(struct forqd_config *c);

#endif
