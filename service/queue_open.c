/* queue_open.c — forqd's queue: made new, or recovered from a dead forqd. */
#include "queue_open.h"

#include <errno.h>
#include <string.h>

#include "forq_admin.h"
#include "log.h"

int queue_open(struct forq **qp, struct forqd_config *c, forq_final_fn fn, void *ctx)
{
	struct forq *q = NULL;
	struct forq_options o;
	char err[512];
	forq_options_default(&o);
	o.capacity = c->capacity;
	o.max_payload = c->max_payload;
	o.batch_max = c->batch;
	o.max_attempts = c->max_attempts;
	o.backoff_ms = c->backoff_ms;
	o.recent_max = c->recent;
	o.dead_max = c->dead_max;
	o.retry_max = c->waiting_max;
	o.keys_max = c->keys_max;
	o.first_id = forq_admin_queue_first_id(c->name); /* ids unique across queues */
	if (o.max_procs < (uint32_t)c->workers + 16)
		o.max_procs = (uint32_t)c->workers + 16;
	int r = forq_create(&q, c->shm_name, &o, err, sizeof err);
	if (r == -EEXIST && c->recover) {
		if ((r = forq_admin_attach(&q, c->shm_name, err, sizeof err)) ||
		    (r = forq_admin_own(q, err, sizeof err))) {
			char quoted[600];
			log_event(LOG_ERROR, "queue_refused", "name=%s error=\"%s\"", c->shm_name,
				  log_quote(err, quoted, sizeof quoted));
			forq_close(q);
			return -1;
		}
		int given = forq_admin_recover(q, fn, ctx);
		if (given < 0) {
			log_event(LOG_ERROR, "queue_refused",
				  "name=%s error=\"cannot recover: %s (a lock stays held by a live "
				  "process that is not the queue's; remove the object or stop that "
				  "process)\"", c->shm_name, strerror(-given));
			forq_close(q);
			return -1;
		}
		forq_admin_set_rate(q, c->rate, c->rate_burst);
		struct forq_stats st;
		forq_stats_read(q, &st);
		log_event(LOG_INFO, "queue_recovered",
			  "name=%s tasks_given_back=%d pending=%llu retry_waiting=%llu", c->shm_name,
			  given, (unsigned long long)(st.pending[0] + st.pending[1] + st.pending[2]),
			  (unsigned long long)st.retry_waiting);
		/* A queue's sizes are fixed when it is made: a recovered one keeps
		 * its own, and forqd says so (and uses them) instead of silently
		 * serving other limits than the flags it was given. */
		if (st.capacity != c->capacity || st.max_payload != c->max_payload) {
			log_event(LOG_WARN, "queue_sizes_kept",
				  "name=%s capacity=%llu asked_capacity=%u max_payload=%u "
				  "asked_max_payload=%u hint=\"a recovered queue keeps its sizes: to "
				  "change them, drain it and remove it (forqd without --keep-shm) "
				  "first\"",
				  c->shm_name, (unsigned long long)st.capacity, c->capacity,
				  st.max_payload, c->max_payload);
			c->capacity = (uint32_t)st.capacity;
			c->max_payload = st.max_payload;
		}
		*qp = q;
		return 0;
	}
	if (r) {
		char quoted[600];
		log_event(LOG_ERROR, "queue_create_failed", "name=%s error=\"%s\"", c->shm_name,
			  log_quote(err, quoted, sizeof quoted));
		return -1;
	}
	if ((r = forq_admin_own(q, err, sizeof err))) {
		char quoted[600];
		log_event(LOG_ERROR, "queue_refused", "name=%s error=\"%s\"", c->shm_name,
			  log_quote(err, quoted, sizeof quoted));
		forq_close(q);
		return -1;
	}
	forq_admin_set_rate(q, c->rate, c->rate_burst);
	log_event(LOG_INFO, "queue_created",
		  "name=%s capacity=%u max_payload=%u size_mib=%llu resident_mib=%llu",
		  c->shm_name, o.capacity, o.max_payload,
		  (unsigned long long)(forq_admin_size(q) >> 20),
		  (unsigned long long)(forq_admin_resident(q) >> 20));
	*qp = q;
	return 1;
}

