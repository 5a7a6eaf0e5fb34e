/* Attempts and backoff: immediate retry, fixed, exponential, linear, jitter, cap, exhaustion,
 * unrecoverable failures and the custom backoff callback. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

/* The `delay` field (absolute due time) of the newest `delayed` event of job `id`. */
static int64_t
last_delayed_due(conf *c, const char *id) {
	conf_events ev;
	long at = -1, k = -1;
	int64_t due;

	conf_events_load(c, &ev);
	while ((k = conf_events_find(&ev, (size_t)(k + 1), "delayed", id)) >= 0) {
		at = k;
	}
	assert_true(at >= 0);
	assert_non_null(conf_event_field(&ev.items[at], "delay"));
	due = strtoll(conf_event_field(&ev.items[at], "delay"), NULL, 10);
	conf_events_free(&ev);
	return due;
}

/*
 * Fetches job `id`, fails the attempt, and checks it is delayed by exactly `expect` ms (the
 * job's delay; with the manual clock also the event's due time, and that the job is not
 * fetchable at due - 1 but is at due). Leaves the job waiting to be fetched again.
 */
static void
fail_expect_delay(conf *c, const char *id, int64_t expect) {
	int64_t now;
	jobq_job *job;
	int st;

	now = conf_now(c);
	st = conf_fetch_fail(c, id, "try again", 0);
	assert_int_equal(st, JOBQ_STATE_DELAYED);
	job = conf_get(c, id);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_DELAYED);
	assert_int_equal(jobq_job_delay(job), expect);
	assert_string_equal(jobq_job_failed_reason(job), "try again");
	jobq_job_free(job);
	if (c->clock != NULL) {
		assert_int_equal(last_delayed_due(c, id), now + expect);
		conf_advance(c, expect - 1);
		conf_fetch_none(c);
		conf_advance(c, 1);
	} else {
		assert_int_equal(jobq_queue_promote(c->q, id), 1);
	}
}

/* No backoff: a failed attempt goes straight back to waiting, counting the attempt. */
static void
retry_immediate_without_backoff(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id id;
	jobq_job *job;

	o.attempts = 3;
	conf_add(c, &id, "n", NULL, &o);
	assert_int_equal(conf_fetch_fail(c, id.str, "first", 0), JOBQ_STATE_WAITING);
	conf_assert_counts(c, 1, 0, 0, 0, 0, 0);
	job = conf_get(c, id.str);
	assert_int_equal(jobq_job_attempts_made(job), 1);
	assert_string_equal(jobq_job_failed_reason(job), "first");
	assert_int_equal(jobq_job_finished_on(job), 0);
	jobq_job_free(job);
	job = conf_fetch(c, id.str, CONF_LOCK_MS);
	assert_int_equal(jobq_job_attempts_started(job), 2);
	assert_int_equal(jobq_job_complete(job, NULL), 0);
	jobq_job_free(job);
	conf_assert_counts(c, 0, 0, 0, 0, 1, 0);
}

/* Fixed backoff: every retry waits exactly delay_ms. */
static void
retry_fixed_backoff_exact(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id id;

	o.attempts = 4;
	o.backoff.type = JOBQ_BACKOFF_FIXED;
	o.backoff.delay_ms = 1000;
	conf_add(c, &id, "n", NULL, &o);
	fail_expect_delay(c, id.str, 1000);
	fail_expect_delay(c, id.str, 1000);
	fail_expect_delay(c, id.str, 1000);
	assert_int_equal(conf_fetch_fail(c, id.str, "last", 0), JOBQ_STATE_FAILED);
	conf_assert_counts(c, 0, 0, 0, 0, 0, 1);
}

/* Exponential backoff: round(2^(n-1) * delay) after attempt n. */
static void
retry_exponential_backoff_exact(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id id;

	o.attempts = 5;
	o.backoff.type = JOBQ_BACKOFF_EXPONENTIAL;
	o.backoff.delay_ms = 150;
	conf_add(c, &id, "n", NULL, &o);
	fail_expect_delay(c, id.str, 150);
	fail_expect_delay(c, id.str, 300);
	fail_expect_delay(c, id.str, 600);
	fail_expect_delay(c, id.str, 1200);
	assert_int_equal(conf_fetch_fail(c, id.str, "last", 0), JOBQ_STATE_FAILED);
}

