/* tasks_file.h — tasks for `forqd --tasks FILE` and `forq push --file`: one
 * per line by default, or, for payloads that hold newlines or any bytes, one
 * per NUL-terminated record or one JSON value per line (enum tasks_format).
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

/* The forms a stream of tasks may take:
 *   TASKS_LINES  the line grammar above (priority= prefixes, comments);
 *   TASKS_NUL    records ended (or separated) by a NUL byte, as `find -print0`
 *                writes them: each record's bytes are one payload, exactly,
 *                newlines and all; an empty record is refused;
 *   TASKS_JSONL  one JSON value per line (blank lines skipped): a string's
 *                decoded text or any other value's compact JSON text, the
 *                rule of POST /tasks (json_payload.h).
 * The last two carry no priority: every task gets the reader's. */
enum tasks_format { TASKS_LINES, TASKS_NUL, TASKS_JSONL };

/* "lines", "nul" or "jsonl" -> enum tasks_format, else -EINVAL. */
int tasks_format_parse(const char *name);

/* Reads a tasks file (or "-" for stdin) in large blocks; no allocation per
 * record. Records of any length up to what max_payload allows. */
struct tasks_reader;

/* Opens path for reading as TASKS_LINES. Returns 0, or -errno with err like
 *   cannot open tasks.txt: No such file or directory */
int tasks_reader_open(struct tasks_reader **rp, const char *path, size_t max_payload, char *err,
		      size_t errlen);
/* The same for any format; prio (enum forq_prio) is every task's for the
 * formats without a priority of their own. */
int tasks_reader_open_as(struct tasks_reader **rp, const char *path, enum tasks_format format,
			 int prio, size_t max_payload, char *err, size_t errlen);

/* Reads the next task. Returns
 *    1  a task in *out (payload valid until the next call), its line (or
 *       record) in *lineno;
 *    0  end of file;
 *   -1  a bad line (its number in *lineno), err is `FILE:LINE: reason` (for
 *       TASKS_NUL `FILE: record N: reason`); the next call goes on with the
 *       following one. A line longer than
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
