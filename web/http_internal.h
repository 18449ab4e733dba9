/* http_internal.h — what http.c shares with the other route files of the
 * HTTP thread (http_queue.c): the server's state and the answers. Private
 * to web/. Everything here runs on libmicrohttpd's one thread. */
#ifndef FORQ_WEB_HTTP_INTERNAL_H
#define FORQ_WEB_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "buf.h"
#include "http.h"

#define CT_JSON "application/json"
#define HTTP_NCODES 11 /* the statuses http.c sends, each counted */

struct http_server {
	struct MHD_Daemon *d;
	struct guard *guard; /* per-address limit; MHD's thread only */
	struct http_hooks h;
	struct auth auth;
	size_t max_body;
	size_t max_payload;
	_Atomic uint64_t counts[HTTP_NCODES];
	/* Used by handlers only, which MHD runs one at a time on its thread. */
	struct metrics_snapshot *snap; /* n_snap: one per queue */
	size_t n_snap;
	struct buf out;
	struct waiting *waiting; /* NULL: no durable hooks */
};

/* Counts one answer of status code (http_reply does). */
void http_count(struct http_server *s, unsigned code);
/* Sends body (copied) with status code; extra is NULL or a NULL-terminated
 * list of header name/value pairs. */
enum MHD_Result http_reply(struct http_server *s, struct MHD_Connection *c, unsigned code,
			   const char *type, const void *body, size_t len,
			   const char *const *extra);
/* The JSON in s->out, or a 500 when building it failed (r != 0). */
enum MHD_Result http_reply_out(struct http_server *s, struct MHD_Connection *c, unsigned code,
			       int r, const char *const *extra);
/* {"error":"..."} with code. */
__attribute__((format(printf, 4, 5))) enum MHD_Result
http_reply_error(struct http_server *s, struct MHD_Connection *c, unsigned code, const char *fmt,
		 ...);
enum MHD_Result http_reply_error_hdr(struct http_server *s, struct MHD_Connection *c,
				     unsigned code, const char *msg, const char *const *extra);
/* 404 for a queue forqd does not serve. */
enum MHD_Result http_unknown_queue(struct http_server *s, struct MHD_Connection *c,
				   const char *name);

/* Task writes and reads from beyond loopback need a token once one is set
 * (the worker's or the admin's); admin actions (shutdown, the queue
 * controls) the admin token, or without one loopback. Return 0 when
 * allowed, else 1 with the 401 or 403 answer in *answer. */
int http_task_access_refused(struct http_server *s, struct MHD_Connection *c,
			     enum MHD_Result *answer);
int http_admin_refused(struct http_server *s, struct MHD_Connection *c, const char *what,
		       enum MHD_Result *answer);

/* http_queue.c: POST /queues/{name}/pause|resume|purge and .../tasks/{id}/cancel. */
enum MHD_Result http_post_queue(struct http_server *s, struct MHD_Connection *c,
				const char *url);
/* http_queue.c: GET [/queues/{name}]/dead and POST [/queues/{name}]/dead/retry
 * (queue NULL: the unnamed routes, the default queue). */
enum MHD_Result http_get_dead(struct http_server *s, struct MHD_Connection *c,
			      const char *queue);
enum MHD_Result http_post_dead_retry(struct http_server *s, struct MHD_Connection *c,
				     const char *queue, const char *body, size_t len);

#endif
