/*
 * Redis backend: blocking waits for work and for events, and wake().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq_lua.h"
#include "redis_ops.h"

/* --- blocking waits ------------------------------------------------------------------------- */

static void
waiter_add(redis_backend *b, rwaiter *w) {
	pthread_mutex_lock(&b->mu);
	w->next = b->waiters;
	b->waiters = w;
	pthread_mutex_unlock(&b->mu);
}

static void
waiter_remove(redis_backend *b, rwaiter *w) {
	pthread_mutex_lock(&b->mu);
	for (rwaiter **p = &b->waiters; *p != NULL; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	pthread_mutex_unlock(&b->mu);
}

/* Marks `w` as about to block unless a wake happened since `gen`; returns 0 if woken. */
static int
waiter_arm(redis_backend *b, rwaiter *w, uint64_t gen) {
	pthread_mutex_lock(&b->mu);
	int ok = b->wake_gen == gen && !w->q->closing;
	w->blocking = ok;
	pthread_mutex_unlock(&b->mu);
	return ok;
}

static int
waiter_disarm(redis_backend *b, rwaiter *w, uint64_t gen) {
	pthread_mutex_lock(&b->mu);
	w->blocking = 0;
	int woken = b->wake_gen != gen;
	pthread_mutex_unlock(&b->mu);
	return woken;
}

/* Enters a blocking wait on `q`; JOBQ_ECLOSED once the queue is closing. */
static int
wait_enter(jobq_backend_queue *q) {
	pthread_mutex_lock(&q->b->mu);
	int closing = q->closing;
	if (!closing)
		q->waits++;
	pthread_mutex_unlock(&q->b->mu);
	return closing ? jobq_error_set(JOBQ_ECLOSED, "redis: queue %s is closed", q->name) : 0;
}

/* Leaves a blocking wait; turns `rc` into JOBQ_ECLOSED if the queue closed meanwhile. */
static int
wait_leave(jobq_backend_queue *q, int rc) {
	redis_backend *b = q->b;
	pthread_mutex_lock(&b->mu);
	/* the closer frees `q` once waits drops to 0: touch nothing of it after that */
	if (q->closing && rc >= 0)
		rc = jobq_error_set(JOBQ_ECLOSED, "redis: queue %s was closed during the wait",
		                    q->name);
	q->waits--;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	return rc;
}

static int
closing(jobq_backend_queue *q) {
	pthread_mutex_lock(&q->b->mu);
	int c = q->closing;
	pthread_mutex_unlock(&q->b->mu);
	return c;
}

static uint64_t
wake_gen(redis_backend *b) {
	pthread_mutex_lock(&b->mu);
	uint64_t g = b->wake_gen;
	pthread_mutex_unlock(&b->mu);
	return g;
}

/* Runs a blocking command on a dedicated connection registered for wake() and named `name`
 * (a waiting worker or an event reader, as Node names its connections). `block_ms` is
 * how long the server may block. Returns the reply or NULL (rc set; 0 and NULL when woken). */
static redisReply *
blocking_command(int *rc, jobq_backend_queue *q, const char *name, uint64_t gen, int64_t block_ms,
                 int argc, const char **argv) {
	redis_backend *b = q->b;
	rconn *conn = NULL;
	*rc = rq_conn_get_named(&conn, b, name);
	if (*rc < 0)
		return NULL;
	rwaiter w = {conn->client_id, q, 0, NULL};
	waiter_add(b, &w);
	redisReply *r = NULL;
	if (waiter_arm(b, &w, gen)) {
		/* the socket timeout outlasts the server-side block by the command timeout */
		int64_t t = (block_ms > 0 ? block_ms : 0) + (b->command_timeout_ms > 0
		                                                 ? b->command_timeout_ms
		                                                 : RQ_DEFAULT_COMMAND_TIMEOUT_MS);
		rq_conn_set_timeout(conn, t);
		r = rq_conn_command_named(conn, name, argc, argv);
		if (r == NULL)
			*rc = rq_io_error(b, conn->c, argv[0], t,
			                  "its blocking time plus command_timeout_ms", "");
	}
	waiter_disarm(b, &w, gen);
	waiter_remove(b, &w);
	rq_conn_put(b, conn, 1);
	if (r != NULL && r->type == REDIS_REPLY_ERROR) {
		/* a cluster redirect ends the wait like a timeout: the caller's next command
		 * (hasWork, XREAD) follows it, on the master a MOVED points the queue to */
		rq_redir redir = {0, 0};
		char host[256];
		int port;
		if (b->route != NULL && rq_route_is_redirect(r->str))
			rq_route_follow(b, r->str, &redir, host, sizeof(host), &port);
		else if (strncmp(r->str, "UNBLOCKED", 9) != 0)
			*rc = jobq_error_set(JOBQ_EBACKEND, "redis %s: %s", b->where, r->str);
		freeReplyObject(r);
		r = NULL;
	}
	return r;
}

#define MAX_BLOCK_MS 10000 /* as Node's workers: never block longer than 10 s at once */

static int
wait_for_work(jobq_backend_queue *q, jobq_clock *clock, int64_t timeout_ms) {
	redis_backend *b = q->b;
	uint64_t gen = wake_gen(b);
	int64_t deadline = timeout_ms >= 0 ? jobq__mono_ms() + timeout_ms : INT64_MAX;
	for (;;) {
		int64_t now = jobq_clock_now(clock);
		numbuf n1;
		const char *av[] = {rq_fmt_i64(&n1, now)};
		int rc;
		redisReply *r = rq_script(&rc, q, JOBQ_LUA_HASWORK, 1, av, NULL);
		if (r == NULL)
			return rc;
		long long ready = 0, due = 0;
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
			rq_reply_int(r->element[0], &ready);
			rq_reply_int(r->element[1], &due);
		}
		freeReplyObject(r);
		if (ready)
			return 0;
		int64_t left = deadline == INT64_MAX ? MAX_BLOCK_MS : deadline - jobq__mono_ms();
		if (left <= 0)
			return 0;
		int64_t block = left < MAX_BLOCK_MS ? left : MAX_BLOCK_MS;
		if (due > 0 && due - now < block)
			block = due - now;
		if (block < 1)
			block = 1;
		char secs[32];
		snprintf(secs, sizeof(secs), "%.3f", (double)block / 1000.0);
		const char *bv[] = {"BZPOPMIN", q->keys[11], secs};
		/* One waiting connection of the queue carries the worker's name: Node's getWorkers
		 * counts named connections, and a jobq worker counts once however many of its
		 * threads wait. The named connection stays open (and listed) between waits. Not
		 * while named workers hold their own (redis_presence.c): they are listed already.
		 */
		int unnamed = 0;
		int named = atomic_load(&q->attached) == 0 &&
		            atomic_compare_exchange_strong(&q->named_wait, &unnamed, 1);
		r = blocking_command(&rc, q, named ? q->worker_name : NULL, gen, block, 3, bv);
		if (named)
			atomic_store(&q->named_wait, 0);
		if (rc < 0)
			return rc;
		if (r == NULL) {
			if (wake_gen(b) != gen || closing(q))
				return 0; /* woken */
			if (due > 0 && jobq_clock_now(clock) >= due)
				return 0;
			continue; /* slice timed out: look again */
		}
		/* a marker popped: "0" means work; "1" carries a due time */
		int is_delay = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
		               r->element[1]->type == REDIS_REPLY_STRING &&
		               strcmp(r->element[1]->str, "1") == 0;
		double score = is_delay ? strtod(r->element[2]->str, NULL) : 0;
		freeReplyObject(r);
		if (!is_delay || score <= (double)jobq_clock_now(clock))
			return 0;
		/* a future due time: the next round of hasWork computes the sleep */
	}
}

