/* pipe.c — one pipe as a baseline: the producer write()s B tasks (8*B bytes)
 * at a time, consumers read() up to 8*B bytes at a time; EOF ends the stream.
 *
 * Several readers stay correct because every write is at most PIPE_BUF bytes
 * and so atomic, and every write is a whole number of 8-byte records: the
 * pipe only ever holds whole records and a read returns whole records. A read
 * that is not a multiple of 8 would be a torn record and fails the run. */
#include "common.h"

#include <limits.h>

#define DESIGN "pipe"
#define REC ((int)sizeof(uint64_t))

struct run {
	int rfd, wfd;
	struct bench_tally *tally;
	uint64_t tasks;
	int batch;
};

static int consume(int idx, void *arg)
{
	struct run *r = arg;
	struct bench_tally *t = &r->tally[idx];
	uint64_t v[PIPE_BUF / REC];
	close(r->wfd); /* or EOF never comes */
	for (;;) {
		ssize_t n = read(r->rfd, v, (size_t)r->batch * REC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			return 0;
		if (n < 0)
			return 2;
		if (n % REC)
			t->bad++;
		for (ssize_t i = 0; i < n / REC; i++)
			bench_take(t, v[i], r->tasks);
	}
}

int main(int argc, char **argv)
{
	struct bench_opts o = {.tasks = 2000000, .consumers = 1, .batch = 1, .timeout = 120};
	struct run r = {.rfd = -1, .wfd = -1};
	uint64_t v[PIPE_BUF / REC];
	int fds[2], rc = 2;

	if (bench_parse(argc, argv, BENCH_F_BATCH, &o))
		return 2;
	if (o.batch > PIPE_BUF / REC) {
		fprintf(stderr, "%s: --batch %d: a write must stay <= PIPE_BUF (%d bytes, %d tasks)"
				" to be atomic\n",
			argv[0], o.batch, PIPE_BUF, PIPE_BUF / REC);
		return 2;
	}
	r.tasks = o.tasks;
	r.batch = o.batch;
	if (pipe(fds) < 0) {
		perror("pipe");
		goto end;
	}
	r.rfd = fds[0];
	r.wfd = fds[1];
	signal(SIGPIPE, SIG_IGN); /* a dead reader shows as EPIPE */
	if (bench_start(DESIGN, &o, &r.tally, consume, &r))
		goto end;
	close(r.rfd);
	r.rfd = -1;

	double t0 = bench_now();
	uint64_t next = 1;
	int err = 0;
	while (next <= o.tasks && !err) {
		int n = 0;
		while (n < o.batch && next <= o.tasks)
			v[n++] = next++;
		err = bench_write_all(r.wfd, v, (size_t)n * REC); /* <= PIPE_BUF: never partial */
	}
	if (err)
		fprintf(stderr, "write: %s\n", strerror(-err));
	close(r.wfd);
	r.wfd = -1;
	bool ok = bench_wait() && !err;
	double t1 = bench_now();

	ok = bench_check(r.tally, o.consumers, o.tasks) && ok;
	rc = bench_report(DESIGN, &o, t1 - t0, ok);
end:
	if (r.rfd >= 0)
		close(r.rfd);
	if (r.wfd >= 0)
		close(r.wfd);
	return rc;
}
