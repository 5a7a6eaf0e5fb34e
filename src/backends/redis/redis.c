/*
 * Redis backend: the vtable over the Lua scripts of lua/ (one script per operation, each one
 * atomic step), wire-compatible with BullMQ 6.x (bullmq-protocol.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq_lua.h"
#include "redis_int.h"

static const char *const key_suffixes[RQ_NKEYS] = {
    "wait",   "paused",           "active",  "prioritized",   "pc",     "delayed", "completed",
    "failed", "waiting-children", "stalled", "stalled-check", "marker", "meta",    "id",
    "events", "limiter"};

static void
sleep_real_ms(int64_t ms) {
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* A decimal rendering of an integer, kept alive for one call. */
typedef struct numbuf {
	char s[24];
} numbuf;

static const char *
fmt_i64(numbuf *nb, int64_t v) {
	snprintf(nb->s, sizeof(nb->s), "%" PRId64, v);
	return nb->s;
}

static int
reply_int(const redisReply *r, long long *out) {
	if (r->type == REDIS_REPLY_INTEGER) {
		*out = r->integer;
		return 0;
	}
	if (r->type == REDIS_REPLY_STRING) {
		*out = strtoll(r->str, NULL, 10);
		return 0;
	}
	return jobq_error_set(JOBQ_EBACKEND, "redis: unexpected reply type %d", r->type);
}

/* Maps a script's negative status to a jobq error about job `id`. */
static int
script_status(long long st, const char *op, const char *id) {
	switch (st) {
	case -1:
		return jobq_error_set(JOBQ_ENOTFOUND, "redis %s: no job %s", op, id);
	case -2:
		return jobq_error_set(JOBQ_ELOCKLOST, "redis %s: the lock of job %s is gone", op,
		                      id);
	case -6:
		return jobq_error_set(JOBQ_ELOCKLOST, "redis %s: job %s is locked by another token",
		                      op, id);
	case -3:
		return jobq_error_set(JOBQ_ESTATE, "redis %s: job %s is not in the expected state",
		                      op, id);
	case -4:
		return jobq_error_set(JOBQ_ESTATE, "redis %s: job %s has pending children", op, id);
	case -8:
		return jobq_error_set(
		    JOBQ_ESTATE, "redis %s: job %s is the pending iteration of a job scheduler", op,
		    id);
	default:
		return jobq_error_set(JOBQ_EBACKEND, "redis %s: job %s: script status %lld", op, id,
		                      st);
	}
}

/* Runs a script that answers one integer; negative values become errors. */
static int
script_int(long long *out, jobq_backend_queue *q, int script, int argc, const char **argv,
           const size_t *lens, const char *op, const char *id) {
	int rc;
	redisReply *r = rq_script(&rc, q, script, argc, argv, lens);
	if (r == NULL)
		return rc;
	long long v = 0;
	rc = reply_int(r, &v);
	freeReplyObject(r);
	if (rc < 0)
		return rc;
	if (out != NULL)
		*out = v;
	if (v < 0)
		return script_status(v, op, id ? id : "");
	return 0;
}

/* --- queues --------------------------------------------------------------------------------- */

static void unblock_waiters(redis_backend *b, jobq_backend_queue *only);

static void
rq_queue_close(jobq_backend_queue *q) {
	if (q == NULL)
		return;
	if (q->b != NULL) {
		/* blocking waits on this queue end with JOBQ_ECLOSED before the handle goes */
		redis_backend *b = q->b;
		pthread_mutex_lock(&b->mu);
		q->closing = 1;
		int busy = q->waits > 0;
		pthread_mutex_unlock(&b->mu);
		if (busy)
			unblock_waiters(b, q);
		pthread_mutex_lock(&b->mu);
		while (q->waits > 0)
			pthread_cond_wait(&b->cv, &b->mu);
		pthread_mutex_unlock(&b->mu);
		/* idle connections named for this queue would still count as its workers */
		if (q->worker_name != NULL)
			rq_conn_drop_named(b, q->worker_name);
		if (q->events_name != NULL)
			rq_conn_drop_named(b, q->events_name);
	}
	if (q->b != NULL) {
		pthread_mutex_destroy(&q->cf.mu);
		pthread_mutex_destroy(&q->adds.mu);
	}
	rq_conn_close_own(q->pipe); /* (the core received every step it sent before this) */
	jobq__free(q->worker_name);
	jobq__free(q->events_name);
	for (int i = 0; i < RQ_NKEYS; i++)
		jobq__free(q->keys[i]);
	jobq__free(q->qp);
	jobq__free(q->name);
	jobq__free(q);
}

