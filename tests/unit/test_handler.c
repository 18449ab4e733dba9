/* test_handler.c — every task kind's success and failure paths, and exec's
 * process hygiene: timeouts, big payloads, closed stdio, no fd leaks.
 * SIGPIPE is left at its default on purpose: handler.h says exec needs no
 * setup, and a stray SIGPIPE would end this process. */
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handler.h"

#define MiB (1024 * 1024)

/* Opens spec, runs payload from an exact-size heap copy (ASan sees a read
 * past len), closes. The result text is left in out. */
static enum handler_status run_with(const char *spec, const struct handler_options *o,
				    const void *payload, size_t len, struct buf *out)
{
	struct handler *h = NULL;
	char err[256];
	if (handler_open(&h, spec, o, err, sizeof err) != 0)
		fail_msg("handler_open(\"%s\"): %s", spec, err);
	char *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, payload, len);
	buf_reset(out);
	enum handler_status st = handler_run(h, copy, len, out);
	free(copy);
	handler_close(h);
	return st;
}

static enum handler_status run(const char *spec, const char *payload, struct buf *out)
{
	return run_with(spec, NULL, payload, strlen(payload), out);
}

static const char *text(const struct buf *b)
{
	return b->len ? b->data : "";
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* ---- open ---- */

/* Check that every documented spec opens and only noop says it is a noop. */
static void test_handler_open_accepts_each_kind(void **state)
{
	(void)state;
	static const struct {
		const char *spec;
		int noop;
	} cases[] = {{"noop", 1}, {"arith", 0}, {"json", 0}, {"exec:cat", 0}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct handler *h = NULL;
		char err[128] = "";
		assert_int_equal(handler_open(&h, cases[i].spec, NULL, err, sizeof err), 0);
		assert_non_null(h);
		assert_int_equal(handler_is_noop(h), cases[i].noop);
		handler_close(h);
	}
	handler_close(NULL);
}

/* Check that an unknown spec is -EINVAL with the reason that lists the kinds. */
static void test_handler_open_unknown_spec_fails(void **state)
{
	(void)state;
	struct handler *h = (struct handler *)&h;
	char err[128];
	assert_int_equal(handler_open(&h, "x", NULL, err, sizeof err), -EINVAL);
	assert_string_equal(err, "unknown handler \"x\" (use noop, arith, json, exec:CMD or proc:CMD)");
	assert_ptr_equal(h, (struct handler *)&h); /* untouched */
	assert_int_equal(handler_open(&h, "", NULL, err, sizeof err), -EINVAL);
	assert_int_equal(handler_open(&h, "ARITH", NULL, err, sizeof err), -EINVAL);
	assert_int_equal(handler_open(&h, "exec", NULL, err, sizeof err), -EINVAL);
	assert_int_equal(handler_open(&h, "exec:", NULL, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "needs a command"));
	assert_int_equal(handler_open(&h, "exec:  ", NULL, NULL, 0), -EINVAL);
}

/* ---- noop, arith ---- */

/* Check that noop succeeds with an empty result whatever the payload. */
static void test_handler_noop_returns_empty_ok(void **state)
{
	(void)state;
	struct buf out = BUF_INIT;
	assert_int_equal(run("noop", "anything", &out), HANDLER_OK);
	assert_int_equal(out.len, 0);
	assert_int_equal(run_with("noop", NULL, "", 0, &out), HANDLER_OK);
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

/* Check that arith formats the value and fails permanently with the reason. */
static void test_handler_arith_results_and_errors(void **state)
{
	(void)state;
	static const struct {
		const char *payload;
		enum handler_status st;
		const char *want;
	} cases[] = {
		{"1+2*3", HANDLER_OK, "7"},
		{"7/2", HANDLER_OK, "3.5"},
		{"-0", HANDLER_OK, "0"},
		{"1/3", HANDLER_OK, "0.3333333333333333"},
		{"1/0", HANDLER_FAIL, "division by zero"},
		{"(1+2", HANDLER_FAIL, "unexpected end of expression (missing ')')"},
		{"1 2", HANDLER_FAIL, "syntax error at column 3: unexpected '2'"},
		{"", HANDLER_FAIL, "empty expression"},
	};
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum handler_status st = run("arith", cases[i].payload, &out);
		if (st != cases[i].st || strcmp(text(&out), cases[i].want) != 0)
			fail_msg("\"%s\": got %d \"%s\", want %d \"%s\"", cases[i].payload, st,
				 text(&out), cases[i].st, cases[i].want);
	}
	buf_free(&out);
}

/* ---- json ---- */

/* Check that each op gives the exact expected text. */
static void test_handler_json_ops(void **state)
{
	(void)state;
	static const struct {
		const char *payload, *want;
	} cases[] = {
		{"{\"op\":\"sum\",\"args\":[1,2,3]}", "6"},
		{"{\"op\":\"min\",\"args\":[3,-1.5,2]}", "-1.5"},
		{"{\"op\":\"max\",\"args\":[3,-1.5,2]}", "3"},
		{"{\"op\":\"avg\",\"args\":[1,2]}", "1.5"},
		{"{\"op\":\"avg\",\"args\":[1,2,2]}", "1.6666666666666667"},
		{"{\"op\":\"sum\",\"args\":[0.1,0.2]}", "0.30000000000000004"},
		{"{\"op\":\"sum\",\"args\":[7]}", "7"},
		{" \n{ \"args\" : [1e20] , \"op\" : \"sum\" }\r\n ", "1e+20"},
		{"{\"op\":\"sum\",\"args\":[1],\"extra\":{\"ignored\":true}}", "1"},
		{"{\"op\":\"sleep_ms\",\"args\":[0]}", "slept 0 ms"},
	};
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum handler_status st = run("json", cases[i].payload, &out);
		if (st != HANDLER_OK || strcmp(text(&out), cases[i].want) != 0)
			fail_msg("%s: got %d \"%s\", want \"%s\"", cases[i].payload, st, text(&out),
				 cases[i].want);
	}
	buf_free(&out);
}

