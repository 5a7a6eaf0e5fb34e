/*
 * LMDB backend: administration: remove, pause, drain, clean, obliterate, promote, retry
 * failed, progress and logs. See lmdb_ops.h for what the files of the operations share.
 */
#include "lmdb_sched.h"

/* --- administration ----------------------------------------------------------------------------
 */

typedef struct admin_args {
	const char *id;
	int64_t now;
	int flag; /* paused / include_delayed / force */
	jobq_state state;
	int64_t grace;
	size_t limit;
	jobq_strings *ids;
	const char *token, *json, *line;
	int64_t keep;
} admin_args;

static int
remove_body(lmdb_wctx *c, void *arg) {
	admin_args *a = arg;
	lmdb_rec r;
	int rc = jobq_lmdb__rec_load(c, &r, a->id);
	if (rc < 0) {
		return rc;
	}
	if (rc == 0) {
		return jobq_error_set(JOBQ_ENOTFOUND, "lmdb: no job %s in queue %s", a->id,
		                      c->q->name);
	}
	rc = eng_sched_is_pending(c, &r);
	if (rc > 0)
		rc = jobq_error_set(
		    JOBQ_ESTATE, "lmdb: job %s is the pending iteration of a job scheduler", a->id);
	else if (rc == 0)
		rc = eng_remove(c, &r, a->now);
	rec_free(&r);
	return rc;
}

int
jobq_lmdb__remove(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	admin_args a = {.id = id, .now = now_ms};
	return jobq_lmdb__op_run(q, remove_body, &a);
}

static int
pause_body(lmdb_wctx *c, void *arg) {
	admin_args *a = arg;
	meta(c)->paused = a->flag != 0;
	if (!a->flag) {
		c->bump_work = 1;
	}
	return engp_event(c, a->flag ? ENG_EV_PAUSED : ENG_EV_RESUMED, NULL, 0, 0, 0, NULL, NULL);
}

int
jobq_lmdb__set_paused(jobq_backend_queue *q, int paused, int64_t now_ms) {
	admin_args a = {.flag = paused, .now = now_ms};
	return jobq_lmdb__op_run(q, pause_body, &a);
}

static int
delete_state(lmdb_wctx *c, jobq_state s, int64_t now) {
	idlist l;
	int rc = jobq_lmdb__collect(&l, c->q, c->txn, s, 0, 0, 0, NULL);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		lmdb_rec r;
		rc = jobq_lmdb__rec_load(c, &r, l.ids[i]);
		if (rc > 0) {
			/* the pending iterations of job schedulers stay, as BullMQ's drain keeps
			 * them */
			rc = eng_sched_is_pending(c, &r);
			if (rc == 0)
				rc = eng_delete(c, &r, now);
			else if (rc > 0)
				rc = 0;
			rec_free(&r);
		}
	}
	jobq_lmdb__idlist_free(&l);
	return rc;
}

static int
drain_body(lmdb_wctx *c, void *arg) {
	admin_args *a = arg;
	int rc = delete_state(c, JOBQ_STATE_WAITING, a->now);
	if (rc == 0) {
		rc = delete_state(c, JOBQ_STATE_PRIORITIZED, a->now);
	}
	if (rc == 0 && a->flag) {
		rc = delete_state(c, JOBQ_STATE_DELAYED, a->now);
	}
	return rc;
}

int
jobq_lmdb__drain(jobq_backend_queue *q, int include_delayed, int64_t now_ms) {
	admin_args a = {.flag = include_delayed, .now = now_ms};
	return jobq_lmdb__op_run(q, drain_body, &a);
}

static int
clean_body(lmdb_wctx *c, void *arg) {
	admin_args *a = arg;
	if (a->ids) {
		jobq_strings_free(a->ids);
		a->ids = NULL;
	}
	int64_t cutoff = a->now - a->grace;
	int finished = a->state == JOBQ_STATE_COMPLETED || a->state == JOBQ_STATE_FAILED;
	idlist l;
	int rc = jobq_lmdb__collect(&l, c->q, c->txn, a->state, 0, 0, finished ? a->limit : 0,
	                            finished ? &cutoff : NULL);
	size_t count = 0;
	for (size_t i = 0; rc == 0 && i < l.n && (!a->limit || count < a->limit); i++) {
		lmdb_rec r;
		rc = jobq_lmdb__rec_load(c, &r, l.ids[i]);
		if (rc <= 0) {
			continue;
		}
		rc = 0;
		jobq_job *j = r.j;
		int64_t age = j->finished_on    ? j->finished_on
		              : j->processed_on ? j->processed_on
		                                : j->timestamp;
		int eligible = age <= cutoff;
		if (a->state == JOBQ_STATE_ACTIVE && r.lock_until > a->now) {
			eligible = 0;
		}
		if (eligible && (rc = eng_sched_is_pending(c, &r)) != 0) {
			eligible = 0; /* kept, as BullMQ's clean keeps it */
			rc = rc < 0 ? rc : 0;
		}
		if (eligible) {
			rc = eng_delete(c, &r, a->now);
			if (rc == 0) {
				rc = jobq_strings__append(&a->ids, l.ids[i], strlen(l.ids[i]));
			}
			count++;
		}
		rec_free(&r);
	}
	jobq_lmdb__idlist_free(&l);
	if (rc == 0) {
		rc = engp_event(c, ENG_EV_CLEANED, NULL, 0, 0, (int64_t)count, NULL, NULL);
	}
	return rc < 0 ? rc : (int)count;
}

