/*
 * Queue limits (include/jobq/limits.h): the global rate limit and concurrency set, read and
 * removed; the rate window and the global concurrency holding fetches back; BullMQ's rule
 * combining a fetcher's own limiter with the global limit; rate_limit; bad input refused
 * with nothing changed. Windows follow the manual clock on memory and LMDB and the server's
 * clock on Redis (the cases use windows long enough not to end by themselves there).
 */
#include <stdio.h>
#include <string.h>

#include "conf.h"

#define LONG_WINDOW 600000 /* ms: never ends by itself during a case */

/* Whether rate windows follow the manual clock (memory, LMDB: JOBQ_CAP_LOCK_CLOCK; Redis
 * keeps them on the server's clock, as its locks). */
static int
manual_windows(const conf *c) {
	return c->clock != NULL && conf_has(c, JOBQ_CAP_LOCK_CLOCK);
}

static jobq_queue_limits
limits(conf *c) {
	jobq_queue_limits l;
	memset(&l, 0xff, sizeof(l));
	assert_int_equal(jobq_queue_get_limits(&l, c->q), 0);
	return l;
}

/* Set, read, replace and remove both limits; a fresh queue has none. */
static void
limits_set_get_remove(void **state) {
	conf *c = conf_begin(state);
	jobq_queue_limits l = limits(c);

	assert_int_equal(l.concurrency, 0);
	assert_int_equal(l.max, 0);
	assert_int_equal(l.duration_ms, 0);
	assert_int_equal(l.window_used, 0);
	assert_int_equal(jobq_queue_set_rate_limit(c->q, 3, 1000), 0);
	assert_int_equal(jobq_queue_set_concurrency(c->q, 2), 0);
	l = limits(c);
	assert_int_equal(l.max, 3);
	assert_int_equal(l.duration_ms, 1000);
	assert_int_equal(l.concurrency, 2);
	assert_int_equal(jobq_queue_set_rate_limit(c->q, 7, 250), 0);
	l = limits(c);
	assert_int_equal(l.max, 7);
	assert_int_equal(l.duration_ms, 250);
	assert_int_equal(jobq_queue_remove_rate_limit(c->q), 0);
	l = limits(c);
	assert_int_equal(l.max, 0);
	assert_int_equal(l.duration_ms, 0);
	assert_int_equal(l.concurrency, 2);
	assert_int_equal(jobq_queue_remove_concurrency(c->q), 0);
	assert_int_equal(jobq_queue_remove_concurrency(c->q), 0); /* none: not an error */
	l = limits(c);
	assert_int_equal(l.concurrency, 0);
}

/* Zero, negative and too large values are refused, naming the value; nothing changes. */
static void
limits_bad_input(void **state) {
	conf *c = conf_begin(state);
	static const int64_t bad[] = {0, -1, -1000, (int64_t)JOBQ_LIMIT_MAX + 1};
	jobq_queue_limits l;

	assert_int_equal(jobq_queue_set_rate_limit(c->q, 5, 2000), 0);
	assert_int_equal(jobq_queue_set_concurrency(c->q, 4), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		conf_assert_error(jobq_queue_set_rate_limit(c->q, bad[i], 1000), JOBQ_EINVAL);
		assert_non_null(strstr(jobq_error_message(), "max"));
		conf_assert_error(jobq_queue_set_rate_limit(c->q, 1, bad[i]), JOBQ_EINVAL);
		assert_non_null(strstr(jobq_error_message(), "duration"));
		conf_assert_error(jobq_queue_set_concurrency(c->q, bad[i]), JOBQ_EINVAL);
		assert_non_null(strstr(jobq_error_message(), "concurrency"));
		conf_assert_error(jobq_queue_rate_limit(c->q, bad[i]), JOBQ_EINVAL);
	}
	conf_assert_error(jobq_queue_get_limits(NULL, c->q), JOBQ_EINVAL);
	conf_assert_error(jobq_queue_set_concurrency(NULL, 1), JOBQ_EINVAL);
	l = limits(c);
	assert_int_equal(l.max, 5);
	assert_int_equal(l.duration_ms, 2000);
	assert_int_equal(l.concurrency, 4);
	assert_int_equal(l.window_used, 0);
}

