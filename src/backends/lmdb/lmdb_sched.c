/*
 * LMDB backend: job schedulers, the vtable's scheduler slots, each one write transaction over
 * the engine's rules (engine/engine_sched.h, lmdb_sched.h) or one read.
 */
#include "lmdb_sched.h"

typedef struct sched_args {
	jobq_job_id *iteration;
	const char *id;
	size_t id_len;
	const jobq_scheduler_spec *spec;
	int64_t pattern_next, now;
} sched_args;

static int
upsert_body(lmdb_wctx *c, void *arg) {
	sched_args *a = arg;
	int rc = eng_sched_upsert(c, a->iteration, a->id, a->spec, a->pattern_next, a->now);
	if (rc > 0)
		c->bump_work = 1;
	return rc < 0 ? rc : 0;
}

int
jobq_lmdb__scheduler_upsert(jobq_job_id *iteration, jobq_backend_queue *q, const char *id,
                            const jobq_scheduler_spec *spec, int64_t pattern_next_ms,
                            int64_t now_ms) {
	sched_args a = {iteration, id, 0, spec, pattern_next_ms, now_ms};
	return jobq_lmdb__op_run(q, upsert_body, &a);
}

static int
next_body(lmdb_wctx *c, void *arg) {
	sched_args *a = arg;
	int rc = eng_sched_next(c, a->id, a->id_len, a->now);
	if (rc > 0)
		c->bump_work = 1;
	return rc;
}

int
jobq_lmdb__scheduler_next(jobq_backend_queue *q, const jobq_job *job, int64_t now_ms) {
	if (job == NULL || job->id == NULL)
		return jobq_error_set(JOBQ_EINVAL, "lmdb scheduler_next: no job");
	sched_args a = {NULL, job->id, strlen(job->id), NULL, 0, now_ms};
	return jobq_lmdb__op_run(q, next_body, &a);
}

static int
remove_body(lmdb_wctx *c, void *arg) {
	sched_args *a = arg;
	return eng_sched_remove(c, a->id, a->now);
}

int
jobq_lmdb__scheduler_remove(jobq_backend_queue *q, const char *id, int64_t now_ms) {
	sched_args a = {NULL, id, 0, NULL, 0, now_ms};
	return jobq_lmdb__op_run(q, remove_body, &a);
}

/* Reads scheduler `sid` (NULL: every one) of the queue into `list`, in one read. */
static int
sched_read(jobq_scheduler_list *list, jobq_backend_queue *q, const char *sid) {
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc = jobq_lmdb__read_begin(q->e, &txn);
	if (rc < 0)
		return rc;
	kb p;
	sched_key(&p, q, sid != NULL ? sid : "");
	int mrc = mdb_cursor_open(txn, dbi(q->e, DBI_META), &cur);
	if (mrc == 0) {
		MDB_val k = kv(&p), v;
		mrc = mdb_cursor_get(cur, &k, &v, sid != NULL ? MDB_SET_KEY : MDB_SET_RANGE);
		while (mrc == 0 && rc == 0 && k.mv_size >= p.n &&
		       memcmp(k.mv_data, p.b, p.n) == 0) {
			char id[JOBQ_ID_MAX + 1];
			size_t n = k.mv_size - (sid != NULL ? p.n - strlen(sid) : p.n);
			if (n > JOBQ_ID_MAX)
				n = JOBQ_ID_MAX;
			memcpy(id, (const char *)k.mv_data + k.mv_size - n, n);
			id[n] = '\0';
			jobq_scheduler *items =
			    jobq__realloc(list->items, (list->count + 1) * sizeof(*items));
			eng_sched s;
			if (items == NULL) {
				rc = jobq_error_set(JOBQ_ENOMEM, "lmdb: out of memory");
				break;
			}
			list->items = items;
			if ((rc = jobq_eng__sched_decode(&s, id, v.mv_data, v.mv_size)) < 0)
				break;
			rc = jobq_eng__sched_public(&list->items[list->count], id, &s);
			list->count++; /* freed with the list, whatever the copy holds */
			jobq_eng__sched_clear(&s);
			if (sid != NULL)
				break;
			mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		mdb_cursor_close(cur);
	}
	jobq_lmdb__read_end(q->e, txn);
	if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
		rc = jobq_lmdb__error(mrc, "reading job schedulers");
	return rc;
}

int
jobq_lmdb__scheduler_get(jobq_scheduler **out, jobq_backend_queue *q, const char *id) {
	jobq_scheduler_list *list = jobq__calloc(1, sizeof(*list));
	if (list == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "lmdb: out of memory");
	int rc = sched_read(list, q, id);
	if (rc == 0 && list->count == 0)
		rc = jobq_error_set(JOBQ_ENOTFOUND, "no job scheduler '%s' in queue '%s'", id,
		                    q->name);
	if (rc == 0 && (*out = jobq__malloc(sizeof(**out))) == NULL)
		rc = jobq_error_set(JOBQ_ENOMEM, "lmdb: out of memory");
	if (rc == 0) {
		**out = list->items[0];
		list->count = 0;
	}
	jobq_scheduler_list_free(list);
	return rc;
}

int
jobq_lmdb__scheduler_list(jobq_scheduler_list **out, jobq_backend_queue *q) {
	jobq_scheduler_list *list = jobq__calloc(1, sizeof(*list));
	if (list == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "lmdb: out of memory");
	int rc = sched_read(list, q, NULL);
	if (rc < 0) {
		jobq_scheduler_list_free(list);
		return rc;
	}
	jobq_eng__sched_sort(list->items, list->count);
	*out = list;
	return 0;
}