/* Check that sleep_ms really sleeps about N ms. */
static void test_handler_json_sleep_ms_sleeps(void **state)
{
	(void)state;
	struct buf out = BUF_INIT;
	long long t0 = now_ms();
	assert_int_equal(run("json", "{\"op\":\"sleep_ms\",\"args\":[50]}", &out), HANDLER_OK);
	long long took = now_ms() - t0;
	assert_string_equal(text(&out), "slept 50 ms");
	assert_true(took >= 50 && took < 2000);
	buf_free(&out);
}

/* Check that bad payloads fail permanently with a reason naming the problem. */
static void test_handler_json_bad_payloads_fail(void **state)
{
	(void)state;
	static const struct {
		const char *payload, *want;
	} cases[] = {
		{"", "empty payload"},
		{"not json", "invalid JSON at offset 0"},
		{"{\"op\":\"sum\",", "invalid JSON"},
		{"{\"op\":\"sum\",\"args\":[1]} x", "invalid JSON at offset 24: data after the value"},
		{"{\"op\":\"sum\",\"args\":[1]}{}", "data after the value"},
		{"[1,2]", "payload must be a JSON object"},
		{"42", "payload must be a JSON object"},
		{"{\"args\":[1]}", "\"op\" must be a string"},
		{"{\"op\":1,\"args\":[1]}", "\"op\" must be a string"},
		{"{\"op\":\"mul\",\"args\":[1]}", "unknown op \"mul\" (use sum, min, max, avg or sleep_ms)"},
		{"{\"op\":\"a\\nb\",\"args\":[1]}", "unknown op \"a?b\""},
		{"{\"op\":\"sum\"}", "\"args\" must be a non-empty array of numbers"},
		{"{\"op\":\"sum\",\"args\":[]}", "\"args\" must be a non-empty array of numbers"},
		{"{\"op\":\"sum\",\"args\":3}", "\"args\" must be a non-empty array of numbers"},
		{"{\"op\":\"sum\",\"args\":[1,\"2\"]}", "args[1] is not a number"},
		{"{\"op\":\"max\",\"args\":[true]}", "args[0] is not a number"},
		{"{\"op\":\"sum\",\"args\":[null]}", "args[0] is not a number"},
		{"{\"op\":\"sum\",\"args\":[1e999]}", "args[0] is out of range"},
		{"{\"op\":\"sum\",\"args\":[1e308,1e308]}", "result out of range"},
		{"{\"op\":\"sleep_ms\",\"args\":[-1]}", "sleep_ms takes one argument"},
		{"{\"op\":\"sleep_ms\",\"args\":[1,2]}", "sleep_ms takes one argument"},
	};
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum handler_status st = run("json", cases[i].payload, &out);
		if (st != HANDLER_FAIL || !strstr(text(&out), cases[i].want))
			fail_msg("%s: got %d \"%s\", want FAIL \"%s\"", cases[i].payload, st, text(&out),
				 cases[i].want);
		assert_null(strchr(text(&out), '\n'));
	}
	buf_free(&out);
}

