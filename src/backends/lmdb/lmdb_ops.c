/*
 * LMDB backend: the vtable. Each write operation is one LMDB write transaction (run by
 * jobq_lmdb__write); reads use a read-only transaction. See lmdb_internal.h for the layout.
 */
#include "lmdb_ops.h"

/* --- queue open / close, backend free ----------------------------------------------------------
 */

static int
lm_queue_open(jobq_backend_queue **out, jobq_backend *b, const char *name) {
	size_t n = strlen(name);
	if (n == 0 || n > JOBQ_QUEUE_NAME_MAX) {
		return jobq_error_set(JOBQ_EINVAL, "lmdb: queue name must be 1..%d bytes",
		                      JOBQ_QUEUE_NAME_MAX);
	}
	return jobq_lmdb__queue_get(out, ((lmdb_backend *)b)->e, name, n);
}

static void
lm_queue_close(jobq_backend_queue *q) {
	/* The handle stays with the environment; wake this process's waiters on it. */
	__atomic_add_fetch(&q->e->wake_gen, 1, __ATOMIC_SEQ_CST);
	jobq_lmdb__wake_bump(q->e, q->slot, 1, 1);
}

static void
lm_free(jobq_backend *b) {
	lmdb_backend *lb = (lmdb_backend *)b;
	if (!lb) {
		return;
	}
	jobq_lmdb__wake_all(lb->e);
	jobq_lmdb__env_release(lb->e);
	jobq__free(lb);
}

static void
lm_wake(jobq_backend *b) {
	lmdb_backend *lb = (lmdb_backend *)b;
	__atomic_add_fetch(&lb->e->wake_gen, 1, __ATOMIC_SEQ_CST);
	jobq_lmdb__wake_all(lb->e);
}

/* --- the vtable ------------------------------------------------------------------------------- */

static const jobq_backend lmdb_vtable = {
    .version = JOBQ_BACKEND_VERSION,
    .name = "lmdb",
    .caps = JOBQ_CAP_BLOCKING_WAIT | JOBQ_CAP_DURABLE | JOBQ_CAP_MULTIPROCESS | JOBQ_CAP_DUE_CLOCK |
            JOBQ_CAP_LOCK_CLOCK | JOBQ_CAP_DEDUP_KEEP_LAST,
    .queue_open = lm_queue_open,
    .queue_close = lm_queue_close,
    .add = jobq_lmdb__add,
    .fetch = jobq_lmdb__fetch,
    .extend_lock = jobq_lmdb__extend_lock,
    .complete = jobq_lmdb__complete,
    .fail = jobq_lmdb__fail,
    .release = jobq_lmdb__release,
    .reap_stalled = jobq_lmdb__reap_stalled,
    .get = jobq_lmdb__get,
    .list = jobq_lmdb__list,
    .counts = jobq_lmdb__counts,
    .remove = jobq_lmdb__remove,
    .set_paused = jobq_lmdb__set_paused,
    .is_paused = jobq_lmdb__is_paused,
    .set_limits = jobq_lmdb__set_limits,
    .get_limits = jobq_lmdb__get_limits,
    .rate_limit = jobq_lmdb__rate_limit,
    .drain = jobq_lmdb__drain,
    .clean = jobq_lmdb__clean,
    .obliterate = jobq_lmdb__obliterate,
    .promote = jobq_lmdb__promote,
    .retry_failed = jobq_lmdb__retry_failed,
    .progress = jobq_lmdb__progress,
    .add_log = jobq_lmdb__add_log,
    .get_logs = jobq_lmdb__get_logs,
    .events_read = jobq_lmdb__events_read,
    .wait_for_work = jobq_lmdb__wait_for_work,
    .wake = lm_wake,
    .free = lm_free,
    .complete_fetch = jobq_lmdb__complete_fetch,
    .check = jobq_lmdb__check,
    .list_queues = jobq_lmdb__list_queues,
    .metrics = jobq_lmdb__metrics,
    .scheduler_next = jobq_lmdb__scheduler_next,
    .scheduler_upsert = jobq_lmdb__scheduler_upsert,
    .scheduler_get = jobq_lmdb__scheduler_get,
    .scheduler_list = jobq_lmdb__scheduler_list,
    .scheduler_remove = jobq_lmdb__scheduler_remove,
};

int
jobq_backend_lmdb_new(jobq_backend **out, const char *path, const jobq_lmdb_options *opts) {
	jobq_lmdb_options o = JOBQ_LMDB_OPTIONS_INIT;
	if (!out || !path || !*path) {
		return jobq_error_set(JOBQ_EINVAL, "lmdb: a directory path is required");
	}
	if (opts) {
		if (opts->version != JOBQ_LMDB_OPTIONS_VERSION) {
			return jobq_error_set(
			    JOBQ_EVERSION, "lmdb options: version %u not supported", opts->version);
		}
		o = *opts;
		if (o.durability > JOBQ_LMDB_PERIODIC) {
			return jobq_error_set(JOBQ_EINVAL, "lmdb options: unknown durability %d",
			                      (int)o.durability);
		}
		if (o.file_mode == 0) {
			o.file_mode = 0600;
		}
	}
	lmdb_backend *b = jobq__calloc(1, sizeof(*b));
	if (!b) {
		return jobq_error_set(JOBQ_ENOMEM, "lmdb: opening %s", path);
	}
	int rc = jobq_lmdb__env_acquire(&b->e, path, &o);
	if (rc < 0) {
		jobq__free(b);
		return rc;
	}
	b->base = lmdb_vtable;
	*out = &b->base;
	return 0;
}
