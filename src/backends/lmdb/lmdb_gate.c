/*
 * LMDB backend: the gates in front of LMDB's two shared mutexes.
 *
 * Why. liblmdb keeps its write mutex and its reader-table mutex (taken by every read
 * transaction's begin under MDB_NOTLS, and by mdb_reader_check) as process-shared robust
 * pthread mutexes in lock.mdb. glibc's unlock of a contended one stores 0 (clearing the
 * waiters bit) and wakes ONE sleeper, which is to set the bit again when it takes the lock.
 * A sleeper killed after that wake-up and before it takes the lock loses the wake-up: the
 * kernel's robust-list cleanup at its death passes it on only if the word is still 0 then,
 * and a process that took the lock in the meantime saw no waiters bit, so neither it nor
 * anyone after it wakes the others. They sleep for good while the lock is free
 * (tests/fault/lmdb_ptrace.c replays this step by step).
 *
 * So no thread of a jobq process ever waits on those mutexes: each is taken only behind a
 * gate, an in-process mutex (the threads of one process: a kill takes them all) in front of a
 * process-shared robust mutex with priority inheritance in the file `jobq-lock`. Unlocking a
 * contended PI mutex is done by the kernel, which makes the first waiter its owner before
 * waking it: a waiter killed after that dies as the owner, and the robust-list and PI-state
 * cleanup of its death hand the mutex to the next waiter (with EOWNERDEAD). No wake-up is
 * left to a process that may die, and taking a free gate is a compare-and-swap, no syscall.
 *
 * The write gate is held from mdb_txn_begin to the end of commit or abort (the hold of the
 * write mutex); the reader gate around each read begin and reader check. A writer that gets
 * the write gate from a holder that died also holds the reader gate for its transaction:
 * LMDB's recovery of a dead owner's write mutex runs a reader check.
 */
#define _GNU_SOURCE
#include "lmdb_internal.h"
#include "backends/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GATE_FILE_SIZE 4096
#define GATE_MAGIC     0x6a6f6267u /* "jobg" */

/* The start of jobq-lock: the mutexes are valid once `magic` is set. */
typedef struct gate_file {
	uint32_t magic;
	uint32_t mutex_size; /* sizeof(pthread_mutex_t) of the process that made them */
	uint32_t pad[14];
	pthread_mutex_t mu[LMDB_GATE__COUNT];
} gate_file;

_Static_assert(sizeof(gate_file) <= GATE_FILE_SIZE, "jobq-lock layout");

/* Makes the shared mutexes of a new file, under flock against another process doing it. */
static int
gate_file_init(gate_file *g, int fd) {
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			return errno;
		}
	}
	int err = 0;
	if (__atomic_load_n(&g->magic, __ATOMIC_ACQUIRE) != GATE_MAGIC) {
		pthread_mutexattr_t a;
		pthread_mutexattr_init(&a);
		err = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
		if (!err) {
			err = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
		}
		if (!err) {
			err = pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
		}
		for (int i = 0; !err && i < LMDB_GATE__COUNT; i++) {
			err = pthread_mutex_init(&g->mu[i], &a);
		}
		pthread_mutexattr_destroy(&a);
		if (!err) {
			g->mutex_size = (uint32_t)sizeof(pthread_mutex_t);
			__atomic_store_n(&g->magic, GATE_MAGIC, __ATOMIC_RELEASE);
		}
	} else if (g->mutex_size != sizeof(pthread_mutex_t)) {
		err = EPROTO;
	}
	flock(fd, LOCK_UN);
	return err;
}

