/* journal.c — the journal's two threads (journal.h): the writer tails the
 * rings and appends, the reader collects finished ids from consumers. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "forq.h"
#include "forq_admin.h"
#include "idpipe.h"
#include "log.h"
#include "segments.h"

#define SCAN_BYTES (1u << 20)   /* ring bytes per ring per round */
#define IDLE_WAIT_MS 200        /* finishes reach the file this late at most */
#define RETRY_MS 100            /* after a write error */
#define MAINTAIN_NS 500000000u /* old segments looked at this often */
#define READER_NAP_US 1000      /* the finish reader's least time between reads */

struct idvec {
	uint64_t *v;
	size_t n, cap;
};

static int idvec_push(struct idvec *a, uint64_t x)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 1024;
		uint64_t *n = realloc(a->v, cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		a->v = n;
		a->cap = cap;
	}
	a->v[a->n++] = x;
	return 0;
}

struct journal {
	struct forq *q;  /* the journal's own handle */
	struct forq *mq; /* forqd's, for the gate */
	struct journal_config c;
	struct segset s;
	pthread_t writer, reader;
	int have_writer, have_reader;
	int pipe[2];
	_Atomic int stop, stop_reader;

	pthread_mutex_t mu; /* fin */
	struct idvec fin;   /* finished, not yet taken by the writer: runs */

	/* The writer's own. */
	struct buf out;           /* records not yet written */
	struct jrec_batch batch;  /* the BATCH record open at out's end */
	struct idvec acc_runs;    /* what out holds: accepted ids as (first, count) */
	struct idvec fin_out;     /* and finished ids: runs */
	struct forq_journal_mark marks[FORQ_JOURNAL_RINGS];
	int marked[FORQ_JOURNAL_RINGS];
	uint64_t sched_upto;      /* delayed tasks: the mark that covers what out holds */
	uint64_t tasks_out;
	int copy_due;             /* a segment rotated: look for one to copy forward */
	uint64_t synced_ns;
	int unsynced, failing;
	int dirty;                /* written since the last fdatasync (any mode) */
	uint64_t maintained_ns;
	struct replay_task *replay;
	size_t nreplay, replay_next;

	_Atomic uint64_t bytes, fsyncs, write_errors, segments, live, replayed;
};

/* Notes id in runs, a vector of (first, count) pairs: ids come mostly in
 * order, and the live map and FINISH records take a run at a time. */
static void runs_note(struct idvec *a, uint64_t id)
{
	if (a->n && a->v[a->n - 2] + a->v[a->n - 1] == id)
		a->v[a->n - 1]++;
	else if (idvec_push(a, id) == 0 && idvec_push(a, 1) < 0)
		a->n--;
}

static void accepted(struct journal *j, uint64_t id)
{
	runs_note(&j->acc_runs, id);
}

/* out, ready for a record other than a BATCH's next task. */
static struct buf *out_record(struct journal *j)
{
	jrec_batch_end(&j->out, &j->batch);
	return &j->out;
}

/* A task with a key or a due time: a TASK record (both must survive a
 * reboot too). */
static void on_task(void *ctx, const struct forq_journal_task *jt, const void *payload)
{
	struct journal *j = ctx;
	const struct forq_task_info *t = &jt->t;
	struct jrec_task rt = {.id = t->id, .prio = t->prio, .attempts = t->attempts,
			       .line = t->line, .due_ms = jt->due_unix_ms, .window_ms = jt->window_ms,
			       .key = jt->key, .key_len = jt->key_len, .payload = payload,
			       .len = t->len};
	if (jrec_put_task(out_record(j), &rt) == 0)
		accepted(j, t->id);
}

/* Tasks without a key: entries of BATCH records, a few bytes each. */
static void on_plain(void *ctx, const struct forq_journal_plain *v, size_t n)
{
	struct journal *j = ctx;
	if (jrec_batch_add_plain(&j->out, &j->batch, v, n))
		return; /* out of memory: these go unjournaled (their marks move on) */
	for (size_t i = 0; i < n; i++)
		accepted(j, v[i].id);
}

