/*
 * Worker options (include/jobq/worker.h): the defaults of each version, the copy of a
 * caller's struct of any supported version into a whole one, and their validation.
 */
#include <stddef.h>
#include <string.h>

#include "core.h"

/* Where a struct of `version` ends (the first field a later version added). */
static size_t
options_size(unsigned int version) {
	switch (version) {
	case 1:
		return offsetof(jobq_worker_options, on_event);
	case 2:
		return offsetof(jobq_worker_options, limiter);
	default:
		return sizeof(jobq_worker_options);
	}
}

static int
supported(unsigned int version) {
	return version >= 1 && version <= JOBQ_WORKER_OPTIONS_VERSION;
}

int
jobq_worker_options_init(jobq_worker_options *opts, unsigned int version) {
	if (opts == NULL)
		return jobq_error_set(JOBQ_EINVAL, "worker options: NULL");
	if (!supported(version))
		return jobq_error_set(JOBQ_EVERSION, "worker options: version %u not supported",
		                      version);
	jobq_worker_options init = JOBQ_WORKER_OPTIONS_INIT;
	init.version = version;
	memcpy(opts, &init, options_size(version));
	return 0;
}

int
jobq_worker__copy_options(jobq_worker_options *out, const jobq_worker_options *o) {
	if (!supported(o->version))
		return jobq_error_set(JOBQ_EVERSION,
		                      "worker options: version %u not supported (want 1..%u)",
		                      o->version, JOBQ_WORKER_OPTIONS_VERSION);
	memset(out, 0, sizeof(*out));
	memcpy(out, o, options_size(o->version));
	out->version = JOBQ_WORKER_OPTIONS_VERSION;
	return 0;
}

int
jobq_worker__validate_options(const jobq_worker_options *o) {
	if (o->concurrency == 0 || o->concurrency > 10000)
		return jobq_error_set(JOBQ_EINVAL,
		                      "worker options: concurrency %u is not in 1..10000",
		                      o->concurrency);
	int rc;
	if ((rc = jobq__validate_duration("worker options", "lock_ms", o->lock_ms)) < 0 ||
	    (o->stalled_interval_ms > 0 &&
	     (rc = jobq__validate_duration("worker options", "stalled_interval_ms",
	                                   o->stalled_interval_ms)) < 0))
		return rc;
	if (o->lock_renew_ms < 0 || o->lock_renew_ms >= o->lock_ms)
		return jobq_error_set(JOBQ_EINVAL,
		                      "worker options: lock_renew_ms %lld must be in 0..lock_ms-1",
		                      (long long)o->lock_renew_ms);
	if (o->stalled_interval_ms == 0)
		return jobq_error_set(JOBQ_EINVAL, "worker options: stalled_interval_ms is 0 (use "
		                                   "a negative value to disable the reaper)");
	if ((rc = jobq__validate_keep(&o->remove_on_complete,
	                              "worker options: remove_on_complete")) < 0 ||
	    (rc = jobq__validate_keep(&o->remove_on_fail, "worker options: remove_on_fail")) < 0)
		return rc;
	/* the limiter: both or neither, each 1..JOBQ_LIMIT_MAX (BullMQ requires both) */
	const jobq_rate_limiter *l = &o->limiter;
	if (l->max == 0 && l->duration_ms == 0)
		return 0;
	if (l->max <= 0 || l->max > JOBQ_LIMIT_MAX)
		return jobq_error_set(JOBQ_EINVAL,
		                      "worker options: limiter.max %lld is not in 1..%d",
		                      (long long)l->max, JOBQ_LIMIT_MAX);
	if (l->duration_ms <= 0 || l->duration_ms > JOBQ_LIMIT_MAX)
		return jobq_error_set(JOBQ_EINVAL,
		                      "worker options: limiter.duration_ms %lld is not in 1..%d",
		                      (long long)l->duration_ms, JOBQ_LIMIT_MAX);
	return 0;
}
