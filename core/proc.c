/* proc.c — process records (one per attached process: its counters, the
 * tasks it holds) and what /proc says of a pid. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

const char *forq__proc_stat(int pid, char *buf, size_t cap)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return strrchr(buf, ')'); /* the name may hold spaces and ')' itself */
}

uint64_t forq__proc_start_ticks(int pid)
{
	char buf[1024];
	const char *p = forq__proc_stat(pid, buf, sizeof buf);
	if (!p)
		return 0;
	/* Field 22 (starttime) counted after the ")" that ends field 2. */
	int field = 2;
	for (p++; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return strtoull(p, NULL, 10);
}

int forq__proc_claim(struct forq *q, uint32_t role, int worker)
{
	struct forq_hdr *h = q->h;
	int r = forq__lock(q, &h->proc_lock, NULL, NULL);
	if (r)
		return r;
	r = -EUSERS;
	for (uint32_t i = 0; i < h->max_procs; i++) {
		struct forq_proc *p = forq__proc(q, i);
		if (atomic_load(&p->state) != FORQ_PROC_FREE)
			continue;
		p->role = role;
		p->pid = getpid();
		p->generation = atomic_load(&h->generation);
		p->start_ticks = forq__proc_start_ticks(p->pid);
		p->worker = worker;
		atomic_store(&p->current_id, 0);
		atomic_store(&p->state, FORQ_PROC_ACTIVE);
		q->me = p;
		q->me_idx = i;
		q->pid = p->pid;
		q->batch_n = q->batch_open = 0;
		r = 0;
		break;
	}
	forq__unlock(&h->proc_lock);
	return r;
}

void forq__proc_release(struct forq *q)
{
	struct forq_proc *p = q->me;
	if (!p)
		return;
	if (forq__lock(q, &q->h->proc_lock, NULL, NULL) == 0) {
		p->pid = 0;
		atomic_store(&p->current_id, 0);
		atomic_store(&p->state, FORQ_PROC_FREE);
		forq__unlock(&q->h->proc_lock);
	}
	q->me = NULL;
}

