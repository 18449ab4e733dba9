/* backing.c — memory that follows what is queued.
 *
 * A queue whose largest payload does not fit in a page (max_payload above
 * FORQ_BACKED_PAYLOAD_MAX) is created sparse: its header, process records,
 * recent results and the first page of every entry are reserved at once,
 * but entry pages beyond the first and all ring arenas get memory only while
 * a task occupies them. Pages are reserved before anything is written there
 * (a full /dev/shm is then an error, never a SIGBUS) and given back once
 * they hold nothing.
 *
 * Who may touch what: an entry's pages are reserved and released by whoever
 * writes and empties it (its owner, or the aux-lock holder for the lease,
 * retry and dead tables, or a repairer of a dead owner); a ring's, under its
 * push lock, by producers and the trimmer. Every step records what it is about
 * to release before releasing it, and what it reserved after reserving it:
 * a process killed in between leaves pages reserved and unrecorded (freed
 * by a later release of the same range), never recorded and missing.
 */
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "internal.h"

/* Through the mapping, not a descriptor: consumers close theirs (it would
 * hold forqd's ownership lock). MADV_POPULATE_WRITE (Linux 5.14) allocates
 * and says so when it cannot, where a plain write would get SIGBUS; an
 * older kernel refuses it, and then the pages come at the first write. */
static int reserve(struct forq *q, uint64_t off, uint64_t len)
{
	if (len && madvise(q->base + off, len, MADV_POPULATE_WRITE) < 0 && errno != EINVAL)
		return -EAGAIN;
	return 0;
}

static void release(struct forq *q, uint64_t off, uint64_t len)
{
	if (len)
		(void)madvise(q->base + off, len, MADV_REMOVE);
}

/* Whether /dev/shm has `more` bytes free and `keep` of the largest entries
 * besides. Taking a task copies it into an entry before its ring pages can
 * go, so a /dev/shm filled by pushes alone would let nothing move: new tasks
 * keep room for four, a consumer taking one keeps room for two (a remote
 * worker's lease is a second copy), and moves (a lease, a give-back) keep
 * none, as what they copy is freed right after. A process without the
 * object's descriptor (a consumer) cannot look, and only takes. */
static int room_left(struct forq *q, uint64_t more, unsigned keep)
{
	struct statvfs sv;
	if (!keep || q->fd < 0 || fstatvfs(q->fd, &sv) < 0)
		return 1;
	return (uint64_t)sv.f_bavail * sv.f_frsize >= more + (uint64_t)keep * q->entry_size;
}

static uint64_t entry_off(struct forq *q, const struct forq_entry *e)
{
	return (uint64_t)((const uint8_t *)e - q->base);
}

int forq__entry_back_slow(struct forq *q, struct forq_entry *e, uint32_t len, unsigned keep)
{
	uint64_t need = FORQ_PAGE_UP(sizeof *e + len) - FORQ_PAGE;
	if (need <= e->backed)
		return 0;
	if (!room_left(q, need - e->backed, keep))
		return -EAGAIN;
	int r = reserve(q, entry_off(q, e) + FORQ_PAGE + e->backed, need - e->backed);
	if (r == 0)
		e->backed = (uint32_t)need;
	return r;
}

void forq__entry_unback(struct forq *q, struct forq_entry *e)
{
	e->backed = 0; /* first: a crash below leaves pages, not a lie */
	release(q, entry_off(q, e) + FORQ_PAGE, q->entry_size - FORQ_PAGE);
}

/* Calls fn on the object's bytes behind ring positions [from, to), split at
 * the arena's end; stops at and returns the first error. */
static int ring_span(struct forq *q, const struct forq_ring *r, uint64_t from, uint64_t to,
		     int (*fn)(struct forq *, uint64_t, uint64_t))
{
	while (from < to) {
		uint64_t off = from % r->arena_bytes;
		uint64_t n = to - from;
		if (n > r->arena_bytes - off)
			n = r->arena_bytes - off;
		int e = fn(q, r->arena_off + off, n);
		if (e)
			return e;
		from += n;
	}
	return 0;
}

static int release_fn(struct forq *q, uint64_t off, uint64_t len)
{
	release(q, off, len);
	return 0;
}

/* Releases the pages of ring positions below `upto` (page-aligned, at
 * most the head). Push lock held. */
static void ring_release_below(struct forq *q, struct forq_ring *r, uint64_t upto)
{
	uint64_t lo = r->backed_lo, top = upto < r->backed_hi ? upto : r->backed_hi;
	if (upto <= lo)
		return;
	r->backed_lo = upto;
	if (r->backed_hi < upto)
		r->backed_hi = upto;
	(void)ring_span(q, r, lo, top, release_fn);
}

int forq__ring_back(struct forq *q, struct forq_ring *r, uint64_t head, uint64_t end)
{
	uint64_t floor = FORQ_PAGE_DOWN(head);
	/* Give back what consumers are done with, a chunk at a time, or at
	 * once when the new records need its pages for the wrap. */
	if (floor >= r->backed_lo + FORQ_BACKING_CHUNK || end > r->backed_lo + r->arena_bytes)
		ring_release_below(q, r, floor);
	if (end <= r->backed_hi)
		return 0;
	uint64_t hi = (end + FORQ_BACKING_CHUNK - 1) / FORQ_BACKING_CHUNK * FORQ_BACKING_CHUNK;
	if (hi > r->backed_lo + r->arena_bytes)
		hi = r->backed_lo + r->arena_bytes;
	/* New tasks (main rings) keep room; given-back ones already hold theirs. */
	int main_ring = (r - q->h->rings) % 2 == 0;
	if (!room_left(q, hi - r->backed_hi, main_ring ? FORQ_KEEP_PUSH : 0))
		return -EAGAIN;
	int e = ring_span(q, r, r->backed_hi, hi, reserve);
	if (e == 0)
		r->backed_hi = hi;
	return e;
}

int forq_admin_trim(struct forq *q)
{
	if (!q->sparse)
		return 0;
	for (int i = 0; i < FORQ_NRINGS; i++) {
		struct forq_ring *r = forq__ring(q, i);
		int e = forq__lock(q, &r->push_lock, forq__ring_repair_push, r);
		if (e)
			return e;
		uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
		ring_release_below(q, r, FORQ_PAGE_DOWN(head));
		forq__unlock(&r->push_lock);
	}
	return 0;
}

uint64_t forq_admin_resident(struct forq *q)
{
	struct stat st;
	if (fstat(q->fd, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512u;
}