/* Check that a NUL right after the JSON inside len is trailing data, not the end. */
static void test_handler_json_embedded_nul_fails(void **state)
{
	(void)state;
	struct buf out = BUF_INIT;
	static const char p[] = "{\"op\":\"sum\",\"args\":[1]}\0";
	assert_int_equal(run_with("json", NULL, p, sizeof p - 1, &out), HANDLER_FAIL);
	assert_non_null(strstr(text(&out), "data after the value"));
	/* Without the NUL, the same bytes are fine. */
	assert_int_equal(run_with("json", NULL, p, sizeof p - 2, &out), HANDLER_OK);
	assert_string_equal(text(&out), "1");
	buf_free(&out);
}

/* ---- exec ---- */

/* Check that stdout is the result, one trailing newline removed. */
static void test_handler_exec_captures_stdout(void **state)
{
	(void)state;
	static const struct {
		const char *spec, *payload, *want;
	} cases[] = {
		{"exec:cat", "hello\n", "hello"},
		{"exec:cat", "no newline", "no newline"},
		{"exec:cat", "two\n\n", "two\n"},
		{"exec:cat", "", ""},
		{"exec:tr a-z A-Z", "shout\n", "SHOUT"},
		{"exec:echo out; echo err >&2", "", "out"},
		{"exec:wc -c", "12345", "5"},
	};
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum handler_status st = run(cases[i].spec, cases[i].payload, &out);
		if (st != HANDLER_OK || strcmp(text(&out), cases[i].want) != 0)
			fail_msg("%s: got %d \"%s\", want \"%s\"", cases[i].spec, st, text(&out),
				 cases[i].want);
	}
	buf_free(&out);
}

/* Check that failures are transient, with status, stderr's last line or signal. */
static void test_handler_exec_failures_are_retry(void **state)
{
	(void)state;
	static const struct {
		const char *spec, *want;
	} cases[] = {
		{"exec:exit 3", "exit status 3"},
		{"exec:echo partial; echo first >&2; echo 'oops: bad\tthing' >&2; echo >&2; exit 4",
		 "exit status 4: oops: bad?thing"},
		/* 300 lines of stderr: the last one is kept, not the first 200 bytes. */
		{"exec:i=0; while [ $i -lt 300 ]; do echo line $i >&2; i=$((i+1)); done; exit 5",
		 "exit status 5: line 299"},
		{"exec:kill -9 $$", "killed by signal 9"},
		{"exec:kill -TERM $$", "killed by signal 15"},
		{"exec:/nonexistent/command", "exit status 127: "},
	};
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum handler_status st = run(cases[i].spec, "", &out);
		if (st != HANDLER_RETRY || strncmp(text(&out), cases[i].want, strlen(cases[i].want)))
			fail_msg("%s: got %d \"%s\", want RETRY \"%s\"", cases[i].spec, st, text(&out),
				 cases[i].want);
	}
	/* The stdout printed before failing is not in the reason. */
	run("exec:echo partial; exit 4", "", &out);
	assert_string_equal(text(&out), "exit status 4");
	buf_free(&out);
}

