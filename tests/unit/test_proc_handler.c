/* test_proc_handler.c — proc: handlers: the framing's text (frame.h) exactly, and
 * the child's life through handler.h with real sh children: pipelined
 * batches, replies out of order, crashes, framing errors, timeouts that take
 * the whole group, restart delays, stderr in the log (rate-limited), the
 * environment, bounded output, stop, and no fd left behind. SIGPIPE is left
 * at its default on purpose: proc: must need no setup. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "handler.h"

/* The child of most tests, one sh loop (see PROC.md): the payload decides.
 * Its directory is $1. "cat" frames are echoed byte for byte by head -c. */
static const char child_sh[] =
	"d=$1\n"
	"echo started >&2\n"
	"while IFS=' ' read -r w id a n; do\n"
	"  if [ \"$n\" -gt 64 ]; then printf 'RESULT %s %s\\n' \"$id\" \"$n\"; head -c \"$n\";"
	" head -c 1; continue; fi\n"
	"  p=$(head -c \"$n\"; echo x); p=${p%x}; head -c 1 >/dev/null\n"
	"  case $p in\n"
	"  poison) echo boom >&2; exit 3;;\n"
	"  garbage) echo hello; continue;;\n"
	"  hang) sleep 30 & echo $! >\"$d/hung\"; wait; continue;;\n"
	"  big) printf 'RESULT %s 100000\\n' \"$id\"; head -c 100000 /dev/zero | tr '\\0' y;"
	" printf '\\n'; continue;;\n"
	"  fail) printf 'FAIL %s 0\\n\\n' \"$id\"; continue;;\n"
	"  spam) i=0; while [ $i -lt 300 ]; do echo \"spam $i\" >&2; i=$((i+1)); done;;\n"
	"  long) head -c 3000 /dev/zero | tr '\\0' L >&2; echo >&2;;\n"
	"  id) p=$id.$a;;\n"
	"  env) p=\"${FORQ_TOKEN-unset} ${FORQ_ADMIN_TOKEN-unset} ${FORQ_WORKER_TOKEN-unset}"
	" ${NOTIFY_SOCKET-unset} ${FORQ_PROC-unset} ${FORQ_QUEUE-unset} ${FORQ_WORKER-unset}\";;\n"
	"  esac\n"
	"  printf 'RESULT %s %d\\n%s\\n' \"$id\" \"${#p}\" \"$p\"\n"
	"done\n";

static char dir[] = "/tmp/forq-proc-XXXXXX";
static char spec[256];

/* ---- recording hooks ---- */

#define MAX_TASKS 64

struct rec {
	int begun[4 * MAX_TASKS];
	int nbegun;
	struct {
		size_t i;
		enum handler_status st;
		int crashed;
		char text[70000];
		size_t len;
		uint64_t run_ns;
	} done[MAX_TASKS];
	int ndone;
	int groups[16];
	int ngroups;
	char log[65536];
	size_t loglen;
};

static struct rec *R;

static void on_begin(void *ctx, size_t i)
{
	struct rec *r = ctx;
	if (r->nbegun < (int)(sizeof r->begun / sizeof r->begun[0]))
		r->begun[r->nbegun++] = (int)i;
}

static void on_done(void *ctx, size_t i, const struct handler_reply *rep)
{
	struct rec *r = ctx;
	assert_true(r->ndone < MAX_TASKS);
	assert_true(rep->len < sizeof r->done[0].text);
	assert_int_equal(rep->text[rep->len], '\0');
	r->done[r->ndone].i = i;
	r->done[r->ndone].st = rep->status;
	r->done[r->ndone].crashed = rep->crashed;
	memcpy(r->done[r->ndone].text, rep->text, rep->len + 1);
	r->done[r->ndone].len = rep->len;
	r->done[r->ndone].run_ns = rep->run_ns;
	r->ndone++;
}

static void on_group(void *ctx, int pgid)
{
	struct rec *r = ctx;
	if (r->ngroups < 16)
		r->groups[r->ngroups++] = pgid;
}

static void on_log(void *ctx, int level, const char *event, const char *kv)
{
	struct rec *r = ctx;
	int n = snprintf(r->log + r->loglen, sizeof r->log - r->loglen, "%d %s %s\n", level, event,
			 kv);
	if (n > 0 && r->loglen + (size_t)n < sizeof r->log)
		r->loglen += (size_t)n;
}

