/*
 * Allocation-failure injection through the public allocator hook (jobq_set_allocator).
 *
 * For every public call that can allocate, on the memory and the LMDB store: build a store with
 * jobs in every state, take a snapshot, then for n = 1, 2, 3, ... run the call with the n-th
 * allocation (malloc or realloc) after arming failing. A call may fail only with JOBQ_ENOMEM,
 * and then the store must equal the snapshot and no allocation of the library may be left
 * over; a call that still succeeds must give the same result and the same store as the call
 * run without injection. The loop ends at the first n past the call's last allocation.
 *
 * The snapshot is what the public API shows of two queues (counts, the paused flag, every job
 * of every state with every field, its logs, the whole events log) and, on LMDB, a dump of
 * every database of the environment read directly with liblmdb.
 *
 * LMDB, msgpack-c and jansson allocate with libc and ignore the hook: only the library's own
 * allocations are injected. The LMDB store runs with periodic durability and an hour-long sync
 * window, so that the test does not wait on fsync.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jobq.h"
#include "jobq/backends.h"

#include "dump.h"
#include "jobq/sys/backend.h"

/* --- the failing allocator ------------------------------------------------------------------ */

static atomic_long alloc_seq;   /* allocations since arming */
static atomic_long fail_at;     /* 0: off; n: the n-th allocation after arming fails */
static atomic_long failed;      /* failures injected since arming */
static atomic_long live_allocs; /* blocks the library holds now */

static int
should_fail(void) {
	long n = atomic_load(&fail_at);
	if (n <= 0)
		return 0;
	if (atomic_fetch_add(&alloc_seq, 1) + 1 != n)
		return 0;
	atomic_fetch_add(&failed, 1);
	return 1;
}

static void *
t_malloc(void *ctx, size_t size) {
	(void)ctx;
	if (should_fail())
		return NULL;
	void *p = malloc(size);
	if (p != NULL)
		atomic_fetch_add(&live_allocs, 1);
	return p;
}

static void *
t_realloc(void *ctx, void *ptr, size_t size) {
	(void)ctx;
	if (should_fail())
		return NULL;
	void *p = realloc(ptr, size);
	if (p != NULL && ptr == NULL)
		atomic_fetch_add(&live_allocs, 1);
	return p;
}

static void
t_free(void *ctx, void *ptr) {
	(void)ctx;
	if (ptr != NULL)
		atomic_fetch_sub(&live_allocs, 1);
	free(ptr);
}

static void
arm(long n) {
	atomic_store(&fail_at, 0);
	atomic_store(&alloc_seq, 0);
	atomic_store(&failed, 0);
	atomic_store(&fail_at, n);
}

static void
disarm(void) {
	atomic_store(&fail_at, 0);
}

/* --- the fixture: a store with jobs in every state ------------------------------------------ */

enum { T0 = 1000000 };

typedef struct fixture {
	const char *backend; /* "memory" | "lmdb" */
	char dir[64];
	jobq_clock *clock;
	jobq_backend *b;
	jobq_store *s;
	jobq_queue *q;    /* every state */
	jobq_queue *p;    /* paused, one waiting job */
	jobq_job *active; /* fetched, holds the lock */
	char id_completed[JOBQ_ID_MAX + 1], id_failed[JOBQ_ID_MAX + 1],
	    id_retrying[JOBQ_ID_MAX + 1], id_waiting[JOBQ_ID_MAX + 1], id_prio[JOBQ_ID_MAX + 1],
	    id_delayed[JOBQ_ID_MAX + 1];
} fixture;

static void
add_job(char *id_out, jobq_queue *q, const char *name, const char *data,
        const jobq_job_options *o) {
	jobq_job_id id;
	int rc = jobq_queue_add(&id, q, name, data, strlen(data), o);
	if (rc < 0)
		fail_msg("fixture add %s: %s", name, jobq_error_message());
	if (id_out != NULL)
		strcpy(id_out, id.str);
}

static jobq_job *
fetch_job(jobq_queue *q) {
	jobq_job *j = NULL;
	int rc = jobq_queue_fetch(&j, q, 30000);
	if (rc < 0)
		fail_msg("fixture fetch: %s", jobq_error_message());
	return j;
}

static void
fixture_open_store(fixture *f) {
	if (strcmp(f->backend, "memory") == 0) {
		assert_int_equal(jobq_backend_memory_new(&f->b, NULL), 0);
	} else {
#ifdef JOBQ_HAVE_LMDB
		strcpy(f->dir, "/tmp/jobq-allocfail-XXXXXX");
		assert_non_null(mkdtemp(f->dir));
		jobq_lmdb_options lo = JOBQ_LMDB_OPTIONS_INIT;
		lo.durability = JOBQ_LMDB_PERIODIC;
		lo.sync_ms = 3600000;
		lo.map_size = 1 << 20;
		assert_int_equal(jobq_backend_lmdb_new(&f->b, f->dir, &lo), 0);
#endif
	}
	jobq_store_options so = JOBQ_STORE_OPTIONS_INIT;
	so.clock = f->clock;
	assert_int_equal(jobq_store_open_backend(&f->s, f->b, &so), 0);
}

