/*
 * Redis backend: the queue limits, where BullMQ 6 keeps them (lua/queueLimits-16.lua): meta
 * fields `concurrency`, `max`, `duration` and the `limiter` key.
 */
#include <stdlib.h>
#include <string.h>

#include "jobq_lua.h"
#include "redis_ops.h"

int
rq_set_limits(jobq_backend_queue *q, const jobq_queue_limits *l, unsigned int what,
              int64_t now_ms) {
	(void)now_ms;
	numbuf n1, n2, n3, n4;
	const char *av[] = {"set", rq_fmt_i64(&n1, what), rq_fmt_i64(&n2, l->concurrency),
	                    rq_fmt_i64(&n3, l->max), rq_fmt_i64(&n4, l->duration_ms)};
	return rq_script_int(NULL, q, JOBQ_LUA_QUEUELIMITS, 5, av, NULL, "set limits", NULL);
}

int
rq_rate_limit(jobq_backend_queue *q, int64_t ms, int64_t now_ms) {
	(void)now_ms;
	numbuf n1;
	const char *av[] = {"block", rq_fmt_i64(&n1, ms)};
	return rq_script_int(NULL, q, JOBQ_LUA_QUEUELIMITS, 2, av, NULL, "rate limit", NULL);
}

/* A meta field Node wrote: absent (0), or a positive integer; anything else is refused. */
static int
meta_number(int64_t *out, const redisReply *r, const char *field, const char *queue) {
	*out = 0;
	if (r->type == REDIS_REPLY_NIL)
		return 0;
	char *end = NULL;
	long long v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, &end, 10) : 0;
	if (end == NULL || end == r->str || *end != '\0' || v <= 0)
		return jobq_error_set(JOBQ_EBACKEND,
		                      "redis: queue %s: meta field '%s' holds '%s', not a positive "
		                      "integer",
		                      queue, field, r->type == REDIS_REPLY_STRING ? r->str : "?");
	*out = v;
	return 0;
}

int
rq_get_limits(jobq_queue_limits *out, jobq_backend_queue *q, int64_t now_ms) {
	(void)now_ms;
	const char *av[] = {"get"};
	int rc;
	redisReply *r = rq_script(&rc, q, JOBQ_LUA_QUEUELIMITS, 1, av, NULL);
	if (r == NULL)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
		freeReplyObject(r);
		return jobq_error_set(JOBQ_EBACKEND, "redis get limits: unexpected reply");
	}
	memset(out, 0, sizeof(*out));
	rc = meta_number(&out->concurrency, r->element[0], "concurrency", q->name);
	if (rc == 0)
		rc = meta_number(&out->max, r->element[1], "max", q->name);
	if (rc == 0)
		rc = meta_number(&out->duration_ms, r->element[2], "duration", q->name);
	long long used = 0, left = 0;
	if (r->element[3]->type == REDIS_REPLY_STRING)
		used = strtoll(r->element[3]->str, NULL, 10);
	rq_reply_int(r->element[4], &left);
	if (left > 0) {
		out->window_left_ms = left;
		out->window_used = used;
	}
	freeReplyObject(r);
	return rc;
}
