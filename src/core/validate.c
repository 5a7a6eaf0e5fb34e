/*
 * Input validation, in one place, before anything reaches a backend: bad input gets an error
 * that names what was wrong, and changes nothing.
 */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include <jansson.h>

#include "core.h"

int
jobq__validate_queue_name(const char *name) {
	if (name == NULL || name[0] == '\0')
		return jobq_error_set(JOBQ_EINVAL, "queue name is empty");
	size_t len = strlen(name);
	if (len > JOBQ_QUEUE_NAME_MAX)
		return jobq_error_set(JOBQ_EINVAL, "queue name is %zu bytes long (at most %d)", len,
		                      JOBQ_QUEUE_NAME_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return jobq_error_set(JOBQ_EINVAL,
			                      "queue name has a control character at byte %zu", i);
		if (c == ':')
			return jobq_error_set(
			    JOBQ_EINVAL, "queue name '%s' contains ':' (it separates storage keys)",
			    name);
	}
	return 0;
}

int
jobq__validate_job_name(const char *name) {
	if (name == NULL)
		return jobq_error_set(JOBQ_EINVAL, "job name is NULL");
	size_t len = strlen(name);
	if (len > JOBQ_JOB_NAME_MAX)
		return jobq_error_set(JOBQ_EINVAL, "job name is %zu bytes long (at most %d)", len,
		                      JOBQ_JOB_NAME_MAX);
	return 0;
}

/* Suffixes of a queue's own storage keys: a job with such an id would overwrite them. */
static const char *const reserved_ids[] = {
    "wait",    "paused",  "active", "prioritized", "delayed", "completed",        "failed",
    "stalled", "marker",  "meta",   "id",          "pc",      "events",           "limiter",
    "repeat",  "metrics", "delay",  "priority",    "de",      "waiting-children", "stalled-check",
};

int
jobq__validate_custom_id(const char *id) {
	if (id[0] == '\0')
		return jobq_error_set(JOBQ_EINVAL, "job id is empty");
	size_t len = strlen(id);
	if (len > JOBQ_ID_MAX)
		return jobq_error_set(JOBQ_EINVAL, "job id is %zu bytes long (at most %d)", len,
		                      JOBQ_ID_MAX);
	size_t digits = (id[0] == '-') ? 1 : 0;
	while (digits < len && isdigit((unsigned char)id[digits]))
		digits++;
	if (digits == len && len > (id[0] == '-' ? 1u : 0u))
		return jobq_error_set(JOBQ_EINVAL,
		                      "job id '%s' is an integer (reserved for generated ids)", id);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];
		if (c == ':')
			return jobq_error_set(JOBQ_EINVAL, "job id '%s' contains ':'", id);
		if (c < 0x20 || c == 0x7f)
			return jobq_error_set(JOBQ_EINVAL,
			                      "job id has a control character at byte %zu", i);
	}
	for (size_t i = 0; i < sizeof(reserved_ids) / sizeof(reserved_ids[0]); i++)
		if (strcmp(id, reserved_ids[i]) == 0)
			return jobq_error_set(JOBQ_EINVAL,
			                      "job id '%s' is the name of a queue storage key", id);
	return 0;
}

int
jobq__validate_keep(const jobq_keep *k, const char *what) {
	switch (k->mode) {
	case JOBQ_KEEP_DEFAULT:
	case JOBQ_KEEP_ALL:
	case JOBQ_KEEP_NONE:
		return 0;
	case JOBQ_KEEP_LIMIT:
		if (k->count < 0 && k->age_ms < 0)
			return jobq_error_set(
			    JOBQ_EINVAL, "%s: a limit needs a count >= 0 or an age >= 0", what);
		return 0;
	default:
		return jobq_error_set(JOBQ_EINVAL, "%s: unknown mode %d", what, (int)k->mode);
	}
}

