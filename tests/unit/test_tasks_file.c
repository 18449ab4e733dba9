/* test_tasks_file.c — tasks-file line grammar and the block reader. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "forq.h"
#include "tasks_file.h"

#define MAXP 1024
#define MAX_LINE (MAXP + TASKS_LINE_SLACK)

struct line_case {
	const char *name;
	const char *line;
	size_t len;          /* 0: strlen(line) */
	int rc;
	int prio;
	const char *payload; /* rc 1 */
	const char *err;     /* rc -1 */
};

static const struct line_case line_cases[] = {
	{"plain payload", "1+2", 0, 1, FORQ_NORMAL, "1+2", NULL},
	{"inner spaces kept", "sleep 10 ms", 0, 1, FORQ_NORMAL, "sleep 10 ms", NULL},
	{"priority high", "priority=high 1+2", 0, 1, FORQ_HIGH, "1+2", NULL},
	{"priority normal", "priority=normal x", 0, 1, FORQ_NORMAL, "x", NULL},
	{"priority low, tab and spaces", "priority=low\t  x y", 0, 1, FORQ_LOW, "x y", NULL},
	{"leading blanks before prefix", " \tpriority=high x", 0, 1, FORQ_HIGH, "x", NULL},
	{"comment", "# a comment", 0, 0, 0, NULL, NULL},
	{"indented comment", "   \t# priority=urgent", 0, 0, 0, NULL, NULL},
	{"empty line", "", 0, 0, 0, NULL, NULL},
	{"blank line", " \t  ", 0, 0, 0, NULL, NULL},
	{"lone CR", "\r", 0, 0, 0, NULL, NULL},
	{"CRLF stripped", "1+2\r", 0, 1, FORQ_NORMAL, "1+2", NULL},
	{"trailing blanks and CR stripped", "  a b \t \r", 0, 1, FORQ_NORMAL, "a b", NULL},
	{"hash inside payload kept", "echo #1", 0, 1, FORQ_NORMAL, "echo #1", NULL},
	{"prefix needs exact case", "Priority=high x", 0, 1, FORQ_NORMAL, "Priority=high x", NULL},
	{"unknown priority", "priority=urgent x", 0, -1, 0, NULL,
	 "unknown priority \"urgent\" (use high, normal or low)"},
	{"priority glued to payload", "priority=highx", 0, -1, 0, NULL,
	 "unknown priority \"highx\" (use high, normal or low)"},
	{"unknown priority shown safely", "priority=\x1b[31m x", 0, -1, 0, NULL,
	 "unknown priority \"?[31m\" (use high, normal or low)"},
	{"long unknown priority truncated", "priority=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa x", 0, -1, 0,
	 NULL, "unknown priority \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" (use high, normal or low)"},
	{"priority= with nothing", "priority=", 0, -1, 0, NULL,
	 "missing priority after \"priority=\" (use high, normal or low)"},
	{"priority= then payload", "priority= x", 0, -1, 0, NULL,
	 "missing priority after \"priority=\" (use high, normal or low)"},
	{"priority without payload", "priority=high", 0, -1, 0, NULL,
	 "empty payload after priority=high"},
	{"priority with only blanks", "priority=low  \t\r", 0, -1, 0, NULL,
	 "empty payload after priority=low"},
	{"NUL byte", "ab\0cd", 5, -1, 0, NULL, "line contains a NUL byte"},
	{"NUL byte in a comment is ignored", "# a\0b", 5, 0, 0, NULL, NULL},
};

/* Check that each line of the table parses to its expected task, skip or error. */
static void test_line_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof line_cases / sizeof line_cases[0]; i++) {
		const struct line_case *c = &line_cases[i];
		size_t len = c->len ? c->len : strlen(c->line);
		struct task_line t = {-1, NULL, 0};
		char err[256] = "";
		int rc = tasks_line_parse(c->line, len, MAXP, &t, err, sizeof err);
		if (rc != c->rc)
			fail_msg("%s: rc %d, want %d (%s)", c->name, rc, c->rc, err);
		if (rc == 1 && (t.prio != c->prio || t.len != strlen(c->payload) ||
				memcmp(t.payload, c->payload, t.len) != 0))
			fail_msg("%s: prio %d payload \"%.*s\", want %d \"%s\"", c->name, t.prio,
				 (int)t.len, t.payload, c->prio, c->payload);
		if (rc == -1 && strcmp(err, c->err) != 0)
			fail_msg("%s: error \"%s\", want \"%s\"", c->name, err, c->err);
	}
}

