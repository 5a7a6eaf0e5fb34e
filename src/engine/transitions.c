/*
 * The table of legal transitions (DESIGN.md, "Job model"). Every move made by the in-process
 * engine (engine_ops.h) is checked against it before anything changes; the conformance suite
 * holds the Redis engine (its Lua scripts) to the same moves.
 *
 *   from          to                                 by
 *   (new)         waiting, prioritized, delayed      add
 *   waiting       active                             fetch
 *   prioritized   active                             fetch
 *   delayed       waiting, prioritized               promote (due, or by hand)
 *   active        waiting, prioritized               release, stall, retry now
 *   active        delayed                            retry at a time (backoff)
 *   active        completed, failed                  complete, fail for good
 *   failed        waiting, prioritized               retry failed
 *   (new)         waiting-children                   add of a parent (flows)
 *   waiting-ch.   waiting, prioritized, delayed      its children done, or one failed with
 *                                                    a policy that moves it on
 *   any state     (gone)                             remove, clean, drain, keep policy
 *
 * A completed job stays completed; the queue-level "paused" state is not reached by the
 * in-process engine.
 */
#include <stdint.h>

#include "jobq/sys/backend.h"
#include "engine/transitions.h"

#define B(s)  (uint16_t)(1u << (s))
#define READY (B(JOBQ_STATE_WAITING) | B(JOBQ_STATE_PRIORITIZED))

const uint16_t jobq_eng__legal[JOBQ_STATE__COUNT] = {
    [ENG_GONE] = READY | B(JOBQ_STATE_DELAYED) | B(JOBQ_STATE_WAITING_CHILDREN),
    [JOBQ_STATE_WAITING] = B(JOBQ_STATE_ACTIVE) | B(ENG_GONE),
    [JOBQ_STATE_PRIORITIZED] = B(JOBQ_STATE_ACTIVE) | B(ENG_GONE),
    [JOBQ_STATE_DELAYED] = READY | B(ENG_GONE),
    [JOBQ_STATE_ACTIVE] = READY | B(JOBQ_STATE_DELAYED) | B(JOBQ_STATE_COMPLETED) |
                          B(JOBQ_STATE_FAILED) | B(ENG_GONE),
    [JOBQ_STATE_COMPLETED] = B(ENG_GONE),
    [JOBQ_STATE_FAILED] = READY | B(ENG_GONE),
    [JOBQ_STATE_PAUSED] = B(ENG_GONE),
    [JOBQ_STATE_WAITING_CHILDREN] = READY | B(JOBQ_STATE_DELAYED) | B(ENG_GONE),
};

static const char *
name_of(jobq_state s) {
	return s == ENG_GONE ? "(gone)" : jobq_state_name(s);
}

int
jobq_eng__move_refused(const char *job_id, jobq_state from, jobq_state to, const char *op) {
	return jobq_error_set(JOBQ_ESTATE, "%s: job %s cannot move from %s to %s", op,
	                      job_id ? job_id : "(null)", name_of(from), name_of(to));
}
