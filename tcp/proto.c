/* proto.c — forq's TCP protocol: incremental parsers and formatters. */
#include "proto.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>

/* What the parser is doing at the front of the next input. */
enum parser_state {
	STATE_WANT_COMMAND, /* at the start of a line */
	STATE_SKIP_PAYLOAD, /* dropping p->skip bytes of a rejected PUT payload */
	STATE_SKIP_LINE,    /* dropping through the next '\n' */
};

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
#define REP_TASK "TASK"
#define REP_TASKS "TASKS"
#define REP_NONE "NONE"
#define REP_OK "OK"
#define REP_ERR "ERR"
#define REP_PONG "PONG"
#define REP_BYE "BYE"
#define REP_INFO CMD_INFO
#define KW_WAIT "WAIT"
#define KEY_LEASE_TIMEOUT "lease_timeout_ms"
#define KEY_MAX_PAYLOAD "max_payload"
#define KEY_BATCH_MAX "batch_max"

static const char *const cmd_words[PROTO_CMD_COUNT] = {
	[PROTO_GET_TASK] = CMD_GET_TASK, [PROTO_GET_TASKS] = CMD_GET_TASKS,
	[PROTO_RESULT] = CMD_RESULT,     [PROTO_FAIL] = CMD_FAIL,
	[PROTO_PUT] = CMD_PUT,           [PROTO_TOUCH] = CMD_TOUCH,
	[PROTO_PING] = CMD_PING,         [PROTO_STATS] = CMD_STATS,
	[PROTO_EXIT] = CMD_EXIT,         [PROTO_RETRY] = CMD_RETRY,
	[PROTO_AUTH] = CMD_AUTH,         [PROTO_INFO] = CMD_INFO,
};

/* Indexed by -err - 1. */
static const char *const err_words[PROTO_E_COUNT] = {
	"unknown-command", "bad-args",   "bad-id",        "bad-count",
	"bad-wait",        "bad-priority", "bad-length",  "line-too-long",
	"payload-too-large", "bad-payload-terminator", "bad-reply", "not-leased",
	"queue-full",      "draining",   "internal",      "unauthorized",
	"too-many-errors", "too-many-connections",
};

/* Indexed by enum forq_prio. */
static const char *const prio_words[] = {"high", "normal", "low"};
#define NPRIO (sizeof prio_words / sizeof prio_words[0])

#define CRLF "\r\n"
#define U64_DIGITS 20 /* UINT64_MAX = 18446744073709551615 */
/* "RESULT <id> " and CRLF (FAIL and RETRY are shorter); "TASK <id> <u32> <u32>", 2 CRLFs. */
_Static_assert(sizeof CMD_RESULT + U64_DIGITS + 3 <= PROTO_ID_TEXT_OVERHEAD, "id line");
_Static_assert(sizeof REP_TASK + U64_DIGITS + 2 * 11 + 4 <= PROTO_TASK_OVERHEAD, "TASK block");

/* Words of one line: at most MAX_WORDS kept, `more` says others follow. */
#define MAX_WORDS 4
struct words {
	size_t n;
	int more;
	const char *w[MAX_WORDS];
	size_t len[MAX_WORDS];
};

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void split(const char *s, size_t n, struct words *ws)
{
	size_t i = 0;
	ws->n = 0;
	ws->more = 0;
	for (;;) {
		while (i < n && is_blank(s[i]))
			i++;
		if (i == n)
			return;
		if (ws->n == MAX_WORDS) {
			ws->more = 1;
			return;
		}
		size_t start = i;
		while (i < n && !is_blank(s[i]))
			i++;
		ws->w[ws->n] = s + start;
		ws->len[ws->n] = i - start;
		ws->n++;
	}
}

/* Case-insensitive (ASCII only, locale-free) match of w[0..n) against lit. */
static int word_is(const char *w, size_t n, const char *lit)
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

/* Plain decimal, no sign, at most max. Returns 0 or -1. */
static int parse_u64(const char *w, size_t n, uint64_t max, uint64_t *v)
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
	if (!word_is(ws->w[i], ws->len[i], KW_WAIT))
		return PROTO_E_BAD_ARGS;
	if (ws->n == i + 1)
		return PROTO_E_BAD_WAIT;
	if (ws->n > i + 2 || ws->more)
		return PROTO_E_BAD_ARGS;
	if (parse_u64(ws->w[i + 1], ws->len[i + 1], INT32_MAX, &v))
		return PROTO_E_BAD_WAIT;
	*ms = (int32_t)v;
	return 0;
}

