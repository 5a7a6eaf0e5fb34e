/*
 * Redis backend: calls of several threads on one queue handle combined into one script call
 * (used by the adds of redis_add.c and complete_fetch of redis_finish.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq_lua.h"
#include "redis_ops.h"

/* --- calls of several threads combined into one script call ------------------------------- */

/*
 * Adds and complete_fetch combine the calls that threads make at the same time on one queue
 * handle into one script call (a "flight"): each call's steps run in order inside the one
 * atomic script, exactly as they would in a script of their own, and each call takes effect
 * within its own interval, so this is invisible but for the number of round trips. A call
 * that arrives while RQ_FLIGHTS flights of its kind are on the wire queues up; the first
 * queued call leads the next flight with the compatible calls queued behind it, up to
 * `max_steps` (so that one script stays short; a larger call flies alone). Each call waits
 * on its own condition: finishing a flight wakes one member (which wakes the next) and the
 * next leader only.
 *
 * Several flights at once: while the client takes in one flight's reply and its members
 * wake, the server works on the others, instead of waiting for the client (BENCHMARKS.md,
 * "Redis", has the measurement behind 8).
 */
enum { RQ_FLIGHTS = 8 };

void
rq_combine(rq_combiner *c, jobq_backend_queue *q, rq_call *me, size_t max_steps, rq_fly_fn fly) {
	pthread_cond_init(&me->cv, NULL);
	me->finished = me->released = me->urgent = 0;
	me->next = me->wake_next = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->tail != NULL)
		c->tail->next = me;
	else
		c->head = me;
	c->tail = me;
	while (!me->finished || !me->released) {
		if (me->finished || c->head != me || c->flying >= RQ_FLIGHTS) {
			pthread_cond_wait(&me->cv, &c->mu);
			continue;
		}
		rq_call *last = me;
		size_t steps = me->steps;
		while (last->next != NULL && last->next->key == me->key &&
		       steps + last->next->steps <= max_steps) {
			last = last->next;
			steps += last->steps;
		}
		c->head = last->next;
		if (c->head == NULL)
			c->tail = NULL;
		last->next = NULL;
		c->flying++;
		/* the next queued call may lead a flight of its own meanwhile */
		if (c->head != NULL && c->flying < RQ_FLIGHTS)
			pthread_cond_signal(&c->head->cv);
		pthread_mutex_unlock(&c->mu);
		fly(q, me);
		pthread_mutex_lock(&c->mu);
		c->flying--;
		/*
		 * The members wake one another in a chain, those with work to do (jobs fetched)
		 * first: the leader signals one thread instead of all, and each member, once
		 * released by the one before it, releases the next as it leaves.
		 */
		rq_call *first = NULL, **link = &first;
		for (int pass = 1; pass >= 0; pass--) {
			for (rq_call *r = me->next; r != NULL; r = r->next) {
				if (r->urgent == pass) {
					*link = r;
					link = &r->wake_next;
				}
			}
		}
		for (rq_call *r = me->next; r != NULL; r = r->next)
			r->finished = 1;
		me->finished = me->released = 1;
		if (first != NULL) {
			first->released = 1;
			pthread_cond_signal(&first->cv);
		}
		if (c->head != NULL && c->flying < RQ_FLIGHTS)
			pthread_cond_signal(&c->head->cv);
	}
	/* `wake_next` waits for this before it may leave: it is still there */
	if (me->wake_next != NULL) {
		me->wake_next->released = 1;
		pthread_cond_signal(&me->wake_next->cv);
	}
	pthread_mutex_unlock(&c->mu);
	pthread_cond_destroy(&me->cv);
}
