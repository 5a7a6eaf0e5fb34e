/*
 * Job options as BullMQ's `opts` JSON (bullmq-protocol.md §2.2: short keys, "attempts" always
 * present), both ways: the Redis backend's job hashes and the template options of the job
 * schedulers of every backend.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "backends/backend.h"

/* removeOnComplete / removeOnFail: true, false, n, or {count, age (seconds)}. */
static json_t *
keep_to_json(const jobq_keep *k) {
	switch (k->mode) {
	case JOBQ_KEEP_ALL:
		return json_false();
	case JOBQ_KEEP_NONE:
		return json_true();
	case JOBQ_KEEP_LIMIT:
		if (k->age_ms < 0)
			return json_integer(k->count < 0 ? 0 : k->count);
		json_t *o = json_object();
		if (o == NULL)
			return NULL;
		if (k->count >= 0)
			json_object_set_new(o, "count", json_integer(k->count));
		if (k->age_ms % 1000 == 0)
			json_object_set_new(o, "age", json_integer(k->age_ms / 1000));
		else
			json_object_set_new(o, "age", json_real((double)k->age_ms / 1000.0));
		return o;
	case JOBQ_KEEP_DEFAULT:
	default:
		return NULL;
	}
}

/* Sets o[key] to the string s; *bad notes a string jansson refuses (not UTF-8), which
 * json_object_set_new would drop without a word. */
static void
set_string(json_t *o, const char *key, const char *s, int *bad) {
	json_t *v = json_string(s);
	if (v == NULL)
		*bad = 1;
	json_object_set_new(o, key, v);
}

int
jobq__opts_to_json(char **out, const jobq_job_options *o) {
	json_t *j = json_object();
	if (j == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "out of memory (opts JSON)");
	int bad = 0;
	json_object_set_new(j, "attempts", json_integer(o->attempts));
	if (o->backoff.type != JOBQ_BACKOFF_NONE) {
		json_t *bo = json_object();
		const char *type = o->backoff.type == JOBQ_BACKOFF_FIXED         ? "fixed"
		                   : o->backoff.type == JOBQ_BACKOFF_EXPONENTIAL ? "exponential"
		                   : o->backoff.type == JOBQ_BACKOFF_LINEAR      ? "linear"
		                   : o->backoff.custom_type ? o->backoff.custom_type
		                                            : "custom";
		set_string(bo, "type", type, &bad);
		json_object_set_new(bo, "delay", json_integer(o->backoff.delay_ms));
		if (o->backoff.jitter > 0)
			json_object_set_new(bo, "jitter", json_real(o->backoff.jitter));
		if (o->backoff.max_delay_ms > 0) /* jobq's own key; BullMQ ignores it */
			json_object_set_new(bo, "maxDelay", json_integer(o->backoff.max_delay_ms));
		json_object_set_new(j, "backoff", bo);
	}
	if (o->delay_ms > 0)
		json_object_set_new(j, "delay", json_integer(o->delay_ms));
	if (o->priority > 0)
		json_object_set_new(j, "priority", json_integer(o->priority));
	if (o->lifo)
		json_object_set_new(j, "lifo", json_true());
	if (o->job_id != NULL)
		set_string(j, "jobId", o->job_id, &bad);
	json_t *k = keep_to_json(&o->remove_on_complete);
	if (k != NULL)
		json_object_set_new(j, "removeOnComplete", k);
	k = keep_to_json(&o->remove_on_fail);
	if (k != NULL)
		json_object_set_new(j, "removeOnFail", k);
	if (o->keep_logs > 0)
		json_object_set_new(j, "kl", json_integer(o->keep_logs));
	if (o->size_limit > 0)
		json_object_set_new(j, "sizeLimit", json_integer((json_int_t)o->size_limit));
	if (o->stack_trace_limit != 0)
		json_object_set_new(
		    j, "stackTraceLimit",
		    json_integer(o->stack_trace_limit < 0 ? 0 : o->stack_trace_limit));
	if (o->dedup_id != NULL) {
		json_t *de = json_object();
		set_string(de, "id", o->dedup_id, &bad);
		if (o->dedup_ttl_ms > 0)
			json_object_set_new(de, "ttl", json_integer(o->dedup_ttl_ms));
		if (o->dedup_keep_last)
			json_object_set_new(de, "keepLastIfActive", json_true());
		json_object_set_new(j, "de", de);
	}
	char *text = bad ? NULL : json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (text == NULL)
		return jobq_error_set(JOBQ_EINVAL,
		                      "job options cannot be encoded as JSON (invalid UTF-8 "
		                      "in the job id, dedup id or backoff type?)");
	*out = jobq__strdup(text);
	free(text);
	return *out ? 0 : jobq_error_set(JOBQ_ENOMEM, "out of memory (opts JSON)");
}

static int64_t
json_num(const json_t *v, int64_t dflt) {
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_real(v))
		return jobq__f64_to_i64(json_real_value(v));
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return dflt;
}

static void
keep_from_json(jobq_keep *k, const json_t *v) {
	k->count = -1;
	k->age_ms = -1;
	if (v == NULL || json_is_null(v)) {
		k->mode = JOBQ_KEEP_DEFAULT;
	} else if (json_is_true(v)) {
		k->mode = JOBQ_KEEP_NONE;
	} else if (json_is_false(v)) {
		k->mode = JOBQ_KEEP_ALL;
	} else if (json_is_number(v)) {
		k->mode = JOBQ_KEEP_LIMIT;
		k->count = json_num(v, 0);
	} else if (json_is_object(v)) {
		k->mode = JOBQ_KEEP_LIMIT;
		json_t *c = json_object_get(v, "count");
		json_t *a = json_object_get(v, "age");
		if (c != NULL)
			k->count = json_num(c, -1);
		if (json_is_number(a))
			k->age_ms = jobq__f64_to_i64(json_number_value(a) * 1000.0);
	} else {
		k->mode = JOBQ_KEEP_DEFAULT;
	}
}

