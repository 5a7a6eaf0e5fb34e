/**
 * @file
 * jobq — constructors of the built-in backends, for callers who build a backend themselves
 * and open it with jobq_store_open_backend (jobq_store_open does this from a URL).
 */
#ifndef JOBQ_BACKENDS_H
#define JOBQ_BACKENDS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The memory backend. `name` NULL or "": a private instance. Otherwise every backend of the
 * same name in this process shares one instance (it lives while any of them is open).
 */
JOBQ_EXTERN int jobq_backend_memory_new(jobq_backend **out, const char *name);

/* --- LMDB backend (begin) -------------------------------------------------------------------- */

/**
 * How commits reach the disk. Every mode survives a crash (kill -9) of any process: a commit
 * is in the OS page cache once the call returns. The modes differ on an OS crash / power loss:
 *
 * - JOBQ_LMDB_SYNC (default): every operation is synced (LMDB's own synced commit) before the
 *   call returns. Nothing acknowledged is ever lost.
 * - JOBQ_LMDB_GROUP: commits are written without a sync, then the caller waits until one
 *   fdatasync that started after its commit has finished; one sync covers every caller that
 *   committed meanwhile (group commit). An acknowledged operation is durable when the call
 *   returns; a power loss while that sync runs may, as for LMDB's MDB_NOSYNC, damage the store.
 * - JOBQ_LMDB_PERIODIC: commits are not synced; a background thread syncs every `sync_ms`. An
 *   OS crash loses at most the operations of the last window (same caveat as GROUP).
 *
 * The mode belongs to the environment: in one process, every store on one directory must use
 * the same mode (JOBQ_EINVAL otherwise).
 */
typedef enum jobq_lmdb_durability {
	JOBQ_LMDB_SYNC = 0,
	JOBQ_LMDB_GROUP,
	JOBQ_LMDB_PERIODIC
} jobq_lmdb_durability;

/** Options of the LMDB backend; initialise with JOBQ_LMDB_OPTIONS_INIT or jobq_lmdb_options_init().
 */
typedef struct jobq_lmdb_options {
	unsigned int version;            /**< JOBQ_LMDB_OPTIONS_VERSION */
	jobq_lmdb_durability durability; /**< default JOBQ_LMDB_SYNC */
	uint32_t sync_ms;                /**< PERIODIC: sync window in ms, default 100 */
	uint64_t map_size;      /**< initial map size in bytes; 0: 64 MiB. Grows when full */
	unsigned int file_mode; /**< mode of the files created, default 0600 */
} jobq_lmdb_options;

/** The version of jobq_lmdb_options this header defines. */
#define JOBQ_LMDB_OPTIONS_VERSION 1
/** The defaults of jobq_lmdb_options. */
#define JOBQ_LMDB_OPTIONS_INIT                                                                     \
	{ JOBQ_LMDB_OPTIONS_VERSION, JOBQ_LMDB_SYNC, 100, 0, 0600 }

/** Fills `opts` with the defaults. JOBQ_EVERSION if `version` is not supported. */
JOBQ_EXTERN int jobq_lmdb_options_init(jobq_lmdb_options *opts, unsigned int version);

/**
 * The LMDB backend over directory `path` (which must exist; the URL opener creates it). Several
 * processes may open the same directory; in one process every backend on one path shares one
 * environment. `opts` NULL means defaults. JOBQ_EIO / JOBQ_EINVAL, with the path and the
 * reason, for a missing or read-only directory, a corrupt file or a foreign LMDB store;
 * JOBQ_EIO "store is truncated" (with the sizes) for a data.mdb shorter than its last page in
 * use, or empty or missing in a directory that held a store; JOBQ_ENOSPC when the file system
 * is full. A failed open removes the files it created, and only those. Thread safety: any
 * thread.
 */
JOBQ_EXTERN int jobq_backend_lmdb_new(jobq_backend **out, const char *path,
                                      const jobq_lmdb_options *opts);

/* --- LMDB backend (end) ---------------------------------------------------------------------- */

/* --- Redis backend (begin) ------------------------------------------------------------------- */

