/*
 * LMDB backend: lock-checked operations on active jobs (extend, complete, fail, release) and
 * reaping stalled jobs. See lmdb_ops.h for what the files of the operations share.
 */
#include "lmdb_prims.h"
#include "lmdb_sched.h"

/* --- lock-checked operations on active jobs -----------------------------------------------------
 */

int
jobq_lmdb__load_locked(lmdb_wctx *c, lmdb_rec *r, const char *id, const char *token, int64_t now) {
	int rc = jobq_lmdb__rec_load(c, r, id);
	if (rc < 0) {
		return rc;
	}
	int found = rc > 0;
	rc = eng_check_lock(found ? r : NULL, id, token, now, c->q->name);
	if (rc < 0 && found) {
		rec_free(r);
	}
	return rc;
}

/*
 * The running entry of active job `id` if `token` holds its lock at `now`: 1 (*run points
 * into the entry, valid until the next write), 0 if not (jobq_lmdb__load_locked words why), < 0
 * error. With `cur`, the entry stays under the cursor.
 */
static int
run_get_locked(lmdb_wctx *c, lmdb_run *run, MDB_cursor *cur, const char *id, const char *token,
               int64_t now) {
	kb k;
	job_key(&k, c->q, id);
	if (k.overflow || !token) {
		return 0;
	}
	MDB_val key = kv(&k), v;
	int mrc = cur ? mdb_cursor_get(cur, &key, &v, MDB_SET_KEY)
	              : mdb_get(c->txn, dbi(c->e, DBI_ACTIVE), &key, &v);
	if (mrc) {
		return mrc == MDB_NOTFOUND ? 0 : mdb_fail(c, mrc, "reading a running entry");
	}
	if (jobq_lmdb__run_decode(run, v.mv_data, v.mv_size) < 0) {
		jobq_error_clear();
		return 0;
	}
	size_t tl = strlen(token);
	return run->token && run->token_len == tl && memcmp(run->token, token, tl) == 0 &&
	       run->lock_until > now;
}

static int
extend_body(lmdb_wctx *c, void *arg) {
	lock_args *a = arg;
	lmdb_run run;
	int rc = run_get_locked(c, &run, NULL, a->id, a->token, a->now);
	if (rc < 0) {
		return rc;
	}
	if (rc == 0) { /* for the error's words */
		lmdb_rec r;
		rc = jobq_lmdb__load_locked(c, &r, a->id, a->token, a->now);
		if (rc == 0) { /* cannot be: the entry said no */
			rec_free(&r);
			rc = jobq_error_set(JOBQ_ELOCKLOST, "lmdb: job %s is not locked", a->id);
		}
		return rc;
	}
	run.lock_until = a->now + a->lock_ms;
	return jobq_lmdb__run_write(c, a->id, &run);
}

int
jobq_lmdb__extend_lock(jobq_backend_queue *q, const char *id, const char *token, int64_t lock_ms,
                       int64_t now_ms) {
	lock_args a = {.id = id, .token = token, .lock_ms = lock_ms, .now = now_ms};
	return jobq_lmdb__op_run(q, extend_body, &a);
}

/*
 * Completion of a job removed on completion, without reading its record: the lock check is
 * on the running entry, which also says whether there may be logs and whether the job has a
 * dedup id. Returns 1 to leave the job to the full path (which also words every lock error).
 */
static int
complete_removed(lmdb_wctx *c, const lock_args *a) {
	MDB_cursor *cur = NULL;
	int rc = wcur(c, DBI_ACTIVE, &cur);
	if (rc < 0) {
		return rc;
	}
	lmdb_run run;
	int ok = run_get_locked(c, &run, cur, a->id, a->token, a->now);
	/* (a job with a dedup id takes the full path: an add may be stashed with its key) */
	if (ok <= 0 || run.dedup) {
		return ok < 0 ? ok : 1;
	}
	uint32_t flags = run.flags;
	int mrc = mdb_cursor_del(cur, 0);
	if (mrc) {
		return mdb_fail(c, mrc, "removing a running entry");
	}
	lmdb_qmeta *m = meta(c);
	if (m->counts[JOBQ_STATE_ACTIVE] > 0) {
		m->counts[JOBQ_STATE_ACTIVE]--;
	}
	kb k;
	job_key(&k, c->q, a->id);
	MDB_val key = kv(&k);
	rc = wdel(c, DBI_JOBS, &key, "deleting a job");
	if (rc == 0 && (flags & LMDB_RUN_LOGS)) {
		kb p;
		if (jobq_lmdb__logs_prefix(&p, c->q, a->id) == 0) {
			rc = jobq_lmdb__del_prefix(c, DBI_LOGS, &p, NULL, NULL);
		}
	}
	if (rc == 0) {
		rc = engp_event(c, ENG_EV_COMPLETED, a->id, strlen(a->id), 0, 0,
		                a->result ? a->result : "null", NULL);
	}
	if (rc == 0) {
		rc = eng_drained_check(c);
	}
	return rc;
}

