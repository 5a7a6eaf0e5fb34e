/*
 * The memory backend's queue limits: global concurrency and rate limit, and rate_limit
 * (the rules are the engine's, engine/limits.h).
 */
#include "backends/memory/memory_prims.h"

int
jobq_mem__set_limits(jobq_backend_queue *q, const jobq_queue_limits *l, unsigned int what,
                     int64_t now) {
	(void)now;
	pthread_mutex_lock(&q->mu);
	eng_limits_set(&q->lim, l, what);
	engp_signal_work(q, 1); /* a limit lowered or removed may let waiters fetch */
	pthread_mutex_unlock(&q->mu);
	return 0;
}

int
jobq_mem__get_limits(jobq_queue_limits *out, jobq_backend_queue *q, int64_t now) {
	pthread_mutex_lock(&q->mu);
	eng_limits_get(out, &q->lim, now);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

int
jobq_mem__rate_limit(jobq_backend_queue *q, int64_t ms, int64_t now) {
	pthread_mutex_lock(&q->mu);
	eng_limits_block(&q->lim, ms, now);
	pthread_mutex_unlock(&q->mu);
	return 0;
}
