/* Test helpers: a store as text (dump.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dump.h"
#include "jobq/sys/backend.h"

#ifdef JOBQ_HAVE_LMDB
#include "backends/lmdb/lmdb_internal.h"
#endif

/* --- the buffer ---------------------------------------------------------------------------- */

void
jobq_test_buf_printf(jobq_test_buf *b, const char *fmt, ...) {
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = b->cap - b->len;
		int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		assert_non_null(b->p);
		b->cap = cap;
	}
}

void
jobq_test_buf_hex(jobq_test_buf *b, const void *p, size_t n) {
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		jobq_test_buf_printf(b, "%02x", c[i]);
}

void
jobq_test_buf_free(jobq_test_buf *b) {
	free(b->p);
	*b = (jobq_test_buf){0};
}

const char *
jobq_test_buf_str(const jobq_test_buf *b) {
	return b->p ? b->p : "";
}

/* --- snapshots ------------------------------------------------------------------------------ */

static void
render_keep(jobq_test_buf *b, const char *what, const jobq_keep *k) {
	jobq_test_buf_printf(b, " %s=%d/%lld/%lld", what, (int)k->mode, (long long)k->count,
	                     (long long)k->age_ms);
}

void
jobq_test_dump_job(jobq_test_buf *b, const jobq_job *j) {
	size_t len = 0;
	const void *data = jobq_job_data(j, &len);
	jobq_test_buf_printf(b, "job %s name=%s queue=%s state=%s data=", jobq_job_id_of(j),
	                     jobq_job_name(j), jobq_job_queue_name(j),
	                     jobq_state_name(jobq_job_state(j)));
	jobq_test_buf_hex(b, data, len);
	jobq_test_buf_printf(
	    b,
	    " ts=%lld processed=%lld finished=%lld delay=%lld prio=%u started=%u made=%u "
	    "stalled=%u progress=%s result=%s reason=%s",
	    (long long)jobq_job_timestamp(j), (long long)jobq_job_processed_on(j),
	    (long long)jobq_job_finished_on(j), (long long)jobq_job_delay(j), jobq_job_priority(j),
	    jobq_job_attempts_started(j), jobq_job_attempts_made(j), jobq_job_stalled_count(j),
	    jobq_job_progress(j) ? jobq_job_progress(j) : "-",
	    jobq_job_result(j) ? jobq_job_result(j) : "-",
	    jobq_job_failed_reason(j) ? jobq_job_failed_reason(j) : "-");
	for (size_t i = 0; i < jobq_job_stacktrace_count(j); i++)
		jobq_test_buf_printf(b, " stack[%zu]=%s", i, jobq_job_stacktrace_at(j, i));
	const jobq_job_options *o = jobq_job_options_of(j);
	jobq_test_buf_printf(
	    b, " opts{delay=%lld prio=%u lifo=%d attempts=%u backoff=%d/%lld/%g/%lld/%s id=%s",
	    (long long)o->delay_ms, o->priority, o->lifo, o->attempts, (int)o->backoff.type,
	    (long long)o->backoff.delay_ms, o->backoff.jitter, (long long)o->backoff.max_delay_ms,
	    o->backoff.custom_type ? o->backoff.custom_type : "-", o->job_id ? o->job_id : "-");
	render_keep(b, "roc", &o->remove_on_complete);
	render_keep(b, "rof", &o->remove_on_fail);
	jobq_test_buf_printf(b, " keep_logs=%lld size_limit=%zu dedup=%s/%lld ts=%lld}\n",
	                     (long long)o->keep_logs, o->size_limit,
	                     o->dedup_id ? o->dedup_id : "-", (long long)o->dedup_ttl_ms,
	                     (long long)o->timestamp);
}

void
jobq_test_dump_event(jobq_test_buf *b, const jobq_event *e) {
	jobq_test_buf_printf(b, "event %s %s job=%s", e->id, e->event, e->job_id ? e->job_id : "-");
	for (size_t i = 0; i < e->nfields; i++)
		jobq_test_buf_printf(b, " %s=%s", e->fields[i].key, e->fields[i].value);
	jobq_test_buf_printf(b, "\n");
}

