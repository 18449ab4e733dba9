/* nats_producer.c — push tasks into a stream-backed forq queue from C, with
 * Debian's libnats alone: a task is its payload, published to the subject
 * forq.STREAM; a unique key is the Nats-Msg-Id header.
 *
 *   cc nats_producer.c $(pkg-config --cflags --libs libnats) -o nats_producer
 *   ./nats_producer nats://127.0.0.1:4222 jobs 1000 [KEY_PREFIX]
 *
 * Publishes "i*i+1" for i = 1..N, each acknowledged by JetStream before the
 * next (js_PublishAsync pipelines them, at the cost of a longer example),
 * and prints the first and last stream sequence and how many were
 * duplicates of a key the stream already held. The stream must exist:
 * forqd --upstream makes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s URLS STREAM N [KEY_PREFIX]\n", argv[0]);
		return 2;
	}
	const char *urls = argv[1], *key = argc > 4 ? argv[4] : NULL;
	long n = strtol(argv[3], NULL, 10);
	char subject[256], text[32], id[200];
	snprintf(subject, sizeof subject, "forq.%s", argv[2]);

	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	natsStatus s = natsConnection_ConnectTo(&nc, urls);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	uint64_t first = 0, last = 0;
	long dups = 0;
	for (long i = 1; i <= n && s == NATS_OK; i++) {
		natsMsg *m = NULL;
		jsPubAck *pa = NULL;
		jsErrCode jerr = 0;
		int len = snprintf(text, sizeof text, "%ld*%ld+1", i, i);
		s = natsMsg_Create(&m, subject, NULL, text, len);
		if (s == NATS_OK && key) {
			snprintf(id, sizeof id, "%s-%ld", key, i);
			s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
		}
		if (s == NATS_OK)
			s = js_PublishMsg(&pa, js, m, NULL, &jerr);
		if (s == NATS_OK) {
			first = first ? first : pa->Sequence;
			last = pa->Sequence;
			dups += pa->Duplicate;
		} else {
			fprintf(stderr, "nats_producer: task %ld: %s (JetStream error %d)\n", i,
				natsStatus_GetText(s), (int)jerr);
		}
		jsPubAck_Destroy(pa);
		natsMsg_Destroy(m);
	}
	if (s == NATS_OK)
		printf("published %ld tasks: sequences %llu to %llu, %ld duplicates\n", n,
		       (unsigned long long)first, (unsigned long long)last, dups);
	else if (!nc)
		fprintf(stderr, "nats_producer: cannot connect to %s: %s\n", urls,
			natsStatus_GetText(s));
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_Close();
	return s == NATS_OK ? 0 : 1;
}
