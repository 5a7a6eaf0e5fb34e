/*
 * LMDB backend: environments (one per real path per process, refcounted), opening and format
 * checks, and the write-transaction runner (map growth, durability modes). The store's own
 * files and the cross-process wake-ups are in lmdb_wake.c, the gates in lmdb_gate.c.
 */
#define _GNU_SOURCE /* realpath, fallocate */
#include "lmdb_internal.h"
#include "backends/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define FORMAT_KEY       "format"
#define FORMAT_VALUE     "jobq-lmdb/2"
#define FORMAT_V1        "jobq-lmdb/1" /* migrated at open */
#define DEFAULT_MAP_SIZE ((size_t)64 << 20)
#define MAX_MAP_SIZE     ((size_t)1 << 40)

static const char *const dbi_names[DBI__COUNT] = {
    "meta",      "queues", "jobs",  "wait", "prio",   "delayed", "active",
    "completed", "failed", "dedup", "logs", "events", "metrics",
};

const char *
jobq_lmdb__dbi_name(int which) {
	return dbi_names[which];
}

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static lmdb_env *registry;

int
jobq_lmdb__error(int mdb_rc, const char *what) {
	if (mdb_rc == MDB_MAP_FULL) {
		return jobq_error_set(JOBQ_ENOSPC, "lmdb: %s: %s", what, mdb_strerror(mdb_rc));
	}
	if (mdb_rc == ENOMEM) {
		return jobq_error_set(JOBQ_ENOMEM, "lmdb: %s: %s", what, mdb_strerror(mdb_rc));
	}
	if (mdb_rc == ENOSPC || mdb_rc == EDQUOT) {
		return jobq_error_set(JOBQ_ENOSPC, "lmdb: %s: %s", what, mdb_strerror(mdb_rc));
	}
	return jobq_error_set(JOBQ_EIO, "lmdb: %s: %s", what, mdb_strerror(mdb_rc));
}

/* Bytes the caller may still write on the file system of `fd`, or -1 if unknown. */
static int64_t
fs_free_bytes(int fd) {
	struct statvfs sv;
	if (fstatvfs(fd, &sv) < 0) {
		return -1;
	}
	uint64_t blocks = geteuid() == 0 ? sv.f_bfree : sv.f_bavail;
	return (int64_t)(blocks * sv.f_frsize);
}

/*
 * LMDB answers a short write with EIO (it cannot tell why the kernel stopped), which on a
 * full file system is the usual first symptom: EIO with less than 16 MiB left (more than a
 * commit of this backend writes) is reported as the full file system it is.
 */
int
jobq_lmdb__commit_error(lmdb_env *e, int mdb_rc) {
	int fd = -1;
	if (mdb_rc == EIO && mdb_env_get_fd(e->env, &fd) == 0) {
		int64_t left = fs_free_bytes(fd);
		if (left >= 0 && left < (int64_t)16 << 20) {
			return jobq_error_set(JOBQ_ENOSPC,
			                      "lmdb: %s: committing: %s (a short write; %lld bytes "
			                      "free on its file system)",
			                      e->path, strerror(ENOSPC), (long long)left);
		}
	}
	return jobq_lmdb__error(mdb_rc, "committing");
}

/* --- durability --------------------------------------------------------------------------------
 */

