/* futex.h — sleep on and wake a 32-bit word in shared memory (not private:
 * waiters and wakers are different processes). */
#ifndef FORQ_FUTEX_H
#define FORQ_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

/* Sleeps while *w == expected, at most timeout_ns. Returns 0 when woken or the
 * word changed, -ETIMEDOUT, or -EINTR. Spurious wake-ups are possible. */
int futex_wait(_Atomic uint32_t *w, uint32_t expected, uint64_t timeout_ns);

/* Wakes up to n sleepers on w. */
void futex_wake(_Atomic uint32_t *w, int n);

#endif
