/**
 * @file
 * jobq — jobs: the options a job is added with, and read access to a job.
 *
 * A jobq_job is either returned to the caller (jobq_queue_get_job, jobq_queue_fetch, ...) and
 * freed with jobq_job_free, or lent to a process callback for the duration of the call.
 * Thread safety: a job handle is used by one thread at a time.
 */
#ifndef JOBQ_JOB_H
#define JOBQ_JOB_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A job (opaque): returned to the caller, or lent to a process callback. */
typedef struct jobq_job jobq_job;

/** The states of a job, as BullMQ names them. */
typedef enum jobq_state {
	JOBQ_STATE_UNKNOWN = 0,
	JOBQ_STATE_WAITING,
	JOBQ_STATE_PRIORITIZED,
	JOBQ_STATE_DELAYED,
	JOBQ_STATE_ACTIVE,
	JOBQ_STATE_COMPLETED,
	JOBQ_STATE_FAILED,
	JOBQ_STATE_PAUSED,           /**< legacy BullMQ 5 paused list only */
	JOBQ_STATE_WAITING_CHILDREN, /**< a parent of a flow waiting for its children (flow.h) */
	JOBQ_STATE__COUNT
} jobq_state;

/** "waiting", "prioritized", ... as BullMQ names them; "unknown" otherwise. */
JOBQ_EXTERN const char *jobq_state_name(jobq_state state);
/** Parses a state name ("wait" is accepted for "waiting"); JOBQ_EINVAL if unknown. */
JOBQ_EXTERN int jobq_state_parse(jobq_state *out, const char *name);

/** How the delay before a retry is computed. */
typedef enum jobq_backoff_type {
	JOBQ_BACKOFF_NONE = 0,    /**< retry at once */
	JOBQ_BACKOFF_FIXED,       /**< delay_ms every time */
	JOBQ_BACKOFF_EXPONENTIAL, /**< round(2^(n-1) * delay_ms) for attempt n, as BullMQ */
	JOBQ_BACKOFF_CUSTOM,      /**< the worker's backoff callback decides, given custom_type */
	/** n * delay_ms for attempt n (jobq's own; BullMQ has no linear type: its workers see
	 * `{"type": "linear", ...}` as a custom strategy named "linear") */
	JOBQ_BACKOFF_LINEAR
} jobq_backoff_type;

/** The backoff between attempts (BullMQ `opts.backoff`). */
typedef struct jobq_backoff {
	jobq_backoff_type type; /**< how the delay grows */
	int64_t delay_ms;       /**< the base delay in ms */
	double jitter;          /**< 0..1: the delay is drawn from [base*(1-jitter), base] */
	int64_t max_delay_ms;   /**< 0: no cap */
	/** JOBQ_BACKOFF_CUSTOM: the strategy's name, passed to the callback (not a built-in
	 * type's name: "fixed", "exponential" and "linear" are refused) */
	const char *custom_type;
} jobq_backoff;

/** Which finished jobs to keep (remove-on-complete, remove-on-fail). */
typedef enum jobq_keep_mode {
	JOBQ_KEEP_DEFAULT = 0, /**< not set on the job: the worker's setting, else keep all */
	JOBQ_KEEP_ALL,         /**< BullMQ false */
	JOBQ_KEEP_NONE,        /**< BullMQ true: remove as soon as finished */
	JOBQ_KEEP_LIMIT        /**< keep the newest `count` and/or those younger than `age_ms` */
} jobq_keep_mode;

/** What to keep of finished jobs (remove-on-complete / remove-on-fail). */
typedef struct jobq_keep {
	jobq_keep_mode mode; /**< what to keep */
	int64_t count;       /**< JOBQ_KEEP_LIMIT: keep the newest N; < 0: no count limit */
	int64_t age_ms;      /**< JOBQ_KEEP_LIMIT: remove older than this; < 0: no age limit */
} jobq_keep;

/** The options a job is added with (BullMQ `opts`); initialise with JOBQ_JOB_OPTIONS_INIT or
 * jobq_job_options_init(). */
