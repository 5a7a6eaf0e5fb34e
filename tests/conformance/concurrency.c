/* Workers and threads: request/response, concurrency, graceful close, per-name handlers, and
 * many producers and consumers at once. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

static jobq_worker *
start_worker(conf *c, jobq_process_fn fn, void *payload, unsigned int concurrency) {
	jobq_worker_options wo = conf_wopts();
	jobq_worker *w = NULL;

	wo.concurrency = concurrency;
	assert_int_equal(jobq_worker_new(&w, c->q, fn, payload, &wo), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	return w;
}

static void
close_worker(jobq_worker *w) {
	assert_int_equal(jobq_worker_close(w, conf_ms(10000)), 0);
	jobq_worker_free(w);
}

/* Echoes data as result; data "fail" fails unrecoverably with reason "boom". */
static int
echo_handler(jobq_job *job, void *payload) {
	size_t len = 0;
	const char *data = jobq_job_data(job, &len);

	(void)payload;
	if (len == 6 && memcmp(data, "\"fail\"", 6) == 0) {
		return jobq_job_set_error(job, JOBQ_FAIL_UNRECOVERABLE, "boom");
	}
	return jobq_job_set_result(job, data, len);
}

/* Request/response: the result of a completed job comes back. */
static void
conc_request_success(void **state) {
	conf *c = conf_begin(state);
	jobq_worker *w = start_worker(c, echo_handler, NULL, 1);
	jobq_job *job = NULL;
	int rc;

	rc = jobq_queue_request(&job, c->q, "echo", "{\"x\":1}", 7, NULL, conf_ms(10000));
	assert_int_equal(rc, 0);
	assert_non_null(job);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_COMPLETED);
	assert_string_equal(jobq_job_result(job), "{\"x\":1}");
	jobq_job_free(job);
	close_worker(w);
}

/* Request/response: a failed job gives JOBQ_ESTATE and the job with its reason. */
static void
conc_request_failure(void **state) {
	conf *c = conf_begin(state);
	jobq_worker *w = start_worker(c, echo_handler, NULL, 1);
	jobq_job *job = NULL;
	int rc;

	rc = jobq_queue_request(&job, c->q, "echo", "\"fail\"", 6, NULL, conf_ms(10000));
	assert_int_equal(rc, JOBQ_ESTATE);
	assert_non_null(job);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_FAILED);
	assert_string_equal(jobq_job_failed_reason(job), "boom");
	jobq_job_free(job);
	close_worker(w);
}

/* wait_job: JOBQ_ETIMEDOUT after the timeout when nobody works; JOBQ_ENOTFOUND for an
 * unknown id; an already finished job returns at once. */
static void
conc_wait_timeout_and_finished(void **state) {
	conf *c = conf_begin(state);
	jobq_job *job = NULL;
	jobq_job_id id, done;
	int64_t t0, took;
	int rc;

	conf_add(c, &id, "n", NULL, NULL);
	t0 = conf_mono_ms();
	rc = jobq_queue_wait_job(&job, c->q, id.str, conf_ms(100));
	took = conf_mono_ms() - t0;
	conf_assert_error(rc, JOBQ_ETIMEDOUT);
	assert_null(job);
	assert_true(took >= 90);
	assert_int_equal(conf_state(c, id.str), JOBQ_STATE_WAITING);
	conf_assert_error(jobq_queue_wait_job(&job, c->q, "no-such-job", conf_ms(100)),
	                  JOBQ_ENOTFOUND);
	conf_fetch_complete(c, id.str, "7");
	conf_add(c, &done, "n", NULL, NULL);
	rc = jobq_queue_wait_job(&job, c->q, id.str, 0);
	assert_int_equal(rc, 0);
	assert_string_equal(jobq_job_result(job), "7");
	jobq_job_free(job);
}

