/*
 * Redis backend: what the files of the vtable share. redis.c builds the vtable and opens
 * queues; redis_combine.c combines calls of several threads into one script call;
 * redis_add.c adds; redis_finish.c fetches and finishes; redis_admin.c reads and administers;
 * redis_wait.c holds the blocking waits, the events and wake().
 */
#ifndef JOBQ_REDIS_OPS_H
#define JOBQ_REDIS_OPS_H

#include "redis_int.h"

/* A decimal rendering of an integer, kept alive for one call. */
typedef struct numbuf {
	char s[24];
} numbuf;

/* redis.c: small helpers of the operations */
const char *rq_fmt_i64(numbuf *nb, int64_t v);
/* An integer or decimal string reply into *out; JOBQ_EBACKEND for another type. */
int rq_reply_int(const redisReply *r, long long *out);
/* Maps a script's negative status to a jobq error about job `id`. */
int rq_script_status(long long st, const char *op, const char *id);
/* Runs a script that answers one integer; negative values become errors. */
int rq_script_int(long long *out, jobq_backend_queue *q, int script, int argc, const char **argv,
                  const size_t *lens, const char *op, const char *id);

/* redis_combine.c: runs `me` in a flight of compatible queued calls of up to `max_steps`
 * steps; `fly` carries out a flight (its first call is the leader, the rest follow ->next). */
typedef void (*rq_fly_fn)(jobq_backend_queue *q, rq_call *group);
void rq_combine(rq_combiner *c, jobq_backend_queue *q, rq_call *me, size_t max_steps,
                rq_fly_fn fly);

/* redis_add.c */
int rq_add(jobq_job_id *ids, int *outcomes, jobq_backend_queue *q, const jobq_add_request *reqs,
           size_t n, int64_t now_ms);
int rq_add_send(jobq_backend_queue *q, const jobq_add_request *reqs, size_t n, int64_t now_ms);
int rq_add_recv(jobq_job_id *ids, int *outcomes, jobq_backend_queue *q, size_t n);

/* redis_metrics.c: the metrics slot */
int rq_metrics(jobq_metrics **out, jobq_backend_queue *q, jobq_state kind, int64_t start,
               int64_t end);

/* redis_finish.c */
int rq_fetch(jobq_job **out, jobq_fetch_info *info, jobq_backend_queue *q, const char *token,
             int64_t lock_ms, int64_t now_ms);
int rq_extend_lock(jobq_backend_queue *q, const char *id, const char *token, int64_t lock_ms,
                   int64_t now_ms);
int rq_complete(jobq_backend_queue *q, const char *id, const char *token, const char *result_json,
                const jobq_keep *keep, int64_t now_ms);
int rq_complete_fetch(jobq_job **jobs, jobq_fetch_info *info, jobq_backend_queue *q,
                      jobq_completion *done, size_t ndone, const char *const *tokens, size_t max,
                      int64_t lock_ms, int64_t now_ms);
int rq_fail(jobq_backend_queue *q, const char *id, const char *token, const jobq_failure *f,
            int64_t now_ms);
int rq_release(jobq_backend_queue *q, const char *id, const char *token, int64_t now_ms);
int rq_reap_stalled(jobq_strings **recovered, jobq_backend_queue *q, uint32_t max_stalled,
                    int64_t stalled_interval_ms, int64_t now_ms);

/* redis_admin.c */
int rq_get(jobq_job **out, jobq_backend_queue *q, const char *id);
int rq_list(jobq_job_list **out, jobq_backend_queue *q, jobq_state state, size_t offset,
            size_t limit);
int rq_counts(jobq_counts *out, jobq_backend_queue *q);
int rq_remove(jobq_backend_queue *q, const char *id, int64_t now_ms);
int rq_set_paused(jobq_backend_queue *q, int paused, int64_t now_ms);
int rq_is_paused(int *out, jobq_backend_queue *q);
int rq_drain(jobq_backend_queue *q, int include_delayed, int64_t now_ms);
int rq_clean(jobq_strings **removed, jobq_backend_queue *q, jobq_state state, int64_t grace_ms,
             size_t limit, int64_t now_ms);
int rq_obliterate(jobq_backend_queue *q, int force, int64_t now_ms);
int rq_promote(jobq_backend_queue *q, const char *id, int64_t now_ms);
int rq_retry_failed(jobq_backend_queue *q, const char *id, int64_t now_ms);
int rq_progress(jobq_backend_queue *q, const char *id, const char *token, const char *json,
                int64_t now_ms);
int rq_add_log(jobq_backend_queue *q, const char *id, const char *line, int64_t keep);
int rq_get_logs(jobq_strings **out, jobq_backend_queue *q, const char *id, size_t start,
                size_t limit);

/* redis_wait.c */
int rq_wait_for_work(jobq_backend_queue *q, jobq_clock *clock, int64_t timeout_ms);
/* redis_limits.c */
int rq_set_limits(jobq_backend_queue *q, const jobq_queue_limits *l, unsigned int what,
                  int64_t now_ms);
int rq_get_limits(jobq_queue_limits *out, jobq_backend_queue *q, int64_t now_ms);
int rq_rate_limit(jobq_backend_queue *q, int64_t ms, int64_t now_ms);
void rq_wake(jobq_backend *base);
/* CLIENT UNBLOCK for the blocking waits of queue `only` (NULL: every queue). */
void rq_unblock_waiters(redis_backend *b, jobq_backend_queue *only);
int rq_events_read(jobq_event_list **out, jobq_backend_queue *q, const char *after, size_t max,
                   int64_t timeout_ms);

/* redis_flow.c: flows (vtable version 5) */
int rq_flow_add(jobq_job_id *ids, jobq_backend_queue *q, const jobq_flow_job *jobs, size_t n,
                const jobq_flow_parent *parent, int64_t now_ms);
int rq_dependencies(jobq_dependencies *out, jobq_backend_queue *q, const char *id);

#endif
