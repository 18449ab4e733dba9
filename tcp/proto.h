/* proto.h — forq's line-based TCP protocol: a pure, incremental parser of
 * requests and replies and the formatters of both. No I/O, no allocation in
 * the parsers; the formatters append to a struct buf.
 *
 * Wire format (tcp/PROTOCOL.md has the full table). Lines end in "\r\n";
 * a bare "\n" is accepted. Command words and keywords are case-insensitive;
 * words are separated by one or more spaces or tabs; empty lines are ignored.
 *
 *   GET_TASK [WAIT <ms>] [queue=A[,B...]]      -> TASK block | NONE
 *   GET_TASKS <n> [WAIT <ms>] [queue=A[,B...]] -> TASKS <k>, then k TASK blocks (0<=k<=n)
 *   RESULT <id> [<value>]            -> OK | ERR not-leased
 *   FAIL <id> <reason>               -> OK | ERR not-leased   (permanent failure)
 *   RETRY <id> <reason>              -> OK | ERR not-leased   (transient: retried)
 *   PUT [high|normal|low] [delay=MS] [key=KEY [window=MS]] [queue=NAME] <bytes>
 *                                    -> OK <id> [duplicate]   (then <payload>\r\n)
 *   TOUCH <id>                       -> OK | ERR not-leased
 *   PING -> PONG     STATS [queue] -> one JSON line     EXIT|QUIT -> BYE, close
 *   AUTH <token>                     -> OK | ERR unauthorized, close
 *   INFO                             -> INFO <key>=<value> ...
 *   RESULTS <k>, then k items        -> RESULTS <applied> <not_leased>  (one reply)
 *   PAUSE <queue> | RESUME <queue>   -> OK | ERR unknown-queue | ERR forbidden  (admin)
 *   PURGE <queue>                    -> OK <purged> | ERR unknown-queue | ERR forbidden
 *   CANCEL <queue> <id>              -> OK | ERR not-queued | ERR running | ERR unknown-queue
 *   DEAD [queue]                     -> one JSON line (metrics/dead_json.h) | ERR unknown-queue
 *   RETRY_DEAD <queue> ALL|<id>...   -> OK <requeued> | ERR not-dead | ERR unknown-queue
 *                                       | ERR forbidden  (admin)
 *   anything else                    -> ERR <word>
 *
 * A TASK block is "TASK <id> <attempt> <bytes>\r\n<payload>\r\n": binary-safe,
 * length-prefixed; attempt is 1 for the first delivery. RESULT's value and
 * FAIL's and RETRY's reason are the rest of the line after the single space
 * that follows the id, verbatim (so they cannot hold a newline and are bounded
 * by max_line). AUTH's token is the rest of the line after the blanks that
 * follow AUTH, verbatim.
 *
 * RESULTS batch: "RESULTS <k>\r\n" (0 <= k <= PROTO_RESULTS_MAX), then k items
 * "<RESULT|FAIL|RETRY> <id> <bytes>\r\n<value>\r\n" (a bare "\n" is accepted
 * for either), values binary-safe. The parser returns the RESULTS line itself
 * (cmd PROTO_RESULTS, count k) and then each item as its own request (cmd
 * PROTO_RESULT, _FAIL or _RETRY, item 1; item_last 1 on the k-th), so the
 * server answers one "RESULTS <applied> <not_leased>" for the batch (at once
 * for k = 0, the probe by which a client learns that forqd has the form). A
 * value over max_value is cut to it: the item is returned with its first
 * max_value bytes as soon as they are in, and the rest is read and dropped,
 * never buffered. A bad RESULTS line (k missing, not a number, over the cap)
 * or a malformed item (header words, id, length, line end, an over-long
 * header) loses the framing: the parser returns the error, then drops
 * everything; proto_parser_lost() says so and the server closes.
 *
 * Server loop, one struct proto_parser per connection:
 *
 *	for (;;) {
 *		rc = proto_parse(&c->parser, in, n, &req, &used);
 *		if (rc == PROTO_PARSED)  handle(&req)          // req.text points into in
 *		else if (rc < 0)          proto_format_err(out, rc)
 *		drop `used` bytes from the front of in; n -= used
 *		if (rc == PROTO_MORE)     break                 // read more, then again
 *	}
 *
 * Every malformed input is answered by one negative enum proto_err, and the
 * parser drops a definite amount so the connection goes on: the bad line; for
 * an over-long line, everything through its newline (reported as soon as
 * max_line bytes arrived without one); for a PUT over max_payload, the
 * announced payload and its line end (reported at once, never buffered). The
 * parts that have not arrived yet are dropped by later calls: the parser keeps
 * that state, which is why it is per connection. A PUT line refused for its
 * own words (bad-length, bad-priority, bad-args) announces no usable length,
 * so a payload the client sends after it is read as command lines.
 *
 * Memory: the caller's input buffer must be able to hold proto_max_request()
 * bytes. With fewer bytes buffered the parser may ask for more; with that many
 * it always makes progress (a request, an error, or consumed > 0).
 */
