/* upstream_setup.c — see upstream_setup.h. */
#include "upstream_setup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grow.h"
#include "log.h"

void pub_relay_init(struct pub_relay *r, int wake_fd, char wake_byte)
{
	pthread_mutex_init(&r->lock, NULL);
	r->wake_fd = wake_fd;
	r->wake_byte = wake_byte;
}

/* upstream_config.acked: a libnats thread. An answer that finds no memory
 * is dropped: its PUT is answered not-published at the end of its wait. */
static void pub_relay_acked(void *ctx, const struct upstream_ack *a)
{
	struct pub_relay *r = ctx;
	int wake = 0;
	if (!a->ref)
		return;
	pthread_mutex_lock(&r->lock);
	struct pub_answer *l = grow_for_one(r->list, &r->cap, r->n, sizeof *l);
	if (l) {
		r->list = l;
		r->list[r->n++] = (struct pub_answer){a->ref, a->seq, a->duplicate};
		wake = r->n == 1;
	}
	pthread_mutex_unlock(&r->lock);
	if (wake && write(r->wake_fd, &r->wake_byte, 1) < 0) {
		/* a full pipe already wakes the loop */
	}
}

size_t pub_relay_take(struct pub_relay *r, struct pub_answer *out, size_t max)
{
	pthread_mutex_lock(&r->lock);
	size_t k = r->n < max ? r->n : max;
	memcpy(out, r->list, k * sizeof *out);
	memmove(r->list, r->list + k, (r->n - k) * sizeof *out);
	r->n -= k;
	pthread_mutex_unlock(&r->lock);
	return k;
}

void pub_relay_free(struct pub_relay *r)
{
	free(r->list);
	r->list = NULL;
	r->n = r->cap = 0;
}

int upstream_tcp_publish(void *ctx, const void *data, size_t len, const char *key,
			 size_t key_len, uint64_t ref)
{
	struct upstream *u = ctx;
	char err[300], q[400];
	if (!upstream_connected(u))
		return -ECOMM;
	int r = upstream_publish_ref(u, data, len, key, key_len, ref, err, sizeof err);
	if (r)
		log_event(LOG_WARN, "upstream_publish_failed", "via=tcp error=\"%s\"",
			  log_quote(err, q, sizeof q));
	return r ? -ECOMM : 0;
}

int upstream_setup(struct upstream **up, const struct forqd_config *c,
		   const struct forqd_config *q, struct pub_relay *relay)
{
	if (!q->upstream)
		return 0;
	char err[1024], eq[1100];
	struct upstream_config uc = {.urls = q->upstream, .stream = q->upstream_stream,
				     .replicas = c->upstream_replicas,
				     .ack_wait_ms = (int64_t)c->lease_timeout_s * 1000,
				     .max_deliver = q->max_attempts, .token = c->upstream_token,
				     .creds_file = c->upstream_creds_file, .client_name = "forqd",
				     .acked = pub_relay_acked, .acked_ctx = relay};
	if (upstream_open(up, &uc, err, sizeof err)) {
		log_event(LOG_ERROR, "upstream_refused", "queue=%s stream=%s error=\"%s\"", q->name,
			  q->upstream_stream, log_quote(err, eq, sizeof eq));
		return -1;
	}
	log_event(LOG_INFO, "upstream_connected", "queue=%s stream=%s urls=%s", q->name,
		  q->upstream_stream, q->upstream);
	return 0;
}

int bridge_setup(struct bridge **b, struct upstream *up, const struct forqd_config *q)
{
	if (!up)
		return 0;
	char err[512];
	uint64_t hold = 4ull * (uint64_t)(q->workers ? q->workers : 1) * q->batch;
	hold = hold < 64 ? 64 : hold;
	hold = hold > q->capacity ? q->capacity : hold;
	struct bridge_config bc = {.shm_name = q->shm_name, .hold = (uint32_t)hold,
				   .ack_wait_ms = (int64_t)q->lease_timeout_s * 1000,
				   .nak_delay_ms = q->backoff_ms,
				   .results_queue = q->upstream_results ? q->name : NULL};
	int r = bridge_start(b, up, &bc, err, sizeof err);
	if (r)
		log_event(LOG_ERROR, "setup_failed", "queue=%s errno=%d error=\"bridge: %s\"", q->name,
			  -r, err);
	return r;
}
