/* journal_dir.h — the unit tests' journal directory: files written whole,
 * sizes read, the directory emptied. Include after defining JOURNAL_DIR as
 * the name of a char array holding its path. */
#ifndef FORQ_TEST_JOURNAL_DIR_H
#define FORQ_TEST_JOURNAL_DIR_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_file(const char *name, const void *p, size_t n)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s", JOURNAL_DIR, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static inline off_t file_size(const char *name)
{
	char path[128];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", JOURNAL_DIR, name);
	return stat(path, &st) == 0 ? st.st_size : -1;
}

static void clear_dir(void)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", JOURNAL_DIR, JOURNAL_DIR);
	assert_int_equal(system(cmd), 0);
}

#endif
