/*
 * LMDB backend specifics: opening (URLs, options, errors for missing, read-only, corrupt and
 * foreign stores), file modes, persistence across reopen, sharing one environment between two
 * stores of one process, map growth, durability modes and cross-thread wake-ups.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobq.h"
#include "jobq/backends.h"

#include "backends/lmdb/lmdb_internal.h"

typedef struct fixture {
	char dir[256];
	char url[300];
} fixture;

static void
rm_store(const char *dir) {
	static const char *const files[] = {"data.mdb", "lock.mdb", "jobq-wake", "jobq-lock",
	                                    "junk"};
	char path[512];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

static int
setup(void **state) {
	fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/jobq-lmdb-unit-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->url, sizeof(f->url), "lmdb://%s", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state) {
	fixture *f = *state;
	rm_store(f->dir);
	free(f);
	return 0;
}

static jobq_queue *
open_queue(jobq_store **store, const char *url, const char *name) {
	jobq_queue *q = NULL;
	int rc = jobq_store_open(store, url, NULL);
	if (rc < 0) {
		print_error("open %s: %s\n", url, jobq_error_message());
	}
	assert_int_equal(rc, 0);
	assert_int_equal(jobq_queue_open(&q, *store, name), 0);
	return q;
}

/* add, fetch, complete; the job and counts survive closing and reopening the store. */
static void
test_persists_across_reopen(void **state) {
	fixture *f = *state;
	jobq_store *s;
	jobq_queue *q = open_queue(&s, f->url, "q1");
	jobq_job_id id;
	assert_int_equal(jobq_queue_add(&id, q, "email", "{\"a\":1}", 7, NULL), JOBQ_ADD_CREATED);
	assert_string_equal(id.str, "1");
	jobq_job_id id2;
	assert_int_equal(jobq_queue_add(&id2, q, "email", "{}", 2, NULL), JOBQ_ADD_CREATED);
	jobq_job *job = NULL;
	assert_int_equal(jobq_queue_fetch(&job, q, 30000), 0);
	assert_string_equal(jobq_job_id_of(job), "1");
	assert_int_equal(jobq_queue_complete(q, "1", jobq_job_token(job), "42"), 0);
	jobq_job_free(job);
	jobq_queue_close(q);
	jobq_store_close(s);

	q = open_queue(&s, f->url, "q1");
	jobq_counts c;
	assert_int_equal(jobq_queue_counts(&c, q), 0);
	assert_int_equal(c.completed, 1);
	assert_int_equal(c.waiting, 1);
	assert_int_equal(jobq_queue_get_job(&job, q, "1"), 0);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_COMPLETED);
	assert_string_equal(jobq_job_result(job), "42");
	size_t len;
	const char *data = jobq_job_data(job, &len);
	assert_int_equal(len, 7);
	assert_memory_equal(data, "{\"a\":1}", 7);
	jobq_job_free(job);
	/* the id counter survived too */
	assert_int_equal(jobq_queue_add(&id, q, "email", "{}", 2, NULL), JOBQ_ADD_CREATED);
	assert_string_equal(id.str, "3");
	jobq_queue_close(q);
	jobq_store_close(s);
}

/* Two stores on one path in one process share the environment (LMDB forbids two). */
static void
test_two_stores_share_env(void **state) {
	fixture *f = *state;
	jobq_store *s1, *s2;
	jobq_queue *q1 = open_queue(&s1, f->url, "shared");
	char rel[300];
	snprintf(rel, sizeof(rel), "lmdb:%s/../%s", f->dir, strrchr(f->dir, '/') + 1);
	jobq_queue *q2 = open_queue(&s2, rel, "shared");
	jobq_job_id id;
	assert_int_equal(jobq_queue_add(&id, q1, "x", "1", 1, NULL), 0);
	jobq_counts c;
	assert_int_equal(jobq_queue_counts(&c, q2), 0);
	assert_int_equal(c.waiting, 1);
	jobq_queue_close(q1);
	jobq_store_close(s1);
	/* the second store still works after the first closed */
	assert_int_equal(jobq_queue_add(&id, q2, "x", "2", 1, NULL), 0);
	assert_int_equal(jobq_queue_counts(&c, q2), 0);
	assert_int_equal(c.waiting, 2);
	jobq_queue_close(q2);
	jobq_store_close(s2);
}

