/* futex.h — sleep on and wake a 32-bit word in shared memory (not private:
 * waiters and wakers are different processes).
 *
 * A word's sleepers come in classes (FUTEX_WAIT_BITSET): a waker names the
 * classes it wakes, so that waking n consumers for n tasks never spends one
 * of the n on forqd's work watch, and waking the watch never costs a
 * consumer its sleep. */
#ifndef FORQ_FUTEX_H
#define FORQ_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

#define FUTEX_FOR_SLEEPERS 1u   /* consumers and producers (forq__sleep_on) */
#define FUTEX_FOR_WATCHER 2u    /* forqd's work watch (forq_admin_work_wait) */
#define FUTEX_FOR_ALL 0xffffffffu

/* Sleeps, as one of class `bits`, while *w == expected, at most timeout_ns
 * (UINT64_MAX: no limit). Returns 0 when woken or the word changed,
 * -ETIMEDOUT, or -EINTR. Spurious wake-ups are possible. */
int futex_wait_for(_Atomic uint32_t *w, uint32_t expected, uint64_t timeout_ns, uint32_t bits);

/* Wakes up to n sleepers on w of the classes in bits. */
void futex_wake_for(_Atomic uint32_t *w, int n, uint32_t bits);

/* Wakes up to n sleepers on w, of any class. */
static inline void futex_wake(_Atomic uint32_t *w, int n)
{
	futex_wake_for(w, n, FUTEX_FOR_ALL);
}

#endif
