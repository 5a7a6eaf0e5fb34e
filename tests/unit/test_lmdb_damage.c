/*
 * LMDB stores that were damaged outside jobq: a data.mdb cut short at every kind of size (a
 * clear JOBQ_EIO naming the sizes, never a signal: each open runs in a child process so that
 * a SIGBUS is a failure, not a crash of the test), an empty data.mdb where a store was, a
 * failed open that leaves no files of its own behind, the root directory as a store URL, and
 * the integrity check (jobq_store_check) finding damage made with LMDB's own API and with
 * bytes written into the middle of data.mdb.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "jobq.h"

#include "fork_child.h"

typedef struct fixture {
	char dir[256];
	char url[300];
} fixture;

static void
rm_store(const char *dir) {
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		print_error("could not remove %s\n", dir);
	}
}

static int
setup(void **state) {
	fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/jobq-lmdb-damage-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	/* unsynced commits: a process crash loses nothing, and these tests need no more */
	snprintf(f->url, sizeof(f->url), "lmdb://%s?durability=periodic", f->dir);
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

static void
file_path(char *buf, size_t size, const fixture *f, const char *name) {
	snprintf(buf, size, "%s/%s", f->dir, name);
}

static int
file_exists(const fixture *f, const char *name) {
	char path[512];
	file_path(path, sizeof(path), f, name);
	struct stat st;
	return stat(path, &st) == 0;
}

/* Reads file `name` of the store whole; *size gets its length. */
static unsigned char *
slurp(const fixture *f, const char *name, size_t *size) {
	char path[512];
	file_path(path, sizeof(path), f, name);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	assert_true(n > 0);
	fseek(fp, 0, SEEK_SET);
	unsigned char *buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*size = (size_t)n;
	return buf;
}