/* A live task of an old segment, written again (so that segment can go). */
static void on_copy(void *ctx, const struct jrec *r)
{
	struct journal *j = ctx;
	int e;
	if (r->type == JREC_TASK) {
		struct jrec_task rt = {.id = r->id, .prio = r->prio, .attempts = r->attempts,
				       .line = r->line, .due_ms = r->due_ms,
				       .window_ms = r->window_ms, .key = r->key,
				       .key_len = r->key_len, .payload = r->payload, .len = r->len};
		e = jrec_put_task(out_record(j), &rt);
	} else {
		e = jrec_batch_add(&j->out, &j->batch, r->id, r->prio, r->attempts, r->line,
				   r->payload, r->len);
	}
	if (e == 0)
		accepted(j, r->id);
}

/* Fills out with the delayed tasks not yet written, what the rings hold
 * beyond their marks (after the delayed ones: a due one goes to its lane
 * once written, so its ring record always comes later), the live tasks
 * of one old segment that is mostly finished (copied forward, so that it
 * can go), and the finished ids reported so far. */
static void fill(struct journal *j)
{
	j->acc_runs.n = j->fin_out.n = 0;
	j->tasks_out = 0;
	if (forq_admin_journal_sched_scan(j->q, on_task, j, &j->sched_upto) < 0)
		j->sched_upto = 0; /* its lock failed: next round */
	const struct forq_journal_sink sink = {on_task, on_plain, j};
	for (int r = 0; r < FORQ_JOURNAL_RINGS; r++) {
		int n = forq_admin_journal_scan(j->q, r, SCAN_BYTES, &sink, &j->marks[r]);
		j->marked[r] = n > 0;
		j->tasks_out += n > 0 ? (uint64_t)n : 0;
	}
	if (j->copy_due) {
		uint64_t seq = segset_copy_candidate(&j->s);
		if (!seq || segset_copy_live(&j->s, seq, on_copy, j))
			j->copy_due = 0;
	}
	pthread_mutex_lock(&j->mu);
	struct idvec f = j->fin;
	j->fin = j->fin_out;
	j->fin.n = 0;
	pthread_mutex_unlock(&j->mu);
	j->fin_out = f;
	if (f.n)
		jrec_put_finish_runs(out_record(j), j->fin_out.v, j->fin_out.n / 2);
	jrec_batch_end(&j->out, &j->batch);
}

static int do_sync(struct journal *j)
{
	if (fdatasync(j->s.fd) < 0)
		return -errno;
	atomic_fetch_add(&j->fsyncs, 1);
	j->synced_ns = clock_mono_ns();
	j->unsynced = j->dirty = 0;
	return 0;
}

/* Writes out whole (or not at all: a short write is cut back). */
static int write_out(struct journal *j)
{
	struct seg *cur = &j->s.segs[j->s.nsegs - 1];
	if (cur->bytes > JREC_HDR_SIZE && cur->bytes + j->out.len > j->c.segment_bytes) {
		int e = segset_rotate(&j->s);
		if (e)
			return e;
		atomic_fetch_add(&j->fsyncs, 1);
		j->copy_due = 1;
		cur = &j->s.segs[j->s.nsegs - 1];
	}
	size_t done = 0;
	while (done < j->out.len) {
		ssize_t w = write(j->s.fd, j->out.data + done, j->out.len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? -errno : -EIO;
			if (ftruncate(j->s.fd, (off_t)cur->bytes) < 0) {
				/* Cannot cut: what follows would sit after a
				 * partial record, so this segment ends here. */
				cur->bytes += done;
				segset_rotate(&j->s);
			}
			return e;
		}
		done += (size_t)w;
	}
	int e = j->c.fsync_ms == JOURNAL_SYNC_ALWAYS ? do_sync(j) : 0;
	if (e) {
		if (ftruncate(j->s.fd, (off_t)cur->bytes) < 0)
			segset_rotate(&j->s);
		return e;
	}
	return 0;
}

/* Calls fn with each run of runs (runs_note's pairs). */
static void for_runs(const struct idvec *runs, void (*fn)(struct segset *, uint64_t, uint64_t),
		     struct segset *s)
{
	for (size_t i = 0; i < runs->n; i += 2)
		fn(s, runs->v[i], runs->v[i + 1]);
}

/* After a write: marks moved, consumers and waiting producers woken, the
 * live map told, and emptied segments removed once on disk. */
