/*
 * Redis backend: fetch and the transitions of an active job (extend, complete, batched
 * complete-and-fetch, fail, release, stalled recovery).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq_lua.h"
#include "redis_ops.h"

/* --- fetch and the transitions of an active job --------------------------------------------- */

int
rq_fetch(jobq_job **out, jobq_fetch_info *info, jobq_backend_queue *q, const char *token,
         int64_t lock_ms, int64_t now_ms) {
	numbuf n1, n2;
	numbuf n3, n4;
	const char *pb = info != NULL && info->processed_by != NULL ? info->processed_by : "";
	/* ARGV[5] the worker name, then (rate limits) the fetcher's limiter max and duration */
	const char *av[] = {token,
	                    rq_fmt_i64(&n1, lock_ms),
	                    rq_fmt_i64(&n2, now_ms),
	                    pb,
	                    rq_fmt_i64(&n3, info != NULL ? info->limiter_max : 0),
	                    rq_fmt_i64(&n4, info != NULL ? info->limiter_duration_ms : 0)};
	int rc;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_MOVETOACTIVE, 6, av, NULL);
	if (r == NULL)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
		freeReplyObject(r);
		return jobq_error_set(JOBQ_EBACKEND, "redis fetch: unexpected reply");
	}
	long long due = 0, wait = 0;
	rq_reply_int(r->element[3], &due);
	rq_reply_int(r->element[2], &wait);
	if (info != NULL) {
		info->next_due_ms = due;
		info->rate_limit_ms = wait;
	}
	if (r->element[1]->type != REDIS_REPLY_STRING) {
		freeReplyObject(r);
		return jobq_error_set(JOBQ_ENOJOB, "redis fetch: no job ready");
	}
	jobq_job *job = NULL;
	rc = rq_job_from_hash(&job, r->element[1]->str, r->element[0], JOBQ_STATE_ACTIVE);
	freeReplyObject(r);
	if (rc < 0)
		return rc;
	job->token = jobq__strdup(token);
	if (job->token == NULL) {
		jobq_job_free(job);
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	}
	*out = job;
	return 0;
}

int
rq_extend_lock(jobq_backend_queue *q, const char *id, const char *token, int64_t lock_ms,
               int64_t now_ms) {
	(void)now_ms;
	numbuf n1;
	const char *av[] = {id, token, rq_fmt_i64(&n1, lock_ms)};
	return rq_script_int(NULL, q, JOBQ_LUA_EXTENDLOCK, 3, av, NULL, "extend_lock", id);
}

static void
keep_args(const jobq_keep *k, int64_t *count, int64_t *age) {
	*count = -1;
	*age = -1;
	if (k == NULL)
		return;
	if (k->mode == JOBQ_KEEP_NONE) {
		*count = 0;
	} else if (k->mode == JOBQ_KEEP_LIMIT) {
		*count = k->count < 0 ? -1 : k->count;
		*age = k->age_ms < 0 ? -1 : k->age_ms;
	}
}

int
rq_complete(jobq_backend_queue *q, const char *id, const char *token, const char *result_json,
            const jobq_keep *keep, int64_t now_ms) {
	numbuf n1, n2, n3;
	int64_t count, age;
	keep_args(keep, &count, &age);
	const char *av[] = {id,
	                    token,
	                    rq_fmt_i64(&n1, now_ms),
	                    "completed",
	                    result_json ? result_json : "null",
	                    rq_fmt_i64(&n2, count),
	                    rq_fmt_i64(&n3, age),
	                    "0",
	                    "0",
	                    "",
	                    "0"};
	return rq_script_int(NULL, q, JOBQ_LUA_MOVETOFINISHED, 11, av, NULL, "complete", id);
}

/* Reads one integer element of a reply (0 when it is not one). */
static long long
elem_int(const redisReply *r) {
	long long v = 0;
	rq_reply_int(r, &v);
	return v;
}

