/* config_file.h — forqd's config file (--config FILE), read with libinih.
 *
 * INI: `key = value` lines, `#` or `;` comments, a global section first (no
 * header) and then `[queue NAME]` sections. Keys are forqd's long flag
 * names (`max-payload`, or `max_payload`). This module only reads the file
 * into entries, each with its line; config.c decides what they mean. */
#ifndef FORQ_CONFIG_FILE_H
#define FORQ_CONFIG_FILE_H

#include <stddef.h>

struct config_entry {
	char *section; /* "" for the global section */
	char *key;     /* '_' already turned into '-' */
	char *value;
	int line;
	int section_line; /* the line of the section's header, 0 for the global one */
};

/* Reads path into *out (n entries, in file order). Returns 0, or -1 with
 * err as "PATH:LINE: reason" (or "PATH: reason" when it cannot be read). A
 * section with no keys still yields one entry with key and value NULL, so
 * that every section is seen. */
int config_file_load(const char *path, struct config_entry **out, size_t *n, char *err,
		     size_t errlen);

void config_file_free(struct config_entry *e, size_t n);

#endif
