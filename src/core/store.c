/*
 * Stores and queues: option defaults and validation, then one backend step per call. The
 * retry decision for a failed attempt lives here too (jobq_queue__fail_job), shared by
 * workers and manual mode.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "backends/backend.h"

/* --- stores ------------------------------------------------------------------------------- */

static void
wake_backend(void *arg) {
	jobq_store *s = arg;
	jobq__backend_wake(s->backend);
}

int
jobq_store_options_init(jobq_store_options *opts, unsigned int version) {
	if (opts == NULL)
		return jobq_error_set(JOBQ_EINVAL, "store options: NULL");
	if (version != JOBQ_STORE_OPTIONS_VERSION)
		return jobq_error_set(JOBQ_EVERSION, "store options: version %u not supported",
		                      version);
	*opts = (jobq_store_options)JOBQ_STORE_OPTIONS_INIT;
	return 0;
}

int
jobq_store_open_backend(jobq_store **out, jobq_backend *backend, const jobq_store_options *opts) {
	int rc = 0;
	if (out == NULL)
		rc = jobq_error_set(JOBQ_EINVAL, "store open: out is NULL");
	else if (opts != NULL && opts->version != JOBQ_STORE_OPTIONS_VERSION)
		rc = jobq_error_set(JOBQ_EVERSION, "store options: version %u not supported",
		                    opts->version);
	else
		rc = jobq__backend_check(backend);
	if (rc < 0) {
		jobq__backend_free(backend);
		return rc;
	}
	jobq_store *s = jobq__calloc(1, sizeof(*s));
	if (s == NULL) {
		backend->free(backend);
		return JOBQ_ENOMEM;
	}
	s->backend = backend;
	s->clock = (opts && opts->clock) ? opts->clock : jobq_clock_system();
	/* A random instance id keeps lock tokens unique across processes and restarts. */
	snprintf(s->instance_id, sizeof(s->instance_id), "%08llx%08llx",
	         (unsigned long long)(jobq__random01() * 4294967296.0),
	         (unsigned long long)(jobq__random01() * 4294967296.0));
	if ((rc = jobq_clock__listen(s->clock, wake_backend, s)) < 0) {
		backend->free(backend);
		jobq__free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int
jobq_store_open(jobq_store **out, const char *url, const jobq_store_options *opts) {
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "store open: out is NULL");
	jobq_backend *b = NULL;
	int rc = jobq__backend_open_url(&b, url);
	if (rc < 0)
		return rc;
	return jobq_store_open_backend(out, b, opts);
}

void
jobq_store_close(jobq_store *s) {
	if (s == NULL)
		return;
	jobq_clock__unlisten(s->clock, wake_backend, s);
	s->backend->free(s->backend);
	jobq__free(s);
}

const char *
jobq_store_backend_name(const jobq_store *s) {
	return s->backend->name;
}

jobq_clock *
jobq_store_clock(const jobq_store *s) {
	return s->clock;
}

int
jobq_store_check(jobq_check_report **out, jobq_store *store, size_t max_messages) {
	if (out == NULL || store == NULL)
		return jobq_error_set(JOBQ_EINVAL, "store check: out and store are required");
	jobq_check_report *r = jobq__calloc(1, sizeof(*r));
	if (r == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "store check: out of memory");
	int rc = jobq__backend_check_store(r, store->backend, max_messages);
	if (rc < 0) {
		jobq_check_report_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

static int
cmp_names(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
jobq_store_list_queues(jobq_strings **out, jobq_store *store) {
	if (out == NULL || store == NULL)
		return jobq_error_set(JOBQ_EINVAL, "list queues: out and store are required");
	*out = NULL;
	jobq_strings *list = NULL;
	int rc = jobq__backend_list_queues(&list, store->backend);
	if (rc < 0) {
		jobq_strings_free(list);
		return rc;
	}
	if (list == NULL && (list = jobq__calloc(1, sizeof(*list))) == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "list queues: out of memory");
	if (list->count > 1)
		qsort(list->items, list->count, sizeof(*list->items), cmp_names);
	*out = list;
	return 0;
}

void
jobq_check_report_free(jobq_check_report *report) {
	if (report == NULL)
		return;
	jobq_strings_free(report->messages);
	jobq__free(report);
}

int
jobq_check_report__problem(jobq_check_report *report, size_t max_messages, const char *fmt, ...) {
	report->problems++;
	if (report->problems > max_messages)
		return 0;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return 0;
	size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	return jobq_strings__append(&report->messages, line, len);
}

void
jobq_store__new_token(jobq_store *s, char *buf, size_t size) {
	uint64_t n = atomic_fetch_add(&s->token_counter, 1) + 1;
	/* "<instance>:<n>", formatted by hand: this runs once per fetched job. */
	char digits[24];
	size_t nd = 0;
	do {
		digits[nd++] = (char)('0' + n % 10);
		n /= 10;
	} while (n != 0);
	size_t il = strlen(s->instance_id);
	if (il + 1 + nd + 1 > size) {
		if (size > 0)
			buf[0] = '\0';
		return;
	}
	memcpy(buf, s->instance_id, il);
	buf[il++] = ':';
	while (nd > 0)
		buf[il++] = digits[--nd];
	buf[il] = '\0';
}

/* --- queues ------------------------------------------------------------------------------- */

int
jobq_queue_open(jobq_queue **out, jobq_store *store, const char *name) {
	if (out == NULL || store == NULL)
		return jobq_error_set(JOBQ_EINVAL, "queue open: out and store are required");
	int rc = jobq__validate_queue_name(name);
	if (rc < 0)
		return rc;
	jobq_queue *q = jobq__calloc(1, sizeof(*q));
	if (q == NULL)
		return JOBQ_ENOMEM;
	q->store = store;
	q->name = jobq__strdup(name);
	if (q->name == NULL) {
		jobq__free(q);
		return JOBQ_ENOMEM;
	}
	if ((rc = store->backend->queue_open(&q->bq, store->backend, name)) < 0) {
		jobq__free(q->name);
		jobq__free(q);
		return rc;
	}
	pthread_mutex_init(&q->sender_mu, NULL);
	*out = q;
	return 0;
}

int
jobq_queue__enter_wait(jobq_queue *q) {
	atomic_fetch_add(&q->blocked, 1);
	if (atomic_load(&q->closed)) {
		atomic_fetch_sub(&q->blocked, 1);
		return jobq_error_set(JOBQ_ECLOSED, "queue '%s' is closed", q->name);
	}
	return 0;
}

void
jobq_queue__leave_wait(jobq_queue *q) {
	atomic_fetch_sub(&q->blocked, 1);
}

void
jobq_queue_close(jobq_queue *q) {
	if (q == NULL)
		return;
	atomic_store(&q->closed, 1);
	/* pending asynchronous adds are sent before the queue goes */
	jobq_add_sender__close(q);
	/* Wake blocking waits until they have all left: a wake-up can fall just before a wait. */
	while (atomic_load(&q->blocked) > 0) {
		jobq__backend_wake(q->store->backend);
		struct timespec ts = {0, 1000000L};
		nanosleep(&ts, NULL);
	}
	q->store->backend->queue_close(q->bq);
	pthread_mutex_destroy(&q->sender_mu);
	jobq__free(q->name);
	jobq__free(q);
}

const char *
jobq_queue_name(const jobq_queue *q) {
	return q->name;
}

jobq_store *
jobq_queue_store(const jobq_queue *q) {
	return q->store;
}

int64_t
jobq_queue__now(const jobq_queue *q) {
	return jobq_clock_now(q->store->clock);
}

/* Every public call on a queue starts here. */
int
jobq_queue__check(const jobq_queue *q, const char *what) {
	if (q == NULL)
		return jobq_error_set(JOBQ_EINVAL, "%s: queue is NULL", what);
	if (atomic_load(&q->closed))
		return jobq_error_set(JOBQ_ECLOSED, "%s: queue '%s' is closed", what, q->name);
	return 0;
}

/* Every public call that takes a job id checks it here: an id that cannot name a job (too
 * long, or the name of one of the queue's own keys) is not found, and never reaches the store. */
int
jobq_queue__check_id(const jobq_queue *q, const char *id, const char *what) {
	if (id == NULL || id[0] == '\0')
		return jobq_error_set(JOBQ_EINVAL, "%s: job id is empty", what);
	if (strlen(id) > JOBQ_ID_MAX)
		return jobq_error_set(JOBQ_ENOTFOUND,
		                      "%s: no job '%.40s...' (ids are at most %d bytes)", what, id,
		                      JOBQ_ID_MAX);
	const char *why = jobq__reserved_id(id);
	if (why != NULL)
		return jobq_error_set(JOBQ_ENOTFOUND,
		                      "%s: no job '%s' in queue '%s' (the id is reserved: it names "
		                      "one of the queue's own storage keys, %s)",
		                      what, id, q->name, why);
	return 0;
}

#define BACKEND(q) ((q)->store->backend)

/* --- adding ------------------------------------------------------------------------------- */

static const jobq_job_options default_job_options = JOBQ_JOB_OPTIONS_INIT;

int
jobq_queue__prepare_add(jobq_job_options *opts_out, const jobq_queue *q, const jobq_job_spec *spec,
                        int64_t now) {
	const jobq_job_options *opts = spec->opts ? spec->opts : &default_job_options;
	int rc;
	if ((rc = jobq__validate_job_name(spec->name)) < 0 ||
	    (rc = jobq__validate_job_options(opts)) < 0)
		return rc;
	if (spec->data == NULL && spec->len > 0)
		return jobq_error_set(JOBQ_EINVAL, "add: data is NULL but its length is %zu",
		                      spec->len);
	if (opts->dedup_keep_last && !(BACKEND(q)->caps & JOBQ_CAP_DEDUP_KEEP_LAST))
		return jobq_error_set(JOBQ_ENOTSUP,
		                      "add: the %s store has no dedup_keep_last (BullMQ "
		                      "keepLastIfActive) yet",
		                      BACKEND(q)->name);
	if (opts->size_limit > 0 && spec->len > opts->size_limit)
		return jobq_error_set(JOBQ_EINVAL,
		                      "add: data is %zu bytes, over the job's size limit of %zu",
		                      spec->len, opts->size_limit);
	if (BACKEND(q)->caps & JOBQ_CAP_JSON_DATA) {
		if (spec->len == 0)
			return jobq_error_set(JOBQ_EINVAL,
			                      "add: this store needs JSON data (BullMQ); got none");
		if ((rc = jobq__validate_json("job data", spec->data, spec->len)) < 0)
			return rc;
	}
	*opts_out = *opts;
	if (opts_out->timestamp == 0)
		opts_out->timestamp = now;
	/* A due time past JOBQ_TIME_MAX_MS is cut to it: the job stays delayed (the backends
	 * add the two, and must neither overflow nor make the job due). */
	if (opts_out->timestamp <= JOBQ_TIME_MAX_MS &&
	    opts_out->delay_ms > JOBQ_TIME_MAX_MS - opts_out->timestamp)
		opts_out->delay_ms = JOBQ_TIME_MAX_MS - opts_out->timestamp;
	return 0;
}

int
jobq_queue_add_bulk(jobq_job_id *out, int *outcomes, jobq_queue *q, const jobq_job_spec *jobs,
                    size_t n) {
	int rc = jobq_queue__check(q, "add");
	if (rc < 0)
		return rc;
	if (out == NULL || (jobs == NULL && n > 0))
		return jobq_error_set(JOBQ_EINVAL, "add: ids and jobs are required");
	if (n == 0)
		return 0;
	jobq_add_request one_req;
	jobq_job_options one_opts;
	int one_outcome;
	jobq_add_request *reqs = n == 1 ? &one_req : jobq__malloc(n * sizeof(*reqs));
	jobq_job_options *opts = n == 1 ? &one_opts : jobq__malloc(n * sizeof(*opts));
	int *outc = outcomes ? outcomes : (n == 1 ? &one_outcome : jobq__malloc(n * sizeof(int)));
	if (reqs == NULL || opts == NULL || outc == NULL) {
		rc = JOBQ_ENOMEM;
		goto done;
	}
	int64_t now = jobq_queue__now(q);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && jobs[i].opts == jobs[i - 1].opts && jobs[i].name == jobs[i - 1].name &&
		    jobs[i].data != NULL && jobs[i].len > 0 &&
		    !(BACKEND(q)->caps & JOBQ_CAP_JSON_DATA) &&
		    (reqs[i - 1].opts->size_limit == 0 ||
		     jobs[i].len <= reqs[i - 1].opts->size_limit)) {
			/* Same name and options as the previous job, already validated and copied:
			 * share them (a bulk add of one kind of job costs one validation). */
			reqs[i] = (jobq_add_request){jobs[i].name, jobs[i].data, jobs[i].len,
			                             reqs[i - 1].opts};
			continue;
		}
		if ((rc = jobq_queue__prepare_add(&opts[i], q, &jobs[i], now)) < 0) {
			if (n > 1)
				jobq_error_set(rc, "job %zu of %zu: %s", i + 1, n,
				               jobq_error_message());
			goto done;
		}
		reqs[i] = (jobq_add_request){jobs[i].name, jobs[i].data, jobs[i].len, &opts[i]};
	}
	rc = BACKEND(q)->add(out, outc, q->bq, reqs, n, now);
	if (rc >= 0)
		rc = n == 1 ? outc[0] : 0;
done:
	if (n > 1) {
		jobq__free(reqs);
		jobq__free(opts);
	}
	if (outc != outcomes && outc != &one_outcome)
		jobq__free(outc);
	return rc;
}

int
jobq_queue_add(jobq_job_id *out, jobq_queue *q, const char *name, const void *data, size_t len,
               const jobq_job_options *opts) {
	jobq_job_spec spec = {name, data, len, opts};
	return jobq_queue_add_bulk(out, NULL, q, &spec, 1);
}

/* --- reading ------------------------------------------------------------------------------ */

int
jobq_queue_get_job(jobq_job **out, jobq_queue *q, const char *id) {
	if (out != NULL)
		*out = NULL;
	int rc = jobq_queue__check(q, "get job");
	if (rc < 0 || (rc = jobq_queue__check_id(q, id, "get job")) < 0)
		return rc;
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "get job: out is NULL");
	*out = NULL;
	if ((rc = BACKEND(q)->get(out, q->bq, id)) < 0)
		return rc;
	if ((rc = jobq_job__attach(*out, q)) < 0) {
		jobq_job_free(*out);
		*out = NULL;
	}
	return rc;
}

int
jobq_queue_get_state(jobq_state *out, jobq_queue *q, const char *id) {
	jobq_job *job = NULL;
	int rc = jobq_queue_get_job(&job, q, id);
	if (rc < 0)
		return rc;
	*out = job->state;
	jobq_job_free(job);
	return 0;
}

int
jobq_queue_list(jobq_job_list **out, jobq_queue *q, jobq_state state, size_t offset, size_t limit) {
	int rc = jobq_queue__check(q, "list");
	if (rc < 0)
		return rc;
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "list: out is NULL");
	if (state <= JOBQ_STATE_UNKNOWN || state >= JOBQ_STATE__COUNT)
		return jobq_error_set(JOBQ_EINVAL, "list: invalid state %d", (int)state);
	*out = NULL;
	if ((rc = BACKEND(q)->list(out, q->bq, state, offset, limit)) < 0)
		return rc;
	if (*out == NULL)
		*out = jobq__calloc(1, sizeof(**out));
	if (*out == NULL)
		return JOBQ_ENOMEM;
	for (size_t i = 0; i < (*out)->count; i++)
		if ((rc = jobq_job__attach((*out)->jobs[i], q)) < 0) {
			jobq_job_list_free(*out);
			*out = NULL;
			return rc;
		}
	return 0;
}

