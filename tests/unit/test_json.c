/* test_json.c — the one stats encoder (metrics/json.c) on its three
 * surfaces: exact text for `forq stats --json` and TCP STATS, the names and
 * shapes of GET /stats, exact integers beyond 2^53, and the snapshot filled
 * from a struct forq_stats. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forq.h"
#include "json.h"

/* Every queue figure different, so that a field swapped shows. */
static void fill(struct metrics_snapshot *s)
{
	static const struct forq_stats st = {
		.pending = {1, 2, 3}, .in_progress = 4, .retry_waiting = 5, .dead_letters = 6,
		.dead = 7, .retried = 8, .crashes = 9, .requeued = 10, .capacity = 65536,
		.max_payload = 1024, .accepting = 1,
		.lane = {{11, 12, 13, 14}, {21, 22, 23, 24}, {31, 32, 33, 34}},
		/* The totals are the lanes' sums (forq_stats_read's contract). */
		.enqueued = 63, .started = 66, .done = 69, .failed = 72,
	};
	memset(s, 0, sizeof *s);
	metrics_snapshot_queue(s, &st);
	s->tcp_open = 3, s->remote_workers = 2, s->leases_outstanding = 5;
	s->lease_timeout_ms = 30000;
	s->tcp_connections = 40, s->lease_expired = 1;
	s->n_workers = 1;
	s->workers[0] = (struct metrics_worker){.pid = 77, .state = METRICS_WORKER_RUNNING,
						.tasks_done = 9007199254740993ULL};
	s->start_time = 1000.5;
	strcpy(s->version, "0.1.0");
	s->paused = 1, s->purged = 17, s->cancelled = 4;
}

static char *body(enum json_surface as, const struct metrics_snapshot *s,
		  const struct procstat *p)
{
	struct buf b = BUF_INIT;
	assert_int_equal(json_stats(&b, as, s, p, 1010.5), 0);
	return b.data; /* the caller frees it */
}

/* Check `forq stats --json`'s text, byte for byte. */
static void test_json_cli_surface_exact_text(void **state)
{
	(void)state;
	struct metrics_snapshot *s = calloc(1, sizeof *s);
	fill(s);
	char *t = body(JSON_CLI, s, NULL);
	assert_string_equal(
		t, "{\"capacity\":65536,\"max_payload\":1024,"
		   "\"pending\":{\"high\":1,\"normal\":2,\"low\":3},\"pending_total\":6,"
		   "\"in_progress\":4,\"enqueued\":63,\"started\":66,\"done\":69,\"failed\":72,"
		   "\"dead\":7,\"lanes\":{"
		   "\"high\":{\"enqueued\":11,\"started\":12,\"done\":13,\"failed\":14},"
		   "\"normal\":{\"enqueued\":21,\"started\":22,\"done\":23,\"failed\":24},"
		   "\"low\":{\"enqueued\":31,\"started\":32,\"done\":33,\"failed\":34}},"
		   "\"retried\":8,\"crashes\":9,\"requeued\":10,\"retry_waiting\":5,"
		   "\"scheduled\":0,\"dead_letters\":6,\"accepting\":true,\"paused\":true,\"purged\":17,"
		   "\"cancelled\":4}");
	free(t);
	free(s);
}

/* Check the TCP STATS reply's text, byte for byte: flat, with the server's
 * figures and the lease timeout a worker reads. */
static void test_json_tcp_surface_exact_text(void **state)
{
	(void)state;
	struct metrics_snapshot *s = calloc(1, sizeof *s);
	fill(s);
	s->accepting = 0; /* the server drains */
	char *t = body(JSON_TCP, s, NULL);
	assert_string_equal(
		t, "{\"capacity\":65536,\"max_payload\":1024,\"pending\":6,\"pending_high\":1,"
		   "\"pending_normal\":2,\"pending_low\":3,\"in_progress\":4,\"enqueued\":63,"
		   "\"done\":69,\"failed\":72,\"dead\":7,\"retried\":8,\"retry_waiting\":5,"
		   "\"scheduled\":0,\"dead_letters\":6,\"accepting\":false,\"paused\":true,\"purged\":17,"
		   "\"cancelled\":4,\"connections\":3,\"remote_workers\":2,"
		   "\"leases\":5,\"lease_timeout_ms\":30000}");
	free(t);
	free(s);
}

/* Check GET /stats: every documented member with its shape, the nested
 * "remote" object, lanes with pending, integers above 2^53 exact, and
 * "process" only with a procstat. */
