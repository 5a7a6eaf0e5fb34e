/*
 * Unit tests of the TZif reader (src/core/tzfile.c): system zones, fixed offsets, the footer's
 * POSIX rule after the last transition, luxon's resolution of gaps and overlaps, synthetic
 * version 1 and footer-only files, and refused names and damaged files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/tzfile.h"
#include "jobq.h"

static int64_t
utc_s(int y, int mo, int d, int h, int mi) {
	return jobq_tz__days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

static jobq_tz *
load(const char *name) {
	jobq_tz *tz = NULL;
	int rc = jobq_tz__load(&tz, name);
	if (rc != 0)
		fail_msg("zone %s: %s", name ? name : "(local)", jobq_error_message());
	return tz;
}

static void
calendar_round_trips(void **state) {
	(void)state;
	assert_int_equal(jobq_tz__days_from_civil(1970, 1, 1), 0);
	assert_int_equal(jobq_tz__days_from_civil(2000, 3, 1), 11017);
	assert_int_equal(jobq_tz__days_from_civil(1969, 12, 31), -1);
	for (int64_t d = -800000; d < 800000; d += 97) {
		int64_t y;
		int m, day;
		jobq_tz__civil_from_days(d, &y, &m, &day);
		assert_int_equal(jobq_tz__days_from_civil(y, m, day), d);
	}
}

static void
system_zones(void **state) {
	(void)state;
	jobq_tz *tz = load("Europe/Berlin");
	assert_string_equal(jobq_tz__name(tz), "Europe/Berlin");
	assert_int_equal(jobq_tz__offset(tz, utc_s(2024, 1, 15, 12, 0)), 3600);
	assert_int_equal(jobq_tz__offset(tz, utc_s(2024, 7, 15, 12, 0)), 7200);
	/* transitions at 01:00Z, to the second */
	assert_int_equal(jobq_tz__offset(tz, utc_s(2024, 3, 31, 1, 0) - 1), 3600);
	assert_int_equal(jobq_tz__offset(tz, utc_s(2024, 3, 31, 1, 0)), 7200);
	assert_int_equal(jobq_tz__offset(tz, utc_s(2024, 10, 27, 1, 0) - 1), 7200);
	assert_int_equal(jobq_tz__offset(tz, utc_s(2024, 10, 27, 1, 0)), 3600);
	/* far past the file's transitions: the footer's rule */
	assert_int_equal(jobq_tz__offset(tz, utc_s(2100, 3, 28, 1, 0) - 1), 3600);
	assert_int_equal(jobq_tz__offset(tz, utc_s(2100, 3, 28, 1, 0)), 7200);
	assert_int_equal(jobq_tz__offset(tz, utc_s(2100, 10, 31, 1, 0)), 3600);

	/* Overlap 02:30 on 2024-10-27: the guess picks the pass; gap 02:30 on 03-31 moves on. */
	int32_t off;
	int64_t local = utc_s(2024, 10, 27, 2, 30);
	assert_int_equal(jobq_tz__to_utc(tz, local, 7200, &off), utc_s(2024, 10, 27, 0, 30));
	assert_int_equal(off, 7200);
	assert_int_equal(jobq_tz__to_utc(tz, local, 3600, &off), utc_s(2024, 10, 27, 1, 30));
	assert_int_equal(off, 3600);
	local = utc_s(2024, 3, 31, 2, 30);
	assert_int_equal(jobq_tz__to_utc(tz, local, 3600, &off), utc_s(2024, 3, 31, 1, 30));
	assert_int_equal(off, 7200);
	assert_int_equal(jobq_tz__to_utc(tz, local, 7200, &off), utc_s(2024, 3, 31, 1, 30));
	jobq_tz__free(tz);

	/* Lord Howe: a 30-minute DST; 02:15 in its gap is 02:45 of +11 */
	tz = load("Australia/Lord_Howe");
	assert_int_equal(jobq_tz__offset(tz, utc_s(2024, 7, 1, 0, 0)), 37800);
	assert_int_equal(jobq_tz__offset(tz, utc_s(2025, 1, 1, 0, 0)), 39600);
	assert_int_equal(jobq_tz__to_utc(tz, utc_s(2024, 10, 6, 2, 15), 37800, &off),
	                 utc_s(2024, 10, 5, 15, 45));
	assert_int_equal(off, 39600);
	jobq_tz__free(tz);

	/* Southern hemisphere footer (DST across the new year) and New York far ahead */
	tz = load("Australia/Sydney");
	assert_int_equal(jobq_tz__offset(tz, utc_s(2090, 1, 1, 0, 0)), 39600);
	assert_int_equal(jobq_tz__offset(tz, utc_s(2090, 7, 1, 0, 0)), 36000);
	jobq_tz__free(tz);
	tz = load("America/New_York");
	assert_int_equal(jobq_tz__offset(tz, utc_s(2100, 7, 1, 0, 0)), -4 * 3600);
	assert_int_equal(jobq_tz__offset(tz, utc_s(2100, 1, 1, 0, 0)), -5 * 3600);
	jobq_tz__free(tz);
}

