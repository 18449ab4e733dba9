/* record.h — the journal's bytes on disk: a segment header, then records.
 * Pure functions, no I/O (fuzzed: tests/fuzz/fuzz_journal.c).
 *
 * Segment header (JREC_HDR_SIZE bytes): magic "FORQJRN1", format version
 * (3 now; formats 1 and 2, the same without BATCH records and without TASK
 * records, are read as well),
 * header size, segment number, id floor (new ids start at or after it), the
 * queue's max payload and shm name, CRC32C of what precedes it.
 * Record: u32 body length, u8 type, u8 priority, u16 attempts, u32 CRC32C of
 * the first 8 bytes and the body; then the body:
 *   JREC_ACCEPT  u64 id, u32 tasks-file line, the payload
 *   JREC_FINISH  n ranges of u64 first id, u32 count
 *   JREC_TASK    an ACCEPT with a schedule or a key: u64 id, u32 line,
 *                u16 key length, u16 0, u64 due (unix ms, 0: not delayed),
 *                u64 key window (ms), the key, the payload
 *   JREC_BATCH   plain tasks (no key, no schedule) of one priority, the
 *                writer's common case in a few bytes each: u64 base id,
 *                u32 count (1..JREC_BATCH_MAX), then count entries:
 *                u8 flags (JBAT_*), varint payload length, varint id gap
 *                (JBAT_GAP), varint attempts (JBAT_ATTEMPTS), varint line
 *                (JBAT_LINE), the payload; an entry's id is the previous
 *                one's + 1 + its gap (the first's previous: base - 1)
 * Every integer little-endian; a varint is LEB128, at most 10 bytes. */
#ifndef FORQ_JOURNAL_RECORD_H
#define FORQ_JOURNAL_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define JREC_FORMAT 3u
#define JREC_FORMAT_OLDEST 1u     /* the oldest this reader takes */
#define JREC_HDR_SIZE 112u
#define JREC_HEAD 12u             /* a record's fixed part */
#define JREC_ACCEPT_FIXED 12u     /* id + line */
#define JREC_RANGE 12u            /* id + count */
#define JREC_TASK_FIXED 32u       /* id, line, key length, 0, due, window */
#define JREC_KEY_MAX 255u
#define JREC_NAME_MAX 63u
#define JREC_PAYLOAD_MAX (1u << 20)
#define JREC_RANGES_MAX 4096u
#define JREC_BATCH_FIXED 12u      /* base id + count */
#define JREC_BATCH_MAX 4096u      /* tasks in one BATCH */
#define JREC_BATCH_BYTES (256u << 10) /* a BATCH ends past this, then takes one more entry */
#define JREC_BATCH_ENTRY_MAX (1u + 5u + 10u + 5u + 5u) /* an entry's bytes before its payload */
#define JREC_BATCH_BODY_MAX (JREC_BATCH_FIXED + JREC_BATCH_BYTES + JREC_BATCH_ENTRY_MAX + JREC_PAYLOAD_MAX)

enum { JBAT_GAP = 1, JBAT_ATTEMPTS = 2, JBAT_LINE = 4 };

enum jrec_type { JREC_ACCEPT = 1, JREC_FINISH = 2, JREC_TASK = 3, JREC_BATCH = 4 };

struct jrec_seg_hdr {
	uint64_t seq;
	uint64_t id_floor;
	uint32_t max_payload;
	char name[JREC_NAME_MAX + 1];
};

struct jrec {
	int type;
	int prio;
	unsigned attempts;
	uint64_t id;            /* BATCH: its base id */
	uint32_t line;
	const uint8_t *payload; /* ACCEPT, TASK: into the decoded bytes */
	uint32_t len;           /* ACCEPT, TASK: the payload's bytes; BATCH: its entries' */
	uint64_t due_ms;        /* TASK: when it is due, unix ms (0: not delayed) */
	uint64_t window_ms;     /* TASK: how long its key is held after its end */
	const uint8_t *key;     /* TASK: key_len bytes (0: no key) */
	uint32_t key_len;
	const uint8_t *ranges;  /* FINISH: nranges * JREC_RANGE bytes, jrec_range() */
	uint32_t nranges;
	const uint8_t *entries; /* BATCH: its first entry (jrec_tasks_next reads them) */
	uint32_t count;         /* BATCH: its tasks */
};