static void *
syncer_main(void *arg) {
	lmdb_env *e = arg;
	pthread_mutex_lock(&e->smu);
	while (!e->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = (int64_t)ts.tv_nsec + (int64_t)e->sync_ms * 1000000;
		ts.tv_sec += (time_t)(ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		pthread_cond_timedwait(&e->scond, &e->smu, &ts);
		pthread_mutex_unlock(&e->smu);
		pthread_rwlock_rdlock(&e->resize);
		mdb_env_sync(e->env, 1);
		pthread_rwlock_unlock(&e->resize);
		pthread_mutex_lock(&e->smu);
	}
	pthread_mutex_unlock(&e->smu);
	return NULL;
}

/*
 * GROUP: returns once an fdatasync that began after this caller's commit has finished. A
 * caller whose commit an fdatasync in flight does not cover starts its own at once rather
 * than after it (at most two at a time): the second one waits in the kernel only for the
 * pages the first is writing, and a worker's small commit does not queue behind the sync of
 * a producer's large one. An fdatasync returning covers every commit made before it began,
 * whatever the others in flight do, so `synced` only grows.
 */
static int
group_sync(lmdb_env *e) {
	int rc = 0;
	pthread_mutex_lock(&e->gmu);
	uint64_t ticket = ++e->committed;
	while (e->synced < ticket) {
		if (e->sync_target >= ticket || e->syncing >= 2) {
			pthread_cond_wait(&e->gcond, &e->gmu);
			continue;
		}
		e->syncing++;
		uint64_t target = e->committed;
		e->sync_target = target;
		pthread_mutex_unlock(&e->gmu);
		pthread_rwlock_rdlock(&e->resize);
		int mrc = mdb_env_sync(e->env, 1);
		pthread_rwlock_unlock(&e->resize);
		pthread_mutex_lock(&e->gmu);
		e->syncing--;
		if (mrc == 0 && target > e->synced) {
			e->synced = target;
		}
		if (mrc != 0 && e->sync_target > e->synced) {
			e->sync_target = e->synced; /* those it would have covered try again */
		}
		pthread_cond_broadcast(&e->gcond);
		if (mrc != 0) {
			rc = jobq_lmdb__error(mrc, "syncing the store");
			break;
		}
	}
	pthread_mutex_unlock(&e->gmu);
	return rc;
}

/* --- transactions -------------------------------------------------------------------------------
 */

/* Adopts a map size grown by another process (MDB_MAP_RESIZED), or grows a full map. */
static int
map_resize(lmdb_env *e, int grow) {
	int rc = 0;
	pthread_rwlock_wrlock(&e->resize);
	if (grow) {
		MDB_envinfo info;
		jobq_lmdb__reader_check(e);
		mdb_env_info(e->env, &info);
		size_t next = info.me_mapsize * 2;
		if (next > MAX_MAP_SIZE) {
			rc = jobq_error_set(JOBQ_ENOSPC, "lmdb: %s: the map reached %zu bytes",
			                    e->path, info.me_mapsize);
		} else {
			int mrc = mdb_env_set_mapsize(e->env, next);
			if (mrc) {
				rc = jobq_lmdb__error(mrc, "growing the map");
			}
		}
	} else {
		int mrc = mdb_env_set_mapsize(e->env, 0);
		if (mrc) {
			rc = jobq_lmdb__error(mrc, "adopting the map size");
		}
	}
	pthread_rwlock_unlock(&e->resize);
	return rc;
}

int
jobq_lmdb__read_begin(lmdb_env *e, MDB_txn **txn) {
	for (int tries = 0; tries < 8; tries++) {
		pthread_rwlock_rdlock(&e->resize);
		int mrc = jobq_lmdb__txn_begin(txn, e, MDB_RDONLY);
		if (mrc == 0) {
			return 0;
		}
		pthread_rwlock_unlock(&e->resize);
		if (mrc != MDB_MAP_RESIZED) {
			return jobq_lmdb__error(mrc, "beginning a read transaction");
		}
		int rc = map_resize(e, 0);
		if (rc < 0) {
			return rc;
		}
	}
	return jobq_error_set(JOBQ_EIO, "lmdb: %s: the map keeps changing size", e->path);
}

void
jobq_lmdb__read_end(lmdb_env *e, MDB_txn *txn) {
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&e->resize);
}

