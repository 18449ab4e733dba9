/* test_config_file.c — forqd --config FILE (service/config.c over
 * config_file.c): the global section, [queue NAME] sections over it, flags
 * over the file, the default queue's tasks, and every bad line refused with
 * the file and its line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

struct fixture {
	char dir[64];
	char path[96];
	struct forqd_config c;
	char err[512];
};

static int setup(void **state)
{
	struct fixture *x = calloc(1, sizeof *x);
	assert_non_null(x);
	snprintf(x->dir, sizeof x->dir, "/tmp/test_config_file_XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	snprintf(x->path, sizeof x->path, "%s/forqd.conf", x->dir);
	unsetenv("FORQ_ADMIN_TOKEN");
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *x = *state;
	config_free(&x->c);
	unlink(x->path);
	rmdir(x->dir);
	free(x);
	return 0;
}

/* Writes text as the config file, then parses "forqd --config FILE" and the
 * NULL-terminated extra args. */
static int parse(struct fixture *x, const char *text, ...)
{
	char *argv[16] = {"forqd", "--config", x->path};
	int argc = 3;
	va_list ap;
	FILE *f = fopen(x->path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	va_start(ap, text);
	for (char *a; (a = va_arg(ap, char *)) && argc < 15;)
		argv[argc++] = a;
	va_end(ap);
	config_free(&x->c);
	x->err[0] = '\0';
	return config_parse(&x->c, argc, argv, x->err, sizeof x->err);
}

static const struct forqd_config *queue(const struct forqd_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_queues; i++)
		if (!strcmp(c->queues[i].name, name))
			return &c->queues[i];
	fail_msg("no queue %s", name);
	return NULL;
}

static void test_without_a_file_one_queue_named_default(void **state)
{
	struct fixture *x = *state;
	char *argv[] = {"forqd", "--capacity", "8", "--tasks", "t.txt", NULL};
	assert_int_equal(config_parse(&x->c, 5, argv, x->err, sizeof x->err), 0);
	assert_int_equal(x->c.n_queues, 1);
	assert_string_equal(x->c.queues[0].name, "default");
	assert_string_equal(x->c.queues[0].shm_name, "/forq");
	assert_int_equal(x->c.queues[0].capacity, 8);
	assert_string_equal(x->c.queues[0].tasks, "t.txt");
	assert_int_equal(x->c.queues[0].config_line, 0);
}

static void test_queues_over_the_global_section_and_flags_over_the_file(void **state)
{
	struct fixture *x = *state;
	assert_int_equal(parse(x,
			       "# forqd.conf\n"
			       "shm-name = /jobs\n"
			       "http = 127.0.0.1:0\n"
			       "max_attempts = 5 ; every queue's, unless it says otherwise\n"
			       "journal = /var/lib/forq\n"
			       "tasks = t.txt\n"
			       "\n"
			       "[queue emails]\n"
			       "handler = exec:/bin/cat\n"
			       "workers = 3\n"
			       "rate = 2.5\n"
			       "\n"
			       "[ queue default ]\n"
			       "max-attempts = 1\n"
			       "[queue bulk]\n",
			       "--max-attempts", "7", "--tcp", "off", NULL),
			 0);
	assert_int_equal(x->c.n_queues, 3);
	const struct forqd_config *e = queue(&x->c, "emails"), *d = queue(&x->c, "default"),
				  *b = queue(&x->c, "bulk");
	assert_string_equal(e->handler, "exec:/bin/cat");
	assert_int_equal(e->workers, 3);
	assert_true(e->rate == 2.5);
	assert_int_equal(e->max_attempts, 7); /* the flag beat the file's 5 */
	assert_int_equal(d->max_attempts, 1); /* the section beat both */
	assert_int_equal(b->max_attempts, 7);
	assert_string_equal(b->handler, "arith");
	assert_string_equal(e->shm_name, "/jobs.emails");
	assert_string_equal(d->shm_name, "/jobs");
	assert_string_equal(b->journal, "/var/lib/forq/bulk");
	assert_string_equal(d->journal, "/var/lib/forq/default");
	/* Only the default queue reads the global tasks file. */
	assert_string_equal(d->tasks, "t.txt");
	assert_null(e->tasks);
	assert_null(b->tasks);
	assert_string_equal(x->c.http, "127.0.0.1:0");
	assert_string_equal(x->c.tcp, "off");
	assert_int_equal(e->config_line, 8);
	assert_int_equal(d->config_line, 13);
	assert_int_equal(b->config_line, 15);
	/* The handler's own line, where a bad one is reported: emails sets its
	 * own, the others keep the flags' default (no line). */
	assert_int_equal(e->handler_line, 9);
	assert_int_equal(d->handler_line, 0);
	assert_int_equal(b->handler_line, 0);
	/* A global handler is every queue's, at its line, unless a flag beats it. */
	assert_int_equal(parse(x, "workers = 1\nhandler = json\n[queue a]\n", NULL), 0);
	assert_int_equal(queue(&x->c, "a")->handler_line, 2);
	assert_int_equal(parse(x, "handler = json\n", NULL), 0);
	assert_int_equal(queue(&x->c, "default")->handler_line, 1);
	assert_int_equal(parse(x, "handler = json\n", "--handler", "arith", NULL), 0);
	assert_string_equal(queue(&x->c, "default")->handler, "arith");
	assert_int_equal(queue(&x->c, "default")->handler_line, 0);
	/* Booleans read as words. */
	assert_int_equal(parse(x, "keep-shm = yes\nrecover = false\n", NULL), 0);
	assert_int_equal(x->c.keep_shm, 1);
	assert_int_equal(x->c.recover, 0);
}

