/* stream.c — the JetStream connection, the stream and consumer forq needs,
 * publishing (stream.h). */
#include "upstream_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "log.h"
#include "settings.h"

#define CONNECT_TIMEOUT_MS 2000
#define API_WAIT_MS 10000       /* a new R3 stream elects its leader first */
#define RECONNECT_FIRST_MS 100  /* then doubled, up to RECONNECT_MAX_MS */
#define RECONNECT_MAX_MS 5000
/* A silent cut (a link down, packets dropped) breaks no socket: libnats finds
 * it by unanswered PINGs, by default after 2 to 3 two-minute intervals. */
#define PING_INTERVAL_MS 5000
#define PINGS_OUT_MAX 2
#define PUBLISH_WAIT_MS 10000
#define CLOSE_WAIT_MS 5000     /* libnats' threads to end */
#define ASYNC_MAX 4096         /* asynchronous publishes in flight (libnats' MaxPending) */
#define REFS_CAP (2 * ASYNC_MAX) /* the reference table's slots: at most half full */

/* An asynchronous publish's reference (upstream_publish_ref), by the
 * message libnats hands back to the ack handler: libnats has no closure of
 * its own per message. */
struct ref_slot {
	natsMsg *m;   /* NULL: free */
	uint64_t ref;
};

struct upstream {
	struct upstream *next_closed; /* upstream_shutdown's list */
	struct upstream_config c;
	char stream[UPSTREAM_NAME_MAX + 1];
	char subject[UPSTREAM_NAME_MAX + 8];
	natsOptions *opts;
	natsConnection *nc;
	jsCtx *js;
	char **urls;
	struct upstream_counters n;
	atomic_int closing;      /* the disconnection is ours: not logged */
	pthread_mutex_t refs_lock;
	struct ref_slot *refs;   /* REFS_CAP, open addressing; NULL until the first */
	size_t nrefs;
};

void upstream_status_text(natsStatus s, char *out, size_t cap)
{
	const char *detail = nats_GetLastError(NULL);
	if (detail && *detail && strcmp(detail, natsStatus_GetText(s)) != 0)
		snprintf(out, cap, "%s: %s", natsStatus_GetText(s), detail);
	else
		snprintf(out, cap, "%s", natsStatus_GetText(s));
}

static int nats_failed(natsStatus s, jsErrCode jerr, char *err, size_t errlen, const char *what)
{
	char t[300];
	upstream_status_text(s, t, sizeof t);
	if (jerr)
		errmsg_set(err, errlen, "%s: %s (JetStream error %d)", what, t, (int)jerr);
	else
		errmsg_set(err, errlen, "%s: %s", what, t);
	return s == NATS_NO_SERVER || s == NATS_TIMEOUT ? -EHOSTUNREACH : -EIO;
}

/* ---- connection events (libnats' threads) ---- */

static void on_disconnected(natsConnection *nc, void *ctx)
{
	struct upstream *u = ctx;
	(void)nc;
	if (atomic_exchange(&u->n.connected, 0) && !atomic_load(&u->closing))
		log_event(LOG_WARN, "upstream_disconnected", "stream=%s", u->stream);
}

static void on_reconnected(natsConnection *nc, void *ctx)
{
	struct upstream *u = ctx;
	char url[256] = "";
	natsConnection_GetConnectedUrl(nc, url, sizeof url);
	atomic_store(&u->n.connected, 1);
	atomic_fetch_add(&u->n.reconnects, 1);
	log_event(LOG_INFO, "upstream_reconnected", "stream=%s url=%s", u->stream, url);
}

static int64_t reconnect_delay(natsConnection *nc, int attempts, void *ctx)
{
	(void)nc;
	(void)ctx;
	int64_t ms = RECONNECT_FIRST_MS;
	for (int i = 1; i < attempts && ms < RECONNECT_MAX_MS; i++)
		ms *= 2;
	return ms < RECONNECT_MAX_MS ? ms : RECONNECT_MAX_MS;
}

