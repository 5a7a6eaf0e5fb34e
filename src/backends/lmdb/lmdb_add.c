/*
 * LMDB backend: adding jobs (one transaction per batch). See lmdb_ops.h for what the files of
 * the operations share.
 */
#include "lmdb_prims.h"

static int
check_id(const char *id) {
	if (!id || !*id || strlen(id) > JOBQ_ID_MAX) {
		return jobq_error_set(JOBQ_EINVAL, "lmdb: job id must be 1..%d bytes", JOBQ_ID_MAX);
	}
	return 0;
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

/* The record of a new job `id` for request `req`, in no index, borrowing the request's name,
 * data and options (it is only encoded). */
static void
job_init(jobq_job *j, const jobq_add_request *req, char *id, int64_t now) {
	const jobq_job_options *o = req->opts;
	memset(j, 0, sizeof(*j));
	j->id = id;
	j->opts = *o;
	j->timestamp = o->timestamp ? o->timestamp : now;
	j->delay_ms = o->delay_ms > 0 ? o->delay_ms : 0;
	j->priority = o->priority;
	j->name = (char *)(uintptr_t)(req->name ? req->name : "");
	j->data = (void *)(uintptr_t)(req->len ? req->data : "");
	j->data_len = req->len;
	j->state = ENG_GONE;
}

/* An add deduplicated by `owner`'s live key: stashed with the key when eng_dedup_stashes says
 * so (keepLastIfActive while the owner is active). */
static int
stash_if_active(lmdb_wctx *c, const jobq_add_request *req, const char *owner, char *id,
                int64_t now) {
	lmdb_rec orec = {0};
	int rc = req->opts->dedup_keep_last ? jobq_lmdb__rec_load(c, &orec, owner) : 0;
	if (rc <= 0) {
		return rc;
	}
	int stash = eng_dedup_stashes(req->opts, orec.j->state);
	rec_free(&orec);
	if (!stash) {
		return 0;
	}
	jobq_job j;
	lmdb_rec r = {.j = &j};
	job_init(&j, req, id, now);
	return jobq_lmdb__stash_put(c, req->opts->dedup_id, owner, &r);
}

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
			return engp_event(c, ENG_EV_DUPLICATED, id, strlen(id), 0, 0, NULL, NULL);
		}
		if (mrc != MDB_NOTFOUND) {
			return mdb_fail(c, mrc, "reading a job");
		}
	} else {
		jobq__u64_dec(id, (uint64_t)ctr);
	}

	if (o->dedup_id && *o->dedup_id) {
		kb k;
		int rc = jobq_lmdb__dedup_key(&k, c->q, o->dedup_id);
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
			if (live && (rc = stash_if_active(c, req, owner, id, now)) < 0) {
				return rc;
			}
			if (live) {
				snprintf(id_out->str, sizeof(id_out->str), "%s", owner);
				*outcome = JOBQ_ADD_DEDUPLICATED;
				return engp_event(c, ENG_EV_DEDUPLICATED, owner, strlen(owner), 0,
				                  0, o->dedup_id, id);
			}
		} else if (mrc != MDB_NOTFOUND) {
			return mdb_fail(c, mrc, "reading a dedup key");
		}
		lmdb_buf b;
		rc = jobq_lmdb__dedup_encode(&b, id, eng_dedup_expiry(o, now), NULL, NULL, 0);
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

	jobq_job j;
	lmdb_rec r = {.j = &j};
	job_init(&j, req, id, now);
	int rc = eng_place_new(c, &r, j.name, j.timestamp);
	if (rc > 0) {
		rc = 0;
	}
	if (rc == 0) {
		rc = jobq_lmdb__rec_put(c, &r);
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

int
jobq_lmdb__add(jobq_job_id *ids, int *outcomes, jobq_backend_queue *q, const jobq_add_request *reqs,
               size_t n, int64_t now_ms) {
	add_args a = {ids, outcomes, reqs, n, now_ms};
	return jobq_lmdb__op_run(q, add_body, &a);
}
