/*
 * Redis backend: job schedulers (bullmq-protocol.md §4.21). BullMQ 6 keeps a series going
 * in the worker that fetches an iteration: it creates the next one before running it. The
 * rules live in lua/updateJobScheduler-16.lua; this file runs it and, for a cron pattern,
 * computes the next time the script asks for.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cron.h"
#include "jobq_lua.h"
#include "redis_int.h"

/* The integer element `i` of `r`, or `dflt`. */
static long long
reply_elem_int(const redisReply *r, size_t i, long long dflt) {
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements)
		return dflt;
	const redisReply *e = r->element[i];
	if (e->type == REDIS_REPLY_INTEGER)
		return e->integer;
	return dflt;
}

/* Element `i` of the script's reply as text ("" when absent). */
static const char *
reply_elem_str(const redisReply *r, size_t i) {
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != REDIS_REPLY_STRING)
		return "";
	return r->element[i]->str;
}

/* A decimal number of the reply, or `dflt` when it is empty. */
static int64_t
reply_elem_ms(const redisReply *r, size_t i, int64_t dflt) {
	const char *s = reply_elem_str(r, i);
	return s[0] != '\0' ? (int64_t)strtoll(s, NULL, 10) : dflt;
}

/*
 * The next time of a pattern scheduler from the script's {3, pattern, tz, startDate, endDate,
 * prevMillis}, as BullMQ's worker computes it: the first cron time after the latest of now,
 * the fetched iteration's time and the start date, in the scheduler's zone (none: the local
 * zone, as Node); none (JOBQ_ENOTFOUND) after the end date. JOBQ_EINVAL for a pattern or
 * zone that cannot be evaluated.
 */
static int
pattern_next(int64_t *next_ms, const char *sid, const redisReply *r, int64_t now_ms) {
	const char *pattern = reply_elem_str(r, 1), *zone = reply_elem_str(r, 2);
	int64_t start = reply_elem_ms(r, 3, 0), end = reply_elem_ms(r, 4, -1);
	int64_t after = reply_elem_ms(r, 5, 0);
	if (after < now_ms)
		after = now_ms;
	if (start > after)
		after = start;
	jobq_cron cron;
	char why[200];
	if (jobq_cron__parse(&cron, pattern, why, sizeof(why)) < 0)
		return jobq_error_set(JOBQ_EINVAL, "redis: job scheduler %s: pattern '%s': %s", sid,
		                      pattern, why);
	jobq_tz *tz = NULL;
	int rc = jobq_tz__load(&tz, zone[0] != '\0' ? zone : NULL);
	if (rc == JOBQ_ENOTFOUND || rc == JOBQ_EINVAL)
		return jobq_error_set(JOBQ_EINVAL, "redis: job scheduler %s: time zone '%s': %s",
		                      sid, zone, jobq_error_message());
	if (rc < 0)
		return rc;
	rc = jobq_cron__next(&cron, tz, after, next_ms);
	jobq_tz__free(tz);
	if (rc == 0 && end >= 0 && *next_ms > end)
		return JOBQ_ENOTFOUND; /* cron-parser refuses a time past the end date */
	return rc;
}

int
rq_scheduler_next(jobq_backend_queue *q, const jobq_job *job, int64_t now_ms) {
	if (job == NULL || job->id == NULL || job->scheduler_id == NULL)
		return jobq_error_set(JOBQ_EINVAL, "redis scheduler_next: not a scheduler's job");
	char now[24], next[24] = "";
	snprintf(now, sizeof(now), "%" PRId64, now_ms);
	const char *av[] = {job->id, job->scheduler_id, now, next};
	/* a pattern scheduler takes two rounds: what to compute, then the next time */
	for (int round = 0; round < 2; round++) {
		int rc;
		redisReply *r = rq_script(&rc, q, JOBQ_LUA_UPDATEJOBSCHEDULER, 4, av, NULL);
		if (r == NULL)
			return rc;
		long long st = reply_elem_int(r, 0, -1);
		if (st == 3 && round == 0) {
			int64_t next_ms = 0;
			rc = pattern_next(&next_ms, job->scheduler_id, r, now_ms);
			freeReplyObject(r);
			if (rc == JOBQ_ENOTFOUND)
				return 0; /* the pattern has no next time before the end date */
			if (rc < 0)
				return rc;
			snprintf(next, sizeof(next), "%" PRId64, next_ms);
			continue;
		}
		freeReplyObject(r);
		if (st < 0 || st > 2)
			return jobq_error_set(JOBQ_EBACKEND,
			                      "redis: job scheduler %s: unexpected reply of "
			                      "updateJobScheduler",
			                      job->scheduler_id);
		return st == 1 ? 1 : 0;
	}
	return jobq_error_set(JOBQ_EBACKEND,
	                      "redis: job scheduler %s: no next time after two rounds",
	                      job->scheduler_id);
}
