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
#include <sys/stat.h>
#include <unistd.h>

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

/* --- the B-trees' structure, read from the file ------------------------------------------------
 *
 * LMDB follows page numbers without checking them, and a number past the end of the file
 * faults (SIGBUS) when its page is read through the map. So before any table is read through
 * LMDB, every page the snapshot reaches is read with pread and checked: its header names its own
 * number, a branch's children and a leaf's overflow pages lie inside the file, node offsets and
 * sizes fit the page. The facts of LMDB 0.9's file format used here: a page starts with its
 * number (8 bytes), 2 bytes of padding, 2 of flags, then lower/upper bounds (2 + 2) or an
 * overflow page count (4), then 2-byte node offsets; a node has 2 + 2 bytes of data size (a
 * child page number in a branch, whose upper 16 bits are in the 2 flag bytes), 2 of flags,
 * 2 of key size, then key and data. The meta page holds, after 24 bytes, the free and main
 * databases' records (48 bytes each: root page last), the last page and the transaction id.
 */

enum {
	PG_HDR = 16,
	PG_BRANCH = 0x01,
	PG_LEAF = 0x02,
	PG_OVERFLOW = 0x04,
	PG_LEAF2 = 0x20,
	NODE_HDR = 8,
	NODE_BIG = 0x01,
	NODE_SUBDB = 0x02,
	NODE_DUP = 0x04,
	DB_REC = 48,
	META_DBS = PG_HDR + 24,
	MAX_DEPTH = 32
};

typedef struct tree {
	chk *c;
	int fd;
	size_t psize;
	uint64_t npages;
	unsigned char *page; /* one buffer per depth: (MAX_DEPTH + 1) * psize */
	int bad;
} tree;

static uint64_t
le(const unsigned char *p, int n) {
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return v;
}

static int
read_page(tree *t, uint64_t pgno, unsigned char *buf) {
	ssize_t n = pread(t->fd, buf, t->psize, (off_t)(pgno * t->psize));
	return n == (ssize_t)t->psize ? 0 : -1;
}

static void
tree_problem(tree *t, const char *table, uint64_t pgno, const char *what) {
	t->bad = 1;
	problem(t->c, "table %s: page %" PRIu64 " %s", table, pgno, what);
}

static void walk_tree(tree *t, const char *table, uint64_t pgno, int depth, int main_db);

/* A database record (DB_REC bytes) found in the main database: walks its tree. */
static void
walk_db_record(tree *t, const char *table, const unsigned char *rec, int depth) {
	uint64_t root = le(rec + 40, 8);
	if (root != UINT64_MAX) {
		walk_tree(t, table, root, depth, 0);
	}
}

static void
walk_leaf_node(tree *t, const char *table, uint64_t pgno, const unsigned char *node, size_t room,
               int depth, int main_db) {
	size_t dsize = (size_t)le(node, 2) | (size_t)le(node + 2, 2) << 16;
	unsigned flags = (unsigned)le(node + 4, 2);
	size_t ksize = (size_t)le(node + 6, 2);
	size_t need = NODE_HDR + ksize + ((flags & NODE_BIG) ? 8 : dsize);
	if (need > room) {
		tree_problem(t, table, pgno, "has a node larger than the page");
		return;
	}
	const unsigned char *data = node + NODE_HDR + ksize;
	if (flags & NODE_BIG) {
		uint64_t ov = le(data, 8);
		uint64_t count = (dsize + PG_HDR + t->psize - 1) / t->psize;
		unsigned char *buf = t->page + (size_t)(depth + 1) * t->psize; /* not the leaf's */
		if (ov < 2 || ov + count > t->npages || read_page(t, ov, buf) < 0 ||
		    le(buf, 8) != ov || !(le(buf + 10, 2) & PG_OVERFLOW) ||
		    le(buf + 12, 4) < count) {
			tree_problem(t, table, pgno,
			             "names overflow pages outside the file or not "
			             "overflow pages");
		}
		return;
	}
	if (main_db && (flags & NODE_SUBDB)) {
		char name[64];
		size_t n = ksize < sizeof(name) - 1 ? ksize : sizeof(name) - 1;
		shown(name, node + NODE_HDR, n);
		if (dsize != DB_REC) {
			tree_problem(t, table, pgno, "holds a table record of the wrong size");
			return;
		}
		walk_db_record(t, name, data, depth + 1);
	} else if (flags & (NODE_SUBDB | NODE_DUP)) {
		tree_problem(t, table, pgno, "has duplicate-key nodes, which jobq never writes");
	}
}

