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
 * gate, an in-process mutex (the threads of one process) plus an open-file-description lock
 * on one byte of the file `jobq-lock` (one process at a time). The kernel wakes the waiters
 * of such a lock itself and drops it when its holder dies, so a killed process leaves
 * nobody asleep. (Classic POSIX locks would not do: they belong to the whole process, and
 * LMDB holds some of its own on lock.mdb that closing any descriptor would drop. A robust
 * priority-inheritance mutex, which the kernel hands to its first waiter, would close the hole
 * too and costs no syscall when free, but its hand-offs convoy: with 4 producer and 4 worker
 * processes it moved a third fewer jobs than this lock, which lets a running process barge.)
 *
 * The write gate is held from mdb_txn_begin to the end of commit or abort (the hold of the
 * write mutex); the reader gate around each read begin and reader check. A writer that finds
 * the write gate left dirty by a holder that died (the word below) also takes the reader gate
 * for its begin: LMDB's recovery of the dead owner's write mutex runs a reader check.
 */
#define _GNU_SOURCE /* F_OFD_SETLKW */
#include "lmdb_internal.h"
#include "backends/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GATE_FILE_SIZE 4096

/* The first word of the file: 1 while a process holds the write gate. */
static uint32_t *
gate_dirty(lmdb_env *e) {
	return (uint32_t *)e->gate_map;
}

int
jobq_lmdb__gate_open(lmdb_env *e, int *created, const char *dir, unsigned int mode) {
	char path[PATH_MAX];
	int fd = -1;
	int rc = jobq_lmdb__open_store_file(&fd, created, path, dir, "jobq-lock", mode);
	if (rc < 0) {
		return rc;
	}
	/* Blocks, not a hole: the word below is stored through the map (a hole would fault on a
	 * full file system). */
	if ((rc = jobq_lmdb__alloc_blocks(fd, path, GATE_FILE_SIZE, 0)) < 0) {
		close(fd);
		return rc;
	}
	void *p = mmap(NULL, GATE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int err = errno;
		close(fd);
		return jobq_error_set(JOBQ_EIO, "lmdb: cannot map %s: %s", path, strerror(err));
	}
	for (int i = 0; i < LMDB_GATE__COUNT; i++) {
		pthread_mutex_init(&e->gate_mu[i], NULL);
	}
	e->gate_fd = fd;
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
	close(e->gate_fd); /* drops the locks of this file description */
	for (int i = 0; i < LMDB_GATE__COUNT; i++) {
		pthread_mutex_destroy(&e->gate_mu[i]);
	}
}

static int
ofd_lock(lmdb_env *e, int which, short type) {
	struct flock fl;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = which;
	fl.l_len = 1;
	int cmd = type == F_UNLCK ? F_OFD_SETLK : F_OFD_SETLKW;
	while (fcntl(e->gate_fd, cmd, &fl) < 0) {
		if (errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}

/* 0 or an errno value. */
static int
gate_enter(lmdb_env *e, int which) {
	pthread_mutex_lock(&e->gate_mu[which]);
	int err = ofd_lock(e, which, F_WRLCK);
	if (err < 0) {
		pthread_mutex_unlock(&e->gate_mu[which]);
		return -err;
	}
	return 0;
}

static void
gate_leave(lmdb_env *e, int which) {
	/* Unlocking a lock held cannot fail short of a bad descriptor. */
	(void)ofd_lock(e, which, F_UNLCK);
	pthread_mutex_unlock(&e->gate_mu[which]);
}

int
jobq_lmdb__reader_check(lmdb_env *e) {
	int err = gate_enter(e, LMDB_GATE_READ);
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
	int err = gate_enter(e, LMDB_GATE_WRITE);
	if (err) {
		return err;
	}
	uint32_t *dirty = gate_dirty(e);
	e->gate_recover = __atomic_load_n(dirty, __ATOMIC_ACQUIRE) != 0;
	if (e->gate_recover) {
		err = gate_enter(e, LMDB_GATE_READ);
		if (err) {
			gate_leave(e, LMDB_GATE_WRITE);
			return err;
		}
	} else {
		__atomic_store_n(dirty, 1, __ATOMIC_RELEASE);
	}
	return 0;
}

void
jobq_lmdb__write_gate_leave(lmdb_env *e) {
	__atomic_store_n(gate_dirty(e), 0, __ATOMIC_RELEASE);
	if (e->gate_recover) {
		e->gate_recover = 0;
		gate_leave(e, LMDB_GATE_READ);
	}
	gate_leave(e, LMDB_GATE_WRITE);
}

int
jobq_lmdb__txn_begin(MDB_txn **txn, lmdb_env *e, unsigned int flags) {
	int write = !(flags & MDB_RDONLY);
	int err = write ? jobq_lmdb__write_gate_enter(e) : gate_enter(e, LMDB_GATE_READ);
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
