/*
 * The memory backend's primitives for the engine (engine/engine.h), over the structures of
 * memory_int.h under the queue mutex, and the engine's rules compiled against them. None can
 * fail: each returns 0, and the engine's error checks fold away.
 */
#ifndef JOBQ_MEMORY_PRIMS_H
#define JOBQ_MEMORY_PRIMS_H

#include "backends/memory/memory_int.h"

#define ENG_CTX            mqueue
#define ENG_JOB            mjob
#define ENG_FIELD(j, name) ((j)->name)
#include "engine/engine.h"

static inline jobq_state
engp_state(const mjob *j) {
	return j->state;
}

static inline const char *
engp_id(const mjob *j) {
	return j->id;
}

static inline size_t
engp_id_len(const mjob *j) {
	return j->id_len;
}

static inline const char *
engp_name(const mjob *j) {
	return j->name;
}

static inline int
engp_lifo(const mjob *j) {
	return j->mo->o.lifo;
}

static inline const char *
engp_dedup_id(const mjob *j) {
	return j->dedup_id;
}

static inline const char *
engp_token(const mjob *j) {
	return j->token;
}

static inline int64_t
engp_lock_expiry(const mjob *j) {
	return j->lock_expiry;
}

static inline void
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

static inline int
engp_unlink(mqueue *q, mjob *j) {
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
	return 0;
}

static inline int
engp_put_waiting(mqueue *q, mjob *j, int front) {
	j->state = JOBQ_STATE_WAITING;
	if (front)
		list_push_front(&q->waiting, j);
	else
		list_push_back(&q->waiting, j);
	return 0;
}

/* A decreasing counter puts a job at the front of its priority, an increasing one at the
 * back. */
static inline int
engp_put_prioritized(mqueue *q, mjob *j, int front) {
	tree_insert(q, j, JOBQ_STATE_PRIORITIZED, j->priority,
	            front ? --q->front_order : ++q->order);
	return 0;
}

static inline int
engp_put_delayed(mqueue *q, mjob *j, int64_t due) {
	tree_insert(q, j, JOBQ_STATE_DELAYED, due, ++q->order);
	return 0;
}

static inline int
engp_put_active(mqueue *q, mjob *j, int64_t lock_expiry) {
	j->state = JOBQ_STATE_ACTIVE;
	list_push_back(&q->active, j);
	token_free(j);
	j->lock_expiry = lock_expiry;
	return 0;
}

/* The logical clock never goes back: appending keeps the finished lists in finish order. */
static inline int
engp_put_finished(mqueue *q, mjob *j, jobq_state s) {
	j->state = s;
	list_push_back(s == JOBQ_STATE_COMPLETED ? &q->completed : &q->failed, j);
	return 0;
}

static inline int
engp_drop_lock(mqueue *q, mjob *j) {
	(void)q;
	token_free(j);
	j->lock_expiry = 0;
	return 0;
}

static inline int
engp_set_deferred(mqueue *q, mjob *j, const char *reason) {
	(void)q;
	j->defa = reason;
	return 0;
}

static inline int
engp_clear_failure(mqueue *q, mjob *j) {
	(void)q;
	if (j->side != NULL) {
		jobq__free(j->side->failed_reason);
		j->side->failed_reason = NULL;
	}
	return 0;
}

static inline int
engp_save(mqueue *q, mjob *j) {
	(void)q;
	(void)j;
	return 0;
}

static inline int
engp_delete(mqueue *q, mjob *j) {
	engp_unlink(q, j);
	jobs_del(q, j);
	jobq_mem__job_free_mem(q, j);
	jobq_mem__queue_trim(q);
	return 0;
}

static inline int
engp_first(mqueue *q, jobq_state s, mjob *space, mjob **out, int64_t *key) {
	(void)space;
	mjob *j = NULL;
	if (s == JOBQ_STATE_DELAYED) {
		if ((j = RB_MIN(mtree, &q->delayed)) != NULL)
			*key = j->k1;
	} else {
		mlist *l = list_of(q, s);
		if (l != NULL && (j = l->head) != NULL)
			*key = j->finished_on;
	}
	*out = j;
	return j != NULL;
}

static inline void
engp_done(mqueue *q, mjob *j) {
	(void)q;
	(void)j;
}

static inline uint64_t
engp_count(mqueue *q, jobq_state s) {
	switch (s) {
	case JOBQ_STATE_WAITING:
		return q->waiting.count;
	case JOBQ_STATE_PRIORITIZED:
		return q->nprio;
	case JOBQ_STATE_DELAYED:
		return q->ndelayed;
	case JOBQ_STATE_ACTIVE:
		return q->active.count;
	case JOBQ_STATE_COMPLETED:
		return q->completed.count;
	case JOBQ_STATE_FAILED:
		return q->failed.count;
	case JOBQ_STATE_WAITING_CHILDREN:
		return q->waiting_children.count;
	default:
		return 0;
	}
}

