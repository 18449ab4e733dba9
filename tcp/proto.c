/* proto.c — forq's TCP protocol: the incremental request parser and the
 * command and error words (proto.h). */
#include "proto.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "proto_words.h"

/* What the parser is doing at the front of the next input. */
enum parser_state {
	STATE_WANT_COMMAND, /* at the start of a line */
	STATE_SKIP_PAYLOAD, /* dropping p->skip bytes of a rejected PUT payload */
	STATE_SKIP_LINE,    /* dropping through the next '\n' */
	STATE_ITEM,         /* at a RESULTS item's header; p->left to come */
	STATE_ITEM_TAIL,    /* dropping p->skip bytes of a cut item value */
	STATE_ITEM_END,     /* at the cut item's "\r\n" or "\n" */
	STATE_ITEM_LF,      /* at the cut item's '\n', after its '\r' */
	STATE_LOST,         /* a batch lost its framing: dropping everything */
};

static const char *const cmd_words[PROTO_CMD_COUNT] = {
	[PROTO_GET_TASK] = CMD_GET_TASK, [PROTO_GET_TASKS] = CMD_GET_TASKS,
	[PROTO_RESULT] = CMD_RESULT,     [PROTO_FAIL] = CMD_FAIL,
	[PROTO_PUT] = CMD_PUT,           [PROTO_TOUCH] = CMD_TOUCH,
	[PROTO_PING] = CMD_PING,         [PROTO_STATS] = CMD_STATS,
	[PROTO_EXIT] = CMD_EXIT,         [PROTO_RETRY] = CMD_RETRY,
	[PROTO_AUTH] = CMD_AUTH,         [PROTO_INFO] = CMD_INFO,
	[PROTO_RESULTS] = CMD_RESULTS,   [PROTO_PAUSE] = CMD_PAUSE,
	[PROTO_RESUME] = CMD_RESUME,     [PROTO_PURGE] = CMD_PURGE,
	[PROTO_CANCEL] = CMD_CANCEL,     [PROTO_DEAD] = CMD_DEAD,
	[PROTO_RETRY_DEAD] = CMD_RETRY_DEAD,
};

/* Indexed by -err - 1. */
static const char *const err_words[PROTO_E_COUNT] = {
	"unknown-command", "bad-args",   "bad-id",        "bad-count",
	"bad-wait",        "bad-priority", "bad-length",  "line-too-long",
	"payload-too-large", "bad-payload-terminator", "bad-reply", "not-leased",
	"queue-full",      "draining",   "internal",      "unauthorized",
	"too-many-errors", "too-many-connections", "unknown-queue", "forbidden",
	"not-queued",      "running",    "bad-delay",     "bad-key",
	"not-durable",     "not-supported", "not-published", "not-dead",
};

const char *const proto__prio_words[NPRIO] = {"high", "normal", "low"};

/* "RESULT <id> " and CRLF (FAIL and RETRY are shorter); "TASK <id> <u32> <u32>", 2 CRLFs;
 * "RESULT <id> <len>", 2 CRLFs. */
_Static_assert(sizeof CMD_RESULT + U64_DIGITS + 3 <= PROTO_ID_TEXT_OVERHEAD, "id line");
_Static_assert(sizeof REP_TASK + U64_DIGITS + 2 * 11 + 4 <= PROTO_TASK_OVERHEAD, "TASK block");
_Static_assert(sizeof CMD_RESULT - 1 + 2 * U64_DIGITS + 2 + 4 <= PROTO_ITEM_OVERHEAD, "item");
_Static_assert(PROTO_ITEM_OVERHEAD < PROTO_MIN_LINE, "an item header fits any line limit");

int proto__is_blank(char c)
{
	return c == ' ' || c == '\t';
}

void proto__split(const char *s, size_t n, struct words *ws)
{
	size_t i = 0;
	ws->n = 0;
	ws->more = 0;
	for (;;) {
		while (i < n && proto__is_blank(s[i]))
			i++;
		if (i == n)
			return;
		if (ws->n == MAX_WORDS) {
			ws->more = 1;
			return;
		}
		size_t start = i;
		while (i < n && !proto__is_blank(s[i]))
			i++;
		ws->w[ws->n] = s + start;
		ws->len[ws->n] = i - start;
		ws->n++;
	}
}

