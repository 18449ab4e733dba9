/* push.c — `forq push`: tasks from arguments or a tasks file (lines,
 * NUL-ended records or JSON lines), in batches of one priority, each id
 * printed on its own line. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clock.h"
#include "forq.h"
#include "parse.h"
#include "tasks_file.h"

#define PUSH_BATCH 64 /* tasks per forq_push_batch, all of one priority */
_Static_assert(PUSH_BATCH <= FORQ_PUSH_BATCH_MAX, "one batch is one forq_push_batch");

struct pusher {
	const struct command *cmd;
	struct forq *q;
	int prio, timeout_ms;
	uint64_t delay_ms;  /* --delay or --at: each task to the waiting table */
	struct forq_msg msgs[PUSH_BATCH];
	uint64_t ids[PUSH_BATCH];
	size_t n, max;      /* max: PUSH_BATCH, or less for a smaller lane */
	char *store;        /* PUSH_BATCH slots of `slot` bytes: copies of file lines */
	size_t slot;
	uint64_t pushed;
};

/* What a failed push says. Returns EXIT_FAILED (message printed). */
static int push_failed(struct pusher *p, int r)
{
	switch (r) {
	case -EAGAIN:
		if (p->delay_ms)
			return failure(p->cmd, EXIT_FAILED,
				       "the waiting table is full (%" PRIu64 " pushed before; forqd "
				       "--waiting-max holds more)", p->pushed);
		return failure(p->cmd, EXIT_FAILED,
			       "queue full: no room for %zu more tasks within %d ms "
			       "(%" PRIu64 " pushed before; raise --timeout or add workers)",
			       p->n, p->timeout_ms, p->pushed);
	case -ESHUTDOWN:
		return failure(p->cmd, EXIT_FAILED,
			       "the queue is not accepting tasks: forqd is draining or gone "
			       "(%" PRIu64 " pushed before)", p->pushed);
	case -ETIMEDOUT:
		return failure(p->cmd, EXIT_FAILED,
			       "the journal did not confirm %zu tasks on disk within %d ms (forqd "
			       "--fsync always: a full or failing disk?); they stay queued and may "
			       "run (%" PRIu64 " pushed before)",
			       p->n, p->timeout_ms, p->pushed);
	default:
		return failure(p->cmd, EXIT_FAILED, "push failed: %s (%" PRIu64 " pushed before)",
			       strerror(-r), p->pushed);
	}
}

/* Pushes the batch (a delayed one task by task, to the waiting table) and
 * prints the ids that went in. 0, or EXIT_FAILED (message printed). */
