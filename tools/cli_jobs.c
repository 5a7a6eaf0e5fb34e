/*
 * jobq command — verbs on single jobs: add, get, wait, remove, retry, promote.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Reads all of stdin into a malloc'ed buffer. */
static char *
read_stdin(size_t *len) {
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);

	while (buf) {
		size_t got;
		if (n + 1 >= cap) { /* room for a NUL after the data */
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		got = fread(buf + n, 1, cap - n - 1, stdin);
		n += got;
		if (got == 0)
			break;
	}
	if (buf)
		buf[n] = '\0';
	*len = n;
	return buf;
}

/* --backoff TYPE:MS (fixed or exponential) into *b; 0 or -1. */
static int
parse_backoff(jobq_backoff *b, const char *s) {
	const char *colon = strchr(s, ':');
	int64_t ms;

	if (!colon)
		return -1;
	if (cli_parse_int(&ms, colon + 1, 0, INT32_MAX) < 0)
		return -1;
	if ((size_t)(colon - s) == 5 && strncmp(s, "fixed", 5) == 0)
		b->type = JOBQ_BACKOFF_FIXED;
	else if ((size_t)(colon - s) == 11 && strncmp(s, "exponential", 11) == 0)
		b->type = JOBQ_BACKOFF_EXPONENTIAL;
	else if ((size_t)(colon - s) == 6 && strncmp(s, "linear", 6) == 0)
		b->type = JOBQ_BACKOFF_LINEAR;
	else
		return -1;
	b->delay_ms = ms;
	return 0;
}

int
cli_job_opts_apply(jobq_job_options *o, const cli_job_opts *j) {
	if (j->backoff != NULL && parse_backoff(&o->backoff, j->backoff) < 0)
		return cli_usage_fail("invalid value '%s' for --backoff: expected fixed:MS, "
		                      "exponential:MS or linear:MS",
		                      j->backoff);
	o->priority = (uint32_t)j->priority;
	o->lifo = j->lifo;
	o->attempts = (uint32_t)j->attempts;
	if (j->remove_on_complete_seen)
		cli_set_keep(&o->remove_on_complete, j->remove_on_complete);
	if (j->remove_on_fail_seen)
		cli_set_keep(&o->remove_on_fail, j->remove_on_fail);
	return 0;
}

