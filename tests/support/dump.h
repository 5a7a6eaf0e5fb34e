/*
 * Test helpers: a store as text, so that a test can assert that a call changed nothing at all.
 * jobq_test_dump_queue writes what the public API shows of a queue (counts, the paused flag,
 * every job of every state with every field, its logs, its job schedulers, the events log);
 * jobq_test_dump_lmdb the raw content of every database of an LMDB backend's environment, read
 * directly with liblmdb in a read-only transaction. Failures are cmocka assertions.
 */
#ifndef JOBQ_TEST_DUMP_H
#define JOBQ_TEST_DUMP_H

#include <stddef.h>

#include "jobq.h"

/* A growable text buffer in libc memory (invisible to the library's allocator hook). */
typedef struct jobq_test_buf {
	char *p;
	size_t len, cap;
} jobq_test_buf;

void jobq_test_buf_printf(jobq_test_buf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void jobq_test_buf_hex(jobq_test_buf *b, const void *p, size_t n);
void jobq_test_buf_free(jobq_test_buf *b);
/* The text so far ("" when empty). */
const char *jobq_test_buf_str(const jobq_test_buf *b);

/* Appends one line with every field of `job`, or of `event`. */
void jobq_test_dump_job(jobq_test_buf *b, const jobq_job *job);
void jobq_test_dump_event(jobq_test_buf *b, const jobq_event *event);
/* Appends one line with every field of job scheduler `s`. */
void jobq_test_dump_scheduler(jobq_test_buf *b, const jobq_scheduler *s);
/* Appends what the public API shows of `q`, its job schedulers included (the events log too
 * if `events`). */
void jobq_test_dump_queue(jobq_test_buf *b, jobq_queue *q, int events);
/* Appends every key and value of every database of LMDB backend `backend` (nothing when the
 * build has no LMDB). */
void jobq_test_dump_lmdb(jobq_test_buf *b, jobq_backend *backend);

#endif
