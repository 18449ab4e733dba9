/* livemap.h — which segment holds each live task's latest ACCEPT record
 * (private to journal/), so that segments.c knows when a segment can go.
 *
 * Ids are handed out in increasing order and journaled in about that
 * order, so a segment's ids are mostly one range: each segment keeps a
 * bitmap from its first new id up (a bit per id, set while that id is
 * live there), and only ids re-accepted out of order (retries, copy-
 * forward, replay, a ring that lagged) go to a small exception map. A
 * finished id is found by range in the few segments, newest first: no
 * hashing and no cache miss per task on the hot path. Every id is live in
 * at most one place, so a repeated or unknown finish changes nothing. */
#ifndef FORQ_JOURNAL_LIVEMAP_H
#define FORQ_JOURNAL_LIVEMAP_H

#include <stddef.h>
#include <stdint.h>

/* id -> value, open addressing (the exception map; segments.c's scan at
 * open, which keeps each record's offset). */
struct idmap {
	uint64_t *ids; /* 0: free, UINT64_MAX: deleted */
	uint64_t *val;
	size_t cap, n; /* n: live */
	size_t used;   /* live and deleted */
};
int idmap_put(struct idmap *m, uint64_t id, uint64_t val, uint64_t *old);
int idmap_get(const struct idmap *m, uint64_t id, uint64_t *val);
int idmap_del(struct idmap *m, uint64_t id, uint64_t *old);
/* Calls fn for every entry. */
void idmap_each(const struct idmap *m, void (*fn)(void *ctx, uint64_t id, uint64_t val), void *ctx);
void idmap_free(struct idmap *m);

struct seg {
	uint64_t seq;
	uint64_t live;     /* tasks whose latest ACCEPT is here */
	uint64_t accepted; /* ACCEPT records written here */
	uint64_t bytes;    /* file size */
	uint64_t looked;   /* live at the last segset_looked */
	uint64_t base;     /* id of bit 0 of bits */
	uint64_t *bits;    /* live ids from base up, nwords of them (NULL: none yet) */
	size_t nwords;
};

struct livemap {
	struct idmap exc; /* id -> seg seq, ids outside their segment's bitmap */
	uint64_t max_id;  /* no id above this is live anywhere */
	uint64_t n;       /* live tasks */
};

/* id's latest ACCEPT is in segs[n-1] (the current segment) now. Never
 * fails: out of memory, that segment is kept (counted live for good). */
void live_accept(struct livemap *m, struct seg *segs, size_t n, uint64_t id);
/* The same for ids first .. first + count - 1 (new ones: a few word
 * stores). */
void live_accept_run(struct livemap *m, struct seg *segs, size_t n, uint64_t first,
		     uint64_t count);
/* id finished: out of the map, its segment's live count down. */
void live_finish(struct livemap *m, struct seg *segs, size_t n, uint64_t id);
/* The same for a run of ids (a bitmap's words at a time). */
void live_finish_run(struct livemap *m, struct seg *segs, size_t n, uint64_t first,
		     uint64_t count);
/* 1 when id's latest ACCEPT is in g. */
int live_in(const struct livemap *m, const struct seg *g, uint64_t id);
/* Seq of the segment with id's latest ACCEPT, 0 if id is not live. */
uint64_t live_where(const struct livemap *m, const struct seg *segs, size_t n, uint64_t id);
/* Places id in segment g while a journal is read at open (ids in
 * increasing order: each segment's bitmap starts at its lowest). */
void live_load(struct livemap *m, struct seg *g, uint64_t id);
void live_seg_free(struct seg *g);
void live_free(struct livemap *m);

#endif