int proto__word_is(const char *w, size_t n, const char *lit)
{
	size_t i;
	for (i = 0; i < n; i++) {
		char a = w[i], b = lit[i];
		if (b == '\0')
			return 0;
		if (a >= 'a' && a <= 'z')
			a = (char)(a - 'a' + 'A');
		if (b >= 'a' && b <= 'z')
			b = (char)(b - 'a' + 'A');
		if (a != b)
			return 0;
	}
	return lit[i] == '\0';
}

int proto__parse_u64(const char *w, size_t n, uint64_t max, uint64_t *v)
{
	uint64_t x = 0;
	if (n == 0 || n > U64_DIGITS)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)w[i] - '0';
		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	if (x > max)
		return -1;
	*v = x;
	return 0;
}

int proto__payload_end(const char *b, size_t avail, size_t plen, size_t *end)
{
	if (avail <= plen)
		return 0;
	if (b[plen] == '\n') {
		*end = plen + 1;
		return 1;
	}
	if (b[plen] == '\r') {
		if (avail == plen + 1)
			return 0;
		if (b[plen + 1] == '\n') {
			*end = plen + 2;
			return 1;
		}
	}
	*end = plen;
	return -1;
}

int proto__find_line(const char *b, size_t avail, size_t max_line, size_t *hdr, size_t *n)
{
	const char *nl = memchr(b, '\n', avail < max_line ? avail : max_line);
	if (!nl)
		return avail < max_line ? 0 : PROTO_E_LINE_TOO_LONG;
	*hdr = (size_t)(nl - b) + 1;
	*n = *hdr - 1;
	if (*n && b[*n - 1] == '\r')
		(*n)--;
	return 1;
}

static void req_clear(struct proto_req *req)
{
	memset(req, 0, sizeof *req);
	req->wait_ms = -1;
	req->prio = FORQ_NORMAL;
}

/* Optional "WAIT <ms>" as the last words, from ws->w[i]. Returns 0 or a
 * proto_err; *ms is left alone when there is no WAIT. */
static int parse_wait(const struct words *ws, size_t i, int32_t *ms)
{
	uint64_t v;
	if (ws->n <= i)
		return 0;
	if (!proto__word_is(ws->w[i], ws->len[i], KW_WAIT))
		return PROTO_E_BAD_ARGS;
	if (ws->n == i + 1)
		return PROTO_E_BAD_WAIT;
	if (ws->n > i + 2 || ws->more)
		return PROTO_E_BAD_ARGS;
	if (proto__parse_u64(ws->w[i + 1], ws->len[i + 1], INT32_MAX, &v))
		return PROTO_E_BAD_WAIT;
	*ms = (int32_t)v;
	return 0;
}

/* Whether word i is NAME=...; then *v and *vn are what follows the '='. */
static int put_option(const struct words *ws, size_t i, const char *name, const char **v,
		      size_t *vn)
{
	size_t n = strlen(name);
	if (ws->len[i] < n || memcmp(ws->w[i], name, n) != 0)
		return 0;
	*v = ws->w[i] + n;
	*vn = ws->len[i] - n;
	return 1;
}

/* GET_TASK(S)'s queue=A[,B...], anywhere after the count, at most once: taken
 * out of ws (so WAIT is read as before) into req. 0, or bad-args for a
 * second one or a list with an empty name or over PROTO_QUEUES_MAX names. */
static int take_queues(struct words *ws, size_t from, struct proto_req *req)
{
	const char *v;
	size_t vn;
	for (size_t i = from; i < ws->n; i++) {
		if (!put_option(ws, i, PROTO_OPT_QUEUE, &v, &vn))
			continue;
		if (req->queue)
			return PROTO_E_BAD_ARGS;
		const char *at = v, *name;
		size_t n, names = 0;
		int r;
		while ((r = proto_queue_next(&at, v + vn, &name, &n)) > 0)
			names++;
		if (r < 0 || names == 0 || names > PROTO_QUEUES_MAX)
			return PROTO_E_BAD_ARGS;
		req->queue = v;
		req->queue_len = vn;
		memmove(&ws->w[i], &ws->w[i + 1], (ws->n - i - 1) * sizeof ws->w[0]);
		memmove(&ws->len[i], &ws->len[i + 1], (ws->n - i - 1) * sizeof ws->len[0]);
		ws->n--;
		i--;
	}
	return 0;
}

int proto_queue_next(const char **at, const char *end, const char **name, size_t *len)
{
	if (*at >= end)
		return 0;
	const char *comma = memchr(*at, ',', (size_t)(end - *at));
	const char *stop = comma ? comma : end;
	*name = *at;
	*len = (size_t)(stop - *at);
	*at = comma ? comma + 1 : end;
	if (*len == 0 || (comma && *at == end))
		return -1; /* "a,,b", ",a" or "a," */
	return 1;
}

