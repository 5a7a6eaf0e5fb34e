/**
 * @file
 * jobq — stores and queues. A store is one storage backend (opened by URL); it holds any
 * number of named queues. Thread safety: stores and queues may be used from any number of
 * threads at once.
 */
#ifndef JOBQ_QUEUE_H
#define JOBQ_QUEUE_H

#include "common.h"
#include "clock.h"
#include "job.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A store: one storage backend, opened by URL, holding named queues (opaque). */
typedef struct jobq_store jobq_store;
/** A handle on one named queue of a store (opaque). */
typedef struct jobq_queue jobq_queue;

/** Options of jobq_store_open; initialise with JOBQ_STORE_OPTIONS_INIT. */
typedef struct jobq_store_options {
	unsigned int version; /**< JOBQ_STORE_OPTIONS_VERSION */
	jobq_clock *clock;    /**< NULL: the system clock. Must outlive the store. */
} jobq_store_options;

/** The version of jobq_store_options this header defines. */
#define JOBQ_STORE_OPTIONS_VERSION 1
/** The defaults of jobq_store_options. */
#define JOBQ_STORE_OPTIONS_INIT                                                                    \
	{ JOBQ_STORE_OPTIONS_VERSION, NULL }
/** Fills `opts` with the defaults. JOBQ_EVERSION if `version` is not supported. */
JOBQ_EXTERN int jobq_store_options_init(jobq_store_options *opts, unsigned int version);

/**
 * Opens a store by URL: `mem://` (private), `mem://NAME` (shared by every handle of NAME in
 * this process), `lmdb:///abs/dir`, `lmdb:rel/dir`, `redis://[user:pass@]host:port[/db]
 * [?prefix=bull]`, `redis+unix:///path.sock`. JOBQ_EINVAL for a malformed URL,
 * JOBQ_ENOTSUP for a backend not built in. Thread safety: any thread.
 */
JOBQ_EXTERN int jobq_store_open(jobq_store **out, const char *url, const jobq_store_options *opts);
/**
 * Writes `url` into `out` (`size` bytes, always NUL-terminated when `size` > 0) with its
 * password hidden, for messages and logs: `redis://user:***@host:6379`, `?password=***`.
 * Returns the length of the whole result, as snprintf does. Every message of the library that
 * quotes a store URL quotes it this way. Thread safety: any thread.
 */
JOBQ_EXTERN size_t jobq_url_redact(char *out, size_t size, const char *url);
/** Opens a store over a backend built by the caller; takes ownership of `backend` even on failure.
 */
JOBQ_EXTERN int jobq_store_open_backend(jobq_store **out, jobq_backend *backend,
                                        const jobq_store_options *opts);
/** Closes the store. Close its workers and queues first. NULL is a no-op. */
JOBQ_EXTERN void jobq_store_close(jobq_store *store);
/** The backend's name: "memory", "lmdb" or "redis". */
JOBQ_EXTERN const char *jobq_store_backend_name(const jobq_store *store);
/** The clock the store reads time from. */
JOBQ_EXTERN jobq_clock *jobq_store_clock(const jobq_store *store);

/** What jobq_store_check examined and found. Free with jobq_check_report_free(). */
typedef struct jobq_check_report {
	uint64_t queues;   /**< queues examined */
	uint64_t jobs;     /**< job records examined */
	uint64_t entries;  /**< index, running, dedup, log and event entries examined */
	uint64_t problems; /**< problems found; 0: the store is consistent as far as it can tell */
	/** One line per problem, the first `max_messages` of them (NULL when there are none),
	 * e.g. "queue 'mail': job 17: in the waiting index but its record says active". */
	jobq_strings *messages;
} jobq_check_report;

/**
 * Checks the store's own consistency, in one read snapshot (other processes and threads may
 * keep working meanwhile): every record decodes, every index entry points to an existing
 * record in that index's state, every record is in exactly the index its state names, and
 * every queue's counters equal its index sizes. It finds damage that the storage engine does
 * not (LMDB has no checksums: bytes changed inside a page are read as they are). It repairs
 * nothing. Returns 0 when the check ran, whatever it found (see `(*out)->problems`), or a
 * negative code when it could not: JOBQ_ENOTSUP for a backend without a check (memory,
 * Redis), JOBQ_EIO for a store that cannot be read. Keeps the first `max_messages` problem
 * lines (0: only counts them). Thread safety: any thread.
 */