static int
rq_queue_open(jobq_backend_queue **out, jobq_backend *base, const char *name) {
	redis_backend *b = (redis_backend *)base;
	jobq_backend_queue *q = jobq__calloc(1, sizeof(*q));
	if (q == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	q->b = b;
	pthread_mutex_init(&q->cf.mu, NULL);
	pthread_mutex_init(&q->adds.mu, NULL);
	q->name = jobq__strdup(name);
	q->qp_len = strlen(b->prefix) + strlen(name) + 2;
	q->qp = jobq__malloc(q->qp_len + 1);
	char *b64 = rq_base64(name, strlen(name));
	size_t wl = strlen(b->prefix) + (b64 ? strlen(b64) : 0) + 8;
	q->worker_name = jobq__malloc(wl);
	q->events_name = jobq__malloc(wl);
	int ok = q->name != NULL && q->qp != NULL && b64 != NULL && q->worker_name != NULL &&
	         q->events_name != NULL;
	if (ok) {
		snprintf(q->qp, q->qp_len + 1, "%s:%s:", b->prefix, name);
		snprintf(q->worker_name, wl, "%s:%s", b->prefix, b64);
		snprintf(q->events_name, wl, "%s:%s:qe", b->prefix, b64);
	}
	jobq__free(b64);
	for (int i = 0; ok && i < RQ_NKEYS; i++) {
		size_t n = q->qp_len + strlen(key_suffixes[i]) + 1;
		q->keys[i] = jobq__malloc(n);
		if (q->keys[i] == NULL)
			ok = 0;
		else
			snprintf(q->keys[i], n, "%s%s", q->qp, key_suffixes[i]);
	}
	if (!ok) {
		rq_queue_close(q);
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	}
	*out = q;
	return 0;
}

/* --- calls of several threads combined into one script call ------------------------------- */

/*
 * Adds and complete_fetch combine the calls that threads make at the same time on one queue
 * handle into one script call (a "flight"): each call's steps run in order inside the one
 * atomic script, exactly as they would in a script of their own, and each call takes effect
 * within its own interval, so this is invisible but for the number of round trips. A call
 * that arrives while RQ_FLIGHTS flights of its kind are on the wire queues up; the first
 * queued call leads the next flight with the compatible calls queued behind it, up to
 * `max_steps` (so that one script stays short; a larger call flies alone). Each call waits
 * on its own condition: finishing a flight wakes one member (which wakes the next) and the
 * next leader only.
 *
 * Up to 8 flights: while the client takes in one flight's reply and its members wake, the
 * server works on the others (with 2, redis-server sat idle a quarter of the time with a
 * hundred handler threads; 8 made processing ~10 % faster at concurrency 10 and 100).
 */
enum { RQ_FLIGHTS = 8 };

typedef void (*rq_fly_fn)(jobq_backend_queue *q, rq_call *group);

static void
combine(rq_combiner *c, jobq_backend_queue *q, rq_call *me, size_t max_steps, rq_fly_fn fly) {
	pthread_cond_init(&me->cv, NULL);
	me->finished = me->released = me->urgent = 0;
	me->next = me->wake_next = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->tail != NULL)
		c->tail->next = me;
	else
		c->head = me;
	c->tail = me;
	while (!me->finished || !me->released) {
		if (me->finished || c->head != me || c->flying >= RQ_FLIGHTS) {
			pthread_cond_wait(&me->cv, &c->mu);
			continue;
		}
		rq_call *last = me;
		size_t steps = me->steps;
		while (last->next != NULL && last->next->key == me->key &&
		       steps + last->next->steps <= max_steps) {
			last = last->next;
			steps += last->steps;
		}
		c->head = last->next;
		if (c->head == NULL)
			c->tail = NULL;
		last->next = NULL;
		c->flying++;
		/* the next queued call may lead a flight of its own meanwhile */
		if (c->head != NULL && c->flying < RQ_FLIGHTS)
			pthread_cond_signal(&c->head->cv);
		pthread_mutex_unlock(&c->mu);
		fly(q, me);
		pthread_mutex_lock(&c->mu);
		c->flying--;
		/*
		 * The members wake one another in a chain, those with work to do (jobs fetched)
		 * first: the leader signals one thread instead of all, and each member, once
		 * released by the one before it, releases the next as it leaves.
		 */
		rq_call *first = NULL, **link = &first;
		for (int pass = 1; pass >= 0; pass--) {
			for (rq_call *r = me->next; r != NULL; r = r->next) {
				if (r->urgent == pass) {
					*link = r;
					link = &r->wake_next;
				}
			}
		}
		for (rq_call *r = me->next; r != NULL; r = r->next)
			r->finished = 1;
		me->finished = me->released = 1;
		if (first != NULL) {
			first->released = 1;
			pthread_cond_signal(&first->cv);
		}
		if (c->head != NULL && c->flying < RQ_FLIGHTS)
			pthread_cond_signal(&c->head->cv);
	}
	/* `wake_next` waits for this before it may leave: it is still there */
	if (me->wake_next != NULL) {
		me->wake_next->released = 1;
		pthread_cond_signal(&me->wake_next->cv);
	}
	pthread_mutex_unlock(&c->mu);
	pthread_cond_destroy(&me->cv);
}

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
		const char *f[] = {o->job_id ? o->job_id : "",
		                   name,
		                   data,
		                   opts_json,
		                   fmt_i64(&nums[0], o->timestamp),
		                   fmt_i64(&nums[1], o->delay_ms > 0 ? o->delay_ms : 0),
		                   fmt_i64(&nums[2], o->priority),
		                   o->lifo ? "1" : "0",
		                   o->dedup_id ? o->dedup_id : "",
		                   fmt_i64(&nums[3], o->dedup_ttl_ms > 0 ? o->dedup_ttl_ms : 0)};
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
	const char *ts = fmt_i64(&nums[0], o->timestamp);
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
	a->av[0] = fmt_i64(&a->nums[a->cap * 4], (int64_t)a->jobs);
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
	                    ac->opts[0], fmt_i64(&ts, req->opts->timestamp)};
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

