/* shm.c — create, attach to and validate a queue object; process records. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "internal.h"

#define ALIGN64(n) (((n) + 63u) & ~(uint64_t)63u)
#define MAX_PAYLOAD_LIMIT (1u << 20)
/* The most a sparse queue's ring may span (address space, not memory). */
#define SPARSE_ARENA_MAX (64ull << 30)
#define SHM_DIR "/dev/shm"

void forq_options_default(struct forq_options *o)
{
	*o = (struct forq_options){
		.capacity = 65536,
		.max_payload = 1024,
		.batch_max = 64,
		.max_procs = 64,
		.lease_max = 1024,
		.retry_max = 1024,
		.dead_max = 1024,
		.recent_max = 65536,
		.keys_max = 16384,
		.max_attempts = 3,
		.backoff_ms = 100,
		.first_id = 1,
	};
}

/* Where everything goes; both creation and validation derive it from the
 * same sizes, so an attacher can check every stored offset. */
struct layout {
	uint64_t procs_off, inflight_off, lease_off, retry_off, dead_off, recent_off, keys_off;
	uint64_t arena_off[FORQ_NRINGS], arena_bytes[FORQ_NRINGS], cap[FORQ_NRINGS];
	uint64_t total;
	uint32_t entry_size;
	int sparse;
};

/* Sparse queues put entries, tables and arenas on page boundaries, so that
 * each has pages of its own to reserve and give back (backing.c). */
static uint64_t align_to(uint64_t n, int sparse)
{
	return sparse ? FORQ_PAGE_UP(n) : ALIGN64(n);
}

static void layout_compute(const struct forq_options *o, struct layout *l)
{
	int sp = l->sparse = o->max_payload > FORQ_BACKED_PAYLOAD_MAX;
	l->entry_size = (uint32_t)align_to(FORQ_ALIGN8(sizeof(struct forq_entry) + o->max_payload), sp);
	uint64_t rec_max = FORQ_REC_SIZE(o->max_payload);
	uint64_t off = ALIGN64(sizeof(struct forq_hdr));
	l->procs_off = off;
	off = align_to(off + (uint64_t)o->max_procs * sizeof(struct forq_proc), sp);
	l->inflight_off = off;
	off = align_to(off + (uint64_t)o->max_procs * o->batch_max * l->entry_size, sp);
	l->lease_off = off;
	off = align_to(off + (uint64_t)o->lease_max * l->entry_size, sp);
	l->retry_off = off;
	off = align_to(off + (uint64_t)o->retry_max * l->entry_size, sp);
	l->dead_off = off;
	off = align_to(off + (uint64_t)o->dead_max * l->entry_size, sp);
	l->recent_off = off;
	off = ALIGN64(off + (uint64_t)o->recent_max * sizeof(struct forq_recent));
	l->keys_off = off;
	off = align_to(off + (uint64_t)o->keys_max * sizeof(struct forq_key), sp);
	/* Main rings hold `capacity` tasks; their arenas give 64 bytes a task
	 * (a task with a payload of up to 32 bytes takes 40-64) and always room
	 * for a few of the largest. Front rings hold everything that can be in
	 * flight or waiting for a retry at once, at the largest size. A sparse
	 * queue's arenas have room for `capacity` of the largest (up to
	 * SPARSE_ARENA_MAX): only what is queued has memory. */
	uint64_t front_cap = (uint64_t)o->max_procs * o->batch_max + o->lease_max + o->retry_max;
	for (int r = 0; r < FORQ_NRINGS; r++) {
		uint64_t cap = (r % 2) ? front_cap : o->capacity;
		/* A front ring must hold front_cap of the largest tasks: repair
		 * gives tasks back there and must never find it full. */
		uint64_t bytes = (r % 2) || sp ? cap * rec_max : cap * 64;
		if (sp && !(r % 2) && bytes > SPARSE_ARENA_MAX)
			bytes = SPARSE_ARENA_MAX;
		if (bytes < 4 * rec_max)
			bytes = 4 * rec_max;
		l->arena_off[r] = off;
		l->arena_bytes[r] = align_to(bytes, sp);
		l->cap[r] = cap;
		off = align_to(off + l->arena_bytes[r], sp);
	}
	l->total = align_to(off, sp);
}