static void
fixture_setup(fixture *f, const char *backend) {
	memset(f, 0, sizeof(*f));
	f->backend = backend;
	assert_int_equal(jobq_clock_manual_new(&f->clock, T0), 0);
	fixture_open_store(f);
	assert_int_equal(jobq_queue_open(&f->q, f->s, "q"), 0);
	assert_int_equal(jobq_queue_open(&f->p, f->s, "p"), 0);

	/* completed, with a result */
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.remove_on_complete = (jobq_keep){JOBQ_KEEP_LIMIT, 10, -1};
	o.job_id = "done-1";
	add_job(f->id_completed, f->q, "done", "{\"n\":1}", &o);
	jobq_job *j = fetch_job(f->q);
	assert_int_equal(jobq_job_update_progress(j, "{\"pct\":100}"), 0);
	assert_int_equal(jobq_job_complete(j, "{\"ok\":true}"), 0);
	jobq_job_free(j);
	jobq_clock_advance(f->clock, 10);

	/* failed for good */
	o = (jobq_job_options)JOBQ_JOB_OPTIONS_INIT;
	o.attempts = 1;
	add_job(f->id_failed, f->q, "bad", "{\"n\":2}", &o);
	j = fetch_job(f->q);
	assert_int_equal(jobq_job_log(j, "about to fail"), 1);
	assert_int_equal(jobq_job_fail(j, "boom", 0), JOBQ_STATE_FAILED);
	jobq_job_free(j);
	jobq_clock_advance(f->clock, 10);

	/* failed once, delayed by its backoff */
	o = (jobq_job_options)JOBQ_JOB_OPTIONS_INIT;
	o.attempts = 3;
	o.backoff = (jobq_backoff){JOBQ_BACKOFF_FIXED, 5000, 0, 0, NULL};
	add_job(f->id_retrying, f->q, "retry", "{\"n\":3}", &o);
	j = fetch_job(f->q);
	assert_int_equal(jobq_job_fail(j, "again", 0), JOBQ_STATE_DELAYED);
	jobq_job_free(j);
	jobq_clock_advance(f->clock, 10);

	/* active, locked, owner of a keepLastIfActive dedup id with an add stashed (its finish
	 * makes the stash a job) */
	o = (jobq_job_options)JOBQ_JOB_OPTIONS_INIT;
	o.attempts = 2;
	o.job_id = "act";
	o.dedup_id = "ka";
	o.dedup_keep_last = 1;
	add_job(NULL, f->q, "act", "{\"n\":4}", &o);
	f->active = fetch_job(f->q);
	assert_int_equal(jobq_job_log(f->active, "working"), 1);
	o.job_id = NULL;
	jobq_job_id stashed;
	assert_int_equal(jobq_queue_add(&stashed, f->q, "next", "{\"n\":40}", 8, &o),
	                 JOBQ_ADD_DEDUPLICATED);

	/* waiting, with logs and progress; prioritized; delayed */
	o = (jobq_job_options)JOBQ_JOB_OPTIONS_INIT;
	o.keep_logs = 5;
	o.dedup_id = "dd";
	add_job(f->id_waiting, f->q, "wait", "{\"n\":5}", &o);
	assert_int_equal(jobq_queue_add_log(f->q, f->id_waiting, "line one"), 1);
	assert_int_equal(jobq_queue_add_log(f->q, f->id_waiting, "line two"), 2);
	assert_int_equal(jobq_queue_update_progress(f->q, f->id_waiting, "7"), 0);
	add_job(NULL, f->q, "wait2", "{\"n\":6}", NULL);
	o = (jobq_job_options)JOBQ_JOB_OPTIONS_INIT;
	o.priority = 5;
	add_job(f->id_prio, f->q, "prio", "{\"n\":7}", &o);
	o = (jobq_job_options)JOBQ_JOB_OPTIONS_INIT;
	o.delay_ms = 60000;
	add_job(f->id_delayed, f->q, "later", "{\"n\":8}", &o);

	/* the paused queue, with two job schedulers: every 1000 ms from T0 + 60 s (its iteration
	 * delayed), a cron pattern in a zone with a limit (its iteration delayed too) */
	add_job(NULL, f->p, "held", "{\"n\":9}", NULL);
	assert_int_equal(jobq_queue_pause(f->p), 0);
	jobq_scheduler_spec sp;
	jobq_job_id it;
	assert_int_equal(jobq_scheduler_spec_init(&sp, JOBQ_SCHEDULER_SPEC_VERSION), 0);
	sp.every_ms = 1000;
	sp.start_ms = T0 + 60000;
	sp.name = "tick";
	sp.data = "{\"s\":1}";
	o = (jobq_job_options)JOBQ_JOB_OPTIONS_INIT;
	o.attempts = 2;
	sp.opts = &o;
	assert_int_equal(jobq_queue_upsert_scheduler(&it, f->p, "tick", &sp), 0);
	assert_int_equal(jobq_scheduler_spec_init(&sp, JOBQ_SCHEDULER_SPEC_VERSION), 0);
	sp.pattern = "*/10 * * * * *";
	sp.tz = "Europe/Paris";
	sp.limit = 5;
	assert_int_equal(jobq_queue_upsert_scheduler(&it, f->p, "cron", &sp), 0);
}

/* Removes `dir` and what it holds (files, and directories of files). */
static void
remove_dir(const char *dir) {
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		struct stat st;
		assert_int_equal(lstat(path, &st), 0);
		if (S_ISDIR(st.st_mode))
			remove_dir(path);
		else
			assert_int_equal(unlink(path), 0);
	}
	closedir(d);
	assert_int_equal(rmdir(dir), 0);
}

static void
fixture_teardown(fixture *f) {
	disarm();
	jobq_job_free(f->active);
	jobq_queue_close(f->q);
	jobq_queue_close(f->p);
	jobq_store_close(f->s);
	jobq_clock_free(f->clock);
	if (f->dir[0] != '\0')
		remove_dir(f->dir);
	memset(f, 0, sizeof(*f));
}

/* The API's view (comparable across fixtures) and the raw view (within one fixture). */
static void
snapshot(jobq_test_buf *api, jobq_test_buf *raw, fixture *f, int events) {
	disarm();
	jobq_test_dump_queue(api, f->q, events);
	jobq_test_dump_queue(api, f->p, events);
	if (raw != NULL && strcmp(f->backend, "lmdb") == 0)
		jobq_test_dump_lmdb(raw, f->b);
}

/* --- the calls ------------------------------------------------------------------------------ */

/* A call runs on a fixture and writes what it returned (besides its code) to `res`. */
typedef int (*call_fn)(fixture *f, jobq_test_buf *res);

static void
render_list(jobq_test_buf *res, jobq_job_list *l) {
	jobq_test_buf_printf(res, "%zu jobs\n", l->count);
	for (size_t i = 0; i < l->count; i++)
		jobq_test_dump_job(res, l->jobs[i]);
}

static void
render_strings(jobq_test_buf *res, const jobq_strings *s) {
	if (s == NULL) {
		jobq_test_buf_printf(res, "(null)\n");
		return;
	}
	for (size_t i = 0; i < s->count; i++)
		jobq_test_buf_printf(res, "%s\n", s->items[i]);
}

static int
c_store_open_memory_named(fixture *f, jobq_test_buf *res) {
	(void)f;
	(void)res;
	jobq_store *s = NULL;
	int rc = jobq_store_open(&s, "mem://allocfail", NULL);
	if (rc < 0)
		return rc;
	jobq_queue *q = NULL;
	rc = jobq_queue_open(&q, s, "q");
	jobq_queue_close(q);
	jobq_store_close(s);
	return rc;
}

