/* test_http.c — the real HTTP server on 127.0.0.1, port 0, with hooks backed
 * by a small in-memory queue double (forqd's real wiring is tested end to
 * end). Requests go over plain sockets, one connection each. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http.h"
#include "net.h"

#define TOKEN "t0ken-for-tests"
#define MAX_BODY 4096
#define MAX_PAYLOAD 64

/* ---- the queue double ---- */

struct fake {
	int push_result;       /* 0, or the -errno push returns */
	int ready;
	int shutdowns;         /* shutdown hook calls */
	int last_now;
	uint64_t next_id;
	size_t n;
	char payload[64][MAX_PAYLOAD + 1];
	int prio[64];
	uint64_t done;         /* reported in the snapshot */
	char queue[16];        /* the last push's or lookup's queue ("" for none) */
};

/* The double serves the default queue (NULL) and one named "q2". */
static int fake_queue(struct fake *f, const char *queue)
{
	snprintf(f->queue, sizeof f->queue, "%s", queue ? queue : "");
	return !queue || !strcmp(queue, "q2") ? 0 : -ENOENT;
}

/* Two queues when the server asks for two: "default", then "q2" with 7
 * pending in its normal lane. */
static int fake_snapshot(void *ctx, struct metrics_snapshot *out, size_t n)
{
	struct fake *f = ctx;
	if (n > 1) {
		strcpy(out[1].queue, "q2");
		out[1].pending[1] = 7;
	}
	strcpy(out->queue, "default");
	out->pending[1] = f->n;
	out->done[1] = f->done; /* the normal lane */
	out->capacity = 64;
	out->max_payload = MAX_PAYLOAD;
	out->n_workers = 1;
	out->workers[0].state = METRICS_WORKER_RUNNING;
	out->workers[0].pid = 1234;
	strcpy(out->version, "0.1.0");
	out->start_time = 1718000000;
	return 0;
}

static int fake_push(void *ctx, const char *queue, struct http_task *t, size_t n, uint64_t *ids)
{
	struct fake *f = ctx;
	if (fake_queue(f, queue))
		return -ENOENT;
	if (f->push_result)
		return f->push_result;
	if (f->n + n > 64)
		return -EAGAIN;
	for (size_t i = 0; i < n; i++) {
		assert_true(t[i].len >= 1 && t[i].len <= MAX_PAYLOAD);
		memcpy(f->payload[f->n], t[i].payload, t[i].len);
		f->payload[f->n][t[i].len] = '\0';
		f->prio[f->n] = t[i].prio;
		f->n++;
		ids[i] = ++f->next_id;
	}
	return 0;
}

static int fake_lookup(void *ctx, const char *queue, uint64_t id, struct http_task_status *out)
{
	struct fake *f = ctx;
	if (fake_queue(f, queue))
		return -ENOENT;
	if (id == 0 || id > f->next_id)
		return 0;
	if (id == 1) {
		strcpy(out->status, "done");
		out->attempts = 1;
		out->result_len = strlen("ok \"quoted\"");
		memcpy(out->result, "ok \"quoted\"", out->result_len);
	} else {
		strcpy(out->status, "pending");
	}
	return 1;
}

static void fake_shutdown(void *ctx, int now)
{
	struct fake *f = ctx;
	f->shutdowns++;
	f->last_now = now;
}

static int fake_ready(void *ctx)
{
	return ((struct fake *)ctx)->ready;
}

/* ---- fixture ---- */

struct fixture {
	struct fake f;
	struct http_server *s;
	uint16_t port;
};

