/*
 * The conformance suite: `jobq_conformance TARGET [FILTER]` runs every case against the
 * backend TARGET (memory, lmdb, redis) as the cmocka group "conformance.TARGET". FILTER is a
 * cmocka test-name pattern (`*` and `?`); the environment variable JOBQ_TEST_SKIP is a pattern
 * of cases not to run. Exit status: 0 all passed, 1 failures, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

static const jobq_test_target *const targets[] = {
    &jobq_test_target_memory,
#ifdef JOBQ_HAVE_LMDB
    &jobq_test_target_lmdb,
#endif
#ifdef JOBQ_HAVE_REDIS
    &jobq_test_target_redis,
#endif
};

static const conf_table *const tables[] = {
    &conf_add_cases,       &conf_fetch_cases,  &conf_retry_cases,       &conf_stall_cases,
    &conf_admin_cases,     &conf_events_cases, &conf_concurrency_cases, &conf_errors_cases,
    &conf_add_async_cases, &conf_vtable_cases, &conf_metrics_cases,     &conf_sched_cases,
    &conf_semantics_cases, &conf_limits_cases, &conf_flow_cases,
};

static void
usage(void) {
	size_t i;

	fprintf(stderr, "usage: jobq_conformance TARGET [TEST-FILTER]\ntargets:");
	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		fprintf(stderr, " %s", targets[i]->name);
	}
	fprintf(stderr, "\n");
}

int
main(int argc, char **argv) {
	const jobq_test_target *target = NULL;
	struct CMUnitTest *tests;
	char group[64];
	size_t i, j, n = 0;
	int rc;

	if (argc < 2 || argc > 3) {
		usage();
		return 2;
	}
	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		if (strcmp(targets[i]->name, argv[1]) == 0) {
			target = targets[i];
		}
	}
	if (target == NULL) {
		fprintf(stderr, "jobq_conformance: unknown or not built target '%s'\n", argv[1]);
		usage();
		return 2;
	}
	if (argc == 3) {
		cmocka_set_test_filter(argv[2]);
	}
	if (getenv("JOBQ_TEST_SKIP") != NULL && getenv("JOBQ_TEST_SKIP")[0] != '\0') {
		cmocka_set_skip_filter(getenv("JOBQ_TEST_SKIP"));
	}
	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		n += tables[i]->count;
	}
	tests = calloc(n, sizeof(*tests));
	if (tests == NULL) {
		return 1;
	}
	n = 0;
	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		for (j = 0; j < tables[i]->count; j++) {
			tests[n] = tables[i]->tests[j];
			/* cmocka_unit_test_prestate_setup_teardown: the prestate is the target. */
			tests[n].initial_state = (void *)(uintptr_t)target;
			n++;
		}
	}
	snprintf(group, sizeof(group), "conformance.%s", target->name);
	/* cmocka_run_group_tests_name() needs an array of static size; this is what it expands
	 * to, with the count computed at run time. */
	rc = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
	free(tests);
	return rc == 0 ? 0 : 1;
}
