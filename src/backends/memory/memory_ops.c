/*
 * The memory backend's operations on jobs: add, fetch, extend, complete (and complete-and-
 * fetch), fail, release and the stalled check. Each is one critical section under the queue
 * mutex: allocate first, then check, then carry out the engine's rule (memory_prims.h), so a
 * failed operation changes nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/memory/memory_prims.h"
#include "backends/memory/memory_sched.h"

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
	mdedup *st_d;    /* a dedup key whose stash this request changed (keepLastIfActive) */
	mjob *st_new;    /* the add it stashed there, or NULL (the stash was dropped) */
	mjob *st_old;    /* the stash it replaced, freed once the add succeeds, or NULL */
	int64_t st_exp;  /* the key's expiry before */
} addslot;

/* Sets the stash of dedup key `d` to `j` (NULL: none) for request `s`, keeping what it had
 * for add_rollback; the key loses its expiry while something is stashed. */
static void
stash_set(addslot *s, mdedup *d, mjob *j) {
	s->st_d = d;
	s->st_new = j;
	s->st_old = d->stash;
	s->st_exp = d->expiry;
	d->stash = j;
	if (j != NULL)
		d->expiry = 0;
}

/* The options record of the current run for a job with options `o`: q->last_opts if equal,
 * else `run`; one more reference taken. */
static mopts *
run_opts(mqueue *q, mopts **cur, mopts *run, const jobq_job_options *o) {
	if (*cur == NULL) {
		*cur = q->last_opts;
		if (*cur == NULL || !jobq__job_options_equal(&(*cur)->o, o))
			*cur = run;
	}
	(*cur)->refs++;
	q->last_opts = *cur;
	return *cur;
}

size_t
jobq_mem__add_block_size(const jobq_add_request *r, size_t *name_len) {
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
mjob *
jobq_mem__add_fill(mjob *j, const jobq_add_request *r, const char *id, size_t id_len,
                   size_t name_len) {
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
		if (s[i].st_d != NULL) {
			s[i].st_d->stash = s[i].st_old;
			s[i].st_d->expiry = s[i].st_exp;
			if (s[i].st_new != NULL) {
				mopts_unref(q, s[i].st_new->mo);
				s[i].blk = s[i].st_new;
			}
			s[i].st_d = NULL;
			s[i].st_new = s[i].st_old = NULL;
		}
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
			engp_unlink(q, s[i].created);
			jobs_del(q, s[i].created);
			mopts_unref(q, s[i].created->mo);
			s[i].blk = s[i].created;
			s[i].created = NULL;
		}
	}
	q->id_counter = counter;
	jobq_mem__ring_truncate(&q->ev, ev_next);
}

int
jobq_mem__add(jobq_job_id *ids, int *outcomes, jobq_backend_queue *q, const jobq_add_request *reqs,
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
			if ((s[i].mo = jobq_mem__mopts_new(reqs[i].opts)) == NULL)
				goto oom;
		}
		s[i].size = jobq_mem__add_block_size(&reqs[i], &name_lens[i]);
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
	if (jobq_mem__jobs_reserve(q, n) < 0) {
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
				engp_event(q, ENG_EV_DUPLICATED, id, id_len, 0, 0, NULL, NULL);
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
			mjob *oj = live ? find_job(q, d->owner) : NULL;
			if (oj != NULL && eng_dedup_stashes(o, oj->state)) {
				mjob *sj =
				    jobq_mem__add_fill(s[i].blk, r, id, id_len, name_lens[i]);
				s[i].blk = NULL;
				sj->mo = run_opts(q, &cur, run, o);
				stash_set(&s[i], d, sj);
			} else if (d != NULL && !live && d->stash != NULL) {
				stash_set(&s[i], d, NULL); /* a stale key's stash goes with it */
			}
			if (live) {
				memcpy(ids[i].str, d->owner, d->owner_len + 1);
				outcomes[i] = JOBQ_ADD_DEDUPLICATED;
				engp_event(q, ENG_EV_DEDUPLICATED, d->owner, d->owner_len, 0, 0,
				           o->dedup_id, id);
				continue;
			}
		}
		mjob *j = jobq_mem__add_fill(s[i].blk, r, id, id_len, name_lens[i]);
		s[i].blk = NULL;
		j->mo = run_opts(q, &cur, run, o);
		jobs_add(q, j);
		s[i].created = j;
		if (o->dedup_id) {
			int64_t expiry = eng_dedup_expiry(o, now);
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
		ready += (size_t)eng_place_new(q, j, j->name, j->timestamp);
	}
	if (ready > 0)
		work_signal(q, ready > 1);
	for (size_t i = 0; i < n; i++)
		stash_free(q, s[i].st_old);
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

