/* test_config.c — forqd's flags (service/config.c): defaults from the table,
 * every flag type, every range at min, max and max+1, unknown flags and
 * arguments, the pairs that exclude each other, and the admin token's rules
 * (file and environment). Each case runs in its own temp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "flags.h"
#include "forq.h"
#include "forq_admin.h"
#include "log.h"

#define MAX_ARGS 16

struct fixture {
	char dir[64];
	struct forqd_config c;
	char err[512];
};

static int setup(void **state)
{
	struct fixture *x = calloc(1, sizeof *x);
	assert_non_null(x);
	snprintf(x->dir, sizeof x->dir, "/tmp/test_config_XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	unsetenv("FORQ_ADMIN_TOKEN");
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *x = *state;
	char cmd[128];
	config_free(&x->c);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->dir);
	assert_int_equal(system(cmd), 0);
	unsetenv("FORQ_ADMIN_TOKEN");
	free(x);
	return 0;
}

/* Runs config_parse on "forqd" followed by the NULL-terminated args, with
 * stdout (--help, --version) sent to /dev/null. */
static int parse(struct fixture *x, ...)
{
	char *argv[MAX_ARGS + 2] = {"forqd"};
	int argc = 1, r, out = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY);
	va_list ap;
	va_start(ap, x);
	for (char *a; (a = va_arg(ap, char *)) && argc <= MAX_ARGS;)
		argv[argc++] = a;
	va_end(ap);
	config_free(&x->c);
	x->err[0] = '\0';
	fflush(stdout);
	dup2(null, STDOUT_FILENO);
	r = config_parse(&x->c, argc, argv, x->err, sizeof x->err);
	fflush(stdout);
	dup2(out, STDOUT_FILENO);
	close(out);
	close(null);
	return r;
}

static const struct flag_spec *row(const char *name)
{
	size_t n;
	const struct flag_spec *rows = config_flags(&n);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(rows[i].name, name))
			return &rows[i];
	fail_msg("no row --%s", name);
	return NULL;
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Check that with no flags every field holds its row's default: the table's
 * constant, libforq's forq_options_default for the queue's sizes, the CPU
 * count for --workers; and that --help shows the defaults README documents. */
static void test_config_defaults_equal_the_table(void **state)
{
	struct fixture *x = *state;
	struct forq_options core;
	struct forqd_config d;
	size_t n;
	const struct flag_spec *rows = config_flags(&n);

	assert_int_equal(parse(x, NULL), 0);
	config_defaults(&d);
	forq_options_default(&core);
	for (size_t i = 0; i < n; i++) {
		const struct flag_spec *r = &rows[i];
		const char *f = (const char *)&x->c + r->off;
		long long v = 0;
		if (r->type == FLAG_STR) {
			const char *s = *(const char *const *)(const void *)f;
			if (r->sdef)
				assert_string_equal(s, r->sdef);
			else
				assert_null(s);
			continue;
		}
		if (r->type == FLAG_INT || r->type == FLAG_ON || r->type == FLAG_NAME)
			v = *(const int *)(const void *)f;
		else if (r->type == FLAG_U32)
			v = *(const uint32_t *)(const void *)f;
		else if (r->type == FLAG_REAL)
			assert_true(*(const double *)(const void *)f == r->rdef);
		else
			continue;
		if (r->from)
			assert_int_equal(v, *(const uint32_t *)(const void *)((const char *)&core +
										   r->from - 1));
		else if (!r->shown && r->type != FLAG_REAL)
			assert_int_equal(v, r->def);
		if (r->type != FLAG_REAL && r->type != FLAG_ON && r->type != FLAG_NAME)
			assert_true(v >= r->lo && v <= r->hi);
	}
	/* The queue's sizes are libforq's, not numbers of config.c's own. */
	assert_int_equal(x->c.capacity, core.capacity);
	assert_int_equal(x->c.max_payload, core.max_payload);
	assert_int_equal(x->c.batch, core.batch_max);
	assert_int_equal(x->c.max_attempts, core.max_attempts);
	assert_int_equal(x->c.backoff_ms, core.backoff_ms);
	assert_int_equal(x->c.recent, core.recent_max);
	assert_int_equal(x->c.dead_max, core.dead_max);
	assert_true(x->c.workers >= 1 && x->c.workers <= 64);
	assert_int_equal(x->c.workers, d.workers);
	assert_int_equal(x->c.log_level, LOG_INFO);
	assert_int_equal(x->c.recover, 1);
	assert_null(x->c.admin_token);

	/* --help's default column, as README's flag table has it. */
	static const struct {
		const char *flag, *shown;
	} want[] = {
		{"config", "none"}, {"shm-name", "/forq"}, {"workers", "number of CPUs"}, {"handler", "arith"},
		{"tasks", "none"}, {"results", "-"}, {"exit-when-done", "off"},
		{"drain-timeout", "30"}, {"stall-timeout", "60"}, {"task-timeout", "0 (none)"}, {"capacity", "65536"},
		{"max-payload", "1024"}, {"batch", "64"}, {"max-attempts", "3"},
		{"retry-backoff", "100"}, {"recent", "65536"}, {"dead-max", "1024"},
		{"waiting-max", "1024"}, {"keys-max", "16384"}, {"rate", "0 (no limit)"}, {"rate-burst", "0 (a tenth of --rate)"},
		{"restart-backoff", "100"}, {"restart-backoff-max", "30000"}, {"recover", "on"},
		{"no-recover", ""}, {"keep-shm", "off"}, {"journal", "none"},
		{"fsync", "always"}, {"journal-segment", "64"}, {"upstream", "none"},
		{"upstream-stream", "forq"}, {"upstream-replicas", "0 (the stream's; 1 if new)"},
		{"upstream-results", "off"},
		{"upstream-token-file", "none"}, {"upstream-creds-file", "none"}, {"http", "127.0.0.1:8080"},
		{"tcp", "127.0.0.1:7070"}, {"lease-timeout", "30"}, {"tcp-idle-timeout", "300"},
		{"tcp-max-conns", "10000"}, {"admin-token-file", "none"},
		{"worker-token-file", "none"}, {"insecure", "off"},
		{"demo", "0 (off)"}, {"log-level", "info"}, {"help", ""}, {"version", ""},
	};
	assert_int_equal(n, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < n; i++) {
		char text[128];
		assert_string_equal(rows[i].name, want[i].flag);
		assert_string_equal(flags_default_text(&rows[i], &d, text, sizeof text), want[i].shown);
	}
}

