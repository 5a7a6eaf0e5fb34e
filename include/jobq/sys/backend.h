/**
 * @file
 * jobq — the storage vtable, for backend writers.
 *
 * A backend owns atomic storage steps; the core owns policy (defaults, validation, attempts,
 * backoff, lock renewal, reaper schedule, keep policies resolved per job). The contract:
 *
 * - Atomic and linearizable. Each operation is one step: one critical section (memory), one
 *   write transaction (LMDB), one Lua script (Redis). A failed operation changes nothing.
 * - Compare-and-swap on the lock token. extend_lock, complete, fail, release (and progress
 *   with a token) check the job's lock inside that step, in this order, and on the first
 *   check that fails return its code and change nothing, so a stale call is harmless
 *   ("the lock checks" below; BullMQ's script codes in brackets):
 *     no job `id` in the queue                              JOBQ_ENOTFOUND  [-1]
 *     the job is not active                                 JOBQ_ESTATE     [-3]
 *     its lock has expired (lock expiry <= now; Redis: the  JOBQ_ELOCKLOST  [-2]
 *     lock key is gone)
 *     its lock is held by another token (or token NULL)     JOBQ_ELOCKLOST  [-6]
 *   The core reads all three as "this caller no longer holds the job" (core.h
 *   jobq__lock_gone): the outcome is dropped, a worker reports the lock lost.
 * - The codes of every other refusal are stated per slot, and are the same on every backend.
 *   A refused call changes nothing at all: every check runs before the first write (on Redis,
 *   before the script's first write command; lua/includes/lock.lua has the lock checks).
 * - Backends never read a clock (but in wait_for_work): `now_ms` comes from the core. Due times
 * (delays, retry times, promotion, timestamps and the ages clean compares) follow it in a
 * backend with JOBQ_CAP_DUE_CLOCK; a backend without JOBQ_CAP_LOCK_CLOCK (Redis) may use its
 * own server time for what expires on its own: locks and deduplication TTLs.
 * - Any operation may be called from any thread at the same time.
 * - Inputs are borrowed for the call only; backends copy what they keep. Everything returned
 *   through an out-parameter is allocated with jobq__malloc & co. so the core can free it.
 * - Events are written by the backend inside the step that causes them, with BullMQ's names
 *   and fields (docs/protocol.md §5); see each slot for which.
 * - Errors: return a negative JOBQ_E* and set the detail with jobq_error_set().
 * - Slots are only ever appended; a backend sets `version` to the JOBQ_BACKEND_VERSION it was
 *   written for. Optional slots may be NULL; the core checks them in one place.
 */
#ifndef JOBQ_SYS_BACKEND_H
#define JOBQ_SYS_BACKEND_H

#include "../common.h"
#include "../errors.h"
#include "../job.h"
#include "../queue.h"
#include "../limits.h"
#include "../events.h"
#include "../clock.h"
#include "../metrics.h"
#include "../scheduler.h"
#include "../flow.h"
#include "alloc.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The version of struct jobq_backend this header defines (slots are only appended). */
#define JOBQ_BACKEND_VERSION 5

/** Capabilities of a backend (jobq_backend.caps). */
enum {
	JOBQ_CAP_BLOCKING_WAIT = 1u << 0,   /**< wait_for_work and events_read really block */
	JOBQ_CAP_DURABLE = 1u << 1,         /**< survives a process restart */
	JOBQ_CAP_MULTIPROCESS = 1u << 2,    /**< several processes may share a queue */
	JOBQ_CAP_DUE_CLOCK = 1u << 3,       /**< due times follow now_ms only (was LOGICAL_CLOCK) */
	JOBQ_CAP_JSON_DATA = 1u << 4,       /**< job data must be JSON text (BullMQ interop) */
	JOBQ_CAP_LOCK_CLOCK = 1u << 5,      /**< locks and dedup TTLs expire by now_ms only */
	JOBQ_CAP_DEDUP_KEEP_LAST = 1u << 6, /**< add and the finishes keep dedup_keep_last */
	/** Both clocks: what JOBQ_CAP_LOGICAL_CLOCK meant before the split (kept for old users). */
	JOBQ_CAP_LOGICAL_CLOCK = JOBQ_CAP_DUE_CLOCK | JOBQ_CAP_LOCK_CLOCK
};

