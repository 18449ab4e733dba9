/* fuzz_proto.c — libFuzzer harness for tcp/proto.c.
 *
 * Input: byte 0 and 1 pick the limits, bytes 2..3 seed the fragment sizes,
 * the rest is the stream a client sends. Checked for every input:
 *   - consumed <= len, a request lies inside the consumed bytes, error words
 *     are named, and a buffer of proto_max_request() bytes always progresses;
 *   - feeding the stream in random fragments through a bounded, exactly sized
 *     connection buffer gives the same events as feeding it all at once;
 *   - a parsed request, formatted again by the client formatters, parses back
 *     to the same fields (a RESULTS item as a batch of one);
 *   - the reply parser, fed the same stream, stays in bounds.
 * ASan catches reads outside the buffers: each call gets an exact-size copy.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ibase -Icore/include \
 *       -Itcp tests/fuzz/fuzz_proto.c tcp/proto.c tcp/proto_reply.c tcp/proto_format.c \
 *       base/buf.c -o fuzz_proto
 *   ./fuzz_proto -max_total_time=20 tests/fuzz/corpus/proto
 * Without libFuzzer, -DPROTO_FUZZ_MAIN adds a main that runs the files named
 * on the command line once each (a corpus regression test).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                              \
			abort();                                                     \
		}                                                                    \
	} while (0)

static uint32_t rng_next(uint32_t *s)
{
	uint32_t x = *s; /* xorshift32; the state is never 0 */
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* Checks one request against the limits and the consumed bytes, re-formats
 * it and parses it back. */
