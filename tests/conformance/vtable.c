/*
 * The storage vtable itself, the same on every backend (include/jobq/sys/backend.h): the lock
 * token's compare-and-swap, refused calls that change nothing, and complete_fetch's order and
 * batches. Each case builds its own backend from the target and calls the slots directly, with
 * `now` values on the manual clock's start; lock-expiry steps need JOBQ_CAP_LOCK_CLOCK.
 *
 * Refused calls are asserted with the exact code backend.h states for them, and with the
 * store as it was before.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

#define T CONF_T0

typedef struct vt {
	const jobq_test_target *target;
	jobq_backend *b;
	void *ctx;
	jobq_backend_queue *q;
} vt;

static void
vt_open(conf *c, vt *v) {
	memset(v, 0, sizeof(*v));
	v->target = c->target;
	assert_int_equal(c->target->setup(&v->b, &v->ctx), 0);
	assert_int_equal(v->b->queue_open(&v->q, v->b, "vt"), 0);
}

static void
vt_close(vt *v) {
	v->b->queue_close(v->q);
	v->b->free(v->b);
	v->target->teardown(v->ctx);
}

/* Adds `n` jobs named `name` at T with `opts` (NULL: defaults); ids in `ids` (optional). */
static void
vt_add(vt *v, jobq_job_id *ids, size_t n, const char *name, const jobq_job_options *opts) {
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	jobq_add_request *reqs = calloc(n, sizeof(*reqs));
	jobq_job_id *got = calloc(n, sizeof(*got));
	int *outcomes = calloc(n, sizeof(*outcomes));
	size_t i;

	assert_true(reqs != NULL && got != NULL && outcomes != NULL);
	if (opts != NULL) {
		o = *opts;
	}
	o.timestamp = T;
	for (i = 0; i < n; i++) {
		reqs[i] = (jobq_add_request){name, "{}", 2, &o};
	}
	assert_int_equal(v->b->add(got, outcomes, v->q, reqs, n, T), 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(outcomes[i], JOBQ_ADD_CREATED);
		if (ids != NULL) {
			ids[i] = got[i];
		}
	}
	free(reqs);
	free(got);
	free(outcomes);
}

/* --- "nothing changed": the store's dump when the target has one, else what the vtable
 * reads back (counts, the job, the number of events) ------------------------------------- */

typedef struct vt_snap {
	char *dump;
	jobq_counts counts;
	jobq_job *job;
	size_t events;
} vt_snap;

static size_t
vt_event_names(vt *v, char names[][24], size_t max) {
	jobq_event_list *l = NULL;
	size_t i, n;

	assert_int_equal(v->b->events_read(&l, v->q, JOBQ_EVENTS_START, 10000, 0), 0);
	n = jobq_event_list_count(l);
	for (i = 0; names != NULL && i < n && i < max; i++) {
		snprintf(names[i], 24, "%s", jobq_event_list_at(l, i)->event);
	}
	jobq_event_list_free(l);
	return n;
}

static void
vt_snap_take(vt_snap *s, vt *v, const char *id) {
	memset(s, 0, sizeof(*s));
	if (v->target->dump != NULL) {
		s->dump = v->target->dump(v->ctx);
		assert_non_null(s->dump);
	}
	assert_int_equal(v->b->counts(&s->counts, v->q), 0);
	assert_int_equal(v->b->get(&s->job, v->q, id), 0);
	s->events = vt_event_names(v, NULL, 0);
}

static void
vt_assert_str_same(const char *a, const char *b) {
	if (a == NULL || b == NULL) {
		assert_ptr_equal(a, b);
	} else {
		assert_string_equal(a, b);
	}
}

