/*
 * LMDB backend: what the files of the operations (lmdb_ops.c, the vtable, and lmdb_add.c,
 * lmdb_fetch.c, lmdb_active.c, lmdb_admin.c, lmdb_read.c, lmdb_records.c, lmdb_txn.c,
 * lmdb_migrate.c) share. The small helpers are static inline here so that the hot paths
 * (fetch, complete) keep them inline as they were in one file.
 */
#ifndef JOBQ_LMDB_OPS_H
#define JOBQ_LMDB_OPS_H

#include "lmdb_internal.h"
#include "backends/backend.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* --- keys ----------------------------------------------------------------------------------- */

typedef struct kb {
	unsigned char b[LMDB_KEY_MAX];
	size_t n;
	int overflow;
} kb;

static inline void
kb_bytes(kb *k, const void *p, size_t n) {
	if (k->overflow || k->n + n > sizeof(k->b)) {
		k->overflow = 1;
		return;
	}
	memcpy(k->b + k->n, p, n);
	k->n += n;
}

static inline void
kb_q(kb *k, const jobq_backend_queue *q) {
	k->n = 0;
	k->overflow = 0;
	kb_bytes(k, q->name, q->name_len + 1); /* with its NUL */
}

static inline void
kb_str(kb *k, const char *s) {
	kb_bytes(k, s, strlen(s));
}