/* ---- references of asynchronous publishes (refs_lock held) ---- */

static size_t ref_home(const natsMsg *m)
{
	return (size_t)(((uintptr_t)m >> 4) * 0x9E3779B97F4A7C15ull) & (REFS_CAP - 1);
}

static int ref_put(struct upstream *u, natsMsg *m, uint64_t ref)
{
	if (!u->refs && !(u->refs = calloc(REFS_CAP, sizeof *u->refs)))
		return -ENOMEM;
	if (u->nrefs >= REFS_CAP / 2)
		return -EAGAIN;
	size_t i = ref_home(m);
	while (u->refs[i].m)
		i = (i + 1) & (REFS_CAP - 1);
	u->refs[i] = (struct ref_slot){m, ref};
	u->nrefs++;
	return 0;
}

/* Removes m's reference and returns it (0: none). Linear probing's
 * deletion: the entries after the hole that belong before it move back. */
static uint64_t ref_take(struct upstream *u, const natsMsg *m)
{
	if (!u->refs || !u->nrefs)
		return 0;
	size_t i = ref_home(m);
	while (u->refs[i].m && u->refs[i].m != m)
		i = (i + 1) & (REFS_CAP - 1);
	if (!u->refs[i].m)
		return 0;
	uint64_t ref = u->refs[i].ref;
	u->nrefs--;
	for (size_t j = (i + 1) & (REFS_CAP - 1); u->refs[j].m; j = (j + 1) & (REFS_CAP - 1)) {
		size_t h = ref_home(u->refs[j].m);
		/* j's entry stays unless its home lies cyclically in (i, j]. */
		if (i <= j ? (h > i && h <= j) : (h > i || h <= j))
			continue;
		u->refs[i] = u->refs[j];
		i = j;
	}
	u->refs[i].m = NULL;
	return ref;
}

static void on_publish_acked(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *ctx)
{
	struct upstream *u = ctx;
	(void)js;
	if (!pa)
		atomic_fetch_add(&u->n.publish_errors, 1);
	pthread_mutex_lock(&u->refs_lock);
	uint64_t ref = ref_take(u, msg);
	pthread_mutex_unlock(&u->refs_lock);
	if (u->c.acked) {
		char why[200] = "";
		if (!pa && pae)
			snprintf(why, sizeof why, "%s", pae->ErrText ? pae->ErrText
							: natsStatus_GetText(pae->Err));
		struct upstream_ack a = {.ref = ref, .seq = pa ? pa->Sequence : 0,
					 .duplicate = pa && pa->Duplicate, .why = why};
		u->c.acked(u->c.acked_ctx, &a);
	}
	natsMsg_Destroy(msg);
}

/* ---- credentials ---- */

static int set_auth(struct upstream *u, char *err, size_t errlen)
{
	const char *creds = u->c.creds_file;
	natsStatus s = NATS_OK;
	if (creds && u->c.token) {
		errmsg_set(err, errlen, "give a NATS token or a creds file, not both");
		return -EINVAL;
	}
	if (u->c.token) {
		s = natsOptions_SetToken(u->opts, u->c.token);
	} else if (creds) {
		FILE *f = fopen(creds, "r");
		if (!f) {
			errmsg_set(err, errlen, "cannot open NATS creds file %s: %s", creds,
				   strerror(errno));
			return -EINVAL;
		}
		fclose(f);
		s = natsOptions_SetUserCredentialsFromFiles(u->opts, creds, NULL);
	}
	return s == NATS_OK ? 0 : nats_failed(s, 0, err, errlen, "NATS credentials");
}

