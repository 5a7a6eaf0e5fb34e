/* Adding jobs: ids, fields, routes (waiting, prioritized, delayed), custom ids, dedup, bulk. */
#include <stdlib.h>
#include <string.h>

#include "conf.h"

/* Generated ids are increasing integers per queue, starting at 1 on a fresh store. */
static void
add_generated_ids_increase(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id a, b, d;

	conf_add(c, &a, "n", "1", NULL);
	conf_add(c, &b, "n", "2", NULL);
	conf_add(c, &d, "n", "3", NULL);
	assert_string_equal(a.str, "1");
	assert_true(strtoll(b.str, NULL, 10) > strtoll(a.str, NULL, 10));
	assert_true(strtoll(d.str, NULL, 10) > strtoll(b.str, NULL, 10));
	conf_assert_counts(c, 3, 0, 0, 0, 0, 0);
}

/* A new job reads back with its name, data, options, state and timestamps. */
static void
add_job_reads_back(void **state) {
	conf *c = conf_begin(state);
	const char *data = "{\"to\":\"a@b.c\",\"n\":[1,2,3]}";
	jobq_job_options o = conf_opts();
	jobq_job_id id;
	jobq_job *job;
	const void *p;
	size_t len = 0;

	o.attempts = 3;
	o.backoff.type = JOBQ_BACKOFF_FIXED;
	o.backoff.delay_ms = 250;
	conf_add(c, &id, "email", data, &o);
	job = conf_get(c, id.str);
	assert_string_equal(jobq_job_name(job), "email");
	assert_string_equal(jobq_job_queue_name(job), CONF_QUEUE);
	p = jobq_job_data(job, &len);
	assert_int_equal(len, strlen(data));
	assert_memory_equal(p, data, len);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_WAITING);
	assert_int_equal(jobq_job_attempts_started(job), 0);
	assert_int_equal(jobq_job_attempts_made(job), 0);
	assert_int_equal(jobq_job_stalled_count(job), 0);
	assert_int_equal(jobq_job_processed_on(job), 0);
	assert_int_equal(jobq_job_finished_on(job), 0);
	assert_null(jobq_job_result(job));
	assert_null(jobq_job_failed_reason(job));
	assert_null(jobq_job_token(job));
	assert_int_equal(jobq_job_options_of(job)->attempts, 3);
	assert_int_equal(jobq_job_options_of(job)->backoff.type, JOBQ_BACKOFF_FIXED);
	assert_int_equal(jobq_job_options_of(job)->backoff.delay_ms, 250);
	if (c->clock != NULL) {
		assert_int_equal(jobq_job_timestamp(job), CONF_T0);
	} else {
		assert_true(jobq_job_timestamp(job) > 0);
	}
	jobq_job_free(job);
	assert_int_equal(conf_state(c, id.str), JOBQ_STATE_WAITING);
}

/* priority > 0 routes to prioritized; delay > 0 to delayed with the absolute due time. */
static void
add_routes_by_options(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options pr = conf_opts(), de = conf_opts();
	jobq_job_id p, d;
	jobq_job *job;

	pr.priority = 5;
	de.delay_ms = 1000;
	conf_add(c, &p, "p", NULL, &pr);
	conf_add(c, &d, "d", NULL, &de);
	assert_int_equal(conf_state(c, p.str), JOBQ_STATE_PRIORITIZED);
	assert_int_equal(conf_state(c, d.str), JOBQ_STATE_DELAYED);
	job = conf_get(c, p.str);
	assert_int_equal(jobq_job_priority(job), 5);
	jobq_job_free(job);
	job = conf_get(c, d.str);
	assert_int_equal(jobq_job_delay(job), 1000);
	jobq_job_free(job);
	conf_assert_counts(c, 0, 0, 1, 1, 0, 0);
}

