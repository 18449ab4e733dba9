/* queue_open.h — forqd's queue, from its flags: created new, or (with
 * --recover) a queue left by a dead forqd attached, owned and recovered, its
 * tasks given back (fn gets those that end). A recovered queue keeps its own
 * capacity and largest payload (c is updated to them, and a warning logged).
 * The start rate limit is applied either way. Every outcome is logged. */
#ifndef FORQ_SERVICE_QUEUE_OPEN_H
#define FORQ_SERVICE_QUEUE_OPEN_H

#include "config.h"
#include "forq_admin.h"

/* 1: created, 0: recovered, -1: refused (logged). */
int queue_open(struct forq **qp, struct forqd_config *c, forq_final_fn fn, void *ctx);

#endif
