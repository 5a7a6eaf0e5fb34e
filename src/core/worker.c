/*
 * The worker runtime: `concurrency` handler threads, each fetching and running jobs, with up
 * to two of them at a time blocked in the backend's wait for work while the others wait on the
 * worker's condvar; and one timer thread for the lock heartbeat and the stalled-job reaper.
 * Handlers run with no library lock held.
 *
 * A handler thread completes the jobs it ran and fetches the next ones in one backend step
 * (jobq_queue__complete_fetch; BullMQ's moveToFinished with fetchNext). When the backend
 * does that in batches, the thread takes up to BATCH_MAX jobs at once, but only while its
 * handlers are fast: after a batch that ran within a millisecond the next is sized to take
 * about a millisecond at that speed (at least twice, at most BATCH_GROW_MAX times as large),
 * and after one that took longer than BATCH_BUDGET_MS the size drops back to one. (Doubling
 * alone took a hundred threads eight batches each to reach full size: most of a burst of
 * 20,000 jobs ran in small batches.) A batch in hand is
 * run to its end (only closing gives back the jobs not started): giving them back would show
 * Node BullMQ an extra active/waiting round and count an attempt start that never ran. Every
 * job a thread holds - running, waiting for its turn, or completed but not yet written - is
 * locked and kept locked by the heartbeat; a crash leaves them to the stalled-job reaper.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "backends/backend.h"

typedef struct handler {
	char *name;
	jobq_process_fn fn;
	void *payload;
} handler;

enum { BATCH_MAX = 256, BATCH_BUDGET_MS = 2, BATCH_GROW_MAX = 16, TOKEN_SIZE = 48 };
#define NOT_RUNNING ((size_t)-1)

/*
 * The jobs a handler thread holds, for the heartbeat. The thread owns the jobs, and keeps
 * them (and so the strings below) alive while they are listed here; `mu` guards the lists.
 */
typedef struct slot {
	pthread_mutex_t mu;
	size_t n;
	const char *ids[BATCH_MAX];
	const char *tokens[BATCH_MAX];
	int lost[BATCH_MAX];      /* the heartbeat found the lock gone */
	size_t running;           /* index of the job whose handler runs, or NOT_RUNNING */
	atomic_int *running_lost; /* the running job's lock_lost flag */
} slot;

struct jobq_worker {
	jobq_queue *q;
	jobq_worker_options opts;
	jobq_process_fn default_fn;
	void *default_payload;
	handler *handlers;
	size_t nhandlers;
	jobq_fail_policy policy;

	pthread_mutex_t mu;
	pthread_cond_t idle_cv;   /* handler threads waiting for the waiter's news */
	pthread_cond_t timer_cv;  /* the timer thread; also signalled by a manual clock */
	pthread_cond_t done_cv;   /* a handler finished a job or a thread exited */
	atomic_uint waiters;      /* threads in the backend's wait for work; changed under mu */
	unsigned int max_waiters; /* at most this many: 2 (1 with one thread or no blocking wait) */
	uint64_t work_gen;
	atomic_uint idle_waiters; /* threads waiting on idle_cv for the news */
	uint64_t clock_gen;
	unsigned int alive;
	slot *slots;
	unsigned int nslots;

	pthread_t *threads;
	pthread_t timer;
	int started;
	int closed;
	atomic_int stopping;
	atomic_int cancelled;
	atomic_int timer_stop;
	atomic_uint_fast64_t completed;
	atomic_uint_fast64_t failed;
	atomic_uint_fast64_t running;
	atomic_int store_down;    /* STORE_DOWN was told, and no STORE_UP since */
	atomic_llong limit_until; /* rate-limited: no fetch before this time of the store's clock */
	atomic_uint recording;    /* threads holding outcomes the store refused */
	jobq_worker_ident ident;  /* name, and its presence on the store (worker_setup.c) */
};

typedef struct thread_arg {
	jobq_worker *w;
	unsigned int index;
} thread_arg;

/* An idle worker re-checks the store at least this often (BullMQ's drainDelay). A refused
 * outcome is tried again sooner than a failed fetch: the job is finished, and every second
 * it waits is a second its lock must be kept. */
enum {
	IDLE_WAIT_MS = 5000,
	ERROR_BACKOFF_MIN_MS = 50,
	ERROR_BACKOFF_MAX_MS = 5000,
	RECORD_BACKOFF_MAX_MS = 1000
};

static void
clock_advanced(void *arg) {
	jobq_worker *w = arg;
	pthread_mutex_lock(&w->mu);
	w->clock_gen++;
	pthread_cond_broadcast(&w->timer_cv);
	pthread_mutex_unlock(&w->mu);
}