/* A waiter is woken by a completion from another thread, well before its timeout. */
static void
conc_wait_woken_by_completion(void **state) {
	conf *c = conf_begin(state);
	jobq_worker *w;
	jobq_job_id id;
	jobq_job *job = NULL;
	int64_t t0;

	conf_add(c, &id, "n", "[1,2]", NULL);
	t0 = conf_mono_ms();
	w = start_worker(c, echo_handler, NULL, 1);
	assert_int_equal(jobq_queue_wait_job(&job, c->q, id.str, conf_ms(20000)), 0);
	assert_true(conf_mono_ms() - t0 < conf_ms(10000));
	assert_string_equal(jobq_job_result(job), "[1,2]");
	jobq_job_free(job);
	close_worker(w);
}

/* --- concurrency ------------------------------------------------------------------------- */

#define CONC_N 4

static int
gate_handler(jobq_job *job, void *payload) {
	conf_gate *g = payload;

	(void)job;
	return conf_gate_pass(g, conf_ms(10000)) ? 0 : jobq_job_set_error(job, 0, "gate timeout");
}

static int
all_completed(const jobq_counts *n, void *arg) {
	return n->completed >= *(const uint64_t *)arg;
}

/* concurrency N really runs N handlers at once. */
static void
conc_runs_n_handlers_at_once(void **state) {
	conf *c = conf_begin(state);
	conf_gate g;
	jobq_worker *w;
	jobq_worker_stats st;
	int i, all_inside;

	conf_gate_init(&g);
	for (i = 0; i < CONC_N * 2; i++) {
		conf_add(c, NULL, "n", NULL, NULL);
	}
	w = start_worker(c, gate_handler, &g, CONC_N);
	all_inside = conf_gate_wait_inside(&g, CONC_N, conf_ms(10000));
	jobq_worker_get_stats(&st, w);
	conf_gate_open(&g);
	assert_true(all_inside);
	assert_int_equal(g.max_inside, CONC_N); /* never more than N either */
	assert_true(st.running <= CONC_N);
	assert_true(conf_wait_counts(c, all_completed, &(uint64_t){CONC_N * 2}, conf_ms(10000)));
	close_worker(w);
	assert_int_equal(g.max_inside, CONC_N);
	conf_gate_destroy(&g);
}

/* --- graceful close ---------------------------------------------------------------------- */

typedef struct close_state {
	conf_gate gate;
	atomic_int cancelled;
} close_state;

/* Waits at the gate until it opens or the job is cancelled (then fails the attempt). */
static int
cancellable_handler(jobq_job *job, void *payload) {
	close_state *s = payload;
	int64_t deadline = conf_mono_ms() + conf_ms(20000);

	pthread_mutex_lock(&s->gate.mu);
	s->gate.inside++;
	s->gate.entered++;
	if (s->gate.inside > s->gate.max_inside) {
		s->gate.max_inside = s->gate.inside;
	}
	pthread_cond_broadcast(&s->gate.cv);
	while (!s->gate.open && !jobq_job_is_cancelled(job) && conf_mono_ms() < deadline) {
		struct timespec ts;

		conf_deadline(&ts, 5);
		pthread_cond_timedwait(&s->gate.cv, &s->gate.mu, &ts);
	}
	s->gate.inside--;
	pthread_mutex_unlock(&s->gate.mu);
	if (jobq_job_is_cancelled(job)) {
		atomic_fetch_add(&s->cancelled, 1);
		return jobq_job_set_error(job, 0, "cancelled");
	}
	return 0;
}

/* Graceful close within the deadline: running handlers finish, nothing new starts, nothing is
 * lost: completed + waiting = all, none active or failed. */
