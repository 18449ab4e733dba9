/* test_net.c — address parsing, the loopback test and listening sockets
 * (base/net.c). Sockets bind 127.0.0.1 (or ::1) port 0 only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

/* Check each accepted form: host text and port exactly as written, a bare
 * port meaning 127.0.0.1, an unbracketed v6 split at its last colon. */
static void test_net_parse_addr_accepts_the_documented_forms(void **state)
{
	(void)state;
	static const struct {
		const char *spec, *host;
		uint16_t port;
	} cases[] = {
		{"127.0.0.1:8080", "127.0.0.1", 8080},
		{"0.0.0.0:0", "0.0.0.0", 0},
		{"[::1]:7070", "::1", 7070},
		{"[::]:65535", "::", 65535},
		{"[fe80::1%lo]:1", "fe80::1%lo", 1},
		{"::1:80", "::1", 80},
		{"localhost:8080", "localhost", 8080},
		{"h:00080", "h", 80},
		{"8080", "127.0.0.1", 8080},
		{"0", "127.0.0.1", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char host[NET_HOST_MAX];
		uint16_t port = 4242;
		if (net_parse_addr(cases[i].spec, host, &port))
			fail_msg("\"%s\" refused", cases[i].spec);
		assert_string_equal(host, cases[i].host);
		assert_int_equal(port, cases[i].port);
	}
}

/* Check that malformed addresses fail with -EINVAL and leave host and port
 * as they were: empty parts, ports out of range or not all digits, broken
 * brackets, a host one byte over NET_HOST_MAX - 1. */
static void test_net_parse_addr_refuses_bad_ones(void **state)
{
	(void)state;
	char longest[NET_HOST_MAX + 8], too_long[NET_HOST_MAX + 8];
	memset(longest, 'a', NET_HOST_MAX - 1);
	strcpy(longest + NET_HOST_MAX - 1, ":80"); /* the max: 255 bytes of host */
	memset(too_long, 'a', NET_HOST_MAX);
	strcpy(too_long + NET_HOST_MAX, ":80");
	const char *const bad[] = {
		"",           ":",           "127.0.0.1:",     ":8080",           "127.0.0.1",
		"127.0.0.1:65536", "127.0.0.1:99999", "127.0.0.1:000080", "127.0.0.1:8x",
		"127.0.0.1:+80", "127.0.0.1:-1", "127.0.0.1: 80", "[::1:80",  "[::1]80",
		"[::1]",      "[]:80",       "[::1]:",         "65536",           "x",
		"1:2:",       too_long,
	};
	char host[NET_HOST_MAX] = "unchanged";
	uint16_t port = 4242;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (net_parse_addr(bad[i], host, &port) != -EINVAL)
			fail_msg("\"%.40s\" accepted", bad[i]);
		assert_string_equal(host, "unchanged");
		assert_int_equal(port, 4242);
	}
	assert_int_equal(net_parse_addr(longest, host, &port), 0);
	assert_int_equal(strlen(host), NET_HOST_MAX - 1);
	assert_int_equal(port, 80);
}

/* Check the loopback test: all of 127/8, ::1 and v4-mapped 127/8; nothing
 * else, other families and NULL included. */
static void test_net_addr_is_loopback_table(void **state)
{
	(void)state;
	static const struct {
		int family;
		const char *addr;
		int loopback;
	} cases[] = {
		{AF_INET, "127.0.0.1", 1},        {AF_INET, "127.255.0.9", 1},
		{AF_INET, "10.0.0.1", 0},         {AF_INET, "0.0.0.0", 0},
		{AF_INET, "128.0.0.1", 0},        {AF_INET, "126.255.255.255", 0},
		{AF_INET6, "::1", 1},             {AF_INET6, "::", 0},
		{AF_INET6, "::ffff:127.0.0.1", 1}, {AF_INET6, "::ffff:10.1.1.1", 0},
		{AF_INET6, "fe80::1", 0},         {AF_INET6, "::2", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sockaddr_storage ss = {0};
		if (cases[i].family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			a->sin_family = AF_INET;
			assert_int_equal(inet_pton(AF_INET, cases[i].addr, &a->sin_addr), 1);
		} else {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			a->sin6_family = AF_INET6;
			assert_int_equal(inet_pton(AF_INET6, cases[i].addr, &a->sin6_addr), 1);
		}
		if (net_addr_is_loopback((struct sockaddr *)&ss) != cases[i].loopback)
			fail_msg("%s: want %d", cases[i].addr, cases[i].loopback);
	}
	struct sockaddr un = {.sa_family = AF_UNIX};
	assert_int_equal(net_addr_is_loopback(&un), 0);
	assert_int_equal(net_addr_is_loopback(NULL), 0);
}

/* Check that port 0 gives a real port, reported as bound, on a socket that is
 * listening, non-blocking and close-on-exec; a bare "0" is 127.0.0.1. */
static void test_net_listen_port_0_gives_a_port(void **state)
{
	(void)state;
	static const char *const specs[] = {"127.0.0.1:0", "0"};
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		struct net_listener l = {.fd = -1};
		struct sockaddr_in a;
		socklen_t al = sizeof a;
		char err[256] = "";

		assert_int_equal(net_listen(specs[i], 16, 1, &l, err, sizeof err), 0);
		assert_true(l.fd > STDERR_FILENO);
		assert_int_not_equal(l.port, 0);
		assert_int_equal(l.loopback, 1);
		assert_true(fcntl(l.fd, F_GETFL) & O_NONBLOCK);
		assert_true(fcntl(l.fd, F_GETFD) & FD_CLOEXEC);
		assert_int_equal(getsockname(l.fd, (struct sockaddr *)&a, &al), 0);
		assert_int_equal(ntohs(a.sin_port), l.port);
		assert_int_equal(ntohl(a.sin_addr.s_addr), INADDR_LOOPBACK);

		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(c >= 0);
		assert_int_equal(connect(c, (struct sockaddr *)&a, al), 0);
		close(c);
		close(l.fd);
	}
}

