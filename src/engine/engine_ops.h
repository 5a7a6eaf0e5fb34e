/*
 * The rules of the in-process engine, each written once over the primitives of engine.h:
 * placement on add, fetch, the lock check, complete, fail (retry now, retry at a time, for
 * good), release, stall (with the stall limit), promote, retry failed, remove, the keep
 * policies, dedup release and the drained event. Included by a backend after it defined the
 * primitives; static inline, so each backend gets its own copy compiled against its storage.
 *
 * Every rule that moves a job checks the move against the table of transitions.c first.
 * Rules that take a job by id expect the backend to have found it (and done what only it can
 * do: allocate, copy strings, set the result or the failure reason) before calling them.
 */
#ifndef JOBQ_ENGINE_ENGINE_OPS_H
#define JOBQ_ENGINE_ENGINE_OPS_H

#include <inttypes.h>
#include <string.h>

#include "engine/engine.h"

/* The deferred failure of a job that stalled more than the stall limit allows (BullMQ's). */
#define ENG_STALLED_REASON "job stalled more than allowable limit"
/* At most this many jobs go per step by a keep-by-age policy, and at most this many due
 * delayed jobs are promoted per fetch (as BullMQ's scripts bound them). */
#define ENG_STEP_MAX 1000

/* Forwards a negative code (the primitives' errors); memory's never fire. */
#define ENG_TRY(x)                                                                                 \
	do {                                                                                       \
		int eng_rc_ = (x);                                                                 \
		if (eng_rc_ < 0)                                                                   \
			return eng_rc_;                                                            \
	} while (0)

static inline int
eng_ev_job(ENG_CTX *c, int type, const ENG_JOB *j, int prev) {
	return engp_event(c, type, engp_id(j), engp_id_len(j), prev, 0, NULL, NULL);
}

/* --- the lock check -------------------------------------------------------------------------- */

/*
 * The precondition of every operation on an active job (backend.h's error contract): `j` is
 * the job found by `id` (NULL: none). JOBQ_ENOTFOUND, JOBQ_ESTATE (not active), JOBQ_ELOCKLOST
 * (another token, or the lock expired at or before `now`), or 0.
 */
static inline int
eng_check_lock(const ENG_JOB *j, const char *id, const char *token, int64_t now,
               const char *queue) {
	if (j == NULL)
		return jobq_error_set(JOBQ_ENOTFOUND, "job %s does not exist in queue %s",
		                      id ? id : "(null)", queue);
	if (engp_state(j) != JOBQ_STATE_ACTIVE)
		return jobq_error_set(JOBQ_ESTATE, "job %s is %s, not active", engp_id(j),
		                      jobq_state_name(engp_state(j)));
	const char *t = engp_token(j);
	if (token == NULL || t == NULL || strcmp(token, t) != 0)
		return jobq_error_set(JOBQ_ELOCKLOST, "job %s is locked by another token",
		                      engp_id(j));
	if (engp_lock_expiry(j) <= now)
		return jobq_error_set(JOBQ_ELOCKLOST,
		                      "the lock of job %s expired at %" PRId64 " (now %" PRId64 ")",
		                      engp_id(j), engp_lock_expiry(j), now);
	return 0;
}

/* --- placement ------------------------------------------------------------------------------- */

/* Waiting or prioritized by the job's priority (unlinked). `front_wait`: a job without
 * priority runs next (lifo, release); `front_prio`: first within its priority (release). */
static inline int
eng_put_ready(ENG_CTX *c, ENG_JOB *j, int front_wait, int front_prio) {
	if (ENG_FIELD(j, priority) > 0)
		return engp_put_prioritized(c, j, front_prio);
	return engp_put_waiting(c, j, front_wait);
}

static inline jobq_state
eng_ready_state(const ENG_JOB *j) {
	return ENG_FIELD(j, priority) > 0 ? JOBQ_STATE_PRIORITIZED : JOBQ_STATE_WAITING;
}

/*
 * A new job (record written, in no index): events added and waiting or delayed, and its
 * place: delayed until timestamp + delay, else waiting (the head with lifo) or prioritized.
 * Returns 1 when the job may wake a worker (delayed ones too: waiters re-arm their timers).
 */
