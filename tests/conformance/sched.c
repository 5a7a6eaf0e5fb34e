/* Job schedulers (jobq/scheduler.h, BullMQ 6 semantics) driven by the manual clock: one pending
 * iteration at a time, the next created when the current one is fetched, updates, removal,
 * what drain / clean / remove keep, and bad input. CONF_T0 is 2023-11-14 22:13:20 UTC. */
#include <stdio.h>
#include <string.h>

#include "conf.h"

/* The case's state; skips the case on a backend without schedulers. */
static conf *
sched_begin(void **state) {
	conf *c = conf_begin(state);
	jobq_scheduler_list *list = NULL;
	int rc = jobq_queue_list_schedulers(&list, c->q);

	jobq_scheduler_list_free(list);
	if (rc == JOBQ_ENOTSUP) {
		skip();
	}
	assert_int_equal(rc, 0);
	CONF_NEED_DUE_CLOCK(c);
	return c;
}

static jobq_scheduler_spec
every_spec(int64_t every_ms) {
	jobq_scheduler_spec s;

	jobq_scheduler_spec_init(&s, JOBQ_SCHEDULER_SPEC_VERSION);
	s.every_ms = every_ms;
	return s;
}

/* The id of iteration `millis` of scheduler `sid` into `buf`. */
static const char *
iter_id(char *buf, size_t size, const char *sid, int64_t millis) {
	snprintf(buf, size, "repeat:%s:%lld", sid, (long long)millis);
	return buf;
}

/* Upserts and asserts the iteration created is `millis`. */
static void
upsert(conf *c, const char *sid, const jobq_scheduler_spec *s, int64_t millis) {
	jobq_job_id it;
	char want[64];

	assert_int_equal(jobq_queue_upsert_scheduler(&it, c->q, sid, s), 0);
	assert_string_equal(it.str, iter_id(want, sizeof(want), sid, millis));
}

/* Asserts scheduler `sid`'s next time and iteration count. */
static void
assert_sched(conf *c, const char *sid, int64_t next, int64_t iterations) {
	jobq_scheduler *s = NULL;

	assert_int_equal(jobq_queue_get_scheduler(&s, c->q, sid), 0);
	assert_string_equal(s->id, sid);
	assert_int_equal(s->next_ms, next);
	assert_int_equal(s->iterations, iterations);
	jobq_scheduler_free(s);
}

/* Every 1000 ms: the first iteration now; each fetch creates the next, delayed to its time;
 * one pending at a time; the template's name, data and options on every iteration. */
static void
sched_every_iterates(void **state) {
	conf *c = sched_begin(state);
	jobq_scheduler_spec s = every_spec(1000);
	jobq_job_options o = conf_opts();
	char id[64];
	size_t len = 0;

	o.attempts = 3;
	s.name = "tick";
	s.data = "{\"n\":1}";
	s.opts = &o;
	upsert(c, "s", &s, CONF_T0);
	conf_assert_counts(c, 1, 0, 0, 0, 0, 0);
	for (int64_t i = 0; i < 5; i++) {
		jobq_job *job =
		    conf_fetch(c, iter_id(id, sizeof(id), "s", CONF_T0 + i * 1000), CONF_LOCK_MS);
		assert_string_equal(jobq_job_name(job), "tick");
		assert_memory_equal(jobq_job_data(job, &len), "{\"n\":1}", 7);
		assert_int_equal(jobq_job_options_of(job)->attempts, 3);
		conf_assert_counts(c, 0, 1, 1, 0, (uint64_t)i, 0);
		assert_int_equal(
		    conf_state(c, iter_id(id, sizeof(id), "s", CONF_T0 + (i + 1) * 1000)),
		    JOBQ_STATE_DELAYED);
		assert_sched(c, "s", CONF_T0 + (i + 1) * 1000, i + 2);
		assert_int_equal(jobq_job_complete(job, NULL), 0);
		jobq_job_free(job);
		conf_fetch_none(c);
		conf_advance(c, 1000);
	}
}

