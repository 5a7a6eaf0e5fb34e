/*
 * Redis backend: the vtable over the Lua scripts of lua/ (one script per operation, each one
 * atomic step), wire-compatible with BullMQ 6.x (docs/protocol.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq_lua.h"
#include "redis_ops.h"

static const char *const key_suffixes[RQ_NKEYS] = {
    "wait",   "paused",           "active",  "prioritized",   "pc",     "delayed", "completed",
    "failed", "waiting-children", "stalled", "stalled-check", "marker", "meta",    "id",
    "events", "limiter"};

static void
sleep_real_ms(int64_t ms) {
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

const char *
rq_fmt_i64(numbuf *nb, int64_t v) {
	snprintf(nb->s, sizeof(nb->s), "%" PRId64, v);
	return nb->s;
}

int
rq_reply_int(const redisReply *r, long long *out) {
	if (r->type == REDIS_REPLY_INTEGER) {
		*out = r->integer;
		return 0;
	}
	if (r->type == REDIS_REPLY_STRING) {
		*out = strtoll(r->str, NULL, 10);
		return 0;
	}
	return jobq_error_set(JOBQ_EBACKEND, "redis: unexpected reply type %d", r->type);
}

/* Maps a script's negative status to a jobq error about job `id`. */
int
rq_script_status(long long st, const char *op, const char *id) {
	switch (st) {
	case -1:
		return jobq_error_set(JOBQ_ENOTFOUND, "redis %s: no job %s", op, id);
	case -2:
		return jobq_error_set(JOBQ_ELOCKLOST, "redis %s: the lock of job %s is gone", op,
		                      id);
	case -6:
		return jobq_error_set(JOBQ_ELOCKLOST, "redis %s: job %s is locked by another token",
		                      op, id);
	case -3:
		return jobq_error_set(JOBQ_ESTATE, "redis %s: job %s is not in the expected state",
		                      op, id);
	case -4:
		return jobq_error_set(JOBQ_ESTATE, "redis %s: job %s has pending children", op, id);
	case -9:
		return jobq_error_set(JOBQ_ESTATE,
		                      "redis %s: job %s has a child that failed with "
		                      "failParentOnFailure",
		                      op, id);
	case -8:
		return jobq_error_set(
		    JOBQ_ESTATE, "redis %s: job %s is the pending iteration of a job scheduler", op,
		    id);
	default:
		return jobq_error_set(JOBQ_EBACKEND, "redis %s: job %s: script status %lld", op, id,
		                      st);
	}
}

/* Runs a script that answers one integer; negative values become errors. */
int
rq_script_int(long long *out, jobq_backend_queue *q, int script, int argc, const char **argv,
              const size_t *lens, const char *op, const char *id) {
	int rc;
	redisReply *r = rq_script(&rc, q, script, argc, argv, lens);
	if (r == NULL)
		return rc;
	long long v = 0;
	rc = rq_reply_int(r, &v);
	freeReplyObject(r);
	if (rc < 0)
		return rc;
	if (out != NULL)
		*out = v;
	if (v < 0)
		return rq_script_status(v, op, id ? id : "");
	return 0;
}

/* --- queues --------------------------------------------------------------------------------- */

static void
rq_queue_close(jobq_backend_queue *q) {
	if (q == NULL)
		return;
	if (q->b != NULL) {
		/* blocking waits on this queue end with JOBQ_ECLOSED before the handle goes */
		redis_backend *b = q->b;
		pthread_mutex_lock(&b->mu);
		q->closing = 1;
		int busy = q->waits > 0;
		pthread_mutex_unlock(&b->mu);
		if (busy)
			rq_unblock_waiters(b, q);
		pthread_mutex_lock(&b->mu);
		while (q->waits > 0)
			pthread_cond_wait(&b->cv, &b->mu);
		pthread_mutex_unlock(&b->mu);
		/* idle connections named for this queue would still count as its workers */
		if (q->worker_name != NULL)
			rq_conn_drop_named(b, q->worker_name);
		if (q->events_name != NULL)
			rq_conn_drop_named(b, q->events_name);
	}
	if (q->b != NULL) {
		pthread_mutex_destroy(&q->cf.mu);
		pthread_mutex_destroy(&q->adds.mu);
	}
	rq_conn_close_own(q->pipe); /* (the core received every step it sent before this) */
	jobq__free(q->worker_name);
	jobq__free(q->events_name);
	for (int i = 0; i < RQ_NKEYS; i++)
		jobq__free(q->keys[i]);
	jobq__free(q->qp);
	jobq__free(q->name);
	jobq__free(q);
}

