/* Administration: pause/resume, drain, clean, obliterate, remove, promote, keep policies,
 * counts after every transition, progress and logs. */
#include <stdio.h>
#include <string.h>

#include "conf.h"

/* Pause stops fetching (adds continue); resume restarts it. Events paused / resumed. */
static void
admin_pause_resume(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id a, b;
	int paused = -1;
	conf_events ev;

	conf_add(c, &a, "n", NULL, NULL);
	assert_int_equal(jobq_queue_pause(c->q), 0);
	assert_int_equal(jobq_queue_is_paused(&paused, c->q), 0);
	assert_int_equal(paused, 1);
	conf_fetch_none(c);
	conf_add(c, &b, "n", NULL, NULL);
	conf_fetch_none(c);
	conf_assert_counts(c, 2, 0, 0, 0, 0, 0);
	assert_int_equal(jobq_queue_resume(c->q), 0);
	assert_int_equal(jobq_queue_is_paused(&paused, c->q), 0);
	assert_int_equal(paused, 0);
	conf_fetch_complete(c, a.str, NULL);
	conf_fetch_complete(c, b.str, NULL);
	conf_events_load(c, &ev);
	assert_true(conf_events_find(&ev, 0, "paused", NULL) >= 0);
	assert_true(conf_events_find(&ev, (size_t)conf_events_find(&ev, 0, "paused", NULL),
	                             "resumed", NULL) >= 0);
	conf_events_free(&ev);
}

/* Pause also holds delayed jobs that become due. */
static void
admin_pause_holds_due_delayed(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id d;

	CONF_NEED_DUE_CLOCK(c);
	o.delay_ms = 100;
	conf_add(c, &d, "n", NULL, &o);
	assert_int_equal(jobq_queue_pause(c->q), 0);
	conf_advance(c, 200);
	conf_fetch_none(c);
	assert_int_equal(jobq_queue_resume(c->q), 0);
	conf_fetch_complete(c, d.str, NULL);
}

/* Drain removes waiting and prioritized jobs, keeps delayed and active unless asked. */
static void
admin_drain(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options pr = conf_opts(), de = conf_opts();
	jobq_job_id act, w, p, d;
	jobq_job *job;

	pr.priority = 3;
	de.delay_ms = 60000;
	conf_add(c, &act, "n", NULL, NULL);
	job = conf_fetch(c, act.str, CONF_LOCK_MS);
	conf_add(c, &w, "n", NULL, NULL);
	conf_add(c, NULL, "n", NULL, NULL);
	conf_add(c, &p, "n", NULL, &pr);
	conf_add(c, &d, "n", NULL, &de);
	conf_assert_counts(c, 2, 1, 1, 1, 0, 0);
	assert_int_equal(jobq_queue_drain(c->q, 0), 0);
	conf_assert_counts(c, 0, 1, 1, 0, 0, 0);
	conf_assert_absent(c, w.str);
	conf_assert_absent(c, p.str);
	assert_int_equal(conf_state(c, d.str), JOBQ_STATE_DELAYED);
	assert_int_equal(jobq_queue_drain(c->q, 1), 0);
	conf_assert_counts(c, 0, 1, 0, 0, 0, 0);
	conf_assert_absent(c, d.str);
	assert_int_equal(jobq_job_complete(job, NULL), 0);
	jobq_job_free(job);
	conf_assert_counts(c, 0, 0, 0, 0, 1, 0);
}

