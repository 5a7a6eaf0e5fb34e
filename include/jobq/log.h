/**
 * @file
 * jobq — the library's log hook.
 *
 * The library is silent unless a handler is installed. It then reports what an operator must
 * know, one record per event: a job that failed for good, stalled jobs recovered, a lock lost,
 * a handler still running after its lock was lost, a store outage and its end (Redis: a
 * connection lost and restored, with the time it took), deployment warnings.
 *
 * A worker created with its own on_event callback (worker.h) reports its events (store
 * outages, lost locks, refused outcomes) there instead of here.
 *
 * Thread safety: the handler is process-wide and may be called from any library thread at
 * any time, also concurrently; it must not call back into the library. Setting it is safe
 * from any thread; a record being delivered while the handler is replaced may still reach
 * the old one.
 */
#ifndef JOBQ_LOG_H
#define JOBQ_LOG_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** How much a log record matters. */
typedef enum jobq_log_level {
	JOBQ_LOG_DEBUG = 0, /**< detail for developers */
	JOBQ_LOG_INFO = 1,  /**< normal events worth a line (a store outage ended) */
	JOBQ_LOG_WARN = 2,  /**< something an operator should look at (a lock lost) */
	JOBQ_LOG_ERROR = 3  /**< work was lost or stopped (a job failed for good) */
} jobq_log_level;

/** One log record. Every string is valid for the call only. */
typedef struct jobq_log_record {
	jobq_log_level level;  /**< how much it matters */
	const char *component; /**< "worker", "reaper", "redis", ... */
	const char *queue;     /**< the queue it concerns, or NULL */
	const char *job_id;    /**< the job it concerns, or NULL */
	const char *message;   /**< one line, no trailing newline */
} jobq_log_record;

/** A log handler: receives each record and the `user` given to jobq_log_set_handler. */
typedef void (*jobq_log_fn)(const jobq_log_record *record, void *user);

/** Installs `fn` (NULL: silent again) with `user` passed to each call. */
JOBQ_EXTERN void jobq_log_set_handler(jobq_log_fn fn, void *user);

/** "debug", "info", "warn", "error" (or "?" for another value). */
JOBQ_EXTERN const char *jobq_log_level_name(jobq_log_level level);

/**
 * Delivers one record to the handler (nothing without one). For the library and its
 * backends; applications may use it to route their own lines through the same handler.
 * `queue` and `job_id` may be NULL. The message is cut at 1,000 bytes.
 */
JOBQ_EXTERN void jobq_log_emit(jobq_log_level level, const char *component, const char *queue,
                               const char *job_id, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/** Whether a handler is installed (to skip building costly messages). */
JOBQ_EXTERN int jobq_log_enabled(void);

#ifdef __cplusplus
}
#endif
#endif
