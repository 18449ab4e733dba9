/* mq.c — a POSIX message queue as a baseline: one 8-byte message per task,
 * the producer ends the stream with one 0 per consumer. The queue holds
 * --depth messages, by default /proc/sys/fs/mqueue/msg_max (10 unless the
 * admin raised it), which is what an unprivileged user gets. The name is
 * unlinked before any fork: the descriptors keep the queue alive. */
#include "common.h"

#include <fcntl.h>
#include <mqueue.h>
#include <sys/stat.h>

#define DESIGN "posix-mq"

struct run {
	mqd_t q;
	struct bench_tally *tally;
	uint64_t tasks;
};

static long msg_max(void)
{
	long v = 10; /* the kernel's default */
	FILE *f = fopen("/proc/sys/fs/mqueue/msg_max", "r");
	if (f) {
		if (fscanf(f, "%ld", &v) != 1 || v < 1)
			v = 10;
		fclose(f);
	}
	return v;
}

static int consume(int idx, void *arg)
{
	struct run *r = arg;
	struct bench_tally *t = &r->tally[idx];
	for (;;) {
		uint64_t v;
		ssize_t n = mq_receive(r->q, (char *)&v, sizeof v, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof v)
			return 2;
		if (v == 0)
			return 0;
		bench_take(t, v, r->tasks);
	}
}

static int put(mqd_t q, uint64_t v)
{
	int r;
	while ((r = mq_send(q, (const char *)&v, sizeof v, 0)) < 0 && errno == EINTR)
		;
	return r;
}

int main(int argc, char **argv)
{
	struct bench_opts o = {.tasks = 2000000, .consumers = 1, .timeout = 120};
	struct run r = {.q = (mqd_t)-1};
	char name[64];
	int rc = 2;

	if (bench_parse(argc, argv, BENCH_F_DEPTH, &o))
		return 2;
	if (!o.depth)
		o.depth = (int)msg_max();
	r.tasks = o.tasks;
	snprintf(name, sizeof name, "/forq-bench-mq-%d", (int)getpid());
	struct mq_attr attr = {.mq_maxmsg = o.depth, .mq_msgsize = sizeof(uint64_t)};
	r.q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
	if (r.q == (mqd_t)-1) {
		fprintf(stderr, "mq_open %s (depth %d): %s\n", name, o.depth, strerror(errno));
		goto end;
	}
	mq_unlink(name);
	if (bench_start(DESIGN, &o, &r.tally, consume, &r))
		goto end;

	double t0 = bench_now();
	bool ok = true;
	for (uint64_t v = 1; v <= o.tasks && ok; v++)
		ok = put(r.q, v) == 0;
	for (int i = 0; i < o.consumers && ok; i++)
		ok = put(r.q, 0) == 0;
	if (!ok)
		perror("mq_send"); /* the timeout reaps the consumers */
	ok = bench_wait() && ok;
	double t1 = bench_now();

	ok = bench_check(r.tally, o.consumers, o.tasks) && ok;
	rc = bench_report(DESIGN, &o, t1 - t0, ok);
end:
	if (r.q != (mqd_t)-1)
		mq_close(r.q);
	return rc;
}
