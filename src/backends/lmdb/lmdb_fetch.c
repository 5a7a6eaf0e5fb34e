/*
 * LMDB backend: fetching: promoting due delayed jobs, taking the next ready job and locking
 * it, and complete-and-fetch. See lmdb_ops.h for what the files of the operations share.
 */
#include "lmdb_prims.h"
#include "engine/sched_rec.h"

/* --- fetch --------------------------------------------------------------------------------------
 */

/* Promotes the delayed jobs due at `now` (at most `max`), and reads the next due time (0:
 * none). */
static int
promote_due(lmdb_wctx *c, int64_t now, int max, int64_t *next_due) {
	int moved = eng_promote_due(c, now, max);
	if (moved < 0) {
		return moved;
	}
	kb p;
	kb_q(&p, c->q);
	char id[JOBQ_ID_MAX + 1];
	MDB_val key = {0, NULL};
	int found = first_id(c, DBI_DELAYED, &p, id, &key);
	if (found < 0) {
		return found;
	}
	*next_due = found ? rd_i64((const unsigned char *)key.mv_data + p.n) : 0;
	return moved;
}

typedef struct fetch_args {
	jobq_job *job;
	int64_t next_due;
	const char *token;
	int64_t lock_ms, now;
	const jobq_fetch_info *info; /* the fetcher's (may be NULL) */
	int64_t limit_wait;          /* the rate limiter's wait when it stopped the fetch */
} fetch_args;

/* Whether the queue's state and limits let the fetch take one more job (engine/limits.h). */
static int
gate(lmdb_wctx *c, const jobq_fetch_info *info, int64_t now, int64_t *wait) {
	lmdb_qmeta *m = meta(c);
	return eng_limits_gate(&m->lim, m->paused != 0, (uint64_t)m->counts[JOBQ_STATE_ACTIVE],
	                       info, now, wait);
}

static int take_ready(lmdb_wctx *c, const char *token, int64_t lock_ms, int64_t now,
                      const jobq_fetch_info *info, jobq_job **out);

/*
 * Loads a job found in the waiting or prioritized index for handing to the core: one packed
 * allocation with `token` as its token. 1 found, 0 absent, < 0 error.
 */
static int
rec_load_taken(lmdb_wctx *c, lmdb_rec *r, const char *id, const char *token) {
	kb k;
	job_key(&k, c->q, id);
	if (k.overflow) {
		return 0;
	}
	MDB_cursor *cur = NULL;
	int rc = wcur(c, DBI_JOBS, &cur);
	if (rc < 0) {
		return rc;
	}
	MDB_val key = kv(&k), v;
	int mrc = mdb_cursor_get(cur, &key, &v, MDB_SET);
	if (mrc == MDB_NOTFOUND) {
		return 0;
	}
	if (mrc) {
		return mdb_fail(c, mrc, "reading a job");
	}
	rc = jobq_lmdb__rec_decode_packed(r, id, v.mv_data, v.mv_size, token);
	return rc < 0 ? rc : 1;
}

