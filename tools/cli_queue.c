/*
 * jobq command — verbs on whole queues: counts, list, pause, resume, drain, obliterate, clean.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Jobs removed per step by clean and a large obliterate, so that progress can be shown. */
#define CLEAN_BATCH 1000

static const cli_opt no_opts[] = {{NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL}};

/* Parses "QUEUE" plus `extra` positionals and opens the queue. */
static int
open_with(cli_args *a, jobq_store **store, jobq_queue **q, int argc, char **argv,
          const cli_opt *opts, int npos, const char *missing2) {
	int rc;

	*store = NULL;
	*q = NULL;
	if ((rc = cli_parse(a, argc, argv, opts, npos, 0)) != 0)
		return rc;
	if (cli_want_help())
		return -1;
	if (a->npos < 1)
		return cli_usage_fail("missing QUEUE");
	if (npos > 1 && a->npos < 2)
		return cli_usage_fail("missing %s", missing2);
	return cli_open_queue(store, q, a->pos[0]);
}

static int
parse_state(jobq_state *st, const char *name) {
	if (jobq_state_parse(st, name) < 0 || *st == JOBQ_STATE_UNKNOWN || *st == JOBQ_STATE_PAUSED)
		return cli_usage_fail("invalid STATE '%s': expected waiting, prioritized, delayed, "
		                      "active, completed, failed or waiting-children",
		                      name);
	return 0;
}

