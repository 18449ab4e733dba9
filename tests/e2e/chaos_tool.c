/* chaos_tool.c — the chaos tests' helper (tests/e2e/test_chaos.sh):
 *
 *   chaos_tool push NAME COUNT ACKFILE [FMT [BATCH [PAUSE_US]]]
 *       pushes COUNT tasks (payload FMT with %llu the task's number, default
 *       "%llu+1"; BATCH tasks a push, default 64, then a pause of PAUSE_US
 *       microseconds), waiting while the queue is full or forqd restarts; after
 *       each accepted batch appends "FIRST LAST\n" (its ids) to ACKFILE with
 *       one write(2), so that a producer killed at any point leaves exactly
 *       the batches it was told were accepted. Exit 0, or 1 on a lasting error.
 *   chaos_tool kill PID INTERVAL_MS SEED
 *       every INTERVAL_MS SIGKILLs one child of PID, picked at random, until
 *       PID is gone or SIGTERM; prints "kills=N".
 *   chaos_tool check NAME
 *       prints the queue's figures and exits 0 only if nothing is pending,
 *       in progress or waiting, every ring is empty and no process record
 *       belongs to a dead process (no slot leaked).
 *   chaos_tool monitor NAME OUTFILE
 *       samples the queue every 5 ms until SIGTERM, then writes
 *       "max_stall_ms=N stall_began=HH:MM:SS.mmmZ samples=N" to OUTFILE: the
 *       longest time work was outstanding while no task finished, and when
 *       it began (UTC, as forqd's log).
 *
 * Links libforq (and reads admin.h for the process records).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "forq_admin.h"
#include "clock.h"
#include "forq.h"
#include "internal.h" /* a test tool: reads core's private layout */

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Opens the queue, retrying while forqd is away (restarting) for up to 60 s. */
static struct forq *open_retry(const char *name)
{
	char err[256];
	struct forq *q = NULL;
	for (int i = 0; i < 6000 && !stop; i++) {
		if (forq_open(&q, name, err, sizeof err) == 0)
			return q;
		sleep_ms(10);
	}
	fprintf(stderr, "chaos_tool: %s\n", err);
	return NULL;
}

static int cmd_push(const char *name, unsigned long long count, const char *ack, const char *fmt,
		    size_t batch, long pause_us)
{
	int fd = open(ack, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror(ack);
		return 1;
	}
	struct forq *q = open_retry(name);
	if (!q)
		return 1;
	static char text[FORQ_PUSH_BATCH_MAX][64];
	struct forq_msg m[FORQ_PUSH_BATCH_MAX];
	uint64_t ids[FORQ_PUSH_BATCH_MAX];
	unsigned long long done = 0;
	uint64_t give_up = clock_mono_ns() + 120ull * 1000000000u;
	while (done < count) {
		size_t k = 0;
		for (; k < batch && done + k < count; k++) {
			int len = snprintf(text[k], sizeof text[k], fmt, done + k + 1);
			m[k] = (struct forq_msg){text[k], (uint32_t)len};
		}
		int r = forq_push_batch(q, FORQ_NORMAL, m, k, 200, ids);
		if (r == -EAGAIN || r == -ESHUTDOWN) {
			/* Full, or forqd away: wait, but not forever. */
			if (clock_mono_ns() > give_up) {
				fprintf(stderr, "chaos_tool: queue full for 120 s\n");
				return 1;
			}
			if (r == -ESHUTDOWN)
				sleep_ms(10);
			continue;
		}
		if (r) {
			fprintf(stderr, "chaos_tool: push: %s\n", strerror(-r));
			return 1;
		}
		char line[64];
		int len = snprintf(line, sizeof line, "%llu %llu\n", (unsigned long long)ids[0],
				   (unsigned long long)ids[k - 1]);
		if (write(fd, line, (size_t)len) != len) {
			perror("write");
			return 1;
		}
		done += k;
		give_up = clock_mono_ns() + 120ull * 1000000000u;
		if (pause_us > 0) {
			struct timespec ts = {pause_us / 1000000, (pause_us % 1000000) * 1000};
			nanosleep(&ts, NULL);
		}
	}
	forq_close(q);
	close(fd);
	return 0;
}

static int children(int pid, int *out, int max)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	int k = 0;
	for (char *p = buf, *end; k < max; p = end) {
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		out[k++] = (int)v;
	}
	return k;
}

static int cmd_kill(int pid, long interval_ms, unsigned seed)
{
	unsigned long kills = 0;
	srand(seed);
	uint64_t next = clock_mono_ns();
	while (!stop) {
		int kids[256];
		int n = children(pid, kids, 256);
		if (n < 0)
			break; /* PID is gone */
		if (n > 0 && kill(kids[rand() % n], SIGKILL) == 0)
			kills++;
		next += (uint64_t)interval_ms * 1000000u;
		uint64_t now = clock_mono_ns();
		if (next > now)
			sleep_ms((long)((next - now) / 1000000u));
		else
			next = now;
	}
	printf("kills=%lu\n", kills);
	return 0;
}