/* Takes the next waiting (else prioritized) job and locks it: 0, JOBQ_ENOJOB or an error. */
static int
take_one(lmdb_wctx *c, const char *token, int64_t lock_ms, int64_t now, const char *pb,
         jobq_job **out) {
	kb p;
	kb_q(&p, c->q);
	char id[JOBQ_ID_MAX + 1];
	int found = 0, pass;
	lmdb_rec r;
	MDB_cursor *cur = NULL;
	for (pass = 0; pass < 2; pass++) {
		int rc = wcur(c, pass == 0 ? DBI_WAIT : DBI_PRIO, &cur);
		if (rc < 0) {
			return rc;
		}
		for (;;) {
			/* After a take in this transaction the cursor sits on the entry that
			 * followed the deleted one (MDB_NEXT yields it): no search. */
			MDB_val k = kv(&p), v;
			int mrc = mdb_cursor_get(cur, &k, &v,
			                         c->take_next[pass] ? MDB_NEXT : MDB_SET_RANGE);
			c->take_next[pass] = 0;
			if (mrc == MDB_NOTFOUND ||
			    (mrc == 0 && (!has_prefix(&k, &p) || v.mv_size > JOBQ_ID_MAX))) {
				break;
			}
			rc = mrc ? mdb_fail(c, mrc, "reading an index") : 0;
			if (rc == 0) {
				memcpy(id, v.mv_data, v.mv_size);
				id[v.mv_size] = '\0';
				rc = rec_load_taken(c, &r, id, token);
			}
			if (rc < 0) {
				return rc;
			}
			if (rc > 0) {
				found = 1;
				break;
			}
			/* dangling index entry (should not happen): drop it and look again */
			mrc = mdb_cursor_del(cur, 0);
			if (mrc) {
				return mdb_fail(c, mrc, "removing an index entry");
			}
			c->take_next[pass] = 1;
		}
		if (found) {
			break;
		}
	}
	if (!found) {
		return JOBQ_ENOJOB;
	}
	int rc = jobq_eng__check_move(id, r.j->state, JOBQ_STATE_ACTIVE, "fetch");
	if (rc < 0) {
		rec_free(&r);
		return rc;
	}
	/* The index entry under the cursor is the job's: delete it there (as
	 * jobq_lmdb__idx_remove). */
	int mrc = mdb_cursor_del(cur, 0);
	if (mrc) {
		rec_free(&r);
		return mdb_fail(c, mrc, "removing an index entry");
	}
	c->take_next[pass] = 1;
	lmdb_qmeta *m = meta(c);
	size_t st = (size_t)r.j->state;
	if (st < sizeof(m->counts) / sizeof(m->counts[0]) && m->counts[st] > 0) {
		m->counts[st]--;
	}
	r.j->state = JOBQ_STATE_UNKNOWN;
	if (pb) { /* the decoded pb, if any, is in the packed storage: not freed here */
		r.j->processed_by = jobq__strdup(pb);
		if (!r.j->processed_by) {
			rec_free(&r);
			return jobq_error_set(JOBQ_ENOMEM, "lmdb: out of memory in fetch");
		}
	}
	/* The record stays as it is: the running entry carries what the fetch changed. */
	rc = eng_activate(c, &r, lock_ms, now);
	if (rc < 0) {
		rec_free(&r);
		return rc;
	}
	*out = r.j;
	return 0;
}

static int
fetch_body(lmdb_wctx *c, void *arg) {
	fetch_args *a = arg;
	if (a->job) {
		jobq_job_free(a->job);
		a->job = NULL;
	}
	int rc = promote_due(c, a->now, ENG_STEP_MAX, &a->next_due);
	if (rc < 0) {
		return rc;
	}
	if (gate(c, a->info, a->now, &a->limit_wait) < 0) {
		c->commit_anyway = 1; /* keep the promotions */
		return JOBQ_ENOJOB;
	}
	rc = take_ready(c, a->token, a->lock_ms, a->now, a->info, &a->job);
	c->commit_anyway = rc == JOBQ_ENOJOB;
	return rc;
}

int
jobq_lmdb__fetch(jobq_job **out, jobq_fetch_info *info, jobq_backend_queue *q, const char *token,
                 int64_t lock_ms, int64_t now_ms) {
	if (!token || !*token) {
		return jobq_error_set(JOBQ_EINVAL, "lmdb: fetch needs a lock token");
	}
	fetch_args a = {NULL, 0, token, lock_ms, now_ms, info, 0};
	int rc = jobq_lmdb__op_run(q, fetch_body, &a);
	if (info) {
		info->next_due_ms = a.next_due;
		info->rate_limit_ms = a.limit_wait;
	}
	if (rc < 0) {
		if (a.job) {
			jobq_job_free(a.job);
		}
		return rc;
	}
	*out = a.job;
	return 0;
}

typedef struct complete_fetch_args {
	jobq_job **jobs;
	size_t got;
	int64_t next_due;
	jobq_completion *done;
	size_t ndone;
	const char *const *tokens;
	size_t max;
	int64_t lock_ms, now;
	const jobq_fetch_info *info; /* the fetcher's (may be NULL) */
	int64_t limit_wait;
} complete_fetch_args;