#define CF_FIXED    4 /* ndone, max, lock ms, now */
#define CF_LIMITER  2 /* after the tokens: the fetcher's limiter max and duration */
#define CF_PER_DONE 6

/*
 * complete_fetch calls fly together (rq_combine(), redis_combine.c): the completions of every call
 * first, in order, then the fetches of every call, the jobs dealt out in order, up to CF_STEPS
 * completions plus fetches per flight, only calls with the same lock duration together.
 */
enum { CF_STEPS = 256, CF_STACK = 64 };

typedef struct cf_call {
	jobq_job **jobs;
	jobq_fetch_info *info;
	jobq_completion *done;
	size_t ndone;
	const char *const *tokens;
	size_t max;
	int64_t lock_ms;
	int64_t now_ms;
	int rc; /* jobs fetched or < 0 */
} cf_call;

/* Decodes the `n` jobs fetched for `r` (ids from element `from` of `ids`, their hashes in
 * `hashes`); returns how many. */
static int
cf_deal(cf_call *r, const redisReply *ids, redisReply *const *hashes, size_t from, size_t n) {
	size_t got = 0;
	int rc = 0;
	for (; got < n; got++) {
		const redisReply *idr = ids->element[from + got];
		const redisReply *h = hashes[from + got];
		if (idr->type != REDIS_REPLY_STRING) {
			rc = jobq_error_set(JOBQ_EBACKEND, "redis complete_fetch: bad job id");
			break;
		}
		if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
			rc = jobq_error_set(JOBQ_EBACKEND,
			                    "redis complete_fetch: job %s has no hash", idr->str);
			break;
		}
		rc = rq_job_decode(&r->jobs[got], idr->str, idr->len, h, JOBQ_STATE_ACTIVE,
		                   r->tokens[got]);
		if (rc < 0)
			break;
	}
	/* jobs that could not be decoded stay active and locked until the lock expires: the
	 * stalled check gives them back; the ones decoded are handed out */
	return got > 0 || rc == 0 ? (int)got : rc;
}

/*
 * Reads the hashes of the `n` jobs the script fetched (it returns their ids only: turning
 * each hash into a Lua table and back cost the server more than all else per job), with
 * one pipelined HGETALL per job. The jobs are locked by then, so nobody else changes them.
 */
static int
cf_read_hashes(jobq_backend_queue *q, const redisReply *ids, redisReply **hashes) {
	size_t n = ids->elements, bytes = 0;
	for (size_t i = 0; i < n; i++) {
		if (ids->element[i]->type != REDIS_REPLY_STRING)
			return jobq_error_set(JOBQ_EBACKEND, "redis complete_fetch: bad job id");
		bytes += q->qp_len + ids->element[i]->len + 1;
	}
	const char **av = jobq__malloc(2 * n * sizeof(*av));
	size_t *al = jobq__malloc(2 * n * sizeof(*al));
	char *keys = jobq__malloc(bytes);
	int rc = 0;
	if (av == NULL || al == NULL || keys == NULL) {
		rc = jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	} else {
		char *k = keys;
		for (size_t i = 0; i < n; i++) {
			const redisReply *id = ids->element[i];
			memcpy(k, q->qp, q->qp_len);
			memcpy(k + q->qp_len, id->str, id->len);
			k[q->qp_len + id->len] = '\0';
			av[2 * i] = "HGETALL";
			al[2 * i] = 7;
			av[2 * i + 1] = k;
			al[2 * i + 1] = q->qp_len + id->len;
			k += q->qp_len + id->len + 1;
		}
		rc = rq_command_many(q->b, n, 2, av, al, hashes);
	}
	jobq__free(keys);
	jobq__free(al);
	jobq__free(av);
	return rc;
}

/* Fails every call of the flight with `rc`. */
static void
cf_fail(rq_call *group, int rc) {
	for (rq_call *c = group; c != NULL; c = c->next) {
		cf_call *r = c->arg;
		for (size_t i = 0; i < r->ndone; i++)
			r->done[i].rc = rc;
		r->rc = rc;
	}
}