static void
test_files_are_0600(void **state) {
	fixture *f = *state;
	jobq_store *s;
	jobq_queue *q = open_queue(&s, f->url, "m");
	static const char *const files[] = {"data.mdb", "lock.mdb", "jobq-wake", "jobq-lock"};
	for (size_t i = 0; i < 4; i++) {
		char path[512];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	jobq_queue_close(q);
	jobq_store_close(s);
}

static void
expect_open_error(const char *url, int code, const char *needle) {
	jobq_store *s = NULL;
	int rc = jobq_store_open(&s, url, NULL);
	assert_int_equal(rc, code);
	if (needle && !strstr(jobq_error_message(), needle)) {
		fail_msg("error for %s: \"%s\" lacks \"%s\"", url, jobq_error_message(), needle);
	}
}

static void
test_bad_urls(void **state) {
	fixture *f = *state;
	char url[400];
	expect_open_error("lmdb:", JOBQ_EINVAL, NULL);
	expect_open_error("lmdb://relative/dir", JOBQ_EINVAL, NULL);
	snprintf(url, sizeof(url), "lmdb://%s?durability=fast", f->dir);
	expect_open_error(url, JOBQ_EINVAL, "durability");
	snprintf(url, sizeof(url), "lmdb://%s?sync_ms=abc", f->dir);
	expect_open_error(url, JOBQ_EINVAL, "sync_ms");
	snprintf(url, sizeof(url), "lmdb://%s?bogus=1", f->dir);
	expect_open_error(url, JOBQ_EINVAL, "bogus");
	/* a missing parent directory */
	snprintf(url, sizeof(url), "lmdb://%s/no/such/dir", f->dir);
	expect_open_error(url, JOBQ_EINVAL, "no/such/dir");
	/* a plain file where the directory should be */
	char file[300];
	snprintf(file, sizeof(file), "%s/junk", f->dir);
	FILE *fp = fopen(file, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(url, sizeof(url), "lmdb://%s", file);
	expect_open_error(url, JOBQ_EINVAL, "not a directory");
	unlink(file);
	/* all modes parse */
	const char *modes[] = {"sync", "group", "periodic&sync_ms=5"};
	for (size_t i = 0; i < 3; i++) {
		char sub[300];
		snprintf(sub, sizeof(sub), "%s/m%zu", f->dir, i);
		snprintf(url, sizeof(url), "lmdb://%s?durability=%s", sub, modes[i]);
		jobq_store *s;
		jobq_queue *q = open_queue(&s, url, "d");
		jobq_job_id id;
		assert_int_equal(jobq_queue_add(&id, q, "x", "1", 1, NULL), 0);
		jobq_queue_close(q);
		jobq_store_close(s);
		rm_store(sub);
	}
}

static void
test_readonly_dir(void **state) {
	fixture *f = *state;
	if (geteuid() != 0) {
		chmod(f->dir, 0500);
		expect_open_error(f->url, JOBQ_EINVAL, f->dir);
		chmod(f->dir, 0700);
		return;
	}
	/* Root writes anywhere: check as user "nobody" in a child process. */
	chmod(f->dir, 0555);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(2);
		jobq_store *s = NULL;
		int rc = jobq_store_open(&s, f->url, NULL);
		_exit(rc == JOBQ_EINVAL && strstr(jobq_error_message(), f->dir) != NULL ? 0 : 1);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	chmod(f->dir, 0700);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_corrupt_file(void **state) {
	fixture *f = *state;
	char path[512];
	snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	char junk[8192];
	memset(junk, 'x', sizeof(junk));
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	expect_open_error(f->url, JOBQ_EIO, f->dir);
}

static void
test_foreign_lmdb(void **state) {
	fixture *f = *state;
	/* an LMDB store written by someone else: a plain key in the main DB */
	char cmd[600];
	snprintf(cmd, sizeof(cmd),
	         "printf 'VERSION=3\\nformat=bytevalue\\ntype=btree\\nHEADER=END\\n "
	         "6b6579\\n 76616c\\nDATA=END\\n' | mdb_load %s 2>/dev/null",
	         f->dir);
	if (system(cmd) != 0) {
		/* mdb_load comes with lmdb-utils, which CI installs: there, its absence fails. */
		fprintf(stderr,
		        "mdb_load (lmdb-utils) is not installed: cannot write a foreign file\n");
		if (getenv("CI") != NULL)
			fail();
		skip();
	}
	expect_open_error(f->url, JOBQ_EINVAL, "not a jobq store");
}

/* A map of 64 KiB grows while 3000 jobs with 1 KiB payloads are added. */
static void
test_map_grows(void **state) {
	fixture *f = *state;
	jobq_lmdb_options o = JOBQ_LMDB_OPTIONS_INIT;
	o.map_size = 64 << 10;
	jobq_backend *b;
	assert_int_equal(jobq_backend_lmdb_new(&b, f->dir, &o), 0);
	jobq_store *s;
	assert_int_equal(jobq_store_open_backend(&s, b, NULL), 0);
	jobq_queue *q;
	assert_int_equal(jobq_queue_open(&q, s, "big"), 0);
	char data[1024];
	memset(data, 'a', sizeof(data));
	data[0] = '"';
	data[sizeof(data) - 1] = '"';
	for (int i = 0; i < 3000; i++) {
		jobq_job_id id;
		int rc = jobq_queue_add(&id, q, "x", data, sizeof(data), NULL);
		if (rc < 0) {
			fail_msg("add %d: %s", i, jobq_error_message());
		}
	}
	jobq_counts c;
	assert_int_equal(jobq_queue_counts(&c, q), 0);
	assert_int_equal(c.waiting, 3000);
	jobq_queue_close(q);
	jobq_store_close(s);
}

typedef struct waiter_arg {
	jobq_queue *q;
	int64_t woke_after_ms;
	char cursor[64];
} waiter_arg;

static int64_t
now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *
events_waiter(void *p) {
	waiter_arg *a = p;
	jobq_event_list *l = NULL;
	int64_t t0 = now_ms();
	int rc = jobq_events_read(&l, a->q, a->cursor, 10, 5000);
	a->woke_after_ms = rc == 0 && jobq_event_list_count(l) > 0 ? now_ms() - t0 : -1;
	jobq_event_list_free(l);
	return NULL;
}

/* A blocking events read wakes on an add from another store handle, long before its timeout. */
static void
test_events_read_wakes(void **state) {
	fixture *f = *state;
	jobq_store *s1, *s2;
	jobq_queue *q1 = open_queue(&s1, f->url, "ev");
	jobq_queue *q2 = open_queue(&s2, f->url, "ev");
	/* The cursor is taken before the add, so the add's events are after it whenever the
	 * reader starts; the pause only makes it likely that the reader is blocked by then. */
	jobq_event_list *now = NULL;
	assert_int_equal(jobq_events_read(&now, q1, JOBQ_EVENTS_NOW, 1, 0), 0);
	waiter_arg a = {q1, 0, ""};
	snprintf(a.cursor, sizeof(a.cursor), "%s",
	         jobq_event_list_cursor(now) ? jobq_event_list_cursor(now) : JOBQ_EVENTS_START);
	jobq_event_list_free(now);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, events_waiter, &a), 0);
	struct timespec pause = {0, 100 * 1000 * 1000};
	nanosleep(&pause, NULL);
	jobq_job_id id;
	assert_int_equal(jobq_queue_add(&id, q2, "x", "1", 1, NULL), 0);
	pthread_join(t, NULL);
	/* Woken with the add's events, before the read's 5 s timeout. */
	assert_true(a.woke_after_ms >= 0);
	/* ids are decimal sequence numbers; "0" reads from the start */
	jobq_event_list *l;
	assert_int_equal(jobq_events_read(&l, q1, JOBQ_EVENTS_START, 100, 0), 0);
	assert_true(jobq_event_list_count(l) >= 2);
	assert_string_equal(jobq_event_list_at(l, 0)->id, "1");
	assert_string_equal(jobq_event_list_at(l, 0)->event, "added");
	jobq_event_list_free(l);
	jobq_queue_close(q1);
	jobq_queue_close(q2);
	jobq_store_close(s1);
	jobq_store_close(s2);
}

/* Retention: the newest 10,000 events at least, older ones trimmed. */
static void
test_events_retention(void **state) {
	fixture *f = *state;
	jobq_lmdb_options o = JOBQ_LMDB_OPTIONS_INIT;
	o.durability = JOBQ_LMDB_PERIODIC;
	jobq_backend *b;
	assert_int_equal(jobq_backend_lmdb_new(&b, f->dir, &o), 0);
	jobq_store *s;
	assert_int_equal(jobq_store_open_backend(&s, b, NULL), 0);
	jobq_queue *q;
	assert_int_equal(jobq_queue_open(&q, s, "ret"), 0);
	jobq_job_spec specs[100];
	for (int i = 0; i < 100; i++) {
		specs[i] = (jobq_job_spec){"x", "1", 1, NULL};
	}
	jobq_job_id ids[100];
	for (int i = 0; i < 80; i++) { /* 8000 adds = 16000 events */
		assert_int_equal(jobq_queue_add_bulk(ids, NULL, q, specs, 100), 0);
	}
	jobq_event_list *l;
	assert_int_equal(jobq_events_read(&l, q, JOBQ_EVENTS_START, 20000, 0), 0);
	size_t n = jobq_event_list_count(l);
	assert_true(n >= 10000);
	assert_true(n < 16000);
	assert_string_equal(jobq_event_list_at(l, n - 1)->id, "16000");
	jobq_event_list_free(l);
	jobq_queue_close(q);
	jobq_store_close(s);
}

/*
 * The events of one transaction share a key: reading from any cursor inside such a run, a few
 * at a time, still yields every event once, in order, with consecutive ids.
 */
static void
test_events_read_inside_a_transaction(void **state) {
	fixture *f = *state;
	jobq_store *s;
	assert_int_equal(jobq_store_open(&s, f->url, NULL), 0);
	jobq_queue *q;
	assert_int_equal(jobq_queue_open(&q, s, "runs"), 0);
	jobq_job_spec specs[50];
	for (int i = 0; i < 50; i++) {
		specs[i] = (jobq_job_spec){"x", "1", 1, NULL};
	}
	jobq_job_id ids[50];
	assert_int_equal(jobq_queue_add_bulk(ids, NULL, q, specs, 50), 0); /* events 1..100 */
	assert_int_equal(jobq_queue_add_bulk(ids, NULL, q, specs, 50), 0); /* 101..200 */
	char cursor[32] = JOBQ_EVENTS_START;
	unsigned long next = 1;
	for (;;) {
		jobq_event_list *l;
		assert_int_equal(jobq_events_read(&l, q, cursor, 7, 0), 0);
		size_t n = jobq_event_list_count(l);
		for (size_t i = 0; i < n; i++) {
			char want[32];
			snprintf(want, sizeof(want), "%lu", next++);
			const jobq_event *e = jobq_event_list_at(l, i);
			assert_string_equal(e->id, want);
			assert_string_equal(e->event, (next - 1) % 2 ? "added" : "waiting");
		}
		snprintf(cursor, sizeof(cursor), "%s", jobq_event_list_cursor(l));
		jobq_event_list_free(l);
		if (n == 0) {
			break;
		}
		assert_true(n <= 7);
	}
	assert_int_equal(next, 201);
	/* From a cursor in the middle of the second run, and from the end. */
	jobq_event_list *l;
	assert_int_equal(jobq_events_read(&l, q, "150", 1000, 0), 0);
	assert_int_equal(jobq_event_list_count(l), 50);
	assert_string_equal(jobq_event_list_at(l, 0)->id, "151");
	assert_string_equal(jobq_event_list_at(l, 49)->id, "200");
	jobq_event_list_free(l);
	assert_int_equal(jobq_events_read(&l, q, JOBQ_EVENTS_NOW, 10, 0), 0);
	assert_int_equal(jobq_event_list_count(l), 0);
	assert_string_equal(jobq_event_list_cursor(l), "200");
	jobq_event_list_free(l);
	jobq_queue_close(q);
	jobq_store_close(s);
}

/*
 * Completing a job removed on completion (the path that does not decode the record): a wrong
 * token changes nothing; the right one deletes the job, its logs and its dedup key and writes
 * `completed` then `drained`.
 */
static void
test_complete_removed(void **state) {
	fixture *f = *state;
	jobq_store *s;
	assert_int_equal(jobq_store_open(&s, f->url, NULL), 0);
	jobq_queue *q;
	assert_int_equal(jobq_queue_open(&q, s, "gone"), 0);
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.remove_on_complete.mode = JOBQ_KEEP_NONE;
	o.dedup_id = "dd";
	jobq_job_id id, again;
	assert_int_equal(jobq_queue_add(&id, q, "x", "1", 1, &o), 0);
	assert_true(jobq_queue_add_log(q, id.str, "a line") >= 0);
	jobq_job *job;
	assert_int_equal(jobq_queue_fetch(&job, q, 30000), 0);
	assert_string_equal(jobq_job_id_of(job), id.str);
	assert_int_equal(jobq_queue_complete(q, id.str, "not-the-token", "7"), JOBQ_ELOCKLOST);
	jobq_counts n;
	assert_int_equal(jobq_queue_counts(&n, q), 0);
	assert_int_equal(n.active, 1);
	assert_int_equal(jobq_queue_complete(q, id.str, jobq_job_token(job), "7"), 0);
	jobq_job_free(job);
	assert_int_equal(jobq_queue_counts(&n, q), 0);
	assert_int_equal(n.active + n.completed + n.waiting, 0);
	jobq_job *gone = NULL;
	assert_int_not_equal(jobq_queue_get_job(&gone, q, id.str), 0);
	jobq_strings *logs = NULL;
	int rc = jobq_queue_get_logs(&logs, q, id.str, 0, 10);
	if (rc == 0) {
		assert_int_equal(logs->count, 0);
		jobq_strings_free(logs);
	}
	jobq_event_list *l;
	assert_int_equal(jobq_events_read(&l, q, JOBQ_EVENTS_START, 100, 0), 0);
	size_t count = jobq_event_list_count(l);
	assert_true(count >= 2);
	const jobq_event *done = jobq_event_list_at(l, count - 2);
	assert_string_equal(done->event, "completed");
	assert_string_equal(done->job_id, id.str);
	assert_string_equal(jobq_event_get(done, "returnvalue"), "7");
	assert_string_equal(jobq_event_list_at(l, count - 1)->event, "drained");
	jobq_event_list_free(l);
	/* The dedup key went with the job: the same dedup id creates a new job. */
	assert_int_equal(jobq_queue_add(&again, q, "x", "1", 1, &o), 0);
	assert_string_not_equal(again.str, id.str);
	jobq_queue_close(q);
	jobq_store_close(s);
}

/* Opens the store's LMDB environment directly (the jobq store must be closed). */
static void
raw_open(MDB_env **env, MDB_txn **txn, const char *dir) {
	assert_int_equal(mdb_env_create(env), 0);
	assert_int_equal(mdb_env_set_maxdbs(*env, 32), 0);
	assert_int_equal(mdb_env_open(*env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(*env, NULL, 0, txn), 0);
}

static MDB_dbi
raw_dbi(MDB_txn *txn, const char *name) {
	MDB_dbi d;
	assert_int_equal(mdb_dbi_open(txn, name, 0, &d), 0);
	return d;
}

static size_t
raw_entries(MDB_txn *txn, const char *name) {
	MDB_stat st;
	assert_int_equal(mdb_stat(txn, raw_dbi(txn, name), &st), 0);
	return st.ms_entries;
}

/*
 * Rewrites a store as format 1 kept it: the running fields of active jobs in their records
 * (state active, token, lock expiry, processed_on, attempts_started, index key 0/seq), the
 * active index keyed queue\0seq(8, big-endian) -> id, and the format record "jobq-lmdb/1".
 */
static void
downgrade_to_format_1(const char *dir) {
	MDB_env *env;
	MDB_txn *txn;
	raw_open(&env, &txn, dir);
	MDB_dbi meta = raw_dbi(txn, "meta"), jobs = raw_dbi(txn, "jobs"),
	        active = raw_dbi(txn, "active");
	enum { MAX = 8 };
	unsigned char keys[MAX][LMDB_KEY_MAX];
	size_t klen[MAX], n = 0;
	uint64_t seqs[MAX];
	MDB_cursor *cur;
	assert_int_equal(mdb_cursor_open(txn, active, &cur), 0);
	MDB_val k, v;
	for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, (MDB_cursor_op)op) == 0;
	     op = MDB_NEXT) {
		assert_true(n < MAX);
		lmdb_run run;
		assert_int_equal(jobq_lmdb__run_decode(&run, v.mv_data, v.mv_size), 0);
		memcpy(keys[n], k.mv_data, k.mv_size);
		klen[n] = k.mv_size;
		seqs[n] = run.seq;
		/* The record with the running fields. */
		MDB_val rk = k, rv;
		assert_int_equal(mdb_get(txn, jobs, &rk, &rv), 0);
		const char *nul = memchr(k.mv_data, '\0', k.mv_size);
		assert_non_null(nul);
		char id[JOBQ_ID_MAX + 1];
		size_t idn = k.mv_size - (size_t)(nul + 1 - (const char *)k.mv_data);
		memcpy(id, nul + 1, idn);
		id[idn] = '\0';
		lmdb_rec r;
		assert_int_equal(jobq_lmdb__rec_decode(&r, id, rv.mv_data, rv.mv_size), 0);
		r.j->state = JOBQ_STATE_ACTIVE;
		jobq__free(r.j->token);
		r.j->token = jobq__strndup(run.token, run.token_len);
		r.lock_until = run.lock_until;
		r.j->processed_on = run.processed_on;
		r.j->attempts_started = run.attempts_started;
		r.ia = 0;
		r.ib = run.seq;
		lmdb_buf b;
		assert_int_equal(jobq_lmdb__rec_encode(&b, &r), 0);
		MDB_val nv = {b.size, b.data};
		rk.mv_size = klen[n];
		rk.mv_data = keys[n];
		assert_int_equal(mdb_put(txn, jobs, &rk, &nv, 0), 0);
		jobq_lmdb__buf_free(&b);
		jobq_job_free(r.j);
		n++;
	}
	mdb_cursor_close(cur);
	assert_int_equal(mdb_drop(txn, active, 0), 0);
	for (size_t i = 0; i < n; i++) {
		const unsigned char *nul = memchr(keys[i], '\0', klen[i]);
		size_t qn = (size_t)(nul - keys[i]) + 1;
		unsigned char ok[LMDB_KEY_MAX];
		memcpy(ok, keys[i], qn);
		for (int b = 0; b < 8; b++) {
			ok[qn + (size_t)b] = (unsigned char)(seqs[i] >> (56 - 8 * b));
		}
		MDB_val okey = {qn + 8, ok}, oval = {klen[i] - qn, keys[i] + qn};
		assert_int_equal(mdb_put(txn, active, &okey, &oval, 0), 0);
	}
	static char fkey[] = "format", fval[] = "jobq-lmdb/1";
	MDB_val fk = {6, fkey}, fv = {11, fval};
	assert_int_equal(mdb_put(txn, meta, &fk, &fv, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/*
 * A store written by format 1 (running fields in the records, active index by sequence
 * number) opens: it is migrated in the opening transaction, and its active job keeps its
 * lock (the token still completes it), attempts and place; a log line written while it ran
 * goes with it when it is completed and removed.
 */
static void
test_migrates_format_1(void **state) {
	fixture *f = *state;
	jobq_store *s;
	assert_int_equal(jobq_store_open(&s, f->url, NULL), 0);
	jobq_queue *q;
	assert_int_equal(jobq_queue_open(&q, s, "old"), 0);
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.remove_on_complete.mode = JOBQ_KEEP_NONE;
	jobq_job_id ids[3];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(jobq_queue_add(&ids[i], q, "x", "1", 1, &o), 0);
	}
	jobq_job *job;
	assert_int_equal(jobq_queue_fetch(&job, q, 600000), 0);
	assert_string_equal(jobq_job_id_of(job), ids[0].str);
	char token[64];
	snprintf(token, sizeof(token), "%s", jobq_job_token(job));
	int64_t started = jobq_job_processed_on(job);
	jobq_job_free(job);
	assert_true(jobq_queue_add_log(q, ids[0].str, "while running") >= 0);
	jobq_queue_close(q);
	jobq_store_close(s);

	downgrade_to_format_1(f->dir);

	assert_int_equal(jobq_store_open(&s, f->url, NULL), 0);
	assert_int_equal(jobq_queue_open(&q, s, "old"), 0);
	assert_int_equal(jobq_queue_get_job(&job, q, ids[0].str), 0);
	assert_int_equal(jobq_job_state(job), JOBQ_STATE_ACTIVE);
	assert_int_equal(jobq_job_attempts_started(job), 1);
	assert_int_equal(jobq_job_processed_on(job), started);
	jobq_job_free(job);
	jobq_job_list *l = NULL;
	assert_int_equal(jobq_queue_list(&l, q, JOBQ_STATE_ACTIVE, 0, 10), 0);
	assert_non_null(l);
	assert_int_equal(l->count, 1);
	assert_string_equal(jobq_job_id_of(l->jobs[0]), ids[0].str);
	jobq_job_list_free(l);
	jobq_counts n;
	assert_int_equal(jobq_queue_counts(&n, q), 0);
	assert_int_equal(n.active, 1);
	assert_int_equal(n.waiting, 2);
	/* Its lock came along: a wrong token is refused, the right one completes it. */
	assert_int_equal(jobq_queue_complete(q, ids[0].str, "not-the-token", "5"), JOBQ_ELOCKLOST);
	assert_int_equal(jobq_queue_complete(q, ids[0].str, token, "5"), 0);
	assert_int_equal(jobq_queue_fetch(&job, q, 30000), 0);
	assert_string_equal(jobq_job_id_of(job), ids[1].str);
	assert_int_equal(jobq_queue_complete(q, ids[1].str, jobq_job_token(job), "6"), 0);
	jobq_job_free(job);
	assert_int_equal(jobq_queue_counts(&n, q), 0);
	assert_int_equal(n.active, 0);
	assert_int_equal(n.waiting, 1);
	jobq_queue_close(q);
	jobq_store_close(s);

	/* Format 2 now, the log line gone with its job, the active index empty. */
	MDB_env *env;
	MDB_txn *txn;
	raw_open(&env, &txn, f->dir);
	static char fkey[] = "format";
	MDB_val fk = {6, fkey}, fv;
	assert_int_equal(mdb_get(txn, raw_dbi(txn, "meta"), &fk, &fv), 0);
	assert_int_equal(fv.mv_size, 11);
	assert_memory_equal(fv.mv_data, "jobq-lmdb/2", 11);
	assert_int_equal(raw_entries(txn, "logs"), 0);
	assert_int_equal(raw_entries(txn, "active"), 0);
	assert_int_equal(raw_entries(txn, "jobs"), 1);
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

/*
 * The running entry carries what a fetch changed (token, lock, processed_on, attempts) while
 * the record keeps the rest: get, list, extend, the reaper and a failure see the merged job.
 */
static void
test_running_fields_merged(void **state) {
	fixture *f = *state;
	jobq_backend *b;
	jobq_lmdb_options lo = JOBQ_LMDB_OPTIONS_INIT;
	assert_int_equal(jobq_backend_lmdb_new(&b, f->dir, &lo), 0);
	jobq_backend_queue *bq;
	assert_int_equal(b->queue_open(&bq, b, "m"), 0);
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.timestamp = 1000;
	jobq_add_request req = {"x", "d", 1, &o};
	jobq_job_id id;
	int outcome;
	assert_int_equal(b->add(&id, &outcome, bq, &req, 1, 1000), 0);
	jobq_job *j;
	assert_int_equal(b->fetch(&j, NULL, bq, "tok-a", 100, 2000), 0);
	assert_int_equal(j->attempts_started, 1);
	assert_int_equal(j->processed_on, 2000);
	jobq_job_free(j);
	assert_int_equal(b->get(&j, bq, id.str), 0);
	assert_int_equal(j->state, JOBQ_STATE_ACTIVE);
	assert_int_equal(j->processed_on, 2000);
	assert_int_equal(j->attempts_started, 1);
	jobq_job_free(j);
	/* The lock: extended by its token only, expired at its time. */
	assert_int_equal(b->extend_lock(bq, id.str, "tok-b", 100, 2050), JOBQ_ELOCKLOST);
	assert_int_equal(b->extend_lock(bq, id.str, "tok-a", 100, 2050), 0); /* until 2150 */
	jobq_strings *rec = NULL;
	assert_int_equal(b->reap_stalled(&rec, bq, 1, 0, 2149), 0);
	jobq_strings_free(rec);
	rec = NULL;
	assert_int_equal(b->reap_stalled(&rec, bq, 1, 0, 2150), 1);
	assert_non_null(rec);
	assert_string_equal(rec->items[0], id.str);
	jobq_strings_free(rec);
	/* Back to waiting with the first attempt's start kept; the second fetch counts 2. */
	assert_int_equal(b->get(&j, bq, id.str), 0);
	assert_int_equal(j->state, JOBQ_STATE_WAITING);
	assert_int_equal(j->attempts_started, 1);
	assert_int_equal(j->stalled_count, 1);
	assert_null(j->token);
	jobq_job_free(j);
	assert_int_equal(b->fetch(&j, NULL, bq, "tok-c", 100, 3000), 0);
	assert_int_equal(j->attempts_started, 2);
	jobq_job_free(j);
	jobq_failure fl = {"boom", NULL, -1, {JOBQ_KEEP_ALL, 0, 0}, 1, 0, 0};
	assert_int_equal((b->fail)(bq, id.str, "tok-a", &fl, 3010), JOBQ_ELOCKLOST);
	assert_int_equal((b->fail)(bq, id.str, "tok-c", &fl, 3010), 0);
	assert_int_equal(b->get(&j, bq, id.str), 0);
	assert_int_equal(j->state, JOBQ_STATE_FAILED);
	assert_int_equal(j->attempts_started, 2);
	assert_int_equal(j->attempts_made, 1);
	assert_int_equal(j->processed_on, 3000);
	assert_string_equal(j->failed_reason, "boom");
	jobq_job_free(j);
	jobq_counts n;
	assert_int_equal(b->counts(&n, bq), 0);
	assert_int_equal(n.active + n.waiting, 0);
	assert_int_equal(n.failed, 1);
	b->queue_close(bq);
	b->free(b);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_persists_across_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_stores_share_env, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_files_are_0600, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_urls, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readonly_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_lmdb, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_map_grows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events_read_wakes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events_retention, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events_read_inside_a_transaction, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_complete_removed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrates_format_1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_running_fields_merged, setup, teardown),
	};
	return cmocka_run_group_tests_name("lmdb.store", tests, NULL, NULL);
}