/* Check that a payload of exactly max_payload is a task and one byte more is
 * refused with both sizes in the message. */
static void test_line_parse_payload_limit(void **state)
{
	(void)state;
	char line[2100];
	struct task_line t;
	char err[256];

	memset(line, 'x', sizeof line);
	assert_int_equal(tasks_line_parse(line, MAXP, MAXP, &t, err, sizeof err), 1);
	assert_int_equal(t.len, MAXP);
	assert_int_equal(tasks_line_parse(line, MAXP + 1, MAXP, &t, err, sizeof err), -1);
	assert_string_equal(err, "payload is 1025 bytes, over the limit of 1024");
	assert_int_equal(tasks_line_parse(line, 2048, MAXP, &t, err, sizeof err), -1);
	assert_string_equal(err, "payload is 2048 bytes, over the limit of 1024");
	/* blanks around do not count */
	memcpy(line, "priority=low   ", 15);
	assert_int_equal(tasks_line_parse(line, 15 + MAXP, MAXP, &t, err, sizeof err), 1);
	assert_int_equal(t.prio, FORQ_LOW);
	assert_int_equal(t.len, MAXP);
}

/* Check that a NULL error buffer of size 0 is never written. */
static void test_line_parse_without_err_buffer(void **state)
{
	(void)state;
	struct task_line t;
	assert_int_equal(tasks_line_parse("priority=x y", 12, MAXP, &t, NULL, 0), -1);
}

/* Each file test works in its own temp dir. */
struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/forq-tasks-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof f->path, "%s/tasks.txt", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
}

/* What one tasks_reader_next call should give. */
struct want {
	int rc;
	unsigned line;
	int prio;
	const char *text; /* payload (rc 1) or error suffix after "FILE:" (rc -1) */
};

static void expect_reads_as(const char *path, enum tasks_format format, int prio, size_t maxp,
			    const struct want *w, size_t n)
{
	struct tasks_reader *r;
	char err[512];
	assert_int_equal(tasks_reader_open_as(&r, path, format, prio, maxp, err, sizeof err), 0);
	for (size_t i = 0; i < n; i++) {
		struct task_line t;
		unsigned line = 0;
		int rc = tasks_reader_next(r, &t, &line, err, sizeof err);
		assert_int_equal(rc, w[i].rc);
		if (rc == 0)
			continue;
		assert_int_equal(line, w[i].line);
		if (rc == 1) {
			assert_int_equal(t.prio, w[i].prio);
			assert_int_equal(t.len, strlen(w[i].text));
			assert_memory_equal(t.payload, w[i].text, t.len);
		} else {
			char full[512];
			snprintf(full, sizeof full, "%s:%s", path, w[i].text ? w[i].text : "(no text)");
			assert_string_equal(err, full);
		}
	}
	tasks_reader_close(r);
}

static void expect_reads(const char *path, size_t maxp, const struct want *w, size_t n)
{
	expect_reads_as(path, TASKS_LINES, FORQ_NORMAL, maxp, w, n);
}

/* Check that NUL-ended records are payloads byte for byte (newlines, blanks,
 * '#', "priority=" and all), with the reader's priority; an empty or
 * oversize record is refused by its number and reading goes on. */
