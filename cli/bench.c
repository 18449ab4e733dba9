/* bench.c — `forq bench`: a private forqd, N tasks pushed through libforq,
 * figures read back from the queue itself. */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "forq_admin.h"
#include "bench_durable.h"
#include "clock.h"
#include "cpu.h"
#include "errmsg.h"
#include "forq.h"

#define BENCH_CAPACITY 65536       /* tasks per lane of the private queue */
#define READY_TIMEOUT_NS (10ull * 1000000000u)
#define STALL_TIMEOUT_NS (60ull * 1000000000u) /* no task finished for this long: fail */
#define STOP_TIMEOUT_NS (30ull * 1000000000u)
#define PUSH_WAIT_MS 200           /* a full queue: re-check forqd this often */
#define POLL_NS 100000             /* 100 us between looks at the done count */
#define PROGRESS_NS 1000000000ull
#define PROGRESS_EVERY 16          /* batches between clock reads in the push loop */
#define SYNC_WAIT_MS 1000          /* a forq_sync: re-check forqd this often */
#define DLAT_BATCHES (1u << 20)    /* batches timed push to journaled, at most */
#define TEXT_PAYLOAD "1+2"
#define JSON_PAYLOAD "{\"op\":\"sum\",\"args\":[1,2]}"

struct bench {
	const struct bench_config *c;
	struct bench_report *r;
	char shm_name[64];
	char conf[64];             /* --queues > 1: the config file, "" if none */
	pid_t pid;                 /* forqd, 0 once reaped */
	int status;                /* its wait status once reaped */
	struct forq *qs[BENCH_QUEUES_MAX]; /* one handle per queue, c->queues of them */
	uint32_t nq;
	char *payloads;            /* batch * payload_bytes */
	struct forq_msg *msgs;     /* batch entries into payloads */
	uint64_t t_first_push, next_progress, last_progress_done, last_progress_ns;
	uint64_t last_done, last_change_ns;
	uint64_t cpu0;             /* all_cpu_ns at the first push */
	struct dlat dl;            /* with a journal: push to journaled */
};

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	errmsg_vset(err, errlen, fmt, ap);
	va_end(ap);
	return BENCH_ERR_RUN;
}

double bench_hist_quantile(const uint64_t *buckets, double q)
{
	uint64_t total = 0;
	for (int k = 0; k < FORQ_HIST_BUCKETS; k++)
		total += buckets[k];
	if (!total)
		return 0;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	double rank = q * (double)total, below = 0;
	for (int k = 0; k < FORQ_HIST_BUCKETS; k++) {
		if (!buckets[k])
			continue;
		if (below + (double)buckets[k] >= rank) {
			/* Bucket k spans (2^(k-1), 2^k]; the last one is open-ended,
			 * so it is given the width of a doubling too. */
			double lo = k == 0 ? 0 : (double)(1ull << (k - 1)), hi = (double)(1ull << k);
			double frac = (rank - below) / (double)buckets[k];
			return lo + (hi - lo) * frac;
		}
		below += (double)buckets[k];
	}
	return (double)(1ull << (FORQ_HIST_BUCKETS - 1));
}

static int executable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* forqd next to this binary, then $FORQD, then PATH. */
static int find_forqd(const char *given, char *out, size_t cap, char *err, size_t errlen)
{
	if (given) {
		if (!executable(given))
			return fail(err, errlen, "--forqd %s: not an executable file", given);
		snprintf(out, cap, "%s", given);
		return 0;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if ((size_t)snprintf(out, cap, "%s/forqd", self) < cap && executable(out))
				return 0;
		}
	}
	const char *env = getenv("FORQD");
	if (env && *env) {
		if (!executable(env))
			return fail(err, errlen, "FORQD=%s: not an executable file", env);
		snprintf(out, cap, "%s", env);
		return 0;
	}
	const char *path = getenv("PATH");
	while (path && *path) {
		size_t len = strcspn(path, ":");
		if (len && (size_t)snprintf(out, cap, "%.*s/forqd", (int)len, path) < cap &&
		    executable(out))
			return 0;
		path += len + (path[len] == ':');
	}
	return fail(err, errlen,
		    "cannot find forqd: not next to forq, $FORQD is not set and it is not in PATH "
		    "(use --forqd PATH)");
}

