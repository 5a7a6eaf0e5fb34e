/*
 * Asynchronous adds. jobq_queue_add_async validates a job, copies it into the queue's ring of
 * pending adds and returns; one sender thread per queue (started at the first asynchronous
 * add) takes everything pending, up to SEND_MAX jobs, hands it to the backend's add as one
 * step (one script call on Redis, one transaction and one sync on LMDB), and runs the
 * callbacks. While a step is on its way new adds gather behind it, so the batches grow with
 * the rate of adds and the store sees one call per batch instead of one per job: this is
 * what makes one producer thread with many adds in flight fast.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "core.h"

enum { SEND_MAX = 1000, RING = JOBQ_ADD_ASYNC_MAX_PENDING };

/*
 * With a backend that does not pipeline, a burst gathers before it is sent: when the sender
 * finds adds pending it waits while more keep coming, each within LINGER_GAP_US of the one
 * before, for LINGER_MAX_US at most, so that a producer's burst of adds goes in one step
 * instead of its first add alone and the rest in a second (which halves the adds per round
 * trip, and on LMDB the syncs). A lone add waits one gap.
 */
enum { LINGER_GAP_US = 20, LINGER_MAX_US = 300 };

/*
 * With a backend that pipelines adds (add_send / add_recv), up to DEPTH steps are on their
 * way at once, in order: the store works on one step while the producer fills the next,
 * instead of one round trip per batch. A step does not linger: the next steps carry what
 * comes meanwhile (a wait of even 20 us per step cost about 30 % with 10 adds in flight).
 * While steps are out, another goes only once it carries a third of the adds out (at least
 * STEP_MIN, at most STEP_MAX); otherwise the sender takes the oldest reply first. Tiny steps
 * between large ones made the server answer in bursts and sit idle between them (Redis, A/B
 * medians of 10 runs: 63k -> 75k adds/s with 10 in flight, 107k -> 135k with 100). Below
 * that many pending the sender also yields once before a step, so that a producer adding
 * right now on the same CPU adds to it.
 *
 * A step carries at most half of the adds pending and out (at least STEP_MIN): a producer
 * that refills its window all at once would otherwise send it as one step, wait for its
 * reply with the server idle, and send it again - one step in flight for good. Two halves
 * keep one on the server while the client takes in the other's reply (Redis, warm server,
 * medians of 7: 134k -> 182k adds/s with 100 in flight, 93k -> 99k with 10, 114k -> 189k
 * with 1000).
 */
enum { DEPTH = 4, STEP_MIN = 4, STEP_MAX = 32 };

typedef struct pending_add {
	jobq_job_options opts; /* validated; its strings owned */
	const char *name;      /* in this allocation */
	const void *data;      /* in this allocation */
	size_t len;
	jobq_add_done_fn done;
	void *ctx;
} pending_add;

struct jobq_add_sender {
	pthread_mutex_t mu;
	pthread_cond_t work; /* the sender waits for adds (or stop) */
	pthread_cond_t room; /* producers wait for a free slot */
	pthread_cond_t sent; /* flush waits for outcomes */
	pending_add *ring[RING];
	size_t head, count;
	atomic_size_t arrived; /* adds ever accepted, read without the lock while lingering */
	uint64_t queued;       /* adds accepted */
	uint64_t finished;     /* adds whose outcome has run */
	int error;             /* the first error since the last flush */
	int stop;
	pthread_t thread;
	jobq_queue *q;
	/* pipelined steps sent and not yet received, oldest first: step i's adds are
	 * batch[slot * SEND_MAX ...], slot = (first_step + i) % DEPTH */
	size_t step_n[DEPTH];
	int step_rc[DEPTH]; /* < 0: the step could not be sent; its adds fail in their turn */
	size_t first_step, nsteps;
	size_t out; /* adds in the steps sent and not yet received */
	/* the sender's working arrays: batch DEPTH * SEND_MAX, the others SEND_MAX */
	pending_add **batch;
	jobq_add_request *reqs;
	jobq_job_id *ids;
	int *outcomes;
};

static void
pending_free(pending_add *p) {
	jobq_job_options__clear(&p->opts);
	jobq__free(p);
}

/* Runs the outcomes of the `n` adds of `batch` from one backend step, and frees them. */
static void
report_step(pending_add **batch, size_t n, int rc, const jobq_job_id *ids, const int *outcomes) {
	for (size_t i = 0; i < n; i++) {
		const pending_add *p = batch[i];
		if (p->done != NULL)
			p->done(p->ctx, rc, rc < 0 ? NULL : ids[i].str, rc < 0 ? 0 : outcomes[i]);
		pending_free(batch[i]);
	}
}

