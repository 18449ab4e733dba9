/* tcp_client.c — a small client of forqd's TCP protocol for the end-to-end
 * tests (tests/e2e/test_remote_workers.sh, test_netns.sh). Standalone: it
 * speaks the wire format itself, so it checks the server, not our parser.
 *
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o tcp_client tests/e2e/tcp_client.c
 *
 *   tcp_client HOST:PORT raw [IDLE_MS]   send stdin, print the replies until the
 *                                        server closes or IDLE_MS of silence (500)
 *   tcp_client HOST:PORT put FILE        PUT each line of FILE (pipelined; a
 *                                        queue-full is sent again); prints "put N"
 *   tcp_client HOST:PORT hold MS         lease one task and stay silent MS ms,
 *                                        then RESULT it; prints "task ID" and
 *                                        "late: REPLY"
 *   tcp_client HOST:PORT garbage         bad requests get ERR on a connection
 *                                        that keeps working; 16 in a row hang up
 *   tcp_client HOST:PORT flood MIB       MIB MiB of random bytes: disconnected?
 *   tcp_client HOST:PORT many N          N connections wait in GET_TASK WAIT, a
 *                                        producer PUTs N tasks, each connection
 *                                        gets one and answers it, then EXIT
 *   tcp_client HOST:PORT stats           one STATS line
 * Exit status 0 when what it checks holds, 1 otherwise (with a message). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *addr_arg;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tcp_client: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int dial(void)
{
	char host[256];
	const char *colon = strrchr(addr_arg, ':');
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
	int fd = -1, one = 1;
	if (!colon || (size_t)(colon - addr_arg) >= sizeof host)
		return -1;
	memcpy(host, addr_arg, (size_t)(colon - addr_arg));
	host[colon - addr_arg] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &ai))
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_str(int fd, const char *s)
{
	return send_all(fd, s, strlen(s));
}

/* A buffered reader of one connection. */
struct rd {
	int fd;
	size_t len;
	char buf[1 << 16];
};

/* Reads more within timeout. Returns >0, 0 at EOF, -1 error or timeout. */
static int rd_fill(struct rd *r, int timeout_ms)
{
	struct pollfd p = {.fd = r->fd, .events = POLLIN};
	if (r->len == sizeof r->buf)
		return -1;
	if (poll(&p, 1, timeout_ms) <= 0)
		return -1;
	ssize_t n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
	if (n < 0)
		return errno == ECONNRESET ? 0 : -1;
	r->len += (size_t)n;
	return n > 0;
}

/* A whole line already buffered: copied to out without "\r\n". */
static int rd_take_line(struct rd *r, char *out, size_t cap)
{
	char *nl = memchr(r->buf, '\n', r->len);
	if (!nl)
		return 0;
	size_t n = (size_t)(nl - r->buf), used = n + 1;
	if (n && r->buf[n - 1] == '\r')
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, r->buf, n);
	out[n] = '\0';
	memmove(r->buf, r->buf + used, r->len - used);
	r->len -= used;
	return 1;
}

/* Next line within timeout_ms. Returns 1, 0 at EOF, -1 timeout/error. */
static int rd_line(struct rd *r, char *out, size_t cap, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (!rd_take_line(r, out, cap)) {
		uint64_t now = now_ms();
		int rc = rd_fill(r, now >= end ? 0 : (int)(end - now));
		if (rc <= 0)
			return rc;
	}
	return 1;
}

/* After a TASK header: its payload and "\r\n". */
static int rd_payload(struct rd *r, size_t len, char *out, size_t cap, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (r->len < len + 2) {
		uint64_t now = now_ms();
		if (rd_fill(r, now >= end ? 0 : (int)(end - now)) <= 0)
			return -1;
	}
	size_t n = len < cap - 1 ? len : cap - 1;
	memcpy(out, r->buf, n);
	out[n] = '\0';
	memmove(r->buf, r->buf + len + 2, r->len - len - 2);
	r->len -= len + 2;
	return 1;
}

static int cmd_raw(int argc, char **argv)
{
	int idle = argc > 0 ? atoi(argv[0]) : 500;
	char in[1 << 16];
	size_t n;
	int fd = dial();
	if (fd < 0)
		return fail("cannot connect to %s", addr_arg);
	while ((n = fread(in, 1, sizeof in, stdin)) > 0)
		if (send_all(fd, in, n))
			break;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, idle) <= 0)
			break;
		ssize_t r = recv(fd, in, sizeof in, 0);
		if (r <= 0) {
			printf("[closed]\n");
			break;
		}
		fwrite(in, 1, (size_t)r, stdout);
	}
	close(fd);
	return 0;
}

