/* test_guard.c — the HTTP connection guard: an address at its limit loses its
 * own longest idle connection, or one whose request body trickles, never
 * another address's, and never one whose request is being served. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guard.h"

struct conn {
	int ours, peer; /* a socket pair: the guard shuts down `ours` */
	struct guard_conn *g;
};

static struct sockaddr_in addr(const char *ip)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(40000)};
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

/* The guard's clock in these tests (ms). */
static uint64_t now;

static void open_conn(struct guard *g, struct conn *c, const char *ip)
{
	int sv[2];
	struct sockaddr_in a = addr(ip);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c->ours = sv[0];
	c->peer = sv[1];
	assert_true(guard_admit(g, (struct sockaddr *)&a, now));
	c->g = guard_opened(g, c->ours, (struct sockaddr *)&a, now);
	assert_non_null(c->g);
}

/* Whether the guard shut c down: its peer then reads the end of the stream. */
static int was_shut(const struct conn *c)
{
	char b;
	return recv(c->peer, &b, 1, MSG_DONTWAIT) == 0;
}

static void close_conn(struct guard *g, struct conn *c)
{
	guard_closed(g, c->g);
	close(c->ours);
	close(c->peer);
}

/* Check that under the limit nothing is shut down, and at the limit the
 * address's oldest idle connection makes room for the new one. */
static void test_guard_evicts_the_oldest_idle_of_that_address(void **state)
{
	(void)state;
	struct guard *g = guard_new(3);
	struct conn c[4];
	for (int i = 0; i < 3; i++)
		open_conn(g, &c[i], "127.0.0.1");
	for (int i = 0; i < 3; i++)
		assert_false(was_shut(&c[i]));
	open_conn(g, &c[3], "127.0.0.1");
	assert_true(was_shut(&c[0]));
	assert_false(was_shut(&c[1]));
	assert_int_equal(guard_evicted(g), 1);
	for (int i = 0; i < 4; i++)
		close_conn(g, &c[i]);
	guard_free(g);
}

/* Check that a connection serving a request is never the one shut down, and
 * that a new one is refused only when all of the address's are busy. */
static void test_guard_spares_busy_connections_and_refuses_when_all_are(void **state)
{
	(void)state;
	struct guard *g = guard_new(2);
	struct conn c[3];
	struct sockaddr_in a = addr("127.0.0.1");
	open_conn(g, &c[0], "127.0.0.1");
	open_conn(g, &c[1], "127.0.0.1");
	guard_state(c[0].g, GUARD_SERVING, now);
	open_conn(g, &c[2], "127.0.0.1"); /* evicts c[1], the oldest idle */
	assert_false(was_shut(&c[0]));
	assert_true(was_shut(&c[1]));
	close_conn(g, &c[1]);
	guard_state(c[2].g, GUARD_SERVING, now);
	assert_false(guard_admit(g, (struct sockaddr *)&a, now)); /* both busy */
	now += 60000; /* being served, however long: never shut down */
	assert_false(guard_admit(g, (struct sockaddr *)&a, now));
	guard_state(c[0].g, GUARD_IDLE, now);
	assert_true(guard_admit(g, (struct sockaddr *)&a, now));
	assert_true(was_shut(&c[0]));
	close_conn(g, &c[0]);
	close_conn(g, &c[2]);
	guard_free(g);
}

/* Check that a connection whose headers are in but whose body trickles
 * (under GUARD_MIN_BODY_RATE for GUARD_SLOW_AFTER_MS) gives way like an idle
 * one, the slowest for longest first, while a body coming at a fair rate,
 * or a slow one not yet GUARD_SLOW_AFTER_MS old, keeps its connection. (The
 * guard once spared every connection inside a request: 64 slow POSTs locked
 * their address out.) */
static void test_guard_evicts_a_trickling_body(void **state)
{
	(void)state;
	struct guard *g = guard_new(3);
	struct conn c[5];
	struct sockaddr_in a = addr("127.0.0.1");
	for (int i = 0; i < 3; i++) {
		open_conn(g, &c[i], "127.0.0.1");
		guard_state(c[i].g, GUARD_RECEIVING, now);
		now += 10;
	}
	/* Fresh: nothing can go yet. */
	assert_false(guard_admit(g, (struct sockaddr *)&a, now));
	now += GUARD_SLOW_AFTER_MS;
	guard_body(c[0].g, 2 * GUARD_MIN_BODY_RATE); /* fair: kept */
	guard_body(c[1].g, 1);			     /* trickles */
	guard_body(c[2].g, 1);			     /* trickles, since later */
	open_conn(g, &c[3], "127.0.0.1");
	assert_false(was_shut(&c[0]));
	assert_true(was_shut(&c[1]));
	assert_false(was_shut(&c[2]));
	guard_state(c[3].g, GUARD_SERVING, now);
	open_conn(g, &c[4], "127.0.0.1");
	assert_true(was_shut(&c[2]));
	assert_false(was_shut(&c[0]));
	assert_false(was_shut(&c[3]));
	assert_int_equal(guard_evicted(g), 2);
	for (int i = 0; i < 5; i++)
		close_conn(g, &c[i]);
	guard_free(g);
}

/* Check that one address's flood never costs another address a connection. */
static void test_guard_counts_each_address_alone(void **state)
{
	(void)state;
	struct guard *g = guard_new(2);
	struct conn other, flood[10];
	open_conn(g, &other, "127.0.0.2");
	for (int i = 0; i < 10; i++)
		open_conn(g, &flood[i], "127.0.0.1");
	assert_false(was_shut(&other));
	assert_int_equal(guard_evicted(g), 8);
	close_conn(g, &other);
	for (int i = 0; i < 10; i++)
		close_conn(g, &flood[i]);
	guard_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guard_evicts_the_oldest_idle_of_that_address),
		cmocka_unit_test(test_guard_spares_busy_connections_and_refuses_when_all_are),
		cmocka_unit_test(test_guard_evicts_a_trickling_body),
		cmocka_unit_test(test_guard_counts_each_address_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
