/*
 * Redis backend: the job codec. Job options are stored as BullMQ's `opts` JSON (short keys
 * of docs/protocol.md §2.2, "attempts" always present); job hashes are decoded into
 * jobq_job with every field BullMQ writes. Unknown opts keys written by Node are ignored
 * here and left untouched in Redis (no script rewrites `opts`). Also the readers of the
 * replies that carry more than a number: addJobs' ids, string arrays and event streams.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "backends/backend.h"
#include "redis_int.h"

int
rq_opts_to_json(char **out, const jobq_job_options *o) {
	return jobq__opts_to_json(out, o);
}

/* Decodes `opts` JSON (absent or malformed: defaults, as Node reads it). */
static int
opts_from_json(jobq_job_options *o, const char *text, size_t len) {
	return jobq__opts_from_json(o, text, len);
}

static int
stacktrace_from_json(jobq_job *job, const char *text, size_t len) {
	json_t *j = json_loadb(text, len, 0, NULL);
	if (!json_is_array(j)) {
		json_decref(j);
		return 0; /* tolerated, as Node does */
	}
	size_t n = json_array_size(j);
	if (n > 0) {
		job->stacktrace = jobq__calloc(n, sizeof(char *));
		if (job->stacktrace == NULL) {
			json_decref(j);
			return JOBQ_ENOMEM;
		}
	}
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(j, i);
		const char *s = json_is_string(e) ? json_string_value(e) : "";
		job->stacktrace[job->stacktrace_count] = jobq__strdup(s);
		if (job->stacktrace[job->stacktrace_count] == NULL) {
			json_decref(j);
			return JOBQ_ENOMEM;
		}
		job->stacktrace_count++;
	}
	json_decref(j);
	return 0;
}

static int64_t
num(const redisReply *v) {
	return strtoll(v->str, NULL, 10);
}

static uint32_t
num32(const redisReply *v) {
	int64_t n = num(v);
	return n > 0 ? (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n) : 0;
}

/*
 * The options of the last job decoded by this thread, by their JSON text: the jobs of a
 * queue mostly share one `opts` text, and decoding it is most of a job's decoding. Only
 * options that own no strings are kept.
 */
enum { OPTS_CACHE_TEXT = 256 };
static _Thread_local struct {
	size_t len; /* 0: empty */
	char text[OPTS_CACHE_TEXT];
	jobq_job_options o;
} opts_cache;

static int
opts_decode(jobq_job_options *o, const redisReply *v) {
	if (v != NULL && opts_cache.len == v->len && v->len > 0 &&
	    memcmp(opts_cache.text, v->str, v->len) == 0) {
		*o = opts_cache.o;
		return 0;
	}
	int rc = opts_from_json(o, v ? v->str : NULL, v ? v->len : 0);
	if (rc == 0 && v != NULL && v->len > 0 && v->len <= OPTS_CACHE_TEXT && o->job_id == NULL &&
	    o->dedup_id == NULL && o->backoff.custom_type == NULL) {
		memcpy(opts_cache.text, v->str, v->len);
		opts_cache.len = v->len;
		opts_cache.o = *o;
	}
	return rc;
}

/* The job hash fields kept as strings, packed after the job struct. */
enum { F_NAME, F_DATA, F_RESULT, F_FAILED, F_PROGRESS, F_DEFA, F_RJK, F_PB, F__COUNT };

static char *
pack(char **p, const char *s, size_t n) {
	char *d = *p;
	memcpy(d, s, n);
	d[n] = '\0';
	*p += n + 1;
	return d;
}

static int
field_is(const redisReply *k, const char *name, size_t len) {
	return k->len == len && memcmp(k->str, name, len) == 0;
}
#define FIELD_IS(k, lit) field_is(k, lit, sizeof(lit) - 1)

