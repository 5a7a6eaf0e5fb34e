/*
 * Queue limits (include/jobq/limits.h): validation, then one backend step. The rules live in
 * the engines (src/engine/limits.h for memory and LMDB, lua/includes/fetch.lua for Redis).
 */
#include <stdio.h>

#include "core.h"
#include "backends/backend.h"

/* The checks of every limit call: an open queue on a backend with limits. */
static int
limits_check(jobq_queue *q, const char *what) {
	int rc = jobq_queue__check(q, what);
	return rc < 0 ? rc : jobq__backend_has_limits(q->store->backend, what);
}

/* 1..JOBQ_LIMIT_MAX, else JOBQ_EINVAL naming `field`. */
static int
limit_value(const char *what, const char *field, int64_t v) {
	if (v <= 0 || v > JOBQ_LIMIT_MAX)
		return jobq_error_set(JOBQ_EINVAL, "%s: %s %lld is not in 1..%d", what, field,
		                      (long long)v, JOBQ_LIMIT_MAX);
	return 0;
}

static int
set_limits(jobq_queue *q, const jobq_queue_limits *l, unsigned int what) {
	return q->store->backend->set_limits(q->bq, l, what, jobq_queue__now(q));
}

int
jobq_queue_set_rate_limit(jobq_queue *q, int64_t max, int64_t duration_ms) {
	const char *what = "set rate limit";
	int rc = limits_check(q, what);
	if (rc < 0 || (rc = limit_value(what, "max", max)) < 0 ||
	    (rc = limit_value(what, "duration", duration_ms)) < 0)
		return rc;
	jobq_queue_limits l = {.max = max, .duration_ms = duration_ms};
	return set_limits(q, &l, JOBQ_LIMITS_RATE);
}

int
jobq_queue_remove_rate_limit(jobq_queue *q) {
	int rc = limits_check(q, "remove rate limit");
	jobq_queue_limits none = {0};
	return rc < 0 ? rc : set_limits(q, &none, JOBQ_LIMITS_RATE);
}

int
jobq_queue_set_concurrency(jobq_queue *q, int64_t n) {
	const char *what = "set concurrency";
	int rc = limits_check(q, what);
	if (rc < 0 || (rc = limit_value(what, "concurrency", n)) < 0)
		return rc;
	jobq_queue_limits l = {.concurrency = n};
	return set_limits(q, &l, JOBQ_LIMITS_CONCURRENCY);
}

int
jobq_queue_remove_concurrency(jobq_queue *q) {
	int rc = limits_check(q, "remove concurrency");
	jobq_queue_limits none = {0};
	return rc < 0 ? rc : set_limits(q, &none, JOBQ_LIMITS_CONCURRENCY);
}

int
jobq_queue_get_limits(jobq_queue_limits *out, jobq_queue *q) {
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "get limits: out is NULL");
	int rc = limits_check(q, "get limits");
	if (rc < 0)
		return rc;
	jobq_queue_limits l = {0};
	rc = q->store->backend->get_limits(&l, q->bq, jobq_queue__now(q));
	if (rc == 0)
		*out = l;
	return rc;
}

int
jobq_queue_rate_limit(jobq_queue *q, int64_t ms) {
	const char *what = "rate limit";
	int rc = limits_check(q, what);
	if (rc < 0 || (rc = limit_value(what, "ms", ms)) < 0)
		return rc;
	return q->store->backend->rate_limit(q->bq, ms, jobq_queue__now(q));
}

int
jobq_job_rate_limit(jobq_job *job, int64_t ms) {
	const char *what = "job rate limit";
	if (job == NULL || job->rt == NULL || job->rt->queue == NULL || job->token == NULL)
		return jobq_error_set(JOBQ_EINVAL, "%s: the job is not one a worker fetched", what);
	int rc = jobq_queue_rate_limit(job->rt->queue, ms);
	if (rc < 0)
		return rc;
	job->rt->rate_limit_ms = ms;
	return jobq_error_set(JOBQ_ERROR, "job %s: rate-limited the queue for %lld ms", job->id,
	                      (long long)ms);
}

/* --- a worker held back by the rate limiter (worker.c) ------------------------------------- */

/* BullMQ's maximumRateLimitDelay: a worker looks again at least this often (delayed jobs
 * may be due meanwhile, or the limit removed). */
#define RATE_LIMIT_WAIT_MAX_MS 30000

int64_t
jobq__rate_limit_left(jobq_queue *q, atomic_llong *until) {
	int64_t u = atomic_load(until);
	if (u == 0)
		return 0;
	int64_t left = u - jobq_queue__now(q);
	if (left <= 0)
		atomic_store(until, 0);
	return left > 0 ? left : 0;
}

void
jobq__rate_limited(jobq_queue *q, const jobq_job *job, int64_t ms, atomic_llong *until) {
	/* the worker's other threads stop fetching first, so that they do not take it back */
	atomic_store(until, jobq_queue__now(q) + ms);
	int rc = q->store->backend->release(q->bq, job->id, job->token, jobq_queue__now(q));
	if (rc < 0)
		jobq_log_emit(JOBQ_LOG_WARN, "worker", q->name, job->id,
		              "job %s: rate-limited by its handler, but not given back: %s",
		              job->id, jobq_error_message());
}

void
jobq__rate_limit_wait(jobq_queue *q, int64_t window_end, atomic_llong *until, pthread_mutex_t *mu,
                      pthread_cond_t *cv, const atomic_int *stopping) {
	jobq_clock *clock = q->store->clock;
	int64_t now = jobq_clock_now(clock);
	/* (an end time, not a wait: the clock may have moved since the fetch said how long) */
	int64_t target = atomic_load(until);
	if (target <= now)
		target = window_end;
	if (target > now + RATE_LIMIT_WAIT_MAX_MS)
		target = now + RATE_LIMIT_WAIT_MAX_MS;
	int manual = jobq_clock__is_manual(clock);
	pthread_mutex_lock(mu);
	/* bounded: each pass waits for a clock advance, a stop, or real time to pass */
	while (!atomic_load(stopping) && (now = jobq_clock_now(clock)) < target) {
		if (manual) {
			pthread_cond_wait(cv, mu);
		} else {
			struct timespec ts;
			jobq_clock__deadline(&ts, target - now);
			pthread_cond_timedwait(cv, mu, &ts);
		}
	}
	pthread_mutex_unlock(mu);
	if (atomic_load(until) <= jobq_clock_now(clock))
		atomic_store(until, 0);
}
