/*
 * The memory backend's flows: adding a flow across the queues of an instance in one step, a
 * parent's dependencies, and the locking of operations that reach other queues (memory_int.h,
 * struct minstance). The rules are the engine's (engine/flow_ops.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/memory/memory_prims.h"

/* --- locking -------------------------------------------------------------------------------- */

/* Room in inst->held for every queue of the instance (under flow_mu): 0, or JOBQ_ENOMEM. */
static int
held_reserve(minstance *in) {
	pthread_mutex_lock(&in->mu);
	size_t nq = HASH_COUNT(in->queues);
	pthread_mutex_unlock(&in->mu);
	if (nq <= in->held_cap)
		return 0;
	mqueue **h = jobq__realloc(in->held, nq * sizeof(*h));
	if (h == NULL)
		return JOBQ_ENOMEM;
	in->held = h;
	in->held_cap = nq;
	return 0;
}

int
jobq_mem__lock(mqueue *q) {
	minstance *in = q->inst;
	if (!atomic_load_explicit(&in->flows, memory_order_acquire)) {
		pthread_mutex_lock(&q->mu);
		if (!atomic_load_explicit(&in->flows, memory_order_acquire))
			return 0;
		/* a flow was added meanwhile: take the locks in order */
		pthread_mutex_unlock(&q->mu);
	}
	pthread_mutex_lock(&in->flow_mu);
	if (held_reserve(in) < 0) {
		pthread_mutex_unlock(&in->flow_mu);
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory");
	}
	in->nheld = 0;
	in->own = q;
	pthread_mutex_lock(&q->mu);
	return 1;
}

void
jobq_mem__lock_other(mqueue *q, mqueue *other) {
	minstance *in = q->inst;
	if (other == q || other == in->own)
		return;
	for (size_t i = 0; i < in->nheld; i++)
		if (in->held[i] == other)
			return;
	pthread_mutex_lock(&other->mu);
	in->held[in->nheld++] = other; /* room: held_reserve counted every queue */
}

void
jobq_mem__unlock(mqueue *q, int flow_held) {
	minstance *in = q->inst;
	if (flow_held > 0) {
		for (size_t i = 0; i < in->nheld; i++)
			pthread_mutex_unlock(&in->held[i]->mu);
		in->nheld = 0;
		in->own = NULL;
	}
	pthread_mutex_unlock(&q->mu);
	if (flow_held > 0)
		pthread_mutex_unlock(&in->flow_mu);
}

void
jobq_mem__flow_free(mflow *f) {
	for (int k = 0; k < 4; k++) {
		for (size_t i = 0; i < f->n[k]; i++) {
			jobq__free(f->dep[k][i].id);
			jobq__free(f->dep[k][i].value);
		}
		jobq__free(f->dep[k]);
	}
	jobq__free(f->pid);
	jobq__free(f->defa);
	jobq__free(f);
}

/* --- adding a flow ------------------------------------------------------------------------- */

/* What one job of the flow takes, allocated before anything changes. */
typedef struct fprep {
	mqueue *q;
	mjob *blk;      /* its block (NULL: an existing job is attached) */
	mjob *existing; /* the existing job of its custom id */
	mopts *mo;
	mflow *flow;  /* its flow record (new), NULL when `existing` has one already */
	char *dep_id; /* room for its id in its parent's pending list */
	char *pid;    /* room for its parent's id */
	size_t name_len;
} fprep;

/* Grows the four lists of `f` to room for `cap` children. */
static int
flow_grow(mflow *f, size_t cap) {
	if (cap <= f->cap)
		return 0;
	for (int k = 0; k < 4; k++) {
		mdep *d = jobq__realloc(f->dep[k], cap * sizeof(*d));
		if (d == NULL)
			return JOBQ_ENOMEM;
		f->dep[k] = d;
	}
	f->cap = cap;
	return 0;
}

static void
prep_undo(fprep *p, size_t n) {
	for (size_t i = 0; i < n; i++) {
		if (p[i].blk != NULL)
			block_put(p[i].q, p[i].blk);
		if (p[i].mo != NULL)
			jobq__free(p[i].mo);
		if (p[i].flow != NULL)
			jobq_mem__flow_free(p[i].flow);
		jobq__free(p[i].dep_id);
		jobq__free(p[i].pid);
	}
}

/* The checks of a flow add, before anything changes: the parent exists, and a custom id that
 * exists has no children in the flow and no other live parent. */
