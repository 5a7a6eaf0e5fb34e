/* Bad input: every refusal gets the right code, a non-empty message, and changes nothing. */
#define _GNU_SOURCE /* syscall(SYS_gettid), to see that a thread is blocked */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "conf.h"
#include "dump.h"

/* Adds with `o` and asserts error `code`, a message, and unchanged counts. */
static void
add_refused(conf *c, const char *name, const char *data, size_t len, const jobq_job_options *o,
            int code) {
	jobq_counts before = conf_counts(c), after;
	jobq_job_id id;
	int rc = jobq_queue_add(&id, c->q, name, data, len, o);

	conf_assert_error(rc, code);
	after = conf_counts(c);
	conf_assert_same_counts(&before, &after);
}

/* Data larger than size_limit: JOBQ_EINVAL; exactly the limit is accepted. */
static void
errors_oversized_payload(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();

	o.size_limit = 10;
	add_refused(c, "n", "\"123456789\"", 11, &o, JOBQ_EINVAL);
	conf_add(c, NULL, "n", "\"12345678\"", &o);
	conf_assert_counts(c, 1, 0, 0, 0, 0, 0);
}

/* Invalid job options: priority > 2^21-1, negative delay, jitter outside 0..1, negative
 * backoff delay, bad version. */
static void
errors_invalid_job_options(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o;
	jobq_job_options init;

	o = conf_opts();
	o.priority = JOBQ_PRIORITY_MAX + 1;
	add_refused(c, "n", "{}", 2, &o, JOBQ_EINVAL);
	o = conf_opts();
	o.delay_ms = -1;
	add_refused(c, "n", "{}", 2, &o, JOBQ_EINVAL);
	o = conf_opts();
	o.attempts = 3;
	o.backoff.type = JOBQ_BACKOFF_FIXED;
	o.backoff.delay_ms = 100;
	o.backoff.jitter = -0.1;
	add_refused(c, "n", "{}", 2, &o, JOBQ_EINVAL);
	o.backoff.jitter = 1.5;
	add_refused(c, "n", "{}", 2, &o, JOBQ_EINVAL);
	o.backoff.jitter = 0;
	o.backoff.delay_ms = -5;
	add_refused(c, "n", "{}", 2, &o, JOBQ_EINVAL);
	o = conf_opts();
	o.version = JOBQ_JOB_OPTIONS_VERSION + 100;
	add_refused(c, "n", "{}", 2, &o, JOBQ_EVERSION);
	o = conf_opts();
	o.version = 0;
	add_refused(c, "n", "{}", 2, &o, JOBQ_EVERSION);
	conf_assert_error(jobq_job_options_init(&init, JOBQ_JOB_OPTIONS_VERSION + 100),
	                  JOBQ_EVERSION);
	conf_assert_counts(c, 0, 0, 0, 0, 0, 0);
}

/* Invalid worker options: bad version, and a worker is not created. */
static void
errors_invalid_worker_options(void **state) {
	conf *c = conf_begin(state);
	jobq_worker_options wo = conf_wopts();
	jobq_worker_options init;
	jobq_worker *w = NULL;

	wo.version = JOBQ_WORKER_OPTIONS_VERSION + 100;
	conf_assert_error(jobq_worker_new(&w, c->q, NULL, NULL, &wo), JOBQ_EVERSION);
	assert_null(w);
	conf_assert_error(jobq_worker_options_init(&init, JOBQ_WORKER_OPTIONS_VERSION + 100),
	                  JOBQ_EVERSION);
}

/* An unknown keep mode is refused, naming the field, by the worker and by the job options
 * alike (it used to reach the backends, which each read it differently). */
static void
errors_unknown_keep_mode(void **state) {
	conf *c = conf_begin(state);
	jobq_worker_options wo = conf_wopts();
	jobq_job_options o = conf_opts();
	jobq_worker *w = NULL;

	wo.remove_on_complete.mode = (jobq_keep_mode)9;
	conf_assert_error(jobq_worker_new(&w, c->q, NULL, NULL, &wo), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "remove_on_complete"));
	assert_null(w);
	wo = conf_wopts();
	wo.remove_on_fail.mode = (jobq_keep_mode)-1;
	conf_assert_error(jobq_worker_new(&w, c->q, NULL, NULL, &wo), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "remove_on_fail"));
	assert_null(w);
	o.remove_on_complete.mode = (jobq_keep_mode)9;
	add_refused(c, "n", "{}", 2, &o, JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "remove_on_complete"));
	o = conf_opts();
	o.remove_on_fail.mode = (jobq_keep_mode)9;
	add_refused(c, "n", "{}", 2, &o, JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "remove_on_fail"));
	conf_assert_counts(c, 0, 0, 0, 0, 0, 0);
}

/* Extreme times through the API, the same on every backend: a delay or timestamp whose sum
 * passes JOBQ_TIME_MAX_MS leaves the job delayed (never due at once); a timestamp past it and
 * lock times past it are refused with JOBQ_EINVAL naming the field, changing nothing. */