#ifndef FORQ_PROTO_H
#define FORQ_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "forq.h" /* enum forq_prio */

#define PROTO_MAX_LINE_DEFAULT 1024 /* bytes of a command line, "\r\n" included */
#define PROTO_MIN_LINE 64           /* smallest max_line accepted: any header fits */
/* Bytes a formatter adds to its text, at most (proto.c asserts them): a
 * RESULT/FAIL/RETRY line around its value or reason, a TASK block around its
 * payload. */
#define PROTO_ID_TEXT_OVERHEAD 30   /* "RESULT <20 digits> " + "\r\n" */
#define PROTO_TASK_OVERHEAD 51      /* "TASK <20> <10> <10>\r\n" + "\r\n" */
#define PROTO_ITEM_OVERHEAD 52      /* "RESULT <20> <20>\r\n" + "\r\n" */
#define PROTO_RESULTS_MAX 65536     /* most items in one RESULTS batch */
#define PROTO_MAX_VALUE 65536       /* a RESULTS item's value forqd keeps (its
				     * handlers' output limit); longer ones are cut */
#define PROTO_QUEUES_MAX 16         /* names in one GET_TASK(S) queue= list */

struct proto_limits {
	size_t max_line;    /* longest line, terminator included (>= PROTO_MIN_LINE) */
	size_t max_payload; /* largest PUT / TASK payload, in bytes */
	size_t max_value;   /* RESULTS item values are cut to this; 0: max_payload */
};

enum proto_cmd {
	PROTO_GET_TASK,
	PROTO_GET_TASKS,
	PROTO_RESULT,
	PROTO_FAIL,
	PROTO_PUT,
	PROTO_TOUCH,
	PROTO_PING,
	PROTO_STATS,
	PROTO_EXIT,
	PROTO_RETRY,
	PROTO_AUTH,
	PROTO_INFO,
	PROTO_RESULTS, /* a batch header: its items come as RESULT/FAIL/RETRY */
	PROTO_PAUSE,   /* queue controls: text = the queue's name */
	PROTO_RESUME,
	PROTO_PURGE,
	PROTO_CANCEL,  /* text = the queue's name, id */
	PROTO_DEAD,    /* queue = the name, or NULL (the default queue) */
	PROTO_RETRY_DEAD, /* queue = the name; text = the ids (proto_ids_next),
			   * count = how many, 0 for ALL */
	PROTO_CMD_COUNT
};

/* Return values of the parsers: >= 0 are these, < 0 an enum proto_err. */
enum proto_status {
	PROTO_MORE = 0,    /* need more input (after dropping *consumed bytes) */
	PROTO_PARSED = 1, /* *req (or *rep) filled */
};

/* Errors, each answered as "ERR <word>". The parsers return the first group;
 * the rest are for the server to send (named here so each word exists once). */