static void test_json_http_surface_names_and_shapes(void **state)
{
	(void)state;
	struct metrics_snapshot *s = calloc(1, sizeof *s);
	struct procstat p = {.cpu_seconds = 1.5, .open_fds = 9};
	fill(s);
	char *t = body(JSON_HTTP, s, &p);
	cJSON *j = cJSON_Parse(t), *c;
	assert_non_null(j);
	static const char *const top[] = {
		"version", "start_time", "uptime_seconds", "draining", "stalled", "workers_stuck",
		"capacity", "max_payload", "shm_bytes", "rate_limit",
		"pending", "in_progress", "enqueued", "started", "done", "failed", "dead", "lanes",
		"retried", "crashes", "requeued", "retry_waiting", "scheduled", "dead_letters",
		"queue_full_waits", "throughput", "wait_us", "run_us", "workers",
		"worker_restarts", "paused", "purged", "cancelled", "remote", "http_requests", "process"};
	assert_int_equal(cJSON_GetArraySize(j), sizeof top / sizeof top[0]);
	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
		assert_non_null(cJSON_GetObjectItemCaseSensitive(j, top[i]));
	assert_true(cJSON_GetObjectItem(j, "uptime_seconds")->valuedouble == 10.0);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "pending"), "total")->valueint, 6);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "enqueued"), "total")->valueint, 63);
	assert_int_equal(cJSON_GetObjectItem(j, "done")->valueint, 69);
	assert_non_null(strstr(t, "\"normal\":{\"pending\":2,\"enqueued\":21,\"started\":22,"
				  "\"done\":23,\"failed\":24}"));
	c = cJSON_GetObjectItem(j, "remote");
	assert_int_equal(cJSON_GetArraySize(c), 7);
	assert_int_equal(cJSON_GetObjectItem(c, "workers_connected")->valueint, 2);
	assert_int_equal(cJSON_GetObjectItem(c, "connections")->valueint, 40);
	assert_int_equal(cJSON_GetObjectItem(c, "leases_outstanding")->valueint, 5);
	assert_non_null(strstr(t, "\"done\":9007199254740993,"));
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "wait_us"), "p50")));
	/* Names of the other surfaces do not leak in. */
	assert_null(cJSON_GetObjectItem(j, "accepting"));
	assert_null(cJSON_GetObjectItem(j, "lease_timeout_ms"));
	assert_null(cJSON_GetObjectItem(j, "pending_total"));
	cJSON_Delete(j);
	free(t);

	t = body(JSON_HTTP, s, NULL);
	assert_null(strstr(t, "\"process\""));
	free(t);
	free(s);
}

/* Check that an unknown surface is refused and leaves the buffer as it was. */
static void test_json_unknown_surface_refused(void **state)
{
	(void)state;
	struct metrics_snapshot *s = calloc(1, sizeof *s);
	struct buf b = BUF_INIT;
	assert_int_equal(json_stats(&b, JSON_NSURFACES, s, NULL, 0), -EINVAL);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	free(s);
}

/* Check /stats of two queues: the top level is the first's (as before named
 * queues), "queues" holds each under its name, in order, with the JSON_QUEUE
 * members byte for byte and nothing of the service. */
static void test_json_stats_queues_two_queues(void **state)
{
	(void)state;
	struct metrics_snapshot *s = calloc(2, sizeof *s);
	struct buf b = BUF_INIT;
	fill(&s[0]);
	strcpy(s[0].queue, "default");
	strcpy(s[1].queue, "emails");
	s[1].pending[2] = 5, s[1].done[1] = 8, s[1].capacity = 16, s[1].max_payload = 512;
	s[1].throughput = 2.5, s[1].rate_limit = 10, s[1].paused = 1;
	s[1].remote_workers = 99; /* service figures of a later snapshot: not shown */
	assert_int_equal(json_stats_queues(&b, s, 2, NULL, 1010.5), 0);
	cJSON *j = cJSON_Parse(b.data);
	assert_non_null(j);
	assert_int_equal(cJSON_GetObjectItem(j, "done")->valueint, 69);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "remote"),
					     "workers_connected")->valueint, 2);
	cJSON *qs = cJSON_GetObjectItem(j, "queues");
	assert_int_equal(cJSON_GetArraySize(qs), 2);
	assert_string_equal(cJSON_GetArrayItem(qs, 0)->string, "default");
	assert_string_equal(cJSON_GetArrayItem(qs, 1)->string, "emails");
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(qs, "default"), "done")->valueint, 69);
	char *emails = cJSON_PrintUnformatted(cJSON_GetObjectItem(qs, "emails"));
	assert_string_equal(
		emails,
		"{\"stalled\":false,\"workers_stuck\":0,\"capacity\":16,\"max_payload\":512,"
		"\"shm_bytes\":0,\"rate_limit\":10,"
		"\"pending\":{\"high\":0,\"normal\":0,\"low\":5,\"total\":5},\"in_progress\":0,"
		"\"enqueued\":{\"high\":0,\"normal\":0,\"low\":0,\"total\":0},\"started\":0,"
		"\"done\":8,\"failed\":0,\"dead\":0,\"lanes\":{"
		"\"high\":{\"pending\":0,\"enqueued\":0,\"started\":0,\"done\":0,\"failed\":0},"
		"\"normal\":{\"pending\":0,\"enqueued\":0,\"started\":0,\"done\":8,\"failed\":0},"
		"\"low\":{\"pending\":5,\"enqueued\":0,\"started\":0,\"done\":0,\"failed\":0}},"
		"\"retried\":0,\"crashes\":0,\"requeued\":0,\"retry_waiting\":0,\"scheduled\":0,"
		"\"dead_letters\":0,\"queue_full_waits\":0,\"throughput\":2.5,"
		"\"wait_us\":{\"p50\":null,\"p95\":null,\"p99\":null,\"count\":0},"
		"\"run_us\":{\"p50\":null,\"p95\":null,\"p99\":null,\"count\":0},"
		"\"workers\":[],\"worker_restarts\":0,\"paused\":true,\"purged\":0,\"cancelled\":0}");
	cJSON_free(emails);
	cJSON_Delete(j);
	/* No queue: refused, the buffer as it was. */
	size_t len = b.len;
	assert_int_equal(json_stats_queues(&b, s, 0, NULL, 0), -EINVAL);
	assert_int_equal(b.len, len);
	buf_free(&b);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_cli_surface_exact_text),
		cmocka_unit_test(test_json_tcp_surface_exact_text),
		cmocka_unit_test(test_json_http_surface_names_and_shapes),
		cmocka_unit_test(test_json_unknown_surface_refused),
		cmocka_unit_test(test_json_stats_queues_two_queues),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
