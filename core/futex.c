/* futex.c — shared futex wait/wake, by class (futex.h). */
#include "futex.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int futex_wait_for(_Atomic uint32_t *w, uint32_t expected, uint64_t timeout_ns, uint32_t bits)
{
	struct timespec ts, *at = NULL;
	if (timeout_ns != UINT64_MAX) {
		/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + timeout_ns % 1000000000u;
		ts.tv_sec += (time_t)(timeout_ns / 1000000000u + ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		at = &ts;
	}
	long r = syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_BITSET, expected, at, NULL, bits);
	if (r == 0 || errno == EAGAIN)
		return 0;
	return -errno;
}

void futex_wake_for(_Atomic uint32_t *w, int n, uint32_t bits)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_BITSET, n, NULL, NULL, bits);
}
