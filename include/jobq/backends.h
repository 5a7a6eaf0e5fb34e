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

/* --- Redis backend (begin) ------------------------------------------------------------------- */

/**
 * Connection settings of the Redis backend (wire-compatible with BullMQ 6.x). Strings are
 * copied. The backend keeps one connection per concurrently calling thread plus one per
 * blocking wait, reconnects with capped exponential backoff and jitter, and fails a call
 * with JOBQ_EIO when the server stays unreachable.
 */
typedef struct jobq_redis_options {
	unsigned int version;       /* JOBQ_REDIS_OPTIONS_VERSION */
	const char *host;           /* NULL: "127.0.0.1" (ignored when unix_path is set) */
	int port;                   /* 0: 6379 */
	const char *unix_path;      /* unix socket path; NULL: TCP */
	const char *username;       /* ACL user for AUTH; NULL: the default user */
	const char *password;       /* NULL: no AUTH */
	int db;                     /* SELECT'ed database, default 0 */
	const char *prefix;         /* key prefix, NULL: "bull" (keys are <prefix>:<queue>:...) */
	int64_t connect_timeout_ms; /* 0: 5000 */
	int64_t command_timeout_ms; /* 0: none (blocking waits add their own time) */
	unsigned int reconnect_attempts; /* tries after a lost connection; 0: 6 */
	int64_t reconnect_max_delay_ms;  /* cap of the backoff between tries; 0: 1000 */
} jobq_redis_options;

#define JOBQ_REDIS_OPTIONS_VERSION 1
#define JOBQ_REDIS_OPTIONS_INIT                                                                    \
	{ JOBQ_REDIS_OPTIONS_VERSION, NULL, 0, NULL, NULL, NULL, 0, NULL, 0, 0, 0, 0 }

/** Fills `opts` with the defaults. JOBQ_EVERSION if `version` is not supported. */
JOBQ_EXTERN int jobq_redis_options_init(jobq_redis_options *opts, unsigned int version);

/**
 * The Redis backend. Connects once to check the server (JOBQ_EIO naming the address and the
 * reason when it is down, JOBQ_EBACKEND when AUTH or SELECT is refused). `opts` NULL means
 * defaults (127.0.0.1:6379). Thread safety: any thread.
 */
JOBQ_EXTERN int jobq_backend_redis_new(jobq_backend **out, const jobq_redis_options *opts);

/* --- Redis backend (end) --------------------------------------------------------------------- */

#ifdef __cplusplus
}
#endif
#endif