static struct handler *open_proc(const char *s, int timeout_ms, size_t max_output)
{
	struct handler_options o = {.task_timeout_ms = timeout_ms, .max_output = max_output,
				    .group_hook = on_group, .group_ctx = R,
				    .restart_backoff_ms = 40, .restart_backoff_max_ms = 160,
				    .queue = "/q1", .worker = 3, .log_hook = on_log, .log_ctx = R};
	struct handler *h = NULL;
	char err[128];
	if (handler_open(&h, s, &o, err, sizeof err))
		fail_msg("handler_open(%s): %s", s, err);
	assert_int_equal(handler_is_persistent(h), 1);
	assert_int_equal(handler_prepare(h), 0);
	return h;
}

static int run(struct handler *h, struct handler_task *t, size_t n)
{
	struct handler_batch_ops ops = {on_begin, on_done, R};
	return handler_run_batch(h, t, n, &ops);
}

static int setup(void **state)
{
	(void)state;
	R = calloc(1, sizeof *R);
	return R ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(R);
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 once pid is gone or a zombie, within ms. */
static int ends_within(int pid, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		char path[64], st[512];
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
		FILE *f = fopen(path, "r");
		if (!f)
			return 1;
		size_t n = fread(st, 1, sizeof st - 1, f);
		fclose(f);
		st[n] = '\0';
		char *p = strrchr(st, ')');
		if (!p || p[2] == 'Z' || p[2] == 'X')
			return 1;
		sleep_ms(10);
	}
	return 0;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

#define TASK(ident, s) {.id = (ident), .attempt = 1, .payload = (s), .len = sizeof(s) - 1}

/* ---- the framing's text ---- */

/* Check that TASK frames are exactly the header, the bytes and "\n". */
static void test_frame_put_task_exact_bytes(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	assert_int_equal(frame_put_task(&b, 17, 1, "hello", 5), 0);
	assert_int_equal(frame_put_task(&b, 18, 3, "a\n\0b", 4), 0);
	assert_int_equal(frame_put_task(&b, UINT64_MAX, 1000, "", 0), 0);
	static const char want[] = "TASK 17 1 5\nhello\nTASK 18 3 4\na\n\0b\n"
				   "TASK 18446744073709551615 1000 0\n\n";
	assert_int_equal(b.len, sizeof want - 1);
	assert_memory_equal(b.data, want, sizeof want - 1);
	buf_free(&b);
}

/* Check that reply headers parse as PROC.md says, and bad ones do not. */
static void test_frame_parse_reply_table(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		int ok;
		enum frame_reply w;
		uint64_t id, len;
	} cases[] = {
		{"RESULT 17 5", 1, FRAME_RESULT, 17, 5},
		{"FAIL 3 0", 1, FRAME_FAIL, 3, 0},
		{"RETRY 18446744073709551615 1", 1, FRAME_RETRY, UINT64_MAX, 1},
		{"RESULT  17\t 5 \r", 1, FRAME_RESULT, 17, 5},
		{"  RESULT 1 2", 1, FRAME_RESULT, 1, 2},
		{"", 0, 0, 0, 0},
		{"RESULTS 1 2", 0, 0, 0, 0},
		{"result 1 2", 0, 0, 0, 0},
		{"TASK 1 1 2", 0, 0, 0, 0},
		{"RESULT x 2", 0, 0, 0, 0},
		{"RESULT 1x 2", 0, 0, 0, 0},
		{"RESULT 1", 0, 0, 0, 0},
		{"RESULT 1 2 3", 0, 0, 0, 0},
		{"RESULT 18446744073709551616 1", 0, 0, 0, 0},
		{"RESULT 1 -2", 0, 0, 0, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum frame_reply w;
		uint64_t id = 0, len = 0;
		const char *why = NULL;
		int r = frame_parse_reply(cases[i].line, strlen(cases[i].line), &w, &id, &len, &why);
		if (cases[i].ok) {
			assert_int_equal(r, 0);
			assert_int_equal(w, cases[i].w);
			assert_true(id == cases[i].id);
			assert_true(len == cases[i].len);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_non_null(why);
		}
	}
}

struct got {
	char text[8][64];
	size_t len[8];
	uint64_t id[8];
	int n;
	uint64_t refuse; /* header for this id refused */
};

static int got_header(void *ctx, enum frame_reply w, uint64_t id)
{
	(void)w;
	return id == ((struct got *)ctx)->refuse ? -1 : 0;
}

static void got_reply(void *ctx, enum frame_reply w, uint64_t id, const char *body, size_t len,
		      int nomem)
{
	struct got *g = ctx;
	(void)w;
	assert_int_equal(nomem, 0);
	assert_true(g->n < 8 && len < 64);
	memcpy(g->text[g->n], body, len);
	g->len[g->n] = len;
	g->id[g->n++] = id;
}

/* Check that the reader gives the same replies wherever the stream is cut:
 * in two at every byte, and byte by byte. */
static void test_frame_read_cut_anywhere(void **state)
{
	(void)state;
	static const char s[] = "RESULT 17 5\nHELLO\nRESULT 18 6\r\nA\nB\0CD\r\nFAIL 19 0\n\n"
				"RETRY 20 3\nx\ny\n";
	size_t n = sizeof s - 1;
	for (size_t cut = 0; cut <= n + 1; cut++) {
		struct frame_reader r;
		struct got g = {.refuse = 99};
		struct frame_reply_ops ops = {got_header, got_reply, &g};
		frame_reader_init(&r, 64);
		if (cut <= n) {
			assert_int_equal(frame_read(&r, s, cut, &ops), 0);
			assert_int_equal(frame_read(&r, s + cut, n - cut, &ops), 0);
		} else {
			for (size_t i = 0; i < n; i++)
				assert_int_equal(frame_read(&r, s + i, 1, &ops), 0);
		}
		assert_int_equal(g.n, 4);
		assert_true(g.id[0] == 17 && g.id[1] == 18 && g.id[2] == 19 && g.id[3] == 20);
		assert_int_equal(g.len[0], 5);
		assert_memory_equal(g.text[0], "HELLO", 5);
		assert_int_equal(g.len[1], 6);
		assert_memory_equal(g.text[1], "A\nB\0CD", 6);
		assert_int_equal(g.len[2], 0);
		assert_int_equal(g.len[3], 3);
		frame_reader_free(&r);
	}
}

/* Check each way a stream breaks the framing, and that a body over
 * max_body is cut to it (the rest read and dropped). */
static void test_frame_read_errors_and_cut(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		const char *why;
	} bad[] = {
		{"hello\n", "must start with RESULT"},
		{"RESULT 5 3\nabcd\n", "not followed by"},
		{"RESULT 99 1\nx\n", "task 99, which it does not hold"},
		{"RESULT 1 1\nx\rz", "not followed by"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct frame_reader r;
		struct got g = {.refuse = 99};
		struct frame_reply_ops ops = {got_header, got_reply, &g};
		frame_reader_init(&r, 64);
		assert_int_equal(frame_read(&r, bad[i].s, strlen(bad[i].s), &ops), -1);
		assert_non_null(strstr(r.why, bad[i].why));
		frame_reader_free(&r);
	}
	/* A header of 128 bytes (and its "\r") is fine; 129 is not. */
	char line[200];
	struct frame_reader r;
	struct got g = {.refuse = 99};
	struct frame_reply_ops ops = {got_header, got_reply, &g};
	frame_reader_init(&r, 4);
	memset(line, 'X', sizeof line);
	assert_int_equal(frame_read(&r, line, 129, &ops), 0);
	assert_int_equal(frame_read(&r, line, 1, &ops), -1);
	assert_non_null(strstr(r.why, "over 128 bytes"));
	frame_reader_reset(&r);
	snprintf(line, sizeof line, "RESULT 1 10\n0123456789\nRESULT 2 1\nz\n");
	assert_int_equal(frame_read(&r, line, strlen(line), &ops), 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.len[0], 4);
	assert_memory_equal(g.text[0], "0123", 4);
	assert_memory_equal(g.text[1], "z", 1);
	frame_reader_free(&r);
}

/* ---- a real child ---- */

/* Check that a batch goes to the child at once and every reply ends its
 * task, payloads byte for byte (newlines, NULs, "\r"), run times counted,
 * each task begun as it becomes the one in hand; and the group hook. */
static void test_proc_batch_round_trips_bytes(void **state)
{
	(void)state;
	struct handler *h = open_proc(spec, 0, 0);
	assert_int_equal(R->ngroups, 1);
	assert_true(R->groups[0] > 0);
	char big[5000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)(i * 7);
	char lines[80] = "a\nb\0c\r\n"; /* over 64 bytes: the child echoes it with head -c */
	memset(lines + 7, '\n', sizeof lines - 8);
	lines[sizeof lines - 1] = '!';
	struct handler_task t[] = {
		{.id = 7, .attempt = 1, .payload = lines, .len = sizeof lines},
		{.id = 8, .attempt = 2, .payload = big, .len = sizeof big},
		TASK(9, "id"), TASK(10, "fail"), TASK(11, "plain"),
	};
	assert_int_equal(run(h, t, 5), 5);
	assert_int_equal(R->ndone, 5);
	for (int k = 0; k < 5; k++)
		assert_int_equal(R->done[k].i, (size_t)k); /* this child answers in order */
	assert_int_equal(R->done[0].len, t[0].len);
	assert_memory_equal(R->done[0].text, t[0].payload, t[0].len);
	assert_int_equal(R->done[1].len, sizeof big);
	assert_memory_equal(R->done[1].text, big, sizeof big);
	assert_string_equal(R->done[2].text, "9.1");
	assert_int_equal(R->done[3].st, HANDLER_FAIL);
	assert_string_equal(R->done[3].text, "failed");
	assert_string_equal(R->done[4].text, "plain");
	assert_int_equal(R->done[4].st, HANDLER_OK);
	assert_true(R->done[0].run_ns > 0);
	assert_true(R->nbegun >= 5);
	for (int k = 0; k < 5; k++)
		assert_int_equal(R->begun[k], k);
	handler_close(h);
	assert_int_equal(R->ngroups, 2);
	assert_int_equal(R->groups[1], 0);
	assert_int_equal(ends_within(R->groups[0], 1000), 1);
}

/* Check that replies may come in any order: each ends its own task, and the
 * task in hand is begun again after another one ended. */
static void test_proc_replies_out_of_order(void **state)
{
	(void)state;
	/* "TASK 7 1 1\na\n" and "TASK 8 1 1\nb\n": 13 bytes each. */
	struct handler *h = open_proc("proc:head -c 26 >/dev/null; printf 'RESULT 8 2\\nbb\\n"
				      "RETRY 7 5\\nlater\\n'; cat >/dev/null", 0, 0);
	struct handler_task t[] = {TASK(7, "a"), TASK(8, "b")};
	assert_int_equal(run(h, t, 2), 2);
	assert_int_equal(R->ndone, 2);
	assert_int_equal(R->done[0].i, 1);
	assert_string_equal(R->done[0].text, "bb");
	assert_int_equal(R->done[1].i, 0);
	assert_int_equal(R->done[1].st, HANDLER_RETRY);
	assert_string_equal(R->done[1].text, "later");
	handler_close(h);
}

/* Check that a child dying with tasks in hand fails the oldest as a crash
 * (with its last stderr line), leaves the rest, and restarts at once. */
static void test_proc_crash_fails_the_task_in_hand(void **state)
{
	(void)state;
	struct handler *h = open_proc(spec, 0, 0);
	struct handler_task t[] = {TASK(1, "one"), TASK(2, "poison"), TASK(3, "three")};
	assert_int_equal(run(h, t, 3), 2);
	assert_int_equal(R->ndone, 2);
	assert_string_equal(R->done[0].text, "one");
	assert_int_equal(R->done[1].i, 1);
	assert_int_equal(R->done[1].st, HANDLER_RETRY);
	assert_int_equal(R->done[1].crashed, 1);
	assert_string_equal(R->done[1].text, "handler process died: exit status 3: boom");
	assert_non_null(strstr(R->log, "proc_died child="));
	assert_int_equal(R->groups[R->ngroups - 1], 0);
	assert_int_equal(handler_prepare(h), 0); /* a lone death: at once */
	R->ndone = 0;
	assert_int_equal(run(h, &t[2], 1), 1);
	assert_string_equal(R->done[0].text, "three");
	handler_close(h);
}

/* Check that output that breaks the framing ends the child as a crash. */
static void test_proc_framing_error_is_a_crash(void **state)
{
	(void)state;
	struct handler *h = open_proc(spec, 0, 0);
	struct handler_task t[] = {TASK(1, "garbage"), TASK(2, "x")};
	assert_int_equal(run(h, t, 2), 1);
	assert_int_equal(R->done[0].crashed, 1);
	assert_string_equal(R->done[0].text, "handler process broke the framing: a reply header "
					     "must start with RESULT, FAIL or RETRY (got \"hello\")");
	handler_close(h);
}

/* Check that a timeout kills the child's whole group (a background job
 * too), fails the task in hand as a retry (not a crash), and restarts. */
static void test_proc_timeout_kills_the_group(void **state)
{
	(void)state;
	struct handler *h = open_proc(spec, 300, 0);
	struct handler_task t[] = {TASK(1, "ok"), TASK(2, "hang"), TASK(3, "x")};
	long long t0 = now_ms();
	assert_int_equal(run(h, t, 3), 2);
	assert_true(now_ms() - t0 < 3000);
	assert_int_equal(R->done[1].i, 1);
	assert_int_equal(R->done[1].crashed, 0);
	assert_int_equal(R->done[1].st, HANDLER_RETRY);
	assert_string_equal(R->done[1].text, "timed out after 300 ms");
	char path[64], line[32] = "";
	snprintf(path, sizeof path, "%s/hung", dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof line, f));
	fclose(f);
	unlink(path);
	assert_int_equal(ends_within(atoi(line), 1000), 1);
	assert_non_null(strstr(R->log, "proc_timeout"));
	assert_int_equal(handler_prepare(h), 0);
	handler_close(h);
}

