/* Fetching: order (FIFO, LIFO, priorities, delayed), locks and tokens. */
#include <stdio.h>
#include <string.h>

#include "conf.h"

/* Waiting jobs run first in, first out. */
static void
fetch_fifo(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id[5];
	int i;

	for (i = 0; i < 5; i++) {
		conf_add(c, &id[i], "n", NULL, NULL);
	}
	for (i = 0; i < 5; i++) {
		conf_fetch_complete(c, id[i].str, NULL);
	}
	conf_fetch_none(c);
	conf_assert_counts(c, 0, 0, 0, 0, 5, 0);
}

/* A lifo job runs before the jobs already waiting; the newest lifo job first. */
static void
fetch_lifo(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options lifo = conf_opts();
	jobq_job_id a, b, l1, l2;

	lifo.lifo = 1;
	conf_add(c, &a, "n", NULL, NULL);
	conf_add(c, &b, "n", NULL, NULL);
	conf_add(c, &l1, "n", NULL, &lifo);
	conf_add(c, &l2, "n", NULL, &lifo);
	conf_fetch_complete(c, l2.str, NULL);
	conf_fetch_complete(c, l1.str, NULL);
	conf_fetch_complete(c, a.str, NULL);
	conf_fetch_complete(c, b.str, NULL);
	conf_fetch_none(c);
}

/* Waiting before prioritized; lower priority number first; FIFO inside one priority. */
static void
fetch_priority_order(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options p[4];
	jobq_job_id p3, p1a, p2, p1b, plain, p1c;
	int i;

	for (i = 0; i < 4; i++) {
		p[i] = conf_opts();
		p[i].priority = (uint32_t)i;
	}
	conf_add(c, &p3, "n", NULL, &p[3]);
	conf_add(c, &p1a, "n", NULL, &p[1]);
	conf_add(c, &p2, "n", NULL, &p[2]);
	conf_add(c, &p1b, "n", NULL, &p[1]);
	conf_add(c, &plain, "n", NULL, NULL);
	conf_add(c, &p1c, "n", NULL, &p[1]);
	conf_assert_counts(c, 1, 0, 0, 5, 0, 0);
	conf_fetch_complete(c, plain.str, NULL);
	conf_fetch_complete(c, p1a.str, NULL);
	conf_fetch_complete(c, p1b.str, NULL);
	conf_fetch_complete(c, p1c.str, NULL);
	conf_fetch_complete(c, p2.str, NULL);
	conf_fetch_complete(c, p3.str, NULL);
	conf_fetch_none(c);
}

/* The largest priority is accepted and runs after smaller ones. */
static void
fetch_priority_max(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options hi = conf_opts(), lo = conf_opts();
	jobq_job_id h, l;

	hi.priority = JOBQ_PRIORITY_MAX;
	lo.priority = 1;
	conf_add(c, &h, "n", NULL, &hi);
	conf_add(c, &l, "n", NULL, &lo);
	conf_fetch_complete(c, l.str, NULL);
	conf_fetch_complete(c, h.str, NULL);
}

/* A delayed job is not fetchable at due - 1 and is fetchable exactly at its due time. */
static void
fetch_delayed_exactly_at_due(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id d, w;
	conf_events ev;
	long at;
	char due[32];

	CONF_NEED_DUE_CLOCK(c);
	o.delay_ms = 1000;
	conf_add(c, &d, "n", NULL, &o);
	conf_events_load(c, &ev);
	at = conf_events_find(&ev, 0, "delayed", d.str);
	assert_true(at >= 0);
	snprintf(due, sizeof(due), "%lld", (long long)(CONF_T0 + 1000));
	assert_string_equal(conf_event_field(&ev.items[at], "delay"), due);
	conf_events_free(&ev);

	conf_advance(c, 999);
	conf_fetch_none(c);
	assert_int_equal(conf_state(c, d.str), JOBQ_STATE_DELAYED);
	conf_add(c, &w, "n", NULL, NULL);
	conf_advance(c, 1);
	/* Promoted at fetch into waiting, behind what already waits. */
	conf_fetch_complete(c, w.str, NULL);
	conf_fetch_complete(c, d.str, NULL);
	conf_assert_counts(c, 0, 0, 0, 0, 2, 0);
}