static int
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
		combine(&q->adds, q, &me, ADD_STEPS, add_fly);
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

static int
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

static int
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

/* --- fetch and the transitions of an active job --------------------------------------------- */

static int
rq_fetch(jobq_job **out, jobq_fetch_info *info, jobq_backend_queue *q, const char *token,
         int64_t lock_ms, int64_t now_ms) {
	numbuf n1, n2;
	const char *av[] = {token, fmt_i64(&n1, lock_ms), fmt_i64(&n2, now_ms), ""};
	int rc;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_MOVETOACTIVE, 4, av, NULL);
	if (r == NULL)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
		freeReplyObject(r);
		return jobq_error_set(JOBQ_EBACKEND, "redis fetch: unexpected reply");
	}
	long long due = 0;
	reply_int(r->element[3], &due);
	if (info != NULL)
		info->next_due_ms = due;
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

static int
rq_extend_lock(jobq_backend_queue *q, const char *id, const char *token, int64_t lock_ms,
               int64_t now_ms) {
	(void)now_ms;
	numbuf n1;
	const char *av[] = {id, token, fmt_i64(&n1, lock_ms)};
	return script_int(NULL, q, JOBQ_LUA_EXTENDLOCK, 3, av, NULL, "extend_lock", id);
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

static int
rq_complete(jobq_backend_queue *q, const char *id, const char *token, const char *result_json,
            const jobq_keep *keep, int64_t now_ms) {
	numbuf n1, n2, n3;
	int64_t count, age;
	keep_args(keep, &count, &age);
	const char *av[] = {id,
	                    token,
	                    fmt_i64(&n1, now_ms),
	                    "completed",
	                    result_json ? result_json : "null",
	                    fmt_i64(&n2, count),
	                    fmt_i64(&n3, age),
	                    "0",
	                    "0",
	                    ""};
	return script_int(NULL, q, JOBQ_LUA_MOVETOFINISHED, 10, av, NULL, "complete", id);
}

/* Reads one integer element of a reply (0 when it is not one). */
static long long
elem_int(const redisReply *r) {
	long long v = 0;
	reply_int(r, &v);
	return v;
}

#define CF_FIXED    4 /* ndone, max, lock ms, now */
#define CF_PER_DONE 6

/*
 * complete_fetch calls fly together (combine() above): the completions of every call first,
 * in order, then the fetches of every call, the jobs dealt out in order, up to CF_STEPS
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
	size_t argc = CF_FIXED + ndone * CF_PER_DONE + max;
	const char *av_stack[CF_FIXED + CF_STACK * (CF_PER_DONE + 1)];
	size_t al_stack[CF_FIXED + CF_STACK * (CF_PER_DONE + 1)];
	numbuf nb_stack[CF_STACK * 2];
	const char **av = av_stack;
	size_t *al = al_stack;
	numbuf *nb = nb_stack;
	int heap = ndone > CF_STACK || max > CF_STACK;
	if (heap) {
		av = jobq__malloc(argc * sizeof(*av));
		al = jobq__malloc(argc * sizeof(*al));
		nb = jobq__malloc((ndone ? ndone : 1) * 2 * sizeof(*nb));
		if (av == NULL || al == NULL || nb == NULL) {
			jobq__free(av);
			jobq__free(al);
			jobq__free(nb);
			cf_fail(group, jobq_error_set(JOBQ_ENOMEM, "redis: out of memory"));
			return;
		}
	}
	numbuf f1, f2, f3, f4;
	av[0] = fmt_i64(&f1, (int64_t)ndone);
	av[1] = fmt_i64(&f2, (int64_t)max);
	av[2] = fmt_i64(&f3, ((cf_call *)group->arg)->lock_ms);
	av[3] = fmt_i64(&f4, now_ms);
	size_t k = CF_FIXED, d = 0;
	for (rq_call *c = group; c != NULL; c = c->next) {
		cf_call *r = c->arg;
		for (size_t i = 0; i < r->ndone; i++, d++) {
			int64_t count, age;
			keep_args(&r->done[i].keep, &count, &age);
			av[k++] = r->done[i].id;
			av[k++] = r->done[i].token;
			av[k++] = r->done[i].result_json ? r->done[i].result_json : "null";
			av[k++] = fmt_i64(&nb[2 * d], count);
			av[k++] = fmt_i64(&nb[2 * d + 1], age);
			av[k++] = r->done[i].dedup_id ? r->done[i].dedup_id : "";
		}
	}
	for (rq_call *c = group; c != NULL; c = c->next) {
		cf_call *r = c->arg;
		for (size_t i = 0; i < r->max; i++)
			av[k++] = r->tokens[i];
	}
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
	    reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 ? reply->element[0] : NULL;
	const redisReply *list = st != NULL ? reply->element[1] : NULL;
	if (st == NULL || st->type != REDIS_REPLY_ARRAY || st->elements != ndone ||
	    list->type != REDIS_REPLY_ARRAY || list->elements > max) {
		freeReplyObject(reply);
		cf_fail(group,
		        jobq_error_set(JOBQ_EBACKEND, "redis complete_fetch: unexpected reply"));
		return;
	}
	int64_t due = elem_int(reply->element[2]);
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
			r->done[i].rc = v < 0 ? script_status(v, "complete", r->done[i].id) : 0;
		}
		if (r->info != NULL)
			r->info->next_due_ms = due;
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

static int
rq_complete_fetch(jobq_job **jobs, jobq_fetch_info *info, jobq_backend_queue *q,
                  jobq_completion *done, size_t ndone, const char *const *tokens, size_t max,
                  int64_t lock_ms, int64_t now_ms) {
	if ((ndone > 0 && done == NULL) || (max > 0 && (jobs == NULL || tokens == NULL)))
		return jobq_error_set(JOBQ_EINVAL,
		                      "redis complete_fetch: needs done, jobs and tokens");
	if (ndone == 0 && max == 0)
		return 0;
	cf_call cc = {jobs, info, done, ndone, tokens, max, lock_ms, now_ms, 0};
	rq_call me = {.arg = &cc, .steps = ndone + max, .key = lock_ms};
	combine(&q->cf, q, &me, CF_STEPS, cf_fly);
	return cc.rc;
}

static int
rq_fail(jobq_backend_queue *q, const char *id, const char *token, const jobq_failure *f,
        int64_t now_ms) {
	numbuf n1, n2, n3, n4;
	const char *reason = f->reason ? f->reason : "";
	const char *has_stack = f->stack ? "1" : "0";
	const char *stack = f->stack ? f->stack : "";
	if (f->retry_at_ms < 0) {
		int64_t count, age;
		keep_args(&f->keep, &count, &age);
		const char *av[] = {id,
		                    token,
		                    fmt_i64(&n1, now_ms),
		                    "failed",
		                    reason,
		                    fmt_i64(&n2, count),
		                    fmt_i64(&n3, age),
		                    fmt_i64(&n4, f->attempts),
		                    has_stack,
		                    stack};
		return script_int(NULL, q, JOBQ_LUA_MOVETOFINISHED, 10, av, NULL, "fail", id);
	}
	if (f->retry_at_ms <= now_ms) {
		const char *av[] = {id, token, fmt_i64(&n1, now_ms), reason, has_stack, stack};
		return script_int(NULL, q, JOBQ_LUA_RETRYJOB, 6, av, NULL, "fail", id);
	}
	const char *av[] = {
	    id,        token, fmt_i64(&n1, now_ms), fmt_i64(&n2, f->retry_at_ms), reason,
	    has_stack, stack};
	return script_int(NULL, q, JOBQ_LUA_MOVETODELAYED, 7, av, NULL, "fail", id);
}

static int
rq_release(jobq_backend_queue *q, const char *id, const char *token, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {id, token};
	return script_int(NULL, q, JOBQ_LUA_RELEASEJOB, 2, av, NULL, "release", id);
}

static int
rq_reap_stalled(jobq_strings **recovered, jobq_backend_queue *q, uint32_t max_stalled,
                int64_t stalled_interval_ms, int64_t now_ms) {
	numbuf n1, n2, n3;
	const char *av[] = {fmt_i64(&n1, max_stalled), fmt_i64(&n2, now_ms),
	                    fmt_i64(&n3, stalled_interval_ms)};
	int rc;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_MOVESTALLEDJOBSTOWAIT, 3, av, NULL);
	if (r == NULL)
		return rc;
	rc = rq_strings_from_reply(recovered, r);
	freeReplyObject(r);
	return rc;
}

/* --- reading -------------------------------------------------------------------------------- */

static int
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

static int
rq_list(jobq_job_list **out, jobq_backend_queue *q, jobq_state state, size_t offset, size_t limit) {
	numbuf n1, n2;
	const char *av[] = {jobq_state_name(state), fmt_i64(&n1, (int64_t)offset),
	                    fmt_i64(&n2, (int64_t)limit)};
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

static int
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

static int
rq_remove(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {id};
	long long v = 0;
	int rc = script_int(&v, q, JOBQ_LUA_REMOVEJOB, 1, av, NULL, "remove", id);
	if (rc == 0 && v == 0)
		return jobq_error_set(JOBQ_ESTATE, "redis remove: job %s is locked by a worker",
		                      id);
	return rc;
}

static int
rq_set_paused(jobq_backend_queue *q, int paused, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {paused ? "pause" : "resume"};
	return script_int(NULL, q, JOBQ_LUA_PAUSE, 1, av, NULL, "pause", NULL);
}

static int
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

static int
rq_drain(jobq_backend_queue *q, int include_delayed, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {include_delayed ? "1" : "0"};
	return script_int(NULL, q, JOBQ_LUA_DRAIN, 1, av, NULL, "drain", NULL);
}

static int
rq_clean(jobq_strings **removed, jobq_backend_queue *q, jobq_state state, int64_t grace_ms,
         size_t limit, int64_t now_ms) {
	numbuf n1, n2, n3;
	const char *av[] = {jobq_state_name(state), fmt_i64(&n1, grace_ms),
	                    fmt_i64(&n2, (int64_t)limit), fmt_i64(&n3, now_ms)};
	int rc;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_CLEAN, 4, av, NULL);
	if (r == NULL)
		return rc;
	rc = rq_strings_from_reply(removed, r);
	freeReplyObject(r);
	return rc;
}

static int
rq_obliterate(jobq_backend_queue *q, int force, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {force ? "1" : "0"};
	long long v = 0;
	int rc;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_OBLITERATE, 1, av, NULL);
	if (r == NULL)
		return rc;
	reply_int(r, &v);
	freeReplyObject(r);
	if (v == -2)
		return jobq_error_set(JOBQ_ESTATE, "redis obliterate: queue %s has active jobs",
		                      q->name);
	return 0;
}

