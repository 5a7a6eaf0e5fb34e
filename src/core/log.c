/*
 * The log hook: one process-wide handler, read under a lock and called outside it, so that
 * a handler may take its time without holding up a thread that replaces it.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "jobq/log.h"

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static jobq_log_fn log_fn;
static void *log_user;

void
jobq_log_set_handler(jobq_log_fn fn, void *user) {
	pthread_mutex_lock(&log_mu);
	log_fn = fn;
	log_user = user;
	pthread_mutex_unlock(&log_mu);
}

int
jobq_log_enabled(void) {
	pthread_mutex_lock(&log_mu);
	int on = log_fn != NULL;
	pthread_mutex_unlock(&log_mu);
	return on;
}

const char *
jobq_log_level_name(jobq_log_level level) {
	switch (level) {
	case JOBQ_LOG_DEBUG:
		return "debug";
	case JOBQ_LOG_INFO:
		return "info";
	case JOBQ_LOG_WARN:
		return "warn";
	case JOBQ_LOG_ERROR:
		return "error";
	}
	return "?";
}

void
jobq_log_emit(jobq_log_level level, const char *component, const char *queue, const char *job_id,
              const char *fmt, ...) {
	pthread_mutex_lock(&log_mu);
	jobq_log_fn fn = log_fn;
	void *user = log_user;
	pthread_mutex_unlock(&log_mu);
	if (fn == NULL)
		return;
	char message[1001];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	jobq_log_record r = {level, component ? component : "jobq", queue, job_id, message};
	fn(&r, user);
}
