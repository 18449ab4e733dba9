/* publish.c — `forq push --upstream`: tasks published to a NATS JetStream
 * stream (upstream/stream.h) instead of pushed into a local queue. Each
 * task's stream sequence is printed on its own line once JetStream
 * acknowledged it (in the order the acks came); --key is the message id. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "forq.h"
#include "parse.h"
#include "stream.h"
#include "tasks_file.h"

#define PUBLISH_MAX_PAYLOAD 65536 /* a --file line's limit here; forqd's --max-payload rules */
#define PUBLISH_WAIT_MS 60000     /* for the last acknowledgements */

struct acks {
	atomic_uint_fast64_t ok, failed;
};

static void on_acked(void *ctx, const struct upstream_ack *k)
{
	struct acks *a = ctx;
	if (k->seq) {
		printf("%" PRIu64 "\n", k->seq);
		atomic_fetch_add(&a->ok, 1);
	} else {
		fprintf(stderr, "forq push: a task was not published: %s\n", k->why);
		atomic_fetch_add(&a->failed, 1);
	}
}

static int publish_file(const struct command *cmd, struct upstream *u, const struct opts *o)
{
	struct tasks_reader *rd = NULL;
	struct task_line t;
	unsigned line;
	char err[1024];
	int r, code = EXIT_OK;
	if (tasks_reader_open_as(&rd, o->file, (enum tasks_format)o->format, o->prio,
				 PUBLISH_MAX_PAYLOAD, err, sizeof err))
		return failure(cmd, EXIT_FAILED, "%s", err);
	while ((r = tasks_reader_next(rd, &t, &line, err, sizeof err)) != 0) {
		if (r < 0) {
			code = failure(cmd, EXIT_FAILED, "%s", err);
			if (r == -1)
				continue; /* a bad line: said, the rest still goes */
			break;
		}
		if (upstream_publish_async(u, t.payload, t.len, err, sizeof err)) {
			code = failure(cmd, EXIT_FAILED, "%s", err);
			break;
		}
	}
	tasks_reader_close(rd);
	return code;
}

static int publish_key(const struct command *cmd, struct upstream *u, const struct opts *o,
		       const char *payload)
{
	char err[512];
	uint64_t seq = 0;
	int dup = 0;
	if (upstream_publish(u, payload, strlen(payload), o->key, strlen(o->key), &seq, &dup, err,
			     sizeof err))
		return failure(cmd, EXIT_FAILED, "%s", err);
	printf("%" PRIu64 "\n", seq);
	if (dup)
		fprintf(stderr, "forq push: the stream holds key %s already (sequence %" PRIu64
			"): nothing published\n", o->key, seq);
	return EXIT_OK;
}

int cmd_push_upstream(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	if (o->delay || o->at || o->key_window)
		return usage_error(cmd, "--delay, --at and --key-window are not for --upstream (a "
				   "stream has no delays; its duplicate window holds a --key)");
	if (o->prio != FORQ_NORMAL)
		return usage_error(cmd, "--upstream tasks all run at priority normal");
	if (o->key && (o->file || argc != 1))
		return usage_error(cmd, "--key takes one PAYLOAD argument");
	char *token = NULL, why[512];
	const char *env = getenv("FORQ_NATS_TOKEN"), *bad;
	if (o->upstream_token_file) {
		if (parse_token_file(o->upstream_token_file, &token, why, sizeof why))
			return usage_error(cmd, "--upstream-token-file: %s", why);
	} else if (env && *env) {
		if ((bad = parse_token_problem(env)))
			return usage_error(cmd, "FORQ_NATS_TOKEN %s", bad);
		if (!(token = strdup(env)))
			return failure(cmd, EXIT_FAILED, "out of memory");
	}
	const char *creds = o->upstream_creds_file ? o->upstream_creds_file
						   : getenv("FORQ_NATS_CREDS");
	struct acks acks = {0};
	struct upstream_config uc = {.urls = o->upstream, .stream = o->upstream_stream,
				     .replicas = o->upstream_replicas, .token = token,
				     .creds_file = creds && *creds ? creds : NULL,
				     .client_name = "forq push", .acked = on_acked,
				     .acked_ctx = &acks};
	struct upstream *u = NULL;
	int code = EXIT_OK;
	if (upstream_open(&u, &uc, why, sizeof why)) {
		code = failure(cmd, EXIT_QUEUE, "%s", why);
		goto out;
	}
	if (o->key) {
		code = publish_key(cmd, u, o, argv[0]);
		goto out;
	}
	if (o->file) {
		code = publish_file(cmd, u, o);
	} else {
		for (int i = 0; i < argc && !code; i++)
			if (upstream_publish_async(u, argv[i], strlen(argv[i]), why, sizeof why))
				code = failure(cmd, EXIT_FAILED, "%s", why);
	}
	if (upstream_publish_wait(u, PUBLISH_WAIT_MS))
		code = failure(cmd, EXIT_FAILED, "JetStream did not acknowledge every task within "
			       "%d s", PUBLISH_WAIT_MS / 1000);
	if (atomic_load(&acks.failed))
		code = failure(cmd, EXIT_FAILED, "%" PRIu64 " tasks not published, %" PRIu64
			       " published", (uint64_t)atomic_load(&acks.failed),
			       (uint64_t)atomic_load(&acks.ok));
out:
	fflush(stdout);
	upstream_close(u, 5000);
	upstream_shutdown();
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	return code;
}
