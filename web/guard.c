/* guard.c — per-address connection limit that evicts idle connections and
 * slow request bodies (see guard.h). Connections sit in one list, oldest first; the limit is at
 * most a few thousand connections, so a scan per accept is cheap. */
#include "guard.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct guard_conn {
	struct guard_conn *prev, *next;
	struct sockaddr_storage addr;
	int fd;
	enum guard_state state;
	uint64_t since_ms; /* when it entered its state */
	uint64_t body;	   /* bytes of the body received (GUARD_RECEIVING) */
	int evicted;	   /* shut down, waiting for MHD to close it: not counted */
};

struct guard {
	struct guard_conn *head, *tail; /* oldest first */
	unsigned per_address;
	unsigned long evicted;
};

/* Same client address (the port does not matter). */
static int same_address(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
	return 1; /* other families (unix sockets): one address */
}

static size_t addr_len(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	       : sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
					  : sizeof(struct sockaddr);
}

struct guard *guard_new(unsigned per_address)
{
	struct guard *g = calloc(1, sizeof *g);
	if (g)
		g->per_address = per_address ? per_address : 1;
	return g;
}

void guard_free(struct guard *g)
{
	if (!g)
		return;
	while (g->head) {
		struct guard_conn *c = g->head;
		g->head = c->next;
		free(c);
	}
	free(g);
}

struct guard_conn *guard_opened(struct guard *g, int fd, const struct sockaddr *sa,
				uint64_t now_ms)
{
	struct guard_conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	memcpy(&c->addr, sa, addr_len(sa));
	c->fd = fd;
	c->state = GUARD_IDLE;
	c->since_ms = now_ms;
	c->prev = g->tail;
	if (g->tail)
		g->tail->next = c;
	else
		g->head = c;
	g->tail = c;
	return c;
}

void guard_closed(struct guard *g, struct guard_conn *c)
{
	if (!c)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		g->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		g->tail = c->prev;
	free(c);
}

void guard_state(struct guard_conn *c, enum guard_state st, uint64_t now_ms)
{
	if (!c)
		return;
	c->state = st;
	c->since_ms = now_ms;
	c->body = 0;
}

void guard_body(struct guard_conn *c, size_t n)
{
	if (c)
		c->body += n;
}

/* Holds its slot without using it: idle, or a body slower than
 * GUARD_MIN_BODY_RATE for GUARD_SLOW_AFTER_MS or more. */
static int may_give_way(const struct guard_conn *c, uint64_t now_ms)
{
	uint64_t age = now_ms > c->since_ms ? now_ms - c->since_ms : 0;
	if (c->state == GUARD_IDLE)
		return 1;
	return c->state == GUARD_RECEIVING && age >= GUARD_SLOW_AFTER_MS &&
	       c->body * 1000 < (uint64_t)GUARD_MIN_BODY_RATE * age;
}

int guard_admit(struct guard *g, const struct sockaddr *sa, uint64_t now_ms)
{
	unsigned n = 0;
	struct guard_conn *victim = NULL;
	for (struct guard_conn *c = g->head; c; c = c->next) {
		if (c->evicted || !same_address((const struct sockaddr *)&c->addr, sa))
			continue;
		n++;
		/* the longest idle or slow; on a tie the oldest connection */
		if (may_give_way(c, now_ms) && (!victim || c->since_ms < victim->since_ms))
			victim = c;
	}
	if (n < g->per_address)
		return 1;
	if (!victim)
		return 0;
	/* MHD sees the end of the stream on its next turn and closes it (and
	 * then tells guard_closed); the fd stays open until then, on this same
	 * thread, so it cannot be another connection's. */
	shutdown(victim->fd, SHUT_RDWR);
	victim->evicted = 1;
	g->evicted++;
	return 1;
}

unsigned long guard_evicted(const struct guard *g)
{
	return g->evicted;
}
