/* procstat.c — process_* figures from /proc. */
#include "procstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Reads a small file whole into buf (NUL-terminated). Returns bytes or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = 0;
	while (n + 1 < size) {
		ssize_t r = read(fd, buf + n, size - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	return (ssize_t)n;
}

/* /proc/self/stat: fields after the ")" that ends comm (comm may hold spaces
 * and parentheses, so search from the right). */
static int read_stat(struct procstat *p, unsigned long long *starttime)
{
	char buf[1024];
	ssize_t n = read_small("/proc/self/stat", buf, sizeof buf);
	if (n < 0)
		return (int)n;
	char *s = strrchr(buf, ')');
	if (!s)
		return -EPROTO;
	unsigned long utime, stime;
	unsigned long long start;
	unsigned long vsize;
	long rss;
	/* Fields 3..24: state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime cutime cstime priority nice threads
	 * itrealvalue starttime vsize rss (pages, the same figure as statm's
	 * resident: one file read per scrape instead of two). */
	if (sscanf(s + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %llu %lu %ld",
		   &utime, &stime, &start, &vsize, &rss) != 5)
		return -EPROTO;
	long tck = sysconf(_SC_CLK_TCK);
	if (tck <= 0)
		tck = 100;
	long page = sysconf(_SC_PAGESIZE);
	p->cpu_seconds = (double)(utime + stime) / (double)tck;
	p->virtual_bytes = vsize;
	p->resident_bytes = (uint64_t)(rss > 0 ? rss : 0) * (uint64_t)(page > 0 ? page : 4096);
	*starttime = start;
	return 0;
}

static int read_btime(unsigned long long *btime)
{
	/* The boot time is fixed: read it once, not on every scrape (it also
	 * keeps process_start_time_seconds from jittering with clock slews). */
	static _Atomic unsigned long long cached;
	unsigned long long c = atomic_load_explicit(&cached, memory_order_relaxed);
	if (c) {
		*btime = c;
		return 0;
	}
	/* /proc/stat grows with the CPU count; read it in chunks, line by line. */
	FILE *f = fopen("/proc/stat", "re");
	if (!f)
		return -errno;
	char line[512];
	int r = -EPROTO;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "btime %llu", btime) == 1) {
			atomic_store_explicit(&cached, *btime, memory_order_relaxed);
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

static int count_fds(uint64_t *out)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -errno;
	uint64_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	*out = n ? n - 1 : 0; /* minus the directory's own descriptor */
	return 0;
}

int procstat_read(struct procstat *p)
{
	unsigned long long start = 0, btime = 0;
	struct rlimit rl;
	int r;

	memset(p, 0, sizeof *p);
	if ((r = read_stat(p, &start)) || (r = read_btime(&btime)) ||
	    (r = count_fds(&p->open_fds)))
		goto fail;
	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		r = -errno;
		goto fail;
	}
	p->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
	long tck = sysconf(_SC_CLK_TCK);
	p->start_time = (double)btime + (double)start / (double)(tck > 0 ? tck : 100);
	return 0;
fail:
	memset(p, 0, sizeof *p);
	return r;
}
