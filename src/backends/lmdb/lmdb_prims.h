/*
 * The LMDB backend's primitives for the engine (engine/engine.h): records and index entries
 * inside the operation's one write transaction (lmdb_wctx), and the engine's rules compiled
 * against them. A job is a record decoded for the step (lmdb_rec); rules that change it write
 * it back with engp_save.
 */
#ifndef JOBQ_LMDB_PRIMS_H
#define JOBQ_LMDB_PRIMS_H

#include "lmdb_ops.h"

#define ENG_CTX            lmdb_wctx
#define ENG_JOB            lmdb_rec
#define ENG_FIELD(r, name) ((r)->j->name)
#include "engine/engine.h"

static inline jobq_state
engp_state(const lmdb_rec *r) {
	return r->j->state;
}

static inline const char *
engp_id(const lmdb_rec *r) {
	return r->j->id;
}

static inline size_t
engp_id_len(const lmdb_rec *r) {
	return strlen(r->j->id);
}

static inline const char *
engp_name(const lmdb_rec *r) {
	return r->j->name ? r->j->name : "";
}

static inline int
engp_lifo(const lmdb_rec *r) {
	return r->j->opts.lifo != 0;
}

static inline const char *
engp_dedup_id(const lmdb_rec *r) {
	const char *d = r->j->opts.dedup_id;
	return d && *d ? d : NULL;
}

static inline const char *
engp_token(const lmdb_rec *r) {
	return r->j->token;
}

static inline int64_t
engp_lock_expiry(const lmdb_rec *r) {
	return r->lock_until;
}

static inline int
engp_unlink(lmdb_wctx *c, lmdb_rec *r) {
	return jobq_lmdb__idx_remove(c, r);
}

static inline int
engp_put_waiting(lmdb_wctx *c, lmdb_rec *r, int front) {
	return jobq_lmdb__to_wait(c, r, front);
}

static inline int
engp_put_prioritized(lmdb_wctx *c, lmdb_rec *r, int front) {
	return jobq_lmdb__to_prio(c, r, front);
}

static inline int
engp_put_delayed(lmdb_wctx *c, lmdb_rec *r, int64_t due) {
	return jobq_lmdb__to_delayed(c, r, due);
}

/* The running entry carries the lock, the fetch's changes and the token (set by the caller
 * in r->j->token before). */
static inline int
engp_put_active(lmdb_wctx *c, lmdb_rec *r, int64_t lock_expiry) {
	r->lock_until = lock_expiry;
	return jobq_lmdb__to_active(c, r);
}

static inline int
engp_put_finished(lmdb_wctx *c, lmdb_rec *r, jobq_state s) {
	return jobq_lmdb__to_finished(c, r, s);
}

static inline int
engp_drop_lock(lmdb_wctx *c, lmdb_rec *r) {
	(void)c;
	jobq__free(r->j->token);
	r->j->token = NULL;
	r->lock_until = 0;
	return 0;
}

static inline int
engp_set_deferred(lmdb_wctx *c, lmdb_rec *r, const char *reason) {
	(void)c;
	return set_str(&r->j->deferred_failure, reason);
}

static inline int
engp_clear_failure(lmdb_wctx *c, lmdb_rec *r) {
	(void)c;
	jobq__free(r->j->failed_reason);
	r->j->failed_reason = NULL;
	return 0;
}

static inline int
engp_save(lmdb_wctx *c, lmdb_rec *r) {
	return jobq_lmdb__rec_put(c, r);
}

static inline int
engp_delete(lmdb_wctx *c, lmdb_rec *r) {
	return jobq_lmdb__job_erase(c, r);
}

/* Dangling index entries (an index entry without its record: should not happen) are dropped
 * on the way. */
static inline int
engp_first(lmdb_wctx *c, jobq_state s, lmdb_rec *space, lmdb_rec **out, int64_t *key) {
	int which = jobq_lmdb__state_dbi(s);
	if (which < 0 || s == JOBQ_STATE_ACTIVE)
		return 0;
	kb p;
	kb_q(&p, c->q);
	for (;;) {
		char id[JOBQ_ID_MAX + 1];
		MDB_val k = {0, NULL};
		int found = first_id(c, which, &p, id, &k);
		if (found <= 0)
			return found;
		*key = rd_i64((const unsigned char *)k.mv_data + p.n);
		int rc = jobq_lmdb__rec_load_idle(c, space, id);
		if (rc < 0)
			return rc;
		if (rc > 0) {
			*out = space;
			return 1;
		}
		MDB_val k2 = k;
		int mrc = mdb_del(c->txn, dbi(c->e, which), &k2, NULL);
		if (mrc)
			return mdb_fail(c, mrc, "removing a dangling index entry");
	}
}

static inline void
engp_done(lmdb_wctx *c, lmdb_rec *r) {
	(void)c;
	rec_free(r);
}

static inline uint64_t
engp_count(lmdb_wctx *c, jobq_state s) {
	int64_t n = meta(c)->counts[s];
	return n > 0 ? (uint64_t)n : 0;
}

