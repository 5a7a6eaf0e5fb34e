/* Jobs: construction for backends, read accessors, and the calls a handler makes on its job. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

static const char *const state_names[JOBQ_STATE__COUNT] = {
    [JOBQ_STATE_UNKNOWN] = "unknown",
    [JOBQ_STATE_WAITING] = "waiting",
    [JOBQ_STATE_PRIORITIZED] = "prioritized",
    [JOBQ_STATE_DELAYED] = "delayed",
    [JOBQ_STATE_ACTIVE] = "active",
    [JOBQ_STATE_COMPLETED] = "completed",
    [JOBQ_STATE_FAILED] = "failed",
    [JOBQ_STATE_PAUSED] = "paused",
    [JOBQ_STATE_WAITING_CHILDREN] = "waiting-children",
};

const char *
jobq_state_name(jobq_state state) {
	if ((unsigned)state >= JOBQ_STATE__COUNT)
		return "unknown";
	return state_names[state];
}

int
jobq_state_parse(jobq_state *out, const char *name) {
	if (name == NULL)
		return jobq_error_set(JOBQ_EINVAL, "state: name is NULL");
	if (strcmp(name, "wait") == 0) {
		*out = JOBQ_STATE_WAITING;
		return 0;
	}
	for (int s = JOBQ_STATE_WAITING; s < JOBQ_STATE__COUNT; s++) {
		if (strcmp(name, state_names[s]) == 0) {
			*out = (jobq_state)s;
			return 0;
		}
	}
	return jobq_error_set(JOBQ_EINVAL,
	                      "unknown state '%s' (expected waiting, prioritized, delayed, active, "
	                      "completed, failed, paused or waiting-children)",
	                      name);
}

int
jobq_job_options_init(jobq_job_options *opts, unsigned int version) {
	if (opts == NULL)
		return jobq_error_set(JOBQ_EINVAL, "job options: NULL");
	if (version != JOBQ_JOB_OPTIONS_VERSION)
		return jobq_error_set(JOBQ_EVERSION,
		                      "job options: version %u not supported (want %u)", version,
		                      JOBQ_JOB_OPTIONS_VERSION);
	*opts = (jobq_job_options)JOBQ_JOB_OPTIONS_INIT;
	return 0;
}

int
jobq_job_options__copy(jobq_job_options *dst, const jobq_job_options *src) {
	jobq_job_options copy = *src;
	copy.job_id = NULL;
	copy.dedup_id = NULL;
	copy.backoff.custom_type = NULL;
	if ((src->job_id && (copy.job_id = jobq__strdup(src->job_id)) == NULL) ||
	    (src->dedup_id && (copy.dedup_id = jobq__strdup(src->dedup_id)) == NULL) ||
	    (src->backoff.custom_type &&
	     (copy.backoff.custom_type = jobq__strdup(src->backoff.custom_type)) == NULL)) {
		jobq_job_options__clear(&copy);
		return JOBQ_ENOMEM;
	}
	*dst = copy;
	return 0;
}

void
jobq_job_options__clear(jobq_job_options *opts) {
	jobq__free((char *)(uintptr_t)opts->job_id);
	jobq__free((char *)(uintptr_t)opts->dedup_id);
	jobq__free((char *)(uintptr_t)opts->backoff.custom_type);
	opts->job_id = NULL;
	opts->dedup_id = NULL;
	opts->backoff.custom_type = NULL;
}

/*
 * Every job is allocated with a hidden header in front of the struct, which says how many
 * bytes after the struct belong to the same block: a backend may pack the job's strings
 * there (jobq_job__new_packed), and jobq_job_free frees only the pointers outside them.
 */
typedef union job_header {
	struct {
		size_t packed; /* bytes after the struct that belong to the job's strings */
		size_t cap;    /* bytes after the struct that were allocated */
	} n;
	max_align_t align;
} job_header;

/*
 * Freed jobs kept for the next fetch, per thread, in threads that ask for it (the worker's
 * handler threads, which allocate and free a batch of jobs over and over; malloc's own
 * per-thread cache holds only a few blocks of a size).
 */
enum { JOB_CACHE_MAX = 64, JOB_CACHE_BLOCK = 64 };
static _Thread_local struct {
	int enabled;
	size_t n;
	job_header *blocks[JOB_CACHE_MAX];
} job_cache;

void
jobq_job__cache_enable(int on) {
	job_cache.enabled = on;
	if (!on) {
		while (job_cache.n > 0)
			jobq__free(job_cache.blocks[--job_cache.n]);
	}
}

static job_header *
header_of(const jobq_job *job) {
	return (job_header *)(uintptr_t)((const char *)job - sizeof(job_header));
}