/* Each bad line is refused with the file and the line, and nothing is kept. */
static void test_every_bad_line_names_its_file_and_line(void **state)
{
	struct fixture *x = *state;
	static const struct {
		const char *text, *line, *why;
	} bad[] = {
		{"http = off\ncolour = blue\n", ":2: ", "unknown key \"colour\""},
		{"[queue a]\nhttp = off\n", ":2: ", "set it in the global section"},
		{"[queue a]\nflavour = x\n", ":2: ", "unknown key"},
		{"\n[queue a]\ncapacity = 0\n", ":3: ", "--capacity"},
		{"[queue a]\nworkers = many\n", ":2: ", "--workers"},
		{"[queue a]\n[queue b]\n\n[queue a]\n", ":4: ", "declared twice (first at line 1)"},
		{"[queue q182]\n\n[queue q258]\n", ":3: ",
		 "queue \"q258\" would share its task ids with queue \"q182\" (line 1)"},
		{"[tube a]\n", ":1: ", "expected [queue NAME]"},
		{"[queue a b]\n", ":1: ", "expected [queue NAME]"},
		{"[queue a.b]\n", ":1: ", "queue name \"a.b\""},
		{"http\n", ":1: ", "expected `key = value`"},
		{"[queue a\n", ":1: ", "expected `key = value`"},
		{"keep-shm = perhaps\n", ":1: ", "expected true or false"},
		{"[queue a]\ntasks = t.txt\ndemo = 5\n", ":1: ", "tasks and demo"},
		{"help = 1\n", ":1: ", "unknown key \"help\""},
		{"config = other.conf\n", ":1: ", "unknown key \"config\""},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(parse(x, bad[i].text, NULL), -1);
		if (!strstr(x->err, x->path) || !strstr(x->err, bad[i].line) ||
		    !strstr(x->err, bad[i].why))
			fail_msg("case %zu: got \"%s\", want %s%s and \"%s\"", i, x->err, x->path,
				 bad[i].line, bad[i].why);
		assert_null(x->c.queues);
	}
	/* A line too long for the reader, not split into two. */
	char text[400] = "[queue a]\nhandler = exec:";
	memset(text + strlen(text), 'x', 250);
	strcat(text, "\nworkers = 2\n");
	assert_int_equal(parse(x, text, NULL), -1);
	assert_non_null(strstr(x->err, ":2: line longer than 198 bytes"));
	/* The file missing. */
	char *argv[] = {"forqd", "--config", "/nonexistent/forqd.conf", NULL};
	assert_int_equal(config_parse(&x->c, 3, argv, x->err, sizeof x->err), -1);
	assert_string_equal(x->err, "/nonexistent/forqd.conf: No such file or directory");
}

static void test_tasks_need_a_default_queue_or_a_section(void **state)
{
	struct fixture *x = *state;
	assert_int_equal(parse(x, "[queue a]\n", "--tasks", "t.txt", NULL), -1);
	assert_non_null(strstr(x->err, "feed the queue \"default\""));
	assert_int_equal(parse(x, "exit-when-done = true\n[queue a]\n", NULL), -1);
	assert_non_null(strstr(x->err, "--exit-when-done needs a queue with tasks FILE"));
	assert_int_equal(parse(x, "exit-when-done = true\n[queue a]\ntasks = t.txt\n", NULL), 0);
	assert_string_equal(queue(&x->c, "a")->tasks, "t.txt");
}