int
rq_job_decode(jobq_job **out, const char *id, size_t id_len, const redisReply *hash,
              jobq_state state, const char *token) {
	if (hash == NULL || hash->type != REDIS_REPLY_ARRAY || hash->elements % 2 != 0)
		return jobq_error_set(JOBQ_EBACKEND, "redis: job %s: malformed hash reply", id);
	const redisReply *str[F__COUNT] = {NULL};
	const redisReply *opts = NULL, *atm = NULL, *attempts_made = NULL, *stack = NULL;
	const redisReply *deid = NULL;
	int64_t timestamp = 0, delay = 0, processed_on = 0, finished_on = 0;
	uint32_t priority = 0, ats = 0, stc = 0;
	for (size_t i = 0; i < hash->elements; i += 2) {
		const redisReply *k = hash->element[i], *v = hash->element[i + 1];
		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		if (FIELD_IS(k, "name"))
			str[F_NAME] = v;
		else if (FIELD_IS(k, "data"))
			str[F_DATA] = v;
		else if (FIELD_IS(k, "opts"))
			opts = v;
		else if (FIELD_IS(k, "timestamp"))
			timestamp = num(v);
		else if (FIELD_IS(k, "delay"))
			delay = num(v);
		else if (FIELD_IS(k, "priority"))
			priority = num32(v);
		else if (FIELD_IS(k, "processedOn"))
			processed_on = num(v);
		else if (FIELD_IS(k, "finishedOn"))
			finished_on = num(v);
		else if (FIELD_IS(k, "returnvalue"))
			str[F_RESULT] = v;
		else if (FIELD_IS(k, "failedReason"))
			str[F_FAILED] = v;
		else if (FIELD_IS(k, "stacktrace"))
			stack = v;
		else if (FIELD_IS(k, "progress"))
			str[F_PROGRESS] = v;
		else if (FIELD_IS(k, "ats"))
			ats = num32(v);
		else if (FIELD_IS(k, "atm"))
			atm = v;
		else if (FIELD_IS(k, "attemptsMade"))
			attempts_made = v;
		else if (FIELD_IS(k, "stc"))
			stc = num32(v);
		else if (FIELD_IS(k, "defa"))
			str[F_DEFA] = v;
		else if (FIELD_IS(k, "deid"))
			deid = v;
		else if (FIELD_IS(k, "rjk"))
			str[F_RJK] = v;
		else if (FIELD_IS(k, "pb"))
			str[F_PB] = v;
	}
	/* one allocation: the struct, then id, the string fields and the token */
	size_t token_len = token ? strlen(token) : 0;
	size_t size = id_len + 1 + (token ? token_len + 1 : 0) + (str[F_NAME] ? 0 : 1) +
	              (str[F_DATA] ? 0 : 3);
	for (int f = 0; f < F__COUNT; f++)
		if (str[f] != NULL)
			size += str[f]->len + 1;
	char *p;
	jobq_job *job = jobq_job__new_packed(size, &p);
	if (job == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory decoding job %s", id);
	job->state = state;
	job->id = pack(&p, id, id_len);
	job->name = str[F_NAME] ? pack(&p, str[F_NAME]->str, str[F_NAME]->len) : pack(&p, "", 0);
	if (str[F_DATA] != NULL) {
		job->data = pack(&p, str[F_DATA]->str, str[F_DATA]->len);
		job->data_len = str[F_DATA]->len;
	} else {
		job->data = pack(&p, "{}", 2);
		job->data_len = 2;
	}
	if (str[F_RESULT] != NULL)
		job->result = pack(&p, str[F_RESULT]->str, str[F_RESULT]->len);
	if (str[F_FAILED] != NULL)
		job->failed_reason = pack(&p, str[F_FAILED]->str, str[F_FAILED]->len);
	if (str[F_PROGRESS] != NULL)
		job->progress = pack(&p, str[F_PROGRESS]->str, str[F_PROGRESS]->len);
	if (str[F_DEFA] != NULL)
		job->deferred_failure = pack(&p, str[F_DEFA]->str, str[F_DEFA]->len);
	if (str[F_RJK] != NULL)
		job->scheduler_id = pack(&p, str[F_RJK]->str, str[F_RJK]->len);
	if (str[F_PB] != NULL)
		job->processed_by = pack(&p, str[F_PB]->str, str[F_PB]->len);
	if (token != NULL)
		job->token = pack(&p, token, token_len);
	job->timestamp = timestamp;
	job->delay_ms = delay;
	job->priority = priority;
	job->processed_on = processed_on;
	job->finished_on = finished_on;
	job->attempts_started = ats;
	job->stalled_count = stc;
	if (atm != NULL)
		job->attempts_made = num32(atm);
	else if (attempts_made != NULL)
		job->attempts_made = num32(attempts_made);
	int rc = stack ? stacktrace_from_json(job, stack->str, stack->len) : 0;
	if (rc == 0)
		rc = opts_decode(&job->opts, opts);
	if (rc == 0 && job->opts.timestamp == 0)
		job->opts.timestamp = job->timestamp;
	/* the dedup key the job owns, also when its opts do not say (older BullMQ versions) */
	if (rc == 0 && deid != NULL && deid->len > 0 && job->opts.dedup_id == NULL &&
	    (job->opts.dedup_id = jobq__strndup(deid->str, deid->len)) == NULL)
		rc = JOBQ_ENOMEM;
	if (rc < 0) {
		jobq_job_free(job);
		return jobq_error_set(rc, "redis: out of memory decoding job %s", id);
	}
	*out = job;
	return 0;
}

int
rq_job_from_hash(jobq_job **out, const char *id, const redisReply *hash, jobq_state state) {
	return rq_job_decode(out, id, strlen(id), hash, state, NULL);
}

/*
 * Reads the outcomes and ids of jobs `from` .. `from + n - 1` of an addJobs reply to `total`
 * jobs into ids[0 .. n) and outcomes[0 .. n) (may be NULL). The reply is {firstId, then
 * {index, outcome, id} per job that was not plain}: job i of the call was given the id
 * firstId + i and was created unless its triple says otherwise.
 */
int
rq_add_reply_read(jobq_job_id *ids, int *outcomes, const redisReply *r, size_t from, size_t n,
                  size_t total) {
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || (r->elements - 1) % 3 != 0 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER)
		return jobq_error_set(JOBQ_EBACKEND, "redis add: unexpected reply");
	long long first = r->element[0]->integer;
	if (first < 0 || (unsigned long long)first > (unsigned long long)LLONG_MAX - total)
		return jobq_error_set(JOBQ_EBACKEND, "redis add: first id %lld out of range",
		                      first);
	for (size_t i = 0; i < n; i++) {
		snprintf(ids[i].str, sizeof(ids[i].str), "%lld", first + (long long)(from + i));
		if (outcomes != NULL)
			outcomes[i] = 0;
	}
	for (size_t e = 1; e < r->elements; e += 3) {
		const redisReply *at = r->element[e], *oc = r->element[e + 1],
		                 *idr = r->element[e + 2];
		if (at->type != REDIS_REPLY_INTEGER || at->integer < 0 ||
		    (unsigned long long)at->integer >= total || oc->type != REDIS_REPLY_INTEGER ||
		    idr->type != REDIS_REPLY_STRING || idr->len > JOBQ_ID_MAX)
			return jobq_error_set(JOBQ_EBACKEND, "redis add: bad job in reply");
		size_t i = (size_t)at->integer;
		if (i < from || i - from >= n)
			continue;
		i -= from;
		if (outcomes != NULL)
			outcomes[i] = (int)oc->integer;
		memcpy(ids[i].str, idr->str, idr->len);
		ids[i].str[idr->len] = '\0';
	}
	return 0;
}