/* Check need_loopback: a wildcard address is refused (-EPERM, nothing bound,
 * *out untouched) when asked, and bound, marked not loopback, when not. */
static void test_net_listen_need_loopback_refuses_a_wider_address(void **state)
{
	(void)state;
	struct net_listener l = {.fd = -7, .port = 9, .loopback = 5};
	char err[256] = "";

	assert_int_equal(net_listen("0.0.0.0:0", 16, 1, &l, err, sizeof err), -EPERM);
	assert_string_equal(err, "0.0.0.0:0 is not a loopback address");
	assert_int_equal(l.fd, -7);
	assert_int_equal(l.port, 9);
	assert_int_equal(l.loopback, 5);

	assert_int_equal(net_listen("0.0.0.0:0", 16, 0, &l, err, sizeof err), 0);
	assert_int_equal(l.loopback, 0);
	assert_int_not_equal(l.port, 0);
	close(l.fd);
}

/* Check the errors: a malformed address (-EINVAL, named), a port in use
 * (-EADDRINUSE, with the address), both with *out untouched. */
static void test_net_listen_reports_bad_and_taken_addresses(void **state)
{
	(void)state;
	struct net_listener held, l = {.fd = -7};
	char err[256] = "", spec[32], want[96];

	assert_int_equal(net_listen("127.0.0.1:8x", 16, 1, &l, err, sizeof err), -EINVAL);
	assert_non_null(strstr(err, "bad listen address \"127.0.0.1:8x\""));
	assert_int_equal(l.fd, -7);

	assert_int_equal(net_listen("127.0.0.1:0", 16, 1, &held, err, sizeof err), 0);
	snprintf(spec, sizeof spec, "127.0.0.1:%u", held.port);
	assert_int_equal(net_listen(spec, 16, 1, &l, err, sizeof err), -EADDRINUSE);
	snprintf(want, sizeof want, "cannot listen on %s: %s", spec, strerror(EADDRINUSE));
	assert_string_equal(err, want);
	assert_int_equal(l.fd, -7);
	close(held.fd);

	/* err may be NULL or empty: the code still says why. */
	assert_int_equal(net_listen("nope", 16, 1, &l, NULL, 0), -EINVAL);
}

/* Check IPv6 loopback: bound and marked loopback (skipped without IPv6). */
static void test_net_listen_ipv6_loopback(void **state)
{
	(void)state;
	struct net_listener l;
	char err[256] = "";
	int r = net_listen("[::1]:0", 16, 1, &l, err, sizeof err);
	if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT)
		skip();
	assert_int_equal(r, 0);
	assert_int_equal(l.loopback, 1);
	assert_int_not_equal(l.port, 0);
	close(l.fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_parse_addr_accepts_the_documented_forms),
		cmocka_unit_test(test_net_parse_addr_refuses_bad_ones),
		cmocka_unit_test(test_net_addr_is_loopback_table),
		cmocka_unit_test(test_net_listen_port_0_gives_a_port),
		cmocka_unit_test(test_net_listen_need_loopback_refuses_a_wider_address),
		cmocka_unit_test(test_net_listen_reports_bad_and_taken_addresses),
		cmocka_unit_test(test_net_listen_ipv6_loopback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
