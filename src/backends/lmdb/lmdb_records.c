/*
 * LMDB backend: queue settings, job records and their index entries (the state moves to_*),
 * and collecting ids from an index. See lmdb_ops.h for what the files of the operations share.
 */
#include "lmdb_ops.h"

#include <stdlib.h>

static int
state_dbi(jobq_state s) {
	switch (s) {
	case JOBQ_STATE_WAITING:
		return DBI_WAIT;
	case JOBQ_STATE_PRIORITIZED:
		return DBI_PRIO;
	case JOBQ_STATE_DELAYED:
		return DBI_DELAYED;
	case JOBQ_STATE_ACTIVE:
		return DBI_ACTIVE;
	case JOBQ_STATE_COMPLETED:
		return DBI_COMPLETED;
	case JOBQ_STATE_FAILED:
		return DBI_FAILED;
	default:
		return -1;
	}
}

/* The index key of a job in state `s` with key parts ia/ib. */
static void
idx_key(kb *k, const jobq_backend_queue *q, jobq_state s, int64_t ia, uint64_t ib) {
	kb_q(k, q);
	switch (s) {
	case JOBQ_STATE_WAITING:
		kb_i64(k, ia);
		break;
	case JOBQ_STATE_PRIORITIZED: {
		unsigned char p[4] = {(unsigned char)(ia >> 24), (unsigned char)(ia >> 16),
		                      (unsigned char)(ia >> 8), (unsigned char)ia};
		kb_bytes(k, p, 4);
		kb_u64(k, ib);
		break;
	}
	case JOBQ_STATE_ACTIVE:
		kb_u64(k, ib);
		break;
	default: /* delayed, completed, failed */
		kb_i64(k, ia);
		kb_u64(k, ib);
		break;
	}
}

/* --- queue meta --------------------------------------------------------------------------------
 */

int
jobq_lmdb__meta_read(lmdb_qmeta *m, const jobq_backend_queue *q, MDB_txn *txn) {
	MDB_val k = {q->name_len, (void *)(uintptr_t)q->name}, v;
	int mrc = mdb_get(txn, dbi(q->e, DBI_QUEUES), &k, &v);
	if (mrc == MDB_NOTFOUND) {
		memset(m, 0, sizeof(*m));
		return 0;
	}
	if (mrc) {
		return jobq_lmdb__error(mrc, "reading queue settings");
	}
	return jobq_lmdb__qmeta_decode(m, v.mv_data, v.mv_size);
}

/* --- records -----------------------------------------------------------------------------------
 */

/*
 * Merges the running entry of job `key`, if it has one, into the decoded record: the job is
 * active, with the entry's token, lock, processed_on and attempts_started.
 */
static int
run_merge(lmdb_rec *r, const jobq_backend_queue *q, MDB_txn *txn, MDB_val *key) {
	MDB_val v;
	int mrc = mdb_get(txn, dbi(q->e, DBI_ACTIVE), key, &v);
	if (mrc == MDB_NOTFOUND) {
		return 0;
	}
	if (mrc) {
		return jobq_lmdb__error(mrc, "reading a running entry");
	}
	lmdb_run run;
	int rc = jobq_lmdb__run_decode(&run, v.mv_data, v.mv_size);
	if (rc < 0) {
		return rc;
	}
	char *tok = NULL;
	if (run.token) {
		tok = jobq__strndup(run.token, run.token_len);
		if (!tok) {
			return jobq_error_set(JOBQ_ENOMEM, "lmdb: reading a running entry");
		}
	}
	char *pb = NULL;
	if (run.pb) {
		pb = jobq__strndup(run.pb, run.pb_len);
		if (!pb) {
			jobq__free(tok);
			return jobq_error_set(JOBQ_ENOMEM, "lmdb: reading a running entry");
		}
	}
	jobq__free(r->j->token);
	r->j->token = tok;
	jobq__free(r->j->processed_by);
	r->j->processed_by = pb;
	r->j->state = JOBQ_STATE_ACTIVE;
	r->j->processed_on = run.processed_on;
	r->j->attempts_started = run.attempts_started;
	r->lock_until = run.lock_until;
	r->ia = 0;
	r->ib = run.seq;
	return 0;
}

/*
 * Loads job `id`: 1 found, 0 absent, < 0 error. `merge`: with its running fields if active
 * (every caller but those that found the job in the waiting, prioritized or delayed index,
 * where an active job never is).
 */