static void
errors_extreme_times(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_worker_options wo = conf_wopts();
	jobq_worker *w = NULL;
	jobq_job *job = NULL;
	jobq_job_id a, b;

	o.delay_ms = INT64_MAX;
	conf_add(c, &a, "n", NULL, &o);
	o.delay_ms = 1000;
	o.timestamp = JOBQ_TIME_MAX_MS - 10;
	conf_add(c, &b, "n", NULL, &o);
	assert_int_equal(conf_state(c, a.str), JOBQ_STATE_DELAYED);
	assert_int_equal(conf_state(c, b.str), JOBQ_STATE_DELAYED);
	conf_fetch_none(c);
	o.timestamp = INT64_MAX;
	add_refused(c, "n", "{}", 2, &o, JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "timestamp"));
	conf_assert_counts(c, 0, 0, 2, 0, 0, 0);

	/* a lock time past the limit: refused, the job stays waiting */
	assert_int_equal(jobq_queue_promote(c->q, a.str), 1);
	conf_assert_error(jobq_queue_fetch(&job, c->q, INT64_MAX), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "lock_ms"));
	assert_null(job);
	conf_assert_error(jobq_queue_fetch(&job, c->q, JOBQ_TIME_MAX_MS + 1), JOBQ_EINVAL);
	conf_assert_counts(c, 1, 0, 1, 0, 0, 0);
	/* the longest lock is taken and held */
	job = conf_fetch(c, a.str, JOBQ_TIME_MAX_MS);
	conf_assert_error(jobq_job_extend_lock(job, INT64_MAX), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "lock_ms"));
	assert_int_equal(jobq_job_extend_lock(job, JOBQ_TIME_MAX_MS), 0);
	assert_int_equal(jobq_queue_check_stalled(c->q, 0), 0);
	assert_int_equal(jobq_queue_check_stalled(c->q, 0), 0);
	assert_int_equal(jobq_job_complete(job, NULL), 0);
	jobq_job_free(job);

	wo.lock_ms = INT64_MAX;
	conf_assert_error(jobq_worker_new(&w, c->q, NULL, NULL, &wo), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "lock_ms"));
	wo = conf_wopts();
	wo.stalled_interval_ms = INT64_MAX;
	conf_assert_error(jobq_worker_new(&w, c->q, NULL, NULL, &wo), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "stalled_interval_ms"));
	assert_null(w);
	conf_assert_counts(c, 0, 0, 1, 0, 1, 0);
}

/* Queue names: empty, over-long, with ':' or a control character are refused; the longest
 * allowed name works. */
