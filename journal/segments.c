/* segments.c — the journal's segment files and its live map (segments.h). */
#include "segments.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* ---- segments ---- */

static struct seg *seg_find(struct segset *s, uint64_t seq)
{
	for (size_t i = s->nsegs; i-- > 0;)
		if (s->segs[i].seq == seq)
			return &s->segs[i];
	return NULL;
}

static void seg_path(const struct segset *s, uint64_t seq, char *out, size_t cap)
{
	snprintf(out, cap, "journal-%020" PRIu64 ".log", seq);
	(void)s;
}

void segset_accepted(struct segset *s, uint64_t id)
{
	live_accept(&s->live, s->segs, s->nsegs, id);
	if (id > s->max_id)
		s->max_id = id;
}

void segset_finished(struct segset *s, uint64_t id)
{
	live_finish(&s->live, s->segs, s->nsegs, id);
}

void segset_accepted_run(struct segset *s, uint64_t first, uint64_t count)
{
	live_accept_run(&s->live, s->segs, s->nsegs, first, count);
	if (count && first + count - 1 > s->max_id)
		s->max_id = first + count - 1;
}

void segset_finished_run(struct segset *s, uint64_t first, uint64_t count)
{
	live_finish_run(&s->live, s->segs, s->nsegs, first, count);
}

uint64_t segset_where(const struct segset *s, uint64_t id)
{
	return live_where(&s->live, s->segs, s->nsegs, id);
}

/* ---- reading the journal at open: an exact map id -> (seq, offset of
 * its latest ACCEPT), which the live map is then built from ---- */

static void scan_accepted(struct segset *s, struct idmap *scan, uint64_t id, uint64_t off)
{
	struct seg *cur = &s->segs[s->nsegs - 1];
	idmap_put(scan, id, cur->seq << 32 | (off & 0xffffffffu), NULL);
	cur->accepted++;
	if (id > s->max_id)
		s->max_id = id;
}

static void scan_finished(struct idmap *scan, uint64_t id)
{
	uint64_t old;
	idmap_del(scan, id, &old);
}

struct live_pair {
	uint64_t id, at; /* seq << 32 | offset */
};

static void pair_out(void *ctx, uint64_t id, uint64_t at)
{
	struct live_pair **p = ctx;
	*(*p)++ = (struct live_pair){id, at};
}

