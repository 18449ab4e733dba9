/* rate.c — a queue's start rate: one bucket in shared memory (GCRA: a
 * "theoretical arrival time" that each start pushes one interval further),
 * shared by every consumer and by forqd's leases to remote workers, and the
 * pops that draw from it. A start costs one compare-and-swap while a limit
 * is set, one load when none is. */
#include <errno.h>

#include "clock.h"
#include "internal.h"

/* The limit's interval and burst tolerance in ns; 0 when there is none. */
static uint64_t bucket(const struct forq_hdr *h, uint64_t *tau)
{
	uint64_t T = atomic_load_explicit(&h->rate_interval_ns, memory_order_relaxed);
	*tau = T * atomic_load_explicit(&h->rate_burst, memory_order_relaxed);
	return T;
}

/* How long from now until a start fits in a bucket filled up to base. */
static uint64_t wait_from(uint64_t base, uint64_t now, uint64_t T, uint64_t tau)
{
	return base + T > now + tau ? base + T - tau - now : 0;
}

/* Up to want starts now (want itself without a limit); 0 with *wait_ns
 * until the next one when the limit says wait. */
static uint32_t take(struct forq *q, uint32_t want, uint64_t *wait_ns)
{
	struct forq_hdr *h = q->h;
	uint64_t tau, T = bucket(h, &tau);
	if (!T || !want)
		return want;
	uint64_t now = clock_mono_ns();
	uint64_t tat = atomic_load_explicit(&h->rate_tat_ns, memory_order_relaxed);
	for (;;) {
		uint64_t base = tat > now ? tat : now;
		uint64_t room = now + tau > base ? (now + tau - base) / T : 0;
		if (room == 0) {
			*wait_ns = wait_from(base, now, T, tau);
			return 0;
		}
		uint32_t k = room < want ? (uint32_t)room : want;
		if (atomic_compare_exchange_weak(&h->rate_tat_ns, &tat, base + k * T))
			return k;
	}
}

/* Gives back starts taken and not used. */
static void refund(struct forq *q, uint32_t n)
{
	uint64_t T = atomic_load_explicit(&q->h->rate_interval_ns, memory_order_relaxed);
	if (T && n)
		atomic_fetch_sub(&q->h->rate_tat_ns, n * T);
}

int forq__ring_pop_started(struct forq *q, int ri, uint32_t max, uint64_t *wait_ns)
{
	uint32_t grant = take(q, max, wait_ns);
	if (!grant)
		return -EAGAIN;
	int n = forq__ring_pop(q, ri, grant, FORQ_ENTRY_HELD);
	if (n < (int)grant)
		refund(q, grant - (uint32_t)(n > 0 ? n : 0));
	return n;
}

int forq_admin_set_rate(struct forq *q, double per_s, uint32_t burst)
{
	if (per_s < 0 || per_s > 1e9 || burst > 1000000)
		return -EINVAL;
	struct forq_hdr *h = q->h;
	if (!burst)
		burst = per_s >= 10 ? (uint32_t)(per_s / 10) : 1;
	atomic_store(&h->rate_burst, burst);
	atomic_store(&h->rate_interval_ns, per_s > 0 ? (uint64_t)(1e9 / per_s + 0.5) : 0);
	atomic_store(&h->rate_tat_ns, 0);
	return 0;
}

uint64_t forq_admin_rate_wait_ns(struct forq *q)
{
	uint64_t tau, T = bucket(q->h, &tau);
	return T ? wait_from(atomic_load(&q->h->rate_tat_ns), clock_mono_ns(), T, tau) : 0;
}

double forq_admin_rate(struct forq *q)
{
	uint64_t T = atomic_load_explicit(&q->h->rate_interval_ns, memory_order_relaxed);
	return T ? 1e9 / (double)T : 0;
}
