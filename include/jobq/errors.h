/**
 * @file
 * jobq — error codes. Fallible functions return 0 (or a count) on success and a negative
 * JOBQ_E* code on failure, so `if (rc < 0)` always works. jobq_error_message() gives the
 * detail of the calling thread's last failure.
 */
#ifndef JOBQ_ERRORS_H
#define JOBQ_ERRORS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The error table: XX(NAME, value, message) for each code, from which the enum, the names
 * and the messages are made. Users may expand it too (XX must be a macro of three arguments).
 */
#define JOBQ_ERROR_MAP(XX)                                                                         \
	XX(ERROR, -1, "generic error")                                                             \
	XX(ENOMEM, -2, "out of memory")                                                            \
	XX(EINVAL, -3, "invalid argument")                                                         \
	XX(EVERSION, -4, "options or backend version not supported")                               \
	XX(ENOTFOUND, -5, "not found")                                                             \
	XX(EEXISTS, -6, "already exists")                                                          \
	XX(ENOJOB, -7, "no job available")                                                         \
	XX(ELOCKLOST, -8, "job lock lost or token mismatch")                                       \
	XX(ESTATE, -9, "operation not allowed in the job's or queue's current state")              \
	XX(ETIMEDOUT, -10, "timed out")                                                            \
	XX(ECLOSED, -11, "handle is closed")                                                       \
	XX(ENOTSUP, -12, "operation not supported by this backend")                                \
	XX(ENOSPC, -13, "no space left")                                                           \
	XX(EIO, -14, "input/output error")                                                         \
	XX(EBACKEND, -15, "backend error")                                                         \
	XX(EUSER, -16, "stopped by a callback")

/** The return codes of the library: 0 for success, a negative JOBQ_E* for failure. */
typedef enum jobq_error_code {
	/** Success. */
	JOBQ_OK = 0,
/** @cond INTERNAL */
#define JOBQ__ERR_ENUM(name, val, msg) JOBQ_##name = val,
	JOBQ_ERROR_MAP(JOBQ__ERR_ENUM)
#undef JOBQ__ERR_ENUM
	/** @endcond */
} jobq_error_code;

/** Static message for a code ("unknown error" for others). Thread safety: any thread. */
JOBQ_EXTERN const char *jobq_strerror(int code);
/** Static name for a code, e.g. "JOBQ_EINVAL". Thread safety: any thread. */
JOBQ_EXTERN const char *jobq_error_name(int code);
/**
 * Detail of the calling thread's last failure ("" if none). Valid until the same thread's
 * next failing call. Thread safety: per thread.
 */
JOBQ_EXTERN const char *jobq_error_message(void);

#ifdef __cplusplus
}
#endif
#endif
