/*
 * LMDB stores on a full file system (a small tmpfs mounted by the test, so it needs root; CI
 * runs as root, elsewhere the test is skipped with exit code 77 and says why):
 *
 * - opening a new store with 0, 1, 2, ... pages left: it opens, or fails with JOBQ_ENOSPC
 *   saying so and leaves no file of its own; never a signal (each open runs in a child);
 * - adding jobs until the file system is full: the first failure is JOBQ_ENOSPC "No space
 *   left on device" (LMDB itself says EIO for the short write).
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobq.h"

#include "fork_child.h"

typedef struct fixture {
	char mnt[256];
	char store[300];
	char filler[300];
	char url[320];
} fixture;

static int
mount_tmpfs(void **state, const char *size) {
	fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->mnt, sizeof(f->mnt), "/tmp/jobq-fullfs-XXXXXX");
	assert_non_null(mkdtemp(f->mnt));
	char opts[64];
	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	if (mount("tmpfs", f->mnt, "tmpfs", 0, opts) != 0) {
		print_error("mount -t tmpfs -o %s %s: %s\n", opts, f->mnt, strerror(errno));
		rmdir(f->mnt);
		free(f);
		return -1;
	}
	snprintf(f->store, sizeof(f->store), "%s/store", f->mnt);
	snprintf(f->filler, sizeof(f->filler), "%s/filler", f->mnt);
	snprintf(f->url, sizeof(f->url), "lmdb://%s", f->store);
	*state = f;
	return 0;
}

static int
setup_small(void **state) {
	return mount_tmpfs(state, "1m");
}

static int
teardown(void **state) {
	fixture *f = *state;
	if (umount(f->mnt) != 0) {
		print_error("umount %s: %s\n", f->mnt, strerror(errno));
	}
	rmdir(f->mnt);
	free(f);
	return 0;
}

static void
rm_store(const fixture *f) {
	static const char *const files[] = {"data.mdb", "lock.mdb", "jobq-wake", "jobq-lock"};
	char path[400];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->store, files[i]);
		unlink(path);
	}
	rmdir(f->store);
}

/* Fills the file system, then frees `pages` pages of it. */
static void
fill_leaving(const fixture *f, size_t pages) {
	int fd = open(f->filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	char block[4096];
	memset(block, 'f', sizeof(block));
	off_t size = 0;
	for (int i = 0; i < 1 << 20; i++) { /* bounded: 4 GiB */
		ssize_t w = write(fd, block, sizeof(block));
		if (w <= 0) {
			assert_int_equal(errno, ENOSPC);
			break;
		}
		size += w;
	}
	off_t keep = size - (off_t)(pages * sizeof(block));
	assert_int_equal(ftruncate(fd, keep > 0 ? keep : 0), 0);
	close(fd);
}

static int
dir_entries(const char *dir) {
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", dir);
	return system(cmd) == 0 ? 0 : 1;
}

enum { CHILD_OK = 0, CHILD_ENOSPC = 10, CHILD_OTHER = 11 };

/* Ends a child: CHILD_ENOSPC for JOBQ_ENOSPC that says "No space left", else CHILD_OTHER. */
static void
child_exit_error(int rc, const char *what) {
	fprintf(stderr, "  %s: %s: %s\n", what, jobq_error_name(rc), jobq_error_message());
	_exit(rc == JOBQ_ENOSPC && strstr(jobq_error_message(), "No space left") ? CHILD_ENOSPC
	                                                                         : CHILD_OTHER);
}

/* Finding 2: a new store on a full file system is a clear ENOSPC, never SIGBUS. */
static void
test_open_on_full_fs(void **state) {
	fixture *f = *state;
	static const size_t leave[] = {0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32};
	int failures = 0, refused = 0;
	for (size_t i = 0; i < sizeof(leave) / sizeof(leave[0]); i++) {
		assert_int_equal(mkdir(f->store, 0700), 0);
		fill_leaving(f, leave[i]);
		pid_t pid = fork_child();
		if (pid == 0) {
			jobq_store *s = NULL;
			int rc = jobq_store_open(&s, f->url, NULL);
			if (rc < 0) {
				child_exit_error(rc, "open");
			}
			jobq_store_close(s);
			_exit(CHILD_OK);
		}
		int got = wait_child(pid);
		if (got == CHILD_ENOSPC) {
			refused++;
			if (dir_entries(f->store)) {
				print_error("%zu pages free: the failed open left files behind\n",
				            leave[i]);
				failures++;
			}
		} else if (got != CHILD_OK) {
			print_error("%zu pages free: %s %d\n", leave[i],
			            got >= 128 ? "killed by signal" : "child exit",
			            got >= 128 ? got - 128 : got);
			failures++;
		}
		rm_store(f);
		unlink(f->filler);
	}
	assert_int_equal(failures, 0);
	assert_true(refused > 0); /* at least the full one */
}

/* Finding 8: adding until the file system is full fails first with JOBQ_ENOSPC. */
static void
test_commit_on_full_fs(void **state) {
	fixture *f = *state;
	assert_int_equal(mkdir(f->store, 0700), 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		jobq_store *s = NULL;
		jobq_queue *q = NULL;
		int rc = jobq_store_open(&s, f->url, NULL);
		if (rc == 0) {
			rc = jobq_queue_open(&q, s, "q");
		}
		if (rc < 0) {
			fprintf(stderr, "  open: %s\n", jobq_error_message());
			_exit(CHILD_OTHER);
		}
		static char data[6000];
		memset(data, 'a', sizeof(data));
		data[0] = '"';
		data[sizeof(data) - 1] = '"';
		for (int i = 0; i < 10000; i++) { /* 60 MB: far more than the 1 MiB there is */
			jobq_job_id id;
			rc = jobq_queue_add(&id, q, "x", data, sizeof(data), NULL);
			if (rc < 0) {
				child_exit_error(rc, "add");
			}
		}
		_exit(CHILD_OTHER); /* never full? */
	}
	int got = wait_child(pid);
	assert_int_equal(got, CHILD_ENOSPC);
	rm_store(f);
}

int
main(void) {
	if (geteuid() != 0) {
		fprintf(stderr, "SKIPPED: lmdb.fullfs needs root to mount a small tmpfs (mount -t "
		                "tmpfs); CI runs it as root\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_open_on_full_fs, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_commit_on_full_fs, setup_small, teardown),
	};
	return cmocka_run_group_tests_name("lmdb.fullfs", tests, NULL, NULL);
}