static int
c_store_open_url(fixture *f, jobq_test_buf *res) {
	(void)res;
	char url[160];
	if (strcmp(f->backend, "memory") == 0)
		snprintf(url, sizeof(url), "mem://");
	else /* the fixture's own directory: the environment is shared */
		snprintf(url, sizeof(url), "lmdb://%s?durability=periodic&sync_ms=3600000", f->dir);
	jobq_store *s = NULL;
	jobq_store_options so = JOBQ_STORE_OPTIONS_INIT;
	so.clock = f->clock;
	int rc = jobq_store_open(&s, url, &so);
	if (rc < 0)
		return rc;
	jobq_queue *q = NULL;
	rc = jobq_queue_open(&q, s, "q");
	if (rc >= 0) {
		jobq_counts c;
		rc = jobq_queue_counts(&c, q);
		if (rc >= 0)
			jobq_test_buf_printf(res, "waiting %llu\n", (unsigned long long)c.waiting);
	}
	jobq_queue_close(q);
	jobq_store_close(s);
	return rc;
}

/* A store in a new directory (LMDB: a new environment; memory: a private instance). */
static int
c_store_open_fresh(fixture *f, jobq_test_buf *res) {
	(void)res;
	char url[160];
	static int round;
	if (strcmp(f->backend, "memory") == 0)
		snprintf(url, sizeof(url), "mem://");
	else
		snprintf(url, sizeof(url), "lmdb://%s/fresh%d?durability=periodic&sync_ms=3600000",
		         f->dir, ++round);
	jobq_store *s = NULL;
	int rc = jobq_store_open(&s, url, NULL);
	if (rc < 0)
		return rc;
	jobq_queue *q = NULL;
	rc = jobq_queue_open(&q, s, "q");
	jobq_queue_close(q);
	jobq_store_close(s);
	return rc;
}

static int
c_queue_open_new(fixture *f, jobq_test_buf *res) {
	(void)res;
	jobq_queue *q = NULL;
	int rc = jobq_queue_open(&q, f->s, "fresh");
	jobq_queue_close(q);
	return rc;
}

static int
c_queue_open_existing(fixture *f, jobq_test_buf *res) {
	jobq_queue *q = NULL;
	int rc = jobq_queue_open(&q, f->s, "q");
	if (rc >= 0) {
		int paused = -1;
		rc = jobq_queue_is_paused(&paused, q);
		jobq_test_buf_printf(res, "paused %d\n", paused);
	}
	jobq_queue_close(q);
	return rc;
}

static int
c_clock_manual(fixture *f, jobq_test_buf *res) {
	(void)f;
	jobq_clock *c = NULL;
	int rc = jobq_clock_manual_new(&c, 5);
	if (rc < 0)
		return rc;
	rc = jobq_clock_advance(c, 7);
	jobq_test_buf_printf(res, "now %lld\n", (long long)jobq_clock_now(c));
	jobq_clock_free(c);
	return rc;
}

static int
c_add_plain(fixture *f, jobq_test_buf *res) {
	jobq_job_id id;
	int rc = jobq_queue_add(&id, f->q, "new", "{\"x\":1}", 7, NULL);
	if (rc >= 0)
		jobq_test_buf_printf(res, "%s %d\n", id.str, rc);
	return rc;
}

static int
c_add_options(fixture *f, jobq_test_buf *res) {
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.job_id = "custom-1";
	o.priority = 3;
	o.attempts = 4;
	o.backoff = (jobq_backoff){JOBQ_BACKOFF_CUSTOM, 100, 0.5, 1000, "mine"};
	o.remove_on_fail = (jobq_keep){JOBQ_KEEP_LIMIT, 3, 60000};
	o.keep_logs = 2;
	o.dedup_id = "d2";
	o.dedup_ttl_ms = 5000;
	jobq_job_id id;
	int rc = jobq_queue_add(&id, f->q, "opts", "{\"x\":2}", 7, &o);
	if (rc >= 0)
		jobq_test_buf_printf(res, "%s %d\n", id.str, rc);
	return rc;
}

static int
c_add_delayed(fixture *f, jobq_test_buf *res) {
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.delay_ms = 1000;
	o.lifo = 1;
	jobq_job_id id;
	int rc = jobq_queue_add(&id, f->q, "later", "{}", 2, &o);
	if (rc >= 0)
		jobq_test_buf_printf(res, "%s %d\n", id.str, rc);
	return rc;
}

static int
c_add_duplicate(fixture *f, jobq_test_buf *res) {
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.job_id = "act";
	jobq_job_id id;
	int rc = jobq_queue_add(&id, f->q, "again", "{}", 2, &o);
	if (rc >= 0)
		jobq_test_buf_printf(res, "%s %d\n", id.str, rc);
	return rc;
}

static int
c_add_deduplicated(fixture *f, jobq_test_buf *res) {
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.dedup_id = "dd";
	jobq_job_id id;
	int rc = jobq_queue_add(&id, f->q, "again", "{}", 2, &o);
	if (rc >= 0)
		jobq_test_buf_printf(res, "%s %d\n", id.str, rc);
	return rc;
}

/* Two adds stashed with the active job's keepLastIfActive key in turn (the second replaces
 * the first, and the fixture's), then a job owning a new key. */
static int
c_add_keep_last(fixture *f, jobq_test_buf *res) {
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT, o2 = JOBQ_JOB_OPTIONS_INIT;
	o.dedup_id = "ka";
	o.dedup_keep_last = 1;
	o2.dedup_id = "kb";
	o2.dedup_keep_last = 1;
	jobq_job_spec specs[3] = {
	    {"s1", "{\"i\":1}", 7, &o}, {"s2", "{\"i\":2}", 7, &o}, {"own", "{\"i\":3}", 7, &o2}};
	jobq_job_id ids[3];
	int outcomes[3];
	int rc = jobq_queue_add_bulk(ids, outcomes, f->q, specs, 3);
	if (rc >= 0)
		for (int i = 0; i < 3; i++)
			jobq_test_buf_printf(res, "%s %d\n", ids[i].str, outcomes[i]);
	return rc;
}

static int
c_add_bulk(fixture *f, jobq_test_buf *res) {
	jobq_job_options o1 = JOBQ_JOB_OPTIONS_INIT, o2 = JOBQ_JOB_OPTIONS_INIT;
	o1.priority = 2;
	o2.job_id = "bulk-2";
	o2.delay_ms = 500;
	jobq_job_spec specs[4] = {{"b", "{\"i\":0}", 7, &o1},
	                          {"b", "{\"i\":1}", 7, &o1},
	                          {"c", "{\"i\":2}", 7, &o2},
	                          {"d", "{\"i\":3}", 7, NULL}};
	jobq_job_id ids[4];
	int outcomes[4];
	int rc = jobq_queue_add_bulk(ids, outcomes, f->q, specs, 4);
	if (rc >= 0)
		for (int i = 0; i < 4; i++)
			jobq_test_buf_printf(res, "%s %d\n", ids[i].str, outcomes[i]);
	return rc;
}