/* A custom id that exists: JOBQ_ADD_DUPLICATE, the same id, data unchanged, `duplicated`. */
static void
add_duplicate_custom_id(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id a, b;
	jobq_job *job;
	conf_events ev;
	size_t len;
	int rc;

	o.job_id = "order-17";
	rc = jobq_queue_add(&a, c->q, "n", "{\"v\":1}", 7, &o);
	assert_int_equal(rc, JOBQ_ADD_CREATED);
	assert_string_equal(a.str, "order-17");
	rc = jobq_queue_add(&b, c->q, "other", "{\"v\":2}", 7, &o);
	assert_int_equal(rc, JOBQ_ADD_DUPLICATE);
	assert_string_equal(b.str, "order-17");
	job = conf_get(c, "order-17");
	assert_memory_equal(jobq_job_data(job, &len), "{\"v\":1}", 7);
	assert_string_equal(jobq_job_name(job), "n");
	jobq_job_free(job);
	conf_assert_counts(c, 1, 0, 0, 0, 0, 0);
	conf_events_load(c, &ev);
	assert_true(conf_events_find(&ev, 0, "duplicated", "order-17") >= 0);
	assert_int_equal(conf_events_find(&ev, (size_t)conf_events_find(&ev, 0, "added", NULL) + 1,
	                                  "added", NULL),
	                 -1);
	conf_events_free(&ev);
}

/* Dedup without TTL: the owner is returned while it lives, released when it completes. */
static void
add_dedup_released_on_complete(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id a, b, d;
	conf_events ev;
	long at;
	int rc;

	o.dedup_id = "user-9";
	conf_add(c, &a, "n", NULL, &o);
	rc = jobq_queue_add(&b, c->q, "n", "{}", 2, &o);
	assert_int_equal(rc, JOBQ_ADD_DEDUPLICATED);
	assert_string_equal(b.str, a.str);
	conf_assert_counts(c, 1, 0, 0, 0, 0, 0);
	conf_events_load(c, &ev);
	at = conf_events_find(&ev, 0, "deduplicated", a.str);
	assert_true(at >= 0);
	assert_string_equal(conf_event_field(&ev.items[at], "deduplicationId"), "user-9");
	conf_events_free(&ev);

	/* Still owned while active. */
	{
		jobq_job *job = conf_fetch(c, a.str, CONF_LOCK_MS);

		rc = jobq_queue_add(&b, c->q, "n", "{}", 2, &o);
		assert_int_equal(rc, JOBQ_ADD_DEDUPLICATED);
		assert_string_equal(b.str, a.str);
		assert_int_equal(jobq_queue_complete(c->q, a.str, jobq_job_token(job), NULL), 0);
		jobq_job_free(job);
	}
	conf_add(c, &d, "n", NULL, &o);
	assert_string_not_equal(d.str, a.str);
	conf_assert_counts(c, 1, 0, 0, 0, 1, 0);
}

/* Dedup with TTL: the owner is returned while the TTL runs, a new job is created after it. */
static void
add_dedup_ttl_expires(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id a, b;
	int rc;

	CONF_NEED_LOCK_CLOCK(c); /* the TTL expires like a lock (add_dedup_ttl_wallclock: real) */
	o.dedup_id = "throttle";
	o.dedup_ttl_ms = 1000;
	conf_add(c, &a, "n", NULL, &o);
	conf_advance(c, 999);
	rc = jobq_queue_add(&b, c->q, "n", "{}", 2, &o);
	assert_int_equal(rc, JOBQ_ADD_DEDUPLICATED);
	assert_string_equal(b.str, a.str);
	conf_advance(c, 2);
	rc = jobq_queue_add(&b, c->q, "n", "{}", 2, &o);
	assert_int_equal(rc, JOBQ_ADD_CREATED);
	assert_string_not_equal(b.str, a.str);
	conf_assert_counts(c, 2, 0, 0, 0, 0, 0);
}

