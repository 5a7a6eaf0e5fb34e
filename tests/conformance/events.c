/* The event stream: a job's whole life on the success, retry and stall paths; cursors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

/* added, waiting, active (prev waiting), progress (data), completed (returnvalue, prev
 * active), then the queue's `drained`. */
static void
events_life_completed(void **state) {
	conf *c = conf_begin(state);
	static const char *const seq[] = {"added",    "waiting",   "active",
	                                  "progress", "completed", NULL};
	jobq_job_id id;
	jobq_job *job;
	conf_events ev;
	long idx[5];

	conf_add(c, &id, "mail", NULL, NULL);
	job = conf_fetch(c, id.str, CONF_LOCK_MS);
	assert_int_equal(jobq_job_update_progress(job, "10"), 0);
	assert_int_equal(jobq_job_complete(job, "{\"sent\":true}"), 0);
	jobq_job_free(job);

	conf_events_load(c, &ev);
	conf_events_expect_seq(&ev, id.str, seq, idx);
	assert_string_equal(conf_event_field(&ev.items[idx[0]], "name"), "mail");
	assert_null(conf_event_field(&ev.items[idx[1]], "prev"));
	assert_string_equal(conf_event_field(&ev.items[idx[2]], "prev"), "waiting");
	assert_string_equal(conf_event_field(&ev.items[idx[3]], "data"), "10");
	assert_string_equal(conf_event_field(&ev.items[idx[4]], "returnvalue"), "{\"sent\":true}");
	assert_string_equal(conf_event_field(&ev.items[idx[4]], "prev"), "active");
	/* Nothing else about this job: no failed, delayed, stalled. */
	assert_int_equal(conf_events_find(&ev, 0, "failed", id.str), -1);
	assert_int_equal(conf_events_find(&ev, 0, "delayed", id.str), -1);
	assert_int_equal(conf_events_find(&ev, 0, "stalled", id.str), -1);
	assert_true(conf_events_find(&ev, (size_t)idx[4], "drained", NULL) > idx[4]);
	conf_events_free(&ev);
}

/* Final failure: failed (failedReason, prev active), retries-exhausted (attemptsMade). */
static void
events_life_failed(void **state) {
	conf *c = conf_begin(state);
	static const char *const seq[] = {"added",  "waiting",           "active",
	                                  "failed", "retries-exhausted", NULL};
	jobq_job_id id;
	conf_events ev;
	long idx[5];

	conf_add(c, &id, "n", NULL, NULL);
	assert_int_equal(conf_fetch_fail(c, id.str, "disk full", 0), JOBQ_STATE_FAILED);
	conf_events_load(c, &ev);
	conf_events_expect_seq(&ev, id.str, seq, idx);
	assert_string_equal(conf_event_field(&ev.items[idx[3]], "failedReason"), "disk full");
	assert_string_equal(conf_event_field(&ev.items[idx[3]], "prev"), "active");
	assert_string_equal(conf_event_field(&ev.items[idx[4]], "attemptsMade"), "1");
	assert_int_equal(conf_events_find(&ev, 0, "completed", id.str), -1);
	conf_events_free(&ev);
}

/* Retry path: active, delayed (delay = absolute due time), waiting (prev delayed), active,
 * completed; no `failed` event for the intermediate attempt. */
static void
events_life_retry(void **state) {
	conf *c = conf_begin(state);
	static const char *const seq[] = {"added",   "waiting", "active",    "delayed",
	                                  "waiting", "active",  "completed", NULL};
	jobq_job_options o = conf_opts();
	jobq_job_id id;
	conf_events ev;
	long idx[7];
	char due[32];
	int64_t t;

	CONF_NEED_DUE_CLOCK(c);
	o.attempts = 3;
	o.backoff.type = JOBQ_BACKOFF_FIXED;
	o.backoff.delay_ms = 500;
	conf_add(c, &id, "n", NULL, &o);
	conf_advance(c, 7);
	t = conf_now(c);
	assert_int_equal(conf_fetch_fail(c, id.str, "once", 0), JOBQ_STATE_DELAYED);
	conf_advance(c, 500);
	conf_fetch_complete(c, id.str, "1");
	conf_events_load(c, &ev);
	conf_events_expect_seq(&ev, id.str, seq, idx);
	snprintf(due, sizeof(due), "%lld", (long long)(t + 500));
	assert_string_equal(conf_event_field(&ev.items[idx[3]], "delay"), due);
	assert_string_equal(conf_event_field(&ev.items[idx[4]], "prev"), "delayed");
	assert_string_equal(conf_event_field(&ev.items[idx[5]], "prev"), "waiting");
	assert_int_equal(conf_events_find(&ev, 0, "failed", id.str), -1);
	assert_int_equal(conf_events_find(&ev, 0, "retries-exhausted", id.str), -1);
	conf_events_free(&ev);
}

