/* results_subject.c — final results on forq.results.STREAM (results_subject.h). */
#include "results_subject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "errmsg.h"
#include "forq.h"
#include "settings.h"
#include "upstream_internal.h"

struct upstream_watch {
	natsSubscription *sub;
	void (*fn)(void *ctx, const char *line, size_t len);
	void *ctx;
};

void upstream_results_subject(const char *stream, char *out, size_t cap)
{
	snprintf(out, cap, "forq.results.%s", stream);
}

static const char *status_name(int st)
{
	switch (st) {
	case FORQ_RESULT_DONE: return "done";
	case FORQ_RESULT_FAILED: return "failed";
	case FORQ_RESULT_DEAD: return "dead";
	}
	return "unknown";
}

static void put_str(struct buf *b, const char *key, const char *s, size_t n)
{
	buf_printf(b, ",\"%s\":\"", key);
	buf_json_escape(b, s, n);
	buf_putc(b, '"');
}

void upstream_result_publish(struct upstream *u, struct forq *q, const char *queue, uint64_t id,
			     natsMsg *m)
{
	char text[FORQ_RESULT_TEXT_MAX] = "", subject[UPSTREAM_NAME_MAX + 16];
	uint16_t attempts = 0;
	uint64_t seq = 0;
	jsMsgMetaData *meta = NULL;
	struct buf b = {0};
	if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
		seq = meta->Sequence.Stream;
		jsMsgMetaData_Destroy(meta);
	}
	int st = forq_result_lookup(q, id, text, sizeof text, &attempts);
	const char *name = upstream_stream_name(u);
	buf_printf(&b, "{\"seq\":%llu,\"id\":%llu", (unsigned long long)seq,
		   (unsigned long long)id);
	put_str(&b, "task", natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
	put_str(&b, "status", status_name(st), strlen(status_name(st)));
	if (st)
		put_str(&b, st == FORQ_RESULT_DONE ? "result" : "error", text, strlen(text));
	buf_printf(&b, ",\"attempts\":%u", (unsigned)attempts);
	put_str(&b, "queue", queue, strlen(queue));
	put_str(&b, "stream", name, strlen(name));
	int r = buf_putc(&b, '}');
	upstream_results_subject(name, subject, sizeof subject);
	/* At most once: a line that cannot go (out of memory, a cut line; the
	 * connection closed) is dropped, as one nobody listens to is. */
	if (!r)
		natsConnection_Publish(upstream_conn(u), subject, b.data, (int)b.len);
	buf_free(&b);
}

static void on_result(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *ctx)
{
	struct upstream_watch *w = ctx;
	(void)nc;
	(void)sub;
	w->fn(w->ctx, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
	natsMsg_Destroy(m);
}

int upstream_watch_results(struct upstream_watch **wp, struct upstream *u,
			   void (*fn)(void *ctx, const char *line, size_t len), void *ctx,
			   char *err, size_t errlen)
{
	char subject[UPSTREAM_NAME_MAX + 16], t[300];
	struct upstream_watch *w = calloc(1, sizeof *w);
	if (!w) {
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	w->fn = fn;
	w->ctx = ctx;
	upstream_results_subject(upstream_stream_name(u), subject, sizeof subject);
	natsStatus s = natsConnection_Subscribe(&w->sub, upstream_conn(u), subject, on_result, w);
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(w->sub, -1, -1); /* a burst of results */
	if (s == NATS_OK)
		s = natsConnection_Flush(upstream_conn(u)); /* the server has it */
	if (s != NATS_OK) {
		upstream_status_text(s, t, sizeof t);
		errmsg_set(err, errlen, "subscribe to %s: %s", subject, t);
		upstream_watch_stop(w);
		return -EIO;
	}
	*wp = w;
	return 0;
}

void upstream_watch_stop(struct upstream_watch *w)
{
	if (!w)
		return;
	/* Drained: no callback runs once the wait is over (w goes next). */
	if (w->sub && natsSubscription_Drain(w->sub) == NATS_OK)
		natsSubscription_WaitForDrainCompletion(w->sub, 5000);
	natsSubscription_Destroy(w->sub);
	free(w);
}