/* A delayed job with a priority becomes prioritized when due. */
static void
fetch_delayed_keeps_priority(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts(), p1 = conf_opts();
	jobq_job_id d, a;

	CONF_NEED_DUE_CLOCK(c);
	o.delay_ms = 100;
	o.priority = 7;
	p1.priority = 1;
	conf_add(c, &d, "n", NULL, &o);
	conf_add(c, &a, "n", NULL, &p1);
	conf_advance(c, 100);
	conf_fetch_complete(c, a.str, NULL); /* promotes d, then takes priority 1 first */
	assert_int_equal(conf_state(c, d.str), JOBQ_STATE_PRIORITIZED);
	conf_fetch_complete(c, d.str, NULL);
}

/* Fetch locks the job: state active, a token, processed_on = now, attempts_started + 1. */
static void
fetch_sets_active_fields(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	jobq_job *job, *got;

	conf_add(c, &id, "n", "{\"k\":1}", NULL);
	job = conf_fetch(c, id.str, CONF_LOCK_MS);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_ACTIVE);
	assert_true(strlen(jobq_job_token(job)) > 0);
	assert_string_not_equal(jobq_job_token(job), "0");
	assert_int_equal(jobq_job_attempts_started(job), 1);
	assert_int_equal(jobq_job_attempts_made(job), 0);
	assert_string_equal(jobq_job_name(job), "n");
	if (c->clock != NULL) {
		assert_int_equal(jobq_job_processed_on(job), CONF_T0);
	}
	got = conf_get(c, id.str);
	assert_int_equal(jobq_job_state(got), JOBQ_STATE_ACTIVE);
	jobq_job_free(got);
	conf_assert_counts(c, 0, 1, 0, 0, 0, 0);
	jobq_job_free(job);
}

/* Two fetches get two different tokens. */
static void
fetch_tokens_unique(void **state) {
	conf *c = conf_begin(state);
	jobq_job *a, *b;

	conf_add(c, NULL, "n", NULL, NULL);
	conf_add(c, NULL, "n", NULL, NULL);
	a = conf_fetch(c, NULL, CONF_LOCK_MS);
	b = conf_fetch(c, NULL, CONF_LOCK_MS);
	assert_string_not_equal(jobq_job_token(a), jobq_job_token(b));
	assert_string_not_equal(jobq_job_id_of(a), jobq_job_id_of(b));
	jobq_job_free(a);
	jobq_job_free(b);
}

/* Complete stores the result and finish time; attempts_made becomes 1. */
static void
fetch_complete_stores_result(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	jobq_job *job;

	conf_add(c, &id, "n", NULL, NULL);
	job = conf_fetch(c, id.str, CONF_LOCK_MS);
	if (c->clock != NULL) {
		conf_advance(c, 25);
	}
	assert_int_equal(jobq_job_complete(job, "42"), 0);
	jobq_job_free(job);
	job = conf_get(c, id.str);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_COMPLETED);
	assert_string_equal(jobq_job_result(job), "42");
	assert_int_equal(jobq_job_attempts_made(job), 1);
	if (c->clock != NULL) {
		assert_int_equal(jobq_job_finished_on(job), CONF_T0 + 25);
		assert_int_equal(jobq_job_processed_on(job), CONF_T0);
	} else {
		assert_true(jobq_job_finished_on(job) >= jobq_job_processed_on(job));
	}
	jobq_job_free(job);
	conf_assert_counts(c, 0, 0, 0, 0, 1, 0);
}

