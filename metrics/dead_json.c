/* dead_json.c — dead letters as JSON (dead_json.h). */
#include "dead_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void dead_json_time(int64_t unix_ns, char *out, size_t cap)
{
	time_t secs = (time_t)(unix_ns / 1000000000);
	struct tm tm;
	if (unix_ns <= 0 || !gmtime_r(&secs, &tm)) {
		snprintf(out, cap, "-");
		return;
	}
	char day[32];
	strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, cap, "%s.%03dZ", day, (int)(unix_ns / 1000000 % 1000));
}

struct dead_out {
	struct buf *b;
	int n;
	int err;
};

/* Runs under the dead table's lock: appends only. */
static void one(void *ctx, const struct forq_dead_info *d)
{
	struct dead_out *o = ctx;
	char when[40];
	int r;
	if (o->err)
		return;
	dead_json_time(d->died_unix_ns, when, sizeof when);
	r = buf_printf(o->b, "%s{\"id\":%" PRIu64 ",\"priority\":\"%s\",\"attempts\":%u,"
			     "\"died_at\":\"%s\",\"error\":\"",
		       o->n ? "," : "", d->id, forq_prio_name((enum forq_prio)d->prio), d->attempts,
		       when);
	if (!r)
		r = buf_json_escape(o->b, d->error ? d->error : "", d->error ? strlen(d->error) : 0);
	if (!r)
		r = buf_puts(o->b, "\",\"payload\":\"");
	if (!r)
		r = buf_json_escape(o->b, d->payload, d->len);
	if (!r)
		r = buf_puts(o->b, "\"}");
	o->err = r;
	o->n++;
}

int dead_json(struct buf *out, struct forq *q, const char *queue)
{
	struct dead_out o = {.b = out};
	int r = buf_puts(out, "{\"queue\":\"");
	if (!r)
		r = buf_json_escape(out, queue, strlen(queue));
	if (!r)
		r = buf_puts(out, "\",\"dead_letters\":[");
	if (!r && (r = forq_dead_list(q, one, &o)) >= 0)
		r = o.err ? o.err : buf_puts(out, "]}");
	return r < 0 ? r : o.n;
}
