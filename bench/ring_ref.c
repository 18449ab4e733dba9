/* ring_ref.c — the hardware ceiling for a shared-memory queue: a bare
 * lock-free MPMC ring (Vyukov's bounded queue: a sequence number per slot),
 * 64-byte records, claims of up to --batch slots with one CAS, no syscall
 * while there is work. No ids, priorities, leases or counters: what forq adds
 * on top of this is its overhead.
 *
 * Slot p (mod depth) is free for the producer of position p when
 * seq == p, and holds position p's task when seq == p + 1; a consumer frees
 * it for the next lap with seq = p + depth. Consumers know N, so they never
 * claim a position that will not be filled; the run ends when all are taken. */
#include "common.h"

#define DESIGN "ring-ref"
#define BATCH_MAX 4096

struct slot {
	_Alignas(64) _Atomic uint64_t seq;
	uint64_t value;
	unsigned char payload[48]; /* the rest of a 64-byte record */
};
_Static_assert(sizeof(struct slot) == 64, "one record per cache line");

struct ring {
	_Alignas(64) _Atomic uint64_t enqueue_pos;
	_Alignas(64) _Atomic uint64_t dequeue_pos;
	_Alignas(64) struct slot slot[]; /* depth, a power of two */
};

struct run {
	struct ring *ring;
	uint64_t mask;
	uint64_t tasks;
	uint64_t batch;
	struct bench_tally *tally;
};

/* Hot path: claims up to `want` positions from *pos once the first is ready
 * (ready(first) is seq == first + off). Returns the first position; 0 claimed
 * when *pos reached `limit`. */
static uint64_t claim(struct run *r, _Atomic uint64_t *pos, uint64_t off, uint64_t want,
		      uint64_t limit, uint64_t *got)
{
	unsigned spins = 0;
	uint64_t p = atomic_load_explicit(pos, memory_order_relaxed);
	for (;;) {
		if (p >= limit) {
			*got = 0;
			return p;
		}
		uint64_t n = limit - p < want ? limit - p : want;
		uint64_t seq = atomic_load_explicit(&r->ring->slot[p & r->mask].seq,
						    memory_order_acquire);
		if (seq == p + off) {
			if (atomic_compare_exchange_weak_explicit(pos, &p, p + n,
								  memory_order_relaxed,
								  memory_order_relaxed)) {
				*got = n;
				return p;
			}
			continue; /* p was reloaded by the failed CAS */
		}
		bench_relax(&spins);
		p = atomic_load_explicit(pos, memory_order_relaxed);
	}
}

/* Waits until slot p's sequence says it is ours (others in the batch may lag). */
static struct slot *wait_slot(struct run *r, uint64_t p, uint64_t want)
{
	struct slot *s = &r->ring->slot[p & r->mask];
	unsigned spins = 0;
	while (atomic_load_explicit(&s->seq, memory_order_acquire) != want)
		bench_relax(&spins);
	return s;
}

static int consume(int idx, void *arg)
{
	struct run *r = arg;
	struct bench_tally *t = &r->tally[idx];
	uint64_t depth = r->mask + 1;
	for (;;) {
		uint64_t n;
		uint64_t p = claim(r, &r->ring->dequeue_pos, 1, r->batch, r->tasks, &n);
		if (!n)
			return 0;
		for (uint64_t i = p; i < p + n; i++) {
			struct slot *s = wait_slot(r, i, i + 1);
			uint64_t v = s->value;
			atomic_store_explicit(&s->seq, i + depth, memory_order_release);
			bench_take(t, v, r->tasks);
		}
	}
}

static void produce(struct run *r)
{
	uint64_t next = 1;
	for (;;) {
		uint64_t n;
		uint64_t p = claim(r, &r->ring->enqueue_pos, 0, r->batch, r->tasks, &n);
		if (!n)
			return;
		for (uint64_t i = p; i < p + n; i++) {
			struct slot *s = wait_slot(r, i, i);
			s->value = next++;
			atomic_store_explicit(&s->seq, i + 1, memory_order_release);
		}
	}
}

int main(int argc, char **argv)
{
	struct bench_opts o = {
		.tasks = 20000000, .consumers = 1, .batch = 64, .depth = 16384, .timeout = 120};
	struct run r = {0};
	void *map = MAP_FAILED;
	size_t size = 0;
	int rc = 2;

	if (bench_parse(argc, argv, BENCH_F_BATCH | BENCH_F_DEPTH, &o))
		return 2;
	if (o.depth & (o.depth - 1) || o.batch > BATCH_MAX || o.batch > o.depth) {
		fprintf(stderr, "%s: --depth must be a power of two and --batch at most"
				" min(depth, %d)\n",
			argv[0], BATCH_MAX);
		return 2;
	}
	r.mask = (uint64_t)o.depth - 1;
	r.tasks = o.tasks;
	r.batch = (uint64_t)o.batch;
	size = sizeof(struct ring) + sizeof(struct slot) * (size_t)o.depth;
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED) {
		perror("mmap");
		goto end;
	}
	r.ring = map;
	for (uint64_t i = 0; i <= r.mask; i++)
		atomic_init(&r.ring->slot[i].seq, i);
	atomic_init(&r.ring->enqueue_pos, 0);
	atomic_init(&r.ring->dequeue_pos, 0);
	if (bench_start(DESIGN, &o, &r.tally, consume, &r))
		goto end;

	double t0 = bench_now();
	produce(&r);
	bool ok = bench_wait();
	double t1 = bench_now();

	ok = bench_check(r.tally, o.consumers, o.tasks) && ok;
	rc = bench_report(DESIGN, &o, t1 - t0, ok);
end:
	if (map != MAP_FAILED)
		munmap(map, size);
	return rc;
}