/* RESULT/FAIL/RETRY: the id, then the rest of the line after one separator. */
static int parse_id_text(const char *s, size_t n, const struct words *ws, struct proto_req *req)
{
	if (ws->n < 2)
		return PROTO_E_BAD_ARGS;
	if (proto__parse_u64(ws->w[1], ws->len[1], UINT64_MAX, &req->id))
		return PROTO_E_BAD_ID;
	size_t at = (size_t)(ws->w[1] - s) + ws->len[1];
	if (at < n)
		at++; /* the one blank that ends the id */
	req->text = s + at;
	req->text_len = n - at;
	if (req->cmd != PROTO_RESULT && req->text_len == 0)
		return PROTO_E_BAD_ARGS;
	return 0;
}

/* PUT [high|normal|low] [delay=MS] [key=KEY [window=MS]] [queue=NAME]
 * <bytes>: the priority first, the options in any order, each once. */
static int parse_put(const struct words *ws, struct proto_req *req, uint64_t *plen)
{
	size_t i = 1, vn;
	const char *v;
	int seen_delay = 0, seen_window = 0;
	if (ws->more || ws->n < 2 || ws->n > MAX_WORDS)
		return PROTO_E_BAD_ARGS;
	if (i + 1 < ws->n && !memchr(ws->w[i], '=', ws->len[i])) {
		size_t k;
		for (k = 0; k < NPRIO; k++)
			if (proto__word_is(ws->w[i], ws->len[i], proto__prio_words[k]))
				break;
		if (k == NPRIO)
			return PROTO_E_BAD_PRIORITY;
		req->prio = (int)k;
		i++;
	}
	for (; i + 1 < ws->n; i++) {
		if (put_option(ws, i, PROTO_PUT_DELAY, &v, &vn) && !seen_delay++) {
			if (proto__parse_u64(v, vn, PROTO_DELAY_MAX_MS, &req->delay_ms))
				return PROTO_E_BAD_DELAY;
		} else if (put_option(ws, i, PROTO_PUT_KEY, &v, &vn) && !req->key) {
			if (vn == 0 || vn > PROTO_KEY_MAX)
				return PROTO_E_BAD_KEY;
			req->key = v;
			req->key_len = vn;
		} else if (put_option(ws, i, PROTO_PUT_WINDOW, &v, &vn) && !seen_window++) {
			if (proto__parse_u64(v, vn, PROTO_DELAY_MAX_MS, &req->window_ms))
				return PROTO_E_BAD_KEY;
		} else if (put_option(ws, i, PROTO_OPT_QUEUE, &v, &vn) && !req->queue) {
			if (vn == 0)
				return PROTO_E_BAD_ARGS;
			req->queue = v;
			req->queue_len = vn;
		} else {
			return PROTO_E_BAD_ARGS;
		}
	}
	if (seen_window && !req->key)
		return PROTO_E_BAD_KEY;
	if (proto__parse_u64(ws->w[i], ws->len[i], UINT64_MAX, plen))
		return PROTO_E_BAD_LENGTH;
	return 0;
}

/* RETRY_DEAD <queue> ALL | <id>...: the ids stay in the line (text), each
 * checked here; count is how many (0: ALL). */
static int parse_retry_dead(const char *s, size_t n, const struct words *ws,
			    struct proto_req *req)
{
	uint64_t id;
	int r;
	if (ws->n < 3)
		return PROTO_E_BAD_ARGS;
	req->queue = ws->w[1];
	req->queue_len = ws->len[1];
	req->text = ws->w[2];
	req->text_len = n - (size_t)(ws->w[2] - s);
	if (proto__word_is(ws->w[2], ws->len[2], KW_ALL))
		return ws->n == 3 && !ws->more ? 0 : PROTO_E_BAD_ARGS;
	const char *at = req->text, *end = req->text + req->text_len;
	while ((r = proto_ids_next(&at, end, &id)) == 1)
		req->count++;
	return r < 0 ? PROTO_E_BAD_ID : 0;
}

/* One command line s[0..n), terminator stripped. Returns PROTO_PARSED, 0 for
 * an empty line, or a proto_err. *plen gets a PUT's payload length. */