static int
rq_promote(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {id ? id : ""};
	long long v = 0;
	int rc = script_int(&v, q, JOBQ_LUA_PROMOTE, 1, av, NULL, "promote", id);
	return rc < 0 ? rc : (int)v;
}

static int
rq_retry_failed(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {id ? id : ""};
	long long v = 0;
	int rc = script_int(&v, q, JOBQ_LUA_RETRYFAILED, 1, av, NULL, "retry", id);
	return rc < 0 ? rc : (int)v;
}

static int
rq_progress(jobq_backend_queue *q, const char *id, const char *token, const char *json,
            int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {id, token ? token : "", json};
	return script_int(NULL, q, JOBQ_LUA_UPDATEPROGRESS, 3, av, NULL, "progress", id);
}

static int
rq_add_log(jobq_backend_queue *q, const char *id, const char *line, int64_t keep) {
	numbuf n1;
	const char *av[] = {id, line, fmt_i64(&n1, keep > 0 ? keep : 0)};
	long long v = 0;
	int rc = script_int(&v, q, JOBQ_LUA_ADDLOG, 3, av, NULL, "add_log", id);
	return rc < 0 ? rc : (int)v;
}

static int
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
			    "LRANGE", key, fmt_i64(&n1, (int64_t)start),
			    fmt_i64(&n2, limit ? (int64_t)(start + limit - 1) : -1)};
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