int
jobq_worker_new(jobq_worker **out, jobq_queue *q, jobq_process_fn fn, void *payload,
                const jobq_worker_options *opts) {
	static const jobq_worker_options defaults = JOBQ_WORKER_OPTIONS_INIT;
	if (out == NULL || q == NULL)
		return jobq_error_set(JOBQ_EINVAL, "worker: out and queue are required");
	if (atomic_load(&q->closed))
		return jobq_error_set(JOBQ_ECLOSED, "worker: queue '%s' is closed", q->name);
	if (opts == NULL)
		opts = &defaults;
	jobq_worker_options o;
	int rc = jobq_worker__options_copy(&o, opts);
	if (rc < 0)
		return rc;
	opts = &o;
	jobq_worker *w = jobq__calloc(1, sizeof(*w));
	if (w == NULL)
		return JOBQ_ENOMEM;
	w->q = q;
	w->opts = o;
	if (w->opts.lock_renew_ms == 0)
		w->opts.lock_renew_ms = w->opts.lock_ms / 2;
	w->default_fn = fn;
	w->default_payload = payload;
	w->policy.worker_keep_on_fail = &w->opts.remove_on_fail;
	w->policy.backoff_fn = w->opts.backoff_fn;
	w->policy.backoff_payload = w->opts.backoff_payload;
	w->policy.metrics_max_points = w->opts.metrics_max_data_points;
	w->slots = jobq__calloc(opts->concurrency, sizeof(*w->slots));
	w->threads = jobq__calloc(opts->concurrency, sizeof(*w->threads));
	rc = jobq_worker__ident_init(&w->ident);
	if (w->slots == NULL || w->threads == NULL || rc < 0) {
		jobq_worker__ident_free(&w->ident);
		jobq__free(w->slots);
		jobq__free(w->threads);
		jobq__free(w);
		return JOBQ_ENOMEM;
	}
	w->nslots = opts->concurrency;
	/* Without a blocking wait, a second waiter would only poll twice as often. */
	w->max_waiters = opts->concurrency > 1 && jobq__backend_can_wait(q->store->backend) ? 2 : 1;
	for (unsigned int i = 0; i < opts->concurrency; i++) {
		pthread_mutex_init(&w->slots[i].mu, NULL);
		w->slots[i].running = NOT_RUNNING;
	}
	pthread_mutex_init(&w->mu, NULL);
	jobq_clock__cond_init(&w->idle_cv);
	jobq_clock__cond_init(&w->timer_cv);
	jobq_clock__cond_init(&w->done_cv);
	*out = w;
	return 0;
}

int
jobq_worker_on(jobq_worker *w, const char *name, jobq_process_fn fn, void *payload) {
	if (w == NULL || name == NULL || fn == NULL)
		return jobq_error_set(JOBQ_EINVAL,
		                      "worker on: worker, name and handler are required");
	if (w->started)
		return jobq_error_set(JOBQ_ESTATE, "worker on: the worker is already started");
	for (size_t i = 0; i < w->nhandlers; i++)
		if (strcmp(w->handlers[i].name, name) == 0) {
			w->handlers[i].fn = fn;
			w->handlers[i].payload = payload;
			return 0;
		}
	handler *h = jobq__realloc(w->handlers, (w->nhandlers + 1) * sizeof(*h));
	if (h == NULL)
		return JOBQ_ENOMEM;
	w->handlers = h;
	char *copy = jobq__strdup(name);
	if (copy == NULL)
		return JOBQ_ENOMEM;
	w->handlers[w->nhandlers++] = (handler){copy, fn, payload};
	return 0;
}

static const handler *
find_handler(const jobq_worker *w, const char *name, handler *fallback) {
	for (size_t i = 0; i < w->nhandlers; i++)
		if (strcmp(w->handlers[i].name, name) == 0)
			return &w->handlers[i];
	if (w->default_fn == NULL)
		return NULL;
	*fallback = (handler){NULL, w->default_fn, w->default_payload};
	return fallback;
}