static int parse_line(const char *s, size_t n, struct proto_req *req, uint64_t *plen)
{
	struct words ws;
	uint64_t v;
	size_t k;
	int r = 0;

	proto__split(s, n, &ws);
	if (ws.n == 0)
		return 0;
	for (k = 0; k < PROTO_CMD_COUNT; k++)
		if (proto__word_is(ws.w[0], ws.len[0], cmd_words[k]))
			break;
	if (k < PROTO_CMD_COUNT)
		req->cmd = (enum proto_cmd)k;
	else if (proto__word_is(ws.w[0], ws.len[0], CMD_QUIT))
		req->cmd = PROTO_EXIT;
	else
		return PROTO_E_UNKNOWN_COMMAND;

	switch (req->cmd) {
	case PROTO_GET_TASK:
		if (!(r = take_queues(&ws, 1, req)))
			r = parse_wait(&ws, 1, &req->wait_ms);
		break;
	case PROTO_GET_TASKS:
		if (ws.n < 2) {
			r = PROTO_E_BAD_ARGS;
			break;
		}
		if (proto__parse_u64(ws.w[1], ws.len[1], UINT32_MAX, &v) || v == 0) {
			r = PROTO_E_BAD_COUNT;
			break;
		}
		req->count = (uint32_t)v;
		if (!(r = take_queues(&ws, 2, req)))
			r = parse_wait(&ws, 2, &req->wait_ms);
		break;
	case PROTO_RESULT:
	case PROTO_FAIL:
	case PROTO_RETRY:
		r = parse_id_text(s, n, &ws, req);
		break;
	case PROTO_AUTH:
		if (ws.n < 2) {
			r = PROTO_E_BAD_ARGS;
			break;
		}
		req->text = ws.w[1];
		req->text_len = n - (size_t)(ws.w[1] - s);
		break;
	case PROTO_PUT:
		r = parse_put(&ws, req, plen);
		break;
	case PROTO_TOUCH:
		if (ws.n != 2 || ws.more)
			r = PROTO_E_BAD_ARGS;
		else if (proto__parse_u64(ws.w[1], ws.len[1], UINT64_MAX, &req->id))
			r = PROTO_E_BAD_ID;
		break;
	case PROTO_RESULTS:
		if (ws.n != 2 || ws.more)
			r = PROTO_E_BAD_ARGS;
		else if (proto__parse_u64(ws.w[1], ws.len[1], PROTO_RESULTS_MAX, &v))
			r = PROTO_E_BAD_COUNT;
		else
			req->count = (uint32_t)v;
		break;
	case PROTO_PAUSE:
	case PROTO_RESUME:
	case PROTO_PURGE:
		if (ws.n != 2 || ws.more) {
			r = PROTO_E_BAD_ARGS;
			break;
		}
		req->text = ws.w[1];
		req->text_len = ws.len[1];
		break;
	case PROTO_CANCEL:
		if (ws.n != 3 || ws.more) {
			r = PROTO_E_BAD_ARGS;
			break;
		}
		if (proto__parse_u64(ws.w[2], ws.len[2], UINT64_MAX, &req->id)) {
			r = PROTO_E_BAD_ID;
			break;
		}
		req->text = ws.w[1];
		req->text_len = ws.len[1];
		break;
	case PROTO_RETRY_DEAD: /* RETRY_DEAD <queue> ALL|<id>... */
		r = parse_retry_dead(s, n, &ws, req);
		break;
	case PROTO_DEAD: /* DEAD [queue] */
	case PROTO_STATS: /* STATS [queue] */
		if (ws.n > 2 || ws.more)
			r = PROTO_E_BAD_ARGS;
		else if (ws.n == 2) {
			req->queue = ws.w[1];
			req->queue_len = ws.len[1];
		}
		break;
	default: /* PING, EXIT, INFO */
		if (ws.n != 1)
			r = PROTO_E_BAD_ARGS;
		break;
	}
	return r < 0 ? r : PROTO_PARSED;
}


int proto_ids_next(const char **at, const char *end, uint64_t *id)
{
	const char *p = *at, *w;
	while (p < end && proto__is_blank(*p))
		p++;
	if (p == end) {
		*at = p;
		return 0;
	}
	for (w = p; p < end && !proto__is_blank(*p); p++)
		;
	*at = p;
	return proto__parse_u64(w, (size_t)(p - w), UINT64_MAX, id) || *id == 0 ? -1 : 1;
}

/* The item states after the one that ends: the next item, or commands. */
static void item_done(struct proto_parser *p)
{
	p->state = p->left ? STATE_ITEM : STATE_WANT_COMMAND;
}

/* The batch's framing is gone: everything from here on is dropped. */
static int lose(struct proto_parser *p, int err)
{
	p->state = STATE_LOST;
	p->left = 0;
	return err;
}

