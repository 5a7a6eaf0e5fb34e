/* Shared helpers of the conformance suite (see conf.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "dump.h"

/* --- per-case setup ---------------------------------------------------------------------- */

static void
on_alarm(int sig) {
	static const char msg[] = "conformance: a case exceeded its time limit (hung?)\n";
	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

int
conf_setup(void **state) {
	const jobq_test_target *target = *state;
	jobq_backend *b = NULL;
	jobq_store_options so = JOBQ_STORE_OPTIONS_INIT;
	conf *c = calloc(1, sizeof(*c));
	int rc;

	assert_non_null(c);
	c->target = target;
	/* A hung case ends the run with a message instead of eating ctest's whole timeout. */
	signal(SIGALRM, on_alarm);
	alarm((unsigned int)(conf_ms(120000) / 1000));

	rc = target->setup(&b, &c->tctx);
	if (rc == 77) {
		c->unavailable = 1;
		*state = c;
		return 0;
	}
	if (rc < 0) {
		print_error("target %s setup: %s (%s)\n", target->name, jobq_error_name(rc),
		            jobq_error_message());
		free(c);
		return -1;
	}
	if (target->caps & JOBQ_CAP_DUE_CLOCK) {
		rc = jobq_clock_manual_new(&c->clock, CONF_T0);
		assert_int_equal(rc, 0);
		so.clock = c->clock;
	}
	c->backend = b;
	rc = jobq_store_open_backend(&c->store, b, &so);
	if (rc < 0) {
		print_error("store open: %s (%s)\n", jobq_error_name(rc), jobq_error_message());
		target->teardown(c->tctx);
		jobq_clock_free(c->clock);
		free(c);
		return -1;
	}
	rc = jobq_queue_open(&c->q, c->store, CONF_QUEUE);
	if (rc < 0) {
		print_error("queue open: %s (%s)\n", jobq_error_name(rc), jobq_error_message());
		jobq_store_close(c->store);
		target->teardown(c->tctx);
		jobq_clock_free(c->clock);
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

int
conf_teardown(void **state) {
	conf *c = *state;

	if (c == NULL) {
		return 0;
	}
	if (c->unavailable) {
		free(c);
		alarm(0);
		return 0;
	}
	jobq_queue_close(c->q);
	jobq_store_close(c->store);
	c->target->teardown(c->tctx);
	jobq_clock_free(c->clock);
	free(c);
	alarm(0);
	return 0;
}

conf *
conf_begin(void **state) {
	conf *c = *state;

	assert_non_null(c);
	if (c->unavailable) {
		skip();
	}
	return c;
}

void
conf_use_real_clock(conf *c) {
	jobq_backend *b = NULL;
	int rc;

	if (c->clock == NULL) {
		return;
	}
	jobq_queue_close(c->q);
	jobq_store_close(c->store);
	c->target->teardown(c->tctx);
	jobq_clock_free(c->clock);
	c->q = NULL;
	c->store = NULL;
	c->tctx = NULL;
	c->clock = NULL;
	rc = c->target->setup(&b, &c->tctx);
	assert_int_equal(rc, 0);
	rc = jobq_store_open_backend(&c->store, b, NULL);
	if (rc < 0) {
		print_error("store open: %s (%s)\n", jobq_error_name(rc), jobq_error_message());
	}
	assert_int_equal(rc, 0);
	assert_int_equal(jobq_queue_open(&c->q, c->store, CONF_QUEUE), 0);
}

int
conf_has(const conf *c, uint32_t cap) {
	return (c->target->caps & cap) == cap;
}

/* --- time -------------------------------------------------------------------------------- */

int64_t
conf_now(conf *c) {
	return jobq_clock_now(jobq_store_clock(c->store));
}

void
conf_advance(conf *c, int64_t ms) {
	assert_non_null(c->clock);
	assert_int_equal(jobq_clock_advance(c->clock, ms), 0);
}

int64_t
conf_expiring_lock_ms(conf *c) {
	return conf_has(c, JOBQ_CAP_LOCK_CLOCK) ? 1000 : conf_ms(100);
}

void
conf_expire_lock(conf *c) {
	if (conf_has(c, JOBQ_CAP_LOCK_CLOCK)) {
		conf_advance(c, 1001);
	}
}

int
conf_check_until_recovered(conf *c, uint32_t max_stalled) {
	int64_t deadline = conf_mono_ms() + conf_ms(10000);
	int lock_clock = conf_has(c, JOBQ_CAP_LOCK_CLOCK);
	int i, rc = 0;

	for (i = 0; rc == 0; i++) {
		if (lock_clock ? i >= 3 : conf_mono_ms() >= deadline) {
			break;
		}
		if (i > 0 && !lock_clock) {
			conf_poll_pause();
		}
		rc = jobq_queue_check_stalled(c->q, max_stalled);
		if (rc < 0) {
			print_error("check_stalled: %s (%s)\n", jobq_error_name(rc),
			            jobq_error_message());
		}
		assert_true(rc >= 0);
	}
	return rc;
}

int64_t
conf_ms(int64_t ms) {
	const char *m = getenv("JOBQ_TEST_TIMEOUT_MULTIPLIER");
	double f = m != NULL ? strtod(m, NULL) : 1.0;

	if (!(f >= 1.0)) {
		f = 1.0;
	}
	return (int64_t)((double)ms * f);
}

int64_t
conf_mono_ms(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
conf_deadline(struct timespec *ts, int64_t ms) {
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec += 1;
		ts->tv_nsec -= 1000000000L;
	}
}

void
conf_poll_pause(void) {
	struct timespec ts = {0, 2 * 1000000L};

	nanosleep(&ts, NULL);
}

/* --- options, adding, fetching ----------------------------------------------------------- */

jobq_job_options
conf_opts(void) {
	jobq_job_options o;

	assert_int_equal(jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION), 0);
	return o;
}

jobq_worker_options
conf_wopts(void) {
	jobq_worker_options o;

	assert_int_equal(jobq_worker_options_init(&o, JOBQ_WORKER_OPTIONS_VERSION), 0);
	return o;
}

void
conf_add(conf *c, jobq_job_id *out, const char *name, const char *data,
         const jobq_job_options *opts) {
	jobq_job_id tmp;
	int rc;

	if (data == NULL) {
		data = "{}";
	}
	rc = jobq_queue_add(out != NULL ? out : &tmp, c->q, name, data, strlen(data), opts);
	if (rc != JOBQ_ADD_CREATED) {
		print_error("add %s: %d %s (%s)\n", name, rc, jobq_error_name(rc),
		            jobq_error_message());
	}
	assert_int_equal(rc, JOBQ_ADD_CREATED);
}

jobq_job *
conf_fetch(conf *c, const char *expect_id, int64_t lock_ms) {
	jobq_job *job = NULL;
	int rc = jobq_queue_fetch(&job, c->q, lock_ms);

	if (rc != 0) {
		print_error("fetch: %d %s (%s)\n", rc, jobq_error_name(rc), jobq_error_message());
	}
	assert_int_equal(rc, 0);
	assert_non_null(job);
	assert_non_null(jobq_job_token(job));
	if (expect_id != NULL) {
		assert_string_equal(jobq_job_id_of(job), expect_id);
	}
	return job;
}

void
conf_fetch_none(conf *c) {
	jobq_job *job = NULL;
	int rc = jobq_queue_fetch(&job, c->q, CONF_LOCK_MS);

	if (rc == 0) {
		print_error("fetch returned job %s, expected none\n", jobq_job_id_of(job));
		jobq_job_free(job);
	}
	assert_int_equal(rc, JOBQ_ENOJOB);
	assert_null(job);
}

void
conf_fetch_complete(conf *c, const char *expect_id, const char *result) {
	jobq_job *job = conf_fetch(c, expect_id, CONF_LOCK_MS);
	int rc = jobq_queue_complete(c->q, jobq_job_id_of(job), jobq_job_token(job), result);

	if (rc != 0) {
		print_error("complete: %s (%s)\n", jobq_error_name(rc), jobq_error_message());
	}
	assert_int_equal(rc, 0);
	jobq_job_free(job);
}

int
conf_fetch_fail(conf *c, const char *expect_id, const char *reason, unsigned int flags) {
	jobq_job *job = conf_fetch(c, expect_id, CONF_LOCK_MS);
	int rc = jobq_queue_fail(c->q, jobq_job_id_of(job), jobq_job_token(job), reason, flags);

	if (rc < 0) {
		print_error("fail: %s (%s)\n", jobq_error_name(rc), jobq_error_message());
	}
	assert_true(rc >= 0);
	jobq_job_free(job);
	return rc;
}

jobq_state
conf_state(conf *c, const char *id) {
	jobq_state s = JOBQ_STATE_UNKNOWN;
	int rc = jobq_queue_get_state(&s, c->q, id);

	assert_int_equal(rc, 0);
	return s;
}

jobq_job *
conf_get(conf *c, const char *id) {
	jobq_job *job = NULL;
	int rc = jobq_queue_get_job(&job, c->q, id);

	if (rc != 0) {
		print_error("get %s: %s (%s)\n", id, jobq_error_name(rc), jobq_error_message());
	}
	assert_int_equal(rc, 0);
	assert_non_null(job);
	assert_string_equal(jobq_job_id_of(job), id);
	return job;
}

void
conf_assert_absent(conf *c, const char *id) {
	jobq_job *job = NULL;
	int rc = jobq_queue_get_job(&job, c->q, id);

	if (rc == 0) {
		print_error("job %s still exists (state %s)\n", id,
		            jobq_state_name(jobq_job_state(job)));
		jobq_job_free(job);
	}
	assert_int_equal(rc, JOBQ_ENOTFOUND);
}

/* --- counts and errors ------------------------------------------------------------------- */

jobq_counts
conf_counts(conf *c) {
	jobq_counts n;

	memset(&n, 0xff, sizeof(n));
	assert_int_equal(jobq_queue_counts(&n, c->q), 0);
	return n;
}

void
conf_assert_counts_at(conf *c, uint64_t w, uint64_t a, uint64_t d, uint64_t p, uint64_t co,
                      uint64_t f, const char *file, int line) {
	jobq_counts n = conf_counts(c);

	if (n.waiting != w || n.active != a || n.delayed != d || n.prioritized != p ||
	    n.completed != co || n.failed != f) {
		print_error(
		    "%s:%d: counts waiting/active/delayed/prioritized/completed/failed = "
		    "%llu/%llu/%llu/%llu/%llu/%llu, expected %llu/%llu/%llu/%llu/%llu/%llu\n",
		    file, line, (unsigned long long)n.waiting, (unsigned long long)n.active,
		    (unsigned long long)n.delayed, (unsigned long long)n.prioritized,
		    (unsigned long long)n.completed, (unsigned long long)n.failed,
		    (unsigned long long)w, (unsigned long long)a, (unsigned long long)d,
		    (unsigned long long)p, (unsigned long long)co, (unsigned long long)f);
		fail();
	}
}

void
conf_assert_same_counts(const jobq_counts *a, const jobq_counts *b) {
	assert_int_equal(a->waiting, b->waiting);
	assert_int_equal(a->active, b->active);
	assert_int_equal(a->delayed, b->delayed);
	assert_int_equal(a->prioritized, b->prioritized);
	assert_int_equal(a->completed, b->completed);
	assert_int_equal(a->failed, b->failed);
	assert_int_equal(a->paused, b->paused);
}

void
conf_assert_error_at(int rc, int code, const char *expr, const char *file, int line) {
	const char *msg = jobq_error_message();

	if (rc != code) {
		print_error("%s:%d: %s returned %d (%s), expected %s; message: %s\n", file, line,
		            expr, rc, jobq_error_name(rc), jobq_error_name(code),
		            msg != NULL ? msg : "(null)");
		fail();
	}
	if (msg == NULL || msg[0] == '\0') {
		print_error("%s:%d: %s: empty jobq_error_message()\n", file, line, expr);
		fail();
	}
}

/* --- events ------------------------------------------------------------------------------ */

static char *
dup_or_null(const char *s) {
	char *d;

	if (s == NULL) {
		return NULL;
	}
	d = strdup(s);
	assert_non_null(d);
	return d;
}

static void
copy_event(conf_event *dst, const jobq_event *e) {
	size_t i;

	dst->event = dup_or_null(e->event);
	dst->job_id = dup_or_null(e->job_id);
	dst->nfields = e->nfields;
	dst->keys = calloc(e->nfields + 1, sizeof(char *));
	dst->values = calloc(e->nfields + 1, sizeof(char *));
	assert_non_null(dst->keys);
	assert_non_null(dst->values);
	for (i = 0; i < e->nfields; i++) {
		dst->keys[i] = dup_or_null(e->fields[i].key);
		dst->values[i] = dup_or_null(e->fields[i].value);
	}
}

void
conf_events_load(conf *c, conf_events *out) {
	char cursor[256];
	size_t cap = 0;

	out->count = 0;
	out->items = NULL;
	snprintf(cursor, sizeof(cursor), "%s", JOBQ_EVENTS_START);
	for (;;) {
		jobq_event_list *l = NULL;
		size_t i, n;
		int rc = jobq_events_read(&l, c->q, cursor, 1000, 0);

		if (rc < 0) {
			print_error("events_read: %s (%s)\n", jobq_error_name(rc),
			            jobq_error_message());
		}
		assert_int_equal(rc, 0);
		assert_non_null(l);
		n = jobq_event_list_count(l);
		if (out->count + n > cap) {
			cap = (out->count + n) * 2;
			out->items = realloc(out->items, cap * sizeof(conf_event));
			assert_non_null(out->items);
		}
		for (i = 0; i < n; i++) {
			copy_event(&out->items[out->count++], jobq_event_list_at(l, i));
		}
		snprintf(cursor, sizeof(cursor), "%s", jobq_event_list_cursor(l));
		jobq_event_list_free(l);
		if (n == 0) {
			break;
		}
	}
}

void
conf_events_free(conf_events *ev) {
	size_t i, j;

	for (i = 0; i < ev->count; i++) {
		conf_event *e = &ev->items[i];

		for (j = 0; j < e->nfields; j++) {
			free(e->keys[j]);
			free(e->values[j]);
		}
		free(e->keys);
		free(e->values);
		free(e->event);
		free(e->job_id);
	}
	free(ev->items);
	ev->items = NULL;
	ev->count = 0;
}

long
conf_events_find(const conf_events *ev, size_t from, const char *event, const char *job_id) {
	size_t i;

	for (i = from; i < ev->count; i++) {
		const conf_event *e = &ev->items[i];

		if (strcmp(e->event, event) != 0) {
			continue;
		}
		if (job_id != NULL && (e->job_id == NULL || strcmp(e->job_id, job_id) != 0)) {
			continue;
		}
		return (long)i;
	}
	return -1;
}

const char *
conf_event_field(const conf_event *e, const char *key) {
	size_t i;

	if (strcmp(key, "jobId") == 0) {
		return e->job_id;
	}
	if (strcmp(key, "event") == 0) {
		return e->event;
	}
	for (i = 0; i < e->nfields; i++) {
		if (e->keys[i] != NULL && strcmp(e->keys[i], key) == 0) {
			return e->values[i];
		}
	}
	return NULL;
}

static void
dump_events(const conf_events *ev) {
	size_t i, j;

	print_error("events (%zu):\n", ev->count);
	for (i = 0; i < ev->count; i++) {
		const conf_event *e = &ev->items[i];

		print_error("  %s job=%s", e->event, e->job_id != NULL ? e->job_id : "-");
		for (j = 0; j < e->nfields; j++) {
			print_error(" %s=%s", e->keys[j], e->values[j] != NULL ? e->values[j] : "");
		}
		print_error("\n");
	}
}

void
conf_events_expect_seq(const conf_events *ev, const char *job_id, const char *const *names,
                       long *idx) {
	size_t from = 0, k;

	for (k = 0; names[k] != NULL; k++) {
		long at = conf_events_find(ev, from, names[k], job_id);

		if (at < 0) {
			print_error("event #%zu '%s' for job %s not found in order\n", k, names[k],
			            job_id != NULL ? job_id : "(any)");
			dump_events(ev);
			fail();
		}
		if (idx != NULL) {
			idx[k] = at;
		}
		from = (size_t)at + 1;
	}
}

int
conf_wait_event(conf *c, const char *event, const char *job_id, int64_t timeout_ms) {
	char cursor[256];
	int64_t deadline = conf_mono_ms() + timeout_ms;
	int blocking = conf_has(c, JOBQ_CAP_BLOCKING_WAIT);

	snprintf(cursor, sizeof(cursor), "%s", JOBQ_EVENTS_START);
	for (;;) {
		jobq_event_list *l = NULL;
		int64_t left = deadline - conf_mono_ms();
		size_t i, n;
		int found = 0;
		int rc;

		if (left < 0) {
			left = 0;
		}
		rc = jobq_events_read(&l, c->q, cursor, 1000,
		                      blocking ? (left > 50 ? 50 : left) : 0);
		if (rc < 0) {
			return 0;
		}
		n = jobq_event_list_count(l);
		for (i = 0; i < n; i++) {
			const jobq_event *e = jobq_event_list_at(l, i);

			if (strcmp(e->event, event) == 0 &&
			    (job_id == NULL ||
			     (e->job_id != NULL && strcmp(e->job_id, job_id) == 0))) {
				found = 1;
			}
		}
		snprintf(cursor, sizeof(cursor), "%s", jobq_event_list_cursor(l));
		jobq_event_list_free(l);
		if (found) {
			return 1;
		}
		if (n > 0) {
			continue; /* read the rest of the retained stream first */
		}
		if (conf_mono_ms() >= deadline) {
			return 0;
		}
		if (!blocking) {
			conf_poll_pause();
		}
	}
}

int
conf_wait_counts(conf *c, int (*pred)(const jobq_counts *, void *), void *arg, int64_t timeout_ms) {
	int64_t deadline = conf_mono_ms() + timeout_ms;

	for (;;) {
		jobq_counts n;

		if (jobq_queue_counts(&n, c->q) == 0 && pred(&n, arg)) {
			return 1;
		}
		if (conf_mono_ms() >= deadline) {
			return 0;
		}
		conf_poll_pause();
	}
}

/* --- gates ------------------------------------------------------------------------------- */

void
conf_gate_init(conf_gate *g) {
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
}

void
conf_gate_destroy(conf_gate *g) {
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
}

void
conf_gate_open(conf_gate *g) {
	pthread_mutex_lock(&g->mu);
	g->open = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

int
conf_gate_pass(conf_gate *g, int64_t timeout_ms) {
	struct timespec ts;
	int opened;

	conf_deadline(&ts, timeout_ms);
	pthread_mutex_lock(&g->mu);
	g->inside++;
	g->entered++;
	if (g->inside > g->max_inside) {
		g->max_inside = g->inside;
	}
	pthread_cond_broadcast(&g->cv);
	while (!g->open) {
		if (pthread_cond_timedwait(&g->cv, &g->mu, &ts) == ETIMEDOUT) {
			break;
		}
	}
	opened = g->open;
	g->inside--;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	return opened;
}

int
conf_gate_wait_inside(conf_gate *g, int n, int64_t timeout_ms) {
	struct timespec ts;
	int ok;

	conf_deadline(&ts, timeout_ms);
	pthread_mutex_lock(&g->mu);
	while (g->max_inside < n) {
		if (pthread_cond_timedwait(&g->cv, &g->mu, &ts) == ETIMEDOUT) {
			break;
		}
	}
	ok = g->max_inside >= n;
	pthread_mutex_unlock(&g->mu);
	return ok;
}

/* --- snapshots ------------------------------------------------------------------------------ */

void
conf_snapshot_take(conf *c, conf_snapshot *s) {
	conf_events ev;
	jobq_test_buf api = {0};

	jobq_test_dump_queue(&api, c->q, 1);
	s->api = api.p;
	s->counts = conf_counts(c);
	assert_int_equal(jobq_queue_is_paused(&s->paused, c->q), 0);
	conf_events_load(c, &ev);
	s->events = ev.count;
	conf_events_free(&ev);
	s->dump = c->target->dump != NULL ? c->target->dump(c->tctx) : NULL;
	if (c->target->dump != NULL)
		assert_non_null(s->dump);
}

/* Prints each line of `text` that `other` does not hold (the lines of a raw dump that
 * changed), the line cut at 300 characters. */
static void
print_lines_not_in(const char *what, const char *text, const char *other) {
	for (const char *l = text; *l != '\0';) {
		const char *nl = strchr(l, '\n');
		size_t n = nl != NULL ? (size_t)(nl - l) : strlen(l);
		int found = 0;
		for (const char *o = other; !found && *o != '\0';) {
			const char *onl = strchr(o, '\n');
			size_t on = onl != NULL ? (size_t)(onl - o) : strlen(o);
			found = on == n && memcmp(o, l, n) == 0;
			o += on + (onl != NULL);
		}
		if (!found)
			print_error("only %s: %.*s\n", what, (int)(n > 300 ? 300 : n), l);
		l += n + (nl != NULL);
	}
}

/* Asserts that two snapshots are the same, down to the bytes of every key where the target
 * has a raw dump; frees both. */
void
conf_snapshot_assert_same(conf_snapshot *before, conf_snapshot *after) {
	conf_assert_same_counts(&before->counts, &after->counts);
	assert_int_equal(after->paused, before->paused);
	assert_int_equal(after->events, before->events);
	assert_string_equal(after->api, before->api);
	if (before->dump != NULL && strcmp(after->dump, before->dump) != 0) {
		print_lines_not_in("before", before->dump, after->dump);
		print_lines_not_in("after", after->dump, before->dump);
		fail_msg("the target's raw dump changed");
	}
	free(before->api);
	free(after->api);
	free(before->dump);
	free(after->dump);
}
