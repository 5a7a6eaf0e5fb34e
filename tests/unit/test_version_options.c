/* Unit tests of the version (one number in CMakeLists.txt, the same in the macros and at run
 * time) and of the options macros: each *_OPTIONS_INIT gives what its _init() function gives,
 * field by field (the macros are positional so that C++ takes them; a field out of place
 * would show here). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <jobq.h>

static void
version_macros_match_the_library(void **state) {
	(void)state;
	char expect[32];
	snprintf(expect, sizeof(expect), "%d.%d.%d", JOBQ_VERSION_MAJOR, JOBQ_VERSION_MINOR,
	         JOBQ_VERSION_PATCH);
	assert_string_equal(JOBQ_VERSION_STRING, expect);
	assert_string_equal(jobq_version(), JOBQ_VERSION_STRING);
	assert_string_equal(JOBQ_VERSION, JOBQ_VERSION_STRING);
	assert_int_equal(JOBQ_VERSION_NUMBER, JOBQ_VERSION_MAJOR * 10000 +
	                                          JOBQ_VERSION_MINOR * 100 + JOBQ_VERSION_PATCH);
}

static void
assert_keep_equal(const jobq_keep *a, const jobq_keep *b) {
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->count, b->count);
	assert_int_equal(a->age_ms, b->age_ms);
}

static void
job_options_macro_is_the_defaults(void **state) {
	(void)state;
	jobq_job_options m = JOBQ_JOB_OPTIONS_INIT, f;
	memset(&f, 0xa5, sizeof(f));
	assert_int_equal(jobq_job_options_init(&f, JOBQ_JOB_OPTIONS_VERSION), 0);
	assert_int_equal(m.version, JOBQ_JOB_OPTIONS_VERSION);
	assert_int_equal(m.version, f.version);
	assert_int_equal(m.delay_ms, f.delay_ms);
	assert_int_equal(m.priority, f.priority);
	assert_int_equal(m.lifo, f.lifo);
	assert_int_equal(m.attempts, f.attempts);
	assert_int_equal(m.backoff.type, JOBQ_BACKOFF_NONE);
	assert_int_equal(m.backoff.type, f.backoff.type);
	assert_int_equal(m.backoff.delay_ms, f.backoff.delay_ms);
	assert_true(m.backoff.jitter == f.backoff.jitter);
	assert_int_equal(m.backoff.max_delay_ms, f.backoff.max_delay_ms);
	assert_null(m.backoff.custom_type);
	assert_null(f.backoff.custom_type);
	assert_null(m.job_id);
	assert_null(f.job_id);
	assert_keep_equal(&m.remove_on_complete, &f.remove_on_complete);
	assert_keep_equal(&m.remove_on_fail, &f.remove_on_fail);
	assert_int_equal(m.remove_on_complete.mode, JOBQ_KEEP_DEFAULT);
	assert_int_equal(m.keep_logs, f.keep_logs);
	assert_int_equal(m.size_limit, f.size_limit);
	assert_null(m.dedup_id);
	assert_null(f.dedup_id);
	assert_int_equal(m.dedup_ttl_ms, f.dedup_ttl_ms);
	assert_int_equal(m.timestamp, f.timestamp);
	assert_int_equal(jobq_job_options_init(&f, JOBQ_JOB_OPTIONS_VERSION + 1), JOBQ_EVERSION);
	/* version 2 appended stack_trace_limit: a version 1 struct is shorter, so it is refused */
	assert_int_equal(jobq_job_options_init(&f, 1), JOBQ_EVERSION);
}

static void
worker_options_macro_is_the_defaults(void **state) {
	(void)state;
	jobq_worker_options m = JOBQ_WORKER_OPTIONS_INIT, f;
	memset(&f, 0xa5, sizeof(f));
	assert_int_equal(jobq_worker_options_init(&f, JOBQ_WORKER_OPTIONS_VERSION), 0);
	assert_int_equal(m.version, JOBQ_WORKER_OPTIONS_VERSION);
	assert_int_equal(m.version, f.version);
	assert_int_equal(m.concurrency, 1);
	assert_int_equal(m.concurrency, f.concurrency);
	assert_int_equal(m.lock_ms, 30000);
	assert_int_equal(m.lock_ms, f.lock_ms);
	assert_int_equal(m.lock_renew_ms, f.lock_renew_ms);
	assert_int_equal(m.stalled_interval_ms, 30000);
	assert_int_equal(m.stalled_interval_ms, f.stalled_interval_ms);
	assert_int_equal(m.max_stalled, 1);
	assert_int_equal(m.max_stalled, f.max_stalled);
	assert_keep_equal(&m.remove_on_complete, &f.remove_on_complete);
	assert_keep_equal(&m.remove_on_fail, &f.remove_on_fail);
	assert_null(m.backoff_fn);
	assert_null(f.backoff_fn);
	assert_null(m.backoff_payload);
	assert_null(m.on_event);
	assert_null(f.on_event);
	assert_null(m.event_payload);
}

static void
store_and_backend_options_macros_are_the_defaults(void **state) {
	(void)state;
	jobq_store_options sm = JOBQ_STORE_OPTIONS_INIT, sf;
	assert_int_equal(jobq_store_options_init(&sf, JOBQ_STORE_OPTIONS_VERSION), 0);
	assert_int_equal(sm.version, sf.version);
	assert_null(sm.clock);
	assert_null(sf.clock);
#ifdef JOBQ_HAVE_LMDB
	jobq_lmdb_options lm = JOBQ_LMDB_OPTIONS_INIT, lf;
	assert_int_equal(jobq_lmdb_options_init(&lf, JOBQ_LMDB_OPTIONS_VERSION), 0);
	assert_int_equal(lm.version, lf.version);
	assert_int_equal(lm.durability, lf.durability);
	assert_int_equal(lm.sync_ms, lf.sync_ms);
	assert_int_equal(lm.map_size, lf.map_size);
	assert_int_equal(lm.file_mode, lf.file_mode);
#endif
#ifdef JOBQ_HAVE_REDIS
	jobq_redis_options rm = JOBQ_REDIS_OPTIONS_INIT, rf;
	assert_int_equal(jobq_redis_options_init(&rf, JOBQ_REDIS_OPTIONS_VERSION), 0);
	assert_int_equal(rm.version, rf.version);
	assert_int_equal(rm.port, rf.port);
	assert_int_equal(rm.db, rf.db);
	assert_null(rm.host);
	assert_null(rm.prefix);
	assert_int_equal(rm.connect_timeout_ms, rf.connect_timeout_ms);
	assert_int_equal(rm.command_timeout_ms, rf.command_timeout_ms);
	assert_int_equal(rm.connect_wait_ms, rf.connect_wait_ms);
#endif
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(version_macros_match_the_library),
	    cmocka_unit_test(job_options_macro_is_the_defaults),
	    cmocka_unit_test(worker_options_macro_is_the_defaults),
	    cmocka_unit_test(store_and_backend_options_macros_are_the_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
