/*
 * The in-process engine: the queue rules of the memory and LMDB backends, written once over
 * a small storage interface of primitives that each backend provides (DESIGN.md, "One engine
 * per kind of backend").
 *
 * How a backend uses it (a trait, resolved at compile time so that the hot path inlines into
 * each backend as hand-written code would):
 *
 *   #define ENG_CTX            mqueue         the storage context of one atomic step: the
 *                                             queue under its mutex (memory), the write
 *                                             transaction (LMDB)
 *   #define ENG_JOB            mjob           a job record the step works on: in the store
 *                                             (memory) or decoded for this step (LMDB)
 *   #define ENG_FIELD(j, name) ((j)->name)    the job's counters and times, as lvalues:
 *                                             priority, attempts_started, attempts_made,
 *                                             stalled_count (uint32_t); processed_on,
 *                                             finished_on, delay_ms (int64_t)
 *   #include "engine/engine.h"                declares the primitives below
 *   ... static inline definitions of every engp_* primitive ...
 *   #include "engine/engine_ops.h"            the rules (eng_*), static inline
 *
 * Every primitive that writes returns 0 or a negative JOBQ_E* with the error set; memory's
 * cannot fail and return a constant 0, so the checks fold away. Primitives carry out storage
 * steps only; every decision (which state, which event, what to keep) is a rule in
 * engine_ops.h. A step runs inside one critical section or transaction the backend opened, and
 * a rule that refuses does so before it changes anything.
 */
#ifndef JOBQ_ENGINE_ENGINE_H
#define JOBQ_ENGINE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "jobq/job.h"
#include "jobq/sys/backend.h"
#include "engine/events.h"
#include "engine/limits.h"
#include "engine/transitions.h"

/* The counters of BullMQ's per-minute metrics of one kind of finished job (jobq/metrics.h). */
typedef struct eng_metrics {
	int64_t count;      /* jobs finished since counting began */
	int64_t prev_ts;    /* when the newest data point was closed */
	int64_t prev_count; /* count then */
} eng_metrics;

#if !defined(ENG_CTX) || !defined(ENG_JOB) || !defined(ENG_FIELD)
#error "define ENG_CTX, ENG_JOB and ENG_FIELD before including engine/engine.h"
#endif

/* --- reading a job -------------------------------------------------------------------------- */

/* The job's state (the index it is in). */
static inline jobq_state engp_state(const ENG_JOB *j);
/* Its id (NUL-terminated) and the id's length. */
static inline const char *engp_id(const ENG_JOB *j);
static inline size_t engp_id_len(const ENG_JOB *j);
/* Its name (NUL-terminated). */
static inline const char *engp_name(const ENG_JOB *j);
/* Whether the job was added with lifo. */
static inline int engp_lifo(const ENG_JOB *j);
/* Its deduplication id, or NULL. */
static inline const char *engp_dedup_id(const ENG_JOB *j);
/* The lock of an active job: its token (NULL: none) and when it expires. */
static inline const char *engp_token(const ENG_JOB *j);
static inline int64_t engp_lock_expiry(const ENG_JOB *j);

/* --- moving a job between indexes ------------------------------------------------------------ */

/* Takes the job out of the index of its state (its record stays); its state becomes
 * ENG_GONE until it is put in another. */
static inline int engp_unlink(ENG_CTX *c, ENG_JOB *j);
/* Puts an unlinked job in waiting: at the head (runs next) when `front`, else the tail. */
static inline int engp_put_waiting(ENG_CTX *c, ENG_JOB *j, int front);
/* Puts an unlinked job in prioritized by its priority: first of its priority when `front`,
 * else after the others of its priority. */
static inline int engp_put_prioritized(ENG_CTX *c, ENG_JOB *j, int front);
/* Puts an unlinked job in delayed, due at `due`. */
static inline int engp_put_delayed(ENG_CTX *c, ENG_JOB *j, int64_t due);
/* Puts an unlinked job in active (fetch order), its lock expiring at `lock_expiry`; the lock's
 * token is the backend's to set. */
static inline int engp_put_active(ENG_CTX *c, ENG_JOB *j, int64_t lock_expiry);
/* Puts an unlinked job in completed or failed (`s`), ordered by its finished_on. */
static inline int engp_put_finished(ENG_CTX *c, ENG_JOB *j, jobq_state s);
/* Drops the lock of the job (token and expiry). */
static inline int engp_drop_lock(ENG_CTX *c, ENG_JOB *j);
/* Sets the deferred failure the next fetch applies (NULL: clears it); `reason` is static. */
static inline int engp_set_deferred(ENG_CTX *c, ENG_JOB *j, const char *reason);
/* Forgets the failure reason (a failed job retried). */
static inline int engp_clear_failure(ENG_CTX *c, ENG_JOB *j);
/* Writes the job's record back (after a rule changed it and put it in an index). */
static inline int engp_save(ENG_CTX *c, ENG_JOB *j);
/* Deletes the job: its index entry, record and logs (the dedup rule ran before). Memory frees
 * `j`: it must not be used afterwards but for engp_done. */
