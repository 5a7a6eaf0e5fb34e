/* BullMQ job semantics beyond the basics (issue 16): the worker's name written on the jobs it
 * processes (pb), deduplication keepLastIfActive. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

static int
complete_ok(jobq_job *job, void *payload) {
	(void)job;
	(void)payload;
	return 0;
}

/* Runs a worker (named `name`, NULL: the default) until job `id` finished; returns the job. */
static jobq_job *
run_until_finished(conf *c, const char *id, const char *name, const jobq_worker_options *wo,
                   jobq_process_fn fn) {
	jobq_worker_options dflt = conf_wopts();
	jobq_worker *w = NULL;
	jobq_job *job = NULL;
	assert_int_equal(jobq_worker_new(&w, c->q, fn, NULL, wo ? wo : &dflt), 0);
	if (name != NULL)
		assert_int_equal(jobq_worker_set_name(w, name), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	int rc = jobq_queue_wait_job(&job, c->q, id, conf_ms(10000));
	assert_true(rc == 0 || rc == JOBQ_ESTATE);
	assert_int_equal(jobq_worker_close(w, conf_ms(5000)), 0);
	jobq_worker_free(w);
	assert_non_null(job);
	return job;
}

/* A named worker writes its name on the job it processes (BullMQ `pb`); get returns it. */
static void
sem_worker_name_is_processed_by(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	conf_add(c, &id, "n", NULL, NULL);
	jobq_job *job = run_until_finished(c, id.str, "conf-w1", NULL, complete_ok);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_COMPLETED);
	assert_string_equal(jobq_job_processed_by(job), "conf-w1");
	jobq_job_free(job);
	job = conf_get(c, id.str);
	assert_string_equal(jobq_job_processed_by(job), "conf-w1");
	jobq_job_free(job);
}

/* Without a name a worker is "<host>:<pid>", and that is what the job gets. */
static void
sem_worker_default_name(void **state) {
	conf *c = conf_begin(state);
	jobq_worker *w = NULL;
	jobq_job_id id;
	char want[64];
	assert_int_equal(jobq_worker_new(&w, c->q, complete_ok, NULL, NULL), 0);
	snprintf(want, sizeof(want), ":%ld", (long)getpid());
	const char *name = jobq_worker_name(w);
	assert_true(strlen(name) > strlen(want));
	assert_string_equal(name + strlen(name) - strlen(want), want);
	jobq_worker_free(w);

	conf_add(c, &id, "n", NULL, NULL);
	jobq_job *job = run_until_finished(c, id.str, NULL, NULL, complete_ok);
	assert_non_null(jobq_job_processed_by(job));
	assert_string_equal(
	    jobq_job_processed_by(job) + strlen(jobq_job_processed_by(job)) - strlen(want), want);
	jobq_job_free(job);
}

/* A manual fetch names nobody; the job keeps the name of the worker that ran it last. */
static void
sem_manual_fetch_keeps_processed_by(void **state) {
	conf *c = conf_begin(state);
	jobq_job_id id;
	jobq_job *job;
	conf_add(c, &id, "n", NULL, NULL);
	job = conf_fetch(c, id.str, CONF_LOCK_MS);
	assert_null(jobq_job_processed_by(job));
	jobq_job_free(job);
	job = conf_get(c, id.str);
	assert_null(jobq_job_processed_by(job));
	jobq_job_free(job);
}

/* Names Redis would refuse as a client name are refused with the reason; renaming a running
 * worker is refused. */
static void
sem_worker_name_refused(void **state) {
	conf *c = conf_begin(state);
	jobq_worker *w = NULL;
	char longname[JOBQ_WORKER_NAME_MAX + 2];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(jobq_worker_new(&w, c->q, complete_ok, NULL, NULL), 0);
	conf_assert_error(jobq_worker_set_name(w, ""), JOBQ_EINVAL);
	conf_assert_error(jobq_worker_set_name(w, "a b"), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "character 2"));
	conf_assert_error(jobq_worker_set_name(w, "a\nb"), JOBQ_EINVAL);
	conf_assert_error(jobq_worker_set_name(w, longname), JOBQ_EINVAL);
	conf_assert_error(jobq_worker_set_name(w, NULL), JOBQ_EINVAL);
	assert_int_equal(jobq_worker_set_name(w, "ok-name:1"), 0);
	assert_string_equal(jobq_worker_name(w), "ok-name:1");
	assert_int_equal(jobq_worker_start(w), 0);
	conf_assert_error(jobq_worker_set_name(w, "later"), JOBQ_ESTATE);
	assert_string_equal(jobq_worker_name(w), "ok-name:1");
	assert_int_equal(jobq_worker_close(w, conf_ms(5000)), 0);
	jobq_worker_free(w);
}