static void
errors_bad_queue_names(void **state) {
	conf *c = conf_begin(state);
	char longname[JOBQ_QUEUE_NAME_MAX + 2];
	jobq_queue *q = NULL;

	conf_assert_error(jobq_queue_open(&q, c->store, ""), JOBQ_EINVAL);
	assert_null(q);
	memset(longname, 'q', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	conf_assert_error(jobq_queue_open(&q, c->store, longname), JOBQ_EINVAL);
	assert_null(q);
	conf_assert_error(jobq_queue_open(&q, c->store, "a:b"), JOBQ_EINVAL);
	conf_assert_error(jobq_queue_open(&q, c->store, "a\nb"), JOBQ_EINVAL);
	longname[JOBQ_QUEUE_NAME_MAX] = '\0';
	assert_int_equal(jobq_queue_open(&q, c->store, longname), 0);
	assert_int_equal(jobq_queue_add(&(jobq_job_id){{0}}, q, "n", "{}", 2, NULL),
	                 JOBQ_ADD_CREATED);
	jobq_queue_close(q);
	/* Queues are separate: the other queue's job is not ours. */
	conf_assert_counts(c, 0, 0, 0, 0, 0, 0);
}

/* Custom job ids that would collide with generated ids or storage keys are refused. */
static void
errors_bad_job_ids(void **state) {
	conf *c = conf_begin(state);
	static const char *const bad[] = {
	    "123",     "0",         "a:b",    "0:x",           "meta",
	    "wait",    "events",    "id",     "active",        "delayed",
	    "paused",  "completed", "failed", "prioritized",   "marker",
	    "stalled", "limiter",   "pc",     "stalled-check", "waiting-children",
	    "repeat"};
	char longid[JOBQ_ID_MAX + 2];
	jobq_job_options o;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = conf_opts();
		o.job_id = bad[i];
		add_refused(c, "n", "{}", 2, &o, JOBQ_EINVAL);
	}
	memset(longid, 'j', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	o = conf_opts();
	o.job_id = longid;
	add_refused(c, "n", "{}", 2, &o, JOBQ_EINVAL);
	longid[JOBQ_ID_MAX] = '\0';
	conf_add(c, NULL, "n", NULL, &o);
	conf_assert_counts(c, 1, 0, 0, 0, 0, 0);
}

/* JSON nested `depth` levels deep ([[...[1]...]]), a malloc'd string. */
static char *
deep_json(size_t depth, size_t *len) {
	char *s = malloc(2 * depth + 2);
	assert_non_null(s);
	memset(s, '[', depth);
	s[depth] = '1';
	memset(s + depth + 1, ']', depth);
	s[2 * depth + 1] = '\0';
	*len = 2 * depth + 1;
	return s;
}

/* What Node accepts, jobq accepts and gives back unchanged: custom ids of BullMQ's three-part
 * form and the strings Node does not take for integers (leading zeros, a '+', beyond what a
 * double holds), control characters; data and results nested deeper than 2,048 levels (Node
 * writes some thousands) and with \u0000. Where jobq refuses, the message says why. */
static void
errors_node_accepted_data(void **state) {
	conf *c = conf_begin(state);
	static const char *const ids[] = {
	    "a:b:c", "repeat:s:1700000000000", "007", "+5",      "-0",
	    "1.5",   "12345678901234567890",   "1e3", "tab\tid", "x y:z:w"};
	jobq_job_options o;
	jobq_job_id id, deep_id;
	jobq_job *job;
	size_t len, got;
	char *deep = deep_json(5000, &len);

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		o = conf_opts();
		o.job_id = ids[i];
		conf_add(c, &id, "n", NULL, &o);
		assert_string_equal(id.str, ids[i]);
		job = conf_get(c, ids[i]);
		assert_string_equal(jobq_job_id_of(job), ids[i]);
		jobq_job_free(job);
	}
	conf_add(c, &deep_id, "deep", deep, NULL);
	job = conf_get(c, deep_id.str);
	assert_memory_equal(jobq_job_data(job, &got), deep, len);
	assert_int_equal(got, len);
	jobq_job_free(job);
	conf_add(c, &id, "nul \x01 name", "{\"s\":\"a\\u0000b\"}", NULL);
	job = conf_get(c, id.str);
	assert_string_equal(jobq_job_data(job, &got), "{\"s\":\"a\\u0000b\"}");
	assert_string_equal(jobq_job_name(job), "nul \x01 name");
	jobq_job_free(job);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		assert_int_equal(jobq_queue_remove(c->q, ids[i]), 0);
	conf_fetch_complete(c, deep_id.str, deep); /* the oldest left */
	job = conf_get(c, deep_id.str);
	assert_string_equal(jobq_job_name(job), "deep");
	assert_string_equal(jobq_job_result(job), deep);
	jobq_job_free(job);
	free(deep);

	/* refused, saying why */
	o = conf_opts();
	o.job_id = "42";
	conf_assert_error(jobq_queue_add(&id, c->q, "n", "{}", 2, &o), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "integer"));
	o.job_id = "a:b";
	conf_assert_error(jobq_queue_add(&id, c->q, "n", "{}", 2, &o), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "three-part"));
	o.job_id = "de:x:y";
	conf_assert_error(jobq_queue_add(&id, c->q, "n", "{}", 2, &o), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "reserved"));
	o.job_id = "0:x:y";
	conf_assert_error(jobq_queue_add(&id, c->q, "n", "{}", 2, &o), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "wake-up markers"));
	if (conf_has(c, JOBQ_CAP_JSON_DATA)) {
		conf_assert_error(jobq_queue_add(&id, c->q, "n", "[[1]", 4, NULL), JOBQ_EINVAL);
		assert_non_null(strstr(jobq_error_message(), "not valid JSON"));
	}
}

/* What a queue holds, as far as a refused call could change it. */
/* Runs every public call that takes a job id with `id` (which names one of the queue's own
 * storage keys): lookups answer JOBQ_ENOTFOUND, adds JOBQ_EINVAL, each with a message. */
static void
reserved_id_calls(conf *c, const char *id, const char *token) {
	jobq_job *job = (jobq_job *)1;
	jobq_state st;
	jobq_strings *logs = (jobq_strings *)1;
	jobq_job_options o = conf_opts();
	jobq_job_id jid;
	int outcome;

	conf_assert_error(jobq_queue_get_job(&job, c->q, id), JOBQ_ENOTFOUND);
	assert_null(job);
	conf_assert_error(jobq_queue_get_state(&st, c->q, id), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_get_logs(&logs, c->q, id, 0, 0), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_remove(c->q, id), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_promote(c->q, id), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_retry(c->q, id), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_update_progress(c->q, id, "42"), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_add_log(c->q, id, "line"), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_complete(c->q, id, token, "1"), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_fail(c->q, id, token, "boom", 0), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_extend_lock(c->q, id, token, CONF_LOCK_MS), JOBQ_ENOTFOUND);
	job = (jobq_job *)1;
	conf_assert_error(jobq_queue_wait_job(&job, c->q, id, 0), JOBQ_ENOTFOUND);
	assert_null(job);
	o.job_id = id;
	conf_assert_error(jobq_queue_add(&jid, c->q, "n", "{}", 2, &o), JOBQ_EINVAL);
	conf_assert_error(
	    jobq_queue_add_bulk(&jid, &outcome, c->q, &(jobq_job_spec){"n", "{}", 2, &o}, 1),
	    JOBQ_EINVAL);
	conf_assert_error(jobq_queue_add_async(c->q, "n", "{}", 2, &o, NULL, NULL), JOBQ_EINVAL);
	job = NULL;
	conf_assert_error(jobq_queue_request(&job, c->q, "n", "{}", 2, &o, 0), JOBQ_EINVAL);
	assert_null(job);
}