int
rq_strings_from_reply(jobq_strings **list, const redisReply *r) {
	if (r->type != REDIS_REPLY_ARRAY)
		return jobq_error_set(JOBQ_EBACKEND, "redis: expected an array reply");
	for (size_t i = 0; list != NULL && i < r->elements; i++) {
		const redisReply *e = r->element[i];
		if (e->type == REDIS_REPLY_STRING) {
			int rc = jobq_strings__append(list, e->str, e->len);
			if (rc < 0)
				return rc;
		}
	}
	return (int)r->elements;
}

/* One stream entry {id, {field, value, ...}}: appended if it has an `event` field. */
static int
append_entry(jobq_event_list *list, const redisReply *entry) {
	if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
	    entry->element[0]->type != REDIS_REPLY_STRING ||
	    entry->element[1]->type != REDIS_REPLY_ARRAY)
		return 0;
	const redisReply *kv = entry->element[1];
	const char *event = NULL, *job_id = NULL;
	size_t nf = 0;
	jobq_event_field fields[16];
	for (size_t i = 0; i + 1 < kv->elements; i += 2) {
		const char *k = kv->element[i]->str, *v = kv->element[i + 1]->str;
		if (k == NULL || v == NULL)
			continue;
		if (strcmp(k, "event") == 0)
			event = v;
		else if (strcmp(k, "jobId") == 0)
			job_id = v;
		else if (nf < 16)
			fields[nf++] = (jobq_event_field){k, v};
	}
	if (event == NULL)
		return 0;
	return jobq_event_list__append(list, entry->element[0]->str, event, job_id, nf, fields);
}

int
rq_events_from_reply(jobq_event_list *list, const redisReply *r) {
	int rc = 0;
	for (size_t s = 0; rc >= 0 && s < r->elements; s++) {
		const redisReply *st = r->element[s];
		if (st->type != REDIS_REPLY_ARRAY || st->elements != 2)
			continue;
		const redisReply *entries = st->element[1];
		for (size_t i = 0; rc >= 0 && i < entries->elements; i++)
			rc = append_entry(list, entries->element[i]);
	}
	return rc;
}
