/*
 * Request / response: waiting for one job to finish (jobq_queue_wait_job), woken by the
 * store's events rather than by polling.
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "backends/backend.h"

#define BACKEND(q) ((q)->store->backend)

/* --- request / response ------------------------------------------------------------------- */

/* Reads events in rounds of at most this long, re-checking the job between rounds, so that a
 * trimmed event history can never leave a waiter stuck. */
enum { WAIT_ROUND_MS = 1000 };

static int wait_job(jobq_job **out, jobq_queue *q, const char *id, int64_t timeout_ms);

static int
finished_outcome(jobq_job **out, jobq_job *job) {
	int rc = job->state == JOBQ_STATE_COMPLETED ? 0 : JOBQ_ESTATE;
	if (rc < 0)
		jobq_error_set(JOBQ_ESTATE, "job %s failed: %s", job->id,
		               job->failed_reason ? job->failed_reason : "(no reason)");
	if (out != NULL)
		*out = job;
	else
		jobq_job_free(job);
	return rc;
}

int
jobq_queue_wait_job(jobq_job **out, jobq_queue *q, const char *id, int64_t timeout_ms) {
	if (out != NULL)
		*out = NULL;
	int rc = jobq_queue__check(q, "wait job");
	if (rc < 0 || (rc = jobq_queue__check_id(q, id, "wait job")) < 0)
		return rc;
	if ((rc = jobq_queue__enter_wait(q)) < 0)
		return rc;
	rc = wait_job(out, q, id, timeout_ms);
	jobq_queue__leave_wait(q);
	return rc;
}

static int
wait_job(jobq_job **out, jobq_queue *q, const char *id, int64_t timeout_ms) {
	int rc;
	if (out != NULL)
		*out = NULL;
	/* Take the event cursor before looking at the job, so no outcome falls in between. */
	jobq_event_list *list = NULL;
	if ((rc = jobq_events_read(&list, q, JOBQ_EVENTS_NOW, 1, 0)) < 0)
		return rc;
	const char *c = jobq_event_list_cursor(list);
	char *cursor = jobq__strdup(c ? c : JOBQ_EVENTS_START);
	jobq_event_list_free(list);
	if (cursor == NULL)
		return JOBQ_ENOMEM;
	/* The deadline saturates: a timeout near INT64_MAX waits as long as one < 0. */
	int64_t start = jobq_clock__monotonic_ms();
	int64_t deadline =
	    timeout_ms < 0 || timeout_ms > INT64_MAX - start ? INT64_MAX : start + timeout_ms;
	int blocking = (BACKEND(q)->caps & JOBQ_CAP_BLOCKING_WAIT) != 0;
	for (;;) {
		jobq_job *job = NULL;
		if ((rc = jobq_queue_get_job(&job, q, id)) < 0)
			break;
		if (job->state == JOBQ_STATE_COMPLETED || job->state == JOBQ_STATE_FAILED) {
			rc = finished_outcome(out, job);
			break;
		}
		jobq_job_free(job);
		/* Read events until this job's outcome shows up or the round ends. */
		int seen = 0;
		int64_t round_end = jobq_clock__monotonic_ms() + WAIT_ROUND_MS;
		while (!seen) {
			int64_t now = jobq_clock__monotonic_ms();
			int64_t left = (deadline < round_end ? deadline : round_end) - now;
			if (left <= 0)
				break;
			if (!blocking) {
				struct timespec ts = {0,
				                      10 * 1000000L}; /* no blocking read: poll */
				nanosleep(&ts, NULL);
			}
			if ((rc = jobq_events_read(&list, q, cursor, 256, blocking ? left : 0)) < 0)
				goto out;
			for (size_t i = 0; i < jobq_event_list_count(list); i++) {
				const jobq_event *e = jobq_event_list_at(list, i);
				if (e->job_id != NULL && strcmp(e->job_id, id) == 0 &&
				    (strcmp(e->event, "completed") == 0 ||
				     strcmp(e->event, "failed") == 0 ||
				     strcmp(e->event, "removed") == 0))
					seen = 1;
			}
			c = jobq_event_list_cursor(list);
			if (c != NULL && strcmp(c, cursor) != 0) {
				char *next = jobq__strdup(c);
				if (next == NULL) {
					jobq_event_list_free(list);
					rc = JOBQ_ENOMEM;
					goto out;
				}
				jobq__free(cursor);
				cursor = next;
			}
			jobq_event_list_free(list);
		}
		if (!seen && jobq_clock__monotonic_ms() >= deadline) {
			rc = jobq_error_set(JOBQ_ETIMEDOUT,
			                    "wait job: job %s did not finish in %lld ms", id,
			                    (long long)timeout_ms);
			break;
		}
	}
out:
	jobq__free(cursor);
	return rc;
}

int
jobq_queue_request(jobq_job **out, jobq_queue *q, const char *name, const void *data, size_t len,
                   const jobq_job_options *opts, int64_t timeout_ms) {
	jobq_job_id id;
	int rc = jobq_queue_add(&id, q, name, data, len, opts);
	if (rc < 0)
		return rc;
	return jobq_queue_wait_job(out, q, id.str, timeout_ms);
}