/* Drops what the skip states ask for from buf[0..len) and adds the count to
 * *off. Returns 0, or a proto_err when a cut item's line end is wrong. */
static int drain(struct proto_parser *p, const char *buf, size_t len, size_t *off)
{
	size_t at = *off, n;
	switch (p->state) {
	case STATE_SKIP_PAYLOAD:
	case STATE_ITEM_TAIL:
		n = p->skip < len - at ? (size_t)p->skip : len - at;
		p->skip -= n;
		at += n;
		if (p->skip)
			break;
		/* then its "\r\n" (or whatever ends a rejected PUT's payload) */
		p->state = p->state == STATE_SKIP_PAYLOAD ? STATE_SKIP_LINE : STATE_ITEM_END;
		*off = at;
		return drain(p, buf, len, off);
	case STATE_SKIP_LINE: {
		const char *nl = memchr(buf + at, '\n', len - at);
		if (!nl) {
			at = len;
			break;
		}
		p->state = STATE_WANT_COMMAND;
		at = (size_t)(nl - buf) + 1;
		break;
	}
	case STATE_ITEM_END:
	case STATE_ITEM_LF:
		if (at == len)
			break;
		if (buf[at] == '\r' && p->state == STATE_ITEM_END) {
			p->state = STATE_ITEM_LF;
			*off = at + 1;
			return drain(p, buf, len, off);
		}
		if (buf[at] != '\n') {
			*off = len;
			return lose(p, PROTO_E_BAD_PAYLOAD_TERMINATOR);
		}
		at++;
		item_done(p);
		break;
	case STATE_LOST:
		at = len;
		break;
	}
	*off = at;
	return 0;
}

int proto_parser_init(struct proto_parser *p, const struct proto_limits *lim)
{
	size_t value = lim->max_value ? lim->max_value : lim->max_payload;
	size_t body = value > lim->max_payload ? value : lim->max_payload;
	if (lim->max_line < PROTO_MIN_LINE || body > SIZE_MAX - 2 - lim->max_line)
		return -EINVAL;
	p->lim = *lim;
	if (!p->lim.max_value)
		p->lim.max_value = lim->max_payload;
	p->state = STATE_WANT_COMMAND;
	p->skip = 0;
	p->left = 0;
	return 0;
}

size_t proto_max_request(const struct proto_limits *lim)
{
	size_t value = lim->max_value ? lim->max_value : lim->max_payload;
	return lim->max_line + (value > lim->max_payload ? value : lim->max_payload) + 2;
}

int proto_parser_lost(const struct proto_parser *p)
{
	return p->state == STATE_LOST;
}

int proto_parser_in_batch(const struct proto_parser *p)
{
	return p->state >= STATE_ITEM && p->state != STATE_LOST;
}

/* One RESULTS item at b[0..avail): its header, then its value (cut to
 * max_value) and line end. Returns PROTO_PARSED, PROTO_MORE, or the error
 * that lost the framing. *used: bytes taken. */
