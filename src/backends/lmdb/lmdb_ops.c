/*
 * LMDB backend: the vtable. Each write operation is one LMDB write transaction (run by
 * jobq_lmdb__write); reads use a read-only transaction. See lmdb_internal.h for the layout.
 */
#include "lmdb_internal.h"
#include "backends/backend.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- keys ----------------------------------------------------------------------------------- */

typedef struct kb {
	unsigned char b[LMDB_KEY_MAX];
	size_t n;
	int overflow;
} kb;

static void
kb_bytes(kb *k, const void *p, size_t n) {
	if (k->overflow || k->n + n > sizeof(k->b)) {
		k->overflow = 1;
		return;
	}
	memcpy(k->b + k->n, p, n);
	k->n += n;
}

static void
kb_q(kb *k, const jobq_backend_queue *q) {
	k->n = 0;
	k->overflow = 0;
	kb_bytes(k, q->name, q->name_len + 1); /* with its NUL */
}

static void
kb_str(kb *k, const char *s) {
	kb_bytes(k, s, strlen(s));
}

static void
kb_u64(kb *k, uint64_t v) {
	unsigned char b[8];
	for (int i = 7; i >= 0; i--) {
		b[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
	kb_bytes(k, b, 8);
}

static void
kb_i64(kb *k, int64_t v) {
	kb_u64(k, (uint64_t)v ^ (UINT64_C(1) << 63));
}

static uint64_t
rd_u64(const unsigned char *p) {
	uint64_t v = 0;
	for (int i = 0; i < 8; i++) {
		v = (v << 8) | p[i];
	}
	return v;
}

static int64_t
rd_i64(const unsigned char *p) {
	return (int64_t)(rd_u64(p) ^ (UINT64_C(1) << 63));
}

static MDB_val
kv(const kb *k) {
	MDB_val v = {k->n, (void *)(uintptr_t)k->b};
	return v;
}

static int
has_prefix(const MDB_val *key, const kb *prefix) {
	return key->mv_size >= prefix->n && memcmp(key->mv_data, prefix->b, prefix->n) == 0;
}

/* --- small helpers -----------------------------------------------------------------------------
 */

static int
mdb_fail(lmdb_wctx *c, int mrc, const char *what) {
	if (c) {
		c->mdb_rc = mrc;
	}
	return jobq_lmdb__error(mrc, what);
}

/* The transaction's cursor on table `which` (see lmdb_wctx.cur). */
static int
wcur(lmdb_wctx *c, int which, MDB_cursor **out) {
	if (!c->cur[which]) {
		int mrc = mdb_cursor_open(c->txn, c->e->dbi[which], &c->cur[which]);
		if (mrc) {
			c->cur[which] = NULL;
			return mdb_fail(c, mrc, "opening a cursor");
		}
	}
	*out = c->cur[which];
	return 0;
}

/* mdb_put and mdb_del through the transaction's cursor; mdb_del's MDB_NOTFOUND is 0. */
static int
wput(lmdb_wctx *c, int which, MDB_val *key, MDB_val *v, const char *what) {
	MDB_cursor *cur = NULL;
	int rc = wcur(c, which, &cur);
	if (rc < 0) {
		return rc;
	}
	int mrc = mdb_cursor_put(cur, key, v, 0);
	return mrc ? mdb_fail(c, mrc, what) : 0;
}

static int
wdel(lmdb_wctx *c, int which, MDB_val *key, const char *what) {
	MDB_cursor *cur = NULL;
	int rc = wcur(c, which, &cur);
	if (rc < 0) {
		return rc;
	}
	MDB_val v;
	int mrc = mdb_cursor_get(cur, key, &v, MDB_SET);
	if (mrc == 0) {
		mrc = mdb_cursor_del(cur, 0);
	}
	return mrc && mrc != MDB_NOTFOUND ? mdb_fail(c, mrc, what) : 0;
}

static int
set_str(char **dst, const char *s) {
	char *copy = NULL;
	if (s) {
		copy = jobq__strdup(s);
		if (!copy) {
			return jobq_error_set(JOBQ_ENOMEM, "lmdb: copying a string");
		}
	}
	jobq__free(*dst);
	*dst = copy;
	return 0;
}

static void
rec_free(lmdb_rec *r) {
	if (r->j) {
		jobq_job_free(r->j);
		r->j = NULL;
	}
}

static MDB_dbi
dbi(const lmdb_env *e, int which) {
	return e->dbi[which];
}

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

static void
job_key(kb *k, const jobq_backend_queue *q, const char *id) {
	kb_q(k, q);
	kb_str(k, id);
}

static int
check_id(const char *id) {
	if (!id || !*id || strlen(id) > JOBQ_ID_MAX) {
		return jobq_error_set(JOBQ_EINVAL, "lmdb: job id must be 1..%d bytes", JOBQ_ID_MAX);
	}
	return 0;
}

/* --- queue meta --------------------------------------------------------------------------------
 */

static int
meta_read(lmdb_qmeta *m, const jobq_backend_queue *q, MDB_txn *txn) {
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

static lmdb_qmeta *
meta(lmdb_wctx *c) {
	return &c->m; /* loaded by op_run before the operation */
}

static int
meta_flush(lmdb_wctx *c) {
	lmdb_buf b;
	int rc = jobq_lmdb__qmeta_encode(&b, &c->m);
	if (rc < 0) {
		return rc;
	}
	MDB_val k = {c->q->name_len, (void *)(uintptr_t)c->q->name}, v = {b.size, b.data};
	int mrc = mdb_put(c->txn, dbi(c->e, DBI_QUEUES), &k, &v, 0);
	jobq_lmdb__buf_free(&b);
	return mrc ? mdb_fail(c, mrc, "writing queue settings") : 0;
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
	jobq__free(r->j->token);
	r->j->token = tok;
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
static int
rec_load_txn(lmdb_rec *r, const jobq_backend_queue *q, MDB_txn *txn, const char *id, int merge) {
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

static int
rec_load(lmdb_wctx *c, lmdb_rec *r, const char *id) {
	return rec_load_txn(r, c->q, c->txn, id, 1);
}

/* A job found in the waiting, prioritized or delayed index (never active). */
static int
rec_load_idle(lmdb_wctx *c, lmdb_rec *r, const char *id) {
	return rec_load_txn(r, c->q, c->txn, id, 0);
}

static int
rec_put(lmdb_wctx *c, const lmdb_rec *r) {
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
static int
run_write(lmdb_wctx *c, const char *id, const lmdb_run *run) {
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
static int
run_put(lmdb_wctx *c, const lmdb_rec *r) {
	const jobq_job *j = r->j;
	lmdb_run run = {.seq = r->ib,
	                .lock_until = r->lock_until,
	                .processed_on = j->processed_on,
	                .attempts_started = j->attempts_started,
	                .flags = r->log_count > 0 ? LMDB_RUN_LOGS : 0,
	                .token = j->token,
	                .token_len = j->token ? strlen(j->token) : 0,
	                .dedup = j->opts.dedup_id,
	                .dedup_len = j->opts.dedup_id ? strlen(j->opts.dedup_id) : 0};
	return run_write(c, j->id, &run);
}

static int
idx_put(lmdb_wctx *c, lmdb_rec *r, jobq_state s) {
	if (s == JOBQ_STATE_ACTIVE) {
		int rc = run_put(c, r);
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

static int
idx_remove(lmdb_wctx *c, lmdb_rec *r) {
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

static int
to_wait(lmdb_wctx *c, lmdb_rec *r, int front) {
	lmdb_qmeta *m = meta(c);
	r->ia = front ? --m->wait_head : m->wait_tail++;
	r->ib = 0;
	c->bump_work = 1;
	return idx_put(c, r, JOBQ_STATE_WAITING);
}

static int
to_prio(lmdb_wctx *c, lmdb_rec *r, int front) {
	lmdb_qmeta *m = meta(c);
	r->ia = r->j->priority;
	r->ib = front ? (UINT64_C(1) << 62) - (uint64_t)++m->prio_front
	              : (UINT64_C(1) << 62) + (uint64_t)++m->seq;
	c->bump_work = 1;
	return idx_put(c, r, JOBQ_STATE_PRIORITIZED);
}

/* Waiting (front or back) or prioritized by the job's priority. */
static int
make_ready(lmdb_wctx *c, lmdb_rec *r, int front) {
	return r->j->priority > 0 ? to_prio(c, r, front) : to_wait(c, r, front);
}

static int
to_delayed(lmdb_wctx *c, lmdb_rec *r, int64_t due) {
	r->ia = due;
	r->ib = (uint64_t)++meta(c)->seq;
	c->bump_work = 1; /* waiters recompute their next due time */
	return idx_put(c, r, JOBQ_STATE_DELAYED);
}

static int
to_active(lmdb_wctx *c, lmdb_rec *r) {
	r->ia = 0;
	r->ib = (uint64_t)++meta(c)->seq;
	return idx_put(c, r, JOBQ_STATE_ACTIVE);
}

static int
to_finished(lmdb_wctx *c, lmdb_rec *r, jobq_state s) {
	r->ia = r->j->finished_on;
	r->ib = (uint64_t)++meta(c)->seq;
	return idx_put(c, r, s);
}

/* The id stored under the first key of `prefix` in `which`; 1 found, 0 none. */
static int
first_id(lmdb_wctx *c, int which, const kb *prefix, char *id, MDB_val *key_out) {
	MDB_cursor *cur = NULL;
	int mrc = mdb_cursor_open(c->txn, dbi(c->e, which), &cur);
	if (mrc) {
		return mdb_fail(c, mrc, "opening a cursor");
	}
	MDB_val k = kv(prefix), v;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	int found = 0;
	if (mrc == 0 && has_prefix(&k, prefix) && v.mv_size <= JOBQ_ID_MAX) {
		memcpy(id, v.mv_data, v.mv_size);
		id[v.mv_size] = '\0';
		if (key_out) {
			*key_out = k;
		}
		found = 1;
	} else if (mrc && mrc != MDB_NOTFOUND) {
		mdb_cursor_close(cur);
		return mdb_fail(c, mrc, "reading an index");
	}
	mdb_cursor_close(cur);
	return found;
}

/* --- events ----------------------------------------------------------------------------------- */

static int
ev(lmdb_wctx *c, const char *name, const char *job_id, size_t nf, const jobq_event_field *f) {
	if (c->evb.size == 0) {
		c->ev_first = meta(c)->ev_seq + 1;
	}
	int rc = jobq_lmdb__event_append(&c->evb, name, job_id, nf, f);
	if (rc < 0) {
		return rc;
	}
	++meta(c)->ev_seq;
	c->wrote_events = 1;
	return 0;
}

/* Writes the transaction's events under one key: its first event's sequence number. */
static int
ev_flush(lmdb_wctx *c) {
	if (c->evb.size == 0) {
		return 0;
	}
	kb k;
	kb_q(&k, c->q);
	kb_u64(&k, (uint64_t)c->ev_first);
	MDB_val key = kv(&k), v = {c->evb.size, c->evb.data};
	int mrc = mdb_put(c->txn, dbi(c->e, DBI_EVENTS), &key, &v, MDB_APPEND);
	if (mrc == MDB_KEYEXIST) { /* MDB_APPEND needs the largest key of the whole DBI */
		mrc = mdb_put(c->txn, dbi(c->e, DBI_EVENTS), &key, &v, 0);
	}
	c->evb.size = 0;
	return mrc ? mdb_fail(c, mrc, "writing events") : 0;
}

static int
ev1(lmdb_wctx *c, const char *name, const char *job_id, const char *k1, const char *v1) {
	jobq_event_field f = {k1, v1};
	return ev(c, name, job_id, k1 ? 1 : 0, &f);
}

static int
ev_i64(lmdb_wctx *c, const char *name, const char *job_id, const char *k1, int64_t v1) {
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRId64, v1);
	return ev1(c, name, job_id, k1, buf);
}

/* Deletes keys of `which` from `prefix` while `keep_going` says so (NULL: whole prefix). */
typedef int (*del_pred)(const MDB_val *key, const kb *prefix, void *arg);

static int
del_prefix(lmdb_wctx *c, int which, const kb *prefix, del_pred pred, void *arg) {
	MDB_cursor *cur = NULL;
	int mrc = mdb_cursor_open(c->txn, dbi(c->e, which), &cur);
	if (mrc) {
		return mdb_fail(c, mrc, "opening a cursor");
	}
	/* After mdb_cursor_del the cursor's MDB_NEXT yields the entry that followed the deleted
	 * one, so one search serves the whole run. */
	MDB_val k = kv(prefix), v;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	for (;;) {
		if (mrc == MDB_NOTFOUND || (mrc == 0 && !has_prefix(&k, prefix))) {
			mrc = 0;
			break;
		}
		if (mrc) {
			break;
		}
		if (pred && !pred(&k, prefix, arg)) {
			break;
		}
		mrc = mdb_cursor_del(cur, 0);
		if (mrc) {
			break;
		}
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return mrc ? mdb_fail(c, mrc, "deleting") : 0;
}

/*
 * Approximate trim: every 1024 events, drop those older than the newest LMDB_EVENTS_KEEP. A key
 * holds the events from its sequence number up to the next key's, so it goes when the next
 * key starts at or below the limit + 1 (at least LMDB_EVENTS_KEEP events stay).
 */
static int
ev_trim(lmdb_wctx *c) {
	int64_t seq = meta(c)->ev_seq;
	if (seq <= LMDB_EVENTS_KEEP || seq / 1024 == c->ev_start / 1024) {
		return 0;
	}
	uint64_t limit = (uint64_t)(seq - LMDB_EVENTS_KEEP);
	kb p;
	kb_q(&p, c->q);
	MDB_cursor *cur = NULL;
	int mrc = mdb_cursor_open(c->txn, dbi(c->e, DBI_EVENTS), &cur);
	if (mrc) {
		return mdb_fail(c, mrc, "opening a cursor");
	}
	MDB_val k = kv(&p), v;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (mrc == 0 && has_prefix(&k, &p) && k.mv_size == p.n + 8) {
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		if (mrc || !has_prefix(&k, &p) || k.mv_size != p.n + 8 ||
		    rd_u64((const unsigned char *)k.mv_data + p.n) > limit + 1) {
			break;
		}
		mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
		if (mrc == 0) {
			mrc = mdb_cursor_del(cur, 0);
		}
		if (mrc == 0) { /* after a delete, the entry that followed the deleted one */
			mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
	}
	mdb_cursor_close(cur);
	if (mrc == MDB_NOTFOUND) {
		mrc = 0;
	}
	return mrc ? mdb_fail(c, mrc, "trimming events") : 0;
}

/* --- the operation runner ------------------------------------------------------------------------
 */

typedef struct op_tramp {
	lmdb_write_fn fn;
	void *arg;
} op_tramp;

static int
op_body(lmdb_wctx *c, void *arg) {
	op_tramp *t = arg;
	int rc = meta_read(&c->m, c->q, c->txn);
	if (rc < 0) {
		return rc;
	}
	c->ev_start = c->m.ev_seq;
	rc = t->fn(c, t->arg);
	if (rc < 0 && !c->commit_anyway) {
		return rc;
	}
	int frc = ev_flush(c);
	if (frc == 0) {
		frc = ev_trim(c);
	}
	if (frc == 0) {
		frc = meta_flush(c);
	}
	if (frc < 0) {
		c->commit_anyway = 0;
		return frc;
	}
	return rc;
}

static int
op_run(jobq_backend_queue *q, lmdb_write_fn fn, void *arg) {
	op_tramp t = {fn, arg};
	return jobq_lmdb__write(q, op_body, &t);
}

/* --- deleting jobs ------------------------------------------------------------------------------
 */

static int
logs_prefix(kb *k, const jobq_backend_queue *q, const char *id) {
	kb_q(k, q);
	kb_str(k, id);
	kb_bytes(k, "", 1);
	return k->overflow ? jobq_error_set(JOBQ_EINVAL, "lmdb: id too long") : 0;
}

static int
dedup_key(kb *k, const jobq_backend_queue *q, const char *dedup_id) {
	kb_q(k, q);
	kb_str(k, dedup_id);
	return k->overflow
	           ? jobq_error_set(JOBQ_EINVAL, "lmdb: deduplication id too long (%zu bytes)",
	                            strlen(dedup_id))
	           : 0;
}

/* Releases the job's dedup key: on removal always, on finish unless a TTL still runs. */
static int
dedup_release_id(lmdb_wctx *c, const char *id, const char *did, int finishing, int64_t now) {
	if (!did || !*did) {
		return 0;
	}
	kb k;
	if (dedup_key(&k, c->q, did) < 0) {
		return 0;
	}
	MDB_val key = kv(&k), v;
	int mrc = mdb_get(c->txn, dbi(c->e, DBI_DEDUP), &key, &v);
	if (mrc == MDB_NOTFOUND) {
		return 0;
	}
	if (mrc) {
		return mdb_fail(c, mrc, "reading a dedup key");
	}
	char owner[JOBQ_ID_MAX + 1];
	int64_t exp;
	int rc = jobq_lmdb__dedup_decode(owner, sizeof(owner), &exp, v.mv_data, v.mv_size);
	if (rc < 0) {
		return rc;
	}
	if (strcmp(owner, id) != 0) {
		return 0;
	}
	if (finishing && exp > now) {
		return 0;
	}
	mrc = mdb_del(c->txn, dbi(c->e, DBI_DEDUP), &key, NULL);
	return mrc ? mdb_fail(c, mrc, "deleting a dedup key") : 0;
}

static int
dedup_release(lmdb_wctx *c, const lmdb_rec *r, int finishing, int64_t now) {
	return dedup_release_id(c, r->j->id, r->j->opts.dedup_id, finishing, now);
}

/* Deletes a loaded job: index entry, record, logs, owned dedup key. */
static int
job_delete(lmdb_wctx *c, lmdb_rec *r, int64_t now) {
	int rc = idx_remove(c, r);
	if (rc < 0) {
		return rc;
	}
	kb k;
	job_key(&k, c->q, r->j->id);
	MDB_val key = kv(&k);
	rc = wdel(c, DBI_JOBS, &key, "deleting a job");
	if (rc < 0) {
		return rc;
	}
	if (r->log_count > 0) {
		kb p;
		if (logs_prefix(&p, c->q, r->j->id) == 0) {
			rc = del_prefix(c, DBI_LOGS, &p, NULL, NULL);
			if (rc < 0) {
				return rc;
			}
		}
	}
	return dedup_release(c, r, 0, now);
}

static int
delete_by_id(lmdb_wctx *c, const char *id, int64_t now) {
	lmdb_rec r;
	int rc = rec_load(c, &r, id);
	if (rc <= 0) {
		return rc;
	}
	rc = job_delete(c, &r, now);
	rec_free(&r);
	return rc;
}

/* --- collecting ids from an index ----------------------------------------------------------------
 */

typedef struct idlist {
	size_t n, cap;
	char (*ids)[JOBQ_ID_MAX + 1];
	int64_t *keyval; /* first 8-byte field of the key after the prefix (due, finished_on) */
} idlist;

static void
idlist_free(idlist *l) {
	jobq__free(l->ids);
	jobq__free(l->keyval);
	memset(l, 0, sizeof(*l));
}

static int
idlist_push(idlist *l, const MDB_val *id, int64_t keyval) {
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
static int
collect_active(idlist *out, const jobq_backend_queue *q, MDB_txn *txn, size_t offset, size_t limit,
               const int64_t *expired) {
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
			rc = idlist_push(&all, &id, (int64_t)run.seq);
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
			rc = idlist_push(out, &id, ord[i].seq);
		}
	}
	jobq__free(ord);
	idlist_free(&all);
	if (rc < 0) {
		idlist_free(out);
	}
	return rc;
}

/*
 * Collects up to `limit` (0: all) ids of state `s` in run order (reverse: newest first),
 * skipping `offset`, from a read or write transaction. If `upto` is not NULL, stops at the
 * first key whose leading 8-byte field is > *upto (forward only).
 */
static int
collect(idlist *out, const jobq_backend_queue *q, MDB_txn *txn, jobq_state s, int reverse,
        size_t offset, size_t limit, const int64_t *upto) {
	int d = state_dbi(s);
	memset(out, 0, sizeof(*out));
	if (d < 0) {
		return 0;
	}
	if (s == JOBQ_STATE_ACTIVE) {
		return collect_active(out, q, txn, offset, limit, NULL);
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
			rc = idlist_push(out, &v, keyval);
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
		idlist_free(out);
	}
	return rc;
}

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

/* --- add ----------------------------------------------------------------------------------------
 */

typedef struct add_args {
	jobq_job_id *ids;
	int *outcomes;
	const jobq_add_request *reqs;
	size_t n;
	int64_t now;
} add_args;

static int
add_one(lmdb_wctx *c, const jobq_add_request *req, jobq_job_id *id_out, int *outcome, int64_t now) {
	const jobq_job_options *o = req->opts;
	lmdb_qmeta *m = meta(c);
	int64_t ctr = ++m->counter;
	char id[JOBQ_ID_MAX + 1];
	if (o->job_id && *o->job_id) {
		int rc = check_id(o->job_id);
		if (rc < 0) {
			return rc;
		}
		snprintf(id, sizeof(id), "%s", o->job_id);
		kb k;
		job_key(&k, c->q, id);
		MDB_val key = kv(&k), v;
		int mrc = mdb_get(c->txn, dbi(c->e, DBI_JOBS), &key, &v);
		if (mrc == 0) {
			snprintf(id_out->str, sizeof(id_out->str), "%s", id);
			*outcome = JOBQ_ADD_DUPLICATE;
			return ev1(c, "duplicated", id, NULL, NULL);
		}
		if (mrc != MDB_NOTFOUND) {
			return mdb_fail(c, mrc, "reading a job");
		}
	} else {
		jobq__u64_dec(id, (uint64_t)ctr);
	}

	if (o->dedup_id && *o->dedup_id) {
		kb k;
		int rc = dedup_key(&k, c->q, o->dedup_id);
		if (rc < 0) {
			return rc;
		}
		MDB_val key = kv(&k), v;
		int mrc = mdb_get(c->txn, dbi(c->e, DBI_DEDUP), &key, &v);
		if (mrc == 0) {
			char owner[JOBQ_ID_MAX + 1];
			int64_t exp;
			rc = jobq_lmdb__dedup_decode(owner, sizeof(owner), &exp, v.mv_data,
			                             v.mv_size);
			if (rc < 0) {
				return rc;
			}
			int live;
			if (exp > 0) {
				live = now < exp;
			} else {
				kb jk;
				job_key(&jk, c->q, owner);
				MDB_val jkey = kv(&jk), jv;
				live =
				    *owner && mdb_get(c->txn, dbi(c->e, DBI_JOBS), &jkey, &jv) == 0;
			}
			if (live) {
				snprintf(id_out->str, sizeof(id_out->str), "%s", owner);
				*outcome = JOBQ_ADD_DEDUPLICATED;
				jobq_event_field f[2] = {{"deduplicationId", o->dedup_id},
				                         {"deduplicatedJobId", id}};
				return ev(c, "deduplicated", owner, 2, f);
			}
		} else if (mrc != MDB_NOTFOUND) {
			return mdb_fail(c, mrc, "reading a dedup key");
		}
		lmdb_buf b;
		rc = jobq_lmdb__dedup_encode(&b, id,
		                             o->dedup_ttl_ms > 0 ? now + o->dedup_ttl_ms : 0);
		if (rc < 0) {
			return rc;
		}
		v.mv_size = b.size;
		v.mv_data = b.data;
		mrc = mdb_put(c->txn, dbi(c->e, DBI_DEDUP), &key, &v, 0);
		jobq_lmdb__buf_free(&b);
		if (mrc) {
			return mdb_fail(c, mrc, "writing a dedup key");
		}
	}

	/* The new job, borrowing the request's name, data and options (it is only encoded). */
	jobq_job j;
	memset(&j, 0, sizeof(j));
	lmdb_rec r = {.j = &j};
	j.id = id;
	j.opts = *o;
	j.timestamp = o->timestamp ? o->timestamp : now;
	j.delay_ms = o->delay_ms > 0 ? o->delay_ms : 0;
	j.priority = o->priority;
	j.name = (char *)(uintptr_t)(req->name ? req->name : "");
	j.data = (void *)(uintptr_t)(req->len ? req->data : "");
	j.data_len = req->len;
	int rc = ev1(c, "added", id, "name", j.name);
	if (rc < 0) {
		return rc;
	}
	if (j.delay_ms > 0) {
		int64_t due = j.timestamp + j.delay_ms;
		rc = to_delayed(c, &r, due);
		if (rc == 0) {
			rc = ev_i64(c, "delayed", id, "delay", due);
		}
	} else {
		rc = o->priority > 0 ? to_prio(c, &r, 0) : to_wait(c, &r, o->lifo != 0);
		if (rc == 0) {
			rc = ev1(c, "waiting", id, NULL, NULL);
		}
	}
	if (rc == 0) {
		rc = rec_put(c, &r);
	}
	if (rc == 0) {
		size_t n = strlen(id);
		if (n >= sizeof(id_out->str)) {
			n = sizeof(id_out->str) - 1;
		}
		memcpy(id_out->str, id, n);
		id_out->str[n] = '\0';
		*outcome = JOBQ_ADD_CREATED;
	}
	return rc;
}

static int
add_body(lmdb_wctx *c, void *arg) {
	add_args *a = arg;
	for (size_t i = 0; i < a->n; i++) {
		int outcome = 0;
		int rc = add_one(c, &a->reqs[i], &a->ids[i], &outcome, a->now);
		if (rc < 0) {
			return rc;
		}
		if (a->outcomes) {
			a->outcomes[i] = outcome;
		}
	}
	return 0;
}

static int
lm_add(jobq_job_id *ids, int *outcomes, jobq_backend_queue *q, const jobq_add_request *reqs,
       size_t n, int64_t now_ms) {
	add_args a = {ids, outcomes, reqs, n, now_ms};
	return op_run(q, add_body, &a);
}

/* --- fetch --------------------------------------------------------------------------------------
 */

/* Moves delayed jobs due at `now` to waiting/prioritized (at most `max`; 0: all). */
static int
promote_due(lmdb_wctx *c, int64_t now, size_t max, int64_t *next_due) {
	kb p;
	kb_q(&p, c->q);
	size_t moved = 0;
	*next_due = 0;
	for (;;) {
		char id[JOBQ_ID_MAX + 1];
		MDB_val key;
		int found = first_id(c, DBI_DELAYED, &p, id, &key);
		if (found < 0) {
			return found;
		}
		if (!found) {
			break;
		}
		int64_t due = rd_i64((const unsigned char *)key.mv_data + p.n);
		if (due > now || (max && moved >= max)) {
			*next_due = due;
			break;
		}
		lmdb_rec r;
		int rc = rec_load_idle(c, &r, id);
		if (rc <= 0) {
			if (rc == 0) { /* dangling index entry: drop it */
				MDB_val k2 = key;
				mdb_del(c->txn, dbi(c->e, DBI_DELAYED), &k2, NULL);
				continue;
			}
			return rc;
		}
		rc = idx_remove(c, &r);
		r.j->delay_ms = 0;
		if (rc == 0) {
			rc = make_ready(c, &r, 0);
		}
		if (rc == 0) {
			rc = rec_put(c, &r);
		}
		if (rc == 0) {
			rc = ev1(c, "waiting", id, "prev", "delayed");
		}
		rec_free(&r);
		if (rc < 0) {
			return rc;
		}
		moved++;
	}
	return (int)moved;
}

typedef struct fetch_args {
	jobq_job *job;
	int64_t next_due;
	const char *token;
	int64_t lock_ms, now;
	const jobq_fetch_info *info; /* the fetcher's (may be NULL) */
} fetch_args;

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
take_one(lmdb_wctx *c, const char *token, int64_t lock_ms, int64_t now, jobq_job **out) {
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
	/* The index entry under the cursor is the job's: delete it there (as idx_remove). */
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
	/* The record stays as it is: the running entry carries what the fetch changed. */
	r.lock_until = now + lock_ms;
	r.j->processed_on = now;
	r.j->attempts_started++;
	int rc = to_active(c, &r);
	if (rc == 0) {
		rc = ev1(c, "active", id, "prev", "waiting");
	}
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
	int rc = promote_due(c, a->now, 1000, &a->next_due);
	if (rc < 0) {
		return rc;
	}
	if (meta(c)->paused) {
		c->commit_anyway = 1; /* keep the promotions */
		return JOBQ_ENOJOB;
	}
	rc = take_ready(c, a->token, a->lock_ms, a->now, a->info, &a->job);
	c->commit_anyway = rc == JOBQ_ENOJOB;
	return rc;
}

static int
lm_fetch(jobq_job **out, jobq_fetch_info *info, jobq_backend_queue *q, const char *token,
         int64_t lock_ms, int64_t now_ms) {
	if (!token || !*token) {
		return jobq_error_set(JOBQ_EINVAL, "lmdb: fetch needs a lock token");
	}
	fetch_args a = {NULL, 0, token, lock_ms, now_ms, info};
	int rc = op_run(q, fetch_body, &a);
	if (info) {
		info->next_due_ms = a.next_due;
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

/* --- lock-checked operations on active jobs -----------------------------------------------------
 */

static int
load_locked(lmdb_wctx *c, lmdb_rec *r, const char *id, const char *token, int64_t now) {
	int rc = rec_load(c, r, id);
	if (rc < 0) {
		return rc;
	}
	if (rc == 0) {
		return jobq_error_set(JOBQ_ENOTFOUND, "lmdb: job %s does not exist", id);
	}
	if (r->j->state != JOBQ_STATE_ACTIVE) {
		int st = r->j->state;
		rec_free(r);
		return jobq_error_set(JOBQ_ESTATE, "lmdb: job %s is %s, not active", id,
		                      jobq_state_name((jobq_state)st));
	}
	const char *why = NULL;
	if (!token || !r->j->token || strcmp(token, r->j->token) != 0) {
		why = "is locked by another token";
	} else if (r->lock_until <= now) {
		why = "has an expired lock";
	}
	if (why) {
		rec_free(r);
		return jobq_error_set(JOBQ_ELOCKLOST, "lmdb: job %s %s", id, why);
	}
	return 0;
}

static void
unlock_rec(lmdb_rec *r) {
	jobq__free(r->j->token);
	r->j->token = NULL;
	r->lock_until = 0;
}

typedef struct lock_args {
	const char *id, *token;
	int64_t lock_ms, now;
	const char *result;
	const jobq_keep *keep;
	const jobq_failure *f;
} lock_args;

/*
 * The running entry of active job `id` if `token` holds its lock at `now`: 1 (*run points
 * into the entry, valid until the next write), 0 if not (load_locked words why), < 0 error.
 * With `cur`, the entry stays under the cursor.
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
		rc = load_locked(c, &r, a->id, a->token, a->now);
		if (rc == 0) { /* cannot be: the entry said no */
			rec_free(&r);
			rc = jobq_error_set(JOBQ_ELOCKLOST, "lmdb: job %s is not locked", a->id);
		}
		return rc;
	}
	run.lock_until = a->now + a->lock_ms;
	return run_write(c, a->id, &run);
}

static int
lm_extend_lock(jobq_backend_queue *q, const char *id, const char *token, int64_t lock_ms,
               int64_t now_ms) {
	lock_args a = {.id = id, .token = token, .lock_ms = lock_ms, .now = now_ms};
	return op_run(q, extend_body, &a);
}

/* Keep policy on the finished set `s` after job `r` landed there. */
static int
apply_keep(lmdb_wctx *c, jobq_state s, const jobq_keep *keep, lmdb_rec *r, int64_t now) {
	if (!keep || keep->mode == JOBQ_KEEP_ALL || keep->mode == JOBQ_KEEP_DEFAULT) {
		return 0;
	}
	if (keep->mode == JOBQ_KEEP_NONE) {
		return job_delete(c, r, now);
	}
	int rc = 0;
	if (keep->age_ms >= 0) {
		int64_t cutoff = now - keep->age_ms;
		idlist l;
		rc = collect(&l, c->q, c->txn, s, 0, 0, 1000, &cutoff);
		for (size_t i = 0; rc == 0 && i < l.n; i++) {
			rc = delete_by_id(c, l.ids[i], now);
		}
		idlist_free(&l);
	}
	if (rc == 0 && keep->count >= 0 && meta(c)->counts[s] > keep->count) {
		idlist l;
		size_t extra = (size_t)(meta(c)->counts[s] - keep->count);
		rc = collect(&l, c->q, c->txn, s, 0, 0, extra, NULL);
		for (size_t i = 0; rc == 0 && i < l.n; i++) {
			rc = delete_by_id(c, l.ids[i], now);
		}
		idlist_free(&l);
	}
	return rc;
}

static int
maybe_drained(lmdb_wctx *c) {
	lmdb_qmeta *m = meta(c);
	if (m->counts[JOBQ_STATE_WAITING] + m->counts[JOBQ_STATE_PRIORITIZED] +
	        m->counts[JOBQ_STATE_ACTIVE] ==
	    0) {
		return ev(c, "drained", NULL, 0, NULL);
	}
	return 0;
}

/*
 * Completion of a job removed on completion, without reading its record: the lock check is
 * on the running entry, which also says whether there may be logs and which dedup id the job
 * has. Returns 1 to leave the job to the full path (which also words every lock error).
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
	char dedup[LMDB_KEY_MAX + 1];
	if (ok <= 0 || (run.dedup && run.dedup_len >= sizeof(dedup))) {
		return ok < 0 ? ok : 1;
	}
	/* The entry's bytes are not valid past the next write: copy what is still needed. */
	size_t dl = run.dedup ? run.dedup_len : 0;
	if (dl) {
		memcpy(dedup, run.dedup, dl);
	}
	dedup[dl] = '\0';
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
		if (logs_prefix(&p, c->q, a->id) == 0) {
			rc = del_prefix(c, DBI_LOGS, &p, NULL, NULL);
		}
	}
	jobq_event_field f[2] = {{"returnvalue", a->result ? a->result : "null"},
	                         {"prev", "active"}};
	if (rc == 0) {
		rc = ev(c, "completed", a->id, 2, f);
	}
	if (rc == 0) { /* removed: its dedup key goes whatever its TTL (as job_delete) */
		rc = dedup_release_id(c, a->id, dedup, 0, a->now);
	}
	if (rc == 0) {
		rc = maybe_drained(c);
	}
	return rc;
}

static int
complete_body(lmdb_wctx *c, void *arg) {
	lock_args *a = arg;
	if (a->keep && a->keep->mode == JOBQ_KEEP_NONE) {
		int frc = complete_removed(c, a);
		if (frc != 1) {
			return frc;
		}
	}
	lmdb_rec r;
	int rc = load_locked(c, &r, a->id, a->token, a->now);
	if (rc < 0) {
		return rc;
	}
	rc = idx_remove(c, &r);
	unlock_rec(&r);
	r.j->attempts_made++;
	r.j->finished_on = a->now;
	/*
	 * Removed on completion: the record and its index entry would be written only to be
	 * deleted again in this transaction, so go straight to the deletion (same events, same
	 * counts, same dedup release).
	 */
	int gone = a->keep && a->keep->mode == JOBQ_KEEP_NONE;
	if (rc == 0 && !gone) {
		rc = set_str(&r.j->result, a->result);
	}
	if (rc == 0 && !gone) {
		rc = to_finished(c, &r, JOBQ_STATE_COMPLETED);
	}
	if (rc == 0 && !gone) {
		rc = rec_put(c, &r);
	}
	jobq_event_field f[2] = {{"returnvalue", a->result ? a->result : "null"},
	                         {"prev", "active"}};
	if (rc == 0) {
		rc = ev(c, "completed", a->id, 2, f);
	}
	if (rc == 0) {
		rc = dedup_release(c, &r, 1, a->now);
	}
	if (rc == 0) {
		rc = apply_keep(c, JOBQ_STATE_COMPLETED, a->keep, &r, a->now);
	}
	if (rc == 0) {
		rc = maybe_drained(c);
	}
	rec_free(&r);
	return rc;
}

static int
lm_complete(jobq_backend_queue *q, const char *id, const char *token, const char *result_json,
            const jobq_keep *keep, int64_t now_ms) {
	lock_args a = {
	    .id = id, .token = token, .now = now_ms, .result = result_json, .keep = keep};
	return op_run(q, complete_body, &a);
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
		                .keep = &d->keep};
		int rc = complete_body(c, &la);
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
	int rc = promote_due(c, a->now, 1000, &a->next_due);
	if (rc < 0) {
		return rc;
	}
	while (!meta(c)->paused && a->got < a->max) {
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

static int
lm_complete_fetch(jobq_job **jobs, jobq_fetch_info *info, jobq_backend_queue *q,
                  jobq_completion *done, size_t ndone, const char *const *tokens, size_t max,
                  int64_t lock_ms, int64_t now_ms) {
	complete_fetch_args a = {jobs, 0, 0, done, ndone, tokens, max, lock_ms, now_ms, info};
	for (size_t i = 0; i < max; i++) {
		jobs[i] = NULL;
	}
	int rc = op_run(q, complete_fetch_body, &a);
	if (info) {
		info->next_due_ms = a.next_due;
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

static int
fail_body(lmdb_wctx *c, void *arg) {
	lock_args *a = arg;
	const jobq_failure *f = a->f;
	lmdb_rec r;
	int rc = load_locked(c, &r, a->id, a->token, a->now);
	if (rc < 0) {
		return rc;
	}
	jobq_job *j = r.j;
	rc = idx_remove(c, &r);
	unlock_rec(&r);
	j->attempts_made++;
	if (rc == 0) {
		rc = set_str(&j->failed_reason, f->reason ? f->reason : "");
	}
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
			}
		}
	}
	if (rc < 0) {
		rec_free(&r);
		return rc;
	}
	if (f->retry_at_ms >= 0 && f->retry_at_ms <= a->now) {
		rc = make_ready(c, &r, j->opts.lifo != 0);
		if (rc == 0) {
			rc = rec_put(c, &r);
		}
		if (rc == 0) {
			rc = ev1(c, "waiting", a->id, "prev", "active");
		}
	} else if (f->retry_at_ms > a->now) {
		j->delay_ms = f->retry_at_ms - a->now;
		rc = to_delayed(c, &r, f->retry_at_ms);
		if (rc == 0) {
			rc = rec_put(c, &r);
		}
		if (rc == 0) {
			rc = ev_i64(c, "delayed", a->id, "delay", f->retry_at_ms);
		}
	} else {
		j->finished_on = a->now;
		jobq__free(j->deferred_failure);
		j->deferred_failure = NULL;
		rc = to_finished(c, &r, JOBQ_STATE_FAILED);
		if (rc == 0) {
			rc = rec_put(c, &r);
		}
		jobq_event_field ef[2] = {{"failedReason", j->failed_reason}, {"prev", "active"}};
		if (rc == 0) {
			rc = ev(c, "failed", a->id, 2, ef);
		}
		if (rc == 0 && j->attempts_made >= f->attempts) {
			rc =
			    ev_i64(c, "retries-exhausted", a->id, "attemptsMade", j->attempts_made);
		}
		if (rc == 0) {
			rc = dedup_release(c, &r, 1, a->now);
		}
		if (rc == 0) {
			rc = apply_keep(c, JOBQ_STATE_FAILED, &f->keep, &r, a->now);
		}
		if (rc == 0) {
			rc = maybe_drained(c);
		}
	}
	rec_free(&r);
	return rc;
}

/*
 * take_one, failing the jobs it takes with a deferred failure (in this transaction, as
 * lm_fail would) until it takes one to run: 0, JOBQ_ENOJOB or an error.
 */
static int
take_ready(lmdb_wctx *c, const char *token, int64_t lock_ms, int64_t now,
           const jobq_fetch_info *info, jobq_job **out) {
	for (;;) {
		jobq_job *j = NULL;
		int rc = take_one(c, token, lock_ms, now, &j);
		if (rc < 0) {
			return rc;
		}
		if (j->deferred_failure == NULL) {
			*out = j;
			return 0;
		}
		jobq_failure f = jobq__deferred_failure(j->deferred_failure, &j->opts, info);
		lock_args la = {.id = j->id, .token = token, .now = now, .f = &f};
		rc = fail_body(c, &la);
		jobq_job_free(j);
		if (rc < 0) {
			return rc;
		}
	}
}

static int
lm_fail(jobq_backend_queue *q, const char *id, const char *token, const jobq_failure *f,
        int64_t now_ms) {
	lock_args a = {.id = id, .token = token, .now = now_ms, .f = f};
	return op_run(q, fail_body, &a);
}

static int
release_body(lmdb_wctx *c, void *arg) {
	lock_args *a = arg;
	lmdb_rec r;
	int rc = load_locked(c, &r, a->id, a->token, a->now);
	if (rc < 0) {
		return rc;
	}
	rc = idx_remove(c, &r);
	unlock_rec(&r);
	if (rc == 0) {
		rc = make_ready(c, &r, 1);
	}
	if (rc == 0) {
		rc = rec_put(c, &r);
	}
	if (rc == 0) {
		rc = ev1(c, "waiting", a->id, "prev", "active");
	}
	rec_free(&r);
	return rc;
}

static int
lm_release(jobq_backend_queue *q, const char *id, const char *token, int64_t now_ms) {
	lock_args a = {.id = id, .token = token, .now = now_ms};
	return op_run(q, release_body, &a);
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
	int rc = collect_active(&l, c->q, c->txn, 0, 0, &a->now);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		lmdb_rec r;
		rc = rec_load(c, &r, l.ids[i]);
		if (rc <= 0) {
			continue;
		}
		rc = 0;
		if (r.lock_until > a->now) {
			rec_free(&r);
			continue;
		}
		rc = idx_remove(c, &r);
		unlock_rec(&r);
		r.j->stalled_count++;
		if (rc == 0 && r.j->stalled_count > a->max_stalled) {
			rc = set_str(&r.j->deferred_failure,
			             "job stalled more than allowable limit");
		}
		if (rc == 0) {
			rc = to_wait(c, &r, 1);
		}
		if (rc == 0) {
			rc = rec_put(c, &r);
		}
		if (rc == 0) {
			rc = ev1(c, "waiting", l.ids[i], "prev", "active");
		}
		if (rc == 0) {
			rc = ev1(c, "stalled", l.ids[i], NULL, NULL);
		}
		if (rc == 0) {
			rc = jobq_strings__append(&a->recovered, l.ids[i], strlen(l.ids[i]));
		}
		if (rc == 0) {
			a->count++;
		}
		rec_free(&r);
	}
	idlist_free(&l);
	return rc < 0 ? rc : a->count;
}

static int
lm_reap_stalled(jobq_strings **recovered, jobq_backend_queue *q, uint32_t max_stalled,
                int64_t stalled_interval_ms, int64_t now_ms) {
	(void)stalled_interval_ms;
	reap_args a = {NULL, max_stalled, now_ms, 0};
	int rc = op_run(q, reap_body, &a);
	if (rc < 0 || !recovered) {
		jobq_strings_free(a.recovered);
		return rc;
	}
	*recovered = a.recovered;
	return rc;
}

/* --- reads -------------------------------------------------------------------------------------
 */

static int
lm_get(jobq_job **out, jobq_backend_queue *q, const char *id) {
	MDB_txn *txn;
	int rc = jobq_lmdb__read_begin(q->e, &txn);
	if (rc < 0) {
		return rc;
	}
	lmdb_rec r;
	rc = rec_load_txn(&r, q, txn, id, 1);
	jobq_lmdb__read_end(q->e, txn);
	if (rc < 0) {
		return rc;
	}
	if (rc == 0) {
		return jobq_error_set(JOBQ_ENOTFOUND, "lmdb: no job %s in queue %s", id, q->name);
	}
	jobq__free(r.j->token);
	r.j->token = NULL;
	*out = r.j;
	return 0;
}

static int
lm_list(jobq_job_list **out, jobq_backend_queue *q, jobq_state state, size_t offset, size_t limit) {
	*out = NULL;
	if (state_dbi(state) < 0) {
		return 0;
	}
	MDB_txn *txn;
	int rc = jobq_lmdb__read_begin(q->e, &txn);
	if (rc < 0) {
		return rc;
	}
	int reverse = state == JOBQ_STATE_COMPLETED || state == JOBQ_STATE_FAILED;
	idlist l;
	rc = collect(&l, q, txn, state, reverse, offset, limit, NULL);
	jobq_job_list *list = NULL;
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		lmdb_rec r;
		int found = rec_load_txn(&r, q, txn, l.ids[i], 1);
		if (found < 0) {
			rc = found;
		} else if (found) {
			jobq__free(r.j->token);
			r.j->token = NULL;
			rc = jobq_job_list__append(&list, r.j);
			if (rc < 0) {
				jobq_job_free(r.j);
			}
		}
	}
	jobq_lmdb__read_end(q->e, txn);
	idlist_free(&l);
	if (rc < 0) {
		jobq_job_list_free(list);
		return rc;
	}
	*out = list;
	return 0;
}

static int
lm_counts(jobq_counts *out, jobq_backend_queue *q) {
	MDB_txn *txn;
	int rc = jobq_lmdb__read_begin(q->e, &txn);
	if (rc < 0) {
		return rc;
	}
	lmdb_qmeta m;
	rc = meta_read(&m, q, txn);
	jobq_lmdb__read_end(q->e, txn);
	if (rc < 0) {
		return rc;
	}
	memset(out, 0, sizeof(*out));
	out->waiting = (uint64_t)m.counts[JOBQ_STATE_WAITING];
	out->active = (uint64_t)m.counts[JOBQ_STATE_ACTIVE];
	out->delayed = (uint64_t)m.counts[JOBQ_STATE_DELAYED];
	out->prioritized = (uint64_t)m.counts[JOBQ_STATE_PRIORITIZED];
	out->completed = (uint64_t)m.counts[JOBQ_STATE_COMPLETED];
	out->failed = (uint64_t)m.counts[JOBQ_STATE_FAILED];
	return 0;
}

static int
lm_is_paused(int *out, jobq_backend_queue *q) {
	MDB_txn *txn;
	int rc = jobq_lmdb__read_begin(q->e, &txn);
	if (rc < 0) {
		return rc;
	}
	lmdb_qmeta m;
	rc = meta_read(&m, q, txn);
	jobq_lmdb__read_end(q->e, txn);
	if (rc == 0) {
		*out = m.paused != 0;
	}
	return rc;
}

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
	int rc = rec_load(c, &r, a->id);
	if (rc < 0) {
		return rc;
	}
	if (rc == 0) {
		return jobq_error_set(JOBQ_ENOTFOUND, "lmdb: no job %s in queue %s", a->id,
		                      c->q->name);
	}
	if (r.j->state == JOBQ_STATE_ACTIVE && r.lock_until > a->now) {
		rec_free(&r);
		return jobq_error_set(JOBQ_ESTATE, "lmdb: job %s is active and locked", a->id);
	}
	const char *prev = jobq_state_name(r.j->state);
	rc = job_delete(c, &r, a->now);
	if (rc == 0) {
		rc = ev1(c, "removed", a->id, "prev", prev);
	}
	rec_free(&r);
	return rc;
}

static int
lm_remove(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	admin_args a = {.id = id, .now = now_ms};
	return op_run(q, remove_body, &a);
}

static int
pause_body(lmdb_wctx *c, void *arg) {
	admin_args *a = arg;
	meta(c)->paused = a->flag != 0;
	if (!a->flag) {
		c->bump_work = 1;
	}
	return ev(c, a->flag ? "paused" : "resumed", NULL, 0, NULL);
}

static int
lm_set_paused(jobq_backend_queue *q, int paused, int64_t now_ms) {
	admin_args a = {.flag = paused, .now = now_ms};
	return op_run(q, pause_body, &a);
}

static int
delete_state(lmdb_wctx *c, jobq_state s, int64_t now) {
	idlist l;
	int rc = collect(&l, c->q, c->txn, s, 0, 0, 0, NULL);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		rc = delete_by_id(c, l.ids[i], now);
	}
	idlist_free(&l);
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

static int
lm_drain(jobq_backend_queue *q, int include_delayed, int64_t now_ms) {
	admin_args a = {.flag = include_delayed, .now = now_ms};
	return op_run(q, drain_body, &a);
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
	int rc = collect(&l, c->q, c->txn, a->state, 0, 0, finished ? a->limit : 0,
	                 finished ? &cutoff : NULL);
	size_t count = 0;
	for (size_t i = 0; rc == 0 && i < l.n && (!a->limit || count < a->limit); i++) {
		lmdb_rec r;
		rc = rec_load(c, &r, l.ids[i]);
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
		if (eligible) {
			rc = job_delete(c, &r, a->now);
			if (rc == 0) {
				rc = jobq_strings__append(&a->ids, l.ids[i], strlen(l.ids[i]));
			}
			count++;
		}
		rec_free(&r);
	}
	idlist_free(&l);
	if (rc == 0) {
		rc = ev_i64(c, "cleaned", NULL, "count", (int64_t)count);
	}
	return rc < 0 ? rc : (int)count;
}

static int
lm_clean(jobq_strings **removed, jobq_backend_queue *q, jobq_state state, int64_t grace_ms,
         size_t limit, int64_t now_ms) {
	admin_args a = {.state = state, .grace = grace_ms, .limit = limit, .now = now_ms};
	int rc = op_run(q, clean_body, &a);
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
	static const int tables[] = {DBI_JOBS,      DBI_WAIT,   DBI_PRIO,  DBI_DELAYED, DBI_ACTIVE,
	                             DBI_COMPLETED, DBI_FAILED, DBI_DEDUP, DBI_LOGS,    DBI_EVENTS};
	kb p;
	kb_q(&p, c->q);
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		int rc = del_prefix(c, tables[i], &p, NULL, NULL);
		if (rc < 0) {
			return rc;
		}
	}
	int64_t ev_seq = meta(c)->ev_seq; /* event ids keep increasing */
	memset(&c->m, 0, sizeof(c->m));
	c->m.ev_seq = ev_seq;
	c->ev_start = ev_seq;
	c->evb.size = 0;     /* events of this transaction so far go with the others */
	c->wrote_events = 1; /* wake readers */
	return 0;
}

static int
lm_obliterate(jobq_backend_queue *q, int force, int64_t now_ms) {
	admin_args a = {.flag = force, .now = now_ms};
	return op_run(q, obliterate_body, &a);
}

/* The ids an admin move acts on: job `id`, which must be in `state`, or every job in it. */
static int
select_ids(lmdb_wctx *c, idlist *l, const char *id, jobq_state state) {
	memset(l, 0, sizeof(*l)); /* the caller frees it whatever happens */
	if (id == NULL) {
		return collect(l, c->q, c->txn, state, 0, 0, 0, NULL);
	}
	lmdb_rec r;
	int rc = rec_load(c, &r, id);
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
	return idlist_push(l, &idv, 0);
}

/* Moves job a->id (NULL: every job) from delayed or failed back to waiting or prioritized. */
static int
move_to_ready(lmdb_wctx *c, const admin_args *a, jobq_state from) {
	idlist l;
	int rc = select_ids(c, &l, a->id, from);
	int count = 0;
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		lmdb_rec r;
		rc = rec_load(c, &r, l.ids[i]);
		if (rc <= 0) {
			continue;
		}
		rc = idx_remove(c, &r);
		if (from == JOBQ_STATE_DELAYED) {
			r.j->delay_ms = 0;
		} else {
			r.j->finished_on = 0;
			r.j->processed_on = 0;
			jobq__free(r.j->failed_reason);
			r.j->failed_reason = NULL;
		}
		if (rc == 0) {
			rc = make_ready(c, &r, 0);
		}
		if (rc == 0) {
			rc = rec_put(c, &r);
		}
		if (rc == 0) {
			rc = ev1(c, "waiting", l.ids[i], "prev", jobq_state_name(from));
		}
		rec_free(&r);
		count++;
	}
	idlist_free(&l);
	return rc < 0 ? rc : count;
}

static int
promote_body(lmdb_wctx *c, void *arg) {
	return move_to_ready(c, arg, JOBQ_STATE_DELAYED);
}

static int
lm_promote(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	admin_args a = {.id = id, .now = now_ms};
	return op_run(q, promote_body, &a);
}

static int
retry_body(lmdb_wctx *c, void *arg) {
	return move_to_ready(c, arg, JOBQ_STATE_FAILED);
}

static int
lm_retry_failed(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	admin_args a = {.id = id, .now = now_ms};
	return op_run(q, retry_body, &a);
}

/* --- progress and logs --------------------------------------------------------------------------
 */

static int
progress_body(lmdb_wctx *c, void *arg) {
	admin_args *a = arg;
	lmdb_rec r;
	int rc;
	if (a->token) {
		rc = load_locked(c, &r, a->id, a->token, a->now);
		if (rc < 0) {
			return rc;
		}
	} else {
		rc = rec_load(c, &r, a->id);
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
		rc = rec_put(c, &r);
	}
	if (rc == 0) {
		rc = ev1(c, "progress", a->id, "data", a->json ? a->json : "null");
	}
	rec_free(&r);
	return rc;
}

static int
lm_progress(jobq_backend_queue *q, const char *id, const char *token, const char *json,
            int64_t now_ms) {
	admin_args a = {.id = id, .token = token, .json = json, .now = now_ms};
	return op_run(q, progress_body, &a);
}

static int
add_log_body(lmdb_wctx *c, void *arg) {
	admin_args *a = arg;
	lmdb_rec r;
	int rc = rec_load(c, &r, a->id);
	if (rc < 0) {
		return rc;
	}
	if (rc == 0) {
		return jobq_error_set(JOBQ_ENOTFOUND, "lmdb: no job %s in queue %s", a->id,
		                      c->q->name);
	}
	kb p;
	rc = logs_prefix(&p, c->q, a->id);
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
		rc = rec_put(c, &r);
	}
	if (rc == 0 && r.j->state == JOBQ_STATE_ACTIVE) {
		rc = run_put(c, &r); /* its completion must look for the logs */
	}
	int kept = (int)r.log_count;
	rec_free(&r);
	return rc < 0 ? rc : kept;
}

static int
lm_add_log(jobq_backend_queue *q, const char *id, const char *line, int64_t keep) {
	admin_args a = {.id = id, .line = line ? line : "", .keep = keep};
	return op_run(q, add_log_body, &a);
}

static int
lm_get_logs(jobq_strings **out, jobq_backend_queue *q, const char *id, size_t start, size_t limit) {
	MDB_txn *txn;
	int rc = jobq_lmdb__read_begin(q->e, &txn);
	if (rc < 0) {
		return rc;
	}
	lmdb_rec r;
	int found = rec_load_txn(&r, q, txn, id, 0);
	if (found <= 0) {
		jobq_lmdb__read_end(q->e, txn);
		return found < 0 ? found
		                 : jobq_error_set(JOBQ_ENOTFOUND, "lmdb: no job %s in queue %s", id,
		                                  q->name);
	}
	rec_free(&r);
	jobq_strings *list = jobq__calloc(1, sizeof(*list));
	kb p;
	rc = list ? logs_prefix(&p, q, id) : jobq_error_set(JOBQ_ENOMEM, "lmdb: reading logs");
	MDB_cursor *cur = NULL;
	if (rc == 0) {
		int mrc = mdb_cursor_open(txn, dbi(q->e, DBI_LOGS), &cur);
		if (mrc) {
			rc = jobq_lmdb__error(mrc, "opening a cursor");
		}
	}
	if (rc == 0) {
		MDB_val k = kv(&p), v;
		int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		size_t i = 0;
		while (mrc == 0 && has_prefix(&k, &p) && (!limit || list->count < limit)) {
			if (i++ >= start) {
				rc = jobq_strings__append(&list, v.mv_data, v.mv_size);
				if (rc < 0) {
					break;
				}
			}
			mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		mdb_cursor_close(cur);
	}
	jobq_lmdb__read_end(q->e, txn);
	if (rc < 0) {
		jobq_strings_free(list);
		return rc;
	}
	*out = list;
	return 0;
}

/* --- events and waiting -------------------------------------------------------------------------
 */

/* Reads events with seq > *after into `list` (at most max). Resolves "$" in *after. */
static int
events_once(jobq_event_list *list, jobq_backend_queue *q, uint64_t *after, int *resolve_now,
            size_t max, size_t *got) {
	MDB_txn *txn;
	int rc = jobq_lmdb__read_begin(q->e, &txn);
	if (rc < 0) {
		return rc;
	}
	*got = 0;
	if (*resolve_now) {
		lmdb_qmeta m;
		rc = meta_read(&m, q, txn);
		if (rc < 0) {
			jobq_lmdb__read_end(q->e, txn);
			return rc;
		}
		*after = (uint64_t)m.ev_seq;
		*resolve_now = 0;
	}
	MDB_cursor *cur = NULL;
	int mrc = mdb_cursor_open(txn, dbi(q->e, DBI_EVENTS), &cur);
	if (mrc) {
		jobq_lmdb__read_end(q->e, txn);
		return jobq_lmdb__error(mrc, "opening a cursor");
	}
	kb p, k0;
	kb_q(&p, q);
	k0 = p;
	kb_u64(&k0, *after + 1);
	MDB_val k = kv(&k0), v;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	/* A key holds the events from its sequence number on: the one holding after + 1 may be
	 * the key before. */
	if (mrc == MDB_NOTFOUND ||
	    (mrc == 0 && !(has_prefix(&k, &p) && k.mv_size == p.n + 8 &&
	                   rd_u64((const unsigned char *)k.mv_data + p.n) == *after + 1))) {
		int prc = mdb_cursor_get(cur, &k, &v, mrc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
		if (prc == 0 && has_prefix(&k, &p) && k.mv_size == p.n + 8) {
			mrc = 0;
		} else {
			k = kv(&k0);
			mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		}
	}
	while (mrc == 0 && has_prefix(&k, &p) && k.mv_size == p.n + 8 && *got < max) {
		uint64_t seq = rd_u64((const unsigned char *)k.mv_data + p.n);
		const char *b = v.mv_data;
		size_t left = v.mv_size;
		while (left > 0 && *got < max) {
			char id[24];
			snprintf(id, sizeof(id), "%" PRIu64, seq);
			size_t used = 0;
			int take = seq > *after;
			rc = jobq_lmdb__event_decode_append(take ? list : NULL, id, b, left, &used);
			if (rc < 0) {
				break;
			}
			if (take) {
				*after = seq;
				(*got)++;
			}
			b += used;
			left -= used;
			seq++;
		}
		if (rc < 0) {
			break;
		}
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	jobq_lmdb__read_end(q->e, txn);
	return rc;
}

static int
lm_events_read(jobq_event_list **out, jobq_backend_queue *q, const char *after, size_t max,
               int64_t timeout_ms) {
	uint64_t cursor = 0;
	int resolve_now = 0;
	if (!after || strcmp(after, JOBQ_EVENTS_START) == 0) {
		cursor = 0;
	} else if (strcmp(after, JOBQ_EVENTS_NOW) == 0) {
		resolve_now = 1;
	} else {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(after, &end, 10);
		if (!*after || *end || errno || after[0] == '-') {
			return jobq_error_set(JOBQ_EINVAL, "lmdb: bad event cursor \"%s\"", after);
		}
		cursor = v;
	}
	if (max == 0) {
		max = 1000;
	}
	jobq_event_list *list;
	int rc = jobq_event_list__new(&list);
	if (rc < 0) {
		return rc;
	}
	lmdb_env *e = q->e;
	int64_t deadline = timeout_ms > 0 ? jobq__mono_ms() + timeout_ms : 0;
	uint32_t gen = __atomic_load_n(&e->wake_gen, __ATOMIC_SEQ_CST);
	for (;;) {
		uint32_t seen = jobq_lmdb__wake_load(e, q->slot, 1);
		size_t got = 0;
		rc = events_once(list, q, &cursor, &resolve_now, max, &got);
		if (rc < 0 || got > 0 || timeout_ms == 0) {
			break;
		}
		int64_t left = timeout_ms < 0 ? 1000 : deadline - jobq__mono_ms();
		if (left <= 0 || __atomic_load_n(&e->wake_gen, __ATOMIC_SEQ_CST) != gen) {
			break;
		}
		jobq_lmdb__wake_wait(e, q->slot, 1, seen, left);
	}
	if (rc == 0) {
		char cur[24];
		snprintf(cur, sizeof(cur), "%" PRIu64, cursor);
		rc = jobq_event_list__set_cursor(list, cur);
	}
	if (rc < 0) {
		jobq_event_list_free(list);
		return rc;
	}
	*out = list;
	return 0;
}

/* 1 if work is there now; else 0 and *next_due (0 if none). */
static int
work_ready(jobq_backend_queue *q, jobq_clock *clock, int64_t *next_due) {
	MDB_txn *txn;
	int rc = jobq_lmdb__read_begin(q->e, &txn);
	if (rc < 0) {
		return rc;
	}
	lmdb_qmeta m;
	rc = meta_read(&m, q, txn);
	*next_due = 0;
	if (rc == 0 && !m.paused) {
		if (m.counts[JOBQ_STATE_WAITING] + m.counts[JOBQ_STATE_PRIORITIZED] > 0) {
			rc = 1;
		} else if (m.counts[JOBQ_STATE_DELAYED] > 0) {
			MDB_cursor *cur;
			if (mdb_cursor_open(txn, dbi(q->e, DBI_DELAYED), &cur) == 0) {
				kb p;
				kb_q(&p, q);
				MDB_val k = kv(&p), v;
				if (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == 0 &&
				    has_prefix(&k, &p) && k.mv_size >= p.n + 8) {
					*next_due = rd_i64((const unsigned char *)k.mv_data + p.n);
					if (*next_due <= jobq_clock_now(clock)) {
						rc = 1;
					}
				}
				mdb_cursor_close(cur);
			}
		}
	}
	jobq_lmdb__read_end(q->e, txn);
	return rc;
}

static int
lm_wait_for_work(jobq_backend_queue *q, jobq_clock *clock, int64_t timeout_ms) {
	lmdb_env *e = q->e;
	int64_t deadline = timeout_ms > 0 ? jobq__mono_ms() + timeout_ms : 0;
	uint32_t gen = __atomic_load_n(&e->wake_gen, __ATOMIC_SEQ_CST);
	for (;;) {
		uint32_t seen = jobq_lmdb__wake_load(e, q->slot, 0);
		int64_t next_due = 0;
		int rc = work_ready(q, clock, &next_due);
		if (rc != 0) {
			return rc < 0 ? rc : 0;
		}
		if (timeout_ms == 0) {
			return 0;
		}
		int64_t left = timeout_ms < 0 ? 1000 : deadline - jobq__mono_ms();
		if (left <= 0 || __atomic_load_n(&e->wake_gen, __ATOMIC_SEQ_CST) != gen) {
			return 0;
		}
		if (next_due > 0) {
			int64_t until = next_due - jobq_clock_now(clock);
			if (until < left) {
				left = until < 1 ? 1 : until;
			}
		}
		jobq_lmdb__wake_wait(e, q->slot, 0, seen, left);
		if (__atomic_load_n(&e->wake_gen, __ATOMIC_SEQ_CST) != gen) {
			return 0;
		}
	}
}

/* --- format 1 stores ----------------------------------------------------------------------------
 */

/*
 * Format 1 keyed the active index Q\0seq -> id and kept the running fields in the record.
 * Rewrites each entry as Q\0id -> running entry (taken from the record), in the caller's
 * transaction; an entry whose record is gone is dropped. The new entries are built first and
 * the table emptied before they are written, since both kinds of key share it.
 */
int
jobq_lmdb__migrate_v1(lmdb_env *e, MDB_txn *txn) {
	MDB_cursor *cur = NULL;
	int mrc = mdb_cursor_open(txn, e->dbi[DBI_ACTIVE], &cur);
	if (mrc) {
		return jobq_lmdb__error(mrc, "migrating the active index");
	}
	lmdb_buf out; /* (key length, key, value length, value) per entry */
	jobq_lmdb__buf_init(&out);
	int rc = 0;
	MDB_val k, v;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (mrc == 0) {
		const unsigned char *kp = k.mv_data;
		if (k.mv_size >= 10 && kp[k.mv_size - 9] == '\0' && v.mv_size > 0 &&
		    v.mv_size <= JOBQ_ID_MAX) {
			size_t qn = k.mv_size - 9;
			char id[JOBQ_ID_MAX + 1];
			memcpy(id, v.mv_data, v.mv_size);
			id[v.mv_size] = '\0';
			kb jk;
			jk.n = 0;
			jk.overflow = 0;
			kb_bytes(&jk, kp, qn + 1);
			kb_str(&jk, id);
			MDB_val jkey = kv(&jk), jv;
			lmdb_rec r;
			if (!jk.overflow && mdb_get(txn, e->dbi[DBI_JOBS], &jkey, &jv) == 0 &&
			    jobq_lmdb__rec_decode(&r, id, jv.mv_data, jv.mv_size) == 0) {
				const jobq_job *j = r.j;
				lmdb_run run = {
				    .seq = rd_u64(kp + qn + 1),
				    .lock_until = r.lock_until,
				    .processed_on = j->processed_on,
				    .attempts_started = j->attempts_started,
				    .flags = r.log_count > 0 ? LMDB_RUN_LOGS : 0,
				    .token = j->token,
				    .token_len = j->token ? strlen(j->token) : 0,
				    .dedup = j->opts.dedup_id,
				    .dedup_len = j->opts.dedup_id ? strlen(j->opts.dedup_id) : 0};
				lmdb_buf b;
				rc = jobq_lmdb__run_encode(&b, &run);
				if (rc == 0) {
					uint32_t kl = (uint32_t)jk.n, vl = (uint32_t)b.size;
					rc = jobq_lmdb__buf_append(&out, &kl, sizeof(kl));
					if (rc == 0) {
						rc = jobq_lmdb__buf_append(&out, jk.b, kl);
					}
					if (rc == 0) {
						rc = jobq_lmdb__buf_append(&out, &vl, sizeof(vl));
					}
					if (rc == 0) {
						rc = jobq_lmdb__buf_append(&out, b.data, vl);
					}
					jobq_lmdb__buf_free(&b);
				}
				rec_free(&r);
			} else {
				jobq_error_clear(); /* no record (or an unreadable one): drop it */
			}
		}
		if (rc < 0) {
			break;
		}
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc == 0 && mrc != MDB_NOTFOUND) {
		rc = jobq_lmdb__error(mrc, "migrating the active index");
	}
	if (rc == 0) {
		mrc = mdb_drop(txn, e->dbi[DBI_ACTIVE], 0);
		if (mrc) {
			rc = jobq_lmdb__error(mrc, "migrating the active index");
		}
	}
	for (size_t off = 0; rc == 0 && off < out.size;) {
		uint32_t kl, vl;
		memcpy(&kl, out.data + off, sizeof(kl));
		MDB_val nk = {kl, out.data + off + sizeof(kl)};
		off += sizeof(kl) + kl;
		memcpy(&vl, out.data + off, sizeof(vl));
		MDB_val nv = {vl, out.data + off + sizeof(vl)};
		off += sizeof(vl) + vl;
		mrc = mdb_put(txn, e->dbi[DBI_ACTIVE], &nk, &nv, 0);
		if (mrc) {
			rc = jobq_lmdb__error(mrc, "migrating the active index");
		}
	}
	jobq_lmdb__buf_free(&out);
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

/* --- the vtable ------------------------------------------------------------------------------- */

static const jobq_backend lmdb_vtable = {
    .version = JOBQ_BACKEND_VERSION,
    .name = "lmdb",
    .caps = JOBQ_CAP_BLOCKING_WAIT | JOBQ_CAP_DURABLE | JOBQ_CAP_MULTIPROCESS | JOBQ_CAP_DUE_CLOCK |
            JOBQ_CAP_LOCK_CLOCK,
    .queue_open = lm_queue_open,
    .queue_close = lm_queue_close,
    .add = lm_add,
    .fetch = lm_fetch,
    .extend_lock = lm_extend_lock,
    .complete = lm_complete,
    .fail = lm_fail,
    .release = lm_release,
    .reap_stalled = lm_reap_stalled,
    .get = lm_get,
    .list = lm_list,
    .counts = lm_counts,
    .remove = lm_remove,
    .set_paused = lm_set_paused,
    .is_paused = lm_is_paused,
    .drain = lm_drain,
    .clean = lm_clean,
    .obliterate = lm_obliterate,
    .promote = lm_promote,
    .retry_failed = lm_retry_failed,
    .progress = lm_progress,
    .add_log = lm_add_log,
    .get_logs = lm_get_logs,
    .events_read = lm_events_read,
    .wait_for_work = lm_wait_for_work,
    .wake = lm_wake,
    .free = lm_free,
    .complete_fetch = lm_complete_fetch,
    .check = jobq_lmdb__check,
    .list_queues = jobq_lmdb__list_queues,
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
