/* seed1_sem.c — the first seed's design as a baseline: a 1000-slot ring in
 * POSIX shared memory (shm_open + mmap) guarded by three named semaphores
 * (empty, full, mutex), one task per wait/post cycle. The producer ends the
 * stream with one 0 per consumer.
 *
 * The names carry our pid and are unlinked as soon as everything is open and
 * before any fork, so no exit path (timeout, crash, kill) leaves them behind;
 * an unlinked object lives on in the mappings we hold, so this costs the
 * design nothing. */
#include "common.h"

#include <fcntl.h>
#include <semaphore.h>
#include <sys/stat.h>

#define DESIGN "seed1-sem"
#define SLOTS 1000

struct ring {
	uint64_t in;  /* next slot the producer fills; under mutex */
	uint64_t out; /* next slot a consumer empties; under mutex */
	uint64_t slot[SLOTS];
};

struct run {
	struct ring *ring;
	sem_t *empty, *full, *mutex;
	struct bench_tally *tally;
	uint64_t tasks;
};

/* Retries the waits that a signal interrupts. */
static int sem_wait_eintr(sem_t *s)
{
	int r;
	while ((r = sem_wait(s)) < 0 && errno == EINTR)
		;
	return r;
}

static void put(struct run *r, uint64_t v)
{
	sem_wait_eintr(r->empty);
	sem_wait_eintr(r->mutex);
	r->ring->slot[r->ring->in] = v;
	r->ring->in = (r->ring->in + 1) % SLOTS;
	sem_post(r->mutex);
	sem_post(r->full);
}

static int consume(int idx, void *arg)
{
	struct run *r = arg;
	struct bench_tally *t = &r->tally[idx];
	for (;;) {
		if (sem_wait_eintr(r->full) < 0 || sem_wait_eintr(r->mutex) < 0)
			return 2;
		uint64_t v = r->ring->slot[r->ring->out];
		r->ring->out = (r->ring->out + 1) % SLOTS;
		sem_post(r->mutex);
		sem_post(r->empty);
		if (v == 0)
			return 0;
		bench_take(t, v, r->tasks);
	}
}

int main(int argc, char **argv)
{
	struct bench_opts o = {.tasks = 2000000, .consumers = 1, .timeout = 120};
	struct run r = {.empty = SEM_FAILED, .full = SEM_FAILED, .mutex = SEM_FAILED};
	void *map = MAP_FAILED;
	char shm_name[64], empty_name[64], full_name[64], mutex_name[64];
	int fd = -1, rc = 2;

	if (bench_parse(argc, argv, 0, &o))
		return 2;
	r.tasks = o.tasks;
	snprintf(shm_name, sizeof shm_name, "/forq-bench-seed1-%d", (int)getpid());
	snprintf(empty_name, sizeof empty_name, "/forq-bench-seed1-%d-empty", (int)getpid());
	snprintf(full_name, sizeof full_name, "/forq-bench-seed1-%d-full", (int)getpid());
	snprintf(mutex_name, sizeof mutex_name, "/forq-bench-seed1-%d-mutex", (int)getpid());

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
	r.empty = sem_open(empty_name, O_CREAT | O_EXCL, 0600, SLOTS);
	r.full = sem_open(full_name, O_CREAT | O_EXCL, 0600, 0);
	r.mutex = sem_open(mutex_name, O_CREAT | O_EXCL, 0600, 1);
	/* unlink whatever was created, before any check can leave */
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
	for (uint64_t v = 1; v <= o.tasks; v++)
		put(&r, v);
	for (int i = 0; i < o.consumers; i++)
		put(&r, 0);
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