/* --- blocking waits ------------------------------------------------------------------------- */

static void
waiter_add(redis_backend *b, rwaiter *w) {
	pthread_mutex_lock(&b->mu);
	w->next = b->waiters;
	b->waiters = w;
	pthread_mutex_unlock(&b->mu);
}

static void
waiter_remove(redis_backend *b, rwaiter *w) {
	pthread_mutex_lock(&b->mu);
	for (rwaiter **p = &b->waiters; *p != NULL; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	pthread_mutex_unlock(&b->mu);
}

/* Marks `w` as about to block unless a wake happened since `gen`; returns 0 if woken. */
static int
waiter_arm(redis_backend *b, rwaiter *w, uint64_t gen) {
	pthread_mutex_lock(&b->mu);
	int ok = b->wake_gen == gen && !w->q->closing;
	w->blocking = ok;
	pthread_mutex_unlock(&b->mu);
	return ok;
}

static int
waiter_disarm(redis_backend *b, rwaiter *w, uint64_t gen) {
	pthread_mutex_lock(&b->mu);
	w->blocking = 0;
	int woken = b->wake_gen != gen;
	pthread_mutex_unlock(&b->mu);
	return woken;
}

/* Enters a blocking wait on `q`; JOBQ_ECLOSED once the queue is closing. */
static int
wait_enter(jobq_backend_queue *q) {
	pthread_mutex_lock(&q->b->mu);
	int closing = q->closing;
	if (!closing)
		q->waits++;
	pthread_mutex_unlock(&q->b->mu);
	return closing ? jobq_error_set(JOBQ_ECLOSED, "redis: queue %s is closed", q->name) : 0;
}

/* Leaves a blocking wait; turns `rc` into JOBQ_ECLOSED if the queue closed meanwhile. */
static int
wait_leave(jobq_backend_queue *q, int rc) {
	redis_backend *b = q->b;
	pthread_mutex_lock(&b->mu);
	/* the closer frees `q` once waits drops to 0: touch nothing of it after that */
	if (q->closing && rc >= 0)
		rc = jobq_error_set(JOBQ_ECLOSED, "redis: queue %s was closed during the wait",
		                    q->name);
	q->waits--;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	return rc;
}

static int
closing(jobq_backend_queue *q) {
	pthread_mutex_lock(&q->b->mu);
	int c = q->closing;
	pthread_mutex_unlock(&q->b->mu);
	return c;
}

static uint64_t
wake_gen(redis_backend *b) {
	pthread_mutex_lock(&b->mu);
	uint64_t g = b->wake_gen;
	pthread_mutex_unlock(&b->mu);
	return g;
}

/* Runs a blocking command on a dedicated connection registered for wake() and named `name`
 * (a waiting worker or an event reader, as Node names its connections). `block_ms` is
 * how long the server may block. Returns the reply or NULL (rc set; 0 and NULL when woken). */
static redisReply *
blocking_command(int *rc, jobq_backend_queue *q, const char *name, uint64_t gen, int64_t block_ms,
                 int argc, const char **argv) {
	redis_backend *b = q->b;
	rconn *conn = NULL;
	*rc = rq_conn_get_named(&conn, b, name);
	if (*rc < 0)
		return NULL;
	rwaiter w = {conn->client_id, q, 0, NULL};
	waiter_add(b, &w);
	redisReply *r = NULL;
	if (waiter_arm(b, &w, gen)) {
		/* the socket timeout outlasts the server-side block by the command timeout */
		int64_t t = (block_ms > 0 ? block_ms : 0) + (b->command_timeout_ms > 0
		                                                 ? b->command_timeout_ms
		                                                 : RQ_DEFAULT_COMMAND_TIMEOUT_MS);
		rq_conn_set_timeout(conn, t);
		r = rq_conn_command_named(conn, name, argc, argv);
		if (r == NULL)
			*rc = rq_io_error(b, conn->c, argv[0], t,
			                  "its blocking time plus command_timeout_ms", "");
	}
	waiter_disarm(b, &w, gen);
	waiter_remove(b, &w);
	rq_conn_put(b, conn, 1);
	if (r != NULL && r->type == REDIS_REPLY_ERROR) {
		if (strncmp(r->str, "UNBLOCKED", 9) != 0)
			*rc = jobq_error_set(JOBQ_EBACKEND, "redis %s: %s", b->where, r->str);
		freeReplyObject(r);
		r = NULL;
	}
	return r;
}

#define MAX_BLOCK_MS 10000 /* as Node's workers: never block longer than 10 s at once */

static int
wait_for_work(jobq_backend_queue *q, jobq_clock *clock, int64_t timeout_ms) {
	redis_backend *b = q->b;
	uint64_t gen = wake_gen(b);
	int64_t deadline = timeout_ms >= 0 ? jobq__mono_ms() + timeout_ms : INT64_MAX;
	for (;;) {
		int64_t now = jobq_clock_now(clock);
		numbuf n1;
		const char *av[] = {fmt_i64(&n1, now)};
		int rc;
		redisReply *r = rq_script(&rc, q, JOBQ_LUA_HASWORK, 1, av, NULL);
		if (r == NULL)
			return rc;
		long long ready = 0, due = 0;
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
			reply_int(r->element[0], &ready);
			reply_int(r->element[1], &due);
		}
		freeReplyObject(r);
		if (ready)
			return 0;
		int64_t left = deadline == INT64_MAX ? MAX_BLOCK_MS : deadline - jobq__mono_ms();
		if (left <= 0)
			return 0;
		int64_t block = left < MAX_BLOCK_MS ? left : MAX_BLOCK_MS;
		if (due > 0 && due - now < block)
			block = due - now;
		if (block < 1)
			block = 1;
		char secs[32];
		snprintf(secs, sizeof(secs), "%.3f", (double)block / 1000.0);
		const char *bv[] = {"BZPOPMIN", q->keys[11], secs};
		/* One waiting connection of the queue carries the worker's name: Node's getWorkers
		 * counts named connections, and a jobq worker counts once however many of its
		 * threads wait. The named connection stays open (and listed) between waits. */
		int unnamed = 0;
		int named = atomic_compare_exchange_strong(&q->named_wait, &unnamed, 1);
		r = blocking_command(&rc, q, named ? q->worker_name : NULL, gen, block, 3, bv);
		if (named)
			atomic_store(&q->named_wait, 0);
		if (rc < 0)
			return rc;
		if (r == NULL) {
			if (wake_gen(b) != gen || closing(q))
				return 0; /* woken */
			if (due > 0 && jobq_clock_now(clock) >= due)
				return 0;
			continue; /* slice timed out: look again */
		}
		/* a marker popped: "0" means work; "1" carries a due time */
		int is_delay = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
		               r->element[1]->type == REDIS_REPLY_STRING &&
		               strcmp(r->element[1]->str, "1") == 0;
		double score = is_delay ? strtod(r->element[2]->str, NULL) : 0;
		freeReplyObject(r);
		if (!is_delay || score <= (double)jobq_clock_now(clock))
			return 0;
		/* a future due time: the next round of hasWork computes the sleep */
	}
}

