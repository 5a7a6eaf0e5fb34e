/*
 * The memory backend: the reference implementation of the storage semantics (BullMQ 6 on
 * Redis, minus the wire format), per process, fully driven by the core's logical clock.
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
#define _DEFAULT_SOURCE /* madvise(MADV_HUGEPAGE) */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "jobq/backends.h"
#include "jobq/sys/backend.h"
#include "backends/backend.h"

#define HASH_NONFATAL_OOM 1
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
#define STALLED_DEFA  "job stalled more than allowable limit"
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

static const mside side_none; /* what a job without a side block reads */
#define SIDE(j) ((j)->side != NULL ? (const mside *)(j)->side : &side_none)

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
	char *result;
	const char *defa; /* deferred failure: a static string or NULL */
	char *token;      /* tok_inl, or a heap copy of a longer token */
	int64_t lock_expiry;
	uint32_t blk_size; /* bytes of this allocation */
	char tok_inl[TOKEN_INLINE];
};

typedef struct mlist {
	mjob *head, *tail;
	size_t count;
} mlist;

static int
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
	size_t owner_len;
	char owner[JOBQ_ID_MAX + 1];
	size_t key_len;
	char key[]; /* NUL-terminated */
} mdedup;

/* --- events ----------------------------------------------------------------------------- */

enum {
	EV_ADDED,
	EV_WAITING,
	EV_DELAYED,
	EV_ACTIVE,
	EV_PROGRESS,
	EV_COMPLETED,
	EV_FAILED,
	EV_RETRIES_EXHAUSTED,
	EV_STALLED,
	EV_DRAINED,
	EV_REMOVED,
	EV_CLEANED,
	EV_PAUSED,
	EV_RESUMED,
	EV_DUPLICATED,
	EV_DEDUPLICATED
};

static const char *const ev_names[] = {"added",    "waiting",   "delayed",    "active",
                                       "progress", "completed", "failed",     "retries-exhausted",
                                       "stalled",  "drained",   "removed",    "cleaned",
                                       "paused",   "resumed",   "duplicated", "deduplicated"};

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

typedef struct minstance minstance;

/* A slot of the job table: the id's hash (so probes and growth do not touch the jobs). */
typedef struct jslot {
	uint64_t h;
	mjob *j; /* NULL: free */
} jslot;

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
	struct mtree prio, delayed;
	size_t nprio, ndelayed;
	int64_t order;       /* increasing insertion counter */
	int64_t front_order; /* decreasing, for the front of a priority */
	uint64_t id_counter;
	int paused;
	mdedup *dedup;
	mopts *last_opts;           /* the options of the latest add (not a reference) */
	mjob *spare[NCLASS];        /* free carved blocks per size class (linked by next) */
	struct mchunk *chunks;      /* the chunks blocks are carved from (newest first) */
	char *carve_at, *carve_end; /* the unused rest of the newest chunk */
	size_t chunk_next;          /* the size of the next chunk */
	unsigned int adders;        /* adds holding carved blocks (they may unlock a while) */
	evring ev;
	char name[]; /* NUL-terminated */
};
typedef struct jobq_backend_queue mqueue;

struct minstance {
	UT_hash_handle hh; /* registry, for named instances */
	pthread_mutex_t mu;
	mqueue *queues;
	unsigned int refs;
	char *name; /* NULL: private */
};

typedef struct mbackend {
	jobq_backend vt; /* first: a jobq_backend * is a mbackend * */
	minstance *inst;
} mbackend;

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static minstance *registry;

/* --- small helpers ---------------------------------------------------------------------- */

static const char *
state_name(int s) {
	switch (s) {
	case JOBQ_STATE_WAITING:
		return "waiting";
	case JOBQ_STATE_PRIORITIZED:
		return "prioritized";
	case JOBQ_STATE_DELAYED:
		return "delayed";
	case JOBQ_STATE_ACTIVE:
		return "active";
	case JOBQ_STATE_COMPLETED:
		return "completed";
	case JOBQ_STATE_FAILED:
		return "failed";
	case JOBQ_STATE_PAUSED:
		return "paused";
	case JOBQ_STATE_WAITING_CHILDREN:
		return "waiting-children";
	default:
		return "unknown";
	}
}

static void
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

static void
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

static void
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

static mlist *
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
	default:
		return NULL;
	}
}

/* --- the job table ---------------------------------------------------------------------- */

static uint64_t
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
static uint64_t
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

static mjob *
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

static void
jobs_put(jslot *t, size_t cap, uint64_t h, mjob *j) {
	size_t i = h & (cap - 1);
	while (t[i].j != NULL)
		i = (i + 1) & (cap - 1);
	t[i].h = h;
	t[i].j = j;
}

