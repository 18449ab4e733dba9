/* seed2_batch.c — the second seed's design as a baseline: 10,000 slots in
 * POSIX shared memory, three named semaphores that count batches, one
 * semaphore step and one mutex section per batch of 64 tasks on both sides.
 *
 * empty starts at SLOTS / batch (whole batches that fit), full at 0. A
 * consumer that wins a full token takes min(batch, avail) tasks; every batch
 * but the last is whole, so exactly one take per batch finds tasks. The
 * producer then posts one extra full token per consumer: a token that finds
 * nothing left means "stop". Names are unlinked before any fork (see
 * seed1_sem.c). */
#include "common.h"

#include <fcntl.h>
#include <semaphore.h>
#include <sys/stat.h>

#define DESIGN "seed2-batch"
#define SLOTS 10000
#define BATCH_MAX 4096

struct ring {
	uint64_t in;    /* next slot the producer fills; under mutex */
	uint64_t out;   /* next slot a consumer empties; under mutex */
	uint64_t avail; /* tasks in the ring; under mutex */
	uint64_t slot[SLOTS];
};

struct run {
	struct ring *ring;
	sem_t *empty, *full, *mutex;
	struct bench_tally *tally;
	uint64_t tasks;
	int batch;
};

static int sem_wait_eintr(sem_t *s)
{
	int r;
	while ((r = sem_wait(s)) < 0 && errno == EINTR)
		;
	return r;
}

/* Copies n tasks in at `in`, wrapping at SLOTS. Caller holds the mutex. */
static void ring_write(struct ring *g, const uint64_t *v, int n)
{
	uint64_t first = SLOTS - g->in < (uint64_t)n ? SLOTS - g->in : (uint64_t)n;
	memcpy(&g->slot[g->in], v, first * sizeof *v);
	memcpy(&g->slot[0], v + first, ((uint64_t)n - first) * sizeof *v);
	g->in = (g->in + (uint64_t)n) % SLOTS;
	g->avail += (uint64_t)n;
}

static int ring_read(struct ring *g, uint64_t *v, int max)
{
	uint64_t n = g->avail < (uint64_t)max ? g->avail : (uint64_t)max;
	uint64_t first = SLOTS - g->out < n ? SLOTS - g->out : n;
	memcpy(v, &g->slot[g->out], first * sizeof *v);
	memcpy(v + first, &g->slot[0], (n - first) * sizeof *v);
	g->out = (g->out + n) % SLOTS;
	g->avail -= n;
	return (int)n;
}

static void put_batch(struct run *r, const uint64_t *v, int n)
{
	sem_wait_eintr(r->empty);
	sem_wait_eintr(r->mutex);
	ring_write(r->ring, v, n);
	sem_post(r->mutex);
	sem_post(r->full);
}

static int consume(int idx, void *arg)
{
	struct run *r = arg;
	struct bench_tally *t = &r->tally[idx];
	uint64_t v[BATCH_MAX];
	for (;;) {
		if (sem_wait_eintr(r->full) < 0 || sem_wait_eintr(r->mutex) < 0)
			return 2;
		int n = ring_read(r->ring, v, r->batch);
		sem_post(r->mutex);
		if (n == 0)
			return 0; /* a stop token */
		sem_post(r->empty);
		for (int i = 0; i < n; i++)
			bench_take(t, v[i], r->tasks);
	}
}

int main(int argc, char **argv)
{
	struct bench_opts o = {.tasks = 20000000, .consumers = 1, .batch = 64, .timeout = 120};
	struct run r = {.empty = SEM_FAILED, .full = SEM_FAILED, .mutex = SEM_FAILED};
	void *map = MAP_FAILED;
	char shm_name[64], empty_name[64], full_name[64], mutex_name[64];
	uint64_t v[BATCH_MAX];
	int fd = -1, rc = 2;

	if (bench_parse(argc, argv, BENCH_F_BATCH, &o))
		return 2;
	if (o.batch > BATCH_MAX || o.batch > SLOTS) {
		fprintf(stderr, "%s: --batch %d is too large (at most %d)\n", argv[0], o.batch,
			BATCH_MAX);
		return 2;
	}
	r.tasks = o.tasks;
	r.batch = o.batch;
	snprintf(shm_name, sizeof shm_name, "/forq-bench-seed2-%d", (int)getpid());
	snprintf(empty_name, sizeof empty_name, "/forq-bench-seed2-%d-empty", (int)getpid());
	snprintf(full_name, sizeof full_name, "/forq-bench-seed2-%d-full", (int)getpid());
	snprintf(mutex_name, sizeof mutex_name, "/forq-bench-seed2-%d-mutex", (int)getpid());

	fd = shm_open(shm_name, O_CREAT | O_EXCL | O_RDWR, 0600);
	if (fd < 0) {
		perror("shm_open");
		goto end;
	}
	shm_unlink(shm_name);
	if (ftruncate(fd, sizeof(struct ring)) < 0) {
		perror("ftruncate");
		goto end;
	}
	map = mmap(NULL, sizeof(struct ring), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		perror("mmap");
		goto end;
	}
	r.ring = map;
	r.empty = sem_open(empty_name, O_CREAT | O_EXCL, 0600, SLOTS / o.batch);
	r.full = sem_open(full_name, O_CREAT | O_EXCL, 0600, 0);
	r.mutex = sem_open(mutex_name, O_CREAT | O_EXCL, 0600, 1);
	if (r.empty != SEM_FAILED)
		sem_unlink(empty_name);
	if (r.full != SEM_FAILED)
		sem_unlink(full_name);
	if (r.mutex != SEM_FAILED)
		sem_unlink(mutex_name);
	if (r.empty == SEM_FAILED || r.full == SEM_FAILED || r.mutex == SEM_FAILED) {
		perror("sem_open");
		goto end;
	}
	if (bench_start(DESIGN, &o, &r.tally, consume, &r))
		goto end;

	double t0 = bench_now();
	uint64_t next = 1;
	while (next <= o.tasks) {
		int n = 0;
		while (n < o.batch && next <= o.tasks)
			v[n++] = next++;
		put_batch(&r, v, n);
	}
	for (int i = 0; i < o.consumers; i++)
		sem_post(r.full); /* stop tokens */
	bool ok = bench_wait();
	double t1 = bench_now();

	ok = bench_check(r.tally, o.consumers, o.tasks) && ok;
	rc = bench_report(DESIGN, &o, t1 - t0, ok);
end:
	if (r.mutex != SEM_FAILED)
		sem_close(r.mutex);
	if (r.full != SEM_FAILED)
		sem_close(r.full);
	if (r.empty != SEM_FAILED)
		sem_close(r.empty);
	if (map != MAP_FAILED)
		munmap(map, sizeof(struct ring));
	if (fd >= 0)
		close(fd);
	return rc;
}
