/* settings.h — what forq asks of a NATS JetStream stream and its shared
 * durable consumer, and the check of ones that exist against it. Pure: no
 * connection, no libnats types (stream.c fills the structs from the
 * server's answers), so that tests hold the rules without a server.
 *
 * forq never changes a stream or consumer it did not create: a setting that
 * disagrees is refused with err saying which, what it is and what forq
 * wants. */
#ifndef FORQ_UPSTREAM_SETTINGS_H
#define FORQ_UPSTREAM_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#define UPSTREAM_DURABLE "forq"  /* the shared durable pull consumer's name */
#define UPSTREAM_NAME_MAX 64     /* a stream name's bytes */
#define UPSTREAM_URLS_MAX 16

/* What forq wants. */
struct upstream_want {
	const char *stream;    /* stream name (upstream_name_check) */
	const char *subject;   /* the one subject tasks are published to */
	int replicas;          /* 0: whatever the stream has (1 when forq creates it) */
	int64_t ack_wait_ms;   /* forqd --lease-timeout */
	int64_t max_deliver;   /* forqd --max-attempts */
};

/* A stream as the server describes it. */
struct upstream_stream_have {
	int work_queue;               /* retention is WorkQueue */
	int replicas;
	const char *const *subjects;
	int nsubjects;
};

/* A consumer as the server describes it. */
struct upstream_consumer_have {
	int ack_explicit;             /* AckPolicy explicit */
	int64_t ack_wait_ms;
	int64_t max_deliver;
	const char *filter_subject;   /* NULL or "": none */
	int push;                     /* has a deliver subject (not a pull consumer) */
};

/* 0, or -EINVAL with err. */
int upstream_check_stream(const struct upstream_want *w, const struct upstream_stream_have *h,
			  char *err, size_t errlen);
int upstream_check_consumer(const struct upstream_want *w, const struct upstream_consumer_have *h,
			    char *err, size_t errlen);

/* A stream name: 1 to UPSTREAM_NAME_MAX letters, digits, '-' or '_'. 0 or
 * -EINVAL with err. */
int upstream_name_check(const char *name, char *err, size_t errlen);

/* The subject of stream `name`: "forq.NAME". */
void upstream_subject(const char *name, char *out, size_t cap);

/* Splits "nats://a:4222,nats://b:4222" into at most UPSTREAM_URLS_MAX URLs
 * (empty items refused): *urls is one malloc'd block the caller frees,
 * *n the count. 0, -EINVAL with err, or -ENOMEM. */
int upstream_split_urls(const char *list, char ***urls, int *n, char *err, size_t errlen);

#endif