int
jobq_lmdb__rec_load_txn(lmdb_rec *r, const jobq_backend_queue *q, MDB_txn *txn, const char *id,
                        int merge) {
	kb k;
	job_key(&k, q, id);
	if (k.overflow) {
		return 0;
	}
	MDB_val key = kv(&k), v;
	int mrc = mdb_get(txn, dbi(q->e, DBI_JOBS), &key, &v);
	if (mrc == MDB_NOTFOUND) {
		return 0;
	}
	if (mrc) {
		return jobq_lmdb__error(mrc, "reading a job");
	}
	int rc = jobq_lmdb__rec_decode(r, id, v.mv_data, v.mv_size);
	if (rc == 0 && merge) {
		key = kv(&k);
		rc = run_merge(r, q, txn, &key);
		if (rc < 0) {
			rec_free(r);
		}
	}
	return rc < 0 ? rc : 1;
}

int
jobq_lmdb__rec_load(lmdb_wctx *c, lmdb_rec *r, const char *id) {
	return jobq_lmdb__rec_load_txn(r, c->q, c->txn, id, 1);
}

/* A job found in the waiting, prioritized or delayed index (never active). */
int
jobq_lmdb__rec_load_idle(lmdb_wctx *c, lmdb_rec *r, const char *id) {
	return jobq_lmdb__rec_load_txn(r, c->q, c->txn, id, 0);
}

int
jobq_lmdb__rec_put(lmdb_wctx *c, const lmdb_rec *r) {
	lmdb_buf b;
	int rc = jobq_lmdb__rec_encode(&b, r);
	if (rc < 0) {
		return rc;
	}
	kb k;
	job_key(&k, c->q, r->j->id);
	MDB_val key = kv(&k), v = {b.size, b.data};
	rc = wput(c, DBI_JOBS, &key, &v, "writing a job");
	jobq_lmdb__buf_free(&b);
	return rc;
}

/* --- indexes ---------------------------------------------------------------------------------- */

/* Writes job `id`'s running entry `run` (encoded before the put, which may invalidate the
 * strings `run` points to when they come from the old entry). */
int
jobq_lmdb__run_write(lmdb_wctx *c, const char *id, const lmdb_run *run) {
	lmdb_buf b;
	int rc = jobq_lmdb__run_encode(&b, run);
	if (rc < 0) {
		return rc;
	}
	kb k;
	job_key(&k, c->q, id);
	MDB_val key = kv(&k), v = {b.size, b.data};
	rc = wput(c, DBI_ACTIVE, &key, &v, "writing a running entry");
	jobq_lmdb__buf_free(&b);
	return rc;
}

/* Writes the running entry of active job `r` (seq in r->ib). */
int
jobq_lmdb__run_put(lmdb_wctx *c, const lmdb_rec *r) {
	const jobq_job *j = r->j;
	lmdb_run run = {.seq = r->ib,
	                .lock_until = r->lock_until,
	                .processed_on = j->processed_on,
	                .attempts_started = j->attempts_started,
	                .flags = r->log_count > 0 ? LMDB_RUN_LOGS : 0,
	                .token = j->token,
	                .token_len = j->token ? strlen(j->token) : 0,
	                .dedup = j->opts.dedup_id,
	                .dedup_len = j->opts.dedup_id ? strlen(j->opts.dedup_id) : 0,
	                .pb = j->processed_by,
	                .pb_len = j->processed_by ? strlen(j->processed_by) : 0};
	return jobq_lmdb__run_write(c, j->id, &run);
}

static int
idx_put(lmdb_wctx *c, lmdb_rec *r, jobq_state s) {
	if (s == JOBQ_STATE_ACTIVE) {
		int rc = jobq_lmdb__run_put(c, r);
		if (rc < 0) {
			return rc;
		}
	} else {
		kb k;
		idx_key(&k, c->q, s, r->ia, r->ib);
		MDB_val key = kv(&k), v = {strlen(r->j->id), r->j->id};
		int rc = wput(c, state_dbi(s), &key, &v, "writing an index");
		if (rc < 0) {
			return rc;
		}
		if (s == JOBQ_STATE_WAITING || s == JOBQ_STATE_PRIORITIZED) {
			c->take_next[s == JOBQ_STATE_PRIORITIZED] = 0; /* search again */
		}
	}
	r->j->state = s;
	meta(c)->counts[s]++;
	return 0;
}

int
jobq_lmdb__idx_remove(lmdb_wctx *c, lmdb_rec *r) {
	jobq_state s = r->j->state;
	int d = state_dbi(s);
	if (d < 0) {
		return 0;
	}
	kb k;
	if (s == JOBQ_STATE_ACTIVE) {
		job_key(&k, c->q, r->j->id);
	} else {
		idx_key(&k, c->q, s, r->ia, r->ib);
	}
	MDB_val key = kv(&k);
	int rc = wdel(c, d, &key, "removing an index entry");
	if (rc < 0) {
		return rc;
	}
	if (s == JOBQ_STATE_WAITING || s == JOBQ_STATE_PRIORITIZED) {
		c->take_next[s == JOBQ_STATE_PRIORITIZED] = 0;
	}
	if (meta(c)->counts[s] > 0) {
		meta(c)->counts[s]--;
	}
	r->j->state = JOBQ_STATE_UNKNOWN;
	return 0;
}

