/*
 * Redis backend: job schedulers (bullmq-protocol.md §4.21). BullMQ 6 keeps a series going
 * in the worker that fetches an iteration: it creates the next one before running it. The
 * rules live in lua/updateJobScheduler-16.lua; this file runs it and, for a cron pattern,
 * computes the next time the script asks for.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sched.h"
#include "jobq_lua.h"
#include "redis_ops.h"

/* The integer element `i` of `r`, or `dflt`. */
static long long
reply_elem_int(const redisReply *r, size_t i, long long dflt) {
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements)
		return dflt;
	const redisReply *e = r->element[i];
	if (e->type == REDIS_REPLY_INTEGER)
		return e->integer;
	return dflt;
}

/* Element `i` of the script's reply as text ("" when absent). */
static const char *
reply_elem_str(const redisReply *r, size_t i) {
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != REDIS_REPLY_STRING)
		return "";
	return r->element[i]->str;
}

/* A decimal number of the reply, or `dflt` when it is empty. */
static int64_t
reply_elem_ms(const redisReply *r, size_t i, int64_t dflt) {
	const char *s = reply_elem_str(r, i);
	return s[0] != '\0' ? (int64_t)strtoll(s, NULL, 10) : dflt;
}

/*
 * The next time of a pattern scheduler from the script's {3, pattern, tz, startDate, endDate,
 * prevMillis}, as BullMQ's worker computes it: the first cron time after the latest of now,
 * the fetched iteration's time and the start date, in the scheduler's zone (none: the local
 * zone, as Node); none (JOBQ_ENOTFOUND) after the end date. JOBQ_EINVAL for a pattern or
 * zone that cannot be evaluated.
 */
static int
pattern_next(int64_t *next_ms, const char *sid, const redisReply *r, int64_t now_ms) {
	int64_t after = reply_elem_ms(r, 5, 0);
	return jobq__sched_pattern_next(next_ms, sid, reply_elem_str(r, 1), reply_elem_str(r, 2),
	                                reply_elem_ms(r, 3, 0), reply_elem_ms(r, 4, -1),
	                                after < now_ms ? now_ms : after);
}

int
rq_scheduler_next(jobq_backend_queue *q, const jobq_job *job, int64_t now_ms) {
	if (job == NULL || job->id == NULL || job->scheduler_id == NULL)
		return jobq_error_set(JOBQ_EINVAL, "redis scheduler_next: not a scheduler's job");
	char now[24], next[24] = "";
	snprintf(now, sizeof(now), "%" PRId64, now_ms);
	const char *av[] = {job->id, job->scheduler_id, now, next};
	/* a pattern scheduler takes two rounds: what to compute, then the next time */
	for (int round = 0; round < 2; round++) {
		int rc;
		redisReply *r = rq_script(&rc, q, JOBQ_LUA_UPDATEJOBSCHEDULER, 4, av, NULL);
		if (r == NULL)
			return rc;
		long long st = reply_elem_int(r, 0, -1);
		if (st == 3 && round == 0) {
			int64_t next_ms = 0;
			rc = pattern_next(&next_ms, job->scheduler_id, r, now_ms);
			freeReplyObject(r);
			if (rc == JOBQ_ENOTFOUND)
				return 0; /* the pattern has no next time before the end date */
			if (rc < 0)
				return rc;
			snprintf(next, sizeof(next), "%" PRId64, next_ms);
			continue;
		}
		freeReplyObject(r);
		if (st < 0 || st > 2)
			return jobq_error_set(JOBQ_EBACKEND,
			                      "redis: job scheduler %s: unexpected reply of "
			                      "updateJobScheduler",
			                      job->scheduler_id);
		return st == 1 ? 1 : 0;
	}
	return jobq_error_set(JOBQ_EBACKEND,
	                      "redis: job scheduler %s: no next time after two rounds",
	                      job->scheduler_id);
}

/* --- create, read, remove (lua/upsertJobScheduler-16.lua, getJobSchedulers, remove...) ---- */