/* Runs the calls of `group` as one completeFetch call and gives each its outcome. */
static void
cf_fly(jobq_backend_queue *q, rq_call *group) {
	size_t ndone = 0, max = 0;
	int64_t now_ms = 0;
	for (rq_call *c = group; c != NULL; c = c->next) {
		cf_call *r = c->arg;
		ndone += r->ndone;
		max += r->max;
		if (r->now_ms > now_ms)
			now_ms = r->now_ms;
	}
	/* the metrics follow when any completion counts them (lua/completeFetch): one value
	 * when all completions have the same (one worker's batch), else one each */
	size_t metrics = 0;
	uint32_t first = UINT32_MAX;
	for (rq_call *c = group; c != NULL; c = c->next) {
		cf_call *r = c->arg;
		for (size_t i = 0; i < r->ndone; i++) {
			uint32_t m = r->done[i].metrics_max_points;
			first = first == UINT32_MAX ? m : first;
			metrics = m != first ? ndone : metrics;
		}
	}
	if (metrics == 0 && first != UINT32_MAX && first > 0)
		metrics = 1;
	/* (+ 1: the worker name, after the tokens; then the limiter; then the metrics) */
	size_t argc = CF_FIXED + ndone * CF_PER_DONE + max + 1 + CF_LIMITER + metrics;
	const char *av_stack[CF_FIXED + 1 + CF_LIMITER + CF_STACK * (CF_PER_DONE + 2)];
	size_t al_stack[CF_FIXED + 1 + CF_LIMITER + CF_STACK * (CF_PER_DONE + 2)];
	numbuf nb_stack[CF_STACK * 3];
	const char **av = av_stack;
	size_t *al = al_stack;
	numbuf *nb = nb_stack;
	int heap = ndone > CF_STACK || max > CF_STACK;
	if (heap) {
		av = jobq__malloc(argc * sizeof(*av));
		al = jobq__malloc(argc * sizeof(*al));
		nb = jobq__malloc((ndone ? ndone : 1) * 3 * sizeof(*nb));
		if (av == NULL || al == NULL || nb == NULL) {
			jobq__free(av);
			jobq__free(al);
			jobq__free(nb);
			cf_fail(group, jobq_error_set(JOBQ_ENOMEM, "redis: out of memory"));
			return;
		}
	}
	numbuf f1, f2, f3, f4;
	av[0] = rq_fmt_i64(&f1, (int64_t)ndone);
	av[1] = rq_fmt_i64(&f2, (int64_t)max);
	av[2] = rq_fmt_i64(&f3, ((cf_call *)group->arg)->lock_ms);
	av[3] = rq_fmt_i64(&f4, now_ms);
	size_t k = CF_FIXED, d = 0;
	for (rq_call *c = group; c != NULL; c = c->next) {
		cf_call *r = c->arg;
		for (size_t i = 0; i < r->ndone; i++, d++) {
			int64_t count, age;
			keep_args(&r->done[i].keep, &count, &age);
			av[k++] = r->done[i].id;
			av[k++] = r->done[i].token;
			av[k++] = r->done[i].result_json ? r->done[i].result_json : "null";
			av[k++] = rq_fmt_i64(&nb[2 * d], count);
			av[k++] = rq_fmt_i64(&nb[2 * d + 1], age);
			av[k++] = r->done[i].dedup_id ? r->done[i].dedup_id : "";
		}
	}
	for (rq_call *c = group; c != NULL; c = c->next) {
		cf_call *r = c->arg;
		for (size_t i = 0; i < r->max; i++)
			av[k++] = r->tokens[i];
	}
	const jobq_fetch_info *fi = ((cf_call *)group->arg)->info;
	av[k++] = fi != NULL && fi->processed_by != NULL ? fi->processed_by : "";
	/* the calls of a flight share one limiter (the combiner's key, cf_key) */
	numbuf l1, l2;
	av[k++] = rq_fmt_i64(&l1, fi != NULL ? fi->limiter_max : 0);
	av[k++] = rq_fmt_i64(&l2, fi != NULL ? fi->limiter_duration_ms : 0);
	d = 0;
	for (rq_call *c = group; c != NULL && metrics == ndone; c = c->next) {
		cf_call *r = c->arg;
		for (size_t i = 0; i < r->ndone; i++, d++)
			av[k++] = rq_fmt_i64(&nb[2 * ndone + d], r->done[i].metrics_max_points);
	}
	if (metrics == 1 && ndone != 1)
		av[k++] = rq_fmt_i64(&nb[2 * ndone], first);
	for (size_t i = 0; i < argc; i++)
		al[i] = strlen(av[i]);
	int rc;
	redisReply *reply = rq_script(&rc, q, JOBQ_LUA_COMPLETEFETCH, (int)argc, av, al);
	if (heap) {
		jobq__free(av);
		jobq__free(al);
		jobq__free(nb);
	}
	if (reply == NULL) {
		/* the script may or may not have run: no completion is known to be written */
		cf_fail(group, rc);
		return;
	}
	const redisReply *st =
	    reply->type == REDIS_REPLY_ARRAY && reply->elements == 4 ? reply->element[0] : NULL;
	const redisReply *list = st != NULL ? reply->element[1] : NULL;
	if (st == NULL || st->type != REDIS_REPLY_ARRAY || st->elements != ndone ||
	    list->type != REDIS_REPLY_ARRAY || list->elements > max) {
		freeReplyObject(reply);
		cf_fail(group,
		        jobq_error_set(JOBQ_EBACKEND, "redis complete_fetch: unexpected reply"));
		return;
	}
	int64_t due = elem_int(reply->element[2]), wait = elem_int(reply->element[3]);
	size_t nfetched = list->elements, next = 0;
	redisReply *hash_stack[CF_STACK];
	redisReply **hashes =
	    nfetched <= CF_STACK ? hash_stack : jobq__malloc(nfetched * sizeof(*hashes));
	int read_rc = 0;
	if (hashes == NULL)
		read_rc = jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	else if (nfetched > 0)
		read_rc = cf_read_hashes(q, list, hashes);
	d = 0;
	for (rq_call *c = group; c != NULL; c = c->next) {
		cf_call *r = c->arg;
		for (size_t i = 0; i < r->ndone; i++, d++) {
			long long v = elem_int(st->element[d]);
			r->done[i].rc = v < 0 ? rq_script_status(v, "complete", r->done[i].id) : 0;
		}
		if (r->info != NULL) {
			r->info->next_due_ms = due;
			r->info->rate_limit_ms = wait;
		}
		size_t n = nfetched - next < r->max ? nfetched - next : r->max;
		/* jobs fetched but not read stay locked until the stalled check gives them back */
		r->rc = n == 0 ? 0 : read_rc < 0 ? read_rc : cf_deal(r, list, hashes, next, n);
		c->urgent = r->rc > 0;
		next += n;
	}
	if (read_rc == 0 && hashes != NULL)
		for (size_t i = 0; i < nfetched; i++)
			freeReplyObject(hashes[i]);
	if (hashes != hash_stack)
		jobq__free(hashes);
	freeReplyObject(reply);
}