/* --- telling the owner -------------------------------------------------------------------- */

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 5, 6)))
#endif
static void
tell(jobq_worker *w, jobq_worker_event_type type, const char *job_id, int error, const char *fmt,
     ...) {
	/* A worker with its own on_event gets the event instead of a log record (one report,
	 * not two, for an owner that logs its events itself). */
	int logging = w->opts.on_event == NULL && jobq_log_enabled();
	if (w->opts.on_event == NULL && !logging)
		return;
	char message[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (logging) {
		jobq_log_level level =
		    type == JOBQ_WORKER_STORE_DOWN ? JOBQ_LOG_ERROR
		    : type == JOBQ_WORKER_STORE_UP || type == JOBQ_WORKER_RESULT_RECORDED
		        ? JOBQ_LOG_INFO
		        : JOBQ_LOG_WARN;
		jobq_log_emit(level, "worker", w->q->name, job_id, "%s%s%s%s", message,
		              error ? " (" : "", error ? jobq_error_name(error) : "",
		              error ? ")" : "");
	}
	if (w->opts.on_event != NULL) {
		jobq_worker_event e = {type, job_id, error, message};
		w->opts.on_event(&e, w->opts.event_payload);
	}
}

/* A step of the store failed with `error` (the thread's error message says why). */
static void
store_down(jobq_worker *w, int error, const char *what) {
	if (atomic_load(&w->store_down) == 0 && atomic_exchange(&w->store_down, 1) == 0)
		tell(w, JOBQ_WORKER_STORE_DOWN, NULL, error, "%s: %s", what, jobq_error_message());
}

/* A fetch or an outcome went through. */
static void
store_up(jobq_worker *w) {
	if (atomic_load(&w->store_down) != 0 && atomic_exchange(&w->store_down, 0) != 0)
		tell(w, JOBQ_WORKER_STORE_UP, NULL, 0, "the store takes writes again");
}

/* Refusals that say the outcome will never be taken (the job is not this worker's any more),
 * as opposed to a store that cannot take it now (out of memory or disk, unreachable). */
static int
refused_for_good(int rc) {
	return jobq__lock_gone(rc) || rc == JOBQ_EINVAL;
}

/* Waits `ms` of real time before an outcome is tried again; not cut short by closing (the
 * outcome is worth the wait), only by cancellation (close's deadline). */
static void
record_pause(jobq_worker *w, int64_t ms) {
	int64_t until = jobq_clock__monotonic_ms() + ms;
	pthread_mutex_lock(&w->mu);
	while (!atomic_load(&w->cancelled)) {
		int64_t left = until - jobq_clock__monotonic_ms();
		if (left <= 0)
			break;
		struct timespec ts;
		jobq_clock__deadline(&ts, left);
		pthread_cond_timedwait(&w->timer_cv, &w->mu, &ts);
	}
	pthread_mutex_unlock(&w->mu);
}

static int64_t
next_record_pause(int64_t ms) {
	return ms * 2 > RECORD_BACKOFF_MAX_MS ? RECORD_BACKOFF_MAX_MS : ms * 2;
}

/*
 * Records a failed attempt; while the store cannot take it, keeps it and tries again (the
 * job stays in the thread's slot, so the heartbeat keeps its lock), until it is taken, its
 * lock is lost, or close's deadline passes.
 */
static void
record_failure(jobq_worker *w, const jobq_job *job, const char *reason, unsigned int flags) {
	int rc = jobq_queue__fail_job(w->q, job, job->token, reason, flags, &w->policy);
	if (rc >= 0) {
		store_up(w);
		return;
	}
	if (refused_for_good(rc)) {
		tell(w, JOBQ_WORKER_LOCK_LOST, job->id, rc,
		     "job %s: failed attempt not recorded: %s", job->id, jobq_error_message());
		return;
	}
	store_down(w, rc, "recording a failed attempt");
	tell(w, JOBQ_WORKER_RESULT_REFUSED, job->id, rc,
	     "job %s: the store refused its failed attempt (kept, trying again): %s", job->id,
	     jobq_error_message());
	atomic_fetch_add(&w->recording, 1);
	for (int64_t pause = ERROR_BACKOFF_MIN_MS;; pause = next_record_pause(pause)) {
		record_pause(w, pause);
		if (atomic_load(&w->cancelled)) {
			tell(w, JOBQ_WORKER_RESULT_DROPPED, job->id, rc,
			     "job %s: gave up its failed attempt at close: %s", job->id,
			     "the store did not take it before the deadline");
			break;
		}
		rc = jobq_queue__fail_job(w->q, job, job->token, reason, flags, &w->policy);
		if (rc >= 0) {
			store_up(w);
			tell(w, JOBQ_WORKER_RESULT_RECORDED, job->id, 0,
			     "job %s: its failed attempt was recorded", job->id);
			break;
		}
		if (refused_for_good(rc)) {
			tell(w, JOBQ_WORKER_RESULT_DROPPED, job->id, rc,
			     "job %s: gave up its failed attempt: %s", job->id,
			     jobq_error_message());
			break;
		}
	}
	atomic_fetch_sub(&w->recording, 1);
}

/* --- running one job ---------------------------------------------------------------------- */

/* The per-thread state of a handler thread: the batch it holds and what it completed. */
typedef struct batch {
	jobq_job *jobs[BATCH_MAX]; /* the batch fetched last, freed at the next fetch */
	size_t n;
	jobq_completion done[BATCH_MAX];
	char *results[BATCH_MAX];         /* owned result texts of done[] */
	unsigned char refused[BATCH_MAX]; /* done[i] was refused once (and told) */
	size_t ndone;
	size_t want; /* how many to fetch next */
	char tokens[BATCH_MAX][TOKEN_SIZE];
	const char *token_ptrs[BATCH_MAX];
	struct jobq_job_runtime rt; /* lent to each job this thread runs */
} batch;

/* Gives back, last first, the jobs of the batch from `from` on, which did not run. */
static void
release_rest(jobq_worker *w, batch *b, size_t from) {
	jobq_queue *q = w->q;
	for (size_t k = b->n; k-- > from;)
		q->store->backend->release(q->bq, b->jobs[k]->id, b->jobs[k]->token,
		                           jobq_queue__now(q));
}

/*
 * Runs one job and settles a failure at once; a success is queued in b->done for the next
 * backend step. A job whose lock was lost is not ours to write.
 */
static void
run_job(jobq_worker *w, slot *s, batch *b, size_t index) {
	jobq_queue *q = w->q;
	jobq_job *job = b->jobs[index];
	struct jobq_job_runtime *rt = &b->rt;
	jobq_job__attach_to(job, rt, q);
	rt->cancelled = &w->cancelled;
	pthread_mutex_lock(&s->mu);
	s->running = index;
	if (s->lost[index])
		atomic_store(&rt->lock_lost, 1);
	pthread_mutex_unlock(&s->mu);
	atomic_fetch_add(&w->running, 1);

	handler fallback;
	const handler *h = find_handler(w, job->name, &fallback);
	int rc;
	if (h == NULL)
		rc = jobq_job_set_error(job, JOBQ_FAIL_UNRECOVERABLE,
		                        "no handler for job name '%s' and no default handler",
		                        job->name);
	else
		rc = h->fn(job, h->payload);

	pthread_mutex_lock(&s->mu);
	s->running = NOT_RUNNING;
	pthread_mutex_unlock(&s->mu);
	if (atomic_load(&rt->lock_lost)) {
		/* someone else owns it now; its outcome is not ours to write */
		jobq_log_emit(JOBQ_LOG_WARN, "worker", q->name, job->id,
		              "job %s: its handler returned after the job's lock was lost; "
		              "its outcome was dropped (the job may run twice)",
		              job->id);
	} else if (rc >= 0) {
		jobq_completion *c = &b->done[b->ndone];
		b->results[b->ndone] = rt->result;
		rt->result = NULL;
		c->id = job->id;
		c->token = job->token;
		c->result_json = b->results[b->ndone] ? b->results[b->ndone] : "null";
		c->keep =
		    jobq__resolve_keep(&job->opts.remove_on_complete, &w->opts.remove_on_complete);
		c->rc = 0;
		c->dedup_id = job->opts.dedup_id;
		c->metrics_max_points = w->opts.metrics_max_data_points;
		b->refused[b->ndone] = 0;
		b->ndone++;
	} else if (rt->rate_limit_ms > 0) {
		/* jobq_job_rate_limit: back to waiting without using an attempt; wait it out */
		jobq__rate_limited(w->q, job, rt->rate_limit_ms, &w->limit_until);
	} else {
		atomic_fetch_add(&w->failed, 1);
		if (atomic_load(&w->cancelled)) {
			/* Closing past the deadline: give the job back without using an attempt. */
			q->store->backend->release(q->bq, job->id, job->token, jobq_queue__now(q));
		} else {
			char fallback_reason[160];
			const char *reason = rt->error;
			if (reason == NULL) {
				snprintf(fallback_reason, sizeof(fallback_reason),
				         "handler returned %d (%s)", rc, jobq_strerror(rc));
				reason = fallback_reason;
			}
			record_failure(w, job, reason, rt->error_flags);
		}
	}
	jobq_job__detach(job);
	atomic_fetch_sub(&w->running, 1);
	if (atomic_load(&w->stopping)) {
		/* Only close waits for this news. */
		pthread_mutex_lock(&w->mu);
		pthread_cond_broadcast(&w->done_cv);
		pthread_mutex_unlock(&w->mu);
	}
}

/*
 * After a step that wrote b->done: counts and frees the completions recorded, tells those
 * refused for good, and keeps at the front of b->done those the store could not take now.
 * Returns how many it kept.
 */
static size_t
settle_completions(jobq_worker *w, batch *b) {
	char why[256];
	why[0] = '\0';
	for (size_t i = 0; i < b->ndone && why[0] == '\0'; i++)
		if (b->done[i].rc < 0) /* the message before a callback can change it */
			snprintf(why, sizeof(why), "%s", jobq_error_message());
	size_t kept = 0;
	for (size_t i = 0; i < b->ndone; i++) {
		jobq_completion *c = &b->done[i];
		if (c->rc >= 0) {
			atomic_fetch_add(&w->completed, 1);
			if (b->refused[i])
				tell(w, JOBQ_WORKER_RESULT_RECORDED, c->id, 0,
				     "job %s: its completion was recorded", c->id);
		} else if (refused_for_good(c->rc)) {
			if (b->refused[i])
				tell(w, JOBQ_WORKER_RESULT_DROPPED, c->id, c->rc,
				     "job %s: gave up its completion: %s", c->id, why);
			else
				tell(w, JOBQ_WORKER_LOCK_LOST, c->id, c->rc,
				     "job %s: completion not recorded: %s", c->id, why);
		} else {
			if (!b->refused[i])
				tell(w, JOBQ_WORKER_RESULT_REFUSED, c->id, c->rc,
				     "job %s: the store refused its completion (kept, trying "
				     "again): %s",
				     c->id, why);
			b->done[kept] = *c;
			b->results[kept] = b->results[i];
			b->refused[kept] = 1;
			kept++;
			continue;
		}
		jobq__free(b->results[i]);
	}
	b->ndone = kept;
	return kept;
}

/*
 * Tries again, with a growing pause, to record the completions in b->done that the store
 * refused, while the heartbeat keeps their jobs' locks (the batch stays in the slot), until
 * each is taken or refused for good; gives up the rest when close's deadline passes.
 */
static void
record_completions(jobq_worker *w, batch *b) {
	atomic_fetch_add(&w->recording, 1);
	for (int64_t pause = ERROR_BACKOFF_MIN_MS; b->ndone > 0; pause = next_record_pause(pause)) {
		record_pause(w, pause);
		if (atomic_load(&w->cancelled)) {
			for (size_t i = 0; i < b->ndone; i++) {
				tell(w, JOBQ_WORKER_RESULT_DROPPED, b->done[i].id, b->done[i].rc,
				     "job %s: gave up its completion at close: the store did not "
				     "take it before the deadline",
				     b->done[i].id);
				jobq__free(b->results[i]);
			}
			b->ndone = 0;
			break;
		}
		jobq_job *none[1];
		int rc = jobq_queue__complete_fetch(none, NULL, w->q, b->done, b->ndone,
		                                    b->token_ptrs, 0, w->opts.lock_ms);
		if (rc >= 0)
			store_up(w);
		settle_completions(w, b);
	}
	atomic_fetch_sub(&w->recording, 1);
}

/*
 * Writes the completions queued in b->done and fetches up to `max` jobs in one backend step
 * (max 0: only writes), then frees the previous batch. Completions the store cannot take now
 * are tried again first (record_completions), with no new work taken meanwhile. Returns the
 * number fetched or < 0.
 */
static int
complete_and_fetch(jobq_worker *w, slot *s, batch *b, size_t max, jobq_fetch_info *info) {
	jobq_queue *q = w->q;
	jobq_job *fetched[BATCH_MAX];
	for (size_t i = 0; i < max; i++) {
		jobq_store__new_token(q->store, b->tokens[i], TOKEN_SIZE);
		b->token_ptrs[i] = b->tokens[i];
	}
	size_t ndone = b->ndone;
	int rc = jobq_queue__complete_fetch(fetched, info, q, b->done, b->ndone, b->token_ptrs, max,
	                                    w->opts.lock_ms);
	if (rc < 0)
		store_down(w, rc, ndone > 0 ? "recording completions" : "fetching");
	if (settle_completions(w, b) > 0) {
		/* Only a backend without complete_fetch fetches past a refused completion. */
		for (int k = rc; k-- > 0;) {
			q->store->backend->release(q->bq, fetched[k]->id, fetched[k]->token,
			                           jobq_queue__now(q));
			jobq_job_free(fetched[k]);
		}
		rc = rc > 0 ? 0 : rc;
		record_completions(w, b);
	} else if (rc >= 0 && (ndone > 0 || max > 0)) {
		/* (a step with nothing to write or take may not reach the store at all) */
		store_up(w);
	}
	/* The heartbeat lets go of the old batch and takes the new one. */
	size_t n = rc > 0 ? (size_t)rc : 0;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < n; i++) {
		s->ids[i] = fetched[i]->id;
		s->tokens[i] = fetched[i]->token;
		s->lost[i] = 0;
	}
	s->n = n;
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < b->n; i++)
		jobq_job_free(b->jobs[i]);
	memcpy(b->jobs, fetched, n * sizeof(*fetched));
	b->n = n;
	return rc;
}