static int start(void **state, const char *token)
{
	struct fixture *x = calloc(1, sizeof *x);
	struct http_hooks h = {&x->f, fake_snapshot, fake_push, fake_lookup, fake_shutdown,
			       fake_ready, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
	struct net_listener l;
	struct http_config c = {.admin_token = token,
				.conn_limit = 2048,
				.per_ip_limit = 64,
				.conn_timeout_s = 10,
				.max_body = MAX_BODY,
				.max_payload = MAX_PAYLOAD,
				.n_queues = 2};
	char err[256] = "";
	int r;
	x->f.ready = 1;
	if (net_listen("127.0.0.1:0", 511, 1, &l, err, sizeof err)) {
		fprintf(stderr, "net_listen: %s\n", err);
		free(x);
		return -1;
	}
	c.listen_fd = l.fd;
	r = http_start(&x->s, &c, &h, err, sizeof err);
	close(l.fd); /* the server has its own descriptor */
	if (r) {
		fprintf(stderr, "http_start: %s\n", err);
		free(x);
		return -1;
	}
	x->port = l.port;
	*state = x;
	return x->port ? 0 : -1;
}

static int setup_token(void **state)
{
	return start(state, TOKEN);
}

static int setup_no_token(void **state)
{
	return start(state, NULL);
}

static int teardown(void **state)
{
	struct fixture *x = *state;
	http_stop(x->s);
	free(x);
	return 0;
}

/* ---- a minimal HTTP/1.1 client ---- */

struct resp {
	int code;
	char head[4096];  /* status line + headers */
	char *body;       /* NUL-terminated */
	size_t body_len;
};

/* Connects from src (NULL: 127.0.0.1) to the server; 5 s I/O timeouts. */
static int dial(uint16_t port, const char *src)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {5, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (src) {
		struct sockaddr_in b = {.sin_family = AF_INET};
		inet_pton(AF_INET, src, &b.sin_addr);
		if (bind(fd, (struct sockaddr *)&b, sizeof b))
			goto fail;
	}
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof a))
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		assert_true(w > 0);
		p += w;
		n -= (size_t)w;
	}
}

/* Reads a whole response (the server closes: Connection: close). */
static void read_resp(int fd, struct resp *r)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap + 1);
	ssize_t n;
	while ((n = recv(fd, buf + len, cap - len, 0)) > 0) {
		len += (size_t)n;
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
	}
	buf[len] = '\0';
	memset(r, 0, sizeof *r);
	char *sep = strstr(buf, "\r\n\r\n");
	assert_non_null(sep);
	size_t hl = (size_t)(sep - buf);
	assert_true(hl < sizeof r->head);
	memcpy(r->head, buf, hl);
	r->head[hl] = '\0';
	assert_int_equal(sscanf(buf, "HTTP/1.1 %d", &r->code), 1);
	r->body_len = len - hl - 4;
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, sep + 4, r->body_len);
	r->body[r->body_len] = '\0';
	free(buf);
}

/* One request: method, path, extra header lines ("" or "Name: v\r\n..."),
 * body (NULL: none). */
static void request(struct fixture *x, const char *method, const char *path, const char *headers,
		    const char *body, struct resp *r)
{
	char head[1024];
	int fd = dial(x->port, NULL);
	assert_true(fd >= 0);
	int n = snprintf(head, sizeof head,
			 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", method,
			 path, headers ? headers : "");
	if (body)
		n += snprintf(head + n, sizeof head - (size_t)n,
			      "Content-Type: application/json\r\nContent-Length: %zu\r\n",
			      strlen(body));
	n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
	send_all(fd, head, (size_t)n);
	if (body)
		send_all(fd, body, strlen(body));
	read_resp(fd, r);
	close(fd);
}

/* Header value (case-insensitive name) or NULL; static buffer. */
static const char *header(const struct resp *r, const char *name)
{
	static char v[512];
	size_t n = strlen(name);
	for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
			const char *s = p + 3 + n, *e;
			while (*s == ' ')
				s++;
			e = strstr(s, "\r\n");
			size_t l = e ? (size_t)(e - s) : strlen(s);
			snprintf(v, sizeof v, "%.*s", (int)l, s);
			return v;
		}
	}
	return NULL;
}