int
rq_scheduler_upsert(jobq_job_id *iteration, jobq_backend_queue *q, const char *id,
                    const jobq_scheduler_spec *s, int64_t pattern_next_ms, int64_t now_ms) {
	char *opts = NULL;
	int rc = jobq__template_opts_json(&opts, s->opts);
	if (rc < 0)
		return rc;
	numbuf n[7];
	int every = s->every_ms > 0;
	const char *av[] = {id,
	                    rq_fmt_i64(&n[0], now_ms),
	                    s->name,
	                    s->data,
	                    opts,
	                    every ? rq_fmt_i64(&n[1], s->every_ms) : "",
	                    rq_fmt_i64(&n[2], s->offset_ms),
	                    every ? "" : s->pattern,
	                    s->tz ? s->tz : "",
	                    s->start_ms > 0 ? rq_fmt_i64(&n[3], s->start_ms) : "",
	                    s->end_ms > 0 ? rq_fmt_i64(&n[4], s->end_ms) : "",
	                    s->limit > 0 ? rq_fmt_i64(&n[5], s->limit) : "",
	                    rq_fmt_i64(&n[6], pattern_next_ms)};
	size_t lens[sizeof(av) / sizeof(av[0])];
	for (size_t i = 0; i < sizeof(av) / sizeof(av[0]); i++)
		lens[i] = i == 3 ? s->data_len : strlen(av[i]);
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_UPSERTJOBSCHEDULER,
	                          (int)(sizeof(av) / sizeof(av[0])), av, lens);
	jobq__free(opts);
	if (r == NULL)
		return rc;
	if (r->type == REDIS_REPLY_INTEGER) {
		long long st = r->integer;
		freeReplyObject(r);
		return jobq_error_set(JOBQ_EEXISTS, "redis: job scheduler %s: %s (status %lld)", id,
		                      st == -10 ? "its next iteration's id is taken by another job"
		                                : "its next 32 iteration ids are taken",
		                      st);
	}
	const char *jid = reply_elem_str(r, 0);
	if (jid[0] == '\0' || strlen(jid) > JOBQ_ID_MAX) {
		freeReplyObject(r);
		return jobq_error_set(JOBQ_EBACKEND, "redis: job scheduler %s: unexpected reply",
		                      id);
	}
	snprintf(iteration->str, sizeof(iteration->str), "%s", jid);
	freeReplyObject(r);
	return 0;
}

/* A copy of a reply string, or of `dflt` when `v` is NULL; 0 or JOBQ_ENOMEM. */
static int
dup_field(char **out, const redisReply *v, const char *dflt) {
	const char *s = v != NULL ? v->str : dflt;
	if (s == NULL)
		return 0;
	*out = v != NULL ? jobq__malloc(v->len + 1) : jobq__strdup(s);
	if (*out == NULL)
		return JOBQ_ENOMEM;
	if (v != NULL) {
		memcpy(*out, v->str, v->len);
		(*out)[v->len] = '\0';
	}
	return 0;
}