/* The backend requests of the `n` adds of `batch`, in s->reqs. */
static void
fill_reqs(struct jobq_add_sender *s, pending_add *const *batch, size_t n) {
	for (size_t i = 0; i < n; i++)
		s->reqs[i] = (jobq_add_request){batch[i]->name, batch[i]->data, batch[i]->len,
		                                &batch[i]->opts};
}

/* Adds the `n` adds of `batch` (their requests in s->reqs) one step each, after a step of
 * them all met bad input only the store could see, so that only that job fails. Returns the
 * first error. */
static int
add_one_by_one(jobq_queue *q, struct jobq_add_sender *s, pending_add **batch, size_t n,
               int64_t now) {
	const jobq_backend *be = q->store->backend;
	int first = 0;
	for (size_t i = 0; i < n; i++) {
		int one = be->add(&s->ids[i], &s->outcomes[i], q->bq, &s->reqs[i], 1, now);
		report_step(&batch[i], 1, one, &s->ids[i], &s->outcomes[i]);
		if (one < 0 && first == 0)
			first = one;
	}
	return first;
}

/* Sends `n` pending adds in one backend step; returns the first error or 0. */
static int
send_batch(jobq_queue *q, struct jobq_add_sender *s, size_t n) {
	const jobq_backend *be = q->store->backend;
	fill_reqs(s, s->batch, n);
	int64_t now = jobq_queue__now(q);
	int rc = be->add(s->ids, s->outcomes, q->bq, s->reqs, n, now);
	if (rc != JOBQ_EINVAL || n == 1) {
		report_step(s->batch, n, rc, s->ids, s->outcomes);
		return rc < 0 ? rc : 0;
	}
	return add_one_by_one(q, s, s->batch, n, now);
}

/* Waits (yielding the CPU) while adds keep arriving, until `enough` more have come; see
 * LINGER_GAP_US. */
static void
linger(struct jobq_add_sender *s, size_t enough) {
	int64_t start = jobq_clock__monotonic_us(), last = start;
	size_t first = atomic_load(&s->arrived), seen = first;
	for (;;) {
		sched_yield();
		int64_t now = jobq_clock__monotonic_us();
		size_t n = atomic_load(&s->arrived);
		if (n != seen) {
			seen = n;
			last = now;
		}
		if (n - first >= enough || now - last >= LINGER_GAP_US ||
		    now - start >= LINGER_MAX_US)
			return;
	}
}

/* Takes up to `max` pending adds into `into` (under the lock); returns how many. */
static size_t
take(struct jobq_add_sender *s, pending_add **into, size_t max) {
	size_t n = s->count < max ? s->count : max;
	for (size_t i = 0; i < n; i++)
		into[i] = s->ring[(s->head + i) % RING];
	s->head = (s->head + n) % RING;
	s->count -= n;
	pthread_cond_broadcast(&s->room);
	return n;
}

/* Records that `n` adds have their outcome (under the lock). */
static void
finish(struct jobq_add_sender *s, size_t n, int rc) {
	if (rc < 0 && s->error == 0)
		s->error = rc;
	s->finished += n;
	pthread_cond_broadcast(&s->sent);
}

/* How many pending adds the next step takes at most: half of those pending and out; see
 * STEP_MIN. */
static size_t
step_cap(const struct jobq_add_sender *s) {
	size_t half = (s->count + s->out + 1) / 2;
	return half < STEP_MIN ? STEP_MIN : half > SEND_MAX ? SEND_MAX : half;
}

/* How many pending adds make a step worth sending while others are out; see STEP_MIN. */
static size_t
step_threshold(const struct jobq_add_sender *s) {
	size_t t = s->out / 3;
	return t < STEP_MIN ? STEP_MIN : t > STEP_MAX ? STEP_MAX : t;
}

/* The sender of a backend that pipelines adds: sends steps while fewer than DEPTH are out and
 * enough adds are pending, else receives the oldest. */
