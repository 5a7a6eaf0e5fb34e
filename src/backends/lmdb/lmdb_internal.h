/*
 * LMDB backend internals: the shared environment (registry, durability, wake-ups, map growth),
 * the record codec and the write-transaction runner.
 *
 * Storage layout. One LMDB environment per directory; every queue of the store lives in it.
 * Keys of per-queue DBIs start with the queue name and a NUL byte ("Q\0"); integers in keys are
 * big-endian so that byte order is numeric order (signed values are offset by 2^63).
 *
 *   meta      "format" -> "jobq-lmdb/2" (magic and version; a store without it is foreign;
 *             a "jobq-lmdb/1" store is migrated at open, see jobq_lmdb__migrate_v1)
 *   queues    Q -> msgpack [counter, paused, event seq, wait head, wait tail, prio front,
 *             seq, count per state..., concurrency, rate max, rate duration, rate window
 *             used, rate window end] (the last five absent before rate limits: 0)
 *   jobs      Q\0id -> msgpack job record (lmdb_codec.c)
 *   wait      Q\0pos -> id              (pos: front = smaller)
 *   prio      Q\0priority(4)\0seq -> id
 *   delayed   Q\0due\0seq -> id
 *   active    Q\0id -> msgpack [version, seq, token, lock expiry, processed_on,
 *             attempts_started, flags, dedup id | nil, worker name | nil]: the running
 *             fields of an active job.
 *             Fetch writes only this entry, not the record: while the entry exists the job is
 *             active and these fields override the record's (whose state, index key, token,
 *             lock, processed_on and attempts_started are those from before the fetch), so
 *             every reader merges them in (jobq_lmdb__rec_load_txn). The job leaves active
 *             by deleting the entry and, but for a removal, rewriting the record. (Format 1
 *             keyed this index Q\0seq -> id and kept the running fields in the record.)
 *   completed Q\0finished_on\0seq -> id (read backwards: newest first)
 *   failed    Q\0finished_on\0seq -> id
 *   dedup     Q\0dedup id -> msgpack [version, owner id, expires at (0: while the owner
 *             lives)], and while an add is stashed with the key (keepLastIfActive) also
 *             [..., its job id, its job record (bin)]
 *   logs      Q\0id\0n -> line
 *   events    Q\0seq -> the events seq, seq+1, ... written by one transaction, one after the
 *             other: msgpack [event, job id | nil, key, value, ...] each (a store written
 *             before this layout has one event per key, which reads the same)
 *   metrics   Q\0"completed" | Q\0"failed" -> count, prevTS, prevCount (BullMQ's per-minute
 *             metrics, lmdb_metrics.c); Q\0"completed:data" | Q\0"failed:data" -> the data
 *             points, newest first; 8 bytes big-endian each (a table added in format 2: a
 *             store without it gets it when opened)
 */
#ifndef JOBQ_LMDB_INTERNAL_H
#define JOBQ_LMDB_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>

#include "jobq/backends.h"
#include "jobq/sys/backend.h"
#include "engine/limits.h"

#define LMDB_WAKE_SLOTS  256
#define LMDB_KEY_MAX     512
#define LMDB_EVENTS_KEEP 10000

enum { LMDB_WAKE_STORE_READY = 1u };

enum lmdb_dbi {
	DBI_META,
	DBI_QUEUES,
	DBI_JOBS,
	DBI_WAIT,
	DBI_PRIO,
	DBI_DELAYED,
	DBI_ACTIVE,
	DBI_COMPLETED,
	DBI_FAILED,
	DBI_DEDUP,
	DBI_LOGS,
	DBI_EVENTS,
	DBI_METRICS,
	DBI__COUNT
};

/* The shared mmap file `jobq-wake` in the directory: futex words per queue slot. */
typedef struct lmdb_wake_map {
	uint32_t magic;
	uint32_t version;
	/* LMDB_WAKE_STORE_READY once data.mdb holds a committed format record: from then on an
	 * empty or missing data.mdb is a lost store, not a new one (was padding: 0 in old files) */
	uint32_t flags;
	uint32_t pad[13];
	struct {
		uint32_t work;   /* bumped when work may have appeared */
		uint32_t events; /* bumped when events were written */
	} slot[LMDB_WAKE_SLOTS];
	/*
	 * Threads (of any process) about to sleep on slot[i].work / .events: a bump wakes
	 * sleepers only when some are counted. Appended to the first layout (a file of the old
	 * size is grown); a process of a version without the counts sleeps up to its 1 s backstop
	 * when woken by one with them.
	 */
	uint32_t waiters[LMDB_WAKE_SLOTS][2];
} lmdb_wake_map;