int
jobq__validate_job_options(const jobq_job_options *o) {
	if (o->version != JOBQ_JOB_OPTIONS_VERSION)
		return jobq_error_set(JOBQ_EVERSION,
		                      "job options: version %u not supported (want %u)", o->version,
		                      JOBQ_JOB_OPTIONS_VERSION);
	if (o->delay_ms < 0)
		return jobq_error_set(JOBQ_EINVAL, "job options: delay %lld ms is negative",
		                      (long long)o->delay_ms);
	if (o->priority > JOBQ_PRIORITY_MAX)
		return jobq_error_set(JOBQ_EINVAL, "job options: priority %u is above %u",
		                      o->priority, JOBQ_PRIORITY_MAX);
	const jobq_backoff *b = &o->backoff;
	if ((unsigned)b->type > JOBQ_BACKOFF_CUSTOM)
		return jobq_error_set(JOBQ_EINVAL, "job options: unknown backoff type %d",
		                      (int)b->type);
	if (b->delay_ms < 0)
		return jobq_error_set(JOBQ_EINVAL, "job options: backoff delay %lld ms is negative",
		                      (long long)b->delay_ms);
	if (!(b->jitter >= 0.0 && b->jitter <= 1.0))
		return jobq_error_set(JOBQ_EINVAL, "job options: backoff jitter %g is outside 0..1",
		                      b->jitter);
	if (b->max_delay_ms < 0)
		return jobq_error_set(JOBQ_EINVAL,
		                      "job options: backoff maximum %lld ms is negative",
		                      (long long)b->max_delay_ms);
	if (b->type == JOBQ_BACKOFF_CUSTOM && (b->custom_type == NULL || !b->custom_type[0]))
		return jobq_error_set(JOBQ_EINVAL, "job options: custom backoff needs a type name");
	int rc;
	if (o->job_id != NULL && (rc = jobq__validate_custom_id(o->job_id)) < 0)
		return rc;
	if ((rc = jobq__validate_keep(&o->remove_on_complete, "job options: remove_on_complete")) <
	        0 ||
	    (rc = jobq__validate_keep(&o->remove_on_fail, "job options: remove_on_fail")) < 0)
		return rc;
	if (o->keep_logs < 0)
		return jobq_error_set(JOBQ_EINVAL, "job options: keep_logs %lld is negative",
		                      (long long)o->keep_logs);
	if (o->dedup_id != NULL && (o->dedup_id[0] == '\0' || strlen(o->dedup_id) > JOBQ_ID_MAX))
		return jobq_error_set(JOBQ_EINVAL, "job options: dedup id must be 1..%d bytes",
		                      JOBQ_ID_MAX);
	if (o->dedup_ttl_ms < 0)
		return jobq_error_set(JOBQ_EINVAL, "job options: dedup ttl %lld ms is negative",
		                      (long long)o->dedup_ttl_ms);
	if (o->dedup_ttl_ms > 0 && o->dedup_id == NULL)
		return jobq_error_set(JOBQ_EINVAL,
		                      "job options: dedup ttl given without a dedup id");
	if (o->timestamp < 0 || o->timestamp > JOBQ_TIME_MAX_MS)
		return jobq_error_set(JOBQ_EINVAL,
		                      "job options: timestamp %lld is outside 0..JOBQ_TIME_MAX_MS "
		                      "(%lld)",
		                      (long long)o->timestamp, (long long)JOBQ_TIME_MAX_MS);
	if (o->dedup_ttl_ms > JOBQ_TIME_MAX_MS)
		return jobq_error_set(
		    JOBQ_EINVAL, "job options: dedup_ttl_ms %lld is above JOBQ_TIME_MAX_MS (%lld)",
		    (long long)o->dedup_ttl_ms, (long long)JOBQ_TIME_MAX_MS);
	return 0;
}

int
jobq__validate_duration(const char *what, const char *field, int64_t ms) {
	if (ms <= 0)
		return jobq_error_set(JOBQ_EINVAL, "%s: %s %lld ms must be positive", what, field,
		                      (long long)ms);
	if (ms > JOBQ_TIME_MAX_MS)
		return jobq_error_set(JOBQ_EINVAL,
		                      "%s: %s %lld ms is above JOBQ_TIME_MAX_MS (%lld)", what,
		                      field, (long long)ms, (long long)JOBQ_TIME_MAX_MS);
	return 0;
}

int
jobq__validate_json(const char *what, const char *json, size_t len) {
	json_error_t err;
	json_t *v = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	if (v == NULL)
		return jobq_error_set(JOBQ_EINVAL, "%s is not valid JSON: %s at line %d column %d",
		                      what, err.text, err.line, err.column);
	json_decref(v);
	return 0;
}
