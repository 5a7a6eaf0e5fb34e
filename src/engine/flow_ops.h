/*
 * Flows in the in-process engine: the rules of parents and children (BullMQ's, as the Redis
 * scripts apply them in lua/includes/parent.lua), written once over the primitives below.
 * A backend with flows defines ENG_FLOWS before including engine/engine_ops.h (whose
 * complete, fail and delete rules then call these), defines the primitives, and includes this
 * file after engine_ops.h.
 *
 * A child knows its parent (queue and id) and its policy; a parent keeps its children in four
 * lists (JOBQ_DEP_*): pending, processed (with results), ignored (with failure reasons) and
 * failed. The parent may sit in another queue of the same store: the primitives hand out that
 * queue's context within the same atomic step.
 */
#ifndef JOBQ_ENGINE_FLOW_OPS_H
#define JOBQ_ENGINE_FLOW_OPS_H

#include <stdio.h>

#include "engine/engine_ops.h"

/* --- primitives --------------------------------------------------------------------------- */

/* Puts an unlinked job in waiting-children. */
static inline int engp_put_waiting_children(ENG_CTX *c, ENG_JOB *j);
/* The parent of `j` if it has one that exists: 1 with its context, the parent and the
 * child's policy; else 0. */
static inline int engp_parent(ENG_CTX *c, ENG_JOB *j, ENG_CTX **pc, ENG_JOB **pj,
                              jobq_parent_policy *policy);
/* Moves child `j` (of context c) out of parent pj's pending list into list `to` (JOBQ_DEP_*,
 * or -1: dropped) with `value` (NULL: none): 1 when it was pending, else 0 (nothing done). */
static inline int engp_dep_settle(ENG_CTX *pc, ENG_JOB *pj, ENG_CTX *c, const ENG_JOB *j, int to,
                                  const char *value);
/* How many children of `pj` are in list `which`. */
static inline size_t engp_dep_count(ENG_CTX *pc, const ENG_JOB *pj, int which);
/* Pending child `i` (0-based) of `pj`: 1 with its context and job, 0 when that child no
 * longer exists (or i is past the end). */
static inline int engp_dep_pending_at(ENG_CTX *pc, ENG_JOB *pj, size_t i, ENG_CTX **cc,
                                      ENG_JOB **cj);
/* Drops pending entry `i` of `pj` (its child is gone). */
static inline int engp_dep_drop_pending(ENG_CTX *pc, ENG_JOB *pj, size_t i);
/* The child's key as flows name it ("<queue>:<id>"), written to buf. */
static inline void engp_child_key(ENG_CTX *c, const ENG_JOB *j, char *buf, size_t size);
/* Sets a deferred failure the backend copies (NULL clears it). */
static inline int engp_set_deferred_copy(ENG_CTX *c, ENG_JOB *j, const char *reason);

/* --- rules ------------------------------------------------------------------------------------ */

/*
 * A new job of a flow (record written, in no index): a job with children waits in
 * waiting-children (events added, waiting-children); the others are placed as any add.
 */
static inline int
eng_flow_place(ENG_CTX *c, ENG_JOB *j, size_t nchildren, const char *name, int64_t timestamp) {
	if (nchildren == 0)
		return eng_place_new(c, j, name, timestamp);
	ENG_TRY(jobq_eng__check_move(engp_id(j), ENG_GONE, JOBQ_STATE_WAITING_CHILDREN, "add"));
	ENG_TRY(engp_event(c, ENG_EV_ADDED, engp_id(j), engp_id_len(j), 0, 0, name, NULL));
	ENG_TRY(engp_put_waiting_children(c, j));
	return eng_ev_job(c, ENG_EV_WAITING_CHILDREN, j, 0);
}

/*
 * Parent `pj` leaves waiting-children or delayed for where its options put it: with a delay
 * and `now` >= 0, delayed until now + delay (event delayed); else the front of waiting or of
 * its priority (event waiting, prev waiting-children), waking a worker of its queue.
 */