static int
rq_queue_open(jobq_backend_queue **out, jobq_backend *base, const char *name) {
	redis_backend *b = (redis_backend *)base;
	jobq_backend_queue *q = jobq__calloc(1, sizeof(*q));
	if (q == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	q->b = b;
	pthread_mutex_init(&q->cf.mu, NULL);
	pthread_mutex_init(&q->adds.mu, NULL);
	q->name = jobq__strdup(name);
	q->qp_len = strlen(b->prefix) + strlen(name) + 2;
	q->qp = jobq__malloc(q->qp_len + 1);
	char *b64 = rq_base64(name, strlen(name));
	size_t wl = strlen(b->prefix) + (b64 ? strlen(b64) : 0) + 8;
	q->worker_name = jobq__malloc(wl);
	q->events_name = jobq__malloc(wl);
	int ok = q->name != NULL && q->qp != NULL && b64 != NULL && q->worker_name != NULL &&
	         q->events_name != NULL;
	if (ok) {
		snprintf(q->qp, q->qp_len + 1, "%s:%s:", b->prefix, name);
		snprintf(q->worker_name, wl, "%s:%s", b->prefix, b64);
		snprintf(q->events_name, wl, "%s:%s:qe", b->prefix, b64);
	}
	jobq__free(b64);
	for (int i = 0; ok && i < RQ_NKEYS; i++) {
		size_t n = q->qp_len + strlen(key_suffixes[i]) + 1;
		q->keys[i] = jobq__malloc(n);
		if (q->keys[i] == NULL)
			ok = 0;
		else
			snprintf(q->keys[i], n, "%s%s", q->qp, key_suffixes[i]);
	}
	if (!ok) {
		rq_queue_close(q);
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	}
	*out = q;
	return 0;
}

/* --- construction --------------------------------------------------------------------------- */

static void
rq_free(jobq_backend *base) {
	redis_backend *b = (redis_backend *)base;
	if (b == NULL)
		return;
	rq_pool_free(b);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	jobq__free(b->host);
	jobq__free(b->unix_path);
	jobq__free(b->username);
	jobq__free(b->password);
	jobq__free(b->prefix);
	jobq__free(b->where);
	jobq__free(b);
}

int
jobq_redis_options_init(jobq_redis_options *opts, unsigned int version) {
	if (version != JOBQ_REDIS_OPTIONS_VERSION)
		return jobq_error_set(JOBQ_EVERSION, "jobq_redis_options version %u not supported",
		                      version);
	memset(opts, 0, sizeof(*opts));
	opts->version = version;
	return 0;
}

int
jobq_backend_redis_new(jobq_backend **out, const jobq_redis_options *opts) {
	jobq_redis_options dflt = JOBQ_REDIS_OPTIONS_INIT;
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "jobq_backend_redis_new: out is NULL");
	*out = NULL;
	if (opts == NULL)
		opts = &dflt;
	if (opts->version != JOBQ_REDIS_OPTIONS_VERSION)
		return jobq_error_set(JOBQ_EVERSION, "jobq_redis_options version %u not supported",
		                      opts->version);
	if (opts->port < 0 || opts->port > 65535)
		return jobq_error_set(JOBQ_EINVAL, "redis: port %d out of range", opts->port);
	if (opts->db < 0)
		return jobq_error_set(JOBQ_EINVAL, "redis: database %d is negative", opts->db);
	if (opts->prefix != NULL && opts->prefix[0] == '\0')
		return jobq_error_set(JOBQ_EINVAL, "redis: the key prefix is empty");
	if (opts->username != NULL && opts->password == NULL)
		return jobq_error_set(JOBQ_EINVAL, "redis: a username needs a password");
	if (opts->connect_wait_ms < 0)
		return jobq_error_set(JOBQ_EINVAL, "redis: connect_wait_ms %lld is negative",
		                      (long long)opts->connect_wait_ms);
	redis_backend *b = jobq__calloc(1, sizeof(*b));
	if (b == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	b->base.version = JOBQ_BACKEND_VERSION;
	b->base.name = "redis";
	/* Due times follow the core's now; locks are PX keys on server time. */
	b->base.caps = JOBQ_CAP_BLOCKING_WAIT | JOBQ_CAP_DURABLE | JOBQ_CAP_MULTIPROCESS |
	               JOBQ_CAP_JSON_DATA | JOBQ_CAP_DUE_CLOCK | JOBQ_CAP_DEDUP_KEEP_LAST;
	b->base.queue_open = rq_queue_open;
	b->base.queue_close = rq_queue_close;
	b->base.add = rq_add;
	b->base.fetch = rq_fetch;
	b->base.extend_lock = rq_extend_lock;
	b->base.complete = rq_complete;
	b->base.fail = rq_fail;
	b->base.release = rq_release;
	b->base.reap_stalled = rq_reap_stalled;
	b->base.get = rq_get;
	b->base.list = rq_list;
	b->base.counts = rq_counts;
	b->base.remove = rq_remove;
	b->base.set_paused = rq_set_paused;
	b->base.is_paused = rq_is_paused;
	b->base.drain = rq_drain;
	b->base.clean = rq_clean;
	b->base.obliterate = rq_obliterate;
	b->base.promote = rq_promote;
	b->base.retry_failed = rq_retry_failed;
	b->base.progress = rq_progress;
	b->base.add_log = rq_add_log;
	b->base.get_logs = rq_get_logs;
	b->base.events_read = rq_events_read;
	b->base.wait_for_work = rq_wait_for_work;
	b->base.wake = rq_wake;
	b->base.free = rq_free;
	b->base.complete_fetch = rq_complete_fetch;
	b->base.scheduler_next = rq_scheduler_next;
	b->base.scheduler_upsert = rq_scheduler_upsert;
	b->base.scheduler_get = rq_scheduler_get;
	b->base.scheduler_list = rq_scheduler_list;
	b->base.scheduler_remove = rq_scheduler_remove;
	b->base.add_send = rq_add_send;
	b->base.add_recv = rq_add_recv;
	b->base.list_queues = rq_list_queues;
	b->base.count_workers = rq_count_workers;
	b->base.metrics = rq_metrics;
	b->base.worker_attach = rq_worker_attach;
	b->base.worker_detach = rq_worker_detach;
	b->base.set_limits = rq_set_limits;
	b->base.get_limits = rq_get_limits;
	b->base.rate_limit = rq_rate_limit;
	/* flows (issue 14) */
	b->base.flow_add = rq_flow_add;
	b->base.dependencies = rq_dependencies;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->port = opts->port ? opts->port : 6379;
	b->db = opts->db;
	b->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
	b->command_timeout_ms = opts->command_timeout_ms > 0   ? opts->command_timeout_ms
	                        : opts->command_timeout_ms < 0 ? 0
	                                                       : RQ_DEFAULT_COMMAND_TIMEOUT_MS;
	b->reconnect_attempts = opts->reconnect_attempts ? opts->reconnect_attempts : 6;
	b->reconnect_max_delay_ms =
	    opts->reconnect_max_delay_ms > 0 ? opts->reconnect_max_delay_ms : 1000;
	b->seed = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)b;
	b->host = jobq__strdup(opts->host ? opts->host : "127.0.0.1");
	b->prefix = jobq__strdup(opts->prefix ? opts->prefix : "bull");
	b->unix_path = jobq__strdup(opts->unix_path);
	b->username = jobq__strdup(opts->username);
	b->password = jobq__strdup(opts->password);
	size_t wl =
	    (opts->unix_path ? strlen(opts->unix_path) : strlen(b->host ? b->host : "")) + 16;
	b->where = jobq__malloc(wl);
	if (b->host == NULL || b->prefix == NULL || b->where == NULL ||
	    (opts->unix_path && !b->unix_path) || (opts->username && !b->username) ||
	    (opts->password && !b->password)) {
		rq_free(&b->base);
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	}
	if (b->unix_path)
		snprintf(b->where, wl, "%s", b->unix_path);
	else
		snprintf(b->where, wl, "%s:%d", b->host, b->port);
	int rc = rq_conn_init(b, opts);
	if (rc == 0)
		rc = rq_connect_check(b);
	if (rc == JOBQ_EIO && opts->connect_wait_ms > 0) {
		/* the caller chose to wait for a server that is down (or restarting) */
		int64_t deadline = jobq__mono_ms() + opts->connect_wait_ms;
		int64_t delay = 10;
		while (rc == JOBQ_EIO && jobq__mono_ms() < deadline) {
			int64_t left = deadline - jobq__mono_ms();
			int64_t d = delay / 2 + (int64_t)((unsigned)rand_r(&b->seed) %
			                                  (unsigned)(delay / 2 + 1));
			sleep_real_ms(d < left ? d : left);
			delay = delay * 2 > b->reconnect_max_delay_ms ? b->reconnect_max_delay_ms
			                                              : delay * 2;
			rc = rq_connect_check(b);
		}
		if (rc == JOBQ_EIO)
			rc = jobq_error_set(JOBQ_EIO, "%s (still down after waiting %lld ms)",
			                    jobq_error_message(), (long long)opts->connect_wait_ms);
	}
	if (rc < 0) {
		rq_free(&b->base); /* sets no error: the message stays */
		return rc;
	}
	*out = &b->base;
	return 0;
}