/* Calls fly together only with the same lock duration, worker name and limiter (the fetches
 * of a flight share them): a 64-bit FNV-1a hash of the four. */
static int64_t
cf_key(int64_t lock_ms, const jobq_fetch_info *info) {
	uint64_t h = 14695981039346656037ULL;
	const int64_t nums[3] = {lock_ms, info != NULL ? info->limiter_max : 0,
	                         info != NULL ? info->limiter_duration_ms : 0};
	for (int n = 0; n < 3; n++)
		for (int i = 0; i < 8; i++)
			h = (h ^ ((uint64_t)nums[n] >> (8 * i) & 0xff)) * 1099511628211ULL;
	const char *pb = info != NULL ? info->processed_by : NULL;
	for (; pb != NULL && *pb; pb++)
		h = (h ^ (unsigned char)*pb) * 1099511628211ULL;
	return (int64_t)(h >> 1);
}

int
rq_complete_fetch(jobq_job **jobs, jobq_fetch_info *info, jobq_backend_queue *q,
                  jobq_completion *done, size_t ndone, const char *const *tokens, size_t max,
                  int64_t lock_ms, int64_t now_ms) {
	if ((ndone > 0 && done == NULL) || (max > 0 && (jobs == NULL || tokens == NULL)))
		return jobq_error_set(JOBQ_EINVAL,
		                      "redis complete_fetch: needs done, jobs and tokens");
	if (ndone == 0 && max == 0)
		return 0;
	cf_call cc = {jobs, info, done, ndone, tokens, max, lock_ms, now_ms, 0};
	rq_call me = {.arg = &cc, .steps = ndone + max, .key = cf_key(lock_ms, info)};
	rq_combine(&q->cf, q, &me, CF_STEPS, cf_fly);
	return cc.rc;
}

