/* recent.c — recent results by id, for lookups (GET /tasks/{id}, forq
 * status): a direct-mapped table, each entry under its own seqlock. A cache:
 * the results file is the record. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* A re-queued dead letter is no longer finished: drop its recent result. */
void forq__recent_forget(struct forq *q, uint64_t id)
{
	struct forq_recent *r = forq__recent(q, id);
	uint32_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);
	if ((s & 1) || r->id != id)
		return;
	atomic_store_explicit(&r->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	r->id = 0;
	atomic_store_explicit(&r->seq, s + 2, memory_order_release);
}

void forq__recent_put(struct forq *q, const struct forq_rec *rec, int status, const char *text,
		      size_t len, uint64_t run_ns)
{
	if (rec->flags & FORQ_REC_KEYED)
		forq__key_release(q, rec);
	struct forq_recent *r = forq__recent(q, rec->id);
	uint32_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);
	/* Hot path: a plain seqlock write, no locked instruction. Two writers on
	 * one entry (ids recent_max apart finishing in the same instant) could
	 * mix their text; this table is a cache of results for lookups, the
	 * results file is the record. A writer that sees another inside skips. */
	if (s & 1)
		return;
	atomic_store_explicit(&r->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	r->id = rec->id;
	r->status = (uint8_t)status;
	/* Deliveries: a dead (or handed-on retry's) record's count was already
	 * raised by the failing delivery (forq__fail_delivery); the others
	 * count this one now. */
	r->attempts = (uint16_t)(status == FORQ_RESULT_DEAD || status == FORQ_RESULT_RETRY
					 ? rec->attempts
					 : rec->attempts + 1);
	r->run_ns = run_ns;
	r->wait_ns = 0;
	if (!text)
		len = 0;
	r->truncated = len >= sizeof r->text;
	if (len >= sizeof r->text)
		len = sizeof r->text - 1;
	if (len)
		memcpy(r->text, text, len);
	r->text[len] = '\0';
	atomic_store_explicit(&r->seq, s + 2, memory_order_release);
}

int forq_result_lookup(struct forq *q, uint64_t id, char *text, size_t cap, uint16_t *attempts)
{
	if (!q->h->recent_max)
		return 0;
	struct forq_recent *r = forq__recent(q, id);
	struct forq_recent copy;
	for (int tries = 0; tries < 100; tries++) {
		uint32_t s = atomic_load_explicit(&r->seq, memory_order_acquire);
		if (s & 1)
			continue;
		memcpy(&copy, (const void *)r, sizeof copy);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&r->seq, memory_order_relaxed) != s)
			continue;
		if (copy.id != id || s == 0)
			return 0;
		copy.text[sizeof copy.text - 1] = '\0';
		if (text && cap)
			snprintf(text, cap, "%s", copy.text);
		if (attempts)
			*attempts = copy.attempts;
		return copy.status;
	}
	return 0;
}