/* max_delay_ms caps the exponential growth. */
static void
retry_backoff_max_caps(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id id;

	o.attempts = 5;
	o.backoff.type = JOBQ_BACKOFF_EXPONENTIAL;
	o.backoff.delay_ms = 1000;
	o.backoff.max_delay_ms = 2500;
	conf_add(c, &id, "n", NULL, &o);
	fail_expect_delay(c, id.str, 1000);
	fail_expect_delay(c, id.str, 2000);
	fail_expect_delay(c, id.str, 2500);
	fail_expect_delay(c, id.str, 2500);
}

/* Jitter: each of many retry delays lies in [base*(1-j), base], and they are not all equal. */
static void
retry_jitter_in_bounds(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id id;
	int64_t lo = INT64_MAX, hi = 0;
	int i;

	o.attempts = 202;
	o.backoff.type = JOBQ_BACKOFF_FIXED;
	o.backoff.delay_ms = 1000;
	o.backoff.jitter = 0.5;
	conf_add(c, &id, "n", NULL, &o);
	for (i = 0; i < 200; i++) {
		jobq_job *job;
		int64_t d;

		assert_int_equal(conf_fetch_fail(c, id.str, "j", 0), JOBQ_STATE_DELAYED);
		job = conf_get(c, id.str);
		d = jobq_job_delay(job);
		jobq_job_free(job);
		if (d < 500 || d > 1000) {
			print_error("sample %d: delay %lld outside [500, 1000]\n", i, (long long)d);
			fail();
		}
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		assert_int_equal(jobq_queue_promote(c->q, id.str), 1);
	}
	assert_true(hi > lo);
}

/* Jitter applies to the exponential base, and the cap bounds the base. */
static void
retry_jitter_exponential_capped(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id id;
	int i;

	o.attempts = 30;
	o.backoff.type = JOBQ_BACKOFF_EXPONENTIAL;
	o.backoff.delay_ms = 100;
	o.backoff.jitter = 0.25;
	o.backoff.max_delay_ms = 1000;
	conf_add(c, &id, "n", NULL, &o);
	for (i = 1; i <= 20; i++) {
		int64_t base = (int64_t)llround(pow(2.0, i - 1) * 100.0);
		jobq_job *job;
		int64_t d;

		base = base > 1000 ? 1000 : base;
		assert_int_equal(conf_fetch_fail(c, id.str, "j", 0), JOBQ_STATE_DELAYED);
		job = conf_get(c, id.str);
		d = jobq_job_delay(job);
		jobq_job_free(job);
		if ((double)d < (double)base * 0.75 - 1.0 || d > base) {
			print_error("attempt %d: delay %lld outside [%g, %lld]\n", i, (long long)d,
			            (double)base * 0.75, (long long)base);
			fail();
		}
		assert_int_equal(jobq_queue_promote(c->q, id.str), 1);
	}
}

/* Attempts exhausted: failed with the last reason and attempts made, `failed` then
 * `retries-exhausted`. */
static void
retry_attempts_exhausted(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id id;
	jobq_job *job;
	conf_events ev;
	long at;

	o.attempts = 3;
	conf_add(c, &id, "n", NULL, &o);
	assert_int_equal(conf_fetch_fail(c, id.str, "one", 0), JOBQ_STATE_WAITING);
	assert_int_equal(conf_fetch_fail(c, id.str, "two", 0), JOBQ_STATE_WAITING);
	assert_int_equal(conf_fetch_fail(c, id.str, "three", 0), JOBQ_STATE_FAILED);
	job = conf_get(c, id.str);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_FAILED);
	assert_string_equal(jobq_job_failed_reason(job), "three");
	assert_int_equal(jobq_job_attempts_made(job), 3);
	assert_int_equal(jobq_job_attempts_started(job), 3);
	assert_true(jobq_job_finished_on(job) > 0);
	jobq_job_free(job);
	conf_assert_counts(c, 0, 0, 0, 0, 0, 1);
	conf_fetch_none(c);

	conf_events_load(c, &ev);
	at = conf_events_find(&ev, 0, "failed", id.str);
	assert_true(at >= 0);
	assert_string_equal(conf_event_field(&ev.items[at], "failedReason"), "three");
	assert_int_equal(conf_events_find(&ev, (size_t)at + 1, "failed", id.str), -1);
	at = conf_events_find(&ev, (size_t)at, "retries-exhausted", id.str);
	assert_true(at >= 0);
	assert_string_equal(conf_event_field(&ev.items[at], "attemptsMade"), "3");
	conf_events_free(&ev);
}

