/*
 * LMDB backend: the store's own files beside LMDB's (created, given real blocks before they are
 * mapped) and the cross-process wake-ups (futex words in the mapped file jobq-wake).
 */
#define _GNU_SOURCE /* syscall(SYS_futex), fallocate */
#include "lmdb_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WAKE_MAGIC 0x6a6f6277u /* "jobw" */

/* --- wake-ups -------------------------------------------------------------------------------- */

static uint32_t *
wake_word(lmdb_env *e, uint32_t slot, int events) {
	slot %= LMDB_WAKE_SLOTS;
	return events ? &e->wake->slot[slot].events : &e->wake->slot[slot].work;
}

uint32_t
jobq_lmdb__wake_load(lmdb_env *e, uint32_t slot, int events) {
	return __atomic_load_n(wake_word(e, slot, events), __ATOMIC_SEQ_CST);
}

static void
futex_wake_all(uint32_t *w) {
	syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/*
 * The word is bumped before the count of sleepers is read, and a sleeper is counted before
 * the kernel compares the word (both sequentially consistent): either the bump sees the
 * sleeper and wakes it, or the sleeper's FUTEX_WAIT sees the new word and does not sleep.
 */
static void
bump_one(lmdb_env *e, uint32_t slot, int events) {
	uint32_t *w = wake_word(e, slot, events);
	__atomic_add_fetch(w, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&e->wake->waiters[slot % LMDB_WAKE_SLOTS][events != 0],
	                    __ATOMIC_SEQ_CST) != 0) {
		futex_wake_all(w);
	}
}

void
jobq_lmdb__wake_bump(lmdb_env *e, uint32_t slot, int work, int events) {
	if (work) {
		bump_one(e, slot, 0);
	}
	if (events) {
		bump_one(e, slot, 1);
	}
}

void
jobq_lmdb__wake_all(lmdb_env *e) {
	for (uint32_t i = 0; i < LMDB_WAKE_SLOTS; i++) {
		jobq_lmdb__wake_bump(e, i, 1, 1);
	}
}

void
jobq_lmdb__wake_wait(lmdb_env *e, uint32_t slot, int events, uint32_t seen, int64_t ms) {
	if (ms > 1000 || ms < 0) {
		ms = 1000; /* backstop: a lost wake-up costs at most a second */
	}
	if (ms == 0) {
		return;
	}
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
	                      .tv_nsec = (long)(ms % 1000) * 1000000L};
	uint32_t *n = &e->wake->waiters[slot % LMDB_WAKE_SLOTS][events != 0];
	__atomic_add_fetch(n, 1, __ATOMIC_SEQ_CST);
	/* Shared (not FUTEX_PRIVATE): the word lives in a file mapping used by other processes. */
	syscall(SYS_futex, wake_word(e, slot, events), FUTEX_WAIT, seen, &ts, NULL, 0);
	__atomic_sub_fetch(n, 1, __ATOMIC_SEQ_CST);
}

/*
 * Gives the file `fd` (named `path`) real blocks for its first `len` bytes, so that a full
 * file system is ENOSPC now and not SIGBUS at the first store into a mapping of a hole.
 * `keep_size`: allocate without changing the file's size (for a file LMDB sizes itself).
 */
int
jobq_lmdb__alloc_blocks(int fd, const char *path, off_t len, int keep_size) {
	int err = keep_size ? (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, len) < 0 ? errno : 0)
	                    : posix_fallocate(fd, 0, len);
	if (err == EOPNOTSUPP || err == ENOSYS) {
		return 0; /* a file system without allocation: nothing better to do */
	}
	if (err) {
		return jobq_error_set(err == ENOSPC || err == EDQUOT ? JOBQ_ENOSPC : JOBQ_EIO,
		                      "lmdb: cannot allocate %s: %s", path, strerror(err));
	}
	return 0;
}

/* Opens (creating if needed) the store file `name` of `dir`, whose path goes to `path`
 * (PATH_MAX bytes); *created: this call made it. */
int
jobq_lmdb__open_store_file(int *fd_out, int *created, char *path, const char *dir, const char *name,
                           unsigned int mode) {
	if ((size_t)snprintf(path, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX) {
		return jobq_error_set(JOBQ_EINVAL, "lmdb: path too long: %s", dir);
	}
	*created = 1;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
	if (fd < 0 && errno == EEXIST) {
		*created = 0;
		fd = open(path, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0) {
		*created = 0;
		return jobq_error_set(errno == ENOSPC || errno == EDQUOT ? JOBQ_ENOSPC : JOBQ_EIO,
		                      "lmdb: cannot open %s: %s", path, strerror(errno));
	}
	*fd_out = fd;
	return 0;
}

int
jobq_lmdb__wake_map_open(lmdb_env *e, int *created, const char *dir, unsigned int mode) {
	char path[PATH_MAX];
	int fd = -1;
	int rc = jobq_lmdb__open_store_file(&fd, created, path, dir, "jobq-wake", mode);
	if (rc < 0) {
		return rc;
	}
	/* Allocated (not just sized) so that the first store into the map cannot fault; a file
	 * of an older, shorter layout is grown the same way. */
	if ((rc = jobq_lmdb__alloc_blocks(fd, path, (off_t)sizeof(lmdb_wake_map), 0)) < 0) {
		close(fd);
		return rc;
	}
	void *p = mmap(NULL, sizeof(lmdb_wake_map), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int err = errno;
	close(fd);
	if (p == MAP_FAILED) {
		return jobq_error_set(JOBQ_EIO, "lmdb: cannot map %s: %s", path, strerror(err));
	}
	e->wake = p;
	uint32_t zero = 0;
	/* The words start at zero in a new file; only the header is written here. */
	__atomic_compare_exchange_n(&e->wake->magic, &zero, WAKE_MAGIC, 0, __ATOMIC_SEQ_CST,
	                            __ATOMIC_SEQ_CST);
	return 0;
}