size_t
jobq_worker__next_batch_size(size_t n, int64_t took_us) {
	if (took_us > BATCH_BUDGET_MS * 1000)
		return 1;
	if (took_us >= 1000)
		return n;
	size_t next = took_us > 0 ? (size_t)((int64_t)n * 1000 / took_us) : n * BATCH_GROW_MAX;
	if (next < 2 * n)
		next = 2 * n;
	if (next > n * BATCH_GROW_MAX)
		next = n * BATCH_GROW_MAX;
	return next > BATCH_MAX ? BATCH_MAX : next;
}

/* Runs the batch in hand; adapts the size of the next one. */
static void
run_batch(jobq_worker *w, slot *s, batch *b) {
	int batching = jobq_queue__can_batch(w->q);
	int64_t start = batching ? jobq_clock__monotonic_us() : 0;
	for (size_t i = 0; i < b->n; i++) {
		jobq_job *job = b->jobs[i];
		if (atomic_load(&w->stopping)) {
			release_rest(w, b, i);
			return;
		}
		if (job->deferred_failure != NULL) {
			/* Past its stall limit: fail it without running it. */
			record_failure(w, job, job->deferred_failure, JOBQ_FAIL_UNRECOVERABLE);
			continue;
		}
		run_job(w, s, b, i);
	}
	if (batching && b->n == b->want)
		b->want = jobq_worker__next_batch_size(b->n, jobq_clock__monotonic_us() - start);
}