static void test_reader_nul_records(void **state)
{
	struct fixture *f = *state;
	static const char text[] = "two\nlines\0 # not a comment \0\0priority=high x\0"
				   "0123456789012345678901234567890123456789012345678901234567890123"
				   "0123456789012345678901234567890123456789012345678901234567890123"
				   "\0last without end";
	static const struct want w[] = {
		{1, 1, FORQ_LOW, "two\nlines"},
		{1, 2, FORQ_LOW, " # not a comment "},
		{-1, 3, 0, " record 3: empty payload"},
		{1, 4, FORQ_LOW, "priority=high x"},
		{-1, 5, 0, " record 5: payload is 128 bytes, over the limit of 100"},
		{1, 6, FORQ_LOW, "last without end"},
		{0, 0, 0, NULL},
	};
	write_file(f->path, text, sizeof text - 1);
	expect_reads_as(f->path, TASKS_NUL, FORQ_LOW, 100, w, sizeof w / sizeof w[0]);
}

/* Check that a JSON line gives a string's decoded text or another value's
 * compact JSON, blank lines are skipped, and bad lines are refused by line
 * number: malformed, null, empty, \u0000, text after the value, too long. */
static void test_reader_json_lines(void **state)
{
	struct fixture *f = *state;
	static const char text[] = "\"a\\nb\"\n"
				   "  {\"k\": [1, 2]}  \r\n"
				   "\n"
				   "\"\\u00e9\"\n"
				   "null\n"
				   "\"\"\n"
				   "\"x\\u0000y\"\n"
				   "[1\n"
				   "1 2\n"
				   "42\n";
	static const struct want w[] = {
		{1, 1, FORQ_HIGH, "a\nb"},
		{1, 2, FORQ_HIGH, "{\"k\":[1,2]}"},
		{1, 4, FORQ_HIGH, "\xc3\xa9"},
		{-1, 5, 0, "5: payload is null"},
		{-1, 6, 0, "6: empty payload"},
		{-1, 7, 0, "7: \\u0000 is not allowed in payloads"},
		{-1, 8, 0, "8: malformed JSON at byte 2"},
		{-1, 9, 0, "9: text after the JSON value at byte 3"},
		{1, 10, FORQ_HIGH, "42"},
		{0, 0, 0, NULL},
	};
	write_file(f->path, text, sizeof text - 1);
	expect_reads_as(f->path, TASKS_JSONL, FORQ_HIGH, MAXP, w, sizeof w / sizeof w[0]);
	assert_int_equal(tasks_format_parse("jsonl"), TASKS_JSONL);
	assert_int_equal(tasks_format_parse("nul"), TASKS_NUL);
	assert_int_equal(tasks_format_parse("lines"), TASKS_LINES);
	assert_int_equal(tasks_format_parse("csv"), -EINVAL);
}

/* Check that good lines come back with their line numbers and each bad line is
 * reported as FILE:LINE: reason, with reading going on after it. */
static void test_reader_reports_bad_lines_and_goes_on(void **state)
{
	struct fixture *f = *state;
	static const char text[] = "# header\n"
				   "1+2\n"
				   "\n"
				   "priority=urgent 5*5\n"
				   "priority=high 2*3\r\n"
				   "   \n"
				   "priority=\n"
				   "priority=low sleep 1\n"
				   "priority=normal\n"
				   "bad\0byte\n"
				   "last\n";
	static const struct want w[] = {
		{1, 2, FORQ_NORMAL, "1+2"},
		{-1, 4, 0, "4: unknown priority \"urgent\" (use high, normal or low)"},
		{1, 5, FORQ_HIGH, "2*3"},
		{-1, 7, 0, "7: missing priority after \"priority=\" (use high, normal or low)"},
		{1, 8, FORQ_LOW, "sleep 1"},
		{-1, 9, 0, "9: empty payload after priority=normal"},
		{-1, 10, 0, "10: line contains a NUL byte"},
		{1, 11, FORQ_NORMAL, "last"},
		{0, 0, 0, NULL},
		{0, 0, 0, NULL}, /* and again: end of file stays end of file */
	};
	write_file(f->path, text, sizeof text - 1);
	expect_reads(f->path, MAXP, w, sizeof w / sizeof w[0]);
}

