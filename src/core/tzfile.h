/*
 * Time zones from the system's tz database (TZif files, RFC 8536 versions 1 to 3) for the cron
 * evaluator (cron.c). Internal to the library.
 */
#ifndef JOBQ_TZFILE_H
#define JOBQ_TZFILE_H

#include <stdint.h>

typedef struct jobq_tz jobq_tz;

/*
 * Loads the zone `name`, read as luxon (cron-parser's date library) reads a zone name:
 * - "UTC", "GMT" (any case): UTC; "UTC+5", "utc-03:30": a fixed offset (luxon's form
 *   `UTC[+-]H[H][:MM]`);
 * - otherwise an IANA name such as "Europe/Berlin": the TZif file under $TZDIR, default
 *   /usr/share/zoneinfo (Debian package tzdata);
 * - NULL: the process's local zone, as Node uses when a schedule has no `tz`: $TZ (a zone name,
 *   ":name", a file path or a POSIX TZ string), else /etc/localtime, else UTC.
 * Returns 0, JOBQ_EINVAL for a malformed name, JOBQ_ENOTFOUND for an unknown zone, JOBQ_EIO
 * for an unreadable or damaged file, JOBQ_ENOMEM; jobq_error_message() names the zone.
 * Thread safety: any thread; a loaded zone is immutable and may be shared.
 */
int jobq_tz__load(jobq_tz **out, const char *name);
void jobq_tz__free(jobq_tz *tz);
/* The name given to jobq_tz__load ("local" for NULL). */
const char *jobq_tz__name(const jobq_tz *tz);

/* Offset from UTC, in seconds east, in force at `t` (seconds since the epoch). */
int32_t jobq_tz__offset(const jobq_tz *tz, int64_t t);

/*
 * The instant (seconds since the epoch) of the wall-clock time `local` (seconds since the epoch
 * of that wall-clock time read as UTC), with `guess` the offset to try first; *offset_out gets
 * the offset in force at the result. Resolved as luxon resolves it, because cron-parser's
 * results follow from it: a wall time that occurs twice (fall-back overlap) takes `guess` when
 * `guess` is one of its two offsets, else the first; a wall time that does not exist
 * (spring-forward gap) moves forward by the gap's length (02:30 in a 02:00->03:00 gap gives
 * 03:30 of the new offset; 02:15 in Lord Howe's 02:00->02:30 gap gives 02:45).
 */
int64_t jobq_tz__to_utc(const jobq_tz *tz, int64_t local, int32_t guess, int32_t *offset_out);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back; `month` 1-12. */
int64_t jobq_tz__days_from_civil(int64_t year, int month, int day);
void jobq_tz__civil_from_days(int64_t days, int64_t *year, int *month, int *day);
int jobq_tz__days_in_month(int64_t year, int month);

#endif