/* Clean by grace: only jobs finished at least grace_ms ago go; `cleaned` event with count. */
static void
admin_clean_by_grace(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id[3];
	jobq_strings *removed = NULL;
	conf_events ev;
	long at;
	int i, rc;

	CONF_NEED_DUE_CLOCK(c);
	for (i = 0; i < 3; i++) {
		conf_add(c, &id[i], "n", NULL, NULL);
	}
	for (i = 0; i < 3; i++) {
		conf_fetch_complete(c, id[i].str, NULL); /* finished at T0, T0+100, T0+200 */
		conf_advance(c, 100);
	}
	conf_advance(c, 700); /* now T0+1000 */
	rc = jobq_queue_clean(&removed, c->q, JOBQ_STATE_COMPLETED, 850, 0);
	assert_int_equal(rc, 2);
	assert_non_null(removed);
	assert_int_equal(removed->count, 2);
	assert_true((strcmp(removed->items[0], id[0].str) == 0 &&
	             strcmp(removed->items[1], id[1].str) == 0) ||
	            (strcmp(removed->items[0], id[1].str) == 0 &&
	             strcmp(removed->items[1], id[0].str) == 0));
	jobq_strings_free(removed);
	conf_assert_absent(c, id[0].str);
	conf_assert_absent(c, id[1].str);
	assert_int_equal(conf_state(c, id[2].str), JOBQ_STATE_COMPLETED);
	conf_assert_counts(c, 0, 0, 0, 0, 1, 0);
	conf_events_load(c, &ev);
	at = conf_events_find(&ev, 0, "cleaned", NULL);
	assert_true(at >= 0);
	assert_string_equal(conf_event_field(&ev.items[at], "count"), "2");
	conf_events_free(&ev);
}

/* Clean by limit: at most `limit` jobs go. */
static void
admin_clean_by_limit(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id[5];
	jobq_strings *removed = NULL;
	size_t k;
	int i, rc;

	for (i = 0; i < 5; i++) {
		conf_add(c, &id[i], "n", NULL, NULL);
	}
	for (i = 0; i < 5; i++) {
		assert_int_equal(conf_fetch_fail(c, id[i].str, "x", 0), JOBQ_STATE_FAILED);
	}
	if (c->clock != NULL) {
		conf_advance(c, 10);
	}
	rc = jobq_queue_clean(&removed, c->q, JOBQ_STATE_FAILED, 0, 2);
	assert_int_equal(rc, 2);
	assert_int_equal(removed->count, 2);
	for (k = 0; k < removed->count; k++) {
		conf_assert_absent(c, removed->items[k]);
	}
	jobq_strings_free(removed);
	conf_assert_counts(c, 0, 0, 0, 0, 0, 3);
	/* Waiting jobs can be cleaned too. */
	conf_add(c, NULL, "n", NULL, NULL);
	if (c->clock != NULL) {
		conf_advance(c, 10);
	}
	rc = jobq_queue_clean(NULL, c->q, JOBQ_STATE_WAITING, 0, 0);
	assert_int_equal(rc, 1);
	conf_assert_counts(c, 0, 0, 0, 0, 0, 3);
}

/* Obliterate: refused with an active job unless forced; then the queue is empty and usable. */
static void
admin_obliterate(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options de = conf_opts();
	jobq_job_id act, w, d, done;
	jobq_job *job;
	jobq_counts before, after;
	int paused = -1;

	de.delay_ms = 60000;
	conf_add(c, &done, "n", NULL, NULL);
	conf_fetch_complete(c, done.str, NULL);
	conf_add(c, &act, "n", NULL, NULL);
	job = conf_fetch(c, act.str, CONF_LOCK_MS);
	conf_add(c, &w, "n", NULL, NULL);
	conf_add(c, &d, "n", NULL, &de);
	before = conf_counts(c);
	conf_assert_error(jobq_queue_obliterate(c->q, 0), JOBQ_ESTATE);
	after = conf_counts(c);
	conf_assert_same_counts(&before, &after);
	assert_int_equal(jobq_queue_obliterate(c->q, 1), 0);
	conf_assert_counts(c, 0, 0, 0, 0, 0, 0);
	conf_assert_absent(c, act.str);
	conf_assert_absent(c, w.str);
	conf_assert_absent(c, d.str);
	conf_assert_absent(c, done.str);
	assert_int_equal(jobq_queue_is_paused(&paused, c->q), 0);
	assert_int_equal(paused, 0);
	{
		/* The job is gone: its old token completes nothing. */
		conf_assert_error(jobq_job_complete(job, NULL), JOBQ_ENOTFOUND);
		conf_assert_counts(c, 0, 0, 0, 0, 0, 0);
	}
	jobq_job_free(job);
	conf_add(c, &w, "n", NULL, NULL);
	conf_fetch_complete(c, w.str, NULL);
	conf_assert_counts(c, 0, 0, 0, 0, 1, 0);
}

