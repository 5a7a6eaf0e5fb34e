/*
 * The job scheduler rules of the in-process engine (memory, LMDB), as BullMQ 6 keeps them on
 * Redis (bullmq-protocol.md §4.21; the Redis backend's lua/upsertJobScheduler-16.lua,
 * updateJobScheduler-16.lua, removeJobScheduler-16.lua): one pending iteration per scheduler,
 * the next created by the fetch of the current one; an update replaces an iteration that
 * waits; drain, clean and remove keep the pending iteration; the stall limit spares the
 * iterations of a live scheduler.
 *
 * A backend includes this after engine_ops.h, having defined these primitives too:
 *
 *   engp_sched_get(c, sid, &text, &len)     1 and the text of the record (valid until the
 *                                            step changes it), 0 when there is none
 *   engp_sched_put(c, sid, text, len)       writes the record
 *   engp_sched_del(c, sid)                  deletes the record
 *   engp_find(c, id, space, &out)           1 and job `id` (give it back with engp_done), 0
 *   engp_prepare(c, id, name, data, len, o, space)
 *                                           sets aside in `space` what creating job `id`
 *                                           needs, so that engp_create cannot fail where
 *                                           a failure would leave a change behind (memory,
 *                                           which has no transaction to abort); a failure
 *                                           changes nothing
 *   engp_unprepare(c, space)                gives it back (the step ends without the create)
 *   engp_create(c, id, name, data, len, o, timestamp, space, &out)
 *                                           creates job `id` (options `o`, its delay from
 *                                           o->delay_ms) in no index from what engp_prepare
 *                                           set aside, counting the add in the queue's id
 *                                           counter; give it back with engp_done
 */
#ifndef JOBQ_ENGINE_SCHED_H
#define JOBQ_ENGINE_SCHED_H

#include "backends/backend.h"
#include "engine/sched_rec.h"

/* Scheduler `sid`'s record: 1 and *out (jobq_eng__sched_clear it), 0 when there is none. */
static inline int
eng_sched_load(ENG_CTX *c, const char *sid, eng_sched *out) {
	const char *text = NULL;
	size_t len = 0;
	int rc = engp_sched_get(c, sid, &text, &len);
	if (rc <= 0)
		return rc;
	rc = jobq_eng__sched_decode(out, sid, text, len);
	return rc < 0 ? rc : 1;
}

/* Writes scheduler `sid`'s record. */
static inline int
eng_sched_store(ENG_CTX *c, const char *sid, const eng_sched *s) {
	char *text = NULL;
	size_t len = 0;
	int rc = jobq_eng__sched_encode(&text, &len, s);
	if (rc < 0)
		return rc;
	rc = engp_sched_put(c, sid, text, len);
	jobq__free(text);
	return rc;
}

/* Whether job `j` is the pending iteration of its scheduler (1), or not (0). */
static inline int
eng_sched_is_pending(ENG_CTX *c, const ENG_JOB *j) {
	char sid[JOBQ_ID_MAX + 1];
	int64_t millis;
	if (!jobq_eng__iteration_of(sid, &millis, engp_id(j), engp_id_len(j)))
		return 0;
	eng_sched s;
	int rc = eng_sched_load(c, sid, &s);
	if (rc <= 0)
		return rc;
	rc = s.next_ms == millis;
	jobq_eng__sched_clear(&s);
	return rc;
}

/*
 * Active job `j` whose lock expired stalled (eng_stall), where the stall limit spares an
 * iteration of a scheduler that still exists, pending or running, as BullMQ 6's stalled check
 * does (bullmq-protocol.md §4.8): it goes back to waiting however often it stalled, its stall
 * count still grows. Once the scheduler is removed the limit applies again.
 */
static inline int
eng_sched_stall(ENG_CTX *c, ENG_JOB *j, uint32_t max_stalled) {
	char sid[JOBQ_ID_MAX + 1];
	int64_t millis;
	const char *text = NULL;
	size_t len = 0;
	int live = 0;
	if (jobq_eng__iteration_of(sid, &millis, engp_id(j), engp_id_len(j)) &&
	    (live = engp_sched_get(c, sid, &text, &len)) < 0)
		return live;
	return eng_stall(c, j, live ? UINT32_MAX : max_stalled);
}

