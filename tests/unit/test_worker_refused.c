/*
 * The worker keeps an outcome the store refuses (out of space, as a full disk or a Redis over
 * maxmemory answers), keeps the job's lock meanwhile, records it once the store takes writes
 * again, and tells its owner through the on_event option; at close it gives the outcome up.
 * The store is the memory backend behind a wrapper that refuses outcomes while `full` is set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include <cmocka.h>

#include "jobq.h"
#include "jobq/sys/backend.h"

/* --- a memory backend that refuses outcomes while full ------------------------------------ */

typedef struct refusing {
	jobq_backend base; /* the memory backend's table, a few slots replaced */
	jobq_backend *inner;
} refusing;

static atomic_int full;
static atomic_int refusals;
static refusing *the_store;

static int
r_queue_open(jobq_backend_queue **out, jobq_backend *b, const char *name) {
	jobq_backend *inner = ((refusing *)b)->inner;
	return inner->queue_open(out, inner, name);
}

static void
r_wake(jobq_backend *b) {
	jobq_backend *inner = ((refusing *)b)->inner;
	if (inner->wake != NULL)
		inner->wake(inner);
}

static void
r_free(jobq_backend *b) {
	refusing *r = (refusing *)b;
	r->inner->free(r->inner);
	free(r);
}

static int
refuse(void) {
	atomic_fetch_add(&refusals, 1);
	return jobq_error_set(JOBQ_ENOSPC, "test store: full");
}

static int
r_complete_fetch(jobq_job **jobs, jobq_fetch_info *info, jobq_backend_queue *q,
                 jobq_completion *done, size_t ndone, const char *const *tokens, size_t max,
                 int64_t lock_ms, int64_t now_ms) {
	if (atomic_load(&full) && ndone > 0) {
		for (size_t i = 0; i < ndone; i++)
			done[i].rc = JOBQ_ENOSPC;
		return refuse();
	}
	return the_store->inner->complete_fetch(jobs, info, q, done, ndone, tokens, max, lock_ms,
	                                        now_ms);
}

static int
r_fail(jobq_backend_queue *q, const char *id, const char *token, const jobq_failure *f,
       int64_t now_ms) {
	if (atomic_load(&full))
		return refuse();
	return (the_store->inner->fail)(q, id, token, f, now_ms);
}

static jobq_store *
open_refusing(void) {
	jobq_backend *inner = NULL;
	jobq_store *store = NULL;
	assert_int_equal(jobq_backend_memory_new(&inner, NULL), 0);
	refusing *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	r->base = *inner;
	r->inner = inner;
	r->base.queue_open = r_queue_open;
	r->base.wake = r_wake;
	r->base.free = r_free;
	r->base.complete_fetch = r_complete_fetch;
	r->base.fail = r_fail;
	the_store = r;
	assert_int_equal(jobq_store_open_backend(&store, &r->base, NULL), 0);
	return store;
}

/* --- what the worker tells, and the handler ------------------------------------------------ */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int told[JOBQ_WORKER_RESULT_DROPPED + 1];
static int runs;
static int handler_fails;

static void
on_event(const jobq_worker_event *e, void *payload) {
	(void)payload;
	pthread_mutex_lock(&mu);
	if (e->type >= JOBQ_WORKER_STORE_DOWN && e->type <= JOBQ_WORKER_RESULT_DROPPED &&
	    e->message != NULL && e->message[0] != '\0')
		told[e->type]++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Fills the store as it finishes: its outcome is refused. */
static int
handler(jobq_job *job, void *payload) {
	(void)payload;
	pthread_mutex_lock(&mu);
	runs++;
	pthread_mutex_unlock(&mu);
	atomic_store(&full, 1);
	if (handler_fails)
		return jobq_job_set_error(job, 0, "handler failed");
	return jobq_job_set_result(job, "{\"ok\":true}", 11);
}

static int64_t
mono_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (up to 10 s) until the worker told `type` at least `n` times. */
static int
wait_told(jobq_worker_event_type type, int n) {
	int64_t deadline = mono_ms() + 10000;
	pthread_mutex_lock(&mu);
	while (told[type] < n && mono_ms() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&cv, &mu, &ts);
	}
	int ok = told[type] >= n;
	pthread_mutex_unlock(&mu);
	return ok;
}

enum { LOCK_MS = 200 };

typedef struct fixture {
	jobq_store *store;
	jobq_queue *q;
	jobq_worker *w;
	jobq_job_id id;
} fixture;

