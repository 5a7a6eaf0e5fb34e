/*
 * Job schedulers, the part every backend shares (scheduler.c): the next time of a cron pattern
 * scheduler as BullMQ's worker computes it. Internal to the library.
 */
#ifndef JOBQ_CORE_SCHED_H
#define JOBQ_CORE_SCHED_H

#include <stdint.h>

/*
 * The next time of pattern scheduler `sid` after `after_ms` (the later of it and `start_ms`,
 * if > 0), in zone `tz` (NULL or "": the local zone, as Node), as cron-parser computes it.
 * Returns 0 and *next_ms; JOBQ_ENOTFOUND (no error set) when there is none, or none before
 * `end_ms` (if > 0); JOBQ_EINVAL naming the field at fault for a pattern or zone that cannot be
 * evaluated.
 */
int jobq__sched_pattern_next(int64_t *next_ms, const char *sid, const char *pattern, const char *tz,
                             int64_t start_ms, int64_t end_ms, int64_t after_ms);

#endif