static int
c_add_bulk_duplicate(fixture *f, jobq_test_buf *res) {
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.job_id = "act";
	jobq_job_spec specs[2] = {{"x", "{}", 2, NULL}, {"y", "{}", 2, &o}};
	jobq_job_id ids[2];
	int rc = jobq_queue_add_bulk(ids, NULL, f->q, specs, 2);
	if (rc >= 0)
		jobq_test_buf_printf(res, "%s %s\n", ids[0].str, ids[1].str);
	return rc;
}

typedef struct async_done {
	atomic_int calls, rc;
	char id[JOBQ_ID_MAX + 1];
} async_done;

static void
on_async_done(void *ctx, int rc, const char *id, int outcome) {
	async_done *d = ctx;
	(void)outcome;
	if (id != NULL)
		snprintf(d->id, sizeof(d->id), "%s", id);
	atomic_store(&d->rc, rc);
	atomic_fetch_add(&d->calls, 1);
}

/* On a handle of its own: the sender thread of a queue handle lives until the handle closes. */
static int
c_add_async(fixture *f, jobq_test_buf *res) {
	jobq_queue *q = NULL;
	int rc = jobq_queue_open(&q, f->s, "q");
	if (rc < 0)
		return rc;
	async_done d = {0};
	rc = jobq_queue_add_async(q, "async", "{\"a\":1}", 7, NULL, on_async_done, &d);
	if (rc < 0) {
		jobq_queue_close(q);
		return rc;
	}
	rc = jobq_queue_flush(q, 10000);
	jobq_queue_close(q);
	if (atomic_load(&d.calls) != 1)
		fail_msg("add_async: done ran %d times after the flush", atomic_load(&d.calls));
	if (atomic_load(&d.rc) != rc)
		fail_msg("add_async: done saw %d, flush returned %d", atomic_load(&d.rc), rc);
	if (rc >= 0)
		jobq_test_buf_printf(res, "%s\n", d.id);
	return rc;
}

static int
c_get_job(fixture *f, jobq_test_buf *res) {
	jobq_job *j = NULL;
	int rc = jobq_queue_get_job(&j, f->q, f->id_waiting);
	if (rc >= 0)
		jobq_test_dump_job(res, j);
	jobq_job_free(j);
	return rc;
}

static int
c_get_job_missing(fixture *f, jobq_test_buf *res) {
	(void)res;
	jobq_job *j = NULL;
	int rc = jobq_queue_get_job(&j, f->q, "nope");
	jobq_job_free(j);
	return rc;
}

static int
c_get_state(fixture *f, jobq_test_buf *res) {
	jobq_state st = JOBQ_STATE_UNKNOWN;
	int rc = jobq_queue_get_state(&st, f->q, f->id_failed);
	jobq_test_buf_printf(res, "%s\n", jobq_state_name(st));
	return rc;
}

static int
list_state(fixture *f, jobq_test_buf *res, jobq_state st) {
	jobq_job_list *l = NULL;
	int rc = jobq_queue_list(&l, f->q, st, 0, 100);
	if (rc >= 0)
		render_list(res, l);
	jobq_job_list_free(l);
	return rc;
}

static int
c_list_waiting(fixture *f, jobq_test_buf *res) {
	return list_state(f, res, JOBQ_STATE_WAITING);
}

static int
c_list_active(fixture *f, jobq_test_buf *res) {
	return list_state(f, res, JOBQ_STATE_ACTIVE);
}

static int
c_list_completed(fixture *f, jobq_test_buf *res) {
	return list_state(f, res, JOBQ_STATE_COMPLETED);
}

static int
c_list_failed(fixture *f, jobq_test_buf *res) {
	return list_state(f, res, JOBQ_STATE_FAILED);
}

static int
c_list_delayed(fixture *f, jobq_test_buf *res) {
	return list_state(f, res, JOBQ_STATE_DELAYED);
}

static int
c_list_prioritized(fixture *f, jobq_test_buf *res) {
	return list_state(f, res, JOBQ_STATE_PRIORITIZED);
}

static int
c_counts(fixture *f, jobq_test_buf *res) {
	jobq_counts c;
	int rc = jobq_queue_counts(&c, f->q);
	if (rc >= 0)
		jobq_test_buf_printf(res, "%llu %llu %llu %llu %llu %llu\n",
		                     (unsigned long long)c.waiting, (unsigned long long)c.active,
		                     (unsigned long long)c.delayed,
		                     (unsigned long long)c.prioritized,
		                     (unsigned long long)c.completed, (unsigned long long)c.failed);
	return rc;
}

static int
c_is_paused(fixture *f, jobq_test_buf *res) {
	int paused = -1;
	int rc = jobq_queue_is_paused(&paused, f->p);
	jobq_test_buf_printf(res, "%d\n", paused);
	return rc;
}

static int
c_get_logs(fixture *f, jobq_test_buf *res) {
	jobq_strings *logs = NULL;
	int rc = jobq_queue_get_logs(&logs, f->q, f->id_waiting, 0, 0);
	if (rc >= 0)
		render_strings(res, logs);
	jobq_strings_free(logs);
	return rc;
}

static int
c_pause(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_pause(f->q);
}

static int
c_resume(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_resume(f->p);
}

static int
c_drain(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_drain(f->q, 0);
}

static int
c_drain_delayed(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_drain(f->q, 1);
}

static int
clean_state(fixture *f, jobq_test_buf *res, jobq_state st, size_t limit) {
	jobq_strings *removed = NULL;
	int rc = jobq_queue_clean(&removed, f->q, st, 0, limit);
	if (rc >= 0) {
		jobq_test_buf_printf(res, "rc %d\n", rc);
		render_strings(res, removed);
	}
	jobq_strings_free(removed);
	return rc;
}

static int
c_clean_completed(fixture *f, jobq_test_buf *res) {
	return clean_state(f, res, JOBQ_STATE_COMPLETED, 0);
}

static int
c_clean_failed(fixture *f, jobq_test_buf *res) {
	return clean_state(f, res, JOBQ_STATE_FAILED, 0);
}

static int
c_clean_waiting(fixture *f, jobq_test_buf *res) {
	return clean_state(f, res, JOBQ_STATE_WAITING, 1);
}