int
rq_fail(jobq_backend_queue *q, const char *id, const char *token, const jobq_failure *f,
        int64_t now_ms) {
	numbuf n1, n2, n3, n4, n5, n6;
	const char *reason = f->reason ? f->reason : "";
	/* the stack's argument pair: its limit (includes/failure.lua), or "" without a stack */
	const char *has_stack = f->stack ? rq_fmt_i64(&n6, f->stack_limit) : "";
	const char *stack = f->stack ? f->stack : "";
	if (f->retry_at_ms < 0) {
		int64_t count, age;
		keep_args(&f->keep, &count, &age);
		const char *av[] = {id,
		                    token,
		                    rq_fmt_i64(&n1, now_ms),
		                    "failed",
		                    reason,
		                    rq_fmt_i64(&n2, count),
		                    rq_fmt_i64(&n3, age),
		                    rq_fmt_i64(&n4, f->attempts),
		                    has_stack,
		                    stack,
		                    rq_fmt_i64(&n5, f->metrics_max_points)};
		return rq_script_int(NULL, q, JOBQ_LUA_MOVETOFINISHED, 11, av, NULL, "fail", id);
	}
	if (f->retry_at_ms <= now_ms) {
		const char *av[] = {id, token, rq_fmt_i64(&n1, now_ms), reason, has_stack, stack};
		return rq_script_int(NULL, q, JOBQ_LUA_RETRYJOB, 6, av, NULL, "fail", id);
	}
	const char *av[] = {
	    id,        token, rq_fmt_i64(&n1, now_ms), rq_fmt_i64(&n2, f->retry_at_ms), reason,
	    has_stack, stack};
	return rq_script_int(NULL, q, JOBQ_LUA_MOVETODELAYED, 7, av, NULL, "fail", id);
}

int
rq_release(jobq_backend_queue *q, const char *id, const char *token, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {id, token};
	return rq_script_int(NULL, q, JOBQ_LUA_RELEASEJOB, 2, av, NULL, "release", id);
}

int
rq_reap_stalled(jobq_strings **recovered, jobq_backend_queue *q, uint32_t max_stalled,
                int64_t stalled_interval_ms, int64_t now_ms) {
	numbuf n1, n2, n3;
	const char *av[] = {rq_fmt_i64(&n1, max_stalled), rq_fmt_i64(&n2, now_ms),
	                    rq_fmt_i64(&n3, stalled_interval_ms)};
	int rc;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_MOVESTALLEDJOBSTOWAIT, 3, av, NULL);
	if (r == NULL)
		return rc;
	rc = rq_strings_from_reply(recovered, r);
	freeReplyObject(r);
	return rc;
}
