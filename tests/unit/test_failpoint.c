/* test_failpoint.c — FORQ_FAILPOINT: SIGKILL at the N-th hit of the named
 * point, counted per process, chosen by the environment. Each case runs the
 * points in a forked child (the environment is read once per process). */
#define FORQ_FAILPOINTS 1

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "failpoint.h"

/* Runs `hits` hits of point "a.b" (and of "other" in between) in a child with
 * FORQ_FAILPOINT=spec. Returns the hits done before it died (hits if it
 * lived), -1 if it died another way. */
static int run_child(const char *spec, const char *seed, int hits)
{
	int fds[2];
	if (pipe(fds) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (spec)
			setenv("FORQ_FAILPOINT", spec, 1);
		else
			unsetenv("FORQ_FAILPOINT");
		if (seed)
			setenv("FORQ_FAILPOINT_SEED", seed, 1);
		for (int i = 0; i < hits; i++) {
			FORQ_FAILPOINT("other");
			FORQ_FAILPOINT("a.b");
			char c = 'x';
			if (write(fds[1], &c, 1) != 1)
				_exit(3);
		}
		_exit(0);
	}
	close(fds[1]);
	int n = 0;
	char c;
	while (read(fds[0], &c, 1) == 1)
		n++;
	close(fds[0]);
	int st;
	waitpid(pid, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return n;
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
		return n;
	return -1;
}

static void test_failpoint_kills_at_the_nth_hit(void **state)
{
	(void)state;
	/* Check that "a.b:3" survives 2 hits and dies at the 3rd. */
	assert_int_equal(run_child("a.b:3", NULL, 10), 2);
	assert_int_equal(run_child("a.b:1", NULL, 10), 0);
}

static void test_failpoint_without_env_or_other_name_never_fires(void **state)
{
	(void)state;
	assert_int_equal(run_child(NULL, NULL, 50), 50);
	assert_int_equal(run_child("c.d:1", NULL, 50), 50);
	assert_int_equal(run_child("", NULL, 50), 50);
	assert_int_equal(run_child("a.b:0", NULL, 50), 50); /* 0 is not a hit count */
}

static void test_failpoint_list_takes_each_point(void **state)
{
	(void)state;
	/* "other" is hit first in each round: it fires at its 5th hit. */
	assert_int_equal(run_child("c.d:1,other:5", NULL, 50), 4);
	assert_int_equal(run_child("other:9,a.b:4", NULL, 50), 3);
}

static void test_failpoint_range_is_reproducible_by_seed(void **state)
{
	(void)state;
	/* Check that a drawn N lies in the range and repeats for a seed. */
	for (int s = 1; s <= 20; s++) {
		char seed[16];
		snprintf(seed, sizeof seed, "%d", s);
		int n = run_child("a.b:5-9", seed, 50);
		assert_in_range(n, 4, 8);
		assert_int_equal(run_child("a.b:5-9", seed, 50), n);
	}
}

static void test_failpoint_count_starts_again_in_a_forked_child(void **state)
{
	(void)state;
	pid_t pid = fork();
	if (pid == 0) {
		setenv("FORQ_FAILPOINT", "a.b:3", 1);
		FORQ_FAILPOINT("a.b");
		FORQ_FAILPOINT("a.b"); /* the parent is at 2 */
		pid_t child = fork();
		if (child == 0) {
			FORQ_FAILPOINT("a.b");
			FORQ_FAILPOINT("a.b"); /* a child at 2: alive */
			_exit(7);
		}
		int st;
		waitpid(child, &st, 0);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failpoint_kills_at_the_nth_hit),
		cmocka_unit_test(test_failpoint_without_env_or_other_name_never_fires),
		cmocka_unit_test(test_failpoint_list_takes_each_point),
		cmocka_unit_test(test_failpoint_range_is_reproducible_by_seed),
		cmocka_unit_test(test_failpoint_count_starts_again_in_a_forked_child),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
