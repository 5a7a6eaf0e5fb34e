/*
 * Input validation, in one place, before anything reaches a backend: bad input gets an error
 * that names what was wrong, and changes nothing.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * The names of a queue's own storage keys. On Redis every key of queue Q is "<prefix>:Q:<name>"
 * (BullMQ's layout, docs/protocol.md 1.1) and a job's hash is "<prefix>:Q:<id>", so a job id
 * equal to one of these names would be that key: an add would overwrite it, and any other call
 * by id would read or change it as if it were a job. The rule is kept on every backend, so that
 * a queue behaves the same wherever it lives: adds refuse these ids (JOBQ_EINVAL), and calls
 * that look a job up by id answer JOBQ_ENOTFOUND without reaching the store.
 */
static const struct {
	const char *name;
	const char *what;
} reserved_keys[] = {
    {"wait", "the list of waiting jobs"},
    {"paused", "the list of paused jobs (BullMQ 5)"},
    {"active", "the list of active jobs"},
    {"prioritized", "the set of prioritized jobs"},
    {"delayed", "the set of delayed jobs"},
    {"completed", "the set of completed jobs"},
    {"failed", "the set of failed jobs"},
    {"waiting-children", "the set of parents waiting for their children"},
    {"stalled", "the set of stall candidates"},
    {"stalled-check", "the time of the last stalled check"},
    {"marker", "the workers' wake-up markers"},
    {"meta", "the queue's settings (paused, concurrency, ...)"},
    {"id", "the counter of generated ids"},
    {"pc", "the counter of prioritized jobs"},
    {"events", "the queue's event stream"},
    {"limiter", "the rate limiter's counter"},
    {"repeat", "the set of job schedulers"},
    {"metrics", "the prefix of the metrics keys"},
    {"de", "the prefix of the deduplication keys"},
    {"dn", "the prefix of the pending deduplicated jobs"},
    {"delay", "a key of old BullMQ versions"},
    {"priority", "a key of old BullMQ versions"},
};

/* Families of keys named "<family>:<rest>": dedup owners, pending deduplicated jobs, metrics,
 * and a job scheduler's definition ("repeat:<scheduler id>"; its jobs are
 * "repeat:<scheduler id>:<millis>", which stay valid ids). */
static const char *const reserved_families[] = {"de", "dn", "metrics"};

const char *
jobq__reserved_id(const char *id) {
	for (size_t i = 0; i < sizeof(reserved_keys) / sizeof(reserved_keys[0]); i++)
		if (strcmp(id, reserved_keys[i].name) == 0)
			return reserved_keys[i].what;
	const char *colon = strchr(id, ':');
	if (colon == NULL)
		return NULL;
	size_t head = (size_t)(colon - id);
	for (size_t i = 0; i < sizeof(reserved_families) / sizeof(reserved_families[0]); i++)
		if (strlen(reserved_families[i]) == head &&
		    strncmp(id, reserved_families[i], head) == 0)
			return "a key of the queue's own (deduplication or metrics)";
	/* Ids with ':' exist only in BullMQ's three-part shape ("repeat:<scheduler>:<millis>",
	 * or a Node custom id of three parts); anything else names a job's own key
	 * ("<id>:lock", "<id>:logs", ...) or a scheduler's definition ("repeat:<scheduler>"). */
	size_t parts = 1;
	for (const char *c = id; *c; c++)
		parts += *c == ':';
	if (parts != 3)
		return "ids with ':' other than BullMQ's three-part ones name a job's own keys "
		       "(<id>:lock, <id>:logs, ...) or a job scheduler";
	return NULL;
}

/*
 * Whether Node takes `id` for an integer (BullMQ refuses those as custom ids): when
 * `${parseInt(id, 10)}` === id, that is a decimal integer without a sign other than '-', without
 * leading zeros, not "-0", that JavaScript prints back the same: up to 15 digits always; beyond,
 * only a number whose shortest round-trip form, padded with zeros, is the same digits (from
 * 10^21 JavaScript prints an exponent).
 */
