/*
 * The log hook on the memory backend: silent without a handler; with one, a record for a job
 * failed for good, stalled jobs recovered, a lock lost and a handler that returned after its
 * lock was lost, each with its level, component, queue and job id. Time runs on a manual
 * clock; the waits are bounded polls on a condition.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "jobq.h"

#define MAX_RECORDS 64

typedef struct record {
	jobq_log_level level;
	char component[32], queue[64], job[160], message[512];
} record;

static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static record records[MAX_RECORDS];
static int nrecords;

static void
collect(const jobq_log_record *r, void *user) {
	atomic_int *calls = user;
	atomic_fetch_add(calls, 1);
	pthread_mutex_lock(&rec_mu);
	if (nrecords < MAX_RECORDS) {
		record *d = &records[nrecords++];
		d->level = r->level;
		snprintf(d->component, sizeof(d->component), "%s", r->component);
		snprintf(d->queue, sizeof(d->queue), "%s", r->queue ? r->queue : "");
		snprintf(d->job, sizeof(d->job), "%s", r->job_id ? r->job_id : "");
		snprintf(d->message, sizeof(d->message), "%s", r->message);
	}
	pthread_mutex_unlock(&rec_mu);
}

static atomic_int calls;

static void
reset(void) {
	pthread_mutex_lock(&rec_mu);
	nrecords = 0;
	pthread_mutex_unlock(&rec_mu);
	atomic_store(&calls, 0);
	jobq_log_set_handler(collect, &calls);
}

/* The first record whose message contains `text`, copied into *out; 1 if found. */
static int
find(record *out, const char *text) {
	int found = 0;
	pthread_mutex_lock(&rec_mu);
	for (int i = 0; i < nrecords && !found; i++)
		if (strstr(records[i].message, text)) {
			*out = records[i];
			found = 1;
		}
	pthread_mutex_unlock(&rec_mu);
	return found;
}

static void
pause_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Polls for a record containing `text` for up to 10 s. */
static int
wait_record(record *out, const char *text) {
	for (int i = 0; i < 1000; i++) {
		if (find(out, text))
			return 1;
		pause_ms(10);
	}
	return 0;
}

typedef struct fixture {
	jobq_clock *clock;
	jobq_store *store;
	jobq_queue *q;
} fixture;

static int
setup(void **state) {
	static fixture f;
	jobq_store_options so = JOBQ_STORE_OPTIONS_INIT;
	assert_int_equal(jobq_clock_manual_new(&f.clock, 1000000), 0);
	so.clock = f.clock;
	assert_int_equal(jobq_store_open(&f.store, "mem://", &so), 0);
	assert_int_equal(jobq_queue_open(&f.q, f.store, "logq"), 0);
	*state = &f;
	reset();
	return 0;
}

static int
teardown(void **state) {
	fixture *f = *state;
	jobq_log_set_handler(NULL, NULL);
	jobq_queue_close(f->q);
	jobq_store_close(f->store);
	jobq_clock_free(f->clock);
	return 0;
}

static void
test_silent_by_default(void **state) {
	fixture *f = *state;
	jobq_job_id id;
	jobq_job *job;
	jobq_log_set_handler(NULL, NULL);
	assert_int_equal(jobq_log_enabled(), 0);
	jobq_log_emit(JOBQ_LOG_ERROR, "test", NULL, NULL, "nobody hears %d", 1);
	assert_int_equal(jobq_queue_add(&id, f->q, "n", "{}", 2, NULL), 0);
	assert_int_equal(jobq_queue_fetch(&job, f->q, 1000), 0);
	assert_true(jobq_job_fail(job, "boom", 0) >= 0);
	jobq_job_free(job);
	assert_int_equal(atomic_load(&calls), 0);
	assert_string_equal(jobq_log_level_name(JOBQ_LOG_DEBUG), "debug");
	assert_string_equal(jobq_log_level_name(JOBQ_LOG_INFO), "info");
	assert_string_equal(jobq_log_level_name(JOBQ_LOG_WARN), "warn");
	assert_string_equal(jobq_log_level_name(JOBQ_LOG_ERROR), "error");
	assert_string_equal(jobq_log_level_name((jobq_log_level)42), "?");
}

static void
test_emit_fields(void **state) {
	(void)state;
	record r;
	char long_text[2000];
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	jobq_log_emit(JOBQ_LOG_INFO, "app", "qq", "7", "hello %s", "world");
	assert_true(find(&r, "hello world"));
	assert_int_equal(r.level, JOBQ_LOG_INFO);
	assert_string_equal(r.component, "app");
	assert_string_equal(r.queue, "qq");
	assert_string_equal(r.job, "7");
	jobq_log_emit(JOBQ_LOG_DEBUG, NULL, NULL, NULL, "%s", long_text);
	pthread_mutex_lock(&rec_mu);
	assert_int_equal(strlen(records[nrecords - 1].message), sizeof(r.message) - 1);
	assert_string_equal(records[nrecords - 1].component, "jobq");
	pthread_mutex_unlock(&rec_mu);
}

