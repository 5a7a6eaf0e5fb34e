/**
 * @file
 * jobq — allocation helpers for the library and backend writers. Everything the core frees
 * (jobs, lists, strings) must come from these, so that the allocator hook sees it.
 */
#ifndef JOBQ_SYS_ALLOC_H
#define JOBQ_SYS_ALLOC_H

#include "../common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** malloc through the installed allocator. */
JOBQ_EXTERN void *jobq__malloc(size_t size);
/** calloc through the installed allocator (overflow-checked). */
JOBQ_EXTERN void *jobq__calloc(size_t n, size_t size);
/** realloc through the installed allocator. */
JOBQ_EXTERN void *jobq__realloc(void *ptr, size_t size);
/** free through the installed allocator. NULL is a no-op. */
JOBQ_EXTERN void jobq__free(void *ptr);
/** Copies of strings and bytes; NULL in gives NULL out. memdup adds a NUL after the bytes. */
JOBQ_EXTERN char *jobq__strdup(const char *s);
/** A copy of at most `n` bytes of `s`, NUL-terminated. */
JOBQ_EXTERN char *jobq__strndup(const char *s, size_t n);
/** A copy of `n` bytes of `p` with a NUL after them. */
JOBQ_EXTERN void *jobq__memdup(const void *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif
