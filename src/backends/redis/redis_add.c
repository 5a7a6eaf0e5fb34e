/*
 * Redis backend: adds, one call at a time (combined across threads) or pipelined.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq_lua.h"
#include "redis_ops.h"

/* --- add ------------------------------------------------------------------------------------ */

/* addJobs' arguments per job at most: a tag and the ten fields of the general form */
#define ADD_FIELDS 11
enum { ADD_STEPS = 1000 };

typedef struct add_call {
	jobq_job_id *ids;
	int *outcomes;
	const jobq_add_request *reqs;
	size_t n;
	char **opts; /* the options as JSON, per job */
	int rc;
} add_call;

/* Whether a job is plain (generated id, no dedup, delay, priority or lifo): addJobs takes it
 * in a short form, and its id follows from the call's first id. */
static int
add_is_plain(const jobq_job_options *o) {
	return o->job_id == NULL && o->dedup_id == NULL && o->delay_ms <= 0 && o->priority == 0 &&
	       !o->lifo;
}

/* addJobs' arguments for a step of up to `cap` jobs: the job count, then each job's. */
typedef struct add_args {
	const char **av;
	size_t *al;
	numbuf *nums; /* 4 per job, then the count's */
	size_t argc, jobs, cap;
	/* the last plain job's: a plain job with the same is sent in the short form "s" */
	const char *plain_name, *plain_opts;
	int64_t plain_ts;
} add_args;

static int
add_args_init(add_args *a, size_t cap) {
	a->av = jobq__malloc((1 + cap * ADD_FIELDS) * sizeof(*a->av));
	a->al = jobq__malloc((1 + cap * ADD_FIELDS) * sizeof(*a->al));
	a->nums = jobq__malloc((cap * 4 + 1) * sizeof(*a->nums));
	a->argc = 1;
	a->jobs = 0;
	a->cap = cap;
	a->plain_name = a->plain_opts = NULL;
	a->plain_ts = 0;
	if (a->av == NULL || a->al == NULL || a->nums == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	return 0;
}

static void
add_args_put(add_args *a, const char *arg, size_t len) {
	a->av[a->argc] = arg;
	a->al[a->argc++] = len;
}

/* Appends one job's arguments: "p" or "s" for a plain job, else "j" and every field. */
static void
add_args_job(add_args *a, const jobq_add_request *req, const char *opts_json) {
	const jobq_job_options *o = req->opts;
	numbuf *nums = &a->nums[a->jobs++ * 4];
	const char *name = req->name ? req->name : "";
	/* job data is `len` bytes, not a C string: never strlen it */
	const char *data = req->len ? (const char *)req->data : "{}";
	size_t data_len = req->len ? req->len : 2;
	if (!add_is_plain(o)) {
		add_args_put(a, "j", 1);
		const char *f[] = {o->job_id ? o->job_id : "", name, data, opts_json,
		                   rq_fmt_i64(&nums[0], o->timestamp),
		                   rq_fmt_i64(&nums[1], o->delay_ms > 0 ? o->delay_ms : 0),
		                   rq_fmt_i64(&nums[2], o->priority), o->lifo ? "1" : "0",
		                   o->dedup_id ? o->dedup_id : "",
		                   /* -1: keepLastIfActive (whose key has no expiry) */
		                   rq_fmt_i64(&nums[3], o->dedup_keep_last    ? -1
		                                        : o->dedup_ttl_ms > 0 ? o->dedup_ttl_ms
		                                                              : 0)};
		for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++)
			add_args_put(a, f[k], k == 2 ? data_len : strlen(f[k]));
		return;
	}
	if (a->plain_name != NULL && o->timestamp == a->plain_ts &&
	    strcmp(name, a->plain_name) == 0 &&
	    (opts_json == a->plain_opts || strcmp(opts_json, a->plain_opts) == 0)) {
		add_args_put(a, "s", 1);
		add_args_put(a, data, data_len);
		return;
	}
	const char *ts = rq_fmt_i64(&nums[0], o->timestamp);
	add_args_put(a, "p", 1);
	add_args_put(a, name, strlen(name));
	add_args_put(a, data, data_len);
	add_args_put(a, opts_json, strlen(opts_json));
	add_args_put(a, ts, strlen(ts));
	a->plain_name = name;
	a->plain_opts = opts_json;
	a->plain_ts = o->timestamp;
}

static void
add_args_append(add_args *a, const jobq_add_request *reqs, char *const *opts, size_t n) {
	for (size_t i = 0; i < n; i++)
		add_args_job(a, &reqs[i], opts[i]);
	a->av[0] = rq_fmt_i64(&a->nums[a->cap * 4], (int64_t)a->jobs);
	a->al[0] = strlen(a->av[0]);
}

static void
add_args_free(add_args *a) {
	jobq__free(a->nums);
	jobq__free(a->al);
	jobq__free(a->av);
}

