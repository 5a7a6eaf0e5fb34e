/*
 * The conformance suite reaches each backend through one descriptor (docs/style.md 2.8). Every
 * case gets a fresh, empty store from `setup` and gives it back to `teardown`.
 */
#ifndef JOBQ_CONFORMANCE_TARGET_H
#define JOBQ_CONFORMANCE_TARGET_H

#include <stdint.h>

#include "jobq.h"
#include "jobq/sys/backend.h"

typedef struct jobq_test_target {
	const char *name; /* "memory" | "lmdb" | "redis" */
	uint32_t caps;    /* JOBQ_CAP_*: what the suite may assume */
	/* Builds a backend over a fresh, empty store. Return 0, a negative JOBQ_E* code, or 77
	 * to skip the case (e.g. no server). `ctx` is handed back to teardown. */
	int (*setup)(jobq_backend **out, void **ctx);
	/* Called after the store built over the backend was closed: rm tmpdir / DEL keys. */
	void (*teardown)(void *ctx);
	/* Optional: every key of the store as text (Redis: name, type and DUMP of every key;
	 * LMDB: every key and value of every database), so that a case can assert that a
	 * refused call changed nothing at all; malloc'ed, or NULL. The memory backend has no raw
	 * form: its cases compare what the public API shows (tests/support/dump.h). */
	char *(*dump)(void *ctx);
} jobq_test_target;

extern const jobq_test_target jobq_test_target_memory;
#ifdef JOBQ_HAVE_LMDB
extern const jobq_test_target jobq_test_target_lmdb;
#endif
#ifdef JOBQ_HAVE_REDIS
extern const jobq_test_target jobq_test_target_redis;
#endif

#endif
