/*
 * The memory backend's internals, shared by its files: the reference implementation of the storage
 * semantics (BullMQ 6 on Redis, minus the wire format), per process, fully driven by the core's
 * logical clock.
 *
 * Data structures, per queue (struct jobq_backend_queue):
 * - jobs: an open-addressing table by id (struct jslot: hash + job; decimal ids keep runs of
 *   64 in consecutive slots). Each job is ONE block holding the struct, its id, name, data
 *   and dedup id; blocks up to 1 KiB are carved from per-queue chunks (64 KiB doubling to
 *   8 MiB, huge-page aligned and MADV_HUGEPAGE from 4 MiB) and recycled per 16-byte size
 *   class; an emptied queue keeps only its newest chunk. Progress, failure and logs live in a
 *   side block allocated on first use; result and a long token are separate allocations.
 *   Options are interned: consecutive adds with equal options share one refcounted record
 *   (struct mopts), so a bulk add allocates nothing per job.
 * - waiting, active, completed, failed: intrusive doubly linked lists (prev/next in the job).
 *   waiting runs from head to tail (head = next to run; lifo, stalled and released jobs go to
 *   the head). active is in fetch order. completed/failed are appended when a job finishes;
 *   the logical clock never goes back, so head = oldest finish, tail = newest.
 * - prioritized and delayed: red-black trees (<bsd/sys/tree.h>) sharing one node (a job is in
 *   at most one) keyed (k1, k2): prioritized (priority, insertion counter; a negative,
 *   decreasing counter puts a released job at the front of its priority), delayed (due time,
 *   insertion counter).
 * - dedup: a uthash table dedup id -> owner id (inline) + expiry (0: none; logical clock).
 * - events: a ring of the newest EV_RING_MAX (16384) events, grown lazily; each event is 64
 *   bytes (sequence number, type, prev state, a number, and the job id plus up to two string
 *   values packed inline, or in one heap block when longer) and is formatted only when read.
 *   Event ids are the sequence numbers in decimal; they keep increasing across obliterate.
 *
 * Locking: one mutex per queue; every vtable operation on a queue is one critical section
 * (validate and allocate first, then mutate, so a failed operation changes nothing; a bulk add
 * that hits an allocation failure half way rolls back). Each queue has two condition
 * variables on CLOCK_MONOTONIC: `work_cv` (wait_for_work; signalled when a job becomes ready or
 * a delayed job is scheduled) and `ev_cv` (events_read; broadcast on every event while someone
 * waits). wake() bumps the queue's generation counter and broadcasts both, under the queue
 * mutex, so a wake between a waiter's check and its sleep is never lost.
 *
 * Instances: a backend handle (struct mbackend: the vtable plus a pointer) refers to an
 * instance (struct minstance) that owns the queues; the instance mutex guards only its queue
 * table (lock order: instance, then queue). Named instances live in a process-wide registry
 * (registry_mu) and are refcounted; the last backend of a name frees it. Queue handles are the
 * queue states themselves: they live as long as the instance, so closing and reopening a queue
 * keeps its jobs.
 */
#ifndef JOBQ_MEMORY_INT_H
#define JOBQ_MEMORY_INT_H

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobq/backends.h"
#include "jobq/sys/backend.h"
#include "backends/backend.h"
#include "engine/limits.h"

#ifndef HASH_NONFATAL_OOM
#define HASH_NONFATAL_OOM 1
#endif
/* FNV-1a: fast on short ids, and free of the switch fall-through that clang warns about. */
#define HASH_FUNCTION(keyptr, keylen, hashv) HASH_FNV(keyptr, keylen, hashv)
#define uthash_malloc(sz)                    jobq__malloc(sz)
#define uthash_free(ptr, sz)                 jobq__free(ptr)
#include <uthash.h>
#include <bsd/sys/tree.h>