int
jobq_lmdb__write(jobq_backend_queue *q, lmdb_write_fn fn, void *arg) {
	lmdb_env *e = q->e;
	for (int tries = 0; tries < 16; tries++) {
		lmdb_wctx c;
		memset(&c, 0, sizeof(c));
		c.q = q;
		c.e = e;
		jobq_lmdb__buf_init(&c.evb);
		pthread_rwlock_rdlock(&e->resize);
		int mrc = jobq_lmdb__txn_begin(&c.txn, e, 0);
		if (mrc) {
			pthread_rwlock_unlock(&e->resize);
			if (mrc == MDB_MAP_RESIZED) {
				int rc = map_resize(e, 0);
				if (rc < 0) {
					return rc;
				}
				continue;
			}
			return jobq_lmdb__error(mrc, "beginning a write transaction");
		}
		int rc = fn(&c, arg);
		jobq_lmdb__buf_free(&c.evb); /* written by fn (op_body) or dropped with the txn */
		for (int i = 0; i < DBI__COUNT; i++) {
			if (c.cur[i]) {
				mdb_cursor_close(c.cur[i]);
			}
		}
		if (rc < 0 && !c.commit_anyway) {
			mdb_txn_abort(c.txn);
			jobq_lmdb__write_gate_leave(e);
			pthread_rwlock_unlock(&e->resize);
			if (c.mdb_rc == MDB_MAP_FULL) {
				int grc = map_resize(e, 1);
				if (grc < 0) {
					return grc;
				}
				continue;
			}
			return rc;
		}
		mrc = mdb_txn_commit(c.txn);
		jobq_lmdb__write_gate_leave(e);
		pthread_rwlock_unlock(&e->resize);
		if (mrc == MDB_MAP_FULL) {
			int grc = map_resize(e, 1);
			if (grc < 0) {
				return grc;
			}
			continue;
		}
		if (mrc) {
			return jobq_lmdb__commit_error(e, mrc);
		}
		if (e->durability == JOBQ_LMDB_GROUP) {
			int src = group_sync(e);
			if (src < 0) {
				return src;
			}
		}
		if (c.bump_work || c.wrote_events) {
			jobq_lmdb__wake_bump(e, q->slot, c.bump_work, c.wrote_events);
		}
		return rc;
	}
	return jobq_error_set(JOBQ_ENOSPC, "lmdb: %s: cannot grow the map enough", e->path);
}

/* --- opening ------------------------------------------------------------------------------------
 */

/* Before any transaction of this env: adopt another process's map size, or grow a full one. */
static int
open_resize(lmdb_env *e, int grow) {
	MDB_envinfo info;
	mdb_env_info(e->env, &info);
	int mrc = mdb_env_set_mapsize(e->env, grow ? info.me_mapsize * 2 : 0);
	return mrc ? jobq_error_set(JOBQ_EIO, "lmdb: %s: cannot resize the map: %s", e->path,
	                            mdb_strerror(mrc))
	           : 0;
}