int
jobq_lmdb__complete_body(lmdb_wctx *c, void *arg) {
	lock_args *a = arg;
	if (a->keep && a->keep->mode == JOBQ_KEEP_NONE) {
		int frc = complete_removed(c, a);
		if (frc != 1) {
			return frc < 0 ? frc
			               : eng_metrics_count(c, JOBQ_STATE_COMPLETED, 1, a->now,
			                                   a->metrics);
		}
	}
	lmdb_rec r;
	int rc = jobq_lmdb__load_locked(c, &r, a->id, a->token, a->now);
	if (rc < 0) {
		return rc;
	}
	rc = set_str(&r.j->result, a->result);
	if (rc == 0) {
		rc = eng_complete(c, &r, a->result, a->keep, a->now);
	}
	if (rc == 0) {
		rc = eng_metrics_count(c, JOBQ_STATE_COMPLETED, 1, a->now, a->metrics);
	}
	rec_free(&r);
	return rc;
}

int
jobq_lmdb__complete(jobq_backend_queue *q, const char *id, const char *token,
                    const char *result_json, const jobq_keep *keep, int64_t now_ms) {
	lock_args a = {
	    .id = id, .token = token, .now = now_ms, .result = result_json, .keep = keep};
	return jobq_lmdb__op_run(q, jobq_lmdb__complete_body, &a);
}

int
jobq_lmdb__fail_body(lmdb_wctx *c, void *arg) {
	lock_args *a = arg;
	const jobq_failure *f = a->f;
	lmdb_rec r;
	int rc = jobq_lmdb__load_locked(c, &r, a->id, a->token, a->now);
	if (rc < 0) {
		return rc;
	}
	jobq_job *j = r.j;
	rc = set_str(&j->failed_reason, f->reason ? f->reason : "");
	if (rc == 0 && f->stack) {
		char **st =
		    jobq__realloc(j->stacktrace, (j->stacktrace_count + 1) * sizeof(char *));
		if (!st) {
			rc = jobq_error_set(JOBQ_ENOMEM, "lmdb: failing a job");
		} else {
			j->stacktrace = st;
			st[j->stacktrace_count] = jobq__strdup(f->stack);
			if (!st[j->stacktrace_count]) {
				rc = jobq_error_set(JOBQ_ENOMEM, "lmdb: failing a job");
			} else {
				j->stacktrace_count++;
				jobq__stack_trim(j->stacktrace, &j->stacktrace_count,
				                 f->stack_limit);
			}
		}
	}
	if (rc < 0) {
		rec_free(&r);
		return rc;
	}
	rc = eng_fail(c, &r, f, j->failed_reason, a->now);
	rec_free(&r);
	return rc;
}

int
jobq_lmdb__fail(jobq_backend_queue *q, const char *id, const char *token, const jobq_failure *f,
                int64_t now_ms) {
	lock_args a = {.id = id, .token = token, .now = now_ms, .f = f};
	return jobq_lmdb__op_run(q, jobq_lmdb__fail_body, &a);
}

static int
release_body(lmdb_wctx *c, void *arg) {
	lock_args *a = arg;
	lmdb_rec r;
	int rc = jobq_lmdb__load_locked(c, &r, a->id, a->token, a->now);
	if (rc < 0) {
		return rc;
	}
	rc = eng_release(c, &r);
	rec_free(&r);
	return rc;
}

int
jobq_lmdb__release(jobq_backend_queue *q, const char *id, const char *token, int64_t now_ms) {
	lock_args a = {.id = id, .token = token, .now = now_ms};
	return jobq_lmdb__op_run(q, release_body, &a);
}

/* --- stalled jobs ------------------------------------------------------------------------------
 */

typedef struct reap_args {
	jobq_strings *recovered;
	uint32_t max_stalled;
	int64_t now;
	int count;
} reap_args;

static int
reap_body(lmdb_wctx *c, void *arg) {
	reap_args *a = arg;
	if (a->recovered) {
		jobq_strings_free(a->recovered);
		a->recovered = NULL;
	}
	a->count = 0;
	idlist l;
	int rc = jobq_lmdb__collect_active(&l, c->q, c->txn, 0, 0, &a->now);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		lmdb_rec r;
		rc = jobq_lmdb__rec_load(c, &r, l.ids[i]);
		if (rc <= 0) {
			continue;
		}
		rc = 0;
		if (r.lock_until > a->now) {
			rec_free(&r);
			continue;
		}
		rc = eng_sched_stall(c, &r, a->max_stalled);
		if (rc == 0) {
			rc = jobq_strings__append(&a->recovered, l.ids[i], strlen(l.ids[i]));
		}
		if (rc == 0) {
			a->count++;
		}
		rec_free(&r);
	}
	jobq_lmdb__idlist_free(&l);
	return rc < 0 ? rc : a->count;
}

int
jobq_lmdb__reap_stalled(jobq_strings **recovered, jobq_backend_queue *q, uint32_t max_stalled,
                        int64_t stalled_interval_ms, int64_t now_ms) {
	(void)stalled_interval_ms;
	reap_args a = {NULL, max_stalled, now_ms, 0};
	int rc = jobq_lmdb__op_run(q, reap_body, &a);
	if (rc < 0 || !recovered) {
		jobq_strings_free(a.recovered);
		return rc;
	}
	*recovered = a.recovered;
	return rc;
}
