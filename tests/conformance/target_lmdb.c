/* The LMDB backend as a conformance target: a fresh mkdtemp directory per case. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump.h"
#include "target.h"

typedef struct lmdb_target_ctx {
	char dir[256];
	jobq_backend *b; /* valid while the case's store is open */
} lmdb_target_ctx;

static void
remove_dir(const char *dir) {
	static const char *const files[] = {"data.mdb", "lock.mdb", "jobq-wake", "jobq-lock"};
	char path[512];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

static int
lmdb_setup(jobq_backend **out, void **ctx) {
	lmdb_target_ctx *c = calloc(1, sizeof(*c));
	if (!c) {
		return JOBQ_ENOMEM;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(c->dir, sizeof(c->dir), "%s/jobq-conf-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(c->dir)) {
		free(c);
		return JOBQ_EIO;
	}
	/* JOBQ_TEST_LMDB_DURABILITY=sync|group|periodic (default sync, the backend's default). */
	jobq_lmdb_options o = JOBQ_LMDB_OPTIONS_INIT;
	const char *d = getenv("JOBQ_TEST_LMDB_DURABILITY");
	if (d && strcmp(d, "group") == 0) {
		o.durability = JOBQ_LMDB_GROUP;
	} else if (d && strcmp(d, "periodic") == 0) {
		o.durability = JOBQ_LMDB_PERIODIC;
	}
	int rc = jobq_backend_lmdb_new(out, c->dir, &o);
	if (rc < 0) {
		remove_dir(c->dir);
		free(c);
		return rc;
	}
	c->b = *out;
	*ctx = c;
	return 0;
}

static void
lmdb_teardown(void *ctx) {
	lmdb_target_ctx *c = ctx;
	if (c) {
		remove_dir(c->dir);
		free(c);
	}
}

/* Every key and value of every database of the environment, read-only (dump.h). */
static char *
lmdb_dump(void *ctx) {
	lmdb_target_ctx *c = ctx;
	jobq_test_buf b = {0};
	jobq_test_dump_lmdb(&b, c->b);
	return b.p != NULL ? b.p : strdup("");
}

const jobq_test_target jobq_test_target_lmdb = {
    "lmdb",
    JOBQ_CAP_BLOCKING_WAIT | JOBQ_CAP_DURABLE | JOBQ_CAP_MULTIPROCESS | JOBQ_CAP_DUE_CLOCK |
        JOBQ_CAP_LOCK_CLOCK | JOBQ_CAP_DEDUP_KEEP_LAST,
    lmdb_setup,
    lmdb_teardown,
    lmdb_dump,
};