/* Asserts that the store is as in `s` (then frees `s`). */
static void
vt_snap_same(vt_snap *s, vt *v) {
	vt_snap now;

	vt_snap_take(&now, v, s->job->id);
	if (s->dump != NULL) {
		assert_string_equal(now.dump, s->dump);
	}
	conf_assert_same_counts(&s->counts, &now.counts);
	assert_int_equal(now.job->state, s->job->state);
	assert_int_equal(now.job->attempts_started, s->job->attempts_started);
	assert_int_equal(now.job->attempts_made, s->job->attempts_made);
	assert_int_equal(now.job->processed_on, s->job->processed_on);
	assert_int_equal(now.job->finished_on, s->job->finished_on);
	vt_assert_str_same(now.job->result, s->job->result);
	vt_assert_str_same(now.job->progress, s->job->progress);
	vt_assert_str_same(now.job->failed_reason, s->job->failed_reason);
	assert_int_equal(now.events, s->events);
	free(now.dump);
	jobq_job_free(now.job);
	free(s->dump);
	jobq_job_free(s->job);
}

/* --- the lock token ------------------------------------------------------------------------ */

/* Every token-checked slot refuses a wrong token and changes nothing; the right one works
 * until the lock (extended) expires; a finished job's token is refused too. */
static void
vt_token_cas(void **state) {
	conf *c = conf_begin(state);
	jobq_failure fl = {.reason = "x", .retry_at_ms = -1, .keep = {JOBQ_KEEP_ALL, -1, -1}};
	jobq_keep all = {JOBQ_KEEP_ALL, -1, -1};
	static const char *const seq[] = {"added",    "waiting",   "active",
	                                  "progress", "completed", "drained"};
	char names[64][24];
	size_t n, i, k;
	jobq_job_id id;
	jobq_job *j = NULL;
	vt_snap s;
	vt v;

	vt_open(c, &v);
	vt_add(&v, &id, 1, "n", NULL);
	assert_int_equal(v.b->fetch(&j, NULL, v.q, "good", 1000, T), 0);
	assert_string_equal(j->id, id.str);
	assert_string_equal(j->token, "good");
	jobq_job_free(j);

	vt_snap_take(&s, &v, id.str);
	assert_int_equal(v.b->complete(v.q, id.str, "bad", "1", &all, T + 10), JOBQ_ELOCKLOST);
	assert_int_equal(v.b->extend_lock(v.q, id.str, "bad", 5000, T + 10), JOBQ_ELOCKLOST);
	assert_int_equal((v.b->fail)(v.q, id.str, "bad", &fl, T + 10), JOBQ_ELOCKLOST);
	assert_int_equal(v.b->release(v.q, id.str, "bad", T + 10), JOBQ_ELOCKLOST);
	assert_int_equal(v.b->progress(v.q, id.str, "bad", "50", T + 10), JOBQ_ELOCKLOST);
	assert_int_equal(v.b->remove(v.q, id.str, T + 10), JOBQ_ESTATE); /* active and locked */
	vt_snap_same(&s, &v);

	assert_int_equal(v.b->extend_lock(v.q, id.str, "good", 1000, T + 500), 0);
	assert_int_equal(v.b->progress(v.q, id.str, "good", "50", T + 1499), 0);
	if (conf_has(c, JOBQ_CAP_LOCK_CLOCK)) {
		/* extended to T + 1500: lost at T + 1500, changing nothing */
		vt_snap_take(&s, &v, id.str);
		assert_int_equal(v.b->complete(v.q, id.str, "good", "1", &all, T + 1500),
		                 JOBQ_ELOCKLOST);
		vt_snap_same(&s, &v);
		assert_int_equal(v.b->extend_lock(v.q, id.str, "good", 1000, T + 1499), 0);
	}
	assert_int_equal(v.b->complete(v.q, id.str, "good", "{\"ok\":1}", &all, T + 1600), 0);
	vt_snap_take(&s, &v, id.str);
	assert_int_equal(v.b->complete(v.q, id.str, "good", "1", &all, T + 1601), JOBQ_ESTATE);
	assert_int_equal((v.b->fail)(v.q, id.str, "good", &fl, T + 1601), JOBQ_ESTATE);
	assert_int_equal(v.b->extend_lock(v.q, id.str, "good", 1000, T + 1601), JOBQ_ESTATE);
	vt_snap_same(&s, &v);

	assert_int_equal(v.b->get(&j, v.q, id.str), 0);
	assert_int_equal(j->state, JOBQ_STATE_COMPLETED);
	assert_string_equal(j->result, "{\"ok\":1}");
	assert_string_equal(j->progress, "50");
	assert_int_equal(j->attempts_made, 1);
	assert_int_equal(j->finished_on, T + 1600);
	assert_null(j->token);
	jobq_job_free(j);
	/* the events of the successful steps, in order, and none of the refused ones */
	n = vt_event_names(&v, names, 64);
	assert_int_equal(n, sizeof(seq) / sizeof(seq[0]));
	for (i = 0, k = 0; i < n; i++) {
		assert_string_equal(names[i], seq[k++]);
	}
	{
		jobq_event_list *l = NULL;
		const jobq_event *e;

		assert_int_equal(v.b->events_read(&l, v.q, JOBQ_EVENTS_START, 100, 0), 0);
		e = jobq_event_list_at(l, 4);
		assert_string_equal(e->job_id, id.str);
		assert_string_equal(jobq_event_get(e, "returnvalue"), "{\"ok\":1}");
		assert_string_equal(jobq_event_get(e, "prev"), "active");
		jobq_event_list_free(l);
	}
	vt_close(&v);
}