/* Remove: any state but active-and-locked; `removed` event with prev. */
static void
admin_remove(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id w, a;
	jobq_job *job;
	conf_events ev;
	long at;

	conf_add(c, &w, "n", NULL, NULL);
	conf_add(c, &a, "n", NULL, NULL);
	assert_int_equal(jobq_queue_remove(c->q, w.str), 0);
	conf_assert_absent(c, w.str);
	job = conf_fetch(c, a.str, CONF_LOCK_MS);
	conf_assert_error(jobq_queue_remove(c->q, a.str), JOBQ_ESTATE);
	assert_int_equal(conf_state(c, a.str), JOBQ_STATE_ACTIVE);
	assert_int_equal(jobq_job_complete(job, NULL), 0);
	jobq_job_free(job);
	assert_int_equal(jobq_queue_remove(c->q, a.str), 0);
	conf_assert_counts(c, 0, 0, 0, 0, 0, 0);
	conf_assert_error(jobq_queue_remove(c->q, a.str), JOBQ_ENOTFOUND);
	conf_events_load(c, &ev);
	at = conf_events_find(&ev, 0, "removed", w.str);
	assert_true(at >= 0);
	assert_string_equal(conf_event_field(&ev.items[at], "prev"), "waiting");
	at = conf_events_find(&ev, 0, "removed", a.str);
	assert_true(at >= 0);
	assert_string_equal(conf_event_field(&ev.items[at], "prev"), "completed");
	conf_events_free(&ev);
}

/* Promote: one delayed job or all of them, at once. */
static void
admin_promote(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options de = conf_opts();
	jobq_job_id d1, d2, d3, w;

	de.delay_ms = 60000;
	conf_add(c, &d1, "n", NULL, &de);
	conf_add(c, &d2, "n", NULL, &de);
	conf_add(c, &d3, "n", NULL, &de);
	conf_add(c, &w, "n", NULL, NULL);
	assert_int_equal(jobq_queue_promote(c->q, d2.str), 1);
	conf_assert_counts(c, 2, 0, 2, 0, 0, 0);
	conf_assert_error(jobq_queue_promote(c->q, w.str), JOBQ_ESTATE);
	conf_assert_error(jobq_queue_promote(c->q, "nope"), JOBQ_ENOTFOUND);
	assert_int_equal(jobq_queue_promote(c->q, NULL), 2);
	conf_assert_counts(c, 4, 0, 0, 0, 0, 0);
	conf_fetch_complete(c, w.str, NULL);
	conf_fetch_complete(c, d2.str, NULL);
}

/* --- keep policies ------------------------------------------------------------------------ */

static jobq_keep
keep(jobq_keep_mode mode, int64_t count, int64_t age_ms) {
	jobq_keep k;

	k.mode = mode;
	k.count = count;
	k.age_ms = age_ms;
	return k;
}

/* Adds a job with `o`, runs it and completes it (fail != 0: fails it for good). */
static void
run_one(conf *c, jobq_job_id *id, const jobq_job_options *o, int fail_it) {
	conf_add(c, id, "n", NULL, o);
	if (fail_it) {
		assert_int_equal(conf_fetch_fail(c, id->str, "x", 0), JOBQ_STATE_FAILED);
	} else {
		conf_fetch_complete(c, id->str, NULL);
	}
}

