/*
 * BullMQ's per-minute metrics of finished jobs: the public read (jobq/metrics.h). Counting
 * happens in the backends' finishing steps (includes/metrics.lua on Redis, eng_metrics_count
 * in the engine of memory and LMDB); the worker hands its metrics_max_data_points to them.
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "backends/backend.h"

int
jobq__validate_metrics_points(uint32_t points) {
	if (points > JOBQ_METRICS_MAX_POINTS)
		return jobq_error_set(JOBQ_EINVAL,
		                      "worker options: metrics_max_data_points %u is over %u",
		                      (unsigned)points, JOBQ_METRICS_MAX_POINTS);
	return 0;
}

int
jobq_queue_metrics(jobq_metrics **out, jobq_queue *q, jobq_state kind, int64_t start, int64_t end) {
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "metrics: out is NULL");
	*out = NULL;
	int rc = jobq_queue__check(q, "metrics");
	if (rc < 0)
		return rc;
	if (kind != JOBQ_STATE_COMPLETED && kind != JOBQ_STATE_FAILED)
		return jobq_error_set(JOBQ_EINVAL,
		                      "metrics: kind must be completed or failed, not %s",
		                      jobq_state_name(kind));
	return jobq__backend_metrics(out, q->store->backend, q->bq, kind, start, end);
}

void
jobq_metrics_free(jobq_metrics *m) {
	if (m == NULL)
		return;
	jobq__free(m->data);
	jobq__free(m);
}
