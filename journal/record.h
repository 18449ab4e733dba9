/* record.h — the journal's bytes on disk: a segment header, then records.
 * Pure functions, no I/O (fuzzed: tests/fuzz/fuzz_journal.c).
 *
 * Segment header (JREC_HDR_SIZE bytes): magic "FORQJRN1", format version
 * (2 now; format 1, the same without TASK records, is read as well),
 * header size, segment number, id floor (new ids start at or after it), the
 * queue's max payload and shm name, CRC32C of what precedes it.
 * Record: u32 body length, u8 type, u8 priority, u16 attempts, u32 CRC32C of
 * the first 8 bytes and the body; then the body:
 *   JREC_ACCEPT  u64 id, u32 tasks-file line, the payload
 *   JREC_FINISH  n ranges of u64 first id, u32 count
 *   JREC_TASK    an ACCEPT with a schedule or a key: u64 id, u32 line,
 *                u16 key length, u16 0, u64 due (unix ms, 0: not delayed),
 *                u64 key window (ms), the key, the payload
 * Every integer little-endian. */
#ifndef FORQ_JOURNAL_RECORD_H
#define FORQ_JOURNAL_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define JREC_FORMAT 2u
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

enum jrec_type { JREC_ACCEPT = 1, JREC_FINISH = 2, JREC_TASK = 3 };

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
	uint64_t id;
	uint32_t line;
	const uint8_t *payload; /* ACCEPT, TASK: into the decoded bytes */
	uint32_t len;
	uint64_t due_ms;        /* TASK: when it is due, unix ms (0: not delayed) */
	uint64_t window_ms;     /* TASK: how long its key is held after its end */
	const uint8_t *key;     /* TASK: key_len bytes (0: no key) */
	uint32_t key_len;
	const uint8_t *ranges;  /* FINISH: nranges * JREC_RANGE bytes, jrec_range() */
	uint32_t nranges;
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

/* An ACCEPT or a TASK: a task's latest record says it is live. */
static inline int jrec_accepts(const struct jrec *r)
{
	return r->type == JREC_ACCEPT || r->type == JREC_TASK;
}

/* CRC32C of n bytes, continuing crc (0 to start): the CPU's instruction
 * where it has one, else a table (crc32c_portable, always the table). */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);
uint32_t crc32c_portable(uint32_t crc, const void *p, size_t n);

void jrec_hdr_encode(uint8_t out[JREC_HDR_SIZE], const struct jrec_seg_hdr *h);
/* 0, or -1 with why in err: not a journal, another format, a bad checksum. */
int jrec_hdr_decode(const uint8_t *p, size_t n, struct jrec_seg_hdr *h, char *err, size_t errlen);

int jrec_put_accept(struct buf *b, uint64_t id, int prio, unsigned attempts, uint32_t line,
		    const void *payload, uint32_t len);
/* A TASK record: -EINVAL for a payload or key too long. */
int jrec_put_task(struct buf *b, const struct jrec_task *t);
/* FINISH records for ids[0..n): runs of consecutive ids as ranges, in the
 * order given (a repeat inside a run folds into it); several records if
 * they need more than JREC_RANGES_MAX ranges. */
int jrec_put_finish(struct buf *b, const uint64_t *ids, size_t n);

/* Decodes the record at p (n bytes there): its size, 0 when n is too short
 * for it (a torn tail), -1 when it is not a record (bad length, type or
 * checksum). */
long jrec_decode(const uint8_t *p, size_t n, struct jrec *out);
/* Range i of a FINISH record. */
void jrec_range(const struct jrec *r, uint32_t i, uint64_t *first, uint32_t *count);

#endif