static int parse_item(struct proto_parser *p, const char *b, size_t avail, struct proto_req *req,
		      size_t *used)
{
	static const enum proto_cmd kinds[] = {PROTO_RESULT, PROTO_FAIL, PROTO_RETRY};
	struct words ws;
	size_t hdr, n, end, k;
	uint64_t vlen;
	int r = proto__find_line(b, avail, p->lim.max_line, &hdr, &n);
	*used = 0;
	if (r == 0)
		return PROTO_MORE;
	if (r < 0)
		return lose(p, r);
	proto__split(b, n, &ws);
	if (ws.n != 3 || ws.more)
		return lose(p, PROTO_E_BAD_ARGS);
	for (k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
		if (proto__word_is(ws.w[0], ws.len[0], cmd_words[kinds[k]]))
			break;
	if (k == sizeof kinds / sizeof kinds[0])
		return lose(p, PROTO_E_BAD_ARGS);
	if (proto__parse_u64(ws.w[1], ws.len[1], UINT64_MAX, &req->id))
		return lose(p, PROTO_E_BAD_ID);
	if (proto__parse_u64(ws.w[2], ws.len[2], UINT64_MAX, &vlen))
		return lose(p, PROTO_E_BAD_LENGTH);
	if (vlen > p->lim.max_value) {
		/* Cut: hand out the part kept, drop the tail as it comes. */
		if (avail - hdr < p->lim.max_value)
			return PROTO_MORE;
		end = p->lim.max_value;
		p->state = STATE_ITEM_TAIL;
		p->skip = vlen - p->lim.max_value;
		req->text_len = p->lim.max_value;
	} else {
		r = proto__payload_end(b + hdr, avail - hdr, (size_t)vlen, &end);
		if (r == 0)
			return PROTO_MORE;
		if (r < 0)
			return lose(p, PROTO_E_BAD_PAYLOAD_TERMINATOR);
		req->text_len = (size_t)vlen;
	}
	req->cmd = kinds[k];
	req->text = b + hdr;
	req->item = 1;
	req->item_last = --p->left == 0;
	if (p->state == STATE_ITEM)
		item_done(p);
	*used = hdr + end;
	return PROTO_PARSED;
}

/* Hot path: one memchr per line, no allocation. */
int proto_parse(struct proto_parser *p, const char *buf, size_t len, struct proto_req *req,
		size_t *consumed)
{
	size_t off = 0, hdr = 0, n = 0, end, used;
	uint64_t plen = 0;
	int r;

	req_clear(req);
	r = drain(p, buf, len, &off);
	if (r < 0)
		goto out;
	if (p->state == STATE_ITEM) {
		r = parse_item(p, buf + off, len - off, req, &used);
		off = r < 0 ? len : off + used;
		goto out;
	}
	for (;;) {
		if (p->state != STATE_WANT_COMMAND || off == len) {
			r = PROTO_MORE;
			goto out;
		}
		r = proto__find_line(buf + off, len - off, p->lim.max_line, &hdr, &n);
		if (r == 0)
			goto out;
		if (r < 0) {
			p->state = STATE_SKIP_LINE;
			off += p->lim.max_line;
			drain(p, buf, len, &off);
			goto out;
		}
		r = parse_line(buf + off, n, req, &plen);
		if (r != 0)
			break;
		off += hdr; /* an empty line: ignored, as telnet users send them */
	}
	if (r < 0 && req->cmd == PROTO_RESULTS) {
		/* Its items may follow, and no count says how many. */
		r = lose(p, r);
		off = len;
		goto out;
	}
	if (r < 0 || req->cmd != PROTO_PUT) {
		off += hdr;
		if (r == PROTO_PARSED && req->cmd == PROTO_RESULTS && req->count) {
			p->state = STATE_ITEM;
			p->left = req->count;
		}
		goto out;
	}

	/* PUT: the payload follows the header line. */
	if (plen > p->lim.max_payload) {
		p->state = STATE_SKIP_PAYLOAD;
		p->skip = plen;
		off += hdr;
		drain(p, buf, len, &off);
		r = PROTO_E_PAYLOAD_TOO_LARGE;
		goto out;
	}
	r = proto__payload_end(buf + off + hdr, len - off - hdr, (size_t)plen, &end);
	if (r == 0)
		goto out;
	if (r < 0) {
		p->state = STATE_SKIP_LINE;
		off += hdr + end;
		drain(p, buf, len, &off);
		r = PROTO_E_BAD_PAYLOAD_TERMINATOR;
		goto out;
	}
	req->text = buf + off + hdr;
	req->text_len = (size_t)plen;
	off += hdr + end;
	r = PROTO_PARSED;
out:
	if (r != PROTO_PARSED)
		req_clear(req);
	*consumed = off;
	return r;
}

const char *proto_cmd_word(enum proto_cmd c)
{
	if ((unsigned)c >= PROTO_CMD_COUNT)
		return "?";
	return cmd_words[c];
}

/* cmd_words in lower case, made once on first use (any thread). */
#define CMD_WORD_MAX 16
static char cmd_names[PROTO_CMD_COUNT][CMD_WORD_MAX];
static pthread_once_t cmd_names_once = PTHREAD_ONCE_INIT;

static void make_cmd_names(void)
{
	for (int c = 0; c < PROTO_CMD_COUNT; c++) {
		size_t i = 0;
		for (; cmd_words[c][i] && i < CMD_WORD_MAX - 1; i++) {
			char ch = cmd_words[c][i];
			cmd_names[c][i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
		}
		cmd_names[c][i] = '\0';
	}
}

const char *proto_cmd_name(enum proto_cmd c)
{
	if ((unsigned)c >= PROTO_CMD_COUNT)
		return "?";
	pthread_once(&cmd_names_once, make_cmd_names);
	return cmd_names[c];
}

const char *proto_err_word(int err)
{
	if (err >= 0 || err < -PROTO_E_COUNT)
		return "?";
	return err_words[-err - 1];
}
