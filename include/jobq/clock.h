/**
 * @file
 * jobq — clocks. The core reads time through a clock: the system clock by default, or a
 * manual clock in tests, so delays, backoff, lock expiry and stalls are testable without
 * sleeping (memory and LMDB backends; Redis lock TTLs run on server time).
 */
#ifndef JOBQ_CLOCK_H
#define JOBQ_CLOCK_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A clock: the system clock or a manual one (opaque). */
typedef struct jobq_clock jobq_clock;

/** The shared system clock (milliseconds since the Unix epoch). Never freed. */
JOBQ_EXTERN jobq_clock *jobq_clock_system(void);

/**
 * A manual clock starting at `start_ms`; time moves only with jobq_clock_advance/set.
 * Free it after every store that uses it is closed. Thread safety: any thread.
 */
JOBQ_EXTERN int jobq_clock_manual_new(jobq_clock **out, int64_t start_ms);
/** Frees a manual clock (the system clock is ignored). NULL is a no-op. */
JOBQ_EXTERN void jobq_clock_free(jobq_clock *clock);

/** Current time in ms. Thread safety: any thread. */
JOBQ_EXTERN int64_t jobq_clock_now(jobq_clock *clock);

/**
 * Moves a manual clock forward by `ms` (>= 0) and wakes every worker and waiter that uses it.
 * JOBQ_EINVAL on the system clock or a negative step. Thread safety: any thread.
 */
JOBQ_EXTERN int jobq_clock_advance(jobq_clock *clock, int64_t ms);

#ifdef __cplusplus
}
#endif
#endif