/* --- waiting for work --------------------------------------------------------------------- */

static void
wait_real_ms(jobq_worker *w, pthread_cond_t *cv, int64_t ms) {
	struct timespec ts;
	jobq_clock__deadline(&ts, ms);
	pthread_mutex_lock(&w->mu);
	if (!atomic_load(&w->stopping))
		pthread_cond_timedwait(cv, &w->mu, &ts);
	pthread_mutex_unlock(&w->mu);
}

/*
 * Wakes one idle handler thread to try a fetch. Waking one at a time, and a thread that got
 * work waking the next, keeps a hundred threads from becoming runnable at once on two cores
 * (the one holding the job would wait behind them). A thread that got work wakes one only when
 * no other thread is left in the backend's wait: the one there is woken by the store itself
 * if more work comes, so an idle worker's pickup wakes no other thread of ours.
 */
static void
wake_one_idle(jobq_worker *w) {
	if (atomic_load(&w->idle_waiters) == 0)
		return;
	pthread_mutex_lock(&w->mu);
	w->work_gen++;
	pthread_cond_signal(&w->idle_cv);
	pthread_mutex_unlock(&w->mu);
}

/*
 * Up to max_waiters threads block in the backend; the others sleep until a thread that got
 * work passes the news on. A waiter, woken, fetches first and wakes nobody: the job is picked
 * up by the thread the store woke, with no other thread competing for the two cores or the
 * store, and a wake-up that finds nothing (Redis leaves a marker after every fetch) costs one
 * fetch, not one per idle thread. The second waiter is the next job's: while the first runs
 * its job, nobody has to be woken to take over the wait; a thread that finds itself alone in
 * the wait wakes an idle one to join it, while no job is pending. Returns 1 when this thread
 * left the backend's wait with another thread still in it (whatever it fetches, it need wake
 * nobody: the store wakes that one if more work comes), else 0.
 */