static void
start(fixture *f, int fails) {
	atomic_store(&full, 0);
	atomic_store(&refusals, 0);
	memset(told, 0, sizeof(told));
	runs = 0;
	handler_fails = fails;
	f->store = open_refusing();
	assert_int_equal(jobq_queue_open(&f->q, f->store, "q"), 0);
	assert_int_equal(jobq_queue_add(&f->id, f->q, "n", "{}", 2, NULL), JOBQ_ADD_CREATED);
	jobq_worker_options wo = JOBQ_WORKER_OPTIONS_INIT;
	wo.lock_ms = LOCK_MS;
	wo.stalled_interval_ms = 50;
	wo.max_stalled = 0; /* one stall fails the job */
	wo.on_event = on_event;
	assert_int_equal(jobq_worker_new(&f->w, f->q, handler, NULL, &wo), 0);
	assert_int_equal(jobq_worker_start(f->w), 0);
	assert_true(wait_told(JOBQ_WORKER_RESULT_REFUSED, 1));
	assert_true(wait_told(JOBQ_WORKER_STORE_DOWN, 1));
	/* Refused for more than three lock periods: the heartbeat keeps the lock, and the
	 * stalled check (every 50 ms) finds nothing. */
	int64_t until = mono_ms() + 3 * LOCK_MS;
	for (int i = 0; i < 1000 && (mono_ms() < until || atomic_load(&refusals) < 3); i++) {
		struct timespec pause = {0, 10 * 1000000L};
		nanosleep(&pause, NULL);
	}
	assert_true(mono_ms() >= until && atomic_load(&refusals) >= 3);
	jobq_state st;
	assert_int_equal(jobq_queue_get_state(&st, f->q, f->id.str), 0);
	assert_int_equal(st, JOBQ_STATE_ACTIVE);
}

static void
stop(fixture *f) {
	jobq_worker_free(f->w);
	jobq_queue_close(f->q);
	jobq_store_close(f->store);
}

/* A refused completion is kept and recorded later; the handler ran once. */
static void
completion_recorded_late(void **state) {
	(void)state;
	fixture f;
	start(&f, 0);
	atomic_store(&full, 0);
	assert_true(wait_told(JOBQ_WORKER_RESULT_RECORDED, 1));
	assert_true(wait_told(JOBQ_WORKER_STORE_UP, 1));
	jobq_job *job = NULL;
	assert_int_equal(jobq_queue_get_job(&job, f.q, f.id.str), 0);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_COMPLETED);
	assert_string_equal(jobq_job_result(job), "{\"ok\":true}");
	jobq_job_free(job);
	stop(&f);
	assert_int_equal(runs, 1);
	assert_int_equal(told[JOBQ_WORKER_LOCK_LOST], 0);
	assert_int_equal(told[JOBQ_WORKER_RESULT_DROPPED], 0);
}

/* A refused failed attempt likewise: the job ends failed for the handler's reason, not for
 * stalling. */
static void
failure_recorded_late(void **state) {
	(void)state;
	fixture f;
	start(&f, 1);
	atomic_store(&full, 0);
	assert_true(wait_told(JOBQ_WORKER_RESULT_RECORDED, 1));
	jobq_job *job = NULL;
	assert_int_equal(jobq_queue_get_job(&job, f.q, f.id.str), 0);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_FAILED);
	assert_string_equal(jobq_job_failed_reason(job), "handler failed");
	jobq_job_free(job);
	stop(&f);
	assert_int_equal(runs, 1);
	assert_int_equal(told[JOBQ_WORKER_LOCK_LOST], 0);
}

/* Still refused at close's deadline: given up and told; the job stays active. */
static void
completion_given_up_at_close(void **state) {
	(void)state;
	fixture f;
	start(&f, 0);
	assert_int_equal(jobq_worker_close(f.w, 100), 0);
	assert_int_equal(told[JOBQ_WORKER_RESULT_DROPPED], 1);
	assert_int_equal(told[JOBQ_WORKER_RESULT_RECORDED], 0);
	atomic_store(&full, 0);
	jobq_state st;
	assert_int_equal(jobq_queue_get_state(&st, f.q, f.id.str), 0);
	assert_int_equal(st, JOBQ_STATE_ACTIVE);
	stop(&f);
	assert_int_equal(runs, 1);
}

/* The job vanishes while its refused outcome is kept (obliterated): the heartbeat's extend
 * answers JOBQ_ENOTFOUND, which, like JOBQ_ELOCKLOST and JOBQ_ESTATE, means the lock is
 * lost (backend.h's lock checks): the worker says so, instead of taking it for a store that
 * cannot take writes. */
static void
lock_lost_when_the_job_vanishes(void **state) {
	(void)state;
	fixture f;
	start(&f, 0);
	assert_int_equal(told[JOBQ_WORKER_LOCK_LOST], 0);
	assert_int_equal(jobq_queue_obliterate(f.q, 1), 0);
	assert_true(wait_told(JOBQ_WORKER_LOCK_LOST, 1));
	atomic_store(&full, 0);
	stop(&f);
	assert_int_equal(runs, 1);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(completion_recorded_late),
	    cmocka_unit_test(failure_recorded_late),
	    cmocka_unit_test(completion_given_up_at_close),
	    cmocka_unit_test(lock_lost_when_the_job_vanishes),
	};
	return cmocka_run_group_tests_name("worker_refused", tests, NULL, NULL);
}
