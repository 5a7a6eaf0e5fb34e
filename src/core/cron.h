/*
 * Cron patterns as BullMQ 6.7.0 evaluates them (npm cron-parser 5.10.3): parsing and the next
 * run time in a time zone. Internal to the library; the job schedulers call it.
 */
#ifndef JOBQ_CRON_H
#define JOBQ_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "tzfile.h"

/* A parsed pattern: one bit per allowed value of each field. */
typedef struct jobq_cron {
	uint64_t second; /* bits 0-59 */
	uint64_t minute; /* bits 0-59 */
	uint32_t hour;   /* bits 0-23 */
	uint32_t mday;   /* bits 1-31 */
	uint16_t month;  /* bits 1-12 */
	uint8_t wday;    /* bits 0-7 as written (0 = Sunday; a 7 left by a range never matches) */
	uint8_t wday_lastd; /* with `L` in the field: weekdays (0-6) that match in a month's last 7
	                       days */
	uint8_t nth;        /* `#n`: 1-5, 0 for none, 255 for a fractional n (never matches) */
	uint8_t mday_last;  /* `L` in the day-of-month field: the month's last day */
	uint8_t wday_last;  /* `L` in the day-of-week field */
	uint8_t mday_star;  /* the field is exactly `*` or `?` (day rules: see cron.c) */
	uint8_t wday_star;
} jobq_cron;

/*
 * Parses `pattern` as cron-parser does: 6 fields (second first) or fewer, the missing ones
 * taken from `0 * * * * *` from the left (so 5 fields have no seconds); `*`, `?`, lists, ranges,
 * steps, JAN-DEC and SUN-SAT (any case), `L` in the day of month, `nL` and `n#k` in the day of
 * week, and the aliases @yearly @annually @monthly @weekly @daily @hourly @minutely @secondly
 * @weekdays @weekends. Refuses what cron-parser refuses, and `H` (cron-parser's random values,
 * which differ at each evaluation without a hash seed). On failure returns JOBQ_EINVAL and
 * writes to `err` (if errlen > 0) a message naming the field and the text at fault; *out is
 * then unspecified. Thread safety: any thread.
 */
int jobq_cron__parse(jobq_cron *out, const char *pattern, char *err, size_t errlen);

/*
 * The first run time strictly after `after_ms` (ms since the epoch), in whole seconds, of `c`
 * evaluated in the zone `tz` (NULL: UTC), as cron-parser's next() computes it from
 * currentDate = after_ms, DST transitions included (see cron.c). Returns 0 and sets *next_ms,
 * or JOBQ_ENOTFOUND when there is none (a pattern that never matches, such as `0 0 31 2,4 *`,
 * where cron-parser gives up after its step limit). JOBQ_EINVAL for `after_ms` beyond what a
 * JavaScript date holds. For a BullMQ scheduler: `after_ms` is the later of the millis and the
 * start date, a result after the end date means no next iteration (cron-parser refuses it),
 * and a scheduler without `tz` runs in the local zone (jobq_tz__load with NULL), as Node does.
 * Thread safety: any thread.
 */
int jobq_cron__next(const jobq_cron *c, const jobq_tz *tz, int64_t after_ms, int64_t *next_ms);

#endif
