/* route.h — the HTTP thread's paths, inside web/: which route a URL is,
 * and the queue name and task id the named ones carry. Pure functions of
 * the URL (and the embedded status page's files), no I/O. */
#ifndef FORQ_WEB_ROUTE_H
#define FORQ_WEB_ROUTE_H

enum route {
	R_NONE,
	R_METRICS,
	R_STATS,
	R_HEALTHZ,
	R_READYZ,
	R_TASKS,
	R_TASK_ID,
	R_SHUTDOWN,
	R_QUEUE,
	R_DEAD,       /* GET [/queues/{name}]/dead */
	R_DEAD_RETRY, /* POST [/queues/{name}]/dead/retry */
	R_ASSET,
};

/* The longest queue name a path may carry, NUL included. */
#define QUEUE_NAME_MAX 128

/* The queue controls' ops, by the last word of /queues/{name}/{op}. */
extern const char *const route_queue_ops[];

/* "/queues/{name}/{op}" or "/queues/{name}/tasks/{id}/cancel": the op (enum
 * http_queue_op) with the name copied into name[QUEUE_NAME_MAX] and a
 * cancel's id text into id[24] (either may be NULL), or -1 when url is no
 * such path. */
int route_queue(const char *url, char *name, char *id);

/* "/tasks", "/tasks/{id}", "/queues/{name}/tasks" and
 * "/queues/{name}/tasks/{id}": R_TASKS or R_TASK_ID, with the queue's name
 * in name[QUEUE_NAME_MAX] ("" for the unnamed routes) and *idtext at the
 * id; else R_NONE. */
enum route route_tasks(const char *url, char *name, const char **idtext);

/* The route a URL is (R_NONE: no such path). */
enum route route_find(const char *url);
/* Whether r is one of the POST routes (the others are GET and HEAD). */
int route_is_post(enum route r);
/* The embedded status page file at url ("/" is "/index.html"), or NULL. */
struct web_asset;
const struct web_asset *route_asset(const char *url);
/* "/dead", "/dead/retry", "/queues/{name}/dead" and
 * "/queues/{name}/dead/retry": R_DEAD or R_DEAD_RETRY, with the queue's name
 * in name[QUEUE_NAME_MAX] ("" for the unnamed routes); else R_NONE. */
enum route route_dead(const char *url, char *name);

#endif
