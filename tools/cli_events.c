/*
 * jobq command — events: prints a queue's event log, or follows it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static int
print_event(const jobq_event *e) {
	if (cli_g.json) {
		json_t *j = json_object();
		json_object_set_new(j, "id", json_string(e->id ? e->id : ""));
		json_object_set_new(j, "event", json_string(e->event ? e->event : ""));
		if (e->job_id)
			json_object_set_new(j, "jobId", json_string(e->job_id));
		for (size_t i = 0; i < e->nfields; i++) {
			const char *k = e->fields[i].key, *v = e->fields[i].value;
			if (!k || strcmp(k, "event") == 0 || strcmp(k, "jobId") == 0)
				continue;
			json_object_set_new(j, k, cli_json_string(v ? v : "", v ? strlen(v) : 0));
		}
		if (cli_print_json(j) != 0)
			return -1;
	} else {
		printf("%s\t%s", e->id ? e->id : "", e->event ? e->event : "");
		if (e->job_id)
			printf("\tjobId=%s", e->job_id);
		for (size_t i = 0; i < e->nfields; i++) {
			const char *k = e->fields[i].key, *v = e->fields[i].value;
			if (!k || strcmp(k, "event") == 0 || strcmp(k, "jobId") == 0)
				continue;
			printf("\t%s=%s", k, v ? v : "");
		}
		putchar('\n');
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		return -1; /* the reader went away */
	return 0;
}

int
cli_cmd_events(int argc, char **argv) {
	int follow = 0;
	int64_t count = 0;
	const char *since = NULL;
	const cli_opt opts[] = {
	    {"follow", 'f', CLI_OPT_FLAG, &follow, 0, 0, 0, NULL},
	    {"since", 0, CLI_OPT_STRING, &since, 0, 0, 0, NULL},
	    {"count", 'n', CLI_OPT_INT, &count, 1, INT64_MAX, 0, NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	char *cursor;
	int64_t seen = 0;
	sigset_t sigs;
	int rc;

	if ((rc = cli_parse(&a, argc, argv, opts, 1, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if (a.npos < 1)
		return cli_usage_fail("missing QUEUE");
	if (since && !*since)
		return cli_usage_fail("invalid value '' for --since: expected an event id");
	if ((rc = cli_open_queue(&store, &q, a.pos[0])) != 0)
		return rc;
	if (follow) {
		/* SIGINT / SIGTERM end the loop between reads. */
		sigemptyset(&sigs);
		sigaddset(&sigs, SIGINT);
		sigaddset(&sigs, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &sigs, NULL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
	}
	cursor = strdup(since ? since : follow ? JOBQ_EVENTS_NOW : JOBQ_EVENTS_START);
	while (cursor) {
		jobq_event_list *list = NULL;
		size_t n;
		char *next;

		rc = jobq_events_read(&list, q, cursor, 1000, follow ? 200 : 0);
		if (rc < 0) {
			rc = cli_lib_fail(rc, "cannot read events");
			break;
		}
		n = jobq_event_list_count(list);
		for (size_t i = 0; i < n && !(count > 0 && seen >= count); i++) {
			if (print_event(jobq_event_list_at(list, i)) < 0) {
				count = seen = 1; /* stop */
				break;
			}
			seen++;
		}
		next = strdup(jobq_event_list_cursor(list));
		jobq_event_list_free(list);
		free(cursor);
		cursor = next;
		rc = 0;
		if (count > 0 && seen >= count)
			break;
		if (!follow && n == 0)
			break;
		if (follow) {
			struct timespec zero = {0, 0};
			if (sigtimedwait(&sigs, NULL, &zero) > 0)
				break;
		}
	}
	if (!cursor && rc == 0)
		rc = cli_fail(CLI_EXIT_FAILED, "out of memory");
	free(cursor);
	cli_close(store, q);
	return rc;
}