/* A journal of its own: the segments an earlier run left in dir (of
 * another queue name, which forqd would refuse) go first. */
static void clear_journal(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strncmp(e->d_name, "journal-", 8) == 0)
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
}

/* --queues N > 1: a config file of N queue sections; the flags forqd is
 * given (workers, handler, sizes) are every queue's. */
static int write_config(struct bench *b, char *err, size_t errlen)
{
	snprintf(b->conf, sizeof b->conf, "/tmp/forq-bench-%d.conf", (int)getpid());
	FILE *f = fopen(b->conf, "w");
	if (!f) {
		fail(err, errlen, "%s: %s", b->conf, strerror(errno));
		b->conf[0] = '\0';
		return -1;
	}
	fprintf(f, "# forq bench --queues %u\n", b->nq);
	for (uint32_t k = 0; k < b->nq; k++)
		fprintf(f, "[queue q%u]\n", k);
	if (fclose(f)) {
		fail(err, errlen, "%s: %s", b->conf, strerror(errno));
		unlink(b->conf);
		b->conf[0] = '\0';
		return -1;
	}
	return 0;
}

static void close_queues(struct bench *b)
{
	for (uint32_t k = 0; k < b->nq; k++) {
		forq_close(b->qs[k]);
		b->qs[k] = NULL;
	}
}

