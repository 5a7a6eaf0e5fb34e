/*
 * jobq command — the queue limits: `limit` (the global rate limit, and rate-limiting the
 * queue now) and `concurrency` (the global concurrency). Each reads the limit without
 * options, sets it with them, removes it with --remove (include/jobq/limits.h).
 */
#include <string.h>

#include "cli.h"

/* Opens the queue named by the one positional. 0, or an exit code (-1: help printed). */
static int
open_queue(cli_args *a, jobq_store **store, jobq_queue **q, int argc, char **argv,
           const cli_opt *opts, int max_pos) {
	int rc;
	*store = NULL;
	*q = NULL;
	if ((rc = cli_parse(a, argc, argv, opts, max_pos, 0)) != 0)
		return rc;
	if (cli_want_help())
		return -1;
	if (a->npos < 1)
		return cli_usage_fail("missing QUEUE");
	return cli_open_queue(store, q, a->pos[0]);
}

/* A JSON number, or null for 0 (not set). */
static json_t *
or_null(int64_t v) {
	return v > 0 ? json_integer(v) : json_null();
}

static int
print_rate(const char *queue, const jobq_queue_limits *l) {
	if (cli_g.json)
		return cli_print_json(json_pack(
		    "{s:s,s:o,s:o,s:I,s:I}", "queue", queue, "max", or_null(l->max), "duration",
		    or_null(l->duration_ms), "windowUsed", (json_int_t)l->window_used,
		    "windowLeftMs", (json_int_t)l->window_left_ms));
	if (l->max > 0)
		printf("%lld jobs per %lld ms\n", (long long)l->max, (long long)l->duration_ms);
	else
		printf("none\n");
	if (l->window_left_ms > 0) {
		if (l->window_used >= JOBQ_RATE_LIMITED_COUNT)
			printf("rate-limited for %lld ms more\n", (long long)l->window_left_ms);
		else
			printf("window: %lld started, %lld ms left\n", (long long)l->window_used,
			       (long long)l->window_left_ms);
	}
	return 0;
}

int
cli_cmd_limit(int argc, char **argv) {
	int64_t max = 0, duration = 0, block = 0;
	int remove = 0, seen_max = 0, seen_duration = 0, seen_block = 0;
	const cli_opt opts[] = {
	    {"max", 0, CLI_OPT_INT, &max, 1, JOBQ_LIMIT_MAX, 0, &seen_max},
	    {"duration", 0, CLI_OPT_INT, &duration, 1, JOBQ_LIMIT_MAX, 0, &seen_duration},
	    {"remove", 0, CLI_OPT_FLAG, &remove, 0, 0, 0, NULL},
	    {"for", 0, CLI_OPT_INT, &block, 1, JOBQ_LIMIT_MAX, 0, &seen_block},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	jobq_queue_limits l;
	int rc = open_queue(&a, &store, &q, argc, argv, opts, 1);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (seen_max != seen_duration)
		rc = cli_usage_fail("--max and --duration go together");
	else if ((seen_max && remove) || (seen_block && (seen_max || remove)))
		rc = cli_usage_fail("use one of --max/--duration, --remove and --for");
	else if (seen_max)
		rc = jobq_queue_set_rate_limit(q, max, duration);
	else if (remove)
		rc = jobq_queue_remove_rate_limit(q);
	else if (seen_block)
		rc = jobq_queue_rate_limit(q, block);
	if (rc == CLI_EXIT_USAGE) {
		cli_close(store, q);
		return rc;
	}
	if (rc == 0)
		rc = jobq_queue_get_limits(&l, q);
	rc = rc < 0 ? cli_lib_fail(rc, "failed") : print_rate(a.pos[0], &l);
	cli_close(store, q);
	return rc;
}

int
cli_cmd_concurrency(int argc, char **argv) {
	int remove = 0;
	const cli_opt opts[] = {
	    {"remove", 0, CLI_OPT_FLAG, &remove, 0, 0, 0, NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	jobq_queue_limits l;
	int64_t n = 0;
	int rc = open_queue(&a, &store, &q, argc, argv, opts, 2);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (a.npos > 1 && remove)
		rc = cli_usage_fail("give N or --remove, not both");
	else if (a.npos > 1 && cli_parse_int(&n, a.pos[1], 1, JOBQ_LIMIT_MAX) < 0)
		rc = cli_usage_fail("invalid N '%s': expected an integer in 1..%d", a.pos[1],
		                    JOBQ_LIMIT_MAX);
	else if (a.npos > 1)
		rc = jobq_queue_set_concurrency(q, n);
	else if (remove)
		rc = jobq_queue_remove_concurrency(q);
	if (rc == CLI_EXIT_USAGE) {
		cli_close(store, q);
		return rc;
	}
	if (rc == 0)
		rc = jobq_queue_get_limits(&l, q);
	if (rc < 0)
		rc = cli_lib_fail(rc, "failed");
	else if (cli_g.json)
		rc = cli_print_json(json_pack("{s:s,s:o}", "queue", a.pos[0], "concurrency",
		                              or_null(l.concurrency)));
	else if (l.concurrency > 0)
		printf("%lld\n", (long long)l.concurrency);
	else
		printf("none\n");
	cli_close(store, q);
	return rc;
}
