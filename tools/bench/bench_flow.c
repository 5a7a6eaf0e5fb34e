/*
 * jobq_bench_flow — the flow workload of issue 14, through the public API only: one flow of
 * --jobs jobs (a root in queue "bf-p-<pid>", --fanout sub-parents in the same queue, the
 * leaves spread over them in queue "bf-c-<pid>"), added in one jobq_flow_add; then workers
 * with --concurrency handler threads on both queues run it to the end (empty handlers).
 * Prints jobs/s to add the tree and to process it (until the root completed).
 *
 *   jobq_bench_flow -u mem:// --jobs 10000
 *   jobq_bench_flow -u redis://127.0.0.1:6379 --jobs 10000
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobq.h"

static double
now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
empty(jobq_job *job, void *payload) {
	(void)job;
	(void)payload;
	return 0;
}

static int
die(const char *what, int rc) {
	fprintf(stderr, "jobq_bench_flow: %s: %s (%s)\n", what, jobq_error_name(rc),
	        jobq_error_message());
	return 1;
}

int
main(int argc, char **argv) {
	const char *url = "mem://";
	long jobs = 10000, fanout = 100;
	unsigned conc = 4;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "-u") == 0)
			url = argv[i + 1];
		else if (strcmp(argv[i], "--jobs") == 0)
			jobs = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--fanout") == 0)
			fanout = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--concurrency") == 0)
			conc = (unsigned)atoi(argv[i + 1]);
		else {
			fprintf(stderr, "usage: jobq_bench_flow [-u URL] [--jobs N] [--fanout N] "
			                "[--concurrency N]\n");
			return 2;
		}
	}
	if (jobs < 2 + fanout || fanout < 1 || jobs > JOBQ_FLOW_MAX_JOBS) {
		fprintf(stderr, "jobq_bench_flow: --jobs must be in %ld..%d\n", 2 + fanout,
		        JOBQ_FLOW_MAX_JOBS);
		return 2;
	}
	char pqn[64], cqn[64];
	snprintf(pqn, sizeof(pqn), "bf-p-%ld", (long)getpid());
	snprintf(cqn, sizeof(cqn), "bf-c-%ld", (long)getpid());
	long leaves = jobs - 1 - fanout;
	jobq_flow_node *leaf = calloc((size_t)leaves, sizeof(*leaf));
	jobq_flow_node *mid = calloc((size_t)fanout, sizeof(*mid));
	jobq_job_id *ids = calloc((size_t)jobs, sizeof(*ids));
	if (leaf == NULL || mid == NULL || ids == NULL)
		return 1;
	for (long i = 0; i < leaves; i++)
		leaf[i] = (jobq_flow_node){cqn, "leaf", "{}", 2, NULL, JOBQ_PARENT_WAIT, NULL, 0};
	for (long m = 0, at = 0; m < fanout; m++) {
		long n = leaves / fanout + (m < leaves % fanout ? 1 : 0);
		mid[m] = (jobq_flow_node){NULL,      "mid",    "{}", 2, NULL, JOBQ_PARENT_WAIT,
		                          &leaf[at], (size_t)n};
		at += n;
	}
	jobq_flow_node root = {NULL, "root", "{}", 2, NULL, JOBQ_PARENT_WAIT, mid, (size_t)fanout};
	jobq_store *s = NULL;
	jobq_queue *pq = NULL, *cq = NULL;
	int rc = jobq_store_open(&s, url, NULL);
	if (rc < 0 || (rc = jobq_queue_open(&pq, s, pqn)) < 0 ||
	    (rc = jobq_queue_open(&cq, s, cqn)) < 0)
		return die(url, rc);
	double t0 = now_s();
	if ((rc = jobq_flow_add(ids, pq, &root, NULL)) < 0)
		return die("flow add", rc);
	double t1 = now_s();
	jobq_worker_options wo = JOBQ_WORKER_OPTIONS_INIT;
	wo.concurrency = conc;
	jobq_worker *pw = NULL, *cw = NULL;
	if ((rc = jobq_worker_new(&pw, pq, empty, NULL, &wo)) < 0 ||
	    (rc = jobq_worker_new(&cw, cq, empty, NULL, &wo)) < 0 ||
	    (rc = jobq_worker_start(cw)) < 0 || (rc = jobq_worker_start(pw)) < 0)
		return die("worker", rc);
	rc = jobq_queue_wait_job(NULL, pq, ids[0].str, 600000);
	double t2 = now_s();
	if (rc < 0)
		return die("wait for the root", rc);
	jobq_worker_close(cw, 5000);
	jobq_worker_close(pw, 5000);
	jobq_worker_free(cw);
	jobq_worker_free(pw);
	printf("{\"url\":\"%s\",\"jobs\":%ld,\"fanout\":%ld,\"concurrency\":%u,"
	       "\"add_jobs_per_s\":%.0f,\"process_jobs_per_s\":%.0f}\n",
	       strncmp(url, "redis", 5) == 0 ? "redis" : url, jobs, fanout, conc,
	       (double)jobs / (t1 - t0), (double)jobs / (t2 - t1));
	jobq_queue_obliterate(pq, 1);
	jobq_queue_obliterate(cq, 1);
	jobq_queue_close(pq);
	jobq_queue_close(cq);
	jobq_store_close(s);
	free(leaf);
	free(mid);
	free(ids);
	return 0;
}
