/* tasks_file.h — tasks for `forqd --tasks FILE`, one per line.
 *
 * Line grammar (bytes; no encoding is checked here):
 *   blank lines and lines whose first non-blank byte is '#' are skipped;
 *   an optional prefix `priority=high|normal|low` followed by blanks;
 *   then the payload: the rest of the line, with leading blanks, trailing
 *   blanks and a trailing '\r' removed ("blank" is a space or a tab).
 * A payload cannot itself start with "priority=". Lines without a prefix get
 * FORQ_NORMAL.
 *
 * Errors are text in the caller's buffer, in the form users see:
 *   tasks.txt:17: unknown priority "urgent" (use high, normal or low)
 * Nothing here prints, exits or keeps a global.
 */
#ifndef FORQ_TASKS_FILE_H
#define FORQ_TASKS_FILE_H

#include <stddef.h>

/* Bytes a line may have beyond max_payload (prefix, blanks, "\r"): longer
 * lines are refused without being read whole. */
#define TASKS_LINE_SLACK 64

struct task_line {
	int prio;            /* enum forq_prio */
	const char *payload; /* points into the parsed line, not NUL-terminated */
	size_t len;          /* 1 .. max_payload */
};

/* Parses one line of len bytes (no '\n'). Returns 1 for a task in *out (payload
 * points into line), 0 for nothing (blank or comment), -1 for a bad line with
 * the reason in err (no file:line), e.g.
 *   unknown priority "urgent" (use high, normal or low)
 *   empty payload after priority=high
 *   payload is 2048 bytes, over the limit of 1024
 *   line contains a NUL byte
 * err may be NULL when errlen is 0. This function can't fail otherwise. */
int tasks_line_parse(const char *line, size_t len, size_t max_payload, struct task_line *out,
		     char *err, size_t errlen);

/* Reads a tasks file (or "-" for stdin) in large blocks; no allocation per
 * line. Lines of any length up to max_payload + TASKS_LINE_SLACK bytes. */
struct tasks_reader;

/* Opens path for reading. Returns 0, or -errno with err like
 *   cannot open tasks.txt: No such file or directory */
int tasks_reader_open(struct tasks_reader **rp, const char *path, size_t max_payload, char *err,
		      size_t errlen);

/* Reads the next task. Returns
 *    1  a task in *out (payload valid until the next call), its line in *lineno;
 *    0  end of file;
 *   -1  a bad line (its number in *lineno), err is `FILE:LINE: reason`; the
 *       next call goes on with the following line. A line longer than
 *       max_payload + TASKS_LINE_SLACK bytes is reported as
 *       `line is longer than N bytes` and skipped without buffering it whole;
 *   other negative: -errno of a read error, err says it (repeated on later
 *       calls).
 * The last line needs no final newline. */
int tasks_reader_next(struct tasks_reader *r, struct task_line *out, unsigned *lineno, char *err,
		      size_t errlen);

/* Closes the file (not stdin) and frees the reader. NULL is fine. */
void tasks_reader_close(struct tasks_reader *r);

#endif