static inline int
eng_parent_to_ready(ENG_CTX *pc, ENG_JOB *pj, int64_t now) {
	int64_t delay = ENG_FIELD(pj, delay_ms);
	jobq_state to = delay > 0 && now >= 0 ? JOBQ_STATE_DELAYED : eng_ready_state(pj);
	ENG_TRY(jobq_eng__check_move(engp_id(pj), engp_state(pj), to, "release parent"));
	ENG_TRY(engp_unlink(pc, pj));
	if (to == JOBQ_STATE_DELAYED) {
		ENG_TRY(engp_put_delayed(pc, pj, now + delay));
		ENG_TRY(engp_save(pc, pj));
		ENG_TRY(engp_event(pc, ENG_EV_DELAYED, engp_id(pj), engp_id_len(pj), 0, now + delay,
		                   NULL, NULL));
		engp_signal_work(pc, 1);
		return 0;
	}
	ENG_FIELD(pj, delay_ms) = 0;
	ENG_TRY(eng_put_ready(pc, pj, 1, 0));
	ENG_TRY(engp_save(pc, pj));
	ENG_TRY(eng_ev_job(pc, ENG_EV_WAITING, pj, JOBQ_STATE_WAITING_CHILDREN));
	engp_signal_work(pc, 0);
	return 0;
}

/* The parent goes on when it waits for children and none is pending any more. */
static inline int
eng_parent_release_if_ready(ENG_CTX *pc, ENG_JOB *pj, int64_t now) {
	if (engp_state(pj) != JOBQ_STATE_WAITING_CHILDREN ||
	    engp_dep_count(pc, pj, JOBQ_DEP_PENDING) > 0)
		return 0;
	return eng_parent_to_ready(pc, pj, now);
}

/* Whether parent `j` may complete: no pending child (JOBQ_ESTATE, BullMQ -4), no child
 * failed with JOBQ_PARENT_FAIL (JOBQ_ESTATE, BullMQ -9). Changes nothing. */
static inline int
eng_flow_complete_check(ENG_CTX *c, const ENG_JOB *j) {
	if (engp_dep_count(c, j, JOBQ_DEP_PENDING) > 0)
		return jobq_error_set(JOBQ_ESTATE, "job %s has pending children", engp_id(j));
	if (engp_dep_count(c, j, JOBQ_DEP_FAILED) > 0)
		return jobq_error_set(JOBQ_ESTATE,
		                      "job %s has a child that failed with failParentOnFailure",
		                      engp_id(j));
	return 0;
}

/* Child `j` completed with `result`: it leaves its parent's pending list with the result, and
 * the parent goes on when nothing else is pending. */
static inline int
eng_flow_child_completed(ENG_CTX *c, ENG_JOB *j, const char *result, int64_t now) {
	ENG_CTX *pc;
	ENG_JOB *pj;
	jobq_parent_policy policy;
	if (engp_parent(c, j, &pc, &pj, &policy) <= 0)
		return 0;
	int rc = engp_dep_settle(pc, pj, c, j, JOBQ_DEP_PROCESSED, result ? result : "null");
	if (rc <= 0)
		return rc;
	return eng_parent_release_if_ready(pc, pj, now);
}

/*
 * Child `j` failed for good with `reason`; its policy decides (BullMQ's wording for the
 * parent's failure, "child <key> failed"):
 *   FAIL: recorded as failed; the parent, waiting for children or delayed, goes to ready with
 *     that deferred failure, so that its next fetch fails it (a parent in another state is
 *     only marked, unless it already failed);
 *   CONTINUE: recorded as ignored, the parent goes to ready though children are pending;
 *   IGNORE: recorded as ignored, the dependency released;
 *   REMOVE: the dependency released;
 *   WAIT: the parent keeps waiting, unless the child is `deleted` as it fails (a keep policy
 *     that removes it): a removed child holds no parent.
 */
