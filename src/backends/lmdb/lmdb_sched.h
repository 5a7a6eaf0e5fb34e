/*
 * The LMDB backend's primitives for the job scheduler rules (engine/engine_sched.h): each
 * scheduler's record in the `meta` table under "sched\0<queue>\0<id>" (the text of
 * jobq_eng__sched_encode), and jobs found or created by id, in the operation's write
 * transaction.
 */
#ifndef JOBQ_LMDB_SCHED_H
#define JOBQ_LMDB_SCHED_H

#include "lmdb_prims.h"
#include "engine/sched_rec.h"

/* The key of scheduler `sid` of the queue ("" : the prefix of them all). */
static inline void
sched_key(kb *k, const jobq_backend_queue *q, const char *sid) {
	k->n = 0;
	k->overflow = 0;
	kb_bytes(k, "sched", 6); /* with its NUL */
	kb_bytes(k, q->name, q->name_len + 1);
	kb_str(k, sid);
}

static inline int
engp_sched_get(lmdb_wctx *c, const char *sid, const char **text, size_t *len) {
	kb k;
	sched_key(&k, c->q, sid);
	MDB_val key = kv(&k), v;
	int mrc = mdb_get(c->txn, dbi(c->e, DBI_META), &key, &v);
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc)
		return mdb_fail(c, mrc, "reading a job scheduler");
	*text = v.mv_data;
	*len = v.mv_size;
	return 1;
}

static inline int
engp_sched_put(lmdb_wctx *c, const char *sid, const char *text, size_t len) {
	kb k;
	sched_key(&k, c->q, sid);
	MDB_val key = kv(&k), v = {len, (void *)(uintptr_t)text};
	return wput(c, DBI_META, &key, &v, "writing a job scheduler");
}

static inline int
engp_sched_del(lmdb_wctx *c, const char *sid) {
	kb k;
	sched_key(&k, c->q, sid);
	MDB_val key = kv(&k);
	return wdel(c, DBI_META, &key, "deleting a job scheduler");
}

static inline int
engp_find(lmdb_wctx *c, const char *id, lmdb_rec *space, lmdb_rec **out) {
	int rc = jobq_lmdb__rec_load(c, space, id);
	if (rc > 0)
		*out = space;
	return rc;
}

/* Nothing to set aside: a failure later in the step aborts its transaction. */
static inline int
engp_prepare(lmdb_wctx *c, const char *id, const char *name, const char *data, size_t len,
             const jobq_job_options *o, lmdb_rec *space) {
	(void)c;
	(void)id;
	(void)name;
	(void)data;
	(void)len;
	(void)o;
	(void)space;
	return 0;
}

static inline void
engp_unprepare(lmdb_wctx *c, lmdb_rec *space) {
	(void)c;
	(void)space;
}

/* A new job record owned by `space` (engp_done frees it); the caller places and saves it. */
static inline int
engp_create(lmdb_wctx *c, const char *id, const char *name, const char *data, size_t len,
            const jobq_job_options *o, int64_t timestamp, lmdb_rec *space, lmdb_rec **out) {
	jobq_job *j = jobq_job__new();
	const char *custom = o->backoff.custom_type;
	if (j != NULL) {
		j->opts = *o;
		j->id = jobq__strdup(id);
		j->opts.dedup_id = NULL;
		j->opts.backoff.custom_type = custom != NULL ? jobq__strdup(custom) : NULL;
		j->name = jobq__strdup(name);
		if ((j->data = jobq__malloc(len + 1)) != NULL) {
			memcpy(j->data, data, len);
			((char *)j->data)[len] = '\0';
		}
		j->opts.job_id = j->id != NULL ? jobq__strdup(id) : NULL;
	}
	memset(space, 0, sizeof(*space));
	space->j = j;
	if (j == NULL || j->id == NULL || j->opts.job_id == NULL || j->name == NULL ||
	    j->data == NULL || (custom != NULL && j->opts.backoff.custom_type == NULL)) {
		rec_free(space);
		return jobq_error_set(JOBQ_ENOMEM, "lmdb: out of memory adding job %s", id);
	}
	j->data_len = len;
	j->timestamp = timestamp;
	j->delay_ms = o->delay_ms > 0 ? o->delay_ms : 0;
	j->priority = o->priority;
	j->state = ENG_GONE;
	meta(c)->counter++;
	*out = space;
	return 0;
}

#include "engine/engine_sched.h"

#endif
