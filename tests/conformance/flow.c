/* Flows (include/jobq/flow.h): a parent waits in waiting-children for its children, across
 * queues; the four failure policies; removal; a delayed parent; bad flows refused with nothing
 * changed. Skipped on a backend without flows. */
#include <stdio.h>
#include <string.h>

#include "conf.h"

#define CHILD_QUEUE "conf-c"
#define SLOW_QUEUE  "conf-s"

#define NODE(q, n, d, pol, kids, nk)                                                               \
	{ (q), (n), (d), sizeof(d) - 1, NULL, (pol), (kids), (nk) }

/* Adds `root` to the case's queue; skips the case when the backend has no flows. */
static void
flow_add(conf *c, jobq_job_id *ids, const jobq_flow_node *root) {
	int rc = jobq_flow_add(ids, c->q, root, NULL);
	if (rc == JOBQ_ENOTSUP)
		skip();
	if (rc < 0)
		print_error("flow add: %s (%s)\n", jobq_error_name(rc), jobq_error_message());
	assert_int_equal(rc, 0);
}

/* The child queue; skips the case first (nothing opened) when the backend has no flows. */
static jobq_queue *
child_queue(conf *c) {
	jobq_dependencies *d = NULL;
	if (jobq_queue_get_dependencies(&d, c->q, "none") == JOBQ_ENOTSUP)
		skip();
	jobq_dependencies_free(d);
	jobq_queue *cq = NULL;
	assert_int_equal(jobq_queue_open(&cq, c->store, CHILD_QUEUE), 0);
	return cq;
}

/* Fetches the next job of `q` (asserting its id) and completes it with `result`. */
static void
run_child(jobq_queue *q, const char *id, const char *result) {
	jobq_job *job = NULL;
	assert_int_equal(jobq_queue_fetch(&job, q, CONF_LOCK_MS), 0);
	assert_string_equal(jobq_job_id_of(job), id);
	assert_int_equal(jobq_job_complete(job, result), 0);
	jobq_job_free(job);
}

/* Fetches the next job of `q` (asserting its id) and fails it for good. */
static void
fail_child(jobq_queue *q, const char *id) {
	jobq_job *job = NULL;
	assert_int_equal(jobq_queue_fetch(&job, q, CONF_LOCK_MS), 0);
	assert_string_equal(jobq_job_id_of(job), id);
	assert_true(jobq_job_fail(job, "boom", JOBQ_FAIL_UNRECOVERABLE) >= 0);
	jobq_job_free(job);
}

static jobq_dependencies *
deps(conf *c, const char *id) {
	jobq_dependencies *d = NULL;
	assert_int_equal(jobq_queue_get_dependencies(&d, c->q, id), 0);
	return d;
}

/* A parent waits for its children (one in its queue, two in another), is counted in
 * waiting-children, cannot be fetched, then runs with their results (event waiting, prev
 * waiting-children). */
static void
flow_parent_waits_for_children(void **state) {
	conf *c = conf_begin(state);
	jobq_flow_node kids[] = {NODE(CHILD_QUEUE, "a", "{\"a\":1}", JOBQ_PARENT_WAIT, NULL, 0),
	                         NODE(NULL, "b", "{\"b\":1}", JOBQ_PARENT_WAIT, NULL, 0),
	                         NODE(CHILD_QUEUE, "c", "{}", JOBQ_PARENT_WAIT, NULL, 0)};
	jobq_flow_node root = NODE(NULL, "p", "{\"p\":1}", JOBQ_PARENT_WAIT, kids, 3);
	jobq_job_id ids[4];
	flow_add(c, ids, &root);
	jobq_queue *cq = child_queue(c);
	assert_int_equal(conf_state(c, ids[0].str), JOBQ_STATE_WAITING_CHILDREN);
	jobq_counts n = conf_counts(c);
	assert_int_equal(n.waiting_children, 1);
	assert_int_equal(n.waiting, 1);
	jobq_dependencies *d = deps(c, ids[0].str);
	assert_int_equal(d->npending, 3);
	jobq_dependencies_free(d);

	conf_fetch_complete(c, ids[2].str, "\"b\"");
	conf_fetch_none(c); /* the parent waits */
	run_child(cq, ids[1].str, "{\"r\":\"a\"}");
	assert_int_equal(conf_state(c, ids[0].str), JOBQ_STATE_WAITING_CHILDREN);
	run_child(cq, ids[3].str, "3");
	assert_int_equal(conf_state(c, ids[0].str), JOBQ_STATE_WAITING);
	assert_int_equal(conf_counts(c).waiting_children, 0);

	d = deps(c, ids[0].str);
	assert_int_equal(d->nprocessed, 3);
	assert_int_equal(d->npending + d->nignored + d->nfailed, 0);
	for (size_t i = 0; i < d->nprocessed; i++) {
		const jobq_dependency *e = &d->processed[i];
		assert_non_null(e->queue);
		if (strcmp(e->id, ids[1].str) == 0 && strcmp(e->queue, CHILD_QUEUE) == 0)
			assert_string_equal(e->value, "{\"r\":\"a\"}");
		else if (strcmp(e->queue, CONF_QUEUE) == 0)
			assert_string_equal(e->value, "\"b\"");
		else
			assert_string_equal(e->value, "3");
	}
	jobq_dependencies_free(d);
	conf_fetch_complete(c, ids[0].str, NULL);

	conf_events ev;
	conf_events_load(c, &ev);
	const char *seq[] = {"added", "waiting-children", "waiting", "active", "completed", NULL};
	long at[5];
	conf_events_expect_seq(&ev, ids[0].str, seq, at);
	assert_string_equal(conf_event_field(&ev.items[at[2]], "prev"), "waiting-children");
	conf_events_free(&ev);
	jobq_queue_close(cq);
}