/* Check that a command past its timeout is killed and reported quickly. */
static void test_handler_exec_timeout_kills_the_group(void **state)
{
	(void)state;
	struct handler_options o = {.task_timeout_ms = 200};
	struct buf out = BUF_INIT;
	static const char *const specs[] = {
		"exec:sleep 5",
		"exec:sleep 5 & sleep 5; wait",         /* a grandchild holds the pipes */
		"exec:exec <&- >&- 2>&-; sleep 5",      /* pipes closed, still running */
		"exec:trap '' TERM INT; sleep 5",
	};
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		long long t0 = now_ms();
		enum handler_status st = run_with(specs[i], &o, "", 0, &out);
		long long took = now_ms() - t0;
		if (st != HANDLER_RETRY || strcmp(text(&out), "timed out after 200 ms") != 0)
			fail_msg("%s: got %d \"%s\"", specs[i], st, text(&out));
		if (took < 190 || took > 2000)
			fail_msg("%s: took %lld ms, want about 200", specs[i], took);
	}
	/* A fast command is not affected by the timeout. */
	assert_int_equal(run_with("exec:echo quick", &o, "", 0, &out), HANDLER_OK);
	assert_string_equal(text(&out), "quick");
	buf_free(&out);
}

/* Check that 1 MiB through cat neither deadlocks nor keeps more than max_output. */
static void test_handler_exec_big_payload_is_truncated_without_deadlock(void **state)
{
	(void)state;
	char *payload = malloc(MiB);
	assert_non_null(payload);
	for (size_t i = 0; i < MiB; i++)
		payload[i] = (char)('a' + i % 26);
	struct buf out = BUF_INIT;
	struct handler_options o = {.task_timeout_ms = 10000};

	assert_int_equal(run_with("exec:cat", &o, payload, MiB, &out), HANDLER_OK);
	assert_int_equal(out.len, HANDLER_MAX_OUTPUT_DEFAULT);
	assert_memory_equal(out.data, payload, HANDLER_MAX_OUTPUT_DEFAULT);

	o.max_output = 10;
	assert_int_equal(run_with("exec:cat", &o, payload, MiB, &out), HANDLER_OK);
	assert_int_equal(out.len, 10);
	assert_memory_equal(out.data, payload, 10);

	o.max_output = 2 * MiB; /* room for all of it: comes back whole */
	assert_int_equal(run_with("exec:cat", &o, payload, MiB, &out), HANDLER_OK);
	assert_int_equal(out.len, MiB);
	assert_memory_equal(out.data, payload, MiB);

	/* Output without input, far over the limit. */
	o.max_output = 0;
	assert_int_equal(run_with("exec:head -c 5000000 /dev/zero", &o, "", 0, &out), HANDLER_OK);
	assert_int_equal(out.len, HANDLER_MAX_OUTPUT_DEFAULT);
	buf_free(&out);
	free(payload);
}

/* Check that a command that never reads stdin is fine: no SIGPIPE reaches us. */
static void test_handler_exec_unread_stdin_is_not_an_error(void **state)
{
	(void)state;
	char *payload = calloc(1, MiB);
	assert_non_null(payload);
	struct buf out = BUF_INIT;
	sigset_t before, after, pending;
	sigprocmask(SIG_SETMASK, NULL, &before);

	assert_int_equal(run_with("exec:echo ignored", NULL, payload, MiB, &out), HANDLER_OK);
	assert_string_equal(text(&out), "ignored");
	assert_int_equal(run_with("exec:head -c 3", NULL, "abcdef", 6, &out), HANDLER_OK);
	assert_string_equal(text(&out), "abc");
	assert_int_equal(run_with("exec:exec <&-; sleep 0.1; echo late", NULL, payload, MiB, &out),
			 HANDLER_OK);
	assert_string_equal(text(&out), "late");

	sigprocmask(SIG_SETMASK, NULL, &after);
	assert_int_equal(sigismember(&after, SIGPIPE), sigismember(&before, SIGPIPE));
	sigpending(&pending);
	assert_int_equal(sigismember(&pending, SIGPIPE), 0);
	buf_free(&out);
	free(payload);
}

/* Check that the command gets default signals, an empty mask and its own group,
 * even when we ignore SIGPIPE and block SIGTERM. */