#define EV_RING_MIN   256u
#define EV_RING_MAX   16384u
#define EV_INLINE     38
#define GEN_ID_SPACE  21 /* a generated id: up to 20 digits and its NUL */
#define STACK_BATCH   16
#define TOKEN_INLINE  40   /* the core's tokens ("<16 hex>:<counter>", <= 38 bytes) fit inline */
#define BLOCK_ALIGN   16   /* job blocks are allocated in multiples of this */
#define RECYCLE_MAX   1024 /* blocks up to this size are carved from the queue's chunks */
#define NCLASS        (RECYCLE_MAX / BLOCK_ALIGN) /* their size classes (free lists) */
#define CHUNK_MIN     (64u * 1024)                /* a queue's first chunk; then doubling */
#define CHUNK_MAX     (8u * 1024 * 1024)          /* ... up to this */
#define HUGE_PAGE     (2u * 1024 * 1024)
#define NAME_MAX_URL  200
#define URL_SCHEME    "mem://"
#define URL_SCHEME_SZ 6

/* --- jobs ------------------------------------------------------------------------------- */

/*
 * Options, shared by consecutive jobs added with equal options (interned per queue: the last
 * one used is remembered) and refcounted under the queue mutex. The per-job fields (job_id,
 * dedup_id, timestamp) are kept in the job and are zero here.
 */
typedef struct mopts {
	uint32_t refs;
	jobq_job_options o; /* backoff.custom_type points after the struct */
} mopts;

/* The fields most jobs never use, in a block of their own (keeps job blocks small). */
typedef struct mside {
	char *progress;
	char *failed_reason;
	char **stacktrace;
	size_t stacktrace_count;
	char **logs;
	size_t nlogs;
	size_t logs_cap;
} mside;

extern const mside jobq_mem__side_none; /* what a job without a side block reads */
#define SIDE(j) ((j)->side != NULL ? (const mside *)(j)->side : &jobq_mem__side_none)

/* A child of a parent (memory_flow.c): its queue (which lives as long as the instance) and
 * id, and what it left: a result or a failure reason. */
typedef struct mdep {
	struct jobq_backend_queue *q;
	char *id;
	char *value;
} mdep;

/* What a job of a flow knows: its parent, and its children by what became of them. */
typedef struct mflow {
	struct jobq_backend_queue *pq; /* the parent's queue; NULL: no parent */
	char *pid;                     /* the parent's id */
	jobq_parent_policy policy;     /* what its failure for good does to the parent */
	mdep *dep[4];                  /* JOBQ_DEP_PROCESSED .. JOBQ_DEP_FAILED */
	size_t n[4];
	size_t cap; /* every list has room for all the children the job ever had */
	char *defa; /* an owned deferred failure (JOBQ_PARENT_FAIL) the job's defa points to */
} mflow;

typedef struct mjob mjob;
struct mjob {
	union {
		struct {
			mjob *prev, *next; /* waiting, active, completed, failed */
		};
		RB_ENTRY(mjob) rb; /* prioritized, delayed */
	};
	int64_t k1, k2;
	mopts *mo;
	const char *id; /* these point into this allocation */
	const char *name;
	const char *data;
	size_t data_len;
	const char *dedup_id; /* or NULL */
	uint8_t id_len;
	uint8_t custom_id;
	jobq_state state;
	int64_t timestamp;
	int64_t processed_on;
	int64_t finished_on;
	int64_t delay_ms;
	uint32_t priority;
	uint32_t attempts_started;
	uint32_t attempts_made;
	uint32_t stalled_count;
	struct mside *side; /* NULL until the job has progress, a failure or logs */
	struct mflow *flow; /* NULL unless the job is a parent or a child of a flow */
	char *result;
	const char *defa; /* deferred failure: a static string or NULL */
	char *token;      /* tok_inl, or a heap copy of a longer token */
	int64_t lock_expiry;
	const char *pb;    /* the last fetcher's worker name (q->names), or NULL */
	uint32_t blk_size; /* bytes of this allocation */
	char tok_inl[TOKEN_INLINE];
};

typedef struct mlist {
	mjob *head, *tail;
	size_t count;
} mlist;

static inline int
job_cmp(const mjob *a, const mjob *b) {
	if (a->k1 != b->k1)
		return a->k1 < b->k1 ? -1 : 1;
	if (a->k2 != b->k2)
		return a->k2 < b->k2 ? -1 : 1;
	return 0;
}

RB_HEAD(mtree, mjob);
RB_GENERATE_INTERNAL(mtree, mjob, rb, job_cmp, __attribute__((unused)) static)

/* --- deduplication keys ----------------------------------------------------------------- */

