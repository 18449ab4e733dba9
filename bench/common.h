/* common.h — what every baseline in bench/ shares: flags, the fork of C
 * consumer processes, a time bound, the exactly-once check and the one JSON
 * line each program prints.
 *
 * Every baseline sends the tasks 1..N (8-byte integers; 0 is the end marker
 * where a design needs one) from the parent process to C forked consumers.
 * Each consumer adds what it takes to its own tally in shared memory; the
 * parent checks count, sum and a sum of mixed values against 1..N, so a lost
 * task, a duplicate or a torn record makes "ok" false.
 *
 * Header-only on purpose: each baseline is one .c file that CMake builds as
 * bench_<name> with no library. Output, one line on stdout:
 *   {"design":"seed1-sem","consumers":2,"tasks":N,"seconds":S,"tasks_per_s":X,"ok":true}
 * Exit codes: 0 ok, 1 the check failed, 2 bad flags or setup, 3 timed out. */
#ifndef FORQ_BENCH_COMMON_H
#define FORQ_BENCH_COMMON_H

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_CONSUMERS 64

/* Which optional flags a program takes. */
enum bench_flags {
	BENCH_F_BATCH = 1 << 0,  /* --batch B */
	BENCH_F_DEPTH = 1 << 1,  /* --depth D: slots or messages */
	BENCH_F_SERVER = 1 << 2, /* --host H --port P */
};

struct bench_opts {
	uint64_t tasks;   /* N */
	int consumers;    /* C */
	int batch;        /* tasks per batch, where meaningful */
	int depth;        /* queue capacity, where meaningful; 0 = the design's */
	int timeout;      /* seconds before the run gives up (exit 3) */
	const char *host; /* servers only */
	int port;
};

/* One consumer's tally; a cache line each so consumers never share one. */
struct bench_tally {
	_Alignas(64) uint64_t count;
	uint64_t sum;
	uint64_t mix; /* sum of bench_mix(v): catches a loss and a duplicate that cancel in sum */
	uint64_t bad; /* records that could not be valid (torn, zero, > N) */
};

static pid_t bench__pids[BENCH_MAX_CONSUMERS];
static int bench__npids;
static char bench__timeout_line[256];
static size_t bench__timeout_len;

/* splitmix64's finalizer: a cheap bijection, so equal mix sums mean equal multisets w.h.p. */
static inline uint64_t bench_mix(uint64_t v)
{
	v ^= v >> 30;
	v *= 0xbf58476d1ce4e5b9ULL;
	v ^= v >> 27;
	v *= 0x94d049bb133111ebULL;
	return v ^ (v >> 31);
}

static inline double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void bench_usage(const char *prog, unsigned flags)
{
	fprintf(stderr, "usage: %s [--tasks N] [--consumers C]%s%s%s [--timeout S]\n", prog,
		flags & BENCH_F_BATCH ? " [--batch B]" : "",
		flags & BENCH_F_DEPTH ? " [--depth D]" : "",
		flags & BENCH_F_SERVER ? " --port P [--host 127.0.0.1]" : "");
}

static inline int bench__num(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Parses the flags; on a bad one prints why and usage, and returns -EINVAL. */
static inline int bench_parse(int argc, char **argv, unsigned flags, struct bench_opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n = 0;
		int r = -EINVAL;
		if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
			bench_usage(argv[0], flags);
			exit(0);
		}
		if (!v)
			goto bad;
		if (!strcmp(f, "--tasks")) {
			r = bench__num(v, 1, UINT64_C(1) << 40, &n);
			o->tasks = n;
		} else if (!strcmp(f, "--consumers")) {
			r = bench__num(v, 1, BENCH_MAX_CONSUMERS, &n);
			o->consumers = (int)n;
		} else if (!strcmp(f, "--timeout")) {
			r = bench__num(v, 1, 86400, &n);
			o->timeout = (int)n;
		} else if (!strcmp(f, "--batch") && (flags & BENCH_F_BATCH)) {
			r = bench__num(v, 1, 1 << 20, &n);
			o->batch = (int)n;
		} else if (!strcmp(f, "--depth") && (flags & BENCH_F_DEPTH)) {
			r = bench__num(v, 1, 1 << 26, &n);
			o->depth = (int)n;
		} else if (!strcmp(f, "--port") && (flags & BENCH_F_SERVER)) {
			r = bench__num(v, 1, 65535, &n);
			o->port = (int)n;
		} else if (!strcmp(f, "--host") && (flags & BENCH_F_SERVER)) {
			o->host = v;
			r = 0;
		}
		if (r)
			goto bad;
		i++;
		continue;
bad:
		fprintf(stderr, "%s: bad flag or value: %s %s\n", argv[0], f, v ? v : "(missing)");
		bench_usage(argv[0], flags);
		return -EINVAL;
	}
	return 0;
}