enum proto_err {
	PROTO_E_UNKNOWN_COMMAND = -1,        /* unknown-command */
	PROTO_E_BAD_ARGS = -2,               /* bad-args: missing or extra words */
	PROTO_E_BAD_ID = -3,                 /* bad-id: not a decimal uint64 */
	PROTO_E_BAD_COUNT = -4,              /* bad-count: GET_TASKS n, RESULTS k out of range */
	PROTO_E_BAD_WAIT = -5,               /* bad-wait: ms not 0..2^31-1 */
	PROTO_E_BAD_PRIORITY = -6,           /* bad-priority: not high/normal/low */
	PROTO_E_BAD_LENGTH = -7,             /* bad-length: PUT bytes not a number */
	PROTO_E_LINE_TOO_LONG = -8,          /* line-too-long: max_line, no newline */
	PROTO_E_PAYLOAD_TOO_LARGE = -9,      /* payload-too-large: bytes > max_payload */
	PROTO_E_BAD_PAYLOAD_TERMINATOR = -10, /* bad-payload-terminator: no CRLF after */
	PROTO_E_BAD_REPLY = -11,             /* bad-reply: proto_parse_reply only */
	/* server side */
	PROTO_E_NOT_LEASED = -12,            /* not-leased: id not held by this conn */
	PROTO_E_QUEUE_FULL = -13,            /* queue-full: PUT found the lane full */
	PROTO_E_DRAINING = -14,              /* draining: the queue takes no new tasks */
	PROTO_E_INTERNAL = -15,              /* internal: the server failed; see its log */
	PROTO_E_UNAUTHORIZED = -16,          /* unauthorized: AUTH needed or wrong; closes */
	PROTO_E_TOO_MANY_ERRORS = -17,       /* too-many-errors: garbage; closes */
	PROTO_E_TOO_MANY_CONNECTIONS = -18,  /* too-many-connections: at the limit; closes */
	PROTO_E_UNKNOWN_QUEUE = -19,         /* unknown-queue: no queue of that name */
	PROTO_E_FORBIDDEN = -20,             /* forbidden: an admin command without the
					      * admin token (or, with none set, from
					      * beyond loopback); the connection stays */
	PROTO_E_NOT_QUEUED = -21,            /* not-queued: CANCEL of a task not queued */
	PROTO_E_RUNNING = -22,               /* running: CANCEL of a task that runs */
	PROTO_E_BAD_DELAY = -23,             /* bad-delay: PUT delay=MS not 0..a year in ms */
	PROTO_E_BAD_KEY = -24,               /* bad-key: PUT key= empty or over 94 bytes,
					      * window= without key= or not 0..a year */
	PROTO_E_NOT_DURABLE = -25,           /* not-durable: PUT's task not on disk in time */
	PROTO_E_NOT_SUPPORTED = -26,         /* not-supported: PUT delay= or a priority other
					      * than normal to a queue backed by a stream */
	PROTO_E_NOT_PUBLISHED = -27,         /* not-published: the stream did not acknowledge
					      * the PUT's task (it may still hold it) */
	PROTO_E_NOT_DEAD = -28,              /* not-dead: RETRY_DEAD of an id that is no
					      * dead letter (nothing re-queued) */
	PROTO_E_COUNT = 28
};

/* One request. Fields not used by cmd hold their defaults (0, -1, FORQ_NORMAL,
 * NULL). `text` points into the caller's buffer: valid until it drops bytes. */
struct proto_req {
	enum proto_cmd cmd;
	uint64_t id;       /* RESULT, FAIL, RETRY, TOUCH, CANCEL */
	uint32_t count;    /* GET_TASKS: at most this many (>= 1); RESULTS: items (>= 0) */
	int32_t wait_ms;   /* GET_TASK(S) WAIT, in ms; -1 when absent (don't wait) */
	int prio;          /* PUT: enum forq_prio, FORQ_NORMAL when absent */
	uint64_t delay_ms; /* PUT delay=MS: start no sooner; 0 when absent */
	const char *key;   /* PUT key=KEY (in the caller's buffer), NULL when absent */
	size_t key_len;
	uint64_t window_ms; /* PUT window=MS (with key=) */
	const char *queue; /* PUT queue=NAME, STATS NAME: a name; GET_TASK(S)
			    * queue=A[,B...]: the list (proto_queue_next reads it);
			    * NULL when absent (the default queue) */
	size_t queue_len;
	const char *text;  /* RESULT value, FAIL/RETRY reason, AUTH token, PUT payload,
			    * PAUSE/RESUME/PURGE queue name */
	size_t text_len;
	int item;          /* RESULT/FAIL/RETRY: 1 if an item of a RESULTS batch */
	int item_last;     /* 1 on a batch's last item: the batch's reply is due */
};

