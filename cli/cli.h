/* cli.h — what the forq tool's commands share (private to cli/): the options
 * every command's flags set, the command record, exit codes and the helpers
 * that print a command's errors. main.c parses and dispatches; push.c and
 * inspect.c hold the commands that work on a queue. */
#ifndef FORQ_CLI_H
#define FORQ_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "bench.h"

struct forq;

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_QUEUE = 3 };

/* Everything any command's flags set (defaults: main.c's flag table). */
struct opts {
	const char *shm_name;
	int prio, prio_set; /* prio_set: --priority was given */
	int timeout_ms;
	const char *file;
	int format;         /* enum tasks_format, for --file */
	const char *delay, *at; /* push: start no sooner (duration, or a time) */
	const char *key, *key_window; /* push: a unique key, held this long after */
	int json, all;
	const char *queue;  /* --queue: a queue's name */
	const char *upstream, *upstream_stream; /* push: publish to a NATS stream */
	int upstream_replicas;
	const char *upstream_token_file, *upstream_creds_file;
	int wait_s;         /* push --upstream --wait: for the results, this long */
	struct bench_config bench; /* bench.prio is copied from prio */
};

struct command;
typedef int (*command_fn)(const struct command *cmd, struct opts *o, int argc, char **argv);

struct command {
	const char *name, *args, *summary;
	command_fn run;
	const int *flags; /* flag rows (main.c's enum), F_HELP last */
};

/* "forq CMD: <text> (see forq CMD --help)" on stderr. Returns EXIT_USAGE. */
int usage_error(const struct command *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "forq CMD: <text>" on stderr. Returns code. */
int failure(const struct command *cmd, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Opens o->shm_name. Returns 0, or EXIT_QUEUE (message printed). */
int open_queue(const struct command *cmd, const struct opts *o, struct forq **q);

/* cJSON output: an exact integer (raw text), bytes as an escaped string. */
void cli_json_u64(cJSON *obj, const char *name, uint64_t v);
void cli_json_bytes(cJSON *obj, const char *name, const char *p, size_t len);
/* Prints root on one line and deletes it. Returns EXIT_OK, or EXIT_FAILED
 * (out of memory: root may be NULL). */
int cli_json_print(const struct command *cmd, cJSON *root);

/* The commands. */
int cmd_push(const struct command *cmd, struct opts *o, int argc, char **argv);       /* push.c */
int cmd_push_upstream(const struct command *cmd, struct opts *o, int argc, char **argv); /* publish.c */
int cmd_stats(const struct command *cmd, struct opts *o, int argc, char **argv);      /* inspect.c */
int cmd_dead(const struct command *cmd, struct opts *o, int argc, char **argv);       /* inspect.c */
int cmd_retry_dead(const struct command *cmd, struct opts *o, int argc, char **argv); /* inspect.c */
int cmd_status(const struct command *cmd, struct opts *o, int argc, char **argv);     /* inspect.c */
int cmd_pause(const struct command *cmd, struct opts *o, int argc, char **argv);      /* queues.c */
int cmd_resume(const struct command *cmd, struct opts *o, int argc, char **argv);     /* queues.c */
int cmd_purge(const struct command *cmd, struct opts *o, int argc, char **argv);      /* queues.c */
int cmd_cancel(const struct command *cmd, struct opts *o, int argc, char **argv);     /* queues.c */

#endif