static int cmd_stats(void)
{
	struct rd *r = calloc(1, sizeof *r);
	char line[4096];
	if (!r || (r->fd = dial()) < 0)
		return fail("cannot connect to %s", addr_arg);
	if (send_str(r->fd, "STATS\r\n") || rd_line(r, line, sizeof line, 5000) != 1)
		return fail("no STATS reply");
	printf("%s\n", line);
	close(r->fd);
	free(r);
	return 0;
}

/* PUT every line of a file, keeping up to WINDOW unanswered. */
static int cmd_put(int argc, char **argv)
{
	enum { WINDOW = 512 };
	FILE *f = argc > 0 ? fopen(argv[0], "r") : NULL;
	struct rd *r = calloc(1, sizeof *r);
	char **lines = NULL, line[4096], req[4200];
	size_t nlines = 0, cap = 0, next = 0, done = 0, fulls = 0;
	size_t fifo[WINDOW], head = 0, inflight = 0;
	if (!f || !r)
		return fail("put: cannot read %s", argc > 0 ? argv[0] : "(no file)");
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (nlines == cap) {
			cap = cap ? cap * 2 : 1024;
			lines = realloc(lines, cap * sizeof *lines);
		}
		lines[nlines++] = strdup(line);
	}
	fclose(f);
	if ((r->fd = dial()) < 0)
		return fail("cannot connect to %s", addr_arg);
	/* Lines to send again after a queue-full, oldest first. */
	size_t *again = malloc((nlines + 1) * sizeof *again), nagain = 0, again_at = 0;
	while (done < nlines) {
		while (inflight < WINDOW && (again_at < nagain || next < nlines)) {
			size_t i = again_at < nagain ? again[again_at++] : next++;
			int k = snprintf(req, sizeof req, "PUT %zu\r\n%s\r\n", strlen(lines[i]), lines[i]);
			if (send_all(r->fd, req, (size_t)k))
				return fail("put: send failed");
			fifo[(head + inflight) % WINDOW] = i;
			inflight++;
		}
		if (rd_line(r, line, sizeof line, 10000) != 1)
			return fail("put: no reply after %zu of %zu", done, nlines);
		size_t i = fifo[head];
		head = (head + 1) % WINDOW;
		inflight--;
		if (!strncmp(line, "OK ", 3)) {
			done++;
		} else if (!strcmp(line, "ERR queue-full")) {
			if (again_at == nagain)
				again_at = nagain = 0;
			again[nagain++] = i;
			if (++fulls % 64 == 0)
				usleep(1000);
		} else {
			return fail("put: line %zu: unexpected reply \"%s\"", i + 1, line);
		}
	}
	send_str(r->fd, "EXIT\r\n");
	rd_line(r, line, sizeof line, 2000);
	printf("put %zu\n", done);
	close(r->fd);
	free(again);
	for (size_t i = 0; i < nlines; i++)
		free(lines[i]);
	free(lines);
	free(r);
	return 0;
}

static int cmd_hold(int argc, char **argv)
{
	int ms = argc > 0 ? atoi(argv[0]) : 2000;
	struct rd *r = calloc(1, sizeof *r);
	char line[4096], payload[4096], req[64];
	uint64_t id;
	unsigned att;
	size_t len;
	if (!r || (r->fd = dial()) < 0)
		return fail("cannot connect to %s", addr_arg);
	if (send_str(r->fd, "GET_TASK WAIT 10000\r\n") || rd_line(r, line, sizeof line, 12000) != 1)
		return fail("hold: no reply to GET_TASK");
	if (sscanf(line, "TASK %" SCNu64 " %u %zu", &id, &att, &len) != 3 ||
	    rd_payload(r, len, payload, sizeof payload, 2000) != 1)
		return fail("hold: expected a task, got \"%s\"", line);
	printf("task %" PRIu64 "\n", id);
	fflush(stdout);
	usleep((useconds_t)ms * 1000);
	snprintf(req, sizeof req, "RESULT %" PRIu64 " late\r\n", id);
	if (send_str(r->fd, req) || rd_line(r, line, sizeof line, 5000) != 1)
		return fail("hold: no reply to the late RESULT");
	printf("late: %s\n", line);
	close(r->fd);
	free(r);
	return 0;
}

