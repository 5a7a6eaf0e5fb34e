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

#include "jobq.h"

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
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* cmocka catches these to report a crash; here they must end the child */
		signal(SIGBUS, SIG_DFL);
		signal(SIGSEGV, SIG_DFL);
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
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st)) {
		return 128 + WTERMSIG(st);
	}
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
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

	/* files that were there before the failed open stay */
	char path[512];
	file_path(path, sizeof(path), f, "data.mdb");
	unlink(path);
	fill_store(f, 1);
	spill(f, "data.mdb", junk, sizeof(junk));
	assert_int_equal(jobq_store_open(&s, f->url, NULL), JOBQ_EIO);
	assert_true(file_exists(f, "lock.mdb"));
	assert_true(file_exists(f, "jobq-wake"));
}

/* Finding 8: lmdb:/// names the root directory, which is no place for a store. */
static void
test_root_url(void **state) {
	(void)state;
	static const char *const files[] = {"/data.mdb", "/lock.mdb", "/jobq-wake"};
	int had[3];
	for (int i = 0; i < 3; i++) {
		had[i] = access(files[i], F_OK) == 0;
	}
	static const char *const urls[] = {"lmdb:///", "lmdb:////", "lmdb:/",
	                                   "lmdb:///?durability=sync"};
	for (size_t u = 0; u < sizeof(urls) / sizeof(urls[0]); u++) {
		jobq_store *s = NULL;
		int rc = jobq_store_open(&s, urls[u], NULL);
		if (rc == 0) {
			jobq_store_close(s);
			for (int i = 0; i < 3; i++) {
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

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_truncated_sizes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_data_file_in_new_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_open_removes_its_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_root_url, setup, teardown),
	};
	return cmocka_run_group_tests_name("lmdb.damage", tests, NULL, NULL);
}