static void
conc_close_lets_running_finish(void **state) {
	conf *c = conf_begin(state);
	close_state s;
	jobq_worker *w;
	jobq_worker_stats st;
	int i, inside;

	memset(&s, 0, sizeof(s));
	conf_gate_init(&s.gate);
	atomic_init(&s.cancelled, 0);
	for (i = 0; i < 6; i++) {
		conf_add(c, NULL, "n", NULL, NULL);
	}
	w = start_worker(c, cancellable_handler, &s, 2);
	inside = conf_gate_wait_inside(&s.gate, 2, conf_ms(10000));
	/* Stop first, so that the opened gate cannot let new jobs start, then let them finish. */
	jobq_worker_stop(w);
	conf_gate_open(&s.gate);
	assert_int_equal(jobq_worker_close(w, conf_ms(10000)), 0);
	jobq_worker_get_stats(&st, w);
	jobq_worker_free(w);
	assert_true(inside);
	assert_int_equal(atomic_load(&s.cancelled), 0);
	{
		jobq_counts n = conf_counts(c);

		assert_int_equal(n.active, 0);
		assert_int_equal(n.failed, 0);
		assert_int_equal(n.completed + n.waiting, 6);
		assert_true(n.completed >= 2);
		assert_int_equal(n.completed, (uint64_t)s.gate.entered);
		assert_int_equal(st.completed, n.completed);
	}
	conf_gate_destroy(&s.gate);
}

/* Past the deadline handlers are cancelled; their jobs go back to waiting without using an
 * attempt: nothing is lost. */
static void
conc_close_past_deadline_requeues(void **state) {
	conf *c = conf_begin(state);
	close_state s;
	jobq_worker *w;
	jobq_job_list *list = NULL;
	size_t k;
	int i, inside;

	memset(&s, 0, sizeof(s));
	conf_gate_init(&s.gate);
	atomic_init(&s.cancelled, 0);
	for (i = 0; i < 5; i++) {
		conf_add(c, NULL, "n", NULL, NULL);
	}
	w = start_worker(c, cancellable_handler, &s, 2);
	inside = conf_gate_wait_inside(&s.gate, 2, conf_ms(10000));
	assert_int_equal(jobq_worker_close(w, conf_ms(100)), 0);
	jobq_worker_free(w);
	assert_true(inside);
	assert_int_equal(atomic_load(&s.cancelled), 2);
	conf_assert_counts(c, 5, 0, 0, 0, 0, 0);
	assert_int_equal(jobq_queue_list(&list, c->q, JOBQ_STATE_WAITING, 0, 10), 0);
	assert_int_equal(list->count, 5);
	for (k = 0; k < list->count; k++) {
		assert_int_equal(jobq_job_attempts_made(list->jobs[k]), 0);
		assert_null(jobq_job_failed_reason(list->jobs[k]));
	}
	jobq_job_list_free(list);
	conf_gate_destroy(&s.gate);
}

/* --- handlers per job name ---------------------------------------------------------------- */

typedef struct seen {
	pthread_mutex_t mu;
	char log[256];
} seen;

static int
record(jobq_job *job, seen *s, const char *who) {
	pthread_mutex_lock(&s->mu);
	snprintf(s->log + strlen(s->log), sizeof(s->log) - strlen(s->log), "%s:%s ", who,
	         jobq_job_name(job));
	pthread_mutex_unlock(&s->mu);
	return jobq_job_set_result(job, "\"ok\"", 4);
}

static int
h_default(jobq_job *job, void *p) {
	return record(job, p, "default");
}

static int
h_email(jobq_job *job, void *p) {
	return record(job, p, "email");
}

static int
h_sms(jobq_job *job, void *p) {
	return record(job, p, "sms");
}

