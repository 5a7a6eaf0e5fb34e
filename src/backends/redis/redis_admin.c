/*
 * Redis backend: reading jobs and counts, and the administration of a queue.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq_lua.h"
#include "redis_ops.h"

/* --- reading -------------------------------------------------------------------------------- */

int
rq_get(jobq_job **out, jobq_backend_queue *q, const char *id) {
	const char *av[] = {id};
	int rc;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_GETJOB, 1, av, NULL);
	if (r == NULL)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		freeReplyObject(r);
		return jobq_error_set(JOBQ_ENOTFOUND, "redis: no job %s in queue", id);
	}
	jobq_state st = JOBQ_STATE_UNKNOWN; /* a state name the script did not find stays unknown */
	if (r->element[0]->str != NULL && jobq_state_parse(&st, r->element[0]->str) < 0)
		st = JOBQ_STATE_UNKNOWN;
	rc = rq_job_from_hash(out, id, r->element[1], st);
	freeReplyObject(r);
	return rc;
}

int
rq_list(jobq_job_list **out, jobq_backend_queue *q, jobq_state state, size_t offset, size_t limit) {
	numbuf n1, n2;
	const char *av[] = {jobq_state_name(state), rq_fmt_i64(&n1, (int64_t)offset),
	                    rq_fmt_i64(&n2, (int64_t)limit)};
	int rc;
	*out = NULL;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_LISTJOBS, 3, av, NULL);
	if (r == NULL)
		return rc;
	rc = 0;
	for (size_t i = 0; rc == 0 && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *e = r->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING)
			continue;
		jobq_job *job = NULL;
		rc = rq_job_from_hash(&job, e->element[0]->str, e->element[1], state);
		if (rc == 0) {
			rc = jobq_job_list__append(out, job);
			if (rc < 0)
				jobq_job_free(job);
		}
	}
	freeReplyObject(r);
	if (rc < 0) {
		jobq_job_list_free(*out);
		*out = NULL;
	}
	return rc;
}

int
rq_counts(jobq_counts *out, jobq_backend_queue *q) {
	int rc;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_GETCOUNTS, 0, NULL, NULL);
	if (r == NULL)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 8) {
		freeReplyObject(r);
		return jobq_error_set(JOBQ_EBACKEND, "redis counts: unexpected reply");
	}
	uint64_t *dst[8] = {&out->waiting,   &out->active, &out->delayed, &out->prioritized,
	                    &out->completed, &out->failed, &out->paused,  &out->waiting_children};
	for (int i = 0; i < 8; i++)
		*dst[i] = r->element[i]->type == REDIS_REPLY_INTEGER
		              ? (uint64_t)r->element[i]->integer
		              : 0;
	freeReplyObject(r);
	return 0;
}

/* --- administration ------------------------------------------------------------------------- */

int
rq_remove(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {id};
	long long v = 0;
	int rc = rq_script_int(&v, q, JOBQ_LUA_REMOVEJOB, 1, av, NULL, "remove", id);
	if (rc == 0 && v == 0)
		return jobq_error_set(JOBQ_ESTATE, "redis remove: job %s is locked by a worker",
		                      id);
	return rc;
}

int
rq_set_paused(jobq_backend_queue *q, int paused, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {paused ? "pause" : "resume"};
	return rq_script_int(NULL, q, JOBQ_LUA_PAUSE, 1, av, NULL, "pause", NULL);
}

int
rq_is_paused(int *out, jobq_backend_queue *q) {
	const char *av[] = {"HEXISTS", q->keys[12], "paused"};
	int rc;
	redisReply *r = rq_command(&rc, q->b, 1, 3, av, NULL);
	if (r == NULL)
		return rc;
	*out = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	freeReplyObject(r);
	return 0;
}

int
rq_drain(jobq_backend_queue *q, int include_delayed, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {include_delayed ? "1" : "0"};
	return rq_script_int(NULL, q, JOBQ_LUA_DRAIN, 1, av, NULL, "drain", NULL);
}

int
rq_clean(jobq_strings **removed, jobq_backend_queue *q, jobq_state state, int64_t grace_ms,
         size_t limit, int64_t now_ms) {
	numbuf n1, n2, n3;
	const char *av[] = {jobq_state_name(state), rq_fmt_i64(&n1, grace_ms),
	                    rq_fmt_i64(&n2, (int64_t)limit), rq_fmt_i64(&n3, now_ms)};
	int rc;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_CLEAN, 4, av, NULL);
	if (r == NULL)
		return rc;
	rc = rq_strings_from_reply(removed, r);
	freeReplyObject(r);
	return rc;
}

int
rq_obliterate(jobq_backend_queue *q, int force, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {force ? "1" : "0"};
	long long v = 0;
	int rc;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_OBLITERATE, 1, av, NULL);
	if (r == NULL)
		return rc;
	rq_reply_int(r, &v);
	freeReplyObject(r);
	if (v == -2)
		return jobq_error_set(JOBQ_ESTATE, "redis obliterate: queue %s has active jobs",
		                      q->name);
	return 0;
}

int
rq_promote(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {id ? id : ""};
	long long v = 0;
	int rc = rq_script_int(&v, q, JOBQ_LUA_PROMOTE, 1, av, NULL, "promote", id);
	return rc < 0 ? rc : (int)v;
}

int
rq_retry_failed(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {id ? id : ""};
	long long v = 0;
	int rc = rq_script_int(&v, q, JOBQ_LUA_RETRYFAILED, 1, av, NULL, "retry", id);
	return rc < 0 ? rc : (int)v;
}

int
rq_progress(jobq_backend_queue *q, const char *id, const char *token, const char *json,
            int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {id, token ? token : "", json};
	return rq_script_int(NULL, q, JOBQ_LUA_UPDATEPROGRESS, 3, av, NULL, "progress", id);
}

int
rq_add_log(jobq_backend_queue *q, const char *id, const char *line, int64_t keep) {
	numbuf n1;
	const char *av[] = {id, line, rq_fmt_i64(&n1, keep > 0 ? keep : 0)};
	long long v = 0;
	int rc = rq_script_int(&v, q, JOBQ_LUA_ADDLOG, 3, av, NULL, "add_log", id);
	return rc < 0 ? rc : (int)v;
}

int
rq_get_logs(jobq_strings **out, jobq_backend_queue *q, const char *id, size_t start, size_t limit) {
	*out = NULL;
	size_t jl = q->qp_len + strlen(id) + 6;
	char *key = jobq__malloc(jl);
	if (key == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	snprintf(key, jl, "%s%s", q->qp, id);
	int rc;
	const char *ev[] = {"EXISTS", key};
	redisReply *r = rq_command(&rc, q->b, 1, 2, ev, NULL);
	if (r != NULL) {
		int exists = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
		freeReplyObject(r);
		if (!exists) {
			rc = jobq_error_set(JOBQ_ENOTFOUND, "redis get_logs: no job %s", id);
		} else {
			numbuf n1, n2;
			snprintf(key, jl, "%s%s:logs", q->qp, id);
			const char *av[] = {
			    "LRANGE", key, rq_fmt_i64(&n1, (int64_t)start),
			    rq_fmt_i64(&n2, limit ? (int64_t)(start + limit - 1) : -1)};
			r = rq_command(&rc, q->b, 1, 4, av, NULL);
			if (r != NULL) {
				rc = rq_strings_from_reply(out, r);
				freeReplyObject(r);
				if (rc >= 0)
					rc = 0;
			}
		}
	}
	jobq__free(key);
	return rc;
}
