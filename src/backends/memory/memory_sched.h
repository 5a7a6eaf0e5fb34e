/*
 * The memory backend's primitives for the job scheduler rules (engine/engine_sched.h): the
 * records in a uthash table of the queue (struct msched: the id and the record's text), and
 * jobs found or created by id, under the queue mutex.
 */
#ifndef JOBQ_MEMORY_SCHED_H
#define JOBQ_MEMORY_SCHED_H

#include "backends/memory/memory_prims.h"
#include "engine/sched_rec.h"

typedef struct msched {
	UT_hash_handle hh;
	char *text; /* the record (jobq_eng__sched_encode) */
	size_t len;
	char id[]; /* NUL-terminated */
} msched;

static inline msched *
sched_find(mqueue *q, const char *sid) {
	msched *m = NULL;
	HASH_FIND(hh, q->scheds, sid, strlen(sid), m);
	return m;
}

static inline int
engp_sched_get(mqueue *q, const char *sid, const char **text, size_t *len) {
	msched *m = sched_find(q, sid);
	if (m == NULL)
		return 0;
	*text = m->text;
	*len = m->len;
	return 1;
}

/* Takes a copy of `text`: a failed allocation changes nothing. */
static inline int
engp_sched_put(mqueue *q, const char *sid, const char *text, size_t len) {
	char *copy = jobq__malloc(len + 1);
	msched *m = sched_find(q, sid);
	size_t n = strlen(sid);
	if (copy != NULL && m == NULL && (m = jobq__calloc(1, sizeof(*m) + n + 1)) != NULL) {
		memcpy(m->id, sid, n + 1);
		HASH_ADD(hh, q->scheds, id[0], n, m);
		if (m->hh.tbl == NULL) {
			jobq__free(m);
			m = NULL;
		}
	}
	if (copy == NULL || m == NULL) {
		jobq__free(copy);
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory");
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	jobq__free(m->text);
	m->text = copy;
	m->len = len;
	return 0;
}

static inline int
engp_sched_del(mqueue *q, const char *sid) {
	msched *m = sched_find(q, sid);
	if (m != NULL) {
		HASH_DEL(q->scheds, m);
		jobq__free(m->text);
		jobq__free(m);
	}
	return 0;
}

static inline int
engp_find(mqueue *q, const char *id, mjob *space, mjob **out) {
	(void)space;
	*out = find_job(q, id);
	return *out != NULL;
}

/* Allocates what engp_create will need for job `id` (its block and options, room in the job
 * table) into `space`, so that the create cannot fail; a failure changes nothing. */
static inline int
engp_prepare(mqueue *q, const char *id, const char *name, const char *data, size_t len,
             const jobq_job_options *o, mjob *space) {
	jobq_add_request r = {name, data, len, o};
	size_t name_len = 0, size = jobq_mem__add_block_size(&r, &name_len);
	mopts *mo = jobq_mem__mopts_new(o);
	mjob *blk = NULL;
	(void)id;
	memset(space, 0, sizeof(*space));
	if (mo != NULL && jobq_mem__jobs_reserve(q, 1) == 0) {
		if (size <= RECYCLE_MAX) {
			blk = block_get(q, size);
		} else if (size <= UINT32_MAX && (blk = jobq__malloc(size)) != NULL) {
			blk->blk_size = (uint32_t)size;
		}
	}
	if (blk == NULL) {
		jobq__free(mo);
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory adding job %s",
		                      id);
	}
	space->next = blk;
	space->mo = mo;
	return 0;
}

/* Gives back what engp_prepare allocated, when the step ends without the create. */
static inline void
engp_unprepare(mqueue *q, mjob *space) {
	if (space->next != NULL)
		block_put(q, space->next);
	jobq__free(space->mo);
	memset(space, 0, sizeof(*space));
}

/* Creates job `id` from what engp_prepare allocated into `space` (with the same arguments). */
static inline int
engp_create(mqueue *q, const char *id, const char *name, const char *data, size_t len,
            const jobq_job_options *o, int64_t timestamp, mjob *space, mjob **out) {
	(void)timestamp; /* o->timestamp */
	jobq_add_request r = {name, data, len, o};
	size_t name_len = 0;
	(void)jobq_mem__add_block_size(&r, &name_len);
	mjob *j = jobq_mem__add_fill(space->next, &r, id, strlen(id), name_len);
	j->mo = space->mo;
	memset(space, 0, sizeof(*space));
	q->id_counter++;
	jobs_add(q, j);
	*out = j;
	return 0;
}

#include "engine/engine_sched.h"

#endif
