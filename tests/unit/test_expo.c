/* test_expo.c — Prometheus exposition of a fixed snapshot: exact lines,
 * structure (HELP/TYPE, no duplicate series, cumulative buckets, +Inf ==
 * count, final newline), and `promtool check metrics` on the whole text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "expo.h"

static void fill(struct metrics_snapshot *s, struct procstat *p)
{
	memset(s, 0, sizeof *s);
	s->pending[0] = 1, s->pending[1] = 20, s->pending[2] = 300;
	s->in_progress = 4;
	s->enqueued[0] = 10, s->enqueued[1] = 200, s->enqueued[2] = 3000;
	s->done[0] = 18446744073709551615ULL; /* UINT64_MAX stays exact */
	s->done[2] = 40, s->started[1] = 6;
	s->failed[1] = 7, s->dead = 2, s->retried = 9, s->crashes = 1, s->requeued = 3;
	s->full_waits = 11, s->retry_waiting = 5, s->dead_letters = 2;
	s->throughput = 12.5;
	/* wait: 1 value <= 1 ns, 2 in (128, 256], 3 in (512, 1024], 4 beyond 2^36 */
	s->wait.buckets[0] = 1, s->wait.buckets[8] = 2, s->wait.buckets[10] = 3;
	s->wait.buckets[39] = 4;
	s->wait.count = 10, s->wait.sum_ns = 1500000000; /* 1.5 s */
	s->capacity = 65536, s->max_payload = 1024;
	s->n_workers = 3;
	s->workers[0].state = METRICS_WORKER_RUNNING;
	s->workers[1].state = METRICS_WORKER_RUNNING;
	s->workers[2].state = METRICS_WORKER_BACKOFF;
	s->worker_restarts = 6;
	s->n_tcp_commands = 3;
	strcpy(s->tcp_commands[0].name, "GET_TASK"), s->tcp_commands[0].count = 5;
	strcpy(s->tcp_commands[1].name, "we\"ird\\\nname"), s->tcp_commands[1].count = 1;
	strcpy(s->tcp_commands[2].name, "GET_TASK"), s->tcp_commands[2].count = 2; /* merged */
	s->tcp_commands[0].bytes_in = 50, s->tcp_commands[0].bytes_out = 300;
	s->tcp_commands[2].bytes_in = 20, s->tcp_commands[2].bytes_out = 30;
	s->tcp_bytes_in = 100, s->tcp_bytes_out = 200, s->tcp_connections = 3;
	s->tcp_refused = 4;
	s->remote_workers = 1, s->leases_outstanding = 2, s->lease_expired = 1;
	s->n_http = 2;
	s->http[0].code = 200, s->http[0].count = 41;
	s->http[1].code = 404, s->http[1].count = 1;
	strcpy(s->version, "0.1.0");
	s->start_time = 1718000000.25;
	s->draining = 1;
	memset(p, 0, sizeof *p);
	p->cpu_seconds = 1.5, p->resident_bytes = 4096, p->virtual_bytes = 8192;
	p->open_fds = 12, p->max_fds = 1024, p->start_time = 1717999999.5;
}

/* A second queue, "emails": its own figures, and service figures that must
 * not show (only the first snapshot's service part counts). */
static void fill_second(struct metrics_snapshot *s)
{
	memset(s, 0, sizeof *s);
	strcpy(s->queue, "emails");
	s->pending[1] = 7, s->in_progress = 1, s->done[1] = 70, s->failed[2] = 2;
	s->capacity = 16, s->max_payload = 512, s->shm_bytes = 4096;
	s->paused = 1, s->purged = 5, s->cancelled = 6, s->stalled = 1, s->workers_stuck = 1;
	s->rate_limit = 2.5, s->rate_wait_ns = 1500000000, s->throughput = 0.25;
	s->journal_bytes = 99, s->journal_segments = 2, s->lease_expired = 3;
	s->run.buckets[9] = 1, s->run.count = 1, s->run.sum_ns = 500;
	s->n_workers = 1, s->workers[0].state = METRICS_WORKER_STOPPED, s->worker_restarts = 4;
	s->draining = 0, s->remote_workers = 99, s->tcp_connections = 99, s->start_time = 1;
	strcpy(s->version, "9.9.9");
}