static void
pipelined_loop(jobq_queue *q, struct jobq_add_sender *s) {
	const jobq_backend *be = q->store->backend;
	int yielded = 0;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->count == 0 && s->nsteps == 0 && !s->stop)
			pthread_cond_wait(&s->work, &s->mu);
		if (s->count == 0 && s->nsteps == 0)
			break; /* stopped, and nothing left to send or receive */
		size_t enough = step_threshold(s);
		if (s->nsteps < DEPTH && !s->stop && !yielded && s->count < enough) {
			pthread_mutex_unlock(&s->mu);
			sched_yield();
			pthread_mutex_lock(&s->mu);
			yielded = 1;
			continue;
		}
		yielded = 0;
		if (s->count > 0 && s->nsteps < DEPTH &&
		    (s->nsteps == 0 || s->count >= enough || s->stop)) {
			size_t slot = (s->first_step + s->nsteps) % DEPTH;
			pending_add **batch = s->batch + slot * SEND_MAX;
			size_t n = take(s, batch, step_cap(s));
			pthread_mutex_unlock(&s->mu);
			fill_reqs(s, batch, n);
			int rc = be->add_send(q->bq, s->reqs, n, jobq_queue__now(q));
			pthread_mutex_lock(&s->mu);
			/* a step that could not be sent stays in line, so outcomes keep their order
			 */
			s->step_n[slot] = n;
			s->step_rc[slot] = rc < 0 ? rc : 0;
			s->nsteps++;
			s->out += n;
			continue;
		}
		size_t slot = s->first_step, n = s->step_n[slot];
		int rc = s->step_rc[slot];
		pending_add **batch = s->batch + slot * SEND_MAX;
		pthread_mutex_unlock(&s->mu);
		if (rc == JOBQ_EINVAL && n > 1) {
			/* refused before it was sent, for one job's sake: in its turn, one by one
			 */
			fill_reqs(s, batch, n);
			rc = add_one_by_one(q, s, batch, n, jobq_queue__now(q));
		} else {
			if (rc == 0)
				rc = be->add_recv(s->ids, s->outcomes, q->bq, n);
			report_step(batch, n, rc, s->ids, s->outcomes);
		}
		pthread_mutex_lock(&s->mu);
		s->first_step = (s->first_step + 1) % DEPTH;
		s->nsteps--;
		s->out -= n;
		finish(s, n, rc);
	}
	pthread_mutex_unlock(&s->mu);
}

static void *
sender_main(void *arg) {
	struct jobq_add_sender *s = arg;
	jobq_queue *q = s->q;
	const jobq_backend *be = q->store->backend;
	if (be->version >= 3 && be->add_send != NULL && be->add_recv != NULL) {
		pipelined_loop(q, s);
		return NULL;
	}
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->count == 0 && !s->stop)
			pthread_cond_wait(&s->work, &s->mu);
		if (s->count == 0)
			break; /* stopped, and nothing left to send */
		if (s->count < SEND_MAX && !s->stop) {
			size_t enough = SEND_MAX - s->count;
			pthread_mutex_unlock(&s->mu);
			linger(s, enough);
			pthread_mutex_lock(&s->mu);
		}
		size_t n = take(s, s->batch, SEND_MAX);
		pthread_mutex_unlock(&s->mu);
		int rc = send_batch(q, s, n);
		pthread_mutex_lock(&s->mu);
		finish(s, n, rc);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void
sender_free(struct jobq_add_sender *s) {
	pthread_cond_destroy(&s->work);
	pthread_cond_destroy(&s->room);
	pthread_cond_destroy(&s->sent);
	pthread_mutex_destroy(&s->mu);
	jobq__free(s->batch);
	jobq__free(s->reqs);
	jobq__free(s->ids);
	jobq__free(s->outcomes);
	jobq__free(s);
}

/* The queue's sender, started at the first call. */
static int
sender_get(struct jobq_add_sender **out, jobq_queue *q) {
	*out = NULL;
	pthread_mutex_lock(&q->sender_mu);
	struct jobq_add_sender *s = q->sender;
	int rc = 0;
	if (s == NULL) {
		s = jobq__calloc(1, sizeof(*s));
		if (s == NULL) {
			pthread_mutex_unlock(&q->sender_mu);
			return jobq_error_set(JOBQ_ENOMEM, "add async: out of memory");
		}
		pthread_mutex_init(&s->mu, NULL);
		pthread_cond_init(&s->work, NULL);
		pthread_cond_init(&s->room, NULL);
		jobq_clock__cond_init(&s->sent);
		s->batch = jobq__malloc(DEPTH * SEND_MAX * sizeof(*s->batch));
		s->reqs = jobq__malloc(SEND_MAX * sizeof(*s->reqs));
		s->ids = jobq__malloc(SEND_MAX * sizeof(*s->ids));
		s->outcomes = jobq__malloc(SEND_MAX * sizeof(*s->outcomes));
		if (s->batch == NULL || s->reqs == NULL || s->ids == NULL || s->outcomes == NULL)
			rc = jobq_error_set(JOBQ_ENOMEM, "add async: out of memory");
		s->q = q;
		if (rc == 0 && pthread_create(&s->thread, NULL, sender_main, s) != 0)
			rc =
			    jobq_error_set(JOBQ_ERROR, "add async: cannot start the sender thread");
		if (rc < 0) {
			sender_free(s);
			s = NULL;
		} else {
			q->sender = s;
		}
	}
	pthread_mutex_unlock(&q->sender_mu);
	*out = s;
	return rc;
}

