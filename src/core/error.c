/* Error codes, names, messages, and the per-thread detail message. */
#include <stdarg.h>
#include <stdio.h>

#include "core.h"

static _Thread_local char error_detail[512];

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
	return error_detail;
}

int
jobq_error_set(int code, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_detail, sizeof(error_detail), fmt, ap);
	va_end(ap);
	return code;
}

void
jobq_error_clear(void) {
	error_detail[0] = '\0';
}