/* A parent with pending children cannot complete; a parent of a parent waits for the whole
 * tree. */
static void
flow_tree_runs_bottom_up(void **state) {
	conf *c = conf_begin(state);
	jobq_flow_node leaf[] = {NODE(CHILD_QUEUE, "leaf", "{}", JOBQ_PARENT_WAIT, NULL, 0)};
	jobq_flow_node mid[] = {NODE(NULL, "mid", "{}", JOBQ_PARENT_WAIT, leaf, 1)};
	jobq_flow_node root = NODE(NULL, "top", "{}", JOBQ_PARENT_WAIT, mid, 1);
	jobq_job_id ids[3];
	flow_add(c, ids, &root);
	jobq_queue *cq = child_queue(c);
	assert_int_equal(conf_counts(c).waiting_children, 2);
	conf_fetch_none(c);
	run_child(cq, ids[2].str, "\"leaf\"");
	conf_fetch_complete(c, ids[1].str, "\"mid\"");
	jobq_dependencies *d = deps(c, ids[0].str);
	assert_int_equal(d->nprocessed, 1);
	assert_string_equal(d->processed[0].value, "\"mid\"");
	jobq_dependencies_free(d);
	conf_fetch_complete(c, ids[0].str, NULL);
	jobq_queue_close(cq);
}