int
jobq_queue_add_async(jobq_queue *q, const char *name, const void *data, size_t len,
                     const jobq_job_options *opts, jobq_add_done_fn done, void *ctx) {
	if (q == NULL)
		return jobq_error_set(JOBQ_EINVAL, "add async: queue is NULL");
	if (atomic_load(&q->closed))
		return jobq_error_set(JOBQ_ECLOSED, "add async: queue '%s' is closed", q->name);
	jobq_job_spec spec = {name, data, len, opts};
	jobq_job_options checked;
	int rc = jobq_queue__prepare_add(&checked, q, &spec, jobq_queue__now(q));
	if (rc < 0)
		return rc;
	size_t name_len = strlen(name);
	pending_add *p = jobq__malloc(sizeof(*p) + name_len + 1 + len + 1);
	if (p == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "add async: out of memory");
	if ((rc = jobq_job_options__copy(&p->opts, &checked)) < 0) {
		jobq__free(p);
		return jobq_error_set(rc, "add async: out of memory");
	}
	char *text = (char *)(p + 1);
	memcpy(text, name, name_len + 1);
	char *bytes = text + name_len + 1;
	if (len > 0)
		memcpy(bytes, data, len);
	bytes[len] = '\0';
	p->name = text;
	p->data = bytes;
	p->len = len;
	p->done = done;
	p->ctx = ctx;

	struct jobq_add_sender *s;
	if ((rc = sender_get(&s, q)) < 0) {
		pending_free(p);
		return rc;
	}
	pthread_mutex_lock(&s->mu);
	/* a callback (on the sender thread) never waits for room: only the sender makes it */
	int own = pthread_equal(pthread_self(), s->thread);
	while (s->count == RING && !own && !s->stop)
		pthread_cond_wait(&s->room, &s->mu);
	if (s->stop || s->count == RING) {
		pthread_mutex_unlock(&s->mu);
		pending_free(p);
		return s->stop
		           ? jobq_error_set(JOBQ_ECLOSED, "add async: queue '%s' is closing",
		                            q->name)
		           : jobq_error_set(JOBQ_ENOSPC,
		                            "add async: %d adds pending and called from a callback",
		                            RING);
	}
	s->ring[(s->head + s->count) % RING] = p;
	s->count++;
	s->queued++;
	atomic_fetch_add(&s->arrived, 1);
	if (s->count == 1)
		pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

int
jobq_queue_flush(jobq_queue *q, int64_t timeout_ms) {
	if (q == NULL)
		return jobq_error_set(JOBQ_EINVAL, "flush: queue is NULL");
	pthread_mutex_lock(&q->sender_mu);
	struct jobq_add_sender *s = q->sender;
	pthread_mutex_unlock(&q->sender_mu);
	if (s == NULL)
		return 0; /* no asynchronous add was ever made */
	if (pthread_equal(pthread_self(), s->thread))
		return jobq_error_set(
		    JOBQ_EINVAL, "flush: called from an add callback, it would wait for itself");
	struct timespec deadline;
	if (timeout_ms >= 0)
		jobq_clock__deadline(&deadline, timeout_ms);
	pthread_mutex_lock(&s->mu);
	uint64_t want = s->queued;
	int rc = 0;
	while (s->finished < want && rc == 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&s->sent, &s->mu);
		else if (pthread_cond_timedwait(&s->sent, &s->mu, &deadline) != 0 &&
		         s->finished < want)
			rc = jobq_error_set(
			    JOBQ_ETIMEDOUT,
			    "flush: %llu asynchronous adds still pending after %lld ms",
			    (unsigned long long)(want - s->finished), (long long)timeout_ms);
	}
	if (rc == 0 && s->error < 0) {
		rc = jobq_error_set(s->error, "flush: an asynchronous add failed: %s",
		                    jobq_error_name(s->error));
		s->error = 0;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void
jobq_add_sender__close(jobq_queue *q) {
	pthread_mutex_lock(&q->sender_mu);
	struct jobq_add_sender *s = q->sender;
	q->sender = NULL;
	pthread_mutex_unlock(&q->sender_mu);
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_broadcast(&s->work);
	pthread_cond_broadcast(&s->room);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	sender_free(s);
}
