/*
 * Job schedulers in the in-process engine: the record codec and the iteration times
 * (sched_rec.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "backends/backend.h"
#include "core/sched.h"
#include "engine/sched_rec.h"

static int64_t
num(const json_t *o, const char *key, int64_t dflt) {
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* A copy of string member `key` (NULL when absent); -1 on ENOMEM. */
static int
str(char **out, const json_t *o, const char *key) {
	const char *v = json_string_value(json_object_get(o, key));
	*out = NULL;
	if (v == NULL)
		return 0;
	return (*out = jobq__strdup(v)) != NULL ? 0 : -1;
}

int
jobq_eng__sched_encode(char **out, size_t *len, const eng_sched *s) {
	json_t *o = json_pack(
	    "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:s,s:s}", "every", (json_int_t)s->every_ms, "offset",
	    (json_int_t)s->offset_ms, "start", (json_int_t)s->start_ms, "end",
	    (json_int_t)s->end_ms, "limit", (json_int_t)s->limit, "ic", (json_int_t)s->iterations,
	    "next", (json_int_t)s->next_ms, "name", s->name, "data", s->data, "opts", s->opts_json);
	if (o != NULL && s->pattern != NULL)
		json_object_set_new(o, "pattern", json_string(s->pattern));
	if (o != NULL && s->tz != NULL)
		json_object_set_new(o, "tz", json_string(s->tz));
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	*out = text != NULL ? jobq__strdup(text) : NULL;
	free(text);
	if (*out == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "out of memory (job scheduler record)");
	*len = strlen(*out);
	return 0;
}

int
jobq_eng__sched_decode(eng_sched *s, const char *sid, const char *text, size_t len) {
	memset(s, 0, sizeof(*s));
	json_t *o = json_loadb(text, len, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return jobq_error_set(JOBQ_EBACKEND, "job scheduler %s: damaged record", sid);
	}
	s->every_ms = num(o, "every", 0);
	s->offset_ms = num(o, "offset", 0);
	s->start_ms = num(o, "start", 0);
	s->end_ms = num(o, "end", 0);
	s->limit = num(o, "limit", -1);
	s->iterations = num(o, "ic", 0);
	s->next_ms = num(o, "next", -1);
	int bad = str(&s->pattern, o, "pattern") | str(&s->tz, o, "tz") | str(&s->name, o, "name") |
	          str(&s->data, o, "data") | str(&s->opts_json, o, "opts");
	json_decref(o);
	if (bad || s->name == NULL || s->data == NULL || s->opts_json == NULL) {
		jobq_eng__sched_clear(s);
		return bad ? jobq_error_set(JOBQ_ENOMEM, "out of memory (job scheduler record)")
		           : jobq_error_set(JOBQ_EBACKEND, "job scheduler %s: damaged record", sid);
	}
	return 0;
}

void
jobq_eng__sched_clear(eng_sched *s) {
	jobq__free(s->pattern);
	jobq__free(s->tz);
	jobq__free(s->name);
	jobq__free(s->data);
	jobq__free(s->opts_json);
	memset(s, 0, sizeof(*s));
}

/* A copy of `v` into *out (NULL stays NULL); -1 on ENOMEM. */
static int
dup(char **out, const char *v) {
	*out = v != NULL ? jobq__strdup(v) : NULL;
	return v != NULL && *out == NULL ? -1 : 0;
}

int
jobq_eng__sched_public(jobq_scheduler *out, const char *sid, const eng_sched *s) {
	memset(out, 0, sizeof(*out));
	out->every_ms = s->every_ms;
	out->offset_ms = s->offset_ms;
	out->start_ms = s->start_ms;
	out->end_ms = s->end_ms;
	out->limit = s->limit;
	out->iterations = s->iterations;
	out->next_ms = s->next_ms;
	if ((dup(&out->id, sid) | dup(&out->name, s->name) | dup(&out->pattern, s->pattern) |
	     dup(&out->tz, s->tz) | dup(&out->data, s->data) | dup(&out->opts_json, s->opts_json)) <
	    0) {
		char **fields[] = {&out->id, &out->name, &out->pattern,
		                   &out->tz, &out->data, &out->opts_json};
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
			jobq__free(*fields[i]);
			*fields[i] = NULL;
		}
		return jobq_error_set(JOBQ_ENOMEM, "out of memory (job schedulers)");
	}
	return 0;
}