/* Ids that name the queue's own storage keys (BullMQ's key layout: bull:<queue>:meta is the
 * queue's settings, bull:<queue>:<id>:lock a job's lock, ...) reach no store on any backend:
 * every call by id answers "not found" (adds: invalid), and nothing in the queue changes, down
 * to the bytes of every Redis key. */
static void
errors_reserved_ids_touch_nothing(void **state) {
	conf *c = conf_begin(state);
	static const char *const reserved[] = {"wait",
	                                       "paused",
	                                       "active",
	                                       "prioritized",
	                                       "delayed",
	                                       "completed",
	                                       "failed",
	                                       "waiting-children",
	                                       "stalled",
	                                       "stalled-check",
	                                       "marker",
	                                       "meta",
	                                       "id",
	                                       "pc",
	                                       "events",
	                                       "limiter",
	                                       "repeat",
	                                       "metrics",
	                                       "de",
	                                       "dn",
	                                       "delay",
	                                       "priority",
	                                       "de:dd",
	                                       "dn:dd",
	                                       "metrics:completed",
	                                       "metrics:completed:data",
	                                       "metrics:failed:data",
	                                       "repeat:sched",
	                                       "0:marker",
	                                       "a:b:c:d"};
	jobq_job_options o = conf_opts();
	jobq_job_id a, b, cc, d, e, f;
	conf_snapshot before, after;
	char own[2][JOBQ_ID_MAX + 16];
	jobq_job *active, *job;

	/* A queue with a job in every state, a log, a progress, a dedup key, paused. */
	conf_add(c, &a, "n", "{\"a\":1}", NULL);
	active = conf_fetch(c, a.str, CONF_LOCK_MS);
	assert_int_equal(jobq_queue_add_log(c->q, a.str, "started"), 1);
	conf_add(c, &b, "n", "{}", NULL);
	conf_fetch_complete(c, b.str, "{\"ok\":true}");
	conf_add(c, &cc, "n", "{}", NULL);
	assert_int_equal(conf_fetch_fail(c, cc.str, "boom", JOBQ_FAIL_UNRECOVERABLE),
	                 JOBQ_STATE_FAILED);
	conf_add(c, &d, "n", "{}", NULL);
	assert_int_equal(jobq_queue_update_progress(c->q, d.str, "7"), 0);
	o.delay_ms = 3600000;
	conf_add(c, &e, "n", "{}", &o);
	o = conf_opts();
	o.dedup_id = "dd";
	conf_add(c, &f, "n", "{}", &o);
	o = conf_opts();
	o.priority = 5;
	conf_add(c, NULL, "n", "{}", &o);
	assert_int_equal(jobq_queue_pause(c->q), 0);
	snprintf(own[0], sizeof(own[0]), "%s:lock", a.str);
	snprintf(own[1], sizeof(own[1]), "%s:logs", a.str);

	conf_snapshot_take(c, &before);
	assert_int_equal(before.paused, 1);
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		reserved_id_calls(c, reserved[i], jobq_job_token(active));
	for (size_t i = 0; i < 2; i++)
		reserved_id_calls(c, own[i], jobq_job_token(active));
	assert_int_equal(jobq_queue_flush(c->q, conf_ms(5000)), 0);
	conf_snapshot_take(c, &after);

	conf_assert_same_counts(&before.counts, &after.counts);
	assert_int_equal(after.paused, 1);
	assert_int_equal(after.events, before.events);
	conf_snapshot_assert_same(&before, &after);

	/* The real jobs are still there and still answer. */
	job = conf_get(c, a.str);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_ACTIVE);
	jobq_job_free(job);
	assert_int_equal(jobq_queue_complete(c->q, a.str, jobq_job_token(active), "1"), 0);
	jobq_job_free(active);
}

/* Job names: empty or longer than JOBQ_JOB_NAME_MAX are refused. */
static void
errors_bad_job_names(void **state) {
	conf *c = conf_begin(state);
	char *name = malloc(JOBQ_JOB_NAME_MAX + 2);

	assert_non_null(name);
	memset(name, 'n', JOBQ_JOB_NAME_MAX + 1);
	name[JOBQ_JOB_NAME_MAX + 1] = '\0';
	add_refused(c, name, "{}", 2, NULL, JOBQ_EINVAL);
	add_refused(c, NULL, "{}", 2, NULL, JOBQ_EINVAL);
	free(name);
}

