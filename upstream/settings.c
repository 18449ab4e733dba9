/* settings.c — forq's stream and consumer settings, checked (settings.h). */
#include "settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"

static int refuse(char *err, size_t errlen, const char *what, const char *name, const char *is,
		  const char *want, const char *why)
{
	errmsg_set(err, errlen,
		   "%s %s has %s, forq needs %s (%s); forq does not change an existing %s: fix "
		   "it or use another --upstream-stream",
		   what, name, is, want, why, what);
	return -EINVAL;
}

int upstream_check_stream(const struct upstream_want *w, const struct upstream_stream_have *h,
			  char *err, size_t errlen)
{
	char is[64], want[64];
	if (!h->work_queue)
		return refuse(err, errlen, "stream", w->stream, "another retention",
			      "retention WorkQueue", "each task goes to one consumer and leaves "
			      "the stream once acknowledged");
	if (w->replicas && h->replicas != w->replicas) {
		snprintf(is, sizeof is, "%d replicas", h->replicas);
		snprintf(want, sizeof want, "%d", w->replicas);
		return refuse(err, errlen, "stream", w->stream, is, want, "--upstream-replicas");
	}
	for (int i = 0; i < h->nsubjects; i++)
		if (h->subjects[i] && strcmp(h->subjects[i], w->subject) == 0)
			return 0;
	snprintf(want, sizeof want, "subject %s", w->subject);
	return refuse(err, errlen, "stream", w->stream, "other subjects", want,
		      "forq publishes tasks there");
}

int upstream_check_consumer(const struct upstream_want *w, const struct upstream_consumer_have *h,
			    char *err, size_t errlen)
{
	char name[UPSTREAM_NAME_MAX + 32], is[64], want[64];
	snprintf(name, sizeof name, "%s on stream %s", UPSTREAM_DURABLE, w->stream);
	if (h->push)
		return refuse(err, errlen, "consumer", name, "a deliver subject (push)",
			      "a pull consumer", "forqd fetches batches as its ring has room");
	if (!h->ack_explicit)
		return refuse(err, errlen, "consumer", name, "another ack policy",
			      "AckPolicy explicit", "each task is acknowledged when it ends");
	if (h->ack_wait_ms != w->ack_wait_ms) {
		snprintf(is, sizeof is, "AckWait %lld ms", (long long)h->ack_wait_ms);
		snprintf(want, sizeof want, "%lld ms", (long long)w->ack_wait_ms);
		return refuse(err, errlen, "consumer", name, is, want, "forqd --lease-timeout");
	}
	if (h->max_deliver != w->max_deliver) {
		snprintf(is, sizeof is, "MaxDeliver %lld", (long long)h->max_deliver);
		snprintf(want, sizeof want, "%lld", (long long)w->max_deliver);
		return refuse(err, errlen, "consumer", name, is, want, "forqd --max-attempts");
	}
	if (!h->filter_subject || strcmp(h->filter_subject, w->subject) != 0) {
		snprintf(is, sizeof is, "filter subject \"%.40s\"",
			 h->filter_subject ? h->filter_subject : "");
		snprintf(want, sizeof want, "%s", w->subject);
		return refuse(err, errlen, "consumer", name, is, want, "the stream's task subject");
	}
	return 0;
}

int upstream_name_check(const char *name, char *err, size_t errlen)
{
	size_t n = strlen(name);
	int ok = n >= 1 && n <= UPSTREAM_NAME_MAX;
	for (size_t i = 0; ok && i < n; i++) {
		char c = name[i];
		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     c == '-' || c == '_';
	}
	if (ok)
		return 0;
	errmsg_set(err, errlen,
		   "expected a stream name of 1 to %d letters, digits, '-' or '_', got \"%.80s\"",
		   UPSTREAM_NAME_MAX, name);
	return -EINVAL;
}

void upstream_subject(const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "forq.%s", name);
}

int upstream_split_urls(const char *list, char ***urls, int *n, char *err, size_t errlen)
{
	size_t len = strlen(list);
	/* One block: the pointers, then a copy of the text cut at the commas. */
	char **v = malloc(UPSTREAM_URLS_MAX * sizeof *v + len + 1);
	if (!v)
		return -ENOMEM;
	char *text = (char *)(v + UPSTREAM_URLS_MAX);
	memcpy(text, list, len + 1);
	int k = 0;
	for (char *p = text;;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = 0;
		if (!*p || strchr(p, ' ') || k == UPSTREAM_URLS_MAX) {
			free(v);
			errmsg_set(err, errlen,
				   k == UPSTREAM_URLS_MAX
					   ? "more than %d URLs"
					   : "expected nats://HOST:PORT[,nats://HOST:PORT...] (%d at most), "
					     "got an empty or blank item",
				   UPSTREAM_URLS_MAX);
			return -EINVAL;
		}
		v[k++] = p;
		if (!comma)
			break;
		p = comma + 1;
	}
	*urls = v;
	*n = k;
	return 0;
}