/* Each job name goes to its handler; other names to the default handler. */
static void
conc_handlers_per_name(void **state) {
	conf *c = conf_begin(state);
	jobq_worker *w = NULL;
	jobq_worker_options wo = conf_wopts();
	seen s;
	jobq_job_id last;
	jobq_job *job = NULL;

	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.mu, NULL);
	conf_add(c, NULL, "email", NULL, NULL);
	conf_add(c, NULL, "sms", NULL, NULL);
	conf_add(c, NULL, "push", NULL, NULL);
	conf_add(c, &last, "email", NULL, NULL);
	assert_int_equal(jobq_worker_new(&w, c->q, h_default, &s, &wo), 0);
	assert_int_equal(jobq_worker_on(w, "email", h_email, &s), 0);
	assert_int_equal(jobq_worker_on(w, "sms", h_sms, &s), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	assert_int_equal(jobq_queue_wait_job(&job, c->q, last.str, conf_ms(10000)), 0);
	jobq_job_free(job);
	close_worker(w);
	assert_string_equal(s.log, "email:email sms:sms default:push email:email ");
	conf_assert_counts(c, 0, 0, 0, 0, 4, 0);
	pthread_mutex_destroy(&s.mu);
}

/* Without a default handler, a job with an unknown name fails with a reason. */
static void
conc_unhandled_name_fails(void **state) {
	conf *c = conf_begin(state);
	jobq_worker *w = NULL;
	seen s;
	jobq_job_id id;
	jobq_job *job = NULL;

	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.mu, NULL);
	conf_add(c, &id, "unknown", NULL, NULL);
	assert_int_equal(jobq_worker_new(&w, c->q, NULL, NULL, NULL), 0);
	assert_int_equal(jobq_worker_on(w, "email", h_email, &s), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	assert_int_equal(jobq_queue_wait_job(&job, c->q, id.str, conf_ms(10000)), JOBQ_ESTATE);
	assert_non_null(jobq_job_failed_reason(job));
	assert_true(strlen(jobq_job_failed_reason(job)) > 0);
	jobq_job_free(job);
	close_worker(w);
	assert_string_equal(s.log, "");
	pthread_mutex_destroy(&s.mu);
}

/* --- many producers and consumers ----------------------------------------------------------- */

#define STRESS_THREADS 8

typedef struct stress {
	conf *c;
	size_t jobs;           /* total */
	atomic_uint *done;     /* completions per generated id (1-based) */
	atomic_size_t added;   /* adds that returned */
	atomic_size_t bad;     /* unexpected errors or out-of-range ids */
	atomic_size_t handled; /* handler calls */
	pthread_mutex_t mu;
	pthread_cond_t cv;
} stress;

typedef struct producer {
	stress *s;
	size_t first, count;
} producer;

static void *
produce(void *arg) {
	producer *p = arg;
	size_t i;
	char data[32];

	for (i = 0; i < p->count; i++) {
		jobq_job_id id;
		int len = snprintf(data, sizeof(data), "%zu", p->first + i);
		int rc = jobq_queue_add(&id, p->s->c->q, "s", data, (size_t)len, NULL);

		if (rc != JOBQ_ADD_CREATED) {
			atomic_fetch_add(&p->s->bad, 1);
		}
		atomic_fetch_add(&p->s->added, 1);
	}
	return NULL;
}