/* --- refused calls ----------------------------------------------------------------------- */

/* Calls the state does not allow are refused and change nothing: finishing a job that is not
 * active, promoting one that is not delayed or does not exist, retrying one that has not
 * failed, obliterating a queue with an active job without force. */
static void
vt_refused_change_nothing(void **state) {
	conf *c = conf_begin(state);
	jobq_failure fl = {.reason = "x", .retry_at_ms = -1, .keep = {JOBQ_KEEP_ALL, -1, -1}};
	jobq_keep all = {JOBQ_KEEP_ALL, -1, -1};
	jobq_job_id ids[2];
	jobq_job *j = NULL;
	vt_snap s;
	vt v;

	vt_open(c, &v);
	vt_add(&v, ids, 2, "n", NULL);
	assert_int_equal(v.b->fetch(&j, NULL, v.q, "tok", CONF_LOCK_MS, T), 0);
	assert_string_equal(j->id, ids[0].str);
	jobq_job_free(j);

	/* ids[1] waits: no token of any kind finishes it */
	vt_snap_take(&s, &v, ids[1].str);
	assert_int_equal(v.b->complete(v.q, ids[1].str, "tok", "1", &all, T + 1), JOBQ_ESTATE);
	assert_int_equal((v.b->fail)(v.q, ids[1].str, "tok", &fl, T + 1), JOBQ_ESTATE);
	assert_int_equal(v.b->extend_lock(v.q, ids[1].str, "tok", 1000, T + 1), JOBQ_ESTATE);
	assert_int_equal(v.b->release(v.q, ids[1].str, "tok", T + 1), JOBQ_ESTATE);
	assert_int_equal(v.b->promote(v.q, ids[1].str, T + 1), JOBQ_ESTATE);
	assert_int_equal(v.b->retry_failed(v.q, ids[1].str, T + 1), JOBQ_ESTATE);
	assert_int_equal(v.b->promote(v.q, "no-such-job", T + 1), JOBQ_ENOTFOUND);
	assert_int_equal(v.b->complete(v.q, "no-such-job", "tok", "1", &all, T + 1),
	                 JOBQ_ENOTFOUND);
	vt_snap_same(&s, &v);

	/* ids[0] is active */
	vt_snap_take(&s, &v, ids[0].str);
	assert_int_equal(v.b->promote(v.q, ids[0].str, T + 1), JOBQ_ESTATE);
	assert_int_equal(v.b->retry_failed(v.q, ids[0].str, T + 1), JOBQ_ESTATE);
	assert_int_equal(v.b->obliterate(v.q, 0, T + 1), JOBQ_ESTATE);
	vt_snap_same(&s, &v);

	/* the token still works afterwards */
	assert_int_equal(v.b->complete(v.q, ids[0].str, "tok", "null", &all, T + 2), 0);
	vt_close(&v);
}

/* --- complete_fetch ------------------------------------------------------------------------ */

/* Completions as complete() (a stale token or an unknown id fails alone), then fetches as
 * fetch(), FIFO, the i-th job with the i-th token; max 0 only completes. */
