/* proto_format.c — the formatters: forqd's replies and a client's requests,
 * each appended whole to a struct buf or not at all (proto.h). */
#include "proto.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "proto_words.h"

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

int proto_format_task(struct buf *out, uint64_t id, unsigned attempt, const void *payload,
		      size_t len)
{
	static const char head[] = REP_TASK " ";
	char line[sizeof head + 3 * U64_DIGITS + 4], *p = line;
	size_t old = out->len;
	memcpy(p, head, sizeof head - 1);
	p = u64_put(p + sizeof head - 1, id);
	*p++ = ' ';
	p = u64_put(p, attempt);
	*p++ = ' ';
	p = u64_put(p, len);
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

int proto_format_ok_duplicate(struct buf *out, uint64_t id)
{
	return buf_printf(out, REP_OK " %" PRIu64 " " REP_DUPLICATE CRLF, id);
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

int proto_format_results_reply(struct buf *out, uint32_t applied, uint32_t not_leased)
{
	return buf_printf(out, REP_RESULTS " %" PRIu32 " %" PRIu32 CRLF, applied, not_leased);
}

/* A queue name fits on a command line as one word. */
static int queue_word_ok(const char *name, size_t len)
{
	if (len == 0 || len > INT32_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (proto__is_blank(name[i]) || name[i] == '\r' || name[i] == '\n')
			return 0;
	return 1;
}

/* GET_TASK or GET_TASKS n, then WAIT and queue= when given. */
static int format_get(struct buf *out, const char *cmd, uint32_t n, int32_t wait_ms,
		      const char *queues)
{
	size_t old = out->len;
	if (queues && *queues && !queue_word_ok(queues, strlen(queues)))
		return -EINVAL;
	int r = n ? buf_printf(out, "%s %" PRIu32, cmd, n) : buf_puts(out, cmd);
	if (!r && wait_ms >= 0)
		r = buf_printf(out, " " KW_WAIT " %" PRId32, wait_ms);
	if (!r && queues && *queues)
		r = buf_printf(out, " " PROTO_OPT_QUEUE "%s", queues);
	if (!r)
		r = buf_puts(out, CRLF);
	return rollback(out, old, r);
}

int proto_format_get_task(struct buf *out, int32_t wait_ms, const char *queues)
{
	return format_get(out, CMD_GET_TASK, 0, wait_ms, queues);
}

int proto_format_get_tasks(struct buf *out, uint32_t n, int32_t wait_ms, const char *queues)
{
	if (n == 0)
		return -EINVAL;
	return format_get(out, CMD_GET_TASKS, n, wait_ms, queues);
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
	p = u64_put(p + cl + 1, id);
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
	r = buf_printf(out, CMD_PUT " %s %zu" CRLF, proto__prio_words[prio], len);
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
		return buf_printf(out, "%s" CRLF, proto_cmd_word(c));
	default:
		return -EINVAL;
	}
}


int proto_format_queue_cmd(struct buf *out, enum proto_cmd c, const char *name, size_t len)
{
	if ((c != PROTO_PAUSE && c != PROTO_RESUME && c != PROTO_PURGE) || !queue_word_ok(name, len))
		return -EINVAL;
	return buf_printf(out, "%s %.*s" CRLF, proto_cmd_word(c), (int)len, name);
}

int proto_format_cancel(struct buf *out, const char *name, size_t len, uint64_t id)
{
	if (!queue_word_ok(name, len))
		return -EINVAL;
	return buf_printf(out, CMD_CANCEL " %.*s %" PRIu64 CRLF, (int)len, name, id);
}

int proto_format_results(struct buf *out, uint32_t k)
{
	if (k > PROTO_RESULTS_MAX)
		return -EINVAL;
	return buf_printf(out, CMD_RESULTS " %" PRIu32 CRLF, k);
}

int proto_format_item(struct buf *out, enum proto_cmd c, uint64_t id, const void *value,
		      size_t len)
{
	char line[PROTO_ITEM_OVERHEAD], *p = line;
	size_t old = out->len;
	if (c != PROTO_RESULT && c != PROTO_FAIL && c != PROTO_RETRY)
		return -EINVAL;
	const char *w = proto_cmd_word(c);
	size_t wl = strlen(w);
	memcpy(p, w, wl);
	p[wl] = ' ';
	p = u64_put(p + wl + 1, id);
	*p++ = ' ';
	p = u64_put(p, len);
	memcpy(p, CRLF, 2);
	int r = buf_reserve(out, (size_t)(p + 2 - line) + len + 2);
	if (!r)
		r = buf_append(out, line, (size_t)(p + 2 - line));
	return put_block(out, old, r, value, len);
}