/* Two queues: the default (fill) and "emails" (fill_second). */
static char *render(void)
{
	struct metrics_snapshot *s = malloc(2 * sizeof *s);
	struct procstat p;
	struct buf b = BUF_INIT;
	assert_non_null(s);
	fill(s, &p);
	strcpy(s[0].queue, "default");
	fill_second(&s[1]);
	assert_int_equal(expo_write(&b, s, 2, &p), 0);
	free(s);
	return b.data;
}

static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

/* Check that each of these lines appears exactly as written. */
static void test_expo_exact_lines(void **state)
{
	(void)state;
	static const char *const lines[] = {
		"# HELP forq_tasks_pending Tasks waiting in the queue, by priority.",
		"# TYPE forq_tasks_pending gauge",
		"forq_tasks_pending{queue=\"default\",priority=\"high\"} 1",
		"forq_tasks_pending{queue=\"default\",priority=\"normal\"} 20",
		"forq_tasks_pending{queue=\"default\",priority=\"low\"} 300",
		"# TYPE forq_tasks_enqueued_total counter",
		"forq_tasks_enqueued_total{queue=\"default\",priority=\"low\"} 3000",
		"forq_tasks_in_progress{queue=\"default\"} 4",
		"# TYPE forq_tasks_done_total counter",
		"forq_tasks_done_total{queue=\"default\",priority=\"high\"} 18446744073709551615",
		"forq_tasks_done_total{queue=\"default\",priority=\"normal\"} 0",
		"forq_tasks_done_total{queue=\"default\",priority=\"low\"} 40",
		"# TYPE forq_tasks_started_total counter",
		"forq_tasks_started_total{queue=\"default\",priority=\"normal\"} 6",
		"forq_tasks_failed_total{queue=\"default\",priority=\"high\"} 0",
		"forq_tasks_failed_total{queue=\"default\",priority=\"normal\"} 7",
		"forq_tasks_dead_total{queue=\"default\"} 2",
		"forq_tasks_retried_total{queue=\"default\"} 9",
		"forq_task_crashes_total{queue=\"default\"} 1",
		"forq_tasks_requeued_total{queue=\"default\"} 3",
		"forq_retry_waiting{queue=\"default\"} 5",
		"forq_dead_letters{queue=\"default\"} 2",
		"forq_throughput_tasks_per_second{queue=\"default\"} 12.5",
		"# TYPE forq_task_wait_seconds histogram",
		"forq_task_wait_seconds_bucket{queue=\"default\",le=\"2.56e-07\"} 3",
		"forq_task_wait_seconds_bucket{queue=\"default\",le=\"5.12e-07\"} 3",
		"forq_task_wait_seconds_bucket{queue=\"default\",le=\"1.024e-06\"} 6",
		"forq_task_wait_seconds_bucket{queue=\"default\",le=\"0.000131072\"} 6",
		"forq_task_wait_seconds_bucket{queue=\"default\",le=\"68.719476736\"} 6",
		"forq_task_wait_seconds_bucket{queue=\"default\",le=\"+Inf\"} 10",
		"forq_task_wait_seconds_sum{queue=\"default\"} 1.5",
		"forq_task_wait_seconds_count{queue=\"default\"} 10",
		"forq_task_run_seconds_bucket{queue=\"default\",le=\"+Inf\"} 0",
		"forq_task_run_seconds_sum{queue=\"default\"} 0",
		"forq_queue_capacity{queue=\"default\"} 65536",
		"# TYPE forq_queue_paused gauge",
		"forq_queue_paused{queue=\"default\"} 0",
		"# TYPE forq_tasks_purged_total counter",
		"forq_tasks_purged_total{queue=\"default\"} 0",
		"# TYPE forq_tasks_cancelled_total counter",
		"forq_tasks_cancelled_total{queue=\"default\"} 0",
		"forq_queue_full_waits_total{queue=\"default\"} 11",
		"# TYPE forq_workers gauge",
		"forq_workers{queue=\"default\",state=\"starting\"} 0",
		"forq_workers{queue=\"default\",state=\"running\"} 2",
		"forq_workers{queue=\"default\",state=\"backoff\"} 1",
		"forq_workers{queue=\"default\",state=\"stopped\"} 0",
		"forq_worker_restarts_total{queue=\"default\"} 6",
		"forq_draining 1",
		"forq_http_requests_total{code=\"200\"} 41",
		"forq_http_requests_total{code=\"404\"} 1",
		"forq_remote_workers_connected 1",
		"forq_leases_outstanding 2",
		"forq_lease_expired_total{queue=\"default\"} 1",
		"forq_tcp_commands_total{command=\"GET_TASK\"} 7",
		"forq_tcp_commands_total{command=\"we\\\"ird\\\\\\nname\"} 1",
		"forq_tcp_command_bytes_total{command=\"GET_TASK\",direction=\"in\"} 70",
		"forq_tcp_command_bytes_total{command=\"GET_TASK\",direction=\"out\"} 330",
		"forq_tcp_command_bytes_total{command=\"we\\\"ird\\\\\\nname\",direction=\"out\"} 0",
		"forq_tcp_bytes_total{direction=\"in\"} 100",
		"forq_tcp_bytes_total{direction=\"out\"} 200",
		"forq_tcp_connections_total 3",
		"forq_tcp_connections_refused_total 4",
		"forq_build_info{version=\"0.1.0\"} 1",
		"forq_start_time_seconds 1718000000.25",
		"process_cpu_seconds_total 1.5",
		"process_resident_memory_bytes 4096",
		"process_virtual_memory_bytes 8192",
		"process_open_fds 12",
		"process_max_fds 1024",
		"process_start_time_seconds 1717999999.5",
		/* the second queue */
		"forq_tasks_pending{queue=\"emails\",priority=\"normal\"} 7",
		"forq_tasks_in_progress{queue=\"emails\"} 1",
		"forq_tasks_done_total{queue=\"emails\",priority=\"normal\"} 70",
		"forq_tasks_failed_total{queue=\"emails\",priority=\"low\"} 2",
		"forq_queue_capacity{queue=\"emails\"} 16",
		"forq_queue_max_payload_bytes{queue=\"default\"} 1024",
		"forq_queue_max_payload_bytes{queue=\"emails\"} 512",
		"forq_shm_bytes{queue=\"emails\"} 4096",
		"forq_tasks_purged_total{queue=\"emails\"} 5",
		"forq_tasks_cancelled_total{queue=\"emails\"} 6",
		"forq_queue_rate_limit{queue=\"emails\"} 2.5",
		"forq_queue_rate_limited_seconds_total{queue=\"emails\"} 1.5",
		"forq_throughput_tasks_per_second{queue=\"emails\"} 0.25",
		"forq_journal_bytes_total{queue=\"emails\"} 99",
		"forq_journal_segments{queue=\"emails\"} 2",
		"forq_lease_expired_total{queue=\"emails\"} 3",
		"forq_task_run_seconds_bucket{queue=\"emails\",le=\"2.56e-07\"} 0",
		"forq_task_run_seconds_bucket{queue=\"emails\",le=\"5.12e-07\"} 1",
		"forq_task_run_seconds_bucket{queue=\"emails\",le=\"+Inf\"} 1",
		"forq_task_run_seconds_sum{queue=\"emails\"} 5e-07",
		"forq_task_run_seconds_count{queue=\"emails\"} 1",
		"forq_worker_restarts_total{queue=\"emails\"} 4",
		"forq_stalled{queue=\"default\"} 0",
		"forq_stalled{queue=\"emails\"} 1",
		"forq_workers_stuck{queue=\"emails\"} 1",
	};
	char *t = render();
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		if (!has_line(t, lines[i]))
			fail_msg("missing line: %s", lines[i]);
	}
	free(t);
}