/* Immediate retry (no backoff): waiting with prev active, and `failed` only at the end. */
static void
events_life_immediate_retry(void **state) {
	conf *c = conf_begin(state);
	static const char *const seq[] = {"active", "waiting",           "active",
	                                  "failed", "retries-exhausted", NULL};
	jobq_job_options o = conf_opts();
	jobq_job_id id;
	conf_events ev;
	long idx[5];

	o.attempts = 2;
	conf_add(c, &id, "n", NULL, &o);
	assert_int_equal(conf_fetch_fail(c, id.str, "a", 0), JOBQ_STATE_WAITING);
	assert_int_equal(conf_fetch_fail(c, id.str, "b", 0), JOBQ_STATE_FAILED);
	conf_events_load(c, &ev);
	conf_events_expect_seq(&ev, id.str, seq, idx);
	assert_string_equal(conf_event_field(&ev.items[idx[1]], "prev"), "active");
	assert_string_equal(conf_event_field(&ev.items[idx[3]], "failedReason"), "b");
	assert_string_equal(conf_event_field(&ev.items[idx[4]], "attemptsMade"), "2");
	assert_int_equal(conf_events_find(&ev, (size_t)idx[3] + 1, "failed", id.str), -1);
	assert_true(conf_events_find(&ev, 0, "failed", id.str) == idx[3]);
	conf_events_free(&ev);
}

/* Stall path: active, waiting (prev active), stalled, active, completed. */
static void
events_life_stalled(void **state) {
	conf *c = conf_begin(state);
	static const char *const seq[] = {"active", "waiting",   "stalled",
	                                  "active", "completed", NULL};
	jobq_job_id id;
	conf_events ev;
	long idx[5];

	conf_add(c, &id, "n", NULL, NULL);
	jobq_job_free(conf_fetch(c, id.str, conf_expiring_lock_ms(c)));
	conf_expire_lock(c);
	assert_int_equal(conf_check_until_recovered(c, 1), 1);
	conf_fetch_complete(c, id.str, NULL);
	conf_events_load(c, &ev);
	conf_events_expect_seq(&ev, id.str, seq, idx);
	assert_string_equal(conf_event_field(&ev.items[idx[1]], "prev"), "active");
	conf_events_free(&ev);
}

/* Reading from JOBQ_EVENTS_NOW returns only newer events; an empty read is not an error; the
 * list's cursor continues where it ended. */