/* One scheduler from {sid, next, {field, value, ...}} at element `i` of `r`. */
static int
scheduler_decode(jobq_scheduler *s, const redisReply *r, size_t i) {
	memset(s, 0, sizeof(*s));
	const redisReply *id = r->element[i], *next = r->element[i + 1], *h = r->element[i + 2];
	if (id->type != REDIS_REPLY_STRING || h->type != REDIS_REPLY_ARRAY)
		return jobq_error_set(JOBQ_EBACKEND, "redis: unexpected reply of getJobSchedulers");
	s->limit = -1;
	s->next_ms = next->type == REDIS_REPLY_STRING ? strtoll(next->str, NULL, 10) : -1;
	const redisReply *name = NULL, *pattern = NULL, *tz = NULL, *data = NULL, *opts = NULL;
	for (size_t k = 0; k + 1 < h->elements; k += 2) {
		const char *f = h->element[k]->str;
		const redisReply *v = h->element[k + 1];
		if (f == NULL || v->type != REDIS_REPLY_STRING)
			continue;
		long long num = strtoll(v->str, NULL, 10);
		if (strcmp(f, "name") == 0)
			name = v;
		else if (strcmp(f, "pattern") == 0)
			pattern = v;
		else if (strcmp(f, "tz") == 0)
			tz = v;
		else if (strcmp(f, "data") == 0)
			data = v;
		else if (strcmp(f, "opts") == 0)
			opts = v;
		else if (strcmp(f, "every") == 0)
			s->every_ms = num;
		else if (strcmp(f, "offset") == 0)
			s->offset_ms = num;
		else if (strcmp(f, "startDate") == 0)
			s->start_ms = num;
		else if (strcmp(f, "endDate") == 0)
			s->end_ms = num;
		else if (strcmp(f, "limit") == 0)
			s->limit = num;
		else if (strcmp(f, "ic") == 0)
			s->iterations = num;
	}
	if (dup_field(&s->id, id, NULL) < 0 || dup_field(&s->name, name, "") < 0 ||
	    dup_field(&s->pattern, pattern, NULL) < 0 || dup_field(&s->tz, tz, NULL) < 0 ||
	    dup_field(&s->data, data, "{}") < 0 || dup_field(&s->opts_json, opts, "{}") < 0)
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory (job schedulers)");
	return 0;
}

/* Runs getJobSchedulers for `sid` ("": all) into a list (NULL when there are none). */
static int
schedulers_read(jobq_scheduler_list **out, jobq_backend_queue *q, const char *sid) {
	*out = NULL;
	int rc;
	const char *av[] = {sid};
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_GETJOBSCHEDULERS, 1, av, NULL);
	if (r == NULL)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 3 != 0) {
		freeReplyObject(r);
		return jobq_error_set(JOBQ_EBACKEND, "redis: unexpected reply of getJobSchedulers");
	}
	size_t n = r->elements / 3;
	jobq_scheduler_list *list = NULL;
	if (n > 0) {
		list = jobq__calloc(1, sizeof(*list));
		if (list == NULL || (list->items = jobq__calloc(n, sizeof(*list->items))) == NULL) {
			jobq__free(list);
			freeReplyObject(r);
			return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory (job schedulers)");
		}
		for (; list->count < n; list->count++) {
			rc = scheduler_decode(&list->items[list->count], r, list->count * 3);
			if (rc < 0) {
				list->count++; /* what it decoded is freed with the rest */
				jobq_scheduler_list_free(list);
				freeReplyObject(r);
				return rc;
			}
		}
	}
	freeReplyObject(r);
	*out = list;
	return 0;
}

int
rq_scheduler_get(jobq_scheduler **out, jobq_backend_queue *q, const char *id) {
	jobq_scheduler_list *list = NULL;
	int rc = schedulers_read(&list, q, id);
	if (rc < 0)
		return rc;
	if (list == NULL)
		return jobq_error_set(JOBQ_ENOTFOUND, "no job scheduler '%s' in queue '%s'", id,
		                      q->name);
	*out = jobq__malloc(sizeof(**out));
	if (*out == NULL) {
		jobq_scheduler_list_free(list);
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory (job schedulers)");
	}
	**out = list->items[0];
	list->count = 0;
	jobq_scheduler_list_free(list);
	return 0;
}

int
rq_scheduler_list(jobq_scheduler_list **out, jobq_backend_queue *q) {
	return schedulers_read(out, q, "");
}

int
rq_scheduler_remove(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	(void)now_ms;
	long long st = 0;
	const char *av[] = {id};
	int rc =
	    rq_script_int(&st, q, JOBQ_LUA_REMOVEJOBSCHEDULER, 1, av, NULL, "remove scheduler", id);
	if (rc < 0)
		return rc;
	if (st == 1)
		return jobq_error_set(JOBQ_ENOTFOUND, "no job scheduler '%s' in queue '%s'", id,
		                      q->name);
	return 0;
}