/* Check the restart delays of a child that keeps dying, those of forqd's
 * consumers: at once, then 80, 160, 160 ms (backoff 40 doubled, max 160),
 * and proc_crash_loop in the log. */
static void test_proc_restart_backoff(void **state)
{
	(void)state;
	struct handler *h = open_proc("proc:exit 1", 0, 0);
	static const int want[] = {0, 80, 160, 160, 160};
	for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
		sleep_ms(60); /* it has died meanwhile */
		int ms = handler_prepare(h);
		assert_true(ms <= want[k] && ms >= want[k] / 2);
		if (ms) {
			sleep_ms(ms);
			assert_int_equal(handler_prepare(h), 0);
		}
	}
	assert_non_null(strstr(R->log, "proc_crash_loop"));
	handler_close(h);
}

/* Check that stderr lines reach the log hook, "\r" and overlong lines
 * handled, past 100 a second counted instead. */
static void test_proc_stderr_lines(void **state)
{
	(void)state;
	struct handler *h = open_proc(spec, 0, 0);
	struct handler_task t[] = {TASK(1, "long"), TASK(2, "spam")};
	assert_int_equal(run(h, t, 2), 2);
	handler_close(h);
	assert_non_null(strstr(R->log, "2 proc_stderr child="));
	assert_non_null(strstr(R->log, " line=\"started\"\n"));
	const char *cut = strstr(R->log, "\" cut=1\n"), *l = cut;
	assert_non_null(cut);
	while (l > R->log && l[-1] != '\n')
		l--;
	assert_true(cut - l < 700); /* 1024 bytes kept, what fits a log line shown */
	int n = 0;
	for (const char *p = R->log; (p = strstr(p, "proc_stderr child=")); p++)
		n++;
	assert_true(n >= 100 && n <= 200); /* 302 lines: 100 a second */
	assert_non_null(strstr(R->log, "proc_stderr_dropped child="));
}