/**
 * Connection settings of the Redis backend (wire-compatible with BullMQ 6.x). Strings are
 * copied. The backend keeps one connection per concurrently calling thread plus one per
 * blocking wait, reconnects with capped exponential backoff and jitter, and fails a call
 * with JOBQ_EIO when the server stays unreachable.
 */
typedef struct jobq_redis_options {
	unsigned int version;  /**< JOBQ_REDIS_OPTIONS_VERSION */
	const char *host;      /**< NULL: "127.0.0.1" (ignored when unix_path is set) */
	int port;              /**< 0: 6379 */
	const char *unix_path; /**< unix socket path; NULL: TCP */
	const char *username;  /**< ACL user for AUTH; NULL: the default user */
	const char *password;  /**< NULL: no AUTH */
	int db;                /**< SELECT'ed database, default 0 */
	const char *prefix;    /**< key prefix, NULL: "bull" (keys are `prefix:queue:...`) */
	/** Connecting, and the replies to the setup commands (AUTH, SELECT, CLIENT ID); 0: 5000.
	 * URL query: connect_timeout_ms=N. */
	int64_t connect_timeout_ms;
	/** How long a command waits for its reply before the call fails with JOBQ_EIO ("no
	 * reply ... within N ms") and the connection is dropped; 0: 30000, < 0: no limit.
	 * Blocking waits (a worker waiting for jobs, an event read) wait their own blocking
	 * time plus this. URL query: command_timeout_ms=N. */
	int64_t command_timeout_ms;
	unsigned int reconnect_attempts; /**< tries after a lost connection; 0: 6 */
	int64_t reconnect_max_delay_ms;  /**< cap of the backoff between tries; 0: 1000 */
	/** A server that is down when the backend is created: 0 (default) fails at once with
	 * JOBQ_EIO; > 0 keeps trying (capped exponential backoff with jitter) for up to this
	 * many ms. URL query: connect_wait_ms=N. */
	int64_t connect_wait_ms;
	/** Non-zero: TLS (URL scheme rediss://; TCP only). The server's certificate is verified
	 * against tls_ca_file / tls_ca_path, or the system's CA store when both are NULL, and
	 * must be valid for tls_sni (NULL: the host), which is also sent as SNI. */
	int tls;
	const char *tls_ca_file;   /**< PEM file of trusted CAs; URL: cacert=FILE */
	const char *tls_ca_path;   /**< directory of hashed CA certificates; URL: capath=DIR */
	const char *tls_cert_file; /**< client certificate (PEM); URL: cert=FILE */
	const char *tls_key_file;  /**< its private key (PEM); URL: key=FILE */
	const char *tls_sni;       /**< the server's name, sent and verified; URL: sni=NAME */
	int tls_insecure;          /**< skip verification (a warning says so); URL: insecure=1 */
} jobq_redis_options;

/** The version of jobq_redis_options this header defines. */
#define JOBQ_REDIS_OPTIONS_VERSION 1
/** The defaults of jobq_redis_options. */
#define JOBQ_REDIS_OPTIONS_INIT                                                                    \
	{                                                                                          \
		JOBQ_REDIS_OPTIONS_VERSION, NULL, 0, NULL, NULL, NULL, 0, NULL, 0, 0, 0, 0, 0, 0,  \
		    NULL, NULL, NULL, NULL, NULL, 0                                                \
	}

/** Fills `opts` with the defaults. JOBQ_EVERSION if `version` is not supported. */
JOBQ_EXTERN int jobq_redis_options_init(jobq_redis_options *opts, unsigned int version);

/**
 * The Redis backend. Connects once to check the server (JOBQ_EIO naming the address and the
 * reason when it is down, after opts->connect_wait_ms of retries if set; JOBQ_EBACKEND when
 * AUTH or SELECT is refused). `opts` NULL means
 * defaults (127.0.0.1:6379). Thread safety: any thread.
 */
JOBQ_EXTERN int jobq_backend_redis_new(jobq_backend **out, const jobq_redis_options *opts);

/* --- Redis backend (end) --------------------------------------------------------------------- */

#ifdef __cplusplus
}
#endif
#endif
