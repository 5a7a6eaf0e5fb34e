/**
 * @file
 * jobq — workers: `concurrency` handler threads fed by one fetch loop, a lock heartbeat and a
 * stalled-job reaper. Callbacks run on worker threads, never under a library lock.
 */
#ifndef JOBQ_WORKER_H
#define JOBQ_WORKER_H

#include "common.h"
#include "job.h"
#include "queue.h"
#include "limits.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A worker: handler threads, a fetch loop, a lock heartbeat and a stalled-job reaper (opaque). */
typedef struct jobq_worker jobq_worker;

/**
 * Processes one job. Return 0 to complete it (with the result set by jobq_job_set_result,
 * else JSON null), or a negative value to fail the attempt (reason from jobq_job_set_error).
 */
typedef int (*jobq_process_fn)(jobq_job *job, void *payload);

/**
 * Custom backoff: sets *delay_ms for the retry of attempt `attempts_made` (1-based) of a job
 * whose backoff type is JOBQ_BACKOFF_CUSTOM (or any type, if no built-in applies). Return 0,
 * or a negative value to fail the job for good.
 */
typedef int (*jobq_backoff_fn)(int64_t *delay_ms, const jobq_job *job, uint32_t attempts_made,
                               const char *custom_type, const char *reason, void *payload);

/** What happened to a worker (jobq_worker_event.type). */
typedef enum jobq_worker_event_type {
	/** A step of the store failed (fetch, recording an outcome, lock renewal, stalled
	 * check): `error` and `message` say why. Reported once until JOBQ_WORKER_STORE_UP. */
	JOBQ_WORKER_STORE_DOWN = 1,
	/** The store took a fetch or an outcome again after JOBQ_WORKER_STORE_DOWN. */
	JOBQ_WORKER_STORE_UP,
	/** The lock of job `job_id` is gone (expired, or the job was taken back): someone else
	 * owns the job now, and this worker does not write its outcome. */
	JOBQ_WORKER_LOCK_LOST,
	/** The store refused to record the outcome (completion or failed attempt) of job
	 * `job_id` for a reason other than a lost lock (out of memory or disk, connection
	 * lost): the worker keeps the outcome, keeps renewing the job's lock, fetches nothing
	 * more on that thread, and tries again with a backoff of at most a second. */
	JOBQ_WORKER_RESULT_REFUSED,
	/** A refused outcome of job `job_id` was recorded after all. */
	JOBQ_WORKER_RESULT_RECORDED,
	/** The worker gave up a refused outcome of job `job_id`: its lock was lost meanwhile,
	 * or jobq_worker_close's deadline passed first. The job stays active until the stalled
	 * check gives it back (it will run again). */
	JOBQ_WORKER_RESULT_DROPPED
} jobq_worker_event_type;

/** One event of a worker, given to jobq_worker_options.on_event. */
typedef struct jobq_worker_event {
	jobq_worker_event_type type; /**< what happened */
	const char *job_id;          /**< NULL for STORE_DOWN and STORE_UP */
	int error;           /**< the JOBQ_E* code of the failure, 0 for STORE_UP and RECORDED */
	const char *message; /**< what happened, in words (never NULL) */
} jobq_worker_event;

/**
 * Told what happens to the worker that the handlers do not see: store outages and
 * recoveries, lost locks, refused and late outcomes. Called on the worker's threads (several
 * may call at once), under no library lock; the event and its strings live only during the
 * call. It must return promptly and must not close or free the worker.
 */
typedef void (*jobq_worker_event_fn)(const jobq_worker_event *e, void *payload);

/**
 * A worker's own rate limiter (BullMQ's worker `limiter: {max, duration}`): at most `max`
 * jobs start per `duration_ms`, counted in the queue's shared rate window, so that workers
 * with the same limiter (in any process, Node's too on Redis) keep it together. A global
 * rate limit (jobq/limits.h) overrides `max`; `duration_ms` overrides the global duration.
 * Both 0: none; else both in 1..JOBQ_LIMIT_MAX.
 */
typedef struct jobq_rate_limiter {
	int64_t max;         /**< jobs per window */
	int64_t duration_ms; /**< the window, ms */
} jobq_rate_limiter;

/** Options of jobq_worker_new; initialise with JOBQ_WORKER_OPTIONS_INIT or
 * jobq_worker_options_init(). */
