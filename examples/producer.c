/* producer.c — push tasks into a running forqd through libforq.
 *
 *   cc producer.c $(pkg-config --cflags --libs forq) -o producer
 *   ./producer /forq 1000        # queue name, number of tasks
 *
 * Pushes "i*i+1" for i = 1..N in batches of 64 (one synchronisation step a
 * batch) at normal priority, waiting up to 5 s while the queue is full, and
 * prints the first and last id. forqd's arith handler computes the results. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <forq.h>

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "/forq";
	long n = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
	char err[256];
	struct forq *q;

	int r = forq_open(&q, name, err, sizeof err);
	if (r) {
		fprintf(stderr, "producer: %s\n", err);
		return 1;
	}
	char text[64][32];
	struct forq_msg batch[64];
	uint64_t ids[64], first = 0, last = 0;
	for (long i = 1; i <= n;) {
		size_t k = 0;
		for (; k < 64 && i <= n; k++, i++) {
			int len = snprintf(text[k], sizeof text[k], "%ld*%ld+1", i, i);
			batch[k] = (struct forq_msg){text[k], (uint32_t)len};
		}
		r = forq_push_batch(q, FORQ_NORMAL, batch, k, 5000, ids);
		if (r) {
			fprintf(stderr, "producer: push failed: %s\n",
				r == -EAGAIN ? "queue full" : strerror(-r));
			forq_close(q);
			return 1;
		}
		if (!first)
			first = ids[0];
		last = ids[k - 1];
	}
	printf("pushed %ld tasks, ids %llu..%llu\n", n, (unsigned long long)first,
	       (unsigned long long)last);
	forq_close(q);
	return 0;
}