/* A stopped fleet piles nothing up: one pending iteration however long nobody fetches; the
 * next after a late fetch is the first slot after now that keeps the phase. */
static void
sched_every_no_pile_up(void **state) {
	conf *c = sched_begin(state);
	jobq_scheduler_spec s = every_spec(1000);
	char id[64];

	s.offset_ms = 250;
	upsert(c, "s", &s, CONF_T0 + 250);
	conf_assert_counts(c, 0, 0, 1, 0, 0, 0);
	conf_advance(c, 10500); /* T0 + 10500: ten slots missed */
	jobq_job *job = conf_fetch(c, iter_id(id, sizeof(id), "s", CONF_T0 + 250), CONF_LOCK_MS);
	assert_int_equal(conf_state(c, iter_id(id, sizeof(id), "s", CONF_T0 + 11250)),
	                 JOBQ_STATE_DELAYED);
	conf_assert_counts(c, 0, 1, 1, 0, 0, 0);
	assert_int_equal(jobq_job_complete(job, NULL), 0);
	jobq_job_free(job);
}

/* A cron pattern in a time zone with a limit: "0 0 * * * *" in Asia/Kolkata (UTC+5:30) runs at
 * half past each UTC hour; the series stops after `limit` iterations. */
static void
sched_pattern_tz_limit(void **state) {
	conf *c = sched_begin(state);
	jobq_scheduler_spec s;
	char id[64];
	const int64_t first = CONF_T0 + 1000000; /* 22:30:00 UTC */

	jobq_scheduler_spec_init(&s, JOBQ_SCHEDULER_SPEC_VERSION);
	s.pattern = "0 0 * * * *";
	s.tz = "Asia/Kolkata";
	s.limit = 2;
	upsert(c, "p", &s, first);
	conf_assert_counts(c, 0, 0, 1, 0, 0, 0);
	conf_fetch_none(c);
	conf_advance(c, 1000000);
	conf_fetch_complete(c, iter_id(id, sizeof(id), "p", first), NULL);
	assert_int_equal(conf_state(c, iter_id(id, sizeof(id), "p", first + 3600000)),
	                 JOBQ_STATE_DELAYED);
	conf_advance(c, 3600000);
	conf_fetch_complete(c, iter_id(id, sizeof(id), "p", first + 3600000), NULL);
	conf_assert_counts(c, 0, 0, 0, 0, 2, 0); /* the limit: no third iteration */
	conf_advance(c, 3600000);
	conf_fetch_none(c);
	assert_sched(c, "p", first + 3600000, 2);
}

/* An update while the iteration waits replaces it (same time for the same interval, the new
 * template); a new interval starts anew; the iteration count goes on. */
static void
sched_update_replaces(void **state) {
	conf *c = sched_begin(state);
	jobq_scheduler_spec s = every_spec(60000);
	char id[64];
	jobq_scheduler_list *list = NULL;

	s.start_ms = CONF_T0 + 5000;
	s.name = "a";
	upsert(c, "u", &s, CONF_T0 + 5000);
	s.name = "b";
	upsert(c, "u", &s, CONF_T0 + 5000);
	conf_assert_counts(c, 0, 0, 1, 0, 0, 0);
	jobq_job *job = conf_get(c, iter_id(id, sizeof(id), "u", CONF_T0 + 5000));
	assert_string_equal(jobq_job_name(job), "b");
	jobq_job_free(job);
	s.every_ms = 30000;
	s.start_ms = 0;
	upsert(c, "u", &s, CONF_T0);
	conf_assert_counts(c, 1, 0, 0, 0, 0, 0);
	conf_assert_absent(c, iter_id(id, sizeof(id), "u", CONF_T0 + 5000));
	assert_int_equal(jobq_queue_list_schedulers(&list, c->q), 0);
	assert_int_equal(list->count, 1);
	assert_string_equal(list->items[0].name, "b");
	assert_int_equal(list->items[0].every_ms, 30000);
	assert_int_equal(list->items[0].iterations, 1);
	jobq_scheduler_list_free(list);
}

