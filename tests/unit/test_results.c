/* test_results.c — JSON result lines and the results sink. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "forq.h"
#include "results.h"

#define S(lit) lit, sizeof(lit) - 1

struct fmt_case {
	const char *name;
	struct result_rec rec;
	const char *want;
};

static const struct fmt_case fmt_cases[] = {
	{"done with source",
	 {42, S("1+2"), FORQ_RESULT_DONE, S("3"), 1, 12, 1, FORQ_NORMAL, "tasks.txt", 7, NULL},
	 "{\"id\":42,\"task\":\"1+2\",\"status\":\"done\",\"result\":\"3\",\"attempts\":1,"
	 "\"priority\":\"normal\",\"wait_us\":12,\"run_us\":1,\"source\":\"tasks.txt:7\"}\n"},
	{"done without source (line 0)",
	 {1, S("x"), FORQ_RESULT_DONE, S("y"), 1, 0, 0, FORQ_HIGH, "tasks.txt", 0, NULL},
	 "{\"id\":1,\"task\":\"x\",\"status\":\"done\",\"result\":\"y\",\"attempts\":1,"
	 "\"priority\":\"high\",\"wait_us\":0,\"run_us\":0}\n"},
	{"failed uses error key",
	 {7, S("1/0"), FORQ_RESULT_FAILED, S("division by zero"), 1, 5, 2, FORQ_LOW, NULL, 0, NULL},
	 "{\"id\":7,\"task\":\"1/0\",\"status\":\"failed\",\"error\":\"division by zero\","
	 "\"attempts\":1,\"priority\":\"low\",\"wait_us\":5,\"run_us\":2}\n"},
	{"dead uses error key",
	 {18446744073709551615ull, S("flaky"), FORQ_RESULT_DEAD, S("timeout"), 3,
	  18446744073709551615ull, 1000000, FORQ_NORMAL, "t.txt", 4294967295u, NULL},
	 "{\"id\":18446744073709551615,\"task\":\"flaky\",\"status\":\"dead\",\"error\":\"timeout\","
	 "\"attempts\":3,\"priority\":\"normal\",\"wait_us\":18446744073709551615,"
	 "\"run_us\":1000000,\"source\":\"t.txt:4294967295\"}\n"},
	{"quotes and backslashes escaped",
	 {2, S("say \"hi\" \\o/"), FORQ_RESULT_DONE, S("\"\\"), 1, 0, 0, FORQ_NORMAL, NULL, 0, NULL},
	 "{\"id\":2,\"task\":\"say \\\"hi\\\" \\\\o/\",\"status\":\"done\",\"result\":\"\\\"\\\\\","
	 "\"attempts\":1,\"priority\":\"normal\",\"wait_us\":0,\"run_us\":0}\n"},
	{"newlines, tabs and control bytes escaped",
	 {3, S("a\nb\tc\r\x01\x1f"), FORQ_RESULT_FAILED, S("line1\nline2\x7f"), 2, 0, 0,
	  FORQ_NORMAL, NULL, 0, NULL},
	 "{\"id\":3,\"task\":\"a\\nb\\tc\\r\\u0001\\u001f\",\"status\":\"failed\","
	 "\"error\":\"line1\\nline2\x7f\",\"attempts\":2,\"priority\":\"normal\",\"wait_us\":0,"
	 "\"run_us\":0}\n"},
	{"invalid UTF-8 becomes U+FFFD, valid kept",
	 {4, S("caf\xc3\xa9 \xff\xc3"), FORQ_RESULT_DONE, S("\xe2\x82\xac \xed\xa0\x80"), 1, 0, 0,
	  FORQ_NORMAL, NULL, 0, NULL},
	 "{\"id\":4,\"task\":\"caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\",\"status\":\"done\","
	 "\"result\":\"\xe2\x82\xac \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\",\"attempts\":1,"
	 "\"priority\":\"normal\",\"wait_us\":0,\"run_us\":0}\n"},
	{"empty task and NULL text",
	 {5, "", 0, FORQ_RESULT_DONE, NULL, 0, 1, 0, 0, FORQ_NORMAL, NULL, 0, NULL},
	 "{\"id\":5,\"task\":\"\",\"status\":\"done\",\"result\":\"\",\"attempts\":1,"
	 "\"priority\":\"normal\",\"wait_us\":0,\"run_us\":0}\n"},
	{"source file escaped, NULL file shows as -",
	 {6, S("t"), FORQ_RESULT_DONE, S("r"), 1, 0, 0, FORQ_NORMAL, NULL, 9, NULL},
	 "{\"id\":6,\"task\":\"t\",\"status\":\"done\",\"result\":\"r\",\"attempts\":1,"
	 "\"priority\":\"normal\",\"wait_us\":0,\"run_us\":0,\"source\":\"-:9\"}\n"},
	{"quote in source file name escaped",
	 {8, S("t"), FORQ_RESULT_DONE, S("r"), 1, 0, 0, FORQ_NORMAL, "my \"t\".txt", 1, NULL},
	 "{\"id\":8,\"task\":\"t\",\"status\":\"done\",\"result\":\"r\",\"attempts\":1,"
	 "\"priority\":\"normal\",\"wait_us\":0,\"run_us\":0,\"source\":\"my \\\"t\\\".txt:1\"}\n"},
	{"a named queue's name before the source",
	 {9, S("t"), FORQ_RESULT_FAILED, S("e"), 2, 5, 6, FORQ_HIGH, "t.txt", 3, "emails"},
	 "{\"id\":9,\"task\":\"t\",\"status\":\"failed\",\"error\":\"e\",\"attempts\":2,"
	 "\"priority\":\"high\",\"wait_us\":5,\"run_us\":6,\"queue\":\"emails\","
	 "\"source\":\"t.txt:3\"}\n"},
};

/* Check that each record formats to exactly its expected line, appended after
 * what the buffer held. */