int
jobq__opts_from_json(jobq_job_options *o, const char *text, size_t len) {
	memset(o, 0, sizeof(*o));
	o->version = JOBQ_JOB_OPTIONS_VERSION;
	o->remove_on_complete.mode = o->remove_on_fail.mode = JOBQ_KEEP_DEFAULT;
	if (text == NULL)
		return 0;
	json_t *j = json_loadb(text, len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return 0;
	}
	int oom = 0;
	int64_t v = json_num(json_object_get(j, "attempts"), 0);
	o->attempts = v > 0 ? (uint32_t)v : 0;
	json_t *bo = json_object_get(j, "backoff");
	if (json_is_number(bo)) {
		o->backoff.type = JOBQ_BACKOFF_FIXED;
		o->backoff.delay_ms = json_num(bo, 0);
	} else if (json_is_object(bo)) {
		const char *type = json_string_value(json_object_get(bo, "type"));
		o->backoff.delay_ms = json_num(json_object_get(bo, "delay"), 0);
		json_t *jit = json_object_get(bo, "jitter");
		o->backoff.jitter = json_is_number(jit) ? json_number_value(jit) : 0;
		o->backoff.max_delay_ms = json_num(json_object_get(bo, "maxDelay"), 0);
		if (type == NULL || strcmp(type, "fixed") == 0) {
			o->backoff.type = JOBQ_BACKOFF_FIXED;
		} else if (strcmp(type, "exponential") == 0) {
			o->backoff.type = JOBQ_BACKOFF_EXPONENTIAL;
		} else if (strcmp(type, "linear") == 0) {
			o->backoff.type = JOBQ_BACKOFF_LINEAR; /* jobq's; a custom name to Node */
		} else {
			o->backoff.type = JOBQ_BACKOFF_CUSTOM;
			o->backoff.custom_type = jobq__strdup(type);
			oom |= o->backoff.custom_type == NULL;
		}
	}
	o->delay_ms = json_num(json_object_get(j, "delay"), 0);
	v = json_num(json_object_get(j, "priority"), 0);
	o->priority = v > 0 ? (uint32_t)v : 0;
	o->lifo = json_is_true(json_object_get(j, "lifo"));
	const char *jid = json_string_value(json_object_get(j, "jobId"));
	if (jid != NULL)
		oom |= (o->job_id = jobq__strdup(jid)) == NULL;
	keep_from_json(&o->remove_on_complete, json_object_get(j, "removeOnComplete"));
	keep_from_json(&o->remove_on_fail, json_object_get(j, "removeOnFail"));
	o->keep_logs = json_num(json_object_get(j, "kl"), 0);
	v = json_num(json_object_get(j, "sizeLimit"), 0);
	o->size_limit = v > 0 ? (size_t)v : 0;
	json_t *de = json_object_get(j, "de");
	if (json_is_object(de)) {
		const char *did = json_string_value(json_object_get(de, "id"));
		if (did != NULL)
			oom |= (o->dedup_id = jobq__strdup(did)) == NULL;
		o->dedup_ttl_ms = json_num(json_object_get(de, "ttl"), 0);
		o->dedup_keep_last = json_is_true(json_object_get(de, "keepLastIfActive"));
	}
	o->timestamp = json_num(json_object_get(j, "timestamp"), 0);
	/* BullMQ: 0 keeps no line, N > 0 the newest N; absent (or negative, which Node does not
	 * check) keeps all. */
	json_t *stl = json_object_get(j, "stackTraceLimit");
	if (json_is_number(stl)) {
		v = json_num(stl, 0);
		o->stack_trace_limit = v == 0 ? JOBQ_STACK_TRACE_NONE : v > 0 ? v : 0;
	}
	json_decref(j);
	if (oom) {
		jobq__free((char *)(uintptr_t)o->backoff.custom_type);
		jobq__free((char *)(uintptr_t)o->job_id);
		jobq__free((char *)(uintptr_t)o->dedup_id);
		o->backoff.custom_type = o->job_id = o->dedup_id = NULL;
		return jobq_error_set(JOBQ_ENOMEM, "out of memory (opts JSON)");
	}
	return 0;
}

/* The template's options as the scheduler hash holds them: what the options set, without
 * BullMQ's default attempts (Node stores only what the template gave); "{}" for none. */
int
jobq__template_opts_json(char **out, const jobq_job_options *o) {
	if (o == NULL) {
		*out = jobq__strdup("{}");
		return *out ? 0 : jobq_error_set(JOBQ_ENOMEM, "out of memory (opts JSON)");
	}
	int rc = jobq__opts_to_json(out, o);
	if (rc < 0 || o->attempts != 0)
		return rc;
	json_t *j = json_loads(*out, 0, NULL);
	if (j == NULL)
		return 0;
	json_object_del(j, "attempts");
	char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (text == NULL)
		return 0;
	jobq__free(*out);
	*out = jobq__strdup(text);
	free(text);
	return *out ? 0 : jobq_error_set(JOBQ_ENOMEM, "out of memory (opts JSON)");
}