/* Check that upstream, upstream-stream and upstream-results are a queue's keys: a named
 * queue's stream is STREAM-NAME unless its section names one, the default
 * queue keeps STREAM, and a queue without upstream has none; two queues on
 * one stream, or an upstream queue under a journal, are refused. */
static void test_upstream_per_queue(void **state)
{
	struct fixture *x = *state;
	assert_int_equal(parse(x, "upstream-stream = jobs\n[queue default]\nupstream = nats://h:1\n"
				  "[queue mail]\nupstream = nats://h:1\n[queue own]\n"
				  "upstream = nats://g:2\nupstream-stream = S7\n[queue local]\n",
			       NULL), 0);
	assert_string_equal(queue(&x->c, "default")->upstream, "nats://h:1");
	assert_string_equal(queue(&x->c, "default")->upstream_stream, "jobs");
	assert_string_equal(queue(&x->c, "mail")->upstream_stream, "jobs-mail");
	assert_string_equal(queue(&x->c, "own")->upstream, "nats://g:2");
	assert_string_equal(queue(&x->c, "own")->upstream_stream, "S7");
	assert_null(queue(&x->c, "local")->upstream);
	/* The global upstream: every queue, each its own stream. */
	assert_int_equal(parse(x, "upstream = nats://h:1\n[queue a]\n[queue b]\n", NULL), 0);
	assert_string_equal(queue(&x->c, "a")->upstream_stream, "forq-a");
	assert_string_equal(queue(&x->c, "b")->upstream_stream, "forq-b");
	/* The credentials go with an upstream anywhere. */
	assert_int_equal(parse(x, "upstream-replicas = 3\n[queue a]\nupstream = nats://h:1\n", NULL),
			 0);
	assert_int_equal(x->c.upstream_replicas, 3);
	assert_int_equal(parse(x, "upstream-replicas = 3\n[queue a]\n", NULL), -1);
	assert_non_null(strstr(x->err, "need --upstream URLS"));
	/* upstream-results is a queue's: on for one queue, off for another. */
	assert_int_equal(parse(x, "[queue a]\nupstream = nats://h:1\nupstream-results = true\n"
				  "[queue b]\nupstream = nats://h:1\n", NULL), 0);
	assert_int_equal(queue(&x->c, "a")->upstream_results, 1);
	assert_int_equal(queue(&x->c, "b")->upstream_results, 0);
	assert_int_equal(parse(x, "upstream-results = yes\n[queue a]\n", NULL), -1);
	assert_non_null(strstr(x->err, "need --upstream URLS"));
	assert_int_equal(parse(x, "[queue a]\nupstream = nats://h:1\nupstream-stream = S\n"
				  "[queue b]\nupstream = nats://h:1\nupstream-stream = S\n", NULL), -1);
	assert_non_null(strstr(x->err, ":4: queues \"a\" and \"b\" both take the stream S"));
	/* One stream name on two NATS clusters is two streams. */
	assert_int_equal(parse(x, "[queue a]\nupstream = nats://h:1\nupstream-stream = S\n"
				  "[queue b]\nupstream = nats://g:2\nupstream-stream = S\n", NULL), 0);
	/* A journal is the local queues': one fed by a stream is not journaled. */
	assert_int_equal(parse(x, "journal = /tmp/j\n[queue a]\n[queue b]\nupstream = nats://h:1\n",
			       NULL), 0);
	assert_string_equal(queue(&x->c, "a")->journal, "/tmp/j/a");
	assert_null(queue(&x->c, "b")->journal);
	assert_int_equal(parse(x, "journal = /tmp/j\nupstream = nats://h:1\n[queue a]\n", NULL), 0);
	assert_null(queue(&x->c, "a")->journal);
	assert_int_equal(parse(x, "[queue a]\nupstream-replicas = 3\n", NULL), -1);
	assert_non_null(strstr(x->err, "set it in the global section"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_without_a_file_one_queue_named_default, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_queues_over_the_global_section_and_flags_over_the_file,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_bad_line_names_its_file_and_line, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tasks_need_a_default_queue_or_a_section, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_upstream_per_queue, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
