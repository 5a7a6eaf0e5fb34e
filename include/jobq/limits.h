/**
 * @file
 * jobq — queue limits: a global rate limit (at most `max` jobs start per `duration` ms) and a
 * global concurrency (at most `n` jobs active at once), shared by every worker of the queue
 * in any process, and a handler's "back off" (rate-limit the queue for a while).
 *
 * They are BullMQ 6's: on Redis they are stored where Node reads them (the queue's meta
 * hash fields `concurrency`, `max`, `duration`, and its `limiter` key), so a limit set by
 * jobq holds for Node workers and the reverse. A worker's own limiter
 * (jobq_worker_options.limiter) combines with the global rate limit by BullMQ's rule: the
 * global `max`, if set, overrides the worker's; the worker's `duration`, if set, overrides
 * the global one. Memory and LMDB keep the same rule; the store's clock (a manual clock in
 * tests) drives the windows. Thread safety: every call may be made from any thread.
 */
#ifndef JOBQ_LIMITS_H
#define JOBQ_LIMITS_H

#include "common.h"
#include "job.h"
#include "queue.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The largest `max`, concurrency and duration the limit calls accept. */
#define JOBQ_LIMIT_MAX 2147483647

/** A queue's limits as jobq_queue_get_limits reads them. */
typedef struct jobq_queue_limits {
	int64_t concurrency; /**< global concurrency; 0: none */
	int64_t max;         /**< global rate limit: jobs per window; 0: none */
	int64_t duration_ms; /**< its window in ms; 0: none */
	/** ms left of the current rate window (BullMQ's limiter key), 0: no window open */
	int64_t window_left_ms;
	/** jobs started in that window; JOBQ_RATE_LIMITED_COUNT after a rate_limit call */
	int64_t window_used;
} jobq_queue_limits;

/** What a window counts after jobq_queue_rate_limit: more than any `max` (as BullMQ). */
#define JOBQ_RATE_LIMITED_COUNT INT64_C(9007199254740991)

/**
 * Sets the global rate limit: at most `max` (1..JOBQ_LIMIT_MAX) jobs start in any window of
 * `duration_ms` (1..JOBQ_LIMIT_MAX) ms (BullMQ's setGlobalRateLimit). Replaces a previous
 * one. JOBQ_EINVAL (naming the bad value) changes nothing; JOBQ_ECLOSED on a closed queue.
 */
JOBQ_EXTERN int jobq_queue_set_rate_limit(jobq_queue *q, int64_t max, int64_t duration_ms);
/** Removes the global rate limit (BullMQ's removeGlobalRateLimit); none set is not an error. */
JOBQ_EXTERN int jobq_queue_remove_rate_limit(jobq_queue *q);
/**
 * Sets the global concurrency: at most `n` (1..JOBQ_LIMIT_MAX) jobs of the queue active at
 * once, over all workers (BullMQ's setGlobalConcurrency). JOBQ_EINVAL changes nothing.
 */
JOBQ_EXTERN int jobq_queue_set_concurrency(jobq_queue *q, int64_t n);
/** Removes the global concurrency (BullMQ's removeGlobalConcurrency). */
JOBQ_EXTERN int jobq_queue_remove_concurrency(jobq_queue *q);
/**
 * Reads the queue's limits and its current rate window. A value Node stored that is not a
 * positive integer reads as JOBQ_EBACKEND, naming the field.
 */
JOBQ_EXTERN int jobq_queue_get_limits(jobq_queue_limits *out, jobq_queue *q);
/**
 * Rate-limits the queue for `ms` (1..JOBQ_LIMIT_MAX): the current window becomes full and
 * lasts `ms` from now (BullMQ's Queue.rateLimit / Worker.rateLimit). As in BullMQ it holds
 * back the workers that have a rate limit in force (the global one or their own limiter).
 */
JOBQ_EXTERN int jobq_queue_rate_limit(jobq_queue *q, int64_t ms);

/**
 * From a handler: rate-limits the job's queue for `ms` (as jobq_queue_rate_limit) and asks
 * the worker to give the job back. Return its result from the handler
 * (`return jobq_job_rate_limit(job, 5000);`): the job goes back to the front of waiting
 * without using an attempt (BullMQ's worker.rateLimit + RateLimitError), and this worker
 * fetches nothing more for `ms`, whatever its limiter. Returns JOBQ_ERROR (negative) when
 * the request was taken; JOBQ_EINVAL for a bad `ms` or a job not lent to a handler (the
 * handler's failure then fails the attempt as usual).
 */
JOBQ_EXTERN int jobq_job_rate_limit(jobq_job *job, int64_t ms);

#ifdef __cplusplus
}
#endif
#endif