/*
 * An iteration about to be added: its options from the template, and what the backend set
 * aside for it (engp_prepare), so that the add cannot fail once the step has begun to change
 * the store. A failed step gives it back with eng_iteration_drop.
 */
typedef struct eng_iteration {
	jobq_job_options o;
	const char *custom; /* o.backoff.custom_type, owned */
	ENG_JOB space;
} eng_iteration;

/* Prepares iteration `id` (at s->next_ms) of scheduler `s`; a failure changes nothing. */
static inline int
eng_iteration_prepare(ENG_CTX *c, eng_iteration *it, const eng_sched *s, const char *id,
                      int64_t now) {
	int rc = jobq__opts_from_json(&it->o, s->opts_json, strlen(s->opts_json));
	if (rc < 0)
		return rc;
	it->custom = it->o.backoff.custom_type;
	it->o.delay_ms = s->next_ms > now ? s->next_ms - now : 0;
	it->o.timestamp = now;
	it->o.job_id = id;
	rc = engp_prepare(c, id, s->name, s->data, strlen(s->data), &it->o, &it->space);
	if (rc < 0)
		jobq__free((char *)(uintptr_t)it->custom);
	return rc;
}

static inline void
eng_iteration_drop(ENG_CTX *c, eng_iteration *it) {
	engp_unprepare(c, &it->space);
	jobq__free((char *)(uintptr_t)it->custom);
}

/* Adds the prepared iteration `id` of scheduler `s` with its template: events added, then
 * delayed or waiting. Returns 1 when it may wake a worker. */
static inline int
eng_iteration_add(ENG_CTX *c, eng_iteration *it, const eng_sched *s, const char *id, int64_t now) {
	ENG_JOB *j = NULL;
	int rc = engp_create(c, id, s->name, s->data, strlen(s->data), &it->o, now, &it->space, &j);
	jobq__free((char *)(uintptr_t)it->custom);
	if (rc < 0)
		return rc;
	int wake = eng_place_new(c, j, s->name, now);
	rc = wake < 0 ? wake : engp_save(c, j);
	engp_done(c, j);
	return rc < 0 ? rc : wake;
}

/*
 * Creates or updates scheduler `sid` (the scheduler_upsert slot; see sys/backend.h) and its
 * first iteration, whose id goes to `out`. Returns 1 when the iteration may wake a worker.
 */
static inline int
eng_sched_upsert(ENG_CTX *c, jobq_job_id *out, const char *sid, const jobq_scheduler_spec *spec,
                 int64_t pattern_next, int64_t now) {
	eng_sched prev, s;
	char cid[JOBQ_ID_MAX + 1], id[JOBQ_ID_MAX + 1];
	ENG_JOB cspace, *cur = NULL;
	int have = eng_sched_load(c, sid, &prev), rc = 0;
	if (have < 0)
		return have;
	cid[0] = '\0';
	if (have) {
		jobq_eng__iteration_id(cid, sid, prev.next_ms);
		if ((rc = engp_find(c, cid, &cspace, &cur)) < 0)
			goto out_prev;
		jobq_state st = rc ? engp_state(cur) : JOBQ_STATE_UNKNOWN;
		if (rc && st != JOBQ_STATE_WAITING && st != JOBQ_STATE_PRIORITIZED &&
		    st != JOBQ_STATE_DELAYED) {
			engp_done(c,
			          cur); /* running or finished: it stays, the new one goes beside */
			cur = NULL;
		}
	}
	if ((rc = jobq_eng__sched_make(&s, spec, have ? &prev : NULL, cur != NULL, pattern_next,
	                               now)) < 0)
		goto out_cur;
	/* an iteration id taken by another job: an every scheduler takes the next free slot */
	for (int scans = 0;; scans++) {
		jobq_eng__iteration_id(id, sid, s.next_ms);
		ENG_JOB space, *other = NULL;
		if (cur != NULL && strcmp(id, cid) == 0)
			break;
		if ((rc = engp_find(c, id, &space, &other)) <= 0)
			break;
		engp_done(c, other);
		if (s.every_ms <= 0 || scans == 32) {
			rc = jobq_error_set(
			    JOBQ_EEXISTS,
			    "job scheduler %s: its next iteration's id %s is taken by "
			    "another job",
			    sid, id);
			break;
		}
		s.next_ms += s.every_ms;
	}
	/* what may fail first (the new iteration set aside, the record), then the changes that
	 * cannot: the replaced iteration deleted (no event, as BullMQ), the new one added */
	eng_iteration it;
	if (rc >= 0 && (rc = eng_iteration_prepare(c, &it, &s, id, now)) >= 0 &&
	    (rc = eng_sched_store(c, sid, &s)) < 0)
		eng_iteration_drop(c, &it);
	if (rc >= 0 && cur != NULL) {
		rc = eng_delete(c, cur, now);
		engp_done(c, cur);
		cur = NULL;
		if (rc < 0)
			eng_iteration_drop(c, &it);
	}
	if (rc >= 0 && (rc = eng_iteration_add(c, &it, &s, id, now)) >= 0)
		snprintf(out->str, sizeof(out->str), "%s", id);
	jobq_eng__sched_clear(&s);
out_cur:
	if (cur != NULL)
		engp_done(c, cur);
out_prev:
	if (have)
		jobq_eng__sched_clear(&prev);
	return rc;
}

