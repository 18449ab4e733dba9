/* redis_client.c — Redis lists as a baseline, the other server a user would
 * otherwise pick: the parent LPUSHes N 8-byte values onto a key of its own,
 * pipelining 64 commands per write; C consumer processes each hold a
 * connection and BRPOP one value per round trip. With --batch B > 1 a
 * consumer first asks "RPOP key B" (Redis >= 6.2) and only blocks in BRPOP
 * when the list is empty. The stream ends with one 0 per consumer, pushed
 * last, so popped last.
 *
 * Needs a running server: compare.sh starts one on 127.0.0.1 and a free port,
 * without persistence. Speaks RESP2 directly. */
#include "common.h"
#include "netio.h"

#define DESIGN "redis"
#define PIPELINE 64
#define BATCH_MAX 1024

struct run {
	const struct bench_opts *o;
	char key[64];
	struct bench_tally *tally;
};

/* Appends one command as a RESP array of bulk strings. */
static char *resp_cmd(char *p, int argc, const char **argv, const size_t *len)
{
	p += sprintf(p, "*%d\r\n", argc);
	for (int i = 0; i < argc; i++) {
		p += sprintf(p, "$%zu\r\n", len[i]);
		memcpy(p, argv[i], len[i]);
		p += len[i];
		memcpy(p, "\r\n", 2);
		p += 2;
	}
	return p;
}

static int send_cmd(int fd, int argc, const char **argv, const size_t *len)
{
	char out[512];
	size_t need = 16;
	for (int i = 0; i < argc; i++)
		need += len[i] + 24;
	if (need > sizeof out)
		return -ENOBUFS;
	char *end = resp_cmd(out, argc, argv, len);
	return bench_write_all(fd, out, (size_t)(end - out));
}

/* Reads one bulk string ("$n" then n bytes) into v, which holds 8 bytes;
 * other sizes are read and rejected. Returns 1, 0 for a nil, or -errno. */
static int read_bulk(struct net_rd *rd, uint64_t *v, bool want_value)
{
	char *line = "";
	int r = net_line(rd, &line);
	if (r < 0)
		return r;
	if (line[0] != '$')
		goto proto;
	long n = strtol(line + 1, NULL, 10);
	if (n < 0)
		return 0;
	if (want_value && n != sizeof *v)
		goto proto;
	if ((r = net_bytes(rd, want_value ? v : NULL, (size_t)n)) || (r = net_bytes(rd, NULL, 2)))
		return r;
	return 1;
proto:
	fprintf(stderr, "redis: unexpected \"%s\"\n", line);
	return -EPROTO;
}

/* One round trip: BRPOP key 0 → *2 (key, value). */
static int brpop(struct run *r, struct net_rd *rd, uint64_t *v)
{
	const char *argv[] = {"BRPOP", r->key, "0"};
	size_t len[] = {5, strlen(r->key), 1};
	char *line = "";
	int err = send_cmd(rd->fd, 3, argv, len);
	if (!err)
		err = net_line(rd, &line);
	if (err < 0)
		return err;
	if (strcmp(line, "*2")) {
		fprintf(stderr, "redis: BRPOP: \"%s\"\n", line);
		return -EPROTO;
	}
	if ((err = read_bulk(rd, NULL, false)) < 0 || (err = read_bulk(rd, v, true)) < 0)
		return err;
	return err == 1 ? 0 : -EPROTO;
}

/* One round trip: RPOP key B → *n values, or *-1 when the list is empty.
 * Returns how many values were stored in v. */
static int rpop_count(struct run *r, struct net_rd *rd, uint64_t *v)
{
	char count[16];
	snprintf(count, sizeof count, "%d", r->o->batch);
	const char *argv[] = {"RPOP", r->key, count};
	size_t len[] = {4, strlen(r->key), strlen(count)};
	char *line = "";
	int err = send_cmd(rd->fd, 3, argv, len);
	if (!err)
		err = net_line(rd, &line);
	if (err < 0)
		return err;
	if (line[0] != '*') {
		fprintf(stderr, "redis: RPOP: \"%s\"\n", line);
		return -EPROTO;
	}
	long n = strtol(line + 1, NULL, 10);
	if (n > r->o->batch)
		return -EPROTO;
	for (long i = 0; i < n; i++)
		if ((err = read_bulk(rd, &v[i], true)) != 1)
			return err < 0 ? err : -EPROTO;
	return n < 0 ? 0 : (int)n;
}

