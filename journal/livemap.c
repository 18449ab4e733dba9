/* livemap.c — the journal's map of live tasks (livemap.h). */
#include "livemap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- idmap: open addressing, linear probing, tombstones ---- */

#define TOMB UINT64_MAX /* a deleted slot: probes go on past it (no id is this) */

/* Runs of 8 neighbouring ids share a cache line, and the runs are
 * scattered so that linear probing never meets one long cluster. */
static size_t slot_of(const struct idmap *m, uint64_t id)
{
	uint64_t run = ((id >> 3) * 0x9e3779b97f4a7c15ull) >> 17;
	return (size_t)((run << 3) | (id & 7)) & (m->cap - 1);
}

/* Rebuilds without tombstones, twice as large when the live half fills it. */
static int idmap_rehash(struct idmap *m)
{
	size_t cap = !m->cap ? 1024 : (m->n + 1) * 4 > m->cap ? m->cap * 2 : m->cap;
	struct idmap n = {calloc(cap, sizeof *n.ids), calloc(cap, sizeof *n.val), cap, 0, 0};
	if (!n.ids || !n.val) {
		free(n.ids);
		free(n.val);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++)
		if (m->ids[i] && m->ids[i] != TOMB)
			idmap_put(&n, m->ids[i], m->val[i], NULL);
	idmap_free(m);
	*m = n;
	return 0;
}

int idmap_put(struct idmap *m, uint64_t id, uint64_t val, uint64_t *old)
{
	if ((m->used + 1) * 2 > m->cap && idmap_rehash(m))
		return -ENOMEM;
	size_t i = slot_of(m, id), free_at = SIZE_MAX;
	for (; m->ids[i] && m->ids[i] != id; i = (i + 1) & (m->cap - 1))
		if (m->ids[i] == TOMB && free_at == SIZE_MAX)
			free_at = i;
	if (m->ids[i] == id) {
		if (old)
			*old = m->val[i];
		m->val[i] = val;
		return 1;
	}
	if (free_at != SIZE_MAX)
		i = free_at; /* a tombstone reused: used stays */
	else
		m->used++;
	m->ids[i] = id;
	m->val[i] = val;
	m->n++;
	return 0;
}

static size_t idmap_find(const struct idmap *m, uint64_t id)
{
	if (!m->n)
		return SIZE_MAX;
	for (size_t i = slot_of(m, id); m->ids[i]; i = (i + 1) & (m->cap - 1))
		if (m->ids[i] == id)
			return i;
	return SIZE_MAX;
}

int idmap_get(const struct idmap *m, uint64_t id, uint64_t *val)
{
	size_t i = idmap_find(m, id);
	if (i == SIZE_MAX)
		return 0;
	*val = m->val[i];
	return 1;
}

int idmap_del(struct idmap *m, uint64_t id, uint64_t *old)
{
	size_t i = idmap_find(m, id);
	if (i == SIZE_MAX)
		return 0;
	*old = m->val[i];
	m->ids[i] = TOMB;
	m->n--;
	return 1;
}

void idmap_each(const struct idmap *m, void (*fn)(void *ctx, uint64_t id, uint64_t val), void *ctx)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->ids[i] && m->ids[i] != TOMB)
			fn(ctx, m->ids[i], m->val[i]);
}

void idmap_free(struct idmap *m)
{
	free(m->ids);
	free(m->val);
	memset(m, 0, sizeof *m);
}

/* ---- the live map ---- */

#define FIRST_WORDS 512 /* a segment's first bitmap: 32768 ids */
/* A bitmap spans at most this many ids beyond four per ACCEPT written to
 * its segment (ids skipped by delayed or cancelled tasks are gaps in it);
 * past that, ids go to the exception map. */
#define SPAN_SLACK (1u << 22)

static int bit_get(const struct seg *g, uint64_t id)
{
	uint64_t k = id - g->base;
	return g->bits && id >= g->base && k < (uint64_t)g->nwords * 64 &&
	       (g->bits[k >> 6] >> (k & 63) & 1);
}