/* Room for `extra` more jobs (under the lock); JOBQ_ENOMEM (error not set) if none. */
static int
jobs_reserve(mqueue *q, size_t extra) {
	size_t need = q->njobs + extra;
	if (need <= q->jobs_cap / 2)
		return 0;
	size_t cap = q->jobs_cap ? q->jobs_cap : 64;
	while (cap / 2 < need) {
		if (cap > SIZE_MAX / 2 / sizeof(jslot))
			return JOBQ_ENOMEM;
		cap *= 2;
	}
	/* A large table goes on huge pages, like the job blocks (4 KiB pages would fault
	 * ~16,000 times on the way to a million jobs). */
	size_t bytes = cap * sizeof(jslot);
	void *mem = NULL;
	jslot *t = NULL;
	if (bytes >= 2 * HUGE_PAGE) {
		if ((mem = jobq__malloc(bytes + HUGE_PAGE)) == NULL)
			return JOBQ_ENOMEM;
		uintptr_t a = ((uintptr_t)mem + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
		t = (jslot *)(void *)((char *)mem + (a - (uintptr_t)mem));
#ifdef MADV_HUGEPAGE
		(void)madvise(t, bytes, MADV_HUGEPAGE); /* only a hint */
#endif
		memset(t, 0, bytes);
	} else if ((t = mem = jobq__calloc(cap, sizeof(*t))) == NULL) {
		return JOBQ_ENOMEM;
	}
	for (size_t i = 0; i < q->jobs_cap; i++)
		if (q->jobs[i].j != NULL)
			jobs_put(t, cap, q->jobs[i].h, q->jobs[i].j);
	jobq__free(q->jobs_mem);
	q->jobs = t;
	q->jobs_mem = mem;
	q->jobs_cap = cap;
	return 0;
}

/* Adds a job whose id is not in the table; jobs_reserve made room. */
static void
jobs_add(mqueue *q, mjob *j) {
	jobs_put(q->jobs, q->jobs_cap, id_hash(j->id, j->id_len), j);
	q->njobs++;
}

/* Removes a job from the table (backward shift: no tombstones). */
static void
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

static mdedup *
find_dedup(mqueue *q, const char *key) {
	mdedup *d = NULL;
	HASH_FIND(hh, q->dedup, key, strlen(key), d);
	return d;
}

/* --- events ----------------------------------------------------------------------------- */

static int
ring_grow(evring *r) {
	size_t ncap = r->cap ? r->cap * 2 : EV_RING_MIN;
	mevent *nbuf = jobq__malloc(ncap * sizeof(*nbuf));
	if (nbuf == NULL)
		return JOBQ_ENOMEM;
	for (uint64_t s = r->first; s < r->next; s++)
		nbuf[s & (ncap - 1)] = r->buf[s & (r->cap - 1)];
	jobq__free(r->buf);
	r->buf = nbuf;
	r->cap = ncap;
	return 0;
}

static void
ring_clear(evring *r) {
	for (uint64_t s = r->first; s < r->next; s++)
		jobq__free(r->buf[s & (r->cap - 1)].heap);
	r->first = r->next;
}

/* Drops the events from sequence `from` on (rollback of a failed add). */
static void
ring_truncate(evring *r, uint64_t from) {
	for (uint64_t s = from > r->first ? from : r->first; s < r->next; s++)
		jobq__free(r->buf[s & (r->cap - 1)].heap);
	r->next = from;
	if (r->first > from)
		r->first = from;
}

static void
ev_wake_readers(mqueue *q) {
	if (q->ev_waiters)
		pthread_cond_broadcast(&q->ev_cv);
}

/*
 * Appends one event. Never fails: when memory is short the oldest events go earlier, and a
 * long value that cannot be stored is replaced by an empty string. `pre`: the storage for
 * strings longer than EV_INLINE, allocated beforehand (taken), or NULL.
 */
static void
ev_store(mqueue *q, int type, const char *job_id, size_t l0, int prev, int64_t num, const char *s1,
         size_t l1, const char *s2, size_t l2, char *pre) {
	evring *r = &q->ev;
	if (r->next - r->first == r->cap) {
		if (r->cap >= EV_RING_MAX || ring_grow(r) < 0) {
			if (r->cap == 0) {
				jobq__free(pre);
				return;
			}
			mevent *old = &r->buf[r->first & (r->cap - 1)];
			if (old->heap != NULL)
				jobq__free(old->heap);
			r->first++;
		}
	}
	mevent *e = &r->buf[r->next & (r->cap - 1)];
	size_t total = l0 + l1 + l2 + 3;
	char *dst = e->inl;
	e->heap = NULL;
	if (total <= EV_INLINE) {
		jobq__free(pre);
	} else {
		e->heap = pre != NULL ? pre : jobq__malloc(total);
		if (e->heap != NULL) {
			dst = e->heap;
		} else {
			l1 = l2 = 0;
			if (l0 > EV_INLINE - 3)
				l0 = EV_INLINE - 3;
		}
	}
	/* Most events carry a job id only: copy what there is. */
	if (l0 > 0)
		memcpy(dst, job_id, l0);
	dst[l0] = '\0';
	if (l1 > 0)
		memcpy(dst + l0 + 1, s1, l1);
	dst[l0 + 1 + l1] = '\0';
	if (l2 > 0)
		memcpy(dst + l0 + l1 + 2, s2, l2);
	dst[l0 + l1 + l2 + 2] = '\0';
	e->type = (uint8_t)type;
	e->prev = (uint8_t)prev;
	e->num = num;
	e->seq = r->next++;
	ev_wake_readers(q);
}

static void
ev_push_n(mqueue *q, int type, const char *job_id, size_t l0, int prev, int64_t num, const char *s1,
          size_t l1, const char *s2, size_t l2) {
	ev_store(q, type, job_id, l0, prev, num, s1, l1, s2, l2, NULL);
}

static void
ev_push(mqueue *q, int type, const char *job_id, int prev, int64_t num, const char *s1,
        const char *s2) {
	ev_push_n(q, type, job_id, job_id ? strlen(job_id) : 0, prev, num, s1, s1 ? strlen(s1) : 0,
	          s2, s2 ? strlen(s2) : 0);
}

static void
ev_job(mqueue *q, int type, const mjob *j, int prev) {
	ev_push_n(q, type, j->id, j->id_len, prev, 0, NULL, 0, NULL, 0);
}

/* Formats one stored event into `list`. */
static int
ev_format(jobq_event_list *list, const mevent *e) {
	char id[24], num[24];
	const char *s0 = e->heap ? e->heap : e->inl;
	const char *s1 = s0 + strlen(s0) + 1;
	const char *s2 = s1 + strlen(s1) + 1;
	jobq_event_field f[3];
	size_t n = 0;
	const char *job_id = s0;
	snprintf(id, sizeof(id), "%" PRIu64, e->seq);
	snprintf(num, sizeof(num), "%" PRId64, e->num);
	switch (e->type) {
	case EV_ADDED:
		f[n++] = (jobq_event_field){"name", s1};
		break;
	case EV_WAITING:
	case EV_ACTIVE:
	case EV_REMOVED:
		if (e->prev)
			f[n++] = (jobq_event_field){"prev", state_name(e->prev)};
		break;
	case EV_DELAYED:
		f[n++] = (jobq_event_field){"delay", num};
		break;
	case EV_PROGRESS:
		f[n++] = (jobq_event_field){"data", s1};
		break;
	case EV_COMPLETED:
		f[n++] = (jobq_event_field){"returnvalue", s1};
		f[n++] = (jobq_event_field){"prev", "active"};
		break;
	case EV_FAILED:
		f[n++] = (jobq_event_field){"failedReason", s1};
		f[n++] = (jobq_event_field){"prev", "active"};
		break;
	case EV_RETRIES_EXHAUSTED:
		f[n++] = (jobq_event_field){"attemptsMade", num};
		break;
	case EV_CLEANED:
		f[n++] = (jobq_event_field){"count", num};
		job_id = NULL;
		break;
	case EV_DRAINED:
	case EV_PAUSED:
	case EV_RESUMED:
		job_id = NULL;
		break;
	case EV_DEDUPLICATED:
		f[n++] = (jobq_event_field){"deduplicationId", s1};
		f[n++] = (jobq_event_field){"deduplicatedJobId", s2};
		break;
	default:
		break;
	}
	return jobq_event_list__append(list, id, ev_names[e->type], job_id, n, f);
}

/* --- work wake-ups ---------------------------------------------------------------------- */

static void
work_signal(mqueue *q, int many) {
	if (q->work_waiters == 0)
		return;
	if (many)
		pthread_cond_broadcast(&q->work_cv);
	else
		pthread_cond_signal(&q->work_cv);
}

/* --- job placement ---------------------------------------------------------------------- */

static void
tree_insert(mqueue *q, mjob *j, jobq_state s, int64_t k1, int64_t k2) {
	j->k1 = k1;
	j->k2 = k2;
	j->state = s;
	if (s == JOBQ_STATE_PRIORITIZED) {
		RB_INSERT(mtree, &q->prio, j);
		q->nprio++;
	} else {
		RB_INSERT(mtree, &q->delayed, j);
		q->ndelayed++;
	}
}

/*
 * Waiting or prioritized, by the job's priority. `front_wait`: a job without priority runs
 * next (lifo, release); `front_prio`: a prioritized job runs first within its priority.
 */
static void
make_ready(mqueue *q, mjob *j, int front_wait, int front_prio) {
	if (j->priority > 0) {
		tree_insert(q, j, JOBQ_STATE_PRIORITIZED, j->priority,
		            front_prio ? --q->front_order : ++q->order);
	} else {
		j->state = JOBQ_STATE_WAITING;
		if (front_wait)
			list_push_front(&q->waiting, j);
		else
			list_push_back(&q->waiting, j);
	}
}

static void
make_delayed(mqueue *q, mjob *j, int64_t due) {
	tree_insert(q, j, JOBQ_STATE_DELAYED, due, ++q->order);
}

/* Takes the job out of whatever structure holds it (the job stays in the id table). */
static void
job_unlink(mqueue *q, mjob *j) {
	mlist *l = list_of(q, j->state);
	if (l != NULL) {
		list_remove(l, j);
	} else if (j->state == JOBQ_STATE_PRIORITIZED) {
		RB_REMOVE(mtree, &q->prio, j);
		q->nprio--;
	} else if (j->state == JOBQ_STATE_DELAYED) {
		RB_REMOVE(mtree, &q->delayed, j);
		q->ndelayed--;
	}
	j->state = JOBQ_STATE_UNKNOWN;
}

/* A new options record holding one reference (the adding call's). */
static mopts *
mopts_new(const jobq_job_options *o) {
	size_t cl = o->backoff.custom_type ? strlen(o->backoff.custom_type) + 1 : 0;
	mopts *m = jobq__malloc(sizeof(*m) + cl);
	if (m == NULL)
		return NULL;
	m->refs = 1;
	m->o = *o;
	m->o.job_id = NULL;
	m->o.dedup_id = NULL;
	m->o.timestamp = 0;
	if (cl) {
		memcpy(m + 1, o->backoff.custom_type, cl);
		m->o.backoff.custom_type = (const char *)(m + 1);
	}
	return m;
}

static void
mopts_unref(mqueue *q, mopts *m) {
	if (m != NULL && --m->refs == 0) {
		if (q->last_opts == m)
			q->last_opts = NULL;
		jobq__free(m);
	}
}

/*
 * Job blocks up to RECYCLE_MAX bytes are carved from large chunks (jobq__malloc) and go back
 * to a free list of their size class; they are never freed one by one. This keeps the
 * per-job cost of an add at a pointer bump, lets a worker free what a producer allocated
 * without malloc's cross-thread path, and lets large chunks live on transparent huge pages
 * (a queue of a million jobs is ~500 MB: 4 KiB pages would fault 130,000 times). The chunks
 * live until the queue is obliterated or destroyed (when no job uses them). Under the lock.
 */
static void
chunks_free(mqueue *q) {
	while (q->chunks != NULL) {
		mchunk *c = q->chunks;
		q->chunks = c->next;
		jobq__free(c);
	}
	memset(q->spare, 0, sizeof(q->spare));
	q->carve_at = q->carve_end = NULL;
	q->chunk_next = 0;
}

/* Where blocks are carved from a new chunk of `size` usable bytes plus `extra` for alignment. */
static void
chunk_carve_area(mqueue *q, mchunk *ch, size_t size, size_t extra) {
	uintptr_t align = extra >= HUGE_PAGE ? HUGE_PAGE : BLOCK_ALIGN;
	uintptr_t start = ((uintptr_t)(ch + 1) + align - 1) & ~(align - 1);
	q->carve_at = (char *)ch + (start - (uintptr_t)ch);
	q->carve_end = q->carve_at + size;
#ifdef MADV_HUGEPAGE
	/* Only a hint; what lies before and after the huge pages is never touched. */
	if (align == HUGE_PAGE)
		(void)madvise(q->carve_at, size, MADV_HUGEPAGE);
#endif
}

/* A block of `size` (a multiple of BLOCK_ALIGN, at most RECYCLE_MAX), or NULL. */
static mjob *
block_get(mqueue *q, size_t size) {
	size_t c = size / BLOCK_ALIGN - 1;
	mjob *j = q->spare[c];
	if (j != NULL) {
		q->spare[c] = j->next;
		return j;
	}
	if ((size_t)(q->carve_end - q->carve_at) < size) {
		/* Chunks of 4 MiB and more are huge-page aligned: malloc aligns them to 4 KiB
		 * only, so they get a huge page more than they use. */
		size_t csize = q->chunk_next < CHUNK_MIN ? CHUNK_MIN : q->chunk_next;
		size_t extra = csize >= 2 * HUGE_PAGE ? HUGE_PAGE : BLOCK_ALIGN;
		mchunk *ch = jobq__malloc(sizeof(mchunk) + extra + csize);
		if (ch == NULL)
			return NULL;
		ch->next = q->chunks;
		ch->size = csize;
		ch->extra = extra;
		q->chunks = ch;
		chunk_carve_area(q, ch, csize, extra);
		q->chunk_next = csize < CHUNK_MAX ? csize * 2 : CHUNK_MAX;
	}
	j = (mjob *)(void *)q->carve_at;
	q->carve_at += size;
	j->blk_size = (uint32_t)size;
	return j;
}

/* Gives back a job block: a carved one to its free list, a large one to the allocator. */
static void
block_put(mqueue *q, mjob *j) {
	if (j->blk_size <= RECYCLE_MAX) {
		size_t c = j->blk_size / BLOCK_ALIGN - 1;
		j->next = q->spare[c];
		q->spare[c] = j;
	} else {
		jobq__free(j);
	}
}

/*
 * When a queue has no job left and no add holds blocks, it keeps only its newest chunk,
 * carved again from its start (a drained big queue gives its memory back; a queue that
 * keeps emptying reuses the same warm chunk). The job table goes too if it is large.
 */
static void
queue_trim(mqueue *q) {
	if (q->njobs != 0 || q->adders != 0 || q->chunks == NULL)
		return;
	mchunk *keep = q->chunks, *c = keep->next;
	keep->next = NULL;
	while (c != NULL) {
		mchunk *n = c->next;
		jobq__free(c);
		c = n;
	}
	memset(q->spare, 0, sizeof(q->spare));
	chunk_carve_area(q, keep, keep->size, keep->extra);
	if (q->jobs_cap > 4096) {
		jobq__free(q->jobs_mem);
		q->jobs_mem = NULL;
		q->jobs = NULL;
		q->jobs_cap = 0;
	}
}

/* The result of most jobs: shared, never freed. */
static char null_result[] = "null";

static void
result_free(char *r) {
	if (r != null_result)
		jobq__free(r);
}

static void
token_free(mjob *j) {
	if (j->token != j->tok_inl)
		jobq__free(j->token);
	j->token = NULL;
}

/* The job's side block, allocated on first use (under the lock); NULL: out of memory. */
static mside *
side_get(mjob *j) {
	if (j->side == NULL)
		j->side = jobq__calloc(1, sizeof(mside));
	return j->side;
}

static void
job_free_mem(mqueue *q, mjob *j) {
	mopts_unref(q, j->mo);
	result_free(j->result);
	token_free(j);
	mside *sd = j->side;
	if (sd != NULL) {
		jobq__free(sd->progress);
		jobq__free(sd->failed_reason);
		for (size_t i = 0; i < sd->stacktrace_count; i++)
			jobq__free(sd->stacktrace[i]);
		jobq__free(sd->stacktrace);
		for (size_t i = 0; i < sd->nlogs; i++)
			jobq__free(sd->logs[i]);
		jobq__free(sd->logs);
		jobq__free(sd);
	}
	block_put(q, j);
}

static void
dedup_delete(mqueue *q, mdedup *d) {
	HASH_DEL(q->dedup, d);
	jobq__free(d);
}

/* On removal or deletion: the dedup key goes if it names this job. */
static void
dedup_release_owned(mqueue *q, const mjob *j) {
	if (j->dedup_id == NULL)
		return;
	mdedup *d = find_dedup(q, j->dedup_id);
	if (d != NULL && d->owner_len == j->id_len && memcmp(d->owner, j->id, j->id_len) == 0)
		dedup_delete(q, d);
}

/* On finish: the key goes if its TTL is over, or if it has none and still names this job. */
static void
dedup_release_finished(mqueue *q, const mjob *j, int64_t now) {
	if (j->dedup_id == NULL)
		return;
	mdedup *d = find_dedup(q, j->dedup_id);
	if (d == NULL)
		return;
	if (d->expiry > 0) {
		if (d->expiry <= now)
			dedup_delete(q, d);
	} else if (d->owner_len == j->id_len && memcmp(d->owner, j->id, j->id_len) == 0) {
		dedup_delete(q, d);
	}
}

/* Deletes a job with its logs; releases its dedup key if it owns it. */
static void
job_delete(mqueue *q, mjob *j) {
	job_unlink(q, j);
	jobs_del(q, j);
	dedup_release_owned(q, j);
	job_free_mem(q, j);
	queue_trim(q);
}

static void
drop_lock(mjob *j) {
	token_free(j);
	j->lock_expiry = 0;
}

static int
is_ready(const mqueue *q) {
	return !q->paused && (q->waiting.count > 0 || q->nprio > 0);
}

static int64_t
next_due(mqueue *q) {
	mjob *d = RB_MIN(mtree, &q->delayed);
	return d ? d->k1 : 0;
}

static void
promote_one(mqueue *q, mjob *j) {
	job_unlink(q, j);
	j->delay_ms = 0;
	make_ready(q, j, 0, 0);
	ev_job(q, EV_WAITING, j, JOBQ_STATE_DELAYED);
}

static void
drained_check(mqueue *q) {
	if (q->waiting.count == 0 && q->nprio == 0 && q->active.count == 0)
		ev_push(q, EV_DRAINED, NULL, 0, 0, NULL, NULL);
}

static void
apply_keep(mqueue *q, mlist *set, mjob *just, const jobq_keep *keep, int64_t now) {
	if (keep == NULL)
		return;
	switch (keep->mode) {
	case JOBQ_KEEP_NONE:
		job_delete(q, just);
		break;
	case JOBQ_KEEP_LIMIT:
		if (keep->age_ms >= 0) {
			while (set->head != NULL && set->head->finished_on <= now - keep->age_ms)
				job_delete(q, set->head);
		}
		if (keep->count >= 0) {
			while (set->count > (uint64_t)keep->count)
				job_delete(q, set->head);
		}
		break;
	default:
		break;
	}
}

/* --- copies for the caller -------------------------------------------------------------- */

/* Copies `len` bytes and a NUL to *p, advancing it; returns the copy. */
static char *
pack(char **p, const char *src, size_t len) {
	char *dst = *p;
	memcpy(dst, src, len);
	dst[len] = '\0';
	*p += len + 1;
	return dst;
}

static size_t
opt_len(const char *s) {
	return s ? strlen(s) + 1 : 0;
}

/*
 * A copy for the caller in ONE allocation (jobq_job__new_packed): the struct, then the
 * stack trace's pointer array, then every string. `token`: the lock token to hand out, or
 * NULL.
 */
static int
job_copy(jobq_job **out, const mjob *j, const char *token, size_t token_len) {
	const mside *sd = SIDE(j);
	size_t name_len = strlen(j->name);
	const char *custom = j->mo->o.backoff.custom_type;
	size_t sz = sd->stacktrace_count * sizeof(char *) + j->id_len + 1 + name_len + 1 +
	            j->data_len + 1 + opt_len(j->dedup_id) + opt_len(custom) +
	            opt_len(sd->progress) + opt_len(j->result) + opt_len(sd->failed_reason) +
	            opt_len(j->defa) + (token ? token_len + 1 : 0);
	for (size_t i = 0; i < sd->stacktrace_count; i++)
		sz += strlen(sd->stacktrace[i]) + 1;
	char *p;
	jobq_job *c = jobq_job__new_packed(sz, &p);
	if (c == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory copying job %s",
		                      j->id);
	if (sd->stacktrace_count > 0) {
		c->stacktrace = (char **)(void *)p;
		p += sd->stacktrace_count * sizeof(char *);
		for (size_t i = 0; i < sd->stacktrace_count; i++)
			c->stacktrace[i] = pack(&p, sd->stacktrace[i], strlen(sd->stacktrace[i]));
		c->stacktrace_count = sd->stacktrace_count;
	}
	c->id = pack(&p, j->id, j->id_len);
	c->name = pack(&p, j->name, name_len);
	c->data = pack(&p, j->data, j->data_len);
	c->data_len = j->data_len;
	c->opts = j->mo->o;
	c->opts.job_id = j->custom_id ? c->id : NULL;
	c->opts.dedup_id = j->dedup_id ? pack(&p, j->dedup_id, strlen(j->dedup_id)) : NULL;
	c->opts.backoff.custom_type = custom ? pack(&p, custom, strlen(custom)) : NULL;
	c->opts.timestamp = j->timestamp;
	c->state = j->state;
	c->timestamp = j->timestamp;
	c->processed_on = j->processed_on;
	c->finished_on = j->finished_on;
	c->delay_ms = j->delay_ms;
	c->priority = j->priority;
	c->attempts_started = j->attempts_started;
	c->attempts_made = j->attempts_made;
	c->stalled_count = j->stalled_count;
	if (sd->progress)
		c->progress = pack(&p, sd->progress, strlen(sd->progress));
	if (j->result)
		c->result = pack(&p, j->result, strlen(j->result));
	if (sd->failed_reason)
		c->failed_reason = pack(&p, sd->failed_reason, strlen(sd->failed_reason));
	if (j->defa)
		c->deferred_failure = pack(&p, j->defa, strlen(j->defa));
	if (token)
		c->token = pack(&p, token, token_len);
	*out = c;
	return 0;
}

/* --- lock checks ------------------------------------------------------------------------ */

static int
check_lock(mjob **out, mqueue *q, const char *id, const char *token, int64_t now) {
	/* Jobs mostly finish in the order they were fetched: try the oldest active job first. */
	mjob *j = q->active.head;
	size_t id_len = id ? strlen(id) : 0;
	if (j == NULL || j->id_len != id_len || memcmp(j->id, id, id_len) != 0)
		j = find_job(q, id);
	if (j == NULL)
		return jobq_error_set(JOBQ_ENOTFOUND, "job %s does not exist in queue %s",
		                      id ? id : "(null)", q->name);
	if (j->state != JOBQ_STATE_ACTIVE)
		return jobq_error_set(JOBQ_ESTATE, "job %s is %s, not active", j->id,
		                      state_name(j->state));
	if (token == NULL || j->token == NULL || strcmp(token, j->token) != 0)
		return jobq_error_set(JOBQ_ELOCKLOST, "job %s is locked by another token", j->id);
	if (j->lock_expiry <= now)
		return jobq_error_set(JOBQ_ELOCKLOST,
		                      "the lock of job %s expired at %" PRId64 " (now %" PRId64 ")",
		                      j->id, j->lock_expiry, now);
	*out = j;
	return 0;
}

/* --- queues ----------------------------------------------------------------------------- */

static void
queue_reset(mqueue *q) {
	for (size_t i = 0; i < q->jobs_cap; i++)
		if (q->jobs[i].j != NULL)
			job_free_mem(q, q->jobs[i].j);
	jobq__free(q->jobs_mem);
	q->jobs_mem = NULL;
	q->jobs = NULL;
	q->jobs_cap = q->njobs = 0;
	mdedup *d, *dtmp;
	HASH_ITER(hh, q->dedup, d, dtmp) {
		dedup_delete(q, d);
	}
	chunks_free(q); /* no job is left in them */
	memset(&q->waiting, 0, sizeof(q->waiting));
	memset(&q->active, 0, sizeof(q->active));
	memset(&q->completed, 0, sizeof(q->completed));
	memset(&q->failed, 0, sizeof(q->failed));
	RB_INIT(&q->prio);
	RB_INIT(&q->delayed);
	q->nprio = q->ndelayed = 0;
	q->order = q->front_order = 0;
	q->id_counter = 0;
	q->paused = 0;
	ring_clear(&q->ev);
}

static void
queue_destroy(mqueue *q) {
	queue_reset(q);
	jobq__free(q->ev.buf);
	pthread_cond_destroy(&q->work_cv);
	pthread_cond_destroy(&q->ev_cv);
	pthread_mutex_destroy(&q->mu);
	jobq__free(q);
}

static int
mem_queue_open(jobq_backend_queue **out, jobq_backend *b, const char *name) {
	minstance *inst = ((mbackend *)b)->inst;
	if (out == NULL || name == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: queue_open needs out and name");
	size_t len = strlen(name);
	pthread_mutex_lock(&inst->mu);
	mqueue *q = NULL;
	HASH_FIND(hh, inst->queues, name, len, q);
	if (q == NULL) {
		q = jobq__calloc(1, sizeof(*q) + len + 1);
		if (q == NULL) {
			pthread_mutex_unlock(&inst->mu);
			return jobq_error_set(JOBQ_ENOMEM,
			                      "memory backend: out of memory opening %s", name);
		}
		memcpy(q->name, name, len + 1);
		q->inst = inst;
		RB_INIT(&q->prio);
		RB_INIT(&q->delayed);
		q->ev.first = q->ev.next = 1;
		if (ring_grow(&q->ev) < 0) {
			pthread_mutex_unlock(&inst->mu);
			jobq__free(q);
			return jobq_error_set(JOBQ_ENOMEM,
			                      "memory backend: out of memory opening %s", name);
		}
		HASH_ADD_KEYPTR(hh, inst->queues, q->name, len, q);
		if (q->hh.tbl == NULL) {
			pthread_mutex_unlock(&inst->mu);
			jobq__free(q->ev.buf);
			jobq__free(q);
			return jobq_error_set(JOBQ_ENOMEM,
			                      "memory backend: out of memory opening %s", name);
		}
		pthread_mutex_init(&q->mu, NULL);
		jobq__cond_init_monotonic(&q->work_cv);
		jobq__cond_init_monotonic(&q->ev_cv);
	}
	pthread_mutex_unlock(&inst->mu);
	*out = q;
	return 0;
}

static void
mem_queue_close(jobq_backend_queue *q) {
	(void)q; /* the queue's state lives as long as its instance */
}

/* --- add -------------------------------------------------------------------------------- */

typedef struct addslot {
	mopts *mo;       /* options preallocated for a run of equal options, or NULL */
	mjob *blk;       /* preallocated job, NULL once used */
	size_t size;     /* the size blk needs */
	mdedup *dd;      /* preallocated dedup key, NULL once used */
	mjob *created;   /* the job this request created */
	mdedup *dd_new;  /* a dedup key this request inserted */
	mdedup *dd_upd;  /* a dedup key this request took over (old values in `dd`) */
	mdedup *dd_keep; /* backup holder for dd_upd */
} addslot;

static size_t
add_block_size(const jobq_add_request *r, size_t *name_len) {
	const jobq_job_options *o = r->opts;
	*name_len = r->name ? strlen(r->name) : 0;
	size_t id_space = (o->job_id && o->job_id[0]) ? strlen(o->job_id) + 1 : GEN_ID_SPACE;
	size_t sz = sizeof(mjob) + id_space + *name_len + 1 + r->len + 1;
	if (o->dedup_id)
		sz += strlen(o->dedup_id) + 1;
	return (sz + BLOCK_ALIGN - 1) / BLOCK_ALIGN * BLOCK_ALIGN;
}

/*
 * Takes carved blocks for the requests of up to RECYCLE_MAX bytes (under the lock); returns
 * how many larger ones miss, or JOBQ_ENOMEM (error not set).
 */
static int
take_blocks(mqueue *q, addslot *s, size_t n) {
	int missing = 0;
	q->adders++; /* until put_blocks */
	for (size_t i = 0; i < n; i++) {
		if (s[i].blk != NULL)
			continue;
		if (s[i].size <= RECYCLE_MAX) {
			if ((s[i].blk = block_get(q, s[i].size)) == NULL)
				return JOBQ_ENOMEM;
		} else {
			missing++;
		}
	}
	return missing;
}

/* Gives the blocks the requests did not use back (under the lock), once per take_blocks. */
static void
put_blocks(mqueue *q, addslot *s, size_t n) {
	q->adders--;
	for (size_t i = 0; i < n; i++) {
		if (s[i].blk != NULL) {
			block_put(q, s[i].blk);
			s[i].blk = NULL;
		}
	}
}

/* Allocates the blocks larger than RECYCLE_MAX (outside the lock). */
static int
alloc_blocks(addslot *s, size_t n) {
	for (size_t i = 0; i < n; i++) {
		if (s[i].blk != NULL)
			continue;
		if (s[i].size > UINT32_MAX || (s[i].blk = jobq__malloc(s[i].size)) == NULL)
			return JOBQ_ENOMEM;
		s[i].blk->blk_size = (uint32_t)s[i].size;
	}
	return 0;
}

/* Fills a preallocated block for request `r` with id `id`. */
static mjob *
add_fill(mjob *j, const jobq_add_request *r, const char *id, size_t id_len, size_t name_len) {
	const jobq_job_options *o = r->opts;
	char *p = (char *)(j + 1);
	uint32_t blk_size = j->blk_size;
	memset(j, 0, sizeof(*j));
	memcpy(p, id, id_len + 1);
	j->id = p;
	j->id_len = (uint8_t)id_len;
	j->custom_id = o->job_id && o->job_id[0];
	p += id_len + 1;
	memcpy(p, r->name ? r->name : "", name_len);
	p[name_len] = '\0';
	j->name = p;
	p += name_len + 1;
	if (r->len > 0)
		memcpy(p, r->data, r->len);
	p[r->len] = '\0';
	j->data = p;
	j->data_len = r->len;
	p += r->len + 1;
	j->blk_size = blk_size;
	if (o->dedup_id) {
		size_t l = strlen(o->dedup_id);
		memcpy(p, o->dedup_id, l + 1);
		j->dedup_id = p;
	}
	j->timestamp = o->timestamp;
	j->delay_ms = o->delay_ms > 0 ? o->delay_ms : 0;
	j->priority = o->priority;
	return j;
}

/* Drops the adding call's references to the options it allocated (under the lock). */
static void
release_opts(mqueue *q, addslot *s, size_t n) {
	for (size_t i = 0; i < n; i++) {
		mopts_unref(q, s[i].mo);
		s[i].mo = NULL;
	}
}

static void
add_rollback(mqueue *q, addslot *s, size_t upto, uint64_t counter, uint64_t ev_next) {
	for (size_t i = upto + 1; i-- > 0;) {
		if (s[i].dd_new != NULL) {
			HASH_DEL(q->dedup, s[i].dd_new);
			s[i].dd = s[i].dd_new; /* freed with the unused blocks */
			s[i].dd_new = NULL;
		}
		if (s[i].dd_upd != NULL) {
			mdedup *d = s[i].dd_upd, *bk = s[i].dd_keep;
			d->expiry = bk->expiry;
			d->owner_len = bk->owner_len;
			memcpy(d->owner, bk->owner, sizeof(d->owner));
			s[i].dd_upd = NULL;
		}
		if (s[i].created != NULL) {
			job_unlink(q, s[i].created);
			jobs_del(q, s[i].created);
			mopts_unref(q, s[i].created->mo);
			s[i].blk = s[i].created;
			s[i].created = NULL;
		}
	}
	q->id_counter = counter;
	ring_truncate(&q->ev, ev_next);
}

static int
mem_add(jobq_job_id *ids, int *outcomes, jobq_backend_queue *q, const jobq_add_request *reqs,
        size_t n, int64_t now) {
	if (n == 0)
		return 0;
	if (ids == NULL || outcomes == NULL || reqs == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: add needs ids, outcomes, reqs");
	for (size_t i = 0; i < n; i++) {
		const jobq_job_options *o = reqs[i].opts;
		if (o == NULL)
			return jobq_error_set(JOBQ_EINVAL,
			                      "memory backend: add request %zu has no opts", i);
		if (o->job_id && strlen(o->job_id) > JOBQ_ID_MAX)
			return jobq_error_set(JOBQ_EINVAL,
			                      "job id '%.40s...' is longer than %d bytes",
			                      o->job_id, JOBQ_ID_MAX);
	}
	addslot stack[STACK_BATCH];
	size_t name_lens_stack[STACK_BATCH];
	addslot *s = stack;
	size_t *name_lens = name_lens_stack;
	int rc = 0;
	if (n > STACK_BATCH) {
		s = jobq__calloc(n, sizeof(*s));
		name_lens = jobq__malloc(n * sizeof(*name_lens));
		if (s == NULL || name_lens == NULL) {
			rc = jobq_error_set(JOBQ_ENOMEM,
			                    "memory backend: out of memory adding %zu jobs", n);
			goto out;
		}
	} else {
		memset(stack, 0, sizeof(stack));
	}
	/* Allocate everything outside the lock. */
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || (reqs[i].opts != reqs[i - 1].opts &&
		               !jobq__job_options_equal(reqs[i].opts, reqs[i - 1].opts))) {
			if ((s[i].mo = mopts_new(reqs[i].opts)) == NULL)
				goto oom;
		}
		s[i].size = add_block_size(&reqs[i], &name_lens[i]);
		if (reqs[i].opts->dedup_id) {
			size_t kl = strlen(reqs[i].opts->dedup_id);
			s[i].dd = jobq__malloc(sizeof(mdedup) + kl + 1);
			if (s[i].dd == NULL)
				goto oom;
			memset(s[i].dd, 0, sizeof(mdedup));
			memcpy(s[i].dd->key, reqs[i].opts->dedup_id, kl + 1);
			s[i].dd->key_len = kl;
		}
	}

	pthread_mutex_lock(&q->mu);
	int missing = take_blocks(q, s, n);
	if (missing != 0) {
		/* Large jobs: allocate their blocks, outside the lock for a large batch. */
		if (missing > 0 && n > STACK_BATCH)
			pthread_mutex_unlock(&q->mu);
		if (missing < 0 || alloc_blocks(s, n) < 0) {
			if (missing > 0 && n > STACK_BATCH)
				pthread_mutex_lock(&q->mu);
			put_blocks(q, s, n);
			release_opts(q, s, n);
			pthread_mutex_unlock(&q->mu);
			goto oom;
		}
		if (n > STACK_BATCH)
			pthread_mutex_lock(&q->mu);
	}
	if (jobs_reserve(q, n) < 0) {
		put_blocks(q, s, n);
		release_opts(q, s, n);
		pthread_mutex_unlock(&q->mu);
		goto oom;
	}
	uint64_t counter0 = q->id_counter;
	uint64_t ev0 = q->ev.next;
	size_t ready = 0;
	mopts *run = NULL; /* the options preallocated for the current run of equal options */
	mopts *cur = NULL; /* the options the current run uses: q->last_opts if equal, or run */
	for (size_t i = 0; i < n; i++) {
		const jobq_add_request *r = &reqs[i];
		const jobq_job_options *o = r->opts;
		char gen[GEN_ID_SPACE];
		const char *id;
		size_t id_len;
		if (s[i].mo != NULL) {
			run = s[i].mo;
			cur = NULL;
		}
		q->id_counter++;
		if (o->job_id && o->job_id[0]) {
			id = o->job_id;
			id_len = strlen(id);
			if (find_job(q, id) != NULL) {
				memcpy(ids[i].str, id, id_len + 1);
				outcomes[i] = JOBQ_ADD_DUPLICATE;
				ev_push(q, EV_DUPLICATED, id, 0, 0, NULL, NULL);
				continue;
			}
		} else {
			id_len = jobq__u64_dec(gen, q->id_counter);
			id = gen;
		}
		mdedup *d = NULL;
		if (o->dedup_id) {
			d = find_dedup(q, o->dedup_id);
			int live = 0;
			if (d != NULL) {
				if (d->expiry > 0)
					live = d->expiry > now;
				else
					live = find_job(q, d->owner) != NULL;
			}
			if (live) {
				memcpy(ids[i].str, d->owner, d->owner_len + 1);
				outcomes[i] = JOBQ_ADD_DEDUPLICATED;
				ev_push(q, EV_DEDUPLICATED, d->owner, 0, 0, o->dedup_id, id);
				continue;
			}
		}
		mjob *j = add_fill(s[i].blk, r, id, id_len, name_lens[i]);
		s[i].blk = NULL;
		if (cur == NULL) {
			cur = q->last_opts;
			if (cur == NULL || !jobq__job_options_equal(&cur->o, o))
				cur = run;
		}
		cur->refs++;
		q->last_opts = cur;
		j->mo = cur;
		jobs_add(q, j);
		s[i].created = j;
		if (o->dedup_id) {
			int64_t expiry = o->dedup_ttl_ms > 0 ? now + o->dedup_ttl_ms : 0;
			if (d != NULL) {
				/* Take over an expired or stale key; keep its old values for
				 * rollback. */
				s[i].dd_keep = s[i].dd;
				s[i].dd_keep->expiry = d->expiry;
				s[i].dd_keep->owner_len = d->owner_len;
				memcpy(s[i].dd_keep->owner, d->owner, sizeof(d->owner));
				s[i].dd_upd = d;
			} else {
				d = s[i].dd;
				s[i].dd = NULL;
				HASH_ADD_KEYPTR(hh, q->dedup, d->key, d->key_len, d);
				if (d->hh.tbl == NULL) {
					s[i].dd = d;
					goto oom_locked;
				}
				s[i].dd_new = d;
			}
			d->expiry = expiry;
			d->owner_len = id_len;
			memcpy(d->owner, id, id_len + 1);
		}
		memcpy(ids[i].str, id, id_len + 1);
		outcomes[i] = JOBQ_ADD_CREATED;
		ev_push_n(q, EV_ADDED, j->id, id_len, 0, 0, j->name, name_lens[i], NULL, 0);
		if (j->delay_ms > 0) {
			int64_t due = j->timestamp + j->delay_ms;
			make_delayed(q, j, due);
			ev_push(q, EV_DELAYED, j->id, 0, due, NULL, NULL);
			ready++; /* wakes waiters so they re-arm their timers */
		} else {
			make_ready(q, j, o->lifo, 0);
			ev_job(q, EV_WAITING, j, 0);
			ready++;
		}
	}
	if (ready > 0)
		work_signal(q, ready > 1);
	put_blocks(q, s, n);
	release_opts(q, s, n);
	pthread_mutex_unlock(&q->mu);
	goto out;

oom_locked:
	add_rollback(q, s, n - 1, counter0, ev0);
	put_blocks(q, s, n);
	release_opts(q, s, n);
	pthread_mutex_unlock(&q->mu);
oom:
	rc = jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory adding %zu jobs", n);
out:
	if (s != NULL) {
		for (size_t i = 0; i < n; i++) {
			jobq__free(s[i].mo); /* only if the lock was never taken */
			jobq__free(s[i].blk);
			jobq__free(s[i].dd);
		}
	}
	if (s != stack)
		jobq__free(s);
	if (name_lens != name_lens_stack)
		jobq__free(name_lens);
	return rc;
}

/* --- fetch and the active job ----------------------------------------------------------- */

/* --- failing an active job --------------------------------------------------------------- */

/* What failing one job takes, allocated before anything changes. */
typedef struct fail_prep {
	mjob *j;
	char *reason;
	char *stack;   /* NULL: no stack line */
	mside *side;   /* a side block for a job that has none, or NULL */
	char **trace;  /* the stack trace with room for one more line (with `stack`) */
	char *ev_heap; /* the `failed` event's strings if they do not fit inline, or NULL */
} fail_prep;

static void
fail_prep_free(fail_prep *p) {
	jobq__free(p->reason);
	jobq__free(p->stack);
	jobq__free(p->side);
	jobq__free(p->trace);
	jobq__free(p->ev_heap);
	memset(p, 0, sizeof(*p));
}

/* Allocates the rest of what failing job `j` (`final`: for good) takes (p->reason and
 * p->stack are set). */
static int
fail_prepare(fail_prep *p, mjob *j, int final) {
	p->j = j;
	size_t ev_len = j->id_len + strlen(p->reason) + 3; /* as ev_store lays them out */
	if (final && ev_len > EV_INLINE && (p->ev_heap = jobq__malloc(ev_len)) == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in fail");
	if (j->side == NULL && (p->side = jobq__calloc(1, sizeof(mside))) == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in fail");
	if (p->stack != NULL &&
	    (p->trace = jobq__malloc((SIDE(j)->stacktrace_count + 1) * sizeof(char *))) == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in fail");
	return 0;
}

/* Fails active job p->j as decided in `f` (takes what `p` holds); cannot fail. */
static void
fail_apply(mqueue *q, fail_prep *p, const jobq_failure *f, int64_t now) {
	mjob *j = p->j;
	if (p->side != NULL)
		j->side = p->side;
	mside *sd = j->side;
	if (p->stack != NULL) {
		if (sd->stacktrace_count > 0)
			memcpy(p->trace, sd->stacktrace, sd->stacktrace_count * sizeof(char *));
		jobq__free(sd->stacktrace);
		sd->stacktrace = p->trace;
		sd->stacktrace[sd->stacktrace_count++] = p->stack;
	}
	char *reason = p->reason, *ev_heap = p->ev_heap;
	memset(p, 0, sizeof(*p));
	job_unlink(q, j);
	drop_lock(j);
	j->attempts_made++;
	jobq__free(sd->failed_reason);
	sd->failed_reason = reason;
	if (f->retry_at_ms >= 0 && f->retry_at_ms <= now) {
		make_ready(q, j, j->mo->o.lifo, 0);
		ev_job(q, EV_WAITING, j, JOBQ_STATE_ACTIVE);
		work_signal(q, 0);
	} else if (f->retry_at_ms > now) {
		j->delay_ms = f->retry_at_ms - now;
		make_delayed(q, j, f->retry_at_ms);
		ev_push(q, EV_DELAYED, j->id, 0, f->retry_at_ms, NULL, NULL);
		work_signal(q, 1);
	} else {
		j->finished_on = now;
		j->defa = NULL;
		j->state = JOBQ_STATE_FAILED;
		list_push_back(&q->failed, j);
		ev_store(q, EV_FAILED, j->id, j->id_len, 0, 0, reason, strlen(reason), NULL, 0,
		         ev_heap);
		ev_heap = NULL;
		if (j->attempts_made >= f->attempts)
			ev_push(q, EV_RETRIES_EXHAUSTED, j->id, 0, j->attempts_made, NULL, NULL);
		dedup_release_finished(q, j, now);
		apply_keep(q, &q->failed, j, &f->keep, now);
		drained_check(q);
	}
	jobq__free(ev_heap);
}

/* --- fetch and the active job ----------------------------------------------------------- */

/* A promotion, as promote_due_undoable records it. */
typedef struct promoted {
	mjob *j;
	int64_t k1, k2, delay_ms;
} promoted;

/*
 * promote_due, recording what it moved in *log (n entries, freed with jobq__free) so that
 * promote_undo can put it back. JOBQ_ENOMEM (nothing done) if the record cannot be made.
 */
static int
promote_due_undoable(promoted **log, size_t *n, mqueue *q, int64_t now) {
	*log = NULL;
	*n = 0;
	size_t due = 0;
	for (mjob *d = RB_MIN(mtree, &q->delayed); d != NULL && d->k1 <= now;
	     d = RB_NEXT(mtree, &q->delayed, d))
		due++;
	if (due == 0)
		return 0;
	if ((*log = jobq__malloc(due * sizeof(**log))) == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in fetch");
	mjob *d;
	while (*n < due && (d = RB_MIN(mtree, &q->delayed)) != NULL) {
		(*log)[(*n)++] = (promoted){d, d->k1, d->k2, d->delay_ms};
		promote_one(q, d);
	}
	work_signal(q, due > 1);
	return 0;
}

/* Undoes promote_due_undoable (the queue's order counter and events back to `order` and
 * `ev_next`, as they were before it). */
static void
promote_undo(mqueue *q, const promoted *log, size_t n, int64_t order, uint64_t ev_next) {
	for (size_t i = n; i-- > 0;) {
		mjob *j = log[i].j;
		job_unlink(q, j);
		j->delay_ms = log[i].delay_ms;
		tree_insert(q, j, JOBQ_STATE_DELAYED, log[i].k1, log[i].k2);
	}
	q->order = order;
	ring_truncate(&q->ev, ev_next);
}

/* Takes ready job `j`: active, locked until now + lock_ms (the lock's token is the caller's
 * to set), started; event `active`. */
static void
take_job(mqueue *q, mjob *j, int64_t lock_ms, int64_t now) {
	job_unlink(q, j);
	j->state = JOBQ_STATE_ACTIVE;
	list_push_back(&q->active, j);
	token_free(j);
	j->lock_expiry = now + lock_ms;
	j->processed_on = now;
	j->attempts_started++;
	ev_job(q, EV_ACTIVE, j, JOBQ_STATE_WAITING);
}

/* The next ready job after `j` in the order fetch takes them (first: j NULL), or NULL. */
static mjob *
next_ready(mqueue *q, mjob *j) {
	if (j == NULL)
		return q->waiting.head != NULL ? q->waiting.head : RB_MIN(mtree, &q->prio);
	if (j->state == JOBQ_STATE_WAITING)
		return j->next != NULL ? j->next : RB_MIN(mtree, &q->prio);
	return RB_NEXT(mtree, &q->prio, j);
}

/*
 * One fetch under the lock, all or nothing: promotes due delayed jobs, fails the ready jobs
 * that carry a deferred failure (see the fetch slot) and takes the next one: a copy for the
 * caller with `token`, which the job keeps in tok_inl or in `long_tok` (taken if used).
 * JOBQ_ENOJOB (error not set) if there is none; JOBQ_ENOMEM changes nothing.
 */
static int
fetch_locked(jobq_job **out, mqueue *q, const char *token, size_t token_len, char **long_tok,
             int64_t lock_ms, const jobq_fetch_info *info, int64_t now) {
	int64_t order = q->order;
	uint64_t ev_next = q->ev.next;
	promoted *log;
	size_t nlog;
	int rc = promote_due_undoable(&log, &nlog, q, now);
	if (rc < 0)
		return rc;
	/* Allocate everything first: the copy of the job to run, and what failing each job
	 * before it takes. */
	fail_prep stack[4], *fails = stack;
	size_t nfails = 0, cap = sizeof(stack) / sizeof(stack[0]);
	jobq_job *c = NULL;
	mjob *j = NULL;
	while (!q->paused && (j = next_ready(q, j)) != NULL) {
		if (j->defa == NULL) {
			rc = job_copy(&c, j, token, token_len);
			break;
		}
		if (nfails == cap) {
			fail_prep *more = jobq__malloc(2 * cap * sizeof(*more));
			if (more == NULL) {
				rc = jobq_error_set(JOBQ_ENOMEM,
				                    "memory backend: out of memory in fetch");
				break;
			}
			memcpy(more, fails, nfails * sizeof(*more));
			if (fails != stack)
				jobq__free(fails);
			fails = more;
			cap *= 2;
		}
		fail_prep *p = &fails[nfails++];
		memset(p, 0, sizeof(*p));
		p->reason = jobq__strdup(j->defa);
		p->stack = jobq__strdup(j->defa);
		if (p->reason == NULL || p->stack == NULL)
			rc = jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in fetch");
		else
			rc = fail_prepare(p, j, 1);
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		for (size_t i = 0; i < nfails; i++)
			fail_prep_free(&fails[i]);
		promote_undo(q, log, nlog, order, ev_next);
	} else {
		for (size_t i = 0; i < nfails; i++) {
			mjob *fj = fails[i].j;
			jobq_failure f = jobq__deferred_failure(fj->defa, &fj->mo->o, info);
			take_job(q, fj, lock_ms, now);
			fail_apply(q, &fails[i], &f, now);
		}
		if (c != NULL) {
			take_job(q, j, lock_ms, now);
			if (token_len >= TOKEN_INLINE) {
				j->token = *long_tok;
				*long_tok = NULL;
			} else {
				memcpy(j->tok_inl, token, token_len + 1);
				j->token = j->tok_inl;
			}
			c->state = JOBQ_STATE_ACTIVE;
			c->processed_on = now;
			c->attempts_started++;
			*out = c;
		} else {
			rc = JOBQ_ENOJOB;
		}
	}
	if (fails != stack)
		jobq__free(fails);
	jobq__free(log);
	return rc;
}

static int
mem_fetch(jobq_job **out, jobq_fetch_info *info, jobq_backend_queue *q, const char *token,
          int64_t lock_ms, int64_t now) {
	if (out == NULL || token == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: fetch needs out and a token");
	size_t token_len = strlen(token);
	char *long_tok = NULL;
	if (token_len >= TOKEN_INLINE && (long_tok = jobq__strdup(token)) == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in fetch");
	pthread_mutex_lock(&q->mu);
	int rc = fetch_locked(out, q, token, token_len, &long_tok, lock_ms, info, now);
	if (info != NULL)
		info->next_due_ms = next_due(q);
	if (rc == JOBQ_ENOJOB)
		jobq_error_set(JOBQ_ENOJOB, "no job to fetch in queue %s%s", q->name,
		               q->paused ? " (paused)" : "");
	pthread_mutex_unlock(&q->mu);
	jobq__free(long_tok);
	return rc;
}

static int
mem_extend_lock(jobq_backend_queue *q, const char *id, const char *token, int64_t lock_ms,
                int64_t now) {
	pthread_mutex_lock(&q->mu);
	mjob *j = NULL;
	int rc = check_lock(&j, q, id, token, now);
	if (rc == 0)
		j->lock_expiry = now + lock_ms;
	pthread_mutex_unlock(&q->mu);
	return rc;
}

/* The result as the job keeps it: the shared "null", or a copy (NULL on ENOMEM). */
static char *
result_dup(const char *result_json) {
	if (result_json == NULL || strcmp(result_json, "null") == 0)
		return null_result;
	return jobq__strdup(result_json);
}

/* Completes under the lock; takes `res` on success. */
static int
complete_locked(mqueue *q, const char *id, const char *token, char *res, const jobq_keep *keep,
                int64_t now) {
	mjob *j = NULL;
	int rc = check_lock(&j, q, id, token, now);
	if (rc < 0)
		return rc;
	job_unlink(q, j);
	drop_lock(j);
	j->attempts_made++;
	j->finished_on = now;
	result_free(j->result);
	j->result = res;
	j->state = JOBQ_STATE_COMPLETED;
	list_push_back(&q->completed, j);
	if (res == null_result)
		ev_push_n(q, EV_COMPLETED, j->id, j->id_len, 0, 0, "null", 4, NULL, 0);
	else
		ev_push(q, EV_COMPLETED, j->id, 0, 0, res, NULL);
	dedup_release_finished(q, j, now);
	apply_keep(q, &q->completed, j, keep, now);
	return 0;
}

static int
mem_complete(jobq_backend_queue *q, const char *id, const char *token, const char *result_json,
             const jobq_keep *keep, int64_t now) {
	char *res = result_dup(result_json);
	if (res == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in complete");
	pthread_mutex_lock(&q->mu);
	int rc = complete_locked(q, id, token, res, keep, now);
	if (rc == 0)
		drained_check(q);
	pthread_mutex_unlock(&q->mu);
	if (rc < 0)
		result_free(res);
	return rc;
}

static int
mem_complete_fetch(jobq_job **jobs, jobq_fetch_info *info, jobq_backend_queue *q,
                   jobq_completion *done, size_t ndone, const char *const *tokens, size_t max,
                   int64_t lock_ms, int64_t now) {
	if ((ndone > 0 && done == NULL) || (max > 0 && (jobs == NULL || tokens == NULL)))
		return jobq_error_set(JOBQ_EINVAL,
		                      "memory backend: complete_fetch needs done, jobs and tokens");
	/* Copy results and long tokens outside the lock. */
	char *res_stack[STACK_BATCH];
	char **res = ndone <= STACK_BATCH ? res_stack : jobq__malloc(ndone * sizeof(*res));
	size_t nres = 0;
	char *long_tok = NULL;
	int rc = 0;
	if (res != NULL)
		for (; nres < ndone; nres++)
			if ((res[nres] = result_dup(done[nres].result_json)) == NULL)
				break;
	if (res == NULL || nres < ndone) {
		for (size_t i = 0; i < nres; i++)
			result_free(res[i]);
		if (res != NULL && res != res_stack)
			jobq__free(res);
		for (size_t i = 0; i < ndone; i++)
			done[i].rc = JOBQ_ENOMEM; /* nothing was written */
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in complete");
	}
	pthread_mutex_lock(&q->mu);
	size_t completed = 0;
	for (size_t i = 0; i < ndone; i++) {
		done[i].rc =
		    complete_locked(q, done[i].id, done[i].token, res[i], &done[i].keep, now);
		if (done[i].rc < 0)
			result_free(res[i]);
		else
			completed++;
	}
	if (completed > 0)
		drained_check(q);
	size_t n = 0;
	while (n < max) {
		size_t tl = strlen(tokens[n]);
		if (tl >= TOKEN_INLINE && long_tok == NULL &&
		    (long_tok = jobq__strdup(tokens[n])) == NULL) {
			rc = jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in fetch");
			break;
		}
		rc = fetch_locked(&jobs[n], q, tokens[n], tl, &long_tok, lock_ms, info, now);
		if (rc < 0)
			break;
		n++;
	}
	if (info != NULL)
		info->next_due_ms = next_due(q);
	pthread_mutex_unlock(&q->mu);
	jobq__free(long_tok);
	if (res != res_stack)
		jobq__free(res);
	if (n > 0 || rc == 0 || rc == JOBQ_ENOJOB)
		return (int)n;
	return rc;
}

static int
mem_fail(jobq_backend_queue *q, const char *id, const char *token, const jobq_failure *f,
         int64_t now) {
	if (f == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: fail needs a failure");
	fail_prep p = {0};
	p.reason = jobq__strdup(f->reason ? f->reason : "");
	p.stack = f->stack ? jobq__strdup(f->stack) : NULL;
	if (p.reason == NULL || (f->stack && p.stack == NULL)) {
		fail_prep_free(&p);
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in fail");
	}
	pthread_mutex_lock(&q->mu);
	mjob *j = NULL;
	int rc = check_lock(&j, q, id, token, now);
	if (rc == 0)
		rc = fail_prepare(&p, j, f->retry_at_ms < 0);
	if (rc == 0)
		fail_apply(q, &p, f, now);
	pthread_mutex_unlock(&q->mu);
	fail_prep_free(&p);
	return rc;
}

static int
mem_release(jobq_backend_queue *q, const char *id, const char *token, int64_t now) {
	pthread_mutex_lock(&q->mu);
	mjob *j = NULL;
	int rc = check_lock(&j, q, id, token, now);
	if (rc == 0) {
		job_unlink(q, j);
		drop_lock(j);
		make_ready(q, j, 1, 1);
		ev_job(q, EV_WAITING, j, JOBQ_STATE_ACTIVE);
		work_signal(q, 0);
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int
mem_reap_stalled(jobq_strings **recovered, jobq_backend_queue *q, uint32_t max_stalled,
                 int64_t stalled_interval_ms, int64_t now) {
	(void)stalled_interval_ms;
	jobq_strings *ids = NULL;
	pthread_mutex_lock(&q->mu);
	size_t n = 0;
	for (mjob *j = q->active.head; j != NULL; j = j->next) {
		if (j->lock_expiry > now)
			continue;
		if (recovered != NULL && jobq_strings__append(&ids, j->id, j->id_len) < 0) {
			pthread_mutex_unlock(&q->mu);
			jobq_strings_free(ids);
			return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in reap");
		}
		n++;
	}
	for (mjob *j = q->active.head, *next; j != NULL && n > 0; j = next) {
		next = j->next;
		if (j->lock_expiry > now)
			continue;
		job_unlink(q, j);
		drop_lock(j);
		j->stalled_count++;
		if (j->stalled_count > max_stalled)
			j->defa = STALLED_DEFA;
		j->state = JOBQ_STATE_WAITING;
		list_push_front(&q->waiting, j);
		ev_job(q, EV_WAITING, j, JOBQ_STATE_ACTIVE);
		ev_job(q, EV_STALLED, j, 0);
	}
	if (n > 0)
		work_signal(q, n > 1);
	pthread_mutex_unlock(&q->mu);
	if (recovered != NULL)
		*recovered = ids;
	return (int)n;
}

/* --- reading ---------------------------------------------------------------------------- */

static int
mem_get(jobq_job **out, jobq_backend_queue *q, const char *id) {
	pthread_mutex_lock(&q->mu);
	mjob *j = find_job(q, id);
	int rc = j ? job_copy(out, j, NULL, 0)
	           : jobq_error_set(JOBQ_ENOTFOUND, "job %s not found in queue %s",
	                            id ? id : "(null)", q->name);
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int
list_add_copy(jobq_job_list **out, const mjob *j) {
	jobq_job *c;
	int rc = job_copy(&c, j, NULL, 0);
	if (rc < 0)
		return rc;
	rc = jobq_job_list__append(out, c);
	if (rc < 0)
		jobq_job_free(c);
	return rc;
}

static int
mem_list(jobq_job_list **out, jobq_backend_queue *q, jobq_state state, size_t offset,
         size_t limit) {
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: list needs out");
	*out = NULL;
	jobq_job_list *l = NULL;
	int rc = 0;
	size_t skipped = 0, taken = 0;
	pthread_mutex_lock(&q->mu);
	mlist *ml = list_of(q, state);
	if (ml != NULL) {
		int newest_first = state == JOBQ_STATE_COMPLETED || state == JOBQ_STATE_FAILED;
		for (mjob *j = newest_first ? ml->tail : ml->head; j != NULL;
		     j = newest_first ? j->prev : j->next) {
			if (skipped < offset) {
				skipped++;
				continue;
			}
			if (limit > 0 && taken >= limit)
				break;
			if ((rc = list_add_copy(&l, j)) < 0)
				break;
			taken++;
		}
	} else if (state == JOBQ_STATE_PRIORITIZED || state == JOBQ_STATE_DELAYED) {
		struct mtree *t = state == JOBQ_STATE_PRIORITIZED ? &q->prio : &q->delayed;
		mjob *j;
		RB_FOREACH(j, mtree, t) {
			if (skipped < offset) {
				skipped++;
				continue;
			}
			if (limit > 0 && taken >= limit)
				break;
			if ((rc = list_add_copy(&l, j)) < 0)
				break;
			taken++;
		}
	} else if (state == JOBQ_STATE_UNKNOWN || state >= JOBQ_STATE__COUNT) {
		rc =
		    jobq_error_set(JOBQ_EINVAL, "memory backend: cannot list state %d", (int)state);
	}
	pthread_mutex_unlock(&q->mu);
	if (rc < 0) {
		jobq_job_list_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

static int
mem_counts(jobq_counts *out, jobq_backend_queue *q) {
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: counts needs out");
	pthread_mutex_lock(&q->mu);
	out->waiting = q->waiting.count;
	out->active = q->active.count;
	out->delayed = q->ndelayed;
	out->prioritized = q->nprio;
	out->completed = q->completed.count;
	out->failed = q->failed.count;
	out->paused = 0;
	out->waiting_children = 0;
	pthread_mutex_unlock(&q->mu);
	return 0;
}

/* --- administration --------------------------------------------------------------------- */

static int
mem_remove(jobq_backend_queue *q, const char *id, int64_t now) {
	pthread_mutex_lock(&q->mu);
	int rc = 0;
	mjob *j = find_job(q, id);
	if (j == NULL) {
		rc = jobq_error_set(JOBQ_ENOTFOUND, "job %s not found in queue %s",
		                    id ? id : "(null)", q->name);
	} else if (j->state == JOBQ_STATE_ACTIVE && j->lock_expiry > now) {
		rc = jobq_error_set(JOBQ_ESTATE, "job %s is active and locked", j->id);
	} else {
		int prev = (int)j->state;
		ev_push(q, EV_REMOVED, j->id, prev, 0, NULL, NULL);
		job_delete(q, j);
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int
mem_set_paused(jobq_backend_queue *q, int paused, int64_t now) {
	(void)now;
	pthread_mutex_lock(&q->mu);
	q->paused = paused ? 1 : 0;
	ev_push(q, paused ? EV_PAUSED : EV_RESUMED, NULL, 0, 0, NULL, NULL);
	if (!paused)
		work_signal(q, 1);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

static int
mem_is_paused(int *out, jobq_backend_queue *q) {
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: is_paused needs out");
	pthread_mutex_lock(&q->mu);
	*out = q->paused;
	pthread_mutex_unlock(&q->mu);
	return 0;
}

static int
mem_drain(jobq_backend_queue *q, int include_delayed, int64_t now) {
	(void)now;
	pthread_mutex_lock(&q->mu);
	mjob *j = NULL;
	while ((j = q->waiting.head) != NULL)
		job_delete(q, j);
	while ((j = RB_MIN(mtree, &q->prio)) != NULL)
		job_delete(q, j);
	if (include_delayed) {
		while ((j = RB_MIN(mtree, &q->delayed)) != NULL)
			job_delete(q, j);
	}
	pthread_mutex_unlock(&q->mu);
	return 0;
}

static int64_t
job_age(const mjob *j) {
	if (j->finished_on)
		return j->finished_on;
	if (j->processed_on)
		return j->processed_on;
	return j->timestamp;
}

static int
mem_clean(jobq_strings **removed, jobq_backend_queue *q, jobq_state state, int64_t grace_ms,
          size_t limit, int64_t now) {
	if (state == JOBQ_STATE_UNKNOWN || state >= JOBQ_STATE__COUNT)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: cannot clean state %d",
		                      (int)state);
	int64_t cutoff = now - grace_ms;
	mjob **victims = NULL;
	size_t nv = 0, cap = 0;
	jobq_strings *ids = NULL;
	int rc = 0;
	pthread_mutex_lock(&q->mu);
	mlist *ml = list_of(q, state);
	mjob *j = NULL;
	if (ml != NULL)
		j = ml->head;
	else if (state == JOBQ_STATE_PRIORITIZED)
		j = RB_MIN(mtree, &q->prio);
	else if (state == JOBQ_STATE_DELAYED)
		j = RB_MIN(mtree, &q->delayed);
	for (; j != NULL && (limit == 0 || nv < limit);
	     j = ml ? j->next : RB_NEXT(mtree, NULL, j)) {
		int64_t age = job_age(j);
		if (age > cutoff) {
			/* completed/failed are in finish order: nothing older follows */
			if (state == JOBQ_STATE_COMPLETED || state == JOBQ_STATE_FAILED)
				break;
			continue;
		}
		if (state == JOBQ_STATE_ACTIVE && j->lock_expiry > now)
			continue;
		if (nv == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			mjob **nvict = jobq__realloc(victims, ncap * sizeof(*nvict));
			if (nvict == NULL)
				goto oom;
			victims = nvict;
			cap = ncap;
		}
		victims[nv++] = j;
		if (removed != NULL && jobq_strings__append(&ids, j->id, j->id_len) < 0)
			goto oom;
	}
	for (size_t i = 0; i < nv; i++)
		job_delete(q, victims[i]);
	ev_push(q, EV_CLEANED, NULL, 0, (int64_t)nv, NULL, NULL);
	pthread_mutex_unlock(&q->mu);
	jobq__free(victims);
	if (removed != NULL) {
		if (ids == NULL)
			ids = jobq__calloc(1, sizeof(*ids));
		*removed = ids;
	}
	return (int)nv;
oom:
	pthread_mutex_unlock(&q->mu);
	jobq__free(victims);
	jobq_strings_free(ids);
	rc = jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in clean");
	return rc;
}

static int
mem_obliterate(jobq_backend_queue *q, int force, int64_t now) {
	(void)now;
	pthread_mutex_lock(&q->mu);
	if (q->active.count > 0 && !force) {
		size_t n = q->active.count;
		pthread_mutex_unlock(&q->mu);
		return jobq_error_set(JOBQ_ESTATE,
		                      "queue %s has %zu active jobs; obliterate needs force",
		                      q->name, n);
	}
	queue_reset(q);
	q->gen++;
	pthread_cond_broadcast(&q->work_cv);
	pthread_cond_broadcast(&q->ev_cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

static int
mem_promote(jobq_backend_queue *q, const char *id, int64_t now) {
	(void)now;
	int rc = 0;
	pthread_mutex_lock(&q->mu);
	if (id != NULL) {
		mjob *j = find_job(q, id);
		if (j == NULL)
			rc = jobq_error_set(JOBQ_ENOTFOUND, "job %s not found in queue %s", id,
			                    q->name);
		else if (j->state != JOBQ_STATE_DELAYED)
			rc = jobq_error_set(JOBQ_ESTATE, "job %s is %s, not delayed", id,
			                    state_name(j->state));
		else {
			promote_one(q, j);
			work_signal(q, 0);
			rc = 1;
		}
	} else {
		mjob *j;
		while ((j = RB_MIN(mtree, &q->delayed)) != NULL) {
			promote_one(q, j);
			rc++;
		}
		if (rc > 0)
			work_signal(q, rc > 1);
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static void
retry_one(mqueue *q, mjob *j) {
	job_unlink(q, j);
	j->finished_on = 0;
	j->processed_on = 0;
	if (j->side != NULL) {
		jobq__free(j->side->failed_reason);
		j->side->failed_reason = NULL;
	}
	make_ready(q, j, 0, 0);
	ev_job(q, EV_WAITING, j, JOBQ_STATE_FAILED);
}

static int
mem_retry_failed(jobq_backend_queue *q, const char *id, int64_t now) {
	(void)now;
	int rc = 0;
	pthread_mutex_lock(&q->mu);
	if (id != NULL) {
		mjob *j = find_job(q, id);
		if (j == NULL)
			rc = jobq_error_set(JOBQ_ENOTFOUND, "job %s not found in queue %s", id,
			                    q->name);
		else if (j->state != JOBQ_STATE_FAILED)
			rc = jobq_error_set(JOBQ_ESTATE, "job %s is %s, not failed", id,
			                    state_name(j->state));
		else {
			retry_one(q, j);
			work_signal(q, 0);
			rc = 1;
		}
	} else {
		mjob *j;
		while ((j = q->failed.head) != NULL) {
			retry_one(q, j);
			rc++;
		}
		if (rc > 0)
			work_signal(q, rc > 1);
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int
mem_progress(jobq_backend_queue *q, const char *id, const char *token, const char *json,
             int64_t now) {
	char *copy = jobq__strdup(json ? json : "0");
	if (copy == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in progress");
	pthread_mutex_lock(&q->mu);
	mjob *j = NULL;
	int rc = 0;
	if (token != NULL) {
		rc = check_lock(&j, q, id, token, now);
	} else if ((j = find_job(q, id)) == NULL) {
		rc = jobq_error_set(JOBQ_ENOTFOUND, "job %s not found in queue %s",
		                    id ? id : "(null)", q->name);
	}
	mside *sd = NULL;
	if (rc == 0 && (sd = side_get(j)) == NULL)
		rc = jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in progress");
	if (rc == 0) {
		jobq__free(sd->progress);
		sd->progress = copy;
		copy = NULL;
		ev_push(q, EV_PROGRESS, j->id, 0, 0, sd->progress, NULL);
	}
	pthread_mutex_unlock(&q->mu);
	jobq__free(copy);
	return rc;
}

static int
mem_add_log(jobq_backend_queue *q, const char *id, const char *line, int64_t keep) {
	char *copy = jobq__strdup(line ? line : "");
	if (copy == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in add_log");
	pthread_mutex_lock(&q->mu);
	int rc;
	mjob *j = find_job(q, id);
	if (j == NULL) {
		rc = jobq_error_set(JOBQ_ENOTFOUND, "job %s not found in queue %s",
		                    id ? id : "(null)", q->name);
		goto out;
	}
	mside *sd = side_get(j);
	if (sd == NULL) {
		rc = jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in add_log");
		goto out;
	}
	if (sd->nlogs == sd->logs_cap) {
		size_t ncap = sd->logs_cap ? sd->logs_cap * 2 : 4;
		char **nl = jobq__realloc(sd->logs, ncap * sizeof(char *));
		if (nl == NULL) {
			rc =
			    jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in add_log");
			goto out;
		}
		sd->logs = nl;
		sd->logs_cap = ncap;
	}
	sd->logs[sd->nlogs++] = copy;
	copy = NULL;
	if (keep > 0 && sd->nlogs > (uint64_t)keep) {
		size_t drop = sd->nlogs - (size_t)keep;
		for (size_t i = 0; i < drop; i++)
			jobq__free(sd->logs[i]);
		memmove(sd->logs, sd->logs + drop, (size_t)keep * sizeof(char *));
		sd->nlogs = (size_t)keep;
	}
	rc = (int)sd->nlogs;
out:
	pthread_mutex_unlock(&q->mu);
	jobq__free(copy);
	return rc;
}

static int
mem_get_logs(jobq_strings **out, jobq_backend_queue *q, const char *id, size_t start,
             size_t limit) {
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: get_logs needs out");
	jobq_strings *l = NULL;
	int rc = 0;
	pthread_mutex_lock(&q->mu);
	mjob *j = find_job(q, id);
	if (j == NULL) {
		rc = jobq_error_set(JOBQ_ENOTFOUND, "job %s not found in queue %s",
		                    id ? id : "(null)", q->name);
	} else {
		const mside *sd = SIDE(j);
		for (size_t i = start; i < sd->nlogs && (limit == 0 || i - start < limit); i++) {
			if (jobq_strings__append(&l, sd->logs[i], strlen(sd->logs[i])) < 0) {
				rc = jobq_error_set(JOBQ_ENOMEM,
				                    "memory backend: out of memory in get_logs");
				break;
			}
		}
		if (rc == 0 && l == NULL && (l = jobq__calloc(1, sizeof(*l))) == NULL)
			rc = jobq_error_set(JOBQ_ENOMEM,
			                    "memory backend: out of memory in get_logs");
	}
	pthread_mutex_unlock(&q->mu);
	if (rc < 0) {
		jobq_strings_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

/* --- events reading --------------------------------------------------------------------- */

/* Parses a cursor: "$" (newest), "0" or a sequence number, optionally "N-M" as a stream id. */
static int
parse_cursor(uint64_t *out, mqueue *q, const char *after) {
	if (after == NULL || strcmp(after, JOBQ_EVENTS_NOW) == 0) {
		*out = q->ev.next - 1;
		return 0;
	}
	const char *p = after;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			goto bad;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '-') {
		p++;
		if (*p < '0' || *p > '9')
			goto bad;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p != '\0')
		goto bad;
	*out = v;
	return 0;
bad:
	return jobq_error_set(JOBQ_EINVAL, "invalid event cursor '%s' (want \"0\", \"$\" or an id)",
	                      after);
}

static int
mem_events_read(jobq_event_list **out, jobq_backend_queue *q, const char *after, size_t max,
                int64_t timeout_ms) {
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: events_read needs out");
	jobq_event_list *list = NULL;
	int rc = jobq_event_list__new(&list);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&q->mu);
	uint64_t a = 0;
	rc = parse_cursor(&a, q, after);
	if (rc < 0)
		goto out;
	if (q->ev.next - 1 <= a && timeout_ms != 0) {
		uint64_t gen = q->gen;
		int64_t deadline = timeout_ms > 0 ? jobq__mono_ms() + timeout_ms : 0;
		struct timespec ts;
		if (timeout_ms > 0)
			jobq__ms_to_timespec(&ts, deadline);
		q->ev_waiters++;
		while (q->ev.next - 1 <= a && q->gen == gen) {
			if (timeout_ms > 0) {
				if (pthread_cond_timedwait(&q->ev_cv, &q->mu, &ts) != 0 &&
				    jobq__mono_ms() >= deadline)
					break;
			} else {
				pthread_cond_wait(&q->ev_cv, &q->mu);
			}
		}
		q->ev_waiters--;
	}
	uint64_t start = a + 1 > q->ev.first ? a + 1 : q->ev.first;
	size_t n = 0;
	for (uint64_t s = start; s < q->ev.next && (max == 0 || n < max); s++, n++) {
		rc = ev_format(list, &q->ev.buf[s & (q->ev.cap - 1)]);
		if (rc < 0)
			goto out;
	}
	if (n == 0) {
		char cur[24];
		uint64_t c = a < q->ev.next - 1 ? a : q->ev.next - 1;
		snprintf(cur, sizeof(cur), "%" PRIu64, c);
		rc = jobq_event_list__set_cursor(list, cur);
	}
out:
	pthread_mutex_unlock(&q->mu);
	if (rc < 0) {
		jobq_event_list_free(list);
		return rc;
	}
	*out = list;
	return 0;
}

/* --- waiting for work ------------------------------------------------------------------- */

static int
mem_wait_for_work(jobq_backend_queue *q, jobq_clock *clock, int64_t timeout_ms) {
	int64_t start = jobq__mono_ms();
	int64_t deadline = timeout_ms >= 0 ? start + timeout_ms : INT64_MAX;
	pthread_mutex_lock(&q->mu);
	uint64_t gen = q->gen;
	for (;;) {
		int64_t now = jobq_clock_now(clock);
		if (is_ready(q))
			break;
		int64_t due = next_due(q);
		if (q->ndelayed > 0 && due <= now)
			break;
		if (q->gen != gen)
			break;
		int64_t mnow = jobq__mono_ms();
		if (mnow >= deadline)
			break;
		int64_t until = deadline;
		if (q->ndelayed > 0) {
			int64_t wait = due - now;
			if (wait < 1)
				wait = 1;
			if (mnow + wait < until)
				until = mnow + wait;
		}
		q->work_waiters++;
		if (until == INT64_MAX) {
			pthread_cond_wait(&q->work_cv, &q->mu);
		} else {
			struct timespec ts;
			jobq__ms_to_timespec(&ts, until);
			pthread_cond_timedwait(&q->work_cv, &q->mu, &ts);
		}
		q->work_waiters--;
	}
	pthread_mutex_unlock(&q->mu);
	return 0;
}

static void
mem_wake(jobq_backend *b) {
	minstance *inst = ((mbackend *)b)->inst;
	pthread_mutex_lock(&inst->mu);
	for (mqueue *q = inst->queues; q != NULL; q = q->hh.next) {
		pthread_mutex_lock(&q->mu);
		q->gen++;
		pthread_cond_broadcast(&q->work_cv);
		pthread_cond_broadcast(&q->ev_cv);
		pthread_mutex_unlock(&q->mu);
	}
	pthread_mutex_unlock(&inst->mu);
}

/* The instance's queues: every one opened since it was created (obliterated ones too). */
static int
mem_list_queues(jobq_strings **out, jobq_backend *b) {
	minstance *inst = ((mbackend *)b)->inst;
	int rc = 0;
	pthread_mutex_lock(&inst->mu);
	for (mqueue *q = inst->queues; q != NULL && rc == 0; q = q->hh.next)
		rc = jobq_strings__append(out, q->name, strlen(q->name));
	pthread_mutex_unlock(&inst->mu);
	return rc < 0 ? jobq_error_set(rc, "memory backend: listing queues: out of memory") : 0;
}

/* --- instances -------------------------------------------------------------------------- */

static void
instance_destroy(minstance *inst) {
	mqueue *q, *tmp;
	HASH_ITER(hh, inst->queues, q, tmp) {
		HASH_DEL(inst->queues, q);
		queue_destroy(q);
	}
	pthread_mutex_destroy(&inst->mu);
	jobq__free(inst->name);
	jobq__free(inst);
}

static void
mem_free(jobq_backend *b) {
	if (b == NULL)
		return;
	minstance *inst = ((mbackend *)b)->inst;
	if (inst->name == NULL) {
		instance_destroy(inst);
	} else {
		pthread_mutex_lock(&registry_mu);
		if (--inst->refs == 0)
			HASH_DEL(registry, inst);
		else
			inst = NULL;
		pthread_mutex_unlock(&registry_mu);
		if (inst != NULL)
			instance_destroy(inst);
	}
	jobq__free(b);
}

static const jobq_backend memory_vtable = {
    .version = JOBQ_BACKEND_VERSION,
    .name = "memory",
    .caps = JOBQ_CAP_BLOCKING_WAIT | JOBQ_CAP_DUE_CLOCK | JOBQ_CAP_LOCK_CLOCK,
    .queue_open = mem_queue_open,
    .queue_close = mem_queue_close,
    .list_queues = mem_list_queues,
    .add = mem_add,
    .fetch = mem_fetch,
    .extend_lock = mem_extend_lock,
    .complete = mem_complete,
    .fail = mem_fail,
    .release = mem_release,
    .reap_stalled = mem_reap_stalled,
    .get = mem_get,
    .list = mem_list,
    .counts = mem_counts,
    .remove = mem_remove,
    .set_paused = mem_set_paused,
    .is_paused = mem_is_paused,
    .drain = mem_drain,
    .clean = mem_clean,
    .obliterate = mem_obliterate,
    .promote = mem_promote,
    .retry_failed = mem_retry_failed,
    .progress = mem_progress,
    .add_log = mem_add_log,
    .get_logs = mem_get_logs,
    .events_read = mem_events_read,
    .wait_for_work = mem_wait_for_work,
    .wake = mem_wake,
    .free = mem_free,
    .complete_fetch = mem_complete_fetch,
};

static minstance *
instance_new(const char *name) {
	minstance *inst = jobq__calloc(1, sizeof(*inst));
	if (inst == NULL)
		return NULL;
	if (name != NULL && (inst->name = jobq__strdup(name)) == NULL) {
		jobq__free(inst);
		return NULL;
	}
	pthread_mutex_init(&inst->mu, NULL);
	inst->refs = 1;
	return inst;
}

int
jobq_backend_memory_new(jobq_backend **out, const char *name) {
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: out is NULL");
	*out = NULL;
	mbackend *mb = jobq__malloc(sizeof(*mb));
	if (mb == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory");
	mb->vt = memory_vtable;
	if (name == NULL || name[0] == '\0') {
		mb->inst = instance_new(NULL);
		if (mb->inst == NULL) {
			jobq__free(mb);
			return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory");
		}
	} else {
		pthread_mutex_lock(&registry_mu);
		minstance *inst = NULL;
		HASH_FIND(hh, registry, name, strlen(name), inst);
		if (inst != NULL) {
			inst->refs++;
		} else if ((inst = instance_new(name)) != NULL) {
			HASH_ADD_KEYPTR(hh, registry, inst->name, strlen(inst->name), inst);
			if (inst->hh.tbl == NULL) {
				instance_destroy(inst);
				inst = NULL;
			}
		}
		pthread_mutex_unlock(&registry_mu);
		if (inst == NULL) {
			jobq__free(mb);
			return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory");
		}
		mb->inst = inst;
	}
	*out = &mb->vt;
	return 0;
}

int
jobq__memory_open_url(jobq_backend **out, const char *url) {
	if (url == NULL || strncmp(url, URL_SCHEME, URL_SCHEME_SZ) != 0)
		return jobq_error_set(JOBQ_EINVAL,
		                      "invalid memory store URL '%s': want mem:// or "
		                      "mem://NAME",
		                      url ? url : "(null)");
	const char *name = url + URL_SCHEME_SZ;
	size_t len = strlen(name);
	if (len > NAME_MAX_URL)
		return jobq_error_set(JOBQ_EINVAL,
		                      "invalid memory store URL '%s': the name is longer than %d "
		                      "characters",
		                      url, NAME_MAX_URL);
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return jobq_error_set(
			    JOBQ_EINVAL,
			    "invalid memory store URL '%s': the name may contain only "
			    "letters, digits, '.', '_' and '-'",
			    url);
	}
	return jobq_backend_memory_new(out, len ? name : NULL);
}
