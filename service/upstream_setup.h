/* upstream_setup.h — forqd's side of --upstream (upstream/): a queue's NATS
 * connection with the stream and consumer its settings ask for, and its
 * bridge sized for its consumers. Each queue that names an upstream (the
 * flag, or a config file's upstream key) has its own of both. Each logs
 * its own refusal. */
#ifndef FORQ_SERVICE_UPSTREAM_SETUP_H
#define FORQ_SERVICE_UPSTREAM_SETUP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge.h"
#include "config.h"
#include "stream.h"

/* JetStream's answers to the TCP server's PUTs (tcp_queue.publish), from
 * libnats' threads to forqd's loop: a list under a lock, and a byte on the
 * loop's wake pipe when it stops being empty. */
struct pub_relay {
	pthread_mutex_t lock;
	struct pub_answer {
		uint64_t ref, seq; /* seq 0: not published */
		int dup;
	} *list;
	size_t n, cap;
	int wake_fd;
	char wake_byte;
};
void pub_relay_init(struct pub_relay *r, int wake_fd, char wake_byte);
/* Moves up to max answers to out: how many. Main thread. */
size_t pub_relay_take(struct pub_relay *r, struct pub_answer *out, size_t max);
void pub_relay_free(struct pub_relay *r);

/* tcp_queue.publish of a queue on stream ctx (a struct upstream *): -ECOMM
 * while it is out of reach (its disconnection is logged) or when the
 * publish could not go (logged). */
int upstream_tcp_publish(void *ctx, const void *data, size_t len, const char *key,
			 size_t key_len, uint64_t ref);

/* Connects queue q (nothing when q names no upstream: *up stays NULL); the
 * NATS credentials and replicas are the service's, in c. AckWait is
 * --lease-timeout, MaxDeliver q's max-attempts. Its asynchronous publishes
 * are answered through relay. 0 or -1 (logged). */
int upstream_setup(struct upstream **up, const struct forqd_config *c,
		   const struct forqd_config *q, struct pub_relay *relay);

/* Starts q's bridge when up is not NULL: it holds at most four batches a
 * consumer (the rest stays in the stream for the other hosts), within a
 * lane. 0 or -errno (logged). */
int bridge_setup(struct bridge **b, struct upstream *up, const struct forqd_config *q);

#endif