/* Bulk add: every job added in order, outcomes per job; duplicates reported per job. */
static void
add_bulk_all(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options dup = conf_opts();
	jobq_job_spec specs[3] = {
	    {"a", "{\"i\":0}", 7, NULL}, {"b", "{\"i\":1}", 7, &dup}, {"c", "{\"i\":2}", 7, NULL}};
	jobq_job_id ids[3];
	int outcomes[3] = {-1, -1, -1};
	int rc;

	dup.job_id = "fixed";
	rc = jobq_queue_add_bulk(ids, outcomes, c->q, specs, 3);
	assert_true(rc >= 0);
	assert_int_equal(outcomes[0], JOBQ_ADD_CREATED);
	assert_int_equal(outcomes[1], JOBQ_ADD_CREATED);
	assert_int_equal(outcomes[2], JOBQ_ADD_CREATED);
	assert_string_equal(ids[1].str, "fixed");
	conf_assert_counts(c, 3, 0, 0, 0, 0, 0);
	conf_fetch_complete(c, ids[0].str, NULL);
	conf_fetch_complete(c, ids[1].str, NULL);
	conf_fetch_complete(c, ids[2].str, NULL);

	rc = jobq_queue_add_bulk(ids, outcomes, c->q, specs, 3);
	assert_true(rc >= 0);
	assert_int_equal(outcomes[1], JOBQ_ADD_DUPLICATE);
	assert_string_equal(ids[1].str, "fixed");
	conf_assert_counts(c, 2, 0, 0, 0, 3, 0);
}

/* Bulk add with one invalid job adds none of them. */
static void
add_bulk_all_or_none(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options bad = conf_opts();
	jobq_job_spec specs[3] = {{"a", "{}", 2, NULL}, {"b", "{}", 2, &bad}, {"c", "{}", 2, NULL}};
	jobq_job_id ids[3];
	jobq_counts before, after;
	int rc;

	bad.priority = JOBQ_PRIORITY_MAX + 1;
	before = conf_counts(c);
	rc = jobq_queue_add_bulk(ids, NULL, c->q, specs, 3);
	conf_assert_error(rc, JOBQ_EINVAL);
	after = conf_counts(c);
	conf_assert_same_counts(&before, &after);
}

/* Real time: the dedup owner is returned while the TTL runs; after it a new job is made. */
static void
add_dedup_ttl_wallclock(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id a, b;
	int64_t t0, deadline;
	int rc;

	conf_use_real_clock(c);
	o.dedup_id = "throttle";
	o.dedup_ttl_ms = conf_ms(200);
	t0 = conf_mono_ms();
	conf_add(c, &a, "n", NULL, &o);
	rc = jobq_queue_add(&b, c->q, "n", "{}", 2, &o);
	assert_int_equal(rc, JOBQ_ADD_DEDUPLICATED);
	assert_string_equal(b.str, a.str);
	/* Poll until the TTL has run out: each add returns the owner until then. */
	deadline = t0 + conf_ms(10000);
	while ((rc = jobq_queue_add(&b, c->q, "n", "{}", 2, &o)) == JOBQ_ADD_DEDUPLICATED &&
	       conf_mono_ms() < deadline) {
		assert_string_equal(b.str, a.str);
		conf_poll_pause();
	}
	assert_int_equal(rc, JOBQ_ADD_CREATED);
	assert_true(conf_mono_ms() - t0 >= o.dedup_ttl_ms - 5);
	assert_string_not_equal(b.str, a.str);
	conf_assert_counts(c, 2, 0, 0, 0, 0, 0);
}

static const struct CMUnitTest cases[] = {
    CONF_CASE(add_generated_ids_increase),     CONF_CASE(add_job_reads_back),
    CONF_CASE(add_routes_by_options),          CONF_CASE(add_duplicate_custom_id),
    CONF_CASE(add_dedup_released_on_complete), CONF_CASE(add_dedup_ttl_expires),
    CONF_CASE(add_dedup_ttl_wallclock),        CONF_CASE(add_bulk_all),
    CONF_CASE(add_bulk_all_or_none),
};
CONF_TABLE(conf_add_cases, cases);