/* Listing: by next run, earliest first, with the definition. */
static void
sched_list(void **state) {
	conf *c = sched_begin(state);
	jobq_scheduler_spec e = every_spec(1000), p;
	jobq_scheduler_list *list = NULL;

	jobq_scheduler_spec_init(&p, JOBQ_SCHEDULER_SPEC_VERSION);
	p.pattern = "*/10 * * * *";
	p.data = "[1,2]";
	e.start_ms = CONF_T0 + 1000;
	upsert(c, "late", &p, CONF_T0 + 400000); /* 22:20 UTC */
	upsert(c, "early", &e, CONF_T0 + 1000);
	assert_int_equal(jobq_queue_list_schedulers(&list, c->q), 0);
	assert_int_equal(list->count, 2);
	assert_string_equal(list->items[0].id, "early");
	assert_int_equal(list->items[0].every_ms, 1000);
	assert_int_equal(list->items[0].start_ms, CONF_T0 + 1000);
	assert_null(list->items[0].pattern);
	assert_string_equal(list->items[0].name, "early");
	assert_string_equal(list->items[1].id, "late");
	assert_string_equal(list->items[1].pattern, "*/10 * * * *");
	assert_string_equal(list->items[1].data, "[1,2]");
	assert_int_equal(list->items[1].limit, -1);
	assert_int_equal(list->items[1].next_ms, CONF_T0 + 400000);
	jobq_scheduler_list_free(list);
}

/* Removal takes a delayed iteration with it (event removed); one already due stays and ends the
 * series; an unknown id is not found. */
static void
sched_remove(void **state) {
	conf *c = sched_begin(state);
	jobq_scheduler_spec d = every_spec(1000), w = every_spec(1000);
	jobq_scheduler *got = NULL;
	conf_events ev;
	char id[64];

	d.start_ms = CONF_T0 + 5000;
	upsert(c, "d", &d, CONF_T0 + 5000);
	upsert(c, "w", &w, CONF_T0);
	assert_int_equal(jobq_queue_remove_scheduler(c->q, "d"), 0);
	assert_int_equal(jobq_queue_remove_scheduler(c->q, "w"), 0);
	conf_assert_error(jobq_queue_get_scheduler(&got, c->q, "d"), JOBQ_ENOTFOUND);
	conf_assert_error(jobq_queue_remove_scheduler(c->q, "d"), JOBQ_ENOTFOUND);
	conf_assert_absent(c, iter_id(id, sizeof(id), "d", CONF_T0 + 5000));
	conf_events_load(c, &ev);
	assert_true(conf_events_find(&ev, 0, "removed", id) >= 0);
	conf_events_free(&ev);
	conf_fetch_complete(c, iter_id(id, sizeof(id), "w", CONF_T0), NULL);
	conf_assert_counts(c, 0, 0, 0, 0, 1, 0);
}

/* Drain and clean keep the pending iteration; removing it is refused. */
static void
sched_drain_clean_keep(void **state) {
	conf *c = sched_begin(state);
	jobq_scheduler_spec w = every_spec(1000), d = every_spec(1000);
	jobq_strings *removed = NULL;
	char id[64];

	d.start_ms = CONF_T0 + 5000;
	upsert(c, "w", &w, CONF_T0);
	upsert(c, "d", &d, CONF_T0 + 5000);
	conf_add(c, NULL, "plain", NULL, NULL);
	assert_int_equal(jobq_queue_drain(c->q, 1), 0);
	conf_assert_counts(c, 1, 0, 1, 0, 0, 0);
	assert_true(jobq_queue_clean(&removed, c->q, JOBQ_STATE_WAITING, 0, 0) >= 0);
	jobq_strings_free(removed);
	assert_true(jobq_queue_clean(&removed, c->q, JOBQ_STATE_DELAYED, 0, 0) >= 0);
	jobq_strings_free(removed);
	conf_assert_counts(c, 1, 0, 1, 0, 0, 0);
	conf_assert_error(jobq_queue_remove(c->q, iter_id(id, sizeof(id), "w", CONF_T0)),
	                  JOBQ_ESTATE);
	conf_assert_error(jobq_queue_remove(c->q, iter_id(id, sizeof(id), "d", CONF_T0 + 5000)),
	                  JOBQ_ESTATE);
	conf_assert_counts(c, 1, 0, 1, 0, 0, 0);
}

