/*
 * Redis backend: flows (vtable version 5, flow_add and dependencies) over lua/addFlow-16.lua and
 * lua/getDependencies-16.lua, written as BullMQ 6's FlowProducer writes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobq_lua.h"
#include "redis_ops.h"

/* addFlow's fields per job (after the five of the call) */
#define FLOW_FIELDS 12

static const char *const policy_names[] = {"", "fpof", "idof", "rdof", "cpof"};

/* "<prefix>:<queue>" */
static char *
queue_key(const redis_backend *b, const char *queue) {
	size_t n = strlen(b->prefix) + strlen(queue) + 2;
	char *k = jobq__malloc(n);
	if (k != NULL)
		snprintf(k, n, "%s:%s", b->prefix, queue);
	return k;
}

typedef struct flow_args {
	const char **av;
	size_t *al;
	numbuf *nums; /* 5 per job */
	char **opts;  /* per job */
	char **qks;   /* per job, shared by the jobs of one queue */
	char *ext_qk;
	size_t n;
} flow_args;

static void
flow_args_free(flow_args *a) {
	for (size_t i = 0; a->opts != NULL && i < a->n; i++)
		jobq__free(a->opts[i]);
	for (size_t i = 0; a->qks != NULL && i < a->n; i++)
		if (i == 0 || a->qks[i] != a->qks[i - 1])
			jobq__free(a->qks[i]);
	jobq__free(a->opts);
	jobq__free(a->qks);
	jobq__free(a->nums);
	jobq__free(a->al);
	jobq__free(a->av);
	jobq__free(a->ext_qk);
}