int
jobq_lmdb__to_wait(lmdb_wctx *c, lmdb_rec *r, int front) {
	lmdb_qmeta *m = meta(c);
	r->ia = front ? --m->wait_head : m->wait_tail++;
	r->ib = 0;
	c->bump_work = 1;
	return idx_put(c, r, JOBQ_STATE_WAITING);
}

int
jobq_lmdb__to_prio(lmdb_wctx *c, lmdb_rec *r, int front) {
	lmdb_qmeta *m = meta(c);
	r->ia = r->j->priority;
	r->ib = front ? (UINT64_C(1) << 62) - (uint64_t)++m->prio_front
	              : (UINT64_C(1) << 62) + (uint64_t)++m->seq;
	c->bump_work = 1;
	return idx_put(c, r, JOBQ_STATE_PRIORITIZED);
}

/* Waiting (front or back) or prioritized by the job's priority. */
int
jobq_lmdb__make_ready(lmdb_wctx *c, lmdb_rec *r, int front) {
	return r->j->priority > 0 ? jobq_lmdb__to_prio(c, r, front)
	                          : jobq_lmdb__to_wait(c, r, front);
}

int
jobq_lmdb__to_delayed(lmdb_wctx *c, lmdb_rec *r, int64_t due) {
	r->ia = due;
	r->ib = (uint64_t)++meta(c)->seq;
	c->bump_work = 1; /* waiters recompute their next due time */
	return idx_put(c, r, JOBQ_STATE_DELAYED);
}

int
jobq_lmdb__to_active(lmdb_wctx *c, lmdb_rec *r) {
	r->ia = 0;
	r->ib = (uint64_t)++meta(c)->seq;
	return idx_put(c, r, JOBQ_STATE_ACTIVE);
}

int
jobq_lmdb__to_finished(lmdb_wctx *c, lmdb_rec *r, jobq_state s) {
	r->ia = r->j->finished_on;
	r->ib = (uint64_t)++meta(c)->seq;
	return idx_put(c, r, s);
}

/* --- collecting ids from an index ----------------------------------------------------------------
 */

void
jobq_lmdb__idlist_free(idlist *l) {
	jobq__free(l->ids);
	jobq__free(l->keyval);
	memset(l, 0, sizeof(*l));
}

int
jobq_lmdb__idlist_push(idlist *l, const MDB_val *id, int64_t keyval) {
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		void *ids = jobq__realloc(l->ids, cap * sizeof(*l->ids));
		if (!ids) {
			return jobq_error_set(JOBQ_ENOMEM, "lmdb: listing ids");
		}
		l->ids = ids;
		void *kv2 = jobq__realloc(l->keyval, cap * sizeof(int64_t));
		if (!kv2) {
			return jobq_error_set(JOBQ_ENOMEM, "lmdb: listing ids");
		}
		l->keyval = kv2;
		l->cap = cap;
	}
	size_t n = id->mv_size > JOBQ_ID_MAX ? JOBQ_ID_MAX : id->mv_size;
	memcpy(l->ids[l->n], id->mv_data, n);
	l->ids[l->n][n] = '\0';
	l->keyval[l->n] = keyval;
	l->n++;
	return 0;
}

typedef struct seq_pos {
	int64_t seq;
	size_t pos;
} seq_pos;