/* JOBQ_FAIL_UNRECOVERABLE fails the job at once, whatever attempts remain. */
static void
retry_unrecoverable_fails_at_once(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id id;
	jobq_job *job;

	o.attempts = 5;
	o.backoff.type = JOBQ_BACKOFF_FIXED;
	o.backoff.delay_ms = 1000;
	conf_add(c, &id, "n", NULL, &o);
	assert_int_equal(conf_fetch_fail(c, id.str, "fatal", JOBQ_FAIL_UNRECOVERABLE),
	                 JOBQ_STATE_FAILED);
	job = conf_get(c, id.str);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_FAILED);
	assert_string_equal(jobq_job_failed_reason(job), "fatal");
	assert_int_equal(jobq_job_attempts_made(job), 1);
	jobq_job_free(job);
	conf_assert_counts(c, 0, 0, 0, 0, 0, 1);
}

/* retry of a failed job puts it back to waiting; it can then run again. */
static void
retry_failed_job_by_admin(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id a, b;
	jobq_job *job;

	conf_add(c, &a, "n", NULL, NULL);
	conf_add(c, &b, "n", NULL, NULL);
	assert_int_equal(conf_fetch_fail(c, a.str, "x", 0), JOBQ_STATE_FAILED);
	assert_int_equal(conf_fetch_fail(c, b.str, "y", 0), JOBQ_STATE_FAILED);
	assert_int_equal(jobq_queue_retry(c->q, a.str), 1);
	conf_assert_counts(c, 1, 0, 0, 0, 0, 1);
	job = conf_get(c, a.str);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_WAITING);
	assert_null(jobq_job_failed_reason(job));
	assert_int_equal(jobq_job_finished_on(job), 0);
	jobq_job_free(job);
	assert_int_equal(jobq_queue_retry(c->q, NULL), 1);
	conf_assert_counts(c, 2, 0, 0, 0, 0, 0);
	conf_fetch_complete(c, NULL, NULL);
	conf_fetch_complete(c, NULL, NULL);
	conf_assert_counts(c, 0, 0, 0, 0, 2, 0);
}

/* --- custom backoff through a worker --------------------------------------------------------- */

typedef struct custom_state {
	pthread_mutex_t mu;
	int calls;
	uint32_t attempts_seen[8];
	char type_seen[32];
	char reason_seen[64];
} custom_state;

static int
custom_backoff(int64_t *delay_ms, const jobq_job *job, uint32_t attempts_made,
               const char *custom_type, const char *reason, void *payload) {
	custom_state *s = payload;

	(void)job;
	pthread_mutex_lock(&s->mu);
	if (s->calls < 8) {
		s->attempts_seen[s->calls] = attempts_made;
	}
	s->calls++;
	snprintf(s->type_seen, sizeof(s->type_seen), "%s", custom_type != NULL ? custom_type : "");
	snprintf(s->reason_seen, sizeof(s->reason_seen), "%s", reason != NULL ? reason : "");
	pthread_mutex_unlock(&s->mu);
	if (attempts_made >= 2) {
		return -1; /* give up */
	}
	*delay_ms = 1234;
	return 0;
}

static int
always_fail(jobq_job *job, void *payload) {
	(void)payload;
	return jobq_job_set_error(job, 0, "nope %d", 7);
}

/* The custom backoff callback decides the delay (with the strategy name and the reason) and
 * can end the retries. */