static int connect_nats(struct upstream *u, char *err, size_t errlen)
{
	int n, r;
	if ((r = upstream_split_urls(u->c.urls, &u->urls, &n, err, errlen)))
		return r;
	natsStatus s = natsOptions_Create(&u->opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(u->opts, (const char **)u->urls, n);
	if (s == NATS_OK)
		s = natsOptions_SetName(u->opts, u->c.client_name ? u->c.client_name : "forq");
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(u->opts, CONNECT_TIMEOUT_MS);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(u->opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetCustomReconnectDelay(u->opts, reconnect_delay, u);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(u->opts, PING_INTERVAL_MS);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(u->opts, PINGS_OUT_MAX);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(u->opts, on_disconnected, u);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(u->opts, on_reconnected, u);
	if (s != NATS_OK)
		return nats_failed(s, 0, err, errlen, "NATS options");
	if ((r = set_auth(u, err, errlen)))
		return r;
	s = natsConnection_Connect(&u->nc, u->opts);
	if (s != NATS_OK) {
		char what[600];
		snprintf(what, sizeof what, "cannot connect to %.500s", u->c.urls);
		return nats_failed(s, 0, err, errlen, what);
	}
	atomic_store(&u->n.connected, 1);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = API_WAIT_MS;
	jo.PublishAsync.AckHandler = on_publish_acked;
	jo.PublishAsync.AckHandlerClosure = u;
	jo.PublishAsync.MaxPending = ASYNC_MAX;
	jo.PublishAsync.StallWait = PUBLISH_WAIT_MS; /* a loaded cluster: wait, not fail */
	if ((s = natsConnection_JetStream(&u->js, u->nc, &jo)) != NATS_OK)
		return nats_failed(s, 0, err, errlen, "JetStream");
	return 0;
}

/* ---- the stream and the consumer ---- */

static int ensure_stream(struct upstream *u, const struct upstream_want *w, char *err,
			 size_t errlen)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, u->js, u->stream, NULL, &jerr);
	if (s == NATS_NOT_FOUND) {
		jsStreamConfig sc;
		const char *subj = u->subject;
		jsStreamConfig_Init(&sc);
		sc.Name = u->stream;
		sc.Subjects = &subj;
		sc.SubjectsLen = 1;
		sc.Retention = js_WorkQueuePolicy;
		sc.Storage = js_FileStorage;
		sc.Replicas = w->replicas ? w->replicas : 1;
		jerr = 0;
		s = js_AddStream(&si, u->js, &sc, NULL, &jerr);
		if (s != NATS_OK && jerr == JSStreamNameExistErr) /* another host was first */
			s = js_GetStreamInfo(&si, u->js, u->stream, NULL, &jerr);
		else if (s == NATS_OK)
			log_event(LOG_INFO, "upstream_stream_created", "stream=%s subject=%s replicas=%d",
				  u->stream, u->subject, (int)sc.Replicas);
	}
	if (s != NATS_OK) {
		char what[200];
		snprintf(what, sizeof what, "stream %s", u->stream);
		return nats_failed(s, jerr, err, errlen, what);
	}
	jsStreamConfig *cf = si->Config;
	struct upstream_stream_have h = {.work_queue = cf->Retention == js_WorkQueuePolicy,
					 .replicas = (int)cf->Replicas,
					 .subjects = (const char *const *)cf->Subjects,
					 .nsubjects = cf->SubjectsLen};
	int r = upstream_check_stream(w, &h, err, errlen);
	jsStreamInfo_Destroy(si);
	return r;
}

