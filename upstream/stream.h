/* stream.h — forq's connection to NATS JetStream: connect (a URL list, a
 * token or a creds file from a file or the environment, never a flag
 * value), make sure the work-queue stream and its shared durable pull
 * consumer exist with forq's settings (settings.h: an existing one that
 * disagrees is refused, never changed), and publish tasks to the stream.
 *
 * The connection reconnects by itself, with backoff, for ever; its state and
 * the upstream counters are atomics any thread may read. Publishing is
 * thread-safe (forqd's HTTP thread and its bridge share one connection).
 * Functions return 0 or -errno with err set; they never print (connection
 * changes are logged: they happen on libnats' threads, with no caller). */
#ifndef FORQ_UPSTREAM_STREAM_H
#define FORQ_UPSTREAM_STREAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct upstream;

/* JetStream's answer to one asynchronous publish. */
struct upstream_ack {
	uint64_t ref;       /* upstream_publish_ref's; 0 for upstream_publish_async */
	uint64_t seq;       /* the stream sequence; 0: not published (why says why) */
	int duplicate;      /* its key (Nats-Msg-Id) was in the duplicate window */
	const char *why;
};

struct upstream_config {
	const char *urls;        /* "nats://HOST:PORT[,nats://HOST:PORT...]" */
	const char *stream;      /* stream name; its subject is forq.NAME */
	int replicas;            /* 0: the stream's own (1 when created here) */
	int64_t ack_wait_ms;     /* > 0: the durable consumer too (AckWait), else the stream only */
	int64_t max_deliver;     /* the consumer's MaxDeliver */
	const char *token;       /* NATS token (read from a file or the environment by the
				  * caller: never a flag value), or NULL */
	const char *creds_file;  /* NATS creds file, or NULL; not both */
	const char *client_name; /* shown by the server (forqd, forq push) */
	/* Asynchronous publishes (upstream_publish_async, _ref): called on a
	 * libnats thread for each JetStream answered (struct upstream_ack). */
	void (*acked)(void *ctx, const struct upstream_ack *a);
	void *acked_ctx;
};

/* What the upstream did, since it opened (the bridge counts its part). */
struct upstream_counters {
	atomic_int connected;
	atomic_uint_fast64_t fetched, acked, naked, terminated, in_progress_sent;
	atomic_uint_fast64_t reconnects, publish_errors;
};

/* Connects and makes sure the stream (and with ack_wait_ms the consumer)
 * exist as forq needs them. -EINVAL: bad settings or a stream that
 * disagrees; -EHOSTUNREACH: no server answered; -EIO: other. */
int upstream_open(struct upstream **up, const struct upstream_config *c, char *err,
		  size_t errlen);
/* Flushes what is buffered (acks, naks) for up to timeout_ms, closes; u is
 * freed by upstream_shutdown. */
void upstream_close(struct upstream *u, int timeout_ms);
/* Once every upstream of the process is closed: libnats' threads and
 * memory go, and the closed upstreams with them. */
void upstream_shutdown(void);

struct upstream_counters *upstream_counters(struct upstream *u);
int upstream_connected(struct upstream *u);

/* Publishes one task and waits for JetStream's ack. key (key_len bytes, at
 * most UPSTREAM_KEY_MAX; NULL: none) is the Nats-Msg-Id: a second publish
 * with it within the stream's duplicate window stores nothing and *dup
 * is 1. *seq gets the stream sequence. -EINVAL: key too long; -EIO. */
#define UPSTREAM_KEY_MAX 256
int upstream_publish(struct upstream *u, const void *data, size_t len, const char *key,
		     size_t key_len, uint64_t *seq, int *dup, char *err, size_t errlen);
/* Publishes without waiting (config.acked hears of each). 0 or -EIO. */
int upstream_publish_async(struct upstream *u, const void *data, size_t len, char *err,
			   size_t errlen);
/* Publishes without waiting, with key as upstream_publish's (NULL: none):
 * config.acked gets ref back with JetStream's answer. libnats gives no
 * answer of its own to a publish that was lost with a connection: a caller
 * that waits for ref needs its own time limit. Thread-safe. 0, -EINVAL (key
 * too long), -EAGAIN (4096 in flight) or -EIO. */
int upstream_publish_ref(struct upstream *u, const void *data, size_t len, const char *key,
			 size_t key_len, uint64_t ref, char *err, size_t errlen);
/* Waits until every asynchronous publish is answered: 0, or -ETIMEDOUT. */
int upstream_publish_wait(struct upstream *u, int timeout_ms);

#endif