static int
flow_args_build(flow_args *a, jobq_backend_queue *q, const jobq_flow_job *jobs, size_t n,
                const jobq_flow_parent *parent, numbuf *call_nums, int64_t now_ms) {
	size_t argc = 4 + n * FLOW_FIELDS;
	a->n = n;
	a->av = jobq__malloc(argc * sizeof(*a->av));
	a->al = jobq__malloc(argc * sizeof(*a->al));
	a->nums = jobq__malloc(n * 5 * sizeof(*a->nums));
	a->opts = jobq__calloc(n, sizeof(*a->opts));
	a->qks = jobq__calloc(n, sizeof(*a->qks));
	if (a->av == NULL || a->al == NULL || a->nums == NULL || a->opts == NULL || a->qks == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	if (parent != NULL && (a->ext_qk = queue_key(q->b, parent->queue)) == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	size_t c = 0;
#define PUT(s, l)                                                                                  \
	do {                                                                                       \
		a->av[c] = (s);                                                                    \
		a->al[c++] = (l);                                                                  \
	} while (0)
#define PUTS(s)                                                                                    \
	do {                                                                                       \
		const char *s_ = (s);                                                              \
		PUT(s_, strlen(s_));                                                               \
	} while (0)
	PUTS(rq_fmt_i64(&call_nums[0], (int64_t)n));
	PUTS(rq_fmt_i64(&call_nums[1], now_ms));
	PUTS(a->ext_qk ? a->ext_qk : "");
	PUTS(parent ? parent->id : "");
	for (size_t i = 0; i < n; i++) {
		const jobq_flow_job *j = &jobs[i];
		const jobq_job_options *o = j->req.opts;
		int rc = rq_check_size(q->b, j->req.len, "job data");
		if (rc < 0)
			return jobq_error_set(rc, "flow node %zu: %s", i + 1, jobq_error_message());
		if ((rc = rq_opts_to_json(&a->opts[i], o)) < 0)
			return rc;
		if (i > 0 && strcmp(j->queue, jobs[i - 1].queue) == 0)
			a->qks[i] = a->qks[i - 1];
		else if ((a->qks[i] = queue_key(q->b, j->queue)) == NULL)
			return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
		numbuf *nb = &a->nums[i * 5];
		PUTS(a->qks[i]);
		PUTS(o->job_id ? o->job_id : "");
		PUTS(j->req.name ? j->req.name : "");
		if (j->req.len > 0)
			PUT((const char *)j->req.data, j->req.len);
		else
			PUT("{}", 2);
		PUTS(a->opts[i]);
		PUTS(rq_fmt_i64(&nb[0], o->timestamp));
		PUTS(rq_fmt_i64(&nb[1], o->delay_ms > 0 ? o->delay_ms : 0));
		PUTS(rq_fmt_i64(&nb[2], o->priority));
		PUTS(o->lifo ? "1" : "0");
		PUTS(rq_fmt_i64(&nb[3], j->parent == SIZE_MAX ? 0 : (int64_t)j->parent + 1));
		PUTS(policy_names[j->policy]);
		PUTS(rq_fmt_i64(&nb[4], (int64_t)j->nchildren));
	}
#undef PUTS
#undef PUT
	return (int)c;
}

/* The error of a refused addFlow: {code, job number}. */
static int
flow_refused(long long code, long long i, const jobq_flow_job *jobs, size_t n,
             const jobq_flow_parent *parent) {
	const jobq_flow_job *j = i >= 1 && (size_t)i <= n ? &jobs[i - 1] : NULL;
	const char *id = j && j->req.opts->job_id ? j->req.opts->job_id : "";
	switch (code) {
	case -5:
		return jobq_error_set(JOBQ_ENOTFOUND,
		                      "flow add: the parent job '%s' of queue '%s' does not exist",
		                      parent ? parent->id : "", parent ? parent->queue : "");
	case -7:
		return jobq_error_set(
		    JOBQ_EEXISTS,
		    "flow add: node %lld: job '%s' of queue '%s' already belongs to "
		    "another parent, which exists (BullMQ -7)",
		    i, id, j ? j->queue : "");
	case -10:
		return jobq_error_set(
		    JOBQ_EEXISTS,
		    "flow add: node %lld: job '%s' of queue '%s' exists already and "
		    "cannot become a parent of new children",
		    i, id, j ? j->queue : "");
	default:
		return jobq_error_set(JOBQ_EBACKEND, "redis addFlow: status %lld", code);
	}
}

int
rq_flow_add(jobq_job_id *ids, jobq_backend_queue *q, const jobq_flow_job *jobs, size_t n,
            const jobq_flow_parent *parent, int64_t now_ms) {
	flow_args a = {0};
	numbuf call_nums[2];
	int rc = flow_args_build(&a, q, jobs, n, parent, call_nums, now_ms);
	if (rc >= 0) {
		int argc = rc;
		redisReply *r = rq_script(&rc, q, JOBQ_LUA_ADDFLOW, argc, a.av, a.al);
		if (r != NULL) {
			rc = 0;
			if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
			    r->element[0]->type == REDIS_REPLY_INTEGER &&
			    r->element[1]->type == REDIS_REPLY_INTEGER) {
				rc = flow_refused(r->element[0]->integer, r->element[1]->integer,
				                  jobs, n, parent);
			} else if (r->type != REDIS_REPLY_ARRAY || r->elements != n + 1) {
				rc = jobq_error_set(JOBQ_EBACKEND,
				                    "redis addFlow: unexpected reply");
			} else {
				for (size_t i = 0; i < n && rc == 0; i++) {
					const redisReply *e = r->element[i + 1];
					if (e->type != REDIS_REPLY_STRING || e->len > JOBQ_ID_MAX)
						rc = jobq_error_set(
						    JOBQ_EBACKEND,
						    "redis addFlow: bad id in the reply");
					else
						memcpy(ids[i].str, e->str, e->len + 1);
				}
			}
			freeReplyObject(r);
		}
	}
	flow_args_free(&a);
	return rc;
}

/* --- dependencies ------------------------------------------------------------------------ */

/* Appends one child key ("<prefix>:<queue>:<id>") to list `which`. A key under this store's
 * prefix gives its queue (no ':' in queue names) and id; another key only its last part. */
static int
dep_append(jobq_dependencies *d, int which, const redis_backend *b, const redisReply *key,
           const redisReply *value) {
	if (key->type != REDIS_REPLY_STRING)
		return jobq_error_set(JOBQ_EBACKEND, "redis dependencies: unexpected reply");
	char *k = jobq__malloc(key->len + 1);
	if (k == NULL)
		return JOBQ_ENOMEM;
	memcpy(k, key->str, key->len);
	k[key->len] = '\0';
	char *queue = NULL, *id = NULL;
	size_t pl = strlen(b->prefix);
	char *rest = strncmp(k, b->prefix, pl) == 0 && k[pl] == ':' ? k + pl + 1 : NULL;
	char *colon = rest ? strchr(rest, ':') : NULL;
	char *qcopy = NULL;
	if (colon != NULL) {
		qcopy = jobq__malloc((size_t)(colon - rest) + 1);
		if (qcopy == NULL) {
			jobq__free(k);
			return JOBQ_ENOMEM;
		}
		memcpy(qcopy, rest, (size_t)(colon - rest));
		qcopy[colon - rest] = '\0';
		queue = qcopy;
		id = colon + 1;
	} else {
		char *last = strrchr(k, ':');
		id = last ? last + 1 : k;
	}
	const char *v = NULL;
	size_t vl = 0;
	if (value != NULL && value->type == REDIS_REPLY_STRING) {
		v = value->str;
		vl = value->len;
	}
	int rc = jobq_dependencies__append(d, which, k, queue, id, v, vl);
	jobq__free(qcopy);
	jobq__free(k);
	return rc;
}

int
rq_dependencies(jobq_dependencies *out, jobq_backend_queue *q, const char *id) {
	const char *av[] = {id};
	size_t al[] = {strlen(id)};
	int rc;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_GETDEPENDENCIES, 1, av, al);
	if (r == NULL)
		return rc;
	rc = 0;
	if (r->type == REDIS_REPLY_INTEGER) {
		rc = jobq_error_set(JOBQ_ENOTFOUND, "get dependencies: no job '%s' in queue '%s'",
		                    id, q->name);
	} else if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
		rc = jobq_error_set(JOBQ_EBACKEND, "redis getDependencies: unexpected reply");
	} else {
		static const int kinds[4] = {JOBQ_DEP_PROCESSED, JOBQ_DEP_PENDING, JOBQ_DEP_IGNORED,
		                             JOBQ_DEP_FAILED};
		for (size_t k = 0; k < 4 && rc == 0; k++) {
			const redisReply *list = r->element[k];
			int pairs = kinds[k] == JOBQ_DEP_PROCESSED || kinds[k] == JOBQ_DEP_IGNORED;
			if (list->type != REDIS_REPLY_ARRAY) {
				rc = jobq_error_set(JOBQ_EBACKEND,
				                    "redis getDependencies: unexpected reply");
				break;
			}
			for (size_t i = 0; i + (size_t)pairs < list->elements && rc == 0;
			     i += 1 + (size_t)pairs)
				rc = dep_append(out, kinds[k], q->b, list->element[i],
				                pairs ? list->element[i + 1] : NULL);
		}
	}
	freeReplyObject(r);
	return rc;
}