/* The call of a flight of one job whose job is plain: addJob does it in fewer server steps
 * than addJobs. */
static add_call *
add_plain(rq_call *group) {
	for (rq_call *c = group; c != NULL; c = c->next) {
		add_call *a = c->arg;
		if (a->rc != 0 || a->n == 0)
			continue;
		return add_is_plain(a->reqs[0].opts) ? a : NULL;
	}
	return NULL;
}

static void
add_one_plain(jobq_backend_queue *q, rq_call *group) {
	add_call *ac = add_plain(group);
	const jobq_add_request *req = &ac->reqs[0];
	numbuf ts;
	const char *av[] = {req->name ? req->name : "", req->len ? (const char *)req->data : "{}",
	                    ac->opts[0], rq_fmt_i64(&ts, req->opts->timestamp)};
	size_t al[] = {strlen(av[0]), req->len ? req->len : 2, strlen(av[2]), strlen(av[3])};
	int rc = 0;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_ADDJOB, 4, av, al);
	if (r == NULL) {
		ac->rc = rc;
		return;
	}
	ac->rc = rq_add_reply_read(ac->ids, ac->outcomes, r, 0, 1, 1);
	freeReplyObject(r);
}

/* Runs the adds of every call of `group` as one addJobs call. */
static void
add_fly(jobq_backend_queue *q, rq_call *group) {
	size_t n = 0;
	for (rq_call *c = group; c != NULL; c = c->next) {
		add_call *a = c->arg;
		if (a->rc == 0)
			n += a->n;
	}
	if (n == 0)
		return;
	if (n == 1 && add_plain(group)) {
		add_one_plain(q, group);
		return;
	}
	add_args args;
	int rc = add_args_init(&args, n);
	if (rc == 0) {
		for (rq_call *c = group; c != NULL; c = c->next) {
			add_call *ac = c->arg;
			if (ac->rc == 0)
				add_args_append(&args, ac->reqs, ac->opts, ac->n);
		}
		redisReply *r =
		    rq_script(&rc, q, JOBQ_LUA_ADDJOBS, (int)args.argc, args.av, args.al);
		size_t j = 0;
		for (rq_call *c = group; r != NULL && c != NULL; c = c->next) {
			add_call *ac = c->arg;
			if (ac->rc == 0) {
				ac->rc = rq_add_reply_read(ac->ids, ac->outcomes, r, j, ac->n, n);
				j += ac->n;
			}
		}
		freeReplyObject(r);
	}
	add_args_free(&args);
	if (rc < 0) {
		for (rq_call *c = group; c != NULL; c = c->next) {
			add_call *ac = c->arg;
			if (ac->rc == 0)
				ac->rc = rc;
		}
	}
}

/* Whether two options encode to the same opts JSON (rq_opts_to_json); options that carry
 * strings are never taken as the same. */
static int
same_opts_json(const jobq_job_options *a, const jobq_job_options *b) {
	if (a == b)
		return 1;
	return a->job_id == NULL && b->job_id == NULL && a->dedup_id == NULL &&
	       b->dedup_id == NULL && a->backoff.custom_type == NULL &&
	       b->backoff.custom_type == NULL && jobq__job_options_equal(a, b);
}

static void
opts_free(char **opts, size_t n) {
	for (size_t i = 0; i < n; i++)
		if (i == 0 || opts[i] != opts[i - 1])
			jobq__free(opts[i]);
}

/* Each job's data against the server's largest string, before anything is sent. */
static int
add_sizes_check(jobq_backend_queue *q, const jobq_add_request *reqs, size_t n) {
	for (size_t i = 0; i < n; i++) {
		int rc = rq_check_size(q->b, reqs[i].len, "job data");
		if (rc < 0) {
			if (n > 1)
				jobq_error_set(rc, "job %zu of %zu: %s", i + 1, n,
				               jobq_error_message());
			return rc;
		}
	}
	return 0;
}

/* The opts JSON of each job; runs of jobs with options that encode alike share one text. */
static int
opts_encode(char **opts, const jobq_add_request *reqs, size_t n) {
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && same_opts_json(reqs[i].opts, reqs[i - 1].opts)) {
			opts[i] = opts[i - 1];
			continue;
		}
		int rc = rq_opts_to_json(&opts[i], reqs[i].opts);
		if (rc < 0) {
			opts_free(opts, i);
			return rc;
		}
	}
	return 0;
}