int
jobq_queue_counts(jobq_counts *out, jobq_queue *q) {
	int rc = jobq_queue__check(q, "counts");
	if (rc < 0)
		return rc;
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "counts: out is NULL");
	memset(out, 0, sizeof(*out));
	return BACKEND(q)->counts(out, q->bq);
}

int
jobq_queue_is_paused(int *out, jobq_queue *q) {
	int rc = jobq_queue__check(q, "is paused");
	if (rc < 0)
		return rc;
	return BACKEND(q)->is_paused(out, q->bq);
}

int
jobq_queue_count_workers(jobq_queue *q) {
	int rc = jobq_queue__check(q, "count workers");
	if (rc < 0)
		return rc;
	return jobq__backend_count_workers(q->store->backend, q->bq);
}

int
jobq_queue_get_logs(jobq_strings **out, jobq_queue *q, const char *id, size_t start, size_t limit) {
	if (out != NULL)
		*out = NULL;
	int rc = jobq_queue__check(q, "get logs");
	if (rc < 0 || (rc = jobq_queue__check_id(q, id, "get logs")) < 0)
		return rc;
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "get logs: out is NULL");
	rc = BACKEND(q)->get_logs(out, q->bq, id, start, limit);
	if (rc >= 0 && *out == NULL && (*out = jobq__calloc(1, sizeof(**out))) == NULL)
		rc = JOBQ_ENOMEM;
	return rc;
}

