/* consumer_exec.c — fork and exec of a consumer, and its main (see
 * consumer_exec.h). */
#include "consumer_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forq_admin.h"
#include "log.h"
#include "parse.h"

extern char **environ;

/* forqd's binary: a descriptor, and its path for where executing by
 * descriptor fails (valgrind follows execve by path only). */
static int exe_fd = -1;
static char exe_path[PATH_MAX];

static int exe_open(void)
{
	if (exe_fd >= 0)
		return 0;
	ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
	exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (exe_fd < 0 || n <= 0) {
		int e = exe_fd < 0 ? errno : ENAMETOOLONG;
		log_event(LOG_ERROR, "consumer_binary_failed",
			  "error=\"cannot open /proc/self/exe: %s\"", strerror(e));
		if (exe_fd >= 0)
			close(exe_fd);
		exe_fd = -1;
		return -ENOEXEC;
	}
	exe_path[n] = '\0';
	return 0;
}

/* The arguments, as key=value after the flag. */
enum { A_SHM, A_WORKER, A_PARENT, A_HANDLER, A_TIMEOUT, A_BATCH, A_RESULTS, A_TASKS, A_QUEUE,
       A_FINISH, A_BACKOFF, A_BACKOFF_MAX, A_LOG, A_N };
static const char *const keys[A_N] = {"shm", "worker", "parent", "handler", "task-timeout",
				      "batch", "results-fd", "tasks", "queue", "finish-fd",
				      "backoff", "backoff-max", "log"};

/* One allocation: the argv array, then its strings. */
static char **build_argv(struct forq *q, int worker, const struct consumer_config *c)
{
	char num[A_N][24] = {{0}};
	const char *val[A_N] = {
		[A_SHM] = forq_admin_name(q), [A_HANDLER] = c->handler ? c->handler : "",
		[A_TASKS] = c->tasks_file ? c->tasks_file : "",
		[A_QUEUE] = c->queue_name ? c->queue_name : ""};
	long long nv[A_N] = {[A_WORKER] = worker, [A_PARENT] = getpid(),
			     [A_TIMEOUT] = c->task_timeout_ms, [A_BATCH] = c->batch,
			     [A_RESULTS] = c->results_fd, [A_FINISH] = c->journal_fd,
			     [A_BACKOFF] = c->restart_backoff_ms,
			     [A_BACKOFF_MAX] = c->restart_backoff_max_ms};
	size_t bytes = sizeof "forqd" + sizeof CONSUMER_PROCESS_FLAG;
	for (int i = 0; i < A_N; i++) {
		if (!val[i]) {
			if (i == A_LOG)
				snprintf(num[i], sizeof num[i], "%s", log_level_name(log_get_level()));
			else
				snprintf(num[i], sizeof num[i], "%lld", nv[i]);
			val[i] = num[i];
		}
		bytes += strlen(keys[i]) + 1 + strlen(val[i]) + 1;
	}
	char **argv = malloc((A_N + 3) * sizeof *argv + bytes);
	if (!argv)
		return NULL;
	char *p = (char *)(argv + A_N + 3);
	argv[0] = strcpy(p, "forqd");
	p += sizeof "forqd";
	argv[1] = strcpy(p, CONSUMER_PROCESS_FLAG);
	p += sizeof CONSUMER_PROCESS_FLAG;
	for (int i = 0; i < A_N; i++) {
		argv[i + 2] = p;
		p += sprintf(p, "%s=%s", keys[i], val[i]) + 1;
	}
	argv[A_N + 2] = NULL;
	return argv;
}

pid_t consumer_spawn(struct forq *q, int worker, const struct consumer_config *c)
{
	int r = exe_open();
	if (r)
		return r;
	char **argv = build_argv(q, worker, c);
	if (!argv)
		return -ENOMEM;
	pid_t pid = fork();
	if (pid == 0) {
		/* Async-signal-safe calls only, up to the exec. Ours are
		 * close-on-exec; these two the consumer keeps. */
		if (c->results_fd >= 0)
			fcntl(c->results_fd, F_SETFD, 0);
		if (c->journal_fd > 0)
			fcntl(c->journal_fd, F_SETFD, 0);
		fexecve(exe_fd, argv, environ);
		execve(exe_path, argv, environ);
		_exit(CONSUMER_EXIT_EXEC);
	}
	int e = errno;
	free(argv);
	return pid < 0 ? -e : pid;
}

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "forqd %s: %s: %s (forqd runs this itself, for each consumer)\n",
		CONSUMER_PROCESS_FLAG, what, arg);
	return 2;
}

int consumer_process_main(int argc, char **argv)
{
	const char *val[A_N] = {0};
	for (int i = 2; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		int k = 0;
		while (eq && k < A_N &&
		       (strlen(keys[k]) != (size_t)(eq - argv[i]) ||
			strncmp(keys[k], argv[i], (size_t)(eq - argv[i]))))
			k++;
		if (!eq || k == A_N)
			return bad("unknown argument", argv[i]);
		val[k] = eq + 1;
	}
	long long n[A_N] = {0};
	char err[256];
	for (int i = 0; i < A_N; i++) {
		if (!val[i])
			return bad("missing argument", keys[i]);
		if (i != A_SHM && i != A_HANDLER && i != A_TASKS && i != A_QUEUE && i != A_LOG &&
		    parse_num(val[i], INT32_MIN, INT32_MAX, &n[i], err, sizeof err))
			return bad(keys[i], err);
	}
	int level = log_level_parse(val[A_LOG]);
	if (level < 0)
		return bad("not a log level", val[A_LOG]);
	log_set_level((enum log_level)level);
	struct consumer_config c = {
		.handler = val[A_HANDLER], .task_timeout_ms = (int)n[A_TIMEOUT],
		.batch = n[A_BATCH] > 0 ? (uint32_t)n[A_BATCH] : 1,
		.results_fd = (int)n[A_RESULTS], .tasks_file = *val[A_TASKS] ? val[A_TASKS] : NULL,
		.queue_name = *val[A_QUEUE] ? val[A_QUEUE] : NULL, .journal_fd = (int)n[A_FINISH],
		.restart_backoff_ms = (int)n[A_BACKOFF],
		.restart_backoff_max_ms = (int)n[A_BACKOFF_MAX]};
	struct forq *q;
	if (forq_admin_attach(&q, val[A_SHM], err, sizeof err)) {
		log_event(LOG_ERROR, "attach_failed", "worker=%lld error=\"%s\"", n[A_WORKER], err);
		_exit(CONSUMER_EXIT_ATTACH);
	}
	consumer_main(q, (int)n[A_WORKER], &c, (pid_t)n[A_PARENT]);
}