static void
events_cursor(void **state) {
	conf *c = conf_begin(state);
	jobq_event_list *l = NULL;
	jobq_job_id a, b;
	char cur[256];
	size_t i, n;
	int saw_a = 0, saw_b = 0;

	conf_add(c, &a, "n", NULL, NULL);
	assert_int_equal(jobq_events_read(&l, c->q, JOBQ_EVENTS_NOW, 100, 0), 0);
	assert_non_null(l);
	assert_int_equal(jobq_event_list_count(l), 0);
	snprintf(cur, sizeof(cur), "%s", jobq_event_list_cursor(l));
	jobq_event_list_free(l);
	assert_string_not_equal(cur, JOBQ_EVENTS_NOW); /* a concrete position */
	conf_add(c, &b, "n", NULL, NULL);
	l = NULL;
	assert_int_equal(jobq_events_read(&l, c->q, cur, 100, 0), 0);
	n = jobq_event_list_count(l);
	assert_true(n >= 2);
	for (i = 0; i < n; i++) {
		const jobq_event *e = jobq_event_list_at(l, i);

		assert_non_null(e->id);
		assert_non_null(e->event);
		saw_a |= e->job_id != NULL && strcmp(e->job_id, a.str) == 0;
		saw_b |= e->job_id != NULL && strcmp(e->job_id, b.str) == 0;
		if (e->job_id != NULL) {
			assert_string_equal(jobq_event_get(e, "jobId"), e->job_id);
		}
		assert_string_equal(jobq_event_get(e, "event"), e->event);
	}
	assert_false(saw_a);
	assert_true(saw_b);
	snprintf(cur, sizeof(cur), "%s", jobq_event_list_cursor(l));
	jobq_event_list_free(l);
	l = NULL;
	assert_int_equal(jobq_events_read(&l, c->q, cur, 100, 0), 0);
	assert_int_equal(jobq_event_list_count(l), 0);
	jobq_event_list_free(l);
}

/* `max` bounds a read; successive reads see every event once, in order. */
static void
events_read_in_pages(void **state) {
	conf *c = conf_begin(state);
	conf_events all;
	char cur[256];
	size_t seen = 0;
	int i;

	for (i = 0; i < 7; i++) {
		conf_add(c, NULL, "n", NULL, NULL);
	}
	conf_events_load(c, &all);
	assert_true(all.count >= 14);
	snprintf(cur, sizeof(cur), "%s", JOBQ_EVENTS_START);
	for (;;) {
		jobq_event_list *l = NULL;
		size_t k, n;

		assert_int_equal(jobq_events_read(&l, c->q, cur, 3, 0), 0);
		n = jobq_event_list_count(l);
		assert_true(n <= 3);
		for (k = 0; k < n; k++) {
			assert_true(seen < all.count);
			assert_string_equal(jobq_event_list_at(l, k)->event, all.items[seen].event);
			seen++;
		}
		snprintf(cur, sizeof(cur), "%s", jobq_event_list_cursor(l));
		jobq_event_list_free(l);
		if (n == 0) {
			break;
		}
	}
	assert_int_equal(seen, all.count);
	conf_events_free(&all);
}

typedef struct sub_state {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int completed;
	char job[JOBQ_ID_MAX + 1];
} sub_state;

static int
on_event(const jobq_event *e, void *payload) {
	sub_state *s = payload;

	pthread_mutex_lock(&s->mu);
	if (strcmp(e->event, "completed") == 0 && e->job_id != NULL &&
	    strcmp(e->job_id, s->job) == 0) {
		s->completed = 1;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* A subscription calls back for events emitted after it started. */
static void
events_subscribe(void **state) {
	conf *c = conf_begin(state);
	jobq_subscription *sub = NULL;
	sub_state s;
	jobq_job_id id;
	struct timespec ts;

	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	conf_add(c, &id, "n", NULL, NULL);
	snprintf(s.job, sizeof(s.job), "%s", id.str);
	assert_int_equal(jobq_events_subscribe(&sub, c->q, JOBQ_EVENTS_START, on_event, &s), 0);
	conf_fetch_complete(c, id.str, NULL);
	conf_deadline(&ts, conf_ms(5000));
	pthread_mutex_lock(&s.mu);
	while (!s.completed) {
		if (pthread_cond_timedwait(&s.cv, &s.mu, &ts) != 0) {
			break;
		}
	}
	pthread_mutex_unlock(&s.mu);
	jobq_events_unsubscribe(sub);
	assert_true(s.completed);
	pthread_cond_destroy(&s.cv);
	pthread_mutex_destroy(&s.mu);
}

static const struct CMUnitTest cases[] = {
    CONF_CASE(events_life_completed), CONF_CASE(events_life_failed),
    CONF_CASE(events_life_retry),     CONF_CASE(events_life_immediate_retry),
    CONF_CASE(events_life_stalled),   CONF_CASE(events_cursor),
    CONF_CASE(events_read_in_pages),  CONF_CASE(events_subscribe),
};
CONF_TABLE(conf_events_cases, cases);