static void
fixed_offsets(void **state) {
	(void)state;
	const struct {
		const char *name;
		int32_t off;
	} cases[] = {{"UTC", 0},
	             {"utc", 0},
	             {"GMT", 0},
	             {"UTC+5", 18000},
	             {"UTC-03:30", -12600},
	             {"utc+10", 36000},
	             {"Etc/GMT-3", 10800}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		jobq_tz *tz = load(cases[i].name);
		assert_int_equal(jobq_tz__offset(tz, 0), cases[i].off);
		assert_int_equal(jobq_tz__offset(tz, utc_s(2024, 7, 1, 0, 0)), cases[i].off);
		jobq_tz__free(tz);
	}
	assert_int_equal(jobq_tz__offset(NULL, 12345), 0);
}

static void
bad_names(void **state) {
	(void)state;
	const char *invalid[] = {"",
	                         "../etc/passwd",
	                         "/etc/localtime",
	                         "Europe/../Berlin",
	                         "Europe//Berlin",
	                         "Europe/Berlin/",
	                         "a b",
	                         ".hidden",
	                         "UTC+5:3"};
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		jobq_tz *tz = (jobq_tz *)1;
		assert_int_equal(jobq_tz__load(&tz, invalid[i]), JOBQ_EINVAL);
		assert_null(tz);
		assert_non_null(strstr(jobq_error_message(), "not a zone name"));
	}
	jobq_tz *tz;
	assert_int_equal(jobq_tz__load(&tz, "Mars/Olympus_Mons"), JOBQ_ENOTFOUND);
	assert_non_null(strstr(jobq_error_message(), "Mars/Olympus_Mons"));
}

/* --- synthetic files under a private TZDIR ------------------------------------------------ */

static char dir[64];

static void
put32(unsigned char **p, uint32_t v) {
	(*p)[0] = (unsigned char)(v >> 24);
	(*p)[1] = (unsigned char)(v >> 16);
	(*p)[2] = (unsigned char)(v >> 8);
	(*p)[3] = (unsigned char)v;
	*p += 4;
}

/* A header with `ntime` transitions and `ntype` types (each 6 bytes), 4 abbreviation bytes. */
static void
header(unsigned char **p, char version, uint32_t ntime, uint32_t ntype) {
	memcpy(*p, "TZif", 4);
	(*p)[4] = (unsigned char)version;
	memset(*p + 5, 0, 15);
	*p += 20;
	put32(p, 0);
	put32(p, 0);
	put32(p, 0);
	put32(p, ntime);
	put32(p, ntype);
	put32(p, 4);
}

static void
write_file(const char *name, const unsigned char *b, size_t n) {
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
}

static void
type(unsigned char **p, int32_t off, int dst) {
	put32(p, (uint32_t)off);
	(*p)[0] = (unsigned char)dst;
	(*p)[1] = 0;
	*p += 2;
}

