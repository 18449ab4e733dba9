/* inspect.c — the commands that read and mend a queue: `forq stats`, `forq
 * dead`, `forq retry-dead` and `forq status`. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cli.h"
#include "dead_json.h"
#include "forq.h"
#include "forq_admin.h"
#include "grow.h"
#include "json.h"
#include "parse.h"
#include "results.h"
#include "snapshot.h"

/* ---- stats ---- */

/* The body forqd's /stats and STATS share (metrics/json.c), with the names
 * `forq stats --json` documents. */
static int stats_json(const struct command *cmd, const struct forq_stats *s, struct forq *q)
{
	struct metrics_snapshot *snap = calloc(1, sizeof *snap);
	struct buf b = BUF_INIT;
	int code = EXIT_OK;

	if (!snap)
		return failure(cmd, EXIT_FAILED, "out of memory");
	metrics_snapshot_queue(snap, s);
	metrics_snapshot_controls(snap, q);
	if (json_stats(&b, JSON_CLI, snap, NULL, 0))
		code = failure(cmd, EXIT_FAILED, "out of memory");
	else
		puts(b.data);
	buf_free(&b);
	free(snap);
	return code;
}

static void print_lanes(const char *what, uint64_t high, uint64_t normal, uint64_t low)
{
	printf("%-14s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "\n", what, high, normal,
	       low, high + normal + low);
}

int cmd_stats(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	(void)argc, (void)argv; /* none: parse_flags saw to that */
	struct forq *q;
	int code = open_queue(cmd, o, &q);
	if (code)
		return code;
	struct forq_stats s;
	forq_stats_read(q, &s);
	int paused = forq_admin_paused(q);
	uint64_t purged = forq_admin_purged_total(q);
	if (o->json) {
		code = stats_json(cmd, &s, q);
		forq_close(q);
		return code;
	}
	forq_close(q);
	printf("queue          %s (%s%s)\n", o->shm_name,
	       s.accepting ? "accepting tasks" : "not accepting tasks", paused ? ", paused" : "");
	printf("pending        %" PRIu64 " (high %" PRIu64 ", normal %" PRIu64 ", low %" PRIu64 ")\n",
	       s.pending[0] + s.pending[1] + s.pending[2], s.pending[0], s.pending[1], s.pending[2]);
	printf("in progress    %" PRIu64 "\n", s.in_progress);
	printf("retry waiting  %" PRIu64 "\n", s.retry_waiting);
	printf("scheduled      %" PRIu64 "\n", s.scheduled);
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
	printf("purged         %" PRIu64 "\n", purged);
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
	struct dead_copy *v = grow_for_one(l->v, &l->cap, l->n, sizeof *v);
	if (!v) {
		l->oom = 1;
		return;
	}
	l->v = v;
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

static void free_dead(struct dead_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].payload);
	free(l->v);
}

int cmd_dead(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	(void)argc, (void)argv; /* none: parse_flags saw to that */
	struct forq *q;
	int code = open_queue(cmd, o, &q);
	if (code)
		return code;
	if (o->json) {
		struct buf j = BUF_INIT;
		int n = dead_json(&j, q, o->queue ? o->queue : FORQ_QUEUE_DEFAULT);
		forq_close(q);
		if (n < 0)
			code = failure(cmd, EXIT_FAILED, "cannot read the dead letters: %s",
				       strerror(-n));
		else
			puts(j.data);
		buf_free(&j);
		return code;
	}
	struct dead_list l = {0};
	int r = forq_dead_list(q, collect_dead, &l);
	forq_close(q);
	if (r < 0 || l.oom) {
		code = failure(cmd, EXIT_FAILED, "cannot read the dead letters: %s",
			       strerror(r < 0 ? -r : ENOMEM));
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
		dead_json_time(d->died_unix_ns, when, sizeof when);
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

int cmd_retry_dead(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	if (!o->all && !argc)
		return usage_error(cmd, "say which: ID... or --all");
	if (o->all && argc)
		return usage_error(cmd, "give IDs or --all, not both");
	uint64_t *ids = calloc((size_t)argc + 1, sizeof *ids);
	if (!ids)
		return failure(cmd, EXIT_FAILED, "out of memory");
	for (int i = 0; i < argc; i++)
		if (parse_task_id(argv[i], &ids[i])) {
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

int cmd_status(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	uint64_t id;
	if (argc != 1)
		return usage_error(cmd, "expected one task ID, got %d arguments", argc);
	if (parse_task_id(argv[0], &id))
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
		cli_json_u64(root, "id", id);
		cJSON_AddStringToObject(root, "status", name);
		cli_json_u64(root, "attempts", attempts);
		if (label)
			cli_json_bytes(root, label, text, strlen(text));
		return cli_json_print(cmd, root);
	}
	printf("id        %" PRIu64 "\nstatus    %s\nattempts  %u\n", id, name, attempts);
	if (label)
		printf("%-9s %s\n", label, text);
	return EXIT_OK;
}