typedef struct mdedup {
	UT_hash_handle hh;
	int64_t expiry; /* 0: lives until its owner finishes or is removed */
	mjob *stash; /* keepLastIfActive's latest add (a filled job block in no table), or NULL */
	size_t owner_len;
	char owner[JOBQ_ID_MAX + 1];
	size_t key_len;
	char key[]; /* NUL-terminated */
} mdedup;

/* --- events ----------------------------------------------------------------------------- */

typedef struct mevent {
	uint64_t seq;
	int64_t num;
	char *heap; /* NULL: the strings are in inl */
	uint8_t type;
	uint8_t prev; /* a jobq_state, 0: none */
	char inl[EV_INLINE];
} mevent;

typedef struct evring {
	mevent *buf;
	size_t cap;     /* 0 or a power of two */
	uint64_t first; /* oldest retained sequence */
	uint64_t next;  /* next sequence to assign */
} evring;

/* --- queues and instances --------------------------------------------------------------- */

/* A worker name jobs point to (mjob.pb), kept once per queue: a fetch stores a pointer, not a
 * copy, in the job. Made when a worker attaches; once a job points to it (`used`) it stays
 * until the queue is destroyed, else it goes when its last worker detaches. */
typedef struct mname {
	struct mname *next;
	unsigned int attached; /* workers holding it */
	int used;              /* a job points to it */
	char s[];
} mname;

typedef struct minstance minstance;

/* A slot of the job table: the id's hash (so probes and growth do not touch the jobs). */
typedef struct jslot {
	uint64_t h;
	mjob *j; /* NULL: free */
} jslot;

/* BullMQ's per-minute metrics of one kind of finished job: the counters (engine.h eng_metrics)
 * and the data points newest first in `pts`, room for `cap` reserved before a step that may
 * push. */
typedef struct mmetrics {
	int64_t count, prev_ts, prev_count;
	int started;
	int64_t *pts;
	size_t n, cap;
} mmetrics;

/* A chunk of job blocks: this header, then blocks of BLOCK_ALIGN multiples up to RECYCLE_MAX. */
typedef struct mchunk {
	struct mchunk *next;
	size_t size, extra; /* carvable bytes, and bytes more for alignment */
} mchunk;

struct jobq_backend_queue {
	UT_hash_handle hh;
	minstance *inst;
	pthread_mutex_t mu;
	pthread_cond_t work_cv;
	pthread_cond_t ev_cv;
	uint64_t gen;
	unsigned int work_waiters;
	unsigned int ev_waiters;
	struct jslot *jobs; /* the job table: open addressing, linear probing */
	void *jobs_mem;     /* its allocation (jobs is huge-page aligned in a large one) */
	size_t jobs_cap;    /* 0 or a power of two; at most half full */
	size_t njobs;
	mlist waiting, active, completed, failed;
	mlist waiting_children; /* parents of flows, in the order they were added */
	struct mtree prio, delayed;
	size_t nprio, ndelayed;
	int64_t order;       /* increasing insertion counter */
	int64_t front_order; /* decreasing, for the front of a priority */
	uint64_t id_counter;
	int paused;
	eng_limits lim; /* global concurrency, rate limit and window (engine/limits.h) */
	mdedup *dedup;
	mopts *last_opts;           /* the options of the latest add (not a reference) */
	mjob *spare[NCLASS];        /* free carved blocks per size class (linked by next) */
	struct mchunk *chunks;      /* the chunks blocks are carved from (newest first) */
	char *carve_at, *carve_end; /* the unused rest of the newest chunk */
	size_t chunk_next;          /* the size of the next chunk */
	unsigned int adders;        /* adds holding carved blocks (they may unlock a while) */
	evring ev;
	struct promote_log *plog; /* fetch's record of its promotions, or NULL */
	struct msched *scheds;    /* job schedulers by id (memory_sched.h), uthash */
	mname *names;             /* the worker names of fetches (newest first) */
	char *ev_pre; /* the strings of the next `failed` event, allocated beforehand, or NULL */
	mmetrics metrics[2]; /* completed, failed (memory_metrics.c) */
	char name[];         /* NUL-terminated */
};
typedef struct jobq_backend_queue mqueue;

