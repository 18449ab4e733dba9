/* rate.c — a queue's start rate: one bucket in shared memory (GCRA: a
 * "theoretical arrival time" that each start pushes one interval further),
 * shared by every consumer and by forqd's leases to remote workers. A start
 * costs one compare-and-swap while a limit is set, one load when none is. */
#include <errno.h>

#include "clock.h"
#include "internal.h"

uint32_t forq__rate_take(struct forq *q, uint32_t want, uint64_t *wait_ns)
{
	struct forq_hdr *h = q->h;
	uint64_t T = atomic_load_explicit(&h->rate_interval_ns, memory_order_relaxed);
	if (!T || !want)
		return want;
	uint64_t tau = T * atomic_load_explicit(&h->rate_burst, memory_order_relaxed);
	uint64_t now = clock_mono_ns();
	uint64_t tat = atomic_load_explicit(&h->rate_tat_ns, memory_order_relaxed);
	for (;;) {
		uint64_t base = tat > now ? tat : now;
		uint64_t room = now + tau > base ? (now + tau - base) / T : 0;
		if (room == 0) {
			*wait_ns = base + T - tau - now;
			return 0;
		}
		uint32_t k = room < want ? (uint32_t)room : want;
		if (atomic_compare_exchange_weak(&h->rate_tat_ns, &tat, base + k * T))
			return k;
	}
}

void forq__rate_refund(struct forq *q, uint32_t n)
{
	uint64_t T = atomic_load_explicit(&q->h->rate_interval_ns, memory_order_relaxed);
	if (T && n)
		atomic_fetch_sub(&q->h->rate_tat_ns, n * T);
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
	uint64_t w = 0;
	struct forq_hdr *h = q->h;
	uint64_t T = atomic_load_explicit(&h->rate_interval_ns, memory_order_relaxed);
	if (!T)
		return 0;
	uint64_t tau = T * atomic_load_explicit(&h->rate_burst, memory_order_relaxed);
	uint64_t now = clock_mono_ns(), tat = atomic_load(&h->rate_tat_ns);
	if (tat + T > now + tau)
		w = tat + T - tau - now;
	return w;
}

double forq_admin_rate(struct forq *q)
{
	uint64_t T = atomic_load_explicit(&q->h->rate_interval_ns, memory_order_relaxed);
	return T ? 1e9 / (double)T : 0;
}