static void
spill(const fixture *f, const char *name, const unsigned char *buf, size_t size) {
	char path[512];
	file_path(path, sizeof(path), f, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	close(fd);
}

/* A store of `n` jobs with 1 KiB payloads (tens of pages), closed again. */
static void
fill_store(const fixture *f, int n) {
	jobq_store *s;
	jobq_queue *q;
	assert_int_equal(jobq_store_open(&s, f->url, NULL), 0);
	assert_int_equal(jobq_queue_open(&q, s, "q"), 0);
	char data[1024];
	memset(data, 'a', sizeof(data));
	data[0] = '"';
	data[sizeof(data) - 1] = '"';
	for (int i = 0; i < n; i++) {
		jobq_job_id id;
		assert_int_equal(jobq_queue_add(&id, q, "x", data, sizeof(data), NULL), 0);
	}
	jobq_queue_close(q);
	jobq_store_close(s);
}

enum { OPEN_OK = 0, OPEN_TRUNCATED = 10, OPEN_OTHER = 11 };

/*
 * Opens the store and reads its counts in a child process. Returns OPEN_OK (opened, `jobs`
 * waiting), OPEN_TRUNCATED (JOBQ_EIO saying "truncated"), OPEN_OTHER, or 128 + the signal
 * that killed the child.
 */
static int
open_in_child(const fixture *f, int jobs) {
	pid_t pid = fork_child();
	if (pid == 0) {
		jobq_store *s = NULL;
		int rc = jobq_store_open(&s, f->url, NULL);
		if (rc < 0) {
			fprintf(stderr, "  open: %s: %s\n", jobq_error_name(rc),
			        jobq_error_message());
			_exit(rc == JOBQ_EIO && strstr(jobq_error_message(), "truncated")
			          ? OPEN_TRUNCATED
			          : OPEN_OTHER);
		}
		jobq_queue *q;
		jobq_counts c;
		rc = jobq_queue_open(&q, s, "q");
		if (rc == 0) {
			rc = jobq_queue_counts(&c, q);
			jobq_queue_close(q);
		}
		jobq_store_close(s);
		_exit(rc == 0 && c.waiting == (uint64_t)jobs ? OPEN_OK : OPEN_OTHER);
	}
	return wait_child(pid);
}

/* Finding 2: a data.mdb cut at any size is refused with a clear error, never a signal. */
static void
test_truncated_sizes(void **state) {
	fixture *f = *state;
	const int jobs = 60;
	fill_store(f, jobs);
	size_t size;
	unsigned char *orig = slurp(f, "data.mdb", &size);
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	assert_true(size >= 16 * page);
	size_t cuts[32];
	size_t n = 0;
	for (size_t k = 0; k <= 5; k++) {
		cuts[n++] = k * page; /* 0, and every page boundary of the first few pages */
	}
	cuts[n++] = page / 2;
	cuts[n++] = page + 100; /* the second meta page cut inside */
	cuts[n++] = size / 2;
	cuts[n++] = size - page;
	cuts[n++] = size - 1;
	int failures = 0;
	for (size_t i = 0; i < n; i++) {
		spill(f, "data.mdb", orig, cuts[i]);
		int got = open_in_child(f, jobs);
		if (got != OPEN_TRUNCATED) {
			print_error("data.mdb cut to %zu of %zu bytes: %s %d\n", cuts[i], size,
			            got >= 128 ? "killed by signal" : "child exit",
			            got >= 128 ? got - 128 : got);
			failures++;
		}
	}
	/* the whole file still opens */
	spill(f, "data.mdb", orig, size);
	assert_int_equal(open_in_child(f, jobs), OPEN_OK);
	free(orig);
	assert_int_equal(failures, 0);
}

/* An empty data.mdb in a directory that never held a store is a new store. */
static void
test_empty_data_file_in_new_dir(void **state) {
	fixture *f = *state;
	spill(f, "data.mdb", (const unsigned char *)"", 0);
	assert_int_equal(open_in_child(f, 0), OPEN_OK);
}

/* Finding 8: a failed open removes the files it created, and only those. */
static void
test_failed_open_removes_its_files(void **state) {
	fixture *f = *state;
	unsigned char junk[8192];
	memset(junk, 'x', sizeof(junk));
	spill(f, "data.mdb", junk, sizeof(junk));
	jobq_store *s = NULL;
	assert_int_equal(jobq_store_open(&s, f->url, NULL), JOBQ_EIO);
	assert_true(file_exists(f, "data.mdb"));
	assert_false(file_exists(f, "lock.mdb"));
	assert_false(file_exists(f, "jobq-wake"));
	assert_false(file_exists(f, "jobq-lock"));

	/* files that were there before the failed open stay */
	char path[512];
	file_path(path, sizeof(path), f, "data.mdb");
	unlink(path);
	fill_store(f, 1);
	spill(f, "data.mdb", junk, sizeof(junk));
	assert_int_equal(jobq_store_open(&s, f->url, NULL), JOBQ_EIO);
	assert_true(file_exists(f, "lock.mdb"));
	assert_true(file_exists(f, "jobq-wake"));
	assert_true(file_exists(f, "jobq-lock"));
}

/* Finding 8: lmdb:/// names the root directory, which is no place for a store. */
static void
test_root_url(void **state) {
	(void)state;
	static const char *const files[] = {"/data.mdb", "/lock.mdb", "/jobq-wake", "/jobq-lock"};
	int had[4];
	for (int i = 0; i < 4; i++) {
		had[i] = access(files[i], F_OK) == 0;
	}
	static const char *const urls[] = {"lmdb:///", "lmdb:////", "lmdb:/",
	                                   "lmdb:///?durability=sync"};
	for (size_t u = 0; u < sizeof(urls) / sizeof(urls[0]); u++) {
		jobq_store *s = NULL;
		int rc = jobq_store_open(&s, urls[u], NULL);
		if (rc == 0) {
			jobq_store_close(s);
			for (int i = 0; i < 4; i++) {
				if (!had[i]) {
					unlink(files[i]); /* what the open wrongly created */
				}
			}
			fail_msg("%s opened a store in /", urls[u]);
		}
		assert_int_equal(rc, JOBQ_EINVAL);
		if (!strstr(jobq_error_message(), "root directory")) {
			fail_msg("error for %s: \"%s\"", urls[u], jobq_error_message());
		}
	}
}

/* --- the integrity check ---------------------------------------------------------------- */

/* A store with jobs in every state, logs and a dedup id. */
static void
varied_store(const fixture *f) {
	jobq_store *s;
	jobq_queue *q;
	assert_int_equal(jobq_store_open(&s, f->url, NULL), 0);
	assert_int_equal(jobq_queue_open(&q, s, "q"), 0);
	jobq_job_id id;
	for (int i = 0; i < 40; i++) {
		jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
		o.priority = i % 4 == 1 ? 5 : 0;
		o.delay_ms = i % 4 == 2 ? 3600000 : 0;
		o.dedup_id = i == 3 ? "d3" : NULL;
		assert_true(jobq_queue_add(&id, q, "x", "{}", 2, &o) >= 0);
	}
	assert_int_equal(jobq_queue_add_log(q, "1", "a log line") >= 0, 1);
	for (int i = 0; i < 6; i++) {
		jobq_job *job;
		assert_int_equal(jobq_queue_fetch(&job, q, 60000), 0);
		if (i % 3 == 0)
			assert_int_equal(jobq_job_complete(job, "1"), 0);
		else if (i % 3 == 1)
			assert_true(jobq_job_fail(job, "no", 0) >= 0);
		jobq_job_free(job); /* i % 3 == 2: stays active */
	}
	jobq_queue_close(q);
	jobq_store_close(s);
}

/* Runs the check; returns the number of problems, with the messages in *msgs (if wanted). */
static uint64_t
run_check(const fixture *f, jobq_strings **msgs) {
	jobq_store *s;
	assert_int_equal(jobq_store_open(&s, f->url, NULL), 0);
	jobq_check_report *r = NULL;
	int rc = jobq_store_check(&r, s, 100);
	if (rc < 0)
		fail_msg("check: %s", jobq_error_message());
	uint64_t n = r->problems;
	for (size_t i = 0; r->messages && i < r->messages->count; i++)
		print_message("  check: %s\n", r->messages->items[i]);
	if (msgs) {
		*msgs = r->messages;
		r->messages = NULL;
	}
	assert_true(r->queues == 1 && r->jobs >= 40 && r->entries >= 40);
	jobq_check_report_free(r);
	jobq_store_close(s);
	return n;
}

static void
expect_problem(const fixture *f, const char *needle) {
	jobq_strings *msgs = NULL;
	assert_true(run_check(f, &msgs) > 0);
	int found = 0;
	for (size_t i = 0; msgs && i < msgs->count; i++)
		found |= strstr(msgs->items[i], needle) != NULL;
	jobq_strings_free(msgs);
	if (!found)
		fail_msg("no problem saying \"%s\"", needle);
}

/* Opens the closed store with LMDB itself, to damage it as a bug or a bad disk would. */
typedef struct raw {
	MDB_env *env;
	MDB_txn *txn;
	unsigned char kbuf[512], vbuf[512];
} raw;

static MDB_dbi
raw_begin(raw *r, const fixture *f, const char *table) {
	assert_int_equal(mdb_env_create(&r->env), 0);
	mdb_env_set_maxdbs(r->env, 32);
	assert_int_equal(mdb_env_open(r->env, f->dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
	MDB_dbi d;
	assert_int_equal(mdb_dbi_open(r->txn, table, 0, &d), 0);
	return d;
}

static void
raw_commit(raw *r) {
	assert_int_equal(mdb_txn_commit(r->txn), 0);
	mdb_env_close(r->env);
}

/* A varied store opened with LMDB, and the first entry of `table` (copied into r). */
static MDB_dbi
damage_begin(raw *r, const fixture *f, const char *table, MDB_val *k, MDB_val *v) {
	varied_store(f);
	MDB_dbi d = raw_begin(r, f, table);
	MDB_cursor *cur;
	assert_int_equal(mdb_cursor_open(r->txn, d, &cur), 0);
	assert_int_equal(mdb_cursor_get(cur, k, v, MDB_FIRST), 0);
	assert_true(k->mv_size <= 512 && v->mv_size <= 512);
	memcpy(r->kbuf, k->mv_data, k->mv_size);
	memcpy(r->vbuf, v->mv_data, v->mv_size);
	k->mv_data = r->kbuf;
	v->mv_data = r->vbuf;
	mdb_cursor_close(cur);
	return d;
}

static void
test_check_clean_store(void **state) {
	fixture *f = *state;
	varied_store(f);
	assert_int_equal(run_check(f, NULL), 0);
}

static void
test_check_memory_not_supported(void **state) {
	(void)state;
	jobq_store *s;
	assert_int_equal(jobq_store_open(&s, "mem://", NULL), 0);
	jobq_check_report *r = NULL;
	assert_int_equal(jobq_store_check(&r, s, 10), JOBQ_ENOTSUP);
	assert_null(r);
	jobq_store_close(s);
}

/* A waiting job's index entry lost: its record is in no index, the counter disagrees. */
static void
test_check_lost_index_entry(void **state) {
	fixture *f = *state;
	raw r;
	MDB_val k, v;
	MDB_dbi d = damage_begin(&r, f, "wait", &k, &v);
	assert_int_equal(mdb_del(r.txn, d, &k, NULL), 0);
	raw_commit(&r);
	expect_problem(f, "but it is not in that index");
	expect_problem(f, "its counter says");
}

/* An index entry naming a job that does not exist (the counter still agrees). */
static void
test_check_dangling_index_entry(void **state) {
	fixture *f = *state;
	raw r;
	MDB_val k, v;
	MDB_dbi d = damage_begin(&r, f, "wait", &k, &v);
	MDB_val ghost = {4, (void *)(uintptr_t) "9999"};
	assert_int_equal(mdb_put(r.txn, d, &k, &ghost, 0), 0); /* the first job's place */
	raw_commit(&r);
	expect_problem(f, "names job 9999, which does not exist");
	expect_problem(f, "its place in the waiting index holds job \"9999\"");
}

/* A record whose bytes are not a record; a record in a second index. */
static void
test_check_bad_records(void **state) {
	fixture *f = *state;
	raw r;
	MDB_val k, v;
	MDB_dbi d = damage_begin(&r, f, "jobs", &k, &v);
	MDB_val junk = {5, (void *)(uintptr_t) "\xc1\xc1\xc1\xc1\xc1"};
	assert_int_equal(mdb_put(r.txn, d, &k, &junk, 0), 0);
	/* job 25 (waiting) also in the failed index */
	MDB_dbi fd;
	assert_int_equal(mdb_dbi_open(r.txn, "failed", 0, &fd), 0);
	unsigned char fk[2 + 16] = {'q', 0, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x7f};
	MDB_val fkey = {sizeof(fk), fk}, five = {2, (void *)(uintptr_t) "25"};
	assert_int_equal(mdb_put(r.txn, fd, &fkey, &five, 0), 0);
	raw_commit(&r);
	expect_problem(f, "its record does not decode");
	expect_problem(f, "job 25 is in the failed index but its record says waiting");
	expect_problem(f, "its counter says");
}

/* Entries of a queue that has no settings record. */
static void
test_check_orphan_queue(void **state) {
	fixture *f = *state;
	varied_store(f);
	raw r;
	MDB_dbi d = raw_begin(&r, f, "logs");
	unsigned char key[] = {'z', 'z', 0, '1', 0, 0, 0, 0, 0, 0, 0, 0, 1};
	MDB_val k = {sizeof(key), key}, v = {4, (void *)(uintptr_t) "line"};
	assert_int_equal(mdb_put(r.txn, d, &k, &v, 0), 0);
	raw_commit(&r);
	expect_problem(f, "table logs: entries of no known queue (\"zz\")");
}

/* Finding 8: bytes written into the middle of data.mdb, over one job's record. */
static void
test_check_garbage_in_file(void **state) {
	fixture *f = *state;
	fill_store(f, 300);
	assert_int_equal(run_check(f, NULL), 0);
	size_t size;
	unsigned char *buf = slurp(f, "data.mdb", &size);
	/* job 150's record: its key "q\0150" followed by the msgpack array of the record */
	static const unsigned char key[] = {'q', 0, '1', '5', '0'};
	int hit = 0;
	for (size_t i = 0; i + sizeof(key) + 16 < size; i++) {
		unsigned char first = buf[i + sizeof(key)]; /* a msgpack array's header */
		if (memcmp(buf + i, key, sizeof(key)) == 0 &&
		    ((first & 0xf0) == 0x90 || first == 0xdc || first == 0xdd)) {
			memset(buf + i + sizeof(key), 0xc1, 16);
			hit++;
		}
	}
	assert_int_equal(hit, 1);
	spill(f, "data.mdb", buf, size);
	free(buf);
	expect_problem(f, "job 150: its record does not decode");
}

/* Runs the check in a child: 0 clean, 1 damage found, 3 store refused, 128 + signal. */
static int
check_in_child(const fixture *f) {
	pid_t pid = fork_child();
	if (pid == 0) {
		jobq_store *s = NULL;
		jobq_check_report *r = NULL;
		if (jobq_store_open(&s, f->url, NULL) < 0 || jobq_store_check(&r, s, 0) < 0)
			_exit(3);
		_exit(r->problems > 0 ? 1 : 0);
	}
	return wait_child(pid);
}

/*
 * Finding 8: a whole page of garbage anywhere in data.mdb. The check never dies of a signal
 * (LMDB follows page numbers unchecked: the check verifies the trees' pages first), and the
 * page holding a job's record is found damaged. Pages the snapshot does not reach (free
 * ones) are rightly clean.
 */
static void
test_check_garbage_pages(void **state) {
	fixture *f = *state;
	fill_store(f, 50);
	size_t size;
	unsigned char *orig = slurp(f, "data.mdb", &size);
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *buf = malloc(size);
	assert_non_null(buf);
	static const unsigned char patterns[] = {0xa5, 0x00};
	int signals = 0, damaged = 0;
	for (size_t pt = 0; pt < sizeof(patterns); pt++) {
		for (size_t p = 2; p < size / page; p++) {
			memcpy(buf, orig, size);
			memset(buf + p * page, patterns[pt], page);
			spill(f, "data.mdb", buf, size);
			int got = check_in_child(f);
			if (got >= 128) {
				print_error("page %zu of 0x%02x: killed by signal %d\n", p,
				            patterns[pt], got - 128);
				signals++;
			}
			damaged += got == 1;
		}
	}
	spill(f, "data.mdb", orig, size);
	free(buf);
	free(orig);
	print_message("%d of %zu damaged files found damaged\n", damaged,
	              sizeof(patterns) * (size / page - 2));
	assert_int_equal(signals, 0);
	assert_true(damaged > 0);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_truncated_sizes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_data_file_in_new_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_open_removes_its_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_root_url, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_clean_store, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_memory_not_supported, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_lost_index_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_dangling_index_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_bad_records, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_orphan_queue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_garbage_in_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_garbage_pages, setup, teardown),
	};
	return cmocka_run_group_tests_name("lmdb.damage", tests, NULL, NULL);
}