/* A promotion made by a fetch, as it records them to undo them. */
typedef struct promoted {
	mjob *j;
	int64_t k1, k2, delay_ms;
} promoted;

typedef struct promote_log {
	promoted *e;
	size_t n, cap;
} promote_log;

struct minstance {
	UT_hash_handle hh; /* registry, for named instances */
	pthread_mutex_t mu;
	mqueue *queues;
	/* Flows (memory_flow.c). Once the instance holds a flow (`flows` set), every operation
	 * that may reach another queue (add of a flow, fetch, complete, fail, remove, clean,
	 * drain) runs under flow_mu, and locks the other queues it reaches as it goes (`held`).
	 * No other operation ever holds two queue mutexes, so this cannot deadlock. */
	pthread_mutex_t flow_mu;
	atomic_int flows;
	mqueue *own;   /* the queue of the operation holding flow_mu */
	mqueue **held; /* the other queues it locked */
	size_t nheld, held_cap;
	unsigned int refs;
	char *name; /* NULL: private */
};

typedef struct mbackend {
	jobq_backend vt; /* first: a jobq_backend * is a mbackend * */
	minstance *inst;
} mbackend;

/* --- lists ------------------------------------------------------------------------------ */

static inline void
list_push_back(mlist *l, mjob *j) {
	j->next = NULL;
	j->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
	l->count++;
}

static inline void
list_push_front(mlist *l, mjob *j) {
	j->prev = NULL;
	j->next = l->head;
	if (l->head != NULL)
		l->head->prev = j;
	else
		l->tail = j;
	l->head = j;
	l->count++;
}

static inline void
list_remove(mlist *l, mjob *j) {
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		l->head = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	else
		l->tail = j->prev;
	j->prev = j->next = NULL;
	l->count--;
}

static inline mlist *
list_of(mqueue *q, jobq_state s) {
	switch (s) {
	case JOBQ_STATE_WAITING:
		return &q->waiting;
	case JOBQ_STATE_ACTIVE:
		return &q->active;
	case JOBQ_STATE_COMPLETED:
		return &q->completed;
	case JOBQ_STATE_FAILED:
		return &q->failed;
	case JOBQ_STATE_WAITING_CHILDREN:
		return &q->waiting_children;
	default:
		return NULL;
	}
}

/* --- the job table (memory_store.c grows it) ---------------------------------------------- */

static inline uint64_t
mix64(uint64_t h) {
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53u;
	h ^= h >> 33;
	return h;
}

/*
 * Decimal ids (the generated ones) keep runs of 64 consecutive numbers in 64 consecutive
 * slots (the table has at least 64), the runs spread at random: a bulk add or a worker going
 * through the queue in order touches a new cache line of the table every 4 jobs, not every
 * job. Other ids: FNV-1a.
 */
static inline uint64_t
id_hash(const char *s, size_t n) {
	if (n > 0 && n <= 19) {
		uint64_t v = 0;
		size_t i = 0;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			v = v * 10 + (uint64_t)(s[i++] - '0');
		if (i == n)
			return (mix64(v >> 6) & ~(uint64_t)63) | (v & 63);
	}
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
	return mix64(h);
}

static inline mjob *
find_job(mqueue *q, const char *id) {
	if (id == NULL || q->jobs_cap == 0)
		return NULL;
	size_t n = strlen(id), mask = q->jobs_cap - 1;
	uint64_t h = id_hash(id, n);
	for (size_t i = h & mask; q->jobs[i].j != NULL; i = (i + 1) & mask) {
		const mjob *j = q->jobs[i].j;
		if (q->jobs[i].h == h && j->id_len == n && memcmp(j->id, id, n) == 0)
			return q->jobs[i].j;
	}
	return NULL;
}

static inline void
jobs_put(jslot *t, size_t cap, uint64_t h, mjob *j) {
	size_t i = h & (cap - 1);
	while (t[i].j != NULL)
		i = (i + 1) & (cap - 1);
	t[i].h = h;
	t[i].j = j;
}

/* Room for `extra` more jobs (under the lock); JOBQ_ENOMEM (error not set) if none. */
int jobq_mem__jobs_reserve(mqueue *q, size_t extra);

