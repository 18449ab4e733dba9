/* route.c — the HTTP paths (route.h). */
#include "route.h"

#include <string.h>

#include "assets.h"
#include "http.h"

#define QUEUES_PREFIX "/queues/"
#define TASKS_PART "tasks/"

/* The queue controls' ops, by the last word of /queues/{name}/{op}. */
const char *const route_queue_ops[] = {
	[HTTP_QUEUE_PAUSE] = "pause", [HTTP_QUEUE_RESUME] = "resume", [HTTP_QUEUE_PURGE] = "purge",
	[HTTP_QUEUE_CANCEL] = "cancel"};

/* "/queues/{name}/{op}" or "/queues/{name}/tasks/{id}/cancel": the op (enum
 * http_queue_op) with the name copied into name[QUEUE_NAME_MAX] and a
 * cancel's id text into id[24], or -1 when url is no such path. */
int route_queue(const char *url, char *name, char *id)
{
	const char *n = url + sizeof QUEUES_PREFIX - 1, *slash, *op;
	if (strncmp(url, QUEUES_PREFIX, sizeof QUEUES_PREFIX - 1) || !(slash = strchr(n, '/')) ||
	    slash == n || (size_t)(slash - n) >= QUEUE_NAME_MAX)
		return -1;
	op = slash + 1;
	const char *t = op + sizeof TASKS_PART - 1, *tslash = NULL;
	int cancel = !strncmp(op, TASKS_PART, sizeof TASKS_PART - 1) && (tslash = strchr(t, '/')) &&
		     tslash > t && tslash - t < 24 && !strcmp(tslash + 1, "cancel");
	for (int k = 0; k < (int)(sizeof route_queue_ops / sizeof route_queue_ops[0]); k++) {
		if (cancel ? k != HTTP_QUEUE_CANCEL : k == HTTP_QUEUE_CANCEL || strcmp(op, route_queue_ops[k]))
			continue;
		if (name) {
			memcpy(name, n, (size_t)(slash - n));
			name[slash - n] = '\0';
		}
		if (id && cancel) {
			memcpy(id, t, (size_t)(tslash - t));
			id[tslash - t] = '\0';
		}
		return k;
	}
	return -1;
}

/* The path after an optional "/queues/{name}" (its name copied into name,
 * "" without), or NULL when the name is empty or too long. */
static const char *after_queue(const char *url, char *name)
{
	name[0] = '\0';
	if (strncmp(url, QUEUES_PREFIX, sizeof QUEUES_PREFIX - 1))
		return url;
	const char *n = url + sizeof QUEUES_PREFIX - 1, *slash = strchr(n, '/');
	if (!slash || slash == n || (size_t)(slash - n) >= QUEUE_NAME_MAX)
		return NULL;
	memcpy(name, n, (size_t)(slash - n));
	name[slash - n] = '\0';
	return slash;
}

/* "/tasks", "/tasks/{id}", "/queues/{name}/tasks" and
 * "/queues/{name}/tasks/{id}": R_TASKS or R_TASK_ID, with the queue's name
 * in name[QUEUE_NAME_MAX] ("" for the unnamed routes) and *idtext at the
 * id; else R_NONE. */
enum route route_tasks(const char *url, char *name, const char **idtext)
{
	const char *rest = after_queue(url, name);
	if (!rest)
		return R_NONE;
	if (!strcmp(rest, "/tasks"))
		return R_TASKS;
	if (!strncmp(rest, "/tasks/", 7) && !strchr(rest + 7, '/')) {
		*idtext = rest + 7;
		return R_TASK_ID;
	}
	return R_NONE;
}


const struct web_asset *route_asset(const char *url)
{
	if (strcmp(url, "/") == 0)
		url = "/index.html";
	for (unsigned i = 0; i < web_assets_count; i++)
		if (strcmp(url, web_assets[i].path) == 0)
			return &web_assets[i];
	return NULL;
}

enum route route_find(const char *url)
{
	char name[QUEUE_NAME_MAX];
	const char *idtext;
	enum route t = route_tasks(url, name, &idtext);
	if (t != R_NONE)
		return t;
	static const struct {
		const char *path;
		enum route r;
	} fixed[] = {
		{"/metrics", R_METRICS}, {"/stats", R_STATS},	    {"/healthz", R_HEALTHZ},
		{"/readyz", R_READYZ},	 {"/shutdown", R_SHUTDOWN},
	};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		if (strcmp(url, fixed[i].path) == 0)
			return fixed[i].r;
	if (route_queue(url, NULL, NULL) >= 0)
		return R_QUEUE;
	if ((t = route_dead(url, name)) != R_NONE)
		return t;
	if (route_asset(url))
		return R_ASSET;
	return R_NONE;
}

int route_is_post(enum route r)
{
	return r == R_TASKS || r == R_SHUTDOWN || r == R_QUEUE || r == R_DEAD_RETRY;
}

enum route route_dead(const char *url, char *name)
{
	const char *rest = after_queue(url, name);
	if (rest && !strcmp(rest, "/dead"))
		return R_DEAD;
	if (rest && !strcmp(rest, "/dead/retry"))
		return R_DEAD_RETRY;
	return R_NONE;
}
