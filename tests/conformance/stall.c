/* Stalled jobs: an expired lock sends the job back to waiting; past the stall limit the next
 * fetch fails it. */
#include <string.h>

#include "conf.h"

/* An expired lock: the job goes back to the front of waiting, stalled once, no attempt used;
 * events `waiting` (prev active) and `stalled`. */
static void
stall_expired_lock_back_to_waiting(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id, other;
	jobq_job *job;
	conf_events ev;
	static const char *const seq[] = {"active", "waiting", "stalled", NULL};
	long at;

	conf_add(c, &id, "n", NULL, NULL);
	job = conf_fetch(c, id.str, conf_expiring_lock_ms(c));
	jobq_job_free(job);
	conf_add(c, &other, "n", NULL, NULL);
	conf_expire_lock(c);
	assert_int_equal(conf_check_until_recovered(c, 1), 1);
	job = conf_get(c, id.str);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_WAITING);
	assert_int_equal(jobq_job_stalled_count(job), 1);
	assert_int_equal(jobq_job_attempts_made(job), 0);
	jobq_job_free(job);
	conf_assert_counts(c, 2, 0, 0, 0, 0, 0);

	conf_events_load(c, &ev);
	conf_events_expect_seq(&ev, id.str, seq, NULL);
	at = conf_events_find(&ev, 0, "active", id.str);
	at = conf_events_find(&ev, (size_t)at, "waiting", id.str);
	assert_string_equal(conf_event_field(&ev.items[at], "prev"), "active");
	conf_events_free(&ev);

	/* Front of the line: it runs before the job that was already waiting. */
	job = conf_fetch(c, id.str, 1000);
	assert_int_equal(jobq_job_attempts_started(job), 2);
	assert_int_equal(jobq_job_complete(job, NULL), 0);
	jobq_job_free(job);
	conf_fetch_complete(c, other.str, NULL);
}

/* A live lock is never recovered, however often the check runs. */
static void
stall_live_lock_untouched(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	jobq_job *job;
	int i;

	/* 1000 ms of the lock clock, of which 800 pass; without one, a lock that real time does
	 * not run out during the case. */
	int64_t lock_ms = conf_has(c, JOBQ_CAP_LOCK_CLOCK) ? 1000 : CONF_LOCK_MS;

	conf_add(c, &id, "n", NULL, NULL);
	job = conf_fetch(c, id.str, lock_ms);
	for (i = 0; i < 4; i++) {
		assert_int_equal(jobq_queue_check_stalled(c->q, 1), 0);
		if (c->clock != NULL) {
			conf_advance(c, 200);
		}
	}
	assert_int_equal(conf_state(c, id.str), JOBQ_STATE_ACTIVE);
	assert_int_equal(jobq_job_complete(job, NULL), 0);
	jobq_job_free(job);
}

/* Past the stall limit the job is failed by the next fetch ("job stalled more than allowable
 * limit"), which returns nothing else. */
static void
stall_limit_fails_on_next_fetch(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	jobq_job *job;
	conf_events ev;
	long at;

	conf_add(c, &id, "n", NULL, NULL);
	/* First stall: recovered (1 <= max_stalled 1). */
	jobq_job_free(conf_fetch(c, id.str, conf_expiring_lock_ms(c)));
	conf_expire_lock(c);
	assert_int_equal(conf_check_until_recovered(c, 1), 1);
	assert_int_equal(conf_state(c, id.str), JOBQ_STATE_WAITING);
	/* Second stall: past the limit. */
	jobq_job_free(conf_fetch(c, id.str, conf_expiring_lock_ms(c)));
	conf_expire_lock(c);
	assert_int_equal(conf_check_until_recovered(c, 1), 1);
	job = conf_get(c, id.str);
	assert_int_equal(jobq_job_stalled_count(job), 2);
	jobq_job_free(job);
	conf_fetch_none(c);
	job = conf_get(c, id.str);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_FAILED);
	assert_string_equal(jobq_job_failed_reason(job), "job stalled more than allowable limit");
	jobq_job_free(job);
	conf_assert_counts(c, 0, 0, 0, 0, 0, 1);
	conf_events_load(c, &ev);
	at = conf_events_find(&ev, 0, "failed", id.str);
	assert_true(at >= 0);
	assert_string_equal(conf_event_field(&ev.items[at], "failedReason"),
	                    "job stalled more than allowable limit");
	conf_events_free(&ev);
}