/* At most `max` jobs start per window; the fetch after that finds nothing until it ends. */
static void
limits_rate_window(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id ids[4];
	jobq_queue_limits l;

	for (int i = 0; i < 4; i++)
		conf_add(c, &ids[i], "n", NULL, NULL);
	assert_int_equal(jobq_queue_set_rate_limit(c->q, 2, manual_windows(c) ? 1000 : LONG_WINDOW),
	                 0);
	conf_fetch_complete(c, ids[0].str, NULL);
	conf_fetch_complete(c, ids[1].str, NULL);
	conf_fetch_none(c);
	l = limits(c);
	assert_int_equal(l.window_used, 2);
	assert_true(l.window_left_ms > 0);
	conf_assert_counts(c, 2, 0, 0, 0, 2, 0);
	if (!manual_windows(c))
		return; /* (the window on the server's clock does not end during the case) */
	conf_advance(c, 999);
	conf_fetch_none(c);
	conf_advance(c, 1);
	conf_fetch_complete(c, ids[2].str, NULL);
	l = limits(c);
	assert_int_equal(l.window_used, 1);
	assert_int_equal(l.window_left_ms, 1000);
	/* the second start of the new window */
	conf_fetch_complete(c, ids[3].str, NULL);
}

/* A removed rate limit stops counting: the full window holds nobody back any more. */
static void
limits_rate_removed(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id a, b;

	conf_add(c, &a, "n", NULL, NULL);
	conf_add(c, &b, "n", NULL, NULL);
	assert_int_equal(jobq_queue_set_rate_limit(c->q, 1, LONG_WINDOW), 0);
	conf_fetch_complete(c, a.str, NULL);
	conf_fetch_none(c);
	assert_int_equal(jobq_queue_remove_rate_limit(c->q), 0);
	conf_fetch_complete(c, b.str, NULL);
}

/* At most `concurrency` jobs are active; one finishing makes room. */
static void
limits_global_concurrency(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id ids[3];
	jobq_job *j1, *j2, *j3;

	for (int i = 0; i < 3; i++)
		conf_add(c, &ids[i], "n", NULL, NULL);
	assert_int_equal(jobq_queue_set_concurrency(c->q, 2), 0);
	j1 = conf_fetch(c, ids[0].str, CONF_LOCK_MS);
	j2 = conf_fetch(c, ids[1].str, CONF_LOCK_MS);
	conf_fetch_none(c);
	conf_assert_counts(c, 1, 2, 0, 0, 0, 0);
	assert_int_equal(jobq_job_complete(j1, NULL), 0);
	j3 = conf_fetch(c, ids[2].str, CONF_LOCK_MS);
	assert_int_equal(jobq_job_fail(j2, "x", JOBQ_FAIL_UNRECOVERABLE), JOBQ_STATE_FAILED);
	assert_int_equal(jobq_job_complete(j3, NULL), 0);
	conf_assert_counts(c, 0, 0, 0, 0, 2, 1);
	jobq_job_free(j1);
	jobq_job_free(j2);
	jobq_job_free(j3);
}

/* rate_limit fills the window for the given time: a queue with a rate limit starts nothing
 * until it ends; as in BullMQ, a fetcher with no rate limit in force is not held back. */
static void
limits_rate_limit_call(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id a, b;
	jobq_queue_limits l;

	conf_add(c, &a, "n", NULL, NULL);
	conf_add(c, &b, "n", NULL, NULL);
	assert_int_equal(jobq_queue_rate_limit(c->q, manual_windows(c) ? 500 : LONG_WINDOW), 0);
	l = limits(c);
	assert_int_equal(l.window_used, JOBQ_RATE_LIMITED_COUNT);
	assert_true(l.window_left_ms > 0 && l.window_left_ms <= LONG_WINDOW);
	conf_fetch_complete(c, a.str, NULL); /* no rate limit in force */
	assert_int_equal(jobq_queue_set_rate_limit(c->q, 100, 1000), 0);
	conf_fetch_none(c);
	if (!manual_windows(c))
		return;
	conf_advance(c, 500);
	conf_fetch_complete(c, b.str, NULL);
}

/* --- the fetch slots with a fetcher's own limiter (BullMQ's worker `limiter`) ------------- */

typedef struct lv {
	const jobq_test_target *target;
	jobq_backend *b;
	void *ctx;
	jobq_backend_queue *q;
	int64_t now;
} lv;