static inline int
eng_place_new(ENG_CTX *c, ENG_JOB *j, const char *name, int64_t timestamp) {
	int64_t delay = ENG_FIELD(j, delay_ms);
	jobq_state to = delay > 0 ? JOBQ_STATE_DELAYED : eng_ready_state(j);
	ENG_TRY(jobq_eng__check_move(engp_id(j), ENG_GONE, to, "add"));
	ENG_TRY(engp_event(c, ENG_EV_ADDED, engp_id(j), engp_id_len(j), 0, 0, name, NULL));
	if (delay > 0) {
		int64_t due = timestamp + delay;
		ENG_TRY(engp_put_delayed(c, j, due));
		ENG_TRY(
		    engp_event(c, ENG_EV_DELAYED, engp_id(j), engp_id_len(j), 0, due, NULL, NULL));
	} else {
		ENG_TRY(eng_put_ready(c, j, engp_lifo(j), 0));
		ENG_TRY(eng_ev_job(c, ENG_EV_WAITING, j, 0));
	}
	return 1;
}

/* --- the drained event, dedup release, keep policies, deletion ------------------------------ */

/* A job left active for good (completed, failed): `drained` when nothing is waiting,
 * prioritized or active any more; under a global concurrency a fetcher may take one now. */
static inline int
eng_drained_check(ENG_CTX *c) {
	if (engp_limits(c)->concurrency > 0)
		engp_signal_work(c, 0);
	if (engp_count(c, JOBQ_STATE_WAITING) == 0 && engp_count(c, JOBQ_STATE_PRIORITIZED) == 0 &&
	    engp_count(c, JOBQ_STATE_ACTIVE) == 0)
		return engp_event(c, ENG_EV_DRAINED, NULL, 0, 0, 0, NULL, NULL);
	return 0;
}

/*
 * Releases the job's dedup key. A key whose TTL is over goes whoever owns it; on finish
 * (`finishing`) a key the job owns goes only if it has no TTL (a TTL keeps deduplicating
 * until it runs out); on deletion a key the job owns goes.
 */
static inline int
eng_dedup_release(ENG_CTX *c, const ENG_JOB *j, int finishing, int64_t now) {
	if (engp_dedup_id(j) == NULL)
		return 0;
	int owned = 0;
	int64_t expiry = 0;
	int rc = engp_dedup_find(c, j, &owned, &expiry);
	if (rc <= 0)
		return rc;
	if ((expiry > 0 && expiry <= now) || (owned && (!finishing || expiry == 0)))
		return engp_dedup_del(c, j);
	return 0;
}

/* When the dedup key an add makes for options `o` at `now` expires (0: while its owner lives):
 * after the TTL, but never for keepLastIfActive (as BullMQ 6.7.0). */
static inline int64_t
eng_dedup_expiry(const jobq_job_options *o, int64_t now) {
	return o->dedup_ttl_ms > 0 && !o->dedup_keep_last ? now + o->dedup_ttl_ms : 0;
}

/*
 * BullMQ 6.7.0's keepLastIfActive: an add deduplicated by a live key is stashed with the key
 * (the latest in place of an older one; the key loses its expiry) when it asks for
 * keepLastIfActive and the owner, in state `owner_state`, is active.
 */
static inline int
eng_dedup_stashes(const jobq_job_options *o, jobq_state owner_state) {
	return o->dedup_keep_last && owner_state == JOBQ_STATE_ACTIVE;
}

/*
 * Job `j` finished (completed, or failed for good): the add stashed with its dedup key, if
 * any, becomes the next job (an add's events, then waiting or delayed) and the key points at
 * it, without expiry; a stashed custom id that names a job already is not overwritten (event
 * `duplicated`, the stash goes). 1 when the key points at a new job, else 0.
 */