/* --- administration ----------------------------------------------------------------------- */

int
jobq_queue_remove(jobq_queue *q, const char *id) {
	int rc = jobq_queue__check(q, "remove");
	if (rc < 0 || (rc = jobq_queue__check_id(q, id, "remove")) < 0)
		return rc;
	return BACKEND(q)->remove(q->bq, id, jobq_queue__now(q));
}

int
jobq_queue_pause(jobq_queue *q) {
	int rc = jobq_queue__check(q, "pause");
	return rc < 0 ? rc : BACKEND(q)->set_paused(q->bq, 1, jobq_queue__now(q));
}

int
jobq_queue_resume(jobq_queue *q) {
	int rc = jobq_queue__check(q, "resume");
	return rc < 0 ? rc : BACKEND(q)->set_paused(q->bq, 0, jobq_queue__now(q));
}

int
jobq_queue_drain(jobq_queue *q, int include_delayed) {
	int rc = jobq_queue__check(q, "drain");
	return rc < 0 ? rc : BACKEND(q)->drain(q->bq, include_delayed, jobq_queue__now(q));
}

int
jobq_queue_clean(jobq_strings **removed, jobq_queue *q, jobq_state state, int64_t grace_ms,
                 size_t limit) {
	int rc = jobq_queue__check(q, "clean");
	if (rc < 0)
		return rc;
	if (grace_ms < 0)
		return jobq_error_set(JOBQ_EINVAL, "clean: grace %lld ms is negative",
		                      (long long)grace_ms);
	switch (state) {
	case JOBQ_STATE_WAITING:
	case JOBQ_STATE_PRIORITIZED:
	case JOBQ_STATE_DELAYED:
	case JOBQ_STATE_ACTIVE:
	case JOBQ_STATE_COMPLETED:
	case JOBQ_STATE_FAILED:
	case JOBQ_STATE_PAUSED:
		break;
	default:
		return jobq_error_set(JOBQ_EINVAL, "clean: cannot clean state '%s'",
		                      jobq_state_name(state));
	}
	if (removed != NULL)
		*removed = NULL;
	return BACKEND(q)->clean(removed, q->bq, state, grace_ms, limit, jobq_queue__now(q));
}