/*
 * The fetch of job `id` (the scheduler_next slot): if it is the pending iteration of its
 * scheduler and the series goes on, the next iteration is added and the scheduler moves on.
 * Returns 1 when an iteration was added, 0 when there was none to add (event `duplicated`
 * when it existed already), JOBQ_EINVAL when the scheduler cannot be evaluated.
 */
static inline int
eng_sched_next(ENG_CTX *c, const char *id, size_t id_len, int64_t now) {
	char sid[JOBQ_ID_MAX + 1], nid[JOBQ_ID_MAX + 1];
	int64_t millis, next = 0;
	if (!jobq_eng__iteration_of(sid, &millis, id, id_len))
		return 0;
	eng_sched s;
	int rc = eng_sched_load(c, sid, &s);
	if (rc <= 0)
		return rc;
	if (s.next_ms == millis && (rc = jobq_eng__sched_following(&next, &s, sid, now)) > 0) {
		size_t n = jobq_eng__iteration_id(nid, sid, next);
		ENG_JOB space, *other = NULL;
		if ((rc = engp_find(c, nid, &space, &other)) > 0) {
			engp_done(c, other);
			rc = engp_event(c, ENG_EV_DUPLICATED, nid, n, 0, 0, NULL, NULL);
		} else if (rc == 0) {
			eng_iteration it;
			s.next_ms = next;
			s.iterations++;
			if ((rc = eng_iteration_prepare(c, &it, &s, nid, now)) >= 0 &&
			    (rc = eng_sched_store(c, sid, &s)) < 0)
				eng_iteration_drop(c, &it);
			if (rc >= 0 && (rc = eng_iteration_add(c, &it, &s, nid, now)) >= 0)
				rc = 1;
		}
	} else if (rc >= 0) {
		rc = 0; /* not the pending iteration, or the series ended */
	}
	jobq_eng__sched_clear(&s);
	return rc;
}

/* Removes scheduler `sid` and its pending iteration if it is delayed (event removed). */
static inline int
eng_sched_remove(ENG_CTX *c, const char *sid, int64_t now) {
	eng_sched s;
	int rc = eng_sched_load(c, sid, &s);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return jobq_error_set(JOBQ_ENOTFOUND, "no job scheduler '%s'", sid);
	char id[JOBQ_ID_MAX + 1];
	size_t n = jobq_eng__iteration_id(id, sid, s.next_ms);
	jobq_eng__sched_clear(&s);
	ENG_JOB space, *j = NULL;
	if ((rc = engp_find(c, id, &space, &j)) > 0) {
		if (engp_state(j) == JOBQ_STATE_DELAYED &&
		    (rc = engp_event(c, ENG_EV_REMOVED, id, n, JOBQ_STATE_DELAYED, 0, NULL,
		                     NULL)) >= 0)
			rc = eng_delete(c, j, now);
		engp_done(c, j);
	}
	return rc < 0 ? rc : engp_sched_del(c, sid);
}

#endif
