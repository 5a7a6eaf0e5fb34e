/**
 * @file
 * jobq — common definitions: export macro, version, allocator hook, small output types.
 *
 * Threading rule for the whole library: a jobq_store and a jobq_queue may be used from any
 * number of threads at once; a jobq_job only inside the process callback that received it (or,
 * in manual mode, by the one thread that fetched it); error messages are per thread.
 */
#ifndef JOBQ_COMMON_H
#define JOBQ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "jobq/version.h" /* generated: <build>/include, or installed beside this file */

#ifdef __cplusplus
extern "C" {
#endif

/** Marks the library's exported functions (default visibility; the library builds hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define JOBQ_EXTERN __attribute__((visibility("default")))
#else
#define JOBQ_EXTERN
#endif

/** Longest job id, queue name and job name in bytes (without the NUL). */
#define JOBQ_ID_MAX 127
/** Longest queue name in bytes (without the NUL). */
#define JOBQ_QUEUE_NAME_MAX 200
/** Longest job name in bytes (without the NUL). */
#define JOBQ_JOB_NAME_MAX 1024
/**
 * The latest time (ms since the epoch) and the longest duration (ms) the library takes:
 * 2^53 - 1, beyond which JavaScript (BullMQ) and Lua numbers lose integer precision. Lock
 * times and timestamps past it are refused; a delay that would make a job due past it is
 * cut to make the job due at JOBQ_TIME_MAX_MS (in effect never, as in BullMQ).
 */
#define JOBQ_TIME_MAX_MS INT64_C(9007199254740991)

/**
 * The version of the library in use, "MAJOR.MINOR.PATCH": the one linked at run time, which
 * may differ from JOBQ_VERSION_STRING, the one of the headers compiled against.
 * Thread safety: any thread.
 */
JOBQ_EXTERN const char *jobq_version(void);

/** A storage backend (include/jobq/sys/backend.h); opaque to users. */
typedef struct jobq_backend jobq_backend;

/** A job id, by value, so adding a job allocates nothing for its id. */
typedef struct jobq_job_id {
	char str[JOBQ_ID_MAX + 1]; /**< the id, NUL-terminated */
} jobq_job_id;

/** A list of strings returned to the caller; free with jobq_strings_free(). */
typedef struct jobq_strings {
	size_t count; /**< number of strings */
	char **items; /**< `count` NUL-terminated strings */
} jobq_strings;

/** Frees a list returned by the library. NULL is a no-op. Thread safety: any thread. */
JOBQ_EXTERN void jobq_strings_free(jobq_strings *list);

/**
 * Allocator hook, set once before any other call. hiredis, msgpack-c and LMDB allocate with
 * libc and ignore it. Thread safety: call before any other thread uses the library.
 */
typedef struct jobq_allocator {
	void *ctx;                                           /**< passed to each function as is */
	void *(*malloc)(void *ctx, size_t size);             /**< as malloc(3) */
	void *(*realloc)(void *ctx, void *ptr, size_t size); /**< as realloc(3) */
	void (*free)(void *ctx, void *ptr);                  /**< as free(3) */
} jobq_allocator;

/** Installs `a` (copied), or restores libc's allocator when `a` is NULL. */
JOBQ_EXTERN int jobq_set_allocator(const jobq_allocator *a);

#ifdef __cplusplus
}
#endif
#endif
