/* The memory backend as a conformance target: a private instance per case. */
#include <stddef.h>

#include "target.h"

static int
memory_setup(jobq_backend **out, void **ctx) {
	*ctx = NULL;
	return jobq_backend_memory_new(out, NULL);
}

static void
memory_teardown(void *ctx) {
	(void)ctx;
}

const jobq_test_target jobq_test_target_memory = {
    "memory",
    JOBQ_CAP_BLOCKING_WAIT | JOBQ_CAP_DUE_CLOCK | JOBQ_CAP_LOCK_CLOCK | JOBQ_CAP_DEDUP_KEEP_LAST,
    memory_setup,
    memory_teardown,
    NULL,
};