static void after_write(struct journal *j, int synced)
{
	for (int r = 0; r < FORQ_JOURNAL_RINGS; r++)
		if (j->marked[r])
			forq_admin_journal_publish(j->q, r, &j->marks[r]);
	forq_admin_journal_sched_publish(j->q, j->sched_upto);
	forq_admin_journal_wake(j->q, j->tasks_out);
	if (j->c.on_durable && j->c.fsync_ms == JOURNAL_SYNC_ALWAYS)
		j->c.on_durable(j->c.on_durable_ctx);
	for_runs(&j->acc_runs, segset_accepted_run, &j->s);
	for_runs(&j->fin_out, segset_finished_run, &j->s);
	if (synced)
		segset_gc(&j->s);
	atomic_store(&j->segments, j->s.nsegs);
	atomic_store(&j->live, j->s.live.n);
}

static void push_replayed(struct journal *j)
{
	while (j->replay_next < j->nreplay) {
		struct replay_task *t = &j->replay[j->replay_next];
		struct forq_journal_task jt = {
			.t = {.id = t->id, .len = t->len, .line = t->line, .attempts = t->attempts,
			      .prio = t->prio},
			.due_unix_ms = t->due_ms, .window_ms = t->window_ms,
			.key_len = t->key_len <= FORQ_KEY_MAX ? t->key_len : 0};
		memcpy(jt.key, t->key, jt.key_len);
		int r = forq_admin_push_recovered_task(j->q, &jt, t->payload);
		if (r == -EAGAIN)
			return; /* its lane is full: next round */
		if (r)
			log_event(LOG_ERROR, "journal_replay_failed", "id=%llu error=\"%s\"",
				  (unsigned long long)t->id, strerror(-r));
		else
			atomic_fetch_add(&j->replayed, 1);
		free(t->payload);
		t->payload = NULL;
		j->replay_next++;
	}
}

static int synced_now(const struct journal *j)
{
	return j->c.fsync_ms == JOURNAL_SYNC_ALWAYS;
}

/* Twice a second: a mostly finished old segment is copied forward (next
 * round), and segments with nothing live go once what moved their tasks
 * on is on disk (one fdatasync, in any mode: removing a file must never
 * lose a task that is only in the page cache's copy of a later one). */
static void maintain(struct journal *j)
{
	uint64_t now = clock_mono_ns();
	if (now - j->maintained_ns < MAINTAIN_NS)
		return;
	j->maintained_ns = now;
	if (segset_copy_candidate(&j->s))
		j->copy_due = 1;
	segset_looked(&j->s);
	if (segset_gc_ready(&j->s) && (!j->dirty || do_sync(j) == 0)) {
		segset_gc(&j->s);
		atomic_store(&j->segments, j->s.nsegs);
	}
}

/* One round: returns 1 when it wrote, 0 when there was nothing, -1 after a
 * write error (out is kept and written again). */
static int round_once(struct journal *j)
{
	push_replayed(j);
	if (!j->out.len)
		fill(j);
	if (!j->out.len) {
		/* Delayed tasks cancelled before they were written: the
		 * mark moves past them all the same. */
		if (j->sched_upto) {
			forq_admin_journal_sched_publish(j->q, j->sched_upto);
			forq_admin_journal_wake(j->q, 0);
		}
		return 0;
	}
	int e = write_out(j);
	if (e) {
		atomic_fetch_add(&j->write_errors, 1);
		if (!j->failing++)
			log_event(LOG_ERROR, "journal_write_failed",
				  "dir=%s errno=%d error=\"%s\" hint=\"new tasks wait, unjournaled, "
				  "until a write succeeds\"",
				  j->c.dir, -e, strerror(-e));
		return -1;
	}
	if (j->failing) {
		log_event(LOG_INFO, "journal_write_resumed", "dir=%s failures=%d", j->c.dir,
			  j->failing);
		j->failing = 0;
	}
	j->s.segs[j->s.nsegs - 1].bytes += j->out.len; /* where out went (it may have rotated) */
	atomic_fetch_add(&j->bytes, j->out.len);
	j->dirty = !synced_now(j);
	int synced = synced_now(j), sync_due = 0;
	if (!synced && j->c.fsync_ms >= 0) {
		j->unsynced = 1;
		sync_due = clock_mono_ns() - j->synced_ns >= (uint64_t)j->c.fsync_ms * 1000000u;
	}
	/* MS mode: consumers need the write, not the sync, so the marks move
	 * first; what the sync makes safe to remove goes after it. */
	after_write(j, synced);
	buf_reset(&j->out);
	if (sync_due && do_sync(j) == 0) {
		segset_gc(&j->s);
		atomic_store(&j->segments, j->s.nsegs);
	}
	return 1;
}