typedef struct jobq_job_options {
	unsigned int version; /**< JOBQ_JOB_OPTIONS_VERSION */
	int64_t delay_ms;  /**< > 0: delayed until timestamp + delay (at most JOBQ_TIME_MAX_MS) */
	uint32_t priority; /**< 0 none; 1 .. 2^21-1, lower runs first */
	int lifo;          /**< non-zero: runs before the jobs already waiting */
	uint32_t attempts; /**< 0 or 1: one attempt */
	jobq_backoff backoff; /**< between attempts */
	const char *job_id;   /**< custom id; adding an existing id returns it and adds nothing */
	jobq_keep remove_on_complete; /**< what to keep of completed jobs */
	jobq_keep remove_on_fail;     /**< what to keep of failed jobs */
	int64_t keep_logs;            /**< > 0: keep only the last N log lines; 0: keep all */
	size_t size_limit;            /**< > 0: refuse data larger than this many bytes */
	const char *dedup_id; /**< deduplication id: while its owner lives, adds return the owner */
	int64_t dedup_ttl_ms; /**< > 0: the dedup id also expires after this long */
	int64_t timestamp;    /**< creation time override in ms (<= JOBQ_TIME_MAX_MS); 0: now */
	/** BullMQ `deduplication.keepLastIfActive` (needs dedup_id; the id then has no expiry
	 * while its owner lives): an add deduplicated while the owner is active is kept (the
	 * latest replaces an earlier one) and becomes a job when the owner completes or fails
	 * for good; while the owner waits, adds are only deduplicated. Every store of jobq
	 * (a store without JOBQ_CAP_DEDUP_KEEP_LAST refuses it with JOBQ_ENOTSUP). */
	int dedup_keep_last;
	/** version 2: BullMQ `stackTraceLimit`: > 0 keeps only the newest N stack lines of failed
	 * attempts; 0 (the default) keeps all; JOBQ_STACK_TRACE_NONE keeps none (BullMQ's 0) */
	int64_t stack_trace_limit;
} jobq_job_options;

/** jobq_job_options.stack_trace_limit: keep no stack line (BullMQ `stackTraceLimit: 0`). */
#define JOBQ_STACK_TRACE_NONE (-1)

/** The version of jobq_job_options this header defines (2 appended dedup_keep_last and
 * stack_trace_limit; version 1 options, shorter, are refused with JOBQ_EVERSION: rebuild). */
#define JOBQ_JOB_OPTIONS_VERSION 2
/** The defaults of jobq_job_options. Positional, not designated, so that C++ before C++20 takes it
 * too. */
#define JOBQ_JOB_OPTIONS_INIT                                                                      \
	{                                                                                          \
		JOBQ_JOB_OPTIONS_VERSION, 0, 0, 0, 0, {JOBQ_BACKOFF_NONE, 0, 0.0, 0, NULL}, NULL,  \
		    {JOBQ_KEEP_DEFAULT, 0, 0}, {JOBQ_KEEP_DEFAULT, 0, 0}, 0, 0, NULL, 0, 0, 0, 0   \
	}
/** The highest priority number (2^21 - 1); lower numbers run first. */
#define JOBQ_PRIORITY_MAX 2097151u

/** Fills `opts` with the defaults. JOBQ_EVERSION if `version` is not supported. */
JOBQ_EXTERN int jobq_job_options_init(jobq_job_options *opts, unsigned int version);

/* --- reading a job ---------------------------------------------------------------------- */

/** Frees a job returned to the caller. NULL is a no-op. Not for a job lent to a callback. */
JOBQ_EXTERN void jobq_job_free(jobq_job *job);