static void
keep_policies(conf *c, int fail_it) {
	jobq_job_options all = conf_opts(), none = conf_opts(), last2 = conf_opts();
	jobq_job_id a, b, n1, l[4];
	jobq_keep *k;
	int i;

	k = fail_it ? &all.remove_on_fail : &all.remove_on_complete;
	*k = keep(JOBQ_KEEP_ALL, 0, 0);
	k = fail_it ? &none.remove_on_fail : &none.remove_on_complete;
	*k = keep(JOBQ_KEEP_NONE, 0, 0);
	k = fail_it ? &last2.remove_on_fail : &last2.remove_on_complete;
	*k = keep(JOBQ_KEEP_LIMIT, 2, -1);

	run_one(c, &a, NULL, fail_it); /* default: keep */
	run_one(c, &b, &all, fail_it);
	run_one(c, &n1, &none, fail_it);
	conf_assert_absent(c, n1.str);
	assert_int_equal(conf_state(c, a.str), fail_it ? JOBQ_STATE_FAILED : JOBQ_STATE_COMPLETED);
	assert_int_equal(conf_state(c, b.str), fail_it ? JOBQ_STATE_FAILED : JOBQ_STATE_COMPLETED);
	if (fail_it) {
		conf_assert_counts(c, 0, 0, 0, 0, 0, 2);
	} else {
		conf_assert_counts(c, 0, 0, 0, 0, 2, 0);
	}
	/* Keep the newest 2 of the whole set, counted when a job with the policy finishes. */
	for (i = 0; i < 4; i++) {
		if (c->clock != NULL) {
			conf_advance(c, 1);
		}
		run_one(c, &l[i], &last2, fail_it);
	}
	if (fail_it) {
		conf_assert_counts(c, 0, 0, 0, 0, 0, 2);
	} else {
		conf_assert_counts(c, 0, 0, 0, 0, 2, 0);
	}
	conf_assert_absent(c, a.str);
	conf_assert_absent(c, b.str);
	conf_assert_absent(c, l[0].str);
	conf_assert_absent(c, l[1].str);
	assert_int_equal(conf_state(c, l[2].str),
	                 fail_it ? JOBQ_STATE_FAILED : JOBQ_STATE_COMPLETED);
	assert_int_equal(conf_state(c, l[3].str),
	                 fail_it ? JOBQ_STATE_FAILED : JOBQ_STATE_COMPLETED);
}

/* remove-on-complete: keep all, remove, keep the newest N. */
static void
admin_remove_on_complete(void **state) {
	keep_policies(conf_begin(state), 0);
}

/* remove-on-fail: keep all, remove, keep the newest N. */
static void
admin_remove_on_fail(void **state) {
	keep_policies(conf_begin(state), 1);
}

static void
keep_by_age(conf *c, int fail_it) {
	jobq_job_options aged = conf_opts();
	jobq_job_id old, young, now;
	jobq_keep *k = fail_it ? &aged.remove_on_fail : &aged.remove_on_complete;

	CONF_NEED_DUE_CLOCK(c);
	*k = keep(JOBQ_KEEP_LIMIT, -1, 1000);
	run_one(c, &old, NULL, fail_it);
	conf_advance(c, 600);
	run_one(c, &young, NULL, fail_it);
	conf_advance(c, 600); /* old finished 1200 ms ago, young 600 ms ago */
	run_one(c, &now, &aged, fail_it);
	conf_assert_absent(c, old.str);
	assert_int_equal(conf_state(c, young.str),
	                 fail_it ? JOBQ_STATE_FAILED : JOBQ_STATE_COMPLETED);
	assert_int_equal(conf_state(c, now.str),
	                 fail_it ? JOBQ_STATE_FAILED : JOBQ_STATE_COMPLETED);
}

/* remove-on-complete by age: finished jobs older than age_ms go. */
static void
admin_remove_on_complete_by_age(void **state) {
	keep_by_age(conf_begin(state), 0);
}

/* remove-on-fail by age: failed jobs older than age_ms go. */
static void
admin_remove_on_fail_by_age(void **state) {
	keep_by_age(conf_begin(state), 1);
}

static int
handler_ok(jobq_job *job, void *payload) {
	(void)job;
	(void)payload;
	return 0;
}