/* Data that is not JSON, on a backend that requires JSON data. */
static void
errors_non_json_data(void **state) {
	conf *c = conf_begin(state);

	if (!conf_has(c, JOBQ_CAP_JSON_DATA)) {
		skip();
	}
	add_refused(c, "n", "not json", 8, NULL, JOBQ_EINVAL);
}

/* Unknown job ids: JOBQ_ENOTFOUND everywhere, nothing changes. */
static void
errors_unknown_job(void **state) {
	conf *c = conf_begin(state);
	jobq_job *job = NULL;
	jobq_state st;
	jobq_strings *logs = NULL;
	jobq_counts before, after;

	conf_add(c, NULL, "n", NULL, NULL);
	before = conf_counts(c);
	conf_assert_error(jobq_queue_get_job(&job, c->q, "nope"), JOBQ_ENOTFOUND);
	assert_null(job);
	conf_assert_error(jobq_queue_get_state(&st, c->q, "nope"), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_remove(c->q, "nope"), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_promote(c->q, "nope"), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_retry(c->q, "nope"), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_update_progress(c->q, "nope", "1"), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_add_log(c->q, "nope", "x"), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_get_logs(&logs, c->q, "nope", 0, 0), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_wait_job(&job, c->q, "nope", 0), JOBQ_ENOTFOUND);
	/* Finishing an unknown job: not found, on every backend (backend.h's contract). */
	conf_assert_error(jobq_queue_complete(c->q, "nope", "tok", NULL), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_fail(c->q, "nope", "tok", "x", 0), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_extend_lock(c->q, "nope", "tok", 1000), JOBQ_ENOTFOUND);
	after = conf_counts(c);
	conf_assert_same_counts(&before, &after);
}

/* Operations in the wrong state: completing a waiting job, retrying a waiting job. */
static void
errors_wrong_state(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	jobq_counts before, after;

	conf_add(c, &id, "n", NULL, NULL);
	before = conf_counts(c);
	conf_assert_error(jobq_queue_complete(c->q, id.str, "tok", NULL), JOBQ_ESTATE);
	conf_assert_error(jobq_queue_fail(c->q, id.str, "tok", "x", 0), JOBQ_ESTATE);
	conf_assert_error(jobq_queue_extend_lock(c->q, id.str, "tok", 1000), JOBQ_ESTATE);
	conf_assert_error(jobq_queue_retry(c->q, id.str), JOBQ_ESTATE);
	after = conf_counts(c);
	conf_assert_same_counts(&before, &after);
	assert_int_equal(conf_state(c, id.str), JOBQ_STATE_WAITING);
}

/* Runs `call` between two snapshots: it answers exactly `code` and changes nothing. */
#define assert_refused(c, code, call)                                                              \
	do {                                                                                       \
		conf_snapshot b_, a_;                                                              \
		int rc_;                                                                           \
		conf_snapshot_take((c), &b_);                                                      \
		rc_ = (call);                                                                      \
		conf_snapshot_take((c), &a_);                                                      \
		conf_assert_error(rc_, (code));                                                    \
		conf_snapshot_assert_same(&b_, &a_);                                               \
	} while (0)

/* The contract of include/jobq/sys/backend.h, the same code on every backend, and a refused
 * call leaves the store as it was, byte for byte where the target has a raw dump (Redis:
 * every key; LMDB: every database), else as far as the public API shows it (memory): a missing
 * job answers JOBQ_ENOTFOUND, a job in the wrong state JOBQ_ESTATE, a wrong token or an
 * expired lock on an active job JOBQ_ELOCKLOST; a paused queue gives no job. */
