/* segments.h — the journal's files and what is live in them (private to
 * journal/). A segment is DIR/journal-<seq>.log; the live map says, for
 * every task accepted and not finished, which segment holds its latest
 * ACCEPT, TASK or BATCH record (livemap.h), so that a segment whose tasks have all
 * finished (or moved on) can be removed. */
#ifndef FORQ_JOURNAL_SEGMENTS_H
#define FORQ_JOURNAL_SEGMENTS_H

#include <stddef.h>
#include <stdint.h>

#include "livemap.h"
#include "record.h"

/* A task to queue again, read from the journal at start. */
struct replay_task {
	uint64_t id;
	uint32_t len, line;
	unsigned attempts;
	int prio;
	uint64_t due_ms;    /* a delayed task: due then (unix ms), 0: not delayed */
	uint64_t window_ms; /* a keyed task: its key's window */
	const char *key;    /* key_len bytes (0: no key), inside payload's allocation */
	uint32_t key_len;
	uint8_t *payload;   /* malloc'd */
};

struct segset {
	char *dir;
	int dirfd;
	char name[JREC_NAME_MAX + 1];
	uint32_t max_payload;
	struct seg *segs; /* oldest first; the last is written */
	size_t nsegs, cap;
	struct livemap live;
	uint64_t max_id;  /* highest id seen or floor - 1 */
	int fd;           /* the last segment, open for append */
	uint64_t cut_bytes; /* cut from a torn tail at open */
	uint64_t prealloc;  /* bytes given to a new segment up front (0: none) */
};

/* Reads every segment of dir (made if missing): refuses a journal of
 * another queue or format, cuts a torn last segment at its last whole
 * record (logged with the offset), skips a corrupt record's rest of an
 * older one (logged), builds the live map; with `out`, the live tasks by
 * id (*nout of them, free with replay_free). Then opens a new segment
 * (each new one gets prealloc bytes of disk up front, its size unchanged).
 * 0, or -errno with err set. */
int segset_open(struct segset *s, const char *dir, const char *name, uint32_t max_payload,
		uint64_t prealloc, struct replay_task **out, size_t *nout, char *err, size_t errlen);
/* Starts a new segment after the current one (fsyncing the old). 0/-errno. */
int segset_rotate(struct segset *s);
/* The latest ACCEPT of id is in the current segment now. */
void segset_accepted(struct segset *s, uint64_t id);
void segset_finished(struct segset *s, uint64_t id);
/* The same for ids first .. first + count - 1. */
void segset_accepted_run(struct segset *s, uint64_t first, uint64_t count);
void segset_finished_run(struct segset *s, uint64_t first, uint64_t count);
/* The seq of the segment with id's latest ACCEPT, 0 if id is not live. */
uint64_t segset_where(const struct segset *s, uint64_t id);
/* A segment before the current one worth copying forward: something live
 * in it, but at most a quarter of what it took (so a copy costs at most a
 * quarter of a segment, and the journal's size follows what is pending,
 * not what passed), and either a whole segment after it or nothing of it
 * finished since the last segset_looked (tasks still draining from the
 * newest old segment are left to finish: copying them costs a read of the
 * whole file). 0 if none. */
uint64_t segset_copy_candidate(const struct segset *s);
/* Notes each segment's live count, for segset_copy_candidate. */
void segset_looked(struct segset *s);
/* Calls emit with each task of segment seq whose record there is still its
 * latest (as an ACCEPT or TASK decodes: jrec_tasks_next). 0 or -errno. */
int segset_copy_live(struct segset *s, uint64_t seq,
		     void (*emit)(void *ctx, const struct jrec *task), void *ctx);
/* A segment before the current one has nothing live (segset_gc's work). */
int segset_gc_ready(const struct segset *s);
/* Removes the segments before the current one with nothing live: call
 * only once what moved their tasks on is on disk. Returns how many. */
int segset_gc(struct segset *s);
void segset_close(struct segset *s);
void replay_free(struct replay_task *t, size_t n);

#endif