/* Check that each type of flag sets its field: text, int, uint32, real,
 * name, on, off. */
static void test_config_every_flag_type_sets_its_field(void **state)
{
	struct fixture *x = *state;
	assert_int_equal(parse(x, "--shm-name", "/q1", "--drain-timeout", "7", "--capacity", "4",
			       "--demo", "2.5", "--log-level", "debug", "--keep-shm", "--no-recover",
			       "--http=off", "--insecure", NULL),
			 0);
	assert_string_equal(x->c.shm_name, "/q1");
	assert_int_equal(x->c.drain_timeout_s, 7);
	assert_int_equal(x->c.capacity, 4);
	assert_true(x->c.demo_rate == 2.5);
	assert_int_equal(x->c.log_level, LOG_DEBUG);
	assert_int_equal(x->c.keep_shm, 1);
	assert_int_equal(x->c.recover, 0);
	assert_string_equal(x->c.http, "off");
	assert_int_equal(x->c.insecure, 1);
	/* The last of --recover / --no-recover wins. */
	assert_int_equal(parse(x, "--no-recover", "--recover", NULL), 0);
	assert_int_equal(x->c.recover, 1);
	assert_int_equal(parse(x, "--tasks", "t.txt", "--exit-when-done", NULL), 0);
	assert_string_equal(x->c.tasks, "t.txt");
	assert_int_equal(x->c.exit_when_done, 1);
	/* --help and --version: 1, forqd exits 0. */
	assert_int_equal(parse(x, "--help", NULL), 1);
	assert_int_equal(parse(x, "--version", NULL), 1);
}

/* Check every number flag at its min and max (taken) and max+1 and min-1
 * (refused, naming the flag and the range). */