int
jobq_queue_obliterate(jobq_queue *q, int force) {
	int rc = jobq_queue__check(q, "obliterate");
	return rc < 0 ? rc : BACKEND(q)->obliterate(q->bq, force, jobq_queue__now(q));
}

int
jobq_queue_promote(jobq_queue *q, const char *id) {
	int rc = jobq_queue__check(q, "promote");
	if (rc < 0 || (id != NULL && (rc = jobq_queue__check_id(q, id, "promote")) < 0))
		return rc;
	return BACKEND(q)->promote(q->bq, id, jobq_queue__now(q));
}

int
jobq_queue_retry(jobq_queue *q, const char *id) {
	int rc = jobq_queue__check(q, "retry");
	if (rc < 0 || (id != NULL && (rc = jobq_queue__check_id(q, id, "retry")) < 0))
		return rc;
	return BACKEND(q)->retry_failed(q->bq, id, jobq_queue__now(q));
}

int
jobq_queue_update_progress(jobq_queue *q, const char *id, const char *json) {
	int rc = jobq_queue__check(q, "progress");
	if (rc < 0 || (rc = jobq_queue__check_id(q, id, "progress")) < 0)
		return rc;
	if (json == NULL)
		return jobq_error_set(JOBQ_EINVAL, "progress: json is NULL");
	if ((rc = jobq__validate_json("progress", json, strlen(json))) < 0)
		return rc;
	return BACKEND(q)->progress(q->bq, id, NULL, json, jobq_queue__now(q));
}