int
rq_wait_for_work(jobq_backend_queue *q, jobq_clock *clock, int64_t timeout_ms) {
	int rc = wait_enter(q);
	if (rc < 0)
		return rc;
	return wait_leave(q, wait_for_work(q, clock, timeout_ms));
}

void
rq_wake(jobq_backend *base) {
	redis_backend *b = (redis_backend *)base;
	pthread_mutex_lock(&b->mu);
	b->wake_gen++;
	pthread_mutex_unlock(&b->mu);
	rq_unblock_waiters(b, NULL);
}

/* CLIENT UNBLOCK for the blocking waits of queue `only` (NULL: every queue). */
void
rq_unblock_waiters(redis_backend *b, jobq_backend_queue *only) {
	long long ids[64];
	size_t n = 0;
	pthread_mutex_lock(&b->mu);
	for (rwaiter *w = b->waiters; w != NULL && n < 64; w = w->next)
		if (only == NULL || w->q == only)
			ids[n++] = w->client_id;
	pthread_mutex_unlock(&b->mu);
	for (size_t i = 0; i < n; i++) {
		/* CLIENT UNBLOCK answers 0 while the waiter has not reached the server yet: retry
		 * shortly while it is still registered as blocking */
		for (int tries = 0; tries < 100; tries++) {
			char idbuf[24];
			snprintf(idbuf, sizeof(idbuf), "%lld", ids[i]);
			const char *av[] = {"CLIENT", "UNBLOCK", idbuf};
			int rc;
			redisReply *r = rq_command(&rc, b, 1, 3, av, NULL);
			if (r == NULL)
				break;
			int done = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
			freeReplyObject(r);
			if (done)
				break;
			int still = 0;
			pthread_mutex_lock(&b->mu);
			for (rwaiter *w = b->waiters; w != NULL; w = w->next)
				if (w->client_id == ids[i] && w->blocking)
					still = 1;
			pthread_mutex_unlock(&b->mu);
			if (!still)
				break;
			struct timespec ts = {0, 1000000L};
			nanosleep(&ts, NULL);
		}
	}
}

