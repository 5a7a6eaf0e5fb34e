/*
 * jobq — constructors of the built-in backends, for callers who build a backend themselves
 * and open it with jobq_store_open_backend (jobq_store_open does this from a URL).
 */
#ifndef JOBQ_BACKENDS_H
#define JOBQ_BACKENDS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct jobq_backend jobq_backend;

/**
 * The memory backend. `name` NULL or "": a private instance. Otherwise every backend of the
 * same name in this process shares one instance (it lives while any of them is open).
 */
JOBQ_EXTERN int jobq_backend_memory_new(jobq_backend **out, const char *name);

#ifdef __cplusplus
}
#endif
#endif