/* Per-connection parser state. Set up with proto_parser_init; no release. */
struct proto_parser {
	/* public, read-only */
	struct proto_limits lim;
	/* private */
	int state;     /* enum in proto.c: parsing, skipping payload or line, in a batch */
	uint64_t skip; /* payload bytes still to drop while skipping a payload */
	uint32_t left; /* RESULTS items still to come */
};

/* Returns 0, or -EINVAL if max_line < PROTO_MIN_LINE or the sum of the limits
 * overflows. This function changes nothing on failure. */
int proto_parser_init(struct proto_parser *p, const struct proto_limits *lim);

/* Bytes an input buffer needs so that any valid request fits:
 * max_line + max(max_payload, max_value) + 2. */
size_t proto_max_request(const struct proto_limits *lim);

/* 1 after a RESULTS batch lost its framing: close the connection. */
int proto_parser_lost(const struct proto_parser *p);
/* 1 between a RESULTS line and the end of its last item (its cut tail
 * included): the bytes dropped there are a value's, not junk. */
int proto_parser_in_batch(const struct proto_parser *p);

/* Parses at most one request from buf[0..len). Hot path: no allocation, no
 * syscall. Always sets *consumed (0..len): the bytes to drop from the front of
 * buf, whatever the return value. Returns PROTO_PARSED with *req filled,
 * PROTO_MORE when more input is needed, or a negative enum proto_err to answer
 * with ERR. Never reads outside buf[0..len). */
int proto_parse(struct proto_parser *p, const char *buf, size_t len, struct proto_req *req,
		size_t *consumed);

/* Reads the next name of a queue= list at *at (up to end) into *name, *len
 * and moves *at past it and its comma. Returns 1, 0 at the end, or -1 for an
 * empty name (",a", "a,,b", "a,"). */
int proto_queue_next(const char **at, const char *end, const char **name, size_t *len);

/* Reads the next id of a RETRY_DEAD list at *at (up to end) into *id and
 * moves *at past it. Returns 1, 0 at the end, or -1 for a word that is no
 * id (1..2^64-1). */
int proto_ids_next(const char **at, const char *end, uint64_t *id);

/* The command's wire word ("GET_TASK", ..., "EXIT", "INFO"); "?" when out of
 * range. The table in proto.c is the one place each word is spelled. */
const char *proto_cmd_word(enum proto_cmd c);
/* The same word in lower case ("get_task"); "?" when out of range. */
const char *proto_cmd_name(enum proto_cmd c);

/* The ERR word of a negative enum proto_err ("unknown-command"); "?" otherwise. */
const char *proto_err_word(int err);

/* Replies, as seen by a client (the remote worker, the CLI). */
enum proto_reply_kind {
	PROTO_REP_TASK,  /* id, attempt, text = payload */
	PROTO_REP_TASKS, /* count: k TASK replies follow */
	PROTO_REP_NONE,
	PROTO_REP_OK,    /* plain OK */
	PROTO_REP_OK_ID, /* id */
	PROTO_REP_ERR,   /* text = the word (may be empty) */
	PROTO_REP_PONG,
	PROTO_REP_BYE,
	PROTO_REP_STATS, /* text = the JSON object, a line starting with '{' */
	PROTO_REP_INFO,  /* info */
	PROTO_REP_RESULTS, /* count = applied, not_leased */
};

/* INFO's reply: "INFO lease_timeout_ms=<ms> max_payload=<bytes>
 * batch_max=<n>", keys in any order; a client ignores keys it does not know
 * and reads 0 for one that is missing. */
struct proto_info {
	uint32_t lease_timeout_ms; /* a worker's time to answer a task (TOUCH resets it) */
	uint32_t max_payload;      /* largest PUT / TASK payload, bytes */
	uint32_t batch_max;        /* most tasks one GET_TASKS hands out */
};

struct proto_reply {
	enum proto_reply_kind kind;
	uint64_t id;
	uint32_t attempt;
	uint32_t count;
	uint32_t not_leased; /* PROTO_REP_RESULTS */
	int duplicate;       /* PROTO_REP_OK_ID: "OK <id> duplicate" */
	const char *text; /* points into the caller's buffer */
	size_t text_len;
	struct proto_info info; /* PROTO_REP_INFO */
};

