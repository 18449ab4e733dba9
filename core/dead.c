/* dead.c — dead letters: tasks whose attempts ran out, kept (bounded, the
 * oldest make way) for listing and re-queueing, under the aux lock. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "failpoint.h"
#include "internal.h"

int forq__dead_add(struct forq *q, const struct forq_rec *rec, const char *error, size_t len)
{
	struct forq_hdr *h = q->h;
	if (h->dead_max == 0)
		return -ENOSPC;
	int r = forq__aux_lock(q);
	if (r)
		return r;
	/* A free entry, or else the oldest: the list is bounded, and the task's
	 * result record (status "dead") is written whatever happens here. */
	struct forq_entry *slot = NULL, *oldest = NULL;
	for (uint32_t i = 0; i < h->dead_max && !slot; i++) {
		struct forq_entry *e = forq__dead_entry(q, i);
		if (e->rec.state != FORQ_ENTRY_DEAD)
			slot = e;
		else if (!oldest || e->aux < oldest->aux)
			oldest = e;
	}
	if (!slot && !(slot = oldest)) {
		forq__unlock(&h->aux_lock);
		return -ENOSPC;
	}
	if ((r = forq__entry_back(q, slot, rec->len, FORQ_KEEP_TAKE))) {
		forq__unlock(&h->aux_lock);
		return r; /* not kept in the list; its result is written all the same */
	}
	if (slot != oldest)
		atomic_fetch_add(&h->dead_used, 1);
	forq__copy_rec(slot, rec);
	slot->aux = atomic_fetch_add(&h->dead_seq, 1);
	slot->due_ns = (uint64_t)clock_real_ns();
	if (len >= sizeof slot->error)
		len = sizeof slot->error - 1;
	memcpy(slot->error, error ? error : "", error ? len : 0);
	slot->error[error ? len : 0] = '\0';
	FORQ_FAILPOINT("dead.add");
	slot->rec.state = FORQ_ENTRY_DEAD;
	forq__unlock(&h->aux_lock);
	return 0;
}

static int cmp_dead(const void *a, const void *b)
{
	const struct forq_entry *x = *(struct forq_entry *const *)a;
	const struct forq_entry *y = *(struct forq_entry *const *)b;
	return x->aux < y->aux ? -1 : x->aux > y->aux;
}

/* Dead entries, oldest first, into a new array (caller frees). */
static int dead_sorted(struct forq *q, struct forq_entry ***out)
{
	struct forq_entry **v = malloc((q->h->dead_max + 1) * sizeof *v);
	int n = 0;
	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < q->h->dead_max; i++)
		if (forq__dead_entry(q, i)->rec.state == FORQ_ENTRY_DEAD)
			v[n++] = forq__dead_entry(q, i);
	qsort(v, (size_t)n, sizeof *v, cmp_dead);
	*out = v;
	return n;
}

int forq_dead_list(struct forq *q, void (*fn)(void *ctx, const struct forq_dead_info *d), void *ctx)
{
	struct forq_entry **v;
	int r = forq__aux_lock(q);
	if (r)
		return r;
	int n = dead_sorted(q, &v);
	for (int i = 0; i < n; i++) {
		struct forq_dead_info d = {
			.id = v[i]->rec.id, .prio = v[i]->rec.prio, .attempts = v[i]->rec.attempts,
			.died_unix_ns = (int64_t)v[i]->due_ns, .error = v[i]->error,
			.payload = &v[i]->rec + 1, .len = v[i]->rec.len};
		fn(ctx, &d);
	}
	if (n >= 0)
		free(v);
	forq__unlock(&q->h->aux_lock);
	return n;
}

/* Is id among v[0..n)? */
static int dead_has(struct forq_entry *const *v, int n, uint64_t id)
{
	for (int i = 0; i < n; i++)
		if (v[i]->rec.id == id)
			return 1;
	return 0;
}

/* Is v's id among ids[0..n) (n 0: every id is)? */
static int wanted(const struct forq_entry *v, const uint64_t *ids, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (ids[k] == v->rec.id)
			return 1;
	return n == 0;
}

int forq_dead_retry_ids(struct forq *q, const uint64_t *ids, size_t nids, uint64_t *missing)
{
	struct forq_entry **v;
	int r = forq__aux_lock(q), done = 0;
	if (r)
		return r;
	int n = dead_sorted(q, &v);
	for (size_t k = 0; k < nids && n >= 0; k++)
		if (!dead_has(v, n, ids[k])) {
			if (missing)
				*missing = ids[k];
			free(v);
			n = -ENOENT;
		}
	for (int i = 0; i < n; i++) {
		if (!wanted(v[i], ids, nids))
			continue;
		/* Queued again with fresh attempts; if there is no room it stays
		 * dead as it was. */
		uint16_t attempts = v[i]->rec.attempts, crashes = v[i]->rec.crashes;
		v[i]->rec.attempts = 0;
		v[i]->rec.crashes = 0;
		/* Before it can run: its new result must not be the one forgotten. */
		forq__recent_forget(q, v[i]->rec.id);
		if (forq__requeue_now(q, &v[i]->rec) == 0) {
			forq__entry_clear(q, v[i]);
			atomic_fetch_sub(&q->h->dead_used, 1);
			done++;
		} else {
			v[i]->rec.attempts = attempts;
			v[i]->rec.crashes = crashes;
		}
	}
	if (n >= 0)
		free(v);
	forq__unlock(&q->h->aux_lock);
	return n < 0 ? n : done;
}

int forq_dead_retry(struct forq *q, uint64_t id)
{
	return forq_dead_retry_ids(q, &id, id != 0, NULL);
}

