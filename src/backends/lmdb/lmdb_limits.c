/*
 * LMDB backend: the queue limits (global concurrency, rate limit, rate_limit), kept in the
 * queue record; the rules are the engine's (engine/limits.h). See lmdb_ops.h for what the
 * files of the operations share.
 */
#include "lmdb_prims.h"

typedef struct limits_args {
	const jobq_queue_limits *l;
	unsigned int what;
	int64_t ms, now;
} limits_args;

static int
set_limits_body(lmdb_wctx *c, void *arg) {
	limits_args *a = arg;
	eng_limits_set(&meta(c)->lim, a->l, a->what);
	c->bump_work = 1; /* a limit lowered or removed may let waiters fetch */
	return 0;
}

int
jobq_lmdb__set_limits(jobq_backend_queue *q, const jobq_queue_limits *l, unsigned int what,
                      int64_t now_ms) {
	limits_args a = {.l = l, .what = what, .now = now_ms};
	return jobq_lmdb__op_run(q, set_limits_body, &a);
}

static int
rate_limit_body(lmdb_wctx *c, void *arg) {
	limits_args *a = arg;
	eng_limits_block(&meta(c)->lim, a->ms, a->now);
	return 0;
}

int
jobq_lmdb__rate_limit(jobq_backend_queue *q, int64_t ms, int64_t now_ms) {
	limits_args a = {.ms = ms, .now = now_ms};
	return jobq_lmdb__op_run(q, rate_limit_body, &a);
}

int
jobq_lmdb__get_limits(jobq_queue_limits *out, jobq_backend_queue *q, int64_t now_ms) {
	lmdb_qmeta m;
	int rc = jobq_lmdb__meta_snapshot(&m, q);
	if (rc == 0) {
		eng_limits_get(out, &m.lim, now_ms);
	}
	return rc;
}
