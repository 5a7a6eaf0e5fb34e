/*
 * Shared helpers of the conformance suite: a fresh store and queue per case, adding and
 * fetching with assertions, counts, events and real-time waits that scale with
 * JOBQ_TEST_TIMEOUT_MULTIPLIER.
 *
 * cmocka's assertions may only be used on the test's own thread: helpers meant for worker
 * handlers (conf_gate_*, conf_flag_*) never assert.
 */
#ifndef JOBQ_CONFORMANCE_CONF_H
#define JOBQ_CONFORMANCE_CONF_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include <cmocka.h>

#include "target.h"

#define CONF_T0      1700000000000LL /* the manual clock's start */
#define CONF_QUEUE   "conf"
#define CONF_LOCK_MS 30000

/* The state of one case. */
typedef struct conf {
	const jobq_test_target *target;
	void *tctx;
	jobq_clock *clock; /* the manual clock, or NULL when the target runs on real time */
	jobq_store *store;
	jobq_backend *backend; /* the store's backend (owned by the store), for the slots the
	                        * public API reaches only through a worker */
	jobq_queue *q;
	int unavailable; /* the target's setup answered 77: every case skips */
} conf;

/* The case's state; skips the case when the target is unavailable (cmocka 1.1.5 reports a
 * skip() inside a setup function as an error, so setup defers it to here). */
conf *conf_begin(void **state);

/* cmocka setup/teardown for every case; the prestate is the target. */
int conf_setup(void **state);
int conf_teardown(void **state);
#define CONF_CASE(f) cmocka_unit_test_prestate_setup_teardown(f, conf_setup, conf_teardown, NULL)

/* A table of cases per file (main.c joins them). */
typedef struct conf_table {
	const struct CMUnitTest *tests;
	size_t count;
} conf_table;
#define CONF_TABLE(name, arr) const conf_table name = {arr, sizeof(arr) / sizeof((arr)[0])}
extern const conf_table conf_add_cases, conf_fetch_cases, conf_retry_cases, conf_stall_cases,
    conf_admin_cases, conf_events_cases, conf_concurrency_cases, conf_errors_cases,
    conf_add_async_cases, conf_vtable_cases, conf_metrics_cases, conf_sched_cases,
    conf_semantics_cases, conf_limits_cases, conf_flow_cases;

/*
 * Capabilities and clocks. A target with JOBQ_CAP_DUE_CLOCK runs on the manual clock (c->clock
 * set): CONF_NEED_DUE_CLOCK skips a case that moves due times with it. CONF_NEED_LOCK_CLOCK
 * skips a case that also lets locks or dedup TTLs expire by advancing it (JOBQ_CAP_LOCK_CLOCK).
 */
int conf_has(const conf *c, uint32_t cap);
#define CONF_NEED_DUE_CLOCK(c)                                                                     \
	do {                                                                                       \
		if ((c)->clock == NULL) {                                                          \
			skip();                                                                    \
		}                                                                                  \
	} while (0)
#define CONF_NEED_LOCK_CLOCK(c)                                                                    \
	do {                                                                                       \
		if ((c)->clock == NULL || !conf_has(c, JOBQ_CAP_LOCK_CLOCK)) {                     \
			skip();                                                                    \
		}                                                                                  \
	} while (0)
/* For the real-time cases: replaces the case's store and queue by fresh ones on real time
 * (nothing when the target already runs on it). */
void conf_use_real_clock(conf *c);
/*
 * For cases that let a lock expire. conf_expiring_lock_ms: the lock to fetch with (1000 ms of
 * the manual clock when locks follow it, else a short real-time lock). conf_expire_lock: with
 * a lock clock, advances past such a lock; without one, the lock runs out in real time, so
 * the case waits with conf_check_until_recovered.
 * conf_check_until_recovered: runs the stalled check until it recovers something (up to 3
 * checks on the lock clock, else until the real-time limit) and returns that count (0: none).
 */
int64_t conf_expiring_lock_ms(conf *c);
void conf_expire_lock(conf *c);
int conf_check_until_recovered(conf *c, uint32_t max_stalled);

/* Time. conf_now: the store's clock. conf_advance: the manual clock. conf_ms: a real-time
 * duration times JOBQ_TEST_TIMEOUT_MULTIPLIER. conf_mono_ms: monotonic real time. */
int64_t conf_now(conf *c);
void conf_advance(conf *c, int64_t ms);
int64_t conf_ms(int64_t ms);
int64_t conf_mono_ms(void);

/* Options with the defaults. */
jobq_job_options conf_opts(void);
jobq_worker_options conf_wopts(void);

/* Adds a job (data: JSON text) and asserts JOBQ_ADD_CREATED; returns the id in `out`. */
void conf_add(conf *c, jobq_job_id *out, const char *name, const char *data,
              const jobq_job_options *opts);