int
jobq_lmdb__clean(jobq_strings **removed, jobq_backend_queue *q, jobq_state state, int64_t grace_ms,
                 size_t limit, int64_t now_ms) {
	admin_args a = {.state = state, .grace = grace_ms, .limit = limit, .now = now_ms};
	int rc = jobq_lmdb__op_run(q, clean_body, &a);
	if (rc < 0 || !removed) {
		jobq_strings_free(a.ids);
		return rc;
	}
	*removed = a.ids;
	return rc;
}

static int
obliterate_body(lmdb_wctx *c, void *arg) {
	admin_args *a = arg;
	if (meta(c)->counts[JOBQ_STATE_ACTIVE] > 0 && !a->flag) {
		return jobq_error_set(JOBQ_ESTATE, "lmdb: queue %s has %" PRId64 " active jobs",
		                      c->q->name, meta(c)->counts[JOBQ_STATE_ACTIVE]);
	}
	static const int tables[] = {DBI_JOBS,   DBI_WAIT,      DBI_PRIO,   DBI_DELAYED,
	                             DBI_ACTIVE, DBI_COMPLETED, DBI_FAILED, DBI_DEDUP,
	                             DBI_LOGS,   DBI_EVENTS,    DBI_METRICS};
	kb p;
	kb_q(&p, c->q);
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		int rc = jobq_lmdb__del_prefix(c, tables[i], &p, NULL, NULL);
		if (rc < 0) {
			return rc;
		}
	}
	sched_key(&p, c->q, ""); /* the job schedulers */
	int rc = jobq_lmdb__del_prefix(c, DBI_META, &p, NULL, NULL);
	if (rc < 0) {
		return rc;
	}
	int64_t ev_seq = meta(c)->ev_seq; /* event ids keep increasing */
	memset(&c->m, 0, sizeof(c->m));
	c->m.ev_seq = ev_seq;
	c->ev_start = ev_seq;
	c->evb.size = 0;     /* events of this transaction so far go with the others */
	c->wrote_events = 1; /* wake readers */
	return 0;
}

int
jobq_lmdb__obliterate(jobq_backend_queue *q, int force, int64_t now_ms) {
	admin_args a = {.flag = force, .now = now_ms};
	return jobq_lmdb__op_run(q, obliterate_body, &a);
}

/* The ids an admin move acts on: job `id`, which must be in `state`, or every job in it. */
static int
select_ids(lmdb_wctx *c, idlist *l, const char *id, jobq_state state) {
	memset(l, 0, sizeof(*l)); /* the caller frees it whatever happens */
	if (id == NULL) {
		return jobq_lmdb__collect(l, c->q, c->txn, state, 0, 0, 0, NULL);
	}
	lmdb_rec r;
	int rc = jobq_lmdb__rec_load(c, &r, id);
	if (rc < 0) {
		return rc;
	}
	if (rc == 0) {
		return jobq_error_set(JOBQ_ENOTFOUND, "lmdb: no job %s in queue %s", id,
		                      c->q->name);
	}
	int in_state = r.j->state == state;
	rec_free(&r);
	if (!in_state) {
		return jobq_error_set(JOBQ_ESTATE, "lmdb: job %s is not %s", id,
		                      jobq_state_name(state));
	}
	memset(l, 0, sizeof(*l));
	MDB_val idv = {strlen(id), (void *)(uintptr_t)id};
	return jobq_lmdb__idlist_push(l, &idv, 0);
}

/* Moves job a->id (NULL: every job) from delayed or failed back to waiting or prioritized. */
static int
move_to_ready(lmdb_wctx *c, const admin_args *a, jobq_state from) {
	idlist l;
	int rc = select_ids(c, &l, a->id, from);
	int count = 0;
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		lmdb_rec r;
		rc = jobq_lmdb__rec_load(c, &r, l.ids[i]);
		if (rc <= 0) {
			continue;
		}
		rc = eng_back_to_ready(c, &r);
		rec_free(&r);
		count++;
	}
	jobq_lmdb__idlist_free(&l);
	return rc < 0 ? rc : count;
}