int
jobq_queue_add_log(jobq_queue *q, const char *id, const char *line) {
	int rc = jobq_queue__check(q, "add log");
	if (rc < 0 || (rc = jobq_queue__check_id(q, id, "add log")) < 0)
		return rc;
	if (line == NULL)
		return jobq_error_set(JOBQ_EINVAL, "add log: line is NULL");
	jobq_job *job = NULL;
	if ((rc = BACKEND(q)->get(&job, q->bq, id)) < 0)
		return rc;
	int64_t keep = job->opts.keep_logs;
	jobq_job_free(job);
	return BACKEND(q)->add_log(q->bq, id, line, keep);
}

/* --- attempts: complete, fail, extend ------------------------------------------------------ */

jobq_keep
jobq__resolve_keep(const jobq_keep *job_keep, const jobq_keep *worker_keep) {
	if (job_keep != NULL && job_keep->mode != JOBQ_KEEP_DEFAULT)
		return *job_keep;
	if (worker_keep != NULL && worker_keep->mode != JOBQ_KEEP_DEFAULT)
		return *worker_keep;
	return (jobq_keep){JOBQ_KEEP_ALL, -1, -1};
}

int
jobq_queue__fail_job(jobq_queue *q, const jobq_job *job, const char *token, const char *reason,
                     unsigned int flags, const jobq_fail_policy *policy) {
	const jobq_job_options *o = &job->opts;
	uint32_t made = job->attempts_made + 1; /* counting the attempt that just failed */
	int64_t now = jobq_queue__now(q);
	int retry = !(flags & JOBQ_FAIL_UNRECOVERABLE) && job->deferred_failure == NULL &&
	            made < o->attempts;
	int64_t delay = 0;
	if (retry) {
		int rc = jobq__backoff_delay(&delay, &o->backoff, made, jobq__random01());
		if (rc == JOBQ_ENOTSUP) {
			/* A custom strategy: only the worker's callback knows it. */
			if (policy == NULL || policy->backoff_fn == NULL ||
			    policy->backoff_fn(&delay, job, made, o->backoff.custom_type, reason,
			                       policy->backoff_payload) < 0 ||
			    delay < 0)
				retry = 0;
			else if (o->backoff.max_delay_ms > 0 && delay > o->backoff.max_delay_ms)
				delay = o->backoff.max_delay_ms;
		}
	}
	if (delay > JOBQ_TIME_MAX_MS - now) /* a custom backoff's delay, as an add's */
		delay = JOBQ_TIME_MAX_MS - now;
	jobq_failure f = {
	    .reason = reason ? reason : "failed",
	    .stack = reason ? reason : "failed",
	    .retry_at_ms = retry ? now + delay : -1,
	    .keep =
	        jobq__resolve_keep(&o->remove_on_fail, policy ? policy->worker_keep_on_fail : NULL),
	    .attempts = o->attempts,
	    .metrics_max_points = policy ? policy->metrics_max_points : 0,
	    .stack_limit = o->stack_trace_limit,
	};
	int rc = BACKEND(q)->fail(q->bq, job->id, token, &f, now);
	if (rc < 0)
		return rc;
	if (!retry) {
		jobq_log_emit(JOBQ_LOG_WARN, "worker", q->name, job->id,
		              "job %s failed for good after %u attempt%s: %s", job->id, made,
		              made == 1 ? "" : "s", f.reason);
		return JOBQ_STATE_FAILED;
	}
	if (delay > 0)
		return JOBQ_STATE_DELAYED;
	return job->priority > 0 ? JOBQ_STATE_PRIORITIZED : JOBQ_STATE_WAITING;
}