/* Check that every family has HELP then TYPE before its first sample, that no
 * series repeats, and that the text ends in a newline. */
static void test_expo_structure_help_type_unique_newline(void **state)
{
	(void)state;
	char *t = render(), *save = NULL;
	size_t len = strlen(t);
	char **series = calloc(1000, sizeof *series);
	size_t ns = 0;
	char typed[128] = "", helped[128] = "";
	assert_true(len > 0 && t[len - 1] == '\n');
	for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128];
		if (sscanf(line, "# HELP %127s", name) == 1) {
			strcpy(helped, name);
			continue;
		}
		if (sscanf(line, "# TYPE %127s", name) == 1) {
			assert_string_equal(name, helped);
			strcpy(typed, name);
			continue;
		}
		/* sample: the series is everything before the last space */
		char *sp = strrchr(line, ' ');
		assert_non_null(sp);
		*sp = '\0';
		size_t n = strcspn(line, "{");
		size_t tl = strlen(typed);
		/* the sample belongs to the family typed last */
		assert_true(tl > 0 && strncmp(line, typed, tl) == 0);
		if (n != tl) {
			char suffix[16];
			snprintf(suffix, sizeof suffix, "%.*s", (int)(n - tl), line + tl);
			if (strcmp(suffix, "_bucket") && strcmp(suffix, "_sum") && strcmp(suffix, "_count"))
				fail_msg("sample %s outside its family %s", line, typed);
		}
		for (size_t i = 0; i < ns; i++)
			if (strcmp(series[i], line) == 0)
				fail_msg("duplicated series %s", line);
		assert_true(ns < 1000);
		series[ns++] = line;
	}
	assert_true(ns > 170);
	free(series);
	free(t);
}