/* Parses at most one reply from buf[0..len), using the same limits (a client
 * wanting big STATS lines sets a larger max_line). Stateless: returns
 * PROTO_PARSED with *rep filled and *consumed set, PROTO_MORE, or
 * PROTO_E_BAD_REPLY / _LINE_TOO_LONG / _PAYLOAD_TOO_LARGE, after which the
 * stream cannot be trusted: close the connection. */
int proto_parse_reply(const struct proto_limits *lim, const char *buf, size_t len,
		      struct proto_reply *rep, size_t *consumed);

/* Formatters: append one whole reply (or request) to out. Each returns 0,
 * -ENOMEM, or -EINVAL where noted; on failure out is unchanged. */
int proto_format_task(struct buf *out, uint64_t id, unsigned attempt, const void *payload,
		      size_t len);                        /* TASK block */
int proto_format_tasks(struct buf *out, uint32_t k);      /* "TASKS <k>\r\n" */
int proto_format_none(struct buf *out);                   /* "NONE\r\n" */
int proto_format_ok(struct buf *out);                     /* "OK\r\n" */
int proto_format_ok_id(struct buf *out, uint64_t id);     /* "OK <id>\r\n" */
/* "OK <id> duplicate\r\n": PUT key= found a live task holding the key. */
int proto_format_ok_duplicate(struct buf *out, uint64_t id);
int proto_format_err(struct buf *out, int err);           /* "ERR <word>\r\n"; -EINVAL
							     if err is no proto_err */
int proto_format_pong(struct buf *out);                   /* "PONG\r\n" */
int proto_format_bye(struct buf *out);                    /* "BYE\r\n" */
/* "<json>\r\n"; -EINVAL if json holds '\r' or '\n' or does not start with '{'. */
int proto_format_stats(struct buf *out, const char *json, size_t len);
int proto_format_info(struct buf *out, const struct proto_info *info); /* "INFO ...\r\n" */
/* "RESULTS <applied> <not_leased>\r\n": a batch's one reply. */
int proto_format_results_reply(struct buf *out, uint32_t applied, uint32_t not_leased);

/* Client side: the request lines. wait_ms < 0 leaves WAIT out. -EINVAL if a
 * RESULT value, FAIL/RETRY reason or AUTH token holds '\r' or '\n', or a
 * reason or token is empty. */
/* queues: NULL or "" for the default queue, else "A[,B...]" (sent as
 * queue=A,B; -EINVAL if it holds a blank, '\r' or '\n'). */
int proto_format_get_task(struct buf *out, int32_t wait_ms, const char *queues);
int proto_format_get_tasks(struct buf *out, uint32_t n, int32_t wait_ms, const char *queues);
int proto_format_result(struct buf *out, uint64_t id, const char *value, size_t len);
int proto_format_fail(struct buf *out, uint64_t id, const char *reason, size_t len);
int proto_format_retry(struct buf *out, uint64_t id, const char *reason, size_t len);
int proto_format_auth(struct buf *out, const char *token, size_t len);
int proto_format_put(struct buf *out, enum forq_prio prio, const void *payload, size_t len);
int proto_format_touch(struct buf *out, uint64_t id);
/* A RESULTS batch: "RESULTS <k>\r\n" (-EINVAL if k > PROTO_RESULTS_MAX), then
 * k items: c is PROTO_RESULT, _FAIL or _RETRY (else -EINVAL), the value any
 * bytes ("<word> <id> <len>\r\n<value>\r\n"). */
int proto_format_results(struct buf *out, uint32_t k);
int proto_format_item(struct buf *out, enum proto_cmd c, uint64_t id, const void *value,
		      size_t len);
/* PROTO_PING, PROTO_STATS, PROTO_EXIT or PROTO_INFO as a bare line; -EINVAL
 * for others. */
int proto_format_simple(struct buf *out, enum proto_cmd c);
/* "PAUSE|RESUME|PURGE <queue>\r\n"; -EINVAL for another command or a name
 * that is empty or holds a blank, '\r' or '\n'. */
int proto_format_queue_cmd(struct buf *out, enum proto_cmd c, const char *name, size_t len);
/* "CANCEL <queue> <id>\r\n"; -EINVAL for a name as above. */
int proto_format_cancel(struct buf *out, const char *name, size_t len, uint64_t id);

#endif