static int
flow_check(fprep *p, const jobq_flow_job *jobs, size_t n, mqueue *ext_q, mjob *ext) {
	for (size_t i = 0; i < n; i++) {
		const char *cid = jobs[i].req.opts->job_id;
		if (cid == NULL || (p[i].existing = find_job(p[i].q, cid)) == NULL)
			continue;
		if (jobs[i].nchildren > 0)
			return jobq_error_set(
			    JOBQ_EEXISTS,
			    "flow add: node %zu: job '%s' of queue '%s' exists already "
			    "and cannot become a parent of new children",
			    i + 1, cid, p[i].q->name);
		mflow *f = p[i].existing->flow;
		if (f != NULL && f->pq != NULL) {
			jobq_mem__lock_other(p[0].q, f->pq);
			mjob *owner = find_job(f->pq, f->pid);
			int mine = i == 0 && ext != NULL && owner == ext && f->pq == ext_q;
			if (owner != NULL && !mine)
				return jobq_error_set(
				    JOBQ_EEXISTS,
				    "flow add: node %zu: job '%s' of queue '%s' already "
				    "belongs to another parent, which exists",
				    i + 1, cid, p[i].q->name);
		}
	}
	return 0;
}

/* Allocates what each job takes (blocks, options, flow records, the parents' room). */
static int
flow_prepare(fprep *p, const jobq_flow_job *jobs, size_t n, mjob *ext) {
	for (size_t i = 0; i < n; i++) {
		const jobq_flow_job *fj = &jobs[i];
		int has_parent = fj->parent != SIZE_MAX || ext != NULL;
		if (p[i].existing == NULL) {
			size_t size = jobq_mem__add_block_size(&fj->req, &p[i].name_len);
			p[i].blk =
			    size <= RECYCLE_MAX ? block_get(p[i].q, size) : jobq__malloc(size);
			if (p[i].blk == NULL)
				return JOBQ_ENOMEM;
			if (size > RECYCLE_MAX)
				p[i].blk->blk_size = (uint32_t)size;
			if ((p[i].mo = jobq_mem__mopts_new(fj->req.opts)) == NULL)
				return JOBQ_ENOMEM;
		}
		if ((p[i].existing == NULL || p[i].existing->flow == NULL) &&
		    (has_parent || fj->nchildren > 0)) {
			if ((p[i].flow = jobq__calloc(1, sizeof(mflow))) == NULL ||
			    flow_grow(p[i].flow, fj->nchildren) < 0)
				return JOBQ_ENOMEM;
		}
		if (has_parent && ((p[i].dep_id = jobq__malloc(JOBQ_ID_MAX + 1)) == NULL ||
		                   (p[i].pid = jobq__malloc(JOBQ_ID_MAX + 1)) == NULL))
			return JOBQ_ENOMEM;
	}
	if (ext != NULL && flow_grow(ext->flow, ext->flow->cap + 1) < 0)
		return JOBQ_ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (jobq_mem__jobs_reserve(p[i].q, n) < 0)
			return JOBQ_ENOMEM;
	return 0;
}