/* Check that bucket counts never decrease and that +Inf equals _count. */
static void test_expo_histogram_cumulative_and_inf_equals_count(void **state)
{
	(void)state;
	char *t = render();
	const char *hists[] = {"forq_task_wait_seconds", "forq_task_run_seconds"};
	const char *queues[] = {"default", "emails"};
	for (size_t h = 0; h < 4; h++) {
		char prefix[96], countk[96];
		unsigned long long prev = 0, v = 0, inf = ~0ULL, count = ~1ULL;
		int nb = 0;
		snprintf(prefix, sizeof prefix, "%s_bucket{queue=\"%s\",le=\"", hists[h % 2],
			 queues[h / 2]);
		snprintf(countk, sizeof countk, "\n%s_count{queue=\"%s\"} ", hists[h % 2],
			 queues[h / 2]);
		for (const char *p = t; (p = strstr(p, prefix)); p++) {
			const char *q = strchr(p, '}');
			assert_int_equal(sscanf(q + 1, " %llu", &v), 1);
			assert_true(v >= prev);
			prev = v;
			nb++;
			if (strncmp(p + strlen(prefix), "+Inf\"", 5) == 0)
				inf = v;
		}
		assert_int_equal(nb, EXPO_LE_MAX_K - EXPO_LE_MIN_K + 2);
		const char *c = strstr(t, countk);
		assert_non_null(c);
		assert_int_equal(sscanf(c + strlen(countk), "%llu", &count), 1);
		assert_true(inf == count);
	}
	free(t);
}

/* Check that promtool accepts the whole exposition (exit 0, no lint). */
static void test_expo_passes_promtool(void **state)
{
	(void)state;
	char path[] = "/tmp/test_expo_XXXXXX", cmd[256];
	char *t = render();
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
	close(fd);
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
	int rc = system(cmd);
	unlink(path);
	free(t);
	assert_int_equal(rc, 0);
}