/* Each case: bytes sent, the reply line expected. */
static int cmd_garbage(void)
{
	static const struct {
		const char *send, *want;
	} cases[] = {
		{"HELLO\r\n", "ERR unknown-command"},
		{"GET_TASKS 0\r\n", "ERR bad-count"},
		{"RESULT abc 1\r\n", "ERR bad-id"},
		{"RESULT 123456 1\r\n", "ERR not-leased"},
		{"TOUCH 99999\r\n", "ERR not-leased"},
		{"PUT urgent 3\r\n", "ERR bad-priority"},
		{"PUT 2\r\nabcdef\r\n", "ERR bad-payload-terminator"},
		{"\x01\x02\x03\xff\r\n", "ERR unknown-command"},
		{"PING\r\n", "PONG"},
	};
	struct rd *r = calloc(1, sizeof *r);
	char line[4096], big[3000];
	int bad = 0;
	if (!r || (r->fd = dial()) < 0)
		return fail("cannot connect to %s", addr_arg);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (send_str(r->fd, cases[i].send) || rd_line(r, line, sizeof line, 3000) != 1)
			return fail("garbage: no reply to case %zu", i);
		if (strcmp(line, cases[i].want))
			bad = fail("garbage: case %zu: got \"%s\", want \"%s\"", i, line, cases[i].want);
	}
	/* An over-long line: refused as soon as the limit is reached, then
	 * the rest of it is dropped; the connection goes on. */
	memset(big, 'x', sizeof big);
	if (send_all(r->fd, big, sizeof big) || send_str(r->fd, "\r\nPING\r\n"))
		return fail("garbage: send failed");
	if (rd_line(r, line, sizeof line, 3000) != 1 || strcmp(line, "ERR line-too-long"))
		bad = fail("garbage: over-long line: got \"%s\"", line);
	if (rd_line(r, line, sizeof line, 3000) != 1 || strcmp(line, "PONG"))
		bad = fail("garbage: after the over-long line: got \"%s\"", line);
	/* 16 errors in a row: too-many-errors, then the server closes. */
	for (int i = 0; i < 20; i++)
		send_str(r->fd, "NONSENSE\r\n");
	int errs = 0, rc;
	while ((rc = rd_line(r, line, sizeof line, 3000)) == 1) {
		if (!strcmp(line, "ERR too-many-errors"))
			break;
		if (strcmp(line, "ERR unknown-command"))
			bad = fail("garbage: flood: got \"%s\"", line);
		errs++;
	}
	if (rc != 1 || errs != 15)
		bad = fail("garbage: expected 15 ERR then ERR too-many-errors, got %d and rc %d", errs,
			   rc);
	while ((rc = rd_line(r, line, sizeof line, 3000)) == 1)
		;
	if (rc != 0)
		bad = fail("garbage: the server did not close after too-many-errors");
	close(r->fd);
	/* A PUT over the limit is refused before its payload arrives (whose
	 * bytes the server then drops as they come). */
	r->len = 0;
	if ((r->fd = dial()) < 0)
		return fail("cannot connect to %s", addr_arg);
	if (send_str(r->fd, "PUT 99999999999\r\n") || rd_line(r, line, sizeof line, 3000) != 1 ||
	    strcmp(line, "ERR payload-too-large"))
		bad = fail("garbage: huge PUT: got \"%s\"", line);
	printf("garbage: %s\n", bad ? "FAILED" : "ok");
	close(r->fd);
	free(r);
	return bad;
}

static int cmd_flood(int argc, char **argv)
{
	long mib = argc > 0 ? atol(argv[0]) : 16;
	char chunk[65536];
	int fd = dial();
	unsigned seed = 12345;
	if (fd < 0)
		return fail("cannot connect to %s", addr_arg);
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	for (size_t i = 0; i < sizeof chunk; i++)
		chunk[i] = (char)(rand_r(&seed) & 0xff);
	for (long i = 0; i < mib * 16; i++) {
		if (send_all(fd, chunk, sizeof chunk)) {
			printf("flood: disconnected after %ld KiB\n", i * 64);
			close(fd);
			return 0;
		}
	}
	/* All sent: the server must hang up soon (reads return EOF/RST). */
	char b[65536];
	uint64_t end = now_ms() + 5000;
	while (now_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 500) <= 0)
			continue;
		ssize_t n = recv(fd, b, sizeof b, 0);
		if (n <= 0) {
			printf("flood: disconnected after %ld MiB\n", mib);
			close(fd);
			return 0;
		}
	}
	close(fd);
	return fail("flood: still connected after %ld MiB of junk", mib);
}