static void
test_failed_for_good(void **state) {
	fixture *f = *state;
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	jobq_job_id id;
	jobq_job *job;
	record r;
	char text[256];
	o.attempts = 2;
	assert_int_equal(jobq_queue_add(&id, f->q, "n", "{}", 2, &o), 0);
	assert_int_equal(jobq_queue_fetch(&job, f->q, 1000), 0);
	assert_true(jobq_job_fail(job, "first", 0) >= 0);
	jobq_job_free(job);
	assert_false(find(&r, "failed for good")); /* a retry is no news */
	assert_int_equal(jobq_queue_fetch(&job, f->q, 1000), 0);
	assert_true(jobq_job_fail(job, "second", 0) >= 0);
	jobq_job_free(job);
	snprintf(text, sizeof(text), "job %s failed for good after 2 attempts: second", id.str);
	assert_true(find(&r, text));
	assert_int_equal(r.level, JOBQ_LOG_WARN);
	assert_string_equal(r.component, "worker");
	assert_string_equal(r.queue, "logq");
	assert_string_equal(r.job, id.str);
}

static void
test_stalled_recovered(void **state) {
	fixture *f = *state;
	jobq_job_id id;
	jobq_job *job;
	record r;
	assert_int_equal(jobq_queue_add(&id, f->q, "n", "{}", 2, NULL), 0);
	assert_int_equal(jobq_queue_fetch(&job, f->q, 1000), 0);
	assert_int_equal(jobq_queue_check_stalled(f->q, 1), 0); /* the lock is live */
	assert_false(find(&r, "stalled"));
	assert_int_equal(jobq_clock_advance(f->clock, 2000), 0);
	assert_int_equal(jobq_queue_check_stalled(f->q, 1), 1);
	jobq_job_free(job);
	assert_true(find(&r, "stalled"));
	assert_int_equal(r.level, JOBQ_LOG_WARN);
	assert_string_equal(r.component, "reaper");
	assert_string_equal(r.queue, "logq");
	assert_string_equal(r.job, id.str);
}

static atomic_int handler_started;

/* Runs until its lock is lost (bounded), then returns success. */
static int
outlive_lock(jobq_job *job, void *payload) {
	(void)payload;
	atomic_store(&handler_started, 1);
	for (int i = 0; i < 1000 && !jobq_job_lock_lost(job); i++)
		pause_ms(10);
	return 0;
}

static void
test_lock_lost_and_handler_outlives(void **state) {
	fixture *f = *state;
	jobq_worker_options wo = JOBQ_WORKER_OPTIONS_INIT;
	jobq_worker *w;
	jobq_job_id id;
	record r;
	wo.lock_ms = 1000;
	wo.stalled_interval_ms = -1;
	atomic_store(&handler_started, 0);
	assert_int_equal(jobq_queue_add(&id, f->q, "n", "{}", 2, NULL), 0);
	assert_int_equal(jobq_worker_new(&w, f->q, outlive_lock, NULL, &wo), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	for (int i = 0; i < 1000 && !atomic_load(&handler_started); i++)
		pause_ms(10);
	assert_true(atomic_load(&handler_started));
	/* past the lock's expiry before the heartbeat renews it: the renewal finds it lost.
	 * Advanced again while nothing is told: the timer thread may have read the clock for
	 * the first time after an advance, and waits for the next one. */
	int told = 0;
	for (int i = 0; i < 100 && !told; i++) {
		assert_int_equal(jobq_clock_advance(f->clock, 5000), 0);
		for (int k = 0; k < 10 && !(told = find(&r, "its lock was lost")); k++)
			pause_ms(10);
	}
	assert_true(told);
	assert_int_equal(r.level, JOBQ_LOG_WARN);
	assert_string_equal(r.component, "worker");
	assert_string_equal(r.queue, "logq");
	assert_string_equal(r.job, id.str);
	assert_true(wait_record(&r, "handler returned after the job's lock was lost"));
	assert_string_equal(r.job, id.str);
	assert_int_equal(jobq_worker_close(w, 5000), 0);
	jobq_worker_free(w);
}

static void
test_list_queues(void **state) {
	fixture *f = *state;
	jobq_queue *other;
	jobq_strings *names;
	assert_int_equal(jobq_queue_open(&other, f->store, "alpha"), 0);
	assert_int_equal(jobq_store_list_queues(&names, f->store), 0);
	assert_int_equal(names->count, 2);
	assert_string_equal(names->items[0], "alpha");
	assert_string_equal(names->items[1], "logq");
	jobq_strings_free(names);
	assert_int_equal(jobq_queue_count_workers(other), JOBQ_ENOTSUP);
	jobq_queue_close(other);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_silent_by_default, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_emit_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_for_good, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stalled_recovered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock_lost_and_handler_outlives, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_queues, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