/* Records the failure prepared in `p` on active job p->j (takes what `p` holds), then fails
 * it by the engine's rule as decided in `f`; cannot fail. */
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
		jobq__stack_trim(sd->stacktrace, &sd->stacktrace_count, f->stack_limit);
	}
	jobq__free(sd->failed_reason);
	sd->failed_reason = p->reason;
	q->ev_pre = p->ev_heap;
	memset(p, 0, sizeof(*p));
	(void)eng_fail(q, j, f, sd->failed_reason, now);
	jobq__free(q->ev_pre); /* not used: the job was retried */
	q->ev_pre = NULL;
}

/* Room in the job table for what finishing `n` jobs may add, when `j` (one of them) has a
 * dedup id (its stashed add becomes a job: eng_dedup_requeue). */
static int
stash_room(mqueue *q, const mjob *j, size_t n) {
	if (j->dedup_id != NULL && jobq_mem__jobs_reserve(q, n) < 0)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory finishing job %s",
		                      j->id);
	return 0;
}

/* --- fetch -------------------------------------------------------------------------------- */

/* Promotes the due delayed jobs (at most ENG_STEP_MAX), recording them in *log (freed with
 * jobq__free(log->e)) so that promote_undo can put them back. JOBQ_ENOMEM (nothing done) if
 * the record cannot be made. */