int
jobq_mem__flow_add(jobq_job_id *ids, jobq_backend_queue *q, const jobq_flow_job *jobs, size_t n,
                   const jobq_flow_parent *parent, int64_t now) {
	minstance *in = q->inst;
	fprep *p = jobq__calloc(n, sizeof(*p));
	if (p == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in flow add");
	int rc = 0;
	mqueue *ext_q = NULL;
	/* the queues first (creating them takes the instance mutex, before any queue's) */
	for (size_t i = 0; i < n && rc == 0; i++)
		if ((p[i].q = i == 0 ? q : jobq_mem__queue_get(in, jobs[i].queue)) == NULL)
			rc = JOBQ_ENOMEM;
	if (rc == 0 && parent != NULL && (ext_q = jobq_mem__queue_get(in, parent->queue)) == NULL)
		rc = JOBQ_ENOMEM;
	if (rc < 0) {
		jobq__free(p);
		return rc;
	}
	atomic_store_explicit(&in->flows, 1, memory_order_release);
	int held = jobq_mem__lock(q);
	if (held < 0) {
		jobq__free(p);
		return held;
	}
	for (size_t i = 1; i < n; i++)
		jobq_mem__lock_other(q, p[i].q);
	mjob *ext = NULL;
	if (ext_q != NULL) {
		jobq_mem__lock_other(q, ext_q);
		ext = find_job(ext_q, parent->id);
		if (ext == NULL)
			rc = jobq_error_set(
			    JOBQ_ENOTFOUND,
			    "flow add: the parent job '%s' of queue '%s' does not exist",
			    parent->id, parent->queue);
		else if (ext->flow == NULL && (ext->flow = jobq__calloc(1, sizeof(mflow))) == NULL)
			rc = JOBQ_ENOMEM;
	}
	if (rc == 0)
		rc = flow_check(p, jobs, n, ext_q, ext);
	if (rc == 0 && (rc = flow_prepare(p, jobs, n, ext)) < 0)
		jobq_error_set(rc, "memory backend: out of memory in flow add");
	if (rc < 0) {
		prep_undo(p, n);
		jobq_mem__unlock(q, held);
		jobq__free(p);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		const jobq_flow_job *fj = &jobs[i];
		mqueue *jq = p[i].q;
		mjob *pj =
		    fj->parent != SIZE_MAX ? find_job(p[fj->parent].q, ids[fj->parent].str) : ext;
		mqueue *pq = fj->parent != SIZE_MAX ? p[fj->parent].q : ext_q;
		jq->id_counter++;
		const char *cid = fj->req.opts->job_id;
		size_t id_len = cid ? strlen(cid) : jobq__u64_dec(ids[i].str, jq->id_counter);
		if (cid != NULL)
			memcpy(ids[i].str, cid, id_len + 1);
		mjob *j = p[i].existing;
		if (j == NULL) {
			j = jobq_mem__add_fill(p[i].blk, &fj->req, ids[i].str, id_len,
			                       p[i].name_len);
			p[i].blk = NULL;
			j->mo = p[i].mo;
			p[i].mo = NULL;
			jobs_add(jq, j);
		}
		if (p[i].flow != NULL) {
			j->flow = p[i].flow;
			p[i].flow = NULL;
		}
		if (pj != NULL) {
			mflow *f = j->flow;
			jobq__free(f->pid);
			f->pq = pq;
			f->pid = p[i].pid;
			p[i].pid = NULL;
			memcpy(f->pid, pj->id, (size_t)pj->id_len + 1);
			f->policy = fj->policy;
			memcpy(p[i].dep_id, ids[i].str, id_len + 1);
			/* an existing completed job counts as processed at once (its value reads
			 * null if there is no memory to copy it) */
			int done = p[i].existing != NULL && j->state == JOBQ_STATE_COMPLETED;
			mflow *pf = pj->flow;
			int to = done ? JOBQ_DEP_PROCESSED : JOBQ_DEP_PENDING;
			pf->dep[to][pf->n[to]++] =
			    (mdep){jq, p[i].dep_id, done ? jobq__strdup(j->result) : NULL};
			p[i].dep_id = NULL;
		}
		if (p[i].existing != NULL)
			engp_event(jq, ENG_EV_DUPLICATED, j->id, j->id_len, 0, 0, NULL, NULL);
		else
			(void)eng_flow_place(jq, j, fj->nchildren, j->name, j->timestamp);
		if (fj->nchildren == 0 && p[i].existing == NULL)
			work_signal(jq, 0);
	}
	/* a parent whose children had all finished (existing completed jobs) goes on now */
	for (size_t i = 0; i < n; i++)
		if (jobs[i].nchildren > 0)
			(void)eng_parent_release_if_ready(p[i].q, find_job(p[i].q, ids[i].str),
			                                  now);
	if (ext != NULL)
		(void)eng_parent_release_if_ready(ext_q, ext, now);
	prep_undo(p, n);
	jobq_mem__unlock(q, held);
	jobq__free(p);
	return 0;
}

/* --- reading -------------------------------------------------------------------------------- */

int
jobq_mem__dependencies(jobq_dependencies *out, jobq_backend_queue *q, const char *id) {
	pthread_mutex_lock(&q->mu);
	mjob *j = find_job(q, id);
	int rc = 0;
	if (j == NULL) {
		rc = jobq_error_set(JOBQ_ENOTFOUND, "get dependencies: no job '%s' in queue '%s'",
		                    id, q->name);
	} else if (j->flow != NULL) {
		static const int order[4] = {JOBQ_DEP_PROCESSED, JOBQ_DEP_PENDING, JOBQ_DEP_IGNORED,
		                             JOBQ_DEP_FAILED};
		for (int k = 0; k < 4 && rc == 0; k++) {
			const mflow *f = j->flow;
			for (size_t i = 0; i < f->n[order[k]] && rc == 0; i++) {
				const mdep *d = &f->dep[order[k]][i];
				char key[JOBQ_QUEUE_NAME_MAX + JOBQ_ID_MAX + 2];
				snprintf(key, sizeof(key), "%s:%s", d->q->name, d->id);
				const char *v = d->value;
				if (v == NULL && order[k] == JOBQ_DEP_PROCESSED)
					v = "null";
				rc = jobq_dependencies__append(out, order[k], key, d->q->name,
				                               d->id, v, v ? strlen(v) : 0);
			}
		}
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}
