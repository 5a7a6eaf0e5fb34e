/*
 * Opening backends by URL, and the check of a backend's vtable: the one place where the
 * version and the mandatory slots are verified.
 */
#include <string.h>
#include <time.h>

#include "backends/backend.h"
#include "jobq/sys/alloc.h"

static int
has_prefix(const char *s, const char *prefix) {
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The URL's error, quoting it with its password hidden. */
static int
unusable(int code, const char *url, const char *why) {
	char *shown = jobq__url_redacted(url);
	int rc = jobq_error_set(code, "store URL '%s': %s", shown ? shown : "(out of memory)", why);
	jobq__free(shown);
	return rc;
}

int
jobq__backend_open_url(jobq_backend **out, const char *url) {
	if (url == NULL || url[0] == '\0')
		return jobq_error_set(JOBQ_EINVAL, "store URL is empty");
	if (has_prefix(url, "mem:"))
		return jobq__memory_open_url(out, url);
	if (has_prefix(url, "lmdb:")) {
#ifdef JOBQ_HAVE_LMDB
		return jobq__lmdb_open_url(out, url);
#else
		return unusable(JOBQ_ENOTSUP, url, "this jobq was built without LMDB");
#endif
	}
	if (has_prefix(url, "redis:") || has_prefix(url, "redis+unix:") ||
	    has_prefix(url, "rediss:") || has_prefix(url, "redis+cluster:") ||
	    has_prefix(url, "rediss+cluster:")) {
#ifdef JOBQ_HAVE_REDIS
		return jobq__redis_open_url(out, url);
#else
		return unusable(JOBQ_ENOTSUP, url, "this jobq was built without Redis");
#endif
	}
	return unusable(JOBQ_EINVAL, url,
	                "unknown scheme (expected mem://, lmdb:, redis:// or redis+unix://)");
}

int
jobq__backend_check(const jobq_backend *b) {
	if (b == NULL)
		return jobq_error_set(JOBQ_EINVAL, "backend is NULL");
	if (b->version == 0 || b->version > JOBQ_BACKEND_VERSION)
		return jobq_error_set(JOBQ_EVERSION,
		                      "backend '%s' has version %u; this jobq knows 1..%d",
		                      b->name ? b->name : "?", b->version, JOBQ_BACKEND_VERSION);
		/* Every version-1 slot but wait_for_work and wake is mandatory. */
#define NEED(slot)                                                                                 \
	do {                                                                                       \
		if (b->slot == NULL)                                                               \
			return jobq_error_set(JOBQ_EINVAL,                                         \
			                      "backend '%s' lacks the mandatory slot " #slot,      \
			                      b->name ? b->name : "?");                            \
	} while (0)
	NEED(queue_open);
	NEED(queue_close);
	NEED(add);
	NEED(fetch);
	NEED(extend_lock);
	NEED(complete);
	NEED(fail);
	NEED(release);
	NEED(reap_stalled);
	NEED(get);
	NEED(list);
	NEED(counts);
	NEED(remove);
	NEED(set_paused);
	NEED(is_paused);
	NEED(drain);
	NEED(clean);
	NEED(obliterate);
	NEED(promote);
	NEED(retry_failed);
	NEED(progress);
	NEED(add_log);
	NEED(get_logs);
	NEED(events_read);
	NEED(free);
#undef NEED
	return 0;
}

void
jobq__backend_wake(jobq_backend *b) {
	if (b->wake != NULL)
		b->wake(b);
}

int
jobq__backend_can_wait(const jobq_backend *b) {
	return b->wait_for_work != NULL;
}

void
jobq__backend_wait_for_work(jobq_backend *b, jobq_backend_queue *q, jobq_clock *clock,
                            int64_t timeout_ms) {
	if (b->wait_for_work != NULL)
		(void)b->wait_for_work(q, clock, timeout_ms);
}

int
jobq__backend_can_complete_fetch(const jobq_backend *b) {
	return b->version >= 2 && b->complete_fetch != NULL;
}

int
jobq__backend_check_store(jobq_check_report *report, jobq_backend *b, size_t max_messages) {
	if (b->version < 4 || b->check == NULL)
		return jobq_error_set(JOBQ_ENOTSUP, "the %s backend has no integrity check",
		                      b->name);
	return b->check(report, b, max_messages);
}

int
jobq__backend_scheduler_next(jobq_backend *b, jobq_backend_queue *q, const jobq_job *job,
                             int64_t now_ms) {
	if (b->version < 5 || b->scheduler_next == NULL)
		return 0;
	return b->scheduler_next(q, job, now_ms);
}

int
jobq__backend_list_queues(jobq_strings **out, jobq_backend *b) {
	if (b->version < 5 || b->list_queues == NULL)
		return jobq_error_set(JOBQ_ENOTSUP, "the %s backend cannot list its queues",
		                      b->name);
	return b->list_queues(out, b);
}

int
jobq__backend_count_workers(jobq_backend *b, jobq_backend_queue *q) {
	if (b->version < 5 || b->count_workers == NULL)
		return jobq_error_set(JOBQ_ENOTSUP, "the %s backend cannot count workers", b->name);
	return b->count_workers(q);
}

int
jobq__backend_metrics(jobq_metrics **out, jobq_backend *b, jobq_backend_queue *q, jobq_state kind,
                      int64_t start, int64_t end) {
	if (b->version < 5 || b->metrics == NULL)
		return jobq_error_set(JOBQ_ENOTSUP, "the %s backend keeps no metrics", b->name);
	return b->metrics(out, q, kind, start, end);
}

void
jobq__range_clip(size_t *first, size_t *n, size_t len, int64_t start, int64_t end) {
	int64_t l = (int64_t)len;
	if (start < 0)
		start = start + l < 0 ? 0 : start + l;
	if (end < 0)
		end += l;
	if (end >= l)
		end = l - 1;
	*first = (size_t)start;
	*n = start > end || start >= l ? 0 : (size_t)(end - start + 1);
}

int
jobq__backend_worker_attach(void **presence, jobq_backend *b, jobq_backend_queue *q,
                            const char *name) {
	*presence = NULL;
	if (b->version < 5 || b->worker_attach == NULL || b->worker_detach == NULL)
		return 0;
	return b->worker_attach(presence, q, name);
}

void
jobq__backend_worker_detach(jobq_backend *b, jobq_backend_queue *q, void *presence) {
	if (presence != NULL && b->version >= 5 && b->worker_detach != NULL)
		b->worker_detach(q, presence);
}

int
jobq__backend_has_limits(const jobq_backend *b, const char *what) {
	if (b->version < 5 || b->set_limits == NULL || b->get_limits == NULL ||
	    b->rate_limit == NULL)
		return jobq_error_set(JOBQ_ENOTSUP, "%s: the %s backend has no queue limits", what,
		                      b->name);
	return 0;
}

void
jobq__backend_free(jobq_backend *b) {
	if (b != NULL && b->free != NULL)
		b->free(b);
}

int64_t
jobq__mono_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
jobq__ms_to_timespec(struct timespec *ts, int64_t abs_ms) {
	ts->tv_sec = (time_t)(abs_ms / 1000);
	ts->tv_nsec = (long)((abs_ms % 1000) * 1000000);
}

void
jobq__cond_init_monotonic(pthread_cond_t *cv) {
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &attr);
	pthread_condattr_destroy(&attr);
}

