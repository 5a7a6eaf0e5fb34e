/*
 * jobq command — `jobq check`: the store's integrity check (jobq_store_check).
 */
#include <stdio.h>

#include "cli.h"

/* Problem lines kept for printing; the rest are only counted. */
#define CHECK_MAX_MESSAGES 1000

int
cli_cmd_check(int argc, char **argv) {
	static const cli_opt no_opts[] = {{NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL}};
	cli_args a;
	jobq_store *store = NULL;
	int rc = cli_parse(&a, argc, argv, no_opts, 0, 0);

	if (rc != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if ((rc = cli_open_store(&store, cli_url())) != 0)
		return rc;
	jobq_check_report *r = NULL;
	rc = jobq_store_check(&r, store, CHECK_MAX_MESSAGES);
	if (rc < 0) {
		rc = cli_lib_fail(rc, "cannot check the store");
		cli_close(store, NULL);
		return rc;
	}
	size_t shown = r->messages ? r->messages->count : 0;
	if (cli_g.json) {
		json_t *j = json_object();
		json_object_set_new(j, "queues", json_integer((json_int_t)r->queues));
		json_object_set_new(j, "jobs", json_integer((json_int_t)r->jobs));
		json_object_set_new(j, "entries", json_integer((json_int_t)r->entries));
		json_object_set_new(j, "problems", json_integer((json_int_t)r->problems));
		json_t *msgs = json_array();
		for (size_t i = 0; i < shown; i++)
			json_array_append_new(msgs, json_string(r->messages->items[i]));
		json_object_set_new(j, "messages", msgs);
		rc = cli_print_json(j);
	} else {
		for (size_t i = 0; i < shown; i++)
			printf("%s\n", r->messages->items[i]);
		if (r->problems > shown)
			printf("... and %llu more problems\n",
			       (unsigned long long)(r->problems - shown));
		printf("checked %llu queues, %llu jobs, %llu entries: %llu problems\n",
		       (unsigned long long)r->queues, (unsigned long long)r->jobs,
		       (unsigned long long)r->entries, (unsigned long long)r->problems);
		rc = 0;
	}
	if (rc == 0 && r->problems > 0)
		rc = cli_fail(CLI_EXIT_FAILED, "the store is damaged: %llu problems found",
		              (unsigned long long)r->problems);
	jobq_check_report_free(r);
	cli_close(store, NULL);
	return rc;
}
