/*
 * The memory backend's reading and administration: get, list, counts, remove, pause, drain,
 * clean, promote, retry failed, progress and logs, each one critical section, the rules being
 * the engine's (memory_prims.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/memory/memory_sched.h"

/* --- reading ---------------------------------------------------------------------------- */

int
jobq_mem__get(jobq_job **out, jobq_backend_queue *q, const char *id) {
	pthread_mutex_lock(&q->mu);
	mjob *j = find_job(q, id);
	int rc = j ? jobq_mem__job_copy(out, j, NULL, 0)
	           : jobq_error_set(JOBQ_ENOTFOUND, "job %s not found in queue %s",
	                            id ? id : "(null)", q->name);
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int
list_add_copy(jobq_job_list **out, const mjob *j) {
	jobq_job *c;
	int rc = jobq_mem__job_copy(&c, j, NULL, 0);
	if (rc < 0)
		return rc;
	rc = jobq_job_list__append(out, c);
	if (rc < 0)
		jobq_job_free(c);
	return rc;
}

int
jobq_mem__list(jobq_job_list **out, jobq_backend_queue *q, jobq_state state, size_t offset,
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

int
jobq_mem__counts(jobq_counts *out, jobq_backend_queue *q) {
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
	out->waiting_children = q->waiting_children.count;
	pthread_mutex_unlock(&q->mu);
	return 0;
}

/* --- administration --------------------------------------------------------------------- */

int
jobq_mem__remove(jobq_backend_queue *q, const char *id, int64_t now) {
	int held = jobq_mem__lock(q);
	if (held < 0)
		return held;
	int rc = 0;
	mjob *j = find_job(q, id);
	if (j == NULL) {
		rc = jobq_error_set(JOBQ_ENOTFOUND, "job %s not found in queue %s",
		                    id ? id : "(null)", q->name);
	} else if (eng_sched_is_pending(q, j) > 0) {
		rc = jobq_error_set(JOBQ_ESTATE,
		                    "job %s is the pending iteration of a job scheduler", id);
	} else if (j->flow != NULL && eng_flow_tree_locked(q, j, now, 0)) {
		rc = jobq_error_set(JOBQ_ESTATE, "job %s has a child that is active and locked",
		                    j->id);
	} else {
		rc = eng_remove(q, j, now);
	}
	jobq_mem__unlock(q, held);
	return rc;
}

int
jobq_mem__set_paused(jobq_backend_queue *q, int paused, int64_t now) {
	(void)now;
	pthread_mutex_lock(&q->mu);
	q->paused = paused ? 1 : 0;
	engp_event(q, paused ? ENG_EV_PAUSED : ENG_EV_RESUMED, NULL, 0, 0, 0, NULL, NULL);
	if (!paused)
		work_signal(q, 1);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

int
jobq_mem__is_paused(int *out, jobq_backend_queue *q) {
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: is_paused needs out");
	pthread_mutex_lock(&q->mu);
	*out = q->paused;
	pthread_mutex_unlock(&q->mu);
	return 0;
}

int
jobq_mem__drain(jobq_backend_queue *q, int include_delayed, int64_t now) {
	int held = jobq_mem__lock(q);
	if (held < 0)
		return held;
	/* the pending iterations of job schedulers stay, as BullMQ's drain keeps them; a delete
	 * may take other jobs with it (a parent's pending children), so each search starts over */
	for (int t = 0; t < 2 + (include_delayed != 0); t++) {
		struct mtree *tree = t == 1 ? &q->prio : &q->delayed;
		for (;;) {
			mjob *j = t == 0 ? q->waiting.head : RB_MIN(mtree, tree);
			while (j != NULL && eng_sched_is_pending(q, j) > 0)
				j = t == 0 ? j->next : RB_NEXT(mtree, tree, j);
			if (j == NULL)
				break;
			eng_delete(q, j, now);
		}
	}
	jobq_mem__unlock(q, held);
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

int
jobq_mem__clean(jobq_strings **removed, jobq_backend_queue *q, jobq_state state, int64_t grace_ms,
                size_t limit, int64_t now) {
	if (state == JOBQ_STATE_UNKNOWN || state >= JOBQ_STATE__COUNT)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: cannot clean state %d",
		                      (int)state);
	int64_t cutoff = now - grace_ms;
	mjob **victims = NULL;
	size_t nv = 0, cap = 0;
	jobq_strings *ids = NULL;
	int rc = 0;
	char(*vid)[JOBQ_ID_MAX + 1] = NULL;
	int held = jobq_mem__lock(q);
	if (held < 0)
		return held;
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
		if ((state == JOBQ_STATE_ACTIVE && j->lock_expiry > now) ||
		    eng_sched_is_pending(q, j) > 0)
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
	if (held > 0) {
		/* deleting a parent deletes its pending children, which may be victims too:
		 * find each victim again by its id */
		if (nv > 0 && (vid = jobq__malloc(nv * sizeof(*vid))) == NULL)
			goto oom;
		for (size_t i = 0; i < nv; i++)
			memcpy(vid[i], victims[i]->id, (size_t)victims[i]->id_len + 1);
		size_t gone = 0;
		for (size_t i = 0; i < nv; i++) {
			mjob *v = find_job(q, vid[i]);
			if (v != NULL)
				eng_delete(q, v, now);
			else
				gone++;
		}
		(void)gone;
	} else {
		for (size_t i = 0; i < nv; i++)
			eng_delete(q, victims[i], now);
	}
	engp_event(q, ENG_EV_CLEANED, NULL, 0, 0, (int64_t)nv, NULL, NULL);
	jobq_mem__unlock(q, held);
	jobq__free(vid);
	jobq__free(victims);
	if (removed != NULL) {
		if (ids == NULL)
			ids = jobq__calloc(1, sizeof(*ids));
		*removed = ids;
	}
	return (int)nv;
oom:
	jobq_mem__unlock(q, held);
	jobq__free(victims);
	jobq_strings_free(ids);
	rc = jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory in clean");
	return rc;
}

/* Moves job `id` (NULL: every job) of state `from` (delayed: promote; failed: retry) back to
 * waiting or prioritized; returns how many. */
static int
move_to_ready(mqueue *q, const char *id, jobq_state from) {
	int rc = 0;
	pthread_mutex_lock(&q->mu);
	if (id != NULL) {
		mjob *j = find_job(q, id);
		if (j == NULL)
			rc = jobq_error_set(JOBQ_ENOTFOUND, "job %s not found in queue %s", id,
			                    q->name);
		else if (j->state != from)
			rc = jobq_error_set(JOBQ_ESTATE, "job %s is %s, not %s", id,
			                    jobq_state_name(j->state), jobq_state_name(from));
		else if ((rc = eng_back_to_ready(q, j)) == 0)
			rc = 1;
	} else {
		ENG_JOB space, *j;
		int64_t key;
		while (engp_first(q, from, &space, &j, &key) > 0) {
			(void)eng_back_to_ready(q, j);
			rc++;
		}
	}
	if (rc > 0)
		work_signal(q, rc > 1);
	pthread_mutex_unlock(&q->mu);
	return rc;
}

int
jobq_mem__promote(jobq_backend_queue *q, const char *id, int64_t now) {
	(void)now;
	return move_to_ready(q, id, JOBQ_STATE_DELAYED);
}

int
jobq_mem__retry_failed(jobq_backend_queue *q, const char *id, int64_t now) {
	(void)now;
	return move_to_ready(q, id, JOBQ_STATE_FAILED);
}

int
jobq_mem__progress(jobq_backend_queue *q, const char *id, const char *token, const char *json,
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
		engp_event(q, ENG_EV_PROGRESS, j->id, j->id_len, 0, 0, sd->progress, NULL);
	}
	pthread_mutex_unlock(&q->mu);
	jobq__free(copy);
	return rc;
}

int
jobq_mem__add_log(jobq_backend_queue *q, const char *id, const char *line, int64_t keep) {
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

int
jobq_mem__get_logs(jobq_strings **out, jobq_backend_queue *q, const char *id, size_t start,
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