/* Check the child's environment: no tokens, FORQ_PROC/QUEUE/WORKER set. */
static void test_proc_environment(void **state)
{
	(void)state;
	setenv("FORQ_TOKEN", "t1", 1);
	setenv("FORQ_ADMIN_TOKEN", "t2", 1);
	setenv("FORQ_WORKER_TOKEN", "t3", 1);
	setenv("NOTIFY_SOCKET", "/x", 1);
	setenv("FORQ_QUEUE", "/not-this-one", 1);
	struct handler *h = open_proc(spec, 0, 0);
	struct handler_task t[] = {TASK(1, "env")};
	assert_int_equal(run(h, t, 1), 1);
	assert_string_equal(R->done[0].text, "unset unset unset unset 1 /q1 3");
	handler_close(h);
	unsetenv("FORQ_TOKEN");
	unsetenv("FORQ_ADMIN_TOKEN");
	unsetenv("FORQ_WORKER_TOKEN");
	unsetenv("NOTIFY_SOCKET");
	unsetenv("FORQ_QUEUE");
	assert_string_equal(getenv("PATH") ? "ok" : "no PATH", "ok");
}

/* Check that a result over max_output is cut, and the next reply still
 * parses. */
static void test_proc_output_is_bounded(void **state)
{
	(void)state;
	struct handler *h = open_proc(spec, 0, 1000);
	struct handler_task t[] = {TASK(1, "big"), TASK(2, "after")};
	assert_int_equal(run(h, t, 2), 2);
	assert_int_equal(R->done[0].len, 1000);
	assert_int_equal(R->done[0].text[999], 'y');
	assert_string_equal(R->done[1].text, "after");
	handler_close(h);
}

