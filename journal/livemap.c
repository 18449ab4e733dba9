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

/* Grows g's bitmap (or begins it at id) so that it holds id, with `more`
 * ACCEPTs about to be counted. 0, or -1 when id does not fit (below base,
 * too far, no memory). */
static int bits_hold(struct seg *g, uint64_t id, uint64_t more)
{
	if (!g->bits)
		g->base = id;
	if (id < g->base)
		return -1;
	uint64_t k = id - g->base;
	if (k >= (uint64_t)g->nwords * 64) {
		if (k > 4 * (g->accepted + more + 1) + SPAN_SLACK)
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
	return 0;
}

static int bit_set(struct seg *g, uint64_t id)
{
	if (bits_hold(g, id, 0))
		return -1;
	uint64_t k = id - g->base;
	g->bits[k >> 6] |= 1ull << (k & 63);
	return 0;
}

/* The bits of [k, k + len) within one word (len 1 .. 64 - k % 64). */
static uint64_t word_mask(uint64_t k, uint64_t len)
{
	return (len == 64 ? ~0ull : (1ull << len) - 1) << (k & 63);
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

void live_accept_run(struct livemap *m, struct seg *segs, size_t n, uint64_t first,
		     uint64_t count)
{
	struct seg *cur = &segs[n - 1];
	for (; count && (first <= m->max_id || !cur->bits); first++, count--)
		live_accept(m, segs, n, first);
	/* New ids above the bitmap's base: whole words at a time. */
	if (!count || first < cur->base || bits_hold(cur, first + count - 1, count)) {
		for (; count; first++, count--)
			live_accept(m, segs, n, first);
		return;
	}
	for (uint64_t k = first - cur->base, end = k + count; k < end;) {
		uint64_t len = 64 - (k & 63) < end - k ? 64 - (k & 63) : end - k;
		cur->bits[k >> 6] |= word_mask(k, len);
		k += len;
	}
	cur->accepted += count;
	cur->live += count;
	m->n += count;
	m->max_id = first + count - 1;
}

void live_finish(struct livemap *m, struct seg *segs, size_t n, uint64_t id)
{
	take(m, segs, n, id);
}

void live_finish_run(struct livemap *m, struct seg *segs, size_t n, uint64_t first,
		     uint64_t count)
{
	while (count && first <= m->max_id) {
		/* The newest segment whose bitmap spans first. */
		struct seg *g = NULL;
		for (size_t i = n; i-- > 0 && !g;)
			if (segs[i].bits && first >= segs[i].base &&
			    first - segs[i].base < (uint64_t)segs[i].nwords * 64)
				g = &segs[i];
		if (!g) {
			take(m, segs, n, first++);
			count--;
			continue;
		}
		uint64_t k = first - g->base, span = (uint64_t)g->nwords * 64 - k;
		span = span < count ? span : count;
		for (uint64_t end = k + span; k < end;) {
			uint64_t len = 64 - (k & 63) < end - k ? 64 - (k & 63) : end - k;
			uint64_t mask = word_mask(k, len), was = g->bits[k >> 6] & mask;
			g->bits[k >> 6] &= ~mask;
			g->live -= (uint64_t)__builtin_popcountll(was);
			m->n -= (uint64_t)__builtin_popcountll(was);
			/* Not live here: live elsewhere (a retry), or not at all. */
			for (uint64_t miss = mask & ~was; miss; miss &= miss - 1)
				take(m, segs, n, g->base + (k & ~63ull) + (uint64_t)__builtin_ctzll(miss));
			k += len;
		}
		first += span;
		count -= span;
	}
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
