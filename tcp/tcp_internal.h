/* tcp_internal.h — what the TCP server's files share: the server and connection
 * structs. Private to tcp/ (conn.c, commands.c, server.c). */
#ifndef FORQ_TCP_TCP_INTERNAL_H
#define FORQ_TCP_TCP_INTERNAL_H

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdint.h>

#include "auth.h"
#include "buf.h"
#include "leases.h"
#include "loop.h"
#include "proto.h"
#include "server.h"

#define MS ((uint64_t)1000000)   /* ns per ms */
#define OUT_HIGH (1u << 20)      /* unsent bytes above which a connection is not read */
#define UNWRITTEN_MAX 1024       /* answers added before a flush is forced */
#define CMD_INVALID PROTO_CMD_COUNT /* counter slot of requests that did not parse */
_Static_assert(PROTO_CMD_COUNT + 1 == TCP_COUNTED_CMDS, "a counter for every command");

enum conn_state {
	CONN_ACTIVE, /* reading requests and answering them */
	CONN_FLUSH,  /* said BYE or a closing ERR (or saw EOF): sending the rest */
	CONN_LINGER, /* write side shut: dropping input until EOF, so no RST eats our reply */
	CONN_DEAD,   /* in s->dead: conn_sweep() frees it */
};

struct conn {
	struct tcp_server *s;
	int fd;
	uint32_t idx;           /* slot in s->conns */
	uint32_t id;            /* lease owner in shared memory: idx in the low
				 * s->idx_bits, a sequence above; never 0 */
	enum conn_state state;
	struct proto_parser parser;
	char *in;               /* input: unparsed bytes are in[in_off..in_len) */
	size_t in_off, in_len, in_cap;
	struct buf out;         /* output: unsent bytes are out.data[out_off..out.len) */
	size_t out_off;
	uint64_t last_io_ns;    /* last byte read or written */
	uint64_t skipped;       /* bytes the parser dropped without a request since the last one */
	unsigned errors;        /* protocol errors in a row */
	unsigned need_auth : 1; /* AUTH required before anything else */
	unsigned authed : 1;
	unsigned admin : 1;     /* AUTHed with the admin token: the queue controls */
	unsigned loopback : 1;  /* the peer is on loopback */
	unsigned worker : 1;    /* asked for tasks: counted as a remote worker */
	unsigned eof : 1;       /* peer shut its write side */
	/* A parked GET_TASK(S) WAIT; parked != 0 while in s->park list. */
	unsigned parked : 1;
	unsigned park_batch : 1; /* GET_TASKS (reply TASKS k) rather than GET_TASK */
	uint32_t park_count;
	/* The last GET's queues (indexes in s->qs), taken from in turn: the
	 * first one tried moves on by one each time. */
	uint16_t get_q[PROTO_QUEUES_MAX];
	uint8_t get_nq, get_turn;
	struct conn *park_prev, *park_next;
	/* Parked: the end of the WAIT. FLUSH/LINGER: when to hang up whatever
	 * happens. Otherwise idle. */
	struct loop_timer timer;
	/* A PUT published to a stream, waiting for JetStream's ack (its timer
	 * holds the end of the wait); 0: none. ((uint64_t)id << 32) | a count. */
	uint64_t pub_ref;
	uint32_t pub_count;
	/* A PUT to a queue journaled with --fsync always, pushed and waiting
	 * for the journal to have it on disk (tcp_durable), its reply OK then;
	 * its timer ends the wait (ERR not-durable). NULL: none. */
	struct tcp_q *dur_q;
	struct forq_durable_ticket dur_t;
	uint64_t dur_id;
	int dur_dup;
	uint32_t nleases;       /* leases it holds (in s->leases): how many to give back */
	uint32_t batch_applied, batch_refused; /* the RESULTS batch being read, so far */
	char peer[INET6_ADDRSTRLEN + 8];
};

/* A queue the server serves (struct tcp_queue, with its lease index). */
struct tcp_q {
	struct tcp_server *s;
	const char *name;
	struct forq *q;
	struct tcp_results res;
	struct leases leases;
	uint32_t max_payload, batch_max;
	int (*publish)(void *ctx, const void *data, size_t len, const char *key, size_t key_len,
		       uint64_t ref);
	void *publish_ctx;
	int dry;       /* a round of parked GETs found it empty */
	int unflushed; /* results added since its last flush */
};

struct tcp_server {
	struct tcp_config c;
	struct tcp_q *qs;       /* nq queues; qs[0]: requests that name none */
	uint32_t nq;
	struct loop *loop;
	/* Entries of answered tasks whose results were added but not yet
	 * flushed: freed by commands_settle_results. */
	struct unwritten {
		uint32_t qi, slot;
	} *unwritten;
	uint32_t nunwritten;
	int lfd;
	uint16_t port;
	int draining;
	struct auth auth;
	struct proto_limits lim;
	size_t max_request;
	uint32_t batch_max;     /* the largest of the queues' */
	uint64_t lease_ns, idle_ns;
	struct loop_timer accept_timer;  /* out of fds: accepting again */
	uint64_t accept_pauses;          /* pauses since accepting last worked (logged once) */
	struct loop_timer idle_timer;    /* the earliest a connection may be idle too long */
	struct loop_timer expiry_timer;  /* the earliest lease deadline, or before */
	struct loop_timer rate_timer;    /* parked GETs held back by the start rate limit */

	struct conn **conns;    /* max_conns slots */
	uint32_t max_conns, nconns, nworkers;
	uint32_t *free_idx, nfree;
	unsigned idx_bits;      /* bits of a conn id that hold its idx */
	uint32_t next_seq;
	struct conn **dead;     /* marked, to be swept */
	uint32_t ndead;
	struct conn *park_head, *park_tail; /* parked GETs, oldest first */
	uint32_t nparked;
	uint32_t ndurable;       /* connections with a PUT waiting for the disk */
	int lease_came_free;    /* an entry freed in a full lease table: parked
				 * GETs may be served (no push will say so) */

	struct forq_task *tasks; /* batch_max, for leases_take */
	struct buf scratch;      /* STATS JSON */

	/* Counters: written by the main thread only (load + store, no RMW),
	 * read by any (tcp_counters_read). */
	_Atomic uint64_t m_conns, m_workers, m_leases, m_accepted, m_refused, m_bytes_in, m_bytes_out;
	_Atomic uint64_t m_cmds[TCP_COUNTED_CMDS];
	_Atomic uint64_t m_cmd_in[TCP_COUNTED_CMDS];  /* request bytes by command */
	_Atomic uint64_t m_cmd_out[TCP_COUNTED_CMDS]; /* reply bytes by command */
};

/* A parked GET, or a PUT waiting for its publish or the disk: no request
 * is read. */
static inline int conn_waiting(const struct conn *c)
{
	return c->parked || c->pub_ref || c->dur_q;
}

/* Leases held now, over every queue. */
static inline uint32_t server_leases(const struct tcp_server *s)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->nq; i++)
		n += leases_count(&s->qs[i].leases);
	return n;
}

/* Single-writer counter bump: a plain load and store, no locked instruction. */
static inline void count(_Atomic uint64_t *a, uint64_t n)
{
	atomic_store_explicit(a, atomic_load_explicit(a, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline void gauge(_Atomic uint64_t *a, uint64_t v)
{
	atomic_store_explicit(a, v, memory_order_relaxed);
}

#endif
