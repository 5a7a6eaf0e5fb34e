/*
 * Unit tests of the cron evaluator (src/core/cron.c): what parses to what, the errors (each
 * names the field and the text), and next run times, DST transitions included. The table
 * test (unit.cron_table) compares with cron-parser itself; these pin the cases by hand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/cron.h"
#include "jobq.h"

/* ms since the epoch of a UTC date and time */
static int64_t
utc(int y, int mo, int d, int h, int mi, int s) {
	return (jobq_tz__days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000;
}

static uint64_t
bits(const int *v, size_t n) {
	uint64_t b = 0;
	for (size_t i = 0; i < n; i++)
		b |= 1ULL << v[i];
	return b;
}
#define BITS(...) bits((const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int))

static jobq_cron
parse_ok(const char *pattern) {
	jobq_cron c;
	char err[256];
	int rc = jobq_cron__parse(&c, pattern, err, sizeof(err));
	if (rc != 0)
		fail_msg("'%s' refused: %s", pattern, err);
	return c;
}

static void
five_and_six_fields(void **state) {
	(void)state;
	jobq_cron c = parse_ok("*/15 9-17 * * MON-FRI");
	assert_true(c.second == BITS(0));
	assert_true(c.minute == BITS(0, 15, 30, 45));
	assert_true(c.hour == 0x3fe00u); /* 9-17 */
	assert_true(c.mday == 0xfffffffeu && c.mday_star);
	assert_true(c.month == 0x1ffeu);
	assert_true(c.wday == BITS(1, 2, 3, 4, 5) && !c.wday_star);

	c = parse_ok("5,10 0 12 1 jan,Jul ?");
	assert_true(c.second == BITS(5, 10) && c.minute == BITS(0) && c.hour == BITS(12));
	assert_true(c.mday == BITS(1) && !c.mday_star && c.month == BITS(1, 7));
	assert_true(c.wday_star && c.wday == 0xff); /* `?` is 0-7 */

	/* Missing fields come from `0 * * * * *` from the left: one field is the weekday. */
	c = parse_ok("5");
	assert_true(c.second == BITS(0) && c.minute == ~0ULL >> 4 && c.wday == BITS(5));
	c = parse_ok("  1   2 * * *  ");
	assert_true(c.minute == BITS(1) && c.hour == BITS(2));
	/* An empty pattern is every minute, as cron-parser reads it. */
	c = parse_ok("");
	assert_true(c.second == BITS(0) && c.minute == ~0ULL >> 4);
}

static void
ranges_steps_and_names(void **state) {
	(void)state;
	jobq_cron c = parse_ok("5/20 1-10/3 */6 */10 */5 SUN");
	assert_true(c.second == BITS(5, 25, 45));
	assert_true(c.minute == BITS(1, 4, 7, 10));
	assert_true(c.hour == BITS(0, 6, 12, 18));
	assert_true(c.mday == BITS(1, 11, 21, 31));
	assert_true(c.month == BITS(1, 6, 11));
	assert_true(c.wday == BITS(0));
	/* 7 is Sunday; a range through 7 keeps 7 (never matching) and adds 0. */
	assert_true(parse_ok("0 0 * * 7").wday == BITS(0));
	assert_true(parse_ok("0 0 * * 5-7").wday == BITS(0, 5, 6, 7));
	/* `1-2-3` is `1-2` for cron-parser. */
	assert_true(parse_ok("1-2-3 * * * *").minute == BITS(1, 2));
	/* Either name table serves both fields. */
	assert_true(parse_ok("0 0 * * jan").wday == BITS(1));
}

static void
last_and_nth(void **state) {
	(void)state;
	jobq_cron c = parse_ok("0 0 L * *");
	assert_true(c.mday_last && c.mday == 0 && !c.mday_star);
	c = parse_ok("0 0 1,L * *");
	assert_true(c.mday_last && c.mday == BITS(1));
	c = parse_ok("0 0 * * 5L");
	assert_true(c.wday_last && c.wday == 0 && c.wday_lastd == BITS(5));
	c = parse_ok("0 0 * * 1,3L");
	assert_true(c.wday == BITS(1) && c.wday_lastd == BITS(1, 3));
	c = parse_ok("0 0 * * FRI#3");
	assert_true(c.wday == BITS(5) && c.nth == 3);
	c = parse_ok("@weekly");
	assert_true(c.second == BITS(0) && c.minute == BITS(0) && c.hour == BITS(0));
	assert_true(c.wday == BITS(0) && c.mday_star);
	c = parse_ok("@weekdays");
	assert_true(c.wday == BITS(1, 2, 3, 4, 5));
}

/* Refused, with an error naming `field` and containing `text`. */
static void
refused(const char *pattern, const char *field, const char *text) {
	jobq_cron c;
	char err[256] = "x";
	int rc = jobq_cron__parse(&c, pattern, err, sizeof(err));
	if (rc != JOBQ_EINVAL)
		fail_msg("'%s' accepted (rc %d)", pattern, rc);
	if (strstr(err, field) == NULL || strstr(err, text) == NULL)
		fail_msg("'%s': error '%s' lacks '%s' or '%s'", pattern, err, field, text);
}

static void
errors_name_the_field(void **state) {
	(void)state;
	refused("60 * * * *", "minute", "60");
	refused("0 60 * * * *", "minute", "60");
	refused("61 * * * * *", "second", "61");
	refused("* 24 * * *", "hour", "24");
	refused("* * 0 * *", "day of month", "0");
	refused("* * 32 * *", "day of month", "32");
	refused("* * * 13 *", "month", "13");
	refused("* * * * 8", "day of week", "8");
	refused("*/0 * * * *", "minute", "*/0");
	refused("5-1 * * * *", "minute", "5-1");
	refused("1,1 * * * *", "minute", "1,1");
	refused("0 1-5,3 * * *", "hour", "appears twice");
	refused("0 0 * * 0,7", "day of week", "0,7");
	refused("1 2 3 4 5 6 7", "cron pattern", "more than 6 fields");
	refused("0 0 1W * *", "day of month", "'W'");
	refused("0 0 * * L", "day of week", "'L'");
	refused("0 0 * FOO *", "month", "FOO");
	refused("H * * * *", "minute", "'H'");
	refused("0 0 30 2 *", "day of month", "day 30 never occurs in month 2");
	refused("0 0 * * 5#6", "day of week", "5#6");
	refused("0 0 * * 1-5#2", "day of week", "'#'");
	refused("1, * * * *", "minute", "empty list element");
	refused("1/2/3 * * * *", "minute", "1/2/3");
	refused("0 0 123L * *", "day of month", "123L");
	refused("   ", "cron pattern", "white space");
	refused("@YEARLY", "", "");
	refused("0x1 * * * *", "minute", "'x'");

	/* A short buffer gets a truncated message; none at all is fine. */
	char small[8];
	jobq_cron c;
	assert_int_equal(jobq_cron__parse(&c, "99 * * * *", small, sizeof(small)), JOBQ_EINVAL);
	assert_int_equal(strlen(small), 7);
	assert_int_equal(jobq_cron__parse(&c, "99 * * * *", NULL, 0), JOBQ_EINVAL);
	assert_int_equal(jobq_cron__parse(&c, NULL, NULL, 0), JOBQ_EINVAL);
	/* Longer than cron-parser's 1024 characters */
	char *longp = malloc(1100);
	memset(longp, '1', 1099);
	longp[1099] = '\0';
	assert_int_equal(jobq_cron__parse(&c, longp, NULL, 0), JOBQ_EINVAL);
	free(longp);
}

static int64_t
next_in(const char *pattern, const char *zone, int64_t after) {
	jobq_cron c = parse_ok(pattern);
	jobq_tz *tz = NULL;
	if (zone != NULL)
		assert_int_equal(jobq_tz__load(&tz, zone), 0);
	int64_t next = -1;
	int rc = jobq_cron__next(&c, tz, after, &next);
	jobq_tz__free(tz);
	return rc == 0 ? next : rc;
}

static void
next_in_utc(void **state) {
	(void)state;
	int64_t t = utc(2025, 1, 1, 10, 7, 30);
	assert_int_equal(next_in("* * * * *", NULL, t), utc(2025, 1, 1, 10, 8, 0));
	assert_int_equal(next_in("*/15 * * * *", "UTC", t), utc(2025, 1, 1, 10, 15, 0));
	/* strictly after, whole seconds; a fraction of a second counts as that second passed */
	assert_int_equal(next_in("* * * * * *", NULL, t), t + 1000);
	assert_int_equal(next_in("* * * * * *", NULL, t + 1), t + 1000);
	assert_int_equal(next_in("* * * * * *", NULL, t - 1), t);
	assert_int_equal(next_in("0 0 1 1 *", NULL, t), utc(2026, 1, 1, 0, 0, 0));
	assert_int_equal(next_in("0 0 29 2 *", NULL, t), utc(2028, 2, 29, 0, 0, 0));
	assert_int_equal(next_in("0 0 L * *", NULL, t), utc(2025, 1, 31, 0, 0, 0));
	assert_int_equal(next_in("0 0 L 2 *", NULL, t), utc(2025, 2, 28, 0, 0, 0));
	assert_int_equal(next_in("0 0 * * 5L", NULL, t), utc(2025, 1, 31, 0, 0, 0));
	assert_int_equal(next_in("0 0 * * MON#2", NULL, t), utc(2025, 1, 13, 0, 0, 0));
	/* day of month OR day of week when both are restricted */
	assert_int_equal(next_in("0 0 13 * 5", NULL, t), utc(2025, 1, 3, 0, 0, 0));
	assert_int_equal(next_in("0 0 */1 * 5", NULL, t), utc(2025, 1, 2, 0, 0, 0));
	assert_int_equal(next_in("0 0 * * 0", "UTC+5", t), utc(2025, 1, 4, 19, 0, 0));
	assert_int_equal(next_in("0 0 * * *", "UTC-03:30", t), utc(2025, 1, 2, 3, 30, 0));
	/* never: Feb 31 in two months escapes the parse-time check, and the walk gives up */
	assert_int_equal(next_in("0 0 31 2,4 *", NULL, t), JOBQ_ENOTFOUND);
	jobq_cron c = parse_ok("* * * * *");
	int64_t n;
	assert_int_equal(jobq_cron__next(&c, NULL, INT64_MAX, &n), JOBQ_EINVAL);
}

static void
spring_forward(void **state) {
	(void)state;
	/* Berlin 2024-03-31 02:00 CET -> 03:00 CEST (01:00Z). A skipped hour runs when the clock
	 * lands, at the pattern's minute. */
	int64_t before = utc(2024, 3, 30, 23, 0, 0);
	assert_int_equal(next_in("30 2 * * *", "Europe/Berlin", before),
	                 utc(2024, 3, 31, 1, 30, 0));
	assert_int_equal(next_in("0 2 * * *", "Europe/Berlin", before), utc(2024, 3, 31, 1, 0, 0));
	assert_int_equal(next_in("0 3 * * *", "Europe/Berlin", before), utc(2024, 3, 31, 1, 0, 0));
	/* every minute: the gap's minutes do not exist, 01:59 CET is followed by 03:00 CEST */
	assert_int_equal(next_in("* * * * *", "Europe/Berlin", utc(2024, 3, 31, 0, 59, 0)),
	                 utc(2024, 3, 31, 1, 0, 0));
	/* New York 2024-03-10 02:00 EST -> 03:00 EDT (07:00Z) */
	assert_int_equal(next_in("30 2 * * *", "America/New_York", utc(2024, 3, 10, 5, 0, 0)),
	                 utc(2024, 3, 10, 7, 30, 0));
	/* Lord Howe 2024-10-06 02:00 +10:30 -> 02:30 +11 (15:30Z on the 5th): 30 minutes. */
	assert_int_equal(next_in("15 2 * * *", "Australia/Lord_Howe", utc(2024, 10, 5, 13, 30, 0)),
	                 utc(2024, 10, 6, 15, 15, 0));
	assert_int_equal(next_in("45 2 * * *", "Australia/Lord_Howe", utc(2024, 10, 5, 13, 30, 0)),
	                 utc(2024, 10, 5, 15, 45, 0));
}

static void
fall_back(void **state) {
	(void)state;
	/* Berlin 2024-10-27 03:00 CEST -> 02:00 CET (01:00Z): 02:30 happens twice. */
	int64_t before = utc(2024, 10, 26, 22, 0, 0);
	int64_t first = next_in("30 2 * * *", "Europe/Berlin", before);
	assert_int_equal(first, utc(2024, 10, 27, 0, 30, 0)); /* the first pass, CEST */
	assert_int_equal(next_in("30 2 * * *", "Europe/Berlin", first),
	                 utc(2024, 10, 28, 1, 30, 0));
	/* with every hour allowed, both passes run: 8 quarter hours from 02:00 CEST */
	int64_t t = utc(2024, 10, 27, 0, 0, 0) - 1000;
	int runs = 0;
	for (int i = 0; i < 20; i++) {
		t = next_in("*/15 * * * *", "Europe/Berlin", t);
		assert_true(t > 0);
		if (t >= utc(2024, 10, 27, 0, 0, 0) && t < utc(2024, 10, 27, 2, 0, 0))
			runs++;
	}
	assert_int_equal(runs, 8);
	/* New York 2024-11-03 02:00 EDT -> 01:00 EST (06:00Z) */
	assert_int_equal(next_in("30 1 * * *", "America/New_York", utc(2024, 11, 3, 4, 0, 0)),
	                 utc(2024, 11, 3, 5, 30, 0));
	assert_int_equal(next_in("30 1 * * *", "America/New_York", utc(2024, 11, 3, 5, 30, 0)),
	                 utc(2024, 11, 4, 6, 30, 0));
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(five_and_six_fields), cmocka_unit_test(ranges_steps_and_names),
	    cmocka_unit_test(last_and_nth),        cmocka_unit_test(errors_name_the_field),
	    cmocka_unit_test(next_in_utc),         cmocka_unit_test(spring_forward),
	    cmocka_unit_test(fall_back),
	};
	return cmocka_run_group_tests_name("unit.cron", tests, NULL, NULL);
}