static void test_handler_exec_child_has_clean_signals_and_own_group(void **state)
{
	(void)state;
	struct buf out = BUF_INIT;
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
	sigset_t term, old_mask;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaction(SIGPIPE, &ign, &old_pipe);
	sigprocmask(SIG_BLOCK, &term, &old_mask);

	/* exec: grep reads its own status. The shell's own mask is no measure:
	 * dash blocks every signal around its fork and wait (seen under ASan). */
	assert_int_equal(run("exec:exec grep -E '^Sig(Ign|Blk)' /proc/self/status", "", &out),
			 HANDLER_OK);
	assert_string_equal(text(&out), "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000");
	assert_int_equal(run("exec:set -- $(cut -d' ' -f1,5 /proc/$$/stat); test $1 = $2 && echo own",
			     "", &out),
			 HANDLER_OK);
	assert_string_equal(text(&out), "own");

	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	buf_free(&out);
}

/* Check that exec works when the caller's stdin and stdout are closed, so the
 * pipes get fds 0 and 1 (consumers may run with stdio closed). */
static void test_handler_exec_works_with_caller_stdio_closed(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct buf out = BUF_INIT;
		struct handler *h;
		close(0);
		close(1);
		if (handler_open(&h, "exec:tr a-z A-Z", NULL, NULL, 0))
			_exit(2);
		enum handler_status st = handler_run(h, "abc", 3, &out);
		_exit(st == HANDLER_OK && out.len == 3 && memcmp(out.data, "ABC", 3) == 0 ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Check that exec reaps only its own child. */
static void test_handler_exec_leaves_other_children_alone(void **state)
{
	(void)state;
	pid_t other = fork();
	assert_true(other >= 0);
	if (other == 0)
		_exit(7);
	usleep(50000); /* let it become a zombie first */
	struct buf out = BUF_INIT;
	assert_int_equal(run("exec:true", "", &out), HANDLER_OK);
	int status;
	assert_int_equal(waitpid(other, &status, 0), other);
	assert_int_equal(WEXITSTATUS(status), 7);
	buf_free(&out);
}

/* ---- exec: nothing of a task outlives it or its caller ---- */

/* 1 once pid has exited (gone, or a zombie nobody reaped yet). */
static int pid_ended(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return !p || p[2] == 'Z' || p[2] == 'X';
}

/* Polls up to ms for pid to end. */
static int pid_ends_within(pid_t pid, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (pid_ended(pid))
			return 1;
		usleep(10000);
	}
	return pid_ended(pid);
}

/* Check that what a command leaves running in the background (its stdio
 * closed, so the task itself ends) is killed when the task ends. */
static void test_handler_exec_kills_what_the_command_left_running(void **state)
{
	(void)state;
	struct buf out = BUF_INIT;
	assert_int_equal(run("exec:sleep 30 >/dev/null 2>&1 </dev/null & echo $!", "", &out),
			 HANDLER_OK);
	pid_t bg = (pid_t)atoi(text(&out));
	assert_true(bg > 0);
	int ended = pid_ends_within(bg, 2000);
	if (!ended)
		kill(bg, SIGKILL);
	assert_true(ended);
	buf_free(&out);
}

struct group_calls {
	int n;
	int pgid[4];
	int ran_before; /* the command's file existed when the hook first ran */
	const char *path;
};

static void record_group(void *ctx, int pgid)
{
	struct group_calls *g = ctx;
	if (g->n == 0) {
		usleep(100000); /* time for the command to run, were it not held */
		g->ran_before = access(g->path, F_OK) == 0;
	}
	if (g->n < 4)
		g->pgid[g->n] = pgid;
	g->n++;
}

/* Check that the group hook hears the command's group (the shell's pid)
 * before the command runs anything, then 0 once the task is over. */
static void test_handler_exec_tells_its_group_before_it_runs(void **state)
{
	(void)state;
	char dir[] = "/tmp/forq-handler-XXXXXX", path[64], spec[128];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/ran", dir);
	snprintf(spec, sizeof spec, "exec:touch %s; echo $$", path);
	struct group_calls g = {.path = path};
	struct handler_options o = {.group_hook = record_group, .group_ctx = &g};
	struct buf out = BUF_INIT;
	assert_int_equal(run_with(spec, &o, "", 0, &out), HANDLER_OK);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.pgid[0], atoi(text(&out)));
	assert_int_equal(g.pgid[1], 0);
	assert_int_equal(g.ran_before, 0);
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);
	rmdir(dir);
	buf_free(&out);
}