/* keepLastIfActive: adds deduplicated while the owner is active are kept, the latest wins and
 * becomes a job when the owner completes (Redis); a store without it refuses the option and
 * changes nothing. */
static void
sem_dedup_keep_last(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id owner, id;
	o.dedup_id = "k";
	o.dedup_keep_last = 1;
	if (!conf_has(c, JOBQ_CAP_DEDUP_KEEP_LAST)) {
		conf_assert_error(jobq_queue_add(&id, c->q, "n", "{}", 2, &o), JOBQ_ENOTSUP);
		conf_assert_counts(c, 0, 0, 0, 0, 0, 0);
		return;
	}
	assert_int_equal(jobq_queue_add(&owner, c->q, "n", "{\"v\":0}", 7, &o), JOBQ_ADD_CREATED);
	/* while the owner waits: only deduplicated, nothing kept */
	assert_int_equal(jobq_queue_add(&id, c->q, "n", "{\"v\":9}", 7, &o), JOBQ_ADD_DEDUPLICATED);
	assert_string_equal(id.str, owner.str);
	jobq_job *job = conf_fetch(c, owner.str, CONF_LOCK_MS);
	assert_int_equal(jobq_queue_add(&id, c->q, "n", "{\"v\":1}", 7, &o), JOBQ_ADD_DEDUPLICATED);
	assert_int_equal(jobq_queue_add(&id, c->q, "n", "{\"v\":2}", 7, &o), JOBQ_ADD_DEDUPLICATED);
	assert_string_equal(id.str, owner.str);
	conf_assert_counts(c, 0, 1, 0, 0, 0, 0);
	assert_int_equal(jobq_queue_complete(c->q, owner.str, jobq_job_token(job), "1"), 0);
	jobq_job_free(job);
	conf_assert_counts(c, 1, 0, 0, 0, 1, 0);
	job = conf_fetch(c, NULL, CONF_LOCK_MS);
	size_t len = 0;
	const char *data = jobq_job_data(job, &len);
	assert_string_equal(data, "{\"v\":2}");
	assert_string_equal(jobq_job_options_of(job)->dedup_id, "k");
	assert_true(jobq_job_options_of(job)->dedup_keep_last);
	/* the new job owns the id now */
	assert_int_equal(jobq_queue_add(&id, c->q, "n", "{\"v\":3}", 7, &o), JOBQ_ADD_DEDUPLICATED);
	assert_string_equal(id.str, jobq_job_id_of(job));
	jobq_job_free(job);
}

/* keepLastIfActive's start: owner {"v":0} added and fetched (locked for `lock_ms`), then
 * {"v":1} added while it runs (deduplicated, stashed). Returns the owner's job. */
static jobq_job *
keep_last_owner_stashed(conf *c, const jobq_job_options *o, jobq_job_id *owner, int64_t lock_ms) {
	jobq_job_id id;
	assert_int_equal(jobq_queue_add(owner, c->q, "n", "{\"v\":0}", 7, o), JOBQ_ADD_CREATED);
	jobq_job *job = conf_fetch(c, owner->str, lock_ms);
	assert_int_equal(jobq_queue_add(&id, c->q, "n", "{\"v\":1}", 7, o), JOBQ_ADD_DEDUPLICATED);
	assert_string_equal(id.str, owner->str);
	return job;
}

/* keepLastIfActive, the other outcome and the later owners: an owner failed for good hands
 * over as a completed one does; the job made from the stash owns the id in turn (an add while
 * it runs is stashed again); the last owner, finished with nothing stashed, releases the id. */
