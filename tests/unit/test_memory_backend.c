/*
 * Unit tests of the memory backend, driven through its vtable directly (no store, no worker):
 * ordering, delays, lock tokens, stalls, keep policies, dedup, events, blocking waits and named
 * instances. Time is the logical `now` passed to each call.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "jobq.h"
#include "jobq/backends.h"
#include "jobq/sys/backend.h"
#include "backends/backend.h"

typedef struct fixture {
	jobq_backend *b;
	jobq_backend_queue *q;
} fixture;

static int
setup(void **state) {
	fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(jobq_backend_memory_new(&f->b, NULL), 0);
	assert_int_equal(f->b->queue_open(&f->q, f->b, "q"), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state) {
	fixture *f = *state;
	f->b->queue_close(f->q);
	f->b->free(f->b);
	free(f);
	return 0;
}

static jobq_job_options
opts_at(int64_t ts) {
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.timestamp = ts;
	return o;
}

/* Adds one job; returns its outcome and copies its id into `id`. */
static int
add_job(fixture *f, char *id, const char *name, const jobq_job_options *o, int64_t now) {
	jobq_add_request r = {name, "{}", 2, o};
	jobq_job_id out;
	int outcome = -1;
	int rc = f->b->add(&out, &outcome, f->q, &r, 1, now);
	assert_int_equal(rc, 0);
	if (id != NULL)
		strcpy(id, out.str);
	return outcome;
}

static void
add_plain(fixture *f, char *id, int64_t now) {
	jobq_job_options o = opts_at(now);
	assert_int_equal(add_job(f, id, "j", &o, now), JOBQ_ADD_CREATED);
}

/* Fetches the next job and returns its id (static buffer), or NULL if none. */
static const char *
fetch_id(fixture *f, const char *token, int64_t lock_ms, int64_t now) {
	static char id[JOBQ_ID_MAX + 1];
	jobq_job *j = NULL;
	int rc = f->b->fetch(&j, NULL, f->q, token, lock_ms, now);
	if (rc == JOBQ_ENOJOB)
		return NULL;
	assert_int_equal(rc, 0);
	assert_int_equal(j->state, JOBQ_STATE_ACTIVE);
	assert_string_equal(j->token, token);
	strcpy(id, j->id);
	jobq_job_free(j);
	return id;
}

static jobq_state
state_of(fixture *f, const char *id) {
	jobq_job *j = NULL;
	int rc = f->b->get(&j, f->q, id);
	if (rc == JOBQ_ENOTFOUND)
		return JOBQ_STATE_UNKNOWN;
	assert_int_equal(rc, 0);
	jobq_state s = j->state;
	jobq_job_free(j);
	return s;
}

static jobq_event_list *
read_events(fixture *f, const char *after, size_t max) {
	jobq_event_list *l = NULL;
	assert_int_equal(f->b->events_read(&l, f->q, after, max, 0), 0);
	assert_non_null(l);
	return l;
}

/* Asserts the event names from cursor `after`, e.g. "added waiting active". */
static void
assert_events(fixture *f, const char *after, const char *want) {
	jobq_event_list *l = read_events(f, after, 0);
	char got[2048] = "";
	for (size_t i = 0; i < jobq_event_list_count(l); i++) {
		if (i)
			strcat(got, " ");
		strcat(got, jobq_event_list_at(l, i)->event);
	}
	jobq_event_list_free(l);
	assert_string_equal(got, want);
}

static const char *
newest_cursor(fixture *f) {
	static char cur[32];
	jobq_event_list *l = read_events(f, "$", 0);
	strcpy(cur, jobq_event_list_cursor(l));
	jobq_event_list_free(l);
	return cur;
}

/* --- ordering ----------------------------------------------------------------------------- */

static void
fetch_order_fifo_lifo_priority(void **state) {
	fixture *f = *state;
	char a[128], b[128], c[128], p5a[128], p1[128], p5b[128];
	add_plain(f, a, 1);
	add_plain(f, b, 2);
	jobq_job_options o = opts_at(3);
	o.lifo = 1;
	add_job(f, c, "j", &o, 3);
	o = opts_at(4);
	o.priority = 5;
	add_job(f, p5a, "j", &o, 4);
	o.priority = 1;
	add_job(f, p1, "j", &o, 5);
	o.priority = 5;
	add_job(f, p5b, "j", &o, 6);
	assert_string_equal(a, "1");
	assert_string_equal(p5b, "6");

	jobq_counts n;
	assert_int_equal(f->b->counts(&n, f->q), 0);
	assert_int_equal(n.waiting, 3);
	assert_int_equal(n.prioritized, 3);

	/* list: waiting in run order */
	jobq_job_list *l = NULL;
	assert_int_equal(f->b->list(&l, f->q, JOBQ_STATE_WAITING, 0, 0), 0);
	assert_int_equal(l->count, 3);
	assert_string_equal(l->jobs[0]->id, c);
	assert_string_equal(l->jobs[2]->id, b);
	jobq_job_list_free(l);

	const char *want[] = {c, a, b, p1, p5a, p5b};
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(fetch_id(f, "t", 1000, 10), want[i]);
	assert_null(fetch_id(f, "t", 1000, 10));
}

static void
delayed_due_exactly_at_its_time(void **state) {
	fixture *f = *state;
	char id[128];
	jobq_job_options o = opts_at(1000);
	o.delay_ms = 100;
	add_job(f, id, "j", &o, 1000);
	assert_int_equal(state_of(f, id), JOBQ_STATE_DELAYED);
	assert_events(f, "0", "added delayed");
	jobq_event_list *l = read_events(f, "0", 0);
	assert_string_equal(jobq_event_get(jobq_event_list_at(l, 1), "delay"), "1100");
	assert_string_equal(jobq_event_get(jobq_event_list_at(l, 0), "name"), "j");
	jobq_event_list_free(l);

	jobq_job *j = NULL;
	jobq_fetch_info info = {0};
	assert_int_equal(f->b->fetch(&j, &info, f->q, "t", 1000, 1099), JOBQ_ENOJOB);
	assert_int_equal(info.next_due_ms, 1100);
	assert_int_equal(f->b->fetch(&j, &info, f->q, "t", 1000, 1100), 0);
	assert_string_equal(j->id, id);
	assert_int_equal(j->delay_ms, 0);
	assert_int_equal(j->processed_on, 1100);
	assert_int_equal(j->attempts_started, 1);
	assert_int_equal(info.next_due_ms, 0);
	jobq_job_free(j);
	assert_events(f, "2", "waiting active");
	l = read_events(f, "2", 0);
	assert_string_equal(jobq_event_get(jobq_event_list_at(l, 0), "prev"), "delayed");
	assert_string_equal(jobq_event_get(jobq_event_list_at(l, 1), "prev"), "waiting");
	jobq_event_list_free(l);

	/* promote: a delayed job made ready now */
	o = opts_at(2000);
	o.delay_ms = 5000;
	add_job(f, id, "j", &o, 2000);
	assert_int_equal(f->b->promote(f->q, id, 2001), 1);
	assert_int_equal(state_of(f, id), JOBQ_STATE_WAITING);
	assert_int_equal(f->b->promote(f->q, id, 2001), JOBQ_ESTATE);
	assert_int_equal(f->b->promote(f->q, "nope", 2001), JOBQ_ENOTFOUND);
}

