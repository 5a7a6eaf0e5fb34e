/*
 * Conformance: BullMQ's per-minute metrics (jobq/metrics.h). Finishing a job with a worker's
 * metrics_max_data_points counts it as BullMQ 6.7.0's finish script does; the manual clock
 * drives the minutes. The finishing slots are called on the backend itself with the metrics
 * a worker would pass (complete_fetch, fail); one case goes through a worker.
 */
#include <string.h>

#include "conf.h"

#define MINUTE 60000

typedef struct mctx {
	conf *c;
	jobq_backend *b;
	jobq_backend_queue *bq;
} mctx;

static mctx
mopen(conf *c) {
	mctx m = {c, c->backend, NULL};
	CONF_NEED_DUE_CLOCK(c);
	assert_int_equal(m.b->queue_open(&m.bq, m.b, CONF_QUEUE), 0);
	return m;
}

static void
mclose(mctx *m) {
	m->b->queue_close(m->bq);
}

/* Adds, fetches and completes one job as a worker keeping `max` points would (0: none). */
static void
complete_one(mctx *m, uint32_t max) {
	jobq_job_id id;
	conf_add(m->c, &id, "m", "{}", NULL);
	jobq_job *j = conf_fetch(m->c, id.str, CONF_LOCK_MS);
	jobq_completion d = {id.str, jobq_job_token(j), "1", {JOBQ_KEEP_ALL, -1, -1}, 0, NULL, max};
	assert_int_equal(
	    m->b->complete_fetch(NULL, NULL, m->bq, &d, 1, NULL, 0, CONF_LOCK_MS, conf_now(m->c)),
	    0);
	assert_int_equal(d.rc, 0);
	jobq_job_free(j);
}

/* Fails an attempt of fetched job `j`: for good, or back to waiting (`retry`). */
static void
fail_one(mctx *m, jobq_job *j, int retry, uint32_t max) {
	jobq_failure f = {"no", NULL, retry ? conf_now(m->c) : -1, {JOBQ_KEEP_ALL, -1, -1}, 2,
	                  max,  0};
	assert_int_equal(
	    (m->b->fail)(m->bq, jobq_job_id_of(j), jobq_job_token(j), &f, conf_now(m->c)), 0);
}