static void
errors_refused_calls_change_nothing(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id a, x, b, f, d, e, r, due;
	jobq_job *act, *expired, *done;
	int64_t deadline, due_at;
	int rc;

	/* active and locked (with a log and a progress), active with an expired lock,
	 * completed (its handle kept), failed, waiting, delayed, prioritized */
	conf_add(c, &a, "n", "{\"a\":1}", NULL);
	act = conf_fetch(c, a.str, CONF_LOCK_MS);
	assert_int_equal(jobq_queue_add_log(c->q, a.str, "started"), 1);
	assert_int_equal(jobq_job_update_progress(act, "5"), 0);
	conf_add(c, &x, "n", "{}", NULL);
	expired = conf_fetch(c, x.str, 1);
	conf_add(c, &b, "n", "{}", NULL);
	done = conf_fetch(c, b.str, CONF_LOCK_MS);
	assert_int_equal(jobq_job_complete(done, "{\"ok\":1}"), 0);
	conf_add(c, &f, "n", "{}", NULL);
	assert_int_equal(conf_fetch_fail(c, f.str, "boom", JOBQ_FAIL_UNRECOVERABLE),
	                 JOBQ_STATE_FAILED);
	conf_add(c, &d, "n", "{}", NULL);
	o.delay_ms = 3600000;
	conf_add(c, &e, "n", "{}", &o);
	o = conf_opts();
	o.priority = 5;
	conf_add(c, NULL, "n", "{}", &o);
	/* a waiting job with attempts left (a refused fail of it takes the retry path) and a
	 * delayed job due in 1 ms (due during the refusals: none of them may promote it) */
	o = conf_opts();
	o.attempts = 3;
	conf_add(c, &r, "n", "{}", &o);
	o = conf_opts();
	o.delay_ms = 1;
	due_at = conf_now(c) + 1;
	conf_add(c, &due, "n", "{}", &o);
	/* x's 1 ms lock expires and the due job falls due: a manual clock passes them; on real
	 * time, wait until a 1 ms extension is refused (while the lock is held, that only keeps it
	 * 1 ms) and until the due time has passed. Each on its own clock: Redis takes due times
	 * from the manual clock but expires locks on the server's (without that wait, a lock still
	 * held at the first snapshot could expire before the second one, failed on Valkey) */
	deadline = conf_mono_ms() + conf_ms(10000);
	if (c->clock != NULL)
		conf_advance(c, 2);
	if (!conf_has(c, JOBQ_CAP_LOCK_CLOCK)) {
		while ((rc = jobq_job_extend_lock(expired, 1)) == 0 && conf_mono_ms() < deadline)
			conf_poll_pause();
		conf_assert_error(rc, JOBQ_ELOCKLOST);
	}
	while (conf_now(c) <= due_at && conf_mono_ms() < deadline)
		conf_poll_pause();
	assert_true(conf_now(c) > due_at);
	assert_int_equal(jobq_queue_pause(c->q), 0);

	/* no such job */
	assert_refused(c, JOBQ_ENOTFOUND, jobq_queue_complete(c->q, "nope", "tok", "1"));
	assert_refused(c, JOBQ_ENOTFOUND, jobq_queue_fail(c->q, "nope", "tok", "x", 0));
	assert_refused(c, JOBQ_ENOTFOUND, jobq_queue_extend_lock(c->q, "nope", "tok", 1000));
	assert_refused(c, JOBQ_ENOTFOUND, jobq_queue_update_progress(c->q, "nope", "1"));
	assert_refused(c, JOBQ_ENOTFOUND, jobq_queue_add_log(c->q, "nope", "x"));
	assert_refused(c, JOBQ_ENOTFOUND, jobq_queue_remove(c->q, "nope"));
	assert_refused(c, JOBQ_ENOTFOUND, jobq_queue_promote(c->q, "nope"));
	assert_refused(c, JOBQ_ENOTFOUND, jobq_queue_retry(c->q, "nope"));
	/* not active: waiting, delayed, completed (with the token it completed with), failed */
	assert_refused(c, JOBQ_ESTATE, jobq_queue_complete(c->q, d.str, "tok", "1"));
	assert_refused(c, JOBQ_ESTATE, jobq_queue_fail(c->q, d.str, "tok", "x", 0));
	assert_refused(c, JOBQ_ESTATE, jobq_queue_fail(c->q, r.str, "tok", "x", 0));
	assert_refused(c, JOBQ_ESTATE, jobq_queue_extend_lock(c->q, e.str, "tok", 1000));
	assert_refused(c, JOBQ_ESTATE, jobq_job_complete(done, "2"));
	assert_refused(c, JOBQ_ESTATE, jobq_job_fail(done, "late", 0));
	assert_refused(c, JOBQ_ESTATE, jobq_job_extend_lock(done, 1000));
	assert_refused(c, JOBQ_ESTATE, jobq_job_update_progress(done, "9"));
	assert_refused(c, JOBQ_ESTATE, jobq_queue_complete(c->q, f.str, "tok", "1"));
	/* the wrong state for promote, retry and remove */
	assert_refused(c, JOBQ_ESTATE, jobq_queue_promote(c->q, d.str));
	assert_refused(c, JOBQ_ESTATE, jobq_queue_promote(c->q, a.str));
	assert_refused(c, JOBQ_ESTATE, jobq_queue_retry(c->q, d.str));
	assert_refused(c, JOBQ_ESTATE, jobq_queue_retry(c->q, b.str));
	assert_refused(c, JOBQ_ESTATE, jobq_queue_remove(c->q, a.str));
	/* active, another token */
	assert_refused(c, JOBQ_ELOCKLOST, jobq_queue_complete(c->q, a.str, "tok", "1"));
	assert_refused(c, JOBQ_ELOCKLOST, jobq_queue_fail(c->q, a.str, "tok", "x", 0));
	assert_refused(c, JOBQ_ELOCKLOST, jobq_queue_extend_lock(c->q, a.str, "tok", 1000));
	/* active, the lock expired */
	assert_refused(c, JOBQ_ELOCKLOST, jobq_job_complete(expired, "1"));
	assert_refused(c, JOBQ_ELOCKLOST, jobq_job_fail(expired, "late", 0));
	assert_refused(c, JOBQ_ELOCKLOST, jobq_job_fail(expired, "late", JOBQ_FAIL_UNRECOVERABLE));
	assert_refused(c, JOBQ_ELOCKLOST, jobq_job_extend_lock(expired, 1000));
	assert_refused(c, JOBQ_ELOCKLOST, jobq_job_update_progress(expired, "9"));
	/* paused: no job, nothing taken (but the due job, promoted first, as fetch would) */
	assert_int_equal(jobq_queue_promote(c->q, due.str), 1);
	{
		jobq_job *job = NULL;
		assert_refused(c, JOBQ_ENOJOB, jobq_queue_fetch(&job, c->q, CONF_LOCK_MS));
		assert_null(job);
	}

	assert_int_equal(jobq_job_complete(act, "1"), 0);
	jobq_job_free(act);
	jobq_job_free(expired);
	jobq_job_free(done);
}

