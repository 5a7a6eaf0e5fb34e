/*
 * LMDB backend: the integrity check (jobq_store_check). In one read transaction it walks every
 * table (see lmdb_internal.h for the layout) and holds them against each other, per queue:
 *
 * - every job record decodes, and a job without a running entry sits in the index of its
 *   record's state, under the key its record names;
 * - every entry of the waiting, prioritized, delayed, completed and failed indexes names an
 *   existing job that is not running and whose record names this state and this key (so no
 *   job is in two indexes);
 * - every running entry (the active index) decodes and belongs to an existing job;
 * - the queue's counters equal its index sizes;
 * - dedup entries and events decode; log lines belong to existing jobs;
 * - no table holds entries of a queue that has no settings record.
 *
 * LMDB keeps no checksums: bytes changed inside a page are read back as they are, so this
 * check is what finds them, as far as they break one of the rules above. A page LMDB itself
 * finds broken (MDB_CORRUPTED, MDB_PAGE_NOTFOUND) is a problem too, and ends the walk of that
 * table.
 */
#include "lmdb_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct chk {
	jobq_check_report *r;
	size_t max;
	lmdb_env *e;
	MDB_txn *txn;
	int rc; /* JOBQ_ENOMEM once keeping a message failed */
} chk;

static void problem(chk *c, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void
problem(chk *c, const char *fmt, ...) {
	char line[480];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (jobq_check_report__problem(c->r, c->max, "%s", line) < 0) {
		c->rc = JOBQ_ENOMEM;
	}
}

/* A key or value shown in a message: at most 64 bytes, unprintable bytes as '?'. */
static const char *
shown(char *buf, const void *p, size_t n) {
	const unsigned char *s = p;
	size_t i = 0;
	for (; i < n && i < 64; i++) {
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	}
	buf[i] = '\0';
	return buf;
}

/* mdb_get: 1 found, 0 absent, -1 the table is broken (reported). */
static int
get(chk *c, const jobq_backend_queue *q, int which, MDB_val *key, MDB_val *v) {
	int mrc = mdb_get(c->txn, c->e->dbi[which], key, v);
	if (mrc == 0) {
		return 1;
	}
	if (mrc == MDB_NOTFOUND) {
		return 0;
	}
	problem(c, "queue '%s': table %s: %s", q->name, jobq_lmdb__dbi_name(which),
	        mdb_strerror(mrc));
	return -1;
}

/* Copies the job id of `p`/`n` into id (JOBQ_ID_MAX + 1 bytes); 0 if it is not one. */
static int
take_id(char *id, const void *p, size_t n) {
	if (n == 0 || n > JOBQ_ID_MAX || memchr(p, '\0', n)) {
		return 0;
	}
	memcpy(id, p, n);
	id[n] = '\0';
	return 1;
}

/* The record key of job `id` of `q` ("Q\0id") in buf (LMDB_KEY_MAX bytes). */
static MDB_val
job_key(unsigned char *buf, const jobq_backend_queue *q, const char *id) {
	size_t n = strlen(id);
	memcpy(buf, q->name, q->name_len + 1);
	memcpy(buf + q->name_len + 1, id, n);
	MDB_val k = {q->name_len + 1 + n, buf};
	return k;
}

typedef void (*entry_fn)(chk *c, const jobq_backend_queue *q, const MDB_val *k, const MDB_val *v,
                         void *arg);

/* Calls fn for every entry of table `which` whose key starts with "Q\0". */
static void
walk(chk *c, const jobq_backend_queue *q, int which, entry_fn fn, void *arg) {
	MDB_cursor *cur;
	int mrc = mdb_cursor_open(c->txn, c->e->dbi[which], &cur);
	if (mrc) {
		problem(c, "queue '%s': table %s: %s", q->name, jobq_lmdb__dbi_name(which),
		        mdb_strerror(mrc));
		return;
	}
	size_t plen = q->name_len + 1;
	MDB_val k = {plen, (void *)(uintptr_t)q->name}, v;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (mrc == 0 && c->rc == 0) {
		if (k.mv_size < plen || memcmp(k.mv_data, q->name, plen) != 0) {
			break;
		}
		c->r->entries += which == DBI_JOBS ? 0 : 1;
		fn(c, q, &k, &v, arg);
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (mrc && mrc != MDB_NOTFOUND) {
		problem(c, "queue '%s': table %s: %s", q->name, jobq_lmdb__dbi_name(which),
		        mdb_strerror(mrc));
	}
	mdb_cursor_close(cur);
}

typedef struct qstate {
	uint64_t in_index[JOBQ_STATE__COUNT];
} qstate;

typedef struct index_arg {
	jobq_state s;
	qstate *qs;
} index_arg;

static void
check_record(chk *c, const jobq_backend_queue *q, const MDB_val *k, const MDB_val *v, void *arg) {
	(void)arg;
	char id[JOBQ_ID_MAX + 1], show[80];
	size_t plen = q->name_len + 1;
	c->r->jobs++;
	if (!take_id(id, (const char *)k->mv_data + plen, k->mv_size - plen)) {
		problem(c, "queue '%s': a job record under a key that is no job id (\"%s\")",
		        q->name, shown(show, (const char *)k->mv_data + plen, k->mv_size - plen));
		return;
	}
	lmdb_rec r;
	memset(&r, 0, sizeof(r));
	if (jobq_lmdb__rec_decode(&r, id, v->mv_data, v->mv_size) < 0) {
		problem(c, "queue '%s': job %s: its record does not decode (%s)", q->name, id,
		        jobq_error_message());
		return;
	}
	MDB_val key = *k, run;
	int found = get(c, q, DBI_ACTIVE, &key, &run);
	jobq_state s = r.j->state;
	int d = jobq_lmdb__state_dbi(s);
	if (found == 0 && (d < 0 || s == JOBQ_STATE_ACTIVE)) {
		/* an active job's record keeps its state from before the fetch: never active */
		problem(c, "queue '%s': job %s: its record says %s, which no index holds", q->name,
		        id, jobq_state_name(s));
	} else if (found == 0) {
		unsigned char buf[LMDB_KEY_MAX];
		MDB_val ik = {jobq_lmdb__idx_key(buf, q, s, r.ia, r.ib), buf}, iv;
		int in = get(c, q, d, &ik, &iv);
		if (in == 0) {
			problem(c,
			        "queue '%s': job %s: its record says %s but it is not in that "
			        "index",
			        q->name, id, jobq_state_name(s));
		} else if (in == 1 &&
		           (iv.mv_size != strlen(id) || memcmp(iv.mv_data, id, iv.mv_size) != 0)) {
			problem(c, "queue '%s': job %s: its place in the %s index holds job \"%s\"",
			        q->name, id, jobq_state_name(s),
			        shown(show, iv.mv_data, iv.mv_size));
		}
	}
	jobq_job_free(r.j);
}

static void
check_index_entry(chk *c, const jobq_backend_queue *q, const MDB_val *k, const MDB_val *v,
                  void *arg) {
	const index_arg *a = arg;
	jobq_state s = a->s;
	qstate *qs = a->qs;
	char id[JOBQ_ID_MAX + 1], show[80];
	qs->in_index[s]++;
	if (!take_id(id, v->mv_data, v->mv_size)) {
		problem(c, "queue '%s': an entry of the %s index holds no job id (\"%s\")", q->name,
		        jobq_state_name(s), shown(show, v->mv_data, v->mv_size));
		return;
	}
	unsigned char buf[LMDB_KEY_MAX];
	MDB_val jk = job_key(buf, q, id), rv, run;
	int found = get(c, q, DBI_JOBS, &jk, &rv);
	if (found == 0) {
		problem(c, "queue '%s': the %s index names job %s, which does not exist", q->name,
		        jobq_state_name(s), id);
	}
	if (found != 1) {
		return;
	}
	lmdb_peek pk;
	if (jobq_lmdb__rec_peek(&pk, rv.mv_data, rv.mv_size) < 0) {
		return; /* reported with the record */
	}
	jk = job_key(buf, q, id);
	if (get(c, q, DBI_ACTIVE, &jk, &run) == 1) {
		problem(c, "queue '%s': job %s is active but also in the %s index", q->name, id,
		        jobq_state_name(s));
		return;
	}
	unsigned char want[LMDB_KEY_MAX];
	size_t wn = jobq_lmdb__idx_key(want, q, (jobq_state)pk.state, pk.ia, pk.ib);
	if ((jobq_state)pk.state != s) {
		problem(c, "queue '%s': job %s is in the %s index but its record says %s", q->name,
		        id, jobq_state_name(s), jobq_state_name((jobq_state)pk.state));
	} else if (wn != k->mv_size || memcmp(want, k->mv_data, wn) != 0) {
		problem(c, "queue '%s': job %s has a second entry in the %s index", q->name, id,
		        jobq_state_name(s));
	}
}

static void
check_running(chk *c, const jobq_backend_queue *q, const MDB_val *k, const MDB_val *v, void *arg) {
	qstate *qs = arg;
	char id[JOBQ_ID_MAX + 1], show[80];
	size_t plen = q->name_len + 1;
	qs->in_index[JOBQ_STATE_ACTIVE]++;
	if (!take_id(id, (const char *)k->mv_data + plen, k->mv_size - plen)) {
		problem(c, "queue '%s': a running entry under a key that is no job id (\"%s\")",
		        q->name, shown(show, (const char *)k->mv_data + plen, k->mv_size - plen));
		return;
	}
	lmdb_run run;
	if (jobq_lmdb__run_decode(&run, v->mv_data, v->mv_size) < 0) {
		problem(c, "queue '%s': job %s: its running entry does not decode", q->name, id);
	}
	MDB_val jk = *k, rv;
	if (get(c, q, DBI_JOBS, &jk, &rv) == 0) {
		problem(c, "queue '%s': job %s is active but has no record", q->name, id);
	}
}

static void
check_dedup(chk *c, const jobq_backend_queue *q, const MDB_val *k, const MDB_val *v, void *arg) {
	(void)arg;
	char owner[JOBQ_ID_MAX + 1], show[80];
	int64_t expires;
	size_t plen = q->name_len + 1;
	if (jobq_lmdb__dedup_decode(owner, sizeof(owner), &expires, v->mv_data, v->mv_size) < 0) {
		problem(c, "queue '%s': dedup entry \"%s\" does not decode", q->name,
		        shown(show, (const char *)k->mv_data + plen, k->mv_size - plen));
	}
}

static void
check_log(chk *c, const jobq_backend_queue *q, const MDB_val *k, const MDB_val *v, void *arg) {
	(void)v;
	(void)arg;
	char id[JOBQ_ID_MAX + 1], show[80];
	size_t plen = q->name_len + 1;
	const char *p = (const char *)k->mv_data + plen;
	const char *nul = memchr(p, '\0', k->mv_size - plen);
	if (!nul || !take_id(id, p, (size_t)(nul - p))) {
		problem(c, "queue '%s': a log line under a key that names no job (\"%s\")", q->name,
		        shown(show, p, k->mv_size - plen));
		return;
	}
	unsigned char buf[LMDB_KEY_MAX];
	MDB_val jk = job_key(buf, q, id), rv;
	if (get(c, q, DBI_JOBS, &jk, &rv) == 0) {
		problem(c, "queue '%s': log lines of job %s, which does not exist", q->name, id);
	}
}

static void
check_events(chk *c, const jobq_backend_queue *q, const MDB_val *k, const MDB_val *v, void *arg) {
	(void)k;
	(void)arg;
	size_t off = 0;
	while (off < v->mv_size) {
		size_t used = 0;
		if (jobq_lmdb__event_decode_append(NULL, "0", (const char *)v->mv_data + off,
		                                   v->mv_size - off, &used) < 0 ||
		    used == 0) {
			problem(c, "queue '%s': an event entry does not decode", q->name);
			return;
		}
		off += used;
	}
}

static void
check_queue(chk *c, const MDB_val *name, const MDB_val *metav) {
	jobq_backend_queue q;
	memset(&q, 0, sizeof(q));
	q.e = c->e;
	memcpy(q.name, name->mv_data, name->mv_size);
	q.name_len = name->mv_size;
	c->r->queues++;
	lmdb_qmeta m;
	int meta_ok = jobq_lmdb__qmeta_decode(&m, metav->mv_data, metav->mv_size) == 0;
	if (!meta_ok) {
		problem(c, "queue '%s': its settings and counters do not decode", q.name);
	}
	qstate qs;
	memset(&qs, 0, sizeof(qs));
	index_arg ix = {JOBQ_STATE_UNKNOWN, &qs};
	walk(c, &q, DBI_JOBS, check_record, NULL);
	static const jobq_state idle[] = {JOBQ_STATE_WAITING, JOBQ_STATE_PRIORITIZED,
	                                  JOBQ_STATE_DELAYED, JOBQ_STATE_COMPLETED,
	                                  JOBQ_STATE_FAILED};
	for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++) {
		ix.s = idle[i];
		walk(c, &q, jobq_lmdb__state_dbi(idle[i]), check_index_entry, &ix);
	}
	walk(c, &q, DBI_ACTIVE, check_running, &qs);
	walk(c, &q, DBI_DEDUP, check_dedup, NULL);
	walk(c, &q, DBI_LOGS, check_log, NULL);
	walk(c, &q, DBI_EVENTS, check_events, NULL);
	for (int s = JOBQ_STATE_WAITING; meta_ok && s <= JOBQ_STATE_FAILED; s++) {
		if ((uint64_t)m.counts[s] != qs.in_index[s]) {
			problem(
			    c,
			    "queue '%s': its counter says %" PRId64 " %s, the index holds %" PRIu64,
			    q.name, m.counts[s], jobq_state_name((jobq_state)s), qs.in_index[s]);
		}
	}
}

/* Reports entries of per-queue table `which` whose key names no queue with settings. */
static void
check_orphans(chk *c, int which) {
	MDB_cursor *cur, *qc;
	if (mdb_cursor_open(c->txn, c->e->dbi[which], &cur) != 0) {
		return;
	}
	if (mdb_cursor_open(c->txn, c->e->dbi[DBI_QUEUES], &qc) != 0) {
		mdb_cursor_close(cur);
		return;
	}
	MDB_val k, v;
	char show[80];
	int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (mrc == 0 && c->rc == 0) {
		const char *nul = memchr(k.mv_data, '\0', k.mv_size);
		size_t qlen = nul ? (size_t)(nul - (const char *)k.mv_data) : k.mv_size;
		MDB_val qk = {qlen, k.mv_data}, qv;
		if (!nul || qlen == 0 || qlen > JOBQ_QUEUE_NAME_MAX ||
		    mdb_cursor_get(qc, &qk, &qv, MDB_SET) != 0) {
			problem(c, "table %s: entries of no known queue (\"%s\")",
			        jobq_lmdb__dbi_name(which), shown(show, k.mv_data, qlen));
		}
		if (!nul || qlen > JOBQ_QUEUE_NAME_MAX) {
			mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		/* on to the next queue's entries: the first key after "Q\0..." */
		unsigned char next[JOBQ_QUEUE_NAME_MAX + 2];
		memcpy(next, k.mv_data, qlen);
		next[qlen] = 1;
		k.mv_size = qlen + 1;
		k.mv_data = next;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	}
	if (mrc && mrc != MDB_NOTFOUND) {
		problem(c, "table %s: %s", jobq_lmdb__dbi_name(which), mdb_strerror(mrc));
	}
	mdb_cursor_close(qc);
	mdb_cursor_close(cur);
}

int
jobq_lmdb__check(jobq_check_report *report, jobq_backend *b, size_t max_messages) {
	chk c = {.r = report, .max = max_messages, .e = ((lmdb_backend *)b)->e};
	int rc = jobq_lmdb__read_begin(c.e, &c.txn);
	if (rc < 0) {
		return rc;
	}
	MDB_val fk = {6, (void *)(uintptr_t) "format"}, fv;
	int mrc = mdb_get(c.txn, c.e->dbi[DBI_META], &fk, &fv);
	if (mrc) {
		problem(&c, "table meta: the format record: %s", mdb_strerror(mrc));
	}
	MDB_cursor *cur;
	mrc = mdb_cursor_open(c.txn, c.e->dbi[DBI_QUEUES], &cur);
	if (mrc == 0) {
		MDB_val k, v;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		while (mrc == 0 && c.rc == 0) {
			if (k.mv_size == 0 || k.mv_size > JOBQ_QUEUE_NAME_MAX ||
			    memchr(k.mv_data, '\0', k.mv_size)) {
				char show[80];
				problem(&c, "table queues: a key that is no queue name (\"%s\")",
				        shown(show, k.mv_data, k.mv_size));
			} else {
				check_queue(&c, &k, &v);
			}
			mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		mdb_cursor_close(cur);
	}
	if (mrc && mrc != MDB_NOTFOUND) {
		problem(&c, "table queues: %s", mdb_strerror(mrc));
	}
	for (int i = DBI_JOBS; i < DBI__COUNT && c.rc == 0; i++) {
		check_orphans(&c, i);
	}
	jobq_lmdb__read_end(c.e, c.txn);
	if (c.rc < 0) {
		return jobq_error_set(c.rc, "lmdb: %s: checking the store: out of memory",
		                      c.e->path);
	}
	return 0;
}