int
jobq__keep_equal(const jobq_keep *a, const jobq_keep *b) {
	return a->mode == b->mode && a->count == b->count && a->age_ms == b->age_ms;
}

static int
str_eq(const char *a, const char *b) {
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int
jobq__job_options_equal(const jobq_job_options *a, const jobq_job_options *b) {
	return a->version == b->version && a->delay_ms == b->delay_ms &&
	       a->priority == b->priority && a->lifo == b->lifo && a->attempts == b->attempts &&
	       a->backoff.type == b->backoff.type && a->backoff.delay_ms == b->backoff.delay_ms &&
	       a->backoff.jitter == b->backoff.jitter &&
	       a->backoff.max_delay_ms == b->backoff.max_delay_ms &&
	       str_eq(a->backoff.custom_type, b->backoff.custom_type) &&
	       jobq__keep_equal(&a->remove_on_complete, &b->remove_on_complete) &&
	       jobq__keep_equal(&a->remove_on_fail, &b->remove_on_fail) &&
	       a->keep_logs == b->keep_logs && a->size_limit == b->size_limit &&
	       a->dedup_ttl_ms == b->dedup_ttl_ms && a->dedup_keep_last == b->dedup_keep_last &&
	       a->stack_trace_limit == b->stack_trace_limit;
}

void
jobq__stack_trim(char **lines, size_t *count, int64_t limit) {
	if (limit == 0)
		return;
	size_t keep = limit < 0 ? 0 : (uint64_t)limit < *count ? (size_t)limit : *count;
	size_t drop = *count - keep;
	if (drop == 0)
		return;
	for (size_t i = 0; i < drop; i++)
		jobq__free(lines[i]);
	memmove(lines, lines + drop, keep * sizeof(*lines));
	*count = keep;
}

size_t
jobq__u64_dec(char *buf, uint64_t v) {
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}

jobq_failure
jobq__deferred_failure(const char *reason, const jobq_job_options *o, const jobq_fetch_info *info) {
	jobq_keep keep = {JOBQ_KEEP_ALL, -1, -1};
	if (o->remove_on_fail.mode != JOBQ_KEEP_DEFAULT)
		keep = o->remove_on_fail;
	else if (info != NULL && info->keep_on_fail != NULL &&
	         info->keep_on_fail->mode != JOBQ_KEEP_DEFAULT)
		keep = *info->keep_on_fail;
	return (jobq_failure){.reason = reason,
	                      .stack = reason,
	                      .retry_at_ms = -1,
	                      .keep = keep,
	                      .attempts = o->attempts,
	                      .metrics_max_points = info != NULL ? info->metrics_max_points : 0,
	                      .stack_limit = o->stack_trace_limit};
}

int64_t
jobq__f64_to_i64(double d) {
	if (d != d)
		return 0;
	if (d >= 9223372036854775808.0) /* 2^63 */
		return INT64_MAX;
	if (d < -9223372036854775808.0)
		return INT64_MIN;
	return (int64_t)d;
}