/* The four policies of a child that fails for good, and none. */
static void
flow_failure_policies(void **state) {
	conf *c = conf_begin(state);
	jobq_queue *cq = child_queue(c);
	static const jobq_parent_policy pol[] = {JOBQ_PARENT_FAIL, JOBQ_PARENT_IGNORE,
	                                         JOBQ_PARENT_REMOVE, JOBQ_PARENT_CONTINUE,
	                                         JOBQ_PARENT_WAIT};
	jobq_job_id ids[5][3];
	for (size_t k = 0; k < 5; k++) {
		/* the failing child, and one more that stays pending */
		jobq_flow_node kids[] = {NODE(CHILD_QUEUE, "bad", "{}", pol[k], NULL, 0),
		                         NODE(SLOW_QUEUE, "slow", "{}", JOBQ_PARENT_WAIT, NULL, 0)};
		jobq_flow_node root =
		    NODE(NULL, "p", "{}", JOBQ_PARENT_WAIT, kids, k == 1 || k == 2 ? 1 : 2);
		flow_add(c, ids[k], &root);
	}
	for (size_t k = 0; k < 5; k++)
		fail_child(cq, ids[k][1].str);
	/* FAIL: the parent goes to waiting and its fetch fails it, naming the child */
	assert_int_equal(conf_state(c, ids[0][0].str), JOBQ_STATE_WAITING);
	jobq_dependencies *d = deps(c, ids[0][0].str);
	assert_int_equal(d->nfailed, 1);
	assert_int_equal(d->npending, 1);
	jobq_dependencies_free(d);
	/* IGNORE: released, the failure recorded */
	assert_int_equal(conf_state(c, ids[1][0].str), JOBQ_STATE_WAITING);
	d = deps(c, ids[1][0].str);
	assert_int_equal(d->nignored, 1);
	assert_string_equal(d->ignored[0].value, "boom");
	assert_int_equal(d->npending, 0);
	jobq_dependencies_free(d);
	/* REMOVE: released, nothing recorded */
	assert_int_equal(conf_state(c, ids[2][0].str), JOBQ_STATE_WAITING);
	d = deps(c, ids[2][0].str);
	assert_int_equal(d->nignored + d->nfailed + d->npending + d->nprocessed, 0);
	jobq_dependencies_free(d);
	/* CONTINUE: released though a child is pending, the failure recorded */
	assert_int_equal(conf_state(c, ids[3][0].str), JOBQ_STATE_WAITING);
	d = deps(c, ids[3][0].str);
	assert_int_equal(d->nignored, 1);
	assert_int_equal(d->npending, 1);
	jobq_dependencies_free(d);
	/* none: the parent keeps waiting */
	assert_int_equal(conf_state(c, ids[4][0].str), JOBQ_STATE_WAITING_CHILDREN);

	/* the FAIL parent is failed by a fetch, without running */
	for (int i = 0; i < 5; i++) {
		jobq_job *job = NULL;
		int rc = jobq_queue_fetch(&job, c->q, CONF_LOCK_MS);
		if (rc == JOBQ_ENOJOB)
			break;
		assert_int_equal(rc, 0);
		assert_string_not_equal(jobq_job_id_of(job), ids[0][0].str);
		jobq_job_free(job);
	}
	assert_int_equal(conf_state(c, ids[0][0].str), JOBQ_STATE_FAILED);
	jobq_job *p = conf_get(c, ids[0][0].str);
	const char *why = jobq_job_failed_reason(p);
	char tail[JOBQ_ID_MAX + 16];
	snprintf(tail, sizeof(tail), ":%s failed", ids[0][1].str);
	assert_non_null(why);
	assert_true(strncmp(why, "child ", 6) == 0);
	assert_non_null(strstr(why, CHILD_QUEUE));
	assert_string_equal(why + strlen(why) - strlen(tail), tail);
	jobq_job_free(p);
	jobq_queue_close(cq);
}

/* A parent with a delay goes to delayed when its last child completes, due from then. */
static void
flow_delayed_parent(void **state) {
	conf *c = conf_begin(state);
	CONF_NEED_DUE_CLOCK(c);
	jobq_job_options o = conf_opts();
	o.delay_ms = 500;
	jobq_flow_node kids[] = {NODE(CHILD_QUEUE, "a", "{}", JOBQ_PARENT_WAIT, NULL, 0)};
	jobq_flow_node root = {NULL, "p", "{}", 2, &o, JOBQ_PARENT_WAIT, kids, 1};
	jobq_job_id ids[2];
	flow_add(c, ids, &root);
	jobq_queue *cq = child_queue(c);
	conf_advance(c, 1000);
	run_child(cq, ids[1].str, NULL);
	assert_int_equal(conf_state(c, ids[0].str), JOBQ_STATE_DELAYED);
	conf_fetch_none(c);
	conf_advance(c, 500);
	conf_fetch_complete(c, ids[0].str, NULL);
	jobq_queue_close(cq);
}

/* Removing a child releases its parent when it was the last pending one; removing a parent
 * removes its pending children. */
static void
flow_remove(void **state) {
	conf *c = conf_begin(state);
	jobq_flow_node kids[] = {NODE(CHILD_QUEUE, "a", "{}", JOBQ_PARENT_WAIT, NULL, 0),
	                         NODE(CHILD_QUEUE, "b", "{}", JOBQ_PARENT_WAIT, NULL, 0)};
	jobq_flow_node root = NODE(NULL, "p", "{}", JOBQ_PARENT_WAIT, kids, 2);
	jobq_job_id one[3], two[3];
	flow_add(c, one, &root);
	flow_add(c, two, &root);
	jobq_queue *cq = child_queue(c);
	assert_int_equal(jobq_queue_remove(cq, one[1].str), 0);
	assert_int_equal(conf_state(c, one[0].str), JOBQ_STATE_WAITING_CHILDREN);
	assert_int_equal(jobq_queue_remove(cq, one[2].str), 0);
	assert_int_equal(conf_state(c, one[0].str), JOBQ_STATE_WAITING);

	assert_int_equal(jobq_queue_remove(c->q, two[0].str), 0);
	conf_assert_absent(c, two[0].str);
	jobq_state s;
	assert_int_equal(jobq_queue_get_state(&s, cq, two[1].str), JOBQ_ENOTFOUND);
	assert_int_equal(jobq_queue_get_state(&s, cq, two[2].str), JOBQ_ENOTFOUND);
	jobq_counts n;
	assert_int_equal(jobq_queue_counts(&n, cq), 0);
	assert_int_equal(n.waiting, 0);
	jobq_queue_close(cq);
}

