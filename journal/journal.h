/* journal.h — forqd's write-ahead journal of its queue (--journal DIR,
 * --fsync always|MS|off), so that a queue survives what shared memory does
 * not (a reboot, a power cut, a container's end).
 *
 * A writer thread tails every ring of a journaled queue from its durable
 * mark to its tail (core: forq_admin_journal_*), appends one ACCEPT record
 * per task (record.h) to the current segment, syncs by the mode, then moves
 * the marks: consumers never take a task the journal has not written, and
 * one write and one fdatasync cover everything pushed since the last.
 * Finished ids come from consumers (base/idpipe.h on the pipe
 * journal_finish_fd) and from forqd itself (journal_finished) once their
 * result is written, and go in as FINISH records of id ranges. Segments
 * rotate at a size and are removed once every task in them has finished or
 * was written again later.
 *
 * At open the segments are read (a torn tail cut at the last whole record,
 * logged with its offset; another queue's or format's journal refused);
 * with replay, every task accepted and not finished is queued again, its id
 * and attempts kept. Errors are returned; the thread logs what it meets
 * (a write error keeps the tasks queued and unjournaled until it passes). */
#ifndef FORQ_JOURNAL_H
#define FORQ_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

struct forq;
struct journal;

#define JOURNAL_SYNC_ALWAYS (-1) /* fsync before a task is released */
#define JOURNAL_SYNC_OFF (-2)    /* never (the kernel writes back) */

struct journal_config {
	const char *dir;
	int fsync_ms;            /* JOURNAL_SYNC_ALWAYS, _OFF, or at most this many ms apart */
	uint64_t segment_bytes;  /* rotate past this size */
	const char *queue_name;  /* written in each segment, checked at open */
	uint32_t max_payload;
	/* With JOURNAL_SYNC_ALWAYS: called on the writer thread after each
	 * write that moved the durable marks (for waiters that cannot sleep on
	 * the queue's futex: an event loop). NULL: none. */
	void (*on_durable)(void *ctx);
	void *on_durable_ctx;
};

struct journal_stats {
	uint64_t bytes;      /* written since start */
	uint64_t fsyncs;
	uint64_t pending;    /* tasks pushed and not yet journaled */
	uint64_t segments;   /* files now */
	uint64_t live;       /* tasks accepted and not finished, as the journal knows */
	uint64_t replayed;   /* tasks queued again at open */
	uint64_t write_errors;
};

/* Opens dir, reads it, turns the queue's gate on and starts the writer;
 * with replay (a queue just made), queues again what is live. 0 or -errno
 * with err set. */
int journal_open(struct journal **jp, struct forq *q, const struct journal_config *c, int replay,
		 char *err, size_t errlen);
/* The pipe's write end for consumers (kept across their exec). */
int journal_finish_fd(const struct journal *j);
/* The same from forqd's own threads. */
void journal_finished(struct journal *j, const uint64_t *ids, size_t n);
void journal_stats_read(struct journal *j, struct journal_stats *out);
/* Writes what is pushed, syncs, stops the threads; with end_gate the queue
 * is no longer journaled (consumers take everything). NULL is fine. */
void journal_close(struct journal *j, int end_gate);

#endif