static inline int
engp_dedup_find(lmdb_wctx *c, const lmdb_rec *r, int *owned, int64_t *expiry) {
	kb k;
	if (jobq_lmdb__dedup_key(&k, c->q, r->j->opts.dedup_id) < 0) {
		jobq_error_clear();
		return 0;
	}
	MDB_val key = kv(&k), v;
	int mrc = mdb_get(c->txn, dbi(c->e, DBI_DEDUP), &key, &v);
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc)
		return mdb_fail(c, mrc, "reading a dedup key");
	char owner[JOBQ_ID_MAX + 1];
	int rc = jobq_lmdb__dedup_decode(owner, sizeof(owner), expiry, v.mv_data, v.mv_size);
	if (rc < 0)
		return rc;
	*owned = strcmp(owner, r->j->id) == 0;
	return 1;
}

static inline int
engp_dedup_del(lmdb_wctx *c, const lmdb_rec *r) {
	kb k;
	if (jobq_lmdb__dedup_key(&k, c->q, r->j->opts.dedup_id) < 0) {
		jobq_error_clear();
		return 0;
	}
	MDB_val key = kv(&k);
	int mrc = mdb_del(c->txn, dbi(c->e, DBI_DEDUP), &key, NULL);
	return mrc && mrc != MDB_NOTFOUND ? mdb_fail(c, mrc, "deleting a dedup key") : 0;
}

static inline int
engp_dedup_point(lmdb_wctx *c, const lmdb_rec *r) {
	return jobq_lmdb__dedup_point(c, r->j->opts.dedup_id, r->j->id);
}

static inline int
engp_exists(lmdb_wctx *c, const char *id) {
	kb k;
	job_key(&k, c->q, id);
	if (k.overflow)
		return 0;
	MDB_val key = kv(&k), v;
	int mrc = mdb_get(c->txn, dbi(c->e, DBI_JOBS), &key, &v);
	if (mrc == MDB_NOTFOUND)
		return 0;
	return mrc ? mdb_fail(c, mrc, "reading a job") : 1;
}

static inline int
engp_stash_id(lmdb_wctx *c, const lmdb_rec *r, char *id) {
	return jobq_lmdb__stash_get(c, r->j->opts.dedup_id, id, NULL, 0);
}

static inline int
engp_stash_drop(lmdb_wctx *c, const lmdb_rec *r) {
	char id[JOBQ_ID_MAX + 1];
	lmdb_rec gone;
	int rc = jobq_lmdb__stash_get(c, r->j->opts.dedup_id, id, &gone, 0);
	if (rc > 0)
		rec_free(&gone);
	return rc < 0 ? rc : 0;
}

/* The new job's record is owned by `space` (engp_done frees it); the id counter moves. */
static inline int
engp_stash_take(lmdb_wctx *c, const lmdb_rec *r, int64_t now, lmdb_rec *space, lmdb_rec **out) {
	char id[JOBQ_ID_MAX + 1];
	int rc = jobq_lmdb__stash_get(c, r->j->opts.dedup_id, id, space, now);
	if (rc <= 0)
		return rc < 0 ? rc
		              : jobq_error_set(JOBQ_EIO, "lmdb: stash of job %s gone", r->j->id);
	meta(c)->counter++;
	*out = space;
	return 0;
}

/* Events are stored formatted (the format of the events database). */
static inline int
engp_event(lmdb_wctx *c, int type, const char *id, size_t id_len, int prev, int64_t num,
           const char *s1, const char *s2) {
	(void)id_len;
	char nb[24]; /* not snprintf: this runs for every event of every job */
	if (num < 0) {
		nb[0] = '-';
		jobq__u64_dec(nb + 1, (uint64_t)0 - (uint64_t)num);
	} else {
		jobq__u64_dec(nb, (uint64_t)num);
	}
	jobq_event_field f[ENG_EV_FIELDS_MAX];
	const char *job_id = id;
	size_t n = jobq_eng__event_fields(f, &job_id, type, prev, nb, s1, s2);
	return ev(c, jobq_eng__event_name(type), job_id, n, f);
}

static inline void
engp_signal_work(lmdb_wctx *c, int many) {
	(void)many;
	c->bump_work = 1;
}

static inline int
engp_metrics_get(lmdb_wctx *c, jobq_state s, eng_metrics *m) {
	int64_t v[3];
	int rc = jobq_lmdb__metrics_get(c, s, v);
	if (rc > 0)
		*m = (eng_metrics){v[0], v[1], v[2]};
	return rc;
}

static inline int
engp_metrics_set(lmdb_wctx *c, jobq_state s, const eng_metrics *m) {
	const int64_t v[3] = {m->count, m->prev_ts, m->prev_count};
	return jobq_lmdb__metrics_set(c, s, v);
}

static inline int
engp_metrics_push(lmdb_wctx *c, jobq_state s, int64_t point, uint32_t zeros, uint32_t max) {
	return jobq_lmdb__metrics_push(c, s, point, zeros, max);
}

static inline eng_limits *
engp_limits(lmdb_wctx *c) {
	return &meta(c)->lim;
}

#include "engine/engine_ops.h"

#endif
