/* upstream_setup.h — forqd's side of --upstream (upstream/): a queue's NATS
 * connection with the stream and consumer its settings ask for, and its
 * bridge sized for its consumers. Each queue that names an upstream (the
 * flag, or a config file's upstream key) has its own of both. Each logs
 * its own refusal. */
#ifndef FORQ_SERVICE_UPSTREAM_SETUP_H
#define FORQ_SERVICE_UPSTREAM_SETUP_H

#include "bridge.h"
#include "config.h"
#include "stream.h"

/* Connects queue q (nothing when q names no upstream: *up stays NULL); the
 * NATS credentials and replicas are the service's, in c. AckWait is
 * --lease-timeout, MaxDeliver q's max-attempts. 0 or -1 (logged). */
int upstream_setup(struct upstream **up, const struct forqd_config *c,
		   const struct forqd_config *q);

/* Starts q's bridge when up is not NULL: it holds at most four batches a
 * consumer (the rest stays in the stream for the other hosts), within a
 * lane. 0 or -errno (logged). */
int bridge_setup(struct bridge **b, struct upstream *up, const struct forqd_config *q);

#endif