static int
c_clean_delayed(fixture *f, jobq_test_buf *res) {
	return clean_state(f, res, JOBQ_STATE_DELAYED, 0);
}

static int
c_clean_no_list(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_clean(NULL, f->q, JOBQ_STATE_COMPLETED, 0, 0);
}

static int
c_obliterate(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_obliterate(f->q, 1);
}

static int
c_obliterate_refused(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_obliterate(f->q, 0);
}

static int
c_obliterate_paused(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_obliterate(f->p, 0);
}

static int
c_promote_one(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_promote(f->q, f->id_delayed);
}

static int
c_promote_all(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_promote(f->q, NULL);
}

static int
c_retry_one(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_retry(f->q, f->id_failed);
}

static int
c_retry_all(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_retry(f->q, NULL);
}

static int
c_remove_waiting(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_remove(f->q, f->id_waiting);
}

static int
c_remove_completed(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_remove(f->q, f->id_completed);
}

static int
c_remove_active(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_remove(f->q, "act");
}

static int
c_remove_missing(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_remove(f->q, "nope");
}

static int
c_progress(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_update_progress(f->q, f->id_prio, "{\"step\":2}");
}

static int
c_job_progress(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_job_update_progress(f->active, "42");
}

static int
c_add_log(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_add_log(f->q, f->id_waiting, "line three");
}

static int
c_job_log(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_job_log(f->active, "still working");
}

static int
c_fetch(fixture *f, jobq_test_buf *res) {
	jobq_job *j = NULL;
	int rc = jobq_queue_fetch(&j, f->q, 30000);
	if (rc >= 0)
		jobq_test_dump_job(res, j);
	jobq_job_free(j);
	return rc;
}

static int
c_fetch_promotes(fixture *f, jobq_test_buf *res) {
	/* with the locks expired the retrying job is due: the fetch promotes it, then takes the
	 * head of waiting */
	return c_fetch(f, res);
}

static int
c_fetch_stalled(fixture *f, jobq_test_buf *res) {
	/* after the stalled check with max 0 the active job is back at the front of waiting
	 * past its stall limit: the fetch fails it, then takes the next job */
	return c_fetch(f, res);
}

static int
c_fetch_paused(fixture *f, jobq_test_buf *res) {
	(void)res;
	jobq_job *j = NULL;
	int rc = jobq_queue_fetch(&j, f->p, 30000);
	jobq_job_free(j);
	return rc;
}

static int
c_complete(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_complete(f->q, "act", jobq_job_token(f->active), "{\"r\":[1,2]}");
}

static int
c_complete_wrong_token(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_complete(f->q, "act", "not-the-token", "1");
}

static int
c_job_complete(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_job_complete(f->active, NULL);
}

static int
c_fail_retry(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_fail(f->q, "act", jobq_job_token(f->active), "oops", 0);
}

static int
c_fail_final(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_job_fail(f->active, "fatal", JOBQ_FAIL_UNRECOVERABLE);
}

static int
c_fail_wrong_token(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_fail(f->q, "act", "not-the-token", "oops", 0);
}

static int
c_extend_lock(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_extend_lock(f->q, "act", jobq_job_token(f->active), 60000);
}

static int
c_job_extend_lock(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_job_extend_lock(f->active, 60000);
}

static int
c_check_stalled(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_check_stalled(f->q, 1);
}

static int
c_check_stalled_fail(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_check_stalled(f->q, 0);
}

static int
read_events(fixture *f, jobq_test_buf *res, const char *after) {
	jobq_event_list *l = NULL;
	int rc = jobq_events_read(&l, f->q, after, 0, 0);
	if (rc >= 0) {
		for (size_t i = 0; i < jobq_event_list_count(l); i++)
			jobq_test_dump_event(res, jobq_event_list_at(l, i));
		jobq_test_buf_printf(res, "cursor %s\n",
		                     jobq_event_list_cursor(l) ? jobq_event_list_cursor(l) : "-");
	}
	jobq_event_list_free(l);
	return rc;
}

static int
c_events_start(fixture *f, jobq_test_buf *res) {
	return read_events(f, res, JOBQ_EVENTS_START);
}

static int
c_events_now(fixture *f, jobq_test_buf *res) {
	return read_events(f, res, JOBQ_EVENTS_NOW);
}

static int
c_events_after_last(fixture *f, jobq_test_buf *res) {
	/* the cursor of the newest event: an empty list with that cursor */
	jobq_event_list *l = NULL;
	long armed = atomic_exchange(&fail_at, 0); /* this read is not the call under test */
	assert_int_equal(jobq_events_read(&l, f->q, JOBQ_EVENTS_START, 0, 0), 0);
	char cursor[64];
	snprintf(cursor, sizeof(cursor), "%s", jobq_event_list_cursor(l));
	jobq_event_list_free(l);
	atomic_store(&fail_at, armed);
	return read_events(f, res, cursor);
}

typedef struct sub_seen {
	atomic_int count;
	int want; /* the callback stops the subscription at this many events */
	jobq_test_buf seen;
} sub_seen;

static int
on_event(const jobq_event *e, void *payload) {
	sub_seen *s = payload;
	jobq_test_dump_event(&s->seen, e);
	return atomic_fetch_add(&s->count, 1) + 1 >= s->want;
}

static int
c_subscribe(fixture *f, jobq_test_buf *res) {
	/* every event of the log, then the callback stops the subscription */
	jobq_event_list *l = NULL;
	long armed = atomic_exchange(&fail_at, 0); /* counting the events is not under test */
	assert_int_equal(jobq_events_read(&l, f->q, JOBQ_EVENTS_START, 0, 0), 0);
	sub_seen seen = {.want = (int)jobq_event_list_count(l)};
	jobq_event_list_free(l);
	atomic_store(&fail_at, armed);
	jobq_subscription *sub = NULL;
	int rc = jobq_events_subscribe(&sub, f->q, JOBQ_EVENTS_START, on_event, &seen);
	if (rc < 0)
		return rc;
	for (int i = 0; i < 10000 && atomic_load(&seen.count) < seen.want; i++) {
		struct timespec ts = {0, 1000000L};
		nanosleep(&ts, NULL);
	}
	jobq_events_unsubscribe(sub);
	jobq_test_buf_printf(res, "%s", jobq_test_buf_str(&seen.seen));
	jobq_test_buf_free(&seen.seen);
	return 0;
}

