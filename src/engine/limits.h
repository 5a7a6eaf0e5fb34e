/*
 * The queue limits of the in-process engine (memory, LMDB): global concurrency, the global
 * rate limit and the rate window, with BullMQ 6's rules (its moveToActive and the
 * `limiter` key; lua/includes/fetch.lua has the same rules for Redis):
 *
 * - the rate limit in force for a fetch: the queue's `max` if set, else the fetcher's
 *   limiter `max`; its window: the fetcher's `duration` if set, else the queue's (1000 if
 *   neither: a queue `max` stored without a duration);
 * - the window opens with the first job counted in it and lasts its duration; a job that
 *   will run counts (a job failed for its deferred failure does not); once `max` jobs are
 *   counted, nothing starts until the window ends (the fetch reports the ms left);
 * - the rate limiter is checked first, then pause and the global concurrency (at most
 *   `concurrency` jobs active);
 * - rate_limit(ms) fills the window for `ms`, for any `max`: it holds back only fetchers
 *   with a rate limit in force, as in BullMQ.
 *
 * Pure functions over the limits record that each backend keeps with its queue settings.
 */
#ifndef JOBQ_ENGINE_LIMITS_H
#define JOBQ_ENGINE_LIMITS_H

#include <stdint.h>

#include "jobq/sys/backend.h"

/* A queue's limits and rate window (all 0: none). Five int64 in a row: LMDB stores them as
 * the last fields of its queue record. */
typedef struct eng_limits {
	int64_t concurrency;
	int64_t max;
	int64_t duration;
	int64_t used;       /* jobs counted in the current window */
	int64_t window_end; /* when the window ends; 0: none open */
} eng_limits;

/* The window ended at or before `now`: forgotten (BullMQ's limiter key expired). */
static inline void
eng_limits_expire(eng_limits *l, int64_t now) {
	if (l->window_end != 0 && l->window_end <= now) {
		l->used = 0;
		l->window_end = 0;
	}
}

/* The rate limit in force for a fetcher: *max 0 when none. */
static inline void
eng_limits_in_force(const eng_limits *l, const jobq_fetch_info *info, int64_t *max,
                    int64_t *duration) {
	int64_t wmax = info != NULL ? info->limiter_max : 0;
	int64_t wdur = info != NULL ? info->limiter_duration_ms : 0;
	*max = l->max > 0 ? l->max : wmax > 0 ? wmax : 0;
	*duration = wdur > 0 ? wdur : l->duration > 0 ? l->duration : 1000;
}

/*
 * Whether a fetch may take one more job now, `active` jobs being active: 0 yes, JOBQ_ENOJOB
 * no (error not set). *wait gets the ms until the window ends when the rate limiter said no,
 * else 0.
 */
static inline int
eng_limits_gate(eng_limits *l, int paused, uint64_t active, const jobq_fetch_info *info,
                int64_t now, int64_t *wait) {
	int64_t max, duration;
	*wait = 0;
	eng_limits_expire(l, now);
	eng_limits_in_force(l, info, &max, &duration);
	if (max > 0 && l->used >= max) {
		*wait = l->window_end > now ? l->window_end - now : 0;
		if (*wait > 0)
			return JOBQ_ENOJOB;
	}
	if (paused || (l->concurrency > 0 && active >= (uint64_t)l->concurrency))
		return JOBQ_ENOJOB;
	return 0;
}

/* A job taken to run counts against the rate limit in force (none: not counted). */
static inline void
eng_limits_count(eng_limits *l, const jobq_fetch_info *info, int64_t now) {
	int64_t max, duration;
	eng_limits_in_force(l, info, &max, &duration);
	if (max > 0 && ++l->used == 1)
		l->window_end = now + duration;
}

/* Whether the global concurrency holds every fetch back now (the blocking waits sleep on;
 * a fetcher held back by the rate limiter waits for the window itself). */
static inline int
eng_limits_maxed(const eng_limits *l, uint64_t active) {
	return l->concurrency > 0 && active >= (uint64_t)l->concurrency;
}

/* set_limits: the limits named in `what` take l's values (0: removed). */
static inline void
eng_limits_set(eng_limits *l, const jobq_queue_limits *v, unsigned int what) {
	if (what & JOBQ_LIMITS_CONCURRENCY)
		l->concurrency = v->concurrency;
	if (what & JOBQ_LIMITS_RATE) {
		l->max = v->max;
		l->duration = v->duration_ms;
	}
}

/* get_limits. */
static inline void
eng_limits_get(jobq_queue_limits *out, const eng_limits *l, int64_t now) {
	out->concurrency = l->concurrency;
	out->max = l->max;
	out->duration_ms = l->duration;
	int open = l->window_end > now;
	out->window_left_ms = open ? l->window_end - now : 0;
	out->window_used = open ? l->used : 0;
}

/* rate_limit: the window is full for `ms` from now. */
static inline void
eng_limits_block(eng_limits *l, int64_t ms, int64_t now) {
	l->used = JOBQ_RATE_LIMITED_COUNT;
	l->window_end = now + ms;
}

#endif