/* Creates the DBIs, writes or checks the format record. *again: resized, call again. */
static int
init_store_once(lmdb_env *e, int *again) {
	MDB_txn *txn;
	int mrc = mdb_txn_begin(e->env, NULL, 0, &txn);
	if (mrc == MDB_MAP_RESIZED) {
		*again = 1;
		return open_resize(e, 0);
	}
	if (mrc) {
		return jobq_error_set(JOBQ_EIO, "lmdb: %s: cannot begin a transaction: %s", e->path,
		                      mdb_strerror(mrc));
	}
	/* A foreign store: the main DB holds keys that are not our DBIs. */
	MDB_dbi main;
	int rc = 0;
	mrc = mdb_dbi_open(txn, NULL, 0, &main);
	if (mrc == 0) {
		MDB_cursor *cur;
		if (mdb_cursor_open(txn, main, &cur) == 0) {
			MDB_val k, v;
			int op = MDB_FIRST;
			int has_meta = 0, foreign = 0, any = 0;
			while (mdb_cursor_get(cur, &k, &v, op) == 0) {
				op = MDB_NEXT;
				any = 1;
				int ours = 0;
				for (int i = 0; i < DBI__COUNT; i++) {
					if (k.mv_size == strlen(dbi_names[i]) &&
					    memcmp(k.mv_data, dbi_names[i], k.mv_size) == 0) {
						ours = 1;
						has_meta |= i == DBI_META;
					}
				}
				foreign |= !ours;
			}
			mdb_cursor_close(cur);
			if (any && (foreign || !has_meta)) {
				rc = jobq_error_set(
				    JOBQ_EINVAL,
				    "lmdb: %s: not a jobq store (a foreign LMDB database)",
				    e->path);
			}
		}
	}
	for (int i = 0; rc == 0 && i < DBI__COUNT; i++) {
		mrc = mdb_dbi_open(txn, dbi_names[i], MDB_CREATE, &e->dbi[i]);
		if (mrc == MDB_MAP_FULL) {
			mdb_txn_abort(txn);
			*again = 1;
			return open_resize(e, 1);
		}
		if (mrc) {
			rc = jobq_error_set(mrc == MDB_INCOMPATIBLE ? JOBQ_EINVAL : JOBQ_EIO,
			                    "lmdb: %s: cannot open table %s: %s", e->path,
			                    dbi_names[i], mdb_strerror(mrc));
		}
	}
	if (rc == 0) {
		MDB_val k = {strlen(FORMAT_KEY), (void *)(uintptr_t)FORMAT_KEY}, v;
		mrc = mdb_get(txn, e->dbi[DBI_META], &k, &v);
		if (mrc == MDB_NOTFOUND) {
			MDB_stat st;
			mdb_stat(txn, e->dbi[DBI_JOBS], &st);
			if (st.ms_entries > 0) {
				rc = jobq_error_set(JOBQ_EINVAL,
				                    "lmdb: %s: store has jobs but no format record",
				                    e->path);
			} else {
				v.mv_size = strlen(FORMAT_VALUE);
				v.mv_data = (void *)(uintptr_t)FORMAT_VALUE;
				mrc = mdb_put(txn, e->dbi[DBI_META], &k, &v, 0);
				if (mrc == MDB_MAP_FULL) {
					mdb_txn_abort(txn);
					*again = 1;
					return open_resize(e, 1);
				}
				if (mrc) {
					rc = jobq_lmdb__error(mrc, "writing the format record");
				}
			}
		} else if (mrc) {
			rc = jobq_lmdb__error(mrc, "reading the format record");
		} else if (v.mv_size == strlen(FORMAT_V1) &&
		           memcmp(v.mv_data, FORMAT_V1, v.mv_size) == 0) {
			rc = jobq_lmdb__migrate_v1(e, txn);
			if (rc == 0) {
				v.mv_size = strlen(FORMAT_VALUE);
				v.mv_data = (void *)(uintptr_t)FORMAT_VALUE;
				mrc = mdb_put(txn, e->dbi[DBI_META], &k, &v, 0);
				if (mrc && mrc != MDB_MAP_FULL) {
					rc = jobq_lmdb__error(mrc, "writing the format record");
				}
			}
			if (rc == JOBQ_ENOSPC || (rc == 0 && mrc == MDB_MAP_FULL)) {
				mdb_txn_abort(txn);
				*again = 1;
				return open_resize(e, 1);
			}
		} else if (v.mv_size != strlen(FORMAT_VALUE) ||
		           memcmp(v.mv_data, FORMAT_VALUE, v.mv_size) != 0) {
			rc = jobq_error_set(JOBQ_EINVAL,
			                    "lmdb: %s: unsupported format \"%.*s\" (want %s)",
			                    e->path, (int)(v.mv_size > 64 ? 64 : v.mv_size),
			                    (const char *)v.mv_data, FORMAT_VALUE);
		}
	}
	if (rc < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	mrc = mdb_txn_commit(txn);
	if (mrc == MDB_MAP_FULL) {
		*again = 1;
		return open_resize(e, 1);
	}
	if (mrc) {
		return jobq_lmdb__commit_error(e, mrc);
	}
	return 0;
}

static int
init_store(lmdb_env *e) {
	for (int tries = 0; tries < 32; tries++) {
		int again = 0;
		int rc = jobq_lmdb__write_gate_enter(e);
		if (rc) {
			return jobq_lmdb__error(rc, "locking jobq-lock");
		}
		rc = init_store_once(e, &again);
		jobq_lmdb__write_gate_leave(e);
		if (!again || rc < 0) {
			return rc;
		}
	}
	return jobq_error_set(JOBQ_EIO, "lmdb: %s: the map keeps changing size", e->path);
}

static void
env_destroy(lmdb_env *e) {
	if (e->syncer_running) {
		pthread_mutex_lock(&e->smu);
		e->stopping = 1;
		pthread_cond_signal(&e->scond);
		pthread_mutex_unlock(&e->smu);
		pthread_join(e->syncer, NULL);
	}
	if (e->env) {
		if (e->durability != JOBQ_LMDB_SYNC) {
			mdb_env_sync(e->env, 1);
		}
		mdb_env_close(e->env);
	}
	if (e->wake) {
		munmap(e->wake, sizeof(lmdb_wake_map));
	}
	jobq_lmdb__gate_close(e);
	while (e->queues) {
		jobq_backend_queue *q = e->queues;
		e->queues = q->next;
		jobq__free(q);
	}
	pthread_rwlock_destroy(&e->resize);
	pthread_mutex_destroy(&e->gmu);
	pthread_cond_destroy(&e->gcond);
	pthread_mutex_destroy(&e->smu);
	pthread_cond_destroy(&e->scond);
	jobq__free(e->path);
	jobq__free(e);
}

static const char *
durability_name(jobq_lmdb_durability d) {
	return d == JOBQ_LMDB_GROUP ? "group" : d == JOBQ_LMDB_PERIODIC ? "periodic" : "sync";
}

/* The files of a store directory, and which of them the open in progress created. */
enum { FILE_WAKE, FILE_LOCK, FILE_DATA, FILE_GATE, FILE__COUNT };
static const char *const store_files[FILE__COUNT] = {"jobq-wake", "lock.mdb", "data.mdb",
                                                     "jobq-lock"};

/*
 * Gives lock.mdb blocks before LMDB maps it (LMDB sizes it with ftruncate, which leaves a hole
 * that faults on a full file system): enough for the header and every reader slot.
 */
static int
lock_file_prepare(int *created, const char *dir, unsigned int mode) {
	char path[PATH_MAX];
	int fd = -1;
	int rc = jobq_lmdb__open_store_file(&fd, created, path, dir, store_files[FILE_LOCK], mode);
	if (rc == 0) {
		rc = jobq_lmdb__alloc_blocks(fd, path, (off_t)64 << 10, 1);
		close(fd);
	}
	return rc;
}

/*
 * Before LMDB opens data.mdb: a directory whose jobq-wake says it held a store, but whose
 * data.mdb is missing or too short to hold LMDB's two meta pages, lost its store (LMDB would
 * start a new, empty one in an empty file). *exists: data.mdb was there.
 */
static int
data_file_precheck(int *exists, lmdb_env *e, const char *dir) {
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, store_files[FILE_DATA]) >=
	    sizeof(path)) {
		return jobq_error_set(JOBQ_EINVAL, "lmdb: path too long: %s", dir);
	}
	struct stat st;
	*exists = stat(path, &st) == 0;
	if (!*exists && errno != ENOENT) {
		return jobq_error_set(JOBQ_EIO, "lmdb: %s: %s", path, strerror(errno));
	}
	if (!(__atomic_load_n(&e->wake->flags, __ATOMIC_SEQ_CST) & LMDB_WAKE_STORE_READY)) {
		return 0;
	}
	long page = sysconf(_SC_PAGESIZE);
	if (*exists && st.st_size >= 2 * (off_t)page) {
		return 0;
	}
	char what[64];
	if (*exists) {
		snprintf(what, sizeof(what), "has %lld bytes", (long long)st.st_size);
	} else {
		snprintf(what, sizeof(what), "is missing");
	}
	return jobq_error_set(JOBQ_EIO,
	                      "lmdb: %s: store is truncated: data.mdb %s, but the directory "
	                      "held a jobq store (its jobq-wake says so); restore data.mdb, or "
	                      "remove the directory's files to start a new store",
	                      dir, what);
}