static void
lv_open(conf *c, lv *v) {
	memset(v, 0, sizeof(*v));
	v->target = c->target;
	v->now = CONF_T0;
	assert_int_equal(c->target->setup(&v->b, &v->ctx), 0);
	assert_int_equal(v->b->queue_open(&v->q, v->b, "lv"), 0);
}

static void
lv_close(lv *v) {
	v->b->queue_close(v->q);
	v->b->free(v->b);
	v->target->teardown(v->ctx);
}

static void
lv_add(lv *v, size_t n) {
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.timestamp = v->now;
	for (size_t i = 0; i < n; i++) {
		jobq_job_id id;
		int outcome = -1;
		jobq_add_request r = {"n", "{}", 2, &o};
		assert_int_equal(v->b->add(&id, &outcome, v->q, &r, 1, v->now), 0);
		assert_int_equal(outcome, JOBQ_ADD_CREATED);
	}
}

/* Fetches with limiter max/duration (0: none): 1 when a job came (completed at once), 0
 * when none did; info->rate_limit_ms in *wait. */
static int
lv_fetch(lv *v, int64_t max, int64_t duration, int64_t *wait) {
	jobq_fetch_info info = {0};
	jobq_job *j = NULL;
	jobq_keep all = {JOBQ_KEEP_ALL, 0, 0};
	info.limiter_max = max;
	info.limiter_duration_ms = duration;
	info.rate_limit_ms = -1;
	int rc = v->b->fetch(&j, &info, v->q, "tok", CONF_LOCK_MS, v->now);
	*wait = info.rate_limit_ms;
	if (rc == JOBQ_ENOJOB)
		return 0;
	assert_int_equal(rc, 0);
	assert_int_equal(v->b->complete(v->q, j->id, "tok", "null", &all, v->now), 0);
	jobq_job_free(j);
	return 1;
}

/*
 * BullMQ's rule: the fetcher's limiter counts in the queue's window when the queue has no
 * `max`; the queue's `max` overrides the fetcher's; the fetcher's `duration` overrides the
 * queue's. A fetch stopped by the limiter reports the ms left of the window.
 */
static void
limits_worker_limiter_rule(void **state) {
	conf *c = conf_begin(state);
	lv v;
	int64_t wait = 0;
	jobq_queue_limits l;

	lv_open(c, &v);
	lv_add(&v, 8);
	assert_int_equal(lv_fetch(&v, 1, LONG_WINDOW, &wait), 1);
	assert_int_equal(wait, 0);
	assert_int_equal(lv_fetch(&v, 1, LONG_WINDOW, &wait), 0);
	assert_true(wait > 0 && wait <= LONG_WINDOW);
	assert_int_equal(lv_fetch(&v, 0, 0, &wait), 1); /* no limiter: not held back */
	/* the queue's max (3) overrides the fetcher's (1): two more start in this window */
	l = (jobq_queue_limits){.max = 3, .duration_ms = 1000};
	assert_int_equal(v.b->set_limits(v.q, &l, JOBQ_LIMITS_RATE, v.now), 0);
	assert_int_equal(lv_fetch(&v, 1, LONG_WINDOW, &wait), 1);
	assert_int_equal(lv_fetch(&v, 1, LONG_WINDOW, &wait), 1);
	assert_int_equal(lv_fetch(&v, 1, LONG_WINDOW, &wait), 0);
	assert_true(wait > 0);
	assert_int_equal(v.b->get_limits(&l, v.q, v.now), 0);
	assert_int_equal(l.window_used, 3);
	if (manual_windows(c)) {
		/* the window was opened with the fetcher's duration, not the queue's 1000 ms */
		assert_int_equal(l.window_left_ms, LONG_WINDOW);
		v.now += LONG_WINDOW;
		/* a fresh window, opened by a fetcher without a duration: the queue's */
		assert_int_equal(lv_fetch(&v, 0, 0, &wait), 1);
		assert_int_equal(v.b->get_limits(&l, v.q, v.now), 0);
		assert_int_equal(l.window_used, 1);
		assert_int_equal(l.window_left_ms, 1000);
	}
	lv_close(&v);
}