/* --- locks -------------------------------------------------------------------------------- */

static void
fail_retry_paths(void **state) {
	fixture *f = *state;
	char a[128], b[128];
	add_plain(f, a, 0);
	add_plain(f, b, 0);
	assert_string_equal(fetch_id(f, "t", 1000, 0), a);
	/* immediate retry: back of waiting, behind b */
	jobq_failure fl = {.reason = "boom", .stack = "at x", .retry_at_ms = 5, .attempts = 3};
	assert_int_equal((f->b->fail)(f->q, a, "t", &fl, 5), 0);
	assert_int_equal(state_of(f, a), JOBQ_STATE_WAITING);
	assert_string_equal(fetch_id(f, "t", 1000, 6), b);
	assert_string_equal(fetch_id(f, "t", 1000, 6), a);
	/* delayed retry */
	fl.retry_at_ms = 500;
	const char *cur = newest_cursor(f);
	char c0[32];
	strcpy(c0, cur);
	assert_int_equal((f->b->fail)(f->q, a, "t", &fl, 10), 0);
	assert_int_equal(state_of(f, a), JOBQ_STATE_DELAYED);
	jobq_event_list *l = read_events(f, c0, 0);
	assert_int_equal(jobq_event_list_count(l), 1);
	assert_string_equal(jobq_event_list_at(l, 0)->event, "delayed");
	assert_string_equal(jobq_event_get(jobq_event_list_at(l, 0), "delay"), "500");
	jobq_event_list_free(l);
	assert_null(fetch_id(f, "t", 1000, 499));
	assert_string_equal(fetch_id(f, "t", 1000, 500), a);
	/* final failure */
	strcpy(c0, newest_cursor(f));
	fl.retry_at_ms = -1;
	fl.keep = (jobq_keep){JOBQ_KEEP_ALL, -1, -1};
	assert_int_equal((f->b->fail)(f->q, a, "t", &fl, 600), 0);
	jobq_job *j = NULL;
	assert_int_equal(f->b->get(&j, f->q, a), 0);
	assert_int_equal(j->state, JOBQ_STATE_FAILED);
	assert_int_equal(j->attempts_made, 3);
	assert_int_equal(j->attempts_started, 3);
	assert_int_equal(j->stacktrace_count, 3);
	assert_string_equal(j->failed_reason, "boom");
	assert_int_equal(j->finished_on, 600);
	jobq_job_free(j);
	/* b is still active: no drained */
	assert_events(f, c0, "failed retries-exhausted");
	l = read_events(f, c0, 0);
	assert_string_equal(jobq_event_get(jobq_event_list_at(l, 0), "failedReason"), "boom");
	assert_string_equal(jobq_event_get(jobq_event_list_at(l, 1), "attemptsMade"), "3");
	jobq_event_list_free(l);

	/* retry_failed brings it back, clearing the failure */
	assert_int_equal(f->b->retry_failed(f->q, NULL, 700), 1);
	assert_int_equal(f->b->get(&j, f->q, a), 0);
	assert_int_equal(j->state, JOBQ_STATE_WAITING);
	assert_null(j->failed_reason);
	assert_int_equal(j->finished_on, 0);
	assert_int_equal(j->attempts_made, 3);
	jobq_job_free(j);
	assert_int_equal(f->b->retry_failed(f->q, a, 700), JOBQ_ESTATE);

	/* release: front of waiting, no attempt counted */
	char c[128];
	add_plain(f, c, 800);
	assert_string_equal(fetch_id(f, "r", 1000, 800), a);
	assert_int_equal(f->b->release(f->q, a, "r", 801), 0);
	assert_string_equal(fetch_id(f, "r", 1000, 802), a);
}

static void
stall_reaping(void **state) {
	fixture *f = *state;
	char a[128], b[128], c[128];
	add_plain(f, a, 0);
	add_plain(f, b, 0);
	add_plain(f, c, 0);
	assert_string_equal(fetch_id(f, "t1", 1000, 0), a);
	assert_string_equal(fetch_id(f, "t2", 5000, 0), b);
	jobq_strings *ids = NULL;
	assert_int_equal(f->b->reap_stalled(&ids, f->q, 1, 30000, 999), 0);
	jobq_strings_free(ids);
	ids = NULL;
	char c0[32];
	strcpy(c0, newest_cursor(f));
	assert_int_equal(f->b->reap_stalled(&ids, f->q, 1, 30000, 1000), 1);
	assert_int_equal(ids->count, 1);
	assert_string_equal(ids->items[0], a);
	jobq_strings_free(ids);
	assert_events(f, c0, "waiting stalled");
	jobq_event_list *l = read_events(f, c0, 0);
	assert_string_equal(jobq_event_get(jobq_event_list_at(l, 0), "prev"), "active");
	assert_string_equal(jobq_event_list_at(l, 1)->job_id, a);
	jobq_event_list_free(l);
	/* the old token lost the job (it is waiting again); the job runs next, before c */
	assert_int_equal(f->b->complete(f->q, a, "t1", "1", NULL, 1001), JOBQ_ESTATE);
	jobq_job *j = NULL;
	assert_int_equal(f->b->fetch(&j, NULL, f->q, "t3", 1000, 1001), 0);
	assert_string_equal(j->id, a);
	assert_int_equal(j->stalled_count, 1);
	assert_null(j->deferred_failure);
	jobq_job_free(j);
	/* second stall passes max_stalled = 1: deferred failure, which the next fetch writes in
	 * the same step before it takes the next job */
	assert_int_equal(f->b->reap_stalled(NULL, f->q, 1, 30000, 2001), 1);
	assert_int_equal(f->b->get(&j, f->q, a), 0);
	assert_string_equal(j->deferred_failure, "job stalled more than allowable limit");
	jobq_job_free(j);
	strcpy(c0, newest_cursor(f));
	assert_int_equal(f->b->fetch(&j, NULL, f->q, "t4", 1000, 2002), 0);
	assert_string_equal(j->id, c);
	jobq_job_free(j);
	assert_events(f, c0, "active failed retries-exhausted active");
	assert_int_equal(f->b->get(&j, f->q, a), 0);
	assert_null(j->deferred_failure);
	assert_int_equal(j->state, JOBQ_STATE_FAILED);
	assert_int_equal(j->stalled_count, 2);
	assert_int_equal(j->attempts_started, 3);
	assert_int_equal(j->attempts_made, 1);
	assert_int_equal(j->finished_on, 2002);
	assert_string_equal(j->failed_reason, "job stalled more than allowable limit");
	jobq_job_free(j);
	assert_int_equal(state_of(f, b), JOBQ_STATE_ACTIVE); /* locked until 5000 */
}