static int
js_integer(const char *id) {
	const char *d = id[0] == '-' ? id + 1 : id;
	size_t n = strlen(d);
	if (n == 0 || (d[0] == '0' && (n > 1 || d != id)))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)d[i]))
			return 0;
	if (n <= 15)
		return 1;
	if (n > 21)
		return 0;
	double v = strtod(d, NULL);
	char buf[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	/* buf is "D.DDDe+XX": the shortest digits, then zeros up to the exponent */
	char digits_[24];
	size_t k = 0;
	for (const char *c = buf; *c && *c != 'e' && k < sizeof(digits_) - 1; c++)
		if (isdigit((unsigned char)*c))
			digits_[k++] = *c;
	long exp10 = strtol(strchr(buf, 'e') + 1, NULL, 10);
	if (exp10 + 1 != (long)n || (size_t)k > n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (d[i] != (i < k ? digits_[i] : '0'))
			return 0;
	return 1;
}

int
jobq__validate_custom_id(const char *id) {
	if (id[0] == '\0')
		return jobq_error_set(JOBQ_EINVAL, "job id is empty (leave job_id NULL for a "
		                                   "generated id)");
	size_t len = strlen(id);
	if (len > JOBQ_ID_MAX)
		return jobq_error_set(JOBQ_EINVAL, "job id is %zu bytes long (at most %d)", len,
		                      JOBQ_ID_MAX);
	if (js_integer(id))
		return jobq_error_set(JOBQ_EINVAL,
		                      "job id '%s' is an integer (reserved for generated ids; "
		                      "BullMQ refuses it too)",
		                      id);
	if (strncmp(id, "0:", 2) == 0)
		return jobq_error_set(JOBQ_EINVAL,
		                      "job id '%s' is reserved: ids starting with '0:' are the "
		                      "wake-up markers of old BullMQ versions, which workers skip "
		                      "and delete",
		                      id);
	size_t parts = 1;
	for (const char *c = id; *c; c++)
		parts += *c == ':';
	if (parts != 1 && parts != 3)
		return jobq_error_set(
		    JOBQ_EINVAL,
		    "job id '%s' contains ':' outside BullMQ's three-part form "
		    "a:b:c (BullMQ refuses it too: such ids name a job's own keys, "
		    "<id>:lock, <id>:logs, ...)",
		    id);
	const char *why = jobq__reserved_id(id);
	if (why != NULL)
		return jobq_error_set(
		    JOBQ_EINVAL,
		    "job id '%s' is reserved: it is the name of one of the queue's "
		    "own storage keys (%s), which a job of that id would overwrite",
		    id, why);
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
	if ((unsigned)b->type > JOBQ_BACKOFF_LINEAR)
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
	if (b->type == JOBQ_BACKOFF_CUSTOM &&
	    (strcmp(b->custom_type, "fixed") == 0 || strcmp(b->custom_type, "exponential") == 0 ||
	     strcmp(b->custom_type, "linear") == 0))
		return jobq_error_set(
		    JOBQ_EINVAL,
		    "job options: custom backoff type '%s' is the name of a built-in "
		    "type (BullMQ's opts store only the name, so the job would come "
		    "back as the built-in): use that type, or another name",
		    b->custom_type);
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
	if (o->dedup_keep_last && o->dedup_id == NULL)
		return jobq_error_set(JOBQ_EINVAL,
		                      "job options: dedup_keep_last given without a dedup id");
	if (o->dedup_ttl_ms > 0 && o->dedup_id == NULL)
		return jobq_error_set(JOBQ_EINVAL,
		                      "job options: dedup ttl given without a dedup id");
	if (o->timestamp < 0 || o->timestamp > JOBQ_TIME_MAX_MS)
		return jobq_error_set(JOBQ_EINVAL,
		                      "job options: timestamp %lld is outside 0..JOBQ_TIME_MAX_MS "
		                      "(%lld)",
		                      (long long)o->timestamp, (long long)JOBQ_TIME_MAX_MS);
	if (o->stack_trace_limit < JOBQ_STACK_TRACE_NONE)
		return jobq_error_set(JOBQ_EINVAL,
		                      "job options: stack_trace_limit %lld is below "
		                      "JOBQ_STACK_TRACE_NONE (-1)",
		                      (long long)o->stack_trace_limit);
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
