/* beanstalk_client.c — beanstalkd as a baseline, the work queue a user would
 * otherwise pick: the parent puts N jobs (8-byte bodies) on a tube of its
 * own, pipelining --batch puts per write; C consumer processes each hold a
 * connection and loop reserve → delete, sending each delete together with
 * the next reserve (one round trip per job, as a careful client would). The
 * stream ends with one job holding 0 per consumer; beanstalkd hands out
 * jobs of equal priority in put order, so they come after all tasks.
 *
 * Needs a running server: compare.sh starts one on 127.0.0.1 and a free port. */
#include "common.h"
#include "netio.h"

#define DESIGN "beanstalkd"
#define BATCH_MAX 1024

/* The wire words we send and expect (beanstalkd doc/protocol.txt). */
#define CMD_PUT "put 0 0 300 8\r\n" /* pri 0, no delay, ttr 300 s, 8 bytes */
#define CMD_RESERVE "reserve\r\n"
#define MSG_INSERTED "INSERTED "
#define MSG_RESERVED "RESERVED "
#define MSG_DELETED "DELETED"
#define MSG_WATCHING "WATCHING "
#define MSG_USING "USING "
#define CONSTSTRLEN(s) (sizeof(s) - 1)
#define PUT_LEN (CONSTSTRLEN(CMD_PUT) + 8 + 2)

struct run {
	const struct bench_opts *o;
	char tube[64];
	struct bench_tally *tally;
};

static bool starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* Sends one command and checks that the reply line starts with `want`. */
static int command(struct net_rd *rd, const char *cmd, const char *want)
{
	char *line;
	int r = bench_write_all(rd->fd, cmd, strlen(cmd));
	if (r)
		return r;
	r = net_line(rd, &line);
	if (r < 0)
		return r;
	if (!starts(line, want)) {
		fprintf(stderr, "beanstalkd: sent %.*s, got \"%s\"\n", (int)strcspn(cmd, "\r"), cmd,
			line);
		return -EPROTO;
	}
	return 0;
}

static int consume(int idx, void *arg)
{
	struct run *r = arg;
	struct bench_tally *t = &r->tally[idx];
	static struct net_rd rd;
	char cmd[160], *line;
	int err;

	rd.fd = net_connect(r->o->host, r->o->port, 3000);
	if (rd.fd < 0) {
		fprintf(stderr, "consumer %d: connect: %s\n", idx, strerror(-rd.fd));
		return 2;
	}
	snprintf(cmd, sizeof cmd, "watch %s\r\n", r->tube);
	if ((err = command(&rd, cmd, MSG_WATCHING)) || (err = command(&rd, "ignore default\r\n",
								     MSG_WATCHING)))
		goto fail;
	if ((err = bench_write_all(rd.fd, CMD_RESERVE, CONSTSTRLEN(CMD_RESERVE))))
		goto fail;
	for (;;) {
		unsigned long long id;
		unsigned bytes;
		uint64_t v;
		if ((err = net_line(&rd, &line)) < 0)
			goto fail;
		if (sscanf(line, MSG_RESERVED "%llu %u", &id, &bytes) != 2 || bytes != sizeof v) {
			fprintf(stderr, "consumer %d: unexpected \"%s\"\n", idx, line);
			return 2;
		}
		if ((err = net_bytes(&rd, &v, sizeof v)) || (err = net_bytes(&rd, NULL, 2)))
			goto fail;
		/* delete this job and ask for the next in one write */
		int n = snprintf(cmd, sizeof cmd, "delete %llu\r\n%s", id, v ? CMD_RESERVE : "");
		if ((err = bench_write_all(rd.fd, cmd, (size_t)n)))
			goto fail;
		if ((err = net_line(&rd, &line)) < 0)
			goto fail;
		if (!starts(line, MSG_DELETED)) {
			fprintf(stderr, "consumer %d: delete: \"%s\"\n", idx, line);
			return 2;
		}
		if (v == 0)
			break;
		bench_take(t, v, r->o->tasks);
	}
	close(rd.fd);
	return 0;
fail:
	fprintf(stderr, "consumer %d: %s\n", idx, strerror(-err));
	return 2;
}

/* Puts values [from, from + n) (0s where from is 0) in one write, then reads
 * the n replies. */
static int put_batch(struct net_rd *rd, uint64_t from, int n)
{
	static char out[BATCH_MAX * PUT_LEN];
	char *p = out, *line;
	for (int i = 0; i < n; i++) {
		uint64_t v = from ? from + (uint64_t)i : 0;
		memcpy(p, CMD_PUT, CONSTSTRLEN(CMD_PUT));
		p += CONSTSTRLEN(CMD_PUT);
		memcpy(p, &v, sizeof v);
		p += sizeof v;
		memcpy(p, "\r\n", 2);
		p += 2;
	}
	int err = bench_write_all(rd->fd, out, (size_t)(p - out));
	for (int i = 0; i < n && !err; i++) {
		err = net_line(rd, &line);
		if (err >= 0 && !starts(line, MSG_INSERTED)) {
			fprintf(stderr, "beanstalkd: put: \"%s\"\n", line);
			err = -EPROTO;
		}
		err = err < 0 ? err : 0;
	}
	return err;
}

int main(int argc, char **argv)
{
	struct bench_opts o = {.tasks = 200000, .consumers = 1, .batch = 64, .timeout = 120,
			       .host = "127.0.0.1"};
	struct run r = {.o = &o};
	static struct net_rd rd = {.fd = -1};
	char cmd[96];
	int rc = 2, err;

	if (bench_parse(argc, argv, BENCH_F_BATCH | BENCH_F_SERVER, &o))
		return 2;
	if (net_bench_open(argv[0], &o, BATCH_MAX, &rd))
		goto end;
	snprintf(r.tube, sizeof r.tube, "forq-bench-%d", (int)getpid());
	snprintf(cmd, sizeof cmd, "use %s\r\n", r.tube);
	if ((err = command(&rd, cmd, MSG_USING))) {
		fprintf(stderr, "%s: use: %s\n", argv[0], strerror(-err));
		goto end;
	}
	if (bench_start(DESIGN, &o, &r.tally, consume, &r))
		goto end;

	double t0 = bench_now();
	err = 0;
	for (uint64_t v = 1; v <= o.tasks && !err; v += (uint64_t)o.batch) {
		uint64_t left = o.tasks - v + 1;
		err = put_batch(&rd, v, left < (uint64_t)o.batch ? (int)left : o.batch);
	}
	if (!err)
		err = put_batch(&rd, 0, o.consumers); /* one end marker each */
	if (err)
		fprintf(stderr, "%s: put: %s\n", argv[0], strerror(-err));
	bool ok = bench_wait() && !err;
	double t1 = bench_now();

	ok = bench_check(r.tally, o.consumers, o.tasks) && ok;
	rc = bench_report(DESIGN, &o, t1 - t0, ok);
end:
	if (rd.fd >= 0)
		close(rd.fd);
	return rc;
}