/* Batched fetches (complete_fetch) stop at the rate limit and at the global concurrency. */
static void
limits_batch_fetch(void **state) {
	conf *c = conf_begin(state);
	lv v;
	jobq_job *jobs[8];
	const char *tokens[8] = {"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"};
	jobq_fetch_info info = {0};
	jobq_queue_limits l = {.concurrency = 3};

	lv_open(c, &v);
	if (v.b->complete_fetch == NULL) {
		lv_close(&v);
		skip();
	}
	lv_add(&v, 8);
	info.limiter_max = 2;
	info.limiter_duration_ms = LONG_WINDOW;
	assert_int_equal(
	    v.b->complete_fetch(jobs, &info, v.q, NULL, 0, tokens, 8, CONF_LOCK_MS, v.now), 2);
	assert_true(info.rate_limit_ms > 0);
	for (int i = 0; i < 2; i++)
		jobq_job_free(jobs[i]);
	assert_int_equal(v.b->set_limits(v.q, &l, JOBQ_LIMITS_CONCURRENCY, v.now), 0);
	info.limiter_max = 0;
	info.limiter_duration_ms = 0;
	assert_int_equal(
	    v.b->complete_fetch(jobs, &info, v.q, NULL, 0, tokens + 2, 6, CONF_LOCK_MS, v.now),
	    1); /* 2 active already, room for 1 */
	assert_int_equal(info.rate_limit_ms, 0);
	jobq_job_free(jobs[0]);
	lv_close(&v);
}

/* --- workers ------------------------------------------------------------------------------ */

static int
ok_handler(jobq_job *job, void *payload) {
	(void)job;
	(void)payload;
	return 0;
}

static int
completed_at_least(const jobq_counts *n, void *arg) {
	return n->completed >= *(const uint64_t *)arg;
}

static jobq_worker *
limited_worker(conf *c, jobq_process_fn fn, unsigned int conc, int64_t max, int64_t duration) {
	jobq_worker_options wo = conf_wopts();
	jobq_worker *w = NULL;

	wo.concurrency = conc;
	wo.limiter.max = max;
	wo.limiter.duration_ms = duration;
	assert_int_equal(jobq_worker_new(&w, c->q, fn, NULL, &wo), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	return w;
}

/*
 * A worker's limiter: `max` jobs per window (4 handler threads notwithstanding); the others
 * wait for the window to end (the manual clock's advance), and start then.
 */
static void
limits_worker_limiter(void **state) {
	conf *c = conf_begin(state);
	int manual = manual_windows(c);
	jobq_worker *w;
	jobq_counts n;
	jobq_queue_limits l;

	for (int i = 0; i < 6; i++)
		conf_add(c, NULL, "n", NULL, NULL);
	w = limited_worker(c, ok_handler, 4, 2, manual ? 1000 : LONG_WINDOW);
	assert_true(conf_wait_counts(c, completed_at_least, &(uint64_t){2}, conf_ms(10000)));
	l = limits(c);
	assert_int_equal(l.window_used, 2);
	n = conf_counts(c);
	assert_int_equal(n.completed, 2);
	assert_int_equal(n.waiting, 4);
	if (manual) {
		conf_advance(c, 1000);
		assert_true(
		    conf_wait_counts(c, completed_at_least, &(uint64_t){4}, conf_ms(10000)));
		assert_int_equal(conf_counts(c).waiting, 2);
		conf_advance(c, 1000);
		assert_true(
		    conf_wait_counts(c, completed_at_least, &(uint64_t){6}, conf_ms(10000)));
	}
	assert_int_equal(jobq_worker_close(w, conf_ms(10000)), 0); /* a limited wait ends too */
	jobq_worker_free(w);
}

/* A limiter needs both values, each 1..JOBQ_LIMIT_MAX: refused, naming the field. */
static void
limits_worker_limiter_bad(void **state) {
	conf *c = conf_begin(state);
	static const int64_t bad[][2] = {
	    {0, 1000}, {2, 0}, {-1, 1000}, {2, -5}, {(int64_t)JOBQ_LIMIT_MAX + 1, 10}};
	jobq_worker_options wo = conf_wopts();
	jobq_worker *w = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wo.limiter.max = bad[i][0];
		wo.limiter.duration_ms = bad[i][1];
		conf_assert_error(jobq_worker_new(&w, c->q, ok_handler, NULL, &wo), JOBQ_EINVAL);
		assert_null(w);
		assert_non_null(strstr(jobq_error_message(), "limiter."));
	}
}