static inline void
kb_u64(kb *k, uint64_t v) {
	unsigned char b[8];
	for (int i = 7; i >= 0; i--) {
		b[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
	kb_bytes(k, b, 8);
}

static inline void
kb_i64(kb *k, int64_t v) {
	kb_u64(k, (uint64_t)v ^ (UINT64_C(1) << 63));
}

static inline uint64_t
rd_u64(const unsigned char *p) {
	uint64_t v = 0;
	for (int i = 0; i < 8; i++) {
		v = (v << 8) | p[i];
	}
	return v;
}

static inline int64_t
rd_i64(const unsigned char *p) {
	return (int64_t)(rd_u64(p) ^ (UINT64_C(1) << 63));
}

static inline MDB_val
kv(const kb *k) {
	MDB_val v = {k->n, (void *)(uintptr_t)k->b};
	return v;
}

static inline int
has_prefix(const MDB_val *key, const kb *prefix) {
	return key->mv_size >= prefix->n && memcmp(key->mv_data, prefix->b, prefix->n) == 0;
}

/* --- small helpers -----------------------------------------------------------------------------
 */

static inline int
mdb_fail(lmdb_wctx *c, int mrc, const char *what) {
	if (c) {
		c->mdb_rc = mrc;
	}
	return jobq_lmdb__error(mrc, what);
}

/* The transaction's cursor on table `which` (see lmdb_wctx.cur). */
static inline int
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
static inline int
wput(lmdb_wctx *c, int which, MDB_val *key, MDB_val *v, const char *what) {
	MDB_cursor *cur = NULL;
	int rc = wcur(c, which, &cur);
	if (rc < 0) {
		return rc;
	}
	int mrc = mdb_cursor_put(cur, key, v, 0);
	return mrc ? mdb_fail(c, mrc, what) : 0;
}

static inline int
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

static inline int
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

static inline void
rec_free(lmdb_rec *r) {
	if (r->j) {
		jobq_job_free(r->j);
		r->j = NULL;
	}
}

static inline MDB_dbi
dbi(const lmdb_env *e, int which) {
	return e->dbi[which];
}

static inline void
job_key(kb *k, const jobq_backend_queue *q, const char *id) {
	kb_q(k, q);
	kb_str(k, id);
}

static inline lmdb_qmeta *
meta(lmdb_wctx *c) {
	return &c->m; /* loaded by jobq_lmdb__op_run before the operation */
}

/* --- events ----------------------------------------------------------------------------------- */

static inline int
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

/* The id stored under the first key of `prefix` in `which`; 1 found, 0 none. */
static inline int
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

/* Deletes keys of `which` from `prefix` while `keep_going` says so (NULL: whole prefix). */
typedef int (*del_pred)(const MDB_val *key, const kb *prefix, void *arg);

typedef struct idlist {
	size_t n, cap;
	char (*ids)[JOBQ_ID_MAX + 1];
	int64_t *keyval; /* first 8-byte field of the key after the prefix (due, finished_on) */
} idlist;

typedef struct lock_args {
	const char *id, *token;
	int64_t lock_ms, now;
	const char *result;
	const jobq_keep *keep;
	const jobq_failure *f;
	uint32_t metrics; /* complete: the worker's metrics_max_points */
} lock_args;

/* lmdb_metrics.c: BullMQ's per-minute metrics (engine.h's engp_metrics_*), and the slot. */
int jobq_lmdb__metrics_get(lmdb_wctx *c, jobq_state s, int64_t m[3]);
int jobq_lmdb__metrics_set(lmdb_wctx *c, jobq_state s, const int64_t m[3]);
int jobq_lmdb__metrics_push(lmdb_wctx *c, jobq_state s, int64_t point, uint32_t zeros,
                            uint32_t max);
int jobq_lmdb__metrics(jobq_metrics **out, jobq_backend_queue *q, jobq_state kind, int64_t start,
                       int64_t end);

/* lmdb_records.c: queue settings, records, index entries, collecting ids. */
int jobq_lmdb__meta_read(lmdb_qmeta *m, const jobq_backend_queue *q, MDB_txn *txn);
/* The queue's settings and counters, read in a read transaction of their own (lmdb_read.c). */
int jobq_lmdb__meta_snapshot(lmdb_qmeta *m, jobq_backend_queue *q);
int jobq_lmdb__rec_load_txn(lmdb_rec *r, const jobq_backend_queue *q, MDB_txn *txn, const char *id,
                            int merge);
int jobq_lmdb__rec_load(lmdb_wctx *c, lmdb_rec *r, const char *id);
int jobq_lmdb__rec_load_idle(lmdb_wctx *c, lmdb_rec *r, const char *id);
int jobq_lmdb__rec_put(lmdb_wctx *c, const lmdb_rec *r);
int jobq_lmdb__run_write(lmdb_wctx *c, const char *id, const lmdb_run *run);
int jobq_lmdb__run_put(lmdb_wctx *c, const lmdb_rec *r);
int jobq_lmdb__idx_remove(lmdb_wctx *c, lmdb_rec *r);
int jobq_lmdb__to_wait(lmdb_wctx *c, lmdb_rec *r, int front);
int jobq_lmdb__to_prio(lmdb_wctx *c, lmdb_rec *r, int front);
int jobq_lmdb__make_ready(lmdb_wctx *c, lmdb_rec *r, int front);
int jobq_lmdb__to_delayed(lmdb_wctx *c, lmdb_rec *r, int64_t due);
int jobq_lmdb__to_active(lmdb_wctx *c, lmdb_rec *r);
int jobq_lmdb__to_finished(lmdb_wctx *c, lmdb_rec *r, jobq_state s);
void jobq_lmdb__idlist_free(idlist *l);
int jobq_lmdb__idlist_push(idlist *l, const MDB_val *id, int64_t keyval);
int jobq_lmdb__collect_active(idlist *out, const jobq_backend_queue *q, MDB_txn *txn, size_t offset,
                              size_t limit, const int64_t *expired);
int jobq_lmdb__collect(idlist *out, const jobq_backend_queue *q, MDB_txn *txn, jobq_state s,
                       int reverse, size_t offset, size_t limit, const int64_t *upto);

/* lmdb_txn.c: the operation runner (runs `fn` in one write transaction with the queue's settings
 * loaded, then writes its events and the settings), deleting jobs. */
int jobq_lmdb__del_prefix(lmdb_wctx *c, int which, const kb *prefix, del_pred pred, void *arg);
int jobq_lmdb__op_run(jobq_backend_queue *q, lmdb_write_fn fn, void *arg);
int jobq_lmdb__logs_prefix(kb *k, const jobq_backend_queue *q, const char *id);
int jobq_lmdb__dedup_key(kb *k, const jobq_backend_queue *q, const char *dedup_id);
/* Dedup key `did` names `owner`, without expiry and with nothing stashed. */
int jobq_lmdb__dedup_point(lmdb_wctx *c, const char *did, const char *owner);
/* Dedup key `did` names `owner`, without expiry, with job `r` (in no index) stashed. */
int jobq_lmdb__stash_put(lmdb_wctx *c, const char *did, const char *owner, const lmdb_rec *r);
/* The add stashed with dedup key `did`: 1 and its id (into `id`), and, when `r` is not NULL,
 * taken out of the key into `r` (a job in no index, timestamp `now`); 0 when there is none. */
int jobq_lmdb__stash_get(lmdb_wctx *c, const char *did, char *id, lmdb_rec *r, int64_t now);
int jobq_lmdb__job_erase(lmdb_wctx *c, lmdb_rec *r);

/* lmdb_active.c: lock-checked operations. complete_body and fail_body take a lock_args. */
int jobq_lmdb__load_locked(lmdb_wctx *c, lmdb_rec *r, const char *id, const char *token,
                           int64_t now);
int jobq_lmdb__extend_lock(jobq_backend_queue *q, const char *id, const char *token,
                           int64_t lock_ms, int64_t now_ms);
int jobq_lmdb__complete_body(lmdb_wctx *c, void *arg);
int jobq_lmdb__complete(jobq_backend_queue *q, const char *id, const char *token,
                        const char *result_json, const jobq_keep *keep, int64_t now_ms);
int jobq_lmdb__fail_body(lmdb_wctx *c, void *arg);
int jobq_lmdb__fail(jobq_backend_queue *q, const char *id, const char *token, const jobq_failure *f,
                    int64_t now_ms);
int jobq_lmdb__release(jobq_backend_queue *q, const char *id, const char *token, int64_t now_ms);
int jobq_lmdb__reap_stalled(jobq_strings **recovered, jobq_backend_queue *q, uint32_t max_stalled,
                            int64_t stalled_interval_ms, int64_t now_ms);

/* lmdb_add.c: the add slot. */
int jobq_lmdb__add(jobq_job_id *ids, int *outcomes, jobq_backend_queue *q,
                   const jobq_add_request *reqs, size_t n, int64_t now_ms);

/* lmdb_fetch.c: the fetch and complete_fetch slots. */
int jobq_lmdb__fetch(jobq_job **out, jobq_fetch_info *info, jobq_backend_queue *q,
                     const char *token, int64_t lock_ms, int64_t now_ms);
int jobq_lmdb__complete_fetch(jobq_job **jobs, jobq_fetch_info *info, jobq_backend_queue *q,
                              jobq_completion *done, size_t ndone, const char *const *tokens,
                              size_t max, int64_t lock_ms, int64_t now_ms);

/* lmdb_read.c: the read slots. */
int jobq_lmdb__get(jobq_job **out, jobq_backend_queue *q, const char *id);
int jobq_lmdb__list(jobq_job_list **out, jobq_backend_queue *q, jobq_state state, size_t offset,
                    size_t limit);
int jobq_lmdb__counts(jobq_counts *out, jobq_backend_queue *q);
int jobq_lmdb__is_paused(int *out, jobq_backend_queue *q);
int jobq_lmdb__get_logs(jobq_strings **out, jobq_backend_queue *q, const char *id, size_t start,
                        size_t limit);
int jobq_lmdb__events_read(jobq_event_list **out, jobq_backend_queue *q, const char *after,
                           size_t max, int64_t timeout_ms);
int jobq_lmdb__wait_for_work(jobq_backend_queue *q, jobq_clock *clock, int64_t timeout_ms);

/* lmdb_admin.c: the administration slots. */
int jobq_lmdb__remove(jobq_backend_queue *q, const char *id, int64_t now_ms);
/* lmdb_sched.c: the job scheduler slots */
int jobq_lmdb__scheduler_upsert(jobq_job_id *iteration, jobq_backend_queue *q, const char *id,
                                const jobq_scheduler_spec *spec, int64_t pattern_next_ms,
                                int64_t now_ms);
int jobq_lmdb__scheduler_get(jobq_scheduler **out, jobq_backend_queue *q, const char *id);
int jobq_lmdb__scheduler_list(jobq_scheduler_list **out, jobq_backend_queue *q);
int jobq_lmdb__scheduler_remove(jobq_backend_queue *q, const char *id, int64_t now_ms);
int jobq_lmdb__scheduler_next(jobq_backend_queue *q, const jobq_job *job, int64_t now_ms);
int jobq_lmdb__set_paused(jobq_backend_queue *q, int paused, int64_t now_ms);
int jobq_lmdb__drain(jobq_backend_queue *q, int include_delayed, int64_t now_ms);
int jobq_lmdb__clean(jobq_strings **removed, jobq_backend_queue *q, jobq_state state,
                     int64_t grace_ms, size_t limit, int64_t now_ms);
int jobq_lmdb__obliterate(jobq_backend_queue *q, int force, int64_t now_ms);
int jobq_lmdb__promote(jobq_backend_queue *q, const char *id, int64_t now_ms);
int jobq_lmdb__retry_failed(jobq_backend_queue *q, const char *id, int64_t now_ms);
int jobq_lmdb__progress(jobq_backend_queue *q, const char *id, const char *token, const char *json,
                        int64_t now_ms);
int jobq_lmdb__add_log(jobq_backend_queue *q, const char *id, const char *line, int64_t keep);

/* lmdb_limits.c: the queue limits. */
int jobq_lmdb__set_limits(jobq_backend_queue *q, const jobq_queue_limits *l, unsigned int what,
                          int64_t now_ms);
int jobq_lmdb__get_limits(jobq_queue_limits *out, jobq_backend_queue *q, int64_t now_ms);
int jobq_lmdb__rate_limit(jobq_backend_queue *q, int64_t ms, int64_t now_ms);

#endif