typedef struct jobq_worker_options {
	unsigned int version;         /**< JOBQ_WORKER_OPTIONS_VERSION */
	unsigned int concurrency;     /**< handler threads, default 1 */
	int64_t lock_ms;              /**< default 30000 */
	int64_t lock_renew_ms;        /**< heartbeat period; 0: lock_ms / 2 */
	int64_t stalled_interval_ms;  /**< reaper period, default 30000; < 0 disables the reaper */
	uint32_t max_stalled;         /**< stalls a job survives before failing, default 1 */
	jobq_keep remove_on_complete; /**< for jobs that do not set their own */
	jobq_keep remove_on_fail;     /**< for jobs that do not set their own */
	jobq_backoff_fn backoff_fn;   /**< optional */
	void *backoff_payload;        /**< passed to backoff_fn */
	/* version 2 */
	jobq_worker_event_fn on_event; /**< optional */
	void *event_payload;           /**< passed to on_event */
	/** BullMQ's metrics.maxDataPoints: count the jobs this worker completes or fails for
	 * good per minute, keeping this many points (jobq/metrics.h); 0 (default): no metrics;
	 * at most JOBQ_METRICS_MAX_POINTS */
	uint32_t metrics_max_data_points;
	/* version 3 */
	jobq_rate_limiter limiter; /**< the worker's own rate limiter; {0, 0}: none */
} jobq_worker_options;

/** The version of jobq_worker_options this header defines; versions 1 (without on_event)
 * and 2 (without limiter) are still accepted. */
#define JOBQ_WORKER_OPTIONS_VERSION 3
/** The defaults of jobq_worker_options. Positional, not designated, so that C++ before C++20
 * takes it too. */
#define JOBQ_WORKER_OPTIONS_INIT                                                                   \
	{                                                                                          \
		JOBQ_WORKER_OPTIONS_VERSION, 1, 30000, 0, 30000, 1, {JOBQ_KEEP_DEFAULT, 0, 0},     \
		    {JOBQ_KEEP_DEFAULT, 0, 0}, NULL, NULL, NULL, NULL, 0, {                        \
			0, 0                                                                       \
		}                                                                                  \
	}
/** Fills `opts` with the defaults of `version` (1..3). JOBQ_EVERSION otherwise. */
JOBQ_EXTERN int jobq_worker_options_init(jobq_worker_options *opts, unsigned int version);

/**
 * Creates a worker on `q` with a default handler (`fn` may be NULL if every job name gets its
 * own handler through jobq_worker_on). The worker does not run until jobq_worker_start. Jobs
 * whose name has no handler and no default fail with a clear reason.
 */
JOBQ_EXTERN int jobq_worker_new(jobq_worker **out, jobq_queue *q, jobq_process_fn fn, void *payload,
                                const jobq_worker_options *opts);
/** Registers the handler for jobs named `name`. Only before jobq_worker_start. */
JOBQ_EXTERN int jobq_worker_on(jobq_worker *w, const char *name, jobq_process_fn fn, void *payload);
/** Starts the worker's threads. Once per worker. */
JOBQ_EXTERN int jobq_worker_start(jobq_worker *w);
/**
 * Graceful close: stops fetching, lets running handlers finish for up to `deadline_ms` of
 * real time (< 0: no limit), then sets their cancellation flag and waits for them; jobs whose
 * handler fails after cancellation go back to waiting without using an attempt. Outcomes the
 * store refused are tried again until the same deadline, then given up
 * (JOBQ_WORKER_RESULT_DROPPED). Joins all threads. Thread safety: any thread, not from
 * inside a handler.
 */
JOBQ_EXTERN int jobq_worker_close(jobq_worker *w, int64_t deadline_ms);
/** Asks the worker to stop fetching, without waiting. Callable from a handler or signal-safe
 * contexts other than a signal handler. */
JOBQ_EXTERN void jobq_worker_stop(jobq_worker *w);
/** Closes (if needed, with no deadline) and frees. NULL is a no-op. */
JOBQ_EXTERN void jobq_worker_free(jobq_worker *w);

/** The longest worker name jobq_worker_set_name takes. */
#define JOBQ_WORKER_NAME_MAX 200

/**
 * Names the worker (BullMQ's worker `name`; default "<host>:<pid>"). The name is written on
 * every job the worker fetches (BullMQ `pb`, see jobq_job_processed_by) and, on Redis, is the
 * client name of the worker's own connection ("<prefix>:<base64(queue)>:w:<name>"), so that
 * BullMQ's getWorkers() and Bull Board list the worker while it runs, busy or idle. 1 to
 * JOBQ_WORKER_NAME_MAX printable ASCII characters without spaces (Redis refuses others in a
 * client name); JOBQ_EINVAL otherwise, JOBQ_ESTATE once the worker started. Copied.
 */
JOBQ_EXTERN int jobq_worker_set_name(jobq_worker *w, const char *name);
/** The worker's name (owned by the worker). */
JOBQ_EXTERN const char *jobq_worker_name(const jobq_worker *w);

/** Counters of a worker, read with jobq_worker_get_stats(). */
typedef struct jobq_worker_stats {
	uint64_t completed; /**< jobs this worker completed */
	uint64_t failed;    /**< attempts that failed (retried or not) */
	uint64_t running;   /**< handlers running now */
} jobq_worker_stats;
/** Reads the worker's counters. Thread safety: any thread. */
JOBQ_EXTERN void jobq_worker_get_stats(jobq_worker_stats *out, jobq_worker *w);

#ifdef __cplusplus
}
#endif
#endif
