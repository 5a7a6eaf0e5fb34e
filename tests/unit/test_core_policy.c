/* Unit tests of the core's pure policy: backoff formulas, validation, errors, the clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"

static void
fixed_backoff_is_constant(void **state) {
	(void)state;
	jobq_backoff b = {.type = JOBQ_BACKOFF_FIXED, .delay_ms = 250};
	for (uint32_t n = 1; n < 10; n++) {
		int64_t d = -1;
		assert_int_equal(jobq__backoff_delay(&d, &b, n, 0.5), 0);
		assert_int_equal(d, 250);
	}
}

static void
exponential_backoff_doubles(void **state) {
	(void)state;
	jobq_backoff b = {.type = JOBQ_BACKOFF_EXPONENTIAL, .delay_ms = 100};
	const int64_t want[] = {100, 200, 400, 800, 1600, 3200};
	for (uint32_t n = 1; n <= 6; n++) {
		int64_t d = -1;
		assert_int_equal(jobq__backoff_delay(&d, &b, n, 0.0), 0);
		assert_int_equal(d, want[n - 1]);
	}
	/* Rounds as Math.round: 2^(n-1) * 1.5 ms. */
	b.delay_ms = 3;
	int64_t d;
	assert_int_equal(jobq__backoff_delay(&d, &b, 1, 0.0), 0);
	assert_int_equal(d, 3);
}

static void
jitter_stays_in_bounds(void **state) {
	(void)state;
	jobq_backoff b = {.type = JOBQ_BACKOFF_FIXED, .delay_ms = 1000, .jitter = 0.5};
	for (int i = 0; i < 2000; i++) {
		int64_t d;
		assert_int_equal(jobq__backoff_delay(&d, &b, 1, jobq__random01()), 0);
		assert_in_range(d, 500, 1000);
	}
	int64_t lo, hi;
	jobq__backoff_delay(&lo, &b, 1, 0.0);
	jobq__backoff_delay(&hi, &b, 1, 0.999999);
	assert_int_equal(lo, 500);
	assert_int_equal(hi, 999);
}

static void
maximum_caps_the_delay(void **state) {
	(void)state;
	jobq_backoff b = {.type = JOBQ_BACKOFF_EXPONENTIAL, .delay_ms = 100, .max_delay_ms = 700};
	int64_t d;
	assert_int_equal(jobq__backoff_delay(&d, &b, 3, 0.0), 0);
	assert_int_equal(d, 400);
	assert_int_equal(jobq__backoff_delay(&d, &b, 4, 0.0), 0);
	assert_int_equal(d, 700);
	assert_int_equal(jobq__backoff_delay(&d, &b, 200, 0.0), 0);
	assert_int_equal(d, 700);
}

static void
custom_backoff_is_left_to_the_worker(void **state) {
	(void)state;
	jobq_backoff b = {.type = JOBQ_BACKOFF_CUSTOM, .delay_ms = 1, .custom_type = "mine"};
	int64_t d;
	assert_int_equal(jobq__backoff_delay(&d, &b, 1, 0.0), JOBQ_ENOTSUP);
}

static void
queue_names_are_checked(void **state) {
	(void)state;
	char long_name[JOBQ_QUEUE_NAME_MAX + 2];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(jobq__validate_queue_name("emails"), 0);
	assert_int_equal(jobq__validate_queue_name(""), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "empty"));
	assert_int_equal(jobq__validate_queue_name("a:b"), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), ":"));
	assert_int_equal(jobq__validate_queue_name(long_name), JOBQ_EINVAL);
	assert_int_equal(jobq__validate_queue_name("tab\there"), JOBQ_EINVAL);
}

static void
custom_ids_are_checked(void **state) {
	(void)state;
	assert_int_equal(jobq__validate_custom_id("order-17"), 0);
	const char *bad[] = {"", "17", "-3", "0", "0:x", "a:b", "meta", "wait", "events", "id"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(jobq__validate_custom_id(bad[i]), JOBQ_EINVAL);
		assert_true(strlen(jobq_error_message()) > 0);
	}
}

static void
job_options_are_checked(void **state) {
	(void)state;
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	assert_int_equal(jobq__validate_job_options(&o), 0);
	o.priority = JOBQ_PRIORITY_MAX + 1;
	assert_int_equal(jobq__validate_job_options(&o), JOBQ_EINVAL);
	o = (jobq_job_options)JOBQ_JOB_OPTIONS_INIT;
	o.delay_ms = -1;
	assert_int_equal(jobq__validate_job_options(&o), JOBQ_EINVAL);
	o = (jobq_job_options)JOBQ_JOB_OPTIONS_INIT;
	o.backoff.jitter = 1.5;
	assert_int_equal(jobq__validate_job_options(&o), JOBQ_EINVAL);
	o = (jobq_job_options)JOBQ_JOB_OPTIONS_INIT;
	o.version = 99;
	assert_int_equal(jobq__validate_job_options(&o), JOBQ_EVERSION);
	o = (jobq_job_options)JOBQ_JOB_OPTIONS_INIT;
	o.remove_on_complete.mode = JOBQ_KEEP_LIMIT;
	o.remove_on_complete.count = -1;
	o.remove_on_complete.age_ms = -1;
	assert_int_equal(jobq__validate_job_options(&o), JOBQ_EINVAL);
	o = (jobq_job_options)JOBQ_JOB_OPTIONS_INIT;
	o.dedup_ttl_ms = 10;
	assert_int_equal(jobq__validate_job_options(&o), JOBQ_EINVAL);
}

static void
json_is_checked(void **state) {
	(void)state;
	assert_int_equal(jobq__validate_json("x", "{\"a\":1}", 7), 0);
	assert_int_equal(jobq__validate_json("x", "42", 2), 0);
	assert_int_equal(jobq__validate_json("x", "\"s\"", 3), 0);
	assert_int_equal(jobq__validate_json("result", "{oops", 5), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "result is not valid JSON"));
}

static void
error_table_names_every_code(void **state) {
	(void)state;
	assert_string_equal(jobq_error_name(JOBQ_ELOCKLOST), "JOBQ_ELOCKLOST");
	assert_string_equal(jobq_error_name(JOBQ_OK), "JOBQ_OK");
	assert_string_equal(jobq_strerror(12345), "unknown error");
	for (int code = JOBQ_ERROR; code >= JOBQ_EUSER; code--)
		assert_string_not_equal(jobq_strerror(code), "unknown error");
}

static int listener_calls;
static void
count_call(void *arg) {
	(void)arg;
	listener_calls++;
}

static void
manual_clock_moves_only_when_advanced(void **state) {
	(void)state;
	jobq_clock *c;
	assert_int_equal(jobq_clock_manual_new(&c, 1000), 0);
	assert_int_equal(jobq_clock_now(c), 1000);
	assert_int_equal(jobq_clock__listen(c, count_call, NULL), 0);
	assert_int_equal(jobq_clock_advance(c, 250), 0);
	assert_int_equal(jobq_clock_now(c), 1250);
	assert_int_equal(listener_calls, 1);
	assert_int_equal(jobq_clock_advance(c, -1), JOBQ_EINVAL);
	assert_int_equal(jobq_clock_now(c), 1250);
	jobq_clock__unlisten(c, count_call, NULL);
	assert_int_equal(jobq_clock_advance(c, 1), 0);
	assert_int_equal(listener_calls, 1);
	assert_int_equal(jobq_clock_advance(jobq_clock_system(), 5), JOBQ_EINVAL);
	jobq_clock_free(c);
}

/* A handler thread's batches: sized for about a millisecond at the speed of the last one
 * (at least twice, at most 16 times as large, at most 256), kept between 1 and 2 ms, back to
 * one job beyond 2 ms. */
static void
batch_size_follows_handler_speed(void **state) {
	(void)state;
	assert_int_equal(jobq_worker__next_batch_size(1, 0), 16);    /* instant: 16 times */
	assert_int_equal(jobq_worker__next_batch_size(16, 10), 256); /* capped at 256 */
	assert_int_equal(jobq_worker__next_batch_size(256, 5), 256);
	assert_int_equal(jobq_worker__next_batch_size(10, 100), 100); /* 10 us a job: 100 */
	assert_int_equal(jobq_worker__next_batch_size(10, 40), 160);  /* 4 us a job: at most 16x */
	assert_int_equal(jobq_worker__next_batch_size(10, 900), 20);  /* nearly 1 ms: twice */
	assert_int_equal(jobq_worker__next_batch_size(20, 1500), 20); /* 1-2 ms: as it is */
	assert_int_equal(jobq_worker__next_batch_size(20, 2001), 1);  /* too slow: one */
	assert_int_equal(jobq_worker__next_batch_size(1, 5000), 1);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(fixed_backoff_is_constant),
	    cmocka_unit_test(exponential_backoff_doubles),
	    cmocka_unit_test(jitter_stays_in_bounds),
	    cmocka_unit_test(maximum_caps_the_delay),
	    cmocka_unit_test(custom_backoff_is_left_to_the_worker),
	    cmocka_unit_test(queue_names_are_checked),
	    cmocka_unit_test(custom_ids_are_checked),
	    cmocka_unit_test(job_options_are_checked),
	    cmocka_unit_test(json_is_checked),
	    cmocka_unit_test(error_table_names_every_code),
	    cmocka_unit_test(manual_clock_moves_only_when_advanced),
	    cmocka_unit_test(batch_size_follows_handler_speed),
	};
	return cmocka_run_group_tests_name("unit.core_policy", tests, NULL, NULL);
}