static int
by_next(const void *a, const void *b) {
	const jobq_scheduler *x = a, *y = b;
	if (x->next_ms != y->next_ms)
		return x->next_ms < y->next_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

void
jobq_eng__sched_sort(jobq_scheduler *items, size_t n) {
	if (n > 1)
		qsort(items, n, sizeof(*items), by_next);
}

/* The first slot after `now` of an every scheduler that keeps `offset`. */
static int64_t
next_slot(int64_t every, int64_t offset, int64_t now) {
	int64_t t = now / every * every + offset;
	return t <= now ? t + every : t;
}

int
jobq_eng__sched_make(eng_sched *s, const jobq_scheduler_spec *spec, const eng_sched *prev,
                     int replacing, int64_t pattern_next, int64_t now) {
	memset(s, 0, sizeof(*s));
	s->every_ms = spec->every_ms;
	s->start_ms = spec->start_ms;
	s->end_ms = spec->end_ms;
	s->limit = spec->limit > 0 ? spec->limit : -1;
	s->iterations = prev != NULL && prev->iterations > 0 ? prev->iterations : 1;
	s->offset_ms = spec->offset_ms;
	int64_t every = spec->every_ms;
	if (every <= 0) {
		s->next_ms = pattern_next;
		s->offset_ms = replacing && prev != NULL ? prev->offset_ms : 0;
	} else {
		int keep = prev != NULL && prev->every_ms == every;
		int64_t next;
		if (keep)
			next = prev->next_ms + every < now ? next_slot(every, spec->offset_ms, now)
			                                   : prev->next_ms + every;
		else if (spec->start_ms > 0)
			next = spec->start_ms > now ? spec->start_ms : now;
		else if (spec->offset_ms > 0)
			next = next_slot(every, spec->offset_ms, now);
		else
			next = now;
		if (replacing && keep)
			next = prev->next_ms; /* the replaced iteration's time */
		s->next_ms = next;
		/* BullMQ stores the first time's phase when no offset is given, and keeps the
		 * stored one when it replaces an iteration */
		if (spec->offset_ms == 0)
			s->offset_ms = replacing && prev != NULL ? prev->offset_ms : next % every;
	}
	char *opts = NULL;
	int rc = jobq__template_opts_json(&opts, spec->opts);
	if (rc < 0)
		return rc;
	s->opts_json = opts;
	if (dup(&s->pattern, spec->every_ms > 0 ? NULL : spec->pattern) < 0 ||
	    dup(&s->tz, spec->tz) < 0 || dup(&s->name, spec->name) < 0 ||
	    (s->data = jobq__malloc(spec->data_len + 1)) == NULL) {
		jobq_eng__sched_clear(s);
		return jobq_error_set(JOBQ_ENOMEM, "out of memory (job scheduler record)");
	}
	memcpy(s->data, spec->data, spec->data_len);
	s->data[spec->data_len] = '\0';
	return 0;
}

int
jobq_eng__sched_following(int64_t *next, const eng_sched *s, const char *sid, int64_t now) {
	if (s->limit > 0 && s->iterations >= s->limit)
		return 0;
	if (s->end_ms > 0 && now > s->end_ms)
		return 0;
	if (s->every_ms > 0) {
		int64_t t = s->next_ms + s->every_ms;
		*next = t < now ? next_slot(s->every_ms, s->offset_ms, now) : t;
		return 1;
	}
	if (s->pattern == NULL)
		return 0;
	int rc = jobq__sched_pattern_next(next, sid, s->pattern, s->tz, s->start_ms, s->end_ms,
	                                  s->next_ms > now ? s->next_ms : now);
	if (rc == JOBQ_ENOTFOUND)
		return 0;
	return rc < 0 ? rc : 1;
}

size_t
jobq_eng__iteration_id(char *buf, const char *sid, int64_t millis) {
	int n = snprintf(buf, JOBQ_ID_MAX + 1, "repeat:%s:%lld", sid, (long long)millis);
	return n < 0 ? 0 : (size_t)n;
}

int
jobq_eng__iteration_of(char *buf, int64_t *millis, const char *id, size_t id_len) {
	if (id_len < 10 || memcmp(id, "repeat:", 7) != 0)
		return 0;
	const char *colon = memchr(id + 7, ':', id_len - 7);
	if (colon == NULL || colon == id + 7 || colon + 1 == id + id_len)
		return 0;
	int64_t v = 0;
	for (const char *p = colon + 1; p < id + id_len; p++) {
		if (*p < '0' || *p > '9' || v > INT64_MAX / 10 - 10)
			return 0;
		v = v * 10 + (*p - '0');
	}
	size_t n = (size_t)(colon - (id + 7));
	memcpy(buf, id + 7, n);
	buf[n] = '\0';
	*millis = v;
	return 1;
}

int
jobq_eng__mark_iteration(jobq_job *job) {
	char sid[JOBQ_ID_MAX + 1];
	int64_t millis;
	if (job->scheduler_id != NULL || job->id == NULL ||
	    !jobq_eng__iteration_of(sid, &millis, job->id, strlen(job->id)))
		return 0;
	if ((job->scheduler_id = jobq__strdup(sid)) == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "out of memory (job %s)", job->id);
	return 0;
}