int
cli_cmd_add(int argc, char **argv) {
	int64_t delay = 0, dedup_ttl = 0;
	const char *id = NULL, *dedup = NULL;
	int dedup_keep_last = 0;
	cli_job_opts jo = CLI_JOB_OPTS_INIT;
	const cli_opt opts[] = {
	    {"delay", 0, CLI_OPT_INT, &delay, 0, INT64_MAX / 2, 0, NULL},
	    {"id", 0, CLI_OPT_STRING, &id, 0, 0, 0, NULL},
	    {"dedup", 0, CLI_OPT_STRING, &dedup, 0, 0, 0, NULL},
	    {"dedup-ttl", 0, CLI_OPT_INT, &dedup_ttl, 1, INT64_MAX / 2, 0, NULL},
	    {"dedup-keep-last", 0, CLI_OPT_FLAG, &dedup_keep_last, 0, 0, 0, NULL},
	    CLI_JOB_OPT_ENTRIES(jo),
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	jobq_job_options o;
	cli_args a;
	char *data = NULL;
	size_t len;
	jobq_store *store;
	jobq_queue *q;
	jobq_job_id out;
	int rc;

	if ((rc = cli_parse(&a, argc, argv, opts, 3, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if (a.npos < 1)
		return cli_usage_fail("missing QUEUE");
	if (a.npos < 2)
		return cli_usage_fail("missing job NAME");
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	if ((rc = cli_job_opts_apply(&o, &jo)) != 0)
		return rc;
	if (id && (!*id || strlen(id) > JOBQ_ID_MAX))
		return cli_usage_fail("invalid value '%s' for --id: expected 1 to %d bytes", id,
		                      JOBQ_ID_MAX);
	o.delay_ms = delay;
	o.job_id = id;
	if ((dedup_ttl > 0 || dedup_keep_last) && dedup == NULL)
		return cli_usage_fail("--dedup-ttl and --dedup-keep-last need --dedup ID");
	o.dedup_id = dedup;
	o.dedup_ttl_ms = dedup_ttl;
	o.dedup_keep_last = dedup_keep_last;

	if (a.npos < 3) {
		data = strdup("{}");
		len = 2;
	} else if (strcmp(a.pos[2], "-") == 0) {
		data = read_stdin(&len);
	} else {
		len = strlen(a.pos[2]);
		data = strdup(a.pos[2]);
	}
	if (!data)
		return cli_fail(CLI_EXIT_FAILED, "out of memory");
	/* the library's check, so that the command takes what jobq_queue_add takes (any depth,
	 * \u0000) */
	if (jobq_json_check(data, len) < 0) {
		free(data);
		return cli_fail(CLI_EXIT_USAGE, "invalid JSON data: %s", jobq_error_message());
	}

	if ((rc = cli_open_queue(&store, &q, a.pos[0])) != 0) {
		free(data);
		return rc;
	}
	rc = jobq_queue_add(&out, q, a.pos[1], data, len, &o);
	free(data);
	if (rc < 0) {
		rc = cli_lib_fail(rc, "cannot add the job");
	} else {
		const char *outcome = rc == JOBQ_ADD_DUPLICATE      ? "duplicate"
		                      : rc == JOBQ_ADD_DEDUPLICATED ? "deduplicated"
		                                                    : "created";
		if (cli_g.json) {
			rc = cli_print_json(
			    json_pack("{s:s,s:s}", "id", out.str, "outcome", outcome));
		} else {
			puts(out.str);
			if (rc == JOBQ_ADD_DUPLICATE)
				fprintf(stderr, "jobq add: job %s already exists; nothing added\n",
				        out.str);
			else if (rc == JOBQ_ADD_DEDUPLICATED)
				fprintf(stderr,
				        "jobq add: job %s holds dedup id '%s'; nothing added%s\n",
				        out.str, dedup,
				        dedup_keep_last ? " (kept to run after it, if it is active)"
				                        : "");
			rc = 0;
		}
	}
	cli_close(store, q);
	return rc;
}

static void
print_job_text(const jobq_job *job) {
	char t[64];
	size_t len = 0;
	const void *data = jobq_job_data(job, &len);
	const char *s;
	json_t *opts;
	char *opts_text;

	printf("id:           %s\n", jobq_job_id_of(job));
	printf("name:         %s\n", jobq_job_name(job));
	printf("state:        %s\n", jobq_state_name(jobq_job_state(job)));
	printf("data:         %.*s\n", (int)(len > 4096 ? 4096 : len),
	       data ? (const char *)data : "");
	opts = cli_job_opts_json(jobq_job_options_of(job));
	opts_text = json_dumps(opts, JSON_COMPACT);
	json_decref(opts);
	printf("opts:         %s\n", opts_text ? opts_text : "{}");
	free(opts_text);
	printf("attempts:     %u made, %u started\n", jobq_job_attempts_made(job),
	       jobq_job_attempts_started(job));
	if (jobq_job_stalled_count(job))
		printf("stalled:      %u\n", jobq_job_stalled_count(job));
	if (jobq_job_priority(job))
		printf("priority:     %u\n", jobq_job_priority(job));
	if (jobq_job_delay(job))
		printf("delay:        %lld ms\n", (long long)jobq_job_delay(job));
	if ((s = jobq_job_progress(job)) != NULL)
		printf("progress:     %s\n", s);
	if ((s = jobq_job_result(job)) != NULL)
		printf("result:       %s\n", s);
	if ((s = jobq_job_failed_reason(job)) != NULL)
		printf("failed:       %s\n", s);
	for (size_t i = 0; i < jobq_job_stacktrace_count(job); i++)
		printf("  trace:      %s\n", jobq_job_stacktrace_at(job, i));
	printf("created:      %s\n", cli_fmt_time(t, sizeof(t), jobq_job_timestamp(job)));
	printf("processed:    %s\n", cli_fmt_time(t, sizeof(t), jobq_job_processed_on(job)));
	if ((s = jobq_job_processed_by(job)) != NULL)
		printf("worker:       %s\n", s);
	printf("finished:     %s\n", cli_fmt_time(t, sizeof(t), jobq_job_finished_on(job)));
}

int
cli_cmd_get(int argc, char **argv) {
	const cli_opt opts[] = {{NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL}};
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	jobq_job *job = NULL;
	int rc;

	if ((rc = cli_parse(&a, argc, argv, opts, 2, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if (a.npos < 1)
		return cli_usage_fail("missing QUEUE");
	if (a.npos < 2)
		return cli_usage_fail("missing job ID");
	if ((rc = cli_open_queue(&store, &q, a.pos[0])) != 0)
		return rc;
	rc = jobq_queue_get_job(&job, q, a.pos[1]);
	if (rc == JOBQ_ENOTFOUND) {
		rc = cli_fail(CLI_EXIT_NOTFOUND, "no job '%s' in queue '%s'", a.pos[1], a.pos[0]);
	} else if (rc < 0) {
		rc = cli_lib_fail(rc, "cannot read the job");
	} else {
		/* the job's log lines too (a job removed meanwhile just has none) */
		jobq_strings *logs = NULL;
		jobq_queue_get_logs(&logs, q, a.pos[1], 0, 0);
		if (cli_g.json) {
			json_t *j = cli_job_json(job), *arr = json_array();
			for (size_t i = 0; logs && i < logs->count; i++)
				json_array_append_new(
				    arr, cli_json_string(logs->items[i], strlen(logs->items[i])));
			json_object_set_new(j, "logs", arr);
			cli_flow_deps_json(j, q, a.pos[1]);
			rc = cli_print_json(j);
		} else {
			print_job_text(job);
			if (logs && logs->count > 0)
				printf("logs:         %zu lines, the last: %s\n", logs->count,
				       logs->items[logs->count - 1]);
			cli_flow_deps_text(q, a.pos[1]);
			rc = 0;
		}
		jobq_strings_free(logs);
	}
	jobq_job_free(job);
	cli_close(store, q);
	return rc;
}

int
cli_cmd_wait(int argc, char **argv) {
	int64_t timeout = -1;
	const cli_opt opts[] = {
	    {"timeout", 0, CLI_OPT_INT, &timeout, 0, INT64_MAX / 2, 0, NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	jobq_job *job = NULL;
	int rc;

	if ((rc = cli_parse(&a, argc, argv, opts, 2, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if (a.npos < 1)
		return cli_usage_fail("missing QUEUE");
	if (a.npos < 2)
		return cli_usage_fail("missing job ID");
	if ((rc = cli_open_queue(&store, &q, a.pos[0])) != 0)
		return rc;
	rc = jobq_queue_wait_job(&job, q, a.pos[1], timeout);
	if (job && cli_g.json && (rc == 0 || rc == JOBQ_ESTATE))
		cli_print_json(cli_job_json(job));
	if (rc == 0) {
		if (!cli_g.json) {
			const char *res = job ? jobq_job_result(job) : NULL;
			puts(res ? res : "null");
		}
	} else if (rc == JOBQ_ESTATE) {
		const char *reason = job ? jobq_job_failed_reason(job) : NULL;
		rc = cli_fail(CLI_EXIT_FAILED, "job %s failed: %s", a.pos[1],
		              reason ? reason : "(no reason)");
	} else if (rc == JOBQ_ETIMEDOUT) {
		rc = cli_fail(CLI_EXIT_TIMEOUT, "job %s did not finish within %lld ms", a.pos[1],
		              (long long)timeout);
	} else if (rc == JOBQ_ENOTFOUND) {
		rc = cli_fail(CLI_EXIT_NOTFOUND, "no job '%s' in queue '%s'", a.pos[1], a.pos[0]);
	} else {
		rc = cli_lib_fail(rc, "cannot wait for the job");
	}
	jobq_job_free(job);
	cli_close(store, q);
	return rc;
}

int
cli_cmd_remove(int argc, char **argv) {
	const cli_opt opts[] = {{NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL}};
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	int rc;

	if ((rc = cli_parse(&a, argc, argv, opts, 2, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if (a.npos < 1)
		return cli_usage_fail("missing QUEUE");
	if (a.npos < 2)
		return cli_usage_fail("missing job ID");
	if ((rc = cli_open_queue(&store, &q, a.pos[0])) != 0)
		return rc;
	rc = jobq_queue_remove(q, a.pos[1]);
	if (rc == JOBQ_ENOTFOUND)
		rc = cli_fail(CLI_EXIT_NOTFOUND, "no job '%s' in queue '%s'", a.pos[1], a.pos[0]);
	else if (rc == JOBQ_ESTATE)
		rc =
		    cli_fail(CLI_EXIT_FAILED, "job %s is active and locked; not removed", a.pos[1]);
	else if (rc < 0)
		rc = cli_lib_fail(rc, "cannot remove the job");
	else if (cli_g.json)
		rc = cli_print_json(json_pack("{s:s,s:b}", "id", a.pos[1], "removed", 1));
	else
		rc = 0;
	cli_close(store, q);
	return rc;
}

/* retry and promote: QUEUE (ID | --all-xxx) */
static int
move_jobs(int argc, char **argv, const char *all_name, const char *what,
          int (*op)(jobq_queue *, const char *)) {
	int all = 0;
	const cli_opt opts[] = {
	    {all_name, 0, CLI_OPT_FLAG, &all, 0, 0, 0, NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	int rc;

	if ((rc = cli_parse(&a, argc, argv, opts, 2, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if (a.npos < 1)
		return cli_usage_fail("missing QUEUE");
	if (a.npos < 2 && !all)
		return cli_usage_fail("missing job ID (or --%s)", all_name);
	if (a.npos == 2 && all)
		return cli_usage_fail("give a job ID or --%s, not both", all_name);
	if ((rc = cli_open_queue(&store, &q, a.pos[0])) != 0)
		return rc;
	rc = op(q, all ? NULL : a.pos[1]);
	if (rc == JOBQ_ENOTFOUND) {
		rc = cli_fail(CLI_EXIT_NOTFOUND, "no job '%s' in queue '%s'", a.pos[1], a.pos[0]);
	} else if (rc == JOBQ_ESTATE) {
		rc = cli_fail(CLI_EXIT_FAILED, "job %s is not %s", a.pos[1], what);
	} else if (rc < 0) {
		rc = cli_lib_fail(rc, "failed");
	} else if (!all && rc == 0) {
		rc = cli_fail(CLI_EXIT_FAILED, "job %s is not %s", a.pos[1], what);
	} else {
		if (cli_g.json)
			cli_print_json(json_pack("{s:i}", "count", rc));
		else
			printf("%d\n", rc);
		rc = 0;
	}
	cli_close(store, q);
	return rc;
}

int
cli_cmd_retry(int argc, char **argv) {
	return move_jobs(argc, argv, "all-failed", "failed", jobq_queue_retry);
}

int
cli_cmd_promote(int argc, char **argv) {
	return move_jobs(argc, argv, "all-delayed", "delayed", jobq_queue_promote);
}