static int spawn_forqd(struct bench *b, char *err, size_t errlen)
{
	const struct bench_config *c = b->c;
	char workers[16], batch[16], payload[16], capacity[16], tables[16];
	snprintf(workers, sizeof workers, "%d", c->workers);
	snprintf(batch, sizeof batch, "%u", c->batch);
	snprintf(payload, sizeof payload, "%u", c->payload_bytes > 8 ? c->payload_bytes : 8);
	snprintf(capacity, sizeof capacity, "%u", BENCH_CAPACITY);
	/* Delayed and keyed pushes: a waiting table and a key table that hold
	 * as many tasks as a lane. */
	snprintf(tables, sizeof tables, "%u", 2 * BENCH_CAPACITY);
	char *argv[] = {b->r->forqd_path, "--shm-name", b->shm_name, "--workers", workers,
			"--batch", batch, "--handler", (char *)c->handler, "--results", "off",
			"--http", "off", "--tcp", "off", "--max-payload", payload, "--capacity",
			capacity, "--waiting-max", tables, "--keys-max", tables, "--no-recover",
			"--log-level", "warn", NULL, NULL, NULL, NULL, NULL, NULL, NULL};
	size_t n = 0;
	while (argv[n])
		n++;
	if (b->conf[0]) {
		argv[n++] = "--config";
		argv[n++] = b->conf;
	}
	if (c->journal) {
		clear_journal(c->journal);
		argv[n++] = "--journal";
		argv[n++] = (char *)c->journal;
		argv[n++] = "--fsync";
		argv[n] = (char *)(c->fsync ? c->fsync : "always");
	}

	/* Block signals across fork so the child runs no handler of ours. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		/* forqd must not outlive us: SIGTERM makes it drain and go. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (getppid() != parent)
			_exit(127);
		execv(argv[0], argv);
		fprintf(stderr, "forq bench: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return fail(err, errlen, "fork: %s", strerror(e));
	b->pid = pid;
	return 0;
}

/* Reaps forqd if it exited; 1 when it is gone. */
static int forqd_gone(struct bench *b)
{
	if (!b->pid)
		return 1;
	int st;
	pid_t w;
	while ((w = waitpid(b->pid, &st, WNOHANG)) < 0 && errno == EINTR)
		;
	if (w == b->pid || (w < 0 && errno == ECHILD)) {
		b->status = w == b->pid ? st : 0;
		b->pid = 0;
		return 1;
	}
	return 0;
}

static void describe_status(int st, char *out, size_t cap)
{
	if (WIFEXITED(st))
		snprintf(out, cap, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(out, cap, "signal %d", WTERMSIG(st));
	else
		snprintf(out, cap, "status %d", st);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
	nanosleep(&ts, NULL);
}

/* Stops forqd with SIGTERM (it drains, then exits) and reaps it; SIGKILL
 * after STOP_TIMEOUT_NS. Returns 0 once reaped, -1 if it had to be killed. */
static int stop_forqd(struct bench *b)
{
	if (!b->pid)
		return 0;
	kill(b->pid, SIGTERM);
	uint64_t end = clock_mono_ns() + STOP_TIMEOUT_NS;
	while (!forqd_gone(b)) {
		if (clock_mono_ns() >= end) {
			kill(b->pid, SIGKILL);
			while (waitpid(b->pid, &b->status, 0) < 0 && errno == EINTR)
				;
			b->pid = 0;
			return -1;
		}
		sleep_ns(10000000);
	}
	return 0;
}

/* Waits until the queue exists, accepts tasks and every consumer is attached. */
static int wait_ready(struct bench *b, char *err, size_t errlen)
{
	uint64_t end = clock_mono_ns() + READY_TIMEOUT_NS;
	char why[512] = "";
	for (;;) {
		if (forqd_gone(b)) {
			char st[64];
			describe_status(b->status, st, sizeof st);
			snprintf(err, errlen, "forqd (%s) exited with %s before its queue was ready",
				 b->r->forqd_path, st);
			return BENCH_ERR_START;
		}
		uint32_t ready = 0;
		for (uint32_t k = 0; k < b->nq; k++) {
			char name[16];
			snprintf(name, sizeof name, "q%u", k);
			if (!b->qs[k])
				forq_open_queue(&b->qs[k], b->shm_name,
						b->nq > 1 ? name : FORQ_QUEUE_DEFAULT, why, sizeof why);
			if (!b->qs[k])
				break;
			struct forq_stats s;
			forq_stats_read(b->qs[k], &s);
			int active = forq_admin_consumers_active(b->qs[k]);
			if (!s.accepting || active < b->c->workers) {
				snprintf(why, sizeof why, "%d of %d consumers attached", active,
					 b->c->workers);
				break;
			}
			ready++;
		}
		if (ready == b->nq)
			return 0;
		if (clock_mono_ns() >= end) {
			snprintf(err, errlen, "forqd's queue %s was not ready after %llu s: %s",
				 b->shm_name, READY_TIMEOUT_NS / 1000000000u, why);
			return BENCH_ERR_START;
		}
		sleep_ns(5000000);
	}
}

/* VmHWM of one process in KiB, 0 if unknown. */
/* The "KEY: N kB" line of /proc/PID/FILE (status, smaps_rollup), 0 if none. */
static uint64_t proc_kib(int pid, const char *file, const char *key)
{
	char path[64], line[256];
	unsigned long long v = 0;
	size_t klen = strlen(key);
	snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':' &&
		    sscanf(line + klen + 1, "%llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

static uint64_t vm_hwm_kib(int pid)
{
	return proc_kib(pid, "status", "VmHWM");
}

static uint64_t private_kib(int pid)
{
	return proc_kib(pid, "smaps_rollup", "Private_Clean") +
	       proc_kib(pid, "smaps_rollup", "Private_Dirty");
}

/* CPU time of the children a process has reaped (an exec: handler's
 * commands), from /proc/PID/stat cutime + cstime, in ns (10 ms ticks). */
static uint64_t reaped_cpu_ns(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the command name may hold anything */
	unsigned long long cu, cs;
	long hz = sysconf(_SC_CLK_TCK);
	/* After ")": state is field 3, cutime and cstime fields 16 and 17. */
	if (!p || hz <= 0 ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %llu %llu", &cu,
		   &cs) != 2)
		return 0;
	return (uint64_t)(cu + cs) * (1000000000u / (uint64_t)hz);
}

/* CPU time of every thread of a process, in ns (schedstat: exact, unlike
 * the 10 ms ticks of /proc/PID/stat); 0 if unknown. */
static uint64_t proc_cpu_ns(int pid)
{
	char path[96];
	snprintf(path, sizeof path, "/proc/%d/task", pid);
	DIR *d = opendir(path);
	struct dirent *e;
	uint64_t sum = 0;
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%.16s/schedstat", pid, e->d_name);
		FILE *f = fopen(path, "re");
		unsigned long long ns;
		if (!f)
			continue;
		if (fscanf(f, "%llu", &ns) == 1)
			sum += ns;
		fclose(f);
	}
	closedir(d);
	return sum + reaped_cpu_ns(pid);
}

/* forqd and its children (the consumers), read while they are alive. */
struct tree {
	int pid[1 + FORQ_MAX_WORKERS];
	int n;
};

static void read_tree(int pid, struct tree *t)
{
	char path[96];
	t->n = 0;
	if (pid <= 0)
		return;
	t->pid[t->n++] = pid;
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	int child;
	while (t->n < (int)(sizeof t->pid / sizeof t->pid[0]) && fscanf(f, "%d", &child) == 1)
		t->pid[t->n++] = child;
	fclose(f);
}

/* CPU ns of forqd, its consumers and this process. */
static uint64_t all_cpu_ns(int forqd)
{
	struct tree t;
	uint64_t sum = proc_cpu_ns(getpid());
	read_tree(forqd, &t);
	for (int i = 0; i < t.n; i++)
		sum += proc_cpu_ns(t.pid[i]);
	return sum;
}

/* Tasks finished in every queue. */
static uint64_t finished_total(struct bench *b)
{
	uint64_t n = 0;
	for (uint32_t k = 0; k < b->nq; k++)
		n += forq_admin_finished_total(b->qs[k]);
	return n;
}

static void progress(struct bench *b, uint64_t now, uint64_t pushed)
{
	uint64_t done = finished_total(b);
	if (done != b->last_done) {
		b->last_done = done;
		b->last_change_ns = now;
	}
	if (now < b->next_progress)
		return;
	if (!b->c->quiet) {
		double dt = (double)(now - b->last_progress_ns) / 1e9;
		fprintf(stderr, "forq bench: %llu pushed, %llu of %llu done, %.0f tasks/s\n",
			(unsigned long long)pushed, (unsigned long long)done,
			(unsigned long long)b->c->tasks,
			dt > 0 ? (double)(done - b->last_progress_done) / dt : 0.0);
	}
	b->last_progress_done = done;
	b->last_progress_ns = now;
	b->next_progress = now + PROGRESS_NS;
}

static void build_payloads(struct bench *b)
{
	const struct bench_config *c = b->c;
	const char *text = strncmp(c->handler, "json", 4) == 0 ? JSON_PAYLOAD : TEXT_PAYLOAD;
	size_t tl = strlen(text), p = c->payload_bytes;
	for (uint32_t i = 0; i < c->batch; i++) {
		char *dst = b->payloads + (size_t)i * p;
		/* A short task padded with blanks, which the handlers skip;
		 * payloads shorter than the text get digits. */
		if (p >= tl) {
			memcpy(dst, text, tl);
			memset(dst + tl, ' ', p - tl);
		} else {
			memset(dst, '7', p);
		}
		b->msgs[i] = (struct forq_msg){dst, (uint32_t)p};
	}
}

/* --push-kind delayed or keyed: the batch's tasks one by one. A full table
 * before the first is -EAGAIN (after a wait, as a full lane is); after it,
 * the rest are tried again until they go in. */
static int push_each(struct bench *b, struct forq *q, size_t k, uint64_t first)
{
	const struct bench_config *c = b->c;
	for (size_t i = 0; i < k;) {
		const struct forq_msg *m = &b->msgs[i];
		char key[24];
		uint64_t id;
		int dup, r;
		if (c->push_kind == BENCH_PUSH_DELAYED) {
			r = forq_push_delayed(q, (enum forq_prio)c->prio, m->payload, m->len, 1, &id);
		} else {
			int n = snprintf(key, sizeof key, "k%" PRIu64, first + i);
			r = forq_push_unique(q, (enum forq_prio)c->prio, m->payload, m->len, key,
					     (size_t)n, 0, 0, &id, &dup);
		}
		if (r == -EAGAIN) {
			sleep_ns(1000000);
			if (i == 0)
				return r;
			continue;
		}
		if (r)
			return r;
		i++;
	}
	return 0;
}

/* With a journal: what the producer sees journaled now, of `sent`. */
static void journal_seen(struct bench *b, uint64_t sent)
{
	uint64_t backlog = 0;
	for (uint32_t k = 0; k < b->nq; k++)
		backlog += forq_admin_journal_backlog(b->qs[k]);
	dlat_seen(&b->dl, sent > backlog ? sent - backlog : 0, clock_mono_ns());
}

/* --sync-every: waits until every queue has what was pushed on disk. */
static int sync_all(struct bench *b, char *err, size_t errlen)
{
	for (uint32_t k = 0; k < b->nq; k++) {
		int r;
		uint64_t t0 = clock_mono_ns();
		while ((r = forq_sync(b->qs[k], SYNC_WAIT_MS)) == -ETIMEDOUT) {
			if (forqd_gone(b))
				return fail(err, errlen, "forqd exited while a sync waited");
			if (clock_mono_ns() - t0 > STALL_TIMEOUT_NS)
				return fail(err, errlen, "the journal took nothing for %llu s",
					    STALL_TIMEOUT_NS / 1000000000u);
		}
		if (r)
			return fail(err, errlen, "forq_sync: %s", strerror(-r));
	}
	b->r->syncs++;
	return 0;
}

/* Hot path: one forq_push_batch per batch from the pre-built messages; per
 * task at most one 8-byte store (the integer payload), no allocation, no
 * syscall unless the queue is full or a rate is set. With a journal, per
 * batch a clock read and a look at the journal's backlog too. */
static int push_all(struct bench *b, char *err, size_t errlen)
{
	const struct bench_config *c = b->c;
	const uint64_t n = c->tasks, per = c->batch;
	const int ints = c->payload_bytes == 8;
	const double ns_per_task = c->rate > 0 ? 1e9 / c->rate : 0;
	const int pipelined = c->journal && c->sync_every && c->push_kind == BENCH_PUSH_PLAIN;
	uint64_t sent = 0, batches = 0, synced = 0;
	b->cpu0 = all_cpu_ns(b->pid);
	b->t_first_push = clock_mono_ns();
	b->last_progress_ns = b->last_change_ns = b->t_first_push;
	b->next_progress = b->t_first_push + PROGRESS_NS;
	while (sent < n) {
		size_t k = n - sent < per ? (size_t)(n - sent) : (size_t)per;
		if (ints)
			for (size_t i = 0; i < k; i++) {
				uint64_t v = sent + i;
				memcpy(b->payloads + 8 * i, &v, 8);
			}
		if (ns_per_task > 0) {
			uint64_t due = b->t_first_push + (uint64_t)((double)sent * ns_per_task);
			uint64_t now = clock_mono_ns();
			/* Short gaps are spun, not slept: nanosleep's slack (50 us
			 * and more) would turn a steady rate into bursts. */
			if (due > now + 200000)
				sleep_ns(due - now);
			else
				while (clock_mono_ns() < due)
					cpu_relax();
		}
		struct forq *q = b->qs[batches % b->nq]; /* round robin, a batch each */
		uint64_t t_push = c->journal ? clock_mono_ns() : 0;
		int r = c->push_kind != BENCH_PUSH_PLAIN ? push_each(b, q, k, sent)
			: pipelined ? forq_push_batch_async(q, (enum forq_prio)c->prio, b->msgs, k,
							   PUSH_WAIT_MS, NULL)
				    : forq_push_batch(q, (enum forq_prio)c->prio, b->msgs, k,
						      PUSH_WAIT_MS, NULL);
		if (r == -EAGAIN) {
			/* Full for PUSH_WAIT_MS: fine while consumers make progress. */
			uint64_t now = clock_mono_ns();
			progress(b, now, sent);
			if (forqd_gone(b))
				return fail(err, errlen, "forqd exited while tasks were being pushed");
			if (now - b->last_change_ns > STALL_TIMEOUT_NS)
				return fail(err, errlen, "the queue stayed full and no task finished "
					    "for %llu s", STALL_TIMEOUT_NS / 1000000000u);
			continue;
		}
		if (r)
			return fail(err, errlen, "push failed: %s", strerror(-r));
		sent += k;
		if (c->journal) {
			dlat_pushed(&b->dl, t_push, sent);
			if (pipelined && (sent - synced >= c->sync_every || sent == n)) {
				if ((r = sync_all(b, err, errlen)))
					return r;
				synced = sent;
			}
			journal_seen(b, sent);
		}
		if (++batches % PROGRESS_EVERY == 0)
			progress(b, clock_mono_ns(), sent);
	}
	b->r->push_seconds = (double)(clock_mono_ns() - b->t_first_push) / 1e9;
	return 0;
}

static int wait_done(struct bench *b, char *err, size_t errlen)
{
	const uint64_t n = b->c->tasks;
	for (;;) {
		uint64_t now = clock_mono_ns();
		if (finished_total(b) >= n) {
			b->r->seconds = (double)(now - b->t_first_push) / 1e9;
			b->r->cpu_ns_per_task = (double)(all_cpu_ns(b->pid) - b->cpu0) / (double)n;
			return 0;
		}
		progress(b, now, n);
		if (now - b->last_change_ns > STALL_TIMEOUT_NS)
			return fail(err, errlen, "%llu of %llu tasks finished, none for %llu s",
				    (unsigned long long)b->last_done, (unsigned long long)n,
				    STALL_TIMEOUT_NS / 1000000000u);
		if (forqd_gone(b))
			return fail(err, errlen, "forqd exited with %llu of %llu tasks finished",
				    (unsigned long long)finished_total(b), (unsigned long long)n);
		sleep_ns(POLL_NS);
	}
}

static void read_figures(struct bench *b)
{
	struct bench_report *r = b->r;
	struct forq_hists h = {0};
	for (uint32_t k = 0; k < b->nq; k++) {
		struct forq_stats s;
		struct forq_hists one;
		forq_stats_read(b->qs[k], &s);
		forq_hists_read(b->qs[k], &one);
		r->done += s.done;
		r->failed += s.failed;
		r->dead += s.dead;
		r->shm_bytes += forq_admin_size(b->qs[k]);
		for (int i = 0; i < FORQ_HIST_BUCKETS; i++) {
			h.wait[i] += one.wait[i];
			h.run[i] += one.run[i];
		}
		h.full_waits += one.full_waits;
	}
	r->full_waits = h.full_waits;
	r->wait_p50_us = bench_hist_quantile(h.wait, 0.50) / 1e3;
	r->wait_p99_us = bench_hist_quantile(h.wait, 0.99) / 1e3;
	r->wait_p999_us = bench_hist_quantile(h.wait, 0.999) / 1e3;
	r->run_p50_us = bench_hist_quantile(h.run, 0.50) / 1e3;
	r->run_p99_us = bench_hist_quantile(h.run, 0.99) / 1e3;
	struct tree t;
	read_tree(b->pid, &t);
	for (int i = 0; i < t.n; i++) {
		r->peak_rss_kib += vm_hwm_kib(t.pid[i]);
		r->private_kib += private_kib(t.pid[i]);
	}
	r->self_rss_kib = vm_hwm_kib(getpid());
	r->durable_p50_us = dlat_quantile_us(&b->dl, 0.50);
	r->durable_p99_us = dlat_quantile_us(&b->dl, 0.99);
}

int bench_run(const struct bench_config *c, struct bench_report *r, char *err, size_t errlen)
{
	struct bench b = {.c = c, .r = r, .nq = c->queues ? c->queues : 1};
	int ret;
	memset(r, 0, sizeof *r);
	r->tasks = c->tasks;
	snprintf(b.shm_name, sizeof b.shm_name, "/forq-bench-%d", (int)getpid());
	if (b.nq > BENCH_QUEUES_MAX)
		return fail(err, errlen, "--queues %u: at most %d", b.nq, BENCH_QUEUES_MAX);
	if (b.nq > 1 && write_config(&b, err, errlen))
		return BENCH_ERR_START;

	b.payloads = malloc((size_t)c->batch * c->payload_bytes);
	b.msgs = malloc(c->batch * sizeof *b.msgs);
	if (!b.payloads || !b.msgs) {
		ret = fail(err, errlen, "out of memory");
		goto out;
	}
	build_payloads(&b);
	if (c->journal && dlat_init(&b.dl, c->tasks / c->batch + 1 < DLAT_BATCHES
						   ? (size_t)(c->tasks / c->batch + 1) : DLAT_BATCHES)) {
		ret = fail(err, errlen, "out of memory");
		goto out;
	}
	if (find_forqd(c->forqd, r->forqd_path, sizeof r->forqd_path, err, errlen) ||
	    spawn_forqd(&b, err, errlen)) {
		ret = BENCH_ERR_START;
		goto out;
	}
	if ((ret = wait_ready(&b, err, errlen)) || (ret = push_all(&b, err, errlen)) ||
	    (ret = wait_done(&b, err, errlen)))
		goto out_stop;
	read_figures(&b);
	r->tasks_per_s = r->seconds > 0 ? (double)c->tasks / r->seconds : 0;

out_stop:
	close_queues(&b);
	if (stop_forqd(&b) && !ret)
		ret = fail(err, errlen, "forqd did not exit within %llu s of SIGTERM (killed)",
			   STOP_TIMEOUT_NS / 1000000000u);
	if (!ret && !(WIFEXITED(b.status) && WEXITSTATUS(b.status) == 0)) {
		char st[64];
		describe_status(b.status, st, sizeof st);
		ret = fail(err, errlen, "forqd exited with %s after SIGTERM (want exit status 0)", st);
	}
	for (uint32_t k = 0; k < b.nq; k++) {
		char name[96], qn[16], path[112];
		snprintf(qn, sizeof qn, "q%u", k);
		forq_queue_shm_name(b.shm_name, b.nq > 1 ? qn : FORQ_QUEUE_DEFAULT, name, sizeof name);
		snprintf(path, sizeof path, "/dev/shm%s", name);
		if (access(path, F_OK) == 0) {
			if (!ret)
				ret = fail(err, errlen, "forqd left its queue %s behind (removed now)",
					   path);
			forq_unlink(name);
		}
	}
out:
	if (b.pid) {
		/* Never leave it behind, even on an early failure. */
		close_queues(&b);
		stop_forqd(&b);
	}
	if (b.conf[0])
		unlink(b.conf);
	free(b.payloads);
	free(b.msgs);
	dlat_free(&b.dl);
	return ret;
}