static void
retry_custom_backoff_callback(void **state) {
	conf *c = conf_begin(state);
	custom_state s;
	jobq_job_options o = conf_opts();
	jobq_worker_options wo = conf_wopts();
	jobq_worker *w = NULL;
	jobq_job_id id;
	jobq_job *job = NULL;
	int rc;

	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.mu, NULL);
	o.attempts = 5;
	o.backoff.type = JOBQ_BACKOFF_CUSTOM;
	o.backoff.custom_type = "stepped";
	wo.backoff_fn = custom_backoff;
	wo.backoff_payload = &s;
	conf_add(c, &id, "n", NULL, &o);
	assert_int_equal(jobq_worker_new(&w, c->q, always_fail, NULL, &wo), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	assert_true(conf_wait_event(c, "delayed", id.str, conf_ms(5000)));
	job = conf_get(c, id.str);
	assert_int_equal(jobq_job_delay(job), 1234);
	jobq_job_free(job);
	if (c->clock != NULL) {
		conf_advance(c, 1234);
	} else {
		assert_int_equal(jobq_queue_promote(c->q, id.str), 1);
	}
	rc = jobq_queue_wait_job(&job, c->q, id.str, conf_ms(5000));
	assert_int_equal(rc, JOBQ_ESTATE);
	assert_non_null(job);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_FAILED);
	assert_int_equal(jobq_job_attempts_made(job), 2);
	assert_string_equal(jobq_job_failed_reason(job), "nope 7");
	jobq_job_free(job);
	assert_int_equal(jobq_worker_close(w, conf_ms(5000)), 0);
	jobq_worker_free(w);
	assert_int_equal(s.calls, 2);
	assert_int_equal(s.attempts_seen[0], 1);
	assert_int_equal(s.attempts_seen[1], 2);
	assert_string_equal(s.type_seen, "stepped");
	assert_string_equal(s.reason_seen, "nope 7");
	pthread_mutex_destroy(&s.mu);
}

/* Linear backoff (jobq's own type): delay x attempt, through every backend's stored options
 * (on Redis BullMQ's opts, where "linear" is the type's name); with jitter within
 * [base * (1 - jitter), base] and the cap. A custom strategy may not take a built-in's name
 * (the stored name would bring the job back as the built-in). */
static void
retry_linear_backoff(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id id, capped, jit;
	jobq_job *job;
	static const char *const builtin[] = {"linear", "fixed", "exponential"};

	o.attempts = 4;
	o.backoff.type = JOBQ_BACKOFF_LINEAR;
	o.backoff.delay_ms = 100;
	conf_add(c, &id, "n", NULL, &o);
	job = conf_get(c, id.str);
	assert_int_equal(jobq_job_options_of(job)->backoff.type, JOBQ_BACKOFF_LINEAR);
	assert_int_equal(jobq_job_options_of(job)->backoff.delay_ms, 100);
	jobq_job_free(job);
	fail_expect_delay(c, id.str, 100);
	fail_expect_delay(c, id.str, 200);
	fail_expect_delay(c, id.str, 300);
	assert_int_equal(conf_fetch_fail(c, id.str, "last", 0), JOBQ_STATE_FAILED);

	o.backoff.max_delay_ms = 250;
	conf_add(c, &capped, "n", NULL, &o);
	fail_expect_delay(c, capped.str, 100);
	fail_expect_delay(c, capped.str, 200);
	fail_expect_delay(c, capped.str, 250);
	assert_int_equal(conf_fetch_fail(c, capped.str, "last", 0), JOBQ_STATE_FAILED);

	o.backoff.max_delay_ms = 0;
	o.backoff.jitter = 0.5;
	o.attempts = 3;
	conf_add(c, &jit, "n", NULL, &o);
	for (int n = 1; n <= 2; n++) {
		assert_int_equal(conf_fetch_fail(c, jit.str, "again", 0), JOBQ_STATE_DELAYED);
		job = conf_get(c, jit.str);
		assert_in_range(jobq_job_delay(job), 50 * n, 100 * n);
		jobq_job_free(job);
		if (c->clock != NULL)
			conf_advance(c, 100 * n);
		else
			assert_int_equal(jobq_queue_promote(c->q, jit.str), 1);
	}

	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
		jobq_job_options b = conf_opts();
		b.backoff.type = JOBQ_BACKOFF_CUSTOM;
		b.backoff.custom_type = builtin[i];
		conf_assert_error(jobq_queue_add(&(jobq_job_id){{0}}, c->q, "n", "{}", 2, &b),
		                  JOBQ_EINVAL);
	}
}