static int
stress_handler(jobq_job *job, void *payload) {
	stress *s = payload;
	char *end = NULL;
	unsigned long long id = strtoull(jobq_job_id_of(job), &end, 10);

	if (end == NULL || *end != '\0' || id == 0 || id > s->jobs) {
		atomic_fetch_add(&s->bad, 1);
	} else {
		atomic_fetch_add(&s->done[id - 1], 1);
	}
	if (atomic_fetch_add(&s->handled, 1) + 1 == s->jobs) {
		pthread_mutex_lock(&s->mu);
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	return 0;
}

/* JOBQ_TEST_STRESS_JOBS, else 100,000 (2,000 on a durable target, where every add and
 * finish is a synced commit; the `slow` ctest variants run 100,000 there). */
static size_t
stress_jobs(const conf *c) {
	const char *e = getenv("JOBQ_TEST_STRESS_JOBS");
	long long n = e != NULL ? atoll(e) : 0;

	if (n > 0) {
		return (size_t)n;
	}
	return conf_has(c, JOBQ_CAP_DURABLE) ? 2000 : 100000;
}

/* 8 producer threads and 8 consumer workers move many jobs (see stress_jobs): every job
 * completed exactly once, none lost. */
static void
conc_stress_8x8(void **state) {
	conf *c = conf_begin(state);
	stress s;
	producer prod[STRESS_THREADS];
	pthread_t th[STRESS_THREADS];
	jobq_worker *w[STRESS_THREADS];
	jobq_worker_options wo = conf_wopts();
	struct timespec ts;
	size_t i, per, twice = 0, lost = 0;
	int64_t t0 = conf_mono_ms();

	memset(&s, 0, sizeof(s));
	s.c = c;
	s.jobs = stress_jobs(c);
	s.done = calloc(s.jobs, sizeof(atomic_uint));
	assert_non_null(s.done);
	for (i = 0; i < s.jobs; i++) {
		atomic_init(&s.done[i], 0);
	}
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	wo.concurrency = 1;
	for (i = 0; i < STRESS_THREADS; i++) {
		assert_int_equal(jobq_worker_new(&w[i], c->q, stress_handler, &s, &wo), 0);
		assert_int_equal(jobq_worker_start(w[i]), 0);
	}
	per = s.jobs / STRESS_THREADS;
	for (i = 0; i < STRESS_THREADS; i++) {
		prod[i].s = &s;
		prod[i].first = i * per;
		prod[i].count = i + 1 == STRESS_THREADS ? s.jobs - i * per : per;
		assert_int_equal(pthread_create(&th[i], NULL, produce, &prod[i]), 0);
	}
	for (i = 0; i < STRESS_THREADS; i++) {
		pthread_join(th[i], NULL);
	}
	conf_deadline(&ts, conf_ms(120000));
	pthread_mutex_lock(&s.mu);
	while (atomic_load(&s.handled) < s.jobs) {
		if (pthread_cond_timedwait(&s.cv, &s.mu, &ts) != 0) {
			break;
		}
	}
	pthread_mutex_unlock(&s.mu);
	for (i = 0; i < STRESS_THREADS; i++) {
		assert_int_equal(jobq_worker_close(w[i], conf_ms(10000)), 0);
		jobq_worker_free(w[i]);
	}
	for (i = 0; i < s.jobs; i++) {
		unsigned int n = atomic_load(&s.done[i]);

		twice += n > 1;
		lost += n == 0;
	}
	print_message("stress: %zu jobs, 8 producers, 8 workers: %lld ms\n", s.jobs,
	              (long long)(conf_mono_ms() - t0));
	if (twice != 0 || lost != 0 || atomic_load(&s.bad) != 0) {
		print_error("stress: %zu completed more than once, %zu never, %zu bad\n", twice,
		            lost, (size_t)atomic_load(&s.bad));
	}
	assert_int_equal(atomic_load(&s.added), s.jobs);
	assert_int_equal(atomic_load(&s.bad), 0);
	assert_int_equal(twice, 0);
	assert_int_equal(lost, 0);
	{
		jobq_counts n = conf_counts(c);

		assert_int_equal(n.completed, s.jobs);
		assert_int_equal(n.waiting + n.active + n.failed + n.delayed + n.prioritized, 0);
	}
	free(s.done);
	pthread_cond_destroy(&s.cv);
	pthread_mutex_destroy(&s.mu);
}

static const struct CMUnitTest cases[] = {
    CONF_CASE(conc_request_success),
    CONF_CASE(conc_request_failure),
    CONF_CASE(conc_wait_timeout_and_finished),
    CONF_CASE(conc_wait_woken_by_completion),
    CONF_CASE(conc_runs_n_handlers_at_once),
    CONF_CASE(conc_close_lets_running_finish),
    CONF_CASE(conc_close_past_deadline_requeues),
    CONF_CASE(conc_handlers_per_name),
    CONF_CASE(conc_unhandled_name_fails),
    CONF_CASE(conc_stress_8x8),
};
CONF_TABLE(conf_concurrency_cases, cases);