/*
 * After mdb_env_open, before any read touches the map: LMDB maps data.mdb whole and reads
 * pages through the map, so a file that lost its end would fault (SIGBUS) at the first read
 * of a page past it. The newest meta page names the last page in use.
 */
static int
data_file_check_size(lmdb_env *e) {
	MDB_envinfo info;
	MDB_stat st;
	int fd = -1;
	struct stat fs;
	if (mdb_env_info(e->env, &info) != 0 || mdb_env_stat(e->env, &st) != 0 ||
	    mdb_env_get_fd(e->env, &fd) != 0 || fstat(fd, &fs) < 0) {
		return jobq_error_set(JOBQ_EIO, "lmdb: %s: cannot read the size of data.mdb",
		                      e->path);
	}
	uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	if ((uint64_t)fs.st_size < need) {
		return jobq_error_set(JOBQ_EIO,
		                      "lmdb: %s: store is truncated: data.mdb has %lld bytes, but "
		                      "its last page in use (%llu, of %u bytes) ends at byte %llu; "
		                      "restore data.mdb from a copy",
		                      e->path, (long long)fs.st_size,
		                      (unsigned long long)info.me_last_pgno, st.ms_psize,
		                      (unsigned long long)need);
	}
	return 0;
}

/* Removes the files of `made` (this open created them) unless a store is there after all. */
static void
remove_made_files(const char *dir, const int *made) {
	for (int i = 0; i < FILE__COUNT; i++) {
		char path[PATH_MAX];
		if (made[i] && (size_t)snprintf(path, sizeof(path), "%s/%s", dir, store_files[i]) <
		                   sizeof(path)) {
			unlink(path);
		}
	}
}

