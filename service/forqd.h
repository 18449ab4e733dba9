/* forqd.h — forqd's own state, shared by its files (forqd.c: setup, the
 * main loop and shutdown; forqd_http.c: the HTTP thread's hooks). Not a
 * library's header: only the forqd executable includes it. */
#ifndef FORQ_SERVICE_FORQD_H
#define FORQ_SERVICE_FORQD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "forq_admin.h"
#include "loop.h"
#include "queuectl.h"
#include "results.h"
#include "stall.h"
#include "upstream_setup.h"

enum phase { RUNNING, DRAINING, STOPPING };

#define ANSWERED_MAX 256 /* results buffered before the journal may forget them */

struct forqd;

/* One queue forqd serves. */
struct served {
	struct forqd *d;
	struct forqd_config *c;   /* its settings (d->c.queues[i]) */
	struct forq *q;           /* main thread's handle: supervisor record */
	struct forq *hq;          /* the HTTP thread's handle */
	struct supervisor *sup;
	struct producer *prod;
	struct work_watch *watch;
	struct journal *journal;  /* --journal, NULL without */
	struct upstream *up;      /* --upstream: its NATS connection, NULL without */
	struct bridge *bridge;    /* --upstream: the stream's tasks into the ring */
	int created;              /* the queue is new (not recovered): replay the journal */
	int idle;                 /* nothing queued, running or retrying */
	struct stall_watch stall; /* a stopped or stuck consumer (stall.h) */
	struct queuectl_watch ctl; /* pause changes, asked purges (queuectl.h) */
	_Atomic uint64_t throughput_milli; /* tasks/s * 1000, last second */
	uint64_t tp_last_ns, tp_last_finished;
	uint64_t idle_checked_ns, idle_since_ns; /* see queue_settled */
	uint64_t answered[ANSWERED_MAX]; /* ids whose result lines wait for a flush */
	size_t n_answered;
};

struct forqd {
	struct forqd_config c;
	struct served *sv;        /* c.n_queues of them, in the config's order */
	size_t n_sv;
	struct served *main;      /* "default", else the first: the TCP server's and
				   * the unnamed HTTP routes' queue */
	struct http_server *http;
	struct tcp_server *tcp;
	struct loop loop;
	struct loop_timer restart_timer;  /* the next consumer restart */
	struct loop_timer housekeep_timer;
	struct results_sink sink; /* results the supervisor writes */
	int results_fd;
	int have_sink;
	int sfd;                  /* signalfd */
	int wake[2];              /* /shutdown -> main loop: 'd' drain, 'n' now;
				   * 'p': publishes answered (relay); 'j': a
				   * journal moved its durable marks */
	struct pub_relay relay;   /* JetStream's answers to TCP PUTs */
	atomic_int durable_woken; /* a 'j' is in the pipe, not yet read */
	enum phase phase;
	int idle;                 /* every queue idle: housekeeping slows */
	int results_gone;         /* the results output takes no more writes (EPIPE) */
	uint64_t drain_deadline;
	uint64_t last_reap_ns;
	int64_t start_unix_ns;
};

#define EACH(d, s) for (struct served *s = (d)->sv; s < (d)->sv + (d)->n_sv; s++)

/* Starts the HTTP thread on d->c.http (forqd_http.c): 0, or -1 logged. */
int forqd_start_http(struct forqd *d);

#endif
