/*
 * The memory backend's storage: the job table by id, the job blocks carved from per-queue
 * chunks (see memory_int.h), options records, and copies of jobs for the caller.
 */
#define _DEFAULT_SOURCE /* madvise(MADV_HUGEPAGE) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backends/memory/memory_int.h"
#include "engine/sched_rec.h"

const mside jobq_mem__side_none;
char jobq_mem__null_result[] = "null";

/* --- the job table ---------------------------------------------------------------------- */

/* Room for `extra` more jobs (under the lock); JOBQ_ENOMEM (error not set) if none. */
int
jobq_mem__jobs_reserve(mqueue *q, size_t extra) {
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

/* --- job blocks ------------------------------------------------------------------------ */

/*
 * Job blocks up to RECYCLE_MAX bytes are carved from large chunks (jobq__malloc) and go back
 * to a free list of their size class; they are never freed one by one. This keeps the
 * per-job cost of an add at a pointer bump, lets a worker free what a producer allocated
 * without malloc's cross-thread path, and lets large chunks live on transparent huge pages
 * (a queue of a million jobs is ~500 MB: 4 KiB pages would fault 130,000 times). The chunks
 * live until the queue is obliterated or destroyed (when no job uses them). Under the lock.
 */
void
jobq_mem__chunks_free(mqueue *q) {
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

mjob *
jobq_mem__block_carve(mqueue *q, size_t size) {
	/* Chunks of 4 MiB and more are huge-page aligned: malloc aligns them to 4 KiB only,
	 * so they get a huge page more than they use. */
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
	mjob *j = (mjob *)(void *)q->carve_at;
	q->carve_at += size;
	j->blk_size = (uint32_t)size;
	return j;
}

/*
 * When a queue has no job left and no add holds blocks, it keeps only its newest chunk,
 * carved again from its start (a drained big queue gives its memory back; a queue that
 * keeps emptying reuses the same warm chunk). The job table goes too if it is large.
 */
void
jobq_mem__queue_trim(mqueue *q) {
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

/* --- options and job memory ------------------------------------------------------------ */

/* A new options record holding one reference (the adding call's). */
mopts *
jobq_mem__mopts_new(const jobq_job_options *o) {
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

void
jobq_mem__job_free_mem(mqueue *q, mjob *j) {
	mopts_unref(q, j->mo);
	result_free(j->result);
	token_free(j);
	if (j->flow != NULL)
		jobq_mem__flow_free(j->flow);
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
int
jobq_mem__job_copy(jobq_job **out, const mjob *j, const char *token, size_t token_len) {
	const mside *sd = SIDE(j);
	size_t name_len = strlen(j->name);
	const char *custom = j->mo->o.backoff.custom_type;
	size_t sz = sd->stacktrace_count * sizeof(char *) + j->id_len + 1 + name_len + 1 +
	            j->data_len + 1 + opt_len(j->dedup_id) + opt_len(custom) +
	            opt_len(sd->progress) + opt_len(j->result) + opt_len(sd->failed_reason) +
	            opt_len(j->defa) + opt_len(j->pb) + (token ? token_len + 1 : 0);
	for (size_t i = 0; i < sd->stacktrace_count; i++)
		sz += strlen(sd->stacktrace[i]) + 1;
	/* an iteration of a job scheduler ("repeat:<sid>:<millis>", an id no add can give) */
	char sid[JOBQ_ID_MAX + 1];
	int64_t millis;
	int iteration = jobq_eng__iteration_of(sid, &millis, j->id, j->id_len);
	if (iteration)
		sz += strlen(sid) + 1;
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
	if (iteration)
		c->scheduler_id = pack(&p, sid, strlen(sid));
	if (j->pb)
		c->processed_by = pack(&p, j->pb, strlen(j->pb));
	*out = c;
	return 0;
}