/* Check that a torn read (count behind the buckets) still gives +Inf ==
 * _count, not below the last bucket. */
static void test_expo_histogram_count_behind_buckets(void **state)
{
	(void)state;
	struct metrics_snapshot *s = calloc(1, sizeof *s);
	struct buf b = BUF_INIT;
	s->run.buckets[9] = 5, s->run.buckets[38] = 2, s->run.count = 6;
	assert_int_equal(expo_write(&b, s, 1, NULL), 0);
	assert_true(has_line(b.data, "forq_task_run_seconds_bucket{queue=\"default\",le=\"68.719476736\"} 5"));
	assert_true(has_line(b.data, "forq_task_run_seconds_bucket{queue=\"default\",le=\"+Inf\"} 7"));
	assert_true(has_line(b.data, "forq_task_run_seconds_count{queue=\"default\"} 7"));
	buf_free(&b);
	free(s);
}

/* Check that an empty snapshot without process figures is still valid. */
static void test_expo_empty_snapshot_without_procstat(void **state)
{
	(void)state;
	struct metrics_snapshot *s = calloc(1, sizeof *s);
	struct buf b = BUF_INIT;
	assert_int_equal(expo_write(&b, s, 1, NULL), 0);
	assert_true(has_line(b.data, "forq_build_info{version=\"\"} 1"));
	assert_true(has_line(b.data, "forq_task_run_seconds_bucket{queue=\"default\",le=\"+Inf\"} 0"));
	assert_null(strstr(b.data, "process_"));
	assert_int_equal(b.data[b.len - 1], '\n');
	buf_free(&b);
	free(s);
}

/* Check two queues' families as whole blocks, byte for byte: HELP and TYPE
 * once, each queue's samples together, in the array's order. */
static void test_expo_two_queues_exact_blocks(void **state)
{
	(void)state;
	static const char *const blocks[] = {
		"# HELP forq_queue_paused 1 while the queue is paused: consumers and remote workers "
		"take no task from it.\n"
		"# TYPE forq_queue_paused gauge\n"
		"forq_queue_paused{queue=\"default\"} 0\n"
		"forq_queue_paused{queue=\"emails\"} 1\n"
		"# HELP forq_tasks_purged_total ",
		"# TYPE forq_workers gauge\n"
		"forq_workers{queue=\"default\",state=\"starting\"} 0\n"
		"forq_workers{queue=\"default\",state=\"running\"} 2\n"
		"forq_workers{queue=\"default\",state=\"backoff\"} 1\n"
		"forq_workers{queue=\"default\",state=\"stopped\"} 0\n"
		"forq_workers{queue=\"emails\",state=\"starting\"} 0\n"
		"forq_workers{queue=\"emails\",state=\"running\"} 0\n"
		"forq_workers{queue=\"emails\",state=\"backoff\"} 0\n"
		"forq_workers{queue=\"emails\",state=\"stopped\"} 1\n"
		"# HELP forq_worker_restarts_total ",
		"# TYPE forq_tasks_dead_total counter\n"
		"forq_tasks_dead_total{queue=\"default\"} 2\n"
		"forq_tasks_dead_total{queue=\"emails\"} 0\n"
		"# HELP ",
		"# TYPE forq_remote_workers_connected gauge\n"
		"forq_remote_workers_connected 1\n"
		"# HELP ",
	};
	char *t = render();
	for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++)
		if (!strstr(t, blocks[i]))
			fail_msg("missing block:\n%s", blocks[i]);
	/* The second snapshot's service figures are not shown. */
	assert_null(strstr(t, "9.9.9"));
	assert_null(strstr(t, " 99\n# HELP forq_leases"));
	free(t);
}

/* Check that the service's families carry no queue label and every other
 * forq_ family has one sample set per queue. */