JOBQ_EXTERN int jobq_store_check(jobq_check_report **out, jobq_store *store, size_t max_messages);
/** Frees a report. NULL is a no-op. Thread safety: any thread. */
JOBQ_EXTERN void jobq_check_report_free(jobq_check_report *report);

/**
 * The names of the queues `store` holds, sorted (byte order); an empty store gives an empty
 * list. Memory: the queues opened in this instance; LMDB: every queue with jobs or settings;
 * Redis: every queue under the URL's prefix, found with SCAN (not blocking the server).
 * Free with jobq_strings_free(). Thread safety: any thread.
 */
JOBQ_EXTERN int jobq_store_list_queues(jobq_strings **out, jobq_store *store);

/**
 * Opens the queue `name` (1..JOBQ_QUEUE_NAME_MAX bytes of printable characters, no ':').
 * The store must outlive the queue.
 */
JOBQ_EXTERN int jobq_queue_open(jobq_queue **out, jobq_store *store, const char *name);
/**
 * Closes the handle. Close and free its workers and subscriptions first, and call it only when
 * no other thread is inside a call on `q`, except blocking waits (jobq_queue_wait_job,
 * jobq_events_read), which return JOBQ_ECLOSED. NULL is a no-op.
 */
JOBQ_EXTERN void jobq_queue_close(jobq_queue *q);
/** The queue's name. */
JOBQ_EXTERN const char *jobq_queue_name(const jobq_queue *q);
/** The store the queue belongs to. */
JOBQ_EXTERN jobq_store *jobq_queue_store(const jobq_queue *q);

/* --- adding jobs ------------------------------------------------------------------------- */

/** What an add did. */
typedef enum jobq_add_outcome {
	JOBQ_ADD_CREATED = 0, /**< a new job */
	JOBQ_ADD_DUPLICATE,   /**< the custom id existed: its job is returned, nothing added */
	JOBQ_ADD_DEDUPLICATED /**< the dedup id had a live owner: the owner is returned */
} jobq_add_outcome;

/**
 * Adds a job. `opts` NULL means defaults. On success `out` holds the new (or existing) id and
 * the return value is a jobq_add_outcome (>= 0). Thread safety: any thread.
 */
JOBQ_EXTERN int jobq_queue_add(jobq_job_id *out, jobq_queue *q, const char *name, const void *data,
                               size_t len, const jobq_job_options *opts);

/** One job of jobq_queue_add_bulk. */
typedef struct jobq_job_spec {
	const char *name;             /**< the job's name */
	const void *data;             /**< its data (JSON text for BullMQ interop) */
	size_t len;                   /**< bytes of data */
	const jobq_job_options *opts; /**< NULL: defaults */
} jobq_job_spec;

/**
 * Adds `n` jobs in one step: all are added or, on error, none. `out` (n entries) gets the ids
 * and `outcomes` (optional, n entries) each job's jobq_add_outcome.
 */
JOBQ_EXTERN int jobq_queue_add_bulk(jobq_job_id *out, int *outcomes, jobq_queue *q,
                                    const jobq_job_spec *jobs, size_t n);

/**
 * The outcome of an asynchronous add: `rc` 0 with the job's id and its jobq_add_outcome, or
 * `rc` < 0 when the job was not added (`id` NULL; jobq_error_message() on this thread words
 * the error). Runs once per add, on the queue's sender thread, in the order of the adds.
 */
typedef void (*jobq_add_done_fn)(void *ctx, int rc, const char *id, int outcome);

/**
 * Adds a job without waiting for the store. The job is validated and copied now: bad input
 * returns its error here and nothing is queued. The adds pending on this queue handle are then
 * sent together, as many as have arrived, in one step of the store (one script call on Redis,
 * one transaction and one sync on LMDB), by a sender thread the queue starts at its first
 * asynchronous add; `done` (optional) gets each outcome. Blocks while
 * JOBQ_ADD_ASYNC_MAX_PENDING adds are pending (back-pressure). An add is durable, and visible
 * to workers, once its `done` has run, not when this returns. A failed step fails every add
 * in it (a store error such as a lost connection), except bad input found by the store,
 * which fails only that job: the others are sent again one by one.
 * Thread safety: any thread, including from a `done` callback (which never blocks for room).
 */
JOBQ_EXTERN int jobq_queue_add_async(jobq_queue *q, const char *name, const void *data, size_t len,
                                     const jobq_job_options *opts, jobq_add_done_fn done,
                                     void *ctx);