static void resp_free(struct resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* ---- tests ---- */

/* Check that each GET route answers with its code and content type. */
static void test_http_routes_codes_and_content_types(void **state)
{
	struct fixture *x = *state;
	static const struct {
		const char *path;
		int code;
		const char *type;
		const char *body_has;
	} cases[] = {
		{"/metrics", 200, "text/plain; version=0.0.4; charset=utf-8", "forq_tasks_pending"},
		{"/stats", 200, "application/json", "\"pending\""},
		{"/healthz", 200, "application/json", "{\"status\":\"ok\"}"},
		{"/readyz", 200, "application/json", "{\"status\":\"ready\"}"},
		{"/", 200, "text/html; charset=utf-8", "id=\"workers\""},
		{"/index.html", 200, "text/html; charset=utf-8", "id=\"in-progress\""},
		{"/app.js", 200, "text/javascript; charset=utf-8", "/stats"},
		{"/style.css", 200, "text/css; charset=utf-8", "canvas"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct resp r;
		request(x, "GET", cases[i].path, NULL, NULL, &r);
		if (r.code != cases[i].code)
			fail_msg("%s: code %d", cases[i].path, r.code);
		assert_string_equal(header(&r, "Content-Type"), cases[i].type);
		if (!strstr(r.body, cases[i].body_has))
			fail_msg("%s: body lacks %s", cases[i].path, cases[i].body_has);
		resp_free(&r);
	}
}

/* Check that /readyz says 503 with a JSON body when the hook says not ready. */
static void test_http_readyz_not_ready_is_503(void **state)
{
	struct fixture *x = *state;
	struct resp r;
	x->f.ready = 0;
	request(x, "GET", "/readyz", NULL, NULL, &r);
	assert_int_equal(r.code, 503);
	assert_string_equal(r.body, "{\"status\":\"not ready\"}");
	resp_free(&r);
}

/* Check 404 and 405 (+Allow) answers, all with JSON error bodies. */
static void test_http_404_and_405_with_allow(void **state)
{
	struct fixture *x = *state;
	static const struct {
		const char *method, *path;
		int code;
		const char *allow;
		const char *body;
	} cases[] = {
		{"GET", "/nope", 404, NULL, "{\"error\":\"no such path /nope\"}"},
		{"GET", "/index.html%00.js", 404, NULL,
		 "{\"error\":\"no such path /index.html%00.js\"}"},
		{"POST", "/metrics", 405, "GET, HEAD", "{\"error\":\"method not allowed\"}"},
		{"GET", "/tasks", 405, "POST", "{\"error\":\"method not allowed\"}"},
		{"GET", "/shutdown", 405, "POST", "{\"error\":\"method not allowed\"}"},
		{"DELETE", "/tasks/1", 405, "GET, HEAD", "{\"error\":\"method not allowed\"}"},
		{"PUT", "/", 405, "GET, HEAD", "{\"error\":\"method not allowed\"}"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct resp r;
		request(x, cases[i].method, cases[i].path, NULL, NULL, &r);
		assert_int_equal(r.code, cases[i].code);
		assert_string_equal(header(&r, "Content-Type"), "application/json");
		if (cases[i].allow)
			assert_string_equal(header(&r, "Allow"), cases[i].allow);
		assert_string_equal(r.body, cases[i].body);
		resp_free(&r);
	}
}

/* Check POST /tasks with one object, then an array: 202 and the ids. */
static void test_http_post_tasks_single_and_array(void **state)
{
	struct fixture *x = *state;
	struct resp r;
	request(x, "POST", "/tasks", NULL, "{\"payload\":\"hello\",\"priority\":\"high\"}", &r);
	assert_int_equal(r.code, 202);
	assert_string_equal(r.body, "{\"ids\":[1]}");
	assert_string_equal(x->f.payload[0], "hello");
	assert_int_equal(x->f.prio[0], 0);
	resp_free(&r);

	request(x, "POST", "/tasks", NULL,
		"[{\"payload\":\"a\"},{\"payload\":{\"k\": [1, 2]},\"priority\":\"low\"},"
		"{\"payload\":42}]",
		&r);
	assert_int_equal(r.code, 202);
	assert_string_equal(r.body, "{\"ids\":[2,3,4]}");
	assert_string_equal(x->f.payload[1], "a");
	assert_int_equal(x->f.prio[1], 1);
	assert_string_equal(x->f.payload[2], "{\"k\":[1,2]}");
	assert_int_equal(x->f.prio[2], 2);
	assert_string_equal(x->f.payload[3], "42");
	resp_free(&r);
}

/* Check that bad bodies get 400 with the precise reason, and nothing is pushed. */
static void test_http_post_tasks_400_reasons(void **state)
{
	struct fixture *x = *state;
	static const struct {
		const char *body, *error;
	} cases[] = {
		{"{\"payload\": \"x\",}", "malformed JSON at offset 16"},
		{"{\"priority\":\"high\"}", "missing payload"},
		{"{\"payload\":\"x\",\"priority\":\"urgent\"}",
		 "unknown priority \\\"urgent\\\" (use high, normal or low)"},
		{"[]", "empty array: no tasks"},
		{"[{\"payload\":\"x\"},{\"payload\":\"\"}]", "tasks[1]: empty payload"},
		{"{\"payload\":\"x\",\"prio\":\"low\"}",
		 "unknown field \\\"prio\\\" (use payload, priority, delay, at, key or key_window)"},
		{"\"just a string\"", "expected a JSON object or array of objects"},
		{" ", "empty body (expected a JSON object or array of objects)"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct resp r;
		char want[256];
		request(x, "POST", "/tasks", NULL, cases[i].body, &r);
		snprintf(want, sizeof want, "{\"error\":\"%s\"}", cases[i].error);
		if (r.code != 400 || strcmp(r.body, want) != 0)
			fail_msg("body %s: got %d %s, want 400 %s", cases[i].body, r.code, r.body, want);
		assert_string_equal(header(&r, "Content-Type"), "application/json");
		resp_free(&r);
	}
	assert_int_equal(x->f.n, 0);
}

/* Check 413: declared body over max_body, chunked body over it, payload over
 * max_payload. */
static void test_http_post_tasks_413(void **state)
{
	struct fixture *x = *state;
	struct resp r;
	char big[MAX_PAYLOAD + 40];
	int fd;

	/* Content-Length over the limit: refused before the body is sent. */
	fd = dial(x->port, NULL);
	assert_true(fd >= 0);
	static const char cl[] = "POST /tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
				 "Content-Length: 100000\r\n\r\n";
	send_all(fd, cl, sizeof cl - 1);
	read_resp(fd, &r);
	close(fd);
	assert_int_equal(r.code, 413);
	assert_string_equal(r.body, "{\"error\":\"body is over the limit of 4096 bytes\"}");
	resp_free(&r);

	/* Chunked, no length up front: read, dropped, then 413. */
	fd = dial(x->port, NULL);
	assert_true(fd >= 0);
	static const char ch[] = "POST /tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
				 "Transfer-Encoding: chunked\r\n\r\n";
	send_all(fd, ch, sizeof ch - 1);
	char chunk[1100];
	memset(chunk, ' ', sizeof chunk);
	int hl = sprintf(chunk, "400\r\n");
	memcpy(chunk + hl + 1024, "\r\n", 2);
	for (int i = 0; i < 6; i++) /* 6 KiB of blanks */
		send_all(fd, chunk, (size_t)hl + 1024 + 2);
	send_all(fd, "0\r\n\r\n", 5);
	read_resp(fd, &r);
	close(fd);
	assert_int_equal(r.code, 413);
	resp_free(&r);

	snprintf(big, sizeof big, "{\"payload\":\"%0*d\"}", MAX_PAYLOAD + 1, 0);
	request(x, "POST", "/tasks", NULL, big, &r);
	assert_int_equal(r.code, 413);
	assert_string_equal(r.body, "{\"error\":\"payload is 65 bytes, over the limit of 64\"}");
	resp_free(&r);
	assert_int_equal(x->f.n, 0);
}

/* Check that a full queue or a draining forqd gives 503 with Retry-After: 1. */
static void test_http_post_tasks_503_retry_after(void **state)
{
	struct fixture *x = *state;
	static const int results[] = {-EAGAIN, -ESHUTDOWN};
	for (size_t i = 0; i < 2; i++) {
		struct resp r;
		x->f.push_result = results[i];
		request(x, "POST", "/tasks", NULL, "{\"payload\":\"x\"}", &r);
		assert_int_equal(r.code, 503);
		assert_string_equal(header(&r, "Retry-After"), "1");
		assert_non_null(strstr(r.body, "{\"error\":\""));
		resp_free(&r);
	}
}

/* Check GET /tasks/{id}: known, unknown, bad ids. */
static void test_http_get_task_by_id(void **state)
{
	struct fixture *x = *state;
	struct resp r;
	request(x, "POST", "/tasks", NULL, "[{\"payload\":\"a\"},{\"payload\":\"b\"}]", &r);
	assert_int_equal(r.code, 202);
	resp_free(&r);
	static const struct {
		const char *path;
		int code;
		const char *body;
	} cases[] = {
		{"/tasks/1", 200,
		 "{\"id\":1,\"status\":\"done\",\"attempts\":1,\"result\":\"ok \\\"quoted\\\"\"}"},
		{"/tasks/2", 200, "{\"id\":2,\"status\":\"pending\",\"attempts\":0}"},
		{"/tasks/42", 404, "{\"error\":\"unknown or forgotten task 42\"}"},
		{"/tasks/abc", 400, "{\"error\":\"bad task id \\\"abc\\\" (expected a positive integer)\"}"},
		{"/tasks/0", 400, "{\"error\":\"bad task id \\\"0\\\" (expected a positive integer)\"}"},
		{"/tasks/18446744073709551616", 400, NULL}, /* 2^64 */
		{"/tasks/-1", 400, NULL},
		{"/tasks/", 400, NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		request(x, "GET", cases[i].path, NULL, NULL, &r);
		if (r.code != cases[i].code)
			fail_msg("%s: code %d body %s", cases[i].path, r.code, r.body);
		if (cases[i].body)
			assert_string_equal(r.body, cases[i].body);
		assert_string_equal(header(&r, "Content-Type"), "application/json");
		resp_free(&r);
	}
}

/* Check the named queue's routes: /queues/{name}/tasks pushes to that
 * queue, /queues/{name}/tasks/{id} reads from it, an unknown name is 404
 * with the reason, and .../tasks/{id}/cancel stays the cancel route. */
static void test_http_named_queue_task_routes(void **state)
{
	struct fixture *x = *state;
	struct fake *f = &x->f;
	struct resp r;
	request(x, "POST", "/queues/q2/tasks", NULL, "{\"payload\":\"a\"}", &r);
	assert_int_equal(r.code, 202);
	assert_string_equal(r.body, "{\"ids\":[1]}");
	assert_string_equal(f->queue, "q2");
	resp_free(&r);
	request(x, "POST", "/tasks", NULL, "{\"payload\":\"b\"}", &r);
	assert_int_equal(r.code, 202);
	assert_string_equal(f->queue, "");
	resp_free(&r);
	request(x, "GET", "/queues/q2/tasks/1", NULL, NULL, &r);
	assert_int_equal(r.code, 200);
	assert_string_equal(f->queue, "q2");
	resp_free(&r);
	request(x, "POST", "/queues/nope/tasks", NULL, "{\"payload\":\"a\"}", &r);
	assert_int_equal(r.code, 404);
	assert_string_equal(r.body,
			    "{\"error\":\"unknown queue \\\"nope\\\" (forqd serves no queue of that name)\"}");
	resp_free(&r);
	request(x, "GET", "/queues/nope/tasks/1", NULL, NULL, &r);
	assert_int_equal(r.code, 404);
	assert_non_null(strstr(r.body, "unknown queue"));
	resp_free(&r);
	request(x, "GET", "/queues/q2/tasks", NULL, NULL, &r);
	assert_int_equal(r.code, 405);
	resp_free(&r);
	request(x, "GET", "/queues/q2/tasks/1/cancel", NULL, NULL, &r);
	assert_int_equal(r.code, 405); /* the cancel route: POST only */
	resp_free(&r);
	assert_int_equal(f->n, 2);
}

/* Check /shutdown with a token: 401 without or with a wrong one (and
 * WWW-Authenticate), 202 with it; the hook runs once per accepted request. */
static void test_http_shutdown_needs_the_token(void **state)
{
	struct fixture *x = *state;
	struct resp r;
	static const char *const bad[] = {NULL, "Authorization: Bearer wrong\r\n",
					  "Authorization: " TOKEN "\r\n",
					  "Authorization: Basic dDBrZW4=\r\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		request(x, "POST", "/shutdown", bad[i], NULL, &r);
		assert_int_equal(r.code, 401);
		assert_string_equal(header(&r, "WWW-Authenticate"), "Bearer");
		assert_non_null(strstr(r.body, "{\"error\":\""));
		resp_free(&r);
	}
	assert_int_equal(x->f.shutdowns, 0);

	request(x, "POST", "/shutdown", "Authorization: Bearer " TOKEN "\r\n", NULL, &r);
	assert_int_equal(r.code, 202);
	assert_string_equal(r.body, "{\"status\":\"shutting down\",\"mode\":\"drain\"}");
	assert_int_equal(x->f.shutdowns, 1);
	assert_int_equal(x->f.last_now, 0);
	resp_free(&r);

	request(x, "POST", "/shutdown?mode=now", "Authorization: Bearer " TOKEN "\r\n", NULL, &r);
	assert_int_equal(r.code, 202);
	assert_string_equal(r.body, "{\"status\":\"shutting down\",\"mode\":\"now\"}");
	assert_int_equal(x->f.shutdowns, 2);
	assert_int_equal(x->f.last_now, 1);
	resp_free(&r);

	request(x, "POST", "/shutdown?mode=later", "Authorization: Bearer " TOKEN "\r\n", NULL, &r);
	assert_int_equal(r.code, 400);
	assert_int_equal(x->f.shutdowns, 2);
	resp_free(&r);
}

/* Check that without a token a loopback peer may shut down. */
static void test_http_shutdown_without_token_from_loopback(void **state)
{
	struct fixture *x = *state;
	struct resp r;
	request(x, "POST", "/shutdown", NULL, NULL, &r);
	assert_int_equal(r.code, 202);
	assert_int_equal(x->f.shutdowns, 1);
	resp_free(&r);
}

/* Check that http_start serves on its own duplicate of the caller's socket:
 * the caller's descriptor stays open and usable after http_stop (no double
 * close, whatever MHD does with the one it was given), and a bad one fails. */
static void test_http_start_leaves_the_listen_fd_to_the_caller(void **state)
{
	struct fixture *x = *state;
	struct http_hooks h = {&x->f, fake_snapshot, fake_push, fake_lookup, fake_shutdown,
			       fake_ready, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
	struct http_server *s = NULL;
	struct net_listener l;
	char err[256] = "";

	assert_int_equal(net_listen("127.0.0.1:0", 16, 1, &l, err, sizeof err), 0);
	struct http_config c = {.listen_fd = l.fd};
	for (int round = 0; round < 2; round++) { /* the same socket twice */
		assert_int_equal(http_start(&s, &c, &h, err, sizeof err), 0);
		assert_non_null(s);
		http_stop(s);
		assert_int_not_equal(fcntl(l.fd, F_GETFD), -1);
	}
	int fd = dial(l.port, NULL); /* still listening: the kernel queues it */
	assert_true(fd >= 0);
	close(fd);
	close(l.fd);

	c.listen_fd = -1;
	assert_int_equal(http_start(&s, &c, &h, err, sizeof err), -EBADF);
	assert_null(s);
	assert_non_null(strstr(err, "listening socket"));
}

static int promtool_ok(const char *text)
{
	char path[] = "/tmp/test_http_XXXXXX", cmd[128];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
	int rc = system(cmd);
	unlink(path);
	return rc == 0;
}

/* Check that /metrics passes promtool and counts responses by code. */
static void test_http_metrics_pass_promtool_and_count_codes(void **state)
{
	struct fixture *x = *state;
	struct resp r;
	request(x, "GET", "/nope", NULL, NULL, &r);
	resp_free(&r);
	request(x, "GET", "/healthz", NULL, NULL, &r);
	resp_free(&r);
	request(x, "GET", "/metrics", NULL, NULL, &r);
	assert_int_equal(r.code, 200);
	assert_non_null(strstr(r.body, "\nforq_http_requests_total{code=\"404\"} 1\n"));
	assert_non_null(strstr(r.body, "\nforq_http_requests_total{code=\"200\"} 1\n"));
	assert_non_null(strstr(r.body, "\nprocess_open_fds "));
	assert_non_null(strstr(r.body, "\nforq_tasks_pending{queue=\"default\",priority=\"low\"} 0\n"
				       "forq_tasks_pending{queue=\"q2\",priority=\"high\"} 0\n"
				       "forq_tasks_pending{queue=\"q2\",priority=\"normal\"} 7\n"));
	assert_true(promtool_ok(r.body));
	resp_free(&r);
}

/* Check that /stats is JSON and keeps integers above 2^53 exact. */
static void test_http_stats_json_exact_integers(void **state)
{
	struct fixture *x = *state;
	struct resp r;
	x->f.done = 9007199254740993ULL; /* 2^53 + 1 */
	request(x, "GET", "/stats", NULL, NULL, &r);
	assert_int_equal(r.code, 200);
	assert_non_null(strstr(r.body, "\"done\":9007199254740993,"));
	cJSON *j = cJSON_Parse(r.body);
	assert_non_null(j);
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "workers")));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "workers")), 1);
	cJSON *normal = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "lanes"), "normal");
	assert_non_null(strstr(r.body, "\"normal\":{\"pending\":"));
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(normal, "done")));
	assert_non_null(strstr(r.body, "\"done\":9007199254740993,\"failed\":0}"));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "wait_us"), "p50")));
	assert_non_null(cJSON_GetObjectItem(j, "process"));
	/* Each queue under its name; the top level is the default queue's. */
	cJSON *qs = cJSON_GetObjectItem(j, "queues");
	assert_int_equal(cJSON_GetArraySize(qs), 2);
	cJSON *q2 = cJSON_GetObjectItem(qs, "q2");
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(q2, "pending"), "normal")->valueint, 7);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "pending"), "normal")->valueint, 0);
	assert_non_null(cJSON_GetObjectItem(qs, "default"));
	cJSON_Delete(j);
	resp_free(&r);
}