static int pusher_flush(struct pusher *p)
{
	size_t ok = 0;
	int r = 0;
	if (!p->n)
		return 0;
	if (p->delay_ms) {
		for (; ok < p->n; ok++)
			if ((r = forq_push_delayed(p->q, (enum forq_prio)p->prio, p->msgs[ok].payload,
						   p->msgs[ok].len, p->delay_ms, &p->ids[ok])))
				break;
	} else if ((r = forq_push_batch(p->q, (enum forq_prio)p->prio, p->msgs, p->n,
					p->timeout_ms, p->ids)) == 0) {
		ok = p->n;
	}
	for (size_t i = 0; i < ok; i++)
		printf("%" PRIu64 "\n", p->ids[i]);
	p->pushed += ok;
	if (r)
		return push_failed(p, r);
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
	if (tasks_reader_open_as(&rd, o->file, (enum tasks_format)o->format, o->prio, max_payload,
				 err, sizeof err)) {
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
		code = failure(p->cmd, EXIT_FAILED, "%llu bad %s%s skipped, %" PRIu64 " tasks pushed",
			       bad, o->format == TASKS_NUL ? "record" : "line", bad == 1 ? "" : "s",
			       p->pushed);
out:
	tasks_reader_close(rd);
	free(p->store);
	p->store = NULL;
	return code;
}

/* One task under --key: its id, or the id of the task that holds the key. */
static int push_unique(const struct command *cmd, struct forq *q, const struct opts *o,
		       const char *payload, uint64_t window_ms, uint64_t delay_ms)
{
	uint64_t id;
	int dup;
	int r = forq_push_unique(q, (enum forq_prio)o->prio, payload, strlen(payload), o->key,
				 strlen(o->key), window_ms, delay_ms, &id, &dup);
	struct pusher p = {.cmd = cmd, .delay_ms = delay_ms, .timeout_ms = 0, .n = 1};
	if (r == -EMSGSIZE)
		return failure(cmd, EXIT_FAILED, "the payload is over the queue's limit (forqd --max-payload)");
	if (r)
		return push_failed(&p, r);
	printf("%" PRIu64 "\n", id);
	if (dup)
		fprintf(stderr, "forq push: task %" PRIu64 " holds key %s already: nothing pushed\n", id,
			o->key);
	return EXIT_OK;
}

int cmd_push(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	if (!o->upstream && (o->upstream_token_file || o->upstream_creds_file ||
			     o->upstream_replicas || o->wait_s))
		return usage_error(cmd, "the NATS flags go with --upstream URLS");
	if (o->upstream && strcmp(o->queue, FORQ_QUEUE_DEFAULT))
		return usage_error(cmd, "--queue names a local queue; with --upstream name the "
				   "queue's stream with --upstream-stream");
	if (o->file && argc)
		return usage_error(cmd, "give payloads as arguments or with --file, not both");
	if (!o->file && !argc)
		return usage_error(cmd, "nothing to push: give PAYLOAD... or --file FILE");
	if (o->file && o->prio_set && o->format == TASKS_LINES)
		return usage_error(cmd, "--priority is for PAYLOAD arguments; in --file each line "
				   "sets its own with a priority= prefix (or use --format nul or jsonl)");
	if (!o->file && o->format != TASKS_LINES)
		return usage_error(cmd, "--format is for --file");
	for (int i = 0; i < argc; i++)
		if (!*argv[i])
			return usage_error(cmd, "argument %d is an empty payload", i + 1);
	if (o->upstream)
		return cmd_push_upstream(cmd, o, argc, argv);
	uint64_t delay_ms = 0;
	char why[200];
	if (o->delay && o->at)
		return usage_error(cmd, "give --delay or --at, not both");
	if (o->delay && parse_duration_ms(o->delay, FORQ_DELAY_MAX_MS, &delay_ms, why, sizeof why))
		return usage_error(cmd, "--delay: %s", why);
	if (o->at) {
		int64_t t, now = (int64_t)(clock_real_ns() / 1000000);
		if (parse_time_ms(o->at, &t, why, sizeof why))
			return usage_error(cmd, "--at: %s", why);
		if (t - now > (int64_t)FORQ_DELAY_MAX_MS)
			return usage_error(cmd, "--at: more than a year ahead");
		delay_ms = t > now ? (uint64_t)(t - now) : 0; /* a time past is now */
	}
	uint64_t window_ms = 0;
	if (o->key_window && !o->key)
		return usage_error(cmd, "--key-window goes with --key");
	if (o->key && (o->file || argc != 1))
		return usage_error(cmd, "--key takes one PAYLOAD argument");
	if (o->key && (!*o->key || strlen(o->key) > FORQ_KEY_MAX))
		return usage_error(cmd, "--key: 1 to %d bytes", FORQ_KEY_MAX);
	if (o->key_window &&
	    parse_duration_ms(o->key_window, FORQ_DELAY_MAX_MS, &window_ms, why, sizeof why))
		return usage_error(cmd, "--key-window: %s", why);
	struct forq *q;
	int code = open_queue(cmd, o, &q);
	if (code)
		return code;
	if (o->key) {
		code = push_unique(cmd, q, o, argv[0], window_ms, delay_ms);
		forq_close(q);
		return code;
	}
	struct forq_stats s;
	forq_stats_read(q, &s);
	/* A batch must fit in a lane (forq_push_batch refuses more). */
	struct pusher p = {.cmd = cmd, .q = q, .prio = o->prio, .timeout_ms = o->timeout_ms,
			   .delay_ms = delay_ms,
			   .max = s.capacity < PUSH_BATCH ? (size_t)s.capacity : PUSH_BATCH};
	code = o->file ? push_file(&p, o, s.max_payload) : push_args(&p, o, s.max_payload, argc, argv);
	forq_close(q);
	return code;
}