static int
c_subscribe_now(fixture *f, jobq_test_buf *res) {
	(void)res;
	sub_seen seen = {.want = 1};
	jobq_subscription *sub = NULL;
	int rc = jobq_events_subscribe(&sub, f->q, JOBQ_EVENTS_NOW, on_event, &seen);
	if (rc < 0)
		return rc;
	jobq_events_unsubscribe(sub);
	jobq_test_buf_free(&seen.seen);
	return 0;
}

static int
c_request_finished(fixture *f, jobq_test_buf *res) {
	/* a custom id of a completed job: the add finds it, the wait returns it at once */
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.job_id = f->id_completed;
	jobq_job *j = NULL;
	int rc = jobq_queue_request(&j, f->q, "done", "{}", 2, &o, 5000);
	if (rc >= 0)
		jobq_test_dump_job(res, j);
	jobq_job_free(j);
	return rc;
}

static int
c_wait_job_finished(fixture *f, jobq_test_buf *res) {
	jobq_job *j = NULL;
	int rc = jobq_queue_wait_job(&j, f->q, f->id_failed, 5000);
	if (j != NULL)
		jobq_test_dump_job(res, j);
	jobq_job_free(j);
	return rc;
}

static int
process_ok(jobq_job *job, void *payload) {
	(void)payload;
	return jobq_job_set_result(job, "1", 1);
}

static int
c_worker(fixture *f, jobq_test_buf *res) {
	(void)res;
	/* on the paused queue: the worker starts, finds nothing to do, and closes */
	jobq_worker_options wo = JOBQ_WORKER_OPTIONS_INIT;
	wo.concurrency = 2;
	jobq_worker *w = NULL;
	int rc = jobq_worker_new(&w, f->p, process_ok, NULL, &wo);
	if (rc < 0)
		return rc;
	if ((rc = jobq_worker_on(w, "held", process_ok, NULL)) >= 0)
		rc = jobq_worker_start(w);
	jobq_worker_free(w);
	return rc;
}

static int
process_plain(jobq_job *job, void *payload) {
	(void)job;
	(void)payload;
	return 0;
}

static int
c_worker_process(fixture *f, jobq_test_buf *res) {
	/* a worker completes the three ready jobs of q (10 s at most) */
	jobq_worker_options wo = JOBQ_WORKER_OPTIONS_INIT;
	jobq_worker *w = NULL;
	int rc = jobq_worker_new(&w, f->q, process_plain, NULL, &wo);
	if (rc < 0)
		return rc;
	if ((rc = jobq_worker_start(w)) < 0) {
		jobq_worker_free(w);
		return rc;
	}
	jobq_counts c = {0};
	for (int i = 0; i < 10000; i++) {
		if ((rc = jobq_queue_counts(&c, f->q)) < 0 || c.completed == 4)
			break;
		struct timespec ts = {0, 1000000L};
		nanosleep(&ts, NULL);
	}
	/* closed first: the store records a completion before the worker counts it */
	(void)jobq_worker_close(w, -1);
	jobq_worker_stats st;
	jobq_worker_get_stats(&st, w);
	jobq_worker_free(w);
	if (rc >= 0 && c.completed != 4)
		rc =
		    jobq_error_set(JOBQ_ETIMEDOUT, "worker: %llu completed, %llu attempts failed",
		                   (unsigned long long)st.completed, (unsigned long long)st.failed);
	jobq_test_buf_printf(res, "completed %llu\n", (unsigned long long)st.completed);
	return rc;
}

static int
c_add_bulk_invalid(fixture *f, jobq_test_buf *res) {
	(void)res;
	jobq_job_options bad = JOBQ_JOB_OPTIONS_INIT;
	bad.priority = JOBQ_PRIORITY_MAX + 1;
	jobq_job_spec specs[2] = {{"x", "{}", 2, NULL}, {"y", "{}", 2, &bad}};
	jobq_job_id ids[2];
	return jobq_queue_add_bulk(ids, NULL, f->q, specs, 2);
}

static int
c_wait_job_timeout(fixture *f, jobq_test_buf *res) {
	(void)res;
	jobq_job *j = NULL;
	int rc = jobq_queue_wait_job(&j, f->q, f->id_waiting, 0);
	jobq_job_free(j);
	return rc;
}

/* --- the injection loop --------------------------------------------------------------------- */

/* --- job schedulers (on the paused queue, which holds two) --- */

/* A scheduler spec with the defaults (spec_init allocates nothing). */
static jobq_scheduler_spec
spec_new(void) {
	jobq_scheduler_spec sp;
	(void)jobq_scheduler_spec_init(&sp, JOBQ_SCHEDULER_SPEC_VERSION);
	return sp;
}

/* Upserts scheduler `sid` of the paused queue; the iteration's id to `res`. */
static int
upsert_p(fixture *f, jobq_test_buf *res, const char *sid, const jobq_scheduler_spec *sp) {
	jobq_job_id it;
	int rc = jobq_queue_upsert_scheduler(&it, f->p, sid, sp);
	if (rc >= 0)
		jobq_test_buf_printf(res, "%s %d\n", it.str, rc);
	return rc;
}

/* A new scheduler: a pattern in a zone, a template with a custom backoff and keep policies. */
static int
c_sched_upsert_new(fixture *f, jobq_test_buf *res) {
	jobq_scheduler_spec sp = spec_new();
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.attempts = 3;
	o.backoff = (jobq_backoff){JOBQ_BACKOFF_CUSTOM, 100, 0.5, 1000, "mine"};
	o.remove_on_complete = (jobq_keep){JOBQ_KEEP_LIMIT, 3, 60000};
	sp.pattern = "0 30 2 * * 1-5";
	sp.tz = "America/New_York";
	sp.end_ms = T0 + 86400000LL * 30;
	sp.name = "nightly";
	sp.data = "{\"r\":[1,2]}";
	sp.opts = &o;
	return upsert_p(f, res, "nightly", &sp);
}

/* An update of the every scheduler: its delayed iteration is replaced. */
static int
c_sched_upsert_update(fixture *f, jobq_test_buf *res) {
	jobq_scheduler_spec sp = spec_new();
	sp.every_ms = 5000;
	sp.offset_ms = 200;
	sp.name = "tock";
	sp.data = "{\"s\":2}";
	return upsert_p(f, res, "tick", &sp);
}

/* The every scheduler becomes a pattern scheduler that starts at once. */
static int
c_sched_upsert_to_pattern(fixture *f, jobq_test_buf *res) {
	jobq_scheduler_spec sp = spec_new();
	sp.pattern = "15 * * * *";
	sp.tz = "Asia/Kolkata";
	sp.limit = 3;
	sp.immediately = 1;
	return upsert_p(f, res, "tick", &sp);
}