/* First run of each job: rate-limits the queue for 5000 ms; later runs complete. */
static int
backoff_handler(jobq_job *job, void *payload) {
	(void)payload;
	if (jobq_job_attempts_started(job) == 1)
		return jobq_job_rate_limit(job, 5000);
	return 0;
}

/* Waits (real time, bounded) until job `id` is back in waiting after one started attempt. */
static int
wait_given_back(conf *c, const char *id) {
	int64_t end = conf_mono_ms() + conf_ms(10000);
	while (conf_mono_ms() < end) {
		jobq_job *job = NULL;
		int back = 0;
		if (jobq_queue_get_job(&job, c->q, id) == 0)
			back = jobq_job_state(job) == JOBQ_STATE_WAITING &&
			       jobq_job_attempts_started(job) == 1;
		jobq_job_free(job);
		if (back)
			return 1;
		conf_poll_pause();
	}
	return 0;
}

/*
 * A handler's jobq_job_rate_limit: the job goes back to the front of waiting without using an
 * attempt, the queue's window is full for the time given, and the worker takes nothing
 * until it is over (the manual clock's advance); the job then runs again.
 */
static void
limits_handler_rate_limit(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	jobq_worker *w;
	jobq_job *job;
	jobq_queue_limits l;
	conf_events ev;

	conf_add(c, &id, "n", NULL, NULL);
	/* one thread: another would be free to take the job back as it is given back (a worker
	 * without a rate limit in force), as in BullMQ */
	w = limited_worker(c, backoff_handler, 1, 0, 0);
	assert_true(wait_given_back(c, id.str));
	job = conf_get(c, id.str);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_WAITING);
	assert_int_equal(jobq_job_attempts_made(job), 0);
	assert_int_equal(jobq_job_attempts_started(job), 1);
	assert_null(jobq_job_failed_reason(job));
	jobq_job_free(job);
	l = limits(c);
	assert_int_equal(l.window_used, JOBQ_RATE_LIMITED_COUNT);
	if (c->clock != NULL) {
		conf_advance(c, 5000); /* the worker's wait follows the store's clock */
		assert_true(
		    conf_wait_counts(c, completed_at_least, &(uint64_t){1}, conf_ms(10000)));
		job = conf_get(c, id.str);
		assert_int_equal(jobq_job_attempts_made(job), 1);
		assert_int_equal(jobq_job_attempts_started(job), 2);
		jobq_job_free(job);
	}
	assert_int_equal(jobq_worker_close(w, conf_ms(10000)), 0);
	jobq_worker_free(w);
	conf_events_load(c, &ev);
	assert_true(conf_events_find(&ev, 0, "failed", id.str) < 0);
	conf_events_free(&ev);
}

/* jobq_job_rate_limit refuses a job no worker lent and a bad time. */
static void
limits_job_rate_limit_bad(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	jobq_job *job;

	conf_add(c, &id, "n", NULL, NULL);
	job = conf_get(c, id.str);
	conf_assert_error(jobq_job_rate_limit(job, 1000), JOBQ_EINVAL);
	conf_assert_error(jobq_job_rate_limit(NULL, 1000), JOBQ_EINVAL);
	jobq_job_free(job);
	job = conf_fetch(c, id.str, CONF_LOCK_MS);
	conf_assert_error(jobq_job_rate_limit(job, 0), JOBQ_EINVAL);
	conf_assert_error(jobq_job_rate_limit(job, -5), JOBQ_EINVAL);
	assert_int_equal(limits(c).window_used, 0);
	assert_int_equal(jobq_job_complete(job, NULL), 0);
	jobq_job_free(job);
}

static const struct CMUnitTest cases[] = {
    CONF_CASE(limits_set_get_remove),      CONF_CASE(limits_bad_input),
    CONF_CASE(limits_rate_window),         CONF_CASE(limits_rate_removed),
    CONF_CASE(limits_global_concurrency),  CONF_CASE(limits_rate_limit_call),
    CONF_CASE(limits_worker_limiter_rule), CONF_CASE(limits_batch_fetch),
    CONF_CASE(limits_worker_limiter),      CONF_CASE(limits_worker_limiter_bad),
    CONF_CASE(limits_handler_rate_limit),  CONF_CASE(limits_job_rate_limit_bad),
};
CONF_TABLE(conf_limits_cases, cases);