static void check_request(const struct proto_limits *lim, const char *buf, size_t used,
			  const struct proto_req *req)
{
	struct buf b = BUF_INIT;
	struct proto_parser p;
	struct proto_req again;
	size_t used2;
	char qs[1100] = "";
	int r = 0;

	CHECK(used > 0);
	CHECK((unsigned)req->cmd < PROTO_CMD_COUNT);
	if (req->cmd == PROTO_RESULT || req->cmd == PROTO_FAIL || req->cmd == PROTO_RETRY ||
	    req->cmd == PROTO_PUT || req->cmd == PROTO_AUTH || req->cmd == PROTO_PAUSE ||
	    req->cmd == PROTO_RESUME || req->cmd == PROTO_PURGE || req->cmd == PROTO_CANCEL) {
		CHECK(req->text != NULL);
		CHECK(req->text >= buf && req->text + req->text_len <= buf + used);
	} else {
		CHECK(req->text == NULL && req->text_len == 0);
	}
	if (req->cmd == PROTO_PUT)
		CHECK(req->text_len <= lim->max_payload);
	if (req->queue) /* a name or list on the line: never empty, never a blank */
		CHECK(req->queue >= buf && req->queue + req->queue_len <= buf + used &&
		      req->queue_len > 0 && !memchr(req->queue, ' ', req->queue_len) &&
		      (req->cmd == PROTO_PUT || req->cmd == PROTO_STATS ||
		       req->cmd == PROTO_GET_TASK || req->cmd == PROTO_GET_TASKS));
	else
		CHECK(req->queue_len == 0);
	if (req->item)
		CHECK(req->text_len <= lim->max_value && req->cmd != PROTO_AUTH);
	CHECK(!req->item_last || req->item);
	if (req->cmd == PROTO_GET_TASKS)
		CHECK(req->count >= 1);
	CHECK(req->wait_ms >= -1);

	switch (req->cmd) {
	case PROTO_GET_TASK:
	case PROTO_GET_TASKS: /* the queue list as a string, then formatted back */
		if (req->queue && req->queue_len < sizeof qs) {
			memcpy(qs, req->queue, req->queue_len);
			qs[req->queue_len] = '\0';
		}
		r = req->queue && (req->queue_len >= sizeof qs ||
				   memchr(req->queue, '\0', req->queue_len)) ? -EINVAL
		    : req->cmd == PROTO_GET_TASK ? proto_format_get_task(&b, req->wait_ms, qs)
						 : proto_format_get_tasks(&b, req->count, req->wait_ms, qs);
		break;
	case PROTO_RESULT: r = proto_format_result(&b, req->id, req->text, req->text_len); break;
	case PROTO_FAIL: r = proto_format_fail(&b, req->id, req->text, req->text_len); break;
	case PROTO_RETRY: r = proto_format_retry(&b, req->id, req->text, req->text_len); break;
	case PROTO_AUTH: r = -EINVAL; break; /* its blanks are not kept */
	case PROTO_RESULTS: r = proto_format_results(&b, req->count); break;
	case PROTO_PUT:
		r = proto_format_put(&b, (enum forq_prio)req->prio, req->text, req->text_len);
		break;
	case PROTO_TOUCH: r = proto_format_touch(&b, req->id); break;
	case PROTO_PAUSE:
	case PROTO_RESUME:
	case PROTO_PURGE: r = proto_format_queue_cmd(&b, req->cmd, req->text, req->text_len); break;
	case PROTO_CANCEL: r = proto_format_cancel(&b, req->text, req->text_len, req->id); break;
	default: r = proto_format_simple(&b, req->cmd); break;
	}
	if (req->item) { /* an item: a batch of one */
		buf_reset(&b);
		r = proto_format_results(&b, 1);
		if (!r)
			r = proto_format_item(&b, req->cmd, req->id, req->text, req->text_len);
	}
	if (r == 0) { /* -EINVAL: a CR inside a RESULT value, which is fine to refuse */
		/* One byte more: the original line may have ended in a bare LF. */
		struct proto_limits lim2 = {lim->max_line + 1, lim->max_payload, lim->max_value};
		const char *at = b.data;
		size_t left = b.len;
		CHECK(proto_parser_init(&p, &lim2) == 0);
		if (req->item) {
			CHECK(proto_parse(&p, at, left, &again, &used2) == PROTO_PARSED);
			CHECK(again.cmd == PROTO_RESULTS && again.count == 1);
			at += used2;
			left -= used2;
		}
		CHECK(proto_parse(&p, at, left, &again, &used2) == PROTO_PARSED);
		CHECK(used2 == left);
		CHECK(again.item == req->item && again.item_last == req->item);
		CHECK(again.cmd == req->cmd && again.id == req->id && again.count == req->count);
		CHECK(again.wait_ms == req->wait_ms && again.prio == req->prio);
		CHECK(again.text_len == req->text_len);
		CHECK(req->text_len == 0 || memcmp(again.text, req->text, req->text_len) == 0);
		if (req->cmd == PROTO_GET_TASK || req->cmd == PROTO_GET_TASKS)
			CHECK(again.queue_len == req->queue_len &&
			      (!req->queue_len ||
			       memcmp(again.queue, req->queue, req->queue_len) == 0));
	}
	buf_free(&b);
}

/* Runs one parse on an exact-size heap copy of buf[0..len), checks the
 * invariants and appends the event to ev. Returns rc; *used is set. */
static int step(struct proto_parser *p, const char *buf, size_t len, size_t *used,
		struct buf *ev)
{
	char *copy = malloc(len ? len : 1);
	struct proto_req req;
	int rc;

