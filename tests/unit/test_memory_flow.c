/*
 * Memory flows under concurrency: workers on a parent queue and a child queue (several
 * handler threads each) while other threads add flows, so that finishes, releases and adds
 * across the two queues interleave (run under TSan by the tsan preset). Every parent must run
 * once with all of its children's results.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jobq.h"

#define FLOWS_PER_THREAD 60
#define ADDERS           2
#define KIDS             5

typedef struct shared {
	jobq_store *s;
	jobq_queue *pq, *cq;
	pthread_mutex_t mu;
	int parents_ok, parents_bad;
	jobq_job_id roots[ADDERS][FLOWS_PER_THREAD];
} shared;

/* A child named "fail" fails for good (its parent ignores it); the others complete. */
static int
child_handler(jobq_job *job, void *payload) {
	(void)payload;
	if (strcmp(jobq_job_name(job), "fail") == 0)
		return jobq_job_set_error(job, JOBQ_FAIL_UNRECOVERABLE, "no");
	return jobq_job_set_result(job, "1", 1);
}

/* A parent checks its children: KIDS - 1 results, one ignored failure, none pending. */
static int
parent_handler(jobq_job *job, void *payload) {
	shared *sh = payload;
	jobq_dependencies *d = NULL;
	int ok = jobq_queue_get_dependencies(&d, sh->pq, jobq_job_id_of(job)) == 0 &&
	         d->nprocessed == KIDS - 1 && d->nignored == 1 && d->npending == 0;
	jobq_dependencies_free(d);
	pthread_mutex_lock(&sh->mu);
	if (ok)
		sh->parents_ok++;
	else
		sh->parents_bad++;
	pthread_mutex_unlock(&sh->mu);
	return 0;
}

typedef struct adder {
	shared *sh;
	int k;
	int rc;
} adder;

static void *
add_flows(void *arg) {
	adder *a = arg;
	jobq_flow_node kids[KIDS];
	for (int i = 0; i < KIDS; i++)
		kids[i] = (jobq_flow_node){"c",  i == 0 ? "fail" : "ok",
		                           "{}", 2,
		                           NULL, i == 0 ? JOBQ_PARENT_IGNORE : JOBQ_PARENT_WAIT,
		                           NULL, 0};
	jobq_flow_node root = {NULL, "root", "{}", 2, NULL, JOBQ_PARENT_WAIT, kids, KIDS};
	for (int i = 0; i < FLOWS_PER_THREAD && a->rc == 0; i++) {
		jobq_job_id ids[KIDS + 1];
		a->rc = jobq_flow_add(ids, a->sh->pq, &root, NULL);
		a->sh->roots[a->k][i] = ids[0];
	}
	return NULL;
}

static void
flows_under_concurrency(void **state) {
	(void)state;
	shared sh;
	memset(&sh, 0, sizeof(sh));
	pthread_mutex_init(&sh.mu, NULL);
	assert_int_equal(jobq_store_open(&sh.s, "mem://", NULL), 0);
	assert_int_equal(jobq_queue_open(&sh.pq, sh.s, "p"), 0);
	assert_int_equal(jobq_queue_open(&sh.cq, sh.s, "c"), 0);
	jobq_worker_options wo = JOBQ_WORKER_OPTIONS_INIT;
	wo.concurrency = 3;
	jobq_worker *cw[2], *pw;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(jobq_worker_new(&cw[i], sh.cq, child_handler, &sh, &wo), 0);
		assert_int_equal(jobq_worker_start(cw[i]), 0);
	}
	assert_int_equal(jobq_worker_new(&pw, sh.pq, parent_handler, &sh, &wo), 0);
	assert_int_equal(jobq_worker_start(pw), 0);
	pthread_t t[ADDERS];
	adder a[ADDERS];
	for (int k = 0; k < ADDERS; k++) {
		a[k] = (adder){&sh, k, 0};
		assert_int_equal(pthread_create(&t[k], NULL, add_flows, &a[k]), 0);
	}
	for (int k = 0; k < ADDERS; k++) {
		pthread_join(t[k], NULL);
		assert_int_equal(a[k].rc, 0);
	}
	/* each parent finishes: woken by the store's events, bounded */
	for (int k = 0; k < ADDERS; k++)
		for (int i = 0; i < FLOWS_PER_THREAD; i++)
			assert_int_equal(
			    jobq_queue_wait_job(NULL, sh.pq, sh.roots[k][i].str, 60000), 0);
	for (int i = 0; i < 2; i++) {
		jobq_worker_close(cw[i], 5000);
		jobq_worker_free(cw[i]);
	}
	jobq_worker_close(pw, 5000);
	jobq_worker_free(pw);
	assert_int_equal(sh.parents_bad, 0);
	assert_int_equal(sh.parents_ok, ADDERS * FLOWS_PER_THREAD);
	jobq_counts n;
	assert_int_equal(jobq_queue_counts(&n, sh.pq), 0);
	assert_int_equal(n.waiting_children, 0);
	assert_int_equal(n.completed, ADDERS * FLOWS_PER_THREAD);
	jobq_queue_close(sh.pq);
	jobq_queue_close(sh.cq);
	jobq_store_close(sh.s);
	pthread_mutex_destroy(&sh.mu);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(flows_under_concurrency),
	};
	return cmocka_run_group_tests_name("memory_flow", tests, NULL, NULL);
}
