/* procstat.h — the standard process_* figures of the calling process, read
 * from /proc (Linux only): /proc/self/stat, /proc/self/fd,
 * getrlimit(RLIMIT_NOFILE) and the boot time in /proc/stat.
 */
#ifndef FORQ_METRICS_PROCSTAT_H
#define FORQ_METRICS_PROCSTAT_H

#include <stdint.h>

struct procstat {
	double cpu_seconds;         /* user + system */
	uint64_t resident_bytes;
	uint64_t virtual_bytes;
	uint64_t open_fds;
	uint64_t max_fds;           /* soft RLIMIT_NOFILE */
	double start_time;          /* Unix time the process started, seconds */
};

/* Fills *p. Returns 0, or -errno of the first file that could not be read
 * (then *p is all zero). Allocates nothing; safe from any thread. */
int procstat_read(struct procstat *p);

#endif