static inline int
eng_flow_child_failed(ENG_CTX *c, ENG_JOB *j, const char *reason, int64_t now, int deleted) {
	ENG_CTX *pc;
	ENG_JOB *pj;
	jobq_parent_policy policy;
	if (engp_parent(c, j, &pc, &pj, &policy) <= 0)
		return 0;
	if (policy == JOBQ_PARENT_WAIT && !deleted)
		return 0;
	int to = policy == JOBQ_PARENT_FAIL                                       ? JOBQ_DEP_FAILED
	         : policy == JOBQ_PARENT_IGNORE || policy == JOBQ_PARENT_CONTINUE ? JOBQ_DEP_IGNORED
	                                                                          : -1;
	int rc = engp_dep_settle(pc, pj, c, j, to, to == JOBQ_DEP_IGNORED ? reason : NULL);
	if (rc <= 0)
		return rc;
	if (policy == JOBQ_PARENT_FAIL) {
		char key[2 * JOBQ_QUEUE_NAME_MAX + 16], why[2 * JOBQ_QUEUE_NAME_MAX + 32];
		engp_child_key(c, j, key, sizeof(key));
		snprintf(why, sizeof(why), "child %s failed", key);
		jobq_state s = engp_state(pj);
		if (s == JOBQ_STATE_FAILED)
			return 0;
		ENG_TRY(engp_set_deferred_copy(pc, pj, why));
		if (s == JOBQ_STATE_WAITING_CHILDREN || s == JOBQ_STATE_DELAYED) {
			ENG_FIELD(pj, delay_ms) = 0;
			return eng_parent_to_ready(pc, pj, -1);
		}
		return engp_save(pc, pj);
	}
	if (policy == JOBQ_PARENT_CONTINUE) {
		if (engp_state(pj) != JOBQ_STATE_WAITING_CHILDREN)
			return 0;
		return eng_parent_to_ready(pc, pj, now);
	}
	return eng_parent_release_if_ready(pc, pj, now);
}

/* Child `j` is being deleted (removed, cleaned, drained, dropped by a keep policy): a pending
 * dependency is released, and the parent goes on (to ready at once, as BullMQ's remove does)
 * when nothing else is pending. */
static inline int
eng_flow_child_deleted(ENG_CTX *c, ENG_JOB *j) {
	ENG_CTX *pc;
	ENG_JOB *pj;
	jobq_parent_policy policy;
	if (engp_parent(c, j, &pc, &pj, &policy) <= 0)
		return 0;
	int rc = engp_dep_settle(pc, pj, c, j, -1, NULL);
	if (rc <= 0)
		return rc;
	return eng_parent_release_if_ready(pc, pj, -1);
}

/* Whether removing `j` would meet an active, locked job among it and its pending
 * descendants (BullMQ then removes none of them). Changes nothing. */
static inline int
eng_flow_tree_locked(ENG_CTX *c, ENG_JOB *j, int64_t now, int depth) {
	if (engp_state(j) == JOBQ_STATE_ACTIVE && engp_lock_expiry(j) > now)
		return 1;
	if (depth > JOBQ_FLOW_MAX_DEPTH)
		return 0;
	size_t n = engp_dep_count(c, j, JOBQ_DEP_PENDING);
	for (size_t i = 0; i < n; i++) {
		ENG_CTX *cc;
		ENG_JOB *cj;
		if (engp_dep_pending_at(c, j, i, &cc, &cj) > 0 &&
		    eng_flow_tree_locked(cc, cj, now, depth + 1))
			return 1;
	}
	return 0;
}

/*
 * Job `j` is being deleted (eng_delete): its pending children go first (each with event
 * removed, recursively: BullMQ's remove takes a parent's unfinished children with it), then
 * a parent of its own counts it as gone.
 */
static inline int
eng_flow_deleted(ENG_CTX *c, ENG_JOB *j, int64_t now, int depth) {
	while (depth <= JOBQ_FLOW_MAX_DEPTH && engp_dep_count(c, j, JOBQ_DEP_PENDING) > 0) {
		ENG_CTX *cc;
		ENG_JOB *cj;
		int found = engp_dep_pending_at(c, j, 0, &cc, &cj);
		ENG_TRY(found);
		if (found == 0) {
			/* a child that is gone: drop its entry */
			ENG_TRY(engp_dep_drop_pending(c, j, 0));
			continue;
		}
		ENG_TRY(engp_dep_settle(c, j, cc, cj, -1, NULL));
		ENG_TRY(eng_ev_job(cc, ENG_EV_REMOVED, cj, (int)engp_state(cj)));
		ENG_TRY(eng_flow_deleted(cc, cj, now, depth + 1));
		ENG_TRY(jobq_eng__check_move(engp_id(cj), engp_state(cj), ENG_GONE, "delete"));
		ENG_TRY(eng_dedup_release(cc, cj, 0, now));
		ENG_TRY(engp_delete(cc, cj));
	}
	return eng_flow_child_deleted(c, j);
}

#endif