/* The slots the public API reaches only through a worker, called on the backend itself:
 * release answers the lock checks' codes, and complete_fetch gives each refused completion the
 * code complete() would answer; neither changes anything. */
static void
errors_refused_backend_slots(void **state) {
	conf *c = conf_begin(state);
	jobq_backend *b = c->backend;
	jobq_backend_queue *bq = NULL;
	jobq_job_id a, d;
	jobq_job *act;
	conf_snapshot before, after;

	conf_add(c, &a, "n", "{}", NULL);
	act = conf_fetch(c, a.str, CONF_LOCK_MS);
	conf_add(c, &d, "n", "{}", NULL);
	assert_int_equal(b->queue_open(&bq, b, CONF_QUEUE), 0);
	assert_refused(c, JOBQ_ENOTFOUND, b->release(bq, "nope", "tok", conf_now(c)));
	assert_refused(c, JOBQ_ESTATE, b->release(bq, d.str, "tok", conf_now(c)));
	assert_refused(c, JOBQ_ELOCKLOST, b->release(bq, a.str, "tok", conf_now(c)));
	if (b->version >= 2 && b->complete_fetch != NULL) {
		jobq_keep all = {JOBQ_KEEP_ALL, -1, -1};
		jobq_completion done[3] = {{"nope", "tok", "1", all, 1, NULL, 0},
		                           {d.str, "tok", "1", all, 1, NULL, 0},
		                           {a.str, "tok", "1", all, 1, NULL, 0}};
		const char *tokens[1] = {"t"};
		jobq_job *jobs[1] = {NULL};

		conf_snapshot_take(c, &before);
		assert_int_equal(b->complete_fetch(jobs, NULL, bq, done, 3, tokens, 0, CONF_LOCK_MS,
		                                   conf_now(c)),
		                 0);
		conf_snapshot_take(c, &after);
		conf_snapshot_assert_same(&before, &after);
		assert_int_equal(done[0].rc, JOBQ_ENOTFOUND);
		assert_int_equal(done[1].rc, JOBQ_ESTATE);
		assert_int_equal(done[2].rc, JOBQ_ELOCKLOST);
		assert_null(jobs[0]);
		/* an id completed twice in one batch: the second finds the job completed */
		done[0] = (jobq_completion){a.str, jobq_job_token(act), "1", all, 1, NULL, 0};
		done[1] = done[0];
		assert_int_equal(b->complete_fetch(jobs, NULL, bq, done, 2, tokens, 0, CONF_LOCK_MS,
		                                   conf_now(c)),
		                 0);
		assert_int_equal(done[0].rc, 0);
		assert_int_equal(done[1].rc, JOBQ_ESTATE);
		assert_int_equal(conf_state(c, a.str), JOBQ_STATE_COMPLETED);
	} else {
		assert_int_equal(jobq_job_complete(act, "1"), 0);
	}
	b->queue_close(bq);
	jobq_job_free(act);
}

/* Invalid JSON as a result or progress: JOBQ_EINVAL, the job stays active. */
static void
errors_invalid_json_result(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	jobq_job *job;

	conf_add(c, &id, "n", NULL, NULL);
	job = conf_fetch(c, id.str, CONF_LOCK_MS);
	conf_assert_error(jobq_job_complete(job, "{oops"), JOBQ_EINVAL);
	conf_assert_error(jobq_queue_update_progress(c->q, id.str, "[1,"), JOBQ_EINVAL);
	assert_int_equal(conf_state(c, id.str), JOBQ_STATE_ACTIVE);
	conf_assert_counts(c, 0, 1, 0, 0, 0, 0);
	assert_int_equal(jobq_job_complete(job, "{\"fine\":1}"), 0);
	jobq_job_free(job);
}

/* Error names and messages. */
static void
errors_names_and_messages(void **state) {
	(void)state;
	assert_string_equal(jobq_error_name(JOBQ_EINVAL), "JOBQ_EINVAL");
	assert_string_equal(jobq_error_name(JOBQ_ELOCKLOST), "JOBQ_ELOCKLOST");
	assert_string_equal(jobq_strerror(JOBQ_ENOTFOUND), "not found");
	assert_true(strlen(jobq_strerror(12345)) > 0);
	assert_true(strlen(jobq_strerror(JOBQ_EUSER)) > 0);
}