static int
rq_wait_for_work(jobq_backend_queue *q, jobq_clock *clock, int64_t timeout_ms) {
	int rc = wait_enter(q);
	if (rc < 0)
		return rc;
	return wait_leave(q, wait_for_work(q, clock, timeout_ms));
}

static void
rq_wake(jobq_backend *base) {
	redis_backend *b = (redis_backend *)base;
	pthread_mutex_lock(&b->mu);
	b->wake_gen++;
	pthread_mutex_unlock(&b->mu);
	unblock_waiters(b, NULL);
}

/* CLIENT UNBLOCK for the blocking waits of queue `only` (NULL: every queue). */
static void
unblock_waiters(redis_backend *b, jobq_backend_queue *only) {
	long long ids[64];
	size_t n = 0;
	pthread_mutex_lock(&b->mu);
	for (rwaiter *w = b->waiters; w != NULL && n < 64; w = w->next)
		if (only == NULL || w->q == only)
			ids[n++] = w->client_id;
	pthread_mutex_unlock(&b->mu);
	for (size_t i = 0; i < n; i++) {
		/* CLIENT UNBLOCK answers 0 while the waiter has not reached the server yet: retry
		 * shortly while it is still registered as blocking */
		for (int tries = 0; tries < 100; tries++) {
			char idbuf[24];
			snprintf(idbuf, sizeof(idbuf), "%lld", ids[i]);
			const char *av[] = {"CLIENT", "UNBLOCK", idbuf};
			int rc;
			redisReply *r = rq_command(&rc, b, 1, 3, av, NULL);
			if (r == NULL)
				break;
			int done = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
			freeReplyObject(r);
			if (done)
				break;
			int still = 0;
			pthread_mutex_lock(&b->mu);
			for (rwaiter *w = b->waiters; w != NULL; w = w->next)
				if (w->client_id == ids[i] && w->blocking)
					still = 1;
			pthread_mutex_unlock(&b->mu);
			if (!still)
				break;
			struct timespec ts = {0, 1000000L};
			nanosleep(&ts, NULL);
		}
	}
}