/* Check handler_run on proc: (a batch of one; ids 1, 2, ...), and that a
 * child that ignores EOF is killed 2 s into the close, one that exits at
 * EOF at once. */
static void test_proc_run_one_and_close(void **state)
{
	(void)state;
	struct buf out = BUF_INIT;
	struct handler *h = open_proc(spec, 0, 0);
	assert_int_equal(handler_run(h, "id", 2, &out), HANDLER_OK);
	assert_string_equal(out.data, "1.1");
	buf_reset(&out);
	assert_int_equal(handler_run(h, "id", 2, &out), HANDLER_OK);
	assert_string_equal(out.data, "2.1");
	long long t0 = now_ms();
	handler_close(h);
	assert_true(now_ms() - t0 < 1000);

	/* Without options (forq worker's way): the defaults, its stderr ours. */
	assert_int_equal(handler_open(&h, spec, NULL, NULL, 0), 0);
	buf_reset(&out);
	assert_int_equal(handler_run(h, "id", 2, &out), HANDLER_OK);
	assert_string_equal(out.data, "1.1");
	buf_reset(&out);
	assert_int_equal(handler_run(h, "poison", 6, &out), HANDLER_RETRY);
	assert_string_equal(out.data, "handler process died: exit status 3");
	buf_reset(&out);
	assert_int_equal(handler_run(h, "id", 2, &out), HANDLER_OK);
	assert_string_equal(out.data, "3.1");
	handler_close(h);

	h = open_proc("proc:trap '' TERM; sleep 30", 0, 0);
	int pg = R->groups[R->ngroups - 1];
	t0 = now_ms();
	handler_close(h);
	long long took = now_ms() - t0;
	assert_true(took >= 1900 && took < 4000);
	assert_int_equal(ends_within(pg, 1000), 1);
	buf_free(&out);
}

