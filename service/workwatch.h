/* workwatch.h — tasks arriving in the queue, as an event in forqd's loop.
 *
 * Tasks are pushed into shared memory by other processes; what they leave
 * behind is a futex word (forq_admin.h's work wake-ups). A loop cannot wait
 * on a futex, so a small thread does: armed, it sleeps on the word and, when
 * the word moves, writes an eventfd that the loop watches. It sleeps without
 * a timeout: nothing here polls. forqd arms it only while something waits
 * for tasks (a parked GET_TASK WAIT, or forqd idle), because while armed
 * every push pays one futex wake-up.
 *
 * Between two rounds of the loop:
 *
 *	if (work_watch_begin(w, want)) {  // registered, word read
 *		look for tasks (serve parked GETs, ...);
 *		work_watch_arm(w, still_want); // sleep on the word read before
 *	}
 *
 * Reading the word before looking is what makes it race-free: a push after
 * the read moves the word, so the thread wakes even if the look missed it. */
#ifndef FORQ_WORKWATCH_H
#define FORQ_WORKWATCH_H

#include "forq_admin.h"
#include "loop.h"

struct work_watch;

/* Starts the thread and registers its eventfd in l; on_work(ctx) runs in the
 * loop after the word moved. Returns 0 or -errno. */
int work_watch_start(struct work_watch **wp, struct forq *q, struct loop *l,
		     void (*on_work)(void *ctx), void *ctx);
/* want: something waits for tasks now. Returns 1 when the caller must look
 * for tasks and then call work_watch_arm; 0 when nothing is to be done (not
 * wanted, or already armed on a word read before every look since). */
int work_watch_begin(struct work_watch *w, int want);
/* still_want: the look found nothing for someone who waits. */
void work_watch_arm(struct work_watch *w, int still_want);
/* Stops and joins the thread (it is woken with forq_admin_work_kick). NULL
 * is fine. */
void work_watch_stop(struct work_watch *w);

#endif
