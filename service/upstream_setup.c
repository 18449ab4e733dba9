/* upstream_setup.c — see upstream_setup.h. */
#include "upstream_setup.h"

#include "log.h"

int upstream_setup(struct upstream **up, const struct forqd_config *c)
{
	if (!c->upstream)
		return 0;
	char err[1024], q[1100];
	struct upstream_config uc = {.urls = c->upstream, .stream = c->upstream_stream,
				     .replicas = c->upstream_replicas,
				     .ack_wait_ms = (int64_t)c->lease_timeout_s * 1000,
				     .max_deliver = c->max_attempts, .token = c->upstream_token,
				     .creds_file = c->upstream_creds_file, .client_name = "forqd"};
	if (upstream_open(up, &uc, err, sizeof err)) {
		log_event(LOG_ERROR, "upstream_refused", "stream=%s error=\"%s\"", c->upstream_stream,
			  log_quote(err, q, sizeof q));
		return -1;
	}
	log_event(LOG_INFO, "upstream_connected", "stream=%s urls=%s", c->upstream_stream,
		  c->upstream);
	return 0;
}

int bridge_setup(struct bridge **b, struct upstream *up, const struct forqd_config *c)
{
	if (!up)
		return 0;
	char err[512];
	uint64_t hold = 4ull * (uint64_t)(c->workers ? c->workers : 1) * c->batch;
	hold = hold < 64 ? 64 : hold;
	hold = hold > c->capacity ? c->capacity : hold;
	struct bridge_config bc = {.shm_name = c->shm_name, .hold = (uint32_t)hold,
				   .ack_wait_ms = (int64_t)c->lease_timeout_s * 1000,
				   .nak_delay_ms = c->backoff_ms};
	int r = bridge_start(b, up, &bc, err, sizeof err);
	if (r)
		log_event(LOG_ERROR, "setup_failed", "errno=%d error=\"bridge: %s\"", -r, err);
	return r;
}