jobq_job *
jobq_job__new_packed(size_t extra, char **storage) {
	if (extra > SIZE_MAX - sizeof(job_header) - sizeof(jobq_job)) {
		jobq_error_set(JOBQ_ENOMEM, "job of %zu bytes is too large", extra);
		return NULL;
	}
	job_header *h = NULL;
	size_t cap = extra;
	if (job_cache.enabled) {
		cap = (extra + JOB_CACHE_BLOCK - 1) / JOB_CACHE_BLOCK * JOB_CACHE_BLOCK;
		if (job_cache.n > 0 && job_cache.blocks[job_cache.n - 1]->n.cap >= extra) {
			h = job_cache.blocks[--job_cache.n];
			cap = h->n.cap;
		}
	}
	if (h == NULL && (h = jobq__malloc(sizeof(job_header) + sizeof(jobq_job) + cap)) == NULL)
		return NULL;
	h->n.packed = extra;
	h->n.cap = cap;
	jobq_job *job = (jobq_job *)(h + 1);
	memset(job, 0, sizeof(*job));
	if (storage != NULL)
		*storage = (char *)(job + 1);
	return job;
}

jobq_job *
jobq_job__new(void) {
	return jobq_job__new_packed(0, NULL);
}

/* Frees `p` unless it points into the job's own block. */
static void
free_field(const jobq_job *job, size_t packed, void *p) {
	uintptr_t lo = (uintptr_t)(job + 1), a = (uintptr_t)p;
	if (packed == 0 || a < lo || a >= lo + packed)
		jobq__free(p);
}

int
jobq_job__attach(jobq_job *job, jobq_queue *q) {
	if (job->rt == NULL) {
		job->rt = jobq__calloc(1, sizeof(*job->rt));
		if (job->rt == NULL)
			return JOBQ_ENOMEM;
	}
	job->rt->queue = q;
	return 0;
}

void
jobq_job__attach_to(jobq_job *job, struct jobq_job_runtime *rt, jobq_queue *q) {
	memset(rt, 0, sizeof(*rt));
	rt->borrowed = 1;
	rt->queue = q;
	job->rt = rt;
}

void
jobq_job__detach(jobq_job *job) {
	struct jobq_job_runtime *rt = job->rt;
	if (rt == NULL)
		return;
	jobq__free(rt->result);
	jobq__free(rt->error);
	rt->result = rt->error = NULL;
	if (!rt->borrowed)
		jobq__free(rt);
	job->rt = NULL;
}

void
jobq_job_free(jobq_job *job) {
	if (job == NULL)
		return;
	size_t packed = header_of(job)->n.packed;
	free_field(job, packed, job->id);
	free_field(job, packed, job->name);
	free_field(job, packed, job->data);
	free_field(job, packed, (char *)(uintptr_t)job->opts.job_id);
	free_field(job, packed, (char *)(uintptr_t)job->opts.dedup_id);
	free_field(job, packed, (char *)(uintptr_t)job->opts.backoff.custom_type);
	free_field(job, packed, job->progress);
	free_field(job, packed, job->result);
	free_field(job, packed, job->failed_reason);
	for (size_t i = 0; i < job->stacktrace_count; i++)
		free_field(job, packed, job->stacktrace[i]);
	free_field(job, packed, job->stacktrace);
	free_field(job, packed, job->deferred_failure);
	free_field(job, packed, job->token);
	free_field(job, packed, job->scheduler_id);
	free_field(job, packed, job->processed_by);
	jobq_job__detach(job);
	if (job_cache.enabled && job_cache.n < JOB_CACHE_MAX)
		job_cache.blocks[job_cache.n++] = header_of(job);
	else
		jobq__free(header_of(job));
}

int
jobq_job_list__append(jobq_job_list **list, jobq_job *job) {
	if (*list == NULL) {
		*list = jobq__calloc(1, sizeof(**list));
		if (*list == NULL)
			return JOBQ_ENOMEM;
	}
	jobq_job_list *l = *list;
	if ((l->count & (l->count - 1)) == 0) {
		size_t cap = l->count ? l->count * 2 : 4;
		jobq_job **jobs = jobq__realloc(l->jobs, cap * sizeof(*jobs));
		if (jobs == NULL)
			return JOBQ_ENOMEM;
		l->jobs = jobs;
	}
	l->jobs[l->count++] = job;
	return 0;
}

void
jobq_job_list_free(jobq_job_list *list) {
	if (list == NULL)
		return;
	for (size_t i = 0; i < list->count; i++)
		jobq_job_free(list->jobs[i]);
	jobq__free(list->jobs);
	jobq__free(list);
}

/* --- accessors ---------------------------------------------------------------------------- */

const char *
jobq_job_id_of(const jobq_job *job) {
	return job->id;
}

const char *
jobq_job_name(const jobq_job *job) {
	return job->name;
}

const char *
jobq_job_queue_name(const jobq_job *job) {
	return job->rt && job->rt->queue ? job->rt->queue->name : NULL;
}