/*
 * Continues the job schedulers whose iterations are among the `n` jobs just fetched (BullMQ 6:
 * the worker that fetches an iteration creates the next one, before running it). A job whose
 * step failed for a reason that may pass (I/O) goes back to waiting and leaves the array, so
 * that no iteration runs without its successor; one whose scheduler cannot be evaluated
 * (JOBQ_EINVAL, JOBQ_ENOTSUP) runs, and its series ends. Returns how many jobs are kept, or the
 * failed step's error when none is (the caller backs off as after a failed fetch).
 */
static int
continue_schedulers(jobq_queue *q, jobq_job **jobs, int n) {
	int kept = 0, err = 0;
	for (int i = 0; i < n; i++) {
		jobq_job *job = jobs[i];
		if (job->scheduler_id != NULL) {
			int rc = jobq__backend_scheduler_next(BACKEND(q), q->bq, job,
			                                      jobq_queue__now(q));
			if (rc < 0 && rc != JOBQ_EINVAL && rc != JOBQ_ENOTSUP) {
				char why[256];
				snprintf(why, sizeof(why), "%s", jobq_error_message());
				(void)BACKEND(q)->release(q->bq, job->id, job->token,
				                          jobq_queue__now(q));
				jobq_job_free(job);
				err = jobq_error_set(rc, "%s", why);
				continue;
			}
		}
		jobs[kept++] = job;
	}
	return kept > 0 || err == 0 ? kept : err;
}

