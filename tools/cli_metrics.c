/*
 * jobq command — BullMQ's per-minute metrics (jobq/metrics.h): `jobq metrics QUEUE [--json]`,
 * and the per-minute figures of `stats`, `top` and `metrics --prometheus` when a queue's
 * workers keep metrics (jobq work --metrics N, a Node worker's metrics.maxDataPoints).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MINUTE_MS 60000

static int64_t
minute_of(int64_t t) {
	return t >= 0 ? t / MINUTE_MS : -((-t + MINUTE_MS - 1) / MINUTE_MS);
}

/*
 * The jobs finished in minute `x` by BullMQ's bookkeeping: those since prevTS all fall in
 * prevTS's minute p (a later finish would have closed it); data[i] holds minute p - 1 - i
 * (the points of the minutes that had none are zeros); `m` holds data[0] at most.
 */
static int64_t
jobs_in(const jobq_metrics *m, int64_t x) {
	int64_t p = minute_of(m->prev_ts);
	if (x == p)
		return m->count - m->prev_count;
	if (x == p - 1 && m->data_len > 0)
		return m->data[0];
	return 0;
}

int
cli_metrics_rate(int64_t *per_minute, int64_t *total, jobq_queue *q, jobq_state kind,
                 int64_t now_ms) {
	jobq_metrics *m = NULL;
	int rc = jobq_queue_metrics(&m, q, kind, 0, 0);
	if (rc == JOBQ_ENOTSUP)
		return 0;
	if (rc < 0)
		return rc;
	int have = m->count > 0;
	if (have) {
		/* the last 60 s: this minute so far, and the share of the previous one still in
		 * the window (as a sliding-window counter estimates it) */
		int64_t now = minute_of(now_ms), into = now_ms - now * MINUTE_MS;
		int64_t cur = jobs_in(m, now), prev = jobs_in(m, now - 1);
		*per_minute = cur + (prev * (MINUTE_MS - into) + MINUTE_MS / 2) / MINUTE_MS;
		*total = m->count;
	}
	jobq_metrics_free(m);
	return have;
}

static json_t *
metrics_json(const jobq_metrics *m) {
	json_t *data = json_array();
	for (size_t i = 0; i < m->data_len; i++)
		json_array_append_new(data, json_integer((json_int_t)m->data[i]));
	return json_pack("{s:{s:I,s:I,s:I},s:o,s:I}", "meta", "count", (json_int_t)m->count,
	                 "prevTS", (json_int_t)m->prev_ts, "prevCount", (json_int_t)m->prev_count,
	                 "data", data, "count", (json_int_t)m->points);
}

static void
metrics_text(const char *kind, const jobq_metrics *m) {
	char t[64];
	printf("%s: %lld in all", kind, (long long)m->count);
	if (m->prev_ts > 0)
		printf(", %lld since %s", (long long)(m->count - m->prev_count),
		       cli_fmt_time(t, sizeof(t), m->prev_ts));
	if (m->points == 0) {
		printf("\n  no minute closed yet\n");
		return;
	}
	printf("\n  per minute, newest first (%zu of %zu):", m->data_len, m->points);
	for (size_t i = 0; i < m->data_len; i++)
		printf(" %lld", (long long)m->data[i]);
	printf("\n");
}

/* `jobq metrics QUEUE [--start N] [--end N] [--json]` (the --prometheus form is cli_ops.c's). */
int
cli_metrics_queue(jobq_store *store, const char *name, int64_t start, int64_t end) {
	jobq_queue *q;
	jobq_metrics *m[2] = {NULL, NULL};
	if (cli_queue_exists(store, name) == 0)
		return cli_fail(CLI_EXIT_NOTFOUND, "no queue '%s' in the store", name);
	int rc = jobq_queue_open(&q, store, name);
	if (rc < 0)
		return cli_lib_fail(rc, name);
	if ((rc = jobq_queue_metrics(&m[0], q, JOBQ_STATE_COMPLETED, start, end)) >= 0)
		rc = jobq_queue_metrics(&m[1], q, JOBQ_STATE_FAILED, start, end);
	jobq_queue_close(q);
	if (rc < 0) {
		jobq_metrics_free(m[0]);
		return cli_lib_fail(rc, name);
	}
	if (cli_g.json) {
		rc = cli_print_json(json_pack("{s:s,s:o,s:o}", "queue", name, "completed",
		                              metrics_json(m[0]), "failed", metrics_json(m[1])));
	} else {
		printf("%s\n", name);
		metrics_text("completed", m[0]);
		metrics_text("failed", m[1]);
		rc = 0;
	}
	jobq_metrics_free(m[0]);
	jobq_metrics_free(m[1]);
	return rc;
}