/* A task as a TASK record holds it. */
struct jrec_task {
	uint64_t id;
	int prio;
	unsigned attempts;
	uint32_t line;
	uint64_t due_ms, window_ms;
	const void *key;
	uint32_t key_len;
	const void *payload;
	uint32_t len;
};

/* An ACCEPT, a TASK or a BATCH: a task's latest record says it is live. */
static inline int jrec_accepts(const struct jrec *r)
{
	return r->type == JREC_ACCEPT || r->type == JREC_TASK || r->type == JREC_BATCH;
}

/* The tasks of a decoded ACCEPT, TASK or BATCH record, one at a time. */
struct jrec_tasks {
	const struct jrec *r;
	const uint8_t *p;
	uint64_t prev;
	uint32_t left;
};
void jrec_tasks_begin(struct jrec_tasks *it, const struct jrec *r);
/* The next task as an ACCEPT or TASK record would decode it, and its byte
 * offset from the record's start (unique per task in a segment); 0 at the
 * end. A BATCH is checked whole by jrec_decode: this cannot fail. */
int jrec_tasks_next(struct jrec_tasks *it, struct jrec *task, uint32_t *off);

/* CRC32C of n bytes, continuing crc (0 to start): the CPU's instruction
 * where it has one, else a table (crc32c_portable, always the table). */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);
uint32_t crc32c_portable(uint32_t crc, const void *p, size_t n);

void jrec_hdr_encode(uint8_t out[JREC_HDR_SIZE], const struct jrec_seg_hdr *h);
/* 0, or -1 with why in err: not a journal, another format, a bad checksum. */
int jrec_hdr_decode(const uint8_t *p, size_t n, struct jrec_seg_hdr *h, char *err, size_t errlen);

/* An ACCEPT record: what formats 1 and 2 wrote for a task without a key
 * (read still; the writer now makes BATCH entries). */
int jrec_put_accept(struct buf *b, uint64_t id, int prio, unsigned attempts, uint32_t line,
		    const void *payload, uint32_t len);
/* A TASK record: -EINVAL for a payload or key too long. */
int jrec_put_task(struct buf *b, const struct jrec_task *t);
/* A BATCH record being written at the end of a buffer: nothing else may
 * be appended to the buffer until jrec_batch_end. */
struct jrec_batch {
	size_t at;     /* its offset in the buffer; SIZE_MAX: none open */
	uint64_t prev; /* its last id */
	uint32_t count;
	int prio;
};
void jrec_batch_init(struct jrec_batch *w);
/* Adds a plain task: to the open BATCH, or to a new one (the open one
 * ended) when none is open, the priority differs, it is full or the id
 * is not above its last. 0 or -EINVAL (payload too long, attempts over
 * 65535) or -ENOMEM. */
int jrec_batch_add(struct buf *b, struct jrec_batch *w, uint64_t id, int prio, unsigned attempts,
		   uint32_t line, const void *payload, uint32_t len);
/* The same for n tasks as core's journal scan hands them over (ids,
 * lengths and all): the writer's hot path, one reservation for them all.
 * 0, or -ENOMEM with none added. */
struct forq_journal_plain;
int jrec_batch_add_plain(struct buf *b, struct jrec_batch *w, const struct forq_journal_plain *v,
			 size_t n);
/* Ends the open BATCH (its length and checksum written); none: nothing. */
void jrec_batch_end(struct buf *b, struct jrec_batch *w);

/* FINISH records for ids[0..n): runs of consecutive ids as ranges, in the
 * order given (a repeat inside a run folds into it); several records if
 * they need more than JREC_RANGES_MAX ranges. */
int jrec_put_finish(struct buf *b, const uint64_t *ids, size_t n);
/* The same for runs given as n (first id, count) pairs in runs[0..2n). */
int jrec_put_finish_runs(struct buf *b, const uint64_t *runs, size_t n);

/* Decodes the record at p (n bytes there): its size, 0 when n is too short
 * for it (a torn tail), -1 when it is not a record (bad length, type or
 * checksum). */
long jrec_decode(const uint8_t *p, size_t n, struct jrec *out);
/* Range i of a FINISH record. */
void jrec_range(const struct jrec *r, uint32_t i, uint64_t *first, uint32_t *count);

#endif
