/*
 * LMDB backend: reads in a read-only transaction: jobs, lists, counts, logs, the event log,
 * and waiting for work. See lmdb_ops.h for what the files of the operations share.
 */
#include "lmdb_ops.h"

#include <errno.h>
#include <stdlib.h>

/* --- reads -------------------------------------------------------------------------------------
 */

int
jobq_lmdb__get(jobq_job **out, jobq_backend_queue *q, const char *id) {
	MDB_txn *txn;
	int rc = jobq_lmdb__read_begin(q->e, &txn);
	if (rc < 0) {
		return rc;
	}
	lmdb_rec r;
	rc = jobq_lmdb__rec_load_txn(&r, q, txn, id, 1);
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

int
jobq_lmdb__list(jobq_job_list **out, jobq_backend_queue *q, jobq_state state, size_t offset,
                size_t limit) {
	*out = NULL;
	if (jobq_lmdb__state_dbi(state) < 0) {
		return 0;
	}
	MDB_txn *txn;
	int rc = jobq_lmdb__read_begin(q->e, &txn);
	if (rc < 0) {
		return rc;
	}
	int reverse = state == JOBQ_STATE_COMPLETED || state == JOBQ_STATE_FAILED;
	idlist l;
	rc = jobq_lmdb__collect(&l, q, txn, state, reverse, offset, limit, NULL);
	jobq_job_list *list = NULL;
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		lmdb_rec r;
		int found = jobq_lmdb__rec_load_txn(&r, q, txn, l.ids[i], 1);
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
	jobq_lmdb__idlist_free(&l);
	if (rc < 0) {
		jobq_job_list_free(list);
		return rc;
	}
	*out = list;
	return 0;
}

int
jobq_lmdb__meta_snapshot(lmdb_qmeta *m, jobq_backend_queue *q) {
	MDB_txn *txn;
	int rc = jobq_lmdb__read_begin(q->e, &txn);
	if (rc < 0) {
		return rc;
	}
	rc = jobq_lmdb__meta_read(m, q, txn);
	jobq_lmdb__read_end(q->e, txn);
	return rc;
}

int
jobq_lmdb__counts(jobq_counts *out, jobq_backend_queue *q) {
	lmdb_qmeta m;
	int rc = jobq_lmdb__meta_snapshot(&m, q);
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

int
jobq_lmdb__is_paused(int *out, jobq_backend_queue *q) {
	lmdb_qmeta m;
	int rc = jobq_lmdb__meta_snapshot(&m, q);
	if (rc == 0) {
		*out = m.paused != 0;
	}
	return rc;
}

int
jobq_lmdb__get_logs(jobq_strings **out, jobq_backend_queue *q, const char *id, size_t start,
                    size_t limit) {
	MDB_txn *txn;
	int rc = jobq_lmdb__read_begin(q->e, &txn);
	if (rc < 0) {
		return rc;
	}
	lmdb_rec r;
	int found = jobq_lmdb__rec_load_txn(&r, q, txn, id, 0);
	if (found <= 0) {
		jobq_lmdb__read_end(q->e, txn);
		return found < 0 ? found
		                 : jobq_error_set(JOBQ_ENOTFOUND, "lmdb: no job %s in queue %s", id,
		                                  q->name);
	}
	rec_free(&r);
	jobq_strings *list = jobq__calloc(1, sizeof(*list));
	kb p;
	rc = list ? jobq_lmdb__logs_prefix(&p, q, id)
	          : jobq_error_set(JOBQ_ENOMEM, "lmdb: reading logs");
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
		rc = jobq_lmdb__meta_read(&m, q, txn);
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

int
jobq_lmdb__events_read(jobq_event_list **out, jobq_backend_queue *q, const char *after, size_t max,
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
	rc = jobq_lmdb__meta_read(&m, q, txn);
	*next_due = 0;
	if (rc == 0 && !m.paused &&
	    !eng_limits_maxed(&m.lim, (uint64_t)m.counts[JOBQ_STATE_ACTIVE])) {
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

int
jobq_lmdb__wait_for_work(jobq_backend_queue *q, jobq_clock *clock, int64_t timeout_ms) {
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