static int ensure_consumer(struct upstream *u, const struct upstream_want *w, char *err,
			   size_t errlen)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetConsumerInfo(&ci, u->js, u->stream, UPSTREAM_DURABLE, NULL, &jerr);
	if (s == NATS_NOT_FOUND) {
		jsConsumerConfig cc;
		jsConsumerConfig_Init(&cc);
		cc.Durable = UPSTREAM_DURABLE;
		cc.AckPolicy = js_AckExplicit;
		cc.AckWait = w->ack_wait_ms * 1000000;
		cc.MaxDeliver = w->max_deliver;
		cc.FilterSubject = u->subject;
		cc.MaxAckPending = -1; /* each forqd holds what its ring has room for */
		jerr = 0;
		s = js_AddConsumer(&ci, u->js, u->stream, &cc, NULL, &jerr);
		if (s == NATS_OK)
			log_event(LOG_INFO, "upstream_consumer_created",
				  "stream=%s consumer=%s ack_wait_ms=%lld max_deliver=%lld", u->stream,
				  UPSTREAM_DURABLE, (long long)w->ack_wait_ms,
				  (long long)w->max_deliver);
		else if (jerr == JSConsumerNameExistErr)
			s = js_GetConsumerInfo(&ci, u->js, u->stream, UPSTREAM_DURABLE, NULL, &jerr);
	}
	if (s != NATS_OK) {
		char what[200];
		snprintf(what, sizeof what, "consumer %s on stream %s", UPSTREAM_DURABLE, u->stream);
		return nats_failed(s, jerr, err, errlen, what);
	}
	jsConsumerConfig *cf = ci->Config;
	struct upstream_consumer_have h = {
		.ack_explicit = cf->AckPolicy == js_AckExplicit,
		.ack_wait_ms = cf->AckWait / 1000000, .max_deliver = cf->MaxDeliver,
		.filter_subject = cf->FilterSubject,
		.push = cf->DeliverSubject && *cf->DeliverSubject};
	int r = upstream_check_consumer(w, &h, err, errlen);
	jsConsumerInfo_Destroy(ci);
	return r;
}

int upstream_open(struct upstream **up, const struct upstream_config *c, char *err,
		  size_t errlen)
{
	int r;
	if ((r = upstream_name_check(c->stream, err, errlen)))
		return r;
	struct upstream *u = calloc(1, sizeof *u);
	if (!u)
		return -ENOMEM;
	u->c = *c;
	pthread_mutex_init(&u->refs_lock, NULL);
	snprintf(u->stream, sizeof u->stream, "%s", c->stream);
	upstream_subject(u->stream, u->subject, sizeof u->subject);
	struct upstream_want w = {.stream = u->stream, .subject = u->subject,
				  .replicas = c->replicas, .ack_wait_ms = c->ack_wait_ms,
				  .max_deliver = c->max_deliver};
	if (!(r = connect_nats(u, err, errlen)) && !(r = ensure_stream(u, &w, err, errlen)) &&
	    c->ack_wait_ms > 0)
		r = ensure_consumer(u, &w, err, errlen);
	if (r) {
		upstream_close(u, 0);
		return r;
	}
	*up = u;
	return 0;
}

/* Closed upstreams, freed by upstream_shutdown (main thread only). */
static struct upstream *closed;

void upstream_close(struct upstream *u, int timeout_ms)
{
	if (!u)
		return;
	if (u->nc && timeout_ms > 0)
		natsConnection_FlushTimeout(u->nc, timeout_ms);
	jsCtx_Destroy(u->js);
	atomic_store(&u->closing, 1);
	if (u->nc) {
		natsConnection_Close(u->nc);
		natsConnection_Destroy(u->nc);
	}
	natsOptions_Destroy(u->opts);
	free(u->urls);
	/* libnats' callback thread may still run the connection's last events,
	 * which read u: u goes in upstream_shutdown, once they are done. */
	u->next_closed = closed;
	closed = u;
}

void upstream_shutdown(void)
{
	if (!closed)
		return;
	/* libnats' own threads and memory go once, after every connection of
	 * the process: closing the library under a live one would break it.
	 * Not done in time: the closed upstreams stay (freed at exit). */
	if (nats_CloseAndWait(CLOSE_WAIT_MS) != NATS_OK)
		return;
	while (closed) {
		struct upstream *u = closed;
		closed = u->next_closed;
		pthread_mutex_destroy(&u->refs_lock);
		free(u->refs);
		free(u);
	}
}

struct upstream_counters *upstream_counters(struct upstream *u)
{
	return &u->n;
}

int upstream_connected(struct upstream *u)
{
	return atomic_load(&u->n.connected);
}