/* --- keep policies ------------------------------------------------------------------------ */

static void
run_one(fixture *f, char *id, int64_t now, const jobq_keep *keep) {
	add_plain(f, id, now);
	assert_string_equal(fetch_id(f, "t", 1000, now), id);
	assert_int_equal(f->b->complete(f->q, id, "t", "null", keep, now), 0);
}

static void
keep_policies(void **state) {
	fixture *f = *state;
	char ids[6][128];
	jobq_keep none = {JOBQ_KEEP_NONE, -1, -1};
	run_one(f, ids[0], 10, &none);
	assert_int_equal(state_of(f, ids[0]), JOBQ_STATE_UNKNOWN);
	assert_events(f, "3", "completed drained");

	jobq_keep last2 = {JOBQ_KEEP_LIMIT, 2, -1};
	for (int i = 1; i <= 3; i++)
		run_one(f, ids[i], 100 * i, &last2);
	assert_int_equal(state_of(f, ids[1]), JOBQ_STATE_UNKNOWN);
	jobq_job_list *l = NULL;
	assert_int_equal(f->b->list(&l, f->q, JOBQ_STATE_COMPLETED, 0, 0), 0);
	assert_int_equal(l->count, 2);
	assert_string_equal(l->jobs[0]->id, ids[3]); /* newest first */
	assert_string_equal(l->jobs[1]->id, ids[2]);
	jobq_job_list_free(l);
	assert_int_equal(f->b->list(&l, f->q, JOBQ_STATE_COMPLETED, 1, 1), 0);
	assert_int_equal(l->count, 1);
	assert_string_equal(l->jobs[0]->id, ids[2]);
	jobq_job_list_free(l);

	/* age: finished at <= now - 150 go */
	jobq_keep young = {JOBQ_KEEP_LIMIT, -1, 150};
	run_one(f, ids[4], 400, &young); /* 400-150 = 250: ids[2] (200) goes, ids[3] (300) stays */
	assert_int_equal(state_of(f, ids[2]), JOBQ_STATE_UNKNOWN);
	assert_int_equal(state_of(f, ids[3]), JOBQ_STATE_COMPLETED);
	assert_int_equal(state_of(f, ids[4]), JOBQ_STATE_COMPLETED);

	/* remove-on-fail: keep none */
	add_plain(f, ids[5], 500);
	assert_string_equal(fetch_id(f, "t", 1000, 500), ids[5]);
	jobq_failure fl = {.reason = "r", .retry_at_ms = -1, .keep = none};
	assert_int_equal((f->b->fail)(f->q, ids[5], "t", &fl, 501), 0);
	assert_int_equal(state_of(f, ids[5]), JOBQ_STATE_UNKNOWN);
	jobq_counts n;
	assert_int_equal(f->b->counts(&n, f->q), 0);
	assert_int_equal(n.completed, 2);
	assert_int_equal(n.failed, 0);
}

/* --- dedup and custom ids ----------------------------------------------------------------- */

static void
dedup_with_ttl(void **state) {
	fixture *f = *state;
	char id1[128], id2[128], id3[128];
	jobq_job_options o = opts_at(0);
	o.dedup_id = "d";
	o.dedup_ttl_ms = 1000;
	assert_int_equal(add_job(f, id1, "j", &o, 0), JOBQ_ADD_CREATED);
	assert_int_equal(add_job(f, id2, "j", &o, 999), JOBQ_ADD_DEDUPLICATED);
	assert_string_equal(id2, id1);
	jobq_event_list *l = read_events(f, "2", 0);
	const jobq_event *e = jobq_event_list_at(l, 0);
	assert_string_equal(e->event, "deduplicated");
	assert_string_equal(e->job_id, id1);
	assert_string_equal(jobq_event_get(e, "deduplicationId"), "d");
	assert_string_equal(jobq_event_get(e, "deduplicatedJobId"), "2"); /* counter advanced */
	jobq_event_list_free(l);
	/* TTL over: a new owner, although the first job still waits */
	assert_int_equal(add_job(f, id3, "j", &o, 1000), JOBQ_ADD_CREATED);
	assert_string_equal(id3, "3");

	/* plain dedup: lives until its owner finishes */
	jobq_job_options p = opts_at(0);
	p.dedup_id = "plain";
	char a[128], b[128];
	assert_int_equal(add_job(f, a, "j", &p, 2000), JOBQ_ADD_CREATED);
	assert_int_equal(add_job(f, b, "j", &p, 9999999), JOBQ_ADD_DEDUPLICATED);
	assert_string_equal(a, b);
	assert_int_equal(f->b->drain(f->q, 0, 3000), 0); /* deleting the owner releases it */
	assert_int_equal(add_job(f, b, "j", &p, 3001), JOBQ_ADD_CREATED);
	assert_string_not_equal(a, b);
	assert_string_equal(fetch_id(f, "t", 1000, 3002), b);
	assert_int_equal(add_job(f, a, "j", &p, 3003), JOBQ_ADD_DEDUPLICATED);
	jobq_keep all = {JOBQ_KEEP_ALL, -1, -1};
	assert_int_equal(f->b->complete(f->q, b, "t", "1", &all, 3004), 0);
	assert_int_equal(add_job(f, a, "j", &p, 3005), JOBQ_ADD_CREATED);

	/* custom ids: a duplicate adds nothing but advances the counter */
	jobq_job_options c = opts_at(0);
	c.job_id = "custom";
	assert_int_equal(add_job(f, a, "j", &c, 4000), JOBQ_ADD_CREATED);
	assert_string_equal(a, "custom");
	assert_int_equal(add_job(f, a, "j", &c, 4001), JOBQ_ADD_DUPLICATE);
	assert_events(f, newest_cursor(f), "");
	char g[128];
	add_plain(f, g, 4002);
	assert_string_equal(g, "11");
}

