/*
 * jobq command — job schedulers (jobq/scheduler.h): schedule, schedulers, unschedule.
 */
#define _GNU_SOURCE /* timegm */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* A time given as milliseconds since the epoch or as ISO 8601 UTC
 * ("2026-12-05T10:00:00Z", seconds optional, ".mmm" allowed); 0 or -1. */
static int
parse_time(int64_t *out, const char *s) {
	if (cli_parse_int(out, s, 1, JOBQ_TIME_MAX_MS) == 0)
		return 0;
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(s, "%Y-%m-%dT%H:%M", &tm);
	if (end == NULL)
		return -1;
	int ms = 0;
	if (*end == ':') {
		const char *e = strptime(end + 1, "%S", &tm);
		if (e == NULL)
			return -1;
		end = e;
		if (*end == '.') {
			int digits = 0;
			for (end++; *end >= '0' && *end <= '9' && digits < 3; end++, digits++)
				ms = ms * 10 + (*end - '0');
			if (digits != 3)
				return -1;
		}
	}
	if (strcmp(end, "Z") != 0)
		return -1;
	time_t t = timegm(&tm);
	if (t < 0)
		return -1;
	*out = (int64_t)t * 1000 + ms;
	return 0;
}

/* --start / --end TIME into *out when given: 0, or the usage exit code. */
static int
time_option(int64_t *out, const char *name, const char *value) {
	if (value == NULL || parse_time(out, value) == 0)
		return 0;
	return cli_usage_fail("invalid value '%s' for --%s: expected milliseconds since the epoch "
	                      "or YYYY-MM-DDTHH:MM[:SS[.mmm]]Z",
	                      value, name);
}

