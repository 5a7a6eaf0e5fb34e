/*
 * Setting a worker up: its options (defaults, the versions callers may pass, validation) and
 * its identity (the name written on the jobs it fetches, and its presence on the store while
 * it runs, through the backend's worker_attach / worker_detach).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "backends/backend.h"

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

/* Copies the caller's options (any supported version) into a whole struct of this version. */
static int
copy_options(jobq_worker_options *out, const jobq_worker_options *o) {
	if (!supported(o->version))
		return jobq_error_set(JOBQ_EVERSION,
		                      "worker options: version %u not supported (want 1..%u)",
		                      o->version, JOBQ_WORKER_OPTIONS_VERSION);
	memset(out, 0, sizeof(*out));
	memcpy(out, o, options_size(o->version));
	out->version = JOBQ_WORKER_OPTIONS_VERSION;
	return 0;
}

/* The limiter: both or neither, each 1..JOBQ_LIMIT_MAX (BullMQ requires both). */
static int
validate_limiter(const jobq_rate_limiter *l) {
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

static int
validate_options(const jobq_worker_options *o) {
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
	    (rc = jobq__validate_keep(&o->remove_on_fail, "worker options: remove_on_fail")) < 0 ||
	    (rc = jobq__validate_metrics_points(o->metrics_max_data_points)) < 0)
		return rc;
	return validate_limiter(&o->limiter);
}

int
jobq_worker__options_copy(jobq_worker_options *out, const jobq_worker_options *in) {
	int rc = copy_options(out, in);
	return rc < 0 ? rc : validate_options(out);
}

/* --- identity ----------------------------------------------------------------------------- */

/* Redis takes a client name of printable ASCII without spaces; BullMQ appends it to the
 * connection's name as is. */
static int
validate_name(const char *name) {
	if (name == NULL || *name == '\0')
		return jobq_error_set(JOBQ_EINVAL, "worker name: empty");
	size_t n = strlen(name);
	if (n > JOBQ_WORKER_NAME_MAX)
		return jobq_error_set(JOBQ_EINVAL,
		                      "worker name: %zu characters, more than the %d allowed", n,
		                      JOBQ_WORKER_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= ' ' || c > '~')
			return jobq_error_set(
			    JOBQ_EINVAL,
			    "worker name: character %zu (0x%02x) is not printable "
			    "ASCII without spaces (Redis refuses it in a client name)",
			    i + 1, c);
	}
	return 0;
}

int
jobq_worker__ident_rename(jobq_worker_ident *id, const char *name) {
	int rc = validate_name(name);
	if (rc < 0)
		return rc;
	char *copy = jobq__strdup(name);
	if (copy == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "worker name: out of memory");
	jobq__free(id->name);
	id->name = copy;
	return 0;
}

int
jobq_worker__ident_init(jobq_worker_ident *id) {
	char host[128], name[160];
	memset(id, 0, sizeof(*id));
	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	/* a host name never holds spaces; keep the default valid whatever it holds */
	for (char *p = host; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p > '~')
			*p = '_';
	snprintf(name, sizeof(name), "%s:%ld", host, (long)getpid());
	return jobq_worker__ident_rename(id, name);
}

void
jobq_worker__ident_attach(jobq_worker_ident *id, jobq_queue *q) {
	jobq_backend *b = q->store->backend;
	if (jobq__backend_worker_attach(&id->presence, b, q->bq, id->name) < 0) {
		/* the worker runs all the same; only other processes do not see it */
		jobq_log_emit(JOBQ_LOG_WARN, "worker", q->name, NULL,
		              "worker '%s' is not visible to other processes: %s", id->name,
		              jobq_error_message());
		id->presence = NULL;
	}
}

void
jobq_worker__ident_detach(jobq_worker_ident *id, jobq_queue *q) {
	if (id->presence != NULL)
		jobq__backend_worker_detach(q->store->backend, q->bq, id->presence);
	id->presence = NULL;
}

void
jobq_worker__ident_free(jobq_worker_ident *id) {
	jobq__free(id->name);
	id->name = NULL;
}