static int
wait_for_work(jobq_worker *w, int64_t next_due_ms) {
	jobq_queue *q = w->q;
	jobq_clock *clock = q->store->clock;
	pthread_mutex_lock(&w->mu);
	if (atomic_load(&w->waiters) >= w->max_waiters) {
		uint64_t gen = w->work_gen;
		atomic_fetch_add(&w->idle_waiters, 1);
		while (w->work_gen == gen && !atomic_load(&w->stopping))
			pthread_cond_wait(&w->idle_cv, &w->mu);
		atomic_fetch_sub(&w->idle_waiters, 1);
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	if (atomic_fetch_add(&w->waiters, 1) + 1 < w->max_waiters &&
	    atomic_load(&w->idle_waiters) > 0) {
		/* Nothing is pending now: a good time to have an idle thread join the wait. */
		w->work_gen++;
		pthread_cond_signal(&w->idle_cv);
	}
	pthread_mutex_unlock(&w->mu);

	int64_t timeout = IDLE_WAIT_MS;
	if (jobq_clock__is_manual(clock)) {
		timeout = -1; /* the clock's advance wakes the backend */
	} else if (next_due_ms > 0) {
		int64_t until_due = next_due_ms - jobq_clock_now(clock);
		if (until_due < timeout)
			timeout = until_due < 0 ? 0 : until_due;
	}
	if (jobq__backend_can_wait(q->store->backend))
		jobq__backend_wait_for_work(q->store->backend, q->bq, clock, timeout);
	else
		wait_real_ms(w, &w->timer_cv, timeout < 0 || timeout > 50 ? 50 : timeout);

	pthread_mutex_lock(&w->mu);
	unsigned int before = atomic_fetch_sub(&w->waiters, 1);
	pthread_mutex_unlock(&w->mu);
	return before > 1;
}

static void *
handler_thread(void *arg) {
	thread_arg *ta = arg;
	jobq_worker *w = ta->w;
	slot *s = &w->slots[ta->index];
	jobq__free(ta);
	/* A thread that gave up here would leave the worker short of a thread for good. */
	batch *b;
	while ((b = jobq__calloc(1, sizeof(*b))) == NULL && !atomic_load(&w->stopping))
		wait_real_ms(w, &w->timer_cv, ERROR_BACKOFF_MIN_MS);
	jobq_job__cache_enable(1);
	if (b != NULL) {
		b->want = 1;
		pthread_mutex_lock(&s->mu);
		s->running_lost = &b->rt.lock_lost;
		pthread_mutex_unlock(&s->mu);
	}
	int64_t error_backoff = ERROR_BACKOFF_MIN_MS;
	int covered = 0; /* another thread waits in the backend for the next news */
	while (b != NULL && !atomic_load(&w->stopping)) {
		jobq_fetch_info info = {.keep_on_fail = &w->opts.remove_on_fail,
		                        .metrics_max_points = w->opts.metrics_max_data_points,
		                        .processed_by = w->ident.name,
		                        .limiter_max = w->opts.limiter.max,
		                        .limiter_duration_ms = w->opts.limiter.duration_ms};
		int limited = jobq__rate_limit_left(w->q, &w->limit_until) > 0;
		int64_t fetched_at = jobq_queue__now(w->q);
		int rc = complete_and_fetch(w, s, b, limited ? 0 : b->want, &info);
		if (rc == 0 && (limited || info.rate_limit_ms > 0)) {
			/* the rate limiter holds fetches back: wait for the window, not for work */
			b->want = 1;
			jobq__rate_limit_wait(w->q, fetched_at + info.rate_limit_ms,
			                      &w->limit_until, &w->mu, &w->timer_cv, &w->stopping);
			continue;
		}
		if (rc == 0) {
			error_backoff = ERROR_BACKOFF_MIN_MS;
			b->want = 1;
			covered = wait_for_work(w, info.next_due_ms);
			continue;
		}
		int was_covered = covered;
		covered = 0;
		if (rc < 0) {
			/* The store is unwell (e.g. Redis restarting): back off and try again, on a
			 * condvar of broadcasts only, not to swallow a signal meant for an idle
			 * thread. */
			wait_real_ms(w, &w->timer_cv, error_backoff);
			error_backoff = error_backoff * 2 > ERROR_BACKOFF_MAX_MS
			                    ? ERROR_BACKOFF_MAX_MS
			                    : error_backoff * 2;
		} else {
			error_backoff = ERROR_BACKOFF_MIN_MS;
			/* there may be more work: pass the news on if nobody waits for it */
			if (!was_covered && atomic_load(&w->waiters) == 0)
				wake_one_idle(w);
			run_batch(w, s, b);
		}
	}
	if (b != NULL) {
		/* Write what completed, let go of the last batch. */
		complete_and_fetch(w, s, b, 0, NULL);
		pthread_mutex_lock(&s->mu);
		s->running_lost = NULL;
		s->n = 0;
		pthread_mutex_unlock(&s->mu);
		/* completions that could not be written: their jobs go back through the reaper */
		for (size_t i = 0; i < b->ndone; i++)
			jobq__free(b->results[i]);
		for (size_t i = 0; i < b->n; i++)
			jobq_job_free(b->jobs[i]);
		jobq__free(b);
	}
	jobq_job__cache_enable(0);
	pthread_mutex_lock(&w->mu);
	w->alive--;
	pthread_cond_broadcast(&w->done_cv);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* --- heartbeat and reaper ----------------------------------------------------------------- */

static void
renew_locks(jobq_worker *w) {
	jobq_queue *q = w->q;
	int failed = 0;
	for (unsigned int i = 0; i < w->opts.concurrency; i++) {
		slot *s = &w->slots[i];
		char *lost[BATCH_MAX];
		size_t nlost = 0;
		/* Holding the slot keeps its jobs alive; the thread waits at most for this. */
		pthread_mutex_lock(&s->mu);
		for (size_t k = 0; k < s->n; k++) {
			int rc = q->store->backend->extend_lock(
			    q->bq, s->ids[k], s->tokens[k], w->opts.lock_ms, jobq_queue__now(q));
			if (jobq__lock_gone(rc)) {
				if (!s->lost[k])
					lost[nlost++] = jobq__strdup(s->ids[k]);
				s->lost[k] = 1;
				if (s->running == k && s->running_lost != NULL)
					atomic_store(s->running_lost, 1);
			} else if (rc < 0 && failed == 0) {
				failed = rc;
			}
		}
		pthread_mutex_unlock(&s->mu);
		/* told outside the slot's lock (a copy of each id: the jobs may go now) */
		for (size_t k = 0; k < nlost; k++) {
			if (lost[k] != NULL)
				tell(w, JOBQ_WORKER_LOCK_LOST, lost[k], JOBQ_ELOCKLOST,
				     "job %s: its lock was lost (expired or taken back); its "
				     "outcome will not be recorded",
				     lost[k]);
			jobq__free(lost[k]);
		}
	}
	if (failed < 0)
		store_down(w, failed, "renewing locks");
}

static void *
timer_thread(void *arg) {
	jobq_worker *w = arg;
	jobq_queue *q = w->q;
	jobq_clock *clock = q->store->clock;
	int reaping = w->opts.stalled_interval_ms > 0;
	int64_t now = jobq_clock_now(clock);
	int64_t next_renew = now + w->opts.lock_renew_ms;
	int64_t next_reap = now; /* check once at start, as BullMQ does */
	/* Runs until close has joined the handler threads, so running jobs keep their locks. */
	while (!atomic_load(&w->timer_stop)) {
		now = jobq_clock_now(clock);
		if (reaping && now >= next_reap) {
			jobq_strings *recovered = NULL;
			int rc = q->store->backend->reap_stalled(
			    jobq_log_enabled() ? &recovered : NULL, q->bq, w->opts.max_stalled,
			    w->opts.stalled_interval_ms, now);
			if (rc < 0)
				store_down(w, rc, "checking for stalled jobs");
			jobq__log_stalled(q, recovered);
			next_reap = now + w->opts.stalled_interval_ms;
		}
		if (now >= next_renew) {
			renew_locks(w);
			next_renew = now + w->opts.lock_renew_ms;
		}
		int64_t next = reaping && next_reap < next_renew ? next_reap : next_renew;
		pthread_mutex_lock(&w->mu);
		if (!atomic_load(&w->timer_stop)) {
			if (jobq_clock__is_manual(clock)) {
				uint64_t gen = w->clock_gen;
				while (w->clock_gen == gen && !atomic_load(&w->timer_stop))
					pthread_cond_wait(&w->timer_cv, &w->mu);
			} else {
				struct timespec ts;
				jobq_clock__deadline(&ts, next - jobq_clock_now(clock));
				pthread_cond_timedwait(&w->timer_cv, &w->mu, &ts);
			}
		}
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

/* --- lifecycle ---------------------------------------------------------------------------- */

int
jobq_worker_start(jobq_worker *w) {
	if (w == NULL)
		return jobq_error_set(JOBQ_EINVAL, "worker start: worker is NULL");
	if (w->started)
		return jobq_error_set(JOBQ_ESTATE, "worker start: already started");
	if (atomic_load(&w->q->closed))
		return jobq_error_set(JOBQ_ECLOSED, "worker start: queue '%s' is closed",
		                      w->q->name);
	int rc = jobq_clock__listen(w->q->store->clock, clock_advanced, w);
	if (rc < 0)
		return rc;
	w->started = 1;
	jobq_worker__ident_attach(&w->ident, w->q);
	int err = pthread_create(&w->timer, NULL, timer_thread, w);
	if (err != 0) {
		w->started = 0;
		jobq_worker__ident_detach(&w->ident, w->q);
		jobq_clock__unlisten(w->q->store->clock, clock_advanced, w);
		return jobq_error_set(JOBQ_ERROR, "worker start: cannot create a thread (error %d)",
		                      err);
	}
	for (unsigned int i = 0; i < w->opts.concurrency; i++) {
		thread_arg *ta = jobq__malloc(sizeof(*ta));
		if (ta != NULL) {
			*ta = (thread_arg){w, i};
			pthread_mutex_lock(&w->mu);
			w->alive++;
			pthread_mutex_unlock(&w->mu);
			err = pthread_create(&w->threads[i], NULL, handler_thread, ta);
		}
		if (ta == NULL || err != 0) {
			if (ta != NULL) {
				jobq__free(ta);
				pthread_mutex_lock(&w->mu);
				w->alive--;
				pthread_mutex_unlock(&w->mu);
			}
			w->opts.concurrency = i; /* close joins the threads that did start */
			jobq_worker_close(w, 0);
			return ta == NULL
			           ? JOBQ_ENOMEM
			           : jobq_error_set(
			                 JOBQ_ERROR,
			                 "worker start: cannot create a thread (error %d)", err);
		}
	}
	return 0;
}

static void
wake_all(jobq_worker *w) {
	jobq__backend_wake(w->q->store->backend);
	pthread_mutex_lock(&w->mu);
	pthread_cond_broadcast(&w->idle_cv);
	pthread_cond_broadcast(&w->timer_cv);
	pthread_mutex_unlock(&w->mu);
}

void
jobq_worker_stop(jobq_worker *w) {
	if (w == NULL)
		return;
	atomic_store(&w->stopping, 1);
	wake_all(w);
}

int
jobq_worker_close(jobq_worker *w, int64_t deadline_ms) {
	if (w == NULL)
		return jobq_error_set(JOBQ_EINVAL, "worker close: worker is NULL");
	if (!w->started || w->closed)
		return 0;
	w->closed = 1;
	atomic_store(&w->stopping, 1);
	int64_t deadline = deadline_ms < 0 ? INT64_MAX : jobq_clock__monotonic_ms() + deadline_ms;
	/* Wake the waiter again and again: a wake-up can fall just before it starts waiting. */
	for (;;) {
		wake_all(w);
		pthread_mutex_lock(&w->mu);
		unsigned int alive = w->alive;
		if (alive > 0 && (atomic_load(&w->running) > 0 || atomic_load(&w->recording) > 0) &&
		    jobq_clock__monotonic_ms() >= deadline)
			atomic_store(&w->cancelled, 1);
		if (alive > 0) {
			struct timespec ts;
			jobq_clock__deadline(&ts, 20);
			pthread_cond_timedwait(&w->done_cv, &w->mu, &ts);
		}
		pthread_mutex_unlock(&w->mu);
		if (alive == 0)
			break;
	}
	for (unsigned int i = 0; i < w->opts.concurrency; i++)
		pthread_join(w->threads[i], NULL);
	atomic_store(&w->timer_stop, 1);
	wake_all(w);
	pthread_join(w->timer, NULL);
	jobq_worker__ident_detach(&w->ident, w->q);
	jobq_clock__unlisten(w->q->store->clock, clock_advanced, w);
	return 0;
}

void
jobq_worker_free(jobq_worker *w) {
	if (w == NULL)
		return;
	jobq_worker_close(w, -1);
	for (size_t i = 0; i < w->nhandlers; i++)
		jobq__free(w->handlers[i].name);
	jobq__free(w->handlers);
	for (unsigned int i = 0; i < w->nslots; i++)
		pthread_mutex_destroy(&w->slots[i].mu);
	jobq__free(w->slots);
	jobq__free(w->threads);
	jobq_worker__ident_free(&w->ident);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->idle_cv);
	pthread_cond_destroy(&w->timer_cv);
	pthread_cond_destroy(&w->done_cv);
	jobq__free(w);
}

int
jobq_worker_set_name(jobq_worker *w, const char *name) {
	if (w == NULL)
		return jobq_error_set(JOBQ_EINVAL, "worker name: worker is NULL");
	if (w->started)
		return jobq_error_set(JOBQ_ESTATE, "worker name: the worker is already started");
	return jobq_worker__ident_rename(&w->ident, name);
}

const char *
jobq_worker_name(const jobq_worker *w) {
	return w->ident.name;
}

void
jobq_worker_get_stats(jobq_worker_stats *out, jobq_worker *w) {
	out->completed = atomic_load(&w->completed);
	out->failed = atomic_load(&w->failed);
	out->running = atomic_load(&w->running);
}