/* Check that starts, crashes, timeouts and closes leave no fd behind, and
 * that a child gone before it read its tasks raises no SIGPIPE here. */
static void test_proc_leaks_no_fd(void **state)
{
	(void)state;
	char *junk = calloc(1, 300000);
	assert_non_null(junk);
	int before = count_fds();
	for (int round = 0; round < 3; round++) {
		struct handler *h = open_proc(spec, 200, 0);
		struct handler_task t[] = {TASK(1, "ok"), TASK(2, "poison"), TASK(3, "hang")};
		run(h, t, 3);
		handler_prepare(h);
		run(h, &t[2], 1);
		handler_close(h);
		h = open_proc("proc:exec 0<&-; sleep 1", 0, 0);
		struct handler_task big = {.id = 1, .attempt = 1, .payload = junk, .len = 300000};
		assert_true(run(h, &big, 1) >= 0);
		handler_close(h);
	}
	assert_int_equal(count_fds(), before);
	free(junk);
}

int main(void)
{
	char path[64];
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof path, "%s/child.sh", dir);
	FILE *f = fopen(path, "w");
	if (!f || fputs(child_sh, f) < 0 || fclose(f))
		return 1;
	snprintf(spec, sizeof spec, "proc:sh %s %s", path, dir);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_put_task_exact_bytes),
		cmocka_unit_test(test_frame_parse_reply_table),
		cmocka_unit_test(test_frame_read_cut_anywhere),
		cmocka_unit_test(test_frame_read_errors_and_cut),
		cmocka_unit_test_setup_teardown(test_proc_batch_round_trips_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proc_replies_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proc_crash_fails_the_task_in_hand, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proc_framing_error_is_a_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proc_timeout_kills_the_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proc_restart_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proc_stderr_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proc_environment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proc_output_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proc_run_one_and_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proc_leaks_no_fd, setup, teardown),
	};
	alarm(120); /* a hang fails the run instead of blocking it */
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(path);
	snprintf(path, sizeof path, "%s/hung", dir);
	unlink(path);
	rmdir(dir);
	return r;
}