int
cli_cmd_schedule(int argc, char **argv) {
	int64_t every = 0, offset = 0, limit = -1;
	int immediately = 0, limit_seen = 0;
	const char *cron = NULL, *tz = NULL, *start = NULL, *end = NULL;
	cli_job_opts jo = CLI_JOB_OPTS_INIT;
	const cli_opt opts[] = {
	    {"every", 0, CLI_OPT_INT, &every, 1, JOBQ_TIME_MAX_MS, 0, NULL},
	    {"offset", 0, CLI_OPT_INT, &offset, 0, JOBQ_TIME_MAX_MS, 0, NULL},
	    {"cron", 0, CLI_OPT_STRING, &cron, 0, 0, 0, NULL},
	    {"tz", 0, CLI_OPT_STRING, &tz, 0, 0, 0, NULL},
	    {"start", 0, CLI_OPT_STRING, &start, 0, 0, 0, NULL},
	    {"end", 0, CLI_OPT_STRING, &end, 0, 0, 0, NULL},
	    {"limit", 0, CLI_OPT_INT, &limit, 0, INT64_MAX, 0, &limit_seen},
	    {"immediately", 0, CLI_OPT_FLAG, &immediately, 0, 0, 0, NULL},
	    CLI_JOB_OPT_ENTRIES(jo),
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	jobq_scheduler_spec spec;
	jobq_job_options o;
	cli_args a;
	int rc;

	if ((rc = cli_parse(&a, argc, argv, opts, 4, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if (a.npos < 1)
		return cli_usage_fail("missing QUEUE");
	if (a.npos < 2)
		return cli_usage_fail("missing scheduler ID");
	if (every > 0 && cron != NULL)
		return cli_usage_fail("--every and --cron together: give one of them");
	if (every <= 0 && cron == NULL)
		return cli_usage_fail("give one of --every MS and --cron PATTERN");
	if (limit_seen && limit == 0)
		return cli_usage_fail("invalid value 0 for --limit: at least 1 iteration");
	jobq_scheduler_spec_init(&spec, JOBQ_SCHEDULER_SPEC_VERSION);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	if ((rc = time_option(&spec.start_ms, "start", start)) != 0 ||
	    (rc = time_option(&spec.end_ms, "end", end)) != 0 ||
	    (rc = cli_job_opts_apply(&o, &jo)) != 0)
		return rc;
	spec.every_ms = every;
	spec.offset_ms = offset;
	spec.pattern = cron;
	spec.tz = tz;
	spec.limit = limit_seen ? limit : -1;
	spec.immediately = immediately;
	spec.name = a.npos > 2 ? a.pos[2] : NULL;
	spec.data = a.npos > 3 ? a.pos[3] : NULL;
	spec.opts = &o;
	if (spec.data != NULL) {
		json_t *parsed = cli_json_parse(spec.data, strlen(spec.data));
		if (parsed == NULL)
			return cli_fail(CLI_EXIT_USAGE, "invalid JSON data: %s", spec.data);
		json_decref(parsed);
	}

	jobq_store *store;
	jobq_queue *q;
	if ((rc = cli_open_queue(&store, &q, a.pos[0])) != 0)
		return rc;
	jobq_job_id it;
	jobq_scheduler *s = NULL;
	rc = jobq_queue_upsert_scheduler(&it, q, a.pos[1], &spec);
	if (rc < 0) {
		rc = cli_lib_fail(rc, "cannot schedule");
	} else if (cli_g.json) {
		rc = jobq_queue_get_scheduler(&s, q, a.pos[1]);
		rc = rc < 0 ? cli_lib_fail(rc, "cannot read the scheduler back")
		            : cli_print_json(json_pack("{s:s,s:s,s:I}", "scheduler", a.pos[1],
		                                       "iteration", it.str, "next",
		                                       (json_int_t)s->next_ms));
		jobq_scheduler_free(s);
	} else {
		puts(it.str);
		rc = 0;
	}
	cli_close(store, q);
	return rc;
}

/* A scheduler with the keys and shape of BullMQ's getJobSchedulers(). */
static json_t *
scheduler_json(const jobq_scheduler *s) {
	json_t *j = json_object();
	json_object_set_new(j, "key", json_string(s->id));
	json_object_set_new(j, "name", cli_json_string(s->name, strlen(s->name)));
	json_object_set_new(j, "next", s->next_ms >= 0 ? json_integer(s->next_ms) : json_null());
	json_object_set_new(j, "iterationCount", json_integer(s->iterations));
	if (s->limit > 0)
		json_object_set_new(j, "limit", json_integer(s->limit));
	if (s->start_ms > 0)
		json_object_set_new(j, "startDate", json_integer(s->start_ms));
	if (s->end_ms > 0)
		json_object_set_new(j, "endDate", json_integer(s->end_ms));
	if (s->tz != NULL)
		json_object_set_new(j, "tz", json_string(s->tz));
	if (s->pattern != NULL)
		json_object_set_new(j, "pattern", json_string(s->pattern));
	if (s->every_ms > 0)
		json_object_set_new(j, "every", json_integer(s->every_ms));
	json_object_set_new(j, "offset", json_integer(s->offset_ms));
	json_t *data = cli_json_parse(s->data, strlen(s->data));
	json_t *opts = cli_json_parse(s->opts_json, strlen(s->opts_json));
	json_object_set_new(j, "template",
	                    json_pack("{s:o,s:o}", "data", data ? data : json_null(), "opts",
	                              opts ? opts : json_object()));
	return j;
}

/* The start of schedulers and unschedule: no options but the global ones, QUEUE and `want`
 * positionals in all, the queue opened. Returns 0 (then *store and *q are set), -1 after
 * --help, or an exit code. */
static int
open_verb(cli_args *a, int argc, char **argv, int want, jobq_store **store, jobq_queue **q) {
	const cli_opt opts[] = {{NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL}};
	int rc = cli_parse(a, argc, argv, opts, want, 0);
	if (rc != 0)
		return rc;
	if (cli_want_help())
		return -1;
	if (a->npos < want)
		return cli_usage_fail(a->npos < 1 ? "missing QUEUE" : "missing scheduler ID");
	return cli_open_queue(store, q, a->pos[0]);
}

int
cli_cmd_schedulers(int argc, char **argv) {
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	jobq_scheduler_list *list = NULL;
	int rc = open_verb(&a, argc, argv, 1, &store, &q);

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	if ((rc = jobq_queue_list_schedulers(&list, q)) < 0) {
		rc = cli_lib_fail(rc, "cannot list the schedulers");
	} else if (cli_g.json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < list->count; i++)
			json_array_append_new(arr, scheduler_json(&list->items[i]));
		rc = cli_print_json(arr);
	} else {
		printf("id\tname\tschedule\tnext\titerations\n");
		for (size_t i = 0; i < list->count; i++) {
			const jobq_scheduler *s = &list->items[i];
			char when[40], lim[24] = "";
			if (s->limit > 0)
				snprintf(lim, sizeof(lim), "/%lld", (long long)s->limit);
			printf("%s\t%s\t", s->id, s->name);
			if (s->pattern != NULL)
				printf("cron '%s'%s%s", s->pattern, s->tz ? " " : "",
				       s->tz ? s->tz : "");
			else
				printf("every %lldms", (long long)s->every_ms);
			printf("\t%s\t%lld%s\n", cli_fmt_time(when, sizeof(when), s->next_ms),
			       (long long)s->iterations, lim);
		}
		rc = 0;
	}
	jobq_scheduler_list_free(list);
	cli_close(store, q);
	return rc;
}

int
cli_cmd_unschedule(int argc, char **argv) {
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	int rc = open_verb(&a, argc, argv, 2, &store, &q);

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	rc = jobq_queue_remove_scheduler(q, a.pos[1]);
	rc = rc < 0 ? cli_lib_fail(rc, "cannot remove the scheduler") : 0;
	cli_close(store, q);
	return rc;
}