/** Sets the calling thread's error detail and returns `code`. */
JOBQ_EXTERN int jobq_error_set(int code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/** Clears the calling thread's error detail. */
JOBQ_EXTERN void jobq_error_clear(void);

/**
 * A job as backends build it: allocate with jobq_job__new(), fill the fields with memory from
 * jobq__malloc & co.; jobq_job_free() frees every pointer below. Users see it only through
 * the accessors of jobq/job.h.
 */
struct jobq_job {
	char *id;              /**< the job id */
	char *name;            /**< the job name */
	void *data;            /**< data_len bytes plus a NUL */
	size_t data_len;       /**< bytes of data */
	jobq_job_options opts; /**< opts.job_id, opts.dedup_id, opts.backoff.custom_type owned */
	jobq_state state;      /**< see jobq_job_state() */
	int64_t timestamp;     /**< see jobq_job_timestamp() */
	int64_t processed_on;  /**< see jobq_job_processed_on() */
	int64_t finished_on;   /**< see jobq_job_finished_on() */
	int64_t delay_ms;      /**< see jobq_job_delay() */
	uint32_t priority;     /**< see jobq_job_priority() */
	uint32_t attempts_started; /**< see jobq_job_attempts_started() */
	uint32_t attempts_made;    /**< see jobq_job_attempts_made() */
	uint32_t stalled_count;    /**< see jobq_job_stalled_count() */
	char *progress;            /**< JSON text or NULL */
	char *result;              /**< JSON text or NULL */
	char *failed_reason;       /**< or NULL */
	char **stacktrace;         /**< stacktrace_count strings */
	size_t stacktrace_count;   /**< number of stacktrace lines */
	char *deferred_failure;    /**< BullMQ `defa`: fail at the next fetch without running */
	char *token;               /**< set by fetch: the lock token */
	/** Owned by the core; backends leave it NULL. */
	struct jobq_job_runtime *rt;
	/** version 5: the job scheduler this job is an iteration of (BullMQ `rjk`), or NULL */
	char *scheduler_id;
	/** version 5 (worker identity): the name of the worker that fetched the job last
	 * (BullMQ `pb`, processedBy), or NULL */
	char *processed_by;
};

/** A zeroed job, or NULL on ENOMEM (error set). */
JOBQ_EXTERN jobq_job *jobq_job__new(void);
/**
 * A zeroed job with `extra` bytes of storage in the same allocation (*storage points to them),
 * so that a backend can pack the job's strings there with one allocation: jobq_job_free frees
 * only the pointers outside that storage.
 */
JOBQ_EXTERN jobq_job *jobq_job__new_packed(size_t extra, char **storage);
/** Copies `src`'s strings (job_id, dedup_id, backoff.custom_type) into `dst`. */
JOBQ_EXTERN int jobq_job_options__copy(jobq_job_options *dst, const jobq_job_options *src);
/** Frees the strings owned by an options struct filled by jobq_job_options__copy. */
JOBQ_EXTERN void jobq_job_options__clear(jobq_job_options *opts);

/** Appends a copy of `len` bytes of `s` to `*list` (created when NULL). */
JOBQ_EXTERN int jobq_strings__append(jobq_strings **list, const char *s, size_t len);
/** Takes `job` on success; on failure (JOBQ_ENOMEM) the caller still owns it. */
JOBQ_EXTERN int jobq_job_list__append(jobq_job_list **list, jobq_job *job);

/** A new, empty event list. Backends append events in order; the list copies the strings. */
JOBQ_EXTERN int jobq_event_list__new(jobq_event_list **out);
/** Appends one event with `nfields` key/value pairs after the two fixed ones. */
JOBQ_EXTERN int jobq_event_list__append(jobq_event_list *list, const char *id, const char *event,
                                        const char *job_id, size_t nfields,
                                        const jobq_event_field *fields);
/** Sets the cursor reported by jobq_event_list_cursor (the last event's id by default). */
JOBQ_EXTERN int jobq_event_list__set_cursor(jobq_event_list *list, const char *cursor);

/** An add, as validated by the core: `opts` is never NULL and `opts->timestamp` is set. */
typedef struct jobq_add_request {
	const char *name;             /**< the job name */
	const void *data;             /**< its data */
	size_t len;                   /**< bytes of data */
	const jobq_job_options *opts; /**< its options, never NULL */
} jobq_add_request;

/** One failed attempt, decided by the core. */
typedef struct jobq_failure {
	const char *reason;  /**< failedReason */
	const char *stack;   /**< appended to stacktrace (may be NULL) */
	int64_t retry_at_ms; /**< < 0: fail for good; <= now: back to waiting; > now: delayed */
	jobq_keep keep;      /**< resolved remove-on-fail policy (final failure only) */
	uint32_t attempts;   /**< the job's attempts option, for retries-exhausted */
	/** version 5, metrics: the worker's metrics_max_data_points (0: none); a failure for
	 * good is counted in the failed metrics (jobq/metrics.h) */
	uint32_t metrics_max_points;
	/** the job's stack_trace_limit (jobq_job_options): after appending `stack`, keep only the
	 * newest N lines (> 0), all (0) or none (< 0); jobq__stack_trim applies it */
	int64_t stack_limit;
} jobq_failure;

/** What fetch found out besides the job, and what the fetcher tells it. */
typedef struct jobq_fetch_info {
	int64_t next_due_ms; /**< out: due time of the earliest delayed job, or 0 if none */
	/** in: the fetcher's remove-on-fail policy (NULL: none), for the jobs a fetch fails
	 * because of their deferred failure and whose own policy is JOBQ_KEEP_DEFAULT */
	const jobq_keep *keep_on_fail;
	/** in, version 5, metrics: as jobq_failure.metrics_max_points, for those jobs */
	uint32_t metrics_max_points;
	/** in (version 5, worker identity): the fetching worker's name, stored on each job the
	 * fetch takes (BullMQ `pb`) and returned in its processed_by; NULL: none is stored */
	const char *processed_by;
	/* version 5, rate limits */
	/** in: the fetcher's own rate limiter (BullMQ's worker `limiter`): at most
	 * `limiter_max` jobs per `limiter_duration_ms`; 0: none. Combined with the queue's
	 * global limit by BullMQ's rule (include/jobq/limits.h). */
	int64_t limiter_max;
	int64_t limiter_duration_ms; /**< in: see limiter_max */
	/** out: when the rate limiter kept the fetch from taking a job, the ms until its window
	 * ends (BullMQ's rateLimitTtl); else 0 */
	int64_t rate_limit_ms;
} jobq_fetch_info;

/** One completion for complete_fetch: what complete() takes, and its outcome. */
typedef struct jobq_completion {
	const char *id;          /**< the job */
	const char *token;       /**< its lock token */
	const char *result_json; /**< never NULL */
	jobq_keep keep;          /**< resolved, never JOBQ_KEEP_DEFAULT */
	int rc;                  /**< out: 0, or the error complete() would have returned */
	/** version 3: the job's dedup id as fetched (NULL: none), so a backend can release it
	 * without reading the job; a backend still checks that the id owns the dedup key */
	const char *dedup_id;
	/** version 5, metrics: the worker's metrics_max_data_points (0: none); the completion
	 * is counted in the completed metrics (jobq/metrics.h) */
	uint32_t metrics_max_points;
} jobq_completion;

/** One job of a flow for the flow_add slot, in pre-order. */
typedef struct jobq_flow_job {
	const char *queue;         /**< its queue's name (validated) */
	jobq_add_request req;      /**< the add, validated as jobq_queue_add validates one */
	size_t parent;             /**< index of its parent in the array, or SIZE_MAX (root) */
	size_t nchildren;          /**< > 0: it waits in waiting-children */
	jobq_parent_policy policy; /**< what its failure for good does to its parent */
} jobq_flow_job;

/** A backend's handle on one queue; each backend defines it. */
typedef struct jobq_backend_queue jobq_backend_queue;

struct jobq_backend {
	unsigned int version; /**< JOBQ_BACKEND_VERSION */
	const char *name;     /**< "memory" | "lmdb" | "redis" */
	uint32_t caps;        /**< JOBQ_CAP_* */

	/* -- version 1; mandatory unless marked optional -------------------------------------- */

	/** Opens the backend's handle for queue `name` (validated by the core). */
	int (*queue_open)(jobq_backend_queue **out, jobq_backend *b, const char *name);
	/** Closes and frees a queue handle. */
	void (*queue_close)(jobq_backend_queue *q);

	/**
	 * Adds `n` jobs in one step (all or none). Per job, as BullMQ's add: a custom id that
	 * exists → outcome JOBQ_ADD_DUPLICATE, event `duplicated`, nothing else changes; a dedup
	 * id whose key is live → JOBQ_ADD_DEDUPLICATED with the owner's id, event
	 * `deduplicated`; else the job is created (generated ids are increasing integers per
	 * queue, and the counter advances on every add): event `added`, then delay > 0 →
	 * delayed (event `delayed`, field delay = due time), priority > 0 → prioritized, else
	 * waiting (front when lifo) with event `waiting`. `outcomes` has n entries.
	 */
	int (*add)(jobq_job_id *ids, int *outcomes, jobq_backend_queue *q,
	           const jobq_add_request *reqs, size_t n, int64_t now_ms);

	/**
	 * Promotes due delayed jobs (event `waiting` prev delayed), then, unless paused, takes
	 * the next job: waiting first (FIFO, lifo jobs at the front), then prioritized (lowest
	 * priority number, FIFO within one). Locks it with `token` until now + lock_ms, sets
	 * processed_on = now, attempts_started += 1, state active; event `active` prev waiting.
	 * Returns the whole job (token set), or JOBQ_ENOJOB (nothing ready, or paused: then
	 * nothing but the promotion of due delayed jobs changes). `info` (optional) gets the next
	 * due time whether or not a job was found.
	 * A job taken with a deferred_failure (past its stall limit) must be failed, not run.
	 * The in-process backends (memory, LMDB) do it inside this step: the job is
	 * taken as above (event `active`), then failed as fail() would with reason and stack =
	 * the deferred failure and retry_at_ms < 0, keep = the job's remove_on_fail, else
	 * info->keep_on_fail, else keep all (jobq__deferred_failure), and the step takes the next
	 * job; so a fetch that fails changes nothing. Redis hands such a job out as BullMQ's
	 * moveToActive does (Node workers fail it themselves), and the core fails it in a second
	 * step. complete_fetch's fetches follow the same rule.
	 */
	int (*fetch)(jobq_job **out, jobq_fetch_info *info, jobq_backend_queue *q,
	             const char *token, int64_t lock_ms, int64_t now_ms);

	/** Sets the lock of active job `id` held by `token` to expire at now + lock_ms. Refusals:
	 * the lock checks (JOBQ_ENOTFOUND, JOBQ_ESTATE, JOBQ_ELOCKLOST). */
	int (*extend_lock)(jobq_backend_queue *q, const char *id, const char *token,
	                   int64_t lock_ms, int64_t now_ms);

	/**
	 * Completes active job `id` held by `token`: attempts_made += 1, finished_on = now,
	 * result, state completed; event `completed` (returnvalue, prev active); then applies
	 * `keep` (resolved, never JOBQ_KEEP_DEFAULT) to the completed set; releases a dedup id
	 * the job owns; event `drained` if nothing is waiting, prioritized or active.
	 * Refusals: the lock checks.
	 */
	int (*complete)(jobq_backend_queue *q, const char *id, const char *token,
	                const char *result_json, const jobq_keep *keep, int64_t now_ms);

	/**
	 * Fails an attempt of active job `id` held by `token`: attempts_made += 1,
	 * failed_reason, stack appended. Then per f->retry_at_ms: back to waiting (event
	 * `waiting` prev active), delayed until retry_at (event `delayed`), or failed for good
	 * (finished_on, event `failed` with failedReason and prev active, then
	 * `retries-exhausted` if attempts_made >= f->attempts, keep policy, dedup release,
	 * `drained` as for complete). A job with deferred_failure is failed here too; the field
	 * is cleared when the job lands in failed. Refusals: the lock checks.
	 */
	int (*fail)(jobq_backend_queue *q, const char *id, const char *token, const jobq_failure *f,
	            int64_t now_ms);

	/**
	 * Puts active job `id` held by `token` back at the front of waiting (or its priority)
	 * without counting an attempt; event `waiting` prev active. Used on close. Refusals:
	 * the lock checks.
	 */
	int (*release)(jobq_backend_queue *q, const char *id, const char *token, int64_t now_ms);

	/**
	 * The stalled check: every active job whose lock expired (JOBQ_CAP_LOCK_CLOCK: lock expiry
	 * <= now) gets stalled_count += 1, goes to the front of waiting (events `waiting` prev
	 * active, then `stalled`), and past `max_stalled` gets deferred_failure "job stalled
	 * more than allowable limit", so the next fetch fails it. Returns the number recovered
	 * (ids in `recovered`, optional). Backends that need BullMQ's two-phase protocol may
	 * recover a job only on the second call after its lock expired.
	 */
	int (*reap_stalled)(jobq_strings **recovered, jobq_backend_queue *q, uint32_t max_stalled,
	                    int64_t stalled_interval_ms, int64_t now_ms);

	/** The whole job with its state; JOBQ_ENOTFOUND if absent. */
	int (*get)(jobq_job **out, jobq_backend_queue *q, const char *id);
	/** Lists `state` (order as jobq_queue_list); an empty list may be NULL. */
	int (*list)(jobq_job_list **out, jobq_backend_queue *q, jobq_state state, size_t offset,
	            size_t limit);
	/** Counts the jobs in each state. */
	int (*counts)(jobq_counts *out, jobq_backend_queue *q);

	/** Removes a job and its logs. Event `removed` (prev). Refusals: JOBQ_ENOTFOUND (no such
	 * job), then JOBQ_ESTATE (active and locked, or on Redis the pending iteration of a job
	 * scheduler). */
	int (*remove)(jobq_backend_queue *q, const char *id, int64_t now_ms);
	/** Pause or resume (event `paused` / `resumed`), and its state. */
	int (*set_paused)(jobq_backend_queue *q, int paused, int64_t now_ms);
	/** Sets `*out` non-zero if the queue is paused. */
	int (*is_paused)(int *out, jobq_backend_queue *q);
	/** Deletes waiting and prioritized jobs (and delayed if asked). No events. */
	int (*drain)(jobq_backend_queue *q, int include_delayed, int64_t now_ms);
	/**
	 * Removes up to `limit` (0: all) jobs of `state` whose age (finished_on, else
	 * processed_on, else timestamp) is <= now - grace_ms; active ones only if unlocked
	 * (lock expired). Event `cleaned` (count). Returns the count; ids in `removed`.
	 */
	int (*clean)(jobq_strings **removed, jobq_backend_queue *q, jobq_state state,
	             int64_t grace_ms, size_t limit, int64_t now_ms);
	/** Deletes every job, event and setting of the queue; JOBQ_ESTATE with active jobs unless
	 * `force`. The queue stays usable (empty, not paused). */
	int (*obliterate)(jobq_backend_queue *q, int force, int64_t now_ms);
	/** Moves delayed job `id` (NULL: all) to waiting/prioritized. Returns how many. Event
	 * `waiting` prev delayed. Refusals (with an id): JOBQ_ENOTFOUND (no such job), then
	 * JOBQ_ESTATE (not delayed). */
	int (*promote)(jobq_backend_queue *q, const char *id, int64_t now_ms);
	/** Moves failed job `id` (NULL: all failed) back to waiting, clearing finished_on,
	 * processed_on, failed_reason (attempts kept). Returns how many. Event `waiting` prev
	 * failed. Refusals (with an id): JOBQ_ENOTFOUND (no such job), then JOBQ_ESTATE (not
	 * failed). */
	int (*retry_failed)(jobq_backend_queue *q, const char *id, int64_t now_ms);

	/** Sets progress (JSON, validated by the core); event `progress` (data). Refusals: with a
	 * `token`, the lock checks; with `token` NULL (no lock check), JOBQ_ENOTFOUND. */
	int (*progress)(jobq_backend_queue *q, const char *id, const char *token, const char *json,
	                int64_t now_ms);
	/** Appends a log line, keeping the last `keep` (0: all). Returns the number kept.
	 * Refusal: JOBQ_ENOTFOUND (no such job), whatever its state. */
	int (*add_log)(jobq_backend_queue *q, const char *id, const char *line, int64_t keep);
	/** The logs of job `id`; JOBQ_ENOTFOUND if there is no such job. */
	int (*get_logs)(jobq_strings **out, jobq_backend_queue *q, const char *id, size_t start,
	                size_t limit);

	/**
	 * Events after cursor `after` (JOBQ_EVENTS_START, JOBQ_EVENTS_NOW or an id), at most
	 * `max`; when there are none, waits up to `timeout_ms` of real time (< 0 forever) if the
	 * backend has JOBQ_CAP_BLOCKING_WAIT, else returns at once. Never returns a NULL list.
	 * The retained history is at least the newest 10,000 events.
	 */
	int (*events_read)(jobq_event_list **out, jobq_backend_queue *q, const char *after,
	                   size_t max, int64_t timeout_ms);

	/**
	 * Optional. Blocks up to `timeout_ms` of real time (< 0 forever) until work may be
	 * available on `q`: returns at once if, under the backend's lock, the queue is not paused
	 * and has a waiting or prioritized job, or a delayed job due at jobq_clock_now(clock)
	 * (read under that lock, so that a manual clock's advance, which calls wake(), is never
	 * missed). Otherwise sleeps until an add, retry, release, stall recovery, resume or
	 * promote on `q`, or wake(). Returns 0 on a wake-up or timeout; spurious wake-ups are
	 * allowed. This is the one place a backend reads the (core's) clock.
	 */
	int (*wait_for_work)(jobq_backend_queue *q, jobq_clock *clock, int64_t timeout_ms);
	/** Optional. Wakes every wait_for_work and events_read in progress on this backend. */
	void (*wake)(jobq_backend *b);

	/** Frees the backend, after every queue handle is closed. */
	void (*free)(jobq_backend *b);

	/* -- version 2; optional ------------------------------------------------------------ */

	/**
	 * Optional (NULL: the core calls complete, then fetch). Finishes and takes work in ONE
	 * step, as BullMQ's moveToFinished with fetchNext, for batches: first each of the `ndone`
	 * completions exactly as complete() (one whose lock checks fail changes nothing and gets
	 * the code complete() would answer at that point in its `rc`: a repeated id finds the
	 * job its first entry finished; the others get 0), then up to `max` fetches exactly as
	 * fetch(), the i-th job locked with tokens[i] and stored in jobs[i]. Returns how many jobs
	 * were fetched (0 when there is none, not JOBQ_ENOJOB), or a negative error if the fetching
	 * part failed (the completions' `rc` still say what happened to each; when the step
	 * failed as a whole, each gets its error, and the core keeps and retries the
	 * completions whose error is not one of lock lost, state, not found). `info` as for
	 * fetch. With a backend that has this slot, a worker may fetch several jobs at once; each
	 * stays active, locked and heartbeated until it has run.
	 */
	int (*complete_fetch)(jobq_job **jobs, jobq_fetch_info *info, jobq_backend_queue *q,
	                      jobq_completion *done, size_t ndone, const char *const *tokens,
	                      size_t max, int64_t lock_ms, int64_t now_ms);

	/* -- version 3; optional ------------------------------------------------------------ */

	/**
	 * Optional, both or neither (NULL: the core's asynchronous adds call add and wait).
	 * Pipelined adds: add_send starts the step add() would run for `reqs` and returns without
	 * waiting for its outcome (0), or fails (< 0: the step was not started); add_recv waits for
	 * the outcome of the oldest step started and not yet received, which had `n` jobs, and
	 * fills `ids` and `outcomes` as add() would, or returns < 0 (an I/O error: the step may or
	 * may not have taken effect). Steps take effect in the order they were started, each all or
	 * nothing. Per queue handle one thread at a time calls these (the core's sender); it calls
	 * add_recv once for each step add_send started, and lets at most 8 be outstanding.
	 */
	int (*add_send)(jobq_backend_queue *q, const jobq_add_request *reqs, size_t n,
	                int64_t now_ms);
	/** The outcome of the oldest step add_send started (see add_send). */
	int (*add_recv)(jobq_job_id *ids, int *outcomes, jobq_backend_queue *q, size_t n);

	/* -- version 4; optional ------------------------------------------------------------ */

	/**
	 * Optional (NULL: jobq_store_check answers JOBQ_ENOTSUP). The integrity check of the
	 * whole store (every queue), in one consistent read: fills `report` (zeroed by the
	 * core) with what it examined and reports each problem with jobq_check_report__problem.
	 * Returns 0 when the check ran, whatever it found (damage it meets, such as a table the
	 * storage engine calls corrupt, is a problem, not an error), or < 0 when it could not
	 * read the store at all. Changes nothing.
	 */
	int (*check)(jobq_check_report *report, jobq_backend *b, size_t max_messages);

	/* -- version 5; optional ------------------------------------------------------------ */

	/**
	 * Optional (NULL: the iterations of job schedulers are not continued). Called by the core
	 * right after a fetch handed out `job`, an iteration of job scheduler job->scheduler_id,
	 * before it runs (BullMQ 6: the worker that fetches an iteration creates the next one).
	 * In one step: if the scheduler still exists and its pending iteration is `job` (else
	 * nothing changes: the scheduler was removed or updated since), and the series goes on
	 * (the iteration count is below the limit, `now` is not past the end date, a cron pattern
	 * has a next time), the next iteration is created as an add would (id
	 * "repeat:<scheduler id>:<millis>", the template's name, data and options, delayed until
	 * its time; events `added`, then `delayed` or `waiting`), the scheduler's next time and
	 * iteration count advance; if that iteration exists already, only event `duplicated`.
	 * Returns 1 when it created the next iteration, 0 when there was none to create.
	 * Errors: JOBQ_EINVAL when the scheduler's stored definition cannot be evaluated (a
	 * malformed pattern, an unknown time zone), JOBQ_ENOTSUP when the backend cannot
	 * evaluate it: the series cannot go on, the job runs. Anything else (I/O) changes
	 * nothing, and the core gives the job back to waiting to try again.
	 */
	int (*scheduler_next)(jobq_backend_queue *q, const jobq_job *job, int64_t now_ms);
	/**
	 * Optional (NULL: jobq_store_list_queues answers JOBQ_ENOTSUP). The names of the queues
	 * the store holds (any order, each once; the core sorts them): memory its queues, LMDB
	 * those with settings, Redis those with a meta or id key under the prefix, found without
	 * blocking the server (SCAN). An empty list may be NULL. Changes nothing.
	 */
	int (*list_queues)(jobq_strings **out, jobq_backend *b);
	/**
	 * Optional (NULL: jobq_queue_count_workers answers JOBQ_ENOTSUP). How many workers are
	 * connected to queue `q` now, from any process (Redis: the named client connections
	 * BullMQ's getWorkers counts). Returns the count.
	 */
	int (*count_workers)(jobq_backend_queue *q);

	/* -- version 5, metrics; optional -------------------------------------------------- */

	/**
	 * Optional (NULL: jobq_queue_metrics answers JOBQ_ENOTSUP). Reads the per-minute metrics
	 * of `kind` (JOBQ_STATE_COMPLETED or JOBQ_STATE_FAILED, checked by the core) in one
	 * consistent read: the counters and the points start..end as LRANGE picks them
	 * (jobq__range_clip), newest first, and how many points there are. Backends count
	 * finished jobs in complete_fetch, fail and fetch (the metrics_max_points of
	 * jobq_completion, jobq_failure and jobq_fetch_info) as BullMQ 6's finish script:
	 * includes/metrics.lua on Redis, eng_metrics_count in the engine. Changes nothing.
	 */
	int (*metrics)(jobq_metrics **out, jobq_backend_queue *q, jobq_state kind, int64_t start,
	               int64_t end);
	/* -- version 5, job schedulers (jobq/scheduler.h); optional, all four or none ------- */

	/**
	 * Creates or updates scheduler `id` (checked by the core: a valid id, a valid `spec`
	 * whose every_ms or pattern, tz, dates and limit evaluate; `name` and `data` set) and
	 * its first iteration, in one step, as BullMQ 6's upsertJobScheduler: the scheduler's
	 * pending iteration, if waiting, prioritized or delayed, is deleted (no event) and
	 * replaced; an every scheduler with the same every_ms keeps that iteration's time, else
	 * the first time is computed as BullMQ (start date, offset, now); a pattern scheduler's
	 * first time is `pattern_next_ms` (computed by the core: the pattern's next time after
	 * max(now, start), or now with immediately). The iteration count is kept (1 for a new
	 * scheduler). The iteration is added as an add would (events `added`, then `delayed` or
	 * `waiting`), its id in *iteration. JOBQ_EEXISTS when a pattern scheduler's iteration id
	 * is taken by another job (an every one moves on to the next free slot, up to 32).
	 */
	int (*scheduler_upsert)(jobq_job_id *iteration, jobq_backend_queue *q, const char *id,
	                        const jobq_scheduler_spec *spec, int64_t pattern_next_ms,
	                        int64_t now_ms);
	/** Scheduler `id` in *out (allocated with the jobq__ allocator; jobq_scheduler_free
	 * frees it); JOBQ_ENOTFOUND if there is none. Changes nothing. */
	int (*scheduler_get)(jobq_scheduler **out, jobq_backend_queue *q, const char *id);
	/** Every scheduler of the queue, earliest next run first, in *out (as scheduler_get;
	 * an empty list may be NULL). Changes nothing. */
	int (*scheduler_list)(jobq_scheduler_list **out, jobq_backend_queue *q);
	/** Removes scheduler `id`, and its pending iteration if it is delayed (event `removed`
	 * prev delayed), as BullMQ's removeJobScheduler. JOBQ_ENOTFOUND if there is none. */
	int (*scheduler_remove)(jobq_backend_queue *q, const char *id, int64_t now_ms);

	/* -- version 5, worker identity; optional, both or neither --------------------------- */

	/**
	 * Optional (NULL: a worker is visible only as the backend's wait_for_work shows it). A
	 * worker named `name` (validated by the core: 1..JOBQ_WORKER_NAME_MAX printable ASCII
	 * characters, no space) starts on `q`: the backend makes it visible to other processes
	 * for as long as it runs, busy or idle (Redis: one connection of its own named
	 * "<prefix>:<base64(queue)>:w:<name>", which BullMQ's getWorkers lists; a wait of that
	 * queue handle then no longer names its connection, so each worker is listed once).
	 * `*presence` gets what worker_detach takes.
	 */
	int (*worker_attach)(void **presence, jobq_backend_queue *q, const char *name);
	/** The worker of `presence` (from worker_attach) stopped; frees `presence`. */
	void (*worker_detach)(jobq_backend_queue *q, void *presence);

	/* -- version 5, rate limits; optional, all three or none ------------------------------- */

	/**
	 * Optional (NULL: the limit calls of jobq/limits.h answer JOBQ_ENOTSUP). Sets, in one
	 * step, the limits named in `what` (JOBQ_LIMITS_CONCURRENCY, JOBQ_LIMITS_RATE) to
	 * l->concurrency, or l->max and l->duration_ms (validated by the core); a value 0 removes
	 * the limit (Redis: HSET / HDEL of meta `concurrency`, `max` and `duration`). Wakes the
	 * queue's waiting fetchers. fetch and complete_fetch honour the limits as BullMQ's
	 * moveToActive (include/jobq/limits.h; src/engine/limits.h has the rule).
	 */
	int (*set_limits)(jobq_backend_queue *q, const jobq_queue_limits *l, unsigned int what,
	                  int64_t now_ms);
	/** The queue's limits and its current rate window (see jobq_queue_limits). */
	int (*get_limits)(jobq_queue_limits *out, jobq_backend_queue *q, int64_t now_ms);
	/** Makes the rate window full (JOBQ_RATE_LIMITED_COUNT) for `ms` from now (Redis: SET
	 * limiter ... PX ms), as BullMQ's rateLimit. */
	int (*rate_limit)(jobq_backend_queue *q, int64_t ms, int64_t now_ms);

	/* -- version 5, flows (issue 14); optional, both or neither ------------------------- */

	/**
	 * Optional (NULL: jobq_flow_add and jobq_queue_get_dependencies answer JOBQ_ENOTSUP).
	 * Adds the `n` jobs of a flow in one step, all or none. jobs[0], the root, goes into
	 * queue `q`; the others into their `queue`, each after its parent (jobs[i].parent < i).
	 * The core has validated each add, the depth and size, the names, and that no custom id
	 * repeats in the flow. Per job, as add() (events `added`, then `delayed` / `waiting`),
	 * except that a job with children goes to waiting-children (event `waiting-children`),
	 * and a child is recorded as a pending dependency of its parent, with its policy. A
	 * custom id that exists: a job without children is attached to its new parent (event
	 * `duplicated`; a completed one counts as processed), and JOBQ_EEXISTS when it has
	 * children in the flow or belongs to another parent that exists (BullMQ -7). `parent`
	 * (NULL: none): the root becomes its child; JOBQ_ENOTFOUND if it does not exist.
	 * A parent whose dependencies all turned out finished is released at the end of the
	 * step. `ids` gets the n ids.
	 */
	int (*flow_add)(jobq_job_id *ids, jobq_backend_queue *q, const jobq_flow_job *jobs,
	                size_t n, const jobq_flow_parent *parent, int64_t now_ms);
	/** The dependencies of job `id` (jobq_queue_get_dependencies): fills `out` (zeroed by
	 * the core); strings allocated with jobq__malloc. JOBQ_ENOTFOUND if there is no job. */
	int (*dependencies)(jobq_dependencies *out, jobq_backend_queue *q, const char *id);
};

/** What set_limits sets (a bit mask). */
enum { JOBQ_LIMITS_CONCURRENCY = 1u << 0, JOBQ_LIMITS_RATE = 1u << 1 };

/** The four lists of jobq_dependencies, for jobq_dependencies__append. */
enum { JOBQ_DEP_PROCESSED = 0, JOBQ_DEP_PENDING, JOBQ_DEP_IGNORED, JOBQ_DEP_FAILED };
/**
 * Appends a child to list `which` (JOBQ_DEP_*) of `d` (as the dependencies slot received it):
 * copies of `key`, `queue` and `id` (both may be NULL) and of `value_len` bytes of `value`
 * (NULL: none). Returns 0, or JOBQ_ENOMEM (the core frees what was appended).
 */
JOBQ_EXTERN int jobq_dependencies__append(jobq_dependencies *d, int which, const char *key,
                                          const char *queue, const char *id, const char *value,
                                          size_t value_len);

/** Counts one problem in `report` and keeps its message (printf-style) among the first
 * `max_messages`. Returns 0, or JOBQ_ENOMEM. */
JOBQ_EXTERN int jobq_check_report__problem(jobq_check_report *report, size_t max_messages,
                                           const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif
