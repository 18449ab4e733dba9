/* proto_words.h — what proto.c (requests), proto_reply.c (replies) and
 * proto_format.c (formatters) share: each wire word once, and the scanning
 * helpers. Private to tcp/'s protocol files. */
#ifndef FORQ_TCP_PROTO_WORDS_H
#define FORQ_TCP_PROTO_WORDS_H

#include <stddef.h>
#include <stdint.h>

/* Each wire word once: every parser, formatter, metrics label and log line
 * uses these (the server and forqd through proto_cmd_word). */
#define CMD_GET_TASK "GET_TASK"
#define CMD_GET_TASKS "GET_TASKS"
#define CMD_RESULT "RESULT"
#define CMD_FAIL "FAIL"
#define CMD_RETRY "RETRY"
#define CMD_PUT "PUT"
#define CMD_TOUCH "TOUCH"
#define CMD_PING "PING"
#define CMD_STATS "STATS"
#define CMD_EXIT "EXIT"
#define CMD_QUIT "QUIT" /* EXIT's second name */
#define CMD_AUTH "AUTH"
#define CMD_INFO "INFO"
#define CMD_PAUSE "PAUSE"   /* queue controls: the admin's, one queue name each */
#define CMD_RESUME "RESUME"
#define CMD_PURGE "PURGE"
#define CMD_CANCEL "CANCEL" /* a queued task: queue name and id */
#define CMD_DEAD "DEAD"     /* a queue's dead letters, as one JSON line */
#define CMD_RETRY_DEAD "RETRY_DEAD" /* re-queue dead letters: queue, then ids or ALL */
#define KW_ALL "ALL"        /* RETRY_DEAD <queue> ALL */
#define REP_TASK "TASK"
#define REP_TASKS "TASKS"
#define REP_NONE "NONE"
#define REP_OK "OK"
#define REP_ERR "ERR"
#define REP_PONG "PONG"
#define REP_BYE "BYE"
#define REP_INFO CMD_INFO
#define KW_WAIT "WAIT"
#define PROTO_PUT_DELAY "delay=" /* PUT's delay option: delay=MS */
#define PROTO_PUT_KEY "key="     /* PUT's unique key: key=KEY */
#define PROTO_PUT_WINDOW "window=" /* with key=: held MS after its task ends */
#define PROTO_OPT_QUEUE "queue="  /* PUT's queue, GET_TASK(S)'s list: queue=A[,B...] */
#define REP_DUPLICATE "duplicate" /* OK <id> duplicate: the key's task, nothing pushed */
#define PROTO_KEY_MAX 94         /* forq.h's FORQ_KEY_MAX */
#define PROTO_DELAY_MAX_MS (366ull * 24 * 3600 * 1000) /* forq.h's FORQ_DELAY_MAX_MS */
#define KEY_LEASE_TIMEOUT "lease_timeout_ms"
#define KEY_MAX_PAYLOAD "max_payload"
#define KEY_BATCH_MAX "batch_max"
#define CMD_RESULTS "RESULTS" /* the batch; its reply is "RESULTS <applied> <not_leased>" */
#define REP_RESULTS CMD_RESULTS

#define CRLF "\r\n"

/* Indexed by enum forq_prio: "high", "normal", "low". */
#define NPRIO 3
extern const char *const proto__prio_words[NPRIO];

/* Words of one line: at most MAX_WORDS kept, `more` says others follow. */
#define MAX_WORDS 7 /* PUT with a priority and four options */
struct words {
	size_t n;
	int more;
	const char *w[MAX_WORDS];
	size_t len[MAX_WORDS];
};

int proto__is_blank(char c);
void proto__split(const char *s, size_t n, struct words *ws);
/* Case-insensitive (ASCII only, locale-free) match of w[0..n) against lit. */
int proto__word_is(const char *w, size_t n, const char *lit);
/* Plain decimal, no sign, at most max. Returns 0 or -1. */
int proto__parse_u64(const char *w, size_t n, uint64_t max, uint64_t *v);
/* Finds a plen-byte payload at b[0..avail) and its "\r\n" or "\n". Returns 1
 * with *end = bytes used, 0 if more input is needed, -1 for a bad terminator
 * (then *end = plen, where the terminator should be). */
int proto__payload_end(const char *b, size_t avail, size_t plen, size_t *end);
/* Finds the line at b[0..avail): *hdr = bytes through '\n', *n = length
 * without terminator. Returns 1, 0 if more is needed, or LINE_TOO_LONG. */
int proto__find_line(const char *b, size_t avail, size_t max_line, size_t *hdr, size_t *n);

#endif
