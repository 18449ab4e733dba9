/* leases.c — the lease table's id index, and the table's calls as the TCP
 * server makes them (leases.h). */
#include "leases.h"

#include <errno.h>
#include <stdlib.h>

/* ---- the index ---- */

static uint32_t home(const struct lease_index *ix, uint64_t id)
{
	return (uint32_t)((id * 0x9E3779B97F4A7C15ull) >> ix->shift) & ix->mask;
}

int lease_index_init(struct lease_index *ix, uint32_t slots, lease_key_fn key, void *ctx)
{
	unsigned bits = 1;
	while (bits < 31 && (1u << bits) < 2 * (uint64_t)slots)
		bits++;
	*ix = (struct lease_index){.mask = (1u << bits) - 1, .shift = 64 - bits, .key = key,
				   .ctx = ctx};
	ix->pos = calloc((size_t)ix->mask + 1, sizeof *ix->pos);
	return ix->pos ? 0 : -ENOMEM;
}

void lease_index_release(struct lease_index *ix)
{
	free(ix->pos);
	ix->pos = NULL;
	ix->n = 0;
}

uint32_t lease_index_find(const struct lease_index *ix, uint64_t id)
{
	for (uint32_t i = home(ix, id);; i = (i + 1) & ix->mask) {
		uint32_t v = ix->pos[i];
		if (v == 0)
			return LEASE_NIL;
		if (ix->key(ix->ctx, v - 1) == id)
			return v - 1;
	}
}

void lease_index_add(struct lease_index *ix, uint64_t id, uint32_t slot)
{
	uint32_t i = home(ix, id);
	while (ix->pos[i])
		i = (i + 1) & ix->mask;
	ix->pos[i] = slot + 1;
	ix->n++;
}

int lease_index_remove(struct lease_index *ix, uint64_t id, uint32_t slot)
{
	uint32_t i = home(ix, id);
	while (ix->pos[i] && ix->pos[i] != slot + 1)
		i = (i + 1) & ix->mask;
	if (!ix->pos[i])
		return -ENOENT;
	ix->n--;
	/* Backward shift: pull later entries of the run into the hole unless
	 * their home lies cyclically in (hole, j]. */
	for (uint32_t j = i;;) {
		ix->pos[i] = 0;
		for (;;) {
			j = (j + 1) & ix->mask;
			if (!ix->pos[j])
				return 0;
			uint32_t h = home(ix, ix->key(ix->ctx, ix->pos[j] - 1));
			if (i <= j ? (h <= i || h > j) : (h <= i && h > j))
				break;
		}
		ix->pos[i] = ix->pos[j];
		i = j;
	}
}

/* ---- the table ---- */

static uint64_t table_key(void *ctx, uint32_t slot)
{
	return forq_lease_id(ctx, slot);
}

int leases_init(struct leases *L, struct forq *q)
{
	struct forq_limits lim;
	forq_admin_limits(q, &lim);
	*L = (struct leases){.q = q, .max = lim.lease_max};
	L->due = malloc((lim.lease_max ? lim.lease_max : 1) * sizeof *L->due);
	if (!L->due || lease_index_init(&L->ix, lim.lease_max, table_key, q)) {
		free(L->due);
		L->due = NULL;
		return -ENOMEM;
	}
	return 0;
}

void leases_release(struct leases *L)
{
	lease_index_release(&L->ix);
	free(L->due);
	L->due = NULL;
}

int leases_take(struct leases *L, uint32_t conn, uint64_t deadline_ns, struct forq_task *tasks,
		size_t max)
{
	int k = forq_lease_take(L->q, conn, deadline_ns, tasks, max);
	for (int i = 0; i < k; i++)
		lease_index_add(&L->ix, tasks[i].id, tasks[i].slot);
	return k;
}

int leases_lookup(struct leases *L, uint64_t id, struct forq_lease_info *li)
{
	uint32_t slot = lease_index_find(&L->ix, id);
	if (slot == LEASE_NIL || forq_lease_get(L->q, slot, li) || li->id != id)
		return -ENOENT;
	return (int)slot;
}

int leases_find(struct leases *L, uint64_t id, uint32_t conn, struct forq_lease_info *li)
{
	int slot = leases_lookup(L, id, li);
	return slot >= 0 && li->conn != conn ? -ENOENT : slot;
}

void leases_forget(struct leases *L, uint32_t slot, uint64_t id)
{
	lease_index_remove(&L->ix, id, slot);
}

int leases_giveback(struct leases *L, uint32_t slot, uint64_t id, uint32_t conn, const char *why,
		    int expired, forq_final_fn fn, void *ctx)
{
	int r = forq_lease_giveback(L->q, slot, id, conn, why, expired, fn, ctx);
	leases_forget(L, slot, id);
	return r;
}

uint32_t leases_giveback_conn(struct leases *L, uint32_t conn, uint32_t n, const char *why,
			      forq_final_fn fn, void *ctx)
{
	struct forq_lease_info li;
	uint32_t found = 0;
	for (uint32_t slot = 0; slot < L->max && found < n; slot++) {
		if (forq_lease_get(L->q, slot, &li) || li.conn != conn)
			continue;
		leases_giveback(L, slot, li.id, conn, why, 0, fn, ctx);
		found++;
	}
	return found;
}

static int by_deadline(const void *a, const void *b)
{
	const struct lease_due *x = a, *y = b;
	return x->deadline_ns < y->deadline_ns ? -1 : x->deadline_ns > y->deadline_ns;
}

uint64_t leases_expire(struct leases *L, uint64_t now_ns, lease_due_fn fn, void *ctx)
{
	struct forq_lease_info li;
	uint64_t next = UINT64_MAX;
	uint32_t n = 0;
	for (uint32_t slot = 0; slot < L->max; slot++) {
		if (forq_lease_get(L->q, slot, &li))
			continue;
		if (li.deadline_ns <= now_ns)
			L->due[n++] = (struct lease_due){li.deadline_ns, slot};
		else if (li.deadline_ns < next)
			next = li.deadline_ns;
	}
	qsort(L->due, n, sizeof *L->due, by_deadline);
	for (uint32_t i = 0; i < n; i++)
		if (!forq_lease_get(L->q, L->due[i].slot, &li))
			fn(ctx, L->due[i].slot, &li);
	return next;
}