/** The job's id. */
JOBQ_EXTERN const char *jobq_job_id_of(const jobq_job *job);
/** The job's name. */
JOBQ_EXTERN const char *jobq_job_name(const jobq_job *job);
/** The name of the job's queue. */
JOBQ_EXTERN const char *jobq_job_queue_name(const jobq_job *job);
/** The payload bytes (not NUL-terminated in general, though the library always adds a NUL). */
JOBQ_EXTERN const void *jobq_job_data(const jobq_job *job, size_t *len);
/** The options the job was added with (strings owned by the job). */
JOBQ_EXTERN const jobq_job_options *jobq_job_options_of(const jobq_job *job);
/** The job's state when it was read. */
JOBQ_EXTERN jobq_state jobq_job_state(const jobq_job *job);
/** When the job was created, in ms since the epoch. */
JOBQ_EXTERN int64_t jobq_job_timestamp(const jobq_job *job);
/** When the latest attempt started, in ms since the epoch; 0 if none did. */
JOBQ_EXTERN int64_t jobq_job_processed_on(const jobq_job *job);
/** When the job completed or failed for good, in ms since the epoch; 0 until then. */
JOBQ_EXTERN int64_t jobq_job_finished_on(const jobq_job *job);
/** The job's current delay in ms (its option, or the backoff of a retry). */
JOBQ_EXTERN int64_t jobq_job_delay(const jobq_job *job);
/** The job's priority (0: none; lower runs first). */
JOBQ_EXTERN uint32_t jobq_job_priority(const jobq_job *job);
/** How many attempts started (BullMQ `ats`). */
JOBQ_EXTERN uint32_t jobq_job_attempts_started(const jobq_job *job);
/** How many attempts finished, failed or not (BullMQ `attemptsMade`). */
JOBQ_EXTERN uint32_t jobq_job_attempts_made(const jobq_job *job);
/** How many times the job stalled (its lock expired while active). */
JOBQ_EXTERN uint32_t jobq_job_stalled_count(const jobq_job *job);
/** Progress as JSON text, or NULL if never reported. */
JOBQ_EXTERN const char *jobq_job_progress(const jobq_job *job);
/** Result as JSON text, or NULL if not completed. */
JOBQ_EXTERN const char *jobq_job_result(const jobq_job *job);
/** Failure reason of the latest failed attempt, or NULL. */
JOBQ_EXTERN const char *jobq_job_failed_reason(const jobq_job *job);
/** Number of stack/trace lines of failed attempts. */
JOBQ_EXTERN size_t jobq_job_stacktrace_count(const jobq_job *job);
/** Stack/trace line `i` (0-based, oldest first). */
JOBQ_EXTERN const char *jobq_job_stacktrace_at(const jobq_job *job, size_t i);
/** The name of the worker that fetched the job last (BullMQ `processedBy`, job hash field
 * `pb`), or NULL if none did, or a fetch without a worker (jobq_queue_fetch) did. */
JOBQ_EXTERN const char *jobq_job_processed_by(const jobq_job *job);
/** Lock token of a fetched job (manual mode), else NULL. */
JOBQ_EXTERN const char *jobq_job_token(const jobq_job *job);

/* --- inside a process callback (or on a manually fetched job) ---------------------------- */

/**
 * Whether `len` bytes are one JSON text as the library takes it for job data, results and
 * progress: RFC 8259, any top-level value, nested to any depth, UTF-8, escapes such as
 * `\\u0000` allowed (what Node's JSON.parse reads). 0, or JOBQ_EINVAL with the byte and the
 * reason in jobq_error_message(); JOBQ_ENOMEM. The `jobq` command checks its input with it.
 */
JOBQ_EXTERN int jobq_json_check(const char *json, size_t len);

/** Sets the result (JSON text, validated) that completes the job when the callback returns 0. */
JOBQ_EXTERN int jobq_job_set_result(jobq_job *job, const char *json, size_t len);

#define JOBQ_FAIL_UNRECOVERABLE 1u /**< flag: skip the remaining attempts */

/**
 * Records why the attempt failed; return a negative value from the callback to fail it.
 * `flags` may hold JOBQ_FAIL_UNRECOVERABLE. Returns JOBQ_EUSER so that
 * `return jobq_job_set_error(job, 0, "...")` reads naturally.
 */
JOBQ_EXTERN int jobq_job_set_error(jobq_job *job, unsigned int flags, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/** Reports progress (JSON text: a number or an object); emits a `progress` event. */
JOBQ_EXTERN int jobq_job_update_progress(jobq_job *job, const char *json);
/** Appends a log line (trimmed to the job's keep_logs). */
JOBQ_EXTERN int jobq_job_log(jobq_job *job, const char *line);
/** Non-zero once the worker is closing past its deadline: finish quickly or give up. */
JOBQ_EXTERN int jobq_job_is_cancelled(const jobq_job *job);
/** Non-zero once the lock was lost: another worker may run the job; its outcome is ignored. */
JOBQ_EXTERN int jobq_job_lock_lost(const jobq_job *job);

#ifdef __cplusplus
}
#endif
#endif