static void test_format_exact_lines(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof fmt_cases / sizeof fmt_cases[0]; i++) {
		const struct fmt_case *c = &fmt_cases[i];
		struct buf b = BUF_INIT;
		assert_int_equal(buf_puts(&b, "prev\n"), 0);
		assert_int_equal(result_format(&b, &c->rec), 0);
		if (strncmp(b.data, "prev\n", 5) != 0 || strcmp(b.data + 5, c->want) != 0)
			fail_msg("%s:\n got  %s want %s", c->name, b.data + 5, c->want);
		assert_int_equal(b.len, 5 + strlen(c->want));
		buf_free(&b);
	}
}

/* Check the status names, including values that are not final. */
static void test_status_names(void **state)
{
	(void)state;
	assert_string_equal(result_status_name(FORQ_RESULT_DONE), "done");
	assert_string_equal(result_status_name(FORQ_RESULT_FAILED), "failed");
	assert_string_equal(result_status_name(FORQ_RESULT_DEAD), "dead");
	assert_string_equal(result_status_name(FORQ_RESULT_RETRY), "retry");
	assert_string_equal(result_status_name(99), "unknown");
}

/* Check that the longest fixed text (every number at its maximum, unknown
 * names, the longest queue name) stays within the 320 bytes result_format
 * reserves besides strings. */
static void test_format_longest_fixed_text(void **state)
{
	(void)state;
	struct result_rec r = {UINT64_MAX, "", 0, 99, "", 0, UINT_MAX, UINT64_MAX, UINT64_MAX, 99,
			       "", UINT_MAX, "q234567890123456789012345678901-"};
	struct buf b = BUF_INIT;
	assert_int_equal(result_format(&b, &r), 0);
	assert_string_equal(b.data,
			    "{\"id\":18446744073709551615,\"task\":\"\",\"status\":\"unknown\","
			    "\"error\":\"\",\"attempts\":4294967295,\"priority\":\"unknown\","
			    "\"wait_us\":18446744073709551615,\"run_us\":18446744073709551615,"
			    "\"queue\":\"q234567890123456789012345678901-\","
			    "\"source\":\":4294967295\"}\n");
	assert_true(b.len + 1 <= 320);
	buf_free(&b);
}

/* Check that a large payload of worst-case bytes is escaped whole. */
static void test_format_large_payload(void **state)
{
	(void)state;
	size_t n = 100000;
	char *task = malloc(n);
	assert_non_null(task);
	memset(task, 0x01, n);
	struct result_rec r = {1, task, n, FORQ_RESULT_DONE, "", 0, 1, 0, 0, FORQ_NORMAL, NULL, 0, NULL};
	struct buf b = BUF_INIT;
	assert_int_equal(result_format(&b, &r), 0);
	assert_int_equal(b.len, strlen(b.data));
	assert_non_null(strstr(b.data, "\\u0001\\u0001"));
	assert_int_equal(b.len, 6 * n + strlen("{\"id\":1,\"task\":\"\",\"status\":\"done\",\"result\":"
						   "\"\",\"attempts\":1,\"priority\":\"normal\","
						   "\"wait_us\":0,\"run_us\":0}\n"));
	buf_free(&b);
	free(task);
}

/* --- the sink -------------------------------------------------------------- */

enum { PER_CHILD = 20000 };

/* Record i of writer c: the task's length varies 0..400 (lines stay below
 * PIPE_BUF), its bytes say who wrote it. */
static void make_rec(struct result_rec *r, char *task, unsigned c, unsigned i)
{
	size_t n = (i * 37u + c * 11u) % 401u;
	memset(task, 'a' + (int)c, n);
	*r = (struct result_rec){(uint64_t)c * 1000000u + i, task, n,
				 i % 7 ? FORQ_RESULT_DONE : FORQ_RESULT_FAILED, "r\"\n", 3, 1 + i % 3,
				 i, i * 3u, (int)(i % 3), "tasks.txt", i + 1, NULL};
}

static void child_writes(int fd, unsigned c)
{
	struct results_sink s;
	char task[512];
	if (results_sink_init(&s, fd) != 0)
		_exit(2);
	for (unsigned i = 0; i < PER_CHILD; i++) {
		struct result_rec r;
		make_rec(&r, task, c, i);
		if (result_format(results_sink_buf(&s), &r) != 0)
			_exit(3);
		if (results_sink_maybe_flush(&s) != 0)
			_exit(4);
	}
	if (results_sink_flush(&s) != 0)
		_exit(5);
	results_sink_free(&s);
	_exit(0);
}

/* Checks that data holds exactly the lines of both writers, each whole. */
static void check_all_lines(const char *data, size_t len)
{
	static unsigned char seen[2][PER_CHILD];
	struct buf want = BUF_INIT;
	char task[512];
	size_t lines = 0;

	memset(seen, 0, sizeof seen);
	assert_true(len > 0 && data[len - 1] == '\n');
	for (const char *p = data; p < data + len;) {
		const char *nl = memchr(p, '\n', (size_t)(data + len - p));
		assert_non_null(nl);
		assert_memory_equal(p, "{\"id\":", 6);
		unsigned long long id = strtoull(p + 6, NULL, 10);
		unsigned c = (unsigned)(id / 1000000u), i = (unsigned)(id % 1000000u);
		assert_true(c < 2 && i < PER_CHILD);
		assert_int_equal(seen[c][i], 0);
		seen[c][i] = 1;
		struct result_rec r;
		make_rec(&r, task, c, i);
		buf_reset(&want);
		assert_int_equal(result_format(&want, &r), 0);
		size_t n = (size_t)(nl - p) + 1;
		assert_int_equal(n, want.len);
		assert_memory_equal(p, want.data, n);
		p = nl + 1;
		lines++;
	}
	assert_int_equal(lines, 2 * PER_CHILD);
	buf_free(&want);
}

static void wait_ok(pid_t pid)
{
	int st;
	pid_t w;
	while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	assert_int_equal(w, pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Check that two processes writing 20,000 lines each to one pipe never
 * interleave: the reader gets every line whole, exactly once. */
static void test_sink_pipe_two_writers_lines_whole(void **state)
{
	(void)state;
	int p[2];
	pid_t pid[2];
	struct buf got = BUF_INIT;

	assert_int_equal(pipe(p), 0);
	for (unsigned c = 0; c < 2; c++) {
		pid[c] = fork();
		assert_true(pid[c] >= 0);
		if (pid[c] == 0) {
			close(p[0]);
			child_writes(p[1], c);
		}
	}
	close(p[1]);
	for (;;) {
		assert_int_equal(buf_reserve(&got, 65536), 0);
		ssize_t n = read(p[0], got.data + got.len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n >= 0);
		if (n == 0)
			break;
		got.len += (size_t)n;
	}
	close(p[0]);
	wait_ok(pid[0]);
	wait_ok(pid[1]);
	check_all_lines(got.data, got.len);
	buf_free(&got);
}

/* Check that two processes appending to one regular file (each its own
 * O_APPEND open) leave every line whole, exactly once. */
static void test_sink_append_file_two_writers_lines_whole(void **state)
{
	(void)state;
	char dir[] = "/tmp/forq-results-XXXXXX", path[64];
	pid_t pid[2];

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/results.jsonl", dir);
	for (unsigned c = 0; c < 2; c++) {
		pid[c] = fork();
		assert_true(pid[c] >= 0);
		if (pid[c] == 0) {
			int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
			if (fd < 0)
				_exit(1);
			child_writes(fd, c);
		}
	}
	wait_ok(pid[0]);
	wait_ok(pid[1]);

	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	char *data = malloc((size_t)st.st_size);
	assert_non_null(data);
	assert_int_equal(read(fd, data, (size_t)st.st_size), st.st_size);
	close(fd);
	check_all_lines(data, (size_t)st.st_size);
	free(data);
	unlink(path);
	rmdir(dir);
}

/* Check that a regular file opened without O_APPEND (a shell's `>`) gets it,
 * and a directory is refused. */
static void test_sink_init_sets_append_on_regular_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/forq-results-XXXXXX", path[64];
	struct results_sink s;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/out", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_APPEND, 0);
	assert_int_equal(results_sink_init(&s, fd), 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_APPEND, O_APPEND);
	results_sink_free(&s);
	close(fd);

	fd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(results_sink_init(&s, fd), -EINVAL);
	results_sink_free(&s);
	close(fd);
	assert_int_equal(results_sink_init(&s, -1), -EBADF);
	unlink(path);
	rmdir(dir);
}

/* Check, on a SOCK_SEQPACKET pair where each write(2) arrives as one message,
 * that flush writes whole lines in chunks of at most PIPE_BUF, as many lines as
 * fit, and a line longer than PIPE_BUF alone. */
static void test_sink_socket_chunks_at_line_ends(void **state)
{
	(void)state;
	int sv[2];
	struct results_sink s;
	struct buf all = BUF_INIT;
	size_t lens[64], nlines = 0;

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	int big = 1 << 20;
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big), 0);
	assert_int_equal(results_sink_init(&s, sv[0]), 0);
	struct buf *b = results_sink_buf(&s);
	for (unsigned i = 0; i < 40; i++) {
		size_t n = i == 20 ? 3 * PIPE_BUF : 50 + (i * 211u) % 900u;
		size_t before = b->len;
		for (size_t k = 0; k + 1 < n; k++)
			assert_int_equal(buf_putc(b, (char)('a' + i % 26)), 0);
		assert_int_equal(buf_putc(b, '\n'), 0);
		lens[nlines++] = b->len - before;
	}
	assert_int_equal(buf_append(&all, b->data, b->len), 0);
	assert_int_equal(results_sink_flush(&s), 0);
	assert_int_equal(b->len, 0);
	close(sv[0]);

	/* Replay the greedy split and compare with each message received. */
	size_t off = 0, li = 0;
	char msg[4 * PIPE_BUF];
	while (li < nlines) {
		size_t want = lens[li++];
		if (want <= PIPE_BUF)
			while (li < nlines && want + lens[li] <= PIPE_BUF)
				want += lens[li++];
		ssize_t n = recv(sv[1], msg, sizeof msg, 0);
		assert_int_equal(n, (ssize_t)want);
		assert_memory_equal(msg, all.data + off, want);
		assert_int_equal(msg[want - 1], '\n');
		off += want;
	}
	assert_int_equal(off, all.len);
	assert_int_equal(recv(sv[1], msg, sizeof msg, 0), 0);
	close(sv[1]);
	results_sink_free(&s);
	buf_free(&all);
}

/* Check that a failed write returns -errno and keeps the buffer (EPIPE). */
static void test_sink_flush_failure_keeps_buffer(void **state)
{
	(void)state;
	int p[2];
	struct results_sink s;
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);

	assert_int_equal(pipe(p), 0);
	assert_int_equal(results_sink_init(&s, p[1]), 0);
	assert_int_equal(buf_puts(results_sink_buf(&s), "{\"a\":1}\n"), 0);
	close(p[0]);
	assert_int_equal(results_sink_flush(&s), -EPIPE);
	assert_int_equal(results_sink_buf(&s)->len, 8);
	assert_string_equal(results_sink_buf(&s)->data, "{\"a\":1}\n");
	close(p[1]);
	results_sink_free(&s);
	signal(SIGPIPE, old);
}

/* Check that on a full non-blocking pipe flush returns -EAGAIN, what was
 * written plus what stays buffered is everything, and the rest is written
 * once the reader drains. */