	CHECK(copy != NULL);
	if (len)
		memcpy(copy, buf, len);
	rc = proto_parse(p, copy, len, &req, used);
	CHECK(*used <= len);
	if (rc == PROTO_PARSED) {
		check_request(&p->lim, copy, *used, &req);
		CHECK(buf_printf(ev, "%s %llu %u %d %d %zu:", proto_cmd_name(req.cmd),
				 (unsigned long long)req.id, req.count, req.wait_ms, req.prio,
				 req.text_len) == 0);
		CHECK(buf_append(ev, req.text, req.text_len) == 0);
		CHECK(buf_putc(ev, '\n') == 0);
	} else if (rc < 0) {
		/* The parser's own refusals: the first ten, and PUT's options. */
		CHECK(rc >= PROTO_E_BAD_PAYLOAD_TERMINATOR || rc == PROTO_E_BAD_DELAY ||
		      rc == PROTO_E_BAD_KEY);
		CHECK(buf_printf(ev, "ERR %s\n", proto_err_word(rc)) == 0);
	} else {
		CHECK(rc == PROTO_MORE);
		CHECK(req.text == NULL);
		/* Progress: only a buffer smaller than the bound may stall. */
		CHECK(*used > 0 || len < proto_max_request(&p->lim));
	}
	free(copy);
	return rc;
}

/* The reply parser on the same bytes: bounds and progress only. */
static void fuzz_replies(const struct proto_limits *lim, const char *data, size_t size)
{
	size_t off = 0;
	while (off < size) {
		size_t len = size - off, used;
		char *copy = malloc(len);
		struct proto_reply rep;
		CHECK(copy != NULL);
		memcpy(copy, data + off, len);
		int rc = proto_parse_reply(lim, copy, len, &rep, &used);
		CHECK(used <= len);
		if (rc == PROTO_PARSED) {
			CHECK(used > 0);
			CHECK(rep.text == NULL ||
			      (rep.text >= copy && rep.text + rep.text_len <= copy + used));
		}
		free(copy);
		if (rc != PROTO_PARSED)
			break; /* a client closes on an error, waits on MORE */
		off += used;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_limits lim;
	struct proto_parser p;
	struct buf whole = BUF_INIT, frag = BUF_INIT;
	uint32_t seed;
	const char *in;
	size_t len, off, used;
	int rc;

	if (size < 4)
		return 0;
	lim.max_line = PROTO_MIN_LINE + data[0] % 128;
	lim.max_payload = data[1] % 200;
	lim.max_value = data[1] & 1 ? 0 : 1 + data[0] % 40; /* 0: max_payload */
	seed = ((uint32_t)data[2] << 8 | data[3]) + 1;
	in = (const char *)data + 4;
	len = size - 4;

	/* All at once. */
	CHECK(proto_parser_init(&p, &lim) == 0);
	off = 0;
	do {
		rc = step(&p, in + off, len - off, &used, &whole);
		off += used;
	} while (rc != PROTO_MORE);

	/* Random fragments into a bounded connection buffer. */
	size_t cap = proto_max_request(&lim), have = 0, fed = 0;
	char *conn = malloc(cap);
	CHECK(conn != NULL);
	CHECK(proto_parser_init(&p, &lim) == 0);
	while (fed < len) {
		size_t n = 1 + rng_next(&seed) % 24;
		if (n > len - fed)
			n = len - fed;
		if (n > cap - have)
			n = cap - have;
		memcpy(conn + have, in + fed, n);
		have += n;
		fed += n;
		do {
			rc = step(&p, conn, have, &used, &frag);
			memmove(conn, conn + used, have - used);
			have -= used;
		} while (rc != PROTO_MORE);
	}
	free(conn);
	if (whole.len != frag.len || (whole.len && memcmp(whole.data, frag.data, whole.len))) {
		fprintf(stderr, "whole:\n%.*s\nfragmented:\n%.*s\n", (int)whole.len,
			whole.data ? whole.data : "", (int)frag.len, frag.data ? frag.data : "");
		abort();
	}
	buf_free(&whole);
	buf_free(&frag);

	fuzz_replies(&lim, in, len);
	return 0;
}

#ifdef PROTO_FUZZ_MAIN
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		static uint8_t data[1 << 20];
		size_t n;
		if (!f) {
			perror(argv[i]);
			return 1;
		}
		n = fread(data, 1, sizeof data, f);
		fclose(f);
		LLVMFuzzerTestOneInput(data, n);
	}
	return 0;
}
#endif