/* Check that the last line is read when the file has no final newline. */
static void test_reader_last_line_without_newline(void **state)
{
	struct fixture *f = *state;
	static const char text[] = "a\npriority=low b\r";
	static const struct want w[] = {
		{1, 1, FORQ_NORMAL, "a"},
		{1, 2, FORQ_LOW, "b"},
		{0, 0, 0, NULL},
	};
	write_file(f->path, text, sizeof text - 1);
	expect_reads(f->path, MAXP, w, sizeof w / sizeof w[0]);
}

/* Check that an empty file gives end of file at once. */
static void test_reader_empty_file_is_end(void **state)
{
	struct fixture *f = *state;
	static const struct want w[] = {{0, 0, 0, NULL}};
	write_file(f->path, "", 0);
	expect_reads(f->path, MAXP, w, 1);
}

/* Check that a 200 KB line is reported once, skipped whole, and the lines
 * around it are read fine. */
static void test_reader_skips_overlong_line(void **state)
{
	struct fixture *f = *state;
	size_t big = 200 * 1024;
	struct buf b = BUF_INIT;
	char *x = malloc(big);
	assert_non_null(x);
	memset(x, 'x', big);
	assert_int_equal(buf_puts(&b, "before\n"), 0);
	assert_int_equal(buf_append(&b, x, big), 0);
	assert_int_equal(buf_puts(&b, "\nafter\n"), 0);
	write_file(f->path, b.data, b.len);
	static const struct want w[] = {
		{1, 1, FORQ_NORMAL, "before"},
		{-1, 2, 0, "2: line is longer than 1088 bytes"},
		{1, 3, FORQ_NORMAL, "after"},
		{0, 0, 0, NULL},
	};
	expect_reads(f->path, MAXP, w, sizeof w / sizeof w[0]);
	buf_free(&b);
	free(x);
}

/* Check that a line longer than the read block (3 MiB) is skipped across
 * several reads, and one at the end of file without '\n' too. */
static void test_reader_skips_line_longer_than_block(void **state)
{
	struct fixture *f = *state;
	size_t big = 3 << 20;
	struct buf b = BUF_INIT;
	char *x = malloc(big);
	assert_non_null(x);
	memset(x, 'y', big);
	assert_int_equal(buf_append(&b, x, big), 0);
	assert_int_equal(buf_puts(&b, "\nok\n"), 0);
	assert_int_equal(buf_append(&b, x, big), 0);
	write_file(f->path, b.data, b.len);
	static const struct want w[] = {
		{-1, 1, 0, "1: line is longer than 1088 bytes"},
		{1, 2, FORQ_NORMAL, "ok"},
		{-1, 3, 0, "3: line is longer than 1088 bytes"},
		{0, 0, 0, NULL},
	};
	expect_reads(f->path, MAXP, w, sizeof w / sizeof w[0]);
	buf_free(&b);
	free(x);
}

/* Check the line length limit: max_payload + slack bytes is read (and then
 * judged by the payload limit), one byte more is too long. */
static void test_reader_line_limit_edges(void **state)
{
	struct fixture *f = *state;
	struct buf b = BUF_INIT;
	char pad[MAX_LINE + 1];
	memset(pad, ' ', sizeof pad);
	/* line 1: "a" then blanks up to exactly MAX_LINE bytes */
	assert_int_equal(buf_putc(&b, 'a'), 0);
	assert_int_equal(buf_append(&b, pad, MAX_LINE - 1), 0);
	assert_int_equal(buf_putc(&b, '\n'), 0);
	/* line 2: MAX_LINE + 1 bytes */
	assert_int_equal(buf_putc(&b, 'b'), 0);
	assert_int_equal(buf_append(&b, pad, MAX_LINE), 0);
	assert_int_equal(buf_putc(&b, '\n'), 0);
	/* line 3: last line, no newline, exactly MAX_LINE bytes */
	assert_int_equal(buf_putc(&b, 'c'), 0);
	assert_int_equal(buf_append(&b, pad, MAX_LINE - 1), 0);
	write_file(f->path, b.data, b.len);
	static const struct want w[] = {
		{1, 1, FORQ_NORMAL, "a"},
		{-1, 2, 0, "2: line is longer than 1088 bytes"},
		{1, 3, FORQ_NORMAL, "c"},
		{0, 0, 0, NULL},
	};
	expect_reads(f->path, MAXP, w, sizeof w / sizeof w[0]);
	buf_free(&b);
}

