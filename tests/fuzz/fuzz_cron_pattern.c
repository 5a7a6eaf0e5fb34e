/*
 * Cron patterns (src/core/cron.c), as a Node user may store them in a job scheduler: a refused
 * pattern must come with an error message; an accepted one must give fields the evaluator can
 * use, and next run times after the start, in UTC (where next(r - 1 ms) is r again) and in a
 * zone with DST.
 */
#include "fuzz.h"

#include "core/cron.h"
#include "jobq.h"

static const jobq_tz *
berlin(void) {
	static jobq_tz *tz;
	static int tried;
	if (!tried) {
		tried = 1;
		if (jobq_tz__load(&tz, "Europe/Berlin") < 0)
			tz = NULL; /* no tzdata: UTC only */
	}
	return tz;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (size > 2048)
		return 0;
	char *pattern = fuzz_cstr(data, size);
	if (pattern == NULL)
		return 0;
	jobq_cron c;
	char err[200];
	int rc = jobq_cron__parse(&c, pattern, err, sizeof(err));
	if (rc < 0) {
		FUZZ_CHECK(rc == JOBQ_EINVAL && strlen(err) > 0);
		free(pattern);
		return 0;
	}
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(c.second != 0 && c.second >> 60 == 0 && c.minute != 0 && c.minute >> 60 == 0);
	FUZZ_CHECK(c.hour != 0 && c.hour >> 24 == 0 && c.month != 0 && (c.month & 0xe001) == 0);
	FUZZ_CHECK((c.mday & 1) == 0 && (c.mday != 0 || c.mday_last));
	FUZZ_CHECK(c.wday != 0 || c.wday_last);
	FUZZ_CHECK(c.nth <= 5 || c.nth == 255);
	const int64_t starts[] = {0, 1733400000123, -86400000};
	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		int64_t next;
		rc = jobq_cron__next(&c, NULL, starts[i], &next);
		FUZZ_CHECK(rc == 0 || rc == JOBQ_ENOTFOUND);
		if (rc == 0) {
			FUZZ_CHECK(next > starts[i] && next % 1000 == 0);
			int64_t again;
			FUZZ_CHECK(jobq_cron__next(&c, NULL, next - 1, &again) == 0 &&
			           again == next);
		}
		if (berlin() != NULL) {
			rc = jobq_cron__next(&c, berlin(), starts[i], &next);
			FUZZ_CHECK(rc == JOBQ_ENOTFOUND || (rc == 0 && next > starts[i]));
		}
	}
	free(pattern);
	return 0;
}