static int check_options(const struct forq_options *o, char *err, size_t errlen)
{
	if (o->capacity < 1 || o->capacity > (1u << 26)) {
		errmsg_set(err, errlen, "capacity %u is out of range (1 to %u)", o->capacity,
			      1u << 26);
		return -EINVAL;
	}
	if (o->max_payload < 8 || o->max_payload > MAX_PAYLOAD_LIMIT) {
		errmsg_set(err, errlen, "max payload %u is out of range (8 to %u bytes)",
			      o->max_payload, MAX_PAYLOAD_LIMIT);
		return -EINVAL;
	}
	if (o->batch_max < 1 || o->batch_max > 4096 || o->max_procs < 2 ||
	    o->max_procs > 4096 || o->lease_max > (1u << 20) || o->retry_max > (1u << 20) ||
	    o->dead_max > (1u << 20) || o->recent_max < 1 || o->recent_max > (1u << 24) ||
	    o->keys_max < 1 || o->keys_max > (1u << 22) || o->max_attempts < 1 ||
	    o->max_attempts > 1000 || o->backoff_ms > 3600000 || o->first_id < 1 ||
	    o->first_id >= FORQ_ID_SAFE_MAX) {
		errmsg_set(err, errlen, "queue options out of range");
		return -EINVAL;
	}
	return 0;
}

static int check_name(const char *name, char *err, size_t errlen)
{
	size_t n = name ? strlen(name) : 0;
	if (n < 2 || name[0] != '/' || strchr(name + 1, '/') || n > 200) {
		errmsg_set(err, errlen,
			      "bad shared-memory name \"%s\" (use a slash and a word, like /forq)",
			      name ? name : "");
		return -EINVAL;
	}
	return 0;
}

static int map_object(struct forq *q, int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	q->base = p;
	q->size = size;
	q->fd = fd;
	q->h = p;
	return 0;
}

/* Reserves what a queue always needs, in its own pages: all of it, or for a
 * sparse queue everything but the ring arenas and the entries' later pages
 * (those are reserved while in use). A /dev/shm too small for it is a clear
 * refusal here rather than a SIGBUS at the first touch of a late page. */
static int reserve_fixed(int fd, const struct layout *l)
{
	if (!l->sparse)
		return posix_fallocate(fd, 0, (off_t)l->total);
	if (ftruncate(fd, (off_t)l->total) < 0)
		return errno;
	int r = posix_fallocate(fd, 0, (off_t)l->inflight_off);
	for (uint64_t off = l->inflight_off; !r && off < l->recent_off; off += l->entry_size)
		r = posix_fallocate(fd, (off_t)off, FORQ_PAGE);
	if (!r)
		r = posix_fallocate(fd, (off_t)l->recent_off, (off_t)(l->arena_off[0] - l->recent_off));
	return r;
}

/* The bytes reserve_fixed takes. */
static uint64_t fixed_bytes(const struct layout *l)
{
	if (!l->sparse)
		return l->total;
	return l->inflight_off + (l->recent_off - l->inflight_off) / l->entry_size * FORQ_PAGE +
	       (l->arena_off[0] - l->recent_off);
}

static int check_space(int fd, const struct layout *l, char *err, size_t errlen)
{
	int r = reserve_fixed(fd, l);
	if (r == 0)
		return 0;
	if (r == ENOSPC) {
		errmsg_set(err, errlen,
			      "%s cannot hold the queue: it needs %llu MiB (lower --capacity or "
			      "--max-payload, or give /dev/shm more room, e.g. compose shm_size)",
			      SHM_DIR, (unsigned long long)((fixed_bytes(l) + (1 << 20) - 1) >> 20));
		return -ENOSPC;
	}
	errmsg_set(err, errlen, "cannot size the shared memory: %s", strerror(r));
	return -r;
}