/* Sets id's bit in g, the bitmap grown (or begun at id) as needed.
 * 0, or -1 when id does not fit (below base, too far, no memory). */
static int bit_set(struct seg *g, uint64_t id)
{
	if (!g->bits)
		g->base = id;
	if (id < g->base)
		return -1;
	uint64_t k = id - g->base;
	if (k >= (uint64_t)g->nwords * 64) {
		if (k > 4 * (g->accepted + 1) + SPAN_SLACK)
			return -1;
		size_t want = g->nwords ? g->nwords * 2 : FIRST_WORDS;
		while ((uint64_t)want * 64 <= k)
			want *= 2;
		uint64_t *b = realloc(g->bits, want * sizeof *b);
		if (!b)
			return -1;
		memset(b + g->nwords, 0, (want - g->nwords) * sizeof *b);
		g->bits = b;
		g->nwords = want;
	}
	g->bits[k >> 6] |= 1ull << (k & 63);
	return 0;
}

static struct seg *by_seq(struct seg *segs, size_t n, uint64_t seq)
{
	for (size_t i = n; i-- > 0;)
		if (segs[i].seq == seq)
			return &segs[i];
	return NULL;
}

/* Takes id out of the map: its segment's count down. */
static void take(struct livemap *m, struct seg *segs, size_t n, uint64_t id)
{
	if (id > m->max_id)
		return;
	for (size_t i = n; i-- > 0;) {
		struct seg *g = &segs[i];
		if (bit_get(g, id)) {
			uint64_t k = id - g->base;
			g->bits[k >> 6] &= ~(1ull << (k & 63));
			g->live--;
			m->n--;
			return;
		}
	}
	uint64_t seq;
	if (idmap_del(&m->exc, id, &seq)) {
		struct seg *g = by_seq(segs, n, seq);
		if (g && g->live)
			g->live--;
		m->n--;
	}
}

/* Puts id in g: its bitmap, else the exception map, else (no memory) only
 * counted, which keeps g for good. */
static void place(struct livemap *m, struct seg *g, uint64_t id, int may_begin)
{
	if ((g->bits || may_begin) && bit_set(g, id) == 0) {
		/* done */
	} else if (idmap_put(&m->exc, id, g->seq, NULL) < 0) {
		m->n--; /* not tracked: nothing will take it out */
	}
	g->live++;
	m->n++;
	if (id > m->max_id)
		m->max_id = id;
}

void live_accept(struct livemap *m, struct seg *segs, size_t n, uint64_t id)
{
	struct seg *cur = &segs[n - 1];
	int fresh = id > m->max_id;
	if (!fresh)
		take(m, segs, n, id);
	cur->accepted++;
	/* Only a new id begins a bitmap: an old one there would make it
	 * span every id since. */
	place(m, cur, id, fresh);
}

void live_finish(struct livemap *m, struct seg *segs, size_t n, uint64_t id)
{
	take(m, segs, n, id);
}

int live_in(const struct livemap *m, const struct seg *g, uint64_t id)
{
	uint64_t seq;
	return bit_get(g, id) || (idmap_get(&m->exc, id, &seq) && seq == g->seq);
}

uint64_t live_where(const struct livemap *m, const struct seg *segs, size_t n, uint64_t id)
{
	for (size_t i = n; i-- > 0;)
		if (bit_get(&segs[i], id))
			return segs[i].seq;
	uint64_t seq;
	return idmap_get(&m->exc, id, &seq) ? seq : 0;
}

void live_load(struct livemap *m, struct seg *g, uint64_t id)
{
	place(m, g, id, 1);
}

void live_seg_free(struct seg *g)
{
	free(g->bits);
	g->bits = NULL;
	g->nwords = 0;
}

void live_free(struct livemap *m)
{
	idmap_free(&m->exc);
	memset(m, 0, sizeof *m);
}