static void test_sink_partial_flush_keeps_the_rest(void **state)
{
	(void)state;
	int p[2];
	struct results_sink s;
	struct buf all = BUF_INIT, got = BUF_INIT;

	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	assert_int_equal(results_sink_init(&s, p[1]), 0);
	struct buf *b = results_sink_buf(&s);
	for (unsigned i = 0; b->len < 256 * 1024; i++)
		assert_int_equal(buf_printf(b, "{\"n\":%u,\"pad\":\"%0*u\"}\n", i, (int)(i % 300), 0), 0);
	assert_int_equal(buf_append(&all, b->data, b->len), 0);
	assert_true(b->len >= RESULTS_SINK_FLUSH_AT);

	int rc = results_sink_maybe_flush(&s);
	assert_int_equal(rc, -EAGAIN);
	assert_true(b->len > 0 && b->len < all.len);
	for (;;) {
		char tmp[65536];
		ssize_t n = read(p[0], tmp, sizeof tmp);
		if (n > 0) {
			assert_int_equal(buf_append(&got, tmp, (size_t)n), 0);
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		if (b->len == 0)
			break;
		rc = results_sink_flush(&s);
		assert_true(rc == 0 || rc == -EAGAIN);
	}
	assert_int_equal(got.len, all.len);
	assert_memory_equal(got.data, all.data, all.len);
	close(p[0]);
	close(p[1]);
	results_sink_free(&s);
	buf_free(&all);
	buf_free(&got);
}

/* Check that maybe_flush writes nothing below the threshold. */
static void test_sink_maybe_flush_waits_for_threshold(void **state)
{
	(void)state;
	int p[2];
	struct results_sink s;
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	assert_int_equal(results_sink_init(&s, p[1]), 0);
	assert_int_equal(buf_puts(results_sink_buf(&s), "x\n"), 0);
	assert_int_equal(results_sink_maybe_flush(&s), 0);
	char c;
	assert_int_equal(read(p[0], &c, 1), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(results_sink_flush(&s), 0);
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(c, 'x');
	close(p[0]);
	close(p[1]);
	results_sink_free(&s);
}

/* ---- a regular file stays whole lines through crashes and write errors ---- */

/* Reads path whole into a NUL-terminated heap copy; *len its size. */
static char *slurp(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	char *data = malloc((size_t)st.st_size + 1);
	assert_non_null(data);
	assert_int_equal(read(fd, data, (size_t)st.st_size), st.st_size);
	close(fd);
	data[st.st_size] = '\0';
	*len = (size_t)st.st_size;
	return data;
}

/* Checks that data is whole result lines, each id in [0, n) at most once
 * (exactly once when all), and returns how many lines. */
static size_t check_whole_lines(const char *data, size_t len, unsigned n, int all)
{
	unsigned char seen[64] = {0};
	size_t lines = 0;
	assert_true(n <= sizeof seen);
	assert_true(len == 0 || data[len - 1] == '\n');
	for (const char *p = data; p < data + len; lines++) {
		const char *nl = memchr(p, '\n', (size_t)(data + len - p));
		assert_non_null(nl);
		assert_memory_equal(p, "{\"id\":", 6);
		assert_int_equal(nl[-1], '}');
		assert_null(memchr(p + 1, '{', (size_t)(nl - p - 1))); /* nothing glued */
		unsigned long id = strtoul(p + 6, NULL, 10);
		assert_true(id < n);
		assert_int_equal(seen[id], 0);
		seen[id] = 1;
		p = nl + 1;
	}
	if (all)
		assert_int_equal(lines, n);
	return lines;
}

static void format_records(struct results_sink *s, unsigned from, unsigned to)
{
	char task[200];
	memset(task, 'x', sizeof task);
	for (unsigned i = from; i < to; i++) {
		struct result_rec r = {i, task, sizeof task, FORQ_RESULT_DONE, "ok", 2, 1,
				       0, 0, FORQ_NORMAL, NULL, 0, NULL};
		assert_int_equal(result_format(results_sink_buf(s), &r), 0);
	}
}

/* Check that a write refused part way (a file size limit: EFBIG, as a full
 * disk gives ENOSPC) leaves the file at its last whole line, keeps the lines
 * not written, and writes them, each once, when there is room again. */
static void test_sink_short_write_leaves_whole_lines(void **state)
{
	(void)state;
	char dir[] = "/tmp/forq-results-XXXXXX", path[64];
	struct results_sink s;
	struct rlimit old, lim;
	size_t len;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/out", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(results_sink_init(&s, fd), 0);
	format_records(&s, 0, 20); /* about 4.4 KB */

	void (*old_xfsz)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 1000;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int rc = results_sink_flush(&s);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(rc, -EFBIG);

	char *data = slurp(path, &len);
	assert_true(len <= 1000);
	size_t written = check_whole_lines(data, len, 20, 0);
	assert_true(written >= 1 && written < 20);
	free(data);

	/* Room again: the rest, each line once, nothing glued. */
	assert_int_equal(results_sink_flush(&s), 0);
	data = slurp(path, &len);
	check_whole_lines(data, len, 20, 1);
	free(data);
	signal(SIGXFSZ, old_xfsz);
	results_sink_free(&s);
	close(fd);
	unlink(path);
	rmdir(dir);
}

/* Check that a line cut by a writer that died inside its write is removed
 * before the next line is written, not glued to it; results_fd_mend does
 * the same alone, down to an empty file when no line was whole. */
static void test_sink_mends_a_cut_line(void **state)
{
	(void)state;
	static const char cut[] = "{\"id\":7,\"task\":\"xx";
	char dir[] = "/tmp/forq-results-XXXXXX", path[64];
	struct results_sink s;
	size_t len;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/out", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	assert_true(fd >= 0);
	assert_int_equal(results_sink_init(&s, fd), 0);
	format_records(&s, 0, 2);
	assert_int_equal(results_sink_flush(&s), 0);
	assert_int_equal(write(fd, cut, sizeof cut - 1), (ssize_t)(sizeof cut - 1));
	format_records(&s, 2, 4);
	assert_int_equal(results_sink_flush(&s), 0);
	char *data = slurp(path, &len);
	check_whole_lines(data, len, 4, 1);
	free(data);

	/* Alone: the cut goes, the whole lines stay. */
	assert_int_equal(write(fd, cut, sizeof cut - 1), (ssize_t)(sizeof cut - 1));
	assert_int_equal(results_fd_mend(fd), 0);
	data = slurp(path, &len);
	check_whole_lines(data, len, 4, 1);
	free(data);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(write(fd, cut, sizeof cut - 1), (ssize_t)(sizeof cut - 1));
	assert_int_equal(results_fd_mend(fd), 0);
	data = slurp(path, &len);
	assert_int_equal(len, 0);
	free(data);
	results_sink_free(&s);
	close(fd);
	unlink(path);
	rmdir(dir);
}

/* Check that a writer holding the file's lock makes flush wait a bounded
 * time, give -EAGAIN and keep its lines, and that they go out once it is
 * released. */
static void test_sink_waits_for_the_lock_a_bounded_time(void **state)
{
	(void)state;
	char dir[] = "/tmp/forq-results-XXXXXX", path[64];
	struct results_sink s;
	int ready[2], release[2];
	size_t len;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/out", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(release), 0);
	pid_t holder = fork();
	assert_true(holder >= 0);
	if (holder == 0) {
		struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
		char c = 0;
		if (fcntl(fd, F_SETLK, &l) < 0)
			_exit(1);
		(void)!write(ready[1], &c, 1);
		(void)!read(release[0], &c, 1);
		_exit(0);
	}
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(results_sink_init(&s, fd), 0);
	format_records(&s, 0, 3);
	size_t before = results_sink_buf(&s)->len;
	assert_int_equal(results_sink_flush(&s), -EAGAIN);
	assert_int_equal(results_sink_buf(&s)->len, before);
	assert_int_equal(write(release[1], &c, 1), 1);
	int status;
	assert_int_equal(waitpid(holder, &status, 0), holder);
	assert_int_equal(results_sink_flush(&s), 0);
	char *data = slurp(path, &len);
	check_whole_lines(data, len, 3, 1);
	free(data);
	results_sink_free(&s);
	for (int i = 0; i < 2; i++) {
		close(ready[i]);
		close(release[i]);
	}
	close(fd);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_exact_lines),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test(test_format_longest_fixed_text),
		cmocka_unit_test(test_format_large_payload),
		cmocka_unit_test(test_sink_pipe_two_writers_lines_whole),
		cmocka_unit_test(test_sink_append_file_two_writers_lines_whole),
		cmocka_unit_test(test_sink_init_sets_append_on_regular_file),
		cmocka_unit_test(test_sink_socket_chunks_at_line_ends),
		cmocka_unit_test(test_sink_flush_failure_keeps_buffer),
		cmocka_unit_test(test_sink_partial_flush_keeps_the_rest),
		cmocka_unit_test(test_sink_maybe_flush_waits_for_threshold),
		cmocka_unit_test(test_sink_short_write_leaves_whole_lines),
		cmocka_unit_test(test_sink_mends_a_cut_line),
		cmocka_unit_test(test_sink_waits_for_the_lock_a_bounded_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
