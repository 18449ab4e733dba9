/* test_leases.c — the TCP server's lease path (tcp/leases.c): the id index
 * over the lease table (finds, deletes with backward shift, runs that wrap),
 * and, on a real queue, taking, finding by owner, giving back and expiry in
 * deadline order, with the shared-memory table as the one owner. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forq.h"
#include "forq_admin.h"
#include "leases.h"

/* ---- the index alone, keys from an array ---- */

#define SLOTS 64

struct keys {
	uint64_t id[SLOTS];
	int in[SLOTS]; /* indexed now */
};

static uint64_t key_of(void *ctx, uint32_t slot)
{
	return ((struct keys *)ctx)->id[slot];
}

static void check_all(const struct lease_index *ix, const struct keys *k)
{
	uint32_t n = 0;
	for (uint32_t s = 0; s < SLOTS; s++) {
		uint32_t got = lease_index_find(ix, k->id[s]);
		if (k->in[s]) {
			n++;
			if (got != s)
				fail_msg("slot %u (id %llu): found %u", s, (unsigned long long)k->id[s],
					 got);
		} else if (got != LEASE_NIL) {
			fail_msg("slot %u removed, still found at %u", s, got);
		}
	}
	assert_int_equal(lease_index_count(ix), n);
}

/* Check that an empty index finds nothing and removes nothing. */
static void test_lease_index_empty(void **state)
{
	struct keys k = {0};
	struct lease_index ix;
	(void)state;
	assert_int_equal(lease_index_init(&ix, SLOTS, key_of, &k), 0);
	assert_int_equal(lease_index_find(&ix, 1), LEASE_NIL);
	assert_int_equal(lease_index_remove(&ix, 1, 0), -ENOENT);
	assert_int_equal(lease_index_count(&ix), 0);
	lease_index_release(&ix);
}

/* Check that with the table full, every id is found, and that removing them
 * one by one in a scrambled order (each backward shift moving others) keeps
 * every remaining one findable, down to empty. */
static void test_lease_index_full_then_removed_in_any_order(void **state)
{
	struct keys k = {0};
	struct lease_index ix;
	(void)state;
	assert_int_equal(lease_index_init(&ix, SLOTS, key_of, &k), 0);
	for (uint32_t s = 0; s < SLOTS; s++) {
		k.id[s] = 1000 + 7 * s;
		lease_index_add(&ix, k.id[s], s);
		k.in[s] = 1;
	}
	check_all(&ix, &k);
	for (uint32_t i = 0; i < SLOTS; i++) {
		uint32_t s = (i * 37 + 11) % SLOTS; /* 37 is prime to 64: each once */
		assert_int_equal(lease_index_remove(&ix, k.id[s], s), 0);
		k.in[s] = 0;
		assert_int_equal(lease_index_remove(&ix, k.id[s], s), -ENOENT);
		check_all(&ix, &k);
	}
	lease_index_release(&ix);
}

/* Check that a removed entry's own key is not needed (its table entry may be
 * free and reused already): removal goes by slot along its id's run. */
static void test_lease_index_remove_after_entry_reused(void **state)
{
	struct keys k = {0};
	struct lease_index ix;
	(void)state;
	assert_int_equal(lease_index_init(&ix, SLOTS, key_of, &k), 0);
	for (uint32_t s = 0; s < 8; s++) {
		k.id[s] = 50 + s;
		lease_index_add(&ix, k.id[s], s);
		k.in[s] = 1;
	}
	k.id[3] = 0; /* the table forgot it */
	assert_int_equal(lease_index_remove(&ix, 53, 3), 0);
	k.in[3] = 0;
	assert_int_equal(lease_index_find(&ix, 53), LEASE_NIL);
	check_all(&ix, &k);
	lease_index_release(&ix);
}

/* Check against a reference set over many random adds and removes with ids
 * that share few hash bits, so runs are long and wrap past the end. */
