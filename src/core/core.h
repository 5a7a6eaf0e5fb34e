/*
 * Internal declarations shared by the files of src/core. Never included by backends.
 */
#ifndef JOBQ_CORE_H
#define JOBQ_CORE_H

#include <pthread.h>
#include <stdatomic.h>

#include "jobq.h"
#include "jobq/sys/backend.h"

/* --- clock (clock.c) ---------------------------------------------------------------------- */

typedef void (*jobq_clock_listener_fn)(void *arg);
/* Calls `fn(arg)` after every advance of a manual clock (no-op for the system clock). */
int jobq_clock__listen(jobq_clock *clock, jobq_clock_listener_fn fn, void *arg);
void jobq_clock__unlisten(jobq_clock *clock, jobq_clock_listener_fn fn, void *arg);
int jobq_clock__is_manual(const jobq_clock *clock);
/* Monotonic real time in ms (for real-time deadlines) and in us. */
int64_t jobq_clock__monotonic_ms(void);
int64_t jobq_clock__monotonic_us(void);
/* A timespec for pthread_cond_timedwait on a CLOCK_MONOTONIC condvar, `ms` from now. */
void jobq_clock__deadline(struct timespec *ts, int64_t ms);
/* Initializes a condvar that waits on CLOCK_MONOTONIC. */
int jobq_clock__cond_init(pthread_cond_t *cond);

/* --- validation (validate.c) -------------------------------------------------------------- */

int jobq__validate_queue_name(const char *name);
int jobq__validate_job_name(const char *name);
int jobq__validate_custom_id(const char *id);
/* Why `id` cannot name a job (it names one of the queue's own storage keys), or NULL. */
const char *jobq__reserved_id(const char *id);
int jobq__validate_job_options(const jobq_job_options *opts);
/* A keep policy (remove-on-complete / remove-on-fail); `what` names the field in the error. */
int jobq__validate_keep(const jobq_keep *k, const char *what);
int jobq__validate_json(const char *what, const char *json, size_t len);
/* A lock time or period: 1..JOBQ_TIME_MAX_MS, else JOBQ_EINVAL naming `what` and `field`. */
int jobq__validate_duration(const char *what, const char *field, int64_t ms);

/* --- retry policy (retry.c) --------------------------------------------------------------- */

/*
 * The delay before retrying attempt `attempts_made` (1-based count including the one that just
 * failed) under `backoff`; `rand01` in [0,1) drives jitter. Returns 0 and sets *delay_ms, or
 * JOBQ_ENOTSUP for a custom type (the caller asks the worker's callback).
 */
int jobq__backoff_delay(int64_t *delay_ms, const jobq_backoff *backoff, uint32_t attempts_made,
                        double rand01);
/* A uniform random number in [0,1), thread-safe. */
double jobq__random01(void);

/* --- stores and queues (store.c) ---------------------------------------------------------- */

struct jobq_store {
	jobq_backend *backend;
	jobq_clock *clock;
	atomic_uint_fast64_t token_counter;
	char instance_id[24]; /* random, makes lock tokens unique across processes */
};

struct jobq_queue {
	jobq_store *store;
	jobq_backend_queue *bq;
	char *name;
	atomic_int closed;
	atomic_int blocked;             /* threads inside a blocking wait on this queue */
	pthread_mutex_t sender_mu;      /* guards the creation of `sender` */
	struct jobq_add_sender *sender; /* asynchronous adds (add_async.c); NULL until the first */
};

/* Validates one add and fills `opts_out` (a copy with the timestamp set to `now` if unset). */
int jobq_queue__prepare_add(jobq_job_options *opts_out, const jobq_queue *q,
                            const jobq_job_spec *spec, int64_t now);

/* --- asynchronous adds (add_async.c) ------------------------------------------------------- */

/* Sends what is pending, stops the sender thread and frees it (queue close). */
void jobq_add_sender__close(jobq_queue *q);

/* Brackets a blocking wait, so that close can wait for it to leave. */
int jobq_queue__enter_wait(jobq_queue *q);
void jobq_queue__leave_wait(jobq_queue *q);

/* A fresh lock token "<instance>:<n>" written to buf (at least 48 bytes). */
void jobq_store__new_token(jobq_store *s, char *buf, size_t size);
int64_t jobq_queue__now(const jobq_queue *q);
/* The checks every public call makes first (store.c): the queue is open; the id can name a job
 * (empty: EINVAL; too long or reserved: ENOTFOUND). `what` starts the message. */
int jobq_queue__check(const jobq_queue *q, const char *what);
int jobq_queue__check_id(const jobq_queue *q, const char *id, const char *what);

/*
 * Fails an attempt of a fetched job: applies attempts, backoff (and the worker's callback),
 * unrecoverable flag and keep policy. `worker_keep` may be NULL. Returns the new state or < 0.
 */
typedef struct jobq_fail_policy {
	const jobq_keep *worker_keep_on_fail;
	jobq_backoff_fn backoff_fn;
	void *backoff_payload;
	uint32_t metrics_max_points; /* the worker's metrics_max_data_points (0: none) */
} jobq_fail_policy;
/* Logs each job of `recovered` (a stalled check's result; NULL: none) and frees it. */
void jobq__log_stalled(const jobq_queue *q, jobq_strings *recovered);
int jobq_queue__fail_job(jobq_queue *q, const jobq_job *job, const char *token, const char *reason,
                         unsigned int flags, const jobq_fail_policy *policy);