static void
vt_complete_fetch_batches(void **state) {
	conf *c = conf_begin(state);
	jobq_keep all = {JOBQ_KEEP_ALL, -1, -1};
	const char *tokens[3] = {"t:1", "t:2", "t:3"};
	const char *tokens2[3] = {"u:1", "u:2", "u:3"};
	jobq_job *jobs[3] = {NULL, NULL, NULL}, *next[3] = {NULL, NULL, NULL}, *g = NULL;
	jobq_fetch_info info = {.next_due_ms = -1};
	jobq_job_id ids[4];
	jobq_counts n;
	int i;
	vt v;

	vt_open(c, &v);
	if (v.b->complete_fetch == NULL) {
		vt_close(&v);
		skip(); /* optional slot */
	}
	vt_add(&v, ids, 4, "n", NULL);
	assert_int_equal(
	    v.b->complete_fetch(jobs, &info, v.q, NULL, 0, tokens, 2, CONF_LOCK_MS, T + 200), 2);
	assert_int_equal(info.next_due_ms, 0);
	for (i = 0; i < 2; i++) {
		assert_string_equal(jobs[i]->id, ids[i].str);
		assert_string_equal(jobs[i]->token, tokens[i]);
		assert_int_equal(jobs[i]->state, JOBQ_STATE_ACTIVE);
		assert_int_equal(jobs[i]->attempts_started, 1);
		assert_int_equal(jobs[i]->processed_on, T + 200);
	}
	{
		jobq_completion done[3] = {{ids[0].str, "t:1", "{\"x\":1}", all, 99, NULL, 0},
		                           {ids[1].str, "t:stale", "null", all, 99, NULL, 0},
		                           {"no-such-job", "t:9", "null", all, 99, NULL, 0}};
		assert_int_equal(v.b->complete_fetch(next, NULL, v.q, done, 3, tokens2, 3,
		                                     CONF_LOCK_MS, T + 300),
		                 2);
		assert_int_equal(done[0].rc, 0);
		assert_int_equal(done[1].rc, JOBQ_ELOCKLOST);
		assert_int_equal(done[2].rc, JOBQ_ENOTFOUND);
		/* the stale completion changed nothing */
		assert_int_equal(v.b->get(&g, v.q, ids[1].str), 0);
		assert_int_equal(g->state, JOBQ_STATE_ACTIVE);
		assert_int_equal(g->attempts_made, 0);
		assert_null(g->result);
		jobq_job_free(g);
		assert_int_equal(v.b->counts(&n, v.q), 0);
		assert_int_equal(n.active, 3);
		assert_int_equal(n.completed, 1);
		assert_int_equal(n.waiting, 0);
		g = NULL;
	}
	assert_string_equal(next[0]->id, ids[2].str);
	assert_string_equal(next[1]->id, ids[3].str);
	assert_string_equal(next[0]->token, "u:1");
	assert_string_equal(next[1]->token, "u:2");
	assert_int_equal(v.b->get(&g, v.q, ids[0].str), 0);
	assert_int_equal(g->state, JOBQ_STATE_COMPLETED);
	assert_string_equal(g->result, "{\"x\":1}");
	assert_int_equal(g->attempts_made, 1);
	jobq_job_free(g);
	{
		jobq_completion last[3] = {{ids[1].str, "t:2", "null", all, 99, NULL, 0},
		                           {ids[2].str, "u:1", "null", all, 99, NULL, 0},
		                           {ids[3].str, "u:2", "null", all, 99, NULL, 0}};

		assert_int_equal(
		    v.b->complete_fetch(NULL, NULL, v.q, last, 3, NULL, 0, CONF_LOCK_MS, T + 400),
		    0);
		for (i = 0; i < 3; i++) {
			assert_int_equal(last[i].rc, 0);
		}
	}
	assert_int_equal(v.b->get(&g, v.q, ids[3].str), 0);
	assert_string_equal(g->result, "null");
	jobq_job_free(g);
	assert_int_equal(
	    v.b->complete_fetch(next + 2, NULL, v.q, NULL, 0, tokens2, 1, CONF_LOCK_MS, T + 500),
	    0);
	assert_int_equal(v.b->counts(&n, v.q), 0);
	assert_int_equal(n.completed, 4);
	assert_int_equal(n.active, 0);
	for (i = 0; i < 2; i++) {
		jobq_job_free(jobs[i]);
		jobq_job_free(next[i]);
	}
	vt_close(&v);
}