static int cmp_pair(const void *a, const void *b)
{
	const struct live_pair *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The scan's live tasks by id. */
static int scan_pairs(const struct idmap *scan, struct live_pair **out)
{
	struct live_pair *p = malloc((scan->n ? scan->n : 1) * sizeof *p), *end = p;
	if (!p)
		return -ENOMEM;
	idmap_each(scan, pair_out, &end);
	qsort(p, scan->n, sizeof *p, cmp_pair);
	*out = p;
	return 0;
}

static int seg_add(struct segset *s, uint64_t seq, uint64_t bytes)
{
	if (s->nsegs == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct seg *n = realloc(s->segs, cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		s->segs = n;
		s->cap = cap;
	}
	s->segs[s->nsegs++] = (struct seg){.seq = seq, .bytes = bytes};
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The segment numbers in dir, sorted. */
static int list_segments(struct segset *s, uint64_t **out, size_t *n)
{
	DIR *d = fdopendir(dup(s->dirfd));
	if (!d)
		return -errno;
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		uint64_t seq;
		char tail[8];
		if (sscanf(e->d_name, "journal-%20" SCNu64 ".%7s", &seq, tail) != 2 ||
		    strcmp(tail, "log") != 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			uint64_t *m = realloc(*out, cap * sizeof *m);
			if (!m) {
				closedir(d);
				return -ENOMEM;
			}
			*out = m;
		}
		(*out)[(*n)++] = seq;
	}
	closedir(d);
	if (*n)
		qsort(*out, *n, sizeof **out, cmp_u64);
	return 0;
}

static int read_all(int dirfd, const char *file, uint8_t **data, size_t *len)
{
	int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = -errno;
		if (fd >= 0)
			close(fd);
		return e;
	}
	*len = (size_t)st.st_size;
	*data = malloc(*len ? *len : 1);
	size_t got = 0;
	while (*data && got < *len) {
		ssize_t r = read(fd, *data + got, *len - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (!*data)
		return -ENOMEM;
	*len = got;
	return 0;
}

/* Reads one segment into the live map. Returns 0 or -errno (err set). */
static int scan_segment(struct segset *s, struct idmap *scan, uint64_t seq, const uint8_t *p,
			size_t n, int last, char *err, size_t errlen)
{
	char file[64];
	seg_path(s, seq, file, sizeof file);
	struct jrec_seg_hdr h;
	if (jrec_hdr_decode(p, n, &h, err, errlen)) {
		if (last && n < JREC_HDR_SIZE) {
			/* Made and not yet written when we died: nothing in it. */
			log_event(LOG_WARN, "journal_cut", "file=%s offset=0 bytes=%zu", file, n);
			s->cut_bytes += n;
			unlinkat(s->dirfd, file, 0);
			return 0;
		}
		char m[200];
		snprintf(m, sizeof m, "%s", err);
		snprintf(err, errlen, "%s/%s: %s", s->dir, file, m);
		return -EINVAL;
	}
	if (strcmp(h.name, s->name) != 0) {
		snprintf(err, errlen,
			 "%s/%s: journal of queue %s, not %s (another queue's journal is never "
			 "replayed: use its own --shm-name or another --journal)",
			 s->dir, file, h.name, s->name);
		return -EINVAL;
	}
	int e = seg_add(s, seq, n);
	if (e)
		return e;
	if (h.id_floor > s->max_id + 1)
		s->max_id = h.id_floor - 1;
	size_t off = JREC_HDR_SIZE;
	while (off < n) {
		struct jrec r;
		long k = jrec_decode(p + off, n - off, &r);
		if (k <= 0) {
			if (last) {
				log_event(LOG_WARN, "journal_cut",
					  "file=%s offset=%zu bytes=%zu reason=%s", file, off, n - off,
					  k == 0 ? "torn" : "corrupt");
				int fd = openat(s->dirfd, file, O_WRONLY | O_CLOEXEC);
				if (fd < 0 || ftruncate(fd, (off_t)off) < 0 || fdatasync(fd) < 0) {
					snprintf(err, errlen, "%s/%s: cannot cut at %zu: %s", s->dir,
						 file, off, strerror(errno));
					if (fd >= 0)
						close(fd);
					return -EIO;
				}
				close(fd);
				s->cut_bytes += n - off;
				s->segs[s->nsegs - 1].bytes = off;
			} else {
				log_event(LOG_ERROR, "journal_corrupt",
					  "file=%s offset=%zu skipped_bytes=%zu hint=\"records after "
					  "this offset of this segment are not replayed\"",
					  file, off, n - off);
			}
			break;
		}
		if (jrec_accepts(&r)) {
			struct jrec_tasks it;
			struct jrec t;
			uint32_t at;
			for (jrec_tasks_begin(&it, &r); jrec_tasks_next(&it, &t, &at);)
				scan_accepted(s, scan, t.id, off + at);
		} else {
			for (uint32_t i = 0; i < r.nranges; i++) {
				uint64_t first;
				uint32_t count;
				jrec_range(&r, i, &first, &count);
				for (uint64_t id = first; id - first < count; id++)
					scan_finished(scan, id);
			}
		}
		off += (size_t)k;
	}
	return 0;
}

static size_t seg_index(const struct segset *s, uint64_t seq)
{
	size_t i = 0;
	while (i < s->nsegs && s->segs[i].seq != seq)
		i++;
	return i;
}

/* The live map from the scan's (ids in order: each segment's bitmap
 * starts at its lowest live id). */
static void load_live(struct segset *s, const struct live_pair *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t si = seg_index(s, p[i].at >> 32);
		if (si < s->nsegs)
			live_load(&s->live, &s->segs[si], p[i].id);
	}
}

/* Calls fn with each task of each whole record in a segment's bytes
 * p[0..n), with where its entry is (unique in the segment), until fn
 * returns nonzero (returned) or a record is not whole. */
static int seg_each_task(const uint8_t *p, size_t n,
			 int (*fn)(void *ctx, const struct jrec *t, uint64_t at), void *ctx)
{
	struct jrec r;
	long k;
	for (size_t off = JREC_HDR_SIZE; off < n && (k = jrec_decode(p + off, n - off, &r)) > 0;
	     off += (size_t)k) {
		struct jrec_tasks it;
		struct jrec t;
		uint32_t in;
		for (jrec_tasks_begin(&it, &r); jrec_tasks_next(&it, &t, &in);) {
			int e = fn(ctx, &t, off + in);
			if (e)
				return e;
		}
	}
	return 0;
}

/* Pair i of p[0..n) (sorted by id) with id, or n. */
static size_t pair_find(const struct live_pair *p, size_t n, uint64_t id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && p[lo].id == id ? lo : n;
}

static int replay_take(const struct segset *s, struct replay_task *t, const struct jrec *r,
		       char *err, size_t errlen)
{
	if (r->len > s->max_payload || r->prio < 0 || r->prio > 2) {
		snprintf(err, errlen,
			 "the journal holds task %" PRIu64 " of %u bytes: --max-payload %u "
			 "cannot queue it again",
			 r->id, r->len, s->max_payload);
		return -EMSGSIZE;
	}
	*t = (struct replay_task){.id = r->id, .len = r->len, .line = r->line,
				  .attempts = r->attempts, .prio = r->prio, .due_ms = r->due_ms,
				  .window_ms = r->window_ms, .key_len = r->key_len,
				  .payload = malloc(r->len + r->key_len + 1)};
	if (!t->payload)
		return -ENOMEM;
	memcpy(t->payload, r->payload, r->len);
	/* The key after the payload, in the same allocation. */
	if (r->key_len)
		memcpy(t->payload + r->len, r->key, r->key_len);
	t->key = (char *)t->payload + r->len;
	return 0;
}

struct collecting {
	const struct segset *s;
	const struct live_pair *p;
	size_t n;
	uint64_t seq;
	struct replay_task *t;
	char *err;
	size_t errlen;
};

static int collect_one(void *ctx, const struct jrec *task, uint64_t at)
{
	struct collecting *c = ctx;
	size_t i = pair_find(c->p, c->n, task->id);
	if (i < c->n && c->p[i].at == (c->seq << 32 | (at & 0xffffffffu)))
		return replay_take(c->s, &c->t[i], task, c->err, c->errlen);
	return 0;
}

/* The live tasks, from the segments' bytes (datas[i] is segs[i]'s), in id
 * order: the records are read again and each task taken where its latest
 * one is (the pairs, sorted by id, say where). */
static int collect(struct segset *s, const struct live_pair *p, size_t n, uint8_t **datas,
		   struct replay_task **out, size_t *nout, char *err, size_t errlen)
{
	struct collecting c = {s, p, n, 0, calloc(n ? n : 1, sizeof *c.t), err, errlen};
	if (!c.t)
		return -ENOMEM;
	int e = 0;
	for (size_t si = 0; !e && si < s->nsegs; si++) {
		c.seq = s->segs[si].seq;
		e = seg_each_task(datas[si], s->segs[si].bytes, collect_one, &c);
	}
	if (e) {
		replay_free(c.t, n);
		return e;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (c.t[i].payload)
			c.t[k++] = c.t[i];
	*out = c.t;
	*nout = k;
	return 0;
}

static int new_segment(struct segset *s)
{
	uint64_t seq = s->nsegs ? s->segs[s->nsegs - 1].seq + 1 : 1;
	char file[64];
	seg_path(s, seq, file, sizeof file);
	int fd = openat(s->dirfd, file, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	uint8_t hdr[JREC_HDR_SIZE];
	struct jrec_seg_hdr h = {.seq = seq, .id_floor = s->max_id + 1,
				 .max_payload = s->max_payload};
	snprintf(h.name, sizeof h.name, "%s", s->name);
	jrec_hdr_encode(hdr, &h);
	int e = seg_add(s, seq, JREC_HDR_SIZE);
	if (!e && (write(fd, hdr, sizeof hdr) != (ssize_t)sizeof hdr || fdatasync(fd) < 0 ||
		   fsync(s->dirfd) < 0))
		e = errno ? -errno : -EIO;
	if (e) {
		if (s->nsegs && s->segs[s->nsegs - 1].seq == seq)
			s->nsegs--;
		close(fd);
		unlinkat(s->dirfd, file, 0);
		return e;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = fd;
	/* Its blocks now, its size as written: an fdatasync then writes the
	 * records and the size, not a block allocation too. Best effort. */
	if (s->prealloc)
		fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)s->prealloc);
	return 0;
}

int segset_open(struct segset *s, const char *dir, const char *name, uint32_t max_payload,
		uint64_t prealloc, struct replay_task **out, size_t *nout, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	s->prealloc = prealloc;
	s->fd = -1;
	s->max_payload = max_payload;
	snprintf(s->name, sizeof s->name, "%s", name);
	s->dir = strdup(dir);
	if (!s->dir)
		return -ENOMEM;
	mkdir(dir, 0700);
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		int e = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return e;
	}
	uint64_t *seqs = NULL;
	size_t n = 0;
	struct idmap scan = {0};
	struct live_pair *pairs = NULL;
	int e = list_segments(s, &seqs, &n);
	uint8_t **datas = calloc(n ? n : 1, sizeof *datas);
	if (!e && !datas)
		e = -ENOMEM;
	for (size_t i = 0; !e && i < n; i++) {
		size_t len;
		char file[64];
		seg_path(s, seqs[i], file, sizeof file);
		if ((e = read_all(s->dirfd, file, &datas[s->nsegs], &len))) {
			snprintf(err, errlen, "%s/%s: %s", dir, file, strerror(-e));
			break;
		}
		size_t before = s->nsegs;
		e = scan_segment(s, &scan, seqs[i], datas[before], len, i + 1 == n, err, errlen);
		if (!e && s->nsegs == before) { /* an empty last segment, removed */
			free(datas[before]);
			datas[before] = NULL;
		}
	}
	size_t npairs = scan.n;
	if (!e)
		e = scan_pairs(&scan, &pairs);
	idmap_free(&scan);
	if (!e)
		load_live(s, pairs, npairs);
	if (!e && out)
		e = collect(s, pairs, npairs, datas, out, nout, err, errlen);
	free(pairs);
	for (size_t i = 0; datas && i < n; i++)
		free(datas[i]);
	free(datas);
	free(seqs);
	if (!e && (e = new_segment(s)))
		snprintf(err, errlen, "%s: cannot start a segment: %s", dir, strerror(-e));
	return e;
}

int segset_rotate(struct segset *s)
{
	if (fdatasync(s->fd) < 0)
		return -errno;
	return new_segment(s);
}

uint64_t segset_copy_candidate(const struct segset *s)
{
	for (size_t i = 0; i + 1 < s->nsegs; i++) {
		const struct seg *g = &s->segs[i];
		if (g->live && g->live * 4 <= g->accepted && (i + 2 < s->nsegs || g->live == g->looked))
			return g->seq;
	}
	return 0;
}

void segset_looked(struct segset *s)
{
	for (size_t i = 0; i < s->nsegs; i++)
		s->segs[i].looked = s->segs[i].live;
}

struct copying {
	const struct segset *s;
	const struct seg *g;
	struct idmap last; /* id -> where its last record here is */
	void (*emit)(void *ctx, const struct jrec *task);
	void *ctx;
};

static int copy_note(void *ctx, const struct jrec *t, uint64_t at)
{
	struct copying *c = ctx;
	if (live_in(&c->s->live, c->g, t->id) && idmap_put(&c->last, t->id, at, NULL) < 0)
		return -ENOMEM;
	return 0;
}

static int copy_emit(void *ctx, const struct jrec *t, uint64_t at)
{
	struct copying *c = ctx;
	uint64_t was;
	if (idmap_get(&c->last, t->id, &was) && was == at)
		c->emit(c->ctx, t);
	return 0;
}

int segset_copy_live(struct segset *s, uint64_t seq,
		     void (*emit)(void *ctx, const struct jrec *task), void *ctx)
{
	char file[64];
	uint8_t *p;
	size_t n;
	seg_path(s, seq, file, sizeof file);
	int e = read_all(s->dirfd, file, &p, &n);
	if (e)
		return e;
	/* Where the last record of each id live here is (a retry may have put
	 * two), then those tasks, in the order written. */
	struct copying c = {s, seg_find(s, seq), {0}, emit, ctx};
	if (c.g && (e = seg_each_task(p, n, copy_note, &c)) == 0)
		seg_each_task(p, n, copy_emit, &c);
	idmap_free(&c.last);
	free(p);
	return e;
}

int segset_gc_ready(const struct segset *s)
{
	for (size_t i = 0; i + 1 < s->nsegs; i++)
		if (!s->segs[i].live)
			return 1;
	return 0;
}

int segset_gc(struct segset *s)
{
	int gone = 0;
	size_t k = 0;
	for (size_t i = 0; i < s->nsegs; i++) {
		char file[64];
		seg_path(s, s->segs[i].seq, file, sizeof file);
		if (i + 1 < s->nsegs && s->segs[i].live == 0 && unlinkat(s->dirfd, file, 0) == 0) {
			live_seg_free(&s->segs[i]);
			gone++;
			continue;
		}
		s->segs[k++] = s->segs[i];
	}
	s->nsegs = k;
	if (gone)
		fsync(s->dirfd);
	return gone;
}

void segset_close(struct segset *s)
{
	if (s->fd >= 0) {
		fdatasync(s->fd);
		close(s->fd);
	}
	if (s->dirfd >= 0)
		close(s->dirfd);
	for (size_t i = 0; i < s->nsegs; i++)
		live_seg_free(&s->segs[i]);
	live_free(&s->live);
	free(s->segs);
	free(s->dir);
	memset(s, 0, sizeof *s);
	s->fd = s->dirfd = -1;
}

void replay_free(struct replay_task *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++)
		free(t[i].payload);
	free(t);
}