static inline int
eng_dedup_requeue(ENG_CTX *c, const ENG_JOB *j, int64_t now) {
	char id[JOBQ_ID_MAX + 1];
	int rc = engp_dedup_id(j) != NULL ? engp_stash_id(c, j, id) : 0;
	if (rc <= 0)
		return rc;
	if ((rc = engp_exists(c, id)) != 0) {
		ENG_TRY(rc);
		ENG_TRY(engp_stash_drop(c, j));
		return engp_event(c, ENG_EV_DUPLICATED, id, strlen(id), 0, 0, NULL, NULL);
	}
	ENG_JOB space, *n = NULL;
	ENG_TRY(engp_stash_take(c, j, now, &space, &n));
	rc = engp_dedup_point(c, n);
	int wake = rc < 0 ? rc : eng_place_new(c, n, engp_name(n), now);
	rc = wake < 0 ? wake : engp_save(c, n);
	engp_done(c, n);
	ENG_TRY(rc);
	if (wake > 0)
		engp_signal_work(c, 0);
	return 1;
}

/* The dedup key of finished job `j`: handed to the stashed add (eng_dedup_requeue), else
 * released (eng_dedup_release), as BullMQ 6 does on complete and on final failure. */
static inline int
eng_dedup_finish(ENG_CTX *c, const ENG_JOB *j, int64_t now) {
	int rc = eng_dedup_requeue(c, j, now);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	return eng_dedup_release(c, j, 1, now);
}

#ifdef ENG_FLOWS
/* flows (engine/flow_ops.h, included after this file by a backend with flows) */
static inline int eng_flow_deleted(ENG_CTX *c, ENG_JOB *j, int64_t now, int depth);
static inline int eng_flow_child_completed(ENG_CTX *c, ENG_JOB *j, const char *result, int64_t now);
static inline int eng_flow_child_failed(ENG_CTX *c, ENG_JOB *j, const char *reason, int64_t now,
                                        int deleted);
#endif

/* Deletes job `j` (any state): its dedup key if it owns it, its flow links, then the job. */
static inline int
eng_delete(ENG_CTX *c, ENG_JOB *j, int64_t now) {
	ENG_TRY(jobq_eng__check_move(engp_id(j), engp_state(j), ENG_GONE, "delete"));
	ENG_TRY(eng_dedup_release(c, j, 0, now));
#ifdef ENG_FLOWS
	ENG_TRY(eng_flow_deleted(c, j, now, 0));
#endif
	return engp_delete(c, j);
}

/* Deletes the oldest job of finished set `s` if it finished at or before `cutoff`: 1 if one
 * went, 0 if none. */
static inline int
eng_delete_oldest(ENG_CTX *c, jobq_state s, int64_t cutoff, int64_t now) {
	ENG_JOB space, *o = NULL;
	int64_t finished = 0;
	int rc = engp_first(c, s, &space, &o, &finished);
	if (rc <= 0)
		return rc;
	if (finished > cutoff) {
		engp_done(c, o);
		return 0;
	}
	rc = eng_delete(c, o, now);
	engp_done(c, o);
	return rc < 0 ? rc : 1;
}

/*
 * The keep policy of finished set `s` after job `just` landed there (`just` may be deleted):
 * remove it (KEEP_NONE), or remove those finished before now - age (at most ENG_STEP_MAX per
 * step, as BullMQ) and the oldest beyond the newest `count`.
 */
static inline int
eng_keep(ENG_CTX *c, jobq_state s, ENG_JOB *just, const jobq_keep *keep, int64_t now) {
	if (keep == NULL)
		return 0;
	if (keep->mode == JOBQ_KEEP_NONE)
		return eng_delete(c, just, now);
	if (keep->mode != JOBQ_KEEP_LIMIT)
		return 0;
	if (keep->age_ms >= 0) {
		for (int i = 0; i < ENG_STEP_MAX; i++) {
			int rc = eng_delete_oldest(c, s, now - keep->age_ms, now);
			if (rc <= 0) {
				ENG_TRY(rc);
				break;
			}
		}
	}
	if (keep->count >= 0) {
		while (engp_count(c, s) > (uint64_t)keep->count) {
			int rc = eng_delete_oldest(c, s, INT64_MAX, now);
			if (rc <= 0) {
				ENG_TRY(rc);
				break;
			}
		}
	}
	return 0;
}

/* --- metrics ---------------------------------------------------------------------------------- */

/* floor(t / 60000): the minute of time t (ms), for times before 1970 too. */
static inline int64_t
eng_minute(int64_t t) {
	return t >= 0 ? t / 60000 : -((-t + 59999) / 60000);
}

