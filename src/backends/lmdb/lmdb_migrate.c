/*
 * LMDB backend: format 1 stores: the migration of the active index at open. See lmdb_ops.h for
 * what the files of the operations share.
 */
#include "lmdb_ops.h"

/* --- format 1 stores ----------------------------------------------------------------------------
 */

/*
 * Format 1 keyed the active index Q\0seq -> id and kept the running fields in the record.
 * Rewrites each entry as Q\0id -> running entry (taken from the record), in the caller's
 * transaction; an entry whose record is gone is dropped. The new entries are built first and
 * the table emptied before they are written, since both kinds of key share it.
 */
int
jobq_lmdb__migrate_v1(lmdb_env *e, MDB_txn *txn) {
	MDB_cursor *cur = NULL;
	int mrc = mdb_cursor_open(txn, e->dbi[DBI_ACTIVE], &cur);
	if (mrc) {
		return jobq_lmdb__error(mrc, "migrating the active index");
	}
	lmdb_buf out; /* (key length, key, value length, value) per entry */
	jobq_lmdb__buf_init(&out);
	int rc = 0;
	MDB_val k, v;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (mrc == 0) {
		const unsigned char *kp = k.mv_data;
		if (k.mv_size >= 10 && kp[k.mv_size - 9] == '\0' && v.mv_size > 0 &&
		    v.mv_size <= JOBQ_ID_MAX) {
			size_t qn = k.mv_size - 9;
			char id[JOBQ_ID_MAX + 1];
			memcpy(id, v.mv_data, v.mv_size);
			id[v.mv_size] = '\0';
			kb jk;
			jk.n = 0;
			jk.overflow = 0;
			kb_bytes(&jk, kp, qn + 1);
			kb_str(&jk, id);
			MDB_val jkey = kv(&jk), jv;
			lmdb_rec r;
			if (!jk.overflow && mdb_get(txn, e->dbi[DBI_JOBS], &jkey, &jv) == 0 &&
			    jobq_lmdb__rec_decode(&r, id, jv.mv_data, jv.mv_size) == 0) {
				const jobq_job *j = r.j;
				lmdb_run run = {
				    .seq = rd_u64(kp + qn + 1),
				    .lock_until = r.lock_until,
				    .processed_on = j->processed_on,
				    .attempts_started = j->attempts_started,
				    .flags = r.log_count > 0 ? LMDB_RUN_LOGS : 0,
				    .token = j->token,
				    .token_len = j->token ? strlen(j->token) : 0,
				    .dedup = j->opts.dedup_id,
				    .dedup_len = j->opts.dedup_id ? strlen(j->opts.dedup_id) : 0};
				lmdb_buf b;
				rc = jobq_lmdb__run_encode(&b, &run);
				if (rc == 0) {
					uint32_t kl = (uint32_t)jk.n, vl = (uint32_t)b.size;
					rc = jobq_lmdb__buf_append(&out, &kl, sizeof(kl));
					if (rc == 0) {
						rc = jobq_lmdb__buf_append(&out, jk.b, kl);
					}
					if (rc == 0) {
						rc = jobq_lmdb__buf_append(&out, &vl, sizeof(vl));
					}
					if (rc == 0) {
						rc = jobq_lmdb__buf_append(&out, b.data, vl);
					}
					jobq_lmdb__buf_free(&b);
				}
				rec_free(&r);
			} else {
				jobq_error_clear(); /* no record (or an unreadable one): drop it */
			}
		}
		if (rc < 0) {
			break;
		}
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc == 0 && mrc != MDB_NOTFOUND) {
		rc = jobq_lmdb__error(mrc, "migrating the active index");
	}
	if (rc == 0) {
		mrc = mdb_drop(txn, e->dbi[DBI_ACTIVE], 0);
		if (mrc) {
			rc = jobq_lmdb__error(mrc, "migrating the active index");
		}
	}
	for (size_t off = 0; rc == 0 && off < out.size;) {
		uint32_t kl, vl;
		memcpy(&kl, out.data + off, sizeof(kl));
		MDB_val nk = {kl, out.data + off + sizeof(kl)};
		off += sizeof(kl) + kl;
		memcpy(&vl, out.data + off, sizeof(vl));
		MDB_val nv = {vl, out.data + off + sizeof(vl)};
		off += sizeof(vl) + vl;
		mrc = mdb_put(txn, e->dbi[DBI_ACTIVE], &nk, &nv, 0);
		if (mrc) {
			rc = jobq_lmdb__error(mrc, "migrating the active index");
		}
	}
	jobq_lmdb__buf_free(&out);
	return rc;
}