static int consume(int idx, void *arg)
{
	struct run *r = arg;
	struct bench_tally *t = &r->tally[idx];
	static struct net_rd rd;
	uint64_t v[BATCH_MAX];
	int err = 0;

	rd.fd = net_connect(r->o->host, r->o->port, 3000);
	if (rd.fd < 0) {
		fprintf(stderr, "consumer %d: connect: %s\n", idx, strerror(-rd.fd));
		return 2;
	}
	for (;;) {
		int n = 0;
		if (r->o->batch > 1 && (n = rpop_count(r, &rd, v)) < 0) {
			err = n;
			break;
		}
		if (n == 0) {
			if ((err = brpop(r, &rd, v)))
				break;
			n = 1;
		}
		/* the end markers come last: a 0 ends this consumer; one taken
		 * in the same batch as another 0 goes back for its owner */
		int zeros = 0;
		for (int i = 0; i < n; i++) {
			if (v[i])
				bench_take(t, v[i], r->o->tasks);
			else
				zeros++;
		}
		for (int i = 1; i < zeros && !err; i++) {
			const char *argv[] = {"RPUSH", r->key, (const char *)&(uint64_t){0}};
			size_t len[] = {5, strlen(r->key), 8};
			char *line;
			if (!(err = send_cmd(rd.fd, 3, argv, len)))
				err = net_line(&rd, &line) < 0 ? -EPIPE : 0;
		}
		if (zeros)
			break;
	}
	close(rd.fd);
	if (err)
		fprintf(stderr, "consumer %d: %s\n", idx, strerror(-err));
	return err ? 2 : 0;
}

/* LPUSHes values [from, from + n) (0s where from is 0) in one write, then
 * reads the n integer replies. */
static int push_batch(struct run *r, struct net_rd *rd, uint64_t from, int n)
{
	static char out[PIPELINE * 128];
	char *p = out, *line;
	size_t klen = strlen(r->key);
	int err = 0;
	for (int i = 0; i < n; i++) {
		uint64_t v = from ? from + (uint64_t)i : 0;
		const char *argv[] = {"LPUSH", r->key, (const char *)&v};
		size_t len[] = {5, klen, sizeof v};
		p = resp_cmd(p, 3, argv, len);
	}
	err = bench_write_all(rd->fd, out, (size_t)(p - out));
	for (int i = 0; i < n && !err; i++) {
		err = net_line(rd, &line);
		if (err >= 0 && line[0] != ':') {
			fprintf(stderr, "redis: LPUSH: \"%s\"\n", line);
			err = -EPROTO;
		}
		err = err < 0 ? err : 0;
	}
	return err;
}

int main(int argc, char **argv)
{
	struct bench_opts o = {.tasks = 200000, .consumers = 1, .batch = 1, .timeout = 120,
			       .host = "127.0.0.1"};
	struct run r = {.o = &o};
	static struct net_rd rd = {.fd = -1};
	int rc = 2, err;

	if (bench_parse(argc, argv, BENCH_F_BATCH | BENCH_F_SERVER, &o))
		return 2;
	if (net_bench_open(argv[0], &o, BATCH_MAX, &rd))
		goto end;
	snprintf(r.key, sizeof r.key, "forq-bench:%d", (int)getpid());
	if (bench_start(DESIGN, &o, &r.tally, consume, &r))
		goto end;

	double t0 = bench_now();
	err = 0;
	for (uint64_t v = 1; v <= o.tasks && !err; v += PIPELINE) {
		uint64_t left = o.tasks - v + 1;
		err = push_batch(&r, &rd, v, left < PIPELINE ? (int)left : PIPELINE);
	}
	for (int i = 0; i < o.consumers && !err; i++)
		err = push_batch(&r, &rd, 0, 1); /* one end marker each */
	if (err)
		fprintf(stderr, "%s: LPUSH: %s\n", argv[0], strerror(-err));
	bool ok = bench_wait() && !err;
	double t1 = bench_now();

	ok = bench_check(r.tally, o.consumers, o.tasks) && ok;
	rc = bench_report(DESIGN, &o, t1 - t0, ok);
	const char *del[] = {"DEL", r.key};
	size_t dlen[] = {3, strlen(r.key)};
	send_cmd(rd.fd, 2, del, dlen); /* the list is empty now; tidy anyway */
end:
	if (rd.fd >= 0)
		close(rd.fd);
	return rc;
}