/*
 * BullMQ 6's metrics (lua/includes/metrics.lua is the same rule on Redis): `n` jobs of
 * finished set `s` finished at `now`, counted by a worker keeping `max` points (0: none). The
 * first count starts the clock (prev_ts = now, prev_count 0). Once the minute of `now` is
 * past that of prev_ts, the jobs counted before these `n`, minus prev_count, become the point
 * of prev_ts's minute, followed by a zero for each minute after it without a point (at most
 * `max` points in all); the points are cut to `max` and prev_ts / prev_count move on.
 */
static inline int
eng_metrics_count(ENG_CTX *c, jobq_state s, uint32_t n, int64_t now, uint32_t max) {
	if (max == 0 || n == 0)
		return 0;
	eng_metrics m = {0, 0, 0};
	int rc = engp_metrics_get(c, s, &m);
	ENG_TRY(rc);
	int64_t before = m.count;
	m.count += n;
	if (rc == 0) {
		m.prev_ts = now;
		m.prev_count = 0;
	} else if (eng_minute(now) > eng_minute(m.prev_ts)) {
		int64_t minutes = eng_minute(now) - eng_minute(m.prev_ts);
		uint32_t points = minutes > (int64_t)max ? max : (uint32_t)minutes;
		ENG_TRY(engp_metrics_push(c, s, before - m.prev_count, points - 1, max));
		m.prev_count = before;
		m.prev_ts = now;
	}
	return engp_metrics_set(c, s, &m);
}

/* --- fetch ------------------------------------------------------------------------------------ */

/* Ready job `j`, already out of its index, becomes active: locked until now + lock_ms (the
 * token is the backend's to set), started; event `active`. */
static inline int
eng_activate(ENG_CTX *c, ENG_JOB *j, int64_t lock_ms, int64_t now) {
	ENG_FIELD(j, processed_on) = now;
	ENG_FIELD(j, attempts_started)++;
	ENG_TRY(engp_put_active(c, j, now + lock_ms)); /* LMDB's running entry carries these */
	return eng_ev_job(c, ENG_EV_ACTIVE, j, JOBQ_STATE_WAITING);
}

/* Takes ready job `j` (fetch): out of waiting or prioritized, then eng_activate. */
static inline int
eng_take(ENG_CTX *c, ENG_JOB *j, int64_t lock_ms, int64_t now) {
	ENG_TRY(jobq_eng__check_move(engp_id(j), engp_state(j), JOBQ_STATE_ACTIVE, "fetch"));
	ENG_TRY(engp_unlink(c, j));
	return eng_activate(c, j, lock_ms, now);
}

/* Delayed job `j` becomes ready (due, or promoted by hand); event `waiting`. */
static inline int
eng_promote(ENG_CTX *c, ENG_JOB *j) {
	ENG_TRY(jobq_eng__check_move(engp_id(j), engp_state(j), eng_ready_state(j), "promote"));
	ENG_TRY(engp_unlink(c, j));
	ENG_FIELD(j, delay_ms) = 0;
	ENG_TRY(eng_put_ready(c, j, 0, 0));
	ENG_TRY(engp_save(c, j));
	return eng_ev_job(c, ENG_EV_WAITING, j, JOBQ_STATE_DELAYED);
}

/* Failed job `j` goes back to waiting or prioritized (retry failed); event `waiting`. */
static inline int
eng_retry_failed(ENG_CTX *c, ENG_JOB *j) {
	ENG_TRY(jobq_eng__check_move(engp_id(j), engp_state(j), eng_ready_state(j), "retry"));
	ENG_TRY(engp_unlink(c, j));
	ENG_FIELD(j, finished_on) = 0;
	ENG_FIELD(j, processed_on) = 0;
	ENG_TRY(engp_clear_failure(c, j));
	ENG_TRY(eng_put_ready(c, j, 0, 0));
	ENG_TRY(engp_save(c, j));
	return eng_ev_job(c, ENG_EV_WAITING, j, JOBQ_STATE_FAILED);
}

/* A delayed job promoted, or a failed job retried, by hand. */
static inline int
eng_back_to_ready(ENG_CTX *c, ENG_JOB *j) {
	if (engp_state(j) == JOBQ_STATE_FAILED)
		return eng_retry_failed(c, j);
	return eng_promote(c, j);
}