void
jobq_test_dump_scheduler(jobq_test_buf *b, const jobq_scheduler *s) {
	jobq_test_buf_printf(
	    b,
	    "scheduler %s name=%s every=%lld offset=%lld pattern=%s tz=%s start=%lld end=%lld "
	    "limit=%lld iterations=%lld next=%lld data=%s opts=%s\n",
	    s->id, s->name, (long long)s->every_ms, (long long)s->offset_ms,
	    s->pattern ? s->pattern : "-", s->tz ? s->tz : "-", (long long)s->start_ms,
	    (long long)s->end_ms, (long long)s->limit, (long long)s->iterations,
	    (long long)s->next_ms, s->data ? s->data : "-", s->opts_json ? s->opts_json : "-");
}

void
jobq_test_dump_queue(jobq_test_buf *b, jobq_queue *q, int events) {
	jobq_test_buf_printf(b, "queue %s\n", jobq_queue_name(q));
	jobq_counts c;
	assert_int_equal(jobq_queue_counts(&c, q), 0);
	jobq_test_buf_printf(
	    b, "counts w=%llu a=%llu d=%llu p=%llu c=%llu f=%llu paused=%llu wc=%llu\n",
	    (unsigned long long)c.waiting, (unsigned long long)c.active,
	    (unsigned long long)c.delayed, (unsigned long long)c.prioritized,
	    (unsigned long long)c.completed, (unsigned long long)c.failed,
	    (unsigned long long)c.paused, (unsigned long long)c.waiting_children);
	int paused = -1;
	assert_int_equal(jobq_queue_is_paused(&paused, q), 0);
	jobq_test_buf_printf(b, "is_paused %d\n", paused);
	for (int st = JOBQ_STATE_WAITING; st <= JOBQ_STATE_FAILED; st++) {
		jobq_job_list *l = NULL;
		assert_int_equal(jobq_queue_list(&l, q, (jobq_state)st, 0, 1000), 0);
		jobq_test_buf_printf(b, "list %s %zu\n", jobq_state_name((jobq_state)st), l->count);
		for (size_t i = 0; i < l->count; i++) {
			jobq_test_dump_job(b, l->jobs[i]);
			jobq_strings *logs = NULL;
			assert_int_equal(
			    jobq_queue_get_logs(&logs, q, jobq_job_id_of(l->jobs[i]), 0, 0), 0);
			for (size_t k = 0; k < logs->count; k++)
				jobq_test_buf_printf(b, "  log %s\n", logs->items[k]);
			jobq_strings_free(logs);
		}
		jobq_job_list_free(l);
	}
	jobq_scheduler_list *sl = NULL;
	int rc = jobq_queue_list_schedulers(&sl, q);
	if (rc != JOBQ_ENOTSUP) {
		assert_int_equal(rc, 0);
		jobq_test_buf_printf(b, "schedulers %zu\n", sl->count);
		for (size_t i = 0; i < sl->count; i++)
			jobq_test_dump_scheduler(b, &sl->items[i]);
	}
	jobq_scheduler_list_free(sl);
	if (!events)
		return;
	jobq_event_list *ev = NULL;
	assert_int_equal(jobq_events_read(&ev, q, JOBQ_EVENTS_START, 100000, 0), 0);
	for (size_t i = 0; i < jobq_event_list_count(ev); i++)
		jobq_test_dump_event(b, jobq_event_list_at(ev, i));
	jobq_test_buf_printf(b, "cursor %s\n",
	                     jobq_event_list_cursor(ev) ? jobq_event_list_cursor(ev) : "-");
	jobq_event_list_free(ev);
}

/* --- LMDB ------------------------------------------------------------------------------------ */

void
jobq_test_dump_lmdb(jobq_test_buf *b, jobq_backend *backend) {
#ifdef JOBQ_HAVE_LMDB
	lmdb_env *e = ((lmdb_backend *)backend)->e;
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn), 0);
	for (int d = 0; d < DBI__COUNT; d++) {
		MDB_cursor *cur;
		assert_int_equal(mdb_cursor_open(txn, e->dbi[d], &cur), 0);
		jobq_test_buf_printf(b, "db %d\n", d);
		MDB_val k, v;
		for (MDB_cursor_op op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0;
		     op = MDB_NEXT) {
			jobq_test_buf_hex(b, k.mv_data, k.mv_size);
			jobq_test_buf_printf(b, " = ");
			jobq_test_buf_hex(b, v.mv_data, v.mv_size);
			jobq_test_buf_printf(b, "\n");
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
#else
	(void)b;
	(void)backend;
#endif
}