/* The gates of lmdb_gate.c: the byte of jobq-lock each locks. */
enum { LMDB_GATE_WRITE, LMDB_GATE_READ, LMDB_GATE__COUNT };

/* One environment per real path per process, shared by every backend on that path. */
typedef struct lmdb_env {
	struct lmdb_env *next;
	char *path; /* real path */
	int refs;
	MDB_env *env;
	MDB_dbi dbi[DBI__COUNT];
	jobq_lmdb_durability durability;
	uint32_t sync_ms;
	/* Held shared by every transaction, exclusively to change the map size. */
	pthread_rwlock_t resize;
	/* Group commit. */
	pthread_mutex_t gmu;
	pthread_cond_t gcond;
	uint64_t committed, synced;
	uint64_t sync_target; /* the highest commit an fdatasync in flight covers */
	int syncing;          /* fdatasyncs in flight */
	/* Periodic sync. */
	pthread_t syncer;
	int syncer_running, stopping;
	pthread_mutex_t smu;
	pthread_cond_t scond;
	/* Wake-ups. */
	lmdb_wake_map *wake;
	uint32_t wake_gen; /* bumped by wake(): waiters in this process return */
	/* Gates in front of LMDB's shared mutexes (lmdb_gate.c): one in-process mutex each, and
	 * the descriptor and mapping of the file jobq-lock. */
	pthread_mutex_t gate_mu[LMDB_GATE__COUNT];
	int gate_fd;
	void *gate_map;
	int gate_recover; /* (under the write gate) it holds the reader gate too */
	/* Queue handles by name (under registry lock of lmdb_env.c). */
	struct jobq_backend_queue *queues;
} lmdb_env;

typedef struct lmdb_backend {
	jobq_backend base;
	lmdb_env *e;
} lmdb_backend;

/*
 * A queue handle. Handles are shared per name and live as long as the environment, so a
 * thread still blocked in a wait on a queue that another thread closes never touches freed
 * memory (queue_close is a no-op).
 */
struct jobq_backend_queue {
	struct jobq_backend_queue *next;
	lmdb_env *e;
	char name[JOBQ_QUEUE_NAME_MAX + 1];
	size_t name_len;
	uint32_t slot;
};

/* Per-queue settings and counters (DBI_QUEUES). */
typedef struct lmdb_qmeta {
	int64_t counter;
	int64_t paused;
	int64_t ev_seq; /* last event sequence number written */
	int64_t wait_head;
	int64_t wait_tail;
	int64_t prio_front;
	int64_t seq;
	int64_t counts[8]; /* indexed by jobq_state (WAITING..FAILED used) */
	eng_limits lim;    /* limits and rate window (absent in older records: none) */
} lmdb_qmeta;

/* A job as stored: the job plus storage-only fields. */
typedef struct lmdb_rec {
	jobq_job *j;
	int64_t lock_until;
	int64_t ia;  /* index key parts of the job's current state */
	uint64_t ib; /* (see idx_key in lmdb_records.c) */
	uint64_t log_next;
	uint64_t log_count;
} lmdb_rec;

/* The running fields of an active job (DBI_ACTIVE value); strings not NUL-terminated. */
enum { LMDB_RUN_LOGS = 1 }; /* the job may have log lines */
typedef struct lmdb_run {
	uint64_t seq; /* fetch order */
	int64_t lock_until;
	int64_t processed_on;
	uint32_t attempts_started;
	uint32_t flags;
	const char *token, *dedup;
	size_t token_len, dedup_len;
	const char *pb; /* the fetcher's worker name (BullMQ `pb`), or NULL */
	size_t pb_len;
} lmdb_run;

/* An encoded record: `data` points into `inl` unless the record is bigger. */
typedef struct lmdb_buf {
	char *data;
	size_t size, cap;
	int oom;
	char inl[1024];
} lmdb_buf;