static int
handler_fail(jobq_job *job, void *payload) {
	(void)payload;
	return jobq_job_set_error(job, 0, "bad");
}

/* Worker defaults apply to jobs without their own policy; a job's own policy wins. */
static void
worker_default_keep(conf *c, int fail_it) {
	jobq_worker_options wo = conf_wopts();
	jobq_job_options own = conf_opts();
	jobq_worker *w = NULL;
	jobq_job_id plain, kept, last;
	jobq_job *job = NULL;
	const char *ev = fail_it ? "failed" : "completed";
	int rc;

	if (fail_it) {
		wo.remove_on_fail = keep(JOBQ_KEEP_NONE, 0, 0);
		own.remove_on_fail = keep(JOBQ_KEEP_ALL, 0, 0);
	} else {
		wo.remove_on_complete = keep(JOBQ_KEEP_NONE, 0, 0);
		own.remove_on_complete = keep(JOBQ_KEEP_ALL, 0, 0);
	}
	conf_add(c, &plain, "n", NULL, NULL);
	conf_add(c, &kept, "n", NULL, &own);
	conf_add(c, &last, "n", NULL, NULL);
	assert_int_equal(jobq_worker_new(&w, c->q, fail_it ? handler_fail : handler_ok, NULL, &wo),
	                 0);
	assert_int_equal(jobq_worker_start(w), 0);
	assert_true(conf_wait_event(c, ev, last.str, conf_ms(5000)));
	rc = jobq_queue_wait_job(&job, c->q, kept.str, conf_ms(5000));
	assert_int_equal(rc, fail_it ? JOBQ_ESTATE : 0);
	jobq_job_free(job);
	assert_int_equal(jobq_worker_close(w, conf_ms(5000)), 0);
	jobq_worker_free(w);
	assert_true(conf_wait_event(c, ev, plain.str, 0));
	conf_assert_absent(c, plain.str);
	conf_assert_absent(c, last.str);
	if (fail_it) {
		conf_assert_counts(c, 0, 0, 0, 0, 0, 1);
	} else {
		conf_assert_counts(c, 0, 0, 0, 0, 1, 0);
	}
}

/* Worker remove_on_complete default (remove) applies; a job's keep-all wins. */
static void
admin_worker_default_remove_on_complete(void **state) {
	worker_default_keep(conf_begin(state), 0);
}

/* Worker remove_on_fail default (remove) applies; a job's keep-all wins. */
static void
admin_worker_default_remove_on_fail(void **state) {
	worker_default_keep(conf_begin(state), 1);
}