int
jobq_queue__fetch(jobq_job **out, jobq_fetch_info *info, jobq_queue *q, const char *token,
                  int64_t lock_ms, const jobq_fail_policy *policy, struct jobq_job_runtime *rt) {
	/* The job's runtime is allocated before the fetch: a fetched job is locked, and running
	 * out of memory after that would leave it active under a token nobody holds. */
	struct jobq_job_runtime *own = NULL;
	if (rt == NULL && (own = jobq__calloc(1, sizeof(*own))) == NULL)
		return JOBQ_ENOMEM;
	/* Memory and LMDB fail jobs past their stall limit inside the fetch (with the policy in
	 * `info`); Redis hands them out marked: fail them here and look again. */
	jobq_fetch_info own_info = {0};
	if (info == NULL)
		info = &own_info;
	info->keep_on_fail = policy != NULL ? policy->worker_keep_on_fail : NULL;
	info->metrics_max_points = policy != NULL ? policy->metrics_max_points : 0;
	for (;;) {
		jobq_job *job = NULL;
		int rc = BACKEND(q)->fetch(&job, info, q->bq, token, lock_ms, jobq_queue__now(q));
		if (rc == 0 && job->scheduler_id != NULL &&
		    (rc = continue_schedulers(q, &job, 1)) > 0)
			rc = 0;
		if (rc < 0) {
			jobq__free(own);
			return rc;
		}
		if (job->deferred_failure == NULL) {
			if (rt != NULL) {
				jobq_job__attach_to(job, rt, q);
			} else {
				own->queue = q;
				job->rt = own;
			}
			*out = job;
			return 0;
		}
		rc = jobq_queue__fail_job(q, job, token, job->deferred_failure,
		                          JOBQ_FAIL_UNRECOVERABLE, policy);
		jobq_job_free(job);
		if (rc < 0 && !jobq__lock_gone(rc)) {
			jobq__free(own);
			return rc;
		}
	}
}

int
jobq_queue__can_batch(const jobq_queue *q) {
	const jobq_backend *b = BACKEND(q);
	return jobq__backend_can_complete_fetch(b);
}

int
jobq_queue__complete_fetch(jobq_job **jobs, jobq_fetch_info *info, jobq_queue *q,
                           jobq_completion *done, size_t ndone, const char *const *tokens,
                           size_t max, int64_t lock_ms) {
	jobq_backend *b = BACKEND(q);
	int64_t now = jobq_queue__now(q);
	if (jobq_queue__can_batch(q)) {
		int n =
		    b->complete_fetch(jobs, info, q->bq, done, ndone, tokens, max, lock_ms, now);
		return n > 0 ? continue_schedulers(q, jobs, n) : n;
	}
	/* The fallback: one step per completion, then one fetch. */
	for (size_t i = 0; i < ndone; i++)
		done[i].rc = b->complete(q->bq, done[i].id, done[i].token, done[i].result_json,
		                         &done[i].keep, now);
	if (max == 0)
		return 0;
	if (ndone > 0)
		now = jobq_queue__now(q);
	int rc = b->fetch(&jobs[0], info, q->bq, tokens[0], lock_ms, now);
	if (rc == JOBQ_ENOJOB)
		return 0;
	return rc < 0 ? rc : continue_schedulers(q, jobs, 1);
}

int
jobq_queue_fetch(jobq_job **out, jobq_queue *q, int64_t lock_ms) {
	int rc = jobq_queue__check(q, "fetch");
	if (rc < 0)
		return rc;
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "fetch: out is NULL");
	if ((rc = jobq__validate_duration("fetch", "lock_ms", lock_ms)) < 0)
		return rc;
	char token[64];
	jobq_store__new_token(q->store, token, sizeof(token));
	*out = NULL;
	return jobq_queue__fetch(out, NULL, q, token, lock_ms, NULL, NULL);
}

static int
complete_with(jobq_queue *q, const char *id, const char *token, const char *result_json,
              const jobq_keep *keep) {
	int rc;
	if (result_json == NULL)
		result_json = "null";
	else if ((rc = jobq__validate_json("result", result_json, strlen(result_json))) < 0)
		return rc;
	return BACKEND(q)->complete(q->bq, id, token, result_json, keep, jobq_queue__now(q));
}