/* A worker's metrics_max_data_points: JOBQ_EINVAL past JOBQ_METRICS_MAX_POINTS (metrics.c). */
int jobq__validate_metrics_points(uint32_t points);
/* --- worker setup (worker_setup.c) ----------------------------------------------------------- */

/* Copies the caller's options (any version taken) into a whole struct of this version, and
 * validates them. */
int jobq_worker__options_copy(jobq_worker_options *out, const jobq_worker_options *in);
/* A worker's identity: its name (never NULL once set up) and, while it runs, the backend's
 * record of its presence (NULL: none). */
typedef struct jobq_worker_ident {
	char *name;
	void *presence;
} jobq_worker_ident;
/* The default name "<host>:<pid>"; a new name (validated, copied). */
int jobq_worker__ident_init(jobq_worker_ident *id);
int jobq_worker__ident_rename(jobq_worker_ident *id, const char *name);
/* Makes the worker visible on the store (a failure is logged, not fatal), and ends that. */
void jobq_worker__ident_attach(jobq_worker_ident *id, jobq_queue *q);
void jobq_worker__ident_detach(jobq_worker_ident *id, jobq_queue *q);
void jobq_worker__ident_free(jobq_worker_ident *id);

/* Resolves a keep policy: the job's own, else the worker's, else keep all. */
jobq_keep jobq__resolve_keep(const jobq_keep *job_keep, const jobq_keep *worker_keep);
/* Fetch for workers and manual mode: fails deferred-failure jobs and fetches again. */
/* `rt` (optional): the caller's runtime to attach the job to (see jobq_job__attach_to). */
int jobq_queue__fetch(jobq_job **out, jobq_fetch_info *info, jobq_queue *q, const char *token,
                      int64_t lock_ms, const jobq_fail_policy *policy, struct jobq_job_runtime *rt);

/*
 * Whether a lock-checked call (extend, complete, fail, release, progress with a token) was
 * refused because the caller no longer holds the job: it is gone (JOBQ_ENOTFOUND), no longer
 * active (JOBQ_ESTATE), or its lock expired or is another token's (JOBQ_ELOCKLOST); the
 * contract is in include/jobq/sys/backend.h.
 */
static inline int
jobq__lock_gone(int rc) {
	return rc == JOBQ_ELOCKLOST || rc == JOBQ_ESTATE || rc == JOBQ_ENOTFOUND;
}

/* Whether the backend completes and fetches in batches (the optional complete_fetch slot). */
int jobq_queue__can_batch(const jobq_queue *q);
/*
 * A worker held back by the rate limiter (limits.c). `until` is the worker's "no fetch before"
 * time on the store's clock (0: none). rate_limit_left: ms left of it (clears it when over).
 * rate_limited: a handler called jobq_job_rate_limit(ms): gives `job` back (release) and sets
 * `until` to now + ms. rate_limit_wait: sleeps on `cv` (under `mu`, which a manual clock's
 * advance and the worker's stop signal) until `until`, else `window_end`, at most 30 s
 * (BullMQ's maximumRateLimitDelay), or until `stopping`.
 */
int64_t jobq__rate_limit_left(jobq_queue *q, atomic_llong *until);
void jobq__rate_limited(jobq_queue *q, const jobq_job *job, int64_t ms, atomic_llong *until);
void jobq__rate_limit_wait(jobq_queue *q, int64_t window_end, atomic_llong *until,
                           pthread_mutex_t *mu, pthread_cond_t *cv, const atomic_int *stopping);
/* A handler thread's next batch size after a full batch of `n` jobs that ran in `took_us`
 * (worker.c). */
size_t jobq_worker__next_batch_size(size_t n, int64_t took_us);
/*
 * Completes `done` and fetches up to `max` jobs (the i-th locked with tokens[i]) in one
 * backend step, or, without complete_fetch, completes one by one and fetches at most one.
 * Returns the number fetched (0: none) or < 0; each done[i].rc gets its outcome. The jobs
 * are not attached, and may carry a deferred failure.
 */
int jobq_queue__complete_fetch(jobq_job **jobs, jobq_fetch_info *info, jobq_queue *q,
                               jobq_completion *done, size_t ndone, const char *const *tokens,
                               size_t max, int64_t lock_ms);

/* --- jobs (job.c) ------------------------------------------------------------------------- */

/* What the core attaches to a job handed to a handler or fetched in manual mode. */
struct jobq_job_runtime {
	jobq_queue *queue;
	char *result; /* set by jobq_job_set_result */
	char *error;  /* set by jobq_job_set_error */
	unsigned int error_flags;
	const atomic_int *cancelled; /* owned by the worker, or NULL */
	atomic_int lock_lost;
	int borrowed;          /* owned by the caller of jobq_job__attach_to, not by the job */
	int64_t rate_limit_ms; /* set by jobq_job_rate_limit: give the job back, wait this long */
};

/* Gives `job` a runtime of its own (allocated; freed with the job). */
int jobq_job__attach(jobq_job *job, jobq_queue *q);
/* Gives `job` the caller's runtime `rt` (reset here), which outlives the job's use. */
void jobq_job__attach_to(jobq_job *job, struct jobq_job_runtime *rt, jobq_queue *q);
/* Lets the calling thread keep freed jobs for reuse (on), or frees what it kept (off). */
void jobq_job__cache_enable(int on);
/* Frees what the job's runtime holds (and the runtime if the job owns it); rt = NULL. */
void jobq_job__detach(jobq_job *job);

#endif