/* A write transaction in progress. */
typedef struct lmdb_wctx {
	jobq_backend_queue *q;
	lmdb_env *e;
	MDB_txn *txn;
	int mdb_rc; /* the LMDB failure behind an error, if any */
	int commit_anyway;
	int bump_work;
	int wrote_events;
	int64_t ev_start;
	/* Events of this transaction, written under one key by op_body (ev_flush). */
	lmdb_buf evb;
	int64_t ev_first; /* sequence number of the first one */
	lmdb_qmeta m;
	int m_loaded, m_dirty;
	/*
	 * Cursors kept for the whole transaction (opened on first use, closed by
	 * jobq_lmdb__write): a positioned cursor finds a key on its current page without a
	 * search from the root, and consecutive jobs' keys are neighbours.
	 */
	MDB_cursor *cur[DBI__COUNT];
	/* take_one: the waiting / prioritized cursor sits on the entry after the one it took. */
	int take_next[2];
} lmdb_wctx;

typedef int (*lmdb_write_fn)(lmdb_wctx *c, void *arg);

/* lmdb_env.c */
int jobq_lmdb__env_acquire(lmdb_env **out, const char *path, const jobq_lmdb_options *opts);
void jobq_lmdb__env_release(lmdb_env *e);
/* The shared handle of queue `name` (name_len validated by the caller). */
int jobq_lmdb__queue_get(jobq_backend_queue **out, lmdb_env *e, const char *name, size_t len);
/* Runs `fn` in one write transaction (retried after growing a full map). */
int jobq_lmdb__write(jobq_backend_queue *q, lmdb_write_fn fn, void *arg);
/* Begins / ends a read transaction (holding the resize lock shared). */
int jobq_lmdb__read_begin(lmdb_env *e, MDB_txn **txn);
void jobq_lmdb__read_end(lmdb_env *e, MDB_txn *txn);
int jobq_lmdb__error(int mdb_rc, const char *what);
/* As jobq_lmdb__error for a failed commit of `e`: LMDB's EIO for a short write on a full file
 * system becomes JOBQ_ENOSPC. */
int jobq_lmdb__commit_error(lmdb_env *e, int mdb_rc);
uint32_t jobq_lmdb__wake_load(lmdb_env *e, uint32_t slot, int events);
void jobq_lmdb__wake_bump(lmdb_env *e, uint32_t slot, int work, int events);
void jobq_lmdb__wake_all(lmdb_env *e);
/* Sleeps while the word is `seen`, up to `ms` (capped at 1 s as a backstop). */
void jobq_lmdb__wake_wait(lmdb_env *e, uint32_t slot, int events, uint32_t seen, int64_t ms);

/* lmdb_gate.c: see there why every LMDB begin and reader check goes through these. */
/* Opens `dir`/jobq-lock (0 or a jobq error); gate_close does nothing unless it succeeded. */
/* Opens (creating if needed) and maps jobq-wake of `dir`; *created: this call made it. */
int jobq_lmdb__wake_map_open(lmdb_env *e, int *created, const char *dir, unsigned int mode);
/* Opens (creating if needed) the gate file of `dir`; *created: this call made it. */
int jobq_lmdb__gate_open(lmdb_env *e, int *created, const char *dir, unsigned int mode);
/* Opens (creating if needed) the store file `name` of `dir`, its path to `path` (PATH_MAX
 * bytes); *created: this call made it. */
int jobq_lmdb__open_store_file(int *fd_out, int *created, char *path, const char *dir,
                               const char *name, unsigned int mode);
/* Real blocks for the first `len` bytes of `fd` (ENOSPC now, not SIGBUS in a mapping later);
 * keep_size: without changing the file's size. */
int jobq_lmdb__alloc_blocks(int fd, const char *path, off_t len, int keep_size);
void jobq_lmdb__gate_close(lmdb_env *e);
/* The write gate, held across a write transaction: enter before mdb_txn_begin, leave after
 * its commit or abort (0 or an errno value). */
int jobq_lmdb__write_gate_enter(lmdb_env *e);
void jobq_lmdb__write_gate_leave(lmdb_env *e);
/* mdb_txn_begin (no parent) behind its gate: an LMDB return code, or an errno value if the
 * gate failed. A write transaction begun holds the write gate: leave it after the commit or
 * abort. */
int jobq_lmdb__txn_begin(MDB_txn **txn, lmdb_env *e, unsigned int flags);
/* mdb_reader_check behind the reader gate: an LMDB return code or an errno value. */
int jobq_lmdb__reader_check(lmdb_env *e);