static int
env_open(lmdb_env **out, const char *real, const jobq_lmdb_options *o) {
	lmdb_env *e = jobq__calloc(1, sizeof(*e));
	if (!e) {
		return jobq_error_set(JOBQ_ENOMEM, "lmdb: opening %s", real);
	}
	/* Writer-preferring, so that a busy process cannot starve a map resize; no thread ever
	 * takes the read side twice. */
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&e->resize, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&e->gmu, NULL);
	pthread_cond_init(&e->gcond, NULL);
	pthread_mutex_init(&e->smu, NULL);
	pthread_cond_init(&e->scond, NULL);
	e->refs = 1;
	e->durability = o->durability;
	e->sync_ms = o->sync_ms ? o->sync_ms : 100;
	e->path = jobq__strdup(real);
	int made[FILE__COUNT] = {0};
	int rc = 0, data_exists = 1;
	if (!e->path) {
		rc = jobq_error_set(JOBQ_ENOMEM, "lmdb: opening %s", real);
		goto fail;
	}
	rc = jobq_lmdb__wake_map_open(e, &made[FILE_WAKE], real, o->file_mode);
	if (rc < 0) {
		goto fail;
	}
	rc = lock_file_prepare(&made[FILE_LOCK], real, o->file_mode);
	if (rc < 0) {
		goto fail;
	}
	rc = data_file_precheck(&data_exists, e, real);
	if (rc < 0) {
		goto fail;
	}
	rc = jobq_lmdb__gate_open(e, &made[FILE_GATE], real, o->file_mode);
	if (rc < 0) {
		goto fail;
	}
	int mrc = mdb_env_create(&e->env);
	if (mrc) {
		e->env = NULL;
		rc = jobq_lmdb__error(mrc, "creating the environment");
		goto fail;
	}
	mdb_env_set_maxdbs(e->env, DBI__COUNT + 4);
	mdb_env_set_maxreaders(e->env, 512);
	mdb_env_set_mapsize(e->env, o->map_size ? (size_t)o->map_size : DEFAULT_MAP_SIZE);
	unsigned int flags = MDB_NOTLS;
	if (o->durability != JOBQ_LMDB_SYNC) {
		flags |= MDB_NOSYNC;
	}
	made[FILE_DATA] = !data_exists;
	mrc = mdb_env_open(e->env, real, flags, (mdb_mode_t)o->file_mode);
	if (mrc) {
		const char *why = mrc == MDB_INVALID            ? "not an LMDB file or corrupt"
		                  : mrc == MDB_VERSION_MISMATCH ? "LMDB version mismatch"
		                  : mrc == MDB_CORRUPTED        ? "corrupt"
		                                                : mdb_strerror(mrc);
		rc = jobq_error_set(mrc == EACCES || mrc == EROFS || mrc == ENOENT ? JOBQ_EINVAL
		                    : mrc == ENOSPC || mrc == EDQUOT               ? JOBQ_ENOSPC
		                                                                   : JOBQ_EIO,
		                    "lmdb: %s: cannot open the store: %s", real, why);
		goto fail;
	}
	rc = data_file_check_size(e);
	if (rc < 0) {
		goto fail;
	}
	jobq_lmdb__reader_check(e);
	rc = init_store(e);
	if (rc < 0) {
		goto fail;
	}
	if (!(__atomic_load_n(&e->wake->flags, __ATOMIC_SEQ_CST) & LMDB_WAKE_STORE_READY)) {
		/* The format record on disk before the flag says it is (NOSYNC modes). */
		mrc = mdb_env_sync(e->env, 1);
		if (mrc) {
			rc = jobq_lmdb__error(mrc, "syncing the new store");
			goto fail;
		}
		__atomic_or_fetch(&e->wake->flags, LMDB_WAKE_STORE_READY, __ATOMIC_SEQ_CST);
	}
	if (e->durability == JOBQ_LMDB_PERIODIC) {
		if (pthread_create(&e->syncer, NULL, syncer_main, e) != 0) {
			rc = jobq_error_set(JOBQ_ERROR, "lmdb: cannot start the sync thread");
			goto fail;
		}
		e->syncer_running = 1;
	}
	*out = e;
	return 0;