static inline int engp_delete(ENG_CTX *c, ENG_JOB *j);

/* --- finding jobs ---------------------------------------------------------------------------- */

/*
 * The first job of index `s` (completed / failed: the oldest finish; delayed: the earliest
 * due time): 1, *out (in the store, or decoded into `space`) and *key (its finish or due
 * time); 0 if the index is empty. Give it back with engp_done.
 */
static inline int engp_first(ENG_CTX *c, jobq_state s, ENG_JOB *space, ENG_JOB **out, int64_t *key);
/* Done with a job got from engp_first (LMDB frees the decoded record). */
static inline void engp_done(ENG_CTX *c, ENG_JOB *j);

/* --- counters, deduplication keys, events, wake-ups ---------------------------------------- */

/* How many jobs are in state `s`. */
static inline uint64_t engp_count(ENG_CTX *c, jobq_state s);
/* Looks up the job's dedup key: 1 and whether `j` owns it and its expiry (0: none), 0 if
 * there is no key. */
static inline int engp_dedup_find(ENG_CTX *c, const ENG_JOB *j, int *owned, int64_t *expiry);
/* Deletes the job's dedup key (and the add stashed with it). */
static inline int engp_dedup_del(ENG_CTX *c, const ENG_JOB *j);
/* Points the dedup key of `j` at `j`, without expiry and with nothing stashed (creating it). */
static inline int engp_dedup_point(ENG_CTX *c, const ENG_JOB *j);
/* Whether a job with id `id` exists (1) or not (0). */
static inline int engp_exists(ENG_CTX *c, const char *id);

/*
 * keepLastIfActive's stash: the latest add deduplicated while the owner of the dedup id was
 * active, kept with the dedup key (it goes when the key goes). The add stores it (a backend's
 * own code, by eng_dedup_stashes' rule); the rules below take it.
 *
 * engp_stash_id: 1 and the stashed job's id in `id` (JOBQ_ID_MAX + 1 bytes), or 0 when the
 * dedup key of `j` has nothing stashed (or there is no key).
 * engp_stash_drop: forgets the stash of the key of `j`.
 * engp_stash_take: makes the stash of the key of `j` a job (timestamp `now`, in no index,
 * counted in the queue's id counter; memory made room in its job table before the step), the
 * stash gone: *out, in the store or decoded into `space`; give it back with engp_done.
 */
static inline int engp_stash_id(ENG_CTX *c, const ENG_JOB *j, char *id);
static inline int engp_stash_drop(ENG_CTX *c, const ENG_JOB *j);
static inline int engp_stash_take(ENG_CTX *c, const ENG_JOB *j, int64_t now, ENG_JOB *space,
                                  ENG_JOB **out);
/*
 * Appends an event of kind `type` (events.h) for job `id` (NULL: a queue event), with the
 * previous state `prev` (0: none), a number and up to two strings (NULL: none).
 */
static inline int engp_event(ENG_CTX *c, int type, const char *id, size_t id_len, int prev,
                             int64_t num, const char *s1, const char *s2);
/* Work became ready (`many`: for more than one waiter). */
static inline void engp_signal_work(ENG_CTX *c, int many);
/* The queue's limits and rate window (engine/limits.h), kept with its settings. */
static inline eng_limits *engp_limits(ENG_CTX *c);

/* --- metrics (BullMQ's per-minute counts of finished jobs; the rule is eng_metrics_count) ---- */

/* The counters of the metrics of `s` (completed / failed): 1 and *m, or 0 if counting has not
 * begun. */
static inline int engp_metrics_get(ENG_CTX *c, jobq_state s, eng_metrics *m);
/* Writes the counters of `s`. */
static inline int engp_metrics_set(ENG_CTX *c, jobq_state s, const eng_metrics *m);
/* Puts `point`, then `zeros` zeros, at the head of the data points of `s` (newest first), then
 * keeps the first `max` (zeros < max). Memory reserved room for `max` points before the step. */
static inline int engp_metrics_push(ENG_CTX *c, jobq_state s, int64_t point, uint32_t zeros,
                                    uint32_t max);

#endif
