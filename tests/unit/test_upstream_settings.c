/* test_upstream_settings.c — upstream/settings.c: an existing stream or
 * consumer is held to forq's settings (each disagreement refused, naming
 * the setting), stream names, URL lists; and base/idpipe.c, the finish
 * pipe the NATS bridge reads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "idpipe.h"
#include "settings.h"

static const char *const subj_ok[] = {"other.x", "forq.jobs"};

static const struct upstream_want want = {.stream = "jobs", .subject = "forq.jobs",
					  .replicas = 3, .ack_wait_ms = 30000, .max_deliver = 3};

/* A stream as forq makes it passes; each setting changed alone is refused
 * with its name in the text. replicas 0 in the want takes any. */
static void test_stream_check(void **state)
{
	(void)state;
	char err[512];
	struct upstream_stream_have h = {.work_queue = 1, .replicas = 3, .subjects = subj_ok,
					 .nsubjects = 2};
	assert_int_equal(upstream_check_stream(&want, &h, err, sizeof err), 0);

	struct upstream_stream_have b = h;
	b.work_queue = 0;
	assert_int_equal(upstream_check_stream(&want, &b, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "retention WorkQueue"));
	assert_non_null(strstr(err, "stream jobs"));

	b = h;
	b.replicas = 1;
	assert_int_equal(upstream_check_stream(&want, &b, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "1 replicas"));
	assert_non_null(strstr(err, "--upstream-replicas"));
	struct upstream_want any = want;
	any.replicas = 0;
	assert_int_equal(upstream_check_stream(&any, &b, err, sizeof err), 0);

	b = h;
	b.nsubjects = 1; /* "other.x" alone */
	assert_int_equal(upstream_check_stream(&want, &b, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "subject forq.jobs"));
}

static void test_consumer_check(void **state)
{
	(void)state;
	char err[512];
	struct upstream_consumer_have h = {.ack_explicit = 1, .ack_wait_ms = 30000,
					   .max_deliver = 3, .filter_subject = "forq.jobs"};
	assert_int_equal(upstream_check_consumer(&want, &h, err, sizeof err), 0);
	struct {
		struct upstream_consumer_have h;
		const char *says;
	} bad[] = {
		{{.ack_explicit = 1, .ack_wait_ms = 30000, .max_deliver = 3,
		  .filter_subject = "forq.jobs", .push = 1}, "pull consumer"},
		{{.ack_explicit = 0, .ack_wait_ms = 30000, .max_deliver = 3,
		  .filter_subject = "forq.jobs"}, "AckPolicy explicit"},
		{{.ack_explicit = 1, .ack_wait_ms = 5000, .max_deliver = 3,
		  .filter_subject = "forq.jobs"}, "--lease-timeout"},
		{{.ack_explicit = 1, .ack_wait_ms = 30000, .max_deliver = -1,
		  .filter_subject = "forq.jobs"}, "--max-attempts"},
		{{.ack_explicit = 1, .ack_wait_ms = 30000, .max_deliver = 3,
		  .filter_subject = NULL}, "filter subject"},
		{{.ack_explicit = 1, .ack_wait_ms = 30000, .max_deliver = 3,
		  .filter_subject = "forq.other"}, "filter subject \"forq.other\""},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = 0;
		assert_int_equal(upstream_check_consumer(&want, &bad[i].h, err, sizeof err), -EINVAL);
		assert_non_null(strstr(err, bad[i].says));
		assert_non_null(strstr(err, "does not change"));
	}
}

static void test_names_and_urls(void **state)
{
	(void)state;
	char err[256], subj[80];
	assert_int_equal(upstream_name_check("jobs-1_A", err, sizeof err), 0);
	static const char *const bad[] = {"", "a.b", "a b", "a*", "a>",
					  "01234567890123456789012345678901234567890123456789012345678901234"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(upstream_name_check(bad[i], err, sizeof err), -EINVAL);
	upstream_subject("jobs", subj, sizeof subj);
	assert_string_equal(subj, "forq.jobs");

	char **urls = NULL;
	int n = 0;
	assert_int_equal(upstream_split_urls("nats://a:1,nats://b:2", &urls, &n, err, sizeof err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(urls[0], "nats://a:1");
	assert_string_equal(urls[1], "nats://b:2");
	free(urls);
	static const char *const bad_lists[] = {"", ",", "nats://a:1,", "nats://a:1,,nats://b:2",
						"nats://a:1, nats://b:2"};
	for (size_t i = 0; i < sizeof bad_lists / sizeof bad_lists[0]; i++) {
		urls = NULL;
		assert_int_equal(upstream_split_urls(bad_lists[i], &urls, &n, err, sizeof err), -EINVAL);
		assert_null(urls);
	}
	char many[20 * 16];
	many[0] = 0;
	for (int i = 0; i <= UPSTREAM_URLS_MAX; i++)
		strcat(many, i ? ",nats://h:1" : "nats://h:1");
	assert_int_equal(upstream_split_urls(many, &urls, &n, err, sizeof err), -EINVAL);
}

struct got {
	uint64_t ids[2000];
	size_t n, calls;
};

static void collect(void *ctx, const uint64_t *ids, size_t n)
{
	struct got *g = ctx;
	memcpy(g->ids + g->n, ids, n * sizeof *ids);
	g->n += n;
	g->calls++;
}

/* 1200 ids go as three messages; read back byte by byte in pieces, each
 * whole message is handed over once, a cut one waits for its rest; bytes
 * that are no message are dropped. */
static void test_idpipe(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	static uint64_t ids[1200];
	for (size_t i = 0; i < 1200; i++)
		ids[i] = 1000 + i;
	assert_int_equal(idpipe_write(p[1], ids, 1200), 0);
	static uint8_t buf[20000];
	ssize_t len = read(p[0], buf, sizeof buf);
	assert_int_equal(len, 3 * 4 + 1200 * 8);
	static struct got g;
	size_t have = 0, fed = 0;
	while (fed < (size_t)len) {
		size_t step = (size_t)len - fed < 777 ? (size_t)len - fed : 777;
		static uint8_t acc[20000];
		memcpy(acc + have, buf + fed, step);
		fed += step;
		have += step;
		size_t off = idpipe_parse(acc, have, collect, &g);
		memmove(acc, acc + off, have - off);
		have -= off;
	}
	assert_int_equal(have, 0);
	assert_int_equal(g.calls, 3);
	assert_int_equal(g.n, 1200);
	assert_memory_equal(g.ids, ids, sizeof ids);
	uint8_t junk[12] = {0};
	assert_int_equal(idpipe_parse(junk, sizeof junk, collect, &g), sizeof junk);
	assert_int_equal(g.calls, 3);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_check),
		cmocka_unit_test(test_consumer_check),
		cmocka_unit_test(test_names_and_urls),
		cmocka_unit_test(test_idpipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