static int
promote_due_undoable(promote_log *log, mqueue *q, int64_t now) {
	memset(log, 0, sizeof(*log));
	size_t due = 0;
	for (mjob *d = RB_MIN(mtree, &q->delayed); d != NULL && d->k1 <= now && due < ENG_STEP_MAX;
	     d = RB_NEXT(mtree, &q->delayed, d))
		due++;
	if (due == 0)
		return 0;
	if ((log->e = jobq__malloc(due * sizeof(*log->e))) == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in fetch");
	log->cap = due;
	q->plog = log;
	(void)eng_promote_due(q, now, (int)due);
	q->plog = NULL;
	return 0;
}

/* Undoes promote_due_undoable (the queue's order counter and events back to `order` and
 * `ev_next`, as they were before it). */
static void
promote_undo(mqueue *q, const promote_log *log, int64_t order, uint64_t ev_next) {
	for (size_t i = log->n; i-- > 0;) {
		mjob *j = log->e[i].j;
		engp_unlink(q, j);
		j->delay_ms = log->e[i].delay_ms;
		tree_insert(q, j, JOBQ_STATE_DELAYED, log->e[i].k1, log->e[i].k2);
	}
	q->order = order;
	jobq_mem__ring_truncate(&q->ev, ev_next);
}

/* The queue's entry of worker name `name`, or NULL. */
static mname *
find_name(mqueue *q, const char *name) {
	for (mname *n = q->names; n != NULL; n = n->next)
		if (strcmp(n->s, name) == 0)
			return n;
	return NULL;
}

/* The entry of worker name `name` for a job a fetch takes: found, else added (unused, so
 * that drop_unused takes it back if the fetch fails). NULL on ENOMEM (error set). */
static mname *
fetch_name(mqueue *q, const char *name) {
	mname *n = find_name(q, name);
	if (n == NULL) {
		size_t len = strlen(name);
		n = jobq__malloc(sizeof(*n) + len + 1);
		if (n == NULL) {
			jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in fetch");
			return NULL;
		}
		memcpy(n->s, name, len + 1);
		n->attached = 0;
		n->used = 0;
		n->next = q->names;
		q->names = n;
	}
	return n;
}

/* Frees name entry `n` if no worker holds it and no job points to it. */
static void
drop_unused(mqueue *q, mname *n) {
	if (n == NULL || n->attached > 0 || n->used)
		return;
	for (mname **at = &q->names; *at != NULL; at = &(*at)->next)
		if (*at == n) {
			*at = n->next;
			jobq__free(n);
			return;
		}
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
             int64_t lock_ms, const jobq_fetch_info *info, int64_t *limit_wait, int64_t now) {
	int64_t order = q->order;
	uint64_t ev_next = q->ev.next;
	const char *pb_want = info != NULL ? info->processed_by : NULL;
	mname *pb = NULL;
	promote_log log;
	int rc =
	    jobq_mem__metrics_reserve(q, JOBQ_STATE_FAILED, info ? info->metrics_max_points : 0);
	if (rc < 0 || (rc = promote_due_undoable(&log, q, now)) < 0)
		return rc;
	/* Allocate everything first: the copy of the job to run, and what failing each job
	 * before it takes. */
	fail_prep stack[4], *fails = stack;
	size_t nfails = 0, cap = sizeof(stack) / sizeof(stack[0]);
	jobq_job *c = NULL;
	mjob *j = NULL;
	int gate = eng_limits_gate(&q->lim, q->paused, q->active.count, info, now, limit_wait);
	while (gate == 0 && (j = next_ready(q, j)) != NULL) {
		if (j->defa == NULL) {
			const char *old_pb = j->pb;
			if (pb_want != NULL && (pb = fetch_name(q, pb_want)) == NULL) {
				rc = JOBQ_ENOMEM;
				break;
			}
			if (pb != NULL)
				j->pb = pb->s; /* taken below, else given back */
			rc = jobq_mem__job_copy(&c, j, token, token_len);
			if (rc < 0)
				j->pb = old_pb;
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
		else if ((rc = stash_room(q, j, nfails)) == 0)
			rc = fail_prepare(p, j, 1);
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		for (size_t i = 0; i < nfails; i++)
			fail_prep_free(&fails[i]);
		promote_undo(q, &log, order, ev_next);
		drop_unused(q, pb);
	} else {
		for (size_t i = 0; i < nfails; i++) {
			mjob *fj = fails[i].j;
			jobq_failure f = jobq__deferred_failure(fj->defa, &fj->mo->o, info);
			(void)eng_take(q, fj, lock_ms, now);
			fail_apply(q, &fails[i], &f, now);
		}
		if (c != NULL) {
			if (pb != NULL)
				pb->used = 1;
			eng_limits_count(&q->lim, info, now);
			(void)eng_take(q, j, lock_ms, now);
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
	jobq__free(log.e);
	return rc;
}

int
jobq_mem__worker_attach(void **presence, jobq_backend_queue *q, const char *name) {
	size_t len = strlen(name);
	mname *fresh = jobq__malloc(sizeof(*fresh) + len + 1);
	if (fresh == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory");
	pthread_mutex_lock(&q->mu);
	mname *n = find_name(q, name);
	if (n == NULL) {
		n = fresh;
		memcpy(n->s, name, len + 1);
		n->attached = 0;
		n->used = 0;
		n->next = q->names;
		q->names = n;
		fresh = NULL;
	}
	n->attached++;
	pthread_mutex_unlock(&q->mu);
	jobq__free(fresh);
	*presence = n;
	return 0;
}

void
jobq_mem__worker_detach(jobq_backend_queue *q, void *presence) {
	mname *n = presence;
	pthread_mutex_lock(&q->mu);
	n->attached--;
	drop_unused(q, n);
	pthread_mutex_unlock(&q->mu);
}

int
jobq_mem__fetch(jobq_job **out, jobq_fetch_info *info, jobq_backend_queue *q, const char *token,
                int64_t lock_ms, int64_t now) {
	if (out == NULL || token == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: fetch needs out and a token");
	size_t token_len = strlen(token);
	char *long_tok = NULL;
	if (token_len >= TOKEN_INLINE && (long_tok = jobq__strdup(token)) == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in fetch");
	int64_t wait = 0;
	int held = jobq_mem__lock(q);
	if (held < 0) {
		jobq__free(long_tok);
		return held;
	}
	int rc = fetch_locked(out, q, token, token_len, &long_tok, lock_ms, info, &wait, now);
	if (info != NULL) {
		info->next_due_ms = next_due(q);
		info->rate_limit_ms = wait;
	}
	if (rc == JOBQ_ENOJOB)
		jobq_error_set(JOBQ_ENOJOB, "no job to fetch in queue %s%s", q->name,
		               q->paused ? " (paused)" : "");
	jobq_mem__unlock(q, held);
	jobq__free(long_tok);
	return rc;
}

int
jobq_mem__extend_lock(jobq_backend_queue *q, const char *id, const char *token, int64_t lock_ms,
                      int64_t now) {
	pthread_mutex_lock(&q->mu);
	mjob *j = NULL;
	int rc = check_lock(&j, q, id, token, now);
	if (rc == 0)
		j->lock_expiry = now + lock_ms;
	pthread_mutex_unlock(&q->mu);
	return rc;
}

/* --- complete ------------------------------------------------------------------------------ */

/* The result as the job keeps it: the shared "null", or a copy (NULL on ENOMEM). */
static char *
result_dup(const char *result_json) {
	if (result_json == NULL || strcmp(result_json, "null") == 0)
		return jobq_mem__null_result;
	return jobq__strdup(result_json);
}

/* Completes under the lock, counted in the metrics when `metrics` (room reserved); takes
 * `res` on success. */
static int
complete_locked(mqueue *q, const char *id, const char *token, char *res, const jobq_keep *keep,
                uint32_t metrics, int64_t now) {
	mjob *j = NULL;
	int rc = check_lock(&j, q, id, token, now);
	if (rc < 0 || (j->flow != NULL && (rc = eng_flow_complete_check(q, j)) < 0))
		return rc;
	if ((rc = stash_room(q, j, 1)) < 0)
		return rc;
	result_free(j->result);
	j->result = res;
	(void)eng_complete(q, j, res, keep, now);
	return eng_metrics_count(q, JOBQ_STATE_COMPLETED, 1, now, metrics);
}

int
jobq_mem__complete(jobq_backend_queue *q, const char *id, const char *token,
                   const char *result_json, const jobq_keep *keep, int64_t now) {
	char *res = result_dup(result_json);
	if (res == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in complete");
	int held = jobq_mem__lock(q);
	if (held < 0) {
		result_free(res);
		return held;
	}
	int rc = complete_locked(q, id, token, res, keep, 0, now);
	jobq_mem__unlock(q, held);
	if (rc < 0)
		result_free(res);
	return rc;
}

int
jobq_mem__complete_fetch(jobq_job **jobs, jobq_fetch_info *info, jobq_backend_queue *q,
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
	int64_t wait = 0;
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
	int held = jobq_mem__lock(q);
	if (held < 0) {
		for (size_t i = 0; i < ndone; i++) {
			result_free(res[i]);
			done[i].rc = held;
		}
		if (res != res_stack)
			jobq__free(res);
		return held;
	}
	uint32_t metrics = 0;
	for (size_t i = 0; i < ndone; i++)
		metrics =
		    done[i].metrics_max_points > metrics ? done[i].metrics_max_points : metrics;
	rc = jobq_mem__metrics_reserve(q, JOBQ_STATE_COMPLETED, metrics);
	for (size_t i = 0; i < ndone; i++) {
		done[i].rc = rc < 0
		                 ? rc
		                 : complete_locked(q, done[i].id, done[i].token, res[i],
		                                   &done[i].keep, done[i].metrics_max_points, now);
		if (done[i].rc < 0)
			result_free(res[i]);
	}
	size_t n = 0;
	while (rc == 0 && n < max) { /* (not past metrics that found no room) */
		size_t tl = strlen(tokens[n]);
		if (tl >= TOKEN_INLINE && long_tok == NULL &&
		    (long_tok = jobq__strdup(tokens[n])) == NULL) {
			rc = jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in fetch");
			break;
		}
		rc = fetch_locked(&jobs[n], q, tokens[n], tl, &long_tok, lock_ms, info, &wait, now);
		if (rc < 0)
			break;
		n++;
	}
	if (info != NULL) {
		info->next_due_ms = next_due(q);
		info->rate_limit_ms = wait;
	}
	jobq_mem__unlock(q, held);
	jobq__free(long_tok);
	if (res != res_stack)
		jobq__free(res);
	if (n > 0 || rc == 0 || rc == JOBQ_ENOJOB)
		return (int)n;
	return rc;
}

/* --- fail, release, stalled jobs ----------------------------------------------------------- */

int
jobq_mem__fail(jobq_backend_queue *q, const char *id, const char *token, const jobq_failure *f,
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
	int held = jobq_mem__lock(q);
	if (held < 0) {
		fail_prep_free(&p);
		return held;
	}
	mjob *j = NULL;
	int rc = check_lock(&j, q, id, token, now);
	if (rc == 0 && f->retry_at_ms < 0)
		rc = jobq_mem__metrics_reserve(q, JOBQ_STATE_FAILED, f->metrics_max_points);
	if (rc == 0 && f->retry_at_ms < 0)
		rc = stash_room(q, j, 1);
	if (rc == 0)
		rc = fail_prepare(&p, j, f->retry_at_ms < 0);
	if (rc == 0)
		fail_apply(q, &p, f, now);
	jobq_mem__unlock(q, held);
	fail_prep_free(&p);
	return rc;
}

int
jobq_mem__release(jobq_backend_queue *q, const char *id, const char *token, int64_t now) {
	pthread_mutex_lock(&q->mu);
	mjob *j = NULL;
	int rc = check_lock(&j, q, id, token, now);
	if (rc == 0)
		rc = eng_release(q, j);
	pthread_mutex_unlock(&q->mu);
	return rc;
}

int
jobq_mem__reap_stalled(jobq_strings **recovered, jobq_backend_queue *q, uint32_t max_stalled,
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
		if (j->lock_expiry <= now)
			(void)eng_sched_stall(q, j, max_stalled);
	}
	if (n > 0)
		work_signal(q, n > 1);
	pthread_mutex_unlock(&q->mu);
	if (recovered != NULL)
		*recovered = ids;
	return (int)n;
}