/* --- a closed queue ------------------------------------------------------------------------ */

typedef struct waiter {
	jobq_queue *q;
	const char *id;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int started;
	pid_t tid;
	int rc;
	int64_t took;
	int events; /* wait in jobq_events_read (no timeout) instead of wait_job */
	size_t nevents;
	int64_t timeout; /* wait_job's (0: 30 s) */
} waiter;

static void *
wait_thread(void *arg) {
	waiter *w = arg;
	jobq_job *job = NULL;
	int64_t t0;

	pthread_mutex_lock(&w->mu);
	w->tid = (pid_t)syscall(SYS_gettid);
	w->started = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	t0 = conf_mono_ms();
	if (w->events) {
		/* Blocks with no timeout: only the close can end it. `q` is gone after it. */
		jobq_event_list *list = NULL;
		w->rc = jobq_events_read(&list, w->q, JOBQ_EVENTS_NOW, 10, -1);
		w->nevents = list != NULL ? 1 + jobq_event_list_count(list) : 0;
		jobq_event_list_free(list);
	} else {
		w->rc = jobq_queue_wait_job(&job, w->q, w->id,
		                            w->timeout != 0 ? w->timeout : conf_ms(30000));
	}
	w->took = conf_mono_ms() - t0;
	jobq_job_free(job);
	return NULL;
}

/* The thread's state letter from /proc ('S' while it sleeps in a blocking call), or 0. */
static char
thread_state(pid_t tid) {
	char path[64], buf[512];
	FILE *f;
	char *p, st = 0;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "r");
	if (f == NULL) {
		return 0;
	}
	if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL && p[1] == ' ') {
		st = p[2];
	}
	fclose(f);
	return st;
}

/* Closing a queue handle wakes a thread blocked in wait_job (or, with `events`, in
 * jobq_events_read with no timeout) on it with JOBQ_ECLOSED. `timeout`: wait_job's (0: 30 s). */
static void
closed_queue_wakes(void **state, int events, int64_t timeout) {
	conf *c = conf_begin(state);
	waiter w;
	pthread_t th;
	jobq_job_id id;
	int64_t deadline;
	char st = 0;

	conf_add(c, &id, "n", NULL, NULL);
	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	w.id = id.str;
	w.events = events;
	w.timeout = timeout;
	assert_int_equal(jobq_queue_open(&w.q, c->store, CONF_QUEUE), 0);
	assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
	pthread_mutex_lock(&w.mu);
	while (!w.started) {
		pthread_cond_wait(&w.cv, &w.mu);
	}
	pthread_mutex_unlock(&w.mu);
	/* Close only once the waiter sleeps inside wait_job (it does nothing else). */
	deadline = conf_mono_ms() + conf_ms(10000);
	while (conf_mono_ms() < deadline && (st = thread_state(w.tid)) != 'S' && st != 0) {
		sched_yield();
	}
	jobq_queue_close(w.q);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, JOBQ_ECLOSED); /* its message is the waiter thread's */
	assert_int_equal(w.nevents, 0);       /* no list, not an empty one */
	assert_true(w.took < conf_ms(10000));
	/* The job and the store's other handles are untouched. */
	assert_int_equal(conf_state(c, id.str), JOBQ_STATE_WAITING);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
}

static void
errors_closed_queue_wakes_waiter(void **state) {
	closed_queue_wakes(state, 0, 0);
}

static void
errors_closed_queue_wakes_events_reader(void **state) {
	closed_queue_wakes(state, 1, 0);
}

/* A wait_job timeout near INT64_MAX is as good as forever: the waiter sleeps until the close
 * (its deadline saturates instead of overflowing into the past). */
static void
errors_wait_job_far_timeout(void **state) {
	closed_queue_wakes(state, 0, INT64_MAX);
}

static const struct CMUnitTest cases[] = {
    CONF_CASE(errors_oversized_payload),
    CONF_CASE(errors_invalid_job_options),
    CONF_CASE(errors_invalid_worker_options),
    CONF_CASE(errors_unknown_keep_mode),
    CONF_CASE(errors_extreme_times),
    CONF_CASE(errors_bad_queue_names),
    CONF_CASE(errors_bad_job_ids),
    CONF_CASE(errors_node_accepted_data),
    CONF_CASE(errors_reserved_ids_touch_nothing),
    CONF_CASE(errors_bad_job_names),
    CONF_CASE(errors_non_json_data),
    CONF_CASE(errors_unknown_job),
    CONF_CASE(errors_wrong_state),
    CONF_CASE(errors_refused_calls_change_nothing),
    CONF_CASE(errors_refused_backend_slots),
    CONF_CASE(errors_invalid_json_result),
    CONF_CASE(errors_names_and_messages),
    CONF_CASE(errors_closed_queue_wakes_waiter),
    CONF_CASE(errors_closed_queue_wakes_events_reader),
    CONF_CASE(errors_wait_job_far_timeout),
};
CONF_TABLE(conf_errors_cases, cases);