int
rq_add(jobq_job_id *ids, int *outcomes, jobq_backend_queue *q, const jobq_add_request *reqs,
       size_t n, int64_t now_ms) {
	(void)now_ms;
	if (n == 0)
		return 0;
	char *opts_stack[8];
	char **opts = n <= 8 ? opts_stack : jobq__calloc(n, sizeof(*opts));
	if (opts == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	add_call ac = {ids, outcomes, reqs, n, opts, 0};
	ac.rc = add_sizes_check(q, reqs, n);
	if (ac.rc == 0)
		ac.rc = opts_encode(opts, reqs, n);
	if (ac.rc == 0) {
		rq_call me = {.arg = &ac, .steps = n, .key = 0};
		rq_combine(&q->adds, q, &me, ADD_STEPS, add_fly);
		opts_free(opts, n);
	}
	if (opts != opts_stack)
		jobq__free(opts);
	return ac.rc;
}

/* --- pipelined adds (vtable version 3) ------------------------------------------------------
 *
 * The queue's own connection (not pooled: steps in flight stay on it, in order) takes addJobs
 * steps one after the other without waiting for their replies, which then come back in the
 * same order. addJobs is loaded on that connection when it opens, so a step never meets
 * NOSCRIPT unless the server's scripts are flushed meanwhile (that step then fails, and the
 * connection is opened again once nothing is outstanding).
 */

static int
pipe_ready(jobq_backend_queue *q) {
	if (q->pipe != NULL && !q->pipe_broken)
		return 0;
	if (q->pipe_inflight > 0)
		return jobq_error_set(JOBQ_EIO, "redis %s: add pipeline: connection lost",
		                      q->b->where);
	rq_conn_close_own(q->pipe);
	q->pipe = NULL;
	q->pipe_broken = 0;
	rconn *conn = NULL;
	int rc = rq_conn_open_own(&conn, q->b);
	if (rc < 0)
		return rc;
	const jobq_lua_script *s = &jobq_lua_scripts[JOBQ_LUA_ADDJOBS];
	const char *lv[3] = {"SCRIPT", "LOAD", (const char *)s->bytes};
	size_t ll[3] = {6, 4, s->len};
	redisReply *r = rq_conn_call(conn, 3, lv, ll);
	int ok = r != NULL && r->type == REDIS_REPLY_STRING;
	freeReplyObject(r);
	if (!ok) {
		rq_conn_close_own(conn);
		return jobq_error_set(JOBQ_EIO, "redis %s: add pipeline: cannot load addJobs",
		                      q->b->where);
	}
	q->pipe = conn;
	return 0;
}

int
rq_add_send(jobq_backend_queue *q, const jobq_add_request *reqs, size_t n, int64_t now_ms) {
	(void)now_ms;
	if (n == 0 || n > ADD_STEPS)
		return jobq_error_set(JOBQ_EINVAL, "redis add_send: %zu jobs (1..%d per step)", n,
		                      ADD_STEPS);
	int rc = add_sizes_check(q, reqs, n);
	if (rc < 0 || (rc = pipe_ready(q)) < 0)
		return rc;
	char **opts = jobq__calloc(n, sizeof(*opts));
	add_args args;
	rc = add_args_init(&args, n);
	if (opts == NULL && rc == 0)
		rc = jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	if (rc == 0 && (rc = opts_encode(opts, reqs, n)) == 0) {
		add_args_append(&args, reqs, opts, n);
		rc = rq_script_send(q->pipe, q, JOBQ_LUA_ADDJOBS, (int)args.argc, args.av, args.al);
		if (rc < 0)
			q->pipe_broken = 1;
		else
			q->pipe_inflight++;
		opts_free(opts, n);
	}
	add_args_free(&args);
	jobq__free(opts);
	return rc;
}

int
rq_add_recv(jobq_job_id *ids, int *outcomes, jobq_backend_queue *q, size_t n) {
	if (q->pipe == NULL || q->pipe_inflight == 0)
		return jobq_error_set(JOBQ_EINVAL, "redis add_recv: no step outstanding");
	int rc = 0;
	redisReply *r = q->pipe_broken ? NULL : rq_conn_read(q->pipe);
	q->pipe_inflight--;
	if (r == NULL) {
		char tail[80];
		snprintf(tail, sizeof(tail), " (the %zu adds may or may not have been made)", n);
		if (q->pipe_broken)
			rc = jobq_error_set(JOBQ_EIO, "redis %s: add: connection lost%s",
			                    q->b->where, tail);
		else
			rc = rq_io_error(q->b, q->pipe->c, "addJobs", q->b->command_timeout_ms,
			                 RQ_COMMAND_TIMEOUT_SETTING, tail);
		q->pipe_broken = 1;
	} else if (r->type == REDIS_REPLY_ERROR) {
		if (strncmp(r->str, "NOSCRIPT", 8) == 0)
			q->pipe_broken = 1; /* load it again on a fresh connection */
		rc = jobq_error_set(JOBQ_EBACKEND, "redis %s: script addJobs: %s", q->b->where,
		                    r->str);
	} else {
		rc = rq_add_reply_read(ids, outcomes, r, 0, n, n);
	}
	freeReplyObject(r);
	if (q->pipe_broken && q->pipe_inflight == 0) {
		rq_conn_close_own(q->pipe);
		q->pipe = NULL;
	}
	return rc;
}