/* --- finishing and returning an active job ---------------------------------------------------- */

/*
 * Completes active job `j` (the lock checked; the backend set the result, `result` is its
 * JSON for the event): completed, event `completed`, the dedup key handed on or released
 * (eng_dedup_finish), the keep policy, and
 * `drained` when it was the last job. `j` may be gone afterwards.
 */
static inline int
eng_complete(ENG_CTX *c, ENG_JOB *j, const char *result, const jobq_keep *keep, int64_t now) {
	ENG_TRY(jobq_eng__check_move(engp_id(j), engp_state(j), JOBQ_STATE_COMPLETED, "complete"));
	ENG_TRY(engp_unlink(c, j));
	ENG_TRY(engp_drop_lock(c, j));
	ENG_FIELD(j, attempts_made)++;
	ENG_FIELD(j, finished_on) = now;
	ENG_TRY(engp_put_finished(c, j, JOBQ_STATE_COMPLETED));
	ENG_TRY(engp_save(c, j));
	ENG_TRY(engp_event(c, ENG_EV_COMPLETED, engp_id(j), engp_id_len(j), 0, 0,
	                   result ? result : "null", NULL));
#ifdef ENG_FLOWS
	ENG_TRY(eng_flow_child_completed(c, j, result, now));
#endif
	ENG_TRY(eng_dedup_finish(c, j, now));
	ENG_TRY(eng_keep(c, JOBQ_STATE_COMPLETED, j, keep, now));
	return eng_drained_check(c);
}

/*
 * Fails active job `j` as the core decided in `f` (the lock checked; the backend recorded the
 * reason and stack line, `reason` is the reason for the event): retry now (waiting or
 * prioritized; lifo puts a job without priority at the head), retry at f->retry_at_ms
 * (delayed), or for good (failed, `retries-exhausted` when the attempts are used up, the
 * dedup key handed on or released, the keep policy, `drained`). `j` may be gone afterwards.
 */
static inline int
eng_fail(ENG_CTX *c, ENG_JOB *j, const jobq_failure *f, const char *reason, int64_t now) {
	jobq_state to = f->retry_at_ms < 0     ? JOBQ_STATE_FAILED
	                : f->retry_at_ms > now ? JOBQ_STATE_DELAYED
	                                       : eng_ready_state(j);
	ENG_TRY(jobq_eng__check_move(engp_id(j), engp_state(j), to, "fail"));
	ENG_TRY(engp_unlink(c, j));
	ENG_TRY(engp_drop_lock(c, j));
	ENG_FIELD(j, attempts_made)++;
	if (to == JOBQ_STATE_DELAYED) {
		ENG_FIELD(j, delay_ms) = f->retry_at_ms - now;
		ENG_TRY(engp_put_delayed(c, j, f->retry_at_ms));
		ENG_TRY(engp_save(c, j));
		ENG_TRY(engp_event(c, ENG_EV_DELAYED, engp_id(j), engp_id_len(j), 0, f->retry_at_ms,
		                   NULL, NULL));
		engp_signal_work(c, 1); /* waiters re-arm their timers */
		return 0;
	}
	if (to != JOBQ_STATE_FAILED) {
		ENG_TRY(eng_put_ready(c, j, engp_lifo(j), 0));
		ENG_TRY(engp_save(c, j));
		ENG_TRY(eng_ev_job(c, ENG_EV_WAITING, j, JOBQ_STATE_ACTIVE));
		engp_signal_work(c, 0);
		return 0;
	}
	ENG_FIELD(j, finished_on) = now;
	ENG_TRY(engp_set_deferred(c, j, NULL));
	ENG_TRY(engp_put_finished(c, j, JOBQ_STATE_FAILED));
	ENG_TRY(engp_save(c, j));
	ENG_TRY(engp_event(c, ENG_EV_FAILED, engp_id(j), engp_id_len(j), 0, 0, reason, NULL));
	if (ENG_FIELD(j, attempts_made) >= f->attempts)
		ENG_TRY(engp_event(c, ENG_EV_RETRIES_EXHAUSTED, engp_id(j), engp_id_len(j), 0,
		                   (int64_t)ENG_FIELD(j, attempts_made), NULL, NULL));
	ENG_TRY(eng_metrics_count(c, JOBQ_STATE_FAILED, 1, now, f->metrics_max_points));
#ifdef ENG_FLOWS
	ENG_TRY(eng_flow_child_failed(c, j, reason, now, f->keep.mode == JOBQ_KEEP_NONE));
#endif
	ENG_TRY(eng_dedup_finish(c, j, now));
	ENG_TRY(eng_keep(c, JOBQ_STATE_FAILED, j, &f->keep, now));
	return eng_drained_check(c);
}