/* Fails job `id` `n` times ("boom 1", ...) and returns it. */
static jobq_job *
fail_times(conf *c, const char *id, int n) {
	char reason[32];
	for (int i = 1; i <= n; i++) {
		snprintf(reason, sizeof(reason), "boom %d", i);
		assert_true(conf_fetch_fail(c, id, reason, 0) >= 0);
	}
	return conf_get(c, id);
}

/* stack_trace_limit (BullMQ stackTraceLimit): each failed attempt appends its line, then only
 * the newest N stay; JOBQ_STACK_TRACE_NONE keeps none (BullMQ's 0), 0 keeps all; the option
 * reads back as given; below JOBQ_STACK_TRACE_NONE is refused. */
static void
retry_stack_trace_limit(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id two, none, all;
	jobq_job *job;

	o.attempts = 5;
	o.stack_trace_limit = 2;
	conf_add(c, &two, "n", NULL, &o);
	job = fail_times(c, two.str, 1);
	assert_int_equal(jobq_job_stacktrace_count(job), 1);
	assert_string_equal(jobq_job_stacktrace_at(job, 0), "boom 1");
	assert_int_equal(jobq_job_options_of(job)->stack_trace_limit, 2);
	jobq_job_free(job);
	job = fail_times(c, two.str, 3);
	assert_int_equal(jobq_job_stacktrace_count(job), 2);
	assert_string_equal(jobq_job_stacktrace_at(job, 0), "boom 2");
	assert_string_equal(jobq_job_stacktrace_at(job, 1), "boom 3");
	assert_string_equal(jobq_job_failed_reason(job), "boom 3");
	jobq_job_free(job);
	/* the last attempt, failed for good, is trimmed the same way */
	job = fail_times(c, two.str, 1);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_FAILED);
	assert_int_equal(jobq_job_stacktrace_count(job), 2);
	assert_string_equal(jobq_job_stacktrace_at(job, 0), "boom 3");
	assert_string_equal(jobq_job_stacktrace_at(job, 1), "boom 1");
	jobq_job_free(job);

	o.attempts = 3; /* failed for good after fail_times(3) */
	o.stack_trace_limit = JOBQ_STACK_TRACE_NONE;
	conf_add(c, &none, "n", NULL, &o);
	job = fail_times(c, none.str, 3);
	assert_int_equal(jobq_job_stacktrace_count(job), 0);
	assert_string_equal(jobq_job_failed_reason(job), "boom 3");
	assert_int_equal(jobq_job_options_of(job)->stack_trace_limit, JOBQ_STACK_TRACE_NONE);
	jobq_job_free(job);

	o.stack_trace_limit = 0;
	conf_add(c, &all, "n", NULL, &o);
	job = fail_times(c, all.str, 3);
	assert_int_equal(jobq_job_stacktrace_count(job), 3);
	assert_string_equal(jobq_job_stacktrace_at(job, 2), "boom 3");
	assert_int_equal(jobq_job_options_of(job)->stack_trace_limit, 0);
	jobq_job_free(job);

	o.stack_trace_limit = -2;
	conf_assert_error(jobq_queue_add(&(jobq_job_id){{0}}, c->q, "n", "{}", 2, &o), JOBQ_EINVAL);
}

static const struct CMUnitTest cases[] = {
    CONF_CASE(retry_immediate_without_backoff), CONF_CASE(retry_fixed_backoff_exact),
    CONF_CASE(retry_exponential_backoff_exact), CONF_CASE(retry_backoff_max_caps),
    CONF_CASE(retry_jitter_in_bounds),          CONF_CASE(retry_jitter_exponential_capped),
    CONF_CASE(retry_attempts_exhausted),        CONF_CASE(retry_unrecoverable_fails_at_once),
    CONF_CASE(retry_failed_job_by_admin),       CONF_CASE(retry_custom_backoff_callback),
    CONF_CASE(retry_stack_trace_limit),         CONF_CASE(retry_linear_backoff),
};
CONF_TABLE(conf_retry_cases, cases);