jsCtx *upstream_js(struct upstream *u)
{
	return u->js;
}

natsConnection *upstream_conn(struct upstream *u)
{
	return u->nc;
}

const char *upstream_stream_name(const struct upstream *u)
{
	return u->stream;
}

const char *upstream_task_subject(const struct upstream *u)
{
	return u->subject;
}

/* ---- publishing ---- */

/* po with key (NULL: none) as its message id, in id. */
static int pub_options(jsPubOptions *po, char id[UPSTREAM_KEY_MAX + 1], const char *key,
		       size_t key_len, char *err, size_t errlen)
{
	jsPubOptions_Init(po);
	po->MaxWait = PUBLISH_WAIT_MS;
	if (!key)
		return 0;
	if (key_len == 0 || key_len > UPSTREAM_KEY_MAX) {
		errmsg_set(err, errlen, "a key is 1 to %d bytes", UPSTREAM_KEY_MAX);
		return -EINVAL;
	}
	memcpy(id, key, key_len);
	id[key_len] = 0;
	po->MsgId = id;
	return 0;
}

int upstream_publish(struct upstream *u, const void *data, size_t len, const char *key,
		     size_t key_len, uint64_t *seq, int *dup, char *err, size_t errlen)
{
	char id[UPSTREAM_KEY_MAX + 1];
	jsPubOptions po;
	int r;
	if ((r = pub_options(&po, id, key, key_len, err, errlen)))
		return r;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_Publish(&pa, u->js, u->subject, data, (int)len, &po, &jerr);
	if (s != NATS_OK) {
		atomic_fetch_add(&u->n.publish_errors, 1);
		nats_failed(s, jerr, err, errlen, "publish");
		return -EIO;
	}
	if (seq)
		*seq = pa->Sequence;
	if (dup)
		*dup = pa->Duplicate;
	jsPubAck_Destroy(pa);
	return 0;
}

int upstream_publish_async(struct upstream *u, const void *data, size_t len, char *err,
			   size_t errlen)
{
	natsStatus s = js_PublishAsync(u->js, u->subject, data, (int)len, NULL);
	if (s == NATS_OK)
		return 0;
	atomic_fetch_add(&u->n.publish_errors, 1);
	return nats_failed(s, 0, err, errlen, "publish");
}

int upstream_publish_ref(struct upstream *u, const void *data, size_t len, const char *key,
			 size_t key_len, uint64_t ref, char *err, size_t errlen)
{
	char id[UPSTREAM_KEY_MAX + 1];
	jsPubOptions po;
	natsMsg *m = NULL;
	int r;
	if ((r = pub_options(&po, id, key, key_len, err, errlen)))
		return r;
	natsStatus s = natsMsg_Create(&m, u->subject, NULL, data, (int)len);
	if (s != NATS_OK)
		return nats_failed(s, 0, err, errlen, "publish");
	pthread_mutex_lock(&u->refs_lock);
	r = ref_put(u, m, ref); /* before: the ack may come before the call returns */
	pthread_mutex_unlock(&u->refs_lock);
	if (r) {
		errmsg_set(err, errlen, "%s", r == -EAGAIN ? "too many publishes in flight"
							 : "out of memory");
		natsMsg_Destroy(m);
		return -EAGAIN;
	}
	natsMsg *sent = m;
	if ((s = js_PublishMsgAsync(u->js, &sent, &po)) == NATS_OK)
		return 0; /* sent is NULL now: libnats owns m */
	pthread_mutex_lock(&u->refs_lock);
	ref_take(u, m);
	pthread_mutex_unlock(&u->refs_lock);
	natsMsg_Destroy(sent);
	atomic_fetch_add(&u->n.publish_errors, 1);
	return nats_failed(s, 0, err, errlen, "publish");
}

int upstream_publish_wait(struct upstream *u, int timeout_ms)
{
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = timeout_ms;
	return js_PublishAsyncComplete(u->js, &po) == NATS_OK ? 0 : -ETIMEDOUT;
}