/* RESULT/FAIL/RETRY: the id, then the rest of the line after one separator. */
static int parse_id_text(const char *s, size_t n, const struct words *ws, struct proto_req *req)
{
	if (ws->n < 2)
		return PROTO_E_BAD_ARGS;
	if (parse_u64(ws->w[1], ws->len[1], UINT64_MAX, &req->id))
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

/* PUT [prio] <bytes>: fills req->prio and *plen. */
static int parse_put(const struct words *ws, struct proto_req *req, uint64_t *plen)
{
	size_t i = 1;
	if (ws->more || ws->n < 2 || ws->n > 3)
		return PROTO_E_BAD_ARGS;
	if (ws->n == 3) {
		size_t k;
		for (k = 0; k < NPRIO; k++)
			if (word_is(ws->w[1], ws->len[1], prio_words[k]))
				break;
		if (k == NPRIO)
			return PROTO_E_BAD_PRIORITY;
		req->prio = (int)k;
		i = 2;
	}
	if (parse_u64(ws->w[i], ws->len[i], UINT64_MAX, plen))
		return PROTO_E_BAD_LENGTH;
	return 0;
}

/* One command line s[0..n), terminator stripped. Returns PROTO_PARSED, 0 for
 * an empty line, or a proto_err. *plen gets a PUT's payload length. */
static int parse_line(const char *s, size_t n, struct proto_req *req, uint64_t *plen)
{
	struct words ws;
	uint64_t v;
	size_t k;
	int r = 0;

	split(s, n, &ws);
	if (ws.n == 0)
		return 0;
	for (k = 0; k < PROTO_CMD_COUNT; k++)
		if (word_is(ws.w[0], ws.len[0], cmd_words[k]))
			break;
	if (k < PROTO_CMD_COUNT)
		req->cmd = (enum proto_cmd)k;
	else if (word_is(ws.w[0], ws.len[0], CMD_QUIT))
		req->cmd = PROTO_EXIT;
	else
		return PROTO_E_UNKNOWN_COMMAND;

	switch (req->cmd) {
	case PROTO_GET_TASK:
		r = parse_wait(&ws, 1, &req->wait_ms);
		break;
	case PROTO_GET_TASKS:
		if (ws.n < 2) {
			r = PROTO_E_BAD_ARGS;
			break;
		}
		if (parse_u64(ws.w[1], ws.len[1], UINT32_MAX, &v) || v == 0) {
			r = PROTO_E_BAD_COUNT;
			break;
		}
		req->count = (uint32_t)v;
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
		else if (parse_u64(ws.w[1], ws.len[1], UINT64_MAX, &req->id))
			r = PROTO_E_BAD_ID;
		break;
	default: /* PING, STATS, EXIT, INFO */
		if (ws.n != 1)
			r = PROTO_E_BAD_ARGS;
		break;
	}
	return r < 0 ? r : PROTO_PARSED;
}

/* Finds a plen-byte payload at b[0..avail) and its "\r\n" or "\n". Returns 1
 * with *end = bytes used, 0 if more input is needed, -1 for a bad terminator
 * (then *end = plen, where the terminator should be). */
static int payload_end(const char *b, size_t avail, size_t plen, size_t *end)
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

/* Finds the line at b[0..avail): *hdr = bytes through '\n', *n = length
 * without terminator. Returns 1, 0 if more is needed, or LINE_TOO_LONG. */
static int find_line(const char *b, size_t avail, size_t max_line, size_t *hdr, size_t *n)
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

/* Drops what the skip states ask for from buf[0..len); returns the count. */
static size_t drain(struct proto_parser *p, const char *buf, size_t len)
{
	size_t off = 0;
	if (p->state == STATE_SKIP_PAYLOAD) {
		off = p->skip < len ? (size_t)p->skip : len;
		p->skip -= off;
		if (p->skip)
			return off;
		p->state = STATE_SKIP_LINE; /* then its "\r\n" (or whatever ends it) */
	}
	if (p->state == STATE_SKIP_LINE) {
		const char *nl = memchr(buf + off, '\n', len - off);
		if (!nl)
			return len;
		p->state = STATE_WANT_COMMAND;
		off = (size_t)(nl - buf) + 1;
	}
	return off;
}

int proto_parser_init(struct proto_parser *p, const struct proto_limits *lim)
{
	if (lim->max_line < PROTO_MIN_LINE || lim->max_payload > SIZE_MAX - 2 - lim->max_line)
		return -EINVAL;
	p->lim = *lim;
	p->state = STATE_WANT_COMMAND;
	p->skip = 0;
	return 0;
}

size_t proto_max_request(const struct proto_limits *lim)
{
	return lim->max_line + lim->max_payload + 2;
}

/* Hot path: one memchr per line, no allocation. */
int proto_parse(struct proto_parser *p, const char *buf, size_t len, struct proto_req *req,
		size_t *consumed)
{
	size_t off = drain(p, buf, len);
	size_t hdr = 0, n = 0, end;
	uint64_t plen = 0;
	int r;

	req_clear(req);
	for (;;) {
		if (p->state != STATE_WANT_COMMAND || off == len) {
			r = PROTO_MORE;
			goto out;
		}
		r = find_line(buf + off, len - off, p->lim.max_line, &hdr, &n);
		if (r == 0)
			goto out;
		if (r < 0) {
			p->state = STATE_SKIP_LINE;
			off += p->lim.max_line;
			off += drain(p, buf + off, len - off);
			goto out;
		}
		r = parse_line(buf + off, n, req, &plen);
		if (r != 0)
			break;
		off += hdr; /* an empty line: ignored, as telnet users send them */
	}
	if (r < 0 || req->cmd != PROTO_PUT) {
		off += hdr;
		goto out;
	}

	/* PUT: the payload follows the header line. */
	if (plen > p->lim.max_payload) {
		p->state = STATE_SKIP_PAYLOAD;
		p->skip = plen;
		off += hdr;
		off += drain(p, buf + off, len - off);
		r = PROTO_E_PAYLOAD_TOO_LARGE;
		goto out;
	}
	r = payload_end(buf + off + hdr, len - off - hdr, (size_t)plen, &end);
	if (r == 0)
		goto out;
	if (r < 0) {
		p->state = STATE_SKIP_LINE;
		off += hdr + end;
		off += drain(p, buf + off, len - off);
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

/* ---- replies (client side) ---- */

/* INFO's "key=value" words from p to buf + n: known keys fill rep->info,
 * others are skipped. */
static int parse_info(const char *buf, size_t n, const char *p, struct proto_reply *rep)
{
	const struct {
		const char *key;
		uint32_t *field;
	} keys[] = {
		{KEY_LEASE_TIMEOUT, &rep->info.lease_timeout_ms},
		{KEY_MAX_PAYLOAD, &rep->info.max_payload},
		{KEY_BATCH_MAX, &rep->info.batch_max},
	};
	const char *end = buf + n;
	while (p < end) {
		while (p < end && is_blank(*p))
			p++;
		const char *w = p, *eq = NULL;
		while (p < end && !is_blank(*p)) {
			if (*p == '=' && !eq)
				eq = p;
			p++;
		}
		if (w == p)
			break;
		if (!eq)
			return PROTO_E_BAD_REPLY;
		for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
			uint64_t v;
			if (!word_is(w, (size_t)(eq - w), keys[k].key))
				continue;
			if (parse_u64(eq + 1, (size_t)(p - eq - 1), UINT32_MAX, &v))
				return PROTO_E_BAD_REPLY;
			*keys[k].field = (uint32_t)v;
		}
	}
	rep->kind = PROTO_REP_INFO;
	return PROTO_PARSED;
}

int proto_parse_reply(const struct proto_limits *lim, const char *buf, size_t len,
		      struct proto_reply *rep, size_t *consumed)
{
	struct words ws;
	size_t hdr = 0, n = 0, end;
	uint64_t v, plen;
	int r;

	memset(rep, 0, sizeof *rep);
	*consumed = 0;
	r = find_line(buf, len, lim->max_line, &hdr, &n);
	if (r <= 0)
		return r;
	*consumed = hdr; /* on errors too; the caller closes anyway */
	if (n > 0 && buf[0] == '{') {
		rep->kind = PROTO_REP_STATS;
		rep->text = buf;
		rep->text_len = n;
		return PROTO_PARSED;
	}
	split(buf, n, &ws);
	if (ws.n == 0)
		return PROTO_E_BAD_REPLY;
#define IS(lit) word_is(ws.w[0], ws.len[0], lit)
	if (IS(REP_ERR)) {
		size_t at = (size_t)(ws.w[0] - buf) + ws.len[0];
		if (at < n)
			at++; /* the blank before the word */
		rep->kind = PROTO_REP_ERR;
		rep->text = buf + at;
		rep->text_len = n - at;
		return PROTO_PARSED;
	}
	if (IS(REP_INFO))
		return parse_info(buf, n, ws.w[0] + ws.len[0], rep);
	if (ws.more)
		return PROTO_E_BAD_REPLY;
	if (IS(REP_TASK) && ws.n == 4) {
		if (parse_u64(ws.w[1], ws.len[1], UINT64_MAX, &rep->id) ||
		    parse_u64(ws.w[2], ws.len[2], UINT32_MAX, &v) ||
		    parse_u64(ws.w[3], ws.len[3], UINT64_MAX, &plen))
			return PROTO_E_BAD_REPLY;
		if (plen > lim->max_payload)
			return PROTO_E_PAYLOAD_TOO_LARGE;
		rep->attempt = (uint32_t)v;
		r = payload_end(buf + hdr, len - hdr, (size_t)plen, &end);
		if (r < 0)
			return PROTO_E_BAD_REPLY;
		if (r == 0) {
			*consumed = 0;
			return PROTO_MORE;
		}
		rep->kind = PROTO_REP_TASK;
		rep->text = buf + hdr;
		rep->text_len = (size_t)plen;
		*consumed = hdr + end;
		return PROTO_PARSED;
	}
	if (IS(REP_TASKS) && ws.n == 2) {
		if (parse_u64(ws.w[1], ws.len[1], UINT32_MAX, &v))
			return PROTO_E_BAD_REPLY;
		rep->kind = PROTO_REP_TASKS;
		rep->count = (uint32_t)v;
		return PROTO_PARSED;
	}
	if (IS(REP_OK) && ws.n == 2) {
		if (parse_u64(ws.w[1], ws.len[1], UINT64_MAX, &rep->id))
			return PROTO_E_BAD_REPLY;
		rep->kind = PROTO_REP_OK_ID;
		return PROTO_PARSED;
	}
	if (ws.n != 1)
		return PROTO_E_BAD_REPLY;
	if (IS(REP_OK))
		rep->kind = PROTO_REP_OK;
	else if (IS(REP_NONE))
		rep->kind = PROTO_REP_NONE;
	else if (IS(REP_PONG))
		rep->kind = PROTO_REP_PONG;
	else if (IS(REP_BYE))
		rep->kind = PROTO_REP_BYE;
	else
		return PROTO_E_BAD_REPLY;
#undef IS
	return PROTO_PARSED;
}

/* ---- formatters ---- */

/* Undoes a partly appended reply so that a failed call changes nothing. */
static int rollback(struct buf *out, size_t old, int r)
{
	if (r) {
		out->len = old;
		if (out->cap)
			out->data[old] = '\0';
	}
	return r;
}

static int has_newline(const char *s, size_t n)
{
	return memchr(s, '\n', n) || memchr(s, '\r', n);
}

/* "<line>\r\n<payload>\r\n", the line already printed from out->len == old. */
static int put_block(struct buf *out, size_t old, int r, const void *payload, size_t len)
{
	if (!r)
		r = buf_append(out, payload, len);
	if (!r)
		r = buf_append(out, CRLF, 2);
	return rollback(out, old, r);
}

/* Decimal digits of v at p (no NUL); returns the end. Hot path: the TASK and
 * RESULT lines are formatted per task, and printf is most of their cost. */
static char *put_u64(char *p, uint64_t v)
{
	char tmp[U64_DIGITS];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

int proto_format_task(struct buf *out, uint64_t id, unsigned attempt, const void *payload,
		      size_t len)
{
	static const char head[] = REP_TASK " ";
	char line[sizeof head + 3 * U64_DIGITS + 4], *p = line;
	size_t old = out->len;
	memcpy(p, head, sizeof head - 1);
	p = put_u64(p + sizeof head - 1, id);
	*p++ = ' ';
	p = put_u64(p, attempt);
	*p++ = ' ';
	p = put_u64(p, len);
	memcpy(p, CRLF, 2);
	int r = buf_reserve(out, (size_t)(p + 2 - line) + len + 2);
	if (!r)
		r = buf_append(out, line, (size_t)(p + 2 - line));
	return put_block(out, old, r, payload, len);
}

int proto_format_tasks(struct buf *out, uint32_t k)
{
	return buf_printf(out, REP_TASKS " %" PRIu32 CRLF, k);
}

int proto_format_none(struct buf *out)
{
	return buf_puts(out, REP_NONE CRLF);
}

int proto_format_ok(struct buf *out)
{
	return buf_puts(out, REP_OK CRLF);
}

int proto_format_ok_id(struct buf *out, uint64_t id)
{
	return buf_printf(out, REP_OK " %" PRIu64 CRLF, id);
}

int proto_format_err(struct buf *out, int err)
{
	if (err >= 0 || err < -PROTO_E_COUNT)
		return -EINVAL;
	return buf_printf(out, REP_ERR " %s" CRLF, proto_err_word(err));
}

int proto_format_pong(struct buf *out)
{
	return buf_puts(out, REP_PONG CRLF);
}

int proto_format_bye(struct buf *out)
{
	return buf_puts(out, REP_BYE CRLF);
}

int proto_format_stats(struct buf *out, const char *json, size_t len)
{
	size_t old = out->len;
	int r;
	if (len == 0 || json[0] != '{' || has_newline(json, len))
		return -EINVAL;
	r = buf_append(out, json, len);
	if (!r)
		r = buf_append(out, CRLF, 2);
	return rollback(out, old, r);
}

int proto_format_info(struct buf *out, const struct proto_info *info)
{
	return buf_printf(out,
			  REP_INFO " " KEY_LEASE_TIMEOUT "=%" PRIu32 " " KEY_MAX_PAYLOAD "=%" PRIu32
				   " " KEY_BATCH_MAX "=%" PRIu32 CRLF,
			  info->lease_timeout_ms, info->max_payload, info->batch_max);
}

int proto_format_get_task(struct buf *out, int32_t wait_ms)
{
	if (wait_ms < 0)
		return buf_puts(out, CMD_GET_TASK CRLF);
	return buf_printf(out, CMD_GET_TASK " " KW_WAIT " %" PRId32 CRLF, wait_ms);
}

int proto_format_get_tasks(struct buf *out, uint32_t n, int32_t wait_ms)
{
	if (n == 0)
		return -EINVAL;
	if (wait_ms < 0)
		return buf_printf(out, CMD_GET_TASKS " %" PRIu32 CRLF, n);
	return buf_printf(out, CMD_GET_TASKS " %" PRIu32 " " KW_WAIT " %" PRId32 CRLF, n, wait_ms);
}

static int format_id_text(struct buf *out, const char *cmd, uint64_t id, const char *s,
			  size_t n)
{
	size_t old = out->len;
	int r;
	if (has_newline(s, n))
		return -EINVAL;
	char head[16 + U64_DIGITS], *p = head;
	size_t cl = strlen(cmd);
	memcpy(p, cmd, cl);
	p[cl] = ' ';
	p = put_u64(p + cl + 1, id);
	*p++ = ' ';
	r = buf_reserve(out, (size_t)(p - head) + n + 2);
	if (!r)
		r = buf_append(out, head, (size_t)(p - head));
	if (!r)
		r = buf_append(out, s, n);
	if (!r)
		r = buf_append(out, CRLF, 2);
	return rollback(out, old, r);
}

int proto_format_result(struct buf *out, uint64_t id, const char *value, size_t len)
{
	return format_id_text(out, CMD_RESULT, id, value, len);
}

int proto_format_fail(struct buf *out, uint64_t id, const char *reason, size_t len)
{
	if (len == 0)
		return -EINVAL;
	return format_id_text(out, CMD_FAIL, id, reason, len);
}

int proto_format_retry(struct buf *out, uint64_t id, const char *reason, size_t len)
{
	if (len == 0)
		return -EINVAL;
	return format_id_text(out, CMD_RETRY, id, reason, len);
}

int proto_format_auth(struct buf *out, const char *token, size_t len)
{
	size_t old = out->len;
	int r;
	if (len == 0 || has_newline(token, len))
		return -EINVAL;
	r = buf_puts(out, CMD_AUTH " ");
	if (!r)
		r = buf_append(out, token, len);
	if (!r)
		r = buf_append(out, CRLF, 2);
	return rollback(out, old, r);
}

int proto_format_put(struct buf *out, enum forq_prio prio, const void *payload, size_t len)
{
	size_t old = out->len;
	int r;
	if ((unsigned)prio >= NPRIO)
		return -EINVAL;
	r = buf_printf(out, CMD_PUT " %s %zu" CRLF, prio_words[prio], len);
	return put_block(out, old, r, payload, len);
}

int proto_format_touch(struct buf *out, uint64_t id)
{
	return buf_printf(out, CMD_TOUCH " %" PRIu64 CRLF, id);
}

int proto_format_simple(struct buf *out, enum proto_cmd c)
{
	switch (c) {
	case PROTO_PING:
	case PROTO_STATS:
	case PROTO_EXIT:
	case PROTO_INFO:
		return buf_printf(out, "%s" CRLF, cmd_words[c]);
	default:
		return -EINVAL;
	}
}