/* Adds a job whose id is not in the table; jobq_mem__jobs_reserve made room. */
static inline void
jobs_add(mqueue *q, mjob *j) {
	jobs_put(q->jobs, q->jobs_cap, id_hash(j->id, j->id_len), j);
	q->njobs++;
}

/* Removes a job from the table (backward shift: no tombstones). */
static inline void
jobs_del(mqueue *q, const mjob *j) {
	size_t mask = q->jobs_cap - 1;
	size_t i = id_hash(j->id, j->id_len) & mask;
	while (q->jobs[i].j != j)
		i = (i + 1) & mask;
	for (size_t k = i;;) {
		q->jobs[i].j = NULL;
		for (;;) {
			k = (k + 1) & mask;
			if (q->jobs[k].j == NULL) {
				q->njobs--;
				return;
			}
			/* slot k may move back to i unless its home lies in (i, k] */
			size_t home = q->jobs[k].h & mask;
			if (((k - home) & mask) >= ((k - i) & mask))
				break;
		}
		q->jobs[i] = q->jobs[k];
		i = k;
	}
}

static inline mdedup *
find_dedup(mqueue *q, const char *key) {
	mdedup *d = NULL;
	HASH_FIND(hh, q->dedup, key, strlen(key), d);
	return d;
}

/* --- job blocks (memory_store.c) ---------------------------------------------------------- */

/* A block of `size` from a new chunk (block_get's slow path), or NULL. */
mjob *jobq_mem__block_carve(mqueue *q, size_t size);

/* A block of `size` (a multiple of BLOCK_ALIGN, at most RECYCLE_MAX), or NULL. */
static inline mjob *
block_get(mqueue *q, size_t size) {
	size_t c = size / BLOCK_ALIGN - 1;
	mjob *j = q->spare[c];
	if (j != NULL) {
		q->spare[c] = j->next;
		return j;
	}
	if ((size_t)(q->carve_end - q->carve_at) < size)
		return jobq_mem__block_carve(q, size);
	j = (mjob *)(void *)q->carve_at;
	q->carve_at += size;
	j->blk_size = (uint32_t)size;
	return j;
}

/* Gives back a job block: a carved one to its free list, a large one to the allocator. */
static inline void
block_put(mqueue *q, mjob *j) {
	if (j->blk_size <= RECYCLE_MAX) {
		size_t c = j->blk_size / BLOCK_ALIGN - 1;
		j->next = q->spare[c];
		q->spare[c] = j;
	} else {
		jobq__free(j);
	}
}

/* Frees the chunks (no job uses them any more). */
void jobq_mem__chunks_free(mqueue *q);
/* Keeps only the newest chunk of a queue without jobs (see memory_store.c). */
void jobq_mem__queue_trim(mqueue *q);

/* The result of most jobs: shared, never freed. */
extern char jobq_mem__null_result[];

static inline void
result_free(char *r) {
	if (r != jobq_mem__null_result)
		jobq__free(r);
}

static inline void
token_free(mjob *j) {
	if (j->token != j->tok_inl)
		jobq__free(j->token);
	j->token = NULL;
}

/* The job's side block, allocated on first use (under the lock); NULL: out of memory. */
static inline mside *
side_get(mjob *j) {
	if (j->side == NULL)
		j->side = jobq__calloc(1, sizeof(mside));
	return j->side;
}

/* A new options record holding one reference (the adding call's); NULL on ENOMEM. */
mopts *jobq_mem__mopts_new(const jobq_job_options *o);

static inline void
mopts_unref(mqueue *q, mopts *m) {
	if (m != NULL && --m->refs == 0) {
		if (q->last_opts == m)
			q->last_opts = NULL;
		jobq__free(m);
	}
}

/* Frees what job `j` holds and gives its block back (it is in no index or table any more). */
void jobq_mem__job_free_mem(mqueue *q, mjob *j);
/* A copy of `j` for the caller (one allocation); `token`: the lock token to hand out, or
 * NULL. */
int jobq_mem__job_copy(jobq_job **out, const mjob *j, const char *token, size_t token_len);

/* Frees a stashed add (its options reference and its block). */
static inline void
stash_free(mqueue *q, mjob *j) {
	if (j != NULL) {
		mopts_unref(q, j->mo);
		block_put(q, j);
	}
}