static void
synthetic_files(void **state) {
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/jobq-tz-XXXXXX");
	assert_non_null(mkdtemp(dir));
	setenv("TZDIR", dir, 1);
	unsigned char buf[512], *p;

	/* version 1: one transition at t=1000000 from +1h to +2h */
	p = buf;
	header(&p, 0, 1, 2);
	put32(&p, 1000000);
	*p++ = 1;
	type(&p, 3600, 0);
	type(&p, 7200, 1);
	memcpy(p, "AB\0C", 4);
	p += 4;
	write_file("V1", buf, (size_t)(p - buf));
	jobq_tz *tz = load("V1");
	assert_int_equal(jobq_tz__offset(tz, 999999), 3600);
	assert_int_equal(jobq_tz__offset(tz, 1000000), 7200);
	assert_int_equal(jobq_tz__offset(tz, utc_s(2500, 1, 1, 0, 0)), 7200);
	jobq_tz__free(tz);

	/* version 2 with no transitions, only the footer: US-style rules at UTC-5 */
	p = buf;
	header(&p, '2', 0, 1);
	type(&p, -18000, 0);
	memcpy(p, "EST\0", 4);
	p += 4;
	header(&p, '2', 0, 1);
	type(&p, -18000, 0);
	memcpy(p, "EST\0", 4);
	p += 4;
	const char *footer = "\nEST5EDT,M3.2.0,M11.1.0\n";
	memcpy(p, footer, strlen(footer));
	p += strlen(footer);
	write_file("V2", buf, (size_t)(p - buf));
	tz = load("V2");
	assert_int_equal(jobq_tz__offset(tz, utc_s(2024, 3, 10, 7, 0) - 1), -18000);
	assert_int_equal(jobq_tz__offset(tz, utc_s(2024, 3, 10, 7, 0)), -14400);
	assert_int_equal(jobq_tz__offset(tz, utc_s(2024, 11, 3, 6, 0) - 1), -14400);
	assert_int_equal(jobq_tz__offset(tz, utc_s(2024, 11, 3, 6, 0)), -18000);
	jobq_tz__free(tz);

	/* damaged: not TZif, truncated, a bad footer */
	write_file("Junk", (const unsigned char *)"hello world", 11);
	assert_int_equal(jobq_tz__load(&tz, "Junk"), JOBQ_EIO);
	assert_non_null(strstr(jobq_error_message(), "Junk"));
	write_file("Short", buf, 50);
	assert_int_equal(jobq_tz__load(&tz, "Short"), JOBQ_EIO);
	buf[(size_t)(p - buf) - 5] = '!';
	write_file("BadFooter", buf, (size_t)(p - buf));
	assert_int_equal(jobq_tz__load(&tz, "BadFooter"), JOBQ_EIO);

	/* The local zone: $TZ as a name, a POSIX string, empty (UTC) */
	setenv("TZ", "V1", 1);
	tz = load(NULL);
	assert_string_equal(jobq_tz__name(tz), "local");
	assert_int_equal(jobq_tz__offset(tz, 1000000), 7200);
	jobq_tz__free(tz);
	setenv("TZ", "<+0330>-3:30", 1);
	tz = load(NULL);
	assert_int_equal(jobq_tz__offset(tz, 0), 12600);
	jobq_tz__free(tz);
	setenv("TZ", "", 1);
	tz = load(NULL);
	assert_int_equal(jobq_tz__offset(tz, 0), 0);
	jobq_tz__free(tz);
	unsetenv("TZ");
	unsetenv("TZDIR");

	const char *names[] = {"V1", "V2", "Junk", "Short", "BadFooter"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(calendar_round_trips), cmocka_unit_test(system_zones),
	    cmocka_unit_test(fixed_offsets),        cmocka_unit_test(bad_names),
	    cmocka_unit_test(synthetic_files),
	};
	return cmocka_run_group_tests_name("unit.tzfile", tests, NULL, NULL);
}
