/* bridge.c — JetStream to the local ring and back (bridge.h). */
#include "bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "errmsg.h"
#include "forq.h"
#include "forq_admin.h"
#include "idpipe.h"
#include "upstream_internal.h"
#include "log.h"
#include "settings.h"

#define MS ((uint64_t)1000000)
#define FETCH_MAX FORQ_PUSH_BATCH_MAX /* one fetch is one forq_push_batch */
#define FETCH_BUSY_MS 100   /* tasks held: finishes wait for a fetch this long at most */
#define FETCH_IDLE_MS 1000
#define PAUSE_MS 100        /* no room, draining or disconnected: look again */
#define SETTLE_MS 20        /* after a short fetch: its late messages land (fetch_size) */
#define ERROR_WAIT_MAX_MS 5000
#define LAG_WAIT_MS 1000    /* a consumer info request: never longer than this */

struct held {
	uint64_t id;            /* 0: free */
	natsMsg *msg;
	uint64_t touched_ns;    /* fetched, or the last InProgress */
};

struct bridge {
	struct bridge_config c;
	struct upstream *up;
	struct upstream_counters *n;
	struct forq *q;         /* the bridge thread's own handle */
	natsSubscription *sub;
	int pipe[2];
	pthread_t th;
	int have_thread;
	atomic_int stop;
	/* Held tasks: entries, a free list, and an id index (open addressing,
	 * entry + 1, 0 empty) twice their number or more. */
	struct held *v;
	uint32_t *free_list, nfree;
	uint32_t *index, mask;
	atomic_uint nheld;
	uint8_t buf[65536];     /* the finish pipe's bytes not yet a whole message */
	size_t have;
	int fetch_failing;      /* the last fetch failed: logged once */
	atomic_uint_fast64_t pending, ack_pending; /* bridge_lag */
};

/* ---- held tasks by id ---- */

