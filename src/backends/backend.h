/*
 * Backend dispatch: open a backend from a store URL, and the one place where optional vtable
 * slots are checked. Each built-in backend provides its URL opener below.
 */
#ifndef JOBQ_BACKENDS_BACKEND_H
#define JOBQ_BACKENDS_BACKEND_H

#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "jobq/backends.h"
#include "jobq/sys/backend.h"

/* Opens the backend named by `url` (see jobq_store_open). */
int jobq__backend_open_url(jobq_backend **out, const char *url);
/* Checks a backend's version and mandatory slots; JOBQ_EVERSION / JOBQ_EINVAL if unusable. */
int jobq__backend_check(const jobq_backend *b);

/*
 * Optional slots, dispatched here only (the core never reads them itself).
 */
/* Wakes the backend's blocking waits (the wake slot), or does nothing without one. */
void jobq__backend_wake(jobq_backend *b);
/* Whether wait_for_work blocks until work may be ready (else the worker polls). */
int jobq__backend_can_wait(const jobq_backend *b);
/* Waits for work through wait_for_work; returns at once without the slot (the caller polls). */
void jobq__backend_wait_for_work(jobq_backend *b, jobq_backend_queue *q, jobq_clock *clock,
                                 int64_t timeout_ms);
/* Whether complete_fetch exists (version 2 and later). */
int jobq__backend_can_complete_fetch(const jobq_backend *b);
/* The integrity check (version 4): JOBQ_ENOTSUP with a message when the backend has none. */
int jobq__backend_check_store(jobq_check_report *report, jobq_backend *b, size_t max_messages);
/* Creates the next iteration of the job scheduler fetched job `job` belongs to (the
 * scheduler_next slot, version 5): 1 created, 0 none to create; 0 without the slot. */
int jobq__backend_scheduler_next(jobq_backend *b, jobq_backend_queue *q, const jobq_job *job,
                                 int64_t now_ms);
/* The version-5 slots, or JOBQ_ENOTSUP without them. */
int jobq__backend_list_queues(jobq_strings **out, jobq_backend *b);
int jobq__backend_count_workers(jobq_backend *b, jobq_backend_queue *q);
/* The metrics slot (version 5, metrics), or JOBQ_ENOTSUP without it. */
int jobq__backend_metrics(jobq_metrics **out, jobq_backend *b, jobq_backend_queue *q,
                          jobq_state kind, int64_t start, int64_t end);
/* Worker identity (version 5): 0 and *presence NULL without the slots. */
int jobq__backend_worker_attach(void **presence, jobq_backend *b, jobq_backend_queue *q,
                                const char *name);
void jobq__backend_worker_detach(jobq_backend *b, jobq_backend_queue *q, void *presence);
/* 0 if the backend has the rate-limit slots (set_limits, get_limits, rate_limit), else
 * JOBQ_ENOTSUP (error set, with `what` in the message). */
int jobq__backend_has_limits(const jobq_backend *b, const char *what);
/* Frees the backend through its free slot; NULL is ignored. */
void jobq__backend_free(jobq_backend *b);

/*
 * Helpers for backend writers: the things every backend needs and none should copy.
 */
/* Milliseconds on CLOCK_MONOTONIC: for timeouts and deadlines, never for stored times. */
int64_t jobq__mono_ms(void);
/* An absolute CLOCK_MONOTONIC time in ms as a timespec, for pthread_cond_timedwait on a
 * condition variable made with jobq__cond_init_monotonic. */
void jobq__ms_to_timespec(struct timespec *ts, int64_t abs_ms);
/* A condition variable that waits on CLOCK_MONOTONIC. */
void jobq__cond_init_monotonic(pthread_cond_t *cv);
/* LRANGE's choice of `start`..`end` (negative: from the end) among `len` items: the first
 * index and how many (0: none). */
void jobq__range_clip(size_t *first, size_t *n, size_t len, int64_t start, int64_t end);
/* Whether two keep policies are the same. */
int jobq__keep_equal(const jobq_keep *a, const jobq_keep *b);
/* Whether two job options are the same but for the per-job fields (job_id, dedup_id,
 * timestamp): adds that may share one options record or one encoding. */
int jobq__job_options_equal(const jobq_job_options *a, const jobq_job_options *b);

/* BullMQ's stackTraceLimit, applied after a failed attempt appended its line: keeps the newest
 * `limit` of the `*count` lines (limit > 0), all (0) or none (< 0), freeing the others with
 * jobq__free. The same rule is lua/includes/failure.lua's on Redis. */
void jobq__stack_trim(char **lines, size_t *count, int64_t limit);

/* Writes `v` in decimal with a NUL into `buf` (room for 21 bytes); returns the length. The
 * generated job ids of the stores that number jobs themselves (memory, LMDB). */
size_t jobq__u64_dec(char *buf, uint64_t v);

/* A copy of `url` with its password hidden (jobq_url_redact), for messages; jobq__free it.
 * NULL on ENOMEM. */
char *jobq__url_redacted(const char *url);

/*
 * The failure a fetch writes for job options `o` taken with deferred failure `reason` (see
 * the fetch slot): final, with the job's remove-on-fail policy, else the fetcher's
 * (info->keep_on_fail; `info` may be NULL), else keep all.
 */
jobq_failure jobq__deferred_failure(const char *reason, const jobq_job_options *o,
                                    const jobq_fetch_info *info);

/* Job options as BullMQ's `opts` JSON (src/engine/opts_json.c). To JSON: a new string
 * (jobq__free it) or JOBQ_EINVAL (a string that is not UTF-8) / JOBQ_ENOMEM. From JSON: absent
 * or malformed text gives the defaults, as Node reads it; the strings set (job_id, dedup_id,
 * backoff.custom_type) are jobq__strdup'ed, the caller frees them. Returns 0, or JOBQ_ENOMEM
 * (nothing to free). */
int jobq__opts_to_json(char **out, const jobq_job_options *o);
int jobq__opts_from_json(jobq_job_options *o, const char *text, size_t len);
/* A job scheduler's template options (NULL: none) as BullMQ's scheduler hash holds them: only
 * what they set, without the default attempts; "{}" for none. */
int jobq__template_opts_json(char **out, const jobq_job_options *o);

/* `d` as an int64_t, saturated at both ends and 0 for NaN: converting a double out of range is
 * undefined behaviour, and stored numbers (JSON written by Node, records on disk) can be any. */
int64_t jobq__f64_to_i64(double d);

/* URL openers of the built-in backends; each gets the whole URL. */
int jobq__memory_open_url(jobq_backend **out, const char *url);
#ifdef JOBQ_HAVE_LMDB
/* `url` is the whole URL: lmdb:///abs/dir, lmdb:rel/dir (query options allowed). */
int jobq__lmdb_open_url(jobq_backend **out, const char *url);
/* Its parser: the directory (at most dir_cap bytes with the NUL) and the options of `url`,
 * touching no file. */
int jobq__lmdb_url_parse(char *dir, size_t dir_cap, jobq_lmdb_options *o, const char *url);
#endif
#ifdef JOBQ_HAVE_REDIS
/* `url` is the whole URL: redis://..., rediss://... (TLS), redis+unix:///path.sock. */
int jobq__redis_open_url(jobq_backend **out, const char *url);
#endif

#endif
