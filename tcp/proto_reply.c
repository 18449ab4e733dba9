/* proto_reply.c — the reply parser: forqd's replies as a client (the remote
 * worker, the CLI) reads them (proto.h). */
#include "proto.h"

#include <string.h>

#include "proto_words.h"

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
		while (p < end && proto__is_blank(*p))
			p++;
		const char *w = p, *eq = NULL;
		while (p < end && !proto__is_blank(*p)) {
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
			if (!proto__word_is(w, (size_t)(eq - w), keys[k].key))
				continue;
			if (proto__parse_u64(eq + 1, (size_t)(p - eq - 1), UINT32_MAX, &v))
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
	r = proto__find_line(buf, len, lim->max_line, &hdr, &n);
	if (r <= 0)
		return r;
	*consumed = hdr; /* on errors too; the caller closes anyway */
	if (n > 0 && buf[0] == '{') {
		rep->kind = PROTO_REP_STATS;
		rep->text = buf;
		rep->text_len = n;
		return PROTO_PARSED;
	}
	proto__split(buf, n, &ws);
	if (ws.n == 0)
		return PROTO_E_BAD_REPLY;
#define IS(lit) proto__word_is(ws.w[0], ws.len[0], lit)
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
		if (proto__parse_u64(ws.w[1], ws.len[1], UINT64_MAX, &rep->id) ||
		    proto__parse_u64(ws.w[2], ws.len[2], UINT32_MAX, &v) ||
		    proto__parse_u64(ws.w[3], ws.len[3], UINT64_MAX, &plen))
			return PROTO_E_BAD_REPLY;
		if (plen > lim->max_payload)
			return PROTO_E_PAYLOAD_TOO_LARGE;
		rep->attempt = (uint32_t)v;
		r = proto__payload_end(buf + hdr, len - hdr, (size_t)plen, &end);
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
		if (proto__parse_u64(ws.w[1], ws.len[1], UINT32_MAX, &v))
			return PROTO_E_BAD_REPLY;
		rep->kind = PROTO_REP_TASKS;
		rep->count = (uint32_t)v;
		return PROTO_PARSED;
	}
	if (IS(REP_OK) && (ws.n == 2 || ws.n == 3)) {
		if (proto__parse_u64(ws.w[1], ws.len[1], UINT64_MAX, &rep->id) ||
		    (ws.n == 3 && !proto__word_is(ws.w[2], ws.len[2], REP_DUPLICATE)))
			return PROTO_E_BAD_REPLY;
		rep->kind = PROTO_REP_OK_ID;
		rep->duplicate = ws.n == 3;
		return PROTO_PARSED;
	}
	if (IS(REP_RESULTS) && ws.n == 3) {
		if (proto__parse_u64(ws.w[1], ws.len[1], UINT32_MAX, &v) ||
		    proto__parse_u64(ws.w[2], ws.len[2], UINT32_MAX, &plen))
			return PROTO_E_BAD_REPLY;
		rep->kind = PROTO_REP_RESULTS;
		rep->count = (uint32_t)v;
		rep->not_leased = (uint32_t)plen;
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

