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
