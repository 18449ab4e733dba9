/* queue_fixture.h — a private queue for a cmocka test (header-only: each
 * test binary includes it once). A test's setup fills forq_options and
 * calls qfx_create; its teardown calls qfx_destroy. Include after cmocka.h. */
#ifndef FORQ_TESTS_QUEUE_FIXTURE_H
#define FORQ_TESTS_QUEUE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "forq.h"

struct qfx {
	char name[64];
	struct forq *q;
	uint64_t first; /* for the test's own use (the first id it pushed) */
	uint64_t base;  /* for the test's own use (the empty queue's memory) */
};

/* Options as forq_options_default gives them, small enough for a test. */
static inline struct forq_options qfx_options(uint32_t capacity, uint32_t max_payload)
{
	struct forq_options o;
	forq_options_default(&o);
	o.capacity = capacity;
	o.max_payload = max_payload;
	o.recent_max = 1024;
	return o;
}

/* A new queue named /forq-test-TAG-PID-N: the fixture, or a failed test. */
static inline struct qfx *qfx_create(const char *tag, const struct forq_options *o)
{
	static int seq;
	struct qfx *f = calloc(1, sizeof *f);
	char err[256];
	assert_non_null(f);
	snprintf(f->name, sizeof f->name, "/forq-test-%s-%d-%d", tag, getpid(), seq++);
	int r = forq_create(&f->q, f->name, o, err, sizeof err);
	if (r)
		fprintf(stderr, "create %s: %s\n", f->name, err);
	assert_int_equal(r, 0);
	return f;
}

/* Closes and removes the queue. A cmocka teardown: state is the fixture. */
static inline int qfx_destroy(void **state)
{
	struct qfx *f = *state;
	forq_close(f->q);
	assert_int_equal(forq_unlink(f->name), 0);
	free(f);
	return 0;
}

#endif
