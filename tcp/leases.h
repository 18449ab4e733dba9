/* leases.h — the TCP server's handle on the queue's lease table
 * (forq_admin.h). The table, in shared memory, is the one owner of every
 * lease: its task, connection, deadline and start. What the table cannot do
 * quickly is find an entry by task id (RESULT 17); for that this file keeps
 * an index, id -> entry, whose keys are read back from the table: it holds
 * no copy of any lease's state, only where to look. Main thread only. */
#ifndef FORQ_TCP_LEASES_H
#define FORQ_TCP_LEASES_H

#include <stddef.h>
#include <stdint.h>

#include "forq_admin.h"

#define LEASE_NIL UINT32_MAX

/* ---- the index alone: open addressing, linear probing, backward-shift
 * deletion (no tombstones). key(ctx, slot) gives the id entry slot holds. */
typedef uint64_t (*lease_key_fn)(void *ctx, uint32_t slot);

struct lease_index {
	/* private */
	uint32_t *pos;      /* slot + 1, 0: empty */
	uint32_t mask;      /* positions - 1 (a power of two >= 2 * slots) */
	unsigned shift;     /* 64 - log2(positions): the hash's top bits */
	uint32_t n;         /* entries indexed */
	lease_key_fn key;
	void *ctx;
};

/* Room for `slots` entries (slot numbers 0..slots-1). 0 or -ENOMEM. */
int lease_index_init(struct lease_index *ix, uint32_t slots, lease_key_fn key, void *ctx);
void lease_index_release(struct lease_index *ix);
/* The slot indexed under id, or LEASE_NIL. */
uint32_t lease_index_find(const struct lease_index *ix, uint64_t id);
/* Indexes slot under id (not indexed yet: the caller's bug otherwise). */
void lease_index_add(struct lease_index *ix, uint64_t id, uint32_t slot);
/* Drops slot, indexed under id. The other entries' keys must still be
 * readable; slot's own need not be (its entry may be free already).
 * Returns 0, or -ENOENT if slot is not indexed under id. */
int lease_index_remove(struct lease_index *ix, uint64_t id, uint32_t slot);
static inline uint32_t lease_index_count(const struct lease_index *ix)
{
	return ix->n;
}

/* ---- the lease table with its index ---- */
struct leases {
	/* private */
	struct forq *q;
	uint32_t max;           /* entries in the table */
	struct lease_index ix;
	struct lease_due {
		uint64_t deadline_ns;
		uint32_t slot;
	} *due;                 /* leases_expire's list, max entries */
};

/* For q's table. 0 or -ENOMEM. */
int leases_init(struct leases *L, struct forq *q);
/* Frees the index; the leases stay in the table (forqd's exit drain reports
 * them, or the next forqd gives them back). */
void leases_release(struct leases *L);
/* Leases held now, and the most there can be. */
static inline uint32_t leases_count(const struct leases *L)
{
	return lease_index_count(&L->ix);
}
static inline uint32_t leases_max(const struct leases *L)
{
	return L->max;
}

/* forq_lease_take, and the new leases indexed. Returns how many. */
int leases_take(struct leases *L, uint32_t conn, uint64_t deadline_ns, struct forq_task *tasks,
		size_t max);
/* The entry holding task id (any connection's), with *li filled; -ENOENT if
 * it is not leased. */
int leases_lookup(struct leases *L, uint64_t id, struct forq_lease_info *li);
/* The entry holding task id for conn, with *li filled; -ENOENT if there is
 * none (never leased, answered, given back, or another connection's). */
int leases_find(struct leases *L, uint64_t id, uint32_t conn, struct forq_lease_info *li);
/* After forq_lease_finish (whatever it returned): the entry leaves the index. */
void leases_forget(struct leases *L, uint32_t slot, uint64_t id);
/* forq_lease_giveback (attempts + 1, dead after the last) and forget. Returns
 * as forq_lease_giveback. */
int leases_giveback(struct leases *L, uint32_t slot, uint64_t id, uint32_t conn, const char *why,
		    int expired, forq_final_fn fn, void *ctx);
/* Gives back up to n leases held by conn (a connection gone). Returns how
 * many it found. */
uint32_t leases_giveback_conn(struct leases *L, uint32_t conn, uint32_t n, const char *why,
			      forq_final_fn fn, void *ctx);

/* Calls fn for each lease whose deadline is <= now, earliest deadline first;
 * fn must end it (leases_giveback). Returns the earliest deadline of those
 * left, UINT64_MAX if none. Walks the whole table: call it when that
 * deadline comes, not per request. */
typedef void (*lease_due_fn)(void *ctx, uint32_t slot, const struct forq_lease_info *li);
uint64_t leases_expire(struct leases *L, uint64_t now_ns, lease_due_fn fn, void *ctx);

#endif