static int
promote_body(lmdb_wctx *c, void *arg) {
	return move_to_ready(c, arg, JOBQ_STATE_DELAYED);
}

int
jobq_lmdb__promote(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	admin_args a = {.id = id, .now = now_ms};
	return jobq_lmdb__op_run(q, promote_body, &a);
}

static int
retry_body(lmdb_wctx *c, void *arg) {
	return move_to_ready(c, arg, JOBQ_STATE_FAILED);
}

int
jobq_lmdb__retry_failed(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	admin_args a = {.id = id, .now = now_ms};
	return jobq_lmdb__op_run(q, retry_body, &a);
}

/* --- progress and logs --------------------------------------------------------------------------
 */

static int
progress_body(lmdb_wctx *c, void *arg) {
	admin_args *a = arg;
	lmdb_rec r;
	int rc;
	if (a->token) {
		rc = jobq_lmdb__load_locked(c, &r, a->id, a->token, a->now);
		if (rc < 0) {
			return rc;
		}
	} else {
		rc = jobq_lmdb__rec_load(c, &r, a->id);
		if (rc < 0) {
			return rc;
		}
		if (rc == 0) {
			return jobq_error_set(JOBQ_ENOTFOUND, "lmdb: no job %s in queue %s", a->id,
			                      c->q->name);
		}
	}
	rc = set_str(&r.j->progress, a->json);
	if (rc == 0) {
		rc = jobq_lmdb__rec_put(c, &r);
	}
	if (rc == 0) {
		rc = engp_event(c, ENG_EV_PROGRESS, a->id, strlen(a->id), 0, 0,
		                a->json ? a->json : "null", NULL);
	}
	rec_free(&r);
	return rc;
}

int
jobq_lmdb__progress(jobq_backend_queue *q, const char *id, const char *token, const char *json,
                    int64_t now_ms) {
	admin_args a = {.id = id, .token = token, .json = json, .now = now_ms};
	return jobq_lmdb__op_run(q, progress_body, &a);
}

static int
add_log_body(lmdb_wctx *c, void *arg) {
	admin_args *a = arg;
	lmdb_rec r;
	int rc = jobq_lmdb__rec_load(c, &r, a->id);
	if (rc < 0) {
		return rc;
	}
	if (rc == 0) {
		return jobq_error_set(JOBQ_ENOTFOUND, "lmdb: no job %s in queue %s", a->id,
		                      c->q->name);
	}
	kb p;
	rc = jobq_lmdb__logs_prefix(&p, c->q, a->id);
	if (rc == 0) {
		kb k = p;
		kb_u64(&k, r.log_next++);
		MDB_val key = kv(&k), v = {strlen(a->line), (void *)(uintptr_t)a->line};
		int mrc = mdb_put(c->txn, dbi(c->e, DBI_LOGS), &key, &v, 0);
		if (mrc) {
			rc = mdb_fail(c, mrc, "writing a log line");
		}
		r.log_count++;
	}
	while (rc == 0 && a->keep > 0 && r.log_count > (uint64_t)a->keep) {
		MDB_cursor *cur;
		int mrc = mdb_cursor_open(c->txn, dbi(c->e, DBI_LOGS), &cur);
		if (mrc) {
			rc = mdb_fail(c, mrc, "opening a cursor");
			break;
		}
		MDB_val k = kv(&p), v;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (mrc == 0 && has_prefix(&k, &p)) {
			mrc = mdb_cursor_del(cur, 0);
			r.log_count--;
		} else {
			r.log_count = 0; /* nothing left: resync the count */
		}
		mdb_cursor_close(cur);
		if (mrc && mrc != MDB_NOTFOUND) {
			rc = mdb_fail(c, mrc, "trimming logs");
		}
	}
	if (rc == 0) {
		rc = jobq_lmdb__rec_put(c, &r);
	}
	if (rc == 0 && r.j->state == JOBQ_STATE_ACTIVE) {
		rc = jobq_lmdb__run_put(c, &r); /* its completion must look for the logs */
	}
	int kept = (int)r.log_count;
	rec_free(&r);
	return rc < 0 ? rc : kept;
}

int
jobq_lmdb__add_log(jobq_backend_queue *q, const char *id, const char *line, int64_t keep) {
	admin_args a = {.id = id, .line = line ? line : "", .keep = keep};
	return jobq_lmdb__op_run(q, add_log_body, &a);
}