fail:;
	/* Undo only what this open created, and nothing once the directory holds a store (this
	 * process's, or one another process made meanwhile). */
	int ready =
	    e->wake && (__atomic_load_n(&e->wake->flags, __ATOMIC_SEQ_CST) & LMDB_WAKE_STORE_READY);
	env_destroy(e);
	if (!ready) {
		remove_made_files(real, made);
	}
	return rc;
}

int
jobq_lmdb__env_acquire(lmdb_env **out, const char *path, const jobq_lmdb_options *o) {
	struct stat st;
	if (stat(path, &st) < 0) {
		return jobq_error_set(errno == ENOENT ? JOBQ_EINVAL : JOBQ_EIO, "lmdb: %s: %s",
		                      path, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode)) {
		return jobq_error_set(JOBQ_EINVAL, "lmdb: %s: not a directory", path);
	}
	char real[PATH_MAX];
	if (!realpath(path, real)) {
		return jobq_error_set(JOBQ_EIO, "lmdb: %s: %s", path, strerror(errno));
	}
	int rc = 0;
	pthread_mutex_lock(&registry_mu);
	lmdb_env *e;
	for (e = registry; e; e = e->next) {
		if (strcmp(e->path, real) == 0) {
			break;
		}
	}
	if (e) {
		if (e->durability != o->durability) {
			rc = jobq_error_set(
			    JOBQ_EINVAL,
			    "lmdb: %s is already open in this process with durability %s", real,
			    durability_name(e->durability));
		} else {
			e->refs++;
		}
	} else {
		if (access(real, W_OK) < 0) {
			rc = jobq_error_set(JOBQ_EINVAL, "lmdb: %s: directory not writable: %s",
			                    real, strerror(errno));
		} else {
			rc = env_open(&e, real, o);
			if (rc == 0) {
				e->next = registry;
				registry = e;
			}
		}
	}
	pthread_mutex_unlock(&registry_mu);
	if (rc == 0) {
		*out = e;
	}
	return rc;
}

void
jobq_lmdb__env_release(lmdb_env *e) {
	pthread_mutex_lock(&registry_mu);
	if (--e->refs > 0) {
		pthread_mutex_unlock(&registry_mu);
		return;
	}
	for (lmdb_env **pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_mu);
	env_destroy(e);
}

int
jobq_lmdb__queue_get(jobq_backend_queue **out, lmdb_env *e, const char *name, size_t len) {
	int rc = 0;
	pthread_mutex_lock(&registry_mu);
	jobq_backend_queue *q;
	for (q = e->queues; q; q = q->next) {
		if (q->name_len == len && memcmp(q->name, name, len) == 0) {
			break;
		}
	}
	if (!q) {
		q = jobq__calloc(1, sizeof(*q));
		if (!q) {
			rc = jobq_error_set(JOBQ_ENOMEM, "lmdb: opening queue %s", name);
		} else {
			q->e = e;
			memcpy(q->name, name, len);
			q->name[len] = '\0';
			q->name_len = len;
			uint32_t h = 2166136261u;
			for (size_t i = 0; i < len; i++) {
				h = (h ^ (unsigned char)name[i]) * 16777619u;
			}
			q->slot = h % LMDB_WAKE_SLOTS;
			q->next = e->queues;
			e->queues = q;
		}
	}
	pthread_mutex_unlock(&registry_mu);
	if (rc == 0) {
		*out = q;
	}
	return rc;
}

/* --- options and URL ----------------------------------------------------------------------------
 */

int
jobq_lmdb_options_init(jobq_lmdb_options *opts, unsigned int version) {
	if (!opts) {
		return jobq_error_set(JOBQ_EINVAL, "lmdb options: NULL");
	}
	if (version != JOBQ_LMDB_OPTIONS_VERSION) {
		return jobq_error_set(JOBQ_EVERSION, "lmdb options: version %u not supported",
		                      version);
	}
	jobq_lmdb_options d = JOBQ_LMDB_OPTIONS_INIT;
	*opts = d;
	return 0;
}