static void
bulk_add_is_one_step(void **state) {
	fixture *f = *state;
	jobq_job_options o = opts_at(0), c = opts_at(0);
	c.job_id = "x";
	jobq_add_request r[4] = {
	    {"a", "1", 1, &o}, {"b", "2", 1, &c}, {"c", "3", 1, &c}, {"d", "", 0, &o}};
	jobq_job_id ids[4];
	int out[4];
	assert_int_equal(f->b->add(ids, out, f->q, r, 4, 0), 0);
	assert_string_equal(ids[0].str, "1");
	assert_string_equal(ids[1].str, "x");
	assert_int_equal(out[1], JOBQ_ADD_CREATED);
	assert_string_equal(ids[2].str, "x");
	assert_int_equal(out[2], JOBQ_ADD_DUPLICATE);
	assert_string_equal(ids[3].str, "4");
	jobq_job *j = NULL;
	assert_int_equal(f->b->get(&j, f->q, "x"), 0);
	assert_string_equal(j->name, "b");
	assert_int_equal(j->data_len, 1);
	assert_memory_equal(j->data, "2", 2);
	assert_string_equal(j->opts.job_id, "x");
	jobq_job_free(j);
	assert_events(f, "0", "added waiting added waiting duplicated added waiting");

	/* a large batch */
	enum { N = 1000 };
	static jobq_add_request big[N];
	static jobq_job_id bid[N];
	static int bout[N];
	for (int i = 0; i < N; i++)
		big[i] = (jobq_add_request){"n", "{}", 2, &o};
	assert_int_equal(f->b->add(bid, bout, f->q, big, N, 1), 0);
	assert_string_equal(bid[N - 1].str, "1004");
	jobq_counts n;
	assert_int_equal(f->b->counts(&n, f->q), 0);
	assert_int_equal(n.waiting, N + 3);
}

/* --- administration ----------------------------------------------------------------------- */

static void
admin_ops(void **state) {
	fixture *f = *state;
	char a[128], b[128], c[128], d[128];
	add_plain(f, a, 0);
	add_plain(f, b, 10);
	jobq_job_options o = opts_at(20);
	o.delay_ms = 100;
	add_job(f, c, "j", &o, 20);
	add_plain(f, d, 30);
	/* pause stops fetching, not adding */
	assert_int_equal(f->b->set_paused(f->q, 1, 40), 0);
	int p = 0;
	assert_int_equal(f->b->is_paused(&p, f->q), 0);
	assert_int_equal(p, 1);
	assert_null(fetch_id(f, "t", 1000, 41));
	assert_int_equal(f->b->set_paused(f->q, 0, 42), 0);
	assert_string_equal(fetch_id(f, "t", 1000, 43), a);
	/* remove */
	assert_int_equal(f->b->remove(f->q, d, 44), 0);
	assert_int_equal(f->b->remove(f->q, d, 44), JOBQ_ENOTFOUND);
	jobq_event_list *l = read_events(f, "$", 0);
	jobq_event_list_free(l);
	/* clean waiting older than grace: b (10) goes, nothing else waits */
	jobq_strings *gone = NULL;
	assert_int_equal(f->b->clean(&gone, f->q, JOBQ_STATE_WAITING, 30, 0, 45), 1);
	assert_int_equal(gone->count, 1);
	assert_string_equal(gone->items[0], b);
	jobq_strings_free(gone);
	/* clean active: a is locked until 1043 */
	assert_int_equal(f->b->clean(NULL, f->q, JOBQ_STATE_ACTIVE, 0, 0, 100), 0);
	assert_int_equal(f->b->clean(NULL, f->q, JOBQ_STATE_ACTIVE, 0, 0, 1043), 1);
	assert_int_equal(state_of(f, a), JOBQ_STATE_UNKNOWN);
	/* logs */
	assert_int_equal(f->b->add_log(f->q, c, "one", 0), 1);
	assert_int_equal(f->b->add_log(f->q, c, "two", 0), 2);
	assert_int_equal(f->b->add_log(f->q, c, "three", 2), 2);
	jobq_strings *logs = NULL;
	assert_int_equal(f->b->get_logs(&logs, f->q, c, 0, 0), 0);
	assert_int_equal(logs->count, 2);
	assert_string_equal(logs->items[0], "two");
	assert_string_equal(logs->items[1], "three");
	jobq_strings_free(logs);
	assert_int_equal(f->b->get_logs(&logs, f->q, c, 1, 1), 0);
	assert_int_equal(logs->count, 1);
	assert_string_equal(logs->items[0], "three");
	jobq_strings_free(logs);
	assert_int_equal(f->b->add_log(f->q, "nope", "x", 0), JOBQ_ENOTFOUND);
	/* progress without a token */
	assert_int_equal(f->b->progress(f->q, c, NULL, "{\"p\":1}", 50), 0);
	/* drain keeps delayed unless asked */
	char e[128];
	add_plain(f, e, 60);
	assert_int_equal(f->b->drain(f->q, 0, 61), 0);
	assert_int_equal(state_of(f, e), JOBQ_STATE_UNKNOWN);
	assert_int_equal(state_of(f, c), JOBQ_STATE_DELAYED);
	assert_int_equal(f->b->drain(f->q, 1, 62), 0);
	assert_int_equal(state_of(f, c), JOBQ_STATE_UNKNOWN);
	/* obliterate: refused with an active job unless forced; resets the counter */
	add_plain(f, e, 70);
	assert_non_null(fetch_id(f, "t", 1000, 70));
	assert_int_equal(f->b->set_paused(f->q, 1, 71), 0);
	assert_int_equal(f->b->obliterate(f->q, 0, 72), JOBQ_ESTATE);
	assert_int_equal(f->b->obliterate(f->q, 1, 72), 0);
	jobq_counts n;
	assert_int_equal(f->b->counts(&n, f->q), 0);
	assert_int_equal(n.active + n.waiting + n.delayed + n.completed + n.failed, 0);
	assert_int_equal(f->b->is_paused(&p, f->q), 0);
	assert_int_equal(p, 0);
	assert_events(f, "0", "");
	add_plain(f, e, 80);
	assert_string_equal(e, "1");
}