/* Fetches and asserts a job came (optionally with id `expect_id`). */
jobq_job *conf_fetch(conf *c, const char *expect_id, int64_t lock_ms);
/* Asserts nothing is fetchable. */
void conf_fetch_none(conf *c);
/* Fetches the next job, asserts its id, completes it with `result` (JSON) or null. */
void conf_fetch_complete(conf *c, const char *expect_id, const char *result);
/* Fetches the next job (asserting its id), fails the attempt; returns the new state. */
int conf_fetch_fail(conf *c, const char *expect_id, const char *reason, unsigned int flags);

jobq_state conf_state(conf *c, const char *id);
jobq_job *conf_get(conf *c, const char *id);
void conf_assert_absent(conf *c, const char *id);

/* Counts. conf_assert_counts checks waiting, active, delayed, prioritized, completed, failed. */
jobq_counts conf_counts(conf *c);
#define conf_assert_counts(c, w, a, d, p, co, f)                                                   \
	conf_assert_counts_at(c, w, a, d, p, co, f, __FILE__, __LINE__)
void conf_assert_counts_at(conf *c, uint64_t w, uint64_t a, uint64_t d, uint64_t p, uint64_t co,
                           uint64_t f, const char *file, int line);
void conf_assert_same_counts(const jobq_counts *a, const jobq_counts *b);

/* What a queue holds, to assert that a refused call changed nothing: counts, the paused flag,
 * the number of events, what the public API shows (dump.h: jobs, logs, schedulers, events)
 * and the target's raw dump of every key (Redis, LMDB; NULL for memory). */
typedef struct conf_snapshot {
	jobq_counts counts;
	int paused;
	size_t events;
	char *api;
	char *dump;
} conf_snapshot;
void conf_snapshot_take(conf *c, conf_snapshot *s);
/* Asserts that two snapshots are the same, down to the bytes of every key where the target
 * has a raw dump (the changed lines printed); frees both. */
void conf_snapshot_assert_same(conf_snapshot *before, conf_snapshot *after);

/* Asserts rc == code and that jobq_error_message() says something. */
#define conf_assert_error(rc, code) conf_assert_error_at(rc, code, #rc, __FILE__, __LINE__)
void conf_assert_error_at(int rc, int code, const char *expr, const char *file, int line);

/* --- events: a private copy of the queue's whole retained stream ------------------------- */

typedef struct conf_event {
	char *event;
	char *job_id; /* NULL for queue events */
	size_t nfields;
	char **keys;
	char **values;
} conf_event;

typedef struct conf_events {
	size_t count;
	conf_event *items;
} conf_events;

/* Reads every event from the start (without waiting). */
void conf_events_load(conf *c, conf_events *out);
void conf_events_free(conf_events *ev);
/* Index of the first event named `event` for `job_id` (NULL: any job) at or after `from`, or
 * -1. */
long conf_events_find(const conf_events *ev, size_t from, const char *event, const char *job_id);
const char *conf_event_field(const conf_event *e, const char *key);
/* Asserts that the events named in `names` (NULL-terminated) occur for `job_id`, in that
 * order (others may come between), and returns the index of each in `idx` (optional). */
void conf_events_expect_seq(const conf_events *ev, const char *job_id, const char *const *names,
                            long *idx);
/* Waits (real time, up to `timeout_ms`) until an event `event` for `job_id` was emitted;
 * returns non-zero if it was. */
int conf_wait_event(conf *c, const char *event, const char *job_id, int64_t timeout_ms);

/* Waits (real time) until counts satisfy `pred`, up to `timeout_ms`; returns non-zero on
 * success. Polls the counts with short waits on the events stream. */
int conf_wait_counts(conf *c, int (*pred)(const jobq_counts *, void *), void *arg,
                     int64_t timeout_ms);

/* --- cross-thread helpers (no assertions inside) ----------------------------------------- */

/* A gate: handlers wait on it, the test opens it. */
typedef struct conf_gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int open;
	int inside; /* handlers inside now */
	int max_inside;
	int entered; /* handlers that ever entered */
} conf_gate;
void conf_gate_init(conf_gate *g);
void conf_gate_destroy(conf_gate *g);
void conf_gate_open(conf_gate *g);
/* Enters (inside += 1), waits until open or `timeout_ms` real time, leaves. Returns 1 if it
 * opened. */
int conf_gate_pass(conf_gate *g, int64_t timeout_ms);
/* Waits until at least `n` handlers are inside at once; non-zero if that happened. */
int conf_gate_wait_inside(conf_gate *g, int n, int64_t timeout_ms);

/* A 2 ms pause between polls of a condition that has no event to wait on. */
void conf_poll_pause(void);

/* Absolute deadline for pthread_cond_timedwait (CLOCK_REALTIME) `ms` from now. */
void conf_deadline(struct timespec *ts, int64_t ms);

#endif