/* --- events --------------------------------------------------------------------------------- */

static int
events_read(jobq_event_list **out, jobq_backend_queue *q, const char *after, size_t max,
            int64_t timeout_ms) {
	redis_backend *b = q->b;
	uint64_t gen = wake_gen(b);
	int rc = jobq_event_list__new(out);
	if (rc < 0)
		return rc;
	char cursor[64];
	snprintf(cursor, sizeof(cursor), "%s", after);
	if (strcmp(after, "$") == 0) {
		/* resolve "$" to the newest id so that the returned cursor can be reused */
		const char *av[] = {"XREVRANGE", q->keys[14], "+", "-", "COUNT", "1"};
		redisReply *r = rq_command(&rc, b, 1, 6, av, NULL);
		if (r == NULL)
			goto fail;
		snprintf(cursor, sizeof(cursor), "0-0");
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
		    r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
			snprintf(cursor, sizeof(cursor), "%s", r->element[0]->element[0]->str);
		freeReplyObject(r);
	}
	numbuf n1, n2;
	const char *av[9];
	int argc = 0;
	av[argc++] = "XREAD";
	if (max > 0) {
		av[argc++] = "COUNT";
		av[argc++] = rq_fmt_i64(&n1, (int64_t)max);
	}
	int64_t block = timeout_ms < 0 ? MAX_BLOCK_MS : timeout_ms;
	int64_t deadline = jobq__mono_ms() + timeout_ms;
	int blocking = timeout_ms != 0;
	if (blocking) {
		av[argc++] = "BLOCK";
		av[argc++] = "";
	}
	av[argc++] = "STREAMS";
	av[argc++] = q->keys[14];
	av[argc++] = cursor;
	redisReply *r = NULL;
	for (;;) {
		if (blocking) {
			if (timeout_ms >= 0) {
				block = deadline - jobq__mono_ms();
				if (block > MAX_BLOCK_MS)
					block = MAX_BLOCK_MS;
				if (block < 1)
					block = 1;
			}
			av[argc - 4] = rq_fmt_i64(&n2, block);
			r = blocking_command(&rc, q, q->events_name, gen, block, argc, av);
		} else {
			r = rq_command(&rc, b, 1, argc, av, NULL);
		}
		if (rc < 0)
			goto fail;
		if (r != NULL && r->type == REDIS_REPLY_ARRAY)
			break;
		if (r != NULL)
			freeReplyObject(r);
		r = NULL;
		if (!blocking || wake_gen(b) != gen || closing(q) ||
		    (timeout_ms >= 0 && jobq__mono_ms() >= deadline))
			break;
	}
	if (r != NULL) {
		rc = rq_events_from_reply(*out, r);
		freeReplyObject(r);
		if (rc < 0)
			goto fail;
	}
	if (jobq_event_list_count(*out) == 0 &&
	    (rc = jobq_event_list__set_cursor(*out, cursor)) < 0)
		goto fail;
	return 0;
fail:
	jobq_event_list_free(*out);
	*out = NULL;
	return rc;
}

int
rq_events_read(jobq_event_list **out, jobq_backend_queue *q, const char *after, size_t max,
               int64_t timeout_ms) {
	int rc = wait_enter(q);
	if (rc < 0)
		return rc;
	rc = wait_leave(q, events_read(out, q, after, max, timeout_ms));
	if (rc < 0 && *out != NULL) {
		jobq_event_list_free(*out);
		*out = NULL;
	}
	return rc;
}