int forq_create(struct forq **qp, const char *name, const struct forq_options *opt, char *err,
		size_t errlen)
{
	struct forq_options o;
	struct layout l;
	struct forq *q = NULL;
	int fd = -1, r;

	*qp = NULL;
	if (opt)
		o = *opt;
	else
		forq_options_default(&o);
	if ((r = check_name(name, err, errlen)) || (r = check_options(&o, err, errlen)))
		return r;
	while (o.recent_max & (o.recent_max - 1))
		o.recent_max += o.recent_max & -o.recent_max; /* round up to a power of two */
	while (o.keys_max & (o.keys_max - 1))
		o.keys_max += o.keys_max & -o.keys_max;
	layout_compute(&o, &l);

	q = calloc(1, sizeof *q);
	if (!q)
		return -ENOMEM;
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		if (r == -EEXIST)
			errmsg_set(err, errlen,
				      "shared memory %s already exists (another forqd, or a "
				      "stale queue: forqd recovers it, or remove /dev/shm%s)",
				      name, name);
		else
			errmsg_set(err, errlen, "cannot create shared memory %s: %s", name,
				      strerror(-r));
		goto fail;
	}
	if (fchmod(fd, 0600) < 0) { /* umask may only narrow it; make it exact */
		r = -errno;
		goto fail_unlink;
	}
	if ((r = check_space(fd, &l, err, errlen)))
		goto fail_unlink;
	if ((r = map_object(q, fd, l.total))) {
		errmsg_set(err, errlen, "cannot map shared memory: %s", strerror(-r));
		goto fail_unlink;
	}
	fd = -1; /* owned by q now */
	q->entry_size = l.entry_size;
	q->sparse = (uint32_t)l.sparse;
	snprintf(q->name, sizeof q->name, "%s", name);

	struct forq_hdr *h = q->h;
	h->version = FORQ_LAYOUT_VERSION;
	h->hdr_size = sizeof *h;
	h->total_size = l.total;
	h->proc_size = sizeof(struct forq_proc);
	h->entry_size = l.entry_size;
	h->rec_size = sizeof(struct forq_rec);
	h->uid = (uint32_t)geteuid();
	h->capacity = o.capacity;
	h->max_payload = o.max_payload;
	h->batch_max = o.batch_max;
	h->max_procs = o.max_procs;
	h->lease_max = o.lease_max;
	h->retry_max = o.retry_max;
	h->dead_max = o.dead_max;
	h->recent_max = o.recent_max;
	h->max_workers = FORQ_MAX_WORKERS;
	h->max_attempts = o.max_attempts;
	h->backoff_ms = o.backoff_ms;
	h->sparse = (uint32_t)l.sparse;
	h->procs_off = l.procs_off;
	h->inflight_off = l.inflight_off;
	h->lease_off = l.lease_off;
	h->retry_off = l.retry_off;
	h->dead_off = l.dead_off;
	h->recent_off = l.recent_off;
	h->keys_max = o.keys_max;
	h->keys_off = l.keys_off;
	h->created_unix_ns = clock_real_ns();
	atomic_store(&h->next_id, o.first_id);
	atomic_store(&h->flags, FORQ_F_ACCEPTING);
	if ((r = forq__mutex_init(&h->proc_lock)) || (r = forq__mutex_init(&h->aux_lock)) ||
	    (r = forq__mutex_init(&h->keys_lock)))
		goto fail_unmap;
	for (int i = 0; i < FORQ_NRINGS; i++)
		if ((r = forq__ring_init(&h->rings[i], l.arena_off[i], l.arena_bytes[i], l.cap[i])))
			goto fail_unmap;
	/* The magic goes last: an attacher never sees a half-built object as valid. */
	atomic_thread_fence(memory_order_release);
	h->magic = FORQ_MAGIC;
	if ((r = forq__proc_claim(q, FORQ_ROLE_SUPERVISOR, -1))) {
		errmsg_set(err, errlen, "cannot register in the new queue: %s", strerror(-r));
		goto fail_unmap;
	}
	*qp = q;
	return 0;

fail_unmap:
	munmap(q->base, q->size);
	close(q->fd);
fail_unlink:
	shm_unlink(name);
fail:
	if (fd >= 0)
		close(fd);
	free(q);
	return r;
}