static void test_lease_index_random_against_reference(void **state)
{
	struct keys k = {0};
	struct lease_index ix;
	unsigned x = 7;
	(void)state;
	assert_int_equal(lease_index_init(&ix, SLOTS, key_of, &k), 0);
	for (int round = 0; round < 20000; round++) {
		x = x * 1103515245u + 12345u;
		uint32_t s = (x >> 8) % SLOTS;
		if (k.in[s]) {
			assert_int_equal(lease_index_remove(&ix, k.id[s], s), 0);
			k.in[s] = 0;
		} else {
			/* Ids a multiple of 2^58 apart: their homes crowd together. */
			k.id[s] = ((uint64_t)((x >> 20) & 7) << 58) + (x >> 24) % 5 + 1 + 8 * round;
			lease_index_add(&ix, k.id[s], s);
			k.in[s] = 1;
		}
		if (round % 97 == 0)
			check_all(&ix, &k);
	}
	check_all(&ix, &k);
	lease_index_release(&ix);
}

/* ---- the lease table on a real queue ---- */

struct qfx {
	char name[64];
	struct forq *q;
	struct leases L;
	uint32_t order[16];
	uint32_t n;
};

static int setup_queue(void **state)
{
	static int seq;
	struct qfx *f = calloc(1, sizeof *f);
	struct forq_options o;
	char err[256];
	forq_options_default(&o);
	o.capacity = 64;
	o.max_payload = 64;
	o.lease_max = 8;
	o.recent_max = 64;
	o.max_attempts = 5;
	snprintf(f->name, sizeof f->name, "/forq-test-leases-%d-%d", getpid(), seq++);
	if (forq_create(&f->q, f->name, &o, err, sizeof err))
		fail_msg("create: %s", err);
	assert_int_equal(leases_init(&f->L, f->q), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(forq_push(f->q, FORQ_NORMAL, "1+1", 3, 0, NULL), 0);
	*state = f;
	return 0;
}

static int teardown_queue(void **state)
{
	struct qfx *f = *state;
	leases_release(&f->L);
	forq_close(f->q);
	assert_int_equal(forq_unlink(f->name), 0);
	free(f);
	return 0;
}

/* Check that leases taken are found by id for their connection only, that
 * the table caps them, and that an answered one is gone from the index. */
static void test_leases_take_find_and_forget(void **state)
{
	struct qfx *f = *state;
	struct forq_task t[8];
	struct forq_lease_info li;
	assert_int_equal(leases_take(&f->L, 1, 1000, t, 3), 3);
	assert_int_equal(leases_take(&f->L, 2, 2000, t + 3, 8), 5); /* the table holds 8 */
	assert_int_equal(leases_count(&f->L), 8);
	assert_int_equal(leases_take(&f->L, 2, 2000, t, 1), 0);     /* full: none */
	int slot = leases_find(&f->L, t[0].id, 1, &li);
	assert_true(slot >= 0);
	assert_int_equal(li.id, t[0].id);
	assert_int_equal(li.conn, 1);
	assert_int_equal(li.deadline_ns, 1000);
	assert_int_equal(li.len, 3);
	assert_memory_equal(li.payload, "1+1", 3);
	assert_int_equal(leases_find(&f->L, t[0].id, 2, &li), -ENOENT); /* not conn 2's */
	assert_int_equal(leases_find(&f->L, 999999, 1, &li), -ENOENT);
	struct forq_task_info rec;
	assert_int_equal(forq_lease_finish(f->q, (uint32_t)slot, t[0].id, 1, FORQ_RESULT_DONE,
					   "2", 1, 0, &rec),
			 FORQ_RESULT_DONE);
	leases_forget(&f->L, (uint32_t)slot, t[0].id);
	forq_lease_release(f->q, (uint32_t)slot);
	assert_int_equal(leases_find(&f->L, t[0].id, 1, &li), -ENOENT);
	assert_int_equal(leases_count(&f->L), 7);
	/* The other connection's leases are all still found. */
	for (int i = 3; i < 8; i++)
		assert_true(leases_find(&f->L, t[i].id, 2, &li) >= 0);
}

/* Check that a connection's leases all go back when it goes, and no other's. */
static void test_leases_giveback_conn(void **state)
{
	struct qfx *f = *state;
	struct forq_task t[8];
	struct forq_lease_info li;
	struct forq_stats st;
	assert_int_equal(leases_take(&f->L, 1, 1000, t, 3), 3);
	assert_int_equal(leases_take(&f->L, 2, 1000, t + 3, 2), 2);
	assert_int_equal(leases_giveback_conn(&f->L, 1, 3, "gone", NULL, NULL), 3);
	assert_int_equal(leases_count(&f->L), 2);
	for (int i = 0; i < 3; i++)
		assert_int_equal(leases_find(&f->L, t[i].id, 1, &li), -ENOENT);
	for (int i = 3; i < 5; i++)
		assert_true(leases_find(&f->L, t[i].id, 2, &li) >= 0);
	forq_stats_read(f->q, &st);
	assert_int_equal(st.pending[FORQ_NORMAL], 10 - 5 + 3); /* the 3 are queued again */
	assert_int_equal(leases_giveback_conn(&f->L, 1, 3, "gone", NULL, NULL), 0);
}

static void expired(void *ctx, uint32_t slot, const struct forq_lease_info *li)
{
	struct qfx *f = ctx;
	f->order[f->n++] = (uint32_t)li->deadline_ns;
	assert_true(leases_giveback(&f->L, slot, li->id, li->conn, "lease expired", 1, NULL, NULL) >=
		    0);
}

/* Check that expiry gives back exactly the leases due, earliest deadline
 * first whatever their slots, that a touch moves a lease's deadline (in the
 * table, the one place it is kept), and that it returns the next deadline. */
static void test_leases_expire_in_deadline_order(void **state)
{
	struct qfx *f = *state;
	struct forq_task t[6];
	struct forq_lease_info li;
	static const uint64_t dl[6] = {500, 100, 400, 200, 600, 300};
	for (int i = 0; i < 6; i++)
		assert_int_equal(leases_take(&f->L, 1, dl[i], t + i, 1), 1);
	/* The lease due at 200 is touched to 700. */
	int slot = leases_find(&f->L, t[3].id, 1, &li);
	assert_true(slot >= 0);
	assert_int_equal(forq_lease_touch(f->q, (uint32_t)slot, t[3].id, 1, 700), 0);
	assert_int_equal(leases_expire(&f->L, 50, expired, f), 100);  /* none due */
	assert_int_equal(f->n, 0);
	assert_int_equal(leases_expire(&f->L, 450, expired, f), 500);
	static const uint32_t want1[3] = {100, 300, 400};
	assert_int_equal(f->n, 3);
	assert_memory_equal(f->order, want1, sizeof want1);
	assert_int_equal(leases_count(&f->L), 3);
	assert_int_equal(leases_expire(&f->L, 10000, expired, f), UINT64_MAX);
	static const uint32_t want2[6] = {100, 300, 400, 500, 600, 700};
	assert_int_equal(f->n, 6);
	assert_memory_equal(f->order, want2, sizeof want2);
	assert_int_equal(leases_count(&f->L), 0);
	struct forq_hists hs;
	forq_hists_read(f->q, &hs);
	assert_int_equal(hs.lease_expired, 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lease_index_empty),
		cmocka_unit_test(test_lease_index_full_then_removed_in_any_order),
		cmocka_unit_test(test_lease_index_remove_after_entry_reused),
		cmocka_unit_test(test_lease_index_random_against_reference),
		cmocka_unit_test_setup_teardown(test_leases_take_find_and_forget, setup_queue,
						teardown_queue),
		cmocka_unit_test_setup_teardown(test_leases_giveback_conn, setup_queue,
						teardown_queue),
		cmocka_unit_test_setup_teardown(test_leases_expire_in_deadline_order, setup_queue,
						teardown_queue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
