/*
 * LMDB backend: where BullMQ's per-minute metrics are kept (table `metrics`, see
 * lmdb_internal.h; the rule that keeps them is the engine's eng_metrics_count), and the
 * metrics slot. The counters change with every finish counted, the points once a minute, so
 * they are two entries.
 */
#include <stdlib.h>
#include <string.h>

#include "lmdb_ops.h"

/* The key of the counters of `s` (data: the points). */
static void
metrics_key(kb *k, const jobq_backend_queue *q, jobq_state s, int data) {
	kb_q(k, q);
	kb_str(k, s == JOBQ_STATE_FAILED ? "failed" : "completed");
	if (data)
		kb_str(k, ":data");
}

static void
wr_i64(unsigned char *p, int64_t v) {
	uint64_t u = (uint64_t)v;
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(u & 0xff);
		u >>= 8;
	}
}

/* The entry `key` of the table in `txn`: 1 and *v, 0 if none. */
static int
metrics_find(MDB_txn *txn, const jobq_backend_queue *q, kb *key, MDB_val *v) {
	MDB_val k = kv(key);
	int mrc = mdb_get(txn, q->e->dbi[DBI_METRICS], &k, v);
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc)
		return jobq_lmdb__error(mrc, "reading metrics");
	if (v->mv_size % 8 != 0)
		return jobq_error_set(JOBQ_EIO, "lmdb: queue %s: a metrics entry of %zu bytes",
		                      q->name, v->mv_size);
	return 1;
}

int
jobq_lmdb__metrics_get(lmdb_wctx *c, jobq_state s, int64_t m[3]) {
	kb k;
	metrics_key(&k, c->q, s, 0);
	MDB_val v;
	int rc = metrics_find(c->txn, c->q, &k, &v);
	if (rc <= 0)
		return rc;
	if (v.mv_size != 24)
		return jobq_error_set(JOBQ_EIO, "lmdb: queue %s: metrics counters of %zu bytes",
		                      c->q->name, v.mv_size);
	for (int i = 0; i < 3; i++)
		m[i] = (int64_t)rd_u64((const unsigned char *)v.mv_data + 8 * i);
	return 1;
}

int
jobq_lmdb__metrics_set(lmdb_wctx *c, jobq_state s, const int64_t m[3]) {
	kb k;
	metrics_key(&k, c->q, s, 0);
	unsigned char b[24];
	for (int i = 0; i < 3; i++)
		wr_i64(b + 8 * i, m[i]);
	MDB_val key = kv(&k), v = {sizeof(b), b};
	return wput(c, DBI_METRICS, &key, &v, "writing metrics");
}

int
jobq_lmdb__metrics_push(lmdb_wctx *c, jobq_state s, int64_t point, uint32_t zeros, uint32_t max) {
	kb k;
	metrics_key(&k, c->q, s, 1);
	MDB_val v = {0, NULL};
	int rc = metrics_find(c->txn, c->q, &k, &v);
	if (rc < 0)
		return rc;
	size_t old = v.mv_size / 8, add = (size_t)zeros + 1;
	size_t keep = old < max - add ? old : max - add;
	unsigned char *b = jobq__calloc(add + keep, 8);
	if (b == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "lmdb: out of memory for metrics");
	wr_i64(b + 8 * zeros, point);
	if (keep > 0)
		memcpy(b + 8 * add, v.mv_data, keep * 8); /* (v is valid until the next write) */
	MDB_val key = kv(&k), nv = {(add + keep) * 8, b};
	rc = wput(c, DBI_METRICS, &key, &nv, "writing metrics");
	jobq__free(b);
	return rc;
}

int
jobq_lmdb__metrics(jobq_metrics **out, jobq_backend_queue *q, jobq_state kind, int64_t start,
                   int64_t end) {
	jobq_metrics *m = jobq__calloc(1, sizeof(*m));
	if (m == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "lmdb: out of memory reading metrics");
	MDB_txn *txn;
	int rc = jobq_lmdb__read_begin(q->e, &txn);
	if (rc < 0) {
		jobq__free(m);
		return rc;
	}
	kb k;
	metrics_key(&k, q, kind, 0);
	MDB_val v;
	rc = metrics_find(txn, q, &k, &v);
	if (rc > 0 && v.mv_size >= 24) {
		m->count = (int64_t)rd_u64(v.mv_data);
		m->prev_ts = (int64_t)rd_u64((const unsigned char *)v.mv_data + 8);
		m->prev_count = (int64_t)rd_u64((const unsigned char *)v.mv_data + 16);
	}
	metrics_key(&k, q, kind, 1);
	if (rc >= 0 && (rc = metrics_find(txn, q, &k, &v)) > 0) {
		size_t first = 0, n = 0;
		m->points = v.mv_size / 8;
		jobq__range_clip(&first, &n, m->points, start, end);
		if (n > 0 && (m->data = jobq__malloc(n * sizeof(*m->data))) == NULL)
			rc = jobq_error_set(JOBQ_ENOMEM, "lmdb: out of memory reading metrics");
		for (size_t i = 0; m->data != NULL && i < n; i++)
			m->data[i] =
			    (int64_t)rd_u64((const unsigned char *)v.mv_data + 8 * (first + i));
		m->data_len = m->data != NULL ? n : 0;
	}
	jobq_lmdb__read_end(q->e, txn);
	if (rc < 0) {
		jobq_metrics_free(m);
		return rc;
	}
	*out = m;
	return 0;
}