static void test_config_ranges_min_max_and_beyond(void **state)
{
	struct fixture *x = *state;
	size_t n;
	const struct flag_spec *rows = config_flags(&n);
	int checked = 0;

	for (size_t i = 0; i < n; i++) {
		const struct flag_spec *r = &rows[i];
		char flag[64], v[32], want[256];
		if (r->type != FLAG_INT && r->type != FLAG_U32)
			continue;
		snprintf(flag, sizeof flag, "--%s", r->name);
		/* --upstream-* flags go with --upstream (refused alone). */
		const char *with = strncmp(r->name, "upstream-", 9) ? NULL : "--upstream";
		const long long cases[] = {r->lo, r->hi};
		for (int k = 0; k < 2; k++) {
			snprintf(v, sizeof v, "%lld", cases[k]);
			assert_int_equal(with ? parse(x, with, "nats://127.0.0.1:4222", flag, v, NULL)
					      : parse(x, flag, v, NULL), 0);
			const void *f = (const char *)&x->c + r->off;
			long long got = r->type == FLAG_INT ? (long long)*(const int *)f
							    : (long long)*(const uint32_t *)f;
			assert_int_equal(got, cases[k]);
		}
		const long long bad[] = {r->hi + 1, r->lo - 1};
		for (int k = 0; k < 2; k++) {
			snprintf(v, sizeof v, "%lld", bad[k]);
			snprintf(want, sizeof want,
				 "--%s: expected a whole number from %lld to %lld, got \"%s\"", r->name,
				 r->lo, r->hi, v);
			assert_int_equal(with ? parse(x, with, "nats://127.0.0.1:4222", flag, v, NULL)
					      : parse(x, flag, v, NULL), -1);
			assert_string_equal(x->err, want);
		}
		checked++;
	}
	assert_true(checked >= 15);
	/* Not numbers at all. */
	assert_int_equal(parse(x, "--workers", "x", NULL), -1);
	assert_string_equal(x->err, "--workers: expected a whole number from 0 to 256, got \"x\"");
	assert_int_equal(parse(x, "--capacity", "", NULL), -1);
	assert_int_equal(parse(x, "--capacity", "12k", NULL), -1);
	assert_int_equal(parse(x, "--capacity", " 12", NULL), -1);
	assert_int_equal(parse(x, "--capacity", "99999999999999999999999", NULL), -1);
	/* The real one: 0 and 1e9 taken, beyond refused. */
	assert_int_equal(parse(x, "--demo", "0", NULL), 0);
	assert_int_equal(parse(x, "--demo", "1e9", NULL), 0);
	assert_true(x->c.demo_rate == 1e9);
	assert_int_equal(parse(x, "--demo", "1000000001", NULL), -1);
	assert_string_equal(x->err, "--demo: expected tasks per second (0 to 1e9), got \"1000000001\"");
	assert_int_equal(parse(x, "--demo", "-1", NULL), -1);
	assert_int_equal(parse(x, "--demo", "nan", NULL), -1);
	assert_int_equal(parse(x, "--demo", "inf", NULL), -1);
	/* The name one. */
	assert_int_equal(parse(x, "--log-level", "loud", NULL), -1);
	assert_string_equal(x->err,
			    "--log-level: unknown level \"loud\" (use debug, info, warn or error)");
}

/* Check that an unknown flag, a missing value and a stray argument are
 * refused with the words forqd prints. */
static void test_config_unknown_flag_missing_value_stray_argument(void **state)
{
	struct fixture *x = *state;
	assert_int_equal(parse(x, "--bogus", NULL), -1);
	assert_string_equal(x->err, "unknown flag \"--bogus\" (see forqd --help)");
	assert_int_equal(parse(x, "-w", "2", NULL), -1);
	assert_string_equal(x->err, "unknown flag \"-w\" (see forqd --help)");
	assert_int_equal(parse(x, "--keep-shm=yes", NULL), -1);
	assert_string_equal(x->err, "unknown flag \"--keep-shm=yes\" (see forqd --help)");
	assert_int_equal(parse(x, "--capacity", NULL), -1);
	assert_string_equal(x->err, "--capacity: missing value (see forqd --help)");
	assert_int_equal(parse(x, "extra", NULL), -1);
	assert_string_equal(x->err, "unexpected argument \"extra\" (see forqd --help)");
	assert_int_equal(parse(x, "--exit-when-done", NULL), -1);
	assert_string_equal(x->err, "--exit-when-done needs --tasks FILE");
	assert_int_equal(parse(x, "--tasks", "t", "--demo", "5", NULL), -1);
	assert_string_equal(x->err, "--tasks and --demo cannot be used together");
	assert_int_equal(parse(x, "--http", "nonsense:port", NULL), -1);
	assert_string_equal(x->err, "--http: expected ADDR:PORT or off, got \"nonsense:port\"");
	assert_int_equal(parse(x, "--tcp", "1.2.3.4:99999", NULL), -1);
	assert_string_equal(x->err, "--tcp: expected ADDR:PORT or off, got \"1.2.3.4:99999\"");
}

/* Check the token file's rules: trailing newline, CRLF and blanks trimmed;
 * empty, short, two-line, over-long and missing files refused, naming the
 * file. */