/* Upserts `sid` with `s`, asserts JOBQ_EINVAL with a message that holds `says`. */
static void
refused(conf *c, const char *sid, const jobq_scheduler_spec *s, const char *says) {
	jobq_job_id it;

	conf_assert_error(jobq_queue_upsert_scheduler(&it, c->q, sid, s), JOBQ_EINVAL);
	if (strstr(jobq_error_message(), says) == NULL)
		fail_msg("upsert %s: message '%s' lacks '%s'", sid, jobq_error_message(), says);
}

/* Bad input: a clear error naming what is wrong, and nothing changes, neither a new scheduler
 * nor an existing one (its record, its pending iteration, the events). */
static void
sched_bad_input(void **state) {
	conf *c = sched_begin(state);
	jobq_scheduler_spec s = every_spec(1000);
	jobq_job_options o = conf_opts();
	conf_snapshot before, after;
	/* a malformed pattern names its field (seconds first with 6 fields) */
	static const char *const patterns[][2] = {
	    {"60 * * * *", "minute field"},       {"* 24 * * *", "hour field"},
	    {"* * 32 * *", "day of month field"}, {"* * * 13 *", "month field"},
	    {"* * * * 8", "day of week field"},   {"60 * * * * *", "second field"},
	    {"* x * * *", "hour field"},          {"* * * * * * *", "more than 6 fields"},
	};

	s.start_ms = CONF_T0 + 5000; /* an existing scheduler, its iteration delayed */
	upsert(c, "b", &s, CONF_T0 + 5000);
	conf_snapshot_take(c, &before);
	for (int i = 0; i < 2; i++) {
		const char *sid = i == 0 ? "b" : "new";
		for (size_t k = 0; k < sizeof(patterns) / sizeof(patterns[0]); k++) {
			s = every_spec(0);
			s.pattern = patterns[k][0];
			refused(c, sid, &s, patterns[k][1]);
		}
		s = every_spec(0);
		s.pattern = "0 * * * *";
		s.tz = "Mars/Olympus_Mons";
		refused(c, sid, &s, "time zone 'Mars/Olympus_Mons'");
		s = every_spec(1000);
		s.pattern = "* * * * *";
		refused(c, sid, &s, "both every and a pattern");
		s = every_spec(0);
		refused(c, sid, &s, "give every or a pattern");
		s = every_spec(1000);
		s.start_ms = CONF_T0 + 10000;
		s.end_ms = CONF_T0 + 5000;
		refused(c, sid, &s, "the end date is not after the start date");
		s.start_ms = 0;
		s.end_ms = CONF_T0 - 1;
		refused(c, sid, &s, "the end date is already past");
		s.end_ms = 0;
		s.limit = 0;
		refused(c, sid, &s, "a limit of 0");
		s.limit = -1;
		o.job_id = "fixed";
		s.opts = &o;
		refused(c, sid, &s, "may not set a job id");
		s.opts = NULL;
		s.data = "{nope";
		refused(c, sid, &s, "data");
	}
	s = every_spec(1000);
	refused(c, "a:b", &s, "':'");
	refused(c, "", &s, "empty");
	conf_snapshot_take(c, &after);
	conf_snapshot_assert_same(&before, &after);
	assert_sched(c, "b", CONF_T0 + 5000, 1);
}

/* immediately: a pattern scheduler's first iteration now, the next at the pattern's time; an
 * end date stops an every scheduler; the template's priority places the iterations. */
