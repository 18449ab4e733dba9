/* publish.c — `forq push --upstream`: tasks published to a NATS JetStream
 * stream (upstream/stream.h) instead of pushed into a local queue. Each
 * task's stream sequence is printed on its own line once JetStream
 * acknowledged it (in the order the acks came); --key is the message id.
 * With --wait, the results subject (upstream/results_subject.h) is watched
 * from before the first publish, and each task's result line is printed
 * once every task has one (in the order of their sequences). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "forq.h"
#include "grow.h"
#include "parse.h"
#include "results_subject.h"
#include "stream.h"
#include "tasks_file.h"

#define PUBLISH_MAX_PAYLOAD 65536 /* a --file line's limit here; forqd's --max-payload rules */
#define PUBLISH_WAIT_MS 60000     /* for the last acknowledgements */

/* One result line heard on the results subject. */
struct heard {
	uint64_t seq;
	char *line;
	int done;  /* its status is done */
};

struct acks {
	atomic_uint_fast64_t ok, failed;
	/* --wait: the sequences published, and the result lines heard (any
	 * producer's), under lock; cond: a line came. */
	int wait;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t *seqs;
	size_t nseqs, seqs_cap;
	struct heard *heard;
	size_t nheard, heard_cap;
};

static void note_seq(struct acks *a, uint64_t seq)
{
	if (!a->wait)
		return;
	pthread_mutex_lock(&a->lock);
	uint64_t *s = grow_for_one(a->seqs, &a->seqs_cap, a->nseqs, sizeof *s);
	if (s) {
		a->seqs = s;
		a->seqs[a->nseqs++] = seq;
	}
	pthread_mutex_unlock(&a->lock);
}

static void on_acked(void *ctx, const struct upstream_ack *k)
{
	struct acks *a = ctx;
	if (k->seq) {
		printf("%" PRIu64 "\n", k->seq);
		note_seq(a, k->seq);
		atomic_fetch_add(&a->ok, 1);
	} else {
		fprintf(stderr, "forq push: a task was not published: %s\n", k->why);
		atomic_fetch_add(&a->failed, 1);
	}
}

/* A line on the results subject (a libnats thread): kept by its seq. */
static void on_result(void *ctx, const char *line, size_t len)
{
	struct acks *a = ctx;
	cJSON *j = cJSON_ParseWithLength(line, len);
	const cJSON *seq = cJSON_GetObjectItemCaseSensitive(j, "seq");
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
	char *copy = cJSON_IsNumber(seq) ? strndup(line, len) : NULL;
	pthread_mutex_lock(&a->lock);
	struct heard *h = copy ? grow_for_one(a->heard, &a->heard_cap, a->nheard, sizeof *h) : NULL;
	if (h) {
		a->heard = h;
		a->heard[a->nheard++] = (struct heard){
			(uint64_t)seq->valuedouble, copy,
			cJSON_IsString(st) && !strcmp(st->valuestring, "done")};
		copy = NULL;
		pthread_cond_signal(&a->cond);
	}
	pthread_mutex_unlock(&a->lock);
	free(copy);
	cJSON_Delete(j);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

/* Waits (lock held) until each of a->seqs has a result line, or until
 * the deadline; line[i] gets seqs[i]'s (sorted seqs). Returns how many. */
static size_t match_results(struct acks *a, const struct heard **line, const struct timespec *until)
{
	size_t found = 0, looked = 0;
	qsort(a->seqs, a->nseqs, sizeof *a->seqs, cmp_u64);
	for (;;) {
		for (; looked < a->nheard; looked++) {
			const uint64_t *p = bsearch(&a->heard[looked].seq, a->seqs, a->nseqs,
						    sizeof *a->seqs, cmp_u64);
			size_t i = p ? (size_t)(p - a->seqs) : 0;
			if (p && !line[i]) {
				line[i] = &a->heard[looked];
				found++;
			}
		}
		if (found == a->nseqs ||
		    pthread_cond_timedwait(&a->cond, &a->lock, until) == ETIMEDOUT)
			break;
	}
	return found;
}

/* --wait: prints the result line of every sequence published (the lines
 * come in any order; printed in the sequences' order). */
static int print_results(const struct command *cmd, struct acks *a, int wait_s)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_s;
	pthread_mutex_lock(&a->lock);
	const struct heard **line = calloc(a->nseqs ? a->nseqs : 1, sizeof *line);
	size_t found = line ? match_results(a, line, &until) : 0, bad = 0;
	for (size_t i = 0; line && i < a->nseqs; i++)
		if (line[i]) {
			printf("%s\n", line[i]->line);
			bad += !line[i]->done;
		}
	size_t n = a->nseqs;
	pthread_mutex_unlock(&a->lock);
	free(line);
	if (found < n)
		return failure(cmd, EXIT_FAILED, "no result for %zu of %zu tasks within %d s "
			       "(results are published once, at most: is forqd --upstream-results "
			       "on?)", n - found, n, wait_s);
	if (bad)
		return failure(cmd, EXIT_FAILED, "%zu of %zu tasks did not end done", bad, n);
	return EXIT_OK;
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
		       const char *payload, struct acks *acks)
{
	char err[512];
	uint64_t seq = 0;
	int dup = 0;
	if (upstream_publish(u, payload, strlen(payload), o->key, strlen(o->key), &seq, &dup, err,
			     sizeof err))
		return failure(cmd, EXIT_FAILED, "%s", err);
	printf("%" PRIu64 "\n", seq);
	if (!dup) /* a duplicate runs no task: no result comes */
		note_seq(acks, seq);
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
	struct acks acks = {.wait = o->wait_s > 0, .lock = PTHREAD_MUTEX_INITIALIZER,
			    .cond = PTHREAD_COND_INITIALIZER};
	struct upstream_watch *watch = NULL;
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
	if (acks.wait && upstream_watch_results(&watch, u, on_result, &acks, why, sizeof why)) {
		code = failure(cmd, EXIT_FAILED, "%s", why);
		goto out;
	}
	if (o->key) {
		code = publish_key(cmd, u, o, argv[0], &acks);
		goto wait;
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
wait:
	fflush(stdout);
	if (acks.wait && !code)
		code = print_results(cmd, &acks, o->wait_s);
out:
	fflush(stdout);
	upstream_watch_stop(watch);
	upstream_close(u, 5000);
	upstream_shutdown();
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	for (size_t i = 0; i < acks.nheard; i++)
		free(acks.heard[i].line);
	free(acks.heard);
	free(acks.seqs);
	return code;
}
