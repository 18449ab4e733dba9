/* record.c — the journal's on-disk codec (record.h) and CRC32C. */
#include "record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forq_admin.h"

static const uint8_t magic[8] = {'F', 'O', 'R', 'Q', 'J', 'R', 'N', '1'};

/* CRC32C (Castagnoli, reflected 0x82f63b78), one table, built once. */
static uint32_t table[256];

static void table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		table[i] = c;
	}
}

static uint32_t crc_table(uint32_t crc, const uint8_t *s, size_t n)
{
	if (!table[1])
		table_init(); /* idempotent: racing threads write the same values */
	while (n--)
		crc = table[(crc ^ *s++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
/* SSE 4.2's crc32 instruction is CRC32C: 8 bytes a cycle or so, where the
 * table takes one; the journal checksums every byte it writes. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *s, size_t n)
{
	uint64_t c = crc;
	for (; n >= 8; n -= 8, s += 8) {
		uint64_t v;
		memcpy(&v, s, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	uint32_t c32 = (uint32_t)c;
	/* The tail in at most three steps, not one a byte (a record's body is
	 * 12 bytes and the payload: its tail is often 4 or more). */
	if (n >= 4) {
		uint32_t v;
		memcpy(&v, s, 4);
		c32 = __builtin_ia32_crc32si(c32, v);
		s += 4;
		n -= 4;
	}
	if (n >= 2) {
		uint16_t v;
		memcpy(&v, s, 2);
		c32 = __builtin_ia32_crc32hi(c32, v);
		s += 2;
		n -= 2;
	}
	if (n)
		c32 = __builtin_ia32_crc32qi(c32, *s);
	return c32;
}
#endif

static int have_hw(void)
{
#if defined(__x86_64__)
	static int hw = -1;
	if (hw < 0)
		hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	return hw;
#else
	return 0;
#endif
}

uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
#if defined(__x86_64__)
	if (have_hw())
		return ~crc_hw(~crc, p, n);
#endif
	return ~crc_table(~crc, p, n);
}

/* A record's CRC: its first 8 bytes, then its body (the CRC field between
 * them skipped), in one pass of the instruction where there is one: the
 * writer's cost is per record, a few dozen bytes each. */
#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t rec_crc_hw(const uint8_t *p, uint32_t body)
{
	return ~crc_hw(crc_hw(~0u, p, 8), p + JREC_HEAD, body);
}
#endif

static uint32_t rec_crc(const uint8_t *p, uint32_t body)
{
#if defined(__x86_64__)
	if (have_hw())
		return rec_crc_hw(p, body);
#endif
	return crc32c(crc32c(0, p, 8), p + JREC_HEAD, body);
}

uint32_t crc32c_portable(uint32_t crc, const void *p, size_t n)
{
	return ~crc_table(~crc, p, n);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void jrec_hdr_encode(uint8_t out[JREC_HDR_SIZE], const struct jrec_seg_hdr *h)
{
	memset(out, 0, JREC_HDR_SIZE);
	memcpy(out, magic, 8);
	put32(out + 8, JREC_FORMAT);
	put32(out + 12, JREC_HDR_SIZE);
	put64(out + 16, h->seq);
	put64(out + 24, h->id_floor);
	put32(out + 32, h->max_payload);
	memcpy(out + 40, h->name, strnlen(h->name, JREC_NAME_MAX)); /* NUL-padded by memset */
	put32(out + JREC_HDR_SIZE - 8, crc32c(0, out, JREC_HDR_SIZE - 8));
}

int jrec_hdr_decode(const uint8_t *p, size_t n, struct jrec_seg_hdr *h, char *err, size_t errlen)
{
	if (n < JREC_HDR_SIZE || memcmp(p, magic, 8) != 0) {
		snprintf(err, errlen, "not a forq journal segment (no FORQJRN1 header)");
		return -1;
	}
	uint32_t format = get32(p + 8);
	if (format < JREC_FORMAT_OLDEST || format > JREC_FORMAT || get32(p + 12) != JREC_HDR_SIZE) {
		snprintf(err, errlen, "journal format %u, this forqd reads formats %u to %u", format,
			 JREC_FORMAT_OLDEST, JREC_FORMAT);
		return -1;
	}
	if (get32(p + JREC_HDR_SIZE - 8) != crc32c(0, p, JREC_HDR_SIZE - 8)) {
		snprintf(err, errlen, "segment header checksum does not match");
		return -1;
	}
	h->seq = get64(p + 16);
	h->id_floor = get64(p + 24);
	h->max_payload = get32(p + 32);
	memcpy(h->name, p + 40, JREC_NAME_MAX);
	h->name[JREC_NAME_MAX] = '\0';
	return 0;
}

/* A record's first 8 bytes as one little-endian value. */
static uint64_t head_of(uint32_t body, int type, int prio, unsigned attempts)
{
	return body | (uint64_t)(uint8_t)type << 32 | (uint64_t)(uint8_t)prio << 40 |
	       (uint64_t)(attempts & 0xffff) << 48;
}

/* Head and body in one buffer reservation; the CRC goes in last. */
static uint8_t *rec_begin(struct buf *b, uint32_t body, int type, int prio, unsigned attempts)
{
	if (buf_reserve(b, JREC_HEAD + body))
		return NULL;
	uint8_t *p = (uint8_t *)b->data + b->len;
	put64(p, head_of(body, type, prio, attempts));
	return p;
}

static void rec_end(struct buf *b, uint8_t *p, uint32_t body)
{
	put32(p + 8, rec_crc(p, body));
	b->len += JREC_HEAD + body;
	b->data[b->len] = '\0';
}

int jrec_put_accept(struct buf *b, uint64_t id, int prio, unsigned attempts, uint32_t line,
		    const void *payload, uint32_t len)
{
	if (len > JREC_PAYLOAD_MAX || attempts > 0xffff)
		return -EINVAL;
	uint32_t body = JREC_ACCEPT_FIXED + len;
	uint8_t *p = rec_begin(b, body, JREC_ACCEPT, prio, attempts);
	if (!p)
		return -ENOMEM;
	put64(p + JREC_HEAD, id);
	put32(p + JREC_HEAD + 8, line);
	memcpy(p + JREC_HEAD + JREC_ACCEPT_FIXED, payload, len);
	rec_end(b, p, body);
	return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

int jrec_put_task(struct buf *b, const struct jrec_task *t)
{
	if (t->len > JREC_PAYLOAD_MAX || t->key_len > JREC_KEY_MAX || t->attempts > 0xffff)
		return -EINVAL;
	uint32_t body = JREC_TASK_FIXED + t->key_len + t->len;
	uint8_t *p = rec_begin(b, body, JREC_TASK, t->prio, t->attempts);
	if (!p)
		return -ENOMEM;
	uint8_t *q = p + JREC_HEAD;
	put64(q, t->id);
	put32(q + 8, t->line);
	put16(q + 12, (uint16_t)t->key_len);
	put16(q + 14, 0);
	put64(q + 16, t->due_ms);
	put64(q + 24, t->window_ms);
	if (t->key_len)
		memcpy(q + JREC_TASK_FIXED, t->key, t->key_len);
	if (t->len)
		memcpy(q + JREC_TASK_FIXED + t->key_len, t->payload, t->len);
	rec_end(b, p, body);
	return 0;
}

/* ---- BATCH ---- */

static uint8_t *varint_put(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* The varint at *p (before end), or -1: cut short or over 10 bytes. */
static int varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	for (int shift = 0; shift < 70 && *p < end; shift += 7) {
		uint8_t c = *(*p)++;
		if (shift == 63 && c > 1)
			return -1; /* past 64 bits */
		x |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

void jrec_batch_init(struct jrec_batch *w)
{
	w->at = SIZE_MAX;
	w->count = 0;
}

void jrec_batch_end(struct buf *b, struct jrec_batch *w)
{
	if (w->at == SIZE_MAX)
		return;
	uint8_t *p = (uint8_t *)b->data + w->at;
	uint32_t body = (uint32_t)(b->len - w->at - JREC_HEAD);
	put32(p, body);
	put32(p + JREC_HEAD + 8, w->count);
	/* One checksum for the whole record, over bytes long stored. */
	put32(p + 8, rec_crc(p, body));
	b->data[b->len] = '\0';
	w->at = SIZE_MAX;
}

int jrec_batch_add(struct buf *b, struct jrec_batch *w, uint64_t id, int prio, unsigned attempts,
		   uint32_t line, const void *payload, uint32_t len)
{
	if (len > JREC_PAYLOAD_MAX || attempts > 0xffff)
		return -EINVAL;
	if (w->at != SIZE_MAX &&
	    (prio != w->prio || w->count == JREC_BATCH_MAX || id <= w->prev ||
	     b->len - w->at - JREC_HEAD - JREC_BATCH_FIXED > JREC_BATCH_BYTES))
		jrec_batch_end(b, w);
	size_t need = JREC_BATCH_ENTRY_MAX + len + (w->at == SIZE_MAX ? JREC_HEAD + JREC_BATCH_FIXED : 0);
	if (buf_reserve(b, need))
		return -ENOMEM;
	uint8_t *p = (uint8_t *)b->data + b->len;
	if (w->at == SIZE_MAX) {
		/* Length, count and CRC go in at the end. */
		put64(p, head_of(0, JREC_BATCH, prio, 0));
		put64(p + JREC_HEAD, id);
		w->at = b->len;
		w->prev = id - 1;
		w->prio = prio;
		w->count = 0;
		p += JREC_HEAD + JREC_BATCH_FIXED;
	}
	uint64_t gap = id - w->prev - 1;
	uint8_t flags = (uint8_t)((gap ? JBAT_GAP : 0) | (attempts ? JBAT_ATTEMPTS : 0) |
				  (line ? JBAT_LINE : 0));
	*p++ = flags;
	if (len < 0x80)
		*p++ = (uint8_t)len; /* the common case */
	else
		p = varint_put(p, len);
	if (flags) {
		if (gap)
			p = varint_put(p, gap);
		if (attempts)
			p = varint_put(p, attempts);
		if (line)
			p = varint_put(p, line);
	}
	memcpy(p, payload, len);
	p += len;
	b->len = (size_t)(p - (uint8_t *)b->data);
	w->prev = id;
	w->count++;
	return 0;
}

int jrec_batch_add_plain(struct buf *b, struct jrec_batch *w, const struct forq_journal_plain *v,
			 size_t n)
{
	/* Room for the worst: every task an entry with every varint, starting
	 * a record of its own. Then nothing below can fail half way. */
	size_t need = 8;
	for (size_t i = 0; i < n; i++)
		need += JREC_HEAD + JREC_BATCH_FIXED + JREC_BATCH_ENTRY_MAX + v[i].len;
	if (buf_reserve(b, need))
		return -ENOMEM;
	for (size_t i = 0; i < n;) {
		if (w->at == SIZE_MAX || v[i].prio != w->prio || v[i].id != w->prev + 1 ||
		    v[i].attempts || v[i].line || v[i].len >= 0x80) {
			/* Starts a record, or an entry with more than a length. */
			jrec_batch_add(b, w, v[i].id, v[i].prio, v[i].attempts, v[i].line, v[i].payload,
				       v[i].len);
			i++;
			continue;
		}
		/* The common run: consecutive ids, short payloads, no attempts or
		 * line, in locals (stores through the byte pointer would make the
		 * compiler reload every field). Each entry takes 2 + len bytes
		 * and writes at most 7 past them: well inside its share. */
		uint8_t *base = (uint8_t *)b->data, *p = base + b->len;
		uint64_t prev = w->prev;
		uint32_t count = w->count;
		const uint8_t *limit = base + w->at + JREC_HEAD + JREC_BATCH_FIXED + JREC_BATCH_BYTES;
		int prio = w->prio;
		for (; i < n && count < JREC_BATCH_MAX && p <= limit; i++) {
			const struct forq_journal_plain *t = &v[i];
			if (t->id != prev + 1 || t->prio != prio || t->attempts || t->line || t->len >= 0x80)
				break;
			p[0] = 0;
			p[1] = (uint8_t)t->len;
			/* A ring payload is readable up to its 8-byte boundary: copy in
			 * words; what lands past len is overwritten by what follows. */
			const uint8_t *src = t->payload;
			for (uint32_t k = 0; k < t->len; k += 8)
				memcpy(p + 2 + k, src + k, 8);
			p += 2 + t->len;
			prev = t->id;
			count++;
		}
		b->len = (size_t)(p - base);
		w->prev = prev;
		w->count = count;
		if (count == JREC_BATCH_MAX || p > limit)
			jrec_batch_end(b, w);
	}
	return 0;
}

/* Reads one entry at *p (before end) after id prev into t; -1: not one. */
static int batch_entry(const uint8_t **p, const uint8_t *end, uint64_t prev, struct jrec *t)
{
	if (*p >= end)
		return -1;
	uint8_t flags = *(*p)++;
	uint64_t len, gap = 0, attempts = 0, line = 0;
	if ((flags & ~(JBAT_GAP | JBAT_ATTEMPTS | JBAT_LINE)) || varint_get(p, end, &len) ||
	    len > JREC_PAYLOAD_MAX || ((flags & JBAT_GAP) && varint_get(p, end, &gap)) ||
	    ((flags & JBAT_ATTEMPTS) && (varint_get(p, end, &attempts) || attempts > 0xffff)) ||
	    ((flags & JBAT_LINE) && (varint_get(p, end, &line) || line > UINT32_MAX)) ||
	    gap >= UINT64_MAX - prev || (uint64_t)(end - *p) < len)
		return -1;
	t->id = prev + 1 + gap;
	t->attempts = (unsigned)attempts;
	t->line = (uint32_t)line;
	t->payload = *p;
	t->len = (uint32_t)len;
	*p += len;
	return 0;
}

/* A BATCH's body holds exactly its count of entries. */
static int batch_check(const uint8_t *q, uint32_t body)
{
	uint32_t count = get32(q + 8);
	uint64_t prev = get64(q) - 1;
	if (count == 0 || count > JREC_BATCH_MAX || get64(q) == 0)
		return -1;
	const uint8_t *p = q + JREC_BATCH_FIXED, *end = q + body;
	struct jrec t;
	for (uint32_t i = 0; i < count; i++) {
		if (batch_entry(&p, end, prev, &t))
			return -1;
		prev = t.id;
	}
	return p == end ? 0 : -1;
}

void jrec_tasks_begin(struct jrec_tasks *it, const struct jrec *r)
{
	it->r = r;
	it->p = r->entries;
	it->prev = r->id - 1;
	it->left = r->type == JREC_BATCH ? r->count : jrec_accepts(r) ? 1 : 0;
}

int jrec_tasks_next(struct jrec_tasks *it, struct jrec *task, uint32_t *off)
{
	if (!it->left)
		return 0;
	it->left--;
	const struct jrec *r = it->r;
	if (r->type != JREC_BATCH) {
		*task = *r;
		*off = 0;
		return 1;
	}
	/* The record's start: the entries' start less the head and fixed part. */
	const uint8_t *rec = r->entries - JREC_BATCH_FIXED - JREC_HEAD;
	memset(task, 0, sizeof *task);
	task->type = JREC_ACCEPT;
	task->prio = r->prio;
	*off = (uint32_t)(it->p - rec);
	const uint8_t *end = it->p + (r->len - (uint32_t)(it->p - r->entries));
	batch_entry(&it->p, end, it->prev, task);
	it->prev = task->id;
	return 1;
}

int jrec_put_finish_runs(struct buf *b, const uint64_t *runs, size_t n)
{
	size_t i = 0;
	uint64_t first = n ? runs[0] : 0, left = n ? runs[1] : 0;
	while (i < n) {
		/* Reserve for the worst case, then fill ranges in place. */
		uint8_t *p = rec_begin(b, JREC_RANGES_MAX * JREC_RANGE, JREC_FINISH, 0, 0);
		if (!p)
			return -ENOMEM;
		uint32_t k = 0;
		while (i < n && k < JREC_RANGES_MAX) {
			uint32_t count = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
			put64(p + JREC_HEAD + k * JREC_RANGE, first);
			put32(p + JREC_HEAD + k * JREC_RANGE + 8, count);
			k++;
			first += count;
			left -= count;
			if (!left && ++i < n) {
				first = runs[2 * i];
				left = runs[2 * i + 1];
			}
		}
		put32(p, k * JREC_RANGE);
		rec_end(b, p, k * JREC_RANGE);
	}
	return 0;
}

int jrec_put_finish(struct buf *b, const uint64_t *ids, size_t n)
{
	/* Ranges in the order the ids came: consumers report theirs in
	 * order, so runs fold without a sort; a repeat inside a run folds
	 * into it. A chunk of runs at a time. */
	uint64_t runs[2 * 256];
	size_t i = 0;
	while (i < n) {
		size_t k = 0;
		while (i < n && k < 256) {
			uint64_t first = ids[i], count = 1;
			while (++i < n && ids[i] >= first && ids[i] - first <= count && count < UINT32_MAX)
				if (ids[i] - first == count)
					count++;
			runs[2 * k] = first;
			runs[2 * k + 1] = count;
			k++;
		}
		int e = jrec_put_finish_runs(b, runs, k);
		if (e)
			return e;
	}
	return 0;
}

long jrec_decode(const uint8_t *p, size_t n, struct jrec *out)
{
	if (n < JREC_HEAD)
		return 0;
	uint32_t body = get32(p);
	int type = p[4];
	if (type == JREC_ACCEPT) {
		if (body < JREC_ACCEPT_FIXED || body - JREC_ACCEPT_FIXED > JREC_PAYLOAD_MAX)
			return -1;
	} else if (type == JREC_FINISH) {
		if (body == 0 || body % JREC_RANGE || body / JREC_RANGE > JREC_RANGES_MAX)
			return -1;
	} else if (type == JREC_TASK) {
		if (body < JREC_TASK_FIXED || body - JREC_TASK_FIXED > JREC_PAYLOAD_MAX + JREC_KEY_MAX)
			return -1;
	} else if (type == JREC_BATCH) {
		if (body < JREC_BATCH_FIXED + 2 || body > JREC_BATCH_BODY_MAX || p[6] || p[7])
			return -1;
	} else {
		return -1;
	}
	if (n - JREC_HEAD < body)
		return 0;
	if (get32(p + 8) != rec_crc(p, body))
		return -1;
	const uint8_t *q = p + JREC_HEAD;
	uint32_t key_len = 0;
	if (type == JREC_TASK) {
		key_len = (uint32_t)q[12] | (uint32_t)q[13] << 8;
		/* Lengths the checksum covers but no writer makes: not a record. */
		if (q[14] || q[15] || key_len > JREC_KEY_MAX || key_len > body - JREC_TASK_FIXED ||
		    body - JREC_TASK_FIXED - key_len > JREC_PAYLOAD_MAX)
			return -1;
	}
	if (type == JREC_BATCH && batch_check(q, body))
		return -1;
	memset(out, 0, sizeof *out);
	out->type = type;
	out->prio = p[5];
	out->attempts = (unsigned)p[6] | (unsigned)p[7] << 8;
	if (type == JREC_ACCEPT) {
		out->id = get64(q);
		out->line = get32(q + 8);
		out->payload = q + JREC_ACCEPT_FIXED;
		out->len = body - JREC_ACCEPT_FIXED;
	} else if (type == JREC_TASK) {
		out->id = get64(q);
		out->line = get32(q + 8);
		out->due_ms = get64(q + 16);
		out->window_ms = get64(q + 24);
		out->key = q + JREC_TASK_FIXED;
		out->key_len = key_len;
		out->payload = q + JREC_TASK_FIXED + key_len;
		out->len = body - JREC_TASK_FIXED - key_len;
	} else if (type == JREC_BATCH) {
		out->id = get64(q);
		out->count = get32(q + 8);
		out->entries = q + JREC_BATCH_FIXED;
		out->len = body - JREC_BATCH_FIXED; /* the entries' bytes */
	} else {
		out->ranges = q;
		out->nranges = body / JREC_RANGE;
	}
	return (long)(JREC_HEAD + body);
}

void jrec_range(const struct jrec *r, uint32_t i, uint64_t *first, uint32_t *count)
{
	*first = get64(r->ranges + (size_t)i * JREC_RANGE);
	*count = get32(r->ranges + (size_t)i * JREC_RANGE + 8);
}
