/* bench_durable.c — push-to-journaled latency of forq bench (bench_durable.h). */
#include "bench_durable.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int dlat_init(struct dlat *d, size_t batches)
{
	memset(d, 0, sizeof *d);
	d->cap = batches ? batches : 1;
	d->push_ns = malloc(d->cap * sizeof *d->push_ns);
	d->upto = malloc(d->cap * sizeof *d->upto);
	d->lat = malloc(d->cap * sizeof *d->lat);
	if (!d->push_ns || !d->upto || !d->lat) {
		dlat_free(d);
		return -ENOMEM;
	}
	return 0;
}

void dlat_pushed(struct dlat *d, uint64_t t_ns, uint64_t upto)
{
	if (d->n == d->cap)
		return;
	d->push_ns[d->n] = t_ns;
	d->upto[d->n++] = upto;
}

void dlat_seen(struct dlat *d, uint64_t durable, uint64_t now_ns)
{
	while (d->seen < d->n && d->upto[d->seen] <= durable) {
		d->lat[d->nlat++] = now_ns - d->push_ns[d->seen];
		d->seen++;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

double dlat_quantile_us(struct dlat *d, double q)
{
	if (!d->nlat)
		return 0;
	qsort(d->lat, d->nlat, sizeof *d->lat, cmp_u64);
	size_t i = (size_t)(q * (double)(d->nlat - 1) + 0.5);
	return (double)d->lat[i < d->nlat ? i : d->nlat - 1] / 1e3;
}

void dlat_free(struct dlat *d)
{
	free(d->push_ns);
	free(d->upto);
	free(d->lat);
	memset(d, 0, sizeof *d);
}