/* A lock extended before it expires keeps the job: the stalled check leaves it alone. */
static void
fetch_extend_lock_keeps_job(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	jobq_job *job;
	int i;

	CONF_NEED_LOCK_CLOCK(c);
	conf_add(c, &id, "n", NULL, NULL);
	job = conf_fetch(c, id.str, 1000);
	conf_advance(c, 800);
	assert_int_equal(jobq_job_extend_lock(job, 1000), 0);
	conf_advance(c, 800); /* past the first lock, inside the extended one */
	for (i = 0; i < 3; i++) {
		assert_int_equal(jobq_queue_check_stalled(c->q, 1), 0);
	}
	assert_int_equal(conf_state(c, id.str), JOBQ_STATE_ACTIVE);
	assert_int_equal(jobq_job_complete(job, NULL), 0);
	jobq_job_free(job);
	conf_assert_counts(c, 0, 0, 0, 0, 1, 0);
}

static void
assert_job_untouched(conf *c, const char *id, jobq_state st, uint32_t made) {
	jobq_job *job = conf_get(c, id);

	assert_int_equal(jobq_job_state(job), st);
	assert_int_equal(jobq_job_attempts_made(job), made);
	assert_null(jobq_job_result(job));
	assert_null(jobq_job_failed_reason(job));
	jobq_job_free(job);
}

/* complete / fail / extend with a wrong token: JOBQ_ELOCKLOST and nothing changes. */
static void
fetch_wrong_token_changes_nothing(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	jobq_job *job;
	jobq_counts before, after;
	int rc;

	conf_add(c, &id, "n", NULL, NULL);
	job = conf_fetch(c, id.str, CONF_LOCK_MS);
	before = conf_counts(c);
	rc = jobq_queue_complete(c->q, id.str, "not-the-token", "1");
	conf_assert_error(rc, JOBQ_ELOCKLOST);
	rc = jobq_queue_fail(c->q, id.str, "not-the-token", "boom", 0);
	conf_assert_error(rc, JOBQ_ELOCKLOST);
	rc = jobq_queue_fail(c->q, id.str, "not-the-token", "boom", JOBQ_FAIL_UNRECOVERABLE);
	conf_assert_error(rc, JOBQ_ELOCKLOST);
	rc = jobq_queue_extend_lock(c->q, id.str, "not-the-token", 1000);
	conf_assert_error(rc, JOBQ_ELOCKLOST);
	rc = jobq_queue_complete(c->q, id.str, "0", "1");
	conf_assert_error(rc, JOBQ_ELOCKLOST);
	after = conf_counts(c);
	conf_assert_same_counts(&before, &after);
	assert_job_untouched(c, id.str, JOBQ_STATE_ACTIVE, 0);
	/* The real token still works. */
	assert_int_equal(jobq_job_complete(job, "1"), 0);
	jobq_job_free(job);
}

/* A token whose lock expired (not yet recovered) can no longer complete, fail or extend. */
static void
fetch_expired_lock_changes_nothing(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	jobq_job *job;
	jobq_counts before, after;
	char token[256];

	CONF_NEED_LOCK_CLOCK(c);
	conf_add(c, &id, "n", NULL, NULL);
	job = conf_fetch(c, id.str, 1000);
	snprintf(token, sizeof(token), "%s", jobq_job_token(job));
	conf_advance(c, 1001);
	before = conf_counts(c);
	conf_assert_error(jobq_queue_extend_lock(c->q, id.str, token, 1000), JOBQ_ELOCKLOST);
	conf_assert_error(jobq_queue_complete(c->q, id.str, token, "1"), JOBQ_ELOCKLOST);
	conf_assert_error(jobq_queue_fail(c->q, id.str, token, "x", 0), JOBQ_ELOCKLOST);
	after = conf_counts(c);
	conf_assert_same_counts(&before, &after);
	assert_job_untouched(c, id.str, JOBQ_STATE_ACTIVE, 0);
	jobq_job_free(job);
}

/* After the lock expired and the job was re-fetched, the old token changes nothing and the
 * new holder finishes the job. */