/* --- events ------------------------------------------------------------------------------- */

static void
events_sequence_and_cursors(void **state) {
	fixture *f = *state;
	char id[128];
	add_plain(f, id, 0); /* events 1 added, 2 waiting */
	add_plain(f, id, 0); /* 3, 4 */
	jobq_event_list *l = read_events(f, "0", 2);
	assert_int_equal(jobq_event_list_count(l), 2);
	assert_string_equal(jobq_event_list_at(l, 0)->id, "1");
	assert_string_equal(jobq_event_list_at(l, 1)->id, "2");
	assert_string_equal(jobq_event_list_at(l, 1)->event, "waiting");
	assert_string_equal(jobq_event_list_at(l, 1)->job_id, "1");
	assert_null(jobq_event_get(jobq_event_list_at(l, 1), "prev"));
	assert_string_equal(jobq_event_list_cursor(l), "2");
	jobq_event_list_free(l);
	l = read_events(f, "2", 10);
	assert_int_equal(jobq_event_list_count(l), 2);
	assert_string_equal(jobq_event_list_at(l, 0)->id, "3");
	assert_string_equal(jobq_event_list_cursor(l), "4");
	jobq_event_list_free(l);
	l = read_events(f, "$", 10);
	assert_int_equal(jobq_event_list_count(l), 0);
	assert_string_equal(jobq_event_list_cursor(l), "4");
	jobq_event_list_free(l);
	l = read_events(f, "4", 10);
	assert_int_equal(jobq_event_list_count(l), 0);
	jobq_event_list_free(l);
	assert_int_equal(f->b->events_read(&l, f->q, "abc", 10, 0), JOBQ_EINVAL);

	/* trimming: the ring keeps at least the newest 10000 */
	for (int i = 0; i < 20000; i++)
		assert_int_equal(f->b->set_paused(f->q, i & 1, 1), 0);
	l = read_events(f, "0", 1);
	const char *first = jobq_event_list_at(l, 0)->id;
	long long oldest = atoll(first);
	jobq_event_list_free(l);
	assert_true(oldest > 1);
	assert_true(20004 - oldest + 1 >= 10000);
	l = read_events(f, "1", 1); /* a cursor older than the history starts at the oldest */
	assert_int_equal(atoll(jobq_event_list_at(l, 0)->id), oldest);
	jobq_event_list_free(l);
}

/* --- blocking waits ----------------------------------------------------------------------- */

typedef struct waiter {
	fixture *f;
	jobq_clock *clock;
	int64_t timeout_ms;
	int mode; /* 0 wait_for_work, 1 events_read */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int started, done;
	size_t nevents;
} waiter;