/* A child added under an existing parent; bad flows are refused and change nothing. */
static void
flow_add_child_and_bad_input(void **state) {
	conf *c = conf_begin(state);
	jobq_job_options po = conf_opts(), xo = conf_opts();
	po.job_id = "top";
	jobq_flow_node kids[] = {NODE(CHILD_QUEUE, "a", "{}", JOBQ_PARENT_WAIT, NULL, 0)};
	jobq_flow_node root = {NULL, "p", "{}", 2, &po, JOBQ_PARENT_WAIT, kids, 1};
	jobq_job_id ids[4];
	flow_add(c, ids, &root);
	jobq_queue *cq = child_queue(c);
	jobq_flow_node more = NODE(NULL, "more", "{}", JOBQ_PARENT_IGNORE, NULL, 0);
	jobq_flow_parent top = {CONF_QUEUE, "top"};
	assert_int_equal(jobq_flow_add(ids + 2, cq, &more, &top), 0);
	jobq_dependencies *d = deps(c, "top");
	assert_int_equal(d->npending, 2);
	jobq_dependencies_free(d);

	jobq_counts before = conf_counts(c), cbefore, cafter;
	assert_int_equal(jobq_queue_counts(&cbefore, cq), 0);
	jobq_flow_parent missing = {CONF_QUEUE, "nope"};
	conf_assert_error(jobq_flow_add(NULL, cq, &more, &missing), JOBQ_ENOTFOUND);
	xo.job_id = "x";
	jobq_flow_node twice[] = {{CHILD_QUEUE, "a", "{}", 2, &xo, JOBQ_PARENT_WAIT, NULL, 0},
	                          {CHILD_QUEUE, "b", "{}", 2, &xo, JOBQ_PARENT_WAIT, NULL, 0}};
	jobq_flow_node r2 = NODE(NULL, "r", "{}", JOBQ_PARENT_WAIT, twice, 2);
	conf_assert_error(jobq_flow_add(NULL, c->q, &r2, NULL), JOBQ_EINVAL);
	/* a child that belongs to another parent, which exists */
	jobq_job_options own = conf_opts();
	own.job_id = "kid";
	jobq_flow_node k1[] = {{CHILD_QUEUE, "k", "{}", 2, &own, JOBQ_PARENT_WAIT, NULL, 0}};
	jobq_flow_node r3 = NODE(NULL, "r", "{}", JOBQ_PARENT_WAIT, k1, 1);
	jobq_job_id kid_ids[2];
	assert_int_equal(jobq_flow_add(kid_ids, c->q, &r3, NULL), 0);
	before = conf_counts(c);
	assert_int_equal(jobq_queue_counts(&cbefore, cq), 0);
	conf_assert_error(jobq_flow_add(NULL, c->q, &r3, NULL), JOBQ_EEXISTS);
	/* too deep */
	jobq_flow_node chain[JOBQ_FLOW_MAX_DEPTH + 1];
	for (size_t i = 0; i <= JOBQ_FLOW_MAX_DEPTH; i++)
		chain[i] = (jobq_flow_node){NULL,
		                            "c",
		                            "{}",
		                            2,
		                            NULL,
		                            JOBQ_PARENT_WAIT,
		                            i < JOBQ_FLOW_MAX_DEPTH ? &chain[i + 1] : NULL,
		                            i < JOBQ_FLOW_MAX_DEPTH ? 1 : 0};
	conf_assert_error(jobq_flow_add(NULL, c->q, &chain[0], NULL), JOBQ_EINVAL);
	jobq_counts after = conf_counts(c);
	conf_assert_same_counts(&before, &after);
	assert_int_equal(jobq_queue_counts(&cafter, cq), 0);
	conf_assert_same_counts(&cbefore, &cafter);
	jobq_queue_close(cq);
}

static const struct CMUnitTest tests[] = {
    CONF_CASE(flow_parent_waits_for_children),
    CONF_CASE(flow_tree_runs_bottom_up),
    CONF_CASE(flow_failure_policies),
    CONF_CASE(flow_delayed_parent),
    CONF_CASE(flow_remove),
    CONF_CASE(flow_add_child_and_bad_input),
};
CONF_TABLE(conf_flow_cases, tests);