/* N waiting workers, one task each. */
static int cmd_many(int argc, char **argv)
{
	enum { WANT_TASK, WANT_OK, WANT_BYE, DONE };
	long n = argc > 0 ? atol(argv[0]) : 1000;
	struct rd **c = calloc((size_t)n, sizeof *c);
	struct pollfd *p = calloc((size_t)n, sizeof *p);
	int *state = calloc((size_t)n, sizeof *state);
	struct rd *prod = calloc(1, sizeof *prod);
	char line[4096], payload[256], req[64];
	long done = 0;
	if (!c || !p || !state || !prod)
		return fail("many: out of memory");
	for (long i = 0; i < n; i++) {
		if (!(c[i] = malloc(sizeof *c[i])) || (c[i]->fd = dial()) < 0)
			return fail("many: connection %ld of %ld failed: %s", i + 1, n, strerror(errno));
		c[i]->len = 0;
		if (send_str(c[i]->fd, "GET_TASK WAIT 30000\r\n"))
			return fail("many: send failed on connection %ld", i + 1);
		p[i] = (struct pollfd){.fd = c[i]->fd, .events = POLLIN};
	}
	printf("many: %ld connections waiting\n", n);
	fflush(stdout);
	usleep(200000);
	if ((prod->fd = dial()) < 0)
		return fail("many: producer cannot connect");
	for (long i = 0; i < n; i++) {
		snprintf(req, sizeof req, "PUT 5\r\n%03ld+1\r\n", i % 1000);
		if (send_str(prod->fd, req))
			return fail("many: PUT failed");
	}
	for (long i = 0; i < n; i++)
		if (rd_line(prod, line, sizeof line, 10000) != 1 || strncmp(line, "OK ", 3))
			return fail("many: PUT %ld: \"%s\"", i + 1, line);
	uint64_t end = now_ms() + 30000;
	while (done < n && now_ms() < end) {
		if (poll(p, (nfds_t)n, 1000) < 0)
			return fail("many: poll: %s", strerror(errno));
		for (long i = 0; i < n; i++) {
			if (!p[i].revents)
				continue;
			if (rd_fill(c[i], 0) <= 0)
				return fail("many: connection %ld closed early (state %d)", i + 1, state[i]);
			while (state[i] != DONE && rd_take_line(c[i], line, sizeof line)) {
				uint64_t id;
				unsigned att;
				size_t len;
				if (state[i] == WANT_TASK) {
					if (sscanf(line, "TASK %" SCNu64 " %u %zu", &id, &att, &len) != 3)
						return fail("many: connection %ld: \"%s\"", i + 1, line);
					if (rd_payload(c[i], len, payload, sizeof payload, 2000) != 1)
						return fail("many: connection %ld: no payload", i + 1);
					snprintf(req, sizeof req, "RESULT %" PRIu64 " ok\r\nEXIT\r\n", id);
					send_str(c[i]->fd, req);
					state[i] = WANT_OK;
				} else if (state[i] == WANT_OK) {
					if (strcmp(line, "OK"))
						return fail("many: connection %ld: RESULT got \"%s\"", i + 1, line);
					state[i] = WANT_BYE;
				} else if (state[i] == WANT_BYE) {
					if (strcmp(line, "BYE"))
						return fail("many: connection %ld: EXIT got \"%s\"", i + 1, line);
					state[i] = DONE;
					p[i].fd = -1;
					done++;
				}
			}
		}
	}
	printf("many: %ld of %ld connections got a task, answered it and said EXIT\n", done, n);
	for (long i = 0; i < n; i++) {
		close(c[i]->fd);
		free(c[i]);
	}
	close(prod->fd);
	free(prod);
	free(c);
	free(p);
	free(state);
	return done == n ? 0 : 1;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc < 3) {
		fprintf(stderr, "usage: tcp_client HOST:PORT raw|put|hold|garbage|flood|many|stats "
				"[ARGS]\n");
		return 2;
	}
	addr_arg = argv[1];
	const char *cmd = argv[2];
	argc -= 3;
	argv += 3;
	if (!strcmp(cmd, "raw"))
		return cmd_raw(argc, argv);
	if (!strcmp(cmd, "put"))
		return cmd_put(argc, argv);
	if (!strcmp(cmd, "hold"))
		return cmd_hold(argc, argv);
	if (!strcmp(cmd, "garbage"))
		return cmd_garbage();
	if (!strcmp(cmd, "flood"))
		return cmd_flood(argc, argv);
	if (!strcmp(cmd, "many"))
		return cmd_many(argc, argv);
	if (!strcmp(cmd, "stats"))
		return cmd_stats();
	fprintf(stderr, "tcp_client: unknown command \"%s\"\n", cmd);
	return 2;
}