const void *
jobq_job_data(const jobq_job *job, size_t *len) {
	if (len != NULL)
		*len = job->data_len;
	return job->data ? job->data : "";
}

const jobq_job_options *
jobq_job_options_of(const jobq_job *job) {
	return &job->opts;
}

jobq_state
jobq_job_state(const jobq_job *job) {
	return job->state;
}

int64_t
jobq_job_timestamp(const jobq_job *job) {
	return job->timestamp;
}

int64_t
jobq_job_processed_on(const jobq_job *job) {
	return job->processed_on;
}

int64_t
jobq_job_finished_on(const jobq_job *job) {
	return job->finished_on;
}

int64_t
jobq_job_delay(const jobq_job *job) {
	return job->delay_ms;
}

uint32_t
jobq_job_priority(const jobq_job *job) {
	return job->priority;
}

uint32_t
jobq_job_attempts_started(const jobq_job *job) {
	return job->attempts_started;
}

uint32_t
jobq_job_attempts_made(const jobq_job *job) {
	return job->attempts_made;
}

uint32_t
jobq_job_stalled_count(const jobq_job *job) {
	return job->stalled_count;
}

const char *
jobq_job_progress(const jobq_job *job) {
	return job->progress;
}

const char *
jobq_job_result(const jobq_job *job) {
	return job->result;
}

const char *
jobq_job_failed_reason(const jobq_job *job) {
	return job->failed_reason;
}

size_t
jobq_job_stacktrace_count(const jobq_job *job) {
	return job->stacktrace_count;
}

const char *
jobq_job_stacktrace_at(const jobq_job *job, size_t i) {
	return i < job->stacktrace_count ? job->stacktrace[i] : NULL;
}

const char *
jobq_job_processed_by(const jobq_job *job) {
	return job->processed_by;
}

const char *
jobq_job_token(const jobq_job *job) {
	return job->token;
}

/* --- handler side ------------------------------------------------------------------------- */

static int
need_runtime(const jobq_job *job, const char *what) {
	if (job == NULL)
		return jobq_error_set(JOBQ_EINVAL, "%s: job is NULL", what);
	if (job->rt == NULL || job->rt->queue == NULL)
		return jobq_error_set(JOBQ_EINVAL, "%s: job %s was not fetched by this process",
		                      what, job->id ? job->id : "?");
	return 0;
}

int
jobq_job_set_result(jobq_job *job, const char *json, size_t len) {
	int rc = need_runtime(job, "set result");
	if (rc < 0)
		return rc;
	if (json == NULL)
		return jobq_error_set(JOBQ_EINVAL, "set result: json is NULL");
	if ((rc = jobq__validate_json("result", json, len)) < 0)
		return rc;
	char *copy = jobq__strndup(json, len);
	if (copy == NULL)
		return JOBQ_ENOMEM;
	jobq__free(job->rt->result);
	job->rt->result = copy;
	return 0;
}

int
jobq_job_set_error(jobq_job *job, unsigned int flags, const char *fmt, ...) {
	int rc = need_runtime(job, "set error");
	if (rc < 0)
		return rc;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt ? fmt : "failed", ap);
	va_end(ap);
	char *copy = jobq__strdup(buf);
	if (copy == NULL)
		return JOBQ_ENOMEM;
	jobq__free(job->rt->error);
	job->rt->error = copy;
	job->rt->error_flags = flags;
	return JOBQ_EUSER;
}

int
jobq_job_update_progress(jobq_job *job, const char *json) {
	int rc = need_runtime(job, "progress");
	if (rc < 0)
		return rc;
	if (json == NULL)
		return jobq_error_set(JOBQ_EINVAL, "progress: json is NULL");
	if ((rc = jobq__validate_json("progress", json, strlen(json))) < 0)
		return rc;
	jobq_queue *q = job->rt->queue;
	rc = q->store->backend->progress(q->bq, job->id, job->token, json, jobq_queue__now(q));
	if (job->token != NULL && jobq__lock_gone(rc))
		atomic_store(&job->rt->lock_lost, 1);
	return rc;
}

int
jobq_job_log(jobq_job *job, const char *line) {
	int rc = need_runtime(job, "log");
	if (rc < 0)
		return rc;
	if (line == NULL)
		return jobq_error_set(JOBQ_EINVAL, "log: line is NULL");
	jobq_queue *q = job->rt->queue;
	return q->store->backend->add_log(q->bq, job->id, line, job->opts.keep_logs);
}

int
jobq_job_is_cancelled(const jobq_job *job) {
	return job->rt && job->rt->cancelled && atomic_load(job->rt->cancelled);
}

int
jobq_job_lock_lost(const jobq_job *job) {
	return job->rt && atomic_load(&job->rt->lock_lost);
}