/** Pending asynchronous adds per queue handle beyond which jobq_queue_add_async blocks. */
#define JOBQ_ADD_ASYNC_MAX_PENDING 8192

/**
 * Waits until every asynchronous add made on `q` before this call has its outcome. Returns 0,
 * the first error an add failed with since the previous flush (its callback saw it too), or
 * JOBQ_ETIMEDOUT after `timeout_ms` (< 0: no limit). Not from a `done` callback (JOBQ_EINVAL).
 * jobq_queue_close flushes too.
 */
JOBQ_EXTERN int jobq_queue_flush(jobq_queue *q, int64_t timeout_ms);

/* --- reading ----------------------------------------------------------------------------- */

/** Gets a job with every field. JOBQ_ENOTFOUND if it does not exist. */
JOBQ_EXTERN int jobq_queue_get_job(jobq_job **out, jobq_queue *q, const char *id);
/** The state of job `id`. JOBQ_ENOTFOUND if it does not exist. */
JOBQ_EXTERN int jobq_queue_get_state(jobq_state *out, jobq_queue *q, const char *id);

/** Jobs returned by jobq_queue_list; free with jobq_job_list_free(). */
typedef struct jobq_job_list {
	size_t count;    /**< number of jobs */
	jobq_job **jobs; /**< `count` jobs, owned by the list */
} jobq_job_list;
/** Frees a list and its jobs. NULL is a no-op. */
JOBQ_EXTERN void jobq_job_list_free(jobq_job_list *list);

/**
 * Lists jobs in `state`, skipping `offset`, at most `limit`. Order: waiting, prioritized,
 * delayed and active in the order they run (next first); completed and failed newest first.
 */
JOBQ_EXTERN int jobq_queue_list(jobq_job_list **out, jobq_queue *q, jobq_state state, size_t offset,
                                size_t limit);

/** Number of jobs in each state of a queue. */
typedef struct jobq_counts {
	uint64_t waiting;          /**< waiting jobs */
	uint64_t active;           /**< active jobs */
	uint64_t delayed;          /**< delayed jobs */
	uint64_t prioritized;      /**< prioritized jobs */
	uint64_t completed;        /**< completed jobs kept */
	uint64_t failed;           /**< failed jobs kept */
	uint64_t paused;           /**< jobs in the legacy BullMQ 5 paused list; 0 elsewhere */
	uint64_t waiting_children; /**< parents of flows waiting for their children */
} jobq_counts;
/** Counts the queue's jobs in each state. */
JOBQ_EXTERN int jobq_queue_counts(jobq_counts *out, jobq_queue *q);
/** Sets `*out` non-zero if the queue is paused. */
JOBQ_EXTERN int jobq_queue_is_paused(int *out, jobq_queue *q);
/** How many workers (from any process) are connected to the queue now: a count >= 0, or
 * JOBQ_ENOTSUP where the backend cannot know (memory, LMDB). Redis counts the named
 * connections BullMQ's getWorkers counts, so Node workers are included. */
JOBQ_EXTERN int jobq_queue_count_workers(jobq_queue *q);

/** Log lines of a job, from `start` (0-based), at most `limit` (0: all). */
JOBQ_EXTERN int jobq_queue_get_logs(jobq_strings **out, jobq_queue *q, const char *id, size_t start,
                                    size_t limit);

/* --- administration ---------------------------------------------------------------------- */

/** Removes a job in any state but active-and-locked (JOBQ_ESTATE). JOBQ_ENOTFOUND if absent. */
JOBQ_EXTERN int jobq_queue_remove(jobq_queue *q, const char *id);
/** Pause: fetching stops, adds continue. Resume restarts fetching. Both emit events. */
JOBQ_EXTERN int jobq_queue_pause(jobq_queue *q);
/** Resumes a paused queue: workers fetch again. */
JOBQ_EXTERN int jobq_queue_resume(jobq_queue *q);
/** Removes every waiting and prioritized job, and delayed ones when `include_delayed`. */
JOBQ_EXTERN int jobq_queue_drain(jobq_queue *q, int include_delayed);
/**
 * Removes up to `limit` (0: no limit) jobs in `state` older than `grace_ms`; returns their ids
 * in `removed` (optional). Active jobs are removed only if unlocked.
 */
JOBQ_EXTERN int jobq_queue_clean(jobq_strings **removed, jobq_queue *q, jobq_state state,
                                 int64_t grace_ms, size_t limit);
