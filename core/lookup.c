/* lookup.c — where a task is now, and queue-wide histograms: scans over the
 * whole queue for status pages and metrics, never for hot paths. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int entry_has(struct forq_entry *e, uint64_t id, uint8_t lo, uint8_t hi)
{
	return e->rec.state >= lo && e->rec.state <= hi && e->rec.id == id;
}

static int where_once(struct forq *q, uint64_t id, int *status, unsigned *attempts, char *text,
		      size_t cap)
{
	struct forq_hdr *h = q->h;
	uint16_t att = 0;
	if (text && cap)
		text[0] = '\0';
	if (id == 0 || id >= atomic_load(&h->next_id))
		return FORQ_WHERE_UNKNOWN;
	int st = forq_result_lookup(q, id, text, cap, &att);
	if (st) {
		*status = st;
		*attempts = att;
		return FORQ_WHERE_FINISHED;
	}
	*status = 0;
	for (uint32_t p = 0; p < h->max_procs; p++)
		for (uint32_t i = 0; i < h->batch_max; i++) {
			struct forq_entry *e = forq__inflight(q, p, i);
			if (entry_has(e, id, FORQ_ENTRY_HELD, FORQ_ENTRY_FINISHED)) {
				*attempts = e->rec.attempts + 1u;
				return FORQ_WHERE_RUNNING;
			}
		}
	for (uint32_t i = 0; i < h->lease_max; i++) {
		struct forq_entry *e = forq__entry_at(q, h->lease_off, i);
		if (entry_has(e, id, FORQ_ENTRY_HELD, FORQ_ENTRY_FINISHED)) {
			*attempts = e->rec.attempts + 1u;
			return FORQ_WHERE_RUNNING;
		}
	}
	for (uint32_t i = 0; i < h->retry_max; i++) {
		struct forq_entry *e = forq__retry_entry(q, i);
		if (entry_has(e, id, FORQ_ENTRY_WAITING, FORQ_ENTRY_WAITING)) {
			*attempts = e->rec.attempts;
			return e->rec.flags & FORQ_REC_DELAYED ? FORQ_WHERE_SCHEDULED
							       : FORQ_WHERE_RETRYING;
		}
	}
	for (uint32_t i = 0; i < h->dead_max; i++) {
		struct forq_entry *e = forq__dead_entry(q, i);
		if (entry_has(e, id, FORQ_ENTRY_DEAD, FORQ_ENTRY_DEAD)) {
			*status = FORQ_RESULT_DEAD;
			*attempts = e->rec.attempts;
			if (text && cap)
				snprintf(text, cap, "%s", e->error);
			return FORQ_WHERE_FINISHED;
		}
	}
	/* The rings, read without their locks: records can be overwritten
	 * under us, so every length is checked before it is followed. */
	for (int ri = 0; ri < FORQ_NRINGS; ri++) {
		struct forq_ring *r = forq__ring(q, ri);
		const uint8_t *arena = forq__arena(q, r);
		uint64_t pos = atomic_load(&r->head), tail = atomic_load(&r->tail);
		while (pos < tail) {
			uint64_t off = pos % r->arena_bytes;
			const struct forq_rec *rec = (const struct forq_rec *)(arena + off);
			uint32_t len = rec->len;
			if (len == FORQ_REC_PAD) {
				pos += r->arena_bytes - off;
				continue;
			}
			if (len > h->max_payload || off + FORQ_REC_SIZE(len) > r->arena_bytes)
				break;
			if (rec->id == id && !(rec->flags & FORQ_REC_CANCELLED)) {
				*attempts = rec->attempts;
				return FORQ_WHERE_PENDING;
			}
			pos += FORQ_REC_SIZE(len);
		}
	}
	return FORQ_WHERE_UNKNOWN;
}

void forq_hists_read(struct forq *q, struct forq_hists *out)
{
	memset(out, 0, sizeof *out);
	for (uint32_t i = 0; i < q->h->max_procs; i++) {
		const struct forq_counters *c = &forq__proc(q, i)->c;
		for (int k = 0; k < FORQ_HIST_BUCKETS; k++) {
			out->wait[k] += atomic_load_explicit(&c->wait_hist[k], memory_order_relaxed);
			out->run[k] += atomic_load_explicit(&c->run_hist[k], memory_order_relaxed);
		}
		out->wait_sum_ns += atomic_load_explicit(&c->wait_sum_ns, memory_order_relaxed);
		out->run_sum_ns += atomic_load_explicit(&c->run_sum_ns, memory_order_relaxed);
		out->full_waits += atomic_load_explicit(&c->full_waits, memory_order_relaxed);
		out->rate_wait_ns += atomic_load_explicit(&c->rate_wait_ns, memory_order_relaxed);
		out->lease_expired += atomic_load_explicit(&c->lease_expired, memory_order_relaxed);
	}
}

int forq_task_where(struct forq *q, uint64_t id, int *status, unsigned *attempts, char *text,
		    size_t cap)
{
	/* The tables are scanned one after another without their locks, and a
	 * task moves between them meanwhile (ring -> in flight -> recent, or
	 * retry -> front ring): one scan can miss a task that was never gone.
	 * An issued id is somewhere until its recent result is overwritten, so
	 * a miss is looked for again before it is called unknown. */
	int w = FORQ_WHERE_UNKNOWN;
	for (int tries = 0; tries < 4 && w == FORQ_WHERE_UNKNOWN; tries++)
		w = where_once(q, id, status, attempts, text, cap);
	return w;
}
