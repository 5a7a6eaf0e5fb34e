/*
 * Job schedulers (jobq/scheduler.h): the checks of the public calls, the first time of a pattern
 * scheduler, and dispatch to the backend, which keeps BullMQ 6's rules (Redis in its scripts,
 * memory and LMDB in the engine).
 */
#include <stdio.h>
#include <string.h>

#include "backends/backend.h"
#include "core.h"
#include "cron.h"
#include "sched.h"

int
jobq_scheduler_spec_init(jobq_scheduler_spec *spec, unsigned int version) {
	if (spec == NULL)
		return jobq_error_set(JOBQ_EINVAL, "scheduler spec init: spec is NULL");
	if (version != JOBQ_SCHEDULER_SPEC_VERSION)
		return jobq_error_set(JOBQ_EVERSION,
		                      "scheduler spec: version %u not supported (want %u)", version,
		                      JOBQ_SCHEDULER_SPEC_VERSION);
	memset(spec, 0, sizeof(*spec));
	spec->version = version;
	spec->limit = -1;
	return 0;
}

int
jobq__sched_pattern_next(int64_t *next_ms, const char *sid, const char *pattern, const char *tz,
                         int64_t start_ms, int64_t end_ms, int64_t after_ms) {
	if (start_ms > after_ms)
		after_ms = start_ms;
	jobq_cron cron;
	char why[200];
	if (jobq_cron__parse(&cron, pattern, why, sizeof(why)) < 0)
		return jobq_error_set(JOBQ_EINVAL, "job scheduler %s: pattern '%s': %s", sid,
		                      pattern, why);
	jobq_tz *zone = NULL;
	int rc = jobq_tz__load(&zone, tz != NULL && tz[0] != '\0' ? tz : NULL);
	if (rc == JOBQ_ENOTFOUND || rc == JOBQ_EINVAL)
		return jobq_error_set(JOBQ_EINVAL, "job scheduler %s: %s", sid,
		                      jobq_error_message());
	if (rc < 0)
		return rc;
	rc = jobq_cron__next(&cron, zone, after_ms, next_ms);
	jobq_tz__free(zone);
	if (rc == 0 && end_ms > 0 && *next_ms > end_ms)
		return JOBQ_ENOTFOUND; /* cron-parser refuses a time past the end date */
	return rc;
}

/* A scheduler id: what a job id may hold, without ':' (the iteration ids are
 * "repeat:<id>:<millis>"). */
static int
check_sched_id(const char *id, const char *what) {
	if (id == NULL || id[0] == '\0')
		return jobq_error_set(JOBQ_EINVAL, "%s: scheduler id is empty", what);
	size_t len = strlen(id);
	if (len > JOBQ_ID_MAX - 30) /* room for "repeat:" and the millis */
		return jobq_error_set(JOBQ_EINVAL,
		                      "%s: scheduler id is %zu bytes long (at most %d)", what, len,
		                      JOBQ_ID_MAX - 30);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];
		if (c == ':' || c < 0x20 || c == 0x7f)
			return jobq_error_set(
			    JOBQ_EINVAL, "%s: scheduler id '%s' has %s at byte %zu", what, id,
			    c == ':' ? "':' (it separates storage keys)" : "a control character",
			    i);
	}
	return 0;
}

static int
check_backend(const jobq_queue *q, const char *what) {
	const jobq_backend *b = q->store->backend;
	if (b->version < 5 || b->scheduler_upsert == NULL || b->scheduler_get == NULL ||
	    b->scheduler_list == NULL || b->scheduler_remove == NULL)
		return jobq_error_set(JOBQ_ENOTSUP, "%s: the %s backend has no job schedulers",
		                      what, b->name);
	return 0;
}

/* The checks of the repeat settings (BullMQ's, and what jobq refuses besides). */
static int
check_repeat(const jobq_scheduler_spec *s, const char *id, int64_t now) {
	const char *w = "upsert scheduler";
	if (s->version != JOBQ_SCHEDULER_SPEC_VERSION)
		return jobq_error_set(JOBQ_EVERSION,
		                      "%s %s: spec version %u not supported (want %u)", w, id,
		                      s->version, JOBQ_SCHEDULER_SPEC_VERSION);
	int has_pattern = s->pattern != NULL && s->pattern[0] != '\0';
	if (s->every_ms != 0 && has_pattern)
		return jobq_error_set(JOBQ_EINVAL, "%s %s: both every and a pattern are given", w,
		                      id);
	if (s->every_ms == 0 && !has_pattern)
		return jobq_error_set(JOBQ_EINVAL, "%s %s: give every or a pattern", w, id);
	if (s->every_ms < 0 || s->every_ms > JOBQ_TIME_MAX_MS)
		return jobq_error_set(JOBQ_EINVAL, "%s %s: every %lld ms is not positive", w, id,
		                      (long long)s->every_ms);
	if (s->offset_ms < 0 || (s->offset_ms > 0 && s->every_ms == 0))
		return jobq_error_set(JOBQ_EINVAL, "%s %s: offset %lld ms %s", w, id,
		                      (long long)s->offset_ms,
		                      s->offset_ms < 0 ? "is negative" : "needs every");
	if (s->tz != NULL && s->tz[0] != '\0' && !has_pattern)
		return jobq_error_set(JOBQ_EINVAL, "%s %s: a time zone needs a pattern", w, id);
	if (s->immediately && s->start_ms > 0)
		return jobq_error_set(JOBQ_EINVAL, "%s %s: both immediately and a start date given",
		                      w, id);
	if (s->start_ms < 0 || s->end_ms < 0 || s->start_ms > JOBQ_TIME_MAX_MS ||
	    s->end_ms > JOBQ_TIME_MAX_MS)
		return jobq_error_set(JOBQ_EINVAL, "%s %s: a start or end date is out of range", w,
		                      id);
	if (s->end_ms > 0 && s->start_ms > 0 && s->end_ms <= s->start_ms)
		return jobq_error_set(JOBQ_EINVAL,
		                      "%s %s: the end date is not after the start date", w, id);
	if (s->end_ms > 0 && s->end_ms < now)
		return jobq_error_set(JOBQ_EINVAL, "%s %s: the end date is already past", w, id);
	if (s->limit == 0)
		return jobq_error_set(JOBQ_EINVAL, "%s %s: a limit of 0 iterations", w, id);
	const jobq_job_options *o = s->opts;
	if (o != NULL) {
		int rc = jobq__validate_job_options(o);
		if (rc < 0)
			return rc;
		if (o->job_id != NULL || o->delay_ms != 0 || o->timestamp != 0 ||
		    o->dedup_id != NULL)
			return jobq_error_set(
			    JOBQ_EINVAL,
			    "%s %s: the template's options may not set a job id, "
			    "delay, timestamp or dedup id (the scheduler sets them)",
			    w, id);
	}
	if (s->name != NULL && jobq__validate_job_name(s->name) < 0)
		return JOBQ_EINVAL;
	return 0;
}