/* lmdb_migrate.c: converts a format-1 store's active index in the open transaction (at open). */
int jobq_lmdb__migrate_v1(lmdb_env *e, MDB_txn *txn);
/* lmdb_records.c: the index key of a job of `q` in state `s` with key parts ia/ib, written to
 * `buf` (LMDB_KEY_MAX bytes); its length, 0 if too long. */
size_t jobq_lmdb__idx_key(unsigned char *buf, const jobq_backend_queue *q, jobq_state s, int64_t ia,
                          uint64_t ib);
/* lmdb_records.c: the index table of state `s` (DBI_WAIT...DBI_FAILED), or -1 if it has none. */
int jobq_lmdb__state_dbi(jobq_state s);

/* lmdb_check.c: the vtable's check slot. */
int jobq_lmdb__check(jobq_check_report *report, jobq_backend *b, size_t max_messages);
/* lmdb_check.c: the vtable's list_queues slot. */
int jobq_lmdb__list_queues(jobq_strings **out, jobq_backend *b);
/* lmdb_env.c: the names of the tables (DBI_*). */
const char *jobq_lmdb__dbi_name(int which);

/* lmdb_codec.c. The encoders fill `b` (release it with buf_free; nothing to free on error). */
void jobq_lmdb__buf_init(lmdb_buf *b);
void jobq_lmdb__buf_free(lmdb_buf *b);
/* Appends n bytes: 0 or JOBQ_ENOMEM. */
int jobq_lmdb__buf_append(lmdb_buf *b, const void *p, size_t n);
int jobq_lmdb__rec_encode(lmdb_buf *b, const lmdb_rec *r);
int jobq_lmdb__rec_decode(lmdb_rec *r, const char *id, const void *buf, size_t len);
/* As rec_decode, into one allocation (jobq_job__new_packed) with `token` (if not NULL) as the
 * job's token: for jobs handed to the core as they are, whose strings are never replaced. */
int jobq_lmdb__rec_decode_packed(lmdb_rec *r, const char *id, const void *buf, size_t len,
                                 const char *token);
/* Running entries; decode points into buf. */
int jobq_lmdb__run_encode(lmdb_buf *b, const lmdb_run *run);
int jobq_lmdb__run_decode(lmdb_run *run, const void *buf, size_t len);
/* The fields a completion checks and deletes by, pointing into the record's bytes. */
typedef struct lmdb_peek {
	int64_t state, lock_until, ia;
	uint64_t ib, log_count;
	const char *token, *dedup; /* not NUL-terminated */
	size_t token_len, dedup_len;
	int has_token, has_dedup;
} lmdb_peek;
/* 0, or JOBQ_EIO (no error set) if the record is not one. */
int jobq_lmdb__rec_peek(lmdb_peek *pk, const void *buf, size_t len);
int jobq_lmdb__qmeta_encode(lmdb_buf *b, const lmdb_qmeta *m);
int jobq_lmdb__qmeta_decode(lmdb_qmeta *m, const void *buf, size_t len);
/* Events: [name, job id | nil, k, v, ...]. */
int jobq_lmdb__event_encode(lmdb_buf *b, const char *name, const char *job_id, size_t nfields,
                            const jobq_event_field *fields);
/* The same, appended to what `b` holds (b initialised); JOBQ_ENOMEM with b marked. */
int jobq_lmdb__event_append(lmdb_buf *b, const char *name, const char *job_id, size_t nfields,
                            const jobq_event_field *fields);
/* Decodes the first event of buf (appending it to `list` unless list is NULL); *used gets its
 * length in bytes. */
int jobq_lmdb__event_decode_append(jobq_event_list *list, const char *id, const void *buf,
                                   size_t len, size_t *used);
/* Dedup: [version, owner, expires_at] and, while an add is stashed with the key
 * (keepLastIfActive), its id and job record (bin): [..., stash id, stash record]. */
int jobq_lmdb__dedup_encode(lmdb_buf *b, const char *owner, int64_t expires_at,
                            const char *stash_id, const void *stash, size_t stash_len);
/* The stash of a dedup record: 1, its id (into `id`, JOBQ_ID_MAX + 1 bytes) and its record
 * (pointing into `buf`); 0 when there is none. */
int jobq_lmdb__dedup_stash(char *id, const void **rec, size_t *rec_len, const void *buf,
                           size_t len);
int jobq_lmdb__dedup_decode(char *owner, size_t owner_cap, int64_t *expires_at, const void *buf,
                            size_t len);

#endif