static inline int
engp_dedup_find(mqueue *q, const mjob *j, int *owned, int64_t *expiry) {
	mdedup *d = find_dedup(q, j->dedup_id);
	if (d == NULL)
		return 0;
	*owned = d->owner_len == j->id_len && memcmp(d->owner, j->id, j->id_len) == 0;
	*expiry = d->expiry;
	return 1;
}

static inline int
engp_dedup_del(mqueue *q, const mjob *j) {
	mdedup *d = find_dedup(q, j->dedup_id);
	if (d != NULL)
		dedup_delete(q, d);
	return 0;
}

/* The key always exists: the stash taken was kept with it. */
static inline int
engp_dedup_point(mqueue *q, const mjob *j) {
	mdedup *d = find_dedup(q, j->dedup_id);
	if (d != NULL) {
		d->expiry = 0;
		d->owner_len = j->id_len;
		memcpy(d->owner, j->id, j->id_len + 1);
		stash_free(q, d->stash);
		d->stash = NULL;
	}
	return 0;
}

static inline int
engp_exists(mqueue *q, const char *id) {
	return find_job(q, id) != NULL;
}

static inline int
engp_stash_id(mqueue *q, const mjob *j, char *id) {
	mdedup *d = find_dedup(q, j->dedup_id);
	if (d == NULL || d->stash == NULL)
		return 0;
	memcpy(id, d->stash->id, d->stash->id_len + 1u);
	return 1;
}

static inline int
engp_stash_drop(mqueue *q, const mjob *j) {
	mdedup *d = find_dedup(q, j->dedup_id);
	if (d != NULL) {
		stash_free(q, d->stash);
		d->stash = NULL;
	}
	return 0;
}

/* The stash is a filled block already: it joins the job table, for which the step made room
 * (jobq_mem__jobs_reserve) before it changed anything. */
static inline int
engp_stash_take(mqueue *q, const mjob *j, int64_t now, mjob *space, mjob **out) {
	mdedup *d = find_dedup(q, j->dedup_id);
	mjob *n = d->stash;
	(void)space;
	d->stash = NULL;
	n->timestamp = now;
	q->id_counter++;
	jobs_add(q, n);
	*out = n;
	return 0;
}

/* The `failed` event takes the strings allocated beforehand (q->ev_pre), so that a failure
 * is never reported without its reason. */
static inline int
engp_event(mqueue *q, int type, const char *id, size_t id_len, int prev, int64_t num,
           const char *s1, const char *s2) {
	char *pre = NULL;
	if (type == ENG_EV_FAILED) {
		pre = q->ev_pre;
		q->ev_pre = NULL;
	}
	jobq_mem__ev_store(q, type, id, id_len, prev, num, s1, s1 ? strlen(s1) : 0, s2,
	                   s2 ? strlen(s2) : 0, pre);
	return 0;
}

static inline void
engp_signal_work(mqueue *q, int many) {
	work_signal(q, many);
}

static inline int
engp_metrics_get(mqueue *q, jobq_state s, eng_metrics *m) {
	const mmetrics *mm = jobq_mem__metrics_of(q, s);
	*m = (eng_metrics){mm->count, mm->prev_ts, mm->prev_count};
	return mm->started;
}

static inline int
engp_metrics_set(mqueue *q, jobq_state s, const eng_metrics *m) {
	mmetrics *mm = jobq_mem__metrics_of(q, s);
	mm->count = m->count;
	mm->prev_ts = m->prev_ts;
	mm->prev_count = m->prev_count;
	mm->started = 1;
	return 0;
}

static inline int
engp_metrics_push(mqueue *q, jobq_state s, int64_t point, uint32_t zeros, uint32_t max) {
	jobq_mem__metrics_push(jobq_mem__metrics_of(q, s), point, zeros, max);
	return 0;
}

static inline eng_limits *
engp_limits(mqueue *q) {
	return &q->lim;
}

/* Memory's fetch records the promotions it makes (q->plog, set around eng_promote_due), to
 * undo them if an allocation of the same step fails later. */
#define ENG_ON_PROMOTE(q, j)                                                                       \
	do {                                                                                       \
		promote_log *pl_ = (q)->plog;                                                      \
		if (pl_ != NULL && pl_->n < pl_->cap)                                              \
			pl_->e[pl_->n++] = (promoted){(j), (j)->k1, (j)->k2, (j)->delay_ms};       \
	} while (0)