static void
sched_immediately_end_priority(void **state) {
	conf *c = sched_begin(state);
	jobq_scheduler_spec p, e = every_spec(1000);
	jobq_job_options o = conf_opts();
	char id[64];

	jobq_scheduler_spec_init(&p, JOBQ_SCHEDULER_SPEC_VERSION);
	p.pattern = "0 0 0 1 1 *"; /* Jan 1st, 00:00 UTC */
	p.tz = "UTC";
	p.immediately = 1;
	upsert(c, "i", &p, CONF_T0);
	conf_fetch_complete(c, iter_id(id, sizeof(id), "i", CONF_T0), NULL);
	assert_sched(c, "i", 1704067200000LL, 2); /* 2024-01-01 */
	o.priority = 7;
	e.opts = &o;
	e.end_ms = CONF_T0 + 1500;
	upsert(c, "e", &e, CONF_T0);
	assert_int_equal(conf_state(c, iter_id(id, sizeof(id), "e", CONF_T0)),
	                 JOBQ_STATE_PRIORITIZED);
	conf_fetch_complete(c, iter_id(id, sizeof(id), "e", CONF_T0), NULL);
	conf_advance(c, 1000);
	conf_fetch_complete(c, iter_id(id, sizeof(id), "e", CONF_T0 + 1000), NULL);
	conf_advance(c, 1000); /* past the end: the series stopped at T0 + 2000 */
	conf_fetch_complete(c, iter_id(id, sizeof(id), "e", CONF_T0 + 2000), NULL);
	conf_advance(c, 1000);
	conf_fetch_none(c);
	assert_sched(c, "e", CONF_T0 + 2000, 3);
}

/* The stall limit spares an iteration of a scheduler that exists, as BullMQ 6's stalled check
 * does: with a limit of 0 a stalled iteration goes back to waiting (its stall count grows) and
 * runs again, no new iteration beside the pending one; once the scheduler is removed the limit
 * applies again and the next fetch fails it. Any clock: the lock expires by the manual clock or
 * in real time. */
static void
sched_stall_exempt(void **state) {
	conf *c = conf_begin(state);
	jobq_scheduler_list *list = NULL;
	int rc = jobq_queue_list_schedulers(&list, c->q);
	jobq_scheduler_spec s = every_spec(3600000);
	jobq_job_id it;
	jobq_job *job;

	jobq_scheduler_list_free(list);
	if (rc == JOBQ_ENOTSUP) {
		skip();
	}
	assert_int_equal(rc, 0);
	assert_int_equal(jobq_queue_upsert_scheduler(&it, c->q, "s", &s), 0);
	for (uint32_t stalls = 1; stalls <= 2; stalls++) {
		jobq_job_free(conf_fetch(c, it.str, conf_expiring_lock_ms(c)));
		conf_expire_lock(c);
		assert_int_equal(conf_check_until_recovered(c, 0), 1);
		job = conf_get(c, it.str);
		assert_int_equal(jobq_job_state(job), JOBQ_STATE_WAITING);
		assert_int_equal(jobq_job_stalled_count(job), stalls);
		assert_null(jobq_job_failed_reason(job));
		jobq_job_free(job);
		conf_assert_counts(c, 1, 0, 1, 0, 0, 0); /* it, and the next iteration */
	}
	assert_int_equal(jobq_queue_remove_scheduler(c->q, "s"), 0);
	jobq_job_free(conf_fetch(c, it.str, conf_expiring_lock_ms(c)));
	conf_expire_lock(c);
	assert_int_equal(conf_check_until_recovered(c, 0), 1);
	conf_fetch_none(c);
	job = conf_get(c, it.str);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_FAILED);
	assert_string_equal(jobq_job_failed_reason(job), "job stalled more than allowable limit");
	jobq_job_free(job);
}

static const struct CMUnitTest cases[] = {
    CONF_CASE(sched_every_iterates),
    CONF_CASE(sched_every_no_pile_up),
    CONF_CASE(sched_pattern_tz_limit),
    CONF_CASE(sched_update_replaces),
    CONF_CASE(sched_list),
    CONF_CASE(sched_remove),
    CONF_CASE(sched_drain_clean_keep),
    CONF_CASE(sched_bad_input),
    CONF_CASE(sched_immediately_end_priority),
    CONF_CASE(sched_stall_exempt),
};
CONF_TABLE(conf_sched_cases, cases);