static void *
waiter_main(void *arg) {
	waiter *w = arg;
	pthread_mutex_lock(&w->mu);
	w->started = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (w->mode == 0) {
		assert_int_equal(w->f->b->wait_for_work(w->f->q, w->clock, w->timeout_ms), 0);
	} else {
		jobq_event_list *l = NULL;
		assert_int_equal(w->f->b->events_read(&l, w->f->q, "$", 10, w->timeout_ms), 0);
		w->nevents = jobq_event_list_count(l);
		jobq_event_list_free(l);
	}
	pthread_mutex_lock(&w->mu);
	w->done = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int64_t
mono_now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs `poke` while a waiter is blocked (it is given time to block), then joins it. */
static int64_t
wait_then(fixture *f, jobq_clock *clock, int mode, void (*poke)(fixture *, jobq_clock *),
          size_t *nevents) {
	waiter w = {.f = f, .clock = clock, .timeout_ms = 20000, .mode = mode};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
	pthread_mutex_lock(&w.mu);
	while (!w.started)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	/* A hint only: give the waiter time to block. Poking again until it is done makes the test
	 * correct even if the first poke came before it slept. */
	struct timespec ts = {0, 20 * 1000000};
	nanosleep(&ts, NULL);
	int64_t t0 = mono_now();
	pthread_mutex_lock(&w.mu);
	while (!w.done) {
		pthread_mutex_unlock(&w.mu);
		poke(f, clock);
		pthread_mutex_lock(&w.mu);
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += 100 * 1000000;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
		if (!w.done)
			pthread_cond_timedwait(&w.cv, &w.mu, &dl);
	}
	pthread_mutex_unlock(&w.mu);
	pthread_join(t, NULL);
	int64_t took = mono_now() - t0;
	assert_int_equal(w.done, 1);
	if (nevents != NULL)
		*nevents = w.nevents;
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	return took;
}

static void
poke_add(fixture *f, jobq_clock *clock) {
	(void)clock;
	add_plain(f, NULL, 0);
}

static void
poke_wake(fixture *f, jobq_clock *clock) {
	(void)clock;
	f->b->wake(f->b);
}

static void
poke_advance(fixture *f, jobq_clock *clock) {
	assert_int_equal(jobq_clock_advance(clock, 1000), 0);
	f->b->wake(f->b); /* what the store's clock listener does */
}

static void
wait_for_work_wakes(void **state) {
	fixture *f = *state;
	jobq_clock *clock = NULL;
	assert_int_equal(jobq_clock_manual_new(&clock, 0), 0);
	/* times out on an empty queue */
	int64_t t0 = mono_now();
	assert_int_equal(f->b->wait_for_work(f->q, clock, 30), 0);
	assert_true(mono_now() - t0 >= 29);
	/* an add wakes it */
	assert_true(wait_then(f, clock, 0, poke_add, NULL) < 10000);
	/* returns at once with work */
	assert_int_equal(f->b->wait_for_work(f->q, clock, 20000), 0);
	assert_non_null(fetch_id(f, "t", 1000, 0));
	/* wake() wakes it */
	assert_true(wait_then(f, clock, 0, poke_wake, NULL) < 10000);
	/* a delayed job due after a manual advance */
	jobq_job_options o = opts_at(0);
	o.delay_ms = 1000;
	add_job(f, NULL, "j", &o, 0);
	assert_true(wait_then(f, clock, 0, poke_advance, NULL) < 10000);
	t0 = mono_now();
	assert_int_equal(f->b->wait_for_work(f->q, clock, 20000), 0); /* due now: at once */
	assert_true(mono_now() - t0 < 10000);
	/* events_read blocks until an event */
	size_t n = 0;
	assert_true(wait_then(f, clock, 1, poke_add, &n) < 10000);
	assert_true(n >= 2 && n % 2 == 0); /* added + waiting per add */
	jobq_clock_free(clock);
}

/* --- instances and URLs ------------------------------------------------------------------- */

static void
named_instances_share(void **state) {
	(void)state;
	jobq_backend *b1, *b2, *b3, *p;
	jobq_backend_queue *q1, *q2, *q3, *qp;
	assert_int_equal(jobq__memory_open_url(&b1, "mem://shared-1.x_y"), 0);
	assert_int_equal(jobq_backend_memory_new(&b2, "shared-1.x_y"), 0);
	assert_int_equal(jobq_backend_memory_new(&p, NULL), 0);
	assert_string_equal(b1->name, "memory");
	assert_int_equal(b1->caps, JOBQ_CAP_BLOCKING_WAIT | JOBQ_CAP_DUE_CLOCK |
	                               JOBQ_CAP_LOCK_CLOCK | JOBQ_CAP_DEDUP_KEEP_LAST);
	assert_int_equal(b1->version, JOBQ_BACKEND_VERSION);
	assert_int_equal(b1->queue_open(&q1, b1, "q"), 0);
	assert_int_equal(b2->queue_open(&q2, b2, "q"), 0);
	assert_int_equal(p->queue_open(&qp, p, "q"), 0);
	fixture f1 = {b1, q1};
	add_plain(&f1, NULL, 0);
	jobq_counts n;
	assert_int_equal(b2->counts(&n, q2), 0);
	assert_int_equal(n.waiting, 1);
	assert_int_equal(p->counts(&n, qp), 0);
	assert_int_equal(n.waiting, 0);
	/* closing and reopening a queue keeps its jobs */
	b2->queue_close(q2);
	assert_int_equal(b2->queue_open(&q2, b2, "q"), 0);
	assert_int_equal(b2->counts(&n, q2), 0);
	assert_int_equal(n.waiting, 1);
	b1->free(b1);
	assert_int_equal(b2->counts(&n, q2), 0); /* still alive through b2 */
	assert_int_equal(n.waiting, 1);
	b2->free(b2);
	/* the last one gone: a new instance of that name is empty */
	assert_int_equal(jobq_backend_memory_new(&b3, "shared-1.x_y"), 0);
	assert_int_equal(b3->queue_open(&q3, b3, "q"), 0);
	assert_int_equal(b3->counts(&n, q3), 0);
	assert_int_equal(n.waiting, 0);
	b3->free(b3);
	p->free(p);

	jobq_backend *x = NULL;
	assert_int_equal(jobq__memory_open_url(&x, "mem://"), 0);
	x->free(x);
	const char *bad[] = {"mem:/x", "mem://a/b", "mem://a b", "mem://a?x=1", "memory://a", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(jobq__memory_open_url(&x, bad[i]), JOBQ_EINVAL);
		if (bad[i][0])
			assert_non_null(strstr(jobq_error_message(), bad[i]));
	}
	char longname[260] = "mem://";
	memset(longname + 6, 'a', 201);
	assert_int_equal(jobq__memory_open_url(&x, longname), JOBQ_EINVAL);
	longname[6 + 200] = '\0';
	assert_int_equal(jobq__memory_open_url(&x, longname), 0);
	x->free(x);
}

/* --- allocation failures: a failed operation changes nothing ------------------------------- */

static long alloc_count, alloc_fail_at = -1;

static void *
t_malloc(void *ctx, size_t n) {
	(void)ctx;
	return alloc_count++ == alloc_fail_at ? NULL : malloc(n);
}

static void *
t_realloc(void *ctx, void *p, size_t n) {
	(void)ctx;
	return alloc_count++ == alloc_fail_at ? NULL : realloc(p, n);
}

static long free_count;

static void
t_free(void *ctx, void *p) {
	(void)ctx;
	free_count += p != NULL;
	free(p);
}

typedef struct snap {
	jobq_counts c;
	char cursor[32];
	jobq_state state;
} snap;

static void
take(fixture *f, snap *s, const char *id) {
	memset(s, 0, sizeof(*s));
	assert_int_equal(f->b->counts(&s->c, f->q), 0);
	strcpy(s->cursor, newest_cursor(f));
	s->state = id ? state_of(f, id) : JOBQ_STATE_UNKNOWN;
}

/*
 * Runs `op` with the k-th allocation failing, k = 0, 1, ... until it succeeds; every failed run
 * must leave the counts, the events and the job's state as they were. Returns how many runs
 * failed, so callers can check the loop really injected failures.
 */
static long
oom_loop(fixture *f, int (*op)(fixture *), const char *id) {
	snap before, after;
	take(f, &before, id);
	jobq_allocator a = {NULL, t_malloc, t_realloc, t_free};
	for (long k = 0;; k++) {
		assert_true(k < 10000);
		alloc_count = 0;
		alloc_fail_at = k;
		assert_int_equal(jobq_set_allocator(&a), 0);
		int rc = op(f);
		jobq_set_allocator(NULL);
		if (rc >= 0)
			return k;
		assert_int_equal(rc, JOBQ_ENOMEM);
		take(f, &after, id);
		assert_memory_equal(&before.c, &after.c, sizeof(before.c));
		assert_string_equal(before.cursor, after.cursor);
		assert_int_equal(before.state, after.state);
	}
}

static char oom_id[JOBQ_ID_MAX + 1];

static int
op_bulk_add(fixture *f) {
	jobq_job_options o = opts_at(0), c = opts_at(0), d = opts_at(0);
	c.job_id = "x";
	d.dedup_id = "dd";
	d.backoff.custom_type = "mine";
	jobq_add_request r[3] = {{"a", "1", 1, &o}, {"b", "2", 1, &c}, {"c", "3", 1, &d}};
	jobq_job_id ids[3];
	int out[3];
	int rc = f->b->add(ids, out, f->q, r, 3, 0);
	if (rc == 0) {
		assert_string_equal(ids[0].str, "1");
		assert_string_equal(ids[1].str, "x");
		assert_string_equal(ids[2].str, "3");
	}
	return rc;
}

static int
op_fetch(fixture *f) {
	jobq_job *j = NULL;
	int rc = f->b->fetch(&j, NULL, f->q, "t", 1000, 10);
	if (rc == 0) {
		strcpy(oom_id, j->id);
		jobq_job_free(j);
	}
	return rc;
}

static int
op_complete(fixture *f) {
	jobq_keep k = {JOBQ_KEEP_LIMIT, 5, -1};
	return f->b->complete(f->q, oom_id, "t", "{\"r\":1}", &k, 11);
}

static int
op_fail(fixture *f) {
	jobq_failure fl = {.reason = "no", .stack = "trace", .retry_at_ms = -1, .attempts = 1};
	fl.keep = (jobq_keep){JOBQ_KEEP_ALL, -1, -1};
	return (f->b->fail)(f->q, oom_id, "t", &fl, 12);
}

static int
op_reap(fixture *f) {
	jobq_strings *ids = NULL;
	int rc = f->b->reap_stalled(&ids, f->q, 1, 30000, 100000);
	if (rc >= 0) {
		assert_int_equal(rc, 1);
		assert_string_equal(ids->items[0], oom_id);
		jobq_strings_free(ids);
	}
	return rc;
}

static int
op_clean(fixture *f) {
	jobq_strings *ids = NULL;
	int rc = f->b->clean(&ids, f->q, JOBQ_STATE_FAILED, 0, 0, 100000);
	if (rc >= 0) {
		assert_int_equal(rc, 1);
		jobq_strings_free(ids);
	}
	return rc;
}

static int
op_log(fixture *f) {
	return f->b->add_log(f->q, oom_id, "a log line", 0);
}

static int
op_get_logs(fixture *f) {
	jobq_strings *l = NULL;
	int rc = f->b->get_logs(&l, f->q, oom_id, 0, 0);
	if (rc == 0)
		jobq_strings_free(l);
	return rc;
}

static int
op_list(fixture *f) {
	jobq_job_list *l = NULL;
	int rc = f->b->list(&l, f->q, JOBQ_STATE_WAITING, 0, 0);
	if (rc == 0)
		jobq_job_list_free(l);
	return rc;
}

static void
failed_ops_change_nothing(void **state) {
	fixture *f = *state;
	/* the first add into an empty queue also allocates the hash tables: rollback path
	 * (options x2, dedup key, the first chunk of job blocks, then the tables) */
	assert_true(oom_loop(f, op_bulk_add, NULL) >= 6);
	assert_true(oom_loop(f, op_fetch, "1") > 0);
	assert_true(oom_loop(f, op_complete, "1") > 0);
	assert_int_equal(state_of(f, "1"), JOBQ_STATE_COMPLETED);
	oom_loop(f, op_fetch, "x");
	assert_true(oom_loop(f, op_fail, "x") > 0);
	assert_int_equal(state_of(f, "x"), JOBQ_STATE_FAILED);
	oom_loop(f, op_fetch, "3");
	assert_true(oom_loop(f, op_reap, "3") > 0);
	assert_int_equal(state_of(f, "3"), JOBQ_STATE_WAITING);
	assert_true(oom_loop(f, op_clean, "x") > 0);
	assert_int_equal(state_of(f, "x"), JOBQ_STATE_UNKNOWN);
	assert_true(oom_loop(f, op_log, "3") > 0);
	assert_true(oom_loop(f, op_get_logs, "3") > 0);
	assert_true(oom_loop(f, op_list, "3") > 0);
	jobq_job *j = NULL;
	assert_int_equal(f->b->get(&j, f->q, "3"), 0);
	assert_string_equal(j->opts.backoff.custom_type, "mine");
	assert_string_equal(j->opts.dedup_id, "dd");
	jobq_job_free(j);
}

/* --- threads ------------------------------------------------------------------------------ */

enum { STRESS_JOBS = 20000 };

typedef struct stress {
	fixture *f;
	pthread_mutex_t mu;
	size_t done;
	int errors;
} stress;

static void *
producer_main(void *arg) {
	stress *st = arg;
	jobq_job_options o = opts_at(1);
	for (int i = 0; i < STRESS_JOBS / 2; i++) {
		jobq_add_request r = {"s", "{}", 2, &o};
		jobq_job_id id;
		int out;
		if (st->f->b->add(&id, &out, st->f->q, &r, 1, jobq_clock_now(jobq_clock_system())) <
		    0)
			__atomic_add_fetch(&st->errors, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *
consumer_main(void *arg) {
	stress *st = arg;
	jobq_clock *clock = jobq_clock_system();
	char token[32];
	snprintf(token, sizeof(token), "tok-%p", (void *)&token);
	jobq_keep all = {JOBQ_KEEP_ALL, -1, -1};
	for (;;) {
		pthread_mutex_lock(&st->mu);
		size_t done = st->done;
		pthread_mutex_unlock(&st->mu);
		if (done >= STRESS_JOBS)
			return NULL;
		jobq_job *j = NULL;
		int rc = st->f->b->fetch(&j, NULL, st->f->q, token, 60000, jobq_clock_now(clock));
		if (rc == JOBQ_ENOJOB) {
			st->f->b->wait_for_work(st->f->q, clock, 50);
			continue;
		}
		if (rc < 0 || st->f->b->complete(st->f->q, j->id, token, "1", &all,
		                                 jobq_clock_now(clock)) < 0)
			__atomic_add_fetch(&st->errors, 1, __ATOMIC_RELAXED);
		jobq_job_free(j);
		pthread_mutex_lock(&st->mu);
		st->done++;
		pthread_mutex_unlock(&st->mu);
	}
}

static void
threads_add_and_process(void **state) {
	fixture *f = *state;
	stress st = {.f = f};
	pthread_mutex_init(&st.mu, NULL);
	pthread_t t[4];
	assert_int_equal(pthread_create(&t[0], NULL, consumer_main, &st), 0);
	assert_int_equal(pthread_create(&t[1], NULL, consumer_main, &st), 0);
	assert_int_equal(pthread_create(&t[2], NULL, producer_main, &st), 0);
	assert_int_equal(pthread_create(&t[3], NULL, producer_main, &st), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(st.errors, 0);
	jobq_counts n;
	assert_int_equal(f->b->counts(&n, f->q), 0);
	assert_int_equal(n.completed, STRESS_JOBS);
	assert_int_equal(n.waiting + n.active, 0);
	pthread_mutex_destroy(&st.mu);
}

/*
 * The job table: generated ids, custom decimal ids that share low bits (multiples of 64),
 * and other custom ids; half removed in a scattered order (deletion shifts entries back),
 * the rest must all still be found, the removed ones not, across table growth.
 */
static void
job_table_finds_after_removals(void **state) {
	fixture *f = *state;
	enum { N = 3000 };
	static char ids[N][JOBQ_ID_MAX + 1];
	for (int i = 0; i < N; i++) {
		jobq_job_options o = opts_at(1);
		char custom[32];
		if (i % 3 == 1) {
			snprintf(custom, sizeof(custom), "%d", 1000000 + 64 * i);
			o.job_id = custom;
		} else if (i % 3 == 2) {
			snprintf(custom, sizeof(custom), "c-%d", i);
			o.job_id = custom;
		}
		assert_int_equal(add_job(f, ids[i], "j", &o, 1), JOBQ_ADD_CREATED);
	}
	int removed[N] = {0};
	unsigned x = 12345;
	for (int k = 0; k < N / 2;) {
		x = x * 1103515245u + 12345u;
		int i = (int)((x >> 8) % N);
		if (removed[i])
			continue;
		assert_true(f->b->remove(f->q, ids[i], 2) >= 0);
		removed[i] = 1;
		k++;
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(state_of(f, ids[i]),
		                 removed[i] ? JOBQ_STATE_UNKNOWN : JOBQ_STATE_WAITING);
	/* the removed custom ids can be added again */
	for (int i = 0; i < N; i++) {
		if (!removed[i] || i % 3 == 0)
			continue;
		jobq_job_options o = opts_at(3);
		o.job_id = ids[i];
		char again[JOBQ_ID_MAX + 1];
		assert_int_equal(add_job(f, again, "j", &o, 3), JOBQ_ADD_CREATED);
		assert_string_equal(again, ids[i]);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(state_of(f, ids[i]), removed[i] && i % 3 == 0
		                                          ? JOBQ_STATE_UNKNOWN
		                                          : JOBQ_STATE_WAITING);
}

/*
 * A queue that empties gives back all but one chunk of job blocks (and its large job table)
 * and carves that one again: jobs added afterwards have their own contents (valgrind: no use
 * of freed chunks).
 */
static void
emptied_queue_reuses_its_memory(void **state) {
	fixture *f = *state;
	for (int round = 0; round < 3; round++) {
		char first[JOBQ_ID_MAX + 1], id[JOBQ_ID_MAX + 1];
		for (int i = 0; i < 2000; i++) /* ~1 MB of blocks: several chunks */
			add_plain(f, i == 0 ? first : id, 10 + round);
		jobq_job *j = NULL;
		assert_int_equal(f->b->get(&j, f->q, first), 0);
		assert_string_equal(j->data, "{}");
		assert_int_equal(j->timestamp, 10 + round);
		jobq_job_free(j);
		jobq_allocator a = {NULL, t_malloc, t_realloc, t_free};
		alloc_fail_at = -1;
		free_count = 0;
		assert_int_equal(jobq_set_allocator(&a), 0);
		assert_int_equal(f->b->drain(f->q, 1, 20), 0);
		jobq_set_allocator(NULL);
		/* first round: the options and the chunks but the newest (64, 128, 256 KiB; the
		 * jobs need 672 KiB); later rounds mostly fit in the chunk kept */
		if (round == 0)
			assert_true(free_count >= 4);
		assert_int_equal(state_of(f, first), JOBQ_STATE_UNKNOWN);
		assert_int_equal(state_of(f, id), JOBQ_STATE_UNKNOWN);
	}
}

/* Blocks of removed jobs are reused by later adds, with their own contents. */
static void
removed_blocks_are_reused(void **state) {
	fixture *f = *state;
	jobq_keep none = {JOBQ_KEEP_NONE, -1, -1};
	for (int round = 0; round < 3; round++) {
		char id[JOBQ_ID_MAX + 1];
		jobq_job_options o = opts_at(100);
		char data[64];
		snprintf(data, sizeof(data), "{\"round\":%d}", round);
		jobq_add_request r = {round == 1 ? "a-longer-name-this-time" : "n", data,
		                      strlen(data), &o};
		jobq_job_id out;
		int outcome;
		assert_int_equal(f->b->add(&out, &outcome, f->q, &r, 1, 100), 0);
		strcpy(id, out.str);
		jobq_job *j = NULL;
		assert_int_equal(f->b->fetch(&j, NULL, f->q, "tok", 1000, 100), 0);
		assert_string_equal(j->id, id);
		assert_string_equal(j->name, r.name);
		assert_memory_equal(j->data, data, strlen(data));
		assert_int_equal(f->b->complete(f->q, id, "tok", "null", &none, 100), 0);
		jobq_job_free(j);
		assert_int_equal(f->b->get(&j, f->q, id), JOBQ_ENOTFOUND);
	}
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(fetch_order_fifo_lifo_priority, setup, teardown),
	    cmocka_unit_test_setup_teardown(delayed_due_exactly_at_its_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(fail_retry_paths, setup, teardown),
	    cmocka_unit_test_setup_teardown(stall_reaping, setup, teardown),
	    cmocka_unit_test_setup_teardown(keep_policies, setup, teardown),
	    cmocka_unit_test_setup_teardown(dedup_with_ttl, setup, teardown),
	    cmocka_unit_test_setup_teardown(bulk_add_is_one_step, setup, teardown),
	    cmocka_unit_test_setup_teardown(admin_ops, setup, teardown),
	    cmocka_unit_test_setup_teardown(events_sequence_and_cursors, setup, teardown),
	    cmocka_unit_test_setup_teardown(wait_for_work_wakes, setup, teardown),
	    cmocka_unit_test_setup_teardown(failed_ops_change_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(threads_add_and_process, setup, teardown),
	    cmocka_unit_test_setup_teardown(removed_blocks_are_reused, setup, teardown),
	    cmocka_unit_test_setup_teardown(emptied_queue_reuses_its_memory, setup, teardown),
	    cmocka_unit_test_setup_teardown(job_table_finds_after_removals, setup, teardown),
	    cmocka_unit_test(named_instances_share),
	};
	return cmocka_run_group_tests_name("memory_backend", tests, NULL, NULL);
}