static void
sem_dedup_keep_last_failed_and_later_owners(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id owner, id;
	o.dedup_id = "k";
	o.dedup_keep_last = 1;
	if (!conf_has(c, JOBQ_CAP_DEDUP_KEEP_LAST))
		skip();
	jobq_job *job = keep_last_owner_stashed(c, &o, &owner, CONF_LOCK_MS);
	assert_int_equal(jobq_job_fail(job, "boom", JOBQ_FAIL_UNRECOVERABLE), JOBQ_STATE_FAILED);
	jobq_job_free(job);
	conf_assert_counts(c, 1, 0, 0, 0, 0, 1);
	/* the second owner: made from the stash, fetched, an add while it runs is stashed */
	job = conf_fetch(c, NULL, CONF_LOCK_MS);
	size_t len = 0;
	assert_string_equal(jobq_job_data(job, &len), "{\"v\":1}");
	char second[JOBQ_ID_MAX + 1];
	snprintf(second, sizeof(second), "%s", jobq_job_id_of(job));
	assert_string_not_equal(second, owner.str);
	assert_int_equal(jobq_queue_add(&id, c->q, "n", "{\"v\":2}", 7, &o), JOBQ_ADD_DEDUPLICATED);
	assert_string_equal(id.str, second);
	assert_int_equal(jobq_job_complete(job, "1"), 0);
	jobq_job_free(job);
	conf_assert_counts(c, 1, 0, 0, 0, 1, 1);
	/* the third owner, with nothing stashed while it runs: finished, it releases the id */
	job = conf_fetch(c, NULL, CONF_LOCK_MS);
	assert_string_equal(jobq_job_data(job, &len), "{\"v\":2}");
	assert_int_equal(jobq_job_complete(job, "1"), 0);
	jobq_job_free(job);
	conf_assert_counts(c, 0, 0, 0, 0, 2, 1);
	assert_int_equal(jobq_queue_add(&id, c->q, "n", "{\"v\":3}", 7, &o), JOBQ_ADD_CREATED);
	conf_assert_counts(c, 1, 0, 0, 0, 2, 1);
}

/* keepLastIfActive: the stash goes with the key. The owner removed (back to waiting after a
 * stall) takes its key and stash with it, as does obliterate: the next add owns the id, and
 * finishing it leaves nothing behind. */
static void
sem_dedup_keep_last_stash_goes_with_key(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options o = conf_opts();
	jobq_job_id owner, id;
	o.dedup_id = "k";
	o.dedup_keep_last = 1;
	if (!conf_has(c, JOBQ_CAP_DEDUP_KEEP_LAST))
		skip();
	for (int obliterate = 0; obliterate < 2; obliterate++) {
		jobq_job *job = keep_last_owner_stashed(c, &o, &owner, conf_expiring_lock_ms(c));
		if (obliterate) {
			assert_int_equal(jobq_queue_obliterate(c->q, 1), 0);
		} else {
			conf_expire_lock(c);
			assert_int_equal(conf_check_until_recovered(c, 1), 1);
			assert_int_equal(jobq_queue_remove(c->q, owner.str), 0);
		}
		jobq_job_free(job);
		conf_assert_counts(c, 0, 0, 0, 0, 0, 0);
		assert_int_equal(jobq_queue_add(&id, c->q, "n", "{\"v\":2}", 7, &o),
		                 JOBQ_ADD_CREATED);
		job = conf_fetch(c, id.str, CONF_LOCK_MS);
		size_t len = 0;
		assert_string_equal(jobq_job_data(job, &len), "{\"v\":2}");
		assert_int_equal(jobq_job_complete(job, "1"), 0);
		jobq_job_free(job);
		conf_assert_counts(c, 0, 0, 0, 0, 1, 0);
		assert_int_equal(jobq_queue_obliterate(c->q, 1), 0);
	}
}

static const struct CMUnitTest cases[] = {
    CONF_CASE(sem_worker_name_is_processed_by),
    CONF_CASE(sem_worker_default_name),
    CONF_CASE(sem_manual_fetch_keeps_processed_by),
    CONF_CASE(sem_worker_name_refused),
    CONF_CASE(sem_dedup_keep_last),
    CONF_CASE(sem_dedup_keep_last_failed_and_later_owners),
    CONF_CASE(sem_dedup_keep_last_stash_goes_with_key),
};
CONF_TABLE(conf_semantics_cases, cases);