static inline void
dedup_delete(mqueue *q, mdedup *d) {
	HASH_DEL(q->dedup, d);
	stash_free(q, d->stash);
	jobq__free(d);
}

/* --- events (memory_events.c) ------------------------------------------------------------- */

int jobq_mem__ring_grow(evring *r);
void jobq_mem__ring_clear(evring *r);
/* Drops the events from sequence `from` on (rollback of a failed step). */
void jobq_mem__ring_truncate(evring *r, uint64_t from);
/*
 * Appends one event (an ENG_EV_* kind). Never fails: when memory is short the oldest events go
 * earlier, and a long value that cannot be stored is replaced by an empty string. `pre`: the
 * storage for strings longer than EV_INLINE, allocated beforehand (taken), or NULL.
 */
void jobq_mem__ev_store(mqueue *q, int type, const char *job_id, size_t l0, int prev, int64_t num,
                        const char *s1, size_t l1, const char *s2, size_t l2, char *pre);
int jobq_mem__events_read(jobq_event_list **out, jobq_backend_queue *q, const char *after,
                          size_t max, int64_t timeout_ms);

/* --- work wake-ups ------------------------------------------------------------------------ */

static inline void
work_signal(mqueue *q, int many) {
	if (q->work_waiters == 0)
		return;
	if (many)
		pthread_cond_broadcast(&q->work_cv);
	else
		pthread_cond_signal(&q->work_cv);
}

static inline int64_t
next_due(mqueue *q) {
	mjob *d = RB_MIN(mtree, &q->delayed);
	return d ? d->k1 : 0;
}

/* --- the vtable's operations (memory_ops.c, memory_admin.c) -------------------------------- */

int jobq_mem__add(jobq_job_id *ids, int *outcomes, jobq_backend_queue *q,
                  const jobq_add_request *reqs, size_t n, int64_t now);
/* The worker_attach / worker_detach slots: the worker's name kept in the queue (mname). */
int jobq_mem__worker_attach(void **presence, jobq_backend_queue *q, const char *name);
void jobq_mem__worker_detach(jobq_backend_queue *q, void *presence);
int jobq_mem__fetch(jobq_job **out, jobq_fetch_info *info, jobq_backend_queue *q, const char *token,
                    int64_t lock_ms, int64_t now);
int jobq_mem__extend_lock(jobq_backend_queue *q, const char *id, const char *token, int64_t lock_ms,
                          int64_t now);
int jobq_mem__complete(jobq_backend_queue *q, const char *id, const char *token,
                       const char *result_json, const jobq_keep *keep, int64_t now);
int jobq_mem__complete_fetch(jobq_job **jobs, jobq_fetch_info *info, jobq_backend_queue *q,
                             jobq_completion *done, size_t ndone, const char *const *tokens,
                             size_t max, int64_t lock_ms, int64_t now);
int jobq_mem__fail(jobq_backend_queue *q, const char *id, const char *token, const jobq_failure *f,
                   int64_t now);
int jobq_mem__release(jobq_backend_queue *q, const char *id, const char *token, int64_t now);
int jobq_mem__reap_stalled(jobq_strings **recovered, jobq_backend_queue *q, uint32_t max_stalled,
                           int64_t stalled_interval_ms, int64_t now);
int jobq_mem__get(jobq_job **out, jobq_backend_queue *q, const char *id);
int jobq_mem__list(jobq_job_list **out, jobq_backend_queue *q, jobq_state state, size_t offset,
                   size_t limit);
int jobq_mem__counts(jobq_counts *out, jobq_backend_queue *q);
int jobq_mem__remove(jobq_backend_queue *q, const char *id, int64_t now);
/* memory_sched.c: the job scheduler slots; jobq_mem__scheds_clear frees a queue's records */
int jobq_mem__scheduler_upsert(jobq_job_id *iteration, jobq_backend_queue *q, const char *id,
                               const jobq_scheduler_spec *spec, int64_t pattern_next_ms,
                               int64_t now_ms);
