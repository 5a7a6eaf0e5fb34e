/**
 * @file
 * jobq — BullMQ's per-minute metrics of finished jobs.
 *
 * A worker whose options set metrics_max_data_points counts every job it completes, and every
 * job it fails for good, as BullMQ 6 does: a counter of all such jobs, and one data point per
 * minute (the jobs finished in it), newest first, at most metrics_max_data_points of them. On
 * Redis they are BullMQ's keys (`<prefix>:<queue>:metrics:completed` and `:failed`, with their
 * `:data` lists), so Node's `queue.getMetrics()` counts jobq's work and jobq reads Node's. The
 * minutes follow the queue's clock (a manual clock drives them in tests).
 */
#ifndef JOBQ_METRICS_H
#define JOBQ_METRICS_H

#include "common.h"
#include "job.h"
#include "queue.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The most data points a worker may keep (metrics_max_data_points): about 23 months. */
#define JOBQ_METRICS_MAX_POINTS 1000000u

/** The metrics of one kind of finished job, as BullMQ's getMetrics returns them. */
typedef struct jobq_metrics {
	int64_t count;      /**< meta.count: jobs finished since counting began */
	int64_t prev_ts;    /**< meta.prevTS: when the newest data point was closed (ms; 0: none) */
	int64_t prev_count; /**< meta.prevCount: `count` at prev_ts */
	int64_t *data;      /**< the data points asked for, newest first (jobs per minute) */
	size_t data_len;    /**< entries of `data` */
	size_t points;      /**< how many data points are stored in all (BullMQ's `count`) */
} jobq_metrics;

/**
 * Reads the metrics of `kind` (JOBQ_STATE_COMPLETED or JOBQ_STATE_FAILED) of queue `q`: the
 * counters and the data points `start`..`end` (indexes as Redis LRANGE and BullMQ's
 * getMetrics: 0 is the newest point, -1 the oldest; BullMQ's defaults are 0 and -1). A queue
 * whose workers never counted has zeros and no points. Free *out with jobq_metrics_free.
 * Errors: JOBQ_EINVAL (a NULL argument, another kind), JOBQ_ENOTSUP (a backend without
 * metrics), or the store's.
 */
JOBQ_EXTERN int jobq_queue_metrics(jobq_metrics **out, jobq_queue *q, jobq_state kind,
                                   int64_t start, int64_t end);
/** Frees what jobq_queue_metrics returned. NULL is a no-op. */
JOBQ_EXTERN void jobq_metrics_free(jobq_metrics *m);

#ifdef __cplusplus
}
#endif
#endif