/* Check that many lines crossing several 1 MiB blocks all come back in order,
 * whole, with their line numbers. */
static void test_reader_lines_across_blocks(void **state)
{
	struct fixture *f = *state;
	enum { LINES = 100000 };
	struct buf b = BUF_INIT;
	for (unsigned i = 0; i < LINES; i++) {
		if (i % 1000 == 999) {
			assert_int_equal(buf_puts(&b, "# comment\n"), 0);
			continue;
		}
		/* lengths 1 .. 60 so that lines end at every offset of a block */
		assert_int_equal(buf_printf(&b, "%s%u:%.*s\n", i % 3 == 0 ? "priority=low " : "", i,
					    (int)(i % 53), "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"),
				 0);
	}
	assert_true(b.len > (2u << 20));
	write_file(f->path, b.data, b.len);

	struct tasks_reader *r;
	char err[256];
	assert_int_equal(tasks_reader_open(&r, f->path, MAXP, err, sizeof err), 0);
	unsigned got = 0;
	for (unsigned i = 0; i < LINES; i++) {
		if (i % 1000 == 999)
			continue;
		struct task_line t;
		unsigned line;
		char want[128];
		int n = snprintf(want, sizeof want, "%u:%.*s", i, (int)(i % 53),
				 "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
		assert_int_equal(tasks_reader_next(r, &t, &line, err, sizeof err), 1);
		assert_int_equal(line, i + 1);
		assert_int_equal(t.prio, i % 3 == 0 ? FORQ_LOW : FORQ_NORMAL);
		assert_int_equal(t.len, (size_t)n);
		assert_memory_equal(t.payload, want, t.len);
		got++;
	}
	struct task_line t;
	unsigned line;
	assert_int_equal(tasks_reader_next(r, &t, &line, err, sizeof err), 0);
	assert_int_equal(got, LINES - LINES / 1000);
	tasks_reader_close(r);
	buf_free(&b);
}

/* Check that a missing file fails with -ENOENT and a message naming it. */
static void test_reader_open_missing_file_fails(void **state)
{
	struct fixture *f = *state;
	struct tasks_reader *r = (struct tasks_reader *)&r;
	char err[256];
	assert_int_equal(tasks_reader_open(&r, f->path, MAXP, err, sizeof err), -ENOENT);
	assert_null(r);
	char want[256];
	snprintf(want, sizeof want, "cannot open %s: No such file or directory", f->path);
	assert_string_equal(err, want);
}

/* Check that a read error (a directory) is returned as -errno with a message,
 * and again on the next call. */
static void test_reader_read_error_is_sticky(void **state)
{
	struct fixture *f = *state;
	struct tasks_reader *r;
	struct task_line t;
	unsigned line;
	char err[256], want[256];
	assert_int_equal(tasks_reader_open(&r, f->dir, MAXP, err, sizeof err), 0);
	snprintf(want, sizeof want, "cannot read %s: Is a directory", f->dir);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(tasks_reader_next(r, &t, &line, err, sizeof err), -EISDIR);
		assert_string_equal(err, want);
	}
	tasks_reader_close(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_parse_table),
		cmocka_unit_test(test_line_parse_payload_limit),
		cmocka_unit_test(test_line_parse_without_err_buffer),
		cmocka_unit_test_setup_teardown(test_reader_reports_bad_lines_and_goes_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_nul_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_json_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_last_line_without_newline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_empty_file_is_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_skips_overlong_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_skips_line_longer_than_block, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_line_limit_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_lines_across_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_open_missing_file_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_read_error_is_sticky, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