int
jobq_queue_upsert_scheduler(jobq_job_id *iteration, jobq_queue *q, const char *id,
                            const jobq_scheduler_spec *spec) {
	const char *w = "upsert scheduler";
	int rc = jobq_queue__check(q, w);
	if (rc < 0 || (rc = check_sched_id(id, w)) < 0 || (rc = check_backend(q, w)) < 0)
		return rc;
	if (spec == NULL)
		return jobq_error_set(JOBQ_EINVAL, "%s %s: spec is NULL", w, id);
	int64_t now = jobq_queue__now(q);
	if ((rc = check_repeat(spec, id, now)) < 0)
		return rc;
	jobq_scheduler_spec s = *spec;
	if (s.tz != NULL && s.tz[0] == '\0')
		s.tz = NULL; /* the local zone */
	if (s.name == NULL)
		s.name = id; /* BullMQ names the iterations after the scheduler */
	if (s.data == NULL) {
		s.data = "{}";
		s.data_len = 2;
	} else if (s.data_len == 0) {
		s.data_len = strlen(s.data);
	}
	if ((rc = jobq__validate_json("upsert scheduler: data", s.data, s.data_len)) < 0)
		return rc;
	int64_t next = 0;
	if (s.pattern != NULL && s.pattern[0] != '\0') {
		/* the first time, as BullMQ's producer computes it */
		rc =
		    jobq__sched_pattern_next(&next, id, s.pattern, s.tz, s.start_ms, s.end_ms, now);
		if (rc == JOBQ_ENOTFOUND)
			return jobq_error_set(JOBQ_EINVAL, "%s %s: pattern '%s' has no time%s", w,
			                      id, s.pattern,
			                      s.end_ms > 0 ? " before the end date" : "");
		if (rc < 0)
			return rc;
		if (s.immediately || next < now)
			next = now;
	}
	jobq_job_id own;
	return q->store->backend->scheduler_upsert(iteration ? iteration : &own, q->bq, id, &s,
	                                           next, now);
}

int
jobq_queue_get_scheduler(jobq_scheduler **out, jobq_queue *q, const char *id) {
	const char *w = "get scheduler";
	if (out != NULL)
		*out = NULL;
	int rc = jobq_queue__check(q, w);
	if (rc < 0 || (rc = check_sched_id(id, w)) < 0 || (rc = check_backend(q, w)) < 0)
		return rc;
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "%s: out is NULL", w);
	return q->store->backend->scheduler_get(out, q->bq, id);
}

int
jobq_queue_list_schedulers(jobq_scheduler_list **out, jobq_queue *q) {
	const char *w = "list schedulers";
	if (out != NULL)
		*out = NULL;
	int rc = jobq_queue__check(q, w);
	if (rc < 0 || (rc = check_backend(q, w)) < 0)
		return rc;
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "%s: out is NULL", w);
	if ((rc = q->store->backend->scheduler_list(out, q->bq)) < 0)
		return rc;
	if (*out == NULL && (*out = jobq__calloc(1, sizeof(**out))) == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "%s: out of memory", w);
	return 0;
}

int
jobq_queue_remove_scheduler(jobq_queue *q, const char *id) {
	const char *w = "remove scheduler";
	int rc = jobq_queue__check(q, w);
	if (rc < 0 || (rc = check_sched_id(id, w)) < 0 || (rc = check_backend(q, w)) < 0)
		return rc;
	return q->store->backend->scheduler_remove(q->bq, id, jobq_queue__now(q));
}

static void
scheduler_clear(jobq_scheduler *s) {
	jobq__free(s->id);
	jobq__free(s->name);
	jobq__free(s->pattern);
	jobq__free(s->tz);
	jobq__free(s->data);
	jobq__free(s->opts_json);
}

void
jobq_scheduler_free(jobq_scheduler *s) {
	if (s == NULL)
		return;
	scheduler_clear(s);
	jobq__free(s);
}

void
jobq_scheduler_list_free(jobq_scheduler_list *list) {
	if (list == NULL)
		return;
	for (size_t i = 0; i < list->count; i++)
		scheduler_clear(&list->items[i]);
	jobq__free(list->items);
	jobq__free(list);
}