int jobq_mem__scheduler_get(jobq_scheduler **out, jobq_backend_queue *q, const char *id);
int jobq_mem__scheduler_list(jobq_scheduler_list **out, jobq_backend_queue *q);
int jobq_mem__scheduler_remove(jobq_backend_queue *q, const char *id, int64_t now_ms);
int jobq_mem__scheduler_next(jobq_backend_queue *q, const jobq_job *job, int64_t now_ms);
void jobq_mem__scheds_clear(mqueue *q);
/* memory_ops.c: the block size of an add and the job filled into such a block */
size_t jobq_mem__add_block_size(const jobq_add_request *r, size_t *name_len);
mjob *jobq_mem__add_fill(mjob *j, const jobq_add_request *r, const char *id, size_t id_len,
                         size_t name_len);
int jobq_mem__set_paused(jobq_backend_queue *q, int paused, int64_t now);
int jobq_mem__is_paused(int *out, jobq_backend_queue *q);
/* memory_limits.c */
int jobq_mem__set_limits(jobq_backend_queue *q, const jobq_queue_limits *l, unsigned int what,
                         int64_t now);
int jobq_mem__get_limits(jobq_queue_limits *out, jobq_backend_queue *q, int64_t now);
int jobq_mem__rate_limit(jobq_backend_queue *q, int64_t ms, int64_t now);
int jobq_mem__drain(jobq_backend_queue *q, int include_delayed, int64_t now);
int jobq_mem__clean(jobq_strings **removed, jobq_backend_queue *q, jobq_state state,
                    int64_t grace_ms, size_t limit, int64_t now);
int jobq_mem__promote(jobq_backend_queue *q, const char *id, int64_t now);
int jobq_mem__retry_failed(jobq_backend_queue *q, const char *id, int64_t now);
int jobq_mem__progress(jobq_backend_queue *q, const char *id, const char *token, const char *json,
                       int64_t now);
int jobq_mem__add_log(jobq_backend_queue *q, const char *id, const char *line, int64_t keep);
int jobq_mem__get_logs(jobq_strings **out, jobq_backend_queue *q, const char *id, size_t start,
                       size_t limit);
/* Empties a queue (obliterate, destroy): every job, key and event goes. */
void jobq_mem__queue_reset(mqueue *q);
/* memory_metrics.c: the metrics of finished set `s`; room for `max` points, reserved under
 * the lock before a step that may count (JOBQ_ENOMEM changes nothing); what the engine's
 * engp_metrics_push does; the metrics slot; forgetting them (queue_reset). */
mmetrics *jobq_mem__metrics_of(mqueue *q, jobq_state s);
int jobq_mem__metrics_reserve(mqueue *q, jobq_state s, uint32_t max);
void jobq_mem__metrics_push(mmetrics *mm, int64_t point, uint32_t zeros, uint32_t max);
int jobq_mem__metrics(jobq_metrics **out, jobq_backend_queue *q, jobq_state kind, int64_t start,
                      int64_t end);
void jobq_mem__metrics_reset(mqueue *q);

/* --- flows (memory_flow.c) ------------------------------------------------------------------ */

int jobq_mem__flow_add(jobq_job_id *ids, jobq_backend_queue *q, const jobq_flow_job *jobs, size_t n,
                       const jobq_flow_parent *parent, int64_t now);
int jobq_mem__dependencies(jobq_dependencies *out, jobq_backend_queue *q, const char *id);
/* Locks `q` for an operation that may reach other queues (flow_mu first once the instance
 * holds flows); returns what jobq_mem__unlock needs. */
int jobq_mem__lock(mqueue *q);
/* Unlocks `q` and every queue the operation locked on its way, then flow_mu if held. */
void jobq_mem__unlock(mqueue *q, int flow_held);
/* Locks queue `other` for the operation holding flow_mu, once. */
void jobq_mem__lock_other(mqueue *q, mqueue *other);
/* Frees a job's flow record. */
void jobq_mem__flow_free(mflow *f);
/* The queue named `name` of the instance, created when missing (NULL: out of memory, error
 * set). */
mqueue *jobq_mem__queue_get(minstance *inst, const char *name);
/* memory_ops.c: fills a preallocated block for request `r` with id `id`. */
mjob *jobq_mem__add_fill(mjob *j, const jobq_add_request *r, const char *id, size_t id_len,
                         size_t name_len);
size_t jobq_mem__add_block_size(const jobq_add_request *r, size_t *name_len);

#endif