static void
fetch_stale_token_after_refetch(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	jobq_job *first, *second;
	jobq_counts before, after;

	conf_add(c, &id, "n", NULL, NULL);
	first = conf_fetch(c, id.str, conf_expiring_lock_ms(c));
	conf_expire_lock(c);
	assert_int_equal(conf_check_until_recovered(c, 1), 1);
	second = conf_fetch(c, id.str, 1000);
	assert_string_not_equal(jobq_job_token(first), jobq_job_token(second));
	before = conf_counts(c);
	conf_assert_error(jobq_job_complete(first, "1"), JOBQ_ELOCKLOST);
	conf_assert_error(jobq_job_fail(first, "late", 0), JOBQ_ELOCKLOST);
	conf_assert_error(jobq_job_fail(first, "late", JOBQ_FAIL_UNRECOVERABLE), JOBQ_ELOCKLOST);
	conf_assert_error(jobq_job_extend_lock(first, 1000), JOBQ_ELOCKLOST);
	after = conf_counts(c);
	conf_assert_same_counts(&before, &after);
	assert_job_untouched(c, id.str, JOBQ_STATE_ACTIVE, 0);
	{
		jobq_job *job = conf_get(c, id.str);

		assert_int_equal(jobq_job_attempts_started(job), 2);
		jobq_job_free(job);
	}
	assert_int_equal(jobq_job_complete(second, "2"), 0);
	jobq_job_free(first);
	jobq_job_free(second);
	conf_assert_counts(c, 0, 0, 0, 0, 1, 0);
}

/* Listing waiting jobs follows the order they will run in. */
static void
fetch_list_in_run_order(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options lifo = conf_opts();
	jobq_job_id a, b, l;
	jobq_job_list *list = NULL;

	lifo.lifo = 1;
	conf_add(c, &a, "n", NULL, NULL);
	conf_add(c, &b, "n", NULL, NULL);
	conf_add(c, &l, "n", NULL, &lifo);
	assert_int_equal(jobq_queue_list(&list, c->q, JOBQ_STATE_WAITING, 0, 10), 0);
	assert_non_null(list);
	assert_int_equal(list->count, 3);
	assert_string_equal(jobq_job_id_of(list->jobs[0]), l.str);
	assert_string_equal(jobq_job_id_of(list->jobs[1]), a.str);
	assert_string_equal(jobq_job_id_of(list->jobs[2]), b.str);
	jobq_job_list_free(list);
	list = NULL;
	assert_int_equal(jobq_queue_list(&list, c->q, JOBQ_STATE_WAITING, 1, 1), 0);
	assert_int_equal(list->count, 1);
	assert_string_equal(jobq_job_id_of(list->jobs[0]), a.str);
	jobq_job_list_free(list);
}

/* --- real time (any backend: the case reopens its store on the system clock) -------------- */

static int
wall_complete(jobq_job *job, void *payload) {
	(void)payload;
	return jobq_job_set_result(job, "1", 1);
}

