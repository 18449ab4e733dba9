/* grow.h — room for one more element in a growable array (v, *cap) that
 * holds n: v itself while there is room, else v reallocated to twice *cap
 * (64 at first) and *cap updated, or NULL (v untouched) out of memory. */
#ifndef FORQ_GROW_H
#define FORQ_GROW_H

#include <stddef.h>
#include <stdlib.h>

static inline void *grow_for_one(void *v, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return v;
	size_t c = *cap ? 2 * *cap : 64;
	void *p = realloc(v, c * elem);
	if (p)
		*cap = c;
	return p;
}

#endif