static int
c_sched_get(fixture *f, jobq_test_buf *res) {
	jobq_scheduler *s = NULL;
	int rc = jobq_queue_get_scheduler(&s, f->p, "cron");
	if (rc >= 0)
		jobq_test_dump_scheduler(res, s);
	jobq_scheduler_free(s);
	return rc;
}

static int
c_sched_list(fixture *f, jobq_test_buf *res) {
	jobq_scheduler_list *l = NULL;
	int rc = jobq_queue_list_schedulers(&l, f->p);
	for (size_t i = 0; rc >= 0 && i < l->count; i++)
		jobq_test_dump_scheduler(res, &l->items[i]);
	jobq_scheduler_list_free(l);
	return rc;
}

static int
c_sched_remove(fixture *f, jobq_test_buf *res) {
	(void)res;
	return jobq_queue_remove_scheduler(f->p, "tick");
}

typedef struct call_case {
	const char *name;
	call_fn fn;
	/* 1: run with the active job's lock expired; 2: and after a stalled check with max 0,
	 * which leaves that job waiting, marked to fail at its next fetch */
	int stale_locks;
	/* add, then wait (jobq_queue_request): a failure in the wait leaves the add done, so
	 * JOBQ_ENOMEM may leave the store as before or as after the call */
	int two_steps;
	/* threads of the library run the call (a worker): the order of their events may differ
	 * from the reference run's, so the store is compared to it without the events log */
	int threaded;
} call_case;