/* Reads the metrics of `kind` and checks them: counters, then `n` points newest first. */
static void
expect(conf *c, jobq_state kind, int64_t count, int64_t prev_ts, int64_t prev_count, size_t n,
       const int64_t *pts) {
	jobq_metrics *m = NULL;
	assert_int_equal(jobq_queue_metrics(&m, c->q, kind, 0, -1), 0);
	assert_int_equal(m->count, count);
	assert_int_equal(m->prev_ts, prev_ts);
	assert_int_equal(m->prev_count, prev_count);
	assert_int_equal(m->points, n);
	assert_int_equal(m->data_len, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(m->data[i], pts[i]);
	jobq_metrics_free(m);
}

/* The minutes: the first finish starts the clock, a later minute closes the previous one,
 * empty minutes are zeros, at most max points are kept (the oldest go). */
static void
metrics_minutes(void **state) {
	conf *c = conf_begin(state);
	mctx m = mopen(c);
	int64_t t0 = conf_now(c);
	expect(c, JOBQ_STATE_COMPLETED, 0, 0, 0, 0, NULL);
	complete_one(&m, 4);
	expect(c, JOBQ_STATE_COMPLETED, 1, t0, 0, 0, NULL);
	for (int i = 0; i < 2; i++) { /* the same minute: counted, no point */
		conf_advance(c, 5000);
		complete_one(&m, 4);
	}
	expect(c, JOBQ_STATE_COMPLETED, 3, t0, 0, 0, NULL);
	conf_advance(c, MINUTE);
	int64_t t1 = conf_now(c);
	complete_one(&m, 4); /* closes t0's minute: 3 jobs */
	expect(c, JOBQ_STATE_COMPLETED, 4, t1, 3, 1, (const int64_t[]){3});
	conf_advance(c, 3 * MINUTE);
	int64_t t2 = conf_now(c);
	complete_one(&m, 4); /* t1's minute had 1, then two minutes without a point */
	expect(c, JOBQ_STATE_COMPLETED, 5, t2, 4, 4, (const int64_t[]){0, 0, 1, 3});
	conf_advance(c, 10 * MINUTE);
	int64_t t3 = conf_now(c);
	complete_one(&m, 4); /* ten minutes: capped at 4 points, the older ones cut */
	expect(c, JOBQ_STATE_COMPLETED, 6, t3, 5, 4, (const int64_t[]){0, 0, 0, 1});
	expect(c, JOBQ_STATE_FAILED, 0, 0, 0, 0, NULL);

	/* ranges as LRANGE picks them */
	jobq_metrics *r = NULL;
	assert_int_equal(jobq_queue_metrics(&r, c->q, JOBQ_STATE_COMPLETED, 2, -1), 0);
	assert_int_equal(r->data_len, 2);
	assert_int_equal(r->data[0], 0);
	assert_int_equal(r->data[1], 1);
	assert_int_equal(r->points, 4);
	jobq_metrics_free(r);
	assert_int_equal(jobq_queue_metrics(&r, c->q, JOBQ_STATE_COMPLETED, -1, 10), 0);
	assert_int_equal(r->data_len, 1);
	assert_int_equal(r->data[0], 1);
	jobq_metrics_free(r);
	assert_int_equal(jobq_queue_metrics(&r, c->q, JOBQ_STATE_COMPLETED, 3, 1), 0);
	assert_int_equal(r->data_len, 0);
	assert_null(r->data);
	jobq_metrics_free(r);
	mclose(&m);
}

/* Only final failures count (a retried attempt does not), completions without metrics do not
 * count, and a larger list than the next worker keeps is cut to its size. */
static void
metrics_failed_for_good(void **state) {
	conf *c = conf_begin(state);
	mctx m = mopen(c);
	int64_t t0 = conf_now(c);
	jobq_job_id id;
	conf_add(c, &id, "f", "{}", NULL);
	jobq_job *j = conf_fetch(c, id.str, CONF_LOCK_MS);
	fail_one(&m, j, 1, 5); /* retried: not counted */
	jobq_job_free(j);
	expect(c, JOBQ_STATE_FAILED, 0, 0, 0, 0, NULL);
	j = conf_fetch(c, id.str, CONF_LOCK_MS);
	fail_one(&m, j, 0, 5);
	jobq_job_free(j);
	expect(c, JOBQ_STATE_FAILED, 1, t0, 0, 0, NULL);
	complete_one(&m, 0);
	expect(c, JOBQ_STATE_COMPLETED, 0, 0, 0, 0, NULL);
	conf_advance(c, 7 * MINUTE);
	int64_t t1 = conf_now(c);
	conf_add(c, &id, "f", "{}", NULL);
	j = conf_fetch(c, id.str, CONF_LOCK_MS);
	fail_one(&m, j, 0, 5);
	jobq_job_free(j);
	expect(c, JOBQ_STATE_FAILED, 2, t1, 1, 5, (const int64_t[]){0, 0, 0, 0, 1});
	conf_advance(c, MINUTE);
	conf_add(c, &id, "f", "{}", NULL);
	j = conf_fetch(c, id.str, CONF_LOCK_MS);
	fail_one(&m, j, 0, 2); /* a worker keeping 2 points: the list is cut to 2 */
	jobq_job_free(j);
	expect(c, JOBQ_STATE_FAILED, 3, conf_now(c), 2, 2, (const int64_t[]){1, 0});
	mclose(&m);
}

/* Several completions in one complete_fetch count as single finishes at the same time would;
 * a completion refused (lock lost) is not counted, nor one of a worker without metrics (the
 * completions of several workers may share a step). */
static void
metrics_batch(void **state) {
	conf *c = conf_begin(state);
	mctx m = mopen(c);
	int64_t t0 = conf_now(c);
	complete_one(&m, 3);
	conf_advance(c, 2 * MINUTE);
	jobq_job_id ids[3];
	jobq_job *jobs[3];
	for (int i = 0; i < 3; i++) {
		conf_add(c, &ids[i], "b", "{}", NULL);
		jobs[i] = conf_fetch(c, ids[i].str, CONF_LOCK_MS);
	}
	jobq_completion d[3];
	for (int i = 0; i < 3; i++)
		d[i] = (jobq_completion){ids[i].str,
		                         i == 1 ? "not-mine" : jobq_job_token(jobs[i]),
		                         "1",
		                         {JOBQ_KEEP_NONE, 0, 0},
		                         0,
		                         NULL,
		                         i == 2 ? 0 : 3};
	assert_int_equal(
	    m.b->complete_fetch(NULL, NULL, m.bq, d, 3, NULL, 0, CONF_LOCK_MS, conf_now(c)), 0);
	assert_int_equal(d[0].rc, 0);
	assert_int_equal(d[1].rc, JOBQ_ELOCKLOST);
	assert_int_equal(d[2].rc, 0);
	(void)t0;
	int64_t t1 = conf_now(c);
	expect(c, JOBQ_STATE_COMPLETED, 2, t1, 1, 2, (const int64_t[]){0, 1});
	for (int i = 0; i < 3; i++)
		jobq_job_free(jobs[i]);
	/* two of one worker in one step, later in the same minute */
	conf_advance(c, 1000);
	for (int i = 0; i < 2; i++) {
		conf_add(c, &ids[i], "b", "{}", NULL);
		jobs[i] = conf_fetch(c, ids[i].str, CONF_LOCK_MS);
		d[i] = (jobq_completion){
		    ids[i].str, jobq_job_token(jobs[i]), "1", {JOBQ_KEEP_ALL, -1, -1}, 0, NULL, 3};
	}
	assert_int_equal(
	    m.b->complete_fetch(NULL, NULL, m.bq, d, 2, NULL, 0, CONF_LOCK_MS, conf_now(c)), 0);
	assert_int_equal(d[0].rc, 0);
	assert_int_equal(d[1].rc, 0);
	expect(c, JOBQ_STATE_COMPLETED, 4, t1, 1, 2, (const int64_t[]){0, 1});
	for (int i = 0; i < 2; i++)
		jobq_job_free(jobs[i]);
	mclose(&m);
}

/* A job past its stall limit, failed by the fetch that takes it (memory, LMDB), is counted
 * with the fetcher's metrics. */
static void
metrics_deferred_failure(void **state) {
	conf *c = conf_begin(state);
	CONF_NEED_LOCK_CLOCK(c);
	mctx m = mopen(c);
	jobq_job_id id;
	conf_add(c, &id, "s", "{}", NULL);
	jobq_job_free(conf_fetch(c, id.str, conf_expiring_lock_ms(c)));
	conf_expire_lock(c);
	assert_int_equal(conf_check_until_recovered(c, 0), 1);
	jobq_fetch_info info = {.metrics_max_points = 3};
	jobq_job *none = NULL;
	assert_int_equal(m.b->fetch(&none, &info, m.bq, "tok", CONF_LOCK_MS, conf_now(c)),
	                 JOBQ_ENOJOB);
	assert_int_equal(conf_state(c, id.str), JOBQ_STATE_FAILED);
	expect(c, JOBQ_STATE_FAILED, 1, conf_now(c), 0, 0, NULL);
	mclose(&m);
}

static int
h_worker(jobq_job *job, void *payload) {
	(void)payload;
	if (strcmp(jobq_job_name(job), "bad") == 0)
		return jobq_job_set_error(job, 0, "bad");
	return 0;
}

static int
two_and_one(const jobq_counts *k, void *arg) {
	(void)arg;
	return k->completed == 2 && k->failed == 1;
}

/* The worker option reaches the finishing steps; obliterate forgets the metrics. */
static void
metrics_worker_option(void **state) {
	conf *c = conf_begin(state);
	CONF_NEED_DUE_CLOCK(c);
	jobq_worker *w = NULL;
	jobq_worker_options wo = conf_wopts();
	wo.metrics_max_data_points = JOBQ_METRICS_MAX_POINTS + 1;
	conf_assert_error(jobq_worker_new(&w, c->q, h_worker, NULL, &wo), JOBQ_EINVAL);
	wo.metrics_max_data_points = 10;
	jobq_job_id id;
	conf_add(c, &id, "good", "{}", NULL);
	conf_add(c, &id, "good", "{}", NULL);
	conf_add(c, &id, "bad", "{}", NULL);
	assert_int_equal(jobq_worker_new(&w, c->q, h_worker, NULL, &wo), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	assert_true(conf_wait_counts(c, two_and_one, NULL, conf_ms(10000)));
	assert_int_equal(jobq_worker_close(w, conf_ms(10000)), 0);
	jobq_worker_free(w);
	expect(c, JOBQ_STATE_COMPLETED, 2, conf_now(c), 0, 0, NULL);
	expect(c, JOBQ_STATE_FAILED, 1, conf_now(c), 0, 0, NULL);
	assert_int_equal(jobq_queue_obliterate(c->q, 0), 0);
	expect(c, JOBQ_STATE_COMPLETED, 0, 0, 0, 0, NULL);
	expect(c, JOBQ_STATE_FAILED, 0, 0, 0, 0, NULL);
}

/* Bad input: a clear error, nothing read. */
static void
metrics_bad_input(void **state) {
	conf *c = conf_begin(state);
	jobq_metrics *m = (jobq_metrics *)&m;
	conf_assert_error(jobq_queue_metrics(&m, c->q, JOBQ_STATE_WAITING, 0, -1), JOBQ_EINVAL);
	assert_null(m);
	conf_assert_error(jobq_queue_metrics(NULL, c->q, JOBQ_STATE_FAILED, 0, -1), JOBQ_EINVAL);
	conf_assert_error(jobq_queue_metrics(&m, NULL, JOBQ_STATE_FAILED, 0, -1), JOBQ_EINVAL);
	jobq_metrics_free(NULL);
}

static const struct CMUnitTest cases[] = {
    CONF_CASE(metrics_minutes),   CONF_CASE(metrics_failed_for_good),
    CONF_CASE(metrics_batch),     CONF_CASE(metrics_worker_option),
    CONF_CASE(metrics_bad_input), CONF_CASE(metrics_deferred_failure),
};
CONF_TABLE(conf_metrics_cases, cases);