static int
seq_pos_cmp(const void *a, const void *b) {
	const seq_pos *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * The active jobs in fetch order (their running entries are keyed by id): keyval gets the
 * fetch sequence number; with `expired`, only those whose lock expiry is <= *expired.
 */
int
jobq_lmdb__collect_active(idlist *out, const jobq_backend_queue *q, MDB_txn *txn, size_t offset,
                          size_t limit, const int64_t *expired) {
	memset(out, 0, sizeof(*out));
	MDB_cursor *cur = NULL;
	int mrc = mdb_cursor_open(txn, dbi(q->e, DBI_ACTIVE), &cur);
	if (mrc) {
		return jobq_lmdb__error(mrc, "opening a cursor");
	}
	kb p;
	kb_q(&p, q);
	idlist all;
	memset(&all, 0, sizeof(all));
	MDB_val k = kv(&p), v;
	int rc = 0;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (mrc == 0 && has_prefix(&k, &p)) {
		lmdb_run run;
		rc = jobq_lmdb__run_decode(&run, v.mv_data, v.mv_size);
		if (rc < 0) {
			break;
		}
		if (!expired || run.lock_until <= *expired) {
			MDB_val id = {k.mv_size - p.n, (char *)k.mv_data + p.n};
			rc = jobq_lmdb__idlist_push(&all, &id, (int64_t)run.seq);
			if (rc < 0) {
				break;
			}
		}
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc == 0 && mrc && mrc != MDB_NOTFOUND) {
		rc = jobq_lmdb__error(mrc, "reading the active index");
	}
	/* Fetch order: positions sorted by sequence number. */
	seq_pos *ord = NULL;
	if (rc == 0 && all.n > 0) {
		ord = jobq__malloc(all.n * sizeof(*ord));
		if (!ord) {
			rc = jobq_error_set(JOBQ_ENOMEM, "lmdb: listing active jobs");
		}
	}
	if (rc == 0 && all.n > 0) {
		for (size_t i = 0; i < all.n; i++) {
			ord[i].seq = all.keyval[i];
			ord[i].pos = i;
		}
		qsort(ord, all.n, sizeof(*ord), seq_pos_cmp);
		for (size_t i = offset; rc == 0 && i < all.n && (!limit || out->n < limit); i++) {
			const char *id0 = all.ids[ord[i].pos];
			MDB_val id = {strlen(id0), (void *)(uintptr_t)id0};
			rc = jobq_lmdb__idlist_push(out, &id, ord[i].seq);
		}
	}
	jobq__free(ord);
	jobq_lmdb__idlist_free(&all);
	if (rc < 0) {
		jobq_lmdb__idlist_free(out);
	}
	return rc;
}

/*
 * Collects up to `limit` (0: all) ids of state `s` in run order (reverse: newest first),
 * skipping `offset`, from a read or write transaction. If `upto` is not NULL, stops at the
 * first key whose leading 8-byte field is > *upto (forward only).
 */
int
jobq_lmdb__collect(idlist *out, const jobq_backend_queue *q, MDB_txn *txn, jobq_state s,
                   int reverse, size_t offset, size_t limit, const int64_t *upto) {
	int d = state_dbi(s);
	memset(out, 0, sizeof(*out));
	if (d < 0) {
		return 0;
	}
	if (s == JOBQ_STATE_ACTIVE) {
		return jobq_lmdb__collect_active(out, q, txn, offset, limit, NULL);
	}
	MDB_cursor *cur = NULL;
	int mrc = mdb_cursor_open(txn, dbi(q->e, d), &cur);
	if (mrc) {
		return jobq_lmdb__error(mrc, "opening a cursor");
	}
	kb p;
	kb_q(&p, q);
	MDB_val k, v;
	MDB_cursor_op step;
	if (reverse) {
		kb hi = p;
		unsigned char ff[24];
		memset(ff, 0xff, sizeof(ff));
		kb_bytes(&hi, ff, sizeof(ff));
		k = kv(&hi);
		mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (mrc == MDB_NOTFOUND) {
			mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
		} else if (mrc == 0) {
			mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
		}
		step = MDB_PREV;
	} else {
		k = kv(&p);
		mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		step = MDB_NEXT;
	}
	size_t skipped = 0;
	int rc = 0;
	while (mrc == 0 && has_prefix(&k, &p)) {
		int64_t keyval = 0;
		if (k.mv_size >= p.n + 8) {
			keyval = rd_i64((const unsigned char *)k.mv_data + p.n);
		}
		if (upto && keyval > *upto) {
			break;
		}
		if (skipped < offset) {
			skipped++;
		} else {
			rc = jobq_lmdb__idlist_push(out, &v, keyval);
			if (rc < 0) {
				break;
			}
			if (limit && out->n >= limit) {
				break;
			}
		}
		mrc = mdb_cursor_get(cur, &k, &v, step);
	}
	mdb_cursor_close(cur);
	if (rc == 0 && mrc && mrc != MDB_NOTFOUND) {
		rc = jobq_lmdb__error(mrc, "reading an index");
	}
	if (rc < 0) {
		jobq_lmdb__idlist_free(out);
	}
	return rc;
}

/* --- for the integrity check (lmdb_check.c) --------------------------------------------------- */

size_t
jobq_lmdb__idx_key(unsigned char *buf, const jobq_backend_queue *q, jobq_state s, int64_t ia,
                   uint64_t ib) {
	kb k;
	idx_key(&k, q, s, ia, ib);
	if (k.overflow) {
		return 0;
	}
	memcpy(buf, k.b, k.n);
	return k.n;
}

int
jobq_lmdb__state_dbi(jobq_state s) {
	return state_dbi(s);
}
