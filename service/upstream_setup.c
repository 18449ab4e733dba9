/* upstream_setup.c — see upstream_setup.h. */
#include "upstream_setup.h"

#include "log.h"

int upstream_setup(struct upstream **up, const struct forqd_config *c,
		   const struct forqd_config *q)
{
	if (!q->upstream)
		return 0;
	char err[1024], eq[1100];
	struct upstream_config uc = {.urls = q->upstream, .stream = q->upstream_stream,
				     .replicas = c->upstream_replicas,
				     .ack_wait_ms = (int64_t)c->lease_timeout_s * 1000,
				     .max_deliver = q->max_attempts, .token = c->upstream_token,
				     .creds_file = c->upstream_creds_file, .client_name = "forqd"};
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
				   .nak_delay_ms = q->backoff_ms};
	int r = bridge_start(b, up, &bc, err, sizeof err);
	if (r)
		log_event(LOG_ERROR, "setup_failed", "queue=%s errno=%d error=\"bridge: %s\"", q->name,
			  -r, err);
	return r;
}