/* --- events --------------------------------------------------------------------------------- */

static int
events_read(jobq_event_list **out, jobq_backend_queue *q, const char *after, size_t max,
            int64_t timeout_ms) {
	redis_backend *b = q->b;
	uint64_t gen = wake_gen(b);
	int rc = jobq_event_list__new(out);
	if (rc < 0)
		return rc;
	char cursor[64];
	snprintf(cursor, sizeof(cursor), "%s", after);
	if (strcmp(after, "$") == 0) {
		/* resolve "$" to the newest id so that the returned cursor can be reused */
		const char *av[] = {"XREVRANGE", q->keys[14], "+", "-", "COUNT", "1"};
		redisReply *r = rq_command(&rc, b, 1, 6, av, NULL);
		if (r == NULL)
			goto fail;
		snprintf(cursor, sizeof(cursor), "0-0");
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
		    r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
			snprintf(cursor, sizeof(cursor), "%s", r->element[0]->element[0]->str);
		freeReplyObject(r);
	}
	numbuf n1, n2;
	const char *av[9];
	int argc = 0;
	av[argc++] = "XREAD";
	if (max > 0) {
		av[argc++] = "COUNT";
		av[argc++] = fmt_i64(&n1, (int64_t)max);
	}
	int64_t block = timeout_ms < 0 ? MAX_BLOCK_MS : timeout_ms;
	int64_t deadline = jobq__mono_ms() + timeout_ms;
	int blocking = timeout_ms != 0;
	if (blocking) {
		av[argc++] = "BLOCK";
		av[argc++] = "";
	}
	av[argc++] = "STREAMS";
	av[argc++] = q->keys[14];
	av[argc++] = cursor;
	redisReply *r = NULL;
	for (;;) {
		if (blocking) {
			if (timeout_ms >= 0) {
				block = deadline - jobq__mono_ms();
				if (block > MAX_BLOCK_MS)
					block = MAX_BLOCK_MS;
				if (block < 1)
					block = 1;
			}
			av[argc - 4] = fmt_i64(&n2, block);
			r = blocking_command(&rc, q, q->events_name, gen, block, argc, av);
		} else {
			r = rq_command(&rc, b, 1, argc, av, NULL);
		}
		if (rc < 0)
			goto fail;
		if (r != NULL && r->type == REDIS_REPLY_ARRAY)
			break;
		if (r != NULL)
			freeReplyObject(r);
		r = NULL;
		if (!blocking || wake_gen(b) != gen || closing(q) ||
		    (timeout_ms >= 0 && jobq__mono_ms() >= deadline))
			break;
	}
	if (r != NULL) {
		rc = rq_events_from_reply(*out, r);
		freeReplyObject(r);
		if (rc < 0)
			goto fail;
	}
	if (jobq_event_list_count(*out) == 0 &&
	    (rc = jobq_event_list__set_cursor(*out, cursor)) < 0)
		goto fail;
	return 0;
fail:
	jobq_event_list_free(*out);
	*out = NULL;
	return rc;
}

static int
rq_events_read(jobq_event_list **out, jobq_backend_queue *q, const char *after, size_t max,
               int64_t timeout_ms) {
	int rc = wait_enter(q);
	if (rc < 0)
		return rc;
	rc = wait_leave(q, events_read(out, q, after, max, timeout_ms));
	if (rc < 0 && *out != NULL) {
		jobq_event_list_free(*out);
		*out = NULL;
	}
	return rc;
}

/* --- construction --------------------------------------------------------------------------- */

static void
rq_free(jobq_backend *base) {
	redis_backend *b = (redis_backend *)base;
	if (b == NULL)
		return;
	rq_pool_free(b);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	jobq__free(b->host);
	jobq__free(b->unix_path);
	jobq__free(b->username);
	jobq__free(b->password);
	jobq__free(b->prefix);
	jobq__free(b->where);
	jobq__free(b);
}

int
jobq_redis_options_init(jobq_redis_options *opts, unsigned int version) {
	if (version != JOBQ_REDIS_OPTIONS_VERSION)
		return jobq_error_set(JOBQ_EVERSION, "jobq_redis_options version %u not supported",
		                      version);
	memset(opts, 0, sizeof(*opts));
	opts->version = version;
	return 0;
}