static void *writer_main(void *arg)
{
	struct journal *j = arg;
	for (;;) {
		int stopping = atomic_load(&j->stop);
		int r = round_once(j);
		if (r < 0) {
			if (stopping && j->failing > 50)
				break; /* the disk will not take it: what is left stays queued */
			usleep(RETRY_MS * 1000);
			continue;
		}
		maintain(j);
		if (r > 0)
			continue;
		/* Nothing to write: a due sync (MS mode), then sleep until a push. */
		if (j->unsynced && clock_mono_ns() - j->synced_ns >= (uint64_t)j->c.fsync_ms * 1000000u &&
		    do_sync(j) == 0) {
			segset_gc(&j->s);
			atomic_store(&j->segments, j->s.nsegs);
		}
		if (stopping)
			break;
		int ms = IDLE_WAIT_MS;
		if (j->unsynced) {
			uint64_t since = (clock_mono_ns() - j->synced_ns) / 1000000u;
			ms = since >= (uint64_t)j->c.fsync_ms ? 0 : j->c.fsync_ms - (int)since;
			ms = ms < IDLE_WAIT_MS ? ms : IDLE_WAIT_MS;
		}
		if (j->replay_next < j->nreplay)
			ms = ms < 5 ? ms : 5;
		forq_admin_work_watch(j->q);
		uint32_t seq = forq_admin_work_seq(j->q);
		if (forq_admin_journal_backlog(j->q) == 0 && !atomic_load(&j->stop))
			forq_admin_work_wait(j->q, seq, ms);
		forq_admin_work_unwatch(j->q);
	}
	if (j->s.fd >= 0 && do_sync(j) == 0)
		segset_gc(&j->s);
	return NULL;
}

/* At a clean stop: the live tasks of every older segment go into a new one,
 * synced, and the older ones are removed, so that the next start reads one
 * segment of what is pending. Best effort: after an error the segments
 * stay as they are (whole, as after any stop). */
static void checkpoint(struct journal *j)
{
	struct segset *s = &j->s;
	uint64_t before = s->nsegs;
	buf_reset(&j->out);
	jrec_batch_init(&j->batch);
	if (j->failing || s->fd < 0 || segset_rotate(s))
		return;
	j->acc_runs.n = j->fin_out.n = 0;
	for (size_t i = 0; i + 1 < s->nsegs; i++)
		if (s->segs[i].live && segset_copy_live(s, s->segs[i].seq, on_copy, j))
			goto out;
	jrec_batch_end(&j->out, &j->batch);
	if (j->out.len && (write_out(j) || (!synced_now(j) && do_sync(j))))
		goto out;
	s->segs[s->nsegs - 1].bytes += j->out.len;
	for_runs(&j->acc_runs, segset_accepted_run, s);
	int gone = segset_gc(s);
	log_event(LOG_INFO, "journal_checkpoint", "dir=%s segments_before=%llu removed=%d live=%llu",
		  j->c.dir, (unsigned long long)before, gone, (unsigned long long)s->live.n);
out:
	buf_reset(&j->out);
	jrec_batch_init(&j->batch);
}

/* ---- finished ids: consumers' pipe ---- */

void journal_finished(struct journal *j, const uint64_t *ids, size_t n)
{
	if (!j)
		return;
	pthread_mutex_lock(&j->mu);
	for (size_t i = 0; i < n; i++)
		runs_note(&j->fin, ids[i]);
	pthread_mutex_unlock(&j->mu);
}

static void take_finished(void *ctx, const uint64_t *ids, size_t n)
{
	journal_finished(ctx, ids, n);
}

static void *reader_main(void *arg)
{
	struct journal *j = arg;
	static _Thread_local uint8_t buf[65536];
	size_t have = 0;
	for (;;) {
		struct pollfd p = {j->pipe[0], POLLIN, 0};
		int r = poll(&p, 1, 100);
		if (r == 0 && atomic_load(&j->stop_reader))
			break;
		if (r <= 0)
			continue;
		ssize_t n = read(j->pipe[0], buf + have, sizeof buf - have);
		if (n <= 0) {
			if (n == 0 || (errno != EINTR && errno != EAGAIN))
				break;
			continue;
		}
		have += (size_t)n;
		size_t off = idpipe_parse(buf, have, take_finished, j);
		memmove(buf, buf + off, have - off);
		have -= off;
		/* Let reports gather (consumers send one before each wait for
		 * work, thousands a second at full speed): one wake-up a
		 * millisecond at most. The pipe holds far more than that. */
		if ((size_t)n < sizeof buf / 2) /* the pipe was drained */
			usleep(READER_NAP_US);
	}
	return NULL;
}