#define CASE(fn)                                                                                   \
	{ #fn + 2, fn, 0, 0, 0 }

static const call_case cases[] = {
    CASE(c_store_open_memory_named),
    CASE(c_store_open_url),
    CASE(c_store_open_fresh),
    CASE(c_queue_open_new),
    CASE(c_queue_open_existing),
    CASE(c_clock_manual),
    CASE(c_add_plain),
    CASE(c_add_options),
    CASE(c_add_delayed),
    CASE(c_add_duplicate),
    CASE(c_add_deduplicated),
    CASE(c_add_keep_last),
    CASE(c_add_bulk),
    CASE(c_add_bulk_duplicate),
    CASE(c_add_async),
    CASE(c_get_job),
    CASE(c_get_job_missing),
    CASE(c_get_state),
    CASE(c_list_waiting),
    CASE(c_list_prioritized),
    CASE(c_list_delayed),
    CASE(c_list_active),
    CASE(c_list_completed),
    CASE(c_list_failed),
    CASE(c_counts),
    CASE(c_is_paused),
    CASE(c_get_logs),
    CASE(c_pause),
    CASE(c_resume),
    CASE(c_drain),
    CASE(c_drain_delayed),
    CASE(c_clean_completed),
    CASE(c_clean_failed),
    CASE(c_clean_waiting),
    CASE(c_clean_delayed),
    CASE(c_clean_no_list),
    CASE(c_obliterate),
    CASE(c_obliterate_refused),
    CASE(c_obliterate_paused),
    CASE(c_promote_one),
    CASE(c_promote_all),
    CASE(c_retry_one),
    CASE(c_retry_all),
    CASE(c_remove_waiting),
    CASE(c_remove_completed),
    CASE(c_remove_active),
    CASE(c_remove_missing),
    CASE(c_progress),
    CASE(c_job_progress),
    CASE(c_add_log),
    CASE(c_job_log),
    CASE(c_fetch),
    {"fetch_promotes", c_fetch_promotes, 1, 0, 0},
    {"fetch_stalled", c_fetch_stalled, 2, 0, 0},
    CASE(c_fetch_paused),
    CASE(c_complete),
    CASE(c_complete_wrong_token),
    CASE(c_job_complete),
    CASE(c_fail_retry),
    CASE(c_fail_final),
    CASE(c_fail_wrong_token),
    CASE(c_extend_lock),
    CASE(c_job_extend_lock),
    {"check_stalled", c_check_stalled, 1, 0, 0},
    {"check_stalled_fail", c_check_stalled_fail, 1, 0, 0},
    CASE(c_events_start),
    CASE(c_events_now),
    CASE(c_events_after_last),
    CASE(c_subscribe),
    CASE(c_subscribe_now),
    {"request_finished", c_request_finished, 0, 1, 0},
    CASE(c_wait_job_finished),
    CASE(c_worker),
    {"worker_process", c_worker_process, 0, 0, 1},
    CASE(c_add_bulk_invalid),
    CASE(c_wait_job_timeout),
    CASE(c_sched_upsert_new),
    CASE(c_sched_upsert_update),
    CASE(c_sched_upsert_to_pattern),
    CASE(c_sched_get),
    CASE(c_sched_list),
    CASE(c_sched_remove),
};

enum { MAX_INJECTIONS = 2000 };

static void
first_diff(const char *what, const char *a, const char *b) {
	size_t i = 0;
	while (a[i] != '\0' && a[i] == b[i])
		i++;
	size_t line = i;
	while (line > 0 && a[line - 1] != '\n')
		line--;
	fprintf(stderr, "  %s differs at byte %zu:\n  before: %.300s\n  after:  %.300s\n", what, i,
	        a + line, b + line);
}

static void
fresh(fixture *f, const char *backend, int stale) {
	fixture_setup(f, backend);
	if (stale)
		assert_int_equal(jobq_clock_advance(f->clock, 31000), 0);
	if (stale == 2)
		assert_int_equal(jobq_queue_check_stalled(f->q, 0), 1);
}

/* Runs one case on `backend`; returns the number of failures found (0: it held). */
static int
run_case(const call_case *c, const char *backend, int *points) {
	fixture f;
	/* The reference: the call without injection, on a fresh fixture. */
	jobq_test_buf ref_res = {0}, ref_api = {0};
	fresh(&f, backend, c->stale_locks);
	arm(0);
	long ref_live = atomic_load(&live_allocs);
	int ref_rc = c->fn(&f, &ref_res);
	/* what the call keeps besides what the snapshot shows (a new queue's handle) */
	long ref_kept = atomic_load(&live_allocs) - ref_live;
	snapshot(&ref_api, NULL, &f, !c->threaded);
	fixture_teardown(&f);
	if (ref_rc < 0 && ref_rc != JOBQ_ENOTFOUND && ref_rc != JOBQ_ESTATE &&
	    ref_rc != JOBQ_ELOCKLOST && ref_rc != JOBQ_ENOJOB && ref_rc != JOBQ_EINVAL &&
	    ref_rc != JOBQ_ETIMEDOUT) {
		fprintf(stderr, "%s/%s: the call without injection returned %s: %s\n", backend,
		        c->name, jobq_error_name(ref_rc), jobq_error_message());
		jobq_test_buf_free(&ref_res);
		jobq_test_buf_free(&ref_api);
		return 1;
	}

	int bad = 0, have = 0;
	jobq_test_buf before_api = {0}, before_raw = {0};
	long n;
	for (n = 1; n <= MAX_INJECTIONS; n++) {
		if (!have) {
			fresh(&f, backend, c->stale_locks);
			jobq_test_buf_free(&before_api);
			jobq_test_buf_free(&before_raw);
			snapshot(&before_api, &before_raw, &f, 1);
			have = 1;
		}
		jobq_test_buf res = {0};
		long live = atomic_load(&live_allocs);
		arm(n);
		int rc = c->fn(&f, &res);
		disarm();
		int injected = atomic_load(&failed) > 0;
		if (rc == JOBQ_ENOMEM && injected) {
			jobq_test_buf api = {0}, raw = {0};
			snapshot(&api, &raw, &f, 1);
			int as_after = c->two_steps && strcmp(jobq_test_buf_str(&api),
			                                      jobq_test_buf_str(&ref_api)) == 0;
			if (as_after) {
				fixture_teardown(&f); /* the add is done: start again */
				have = 0;
			} else if (strcmp(jobq_test_buf_str(&api),
			                  jobq_test_buf_str(&before_api)) != 0 ||
			           strcmp(jobq_test_buf_str(&raw),
			                  jobq_test_buf_str(&before_raw)) != 0) {
				fprintf(stderr,
				        "%s/%s: allocation %ld failed, the call returned "
				        "JOBQ_ENOMEM but changed the store\n",
				        backend, c->name, n);
				if (strcmp(jobq_test_buf_str(&api),
				           jobq_test_buf_str(&before_api)) != 0)
					first_diff("API view", jobq_test_buf_str(&before_api),
					           jobq_test_buf_str(&api));
				else
					first_diff("LMDB dump", jobq_test_buf_str(&before_raw),
					           jobq_test_buf_str(&raw));
				bad++;
				fixture_teardown(&f);
				have = 0;
			}
			/* The snapshot itself allocated and freed; compare after it. */
			long now_live = atomic_load(&live_allocs);
			if (have && now_live != live) {
				fprintf(stderr,
				        "%s/%s: allocation %ld failed: %ld blocks of the library "
				        "left over (leak)\n",
				        backend, c->name, n, now_live - live);
				bad++;
			}
			jobq_test_buf_free(&api);
			jobq_test_buf_free(&raw);
		} else if (rc == ref_rc) {
			jobq_test_buf api = {0};
			snapshot(&api, NULL, &f, !c->threaded);
			if (strcmp(jobq_test_buf_str(&res), jobq_test_buf_str(&ref_res)) != 0) {
				fprintf(stderr,
				        "%s/%s: allocation %ld failed, the call returned %s with "
				        "another result\n",
				        backend, c->name, n, jobq_error_name(rc));
				first_diff("result", jobq_test_buf_str(&ref_res),
				           jobq_test_buf_str(&res));
				bad++;
			}
			if (strcmp(jobq_test_buf_str(&api), jobq_test_buf_str(&ref_api)) != 0) {
				fprintf(stderr,
				        "%s/%s: allocation %ld failed, the call returned %s but "
				        "left another store than without injection\n",
				        backend, c->name, n, jobq_error_name(rc));
				first_diff("API view", jobq_test_buf_str(&ref_api),
				           jobq_test_buf_str(&api));
				bad++;
			}
			/* A call that left the store as it was (a read) keeps the fixture. */
			jobq_test_buf full = {0}, raw = {0};
			snapshot(&full, &raw, &f, 1);
			if (strcmp(jobq_test_buf_str(&full), jobq_test_buf_str(&before_api)) == 0 &&
			    strcmp(jobq_test_buf_str(&raw), jobq_test_buf_str(&before_raw)) == 0) {
				if (atomic_load(&live_allocs) - live != ref_kept) {
					fprintf(stderr,
					        "%s/%s: allocation %ld failed: %ld blocks of the "
					        "library left over (leak)\n",
					        backend, c->name, n,
					        atomic_load(&live_allocs) - live - ref_kept);
					bad++;
				}
			} else {
				fixture_teardown(&f);
				have = 0;
			}
			jobq_test_buf_free(&full);
			jobq_test_buf_free(&raw);
			jobq_test_buf_free(&api);
		} else {
			fprintf(stderr, "%s/%s: allocation %ld %s; the call returned %s: %s\n",
			        backend, c->name, n, injected ? "failed" : "did not fail",
			        jobq_error_name(rc), jobq_error_message());
			bad++;
			fixture_teardown(&f);
			have = 0;
		}
		jobq_test_buf_free(&res);
		if (!injected)
			break;
	}
	if (have)
		fixture_teardown(&f);
	if (n > MAX_INJECTIONS) {
		fprintf(stderr, "%s/%s: still allocating after %d injections\n", backend, c->name,
		        MAX_INJECTIONS);
		bad++;
	}
	*points = (int)n - 1;
	jobq_test_buf_free(&before_api);
	jobq_test_buf_free(&before_raw);
	jobq_test_buf_free(&ref_res);
	jobq_test_buf_free(&ref_api);
	return bad;
}

static void
run_all(const char *backend) {
	const char *only = getenv("JOBQ_TEST_ALLOCFAIL_CASE");
	int bad = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (only != NULL && strcmp(only, cases[i].name) != 0)
			continue;
		int points = 0;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int b = run_case(&cases[i], backend, &points);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		printf("%-8s %-24s %4d injection points %6ld ms%s\n", backend, cases[i].name,
		       points, ms, b ? "  FAILED" : "");
		bad += b;
	}
	fflush(stdout);
	if (bad > 0)
		fail_msg("%d failures on %s (see above)", bad, backend);
}

static void
test_memory(void **state) {
	(void)state;
	run_all("memory");
}

#ifdef JOBQ_HAVE_LMDB
static void
test_lmdb(void **state) {
	(void)state;
	run_all("lmdb");
}
#endif

int
main(void) {
	static const jobq_allocator failing = {NULL, t_malloc, t_realloc, t_free};
	if (jobq_set_allocator(&failing) < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_memory),
#ifdef JOBQ_HAVE_LMDB
	    cmocka_unit_test(test_lmdb),
#endif
	};
	return cmocka_run_group_tests_name("alloc_failure", tests, NULL, NULL);
}