/* Returns active job `j` unfinished (the lock checked): first in line, at the head of waiting
 * or first of its priority; event `waiting`. */
static inline int
eng_release(ENG_CTX *c, ENG_JOB *j) {
	ENG_TRY(jobq_eng__check_move(engp_id(j), engp_state(j), eng_ready_state(j), "release"));
	ENG_TRY(engp_unlink(c, j));
	ENG_TRY(engp_drop_lock(c, j));
	ENG_TRY(eng_put_ready(c, j, 1, 1));
	ENG_TRY(engp_save(c, j));
	ENG_TRY(eng_ev_job(c, ENG_EV_WAITING, j, JOBQ_STATE_ACTIVE));
	engp_signal_work(c, 0);
	return 0;
}

/*
 * Active job `j` whose lock expired stalled: back to the head of waiting (whatever its
 * priority, as BullMQ's stalled check pushes it to wait), one stall more, and past
 * `max_stalled` a deferred failure the next fetch applies; events `waiting` and `stalled`.
 */
static inline int
eng_stall(ENG_CTX *c, ENG_JOB *j, uint32_t max_stalled) {
	ENG_TRY(jobq_eng__check_move(engp_id(j), engp_state(j), JOBQ_STATE_WAITING, "stall"));
	ENG_TRY(engp_unlink(c, j));
	ENG_TRY(engp_drop_lock(c, j));
	ENG_FIELD(j, stalled_count)++;
	if (ENG_FIELD(j, stalled_count) > max_stalled)
		ENG_TRY(engp_set_deferred(c, j, ENG_STALLED_REASON));
	ENG_TRY(engp_put_waiting(c, j, 1));
	ENG_TRY(engp_save(c, j));
	ENG_TRY(eng_ev_job(c, ENG_EV_WAITING, j, JOBQ_STATE_ACTIVE));
	return eng_ev_job(c, ENG_EV_STALLED, j, 0);
}

/* --- administration --------------------------------------------------------------------------- */

/* Removes job `j` by hand: refused (JOBQ_ESTATE, nothing changed) while it is active and
 * locked; event `removed`. */
static inline int
eng_remove(ENG_CTX *c, ENG_JOB *j, int64_t now) {
	jobq_state s = engp_state(j);
	if (s == JOBQ_STATE_ACTIVE && engp_lock_expiry(j) > now)
		return jobq_error_set(JOBQ_ESTATE, "job %s is active and locked", engp_id(j));
	ENG_TRY(eng_ev_job(c, ENG_EV_REMOVED, j, (int)s));
	return eng_delete(c, j, now);
}

/*
 * Promotes the delayed jobs due at or before `now`, at most `max`; returns how many (or an
 * error). A backend may define ENG_ON_PROMOTE(c, j) before including this file to see each
 * job just before it moves (memory records them, to undo the promotion when a later
 * allocation of the same step fails).
 */
#ifndef ENG_ON_PROMOTE
#define ENG_ON_PROMOTE(c, j) ((void)0)
#endif
static inline int
eng_promote_due(ENG_CTX *c, int64_t now, int max) {
	int n = 0;
	while (n < max) {
		ENG_JOB space, *d = NULL;
		int64_t due = 0;
		int rc = engp_first(c, JOBQ_STATE_DELAYED, &space, &d, &due);
		if (rc <= 0) {
			ENG_TRY(rc);
			break;
		}
		if (due > now) {
			engp_done(c, d);
			break;
		}
		ENG_ON_PROMOTE(c, d);
		rc = eng_promote(c, d);
		engp_done(c, d);
		ENG_TRY(rc);
		n++;
	}
	if (n > 0)
		engp_signal_work(c, n > 1);
	return n;
}

#endif
