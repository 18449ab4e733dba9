/* nats_baseline.c — NATS JetStream as a baseline, through bare libnats: the
 * engine's ceiling on this machine for forq --upstream (issue 17). A
 * work-queue stream and one durable pull consumer shared by C forked
 * consumer processes; the producer publishes N 8-byte tasks asynchronously
 * (acknowledged by JetStream), each consumer fetches batches of B and acks
 * each message, as forqd's bridge does. Needs a running nats-server with
 * JetStream (nats-server -js) at --host:--port; the stream
 * (forq-bench-PID) is made for the run and deleted after. The line adds
 * publish_per_s, the producer's rate alone. */
#include "common.h"

#include <nats/nats.h>

#define DESIGN "nats-jetstream"
#define DURABLE "bench"
#define FETCH_WAIT_MS 200

struct run {
	const struct bench_opts *o;
	struct bench_tally *tally;
	atomic_uint_fast64_t *taken; /* shared: tasks consumed by all */
	char stream[64], subject[80], url[128];
};

static int fail(const char *who, const char *what, natsStatus s)
{
	fprintf(stderr, "%s: %s: %s (%s)\n", who, what, natsStatus_GetText(s),
		nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "");
	return 2;
}

static int consume(int idx, void *arg)
{
	struct run *r = arg;
	struct bench_tally *t = &r->tally[idx];
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	natsSubscription *sub = NULL;
	natsStatus s = natsConnection_ConnectTo(&nc, r->url);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	if (s != NATS_OK)
		return fail("consumer", "connect", s);
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = r->stream;
	so.Consumer = DURABLE;
	/* The producer makes the stream and its consumer after the fork. */
	while ((s = js_PullSubscribe(&sub, js, r->subject, DURABLE, NULL, &so, NULL)) != NATS_OK)
		nats_Sleep(20);
	while (atomic_load(r->taken) < r->o->tasks) {
		natsMsgList l = {0};
		s = natsSubscription_Fetch(&l, sub, r->o->batch, FETCH_WAIT_MS, NULL);
		if (s != NATS_OK && s != NATS_TIMEOUT) {
			natsMsgList_Destroy(&l);
			return fail("consumer", "fetch", s);
		}
		for (int i = 0; i < l.Count; i++) {
			uint64_t v = 0;
			if (natsMsg_GetDataLength(l.Msgs[i]) == (int)sizeof v)
				memcpy(&v, natsMsg_GetData(l.Msgs[i]), sizeof v);
			bench_take(t, v, r->o->tasks);
			natsMsg_Ack(l.Msgs[i], NULL);
		}
		atomic_fetch_add(r->taken, (uint64_t)l.Count);
		natsMsgList_Destroy(&l);
	}
	natsConnection_FlushTimeout(nc, 5000); /* the last acks */
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_Close();
	return 0;
}

/* The stream and its durable consumer, new for this run. */
static int make_stream(struct run *r, jsCtx *js)
{
	jsStreamConfig sc;
	const char *subj = r->subject;
	jsStreamConfig_Init(&sc);
	sc.Name = r->stream;
	sc.Subjects = &subj;
	sc.SubjectsLen = 1;
	sc.Retention = js_WorkQueuePolicy;
	sc.Storage = js_FileStorage;
	natsStatus s = js_AddStream(NULL, js, &sc, NULL, NULL);
	if (s != NATS_OK)
		return fail("producer", "stream", s);
	jsConsumerConfig cc;
	jsConsumerConfig_Init(&cc);
	cc.Durable = DURABLE;
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = (int64_t)30 * 1000000000;
	cc.MaxAckPending = -1;
	cc.FilterSubject = r->subject;
	if ((s = js_AddConsumer(NULL, js, r->stream, &cc, NULL, NULL)) != NATS_OK)
		return fail("producer", "consumer", s);
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o = {.tasks = 200000, .consumers = 1, .batch = 64, .timeout = 120,
			       .host = "127.0.0.1", .port = 4222};
	struct run r = {.o = &o};
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	int rc = 2;

	if (bench_parse(argc, argv, BENCH_F_BATCH | BENCH_F_SERVER, &o))
		return 2;
	snprintf(r.url, sizeof r.url, "nats://%s:%d", o.host, o.port);
	snprintf(r.stream, sizeof r.stream, "forq-bench-%d", (int)getpid());
	snprintf(r.subject, sizeof r.subject, "forqbench.%d", (int)getpid());
	r.taken = mmap(NULL, sizeof *r.taken, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	if (r.taken == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	/* Fork first: libnats' threads must not exist when the consumers fork. */
	if (bench_start(DESIGN, &o, &r.tally, consume, &r))
		return 2;
	natsStatus s = natsConnection_ConnectTo(&nc, r.url);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 4096;
	jo.PublishAsync.StallWait = 10000;
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, &jo);
	if (s != NATS_OK) {
		fail("producer", "connect", s);
		goto end;
	}
	if (make_stream(&r, js))
		goto end;
	double t0 = bench_now();
	for (uint64_t v = 1; v <= o.tasks && s == NATS_OK; v++)
		s = js_PublishAsync(js, r.subject, &v, (int)sizeof v, NULL);
	if (s == NATS_OK)
		s = js_PublishAsyncComplete(js, NULL);
	if (s != NATS_OK) {
		fail("producer", "publish", s);
		goto end;
	}
	double t_pub = bench_now() - t0;
	bool ok = bench_wait();
	double seconds = bench_now() - t0;
	ok = ok && bench_check(r.tally, o.consumers, o.tasks);
	alarm(0);
	printf("{\"design\":\"%s\",\"consumers\":%d,\"tasks\":%llu,\"batch\":%d,\"seconds\":%.6f,"
	       "\"tasks_per_s\":%.0f,\"publish_per_s\":%.0f,\"ok\":%s}\n",
	       DESIGN, o.consumers, (unsigned long long)o.tasks, o.batch, seconds,
	       (double)o.tasks / seconds, (double)o.tasks / t_pub, ok ? "true" : "false");
	rc = ok ? 0 : 1;
end:
	if (js)
		js_DeleteStream(js, r.stream, NULL, NULL);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_Close();
	if (rc == 2)
		bench_wait();
	return rc;
}