/* Real time: a delayed job is not fetchable before its due time and runs after it. */
static void
fetch_wallclock_delayed_runs_after_due(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_worker *w = NULL;
	jobq_job_id id;
	jobq_job *job = NULL;

	conf_use_real_clock(c);
	o.delay_ms = conf_ms(200);
	conf_add(c, &id, "n", NULL, &o);
	conf_fetch_none(c);
	assert_int_equal(jobq_worker_new(&w, c->q, wall_complete, NULL, NULL), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	assert_int_equal(jobq_queue_wait_job(&job, c->q, id.str, conf_ms(10000)), 0);
	assert_true(jobq_job_processed_on(job) >= jobq_job_timestamp(job) + o.delay_ms);
	jobq_job_free(job);
	assert_int_equal(jobq_worker_close(w, conf_ms(5000)), 0);
	jobq_worker_free(w);
}

typedef struct holder {
	conf_gate gate;
	char token[256];
	pthread_mutex_t mu;
} holder;

static int
wall_hold(jobq_job *job, void *payload) {
	holder *h = payload;

	pthread_mutex_lock(&h->mu);
	snprintf(h->token, sizeof(h->token), "%s", jobq_job_token(job) ? jobq_job_token(job) : "");
	pthread_mutex_unlock(&h->mu);
	return conf_gate_pass(&h->gate, conf_ms(20000)) ? 0 : jobq_job_set_error(job, 0, "gate");
}

/* Real time: after the lock expired and a worker took the job again, the old token's
 * complete / fail / extend return JOBQ_ELOCKLOST and change nothing. */
static void
fetch_wallclock_stale_token(void **state) {
	conf *c = conf_begin(state);
	jobq_worker_options wo = conf_wopts();
	jobq_worker *w = NULL;
	holder h;
	jobq_job_id id;
	jobq_job *job = NULL;
	char stale[256];
	jobq_counts before, after;
	int inside;

	conf_use_real_clock(c);
	memset(&h, 0, sizeof(h));
	conf_gate_init(&h.gate);
	pthread_mutex_init(&h.mu, NULL);
	conf_add(c, &id, "n", NULL, NULL);
	job = conf_fetch(c, id.str, conf_ms(100)); /* abandoned */
	snprintf(stale, sizeof(stale), "%s", jobq_job_token(job));
	jobq_job_free(job);
	wo.stalled_interval_ms = conf_ms(50);
	wo.lock_ms = conf_ms(5000);
	assert_int_equal(jobq_worker_new(&w, c->q, wall_hold, &h, &wo), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	inside = conf_gate_wait_inside(&h.gate, 1, conf_ms(10000));
	if (inside) {
		before = conf_counts(c);
		conf_assert_error(jobq_queue_complete(c->q, id.str, stale, "1"), JOBQ_ELOCKLOST);
		conf_assert_error(jobq_queue_fail(c->q, id.str, stale, "x", 0), JOBQ_ELOCKLOST);
		conf_assert_error(jobq_queue_extend_lock(c->q, id.str, stale, 1000),
		                  JOBQ_ELOCKLOST);
		after = conf_counts(c);
		job = conf_get(c, id.str);
		conf_gate_open(&h.gate);
		conf_assert_same_counts(&before, &after);
		assert_int_equal(jobq_job_state(job), JOBQ_STATE_ACTIVE);
		assert_int_equal(jobq_job_attempts_made(job), 0);
		assert_int_equal(jobq_job_stalled_count(job), 1);
		jobq_job_free(job);
		pthread_mutex_lock(&h.mu);
		assert_string_not_equal(h.token, stale);
		pthread_mutex_unlock(&h.mu);
	}
	conf_gate_open(&h.gate);
	assert_true(inside);
	job = NULL;
	assert_int_equal(jobq_queue_wait_job(&job, c->q, id.str, conf_ms(10000)), 0);
	jobq_job_free(job);
	assert_int_equal(jobq_worker_close(w, conf_ms(5000)), 0);
	jobq_worker_free(w);
	pthread_mutex_destroy(&h.mu);
	conf_gate_destroy(&h.gate);
}

static const struct CMUnitTest cases[] = {
    CONF_CASE(fetch_fifo),
    CONF_CASE(fetch_lifo),
    CONF_CASE(fetch_priority_order),
    CONF_CASE(fetch_priority_max),
    CONF_CASE(fetch_delayed_exactly_at_due),
    CONF_CASE(fetch_delayed_keeps_priority),
    CONF_CASE(fetch_sets_active_fields),
    CONF_CASE(fetch_tokens_unique),
    CONF_CASE(fetch_complete_stores_result),
    CONF_CASE(fetch_extend_lock_keeps_job),
    CONF_CASE(fetch_wrong_token_changes_nothing),
    CONF_CASE(fetch_expired_lock_changes_nothing),
    CONF_CASE(fetch_stale_token_after_refetch),
    CONF_CASE(fetch_list_in_run_order),
    CONF_CASE(fetch_wallclock_delayed_runs_after_due),
    CONF_CASE(fetch_wallclock_stale_token),
};
CONF_TABLE(conf_fetch_cases, cases);