static void
walk_tree(tree *t, const char *table, uint64_t pgno, int depth, int main_db) {
	if (t->bad || t->c->rc) {
		return;
	}
	if (depth >= MAX_DEPTH) {
		tree_problem(t, table, pgno, "is deeper than any LMDB tree (a cycle)");
		return;
	}
	unsigned char *p = t->page + (size_t)depth * t->psize;
	if (pgno < 2 || pgno >= t->npages) {
		tree_problem(t, table, pgno, "is named but lies outside the file");
		return;
	}
	if (read_page(t, pgno, p) < 0) {
		tree_problem(t, table, pgno, "cannot be read");
		return;
	}
	unsigned flags = (unsigned)le(p + 10, 2);
	size_t lower = (size_t)le(p + 12, 2), upper = (size_t)le(p + 14, 2);
	if (le(p, 8) != pgno || !(flags & (PG_BRANCH | PG_LEAF)) || (flags & PG_LEAF2) ||
	    lower < PG_HDR || lower > upper || upper > t->psize) {
		tree_problem(t, table, pgno, "is not a B-tree page (header damaged)");
		return;
	}
	size_t nkeys = (lower - PG_HDR) / 2;
	for (size_t i = 0; i < nkeys && !t->bad; i++) {
		size_t off = (size_t)le(p + PG_HDR + 2 * i, 2);
		if (off < upper || off + NODE_HDR > t->psize) {
			tree_problem(t, table, pgno, "has a node outside its bounds");
			return;
		}
		const unsigned char *node = p + off;
		if (flags & PG_BRANCH) {
			uint64_t child =
			    le(node, 2) | le(node + 2, 2) << 16 | le(node + 4, 2) << 32;
			if (off + NODE_HDR + le(node + 6, 2) > t->psize) {
				tree_problem(t, table, pgno, "has a node larger than the page");
				return;
			}
			walk_tree(t, table, child, depth + 1, main_db);
			p = t->page +
			    (size_t)depth * t->psize; /* (unchanged: one buffer per depth) */
		} else {
			walk_leaf_node(t, table, pgno, node, t->psize - off, depth, main_db);
		}
	}
}

/*
 * Checks the structure of every tree of the snapshot of `txn`. Returns 0 if sound (or if the
 * snapshot's meta page was rewritten meanwhile, so it cannot be read: writers are busy; the
 * tables are then read through LMDB unchecked), -1 if a problem was reported.
 */
static int
check_structure(chk *c) {
	MDB_stat st;
	int fd;
	if (mdb_env_stat(c->e->env, &st) != 0 || mdb_env_get_fd(c->e->env, &fd) != 0) {
		return 0;
	}
	tree t = {.c = c, .fd = fd, .psize = st.ms_psize};
	unsigned char *meta = jobq__malloc(t.psize);
	t.page = jobq__malloc((size_t)MAX_DEPTH * t.psize + t.psize);
	if (!meta || !t.page) {
		jobq__free(meta);
		jobq__free(t.page);
		c->rc = JOBQ_ENOMEM;
		return -1;
	}
	uint64_t want = (uint64_t)mdb_txn_id(c->txn);
	int found = 0;
	for (uint64_t m = 0; m < 2 && !found; m++) {
		if (read_page(&t, m, meta) == 0 &&
		    le(meta + META_DBS + 2 * DB_REC + 8, 8) == want) {
			found = 1;
		}
	}
	struct stat fs;
	if (found && fstat(fd, &fs) == 0) {
		t.npages = le(meta + META_DBS + 2 * DB_REC, 8) + 1;
		if ((uint64_t)fs.st_size / t.psize < t.npages) {
			problem(c,
			        "data.mdb has %lld bytes, less than its %" PRIu64 " pages in use",
			        (long long)fs.st_size, t.npages);
			t.bad = 1;
		}
		walk_db_record(&t, "(free pages)", meta + META_DBS, 0);
		if (!t.bad) {
			uint64_t root = le(meta + META_DBS + DB_REC + 40, 8);
			if (root != UINT64_MAX) {
				walk_tree(&t, "(main)", root, 0, 1);
			}
		}
	}
	jobq__free(meta);
	jobq__free(t.page);
	return t.bad ? -1 : 0;
}

int
jobq_lmdb__check(jobq_check_report *report, jobq_backend *b, size_t max_messages) {
	chk c = {.r = report, .max = max_messages, .e = ((lmdb_backend *)b)->e};
	int rc = jobq_lmdb__read_begin(c.e, &c.txn);
	if (rc < 0) {
		return rc;
	}
	if (check_structure(&c) < 0) {
		/* reading the tables through LMDB could fault on such pages */
		if (c.rc == 0) {
			problem(&c, "the tables were not read: their pages are damaged");
		}
		jobq_lmdb__read_end(c.e, c.txn);
		return c.rc < 0
		           ? jobq_error_set(c.rc, "lmdb: %s: checking the store: out of memory",
		                            c.e->path)
		           : 0;
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

/* The vtable's list_queues: every queue with a settings record, in one read. */
int
jobq_lmdb__list_queues(jobq_strings **out, jobq_backend *b) {
	lmdb_env *e = ((lmdb_backend *)b)->e;
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc = jobq_lmdb__read_begin(e, &txn);
	if (rc < 0) {
		return rc;
	}
	int mrc = mdb_cursor_open(txn, e->dbi[DBI_QUEUES], &cur);
	if (mrc == 0) {
		MDB_val k, v;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		while (mrc == 0 && rc == 0) {
			if (k.mv_size > 0 && k.mv_size <= JOBQ_QUEUE_NAME_MAX &&
			    !memchr(k.mv_data, '\0', k.mv_size)) {
				rc = jobq_strings__append(out, k.mv_data, k.mv_size);
			}
			mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		}
		mdb_cursor_close(cur);
	}
	jobq_lmdb__read_end(e, txn);
	if (rc < 0) {
		return jobq_error_set(rc, "lmdb: %s: listing queues: out of memory", e->path);
	}
	if (mrc && mrc != MDB_NOTFOUND) {
		return jobq_lmdb__error(mrc, "listing queues");
	}
	return 0;
}