/** Deletes the queue and all its jobs. Refuses (JOBQ_ESTATE) with active jobs unless `force`. */
JOBQ_EXTERN int jobq_queue_obliterate(jobq_queue *q, int force);
/** Makes a delayed job ready now; `id` NULL promotes all. Returns how many were promoted. */
JOBQ_EXTERN int jobq_queue_promote(jobq_queue *q, const char *id);
/** Moves a failed job back to waiting; `id` NULL retries all failed. Returns how many. */
JOBQ_EXTERN int jobq_queue_retry(jobq_queue *q, const char *id);
/** Progress (JSON text) of any job; emits a `progress` event. */
JOBQ_EXTERN int jobq_queue_update_progress(jobq_queue *q, const char *id, const char *json);
/** Appends a log line; returns the number of lines kept. */
JOBQ_EXTERN int jobq_queue_add_log(jobq_queue *q, const char *id, const char *line);

/* --- manual mode ------------------------------------------------------------------------- */

/**
 * Fetches the next job (waiting before prioritized; due delayed jobs are promoted first) and
 * locks it for `lock_ms` (1..JOBQ_TIME_MAX_MS, else JOBQ_EINVAL) with a fresh token
 * (jobq_job_token). JOBQ_ENOJOB if none (or paused).
 * Complete, fail or extend it with the calls below. Deferred failures (a job past its stall
 * limit) are failed here and skipped.
 */
JOBQ_EXTERN int jobq_queue_fetch(jobq_job **out, jobq_queue *q, int64_t lock_ms);

/**
 * Completes job `id` if `token` holds its lock; else, changing nothing, JOBQ_ENOTFOUND (no
 * such job), JOBQ_ESTATE (not active) or JOBQ_ELOCKLOST (another token's, or expired). Fail
 * and extend below refuse alike.
 */
JOBQ_EXTERN int jobq_queue_complete(jobq_queue *q, const char *id, const char *token,
                                    const char *result_json);
/**
 * Fails an attempt of job `id` under `token`. The core applies the job's attempts and backoff:
 * the job is retried (waiting or delayed) or fails for good. Returns the job's new state.
 */
JOBQ_EXTERN int jobq_queue_fail(jobq_queue *q, const char *id, const char *token,
                                const char *reason, unsigned int flags);
/** Extends the lock of job `id` held by `token` to `lock_ms` from now. */
JOBQ_EXTERN int jobq_queue_extend_lock(jobq_queue *q, const char *id, const char *token,
                                       int64_t lock_ms);
/** jobq_queue_complete on a fetched job handle (its id and token). */
JOBQ_EXTERN int jobq_job_complete(jobq_job *job, const char *result_json);
/** jobq_queue_fail on a fetched job handle (its id and token). */
JOBQ_EXTERN int jobq_job_fail(jobq_job *job, const char *reason, unsigned int flags);
/** jobq_queue_extend_lock on a fetched job handle (its id and token). */
JOBQ_EXTERN int jobq_job_extend_lock(jobq_job *job, int64_t lock_ms);

/**
 * Runs one stalled-job check now: active jobs whose lock expired go back to waiting, or are
 * failed past `max_stalled`. Returns the number of jobs recovered. Workers run it on their own.
 */
JOBQ_EXTERN int jobq_queue_check_stalled(jobq_queue *q, uint32_t max_stalled);

/* --- request / response ------------------------------------------------------------------ */

/**
 * Waits until job `id` is completed or failed, up to `timeout_ms` of real time (< 0: forever).
 * Woken by the store's events, not by polling. `out` (optional) gets the finished job. Returns
 * 0 if it completed, JOBQ_ESTATE if it failed, JOBQ_ETIMEDOUT, JOBQ_ENOTFOUND.
 */
JOBQ_EXTERN int jobq_queue_wait_job(jobq_job **out, jobq_queue *q, const char *id,
                                    int64_t timeout_ms);
/**
 * Adds a job and waits for its outcome, as jobq_queue_add then jobq_queue_wait_job. Two steps:
 * an error of the wait (JOBQ_ETIMEDOUT, JOBQ_ENOMEM, ...) leaves the job added.
 */
JOBQ_EXTERN int jobq_queue_request(jobq_job **out, jobq_queue *q, const char *name,
                                   const void *data, size_t len, const jobq_job_options *opts,
                                   int64_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