int
jobq_backend_redis_new(jobq_backend **out, const jobq_redis_options *opts) {
	jobq_redis_options dflt = JOBQ_REDIS_OPTIONS_INIT;
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "jobq_backend_redis_new: out is NULL");
	*out = NULL;
	if (opts == NULL)
		opts = &dflt;
	if (opts->version != JOBQ_REDIS_OPTIONS_VERSION)
		return jobq_error_set(JOBQ_EVERSION, "jobq_redis_options version %u not supported",
		                      opts->version);
	if (opts->port < 0 || opts->port > 65535)
		return jobq_error_set(JOBQ_EINVAL, "redis: port %d out of range", opts->port);
	if (opts->db < 0)
		return jobq_error_set(JOBQ_EINVAL, "redis: database %d is negative", opts->db);
	if (opts->prefix != NULL && opts->prefix[0] == '\0')
		return jobq_error_set(JOBQ_EINVAL, "redis: the key prefix is empty");
	if (opts->username != NULL && opts->password == NULL)
		return jobq_error_set(JOBQ_EINVAL, "redis: a username needs a password");
	if (opts->connect_wait_ms < 0)
		return jobq_error_set(JOBQ_EINVAL, "redis: connect_wait_ms %lld is negative",
		                      (long long)opts->connect_wait_ms);
	redis_backend *b = jobq__calloc(1, sizeof(*b));
	if (b == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	b->base.version = JOBQ_BACKEND_VERSION;
	b->base.name = "redis";
	/* Due times follow the core's now; locks are PX keys on server time. */
	b->base.caps = JOBQ_CAP_BLOCKING_WAIT | JOBQ_CAP_DURABLE | JOBQ_CAP_MULTIPROCESS |
	               JOBQ_CAP_JSON_DATA | JOBQ_CAP_DUE_CLOCK;
	b->base.queue_open = rq_queue_open;
	b->base.queue_close = rq_queue_close;
	b->base.add = rq_add;
	b->base.fetch = rq_fetch;
	b->base.extend_lock = rq_extend_lock;
	b->base.complete = rq_complete;
	b->base.fail = rq_fail;
	b->base.release = rq_release;
	b->base.reap_stalled = rq_reap_stalled;
	b->base.get = rq_get;
	b->base.list = rq_list;
	b->base.counts = rq_counts;
	b->base.remove = rq_remove;
	b->base.set_paused = rq_set_paused;
	b->base.is_paused = rq_is_paused;
	b->base.drain = rq_drain;
	b->base.clean = rq_clean;
	b->base.obliterate = rq_obliterate;
	b->base.promote = rq_promote;
	b->base.retry_failed = rq_retry_failed;
	b->base.progress = rq_progress;
	b->base.add_log = rq_add_log;
	b->base.get_logs = rq_get_logs;
	b->base.events_read = rq_events_read;
	b->base.wait_for_work = rq_wait_for_work;
	b->base.wake = rq_wake;
	b->base.free = rq_free;
	b->base.complete_fetch = rq_complete_fetch;
	b->base.add_send = rq_add_send;
	b->base.add_recv = rq_add_recv;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->port = opts->port ? opts->port : 6379;
	b->db = opts->db;
	b->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
	b->command_timeout_ms = opts->command_timeout_ms > 0   ? opts->command_timeout_ms
	                        : opts->command_timeout_ms < 0 ? 0
	                                                       : RQ_DEFAULT_COMMAND_TIMEOUT_MS;
	b->reconnect_attempts = opts->reconnect_attempts ? opts->reconnect_attempts : 6;
	b->reconnect_max_delay_ms =
	    opts->reconnect_max_delay_ms > 0 ? opts->reconnect_max_delay_ms : 1000;
	b->seed = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)b;
	b->host = jobq__strdup(opts->host ? opts->host : "127.0.0.1");
	b->prefix = jobq__strdup(opts->prefix ? opts->prefix : "bull");
	b->unix_path = jobq__strdup(opts->unix_path);
	b->username = jobq__strdup(opts->username);
	b->password = jobq__strdup(opts->password);
	size_t wl =
	    (opts->unix_path ? strlen(opts->unix_path) : strlen(b->host ? b->host : "")) + 16;
	b->where = jobq__malloc(wl);
	if (b->host == NULL || b->prefix == NULL || b->where == NULL ||
	    (opts->unix_path && !b->unix_path) || (opts->username && !b->username) ||
	    (opts->password && !b->password)) {
		rq_free(&b->base);
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	}
	if (b->unix_path)
		snprintf(b->where, wl, "%s", b->unix_path);
	else
		snprintf(b->where, wl, "%s:%d", b->host, b->port);
	int rc = rq_conn_init(b, opts);
	if (rc == 0)
		rc = rq_connect_check(b);
	if (rc == JOBQ_EIO && opts->connect_wait_ms > 0) {
		/* the caller chose to wait for a server that is down (or restarting) */
		int64_t deadline = jobq__mono_ms() + opts->connect_wait_ms;
		int64_t delay = 10;
		while (rc == JOBQ_EIO && jobq__mono_ms() < deadline) {
			int64_t left = deadline - jobq__mono_ms();
			int64_t d = delay / 2 + (int64_t)((unsigned)rand_r(&b->seed) %
			                                  (unsigned)(delay / 2 + 1));
			sleep_real_ms(d < left ? d : left);
			delay = delay * 2 > b->reconnect_max_delay_ms ? b->reconnect_max_delay_ms
			                                              : delay * 2;
			rc = rq_connect_check(b);
		}
		if (rc == JOBQ_EIO)
			rc = jobq_error_set(JOBQ_EIO, "%s (still down after waiting %lld ms)",
			                    jobq_error_message(), (long long)opts->connect_wait_ms);
	}
	if (rc < 0) {
		rq_free(&b->base); /* sets no error: the message stays */
		return rc;
	}
	*out = &b->base;
	return 0;
}