static uint64_t outstanding(const struct forq_stats *s)
{
	return s->pending[0] + s->pending[1] + s->pending[2] + s->in_progress + s->retry_waiting;
}

static int cmd_check(const char *name)
{
	char err[256];
	struct forq *q;
	if (forq_open(&q, name, err, sizeof err)) {
		fprintf(stderr, "chaos_tool: %s\n", err);
		return 2;
	}
	struct forq_stats s;
	forq_stats_read(q, &s);
	struct forq_hdr *h = q->h; /* a test tool: reads core's private layout */
	uint64_t ring_bytes = 0;
	for (int i = 0; i < FORQ_NRINGS; i++)
		ring_bytes += atomic_load(&h->rings[i].tail) - atomic_load(&h->rings[i].head);
	unsigned dead_records = 0, records = 0;
	for (uint32_t i = 0; i < h->max_procs; i++) {
		const struct forq_proc *p = forq__proc(q, i);
		if (atomic_load(&p->state) != FORQ_PROC_ACTIVE)
			continue;
		records++;
		if (p->pid > 0 && kill(p->pid, 0) < 0 && errno == ESRCH)
			dead_records++;
	}
	printf("pending=%llu in_progress=%llu retry_waiting=%llu ring_bytes=%llu "
	       "dead_records=%u records=%u enqueued=%llu done=%llu failed=%llu dead=%llu "
	       "crashes=%llu requeued=%llu dead_letters=%llu\n",
	       (unsigned long long)(s.pending[0] + s.pending[1] + s.pending[2]),
	       (unsigned long long)s.in_progress, (unsigned long long)s.retry_waiting,
	       (unsigned long long)ring_bytes, dead_records, records,
	       (unsigned long long)s.enqueued, (unsigned long long)s.done,
	       (unsigned long long)s.failed, (unsigned long long)s.dead,
	       (unsigned long long)s.crashes, (unsigned long long)s.requeued,
	       (unsigned long long)s.dead_letters);
	int leaked = outstanding(&s) || ring_bytes || dead_records;
	forq_close(q);
	return leaked;
}

static int cmd_monitor(const char *name, const char *outfile)
{
	struct forq *q = open_retry(name);
	if (!q)
		return 1;
	uint64_t last_fin = 0, since = 0, max_stall = 0, samples = 0;
	int64_t stall_at = 0; /* realtime ns when the longest stall began */
	while (!stop) {
		struct forq_stats s;
		forq_stats_read(q, &s);
		uint64_t now = clock_mono_ns(), fin = s.done + s.failed + s.dead;
		if (fin != last_fin || !outstanding(&s)) {
			last_fin = fin;
			since = now;
		} else if (since && now - since > max_stall) {
			max_stall = now - since;
			stall_at = clock_real_ns() - (int64_t)max_stall;
		}
		if (!since)
			since = now;
		samples++;
		sleep_ms(5);
	}
	FILE *f = fopen(outfile, "w");
	if (!f)
		return 1;
	char when[32] = "-";
	time_t secs = (time_t)(stall_at / 1000000000);
	struct tm tm;
	if (stall_at && gmtime_r(&secs, &tm))
		snprintf(when, sizeof when, "%02d:%02d:%02d.%03dZ", tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int)(stall_at / 1000000 % 1000));
	fprintf(f, "max_stall_ms=%llu stall_began=%s samples=%llu\n",
		(unsigned long long)(max_stall / 1000000u), when, (unsigned long long)samples);
	fclose(f);
	forq_close(q);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (argc >= 5 && strcmp(argv[1], "push") == 0) {
		unsigned long b = argc > 6 ? strtoul(argv[6], NULL, 10) : 64;
		return cmd_push(argv[2], strtoull(argv[3], NULL, 10), argv[4],
				argc > 5 ? argv[5] : "%llu+1", b < 1 ? 1 : b > FORQ_PUSH_BATCH_MAX ? FORQ_PUSH_BATCH_MAX : b,
				argc > 7 ? atol(argv[7]) : 0);
	}
	if (argc == 5 && strcmp(argv[1], "kill") == 0)
		return cmd_kill(atoi(argv[2]), atol(argv[3]), (unsigned)strtoul(argv[4], NULL, 10));
	if (argc == 3 && strcmp(argv[1], "check") == 0)
		return cmd_check(argv[2]);
	if (argc == 4 && strcmp(argv[1], "monitor") == 0)
		return cmd_monitor(argv[2], argv[3]);
	fprintf(stderr, "usage: chaos_tool push NAME COUNT ACKFILE [FMT [BATCH [PAUSE_US]]] |"
			" kill PID MS SEED |"
			" check NAME | monitor NAME OUTFILE\n");
	return 2;
}
