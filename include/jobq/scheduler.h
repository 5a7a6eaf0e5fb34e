/**
 * @file scheduler.h
 * Job schedulers: jobs that repeat every N milliseconds or on a cron pattern, as BullMQ 6's
 * upsertJobScheduler (bullmq-protocol.md §4.21), on every backend.
 *
 * A scheduler has exactly one pending iteration at a time: an ordinary job with id
 * "repeat:<scheduler id>:<millis>" (its due time), the template's name, data and options,
 * delayed until its time. The worker that fetches an iteration creates the next one before
 * running it, so a stopped fleet does not pile iterations up. Drain and clean keep the pending
 * iteration; removing it directly is refused (JOBQ_ESTATE).
 */
#ifndef JOBQ_SCHEDULER_H
#define JOBQ_SCHEDULER_H

#include "common.h"
#include "job.h"
#include "queue.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a scheduler is created or updated with (jobq_scheduler_spec_init, then set fields). */
typedef struct jobq_scheduler_spec {
	unsigned int version; /**< JOBQ_SCHEDULER_SPEC_VERSION */
	int64_t every_ms;     /**< > 0: an iteration every this many ms (exclusive with pattern) */
	int64_t offset_ms;    /**< with every_ms: iterations at multiples of every_ms plus this */
	const char *pattern;  /**< cron pattern, 5 or 6 fields (seconds first), as cron-parser */
	const char *tz; /**< pattern's IANA time zone (e.g. "Europe/Paris"); NULL: the local one */
	int64_t start_ms; /**< > 0: no iteration before this time (ms since the epoch) */
	int64_t end_ms;   /**< > 0: no iteration after this time; must be later than now */
	int64_t limit;    /**< > 0: at most this many iterations; < 0: no limit; 0 is refused */
	int immediately;  /**< non-zero: a pattern scheduler's first iteration runs now */
	const char *name; /**< the iterations' job name; NULL: the scheduler id (as BullMQ) */
	const char *data; /**< the iterations' data, JSON; NULL: {} */
	size_t data_len;  /**< length of data; 0 with data set: strlen(data) */
	/** the iterations' options (attempts, backoff, keep policies, priority, lifo, ...);
	 * NULL: defaults. job_id, delay_ms, timestamp and dedup_id are refused. */
	const jobq_job_options *opts;
} jobq_scheduler_spec;

/** The current version of jobq_scheduler_spec. */
#define JOBQ_SCHEDULER_SPEC_VERSION 1

/** Fills `spec` with the defaults (no every, no pattern, no limit, no dates). Returns 0, or
 * JOBQ_EVERSION for a version this library does not know. */
JOBQ_EXTERN int jobq_scheduler_spec_init(jobq_scheduler_spec *spec, unsigned int version);

/** A scheduler as stored (jobq_queue_get_scheduler, jobq_queue_list_schedulers). */
typedef struct jobq_scheduler {
	char *id;           /**< the scheduler id */
	char *name;         /**< the iterations' job name */
	int64_t every_ms;   /**< 0: a pattern scheduler */
	int64_t offset_ms;  /**< the offset of an every scheduler */
	char *pattern;      /**< NULL: an every scheduler */
	char *tz;           /**< NULL: none (the local zone) */
	int64_t start_ms;   /**< 0: none */
	int64_t end_ms;     /**< 0: none */
	int64_t limit;      /**< < 0: none */
	int64_t iterations; /**< iterations created so far (BullMQ's iteration count) */
	int64_t next_ms;    /**< the pending iteration's time; < 0: none (the series ended) */
	char *data;         /**< the template's data, JSON */
	char *opts_json;    /**< the template's options as BullMQ stores them, JSON ("{}") */
} jobq_scheduler;

/** A list of schedulers. */
typedef struct jobq_scheduler_list {
	size_t count;          /**< number of schedulers */
	jobq_scheduler *items; /**< `count` schedulers, by next run, earliest first */
} jobq_scheduler_list;

/**
 * Creates scheduler `id` of queue `q`, or updates it, and its first iteration (ids must not
 * contain ':' nor be empty). An update while an iteration is pending and not running replaces
 * that iteration, as BullMQ does (an every scheduler whose interval did not change keeps its
 * time); the iteration count goes on. When `iteration` is not NULL it receives the id of the
 * iteration created. Bad input (JOBQ_EINVAL, nothing changes, the message names what was
 * wrong): neither or both of every and pattern, a malformed pattern (naming the field), an
 * unknown time zone, an end date not after the start or already past, a limit of 0, a time
 * zone with every_ms, immediately with a start date (BullMQ
 * refuses it), template options a scheduler cannot have (job_id, delay_ms, timestamp,
 * dedup_id). JOBQ_EEXISTS when the iteration's id is taken by a job that is not
 * the scheduler's pending one (a pattern scheduler whose next time already ran).
 * JOBQ_ENOTSUP on a backend without schedulers. Thread safety: any thread.
 */
JOBQ_EXTERN int jobq_queue_upsert_scheduler(jobq_job_id *iteration, jobq_queue *q, const char *id,
                                            const jobq_scheduler_spec *spec);

/** Scheduler `id` of queue `q` in *out (free it with jobq_scheduler_free); JOBQ_ENOTFOUND if
 * there is none. Thread safety: any thread. */
JOBQ_EXTERN int jobq_queue_get_scheduler(jobq_scheduler **out, jobq_queue *q, const char *id);

/** Every scheduler of queue `q` with its next run, earliest first, in *out (free it with
 * jobq_scheduler_list_free; never NULL on success). Thread safety: any thread. */
JOBQ_EXTERN int jobq_queue_list_schedulers(jobq_scheduler_list **out, jobq_queue *q);

/** Removes scheduler `id` and its pending iteration if that waits for its time (delayed; event
 * `removed`), as BullMQ's removeJobScheduler; an iteration already due or running finishes
 * and creates no next one. JOBQ_ENOTFOUND if there is no such scheduler. Thread safety: any
 * thread. */
JOBQ_EXTERN int jobq_queue_remove_scheduler(jobq_queue *q, const char *id);

/** Frees a scheduler returned by jobq_queue_get_scheduler. NULL is a no-op. */
JOBQ_EXTERN void jobq_scheduler_free(jobq_scheduler *s);

/** Frees a list returned by jobq_queue_list_schedulers. NULL is a no-op. */
JOBQ_EXTERN void jobq_scheduler_list_free(jobq_scheduler_list *list);

#ifdef __cplusplus
}
#endif
#endif