/* Batches of 64 take waiting jobs in order, a lifo job added between batches first, then
 * the prioritized ones by priority; each step's completions free the batch before. */
static void
vt_complete_fetch_order(void **state) {
	enum { WAITING = 150, PRIO = 10, MAX = 64 };
	conf *c = conf_begin(state);
	jobq_job_options po = JOBQ_JOB_OPTIONS_INIT, lifo = JOBQ_JOB_OPTIONS_INIT;
	jobq_job_id wids[WAITING], pids[PRIO], lid;
	char tokens[MAX][16], done_ids[MAX][JOBQ_ID_MAX + 1];
	const char *tp[MAX];
	static char order[WAITING + PRIO + 1][JOBQ_ID_MAX + 1];
	jobq_job *jobs[MAX];
	jobq_completion done[MAX];
	size_t ndone = 0, seen = 0, steps;
	int lifo_added = 0, i;
	jobq_counts n;
	vt v;

	vt_open(c, &v);
	if (v.b->complete_fetch == NULL) {
		vt_close(&v);
		skip();
	}
	vt_add(&v, wids, WAITING, "w", NULL);
	for (i = 0; i < PRIO; i++) { /* added last-first by priority */
		po.priority = (uint32_t)(PRIO - i);
		vt_add(&v, &pids[i], 1, "p", &po);
	}
	for (i = 0; i < MAX; i++) {
		snprintf(tokens[i], sizeof(tokens[i]), "t%d", i);
		tp[i] = tokens[i];
	}
	for (steps = 0; steps < 10; steps++) {
		int got = v.b->complete_fetch(jobs, NULL, v.q, done, ndone, tp, MAX, CONF_LOCK_MS,
		                              T + 10);
		size_t k;

		assert_true(got >= 0);
		for (k = 0; k < ndone; k++) {
			assert_int_equal(done[k].rc, 0);
		}
		ndone = 0;
		if (got == 0) {
			break;
		}
		for (i = 0; i < got; i++) {
			assert_true(seen < WAITING + PRIO + 1);
			snprintf(order[seen++], sizeof(order[0]), "%s", jobs[i]->id);
			assert_string_equal(jobs[i]->token, tokens[i]);
			assert_int_equal(jobs[i]->state, JOBQ_STATE_ACTIVE);
			snprintf(done_ids[ndone], sizeof(done_ids[0]), "%s", jobs[i]->id);
			done[ndone] = (jobq_completion){
			    done_ids[ndone], tokens[i], "null", {JOBQ_KEEP_NONE, 0, 0}, 0, NULL, 0};
			ndone++;
			jobq_job_free(jobs[i]);
		}
		if (!lifo_added) { /* goes to the front of what is still waiting */
			lifo.lifo = 1;
			vt_add(&v, &lid, 1, "l", &lifo);
			lifo_added = 1;
		}
	}
	assert_int_equal(seen, WAITING + PRIO + 1);
	for (i = 0; i < MAX; i++) { /* the first batch */
		assert_string_equal(order[i], wids[i].str);
	}
	assert_string_equal(order[MAX], lid.str); /* the lifo job, then the other waiting */
	for (i = MAX + 1; i < WAITING + 1; i++) {
		assert_string_equal(order[i], wids[i - 1].str);
	}
	for (i = 0; i < PRIO; i++) { /* priority 1 (the last added) first */
		assert_string_equal(order[WAITING + 1 + i], pids[PRIO - 1 - i].str);
	}
	assert_int_equal(v.b->counts(&n, v.q), 0);
	assert_int_equal(n.active + n.waiting + n.prioritized + n.completed, 0);
	vt_close(&v);
}

static const struct CMUnitTest cases[] = {
    CONF_CASE(vt_token_cas),
    CONF_CASE(vt_refused_change_nothing),
    CONF_CASE(vt_complete_fetch_batches),
    CONF_CASE(vt_complete_fetch_order),
};
CONF_TABLE(conf_vtable_cases, cases);