/* Check that 1,000 idle connections (from 20 other loopback addresses, 50
 * each, under the per-IP limit) do not stop a scrape from answering. */
static void test_http_1000_idle_connections_do_not_block_metrics(void **state)
{
	struct fixture *x = *state;
	enum { N = 1000, PER_IP = 50 };
	struct rlimit rl;
	int *fds = malloc(N * sizeof *fds);
	struct resp r;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 2 * N + 100) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	if (rl.rlim_cur < 2 * N + 100)
		skip();
	for (int i = 0; i < N; i++) {
		char src[32];
		snprintf(src, sizeof src, "127.0.0.%d", 2 + i / PER_IP);
		fds[i] = dial(x->port, src);
		assert_true(fds[i] >= 0);
		if (i % 2) /* half send a request line and stall */
			send_all(fds[i], "GET /metrics HTTP/1.1\r\n", 23);
	}
	struct timeval t0, t1;
	gettimeofday(&t0, NULL);
	request(x, "GET", "/metrics", NULL, NULL, &r);
	gettimeofday(&t1, NULL);
	assert_int_equal(r.code, 200);
	/* The server holds them all: 1,000 here plus 1,000 accepted there. */
	const char *p = strstr(r.body, "\nprocess_open_fds ");
	assert_non_null(p);
	assert_true(strtoull(p + 18, NULL, 10) >= 2 * N);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000 < 2000);
	resp_free(&r);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	free(fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_http_routes_codes_and_content_types, setup_token, teardown),
		cmocka_unit_test_setup_teardown(test_http_readyz_not_ready_is_503, setup_token, teardown),
		cmocka_unit_test_setup_teardown(test_http_404_and_405_with_allow, setup_token, teardown),
		cmocka_unit_test_setup_teardown(test_http_post_tasks_single_and_array, setup_token, teardown),
		cmocka_unit_test_setup_teardown(test_http_post_tasks_400_reasons, setup_token, teardown),
		cmocka_unit_test_setup_teardown(test_http_post_tasks_413, setup_token, teardown),
		cmocka_unit_test_setup_teardown(test_http_post_tasks_503_retry_after, setup_token, teardown),
		cmocka_unit_test_setup_teardown(test_http_named_queue_task_routes, setup_token, teardown),
		cmocka_unit_test_setup_teardown(test_http_get_task_by_id, setup_token, teardown),
		cmocka_unit_test_setup_teardown(test_http_shutdown_needs_the_token, setup_token, teardown),
		cmocka_unit_test_setup_teardown(test_http_shutdown_without_token_from_loopback, setup_no_token, teardown),
		cmocka_unit_test_setup_teardown(test_http_start_leaves_the_listen_fd_to_the_caller, setup_token, teardown),
		cmocka_unit_test_setup_teardown(test_http_metrics_pass_promtool_and_count_codes, setup_token, teardown),
		cmocka_unit_test_setup_teardown(test_http_stats_json_exact_integers, setup_token, teardown),
		cmocka_unit_test_setup_teardown(test_http_1000_idle_connections_do_not_block_metrics, setup_token, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
