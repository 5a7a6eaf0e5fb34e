/*
 * LMDB backend: the operation runner (one write transaction per operation, with its events and
 * queue settings written at the end), the event log's trim, and deleting jobs. See lmdb_ops.h
 * for what the files of the operations share.
 */
#include "lmdb_ops.h"

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

int
jobq_lmdb__del_prefix(lmdb_wctx *c, int which, const kb *prefix, del_pred pred, void *arg) {
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
	int rc = jobq_lmdb__meta_read(&c->m, c->q, c->txn);
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

int
jobq_lmdb__op_run(jobq_backend_queue *q, lmdb_write_fn fn, void *arg) {
	op_tramp t = {fn, arg};
	return jobq_lmdb__write(q, op_body, &t);
}

/* --- deleting jobs ------------------------------------------------------------------------------
 */

int
jobq_lmdb__logs_prefix(kb *k, const jobq_backend_queue *q, const char *id) {
	kb_q(k, q);
	kb_str(k, id);
	kb_bytes(k, "", 1);
	return k->overflow ? jobq_error_set(JOBQ_EINVAL, "lmdb: id too long") : 0;
}

int
jobq_lmdb__dedup_key(kb *k, const jobq_backend_queue *q, const char *dedup_id) {
	kb_q(k, q);
	kb_str(k, dedup_id);
	return k->overflow
	           ? jobq_error_set(JOBQ_EINVAL, "lmdb: deduplication id too long (%zu bytes)",
	                            strlen(dedup_id))
	           : 0;
}

/* Dedup key `did`'s record: 1 and *v (valid until the next write), 0 when there is none. */
static int
dedup_get(lmdb_wctx *c, const char *did, MDB_val *key, kb *k, MDB_val *v) {
	if (jobq_lmdb__dedup_key(k, c->q, did) < 0) {
		jobq_error_clear();
		return 0;
	}
	*key = kv(k);
	int mrc = mdb_get(c->txn, dbi(c->e, DBI_DEDUP), key, v);
	if (mrc == MDB_NOTFOUND) {
		return 0;
	}
	return mrc ? mdb_fail(c, mrc, "reading a dedup key") : 1;
}

static int
dedup_put(lmdb_wctx *c, MDB_val *key, const char *owner, int64_t exp, const char *stash_id,
          const void *stash, size_t stash_len) {
	lmdb_buf b;
	int rc = jobq_lmdb__dedup_encode(&b, owner, exp, stash_id, stash, stash_len);
	if (rc < 0) {
		return rc;
	}
	MDB_val v = {b.size, b.data};
	rc = wput(c, DBI_DEDUP, key, &v, "writing a dedup key");
	jobq_lmdb__buf_free(&b);
	return rc;
}

int
jobq_lmdb__dedup_point(lmdb_wctx *c, const char *did, const char *owner) {
	kb k;
	if (jobq_lmdb__dedup_key(&k, c->q, did) < 0) {
		jobq_error_clear();
		return 0;
	}
	MDB_val key = kv(&k);
	return dedup_put(c, &key, owner, 0, NULL, NULL, 0);
}

int
jobq_lmdb__stash_put(lmdb_wctx *c, const char *did, const char *owner, const lmdb_rec *r) {
	kb k;
	int rc = jobq_lmdb__dedup_key(&k, c->q, did);
	lmdb_buf b;
	if (rc < 0 || (rc = jobq_lmdb__rec_encode(&b, r)) < 0) {
		return rc;
	}
	MDB_val key = kv(&k);
	rc = dedup_put(c, &key, owner, 0, r->j->id, b.data, b.size);
	jobq_lmdb__buf_free(&b);
	return rc;
}

int
jobq_lmdb__stash_get(lmdb_wctx *c, const char *did, char *id, lmdb_rec *r, int64_t now) {
	kb k;
	MDB_val key, v;
	const void *rec = NULL;
	size_t rec_len = 0;
	char owner[JOBQ_ID_MAX + 1];
	int64_t exp = 0;
	int rc = dedup_get(c, did, &key, &k, &v);
	if (rc > 0) {
		rc = jobq_lmdb__dedup_stash(id, &rec, &rec_len, v.mv_data, v.mv_size);
	}
	if (rc <= 0 || r == NULL) {
		return rc;
	}
	/* Take it: the job out of the record, then the record without it. */
	rc = jobq_lmdb__rec_decode(r, id, rec, rec_len);
	if (rc == 0) {
		r->j->state = JOBQ_STATE_UNKNOWN; /* in no index (ENG_GONE) */
		r->j->timestamp = now;
		r->lock_until = r->ia = 0;
		r->ib = r->log_next = r->log_count = 0;
		rc = jobq_lmdb__dedup_decode(owner, sizeof(owner), &exp, v.mv_data, v.mv_size);
		if (rc == 0) {
			rc = dedup_put(c, &key, owner, exp, NULL, NULL, 0);
		}
		if (rc < 0) {
			rec_free(r);
		}
	}
	return rc < 0 ? rc : 1;
}

/* Erases a loaded job: index entry, record, logs (not its dedup key). */
int
jobq_lmdb__job_erase(lmdb_wctx *c, lmdb_rec *r) {
	int rc = jobq_lmdb__idx_remove(c, r);
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
		if (jobq_lmdb__logs_prefix(&p, c->q, r->j->id) == 0) {
			rc = jobq_lmdb__del_prefix(c, DBI_LOGS, &p, NULL, NULL);
			if (rc < 0) {
				return rc;
			}
		}
	}
	return 0;
}