/* One tally per consumer in anonymous shared memory, zeroed; NULL on failure. */
static inline struct bench_tally *bench_tallies(int consumers)
{
	void *p = mmap(NULL, sizeof(struct bench_tally) * (size_t)consumers,
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Hot path of every consumer: a few adds per task. */
static inline void bench_take(struct bench_tally *t, uint64_t v, uint64_t tasks)
{
	if (v == 0 || v > tasks) {
		t->bad++;
		return;
	}
	t->count++;
	t->sum += v;
	t->mix += bench_mix(v);
}

/* True when the tallies hold exactly the tasks 1..N once each. */
static inline bool bench_check(const struct bench_tally *t, int consumers, uint64_t tasks)
{
	uint64_t count = 0, sum = 0, mix = 0, bad = 0, want_mix = 0;
	for (int i = 0; i < consumers; i++) {
		count += t[i].count;
		sum += t[i].sum;
		mix += t[i].mix;
		bad += t[i].bad;
	}
	for (uint64_t v = 1; v <= tasks; v++)
		want_mix += bench_mix(v);
	/* N(N+1)/2 without overflow for N < 2^40 */
	uint64_t want_sum = tasks % 2 ? tasks * ((tasks + 1) / 2) : (tasks / 2) * (tasks + 1);
	if (count != tasks || sum != want_sum || mix != want_mix || bad)
		fprintf(stderr, "check failed: count %llu/%llu, sum %s, mix %s, bad %llu\n",
			(unsigned long long)count, (unsigned long long)tasks,
			sum == want_sum ? "ok" : "wrong", mix == want_mix ? "ok" : "wrong",
			(unsigned long long)bad);
	return count == tasks && sum == want_sum && mix == want_mix && !bad;
}

/* Forks C consumers running fn(index, arg); a consumer's return value is its
 * exit code. Each child dies with the parent and by itself after timeout + 5 s.
 * Returns 0, or -errno with the children already forked killed. */
static inline int bench_spawn(int consumers, int timeout, int (*fn)(int, void *), void *arg)
{
	pid_t parent = getpid();
	fflush(NULL); /* nothing buffered is written twice */
	for (int i = 0; i < consumers; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			int err = -errno;
			for (int j = 0; j < bench__npids; j++)
				kill(bench__pids[j], SIGKILL);
			while (wait(NULL) > 0 || errno == EINTR)
				;
			bench__npids = 0;
			return err;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(3);
			alarm((unsigned)timeout + 5);
			_exit(fn(i, arg));
		}
		bench__pids[bench__npids++] = pid;
	}
	return 0;
}

/* Waits for every consumer; true when all exited 0. */
static inline bool bench_wait(void)
{
	bool ok = true;
	for (int i = 0; i < bench__npids; i++) {
		int st;
		pid_t r;
		while ((r = waitpid(bench__pids[i], &st, 0)) < 0 && errno == EINTR)
			;
		if (r < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			if (r >= 0 && WIFSIGNALED(st))
				fprintf(stderr, "consumer %d killed by signal %d\n", i, WTERMSIG(st));
			else if (r >= 0)
				fprintf(stderr, "consumer %d exited %d\n", i, WEXITSTATUS(st));
			ok = false;
		}
	}
	bench__npids = 0;
	return ok;
}

static void bench__on_alarm(int sig)
{
	(void)sig;
	for (int i = 0; i < bench__npids; i++)
		kill(bench__pids[i], SIGKILL);
	for (int i = 0; i < bench__npids; i++)
		waitpid(bench__pids[i], NULL, 0); /* leave no zombies to whoever adopts them */
	ssize_t r = write(STDOUT_FILENO, bench__timeout_line, bench__timeout_len);
	(void)r;
	_exit(3);
}

/* After bench_spawn: the parent kills its consumers, prints an ok:false line
 * and exits 3 if the run is still going after o->timeout seconds. Programs
 * unlink their named objects before forking, so nothing is left behind. */
static inline void bench_arm_timeout(const char *design, const struct bench_opts *o)
{
	int n = snprintf(bench__timeout_line, sizeof bench__timeout_line,
			 "{\"design\":\"%s\",\"consumers\":%d,\"tasks\":%llu,\"ok\":false,"
			 "\"error\":\"timeout after %d s\"}\n",
			 design, o->consumers, (unsigned long long)o->tasks, o->timeout);
	bench__timeout_len = n > 0 && (size_t)n < sizeof bench__timeout_line ? (size_t)n : 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = bench__on_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm((unsigned)o->timeout);
}

/* What every baseline does once its queue exists: the tallies in *tally
 * (shared with the consumers through arg), the consumers forked, the timeout
 * armed. Returns 0, or -1 after saying why on stderr. */
static inline int bench_start(const char *design, const struct bench_opts *o,
			      struct bench_tally **tally, int (*fn)(int, void *), void *arg)
{
	if (!(*tally = bench_tallies(o->consumers))) {
		perror("mmap");
		return -1;
	}
	int err = bench_spawn(o->consumers, o->timeout, fn, arg);
	if (err) {
		fprintf(stderr, "fork: %s\n", strerror(-err));
		return -1;
	}
	bench_arm_timeout(design, o);
	return 0;
}

/* Prints the result line; returns the exit code. */
static inline int bench_report(const char *design, const struct bench_opts *o, double seconds,
			       bool ok)
{
	alarm(0);
	printf("{\"design\":\"%s\",\"consumers\":%d,\"tasks\":%llu,", design, o->consumers,
	       (unsigned long long)o->tasks);
	if (o->batch > 1)
		printf("\"batch\":%d,", o->batch);
	printf("\"seconds\":%.6f,\"tasks_per_s\":%.0f,\"ok\":%s}\n", seconds,
	       seconds > 0 ? (double)o->tasks / seconds : 0.0, ok ? "true" : "false");
	fflush(stdout);
	return ok ? 0 : 1;
}

/* Writes all n bytes (retrying short writes and EINTR); 0 or -errno, -EPIPE
 * when the reader is gone. */
static inline int bench_write_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	return 0;
}

/* Waits a little on a busy-waiting path: spin first, then give the core away
 * (2-core machines run producer and consumers on the same cores). */
static inline void bench_relax(unsigned *spins)
{
	if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#elif defined(__aarch64__)
		__asm__ __volatile__("yield");
#endif
		return;
	}
	*spins = 0;
	sched_yield();
}

#endif
