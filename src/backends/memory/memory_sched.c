/*
 * The memory backend's job schedulers: the vtable's scheduler slots, each one critical section
 * over the engine's rules (engine/engine_sched.h, memory_sched.h).
 */
#include <stdlib.h>
#include <string.h>

#include "backends/memory/memory_sched.h"

int
jobq_mem__scheduler_upsert(jobq_job_id *iteration, jobq_backend_queue *q, const char *id,
                           const jobq_scheduler_spec *spec, int64_t pattern_next_ms,
                           int64_t now_ms) {
	pthread_mutex_lock(&q->mu);
	int rc = eng_sched_upsert(q, iteration, id, spec, pattern_next_ms, now_ms);
	if (rc > 0)
		work_signal(q, 0);
	pthread_mutex_unlock(&q->mu);
	return rc < 0 ? rc : 0;
}

int
jobq_mem__scheduler_next(jobq_backend_queue *q, const jobq_job *job, int64_t now_ms) {
	if (job == NULL || job->id == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory scheduler_next: no job");
	pthread_mutex_lock(&q->mu);
	int rc = eng_sched_next(q, job->id, strlen(job->id), now_ms);
	if (rc > 0)
		work_signal(q, 0);
	pthread_mutex_unlock(&q->mu);
	return rc;
}

int
jobq_mem__scheduler_remove(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	pthread_mutex_lock(&q->mu);
	int rc = eng_sched_remove(q, id, now_ms);
	pthread_mutex_unlock(&q->mu);
	return rc;
}

/* The public view of record `m`, into `out`. */
static int
sched_public(jobq_scheduler *out, const msched *m) {
	eng_sched s;
	int rc = jobq_eng__sched_decode(&s, m->id, m->text, m->len);
	if (rc < 0)
		return rc;
	rc = jobq_eng__sched_public(out, m->id, &s);
	jobq_eng__sched_clear(&s);
	return rc;
}

int
jobq_mem__scheduler_get(jobq_scheduler **out, jobq_backend_queue *q, const char *id) {
	jobq_scheduler *s = jobq__calloc(1, sizeof(*s));
	if (s == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory");
	pthread_mutex_lock(&q->mu);
	msched *m = sched_find(q, id);
	int rc = m != NULL ? sched_public(s, m)
	                   : jobq_error_set(JOBQ_ENOTFOUND, "no job scheduler '%s' in queue '%s'",
	                                    id, q->name);
	pthread_mutex_unlock(&q->mu);
	if (rc < 0) {
		jobq_scheduler_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int
jobq_mem__scheduler_list(jobq_scheduler_list **out, jobq_backend_queue *q) {
	jobq_scheduler_list *list = jobq__calloc(1, sizeof(*list));
	if (list == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory");
	int rc = 0;
	pthread_mutex_lock(&q->mu);
	size_t n = HASH_COUNT(q->scheds);
	if (n > 0 && (list->items = jobq__calloc(n, sizeof(*list->items))) == NULL)
		rc = jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory");
	for (msched *m = q->scheds; rc == 0 && m != NULL; m = m->hh.next)
		if ((rc = sched_public(&list->items[list->count], m)) == 0)
			list->count++;
	pthread_mutex_unlock(&q->mu);
	if (rc < 0) {
		jobq_scheduler_list_free(list);
		return rc;
	}
	jobq_eng__sched_sort(list->items, list->count);
	*out = list;
	return 0;
}

void
jobq_mem__scheds_clear(mqueue *q) {
	msched *m, *tmp;
	HASH_ITER(hh, q->scheds, m, tmp) {
		HASH_DEL(q->scheds, m);
		jobq__free(m->text);
		jobq__free(m);
	}
}