static void test_config_admin_token_file_rules(void **state)
{
	struct fixture *x = *state;
	char path[128], want[256], big[1100];
	snprintf(path, sizeof path, "%s/token", x->dir);

	static const struct {
		const char *text, *token;
	} good[] = {
		{"secret-token\n", "secret-token"},
		{"secret-token", "secret-token"},
		{"secret-token\r\n", "secret-token"},
		{"secret-token \t\n\n", "secret-token"},
		{"12345678\n", "12345678"},
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		write_file(path, good[i].text, strlen(good[i].text));
		assert_int_equal(parse(x, "--admin-token-file", path, NULL), 0);
		assert_string_equal(x->c.admin_token, good[i].token);
	}
	static const struct {
		const char *text, *why;
	} bad[] = {
		{"", "%s holds no token"},
		{"\n", "%s holds no token"},
		{" \r\n", "%s holds no token"},
		{"1234567\n", "the token in %s is shorter than 8 characters"},
		{"secret-token\nsecond-line\n", "the token in %s is not one line of printable text"},
		{"secret\ttoken\n", "the token in %s is not one line of printable text"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char why[200];
		write_file(path, bad[i].text, strlen(bad[i].text));
		snprintf(why, sizeof why, bad[i].why, path);
		snprintf(want, sizeof want, "--admin-token-file: %s", why);
		assert_int_equal(parse(x, "--admin-token-file", path, NULL), -1);
		assert_string_equal(x->err, want);
		assert_null(x->c.admin_token);
	}
	/* A NUL inside would cut the token unseen. */
	write_file(path, "secret\0token\n", 13);
	assert_int_equal(parse(x, "--admin-token-file", path, NULL), -1);
	/* 1024 bytes are a token file; 1025 are not. */
	memset(big, 'a', sizeof big);
	write_file(path, big, 1024);
	assert_int_equal(parse(x, "--admin-token-file", path, NULL), 0);
	assert_int_equal(strlen(x->c.admin_token), 1024);
	write_file(path, big, 1025);
	assert_int_equal(parse(x, "--admin-token-file", path, NULL), -1);
	snprintf(want, sizeof want, "--admin-token-file: %s is over 1024 bytes, not a token file",
		 path);
	assert_string_equal(x->err, want);
	/* Missing. */
	snprintf(path, sizeof path, "%s/none", x->dir);
	assert_int_equal(parse(x, "--admin-token-file", path, NULL), -1);
	snprintf(want, sizeof want, "--admin-token-file: cannot open %s: No such file or directory",
		 path);
	assert_string_equal(x->err, want);
}

/* Check FORQ_ADMIN_TOKEN: taken when no file is given, refused when short,
 * the file preferred over it, and unset after the parse either way. */
static void test_config_admin_token_from_the_environment(void **state)
{
	struct fixture *x = *state;
	char path[128];
	snprintf(path, sizeof path, "%s/token", x->dir);

	setenv("FORQ_ADMIN_TOKEN", "env-token-123", 1);
	assert_int_equal(parse(x, NULL), 0);
	assert_string_equal(x->c.admin_token, "env-token-123");
	assert_null(getenv("FORQ_ADMIN_TOKEN"));

	setenv("FORQ_ADMIN_TOKEN", "short", 1);
	assert_int_equal(parse(x, NULL), -1);
	assert_string_equal(x->err, "FORQ_ADMIN_TOKEN is shorter than 8 characters");

	write_file(path, "file-token-456\n", 15);
	setenv("FORQ_ADMIN_TOKEN", "env-token-123", 1);
	assert_int_equal(parse(x, "--admin-token-file", path, NULL), 0);
	assert_string_equal(x->c.admin_token, "file-token-456");
	assert_null(getenv("FORQ_ADMIN_TOKEN"));

	/* Set but empty: no token, as before. */
	setenv("FORQ_ADMIN_TOKEN", "", 1);
	assert_int_equal(parse(x, NULL), 0);
	assert_null(x->c.admin_token);
}

/* Check that the worker-count default stays inside the flag's own range. */
static void test_config_workers_range_is_the_worker_table(void **state)
{
	(void)state;
	const struct flag_spec *r = row("workers");
	assert_int_equal(r->lo, 0);
	assert_int_equal(r->hi, FORQ_MAX_WORKERS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_defaults_equal_the_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_every_flag_type_sets_its_field, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config_ranges_min_max_and_beyond, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_unknown_flag_missing_value_stray_argument,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_admin_token_file_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_admin_token_from_the_environment, setup,
						teardown),
		cmocka_unit_test(test_config_workers_range_is_the_worker_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
