/*
 * Unit tests of the in-process engine's table of legal transitions (src/engine/transitions.c):
 * the table holds exactly DESIGN.md's moves, and the check refuses every other move with
 * JOBQ_ESTATE and a message naming the job, both states and the operation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "jobq.h"
#include "engine/events.h"
#include "engine/transitions.h"

#define W  JOBQ_STATE_WAITING
#define P  JOBQ_STATE_PRIORITIZED
#define D  JOBQ_STATE_DELAYED
#define A  JOBQ_STATE_ACTIVE
#define C  JOBQ_STATE_COMPLETED
#define F  JOBQ_STATE_FAILED
#define GO ENG_GONE

/* The moves DESIGN.md allows, written out here independently of the table. */
static const struct {
	jobq_state from, to;
} legal[] = {
    {GO, W},
    {GO, P},
    {GO, D}, /* add */
    {W, A},
    {P, A}, /* fetch */
    {D, W},
    {D, P}, /* promote */
    {A, W},
    {A, P},
    {A, D},
    {A, C},
    {A, F}, /* release, stall, retry, finish */
    {F, W},
    {F, P}, /* retry failed */
    {W, GO},
    {P, GO},
    {D, GO},
    {A, GO},
    {C, GO}, /* remove, clean, drain, keep */
    {F, GO},
    {JOBQ_STATE_PAUSED, GO},
    {JOBQ_STATE_WAITING_CHILDREN, GO},
    {GO, JOBQ_STATE_WAITING_CHILDREN}, /* add of a flow's parent */
    {JOBQ_STATE_WAITING_CHILDREN, W},
    {JOBQ_STATE_WAITING_CHILDREN, P},
    {JOBQ_STATE_WAITING_CHILDREN, D}, /* its children done */
};

static int
listed(jobq_state from, jobq_state to) {
	for (size_t i = 0; i < sizeof(legal) / sizeof(legal[0]); i++)
		if (legal[i].from == from && legal[i].to == to)
			return 1;
	return 0;
}

static void
test_table_is_design(void **state) {
	(void)state;
	for (int from = 0; from < JOBQ_STATE__COUNT; from++)
		for (int to = 0; to < JOBQ_STATE__COUNT; to++)
			assert_int_equal(jobq_eng__move_legal((jobq_state)from, (jobq_state)to),
			                 listed((jobq_state)from, (jobq_state)to));
}

static void
test_out_of_range_refused(void **state) {
	(void)state;
	assert_false(jobq_eng__move_legal(JOBQ_STATE__COUNT, W));
	assert_false(jobq_eng__move_legal(A, JOBQ_STATE__COUNT));
	assert_false(jobq_eng__move_legal((jobq_state)-1, W));
}

static void
test_check_refuses_with_estate(void **state) {
	(void)state;
	assert_int_equal(jobq_eng__check_move("7", A, C, "complete"), 0);
	assert_int_equal(jobq_eng__check_move("7", C, A, "fetch"), JOBQ_ESTATE);
	const char *m = jobq_error_message();
	assert_non_null(strstr(m, "fetch"));
	assert_non_null(strstr(m, "job 7"));
	assert_non_null(strstr(m, "completed"));
	assert_non_null(strstr(m, "active"));
	assert_int_equal(jobq_eng__check_move("8", W, C, "complete"), JOBQ_ESTATE);
	assert_int_equal(jobq_eng__check_move("9", GO, A, "add"), JOBQ_ESTATE);
	assert_non_null(strstr(jobq_error_message(), "(gone)"));
}

static void
test_event_fields(void **state) {
	(void)state;
	jobq_event_field f[ENG_EV_FIELDS_MAX];
	const char *job = "1";
	size_t n = jobq_eng__event_fields(f, &job, ENG_EV_WAITING, A, "0", NULL, NULL);
	assert_int_equal(n, 1);
	assert_string_equal(f[0].key, "prev");
	assert_string_equal(f[0].value, "active");
	n = jobq_eng__event_fields(f, &job, ENG_EV_CLEANED, 0, "3", NULL, NULL);
	assert_int_equal(n, 1);
	assert_string_equal(f[0].value, "3");
	assert_null(job);
	assert_string_equal(jobq_eng__event_name(ENG_EV_RETRIES_EXHAUSTED), "retries-exhausted");
	assert_string_equal(jobq_eng__event_name(ENG_EV__COUNT), "unknown");
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_is_design),
	    cmocka_unit_test(test_out_of_range_refused),
	    cmocka_unit_test(test_check_refuses_with_estate),
	    cmocka_unit_test(test_event_fields),
	};
	return cmocka_run_group_tests_name("engine_transitions", tests, NULL, NULL);
}