#define ENG_FLOWS 1
#include "engine/engine_ops.h"

/* --- flows (engine/flow_ops.h): a job's mflow record; other queues are locked as they are
 * reached (the operation holds the instance's flow_mu, memory_int.h) ---------------------- */

static inline int
engp_put_waiting_children(mqueue *q, mjob *j) {
	list_push_back(&q->waiting_children, j);
	j->state = JOBQ_STATE_WAITING_CHILDREN;
	return 0;
}

static inline int
engp_parent(mqueue *q, mjob *j, mqueue **pc, mjob **pj, jobq_parent_policy *policy) {
	mflow *f = j->flow;
	if (f == NULL || f->pq == NULL)
		return 0;
	jobq_mem__lock_other(q, f->pq);
	mjob *p = find_job(f->pq, f->pid);
	if (p == NULL || p->flow == NULL)
		return 0;
	*pc = f->pq;
	*pj = p;
	*policy = f->policy;
	return 1;
}

static inline int
engp_dep_settle(mqueue *pc, mjob *pj, mqueue *c, const mjob *j, int to, const char *value) {
	(void)pc;
	mflow *f = pj->flow;
	if (f == NULL)
		return 0;
	mdep *pend = f->dep[JOBQ_DEP_PENDING];
	size_t n = f->n[JOBQ_DEP_PENDING], i = 0;
	while (i < n && !(pend[i].q == c && strcmp(pend[i].id, j->id) == 0))
		i++;
	if (i == n)
		return 0;
	mdep d = pend[i];
	memmove(&pend[i], &pend[i + 1], (n - i - 1) * sizeof(*pend));
	f->n[JOBQ_DEP_PENDING]--;
	if (to < 0) {
		jobq__free(d.id);
		jobq__free(d.value);
		return 1;
	}
	/* out of memory for the value: the child is still counted, its value reads null */
	d.value = value ? jobq__strdup(value) : NULL;
	f->dep[to][f->n[to]++] = d; /* room: cap holds every child the parent ever had */
	return 1;
}

static inline size_t
engp_dep_count(mqueue *pc, const mjob *pj, int which) {
	(void)pc;
	return pj->flow ? pj->flow->n[which] : 0;
}

static inline int
engp_dep_pending_at(mqueue *pc, mjob *pj, size_t i, mqueue **cc, mjob **cj) {
	mflow *f = pj->flow;
	if (f == NULL || i >= f->n[JOBQ_DEP_PENDING])
		return 0;
	mdep *d = &f->dep[JOBQ_DEP_PENDING][i];
	jobq_mem__lock_other(pc, d->q);
	*cc = d->q;
	*cj = find_job(d->q, d->id);
	return *cj != NULL;
}

static inline int
engp_dep_drop_pending(mqueue *pc, mjob *pj, size_t i) {
	(void)pc;
	mflow *f = pj->flow;
	mdep *pend = f->dep[JOBQ_DEP_PENDING];
	jobq__free(pend[i].id);
	jobq__free(pend[i].value);
	memmove(&pend[i], &pend[i + 1], (f->n[JOBQ_DEP_PENDING] - i - 1) * sizeof(*pend));
	f->n[JOBQ_DEP_PENDING]--;
	return 0;
}

static inline void
engp_child_key(mqueue *c, const mjob *j, char *buf, size_t size) {
	snprintf(buf, size, "%s:%s", c->name, j->id);
}

static inline int
engp_set_deferred_copy(mqueue *c, mjob *j, const char *reason) {
	(void)c;
	mflow *f = j->flow;
	if (reason == NULL || f == NULL) {
		j->defa = reason ? "child failed" : NULL;
		return 0;
	}
	char *copy = jobq__strdup(reason);
	jobq__free(f->defa);
	f->defa = copy;
	j->defa = copy ? copy : "child failed"; /* out of memory: the failure still happens */
	return 0;
}

#include "engine/flow_ops.h"

/* --- the lock check ------------------------------------------------------------------------ */

static inline int
check_lock(mjob **out, mqueue *q, const char *id, const char *token, int64_t now) {
	/* Jobs mostly finish in the order they were fetched: try the oldest active job first. */
	mjob *j = q->active.head;
	size_t id_len = id ? strlen(id) : 0;
	if (j == NULL || j->id_len != id_len || memcmp(j->id, id, id_len) != 0)
		j = find_job(q, id);
	int rc = eng_check_lock(j, id, token, now, q->name);
	if (rc == 0)
		*out = j;
	return rc;
}

#endif