/* Check that the command's shell dies with the process that ran it (a
 * consumer SIGKILLed mid-task), rather than running on under init. */
static void test_handler_exec_command_dies_with_its_caller(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t caller = fork();
	assert_true(caller >= 0);
	if (caller == 0) {
		char spec[64];
		struct buf out = BUF_INIT;
		struct handler *h;
		close(fds[0]);
		snprintf(spec, sizeof spec, "exec:echo $$ >&%d; exec %d>&-; sleep 30", fds[1], fds[1]);
		if (handler_open(&h, spec, NULL, NULL, 0))
			_exit(2);
		/* The pipe end must reach the command: not close-on-exec. */
		handler_run(h, "", 0, &out);
		_exit(0);
	}
	close(fds[1]);
	char line[32] = "";
	ssize_t n = read(fds[0], line, sizeof line - 1);
	close(fds[0]);
	assert_true(n > 0);
	pid_t sh = (pid_t)atoi(line);
	assert_true(sh > 0);
	kill(caller, SIGKILL);
	int status;
	assert_int_equal(waitpid(caller, &status, 0), caller);
	int ended = pid_ends_within(sh, 2000);
	if (!ended)
		kill(-sh, SIGKILL);
	assert_true(ended);
}

/* Check that no path leaks an fd: success, failure, timeout, EPIPE, truncation. */
static void test_handler_exec_leaks_no_fd(void **state)
{
	(void)state;
	char *payload = calloc(1, MiB);
	assert_non_null(payload);
	struct handler_options o = {.task_timeout_ms = 100, .max_output = 16};
	struct buf out = BUF_INIT;
	static const char *const specs[] = {
		"exec:cat", "exec:exit 3", "exec:sleep 5", "exec:true", "exec:kill -9 $$",
		"exec:echo err >&2; exit 1", "exec:head -c 100000 /dev/zero",
	};
	int before = count_fds();
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
			run_with(specs[i], &o, payload, i % 2 ? MiB : 10, &out);
	assert_int_equal(count_fds(), before);
	buf_free(&out);
	free(payload);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handler_open_accepts_each_kind),
		cmocka_unit_test(test_handler_open_unknown_spec_fails),
		cmocka_unit_test(test_handler_noop_returns_empty_ok),
		cmocka_unit_test(test_handler_arith_results_and_errors),
		cmocka_unit_test(test_handler_json_ops),
		cmocka_unit_test(test_handler_json_sleep_ms_sleeps),
		cmocka_unit_test(test_handler_json_bad_payloads_fail),
		cmocka_unit_test(test_handler_json_embedded_nul_fails),
		cmocka_unit_test(test_handler_exec_captures_stdout),
		cmocka_unit_test(test_handler_exec_failures_are_retry),
		cmocka_unit_test(test_handler_exec_timeout_kills_the_group),
		cmocka_unit_test(test_handler_exec_big_payload_is_truncated_without_deadlock),
		cmocka_unit_test(test_handler_exec_unread_stdin_is_not_an_error),
		cmocka_unit_test(test_handler_exec_child_has_clean_signals_and_own_group),
		cmocka_unit_test(test_handler_exec_works_with_caller_stdio_closed),
		cmocka_unit_test(test_handler_exec_leaves_other_children_alone),
		cmocka_unit_test(test_handler_exec_leaks_no_fd),
		cmocka_unit_test(test_handler_exec_kills_what_the_command_left_running),
		cmocka_unit_test(test_handler_exec_tells_its_group_before_it_runs),
		cmocka_unit_test(test_handler_exec_command_dies_with_its_caller),
	};
	alarm(120); /* a hang fails the run instead of blocking it */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