static int
check_attempt_args(jobq_queue *q, const char *id, const char *token, const char *what) {
	int rc = jobq_queue__check(q, what);
	if (rc < 0 || (rc = jobq_queue__check_id(q, id, what)) < 0)
		return rc;
	if (token == NULL || token[0] == '\0')
		return jobq_error_set(JOBQ_EINVAL, "%s: token is empty", what);
	return 0;
}

int
jobq_queue_complete(jobq_queue *q, const char *id, const char *token, const char *result_json) {
	int rc = check_attempt_args(q, id, token, "complete");
	if (rc < 0)
		return rc;
	jobq_job *job = NULL;
	if ((rc = BACKEND(q)->get(&job, q->bq, id)) < 0)
		return rc;
	jobq_keep keep = jobq__resolve_keep(&job->opts.remove_on_complete, NULL);
	jobq_job_free(job);
	return complete_with(q, id, token, result_json, &keep);
}

int
jobq_queue_fail(jobq_queue *q, const char *id, const char *token, const char *reason,
                unsigned int flags) {
	int rc = check_attempt_args(q, id, token, "fail");
	if (rc < 0)
		return rc;
	jobq_job *job = NULL;
	if ((rc = BACKEND(q)->get(&job, q->bq, id)) < 0)
		return rc;
	rc = jobq_queue__fail_job(q, job, token, reason, flags, NULL);
	jobq_job_free(job);
	return rc;
}

int
jobq_queue_extend_lock(jobq_queue *q, const char *id, const char *token, int64_t lock_ms) {
	int rc = check_attempt_args(q, id, token, "extend lock");
	if (rc < 0)
		return rc;
	if ((rc = jobq__validate_duration("extend lock", "lock_ms", lock_ms)) < 0)
		return rc;
	return BACKEND(q)->extend_lock(q->bq, id, token, lock_ms, jobq_queue__now(q));
}

static int
check_fetched(const jobq_job *job, const char *what) {
	if (job == NULL)
		return jobq_error_set(JOBQ_EINVAL, "%s: job is NULL", what);
	if (job->rt == NULL || job->rt->queue == NULL || job->token == NULL)
		return jobq_error_set(JOBQ_EINVAL,
		                      "%s: job %s was not fetched (it has no lock token)", what,
		                      job->id ? job->id : "?");
	return 0;
}

int
jobq_job_complete(jobq_job *job, const char *result_json) {
	int rc = check_fetched(job, "complete");
	if (rc < 0 || (rc = jobq_queue__check(job->rt->queue, "complete")) < 0)
		return rc;
	jobq_keep keep = jobq__resolve_keep(&job->opts.remove_on_complete, NULL);
	return complete_with(job->rt->queue, job->id, job->token, result_json, &keep);
}

int
jobq_job_fail(jobq_job *job, const char *reason, unsigned int flags) {
	int rc = check_fetched(job, "fail");
	if (rc < 0 || (rc = jobq_queue__check(job->rt->queue, "fail")) < 0)
		return rc;
	return jobq_queue__fail_job(job->rt->queue, job, job->token, reason, flags, NULL);
}

int
jobq_job_extend_lock(jobq_job *job, int64_t lock_ms) {
	int rc = check_fetched(job, "extend lock");
	if (rc < 0)
		return rc;
	return jobq_queue_extend_lock(job->rt->queue, job->id, job->token, lock_ms);
}

int
jobq_queue_check_stalled(jobq_queue *q, uint32_t max_stalled) {
	int rc = jobq_queue__check(q, "check stalled");
	if (rc < 0)
		return rc;
	jobq_strings *recovered = NULL;
	rc = BACKEND(q)->reap_stalled(jobq_log_enabled() ? &recovered : NULL, q->bq, max_stalled, 0,
	                              jobq_queue__now(q));
	jobq__log_stalled(q, recovered);
	return rc;
}

void
jobq__log_stalled(const jobq_queue *q, jobq_strings *recovered) {
	if (recovered == NULL)
		return;
	for (size_t i = 0; i < recovered->count; i++)
		jobq_log_emit(
		    JOBQ_LOG_WARN, "reaper", q->name, recovered->items[i],
		    "job %s stalled (its lock expired while active): moved back to waiting "
		    "or failed past its stall limit",
		    recovered->items[i]);
	jobq_strings_free(recovered);
}
