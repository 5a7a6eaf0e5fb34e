/*
 * The jobq side of the BullMQ interop test (driven by interop.js):
 *
 *   jobq_interop add URL QUEUE       adds the jobq-produced job set; prints {"name": "id", ...}
 *   jobq_interop work URL QUEUE MS   runs a jobq worker until the queue has had nothing
 *                                    waiting, delayed or active for MS ms; prints stats
 *   jobq_interop stall URL QUEUE     fetches one job with a 300 ms lock and exits without
 *                                    finishing it (a crashed worker); prints its id
 *
 * Worker behaviour by job name: "fail-always" fails every attempt ("boom <n>"), "flaky"
 * fails its first two attempts, "progress" reports progress and logs, anything else completes
 * with {"name": <name>, "data": <data>}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq.h"

static int
die(const char *what, int rc) {
	fprintf(stderr, "jobq_interop: %s: %s (%s)\n", what, jobq_error_name(rc),
	        jobq_error_message());
	return 1;
}

static void
sleep_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int
add_one(jobq_queue *q, const char *name, const char *data, const jobq_job_options *o, int *first) {
	jobq_job_id id;
	int rc = jobq_queue_add(&id, q, name, data, strlen(data), o);
	if (rc < 0)
		return die(name, rc);
	printf("%s\"%s\":\"%s\"", *first ? "" : ",", name, id.str);
	*first = 0;
	return 0;
}

static int
cmd_add(jobq_queue *q) {
	int first = 1, bad = 0;
	jobq_job_options o;
	printf("{");
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	bad |= add_one(q, "std", "{\"a\":1,\"s\":\"\xc3\xbcnicode \xe2\x9c\x93\",\"n\":[1,2.5]}",
	               &o, &first);
	bad |= add_one(q, "string", "\"just a string\"", &o, &first);
	o.job_id = "my-id";
	bad |= add_one(q, "custom", "{\"c\":true}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.priority = 5;
	bad |= add_one(q, "prio5", "{}", &o, &first);
	o.priority = 2;
	bad |= add_one(q, "prio2", "{}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.lifo = 1;
	bad |= add_one(q, "lifo", "{}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.delay_ms = 1500;
	bad |= add_one(q, "delayed", "{\"d\":1}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.attempts = 3;
	o.backoff.type = JOBQ_BACKOFF_FIXED;
	o.backoff.delay_ms = 200;
	bad |= add_one(q, "retry-fixed", "{}", &o, &first);
	o.backoff.type = JOBQ_BACKOFF_EXPONENTIAL;
	o.backoff.delay_ms = 100;
	bad |= add_one(q, "retry-exp", "{}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.remove_on_complete.mode = JOBQ_KEEP_NONE;
	bad |= add_one(q, "roc", "{}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.remove_on_fail.mode = JOBQ_KEEP_NONE;
	bad |= add_one(q, "rof", "{}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.remove_on_complete.mode = JOBQ_KEEP_LIMIT;
	o.remove_on_complete.count = 1;
	o.remove_on_complete.age_ms = -1;
	bad |= add_one(q, "keep1", "{}", &o, &first);
	printf("}\n");
	return bad;
}

static int
handler(jobq_job *job, void *payload) {
	(void)payload;
	const char *name = jobq_job_name(job);
	uint32_t made = jobq_job_attempts_made(job);
	if (strcmp(name, "fail-always") == 0)
		return jobq_job_set_error(job, 0, "boom %u", made);
	if (strcmp(name, "flaky") == 0 && made < 2)
		return jobq_job_set_error(job, 0, "flaky %u", made);
	if (strcmp(name, "progress") == 0) {
		jobq_job_update_progress(job, "42");
		jobq_job_update_progress(job, "{\"step\":\"two\"}");
		jobq_job_log(job, "line one");
		jobq_job_log(job, "line two");
	}
	size_t len = 0;
	const char *data = jobq_job_data(job, &len);
	size_t n = strlen(name) + len + 32;
	char *out = malloc(n);
	if (out == NULL)
		return jobq_job_set_error(job, 0, "out of memory");
	snprintf(out, n, "{\"name\":\"%s\",\"data\":%.*s}", name, (int)len, data);
	int rc = jobq_job_set_result(job, out, strlen(out));
	free(out);
	return rc < 0 ? rc : 0;
}

static int
cmd_work(jobq_queue *q, long idle_ms) {
	jobq_worker *w = NULL;
	jobq_worker_options wo = JOBQ_WORKER_OPTIONS_INIT;
	wo.concurrency = 2;
	wo.stalled_interval_ms = 300;
	int rc = jobq_worker_new(&w, q, handler, NULL, &wo);
	if (rc < 0 || (rc = jobq_worker_start(w)) < 0)
		return die("worker", rc);
	long quiet = 0;
	for (long waited = 0; waited < 60000 && quiet < idle_ms; waited += 50) {
		jobq_counts c;
		if (jobq_queue_counts(&c, q) < 0)
			break;
		if (c.waiting + c.active + c.delayed + c.prioritized == 0)
			quiet += 50;
		else
			quiet = 0;
		sleep_ms(50);
	}
	jobq_worker_stats st;
	jobq_worker_get_stats(&st, w);
	jobq_worker_close(w, 5000);
	jobq_worker_free(w);
	printf("{\"completed\":%llu,\"failed\":%llu}\n", (unsigned long long)st.completed,
	       (unsigned long long)st.failed);
	return 0;
}

static int
cmd_stall(jobq_queue *q) {
	jobq_job *job = NULL;
	int rc = jobq_queue_fetch(&job, q, 300);
	if (rc < 0)
		return die("fetch", rc);
	printf("{\"id\":\"%s\"}\n", jobq_job_id_of(job));
	jobq_job_free(job);
	return 0;
}

int
main(int argc, char **argv) {
	if (argc < 4) {
		fprintf(stderr, "usage: jobq_interop add|work|stall URL QUEUE [IDLE_MS]\n");
		return 2;
	}
	jobq_store *s = NULL;
	jobq_queue *q = NULL;
	int rc = jobq_store_open(&s, argv[2], NULL);
	if (rc < 0)
		return die(argv[2], rc);
	if ((rc = jobq_queue_open(&q, s, argv[3])) < 0)
		return die(argv[3], rc);
	if (strcmp(argv[1], "add") == 0)
		rc = cmd_add(q);
	else if (strcmp(argv[1], "work") == 0)
		rc = cmd_work(q, argc > 4 ? atol(argv[4]) : 500);
	else if (strcmp(argv[1], "stall") == 0)
		rc = cmd_stall(q);
	else
		rc = 2;
	fflush(stdout);
	jobq_queue_close(q);
	jobq_store_close(s);
	return rc;
}