static int
complete_fetch_body(lmdb_wctx *c, void *arg) {
	complete_fetch_args *a = arg;
	for (size_t i = 0; i < a->got; i++) { /* from an attempt that had to be retried */
		jobq_job_free(a->jobs[i]);
		a->jobs[i] = NULL;
	}
	a->got = 0;
	for (size_t i = 0; i < a->ndone; i++) {
		jobq_completion *d = &a->done[i];
		lock_args la = {.id = d->id,
		                .token = d->token,
		                .now = a->now,
		                .result = d->result_json,
		                .keep = &d->keep,
		                .metrics = d->metrics_max_points};
		int rc = jobq_lmdb__complete_body(c, &la);
		if (rc == JOBQ_ELOCKLOST || rc == JOBQ_ESTATE || rc == JOBQ_ENOTFOUND) {
			/* checked before any change: this one is skipped */
			d->rc = rc;
			continue;
		}
		if (rc < 0) {
			return rc;
		}
		d->rc = 0;
	}
	int rc = promote_due(c, a->now, ENG_STEP_MAX, &a->next_due);
	if (rc < 0) {
		return rc;
	}
	while (a->got < a->max && gate(c, a->info, a->now, &a->limit_wait) == 0) {
		rc =
		    take_ready(c, a->tokens[a->got], a->lock_ms, a->now, a->info, &a->jobs[a->got]);
		if (rc == JOBQ_ENOJOB) {
			break;
		}
		if (rc < 0) {
			return rc;
		}
		a->got++;
	}
	return (int)a->got;
}

int
jobq_lmdb__complete_fetch(jobq_job **jobs, jobq_fetch_info *info, jobq_backend_queue *q,
                          jobq_completion *done, size_t ndone, const char *const *tokens,
                          size_t max, int64_t lock_ms, int64_t now_ms) {
	if (ndone == 0 && max == 0) {
		return 0; /* (a rate-limited worker letting go of its last batch: nothing to write)
		           */
	}
	complete_fetch_args a = {jobs, 0, 0, done, ndone, tokens, max, lock_ms, now_ms, info, 0};
	for (size_t i = 0; i < max; i++) {
		jobs[i] = NULL;
	}
	int rc = jobq_lmdb__op_run(q, complete_fetch_body, &a);
	if (info) {
		info->next_due_ms = a.next_due;
		info->rate_limit_ms = a.limit_wait;
	}
	if (rc < 0) {
		for (size_t i = 0; i < a.got; i++) {
			jobq_job_free(jobs[i]);
			jobs[i] = NULL;
		}
		for (size_t i = 0; i < ndone; i++) {
			done[i].rc = rc; /* the whole step was rolled back */
		}
	}
	return rc;
}

/*
 * take_one, failing the jobs it takes with a deferred failure (in this transaction, as
 * jobq_lmdb__fail would) until it takes one to run: 0, JOBQ_ENOJOB or an error.
 */
static int
take_ready(lmdb_wctx *c, const char *token, int64_t lock_ms, int64_t now,
           const jobq_fetch_info *info, jobq_job **out) {
	for (;;) {
		jobq_job *j = NULL;
		int rc = take_one(c, token, lock_ms, now, info ? info->processed_by : NULL, &j);
		if (rc < 0) {
			return rc;
		}
		if (j->deferred_failure == NULL) {
			if ((rc = jobq_eng__mark_iteration(j)) < 0) {
				jobq_job_free(j);
				return rc;
			}
			eng_limits_count(&meta(c)->lim, info, now);
			*out = j;
			return 0;
		}
		jobq_failure f = jobq__deferred_failure(j->deferred_failure, &j->opts, info);
		lock_args la = {.id = j->id, .token = token, .now = now, .f = &f};
		rc = jobq_lmdb__fail_body(c, &la);
		jobq_job_free(j);
		if (rc < 0) {
			return rc;
		}
	}
}