int
jobq_lmdb__gate_open(lmdb_env *e, const char *dir, unsigned int mode) {
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof(path), "%s/jobq-lock", dir) >= sizeof(path)) {
		return jobq_error_set(JOBQ_EINVAL, "lmdb: path too long: %s", dir);
	}
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, (mode_t)mode);
	if (fd < 0) {
		return jobq_error_set(JOBQ_EIO, "lmdb: cannot open %s: %s", path, strerror(errno));
	}
	struct stat st;
	void *p = MAP_FAILED;
	if (fstat(fd, &st) == 0 &&
	    (st.st_size >= GATE_FILE_SIZE || ftruncate(fd, GATE_FILE_SIZE) == 0)) {
		p = mmap(NULL, GATE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	}
	if (p == MAP_FAILED) {
		int err = errno;
		close(fd);
		return jobq_error_set(JOBQ_EIO, "lmdb: cannot size or map %s: %s", path,
		                      strerror(err));
	}
	int err = gate_file_init(p, fd);
	close(fd);
	if (err) {
		munmap(p, GATE_FILE_SIZE);
		return jobq_error_set(JOBQ_EIO, "lmdb: cannot set up the locks of %s: %s", path,
		                      err == EPROTO ? "made by an incompatible build"
		                                    : strerror(err));
	}
	for (int i = 0; i < LMDB_GATE__COUNT; i++) {
		pthread_mutex_init(&e->gate_mu[i], NULL);
	}
	e->gate_map = p;
	return 0;
}

void
jobq_lmdb__gate_close(lmdb_env *e) {
	if (!e->gate_map) {
		return;
	}
	munmap(e->gate_map, GATE_FILE_SIZE);
	e->gate_map = NULL;
	for (int i = 0; i < LMDB_GATE__COUNT; i++) {
		pthread_mutex_destroy(&e->gate_mu[i]);
	}
}

/* 0 or an errno value; *died: the last holder died holding it. */
static int
gate_enter(lmdb_env *e, int which, int *died) {
	pthread_mutex_t *mu = &((gate_file *)e->gate_map)->mu[which];
	pthread_mutex_lock(&e->gate_mu[which]);
	int err = pthread_mutex_lock(mu);
	*died = err == EOWNERDEAD;
	if (err == EOWNERDEAD) {
		err = pthread_mutex_consistent(mu);
		if (err) {
			pthread_mutex_unlock(mu);
		}
	}
	if (err) {
		pthread_mutex_unlock(&e->gate_mu[which]);
	}
	return err;
}

static void
gate_leave(lmdb_env *e, int which) {
	pthread_mutex_unlock(&((gate_file *)e->gate_map)->mu[which]);
	pthread_mutex_unlock(&e->gate_mu[which]);
}

int
jobq_lmdb__reader_check(lmdb_env *e) {
	int died;
	int err = gate_enter(e, LMDB_GATE_READ, &died);
	if (err) {
		return err;
	}
	int dead = 0;
	int mrc = mdb_reader_check(e->env, &dead);
	gate_leave(e, LMDB_GATE_READ);
	return mrc;
}

int
jobq_lmdb__write_gate_enter(lmdb_env *e) {
	int died;
	int err = gate_enter(e, LMDB_GATE_WRITE, &died);
	if (err) {
		return err;
	}
	e->gate_recover = died;
	if (died) {
		err = gate_enter(e, LMDB_GATE_READ, &died);
		if (err) {
			gate_leave(e, LMDB_GATE_WRITE);
			return err;
		}
	}
	return 0;
}

void
jobq_lmdb__write_gate_leave(lmdb_env *e) {
	if (e->gate_recover) {
		e->gate_recover = 0;
		gate_leave(e, LMDB_GATE_READ);
	}
	gate_leave(e, LMDB_GATE_WRITE);
}

int
jobq_lmdb__txn_begin(MDB_txn **txn, lmdb_env *e, unsigned int flags) {
	int write = !(flags & MDB_RDONLY), died;
	int err = write ? jobq_lmdb__write_gate_enter(e) : gate_enter(e, LMDB_GATE_READ, &died);
	if (err) {
		return err;
	}
	int mrc = mdb_txn_begin(e->env, NULL, flags, txn);
	if (!write) {
		gate_leave(e, LMDB_GATE_READ);
	} else if (mrc) {
		jobq_lmdb__write_gate_leave(e);
	}
	return mrc;
}