static void test_expo_queue_label_on_per_queue_families_only(void **state)
{
	(void)state;
	static const char *const service[] = {
		"forq_draining", "forq_http_requests_total", "forq_remote_workers_connected",
		"forq_leases_outstanding", "forq_tcp_", "forq_build_info", "forq_start_time_seconds"};
	char *t = render(), *save = NULL;
	size_t with = 0;
	for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int svc = 0;
		if (line[0] == '#' || strncmp(line, "forq_", 5))
			continue;
		for (size_t i = 0; i < sizeof service / sizeof service[0]; i++)
			svc |= !strncmp(line, service[i], strlen(service[i]));
		if (svc && strstr(line, "queue="))
			fail_msg("a service series with a queue label: %s", line);
		if (!svc && !strstr(line, "{queue=\"default\"") && !strstr(line, "{queue=\"emails\""))
			fail_msg("a per-queue series without its queue label first: %s", line);
		with += !svc && strstr(line, "{queue=\"emails\"");
	}
	assert_true(with > 90);
	free(t);
}

/* Check that a scrape of no queue is refused, leaving the buffer empty. */
static void test_expo_no_queue_refused(void **state)
{
	(void)state;
	struct metrics_snapshot *s = calloc(1, sizeof *s);
	struct buf b = BUF_INIT;
	assert_int_equal(expo_write(&b, s, 0, NULL), -EINVAL);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	free(s);
}

/* Check that le bounds are printed in the shortest exact form. */
static void test_expo_format_double_table(void **state)
{
	(void)state;
	static const struct {
		double d;
		const char *s;
	} cases[] = {
		{256e-9, "2.56e-07"}, {65536e-9, "6.5536e-05"}, {131072e-9, "0.000131072"},
		{68.719476736, "68.719476736"}, {0, "0"}, {12.5, "12.5"}, {1e21, "1e+21"},
		{40, "40"}, {-3, "-3"}, {123456789012, "123456789012"},
		{INFINITY, "+Inf"}, {-INFINITY, "-Inf"}, {NAN, "NaN"},
	};
	char out[40];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		expo_format_double(out, sizeof out, cases[i].d);
		assert_string_equal(out, cases[i].s);
	}
}

/* Check quantiles: interpolation inside a power-of-two bucket, the edges. */
static void test_hist_quantile_table(void **state)
{
	(void)state;
	uint64_t b[METRICS_HIST_BUCKETS] = {0};
	assert_true(hist_quantile(b, 0.5) == 0); /* empty */
	b[10] = 100; /* all in (512, 1024] */
	assert_true(fabs(hist_quantile(b, 0.5) - 768) < 1e-9);
	assert_true(fabs(hist_quantile(b, 0.99) - (512 + 512 * 0.99)) < 1e-9);
	assert_true(fabs(hist_quantile(b, 1.0) - 1024) < 1e-9);
	b[0] = 100; /* half at <= 1 ns */
	assert_true(fabs(hist_quantile(b, 0.25) - 0.5) < 1e-9);
	assert_true(fabs(hist_quantile(b, 0.75) - 768) < 1e-9);
	memset(b, 0, sizeof b);
	b[39] = 5; /* open-ended bucket: its lower bound */
	assert_true(hist_quantile(b, 0.5) == ldexp(1.0, 38));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expo_exact_lines),
		cmocka_unit_test(test_expo_structure_help_type_unique_newline),
		cmocka_unit_test(test_expo_histogram_cumulative_and_inf_equals_count),
		cmocka_unit_test(test_expo_passes_promtool),
		cmocka_unit_test(test_expo_histogram_count_behind_buckets),
		cmocka_unit_test(test_expo_empty_snapshot_without_procstat),
		cmocka_unit_test(test_expo_two_queues_exact_blocks),
		cmocka_unit_test(test_expo_queue_label_on_per_queue_families_only),
		cmocka_unit_test(test_expo_no_queue_refused),
		cmocka_unit_test(test_expo_format_double_table),
		cmocka_unit_test(test_hist_quantile_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
