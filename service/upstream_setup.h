/* upstream_setup.h — forqd's side of --upstream (upstream/): the NATS
 * connection with the stream and consumer its flags ask for, and the
 * bridge sized for its consumers. Each logs its own refusal. */
#ifndef FORQ_SERVICE_UPSTREAM_SETUP_H
#define FORQ_SERVICE_UPSTREAM_SETUP_H

#include "bridge.h"
#include "config.h"
#include "stream.h"

/* Connects (nothing without --upstream: *up stays NULL). AckWait is
 * --lease-timeout, MaxDeliver --max-attempts. 0 or -1 (logged). */
int upstream_setup(struct upstream **up, const struct forqd_config *c);

/* Starts the bridge when up is not NULL: it holds at most four batches a
 * consumer (the rest stays in the stream for the other hosts), within a
 * lane. 0 or -errno (logged). */
int bridge_setup(struct bridge **b, struct upstream *up, const struct forqd_config *c);

#endif
