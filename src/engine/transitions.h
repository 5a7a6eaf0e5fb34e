/*
 * The legal transitions of a job between states: one table (transitions.c), and the check
 * every move of the in-process engine (engine_ops.h) makes before it changes anything.
 */
#ifndef JOBQ_ENGINE_TRANSITIONS_H
#define JOBQ_ENGINE_TRANSITIONS_H

#include <stdint.h>

#include "jobq/job.h"

/*
 * Where a job is not in any state: before it is added, and after it is deleted (removed,
 * cleaned, drained, or dropped by a keep policy). A move from ENG_GONE is an add, a move to it
 * a deletion.
 */
#define ENG_GONE JOBQ_STATE_UNKNOWN

/* Bit `to` of jobq_eng__legal[from] is set when a job may move from `from` to `to`. */
extern const uint16_t jobq_eng__legal[JOBQ_STATE__COUNT];

/* Whether moving a job from `from` to `to` is legal (a lookup, for the hot path). */
static inline int
jobq_eng__move_legal(jobq_state from, jobq_state to) {
	return (unsigned)from < JOBQ_STATE__COUNT && (unsigned)to < JOBQ_STATE__COUNT &&
	       (jobq_eng__legal[from] >> to & 1u);
}

/* The check of a move: 0 when legal, else JOBQ_ESTATE with a message naming the job, the
 * states and the operation. */
int jobq_eng__move_refused(const char *job_id, jobq_state from, jobq_state to, const char *op);

/* Checks the move of job `id` from `from` to `to` for operation `op`: 0, or JOBQ_ESTATE. */
static inline int
jobq_eng__check_move(const char *id, jobq_state from, jobq_state to, const char *op) {
	if (jobq_eng__move_legal(from, to))
		return 0;
	return jobq_eng__move_refused(id, from, to, op);
}

#endif
