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

/* ---- the live map: open addressing, linear probing, tombstones ---- */

#define TOMB UINT64_MAX /* a deleted slot: probes go on past it (no id is this) */

/* Ids come and finish mostly in order: runs of 8 neighbours share a cache
 * line (the map's cost is its cache misses), and the runs are scattered so
 * that linear probing never meets one long cluster. */
static size_t slot_of(const struct idmap *m, uint64_t id)
{
	uint64_t run = ((id >> 3) * 0x9e3779b97f4a7c15ull) >> 17;
	return (size_t)((run << 3) | (id & 7)) & (m->cap - 1);
}

/* Rebuilds without tombstones, twice as large when the live half fills it. */
static int idmap_rehash(struct idmap *m)
{
	size_t cap = !m->cap ? 1024 : (m->n + 1) * 4 > m->cap ? m->cap * 2 : m->cap;
	struct idmap n = {calloc(cap, sizeof *n.ids), calloc(cap, sizeof *n.val), cap, 0, 0};
	if (!n.ids || !n.val) {
		free(n.ids);
		free(n.val);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++)
		if (m->ids[i] && m->ids[i] != TOMB)
			idmap_put(&n, m->ids[i], m->val[i], NULL);
	idmap_free(m);
	*m = n;
	return 0;
}

int idmap_put(struct idmap *m, uint64_t id, uint64_t val, uint64_t *old)
{
	if ((m->used + 1) * 2 > m->cap && idmap_rehash(m))
		return -ENOMEM;
	size_t i = slot_of(m, id), free_at = SIZE_MAX;
	for (; m->ids[i] && m->ids[i] != id; i = (i + 1) & (m->cap - 1))
		if (m->ids[i] == TOMB && free_at == SIZE_MAX)
			free_at = i;
	if (m->ids[i] == id) {
		if (old)
			*old = m->val[i];
		m->val[i] = val;
		return 1;
	}
	if (free_at != SIZE_MAX)
		i = free_at; /* a tombstone reused: used stays */
	else
		m->used++;
	m->ids[i] = id;
	m->val[i] = val;
	m->n++;
	return 0;
}

static size_t idmap_find(const struct idmap *m, uint64_t id)
{
	if (!m->cap)
		return SIZE_MAX;
	for (size_t i = slot_of(m, id); m->ids[i]; i = (i + 1) & (m->cap - 1))
		if (m->ids[i] == id)
			return i;
	return SIZE_MAX;
}

int idmap_get(const struct idmap *m, uint64_t id, uint64_t *val)
{
	size_t i = idmap_find(m, id);
	if (i == SIZE_MAX)
		return 0;
	*val = m->val[i];
	return 1;
}

int idmap_del(struct idmap *m, uint64_t id, uint64_t *old)
{
	size_t i = idmap_find(m, id);
	if (i == SIZE_MAX)
		return 0;
	*old = m->val[i];
	m->ids[i] = TOMB;
	m->n--;
	return 1;
}

void idmap_free(struct idmap *m)
{
	free(m->ids);
	free(m->val);
	memset(m, 0, sizeof *m);
}

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

static void live_drop(struct segset *s, uint64_t old)
{
	struct seg *g = seg_find(s, old >> 32);
	if (g && g->live)
		g->live--;
}

void segset_accepted(struct segset *s, uint64_t id, uint64_t off)
{
	struct seg *cur = &s->segs[s->nsegs - 1];
	uint64_t old;
	int had = idmap_put(&s->live, id, cur->seq << 32 | (off & 0xffffffffu), &old);
	if (had < 0)
		return; /* out of memory: the segment is kept longer, nothing lost */
	if (had)
		live_drop(s, old);
	cur->live++;
	cur->accepted++;
	if (id > s->max_id)
		s->max_id = id;
}

void segset_finished(struct segset *s, uint64_t id)
{
	uint64_t old;
	if (idmap_del(&s->live, id, &old))
		live_drop(s, old);
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
static int scan_segment(struct segset *s, uint64_t seq, const uint8_t *p, size_t n, int last,
			char *err, size_t errlen)
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
		if (r.type == JREC_ACCEPT) {
			segset_accepted(s, r.id, off);
		} else {
			for (uint32_t i = 0; i < r.nranges; i++) {
				uint64_t first;
				uint32_t count;
				jrec_range(&r, i, &first, &count);
				for (uint64_t id = first; id - first < count; id++)
					segset_finished(s, id);
			}
		}
		off += (size_t)k;
	}
	return 0;
}

static int cmp_replay(const void *a, const void *b)
{
	const struct replay_task *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The live tasks, from the segments' bytes (datas[i] is segs[i]'s). */
static int collect(struct segset *s, uint8_t **datas, struct replay_task **out, size_t *nout,
		   char *err, size_t errlen)
{
	struct replay_task *t = calloc(s->live.n ? s->live.n : 1, sizeof *t);
	if (!t)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < s->live.cap; i++) {
		if (!s->live.ids[i] || s->live.ids[i] == TOMB)
			continue;
		uint64_t v = s->live.val[i];
		size_t si = 0;
		while (si < s->nsegs && s->segs[si].seq != v >> 32)
			si++;
		struct jrec r;
		jrec_decode(datas[si] + (v & 0xffffffffu), s->segs[si].bytes - (v & 0xffffffffu), &r);
		if (r.len > s->max_payload || r.prio < 0 || r.prio > 2) {
			snprintf(err, errlen,
				 "the journal holds task %" PRIu64 " of %u bytes: --max-payload %u "
				 "cannot queue it again",
				 r.id, r.len, s->max_payload);
			replay_free(t, k);
			return -EMSGSIZE;
		}
		t[k] = (struct replay_task){.id = r.id, .len = r.len, .line = r.line,
					    .attempts = r.attempts, .prio = r.prio,
					    .payload = malloc(r.len ? r.len : 1)};
		if (!t[k].payload) {
			replay_free(t, k);
			return -ENOMEM;
		}
		memcpy(t[k].payload, r.payload, r.len);
		k++;
	}
	qsort(t, k, sizeof *t, cmp_replay);
	*out = t;
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
		e = scan_segment(s, seqs[i], datas[before], len, i + 1 == n, err, errlen);
		if (!e && s->nsegs == before) { /* an empty last segment, removed */
			free(datas[before]);
			datas[before] = NULL;
		}
	}
	if (!e && out)
		e = collect(s, datas, out, nout, err, errlen);
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
	for (size_t i = 0; i + 1 < s->nsegs; i++)
		if (s->segs[i].live && s->segs[i].live * 4 <= s->segs[i].accepted)
			return s->segs[i].seq;
	return 0;
}

int segset_copy_live(struct segset *s, uint64_t seq,
		     void (*emit)(void *ctx, uint64_t id, const uint8_t *rec, size_t len), void *ctx)
{
	char file[64];
	uint8_t *p;
	size_t n;
	seg_path(s, seq, file, sizeof file);
	int e = read_all(s->dirfd, file, &p, &n);
	if (e)
		return e;
	size_t off = JREC_HDR_SIZE;
	long k;
	struct jrec r;
	while (off < n && (k = jrec_decode(p + off, n - off, &r)) > 0) {
		uint64_t v;
		if (r.type == JREC_ACCEPT && idmap_get(&s->live, r.id, &v) && v == (seq << 32 | off))
			emit(ctx, r.id, p + off, (size_t)k);
		off += (size_t)k;
	}
	free(p);
	return 0;
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
	idmap_free(&s->live);
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