static uint32_t slot_of(const struct bridge *b, uint64_t id)
{
	return (uint32_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & b->mask;
}

static uint32_t find(const struct bridge *b, uint64_t id, uint32_t *slot)
{
	for (uint32_t i = slot_of(b, id);; i = (i + 1) & b->mask) {
		uint32_t e = b->index[i];
		if (!e || b->v[e - 1].id == id) {
			*slot = i;
			return e;
		}
	}
}

static void hold(struct bridge *b, uint64_t id, natsMsg *m, uint64_t now)
{
	uint32_t e = b->free_list[--b->nfree], slot;
	b->v[e] = (struct held){.id = id, .msg = m, .touched_ns = now};
	find(b, id, &slot);
	b->index[slot] = e + 1;
	atomic_fetch_add(&b->nheld, 1);
}

/* Drops the entry at index slot (backward-shift deletion). */
static void unhold(struct bridge *b, uint32_t slot)
{
	uint32_t e = b->index[slot] - 1;
	b->v[e].id = 0;
	b->v[e].msg = NULL;
	b->free_list[b->nfree++] = e;
	atomic_fetch_sub(&b->nheld, 1);
	uint32_t hole = slot;
	for (uint32_t i = (slot + 1) & b->mask; b->index[i]; i = (i + 1) & b->mask) {
		uint32_t home = slot_of(b, b->v[b->index[i] - 1].id);
		/* Moves back unless its home lies cyclically in (hole, i]. */
		if (((i - home) & b->mask) >= ((i - hole) & b->mask)) {
			b->index[hole] = b->index[i];
			hole = i;
		}
	}
	b->index[hole] = 0;
}

/* ---- ends ---- */

static void count(atomic_uint_fast64_t *c, natsStatus s)
{
	if (s == NATS_OK)
		atomic_fetch_add(c, 1);
}

/* A task that failed with a retry left (FORQ_RESULT_REDELIVER: no result
 * line, the recent table says RETRY with its deliveries so far) goes back
 * to the stream with its backoff, for any host to take. 1 if it did. */
static int redeliver(struct bridge *b, uint64_t id, natsMsg *m)
{
	uint16_t attempts = 0;
	if (forq_result_lookup(b->q, id, NULL, 0, &attempts) != FORQ_RESULT_RETRY)
		return 0;
	int64_t ms = (int64_t)forq_admin_backoff_ms(b->q, attempts);
	count(&b->n->naked, natsMsg_NakWithDelay(m, ms, NULL));
	return 1;
}

/* A task's result line is written: the message goes as the task ended. */
static void ended(void *ctx, const uint64_t *ids, size_t n)
{
	struct bridge *b = ctx;
	for (size_t i = 0; i < n; i++) {
		uint32_t slot, e = find(b, ids[i], &slot);
		if (!e)
			continue; /* not fetched by the bridge (a local push) */
		natsMsg *m = b->v[e - 1].msg;
		if (redeliver(b, ids[i], m)) {
			natsMsg_Destroy(m);
			unhold(b, slot);
			continue;
		}
		int st = forq_result_lookup(b->q, ids[i], NULL, 0, NULL);
		if (b->c.results_queue)
			upstream_result_publish(b->up, b->q, b->c.results_queue, ids[i], m);
		if (st == FORQ_RESULT_DONE || st == 0) /* 0: forgotten already, but it ended */
			count(&b->n->acked, natsMsg_Ack(m, NULL));
		else
			count(&b->n->terminated, natsMsg_Term(m, NULL));
		natsMsg_Destroy(m);
		unhold(b, slot);
	}
}

static void take_finished(struct bridge *b)
{
	ssize_t r;
	while ((r = read(b->pipe[0], b->buf + b->have, sizeof b->buf - b->have)) > 0 ||
	       (r < 0 && errno == EINTR)) {
		if (r < 0)
			continue;
		b->have += (size_t)r;
		size_t off = idpipe_parse(b->buf, b->have, ended, b);
		memmove(b->buf, b->buf + off, b->have - off);
		b->have -= off;
	}
}

/* Every held task whose last word to JetStream is a third of AckWait old. */
static void keep_alive(struct bridge *b, uint64_t now)
{
	uint64_t every = (uint64_t)b->c.ack_wait_ms * MS / 3;
	for (uint32_t e = 0; e < b->c.hold; e++) {
		struct held *h = &b->v[e];
		if (h->id && now - h->touched_ns >= every) {
			count(&b->n->in_progress_sent, natsMsg_InProgress(h->msg, NULL));
			h->touched_ns = now;
		}
	}
}

/* ---- fetch and push ---- */

/* Tasks to fetch now: room in the lane and under hold, while the queue
 * accepts, is not paused and the connection is up. */
static uint32_t room(struct bridge *b)
{
	uint32_t fl = forq_admin_flags(b->q);
	if (!(fl & FORQ_F_ACCEPTING) || (fl & FORQ_F_DRAINING) || forq_admin_paused(b->q) ||
	    !upstream_connected(b->up))
		return 0; /* what the stream holds stays there for the other hosts */
	struct forq_stats st;
	forq_stats_read(b->q, &st);
	uint64_t lane = st.capacity > st.pending[FORQ_NORMAL] ? st.capacity - st.pending[FORQ_NORMAL]
							       : 0;
	uint64_t k = b->c.hold - atomic_load(&b->nheld);
	k = k < lane ? k : lane;
	return (uint32_t)(k < FETCH_MAX ? k : FETCH_MAX);
}

static void give_back(struct bridge *b, natsMsg *m, uint32_t delay_ms)
{
	count(&b->n->naked, natsMsg_NakWithDelay(m, delay_ms, NULL));
	natsMsg_Destroy(m);
}

/* Earlier deliveries of a message (JetStream's count, so that attempts
 * outlive the host that made them). */
static unsigned delivered_before(natsMsg *m)
{
	jsMsgMetaData *md = NULL;
	unsigned n = 0;
	if (natsMsg_GetMetaData(&md, m) == NATS_OK && md->NumDelivered > 1)
		n = md->NumDelivered - 1 < UINT16_MAX ? (unsigned)(md->NumDelivered - 1) : UINT16_MAX;
	jsMsgMetaData_Destroy(md);
	return n;
}

/* Pushes n messages with `attempts` earlier deliveries each, one batch:
 * held, or given back to the stream when the ring cannot take them. */
static void push_run(struct bridge *b, const struct forq_msg *m, natsMsg **keep, size_t n,
		     unsigned attempts)
{
	uint64_t ids[FETCH_MAX];
	int r = forq_admin_push_redelivered(b->q, FORQ_NORMAL, m, n, attempts, 0, ids);
	uint64_t now = clock_mono_ns();
	for (size_t i = 0; i < n; i++) {
		if (r)
			give_back(b, keep[i], b->c.nak_delay_ms);
		else
			hold(b, ids[i], keep[i], now);
	}
	if (!r)
		atomic_fetch_add(&b->n->fetched, n);
}

/* Pushes the fetched messages into the ring, a batch for each run of equal
 * attempts (one, mostly); the list keeps none of them. */
static void push_fetched(struct bridge *b, natsMsgList *l, uint32_t max_payload)
{
	struct forq_msg m[FETCH_MAX];
	natsMsg *keep[FETCH_MAX];
	unsigned att[FETCH_MAX];
	size_t k = 0;
	for (int i = 0; i < l->Count; i++) {
		natsMsg *msg = l->Msgs[i];
		l->Msgs[i] = NULL;
		if (k == FETCH_MAX || k == b->nfree) { /* more than asked for: never held */
			give_back(b, msg, 0);
			continue;
		}
		int len = natsMsg_GetDataLength(msg);
		if (len <= 0 || (uint32_t)len > max_payload) {
			/* Never fits this queue: failed for good, said once. */
			log_event(LOG_WARN, "upstream_task_refused", "bytes=%d max_payload=%u reason=\"%s\"",
				  len, max_payload, len <= 0 ? "empty" : "over --max-payload");
			count(&b->n->terminated, natsMsg_Term(msg, NULL));
			natsMsg_Destroy(msg);
			continue;
		}
		m[k] = (struct forq_msg){natsMsg_GetData(msg), (uint32_t)len};
		att[k] = delivered_before(msg);
		keep[k++] = msg;
	}
	for (size_t i = 0, j; i < k; i = j) {
		for (j = i + 1; j < k && att[j] == att[i]; j++)
			;
		push_run(b, m + i, keep + i, j - i, att[i]);
	}
}

/* Waits for finishes on the pipe (or for ms). */
static void wait_pipe(struct bridge *b, int ms)
{
	struct pollfd p = {b->pipe[0], POLLIN, 0};
	poll(&p, 1, ms);
}

/* libnats 3.4.1's Fetch (Debian's; fixed upstream in nats.c 0a42cd4e)
 * overruns its own array when the subscription already holds messages
 * (of an earlier pull request, come after its timeout) and more than half
 * the batch of them are tasks: it then gathers until the timeout, past the
 * batch. With a batch of 1 that cannot happen, so while anything waits
 * there a fetch takes one; and after a fetch that came back short (it may
 * have left its request open) the late messages get time to land before
 * the next look. */
static int fetch_size(struct bridge *b, uint32_t want)
{
	int waiting = 0, bytes = 0;
	if (natsSubscription_GetPending(b->sub, &waiting, &bytes) != NATS_OK || waiting > 0)
		return 1;
	return (int)want;
}

static void fetch_once(struct bridge *b, uint32_t want, uint32_t max_payload, int *error_ms)
{
	natsMsgList list = {0};
	jsErrCode jerr = 0;
	int batch = fetch_size(b, want);
	natsStatus s = natsSubscription_Fetch(&list, b->sub, batch,
					      atomic_load(&b->nheld) ? FETCH_BUSY_MS : FETCH_IDLE_MS,
					      &jerr);
	if (list.Count < batch)
		wait_pipe(b, SETTLE_MS);
	if (s == NATS_OK || list.Count > 0) {
		if (b->fetch_failing)
			log_event(LOG_INFO, "upstream_fetching", "stream=%s",
				  upstream_stream_name(b->up));
		b->fetch_failing = 0;
		*error_ms = 0;
		push_fetched(b, &list, max_payload);
	} else if (s != NATS_TIMEOUT) {
		char t[300];
		upstream_status_text(s, t, sizeof t);
		if (!b->fetch_failing)
			log_event(LOG_WARN, "upstream_fetch_failed", "stream=%s error=\"%s\" jserr=%d",
				  upstream_stream_name(b->up), t, (int)jerr);
		b->fetch_failing = 1;
		*error_ms = *error_ms ? *error_ms * 2 : PAUSE_MS;
		if (*error_ms > ERROR_WAIT_MAX_MS)
			*error_ms = ERROR_WAIT_MAX_MS;
		wait_pipe(b, *error_ms);
	}
	natsMsgList_Destroy(&list);
}

/* The consumer's backlog (bridge_lag): one request, off the fetch path;
 * a failed one keeps the last figures. */
static void read_lag(struct bridge *b)
{
	if (!upstream_connected(b->up))
		return;
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = LAG_WAIT_MS;
	jsConsumerInfo *ci = NULL;
	if (js_GetConsumerInfo(&ci, upstream_js(b->up), upstream_stream_name(b->up),
			       UPSTREAM_DURABLE, &jo, NULL) != NATS_OK)
		return;
	atomic_store(&b->pending, ci->NumPending);
	atomic_store(&b->ack_pending, (uint64_t)ci->NumAckPending);
	jsConsumerInfo_Destroy(ci);
}

static void *bridge_main(void *arg)
{
	struct bridge *b = arg;
	struct forq_stats st;
	forq_stats_read(b->q, &st);
	uint32_t max_payload = st.max_payload;
	uint64_t every = (uint64_t)b->c.ack_wait_ms * MS / 3, next = clock_mono_ns() + every;
	uint64_t next_lag = 0;
	int error_ms = 0;
	while (!atomic_load(&b->stop)) {
		take_finished(b);
		uint64_t now = clock_mono_ns();
		if (now >= next) {
			keep_alive(b, now);
			next = now + every;
		}
		if (now >= next_lag) {
			read_lag(b);
			next_lag = now + BRIDGE_LAG_EVERY_MS * MS;
		}
		uint32_t want = room(b);
		if (!want)
			wait_pipe(b, PAUSE_MS);
		else
			fetch_once(b, want, max_payload, &error_ms);
	}
	return NULL;
}

/* ---- start, stop ---- */

int bridge_start(struct bridge **bp, struct upstream *up, const struct bridge_config *c,
		 char *err, size_t errlen)
{
	uint32_t cap = 1;
	while (cap < 2 * c->hold)
		cap <<= 1;
	struct bridge *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->c = *c;
	b->up = up;
	b->n = upstream_counters(up);
	b->pipe[0] = b->pipe[1] = -1;
	b->mask = cap - 1;
	b->v = calloc(c->hold, sizeof *b->v);
	b->free_list = malloc(c->hold * sizeof *b->free_list);
	b->index = calloc(cap, sizeof *b->index);
	int r = 0;
	if (!b->v || !b->free_list || !b->index) {
		errmsg_set(err, errlen, "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < c->hold; i++)
		b->free_list[b->nfree++] = c->hold - 1 - i;
	if ((r = forq_open(&b->q, c->shm_name, err, errlen)))
		goto fail;
	forq_admin_set_flags(b->q, FORQ_F_UPSTREAM, 0); /* consumers' retries come here */
	/* Consumers write whole messages and must never see EAGAIN: only the
	 * bridge's end is non-blocking. */
	if (pipe2(b->pipe, O_CLOEXEC) < 0 || fcntl(b->pipe[0], F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		errmsg_set(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	fcntl(b->pipe[1], F_SETPIPE_SZ, 1 << 20); /* best effort: consumers rarely wait */
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = upstream_stream_name(up);
	so.Consumer = UPSTREAM_DURABLE; /* bound: never created or deleted here */
	jsErrCode jerr = 0;
	natsStatus s = js_PullSubscribe(&b->sub, upstream_js(up), upstream_task_subject(up),
					UPSTREAM_DURABLE, NULL, &so, &jerr);
	if (s != NATS_OK) {
		char t[300];
		upstream_status_text(s, t, sizeof t);
		errmsg_set(err, errlen, "pull subscription to %s: %s (JetStream error %d)",
			   so.Stream, t, (int)jerr);
		r = -EIO;
		goto fail;
	}
	if ((r = -pthread_create(&b->th, NULL, bridge_main, b))) {
		errmsg_set(err, errlen, "bridge thread: %s", strerror(-r));
		goto fail;
	}
	b->have_thread = 1;
	*bp = b;
	return 0;
fail:
	bridge_stop(b);
	return r;
}

int bridge_finish_fd(const struct bridge *b)
{
	return b ? b->pipe[1] : -1;
}

void bridge_finished(struct bridge *b, const uint64_t *ids, size_t n)
{
	if (b && n)
		idpipe_write(b->pipe[1], ids, n);
}

uint32_t bridge_held(struct bridge *b)
{
	return b ? atomic_load(&b->nheld) : 0;
}

void bridge_lag(struct bridge *b, uint64_t *pending, uint64_t *ack_pending)
{
	*pending = b ? atomic_load(&b->pending) : 0;
	*ack_pending = b ? atomic_load(&b->ack_pending) : 0;
}

void bridge_stop(struct bridge *b)
{
	if (!b)
		return;
	atomic_store(&b->stop, 1);
	if (b->have_thread)
		pthread_join(b->th, NULL);
	if (b->pipe[0] >= 0)
		take_finished(b);
	uint32_t naked = 0;
	for (uint32_t e = 0; b->v && e < b->c.hold; e++)
		if (b->v[e].id) {
			count(&b->n->naked, natsMsg_Nak(b->v[e].msg, NULL));
			natsMsg_Destroy(b->v[e].msg);
			naked++;
		}
	if (naked)
		log_event(LOG_INFO, "upstream_given_back", "stream=%s tasks=%u",
			  upstream_stream_name(b->up), naked);
	natsSubscription_Destroy(b->sub);
	if (b->q) {
		forq_admin_set_flags(b->q, 0, FORQ_F_UPSTREAM);
		forq_close(b->q);
	}
	for (int i = 0; i < 2; i++)
		if (b->pipe[i] >= 0)
			close(b->pipe[i]);
	free(b->v);
	free(b->free_list);
	free(b->index);
	free(b);
}