/* ---- open, close ---- */

int journal_finish_fd(const struct journal *j)
{
	return j ? j->pipe[1] : -1;
}

void journal_stats_read(struct journal *j, struct journal_stats *out)
{
	memset(out, 0, sizeof *out);
	if (!j)
		return;
	out->bytes = atomic_load(&j->bytes);
	out->fsyncs = atomic_load(&j->fsyncs);
	out->pending = forq_admin_journal_backlog(j->mq);
	out->segments = atomic_load(&j->segments);
	out->live = atomic_load(&j->live);
	out->replayed = atomic_load(&j->replayed);
	out->write_errors = atomic_load(&j->write_errors);
}

int journal_open(struct journal **jp, struct forq *q, const struct journal_config *c, int replay,
		 char *err, size_t errlen)
{
	struct journal *j = calloc(1, sizeof *j);
	if (!j)
		return -ENOMEM;
	j->mq = q;
	j->c = *c;
	j->pipe[0] = j->pipe[1] = -1;
	j->s.fd = j->s.dirfd = -1;
	jrec_batch_init(&j->batch);
	pthread_mutex_init(&j->mu, NULL);
	int e = segset_open(&j->s, c->dir, c->queue_name, c->max_payload, c->segment_bytes,
			    replay ? &j->replay : NULL, &j->nreplay, err, errlen);
	if (!e && (e = forq_open(&j->q, c->queue_name, err, errlen)) == 0) {
		if (pipe2(j->pipe, O_CLOEXEC) < 0) {
			e = -errno;
			snprintf(err, errlen, "pipe: %s", strerror(errno));
		}
	}
	if (e) {
		journal_close(j, 0);
		return e;
	}
	/* Consumers are forked, not exec'd: they keep the write end, and the
	 * commands they exec do not (O_CLOEXEC). */
	fcntl(j->pipe[1], F_SETPIPE_SZ, 1 << 20); /* best effort: consumers rarely wait */
	forq_admin_next_id_at_least(q, j->s.max_id + 1);
	forq_admin_journal_begin(q, c->fsync_ms == JOURNAL_SYNC_ALWAYS);
	j->synced_ns = clock_mono_ns();
	atomic_store(&j->segments, j->s.nsegs);
	atomic_store(&j->live, j->s.live.n);
	size_t nsegs = j->s.nsegs, live = j->s.live.n;
	uint64_t cut = j->s.cut_bytes;
	if ((e = -pthread_create(&j->reader, NULL, reader_main, j)) == 0)
		j->have_reader = 1;
	if (!e && (e = -pthread_create(&j->writer, NULL, writer_main, j)) == 0)
		j->have_writer = 1;
	if (e) {
		snprintf(err, errlen, "journal thread: %s", strerror(-e));
		journal_close(j, 1);
		return e;
	}
	/* What the scan found, not the segment set the writer now owns. */
	log_event(LOG_INFO, "journal_opened",
		  "dir=%s segments=%zu live=%zu replay=%zu cut_bytes=%llu fsync=%s", c->dir,
		  nsegs, live, j->nreplay, (unsigned long long)cut,
		  c->fsync_ms == JOURNAL_SYNC_ALWAYS ? "always"
		  : c->fsync_ms == JOURNAL_SYNC_OFF ? "off" : "ms");
	*jp = j;
	return 0;
}

void journal_close(struct journal *j, int end_gate)
{
	if (!j)
		return;
	if (j->have_reader) {
		atomic_store(&j->stop_reader, 1);
		pthread_join(j->reader, NULL);
	}
	if (j->have_writer) {
		atomic_store(&j->stop, 1);
		forq_admin_work_kick(j->q);
		pthread_join(j->writer, NULL);
		checkpoint(j);
	}
	if (end_gate && j->mq)
		forq_admin_journal_end(j->mq);
	if (j->q)
		forq_close(j->q);
	segset_close(&j->s);
	replay_free(j->replay, j->nreplay);
	for (int i = 0; i < 2; i++)
		if (j->pipe[i] >= 0)
			close(j->pipe[i]);
	buf_free(&j->out);
	free(j->fin.v);
	free(j->fin_out.v);
	free(j->acc_runs.v);
	pthread_mutex_destroy(&j->mu);
	free(j);
}
