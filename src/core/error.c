/* Error codes, names, messages, and the per-thread detail message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

/*
 * The detail message of each thread. Most fit the fixed buffer; a longer one (a long URL, a
 * server's long words, a wrapped message) goes to the heap whole rather than being cut off,
 * and is freed by the thread's next message or, through the key's destructor, when the thread
 * exits. If that allocation fails, the message is cut and ends with "...".
 */
static _Thread_local char error_short[512];
static _Thread_local char *error_long;
static pthread_key_t error_key;
static pthread_once_t error_key_once = PTHREAD_ONCE_INIT;
static int error_key_ok;

static void
free_long(void *p) {
	jobq__free(p);
}

static void
make_key(void) {
	error_key_ok = pthread_key_create(&error_key, free_long) == 0;
}

static void
set_long(char *m) {
	if (error_long == m)
		return;
	jobq__free(error_long);
	error_long = m;
	if (error_key_ok)
		pthread_setspecific(error_key, m);
}

const char *
jobq_strerror(int code) {
	switch (code) {
	case JOBQ_OK:
		return "success";
#define XX(name, val, msg)                                                                         \
	case JOBQ_##name:                                                                          \
		return msg;
		JOBQ_ERROR_MAP(XX)
#undef XX
	default:
		return "unknown error";
	}
}

const char *
jobq_error_name(int code) {
	switch (code) {
	case JOBQ_OK:
		return "JOBQ_OK";
#define XX(name, val, msg)                                                                         \
	case JOBQ_##name:                                                                          \
		return "JOBQ_" #name;
		JOBQ_ERROR_MAP(XX)
#undef XX
	default:
		return "JOBQ_UNKNOWN";
	}
}

const char *
jobq_error_message(void) {
	return error_long != NULL ? error_long : error_short;
}

int
jobq_error_set(int code, const char *fmt, ...) {
	/* Formatted apart from the current message, which may be one of the arguments (a
	 * caller wrapping the message of a call that failed). */
	char tmp[sizeof(error_short)];
	char *full = NULL;
	va_list ap, again;
	va_start(ap, fmt);
	va_copy(again, ap);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0) {
		tmp[0] = '\0';
	} else if ((size_t)n >= sizeof(tmp)) {
		pthread_once(&error_key_once, make_key);
		if (error_key_ok && (full = jobq__malloc((size_t)n + 1)) != NULL)
			vsnprintf(full, (size_t)n + 1, fmt, again);
		else
			memcpy(tmp + sizeof(tmp) - 4, "...", 4);
	}
	va_end(again);
	memcpy(error_short, tmp, sizeof(tmp));
	set_long(full);
	return code;
}

void
jobq_error_clear(void) {
	error_short[0] = '\0';
	set_long(NULL);
}
