/*
 * Redis backend: the metrics slot, reading BullMQ's `metrics:<kind>` hash and its `:data`
 * list in one script (lua/getMetrics). The counting is in lua/includes/metrics.lua.
 */
#include <stdlib.h>
#include <string.h>

#include "jobq_lua.h"
#include "redis_ops.h"

/* A counter of the hash: a decimal string or nil (0), as Node's parseInt reads it. */
static int64_t
field_i64(const redisReply *r) {
	long long v = 0;
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_INTEGER)
		rq_reply_int(r, &v);
	return (int64_t)v;
}

int
rq_metrics(jobq_metrics **out, jobq_backend_queue *q, jobq_state kind, int64_t start, int64_t end) {
	numbuf n1, n2;
	const char *av[] = {kind == JOBQ_STATE_FAILED ? "failed" : "completed",
	                    rq_fmt_i64(&n1, start), rq_fmt_i64(&n2, end)};
	int rc;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_GETMETRICS, 3, av, NULL);
	if (r == NULL)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 3 ||
	    r->element[1]->type != REDIS_REPLY_ARRAY ||
	    r->element[2]->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(r);
		return jobq_error_set(JOBQ_EBACKEND, "redis metrics: unexpected reply");
	}
	const redisReply *meta = r->element[0], *pts = r->element[1];
	jobq_metrics *m = jobq__calloc(1, sizeof(*m));
	if (m == NULL || (pts->elements > 0 &&
	                  (m->data = jobq__malloc(pts->elements * sizeof(int64_t))) == NULL)) {
		jobq__free(m);
		freeReplyObject(r);
		return jobq_error_set(JOBQ_ENOMEM, "redis metrics: out of memory");
	}
	m->count = field_i64(meta->element[0]);
	m->prev_ts = field_i64(meta->element[1]);
	m->prev_count = field_i64(meta->element[2]);
	for (size_t i = 0; i < pts->elements; i++)
		m->data[i] = field_i64(pts->element[i]); /* as Node's `+point || 0` */
	m->data_len = pts->elements;
	m->points = r->element[2]->integer < 0 ? 0 : (size_t)r->element[2]->integer;
	freeReplyObject(r);
	*out = m;
	return 0;
}