/* Worker defaults "keep the newest N" for completed and failed jobs alike. */
static void
admin_worker_default_keep_last(void **state) {
	conf *c = conf_begin(state);
	jobq_worker_options wo = conf_wopts();
	jobq_worker *w = NULL;
	jobq_job_id id[4];
	jobq_job *job = NULL;
	int i;

	wo.remove_on_complete = keep(JOBQ_KEEP_LIMIT, 1, -1);
	wo.remove_on_fail = keep(JOBQ_KEEP_LIMIT, 1, -1);
	for (i = 0; i < 4; i++) {
		conf_add(c, &id[i], i % 2 ? "bad" : "good", NULL, NULL);
	}
	assert_int_equal(jobq_worker_new(&w, c->q, handler_ok, NULL, &wo), 0);
	assert_int_equal(jobq_worker_on(w, "bad", handler_fail, NULL), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	assert_int_equal(jobq_queue_wait_job(&job, c->q, id[3].str, conf_ms(10000)), JOBQ_ESTATE);
	jobq_job_free(job);
	assert_int_equal(jobq_worker_close(w, conf_ms(5000)), 0);
	jobq_worker_free(w);
	conf_assert_counts(c, 0, 0, 0, 0, 1, 1);
	conf_assert_absent(c, id[0].str);
	conf_assert_absent(c, id[1].str);
	assert_int_equal(conf_state(c, id[2].str), JOBQ_STATE_COMPLETED);
	assert_int_equal(conf_state(c, id[3].str), JOBQ_STATE_FAILED);
}

/* --- counts --------------------------------------------------------------------------------- */

/* Counts after every kind of transition. */
static void
admin_counts_every_transition(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options pr = conf_opts(), de = conf_opts(), re = conf_opts();
	jobq_job_id w, p, d, r;
	jobq_job *job;

	pr.priority = 2;
	de.delay_ms = 60000;
	re.attempts = 2;
	re.backoff.type = JOBQ_BACKOFF_FIXED;
	re.backoff.delay_ms = 60000;
	conf_assert_counts(c, 0, 0, 0, 0, 0, 0);
	conf_add(c, &w, "n", NULL, NULL);
	conf_assert_counts(c, 1, 0, 0, 0, 0, 0);
	conf_add(c, &p, "n", NULL, &pr);
	conf_assert_counts(c, 1, 0, 0, 1, 0, 0);
	conf_add(c, &d, "n", NULL, &de);
	conf_assert_counts(c, 1, 0, 1, 1, 0, 0);
	job = conf_fetch(c, w.str, CONF_LOCK_MS); /* waiting -> active */
	conf_assert_counts(c, 0, 1, 1, 1, 0, 0);
	assert_int_equal(jobq_job_complete(job, NULL), 0); /* active -> completed */
	jobq_job_free(job);
	conf_assert_counts(c, 0, 0, 1, 1, 1, 0);
	job = conf_fetch(c, p.str, CONF_LOCK_MS); /* prioritized -> active */
	conf_assert_counts(c, 0, 1, 1, 0, 1, 0);
	assert_int_equal(jobq_job_fail(job, "x", 0), JOBQ_STATE_FAILED); /* active -> failed */
	jobq_job_free(job);
	conf_assert_counts(c, 0, 0, 1, 0, 1, 1);
	/* failed -> ready again; a single retry keeps the priority (BullMQ 6.x job.retry) */
	assert_int_equal(jobq_queue_retry(c->q, p.str), 1);
	conf_assert_counts(c, 0, 0, 1, 1, 1, 0);
	conf_fetch_complete(c, p.str, NULL);
	conf_assert_counts(c, 0, 0, 1, 0, 2, 0);
	assert_int_equal(jobq_queue_promote(c->q, d.str), 1); /* delayed -> waiting */
	conf_assert_counts(c, 1, 0, 0, 0, 2, 0);
	conf_add(c, &r, "n", NULL, &re);
	conf_fetch_complete(c, d.str, NULL);
	assert_int_equal(conf_fetch_fail(c, r.str, "x", 0), JOBQ_STATE_DELAYED); /* -> delayed */
	conf_assert_counts(c, 0, 0, 1, 0, 3, 0);
	assert_int_equal(jobq_queue_remove(c->q, r.str), 0);
	conf_assert_counts(c, 0, 0, 0, 0, 3, 0);
}

/* --- progress and logs ----------------------------------------------------------------------- */

/* Progress from the job and from the queue; `progress` events carry the data. */
static void
admin_progress(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	jobq_job *job, *got;
	conf_events ev;
	long at;

	conf_add(c, &id, "n", NULL, NULL);
	got = conf_get(c, id.str);
	assert_null(jobq_job_progress(got));
	jobq_job_free(got);
	job = conf_fetch(c, id.str, CONF_LOCK_MS);
	assert_int_equal(jobq_job_update_progress(job, "50"), 0);
	got = conf_get(c, id.str);
	assert_string_equal(jobq_job_progress(got), "50");
	jobq_job_free(got);
	assert_int_equal(jobq_queue_update_progress(c->q, id.str, "{\"step\":2}"), 0);
	got = conf_get(c, id.str);
	assert_string_equal(jobq_job_progress(got), "{\"step\":2}");
	jobq_job_free(got);
	conf_assert_error(jobq_job_update_progress(job, "{not json"), JOBQ_EINVAL);
	assert_int_equal(jobq_job_complete(job, NULL), 0);
	jobq_job_free(job);
	conf_events_load(c, &ev);
	at = conf_events_find(&ev, 0, "progress", id.str);
	assert_true(at >= 0);
	assert_string_equal(conf_event_field(&ev.items[at], "data"), "50");
	at = conf_events_find(&ev, (size_t)at + 1, "progress", id.str);
	assert_true(at >= 0);
	assert_string_equal(conf_event_field(&ev.items[at], "data"), "{\"step\":2}");
	assert_int_equal(conf_events_find(&ev, (size_t)at + 1, "progress", id.str), -1);
	conf_events_free(&ev);
}

static void
assert_logs(conf *c, const char *id, size_t start, size_t limit, const char *const *want,
            size_t n) {
	jobq_strings *logs = NULL;
	size_t i;

	assert_int_equal(jobq_queue_get_logs(&logs, c->q, id, start, limit), 0);
	if (n == 0) {
		assert_true(logs == NULL || logs->count == 0);
		jobq_strings_free(logs);
		return;
	}
	assert_non_null(logs);
	assert_int_equal(logs->count, n);
	for (i = 0; i < n; i++) {
		assert_string_equal(logs->items[i], want[i]);
	}
	jobq_strings_free(logs);
}

/* Logs are kept in order; get_logs pages with start/limit. */
static void
admin_logs(void **state) {
	conf *c = conf_begin(state);
	static const char *const all[] = {"one", "two", "three"};
	jobq_job_id id;
	jobq_job *job;

	conf_add(c, &id, "n", NULL, NULL);
	assert_logs(c, id.str, 0, 0, all, 0);
	assert_int_equal(jobq_queue_add_log(c->q, id.str, "one"), 1);
	job = conf_fetch(c, id.str, CONF_LOCK_MS);
	assert_true(jobq_job_log(job, "two") >= 0);
	assert_int_equal(jobq_queue_add_log(c->q, id.str, "three"), 3);
	assert_int_equal(jobq_job_complete(job, NULL), 0);
	jobq_job_free(job);
	assert_logs(c, id.str, 0, 0, all, 3);
	assert_logs(c, id.str, 1, 1, all + 1, 1);
	assert_logs(c, id.str, 1, 0, all + 1, 2);
}

/* keep_logs N trims to the newest N lines. */
static void
admin_keep_logs_trims(void **state) {
	conf *c = conf_begin(state);
	static const char *const last2[] = {"l3", "l4"};
	jobq_job_options o = conf_opts();
	jobq_job_id id;
	char line[8];
	int i;

	o.keep_logs = 2;
	conf_add(c, &id, "n", NULL, &o);
	for (i = 1; i <= 4; i++) {
		snprintf(line, sizeof(line), "l%d", i);
		assert_int_equal(jobq_queue_add_log(c->q, id.str, line), i < 2 ? i : 2);
	}
	assert_logs(c, id.str, 0, 0, last2, 2);
}

static const struct CMUnitTest cases[] = {
    CONF_CASE(admin_pause_resume),
    CONF_CASE(admin_pause_holds_due_delayed),
    CONF_CASE(admin_drain),
    CONF_CASE(admin_clean_by_grace),
    CONF_CASE(admin_clean_by_limit),
    CONF_CASE(admin_obliterate),
    CONF_CASE(admin_remove),
    CONF_CASE(admin_promote),
    CONF_CASE(admin_remove_on_complete),
    CONF_CASE(admin_remove_on_fail),
    CONF_CASE(admin_remove_on_complete_by_age),
    CONF_CASE(admin_remove_on_fail_by_age),
    CONF_CASE(admin_worker_default_remove_on_complete),
    CONF_CASE(admin_worker_default_remove_on_fail),
    CONF_CASE(admin_worker_default_keep_last),
    CONF_CASE(admin_counts_every_transition),
    CONF_CASE(admin_progress),
    CONF_CASE(admin_logs),
    CONF_CASE(admin_keep_logs_trims),
};
CONF_TABLE(conf_admin_cases, cases);