int
cli_cmd_counts(int argc, char **argv) {
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	jobq_counts c;
	int paused = 0, exists;
	int rc;

	if ((rc = cli_parse(&a, argc, argv, no_opts, 1, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if (a.npos < 1)
		return cli_usage_fail("missing QUEUE");
	if ((rc = cli_open_store(&store, cli_url())) != 0)
		return rc;
	/* asked before opening the queue, which registers it in a memory store */
	exists = cli_queue_exists(store, a.pos[0]);
	if ((rc = jobq_queue_open(&q, store, a.pos[0])) < 0) {
		rc = cli_lib_fail(rc, "cannot open queue");
		jobq_store_close(store);
		return rc;
	}
	rc = jobq_queue_counts(&c, q);
	if (rc >= 0)
		rc = jobq_queue_is_paused(&paused, q);
	if (rc < 0) {
		rc = cli_lib_fail(rc, "cannot count jobs");
	} else if (!paused && cli_counts_total(&c) == 0 && exists == 0) {
		rc = cli_fail(CLI_EXIT_NOTFOUND, "no queue '%s' in the store (see 'jobq queues')",
		              a.pos[0]);
	} else if (cli_g.json) {
		json_t *j = json_object();
		json_object_set_new(j, "waiting", json_integer((json_int_t)c.waiting));
		json_object_set_new(j, "active", json_integer((json_int_t)c.active));
		json_object_set_new(j, "delayed", json_integer((json_int_t)c.delayed));
		json_object_set_new(j, "prioritized", json_integer((json_int_t)c.prioritized));
		json_object_set_new(j, "completed", json_integer((json_int_t)c.completed));
		json_object_set_new(j, "failed", json_integer((json_int_t)c.failed));
		json_object_set_new(j, "paused", json_integer((json_int_t)c.paused));
		json_object_set_new(j, "waiting-children",
		                    json_integer((json_int_t)c.waiting_children));
		json_object_set_new(j, "isPaused", json_boolean(paused));
		rc = cli_print_json(j);
	} else {
		printf("waiting      %llu\n", (unsigned long long)c.waiting);
		printf("prioritized  %llu\n", (unsigned long long)c.prioritized);
		printf("delayed      %llu\n", (unsigned long long)c.delayed);
		printf("active       %llu\n", (unsigned long long)c.active);
		printf("completed    %llu\n", (unsigned long long)c.completed);
		printf("failed       %llu\n", (unsigned long long)c.failed);
		printf("paused       %llu%s\n", (unsigned long long)c.paused,
		       paused ? "  (queue is paused)" : "");
		printf("waiting-children %llu\n", (unsigned long long)c.waiting_children);
		rc = 0;
	}
	cli_close(store, q);
	return rc;
}

/* Jobs in `st` (waiting ones of a paused queue count as waiting). */
static uint64_t
state_total(const jobq_counts *c, jobq_state st) {
	switch (st) {
	case JOBQ_STATE_WAITING:
		return c->waiting + c->paused;
	case JOBQ_STATE_PRIORITIZED:
		return c->prioritized;
	case JOBQ_STATE_DELAYED:
		return c->delayed;
	case JOBQ_STATE_ACTIVE:
		return c->active;
	case JOBQ_STATE_COMPLETED:
		return c->completed;
	case JOBQ_STATE_FAILED:
		return c->failed;
	default:
		return 0;
	}
}

/* A header and one tab-separated line per job, with the columns that matter in `st`. */
static void
print_list(const jobq_job_list *list, jobq_state st) {
	const char *head;
	switch (st) {
	case JOBQ_STATE_DELAYED:
		head = "ID\tNAME\tRUN-AT\tATTEMPTS";
		break;
	case JOBQ_STATE_PRIORITIZED:
		head = "ID\tNAME\tCREATED\tPRIORITY";
		break;
	case JOBQ_STATE_ACTIVE:
		head = "ID\tNAME\tSTARTED\tATTEMPT\tPROGRESS";
		break;
	case JOBQ_STATE_COMPLETED:
		head = "ID\tNAME\tFINISHED\tRESULT";
		break;
	case JOBQ_STATE_FAILED:
		head = "ID\tNAME\tFINISHED\tATTEMPTS\tREASON";
		break;
	default:
		head = "ID\tNAME\tCREATED\tATTEMPTS";
		break;
	}
	printf("%s\n", head);
	for (size_t i = 0; list && i < list->count; i++) {
		const jobq_job *j = list->jobs[i];
		const char *result = jobq_job_result(j), *reason = jobq_job_failed_reason(j);
		const char *progress = jobq_job_progress(j);
		char t[64];
		printf("%s\t%s\t", jobq_job_id_of(j), jobq_job_name(j));
		switch (st) {
		case JOBQ_STATE_DELAYED:
			printf(
			    "%s\t%u\n",
			    cli_fmt_time(t, sizeof(t), jobq_job_timestamp(j) + jobq_job_delay(j)),
			    jobq_job_attempts_made(j));
			break;
		case JOBQ_STATE_PRIORITIZED:
			printf("%s\t%u\n", cli_fmt_time(t, sizeof(t), jobq_job_timestamp(j)),
			       jobq_job_priority(j));
			break;
		case JOBQ_STATE_ACTIVE:
			printf("%s\t%u\t%s\n", cli_fmt_time(t, sizeof(t), jobq_job_processed_on(j)),
			       jobq_job_attempts_started(j), progress ? progress : "");
			break;
		case JOBQ_STATE_COMPLETED:
			printf("%s\t%s\n", cli_fmt_time(t, sizeof(t), jobq_job_finished_on(j)),
			       result ? result : "");
			break;
		case JOBQ_STATE_FAILED:
			printf("%s\t%u\t%s\n", cli_fmt_time(t, sizeof(t), jobq_job_finished_on(j)),
			       jobq_job_attempts_made(j), reason ? reason : "");
			break;
		default:
			printf("%s\t%u\n", cli_fmt_time(t, sizeof(t), jobq_job_timestamp(j)),
			       jobq_job_attempts_made(j));
			break;
		}
	}
}

int
cli_cmd_list(int argc, char **argv) {
	int64_t limit = 100, offset = 0;
	const cli_opt opts[] = {
	    {"limit", 0, CLI_OPT_INT, &limit, 0, INT64_MAX, 0, NULL},
	    {"offset", 0, CLI_OPT_INT, &offset, 0, INT64_MAX, 0, NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	jobq_state st;
	jobq_job_list *list = NULL;
	jobq_counts c;
	int rc;

	if ((rc = cli_parse(&a, argc, argv, opts, 2, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if (a.npos < 1)
		return cli_usage_fail("missing QUEUE");
	if (a.npos < 2)
		return cli_usage_fail("missing STATE");
	if ((rc = parse_state(&st, a.pos[1])) != 0)
		return rc;
	if ((rc = cli_open_queue(&store, &q, a.pos[0])) != 0)
		return rc;
	rc = jobq_queue_list(&list, q, st, (size_t)offset, limit == 0 ? SIZE_MAX : (size_t)limit);
	if (rc >= 0)
		rc = jobq_queue_counts(&c, q);
	if (rc < 0) {
		rc = cli_lib_fail(rc, "cannot list jobs");
	} else {
		size_t n = list ? list->count : 0;
		uint64_t total = state_total(&c, st);
		int more = (uint64_t)offset + n < total;
		if (cli_g.json) {
			json_t *arr = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(arr, cli_job_json(list->jobs[i]));
			rc = cli_print_json(json_pack("{s:o,s:I,s:I,s:b}", "jobs", arr, "total",
			                              (json_int_t)total, "offset",
			                              (json_int_t)offset, "more", more));
		} else {
			print_list(list, st);
			if (more)
				fprintf(stderr,
				        "jobq list: %zu of %llu %s jobs shown (from offset %lld); "
				        "more with "
				        "--offset %lld\n",
				        n, (unsigned long long)total, jobq_state_name(st),
				        (long long)offset, (long long)(offset + (int64_t)n));
			rc = 0;
		}
	}
	jobq_job_list_free(list);
	cli_close(store, q);
	return rc;
}

static int
simple_op(int argc, char **argv, int (*op)(jobq_queue *), const char *done) {
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	int rc = open_with(&a, &store, &q, argc, argv, no_opts, 1, NULL);

	if (rc)
		return rc < 0 ? 0 : rc;
	rc = op(q);
	if (rc < 0)
		rc = cli_lib_fail(rc, "failed");
	else if (cli_g.json)
		rc = cli_print_json(json_pack("{s:s,s:b}", "queue", a.pos[0], done, 1));
	else
		rc = 0;
	cli_close(store, q);
	return rc;
}

int
cli_cmd_pause(int argc, char **argv) {
	return simple_op(argc, argv, jobq_queue_pause, "paused");
}

int
cli_cmd_resume(int argc, char **argv) {
	return simple_op(argc, argv, jobq_queue_resume, "resumed");
}

static uint64_t
total_of(const jobq_counts *c, int include_delayed) {
	return c->waiting + c->prioritized + c->paused + (include_delayed ? c->delayed : 0);
}

int
cli_cmd_drain(int argc, char **argv) {
	int delayed = 0;
	const cli_opt opts[] = {
	    {"delayed", 0, CLI_OPT_FLAG, &delayed, 0, 0, 0, NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	jobq_counts before, after;
	int64_t removed = -1;
	int rc = open_with(&a, &store, &q, argc, argv, opts, 1, NULL);

	if (rc)
		return rc < 0 ? 0 : rc;
	/* The count is informative: jobs added meanwhile may blur it. */
	int have_counts = jobq_queue_counts(&before, q) >= 0;
	rc = jobq_queue_drain(q, delayed);
	if (rc < 0) {
		rc = cli_lib_fail(rc, "cannot drain the queue");
	} else {
		if (have_counts && jobq_queue_counts(&after, q) >= 0) {
			uint64_t b = total_of(&before, delayed), f = total_of(&after, delayed);
			removed = b > f ? (int64_t)(b - f) : 0;
		}
		if (cli_g.json)
			rc = cli_print_json(json_pack("{s:s,s:I}", "queue", a.pos[0], "removed",
			                              (json_int_t)(removed < 0 ? 0 : removed)));
		else
			rc = (printf("%lld\n", (long long)(removed < 0 ? 0 : removed)), 0);
	}
	cli_close(store, q);
	return rc;
}

/* Removes up to `limit` (0: all) jobs in `st` older than grace, in batches, with progress. */
static int
clean_batched(int64_t *removed, json_t *ids, jobq_queue *q, jobq_state st, int64_t grace,
              int64_t limit) {
	*removed = 0;
	for (;;) {
		jobq_strings *got = NULL;
		size_t want = CLEAN_BATCH;
		int rc;

		if (limit > 0 && limit - *removed < (int64_t)want)
			want = (size_t)(limit - *removed);
		if (want == 0)
			return 0;
		rc = jobq_queue_clean(&got, q, st, grace, want);
		if (rc < 0)
			return rc;
		size_t n = got ? got->count : 0;
		for (size_t i = 0; ids && i < n; i++)
			json_array_append_new(ids, json_string(got->items[i]));
		jobq_strings_free(got);
		*removed += (int64_t)n;
		cli_progress("cleaning %s: %lld removed", jobq_state_name(st), (long long)*removed);
		if (n < want)
			return 0;
	}
}

int
cli_cmd_clean(int argc, char **argv) {
	int64_t grace = -1, limit = 0, removed = 0;
	int grace_seen = 0;
	const cli_opt opts[] = {
	    {"grace", 0, CLI_OPT_INT, &grace, 0, INT64_MAX / 2, 0, &grace_seen},
	    {"limit", 0, CLI_OPT_INT, &limit, 0, INT64_MAX, 0, NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	jobq_state st;
	json_t *ids = NULL;
	int rc;

	if ((rc = cli_parse(&a, argc, argv, opts, 2, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if (a.npos < 1)
		return cli_usage_fail("missing QUEUE");
	if (a.npos < 2)
		return cli_usage_fail("missing STATE");
	if ((rc = parse_state(&st, a.pos[1])) != 0)
		return rc;
	if (!grace_seen)
		return cli_usage_fail("missing --grace MS (0 removes every job in the state)");
	if ((rc = cli_open_queue(&store, &q, a.pos[0])) != 0)
		return rc;
	if (cli_g.json)
		ids = json_array();
	rc = clean_batched(&removed, ids, q, st, grace, limit);
	cli_progress_done();
	if (rc < 0) {
		json_decref(ids);
		rc = cli_lib_fail(rc, "cannot clean the queue");
	} else if (cli_g.json) {
		rc = cli_print_json(
		    json_pack("{s:I,s:o}", "removed", (json_int_t)removed, "ids", ids));
	} else {
		printf("%lld\n", (long long)removed);
		rc = 0;
	}
	cli_close(store, q);
	return rc;
}

int
cli_cmd_obliterate(int argc, char **argv) {
	int force = 0;
	const cli_opt opts[] = {
	    {"force", 0, CLI_OPT_FLAG, &force, 0, 0, 0, NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	static const jobq_state big_states[] = {JOBQ_STATE_COMPLETED, JOBQ_STATE_FAILED,
	                                        JOBQ_STATE_WAITING, JOBQ_STATE_PRIORITIZED,
	                                        JOBQ_STATE_DELAYED};
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	jobq_counts c;
	int rc = open_with(&a, &store, &q, argc, argv, opts, 1, NULL);

	if (rc)
		return rc < 0 ? 0 : rc;
	rc = jobq_queue_counts(&c, q);
	if (rc < 0) {
		rc = cli_lib_fail(rc, "cannot read the queue");
		goto out;
	}
	if (cli_counts_total(&c) > 0 && !force) {
		rc = cli_fail(CLI_EXIT_FAILED,
		              "queue '%s' has %llu jobs (%llu active); use --force to delete them",
		              a.pos[0], (unsigned long long)cli_counts_total(&c),
		              (unsigned long long)c.active);
		goto out;
	}
	/* A large queue goes in batches first, so that a terminal shows progress. */
	if (cli_progress_enabled() &&
	    c.waiting + c.prioritized + c.delayed + c.completed + c.failed > 10 * CLEAN_BATCH) {
		for (size_t i = 0; i < sizeof(big_states) / sizeof(big_states[0]); i++) {
			int64_t n;
			rc = clean_batched(&n, NULL, q, big_states[i], 0, 0);
			if (rc < 0)
				break;
		}
		cli_progress_done();
	}
	rc = jobq_queue_obliterate(q, force);
	if (rc == JOBQ_ESTATE)
		rc = cli_fail(CLI_EXIT_FAILED, "queue '%s' has active jobs; use --force", a.pos[0]);
	else if (rc < 0)
		rc = cli_lib_fail(rc, "cannot obliterate the queue");
	else if (cli_g.json)
		rc = cli_print_json(json_pack("{s:s,s:b}", "queue", a.pos[0], "obliterated", 1));
	else
		rc = 0;
out:
	cli_close(store, q);
	return rc;
}