/* Checks a mapped object against what this build expects. */
static int validate(struct forq *q, char *err, size_t errlen)
{
	const struct forq_hdr *h = q->h;
	if (h->magic != FORQ_MAGIC) {
		errmsg_set(err, errlen, "%s is not a forq queue (bad magic)", q->name);
		return -EPROTO;
	}
	if (h->version != FORQ_LAYOUT_VERSION) {
		errmsg_set(err, errlen,
			   "%s has layout version %u, this build reads version %u (stop the "
			   "old forqd, then remove /dev/shm%s)",
			   q->name, h->version, FORQ_LAYOUT_VERSION, q->name);
		return -EPROTO;
	}
	if (h->hdr_size != sizeof *h || h->proc_size != sizeof(struct forq_proc) ||
	    h->rec_size != sizeof(struct forq_rec)) {
		errmsg_set(err, errlen,
			   "%s has layout version %u but record sizes %u/%u/%u, this build's are "
			   "%zu/%zu/%zu (a build of another ABI? remove /dev/shm%s)",
			   q->name, h->version, h->hdr_size, h->proc_size, h->rec_size, sizeof *h,
			   sizeof(struct forq_proc), sizeof(struct forq_rec), q->name);
		return -EPROTO;
	}
	struct forq_options o = {
		.capacity = h->capacity, .max_payload = h->max_payload, .batch_max = h->batch_max,
		.max_procs = h->max_procs, .lease_max = h->lease_max, .retry_max = h->retry_max,
		.dead_max = h->dead_max, .recent_max = h->recent_max, .keys_max = h->keys_max,
		.max_attempts = h->max_attempts, .backoff_ms = h->backoff_ms, .first_id = 1};
	struct layout l;
	if (check_options(&o, NULL, 0) || h->recent_max == 0 ||
	    (h->recent_max & (h->recent_max - 1)))
		goto corrupt;
	layout_compute(&o, &l);
	if (h->total_size != q->size || l.total != q->size || h->entry_size != l.entry_size ||
	    h->sparse != (uint32_t)l.sparse ||
	    h->procs_off != l.procs_off || h->inflight_off != l.inflight_off ||
	    h->lease_off != l.lease_off || h->retry_off != l.retry_off ||
	    h->dead_off != l.dead_off || h->recent_off != l.recent_off ||
	    h->keys_off != l.keys_off || (h->keys_max & (h->keys_max - 1)))
		goto corrupt;
	for (int i = 0; i < FORQ_NRINGS; i++) {
		const struct forq_ring *r = &h->rings[i];
		if (r->arena_off != l.arena_off[i] || r->arena_bytes != l.arena_bytes[i] ||
		    r->cap_tasks != l.cap[i])
			goto corrupt;
		uint64_t t = atomic_load(&r->tail), hd = atomic_load(&r->head);
		if (hd > t || t - hd > r->arena_bytes || (t & 7) || (hd & 7) ||
		    r->backed_lo > r->backed_hi || r->backed_hi - r->backed_lo > r->arena_bytes)
			goto corrupt;
	}
	return 0;
corrupt:
	errmsg_set(err, errlen, "%s is corrupt: its header does not match its size", q->name);
	return -EPROTO;
}

static int attach(struct forq **qp, const char *name, int claim, char *err, size_t errlen)
{
	struct forq *q;
	struct stat st;
	int fd, r;

	*qp = NULL;
	if ((r = check_name(name, err, errlen)))
		return r;
	q = calloc(1, sizeof *q);
	if (!q)
		return -ENOMEM;
	snprintf(q->name, sizeof q->name, "%s", name);
	fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			errmsg_set(err, errlen, "no queue named %s (is forqd running?)", name);
		else
			errmsg_set(err, errlen, "cannot open shared memory %s: %s", name,
				      strerror(-r));
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (st.st_uid != geteuid()) {
		errmsg_set(err, errlen, "%s belongs to uid %u, not to you (uid %u): refusing it",
			      name, (unsigned)st.st_uid, (unsigned)geteuid());
		r = -EPERM;
		goto fail;
	}
	if (st.st_mode & 077) {
		errmsg_set(err, errlen,
			      "%s has mode %03o: others could tamper with it (forq creates 0600)",
			      name, (unsigned)(st.st_mode & 0777));
		r = -EPERM;
		goto fail;
	}
	if ((size_t)st.st_size < sizeof(struct forq_hdr)) {
		errmsg_set(err, errlen, "%s is not a forq queue (%lld bytes)", name,
			      (long long)st.st_size);
		r = -EPROTO;
		goto fail;
	}
	if ((r = map_object(q, fd, (size_t)st.st_size))) {
		errmsg_set(err, errlen, "cannot map %s: %s", name, strerror(-r));
		goto fail;
	}
	fd = -1;
	if ((r = validate(q, err, errlen)))
		goto fail_unmap;
	q->entry_size = q->h->entry_size;
	q->sparse = q->h->sparse;
	if (claim && (r = forq__proc_claim(q, FORQ_ROLE_CLIENT, -1))) {
		errmsg_set(err, errlen, "%s: %s", name,
			      r == -EUSERS ? "too many processes attached" : strerror(-r));
		goto fail_unmap;
	}
	*qp = q;
	return 0;

fail_unmap:
	munmap(q->base, q->size);
	fd = q->fd;
fail:
	if (fd >= 0)
		close(fd);
	free(q);
	return r;
}

int forq_open(struct forq **qp, const char *name, char *err, size_t errlen)
{
	return attach(qp, name, 1, err, errlen);
}

/* For forqd: attach without a record (it claims one as supervisor). */
int forq__attach_bare(struct forq **qp, const char *name, char *err, size_t errlen)
{
	return attach(qp, name, 0, err, errlen);
}

void forq_close(struct forq *q)
{
	if (!q)
		return;
	if (q->me && q->pid == getpid()) {
		forq_giveback(q);
		forq__proc_release(q);
	}
	munmap(q->base, q->size);
	if (q->fd >= 0)
		close(q->fd);
	free(q);
}

int forq_unlink(const char *name)
{
	return shm_unlink(name) < 0 ? -errno : 0;
}
