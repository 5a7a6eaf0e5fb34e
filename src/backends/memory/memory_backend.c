/*
 * The memory backend's queues, blocking waits, named instances and vtable (see memory_int.h
 * for the data structures and the locking).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/memory/memory_prims.h"

#define NAME_MAX_URL  200
#define URL_SCHEME    "mem://"
#define URL_SCHEME_SZ 6

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static minstance *registry;

static int
is_ready(const mqueue *q) {
	return !q->paused && !eng_limits_maxed(&q->lim, q->active.count) &&
	       (q->waiting.count > 0 || q->nprio > 0);
}

/* --- queues ----------------------------------------------------------------------------- */

void
jobq_mem__queue_reset(mqueue *q) {
	for (size_t i = 0; i < q->jobs_cap; i++)
		if (q->jobs[i].j != NULL)
			jobq_mem__job_free_mem(q, q->jobs[i].j);
	jobq__free(q->jobs_mem);
	q->jobs_mem = NULL;
	q->jobs = NULL;
	q->jobs_cap = q->njobs = 0;
	mdedup *d, *dtmp;
	HASH_ITER(hh, q->dedup, d, dtmp) {
		dedup_delete(q, d);
	}
	jobq_mem__chunks_free(q); /* no job is left in them */
	jobq_mem__scheds_clear(q);
	memset(&q->waiting, 0, sizeof(q->waiting));
	memset(&q->waiting_children, 0, sizeof(q->waiting_children));
	memset(&q->active, 0, sizeof(q->active));
	memset(&q->completed, 0, sizeof(q->completed));
	memset(&q->failed, 0, sizeof(q->failed));
	RB_INIT(&q->prio);
	RB_INIT(&q->delayed);
	q->nprio = q->ndelayed = 0;
	q->order = q->front_order = 0;
	q->id_counter = 0;
	q->paused = 0;
	memset(&q->lim, 0, sizeof(q->lim));
	jobq_mem__ring_clear(&q->ev);
	jobq_mem__metrics_reset(q);
}

static void
queue_destroy(mqueue *q) {
	jobq_mem__queue_reset(q);
	while (q->names != NULL) {
		mname *n = q->names;
		q->names = n->next;
		jobq__free(n);
	}
	jobq__free(q->ev.buf);
	pthread_cond_destroy(&q->work_cv);
	pthread_cond_destroy(&q->ev_cv);
	pthread_mutex_destroy(&q->mu);
	jobq__free(q);
}

mqueue *
jobq_mem__queue_get(minstance *inst, const char *name) {
	size_t len = strlen(name);
	pthread_mutex_lock(&inst->mu);
	mqueue *q = NULL;
	HASH_FIND(hh, inst->queues, name, len, q);
	if (q == NULL) {
		q = jobq__calloc(1, sizeof(*q) + len + 1);
		if (q == NULL) {
			pthread_mutex_unlock(&inst->mu);
			jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory opening %s",
			               name);
			return NULL;
		}
		memcpy(q->name, name, len + 1);
		q->inst = inst;
		RB_INIT(&q->prio);
		RB_INIT(&q->delayed);
		q->ev.first = q->ev.next = 1;
		if (jobq_mem__ring_grow(&q->ev) < 0) {
			pthread_mutex_unlock(&inst->mu);
			jobq__free(q);
			jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory opening %s",
			               name);
			return NULL;
		}
		HASH_ADD_KEYPTR(hh, inst->queues, q->name, len, q);
		if (q->hh.tbl == NULL) {
			pthread_mutex_unlock(&inst->mu);
			jobq__free(q->ev.buf);
			jobq__free(q);
			jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory opening %s",
			               name);
			return NULL;
		}
		pthread_mutex_init(&q->mu, NULL);
		jobq__cond_init_monotonic(&q->work_cv);
		jobq__cond_init_monotonic(&q->ev_cv);
	}
	pthread_mutex_unlock(&inst->mu);
	return q;
}

static int
mem_queue_open(jobq_backend_queue **out, jobq_backend *b, const char *name) {
	minstance *inst = ((mbackend *)b)->inst;
	if (out == NULL || name == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: queue_open needs out and name");
	mqueue *q = jobq_mem__queue_get(inst, name);
	if (q == NULL)
		return JOBQ_ENOMEM;
	*out = q;
	return 0;
}

static void
mem_queue_close(jobq_backend_queue *q) {
	(void)q; /* the queue's state lives as long as its instance */
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
	jobq_mem__queue_reset(q);
	q->gen++;
	pthread_cond_broadcast(&q->work_cv);
	pthread_cond_broadcast(&q->ev_cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

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
	pthread_mutex_destroy(&inst->flow_mu);
	jobq__free(inst->held);
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
    .caps = JOBQ_CAP_BLOCKING_WAIT | JOBQ_CAP_DUE_CLOCK | JOBQ_CAP_LOCK_CLOCK |
            JOBQ_CAP_DEDUP_KEEP_LAST,
    .queue_open = mem_queue_open,
    .queue_close = mem_queue_close,
    .list_queues = mem_list_queues,
    .worker_attach = jobq_mem__worker_attach,
    .worker_detach = jobq_mem__worker_detach,
    .add = jobq_mem__add,
    .fetch = jobq_mem__fetch,
    .extend_lock = jobq_mem__extend_lock,
    .complete = jobq_mem__complete,
    .fail = jobq_mem__fail,
    .release = jobq_mem__release,
    .reap_stalled = jobq_mem__reap_stalled,
    .get = jobq_mem__get,
    .list = jobq_mem__list,
    .counts = jobq_mem__counts,
    .remove = jobq_mem__remove,
    .set_paused = jobq_mem__set_paused,
    .is_paused = jobq_mem__is_paused,
    .set_limits = jobq_mem__set_limits,
    .get_limits = jobq_mem__get_limits,
    .rate_limit = jobq_mem__rate_limit,
    .drain = jobq_mem__drain,
    .clean = jobq_mem__clean,
    .obliterate = mem_obliterate,
    .promote = jobq_mem__promote,
    .retry_failed = jobq_mem__retry_failed,
    .progress = jobq_mem__progress,
    .add_log = jobq_mem__add_log,
    .get_logs = jobq_mem__get_logs,
    .events_read = jobq_mem__events_read,
    .wait_for_work = mem_wait_for_work,
    .wake = mem_wake,
    .free = mem_free,
    .complete_fetch = jobq_mem__complete_fetch,
    .metrics = jobq_mem__metrics,
    .scheduler_next = jobq_mem__scheduler_next,
    .scheduler_upsert = jobq_mem__scheduler_upsert,
    .scheduler_get = jobq_mem__scheduler_get,
    .scheduler_list = jobq_mem__scheduler_list,
    .scheduler_remove = jobq_mem__scheduler_remove,
    /* flows (issue 14) */
    .flow_add = jobq_mem__flow_add,
    .dependencies = jobq_mem__dependencies,
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
	pthread_mutex_init(&inst->flow_mu, NULL);
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