/* max_stalled 0: the first stall already fails the job at the next fetch, and a job waiting
 * behind it is returned by that fetch. */
static void
stall_limit_zero_next_job_returned(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id, next;

	conf_add(c, &id, "n", NULL, NULL);
	conf_add(c, &next, "n", NULL, NULL);
	jobq_job_free(conf_fetch(c, id.str, conf_expiring_lock_ms(c)));
	conf_expire_lock(c);
	assert_int_equal(conf_check_until_recovered(c, 0), 1);
	conf_fetch_complete(c, next.str, NULL);
	assert_int_equal(conf_state(c, id.str), JOBQ_STATE_FAILED);
	conf_assert_counts(c, 0, 0, 0, 0, 1, 1);
}

/* --- real time ------------------------------------------------------------------------------- */

static int
complete_ok(jobq_job *job, void *payload) {
	(void)payload;
	return jobq_job_set_result(job, "\"ok\"", 4);
}

/* Real time (any backend): a job abandoned with a short lock is recovered by a worker's
 * reaper, then processed by it. */
static void
stall_wallclock_recovered_by_worker(void **state) {
	conf *c = conf_begin(state);
	jobq_worker_options wo = conf_wopts();
	jobq_worker *w = NULL;
	jobq_job_id id;
	jobq_job *job;
	int rc;

	conf_use_real_clock(c);
	conf_add(c, &id, "n", NULL, NULL);
	jobq_job_free(conf_fetch(c, id.str, conf_ms(100))); /* abandoned */
	wo.stalled_interval_ms = conf_ms(50);
	wo.max_stalled = 1;
	assert_int_equal(jobq_worker_new(&w, c->q, complete_ok, NULL, &wo), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	job = NULL;
	rc = jobq_queue_wait_job(&job, c->q, id.str, conf_ms(10000));
	assert_int_equal(rc, 0);
	assert_string_equal(jobq_job_result(job), "\"ok\"");
	assert_int_equal(jobq_job_stalled_count(job), 1);
	assert_int_equal(jobq_job_attempts_started(job), 2);
	jobq_job_free(job);
	assert_true(conf_wait_event(c, "stalled", id.str, 0));
	assert_int_equal(jobq_worker_close(w, conf_ms(5000)), 0);
	jobq_worker_free(w);
}

/* Real time (any backend): past the stall limit (0 here) the worker's next fetch fails the
 * job with "job stalled more than allowable limit". */
static void
stall_wallclock_limit_fails(void **state) {
	conf *c = conf_begin(state);
	jobq_worker_options wo = conf_wopts();
	jobq_worker *w = NULL;
	jobq_job_id id;
	jobq_job *job;
	int rc;

	conf_use_real_clock(c);
	conf_add(c, &id, "n", NULL, NULL);
	jobq_job_free(conf_fetch(c, id.str, conf_ms(100))); /* abandoned */
	wo.stalled_interval_ms = conf_ms(50);
	wo.max_stalled = 0;
	assert_int_equal(jobq_worker_new(&w, c->q, complete_ok, NULL, &wo), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	job = NULL;
	rc = jobq_queue_wait_job(&job, c->q, id.str, conf_ms(10000));
	assert_int_equal(rc, JOBQ_ESTATE);
	assert_string_equal(jobq_job_failed_reason(job), "job stalled more than allowable limit");
	jobq_job_free(job);
	assert_int_equal(jobq_worker_close(w, conf_ms(5000)), 0);
	jobq_worker_free(w);
}

static const struct CMUnitTest cases[] = {
    CONF_CASE(stall_expired_lock_back_to_waiting),  CONF_CASE(stall_live_lock_untouched),
    CONF_CASE(stall_limit_fails_on_next_fetch),     CONF_CASE(stall_limit_zero_next_job_returned),
    CONF_CASE(stall_wallclock_recovered_by_worker), CONF_CASE(stall_wallclock_limit_fails),
};
CONF_TABLE(conf_stall_cases, cases);