static int
parse_query(jobq_lmdb_options *o, const char *q, const char *url) {
	while (*q) {
		const char *amp = strchr(q, '&');
		size_t n = amp ? (size_t)(amp - q) : strlen(q);
		char kv[128];
		if (n == 0 || n >= sizeof(kv)) {
			return jobq_error_set(JOBQ_EINVAL, "lmdb url %s: malformed query", url);
		}
		memcpy(kv, q, n);
		kv[n] = '\0';
		char *eq = strchr(kv, '=');
		if (!eq) {
			return jobq_error_set(JOBQ_EINVAL, "lmdb url %s: \"%s\" has no value", url,
			                      kv);
		}
		*eq = '\0';
		const char *val = eq + 1;
		if (strcmp(kv, "durability") == 0) {
			if (strcmp(val, "sync") == 0) {
				o->durability = JOBQ_LMDB_SYNC;
			} else if (strcmp(val, "group") == 0) {
				o->durability = JOBQ_LMDB_GROUP;
			} else if (strcmp(val, "periodic") == 0) {
				o->durability = JOBQ_LMDB_PERIODIC;
			} else {
				return jobq_error_set(
				    JOBQ_EINVAL,
				    "lmdb url %s: durability must be sync, group or "
				    "periodic, not \"%s\"",
				    url, val);
			}
		} else if (strcmp(kv, "sync_ms") == 0) {
			char *end;
			errno = 0;
			unsigned long v = strtoul(val, &end, 10);
			if (!*val || *end || errno || v == 0 || v > 3600000) {
				return jobq_error_set(
				    JOBQ_EINVAL,
				    "lmdb url %s: sync_ms must be 1..3600000, not \"%s\"", url,
				    val);
			}
			o->sync_ms = (uint32_t)v;
		} else if (strcmp(kv, "map_size") == 0) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(val, &end, 10);
			if (!*val || *end || errno || v < 65536 ||
			    v > ((unsigned long long)1 << 40)) {
				return jobq_error_set(
				    JOBQ_EINVAL,
				    "lmdb url %s: map_size must be 65536..2^40 bytes, "
				    "not \"%s\"",
				    url, val);
			}
			o->map_size = v;
		} else {
			return jobq_error_set(JOBQ_EINVAL, "lmdb url %s: unknown parameter \"%s\"",
			                      url, kv);
		}
		q += n + (amp ? 1 : 0);
	}
	return 0;
}

int
jobq__lmdb_url_parse(char *dir, size_t dir_cap, jobq_lmdb_options *o, const char *url) {
	const char *p;
	if (strncmp(url, "lmdb://", 7) == 0) {
		p = url + 7;
		if (*p != '/') {
			return jobq_error_set(
			    JOBQ_EINVAL, "lmdb url %s: want lmdb:///abs/dir or lmdb:rel/dir", url);
		}
	} else if (strncmp(url, "lmdb:", 5) == 0) {
		p = url + 5;
	} else {
		return jobq_error_set(JOBQ_EINVAL, "lmdb url %s: not an lmdb: URL", url);
	}
	const char *qm = strchr(p, '?');
	size_t n = qm ? (size_t)(qm - p) : strlen(p);
	if (n == 0) {
		return jobq_error_set(JOBQ_EINVAL, "lmdb url %s: no directory", url);
	}
	if (n >= dir_cap) {
		return jobq_error_set(JOBQ_EINVAL, "lmdb url %s: path too long", url);
	}
	memcpy(dir, p, n);
	dir[n] = '\0';
	if (strspn(dir, "/") == n) {
		return jobq_error_set(JOBQ_EINVAL,
		                      "lmdb url %s: the root directory cannot be a store; name a "
		                      "directory (lmdb:///abs/dir)",
		                      url);
	}
	jobq_lmdb_options d = JOBQ_LMDB_OPTIONS_INIT;
	*o = d;
	return qm ? parse_query(o, qm + 1, url) : 0;
}

int
jobq__lmdb_open_url(jobq_backend **out, const char *url) {
	char dir[PATH_MAX];
	jobq_lmdb_options o;
	int rc = jobq__lmdb_url_parse(dir, sizeof(dir), &o, url);
	if (rc < 0) {
		return rc;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		return jobq_error_set(
		    errno == ENOENT || errno == EACCES || errno == EROFS ? JOBQ_EINVAL : JOBQ_EIO,
		    "lmdb: cannot create directory %s: %s", dir, strerror(errno));
	}
	return jobq_backend_lmdb_new(out, dir, &o);
}
