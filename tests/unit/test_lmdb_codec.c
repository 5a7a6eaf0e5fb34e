/*
 * LMDB record codec (src/backends/lmdb/lmdb_codec.c): job and queue records written by the
 * direct msgpack writer read back field for field by the streaming reader, across every size
 * class of integers, strings and binaries; the bytes are msgpack that msgpack-c parses whole;
 * and every truncated record is refused with JOBQ_EIO (not read past its end).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jobq.h"

#if defined(JOBQ_HAVE_LMDB) && JOBQ_HAVE_LMDB

#include <msgpack.h>

#include "backends/lmdb/lmdb_internal.h"

static char *
filled(size_t n, char c) {
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void
assert_str_eq(const char *a, const char *b) {
	if (a == NULL || b == NULL) {
		assert_ptr_equal(a, b);
		return;
	}
	assert_string_equal(a, b);
}

/* One job whose fields take the given string/data lengths and integer magnitudes. */
/* The text fields a decoded job `g` must have taken from the encoded `j`. */
static void
check_texts(const jobq_job *g, const jobq_job *j) {
	assert_str_eq(g->progress, j->progress);
	assert_str_eq(g->result, j->result);
	assert_str_eq(g->failed_reason, j->failed_reason);
	assert_int_equal(g->stacktrace_count, j->stacktrace_count);
	for (size_t i = 0; i < j->stacktrace_count; i++)
		assert_string_equal(g->stacktrace[i], j->stacktrace[i]);
	assert_str_eq(g->deferred_failure, j->deferred_failure);
}

static void
roundtrip(size_t slen, size_t dlen, int64_t big, int with_nils) {
	char *s = filled(slen, 's');
	char *d = filled(dlen, 'd');
	static char id[] = "42", empty[] = "", result[] = "{\"r\":1}", late[] = "late";
	char *lines[3] = {filled(slen, 'a'), empty, filled(3, 'c')};
	jobq_job j;
	memset(&j, 0, sizeof(j));
	j.id = id;
	j.name = s;
	j.data = d;
	j.data_len = dlen;
	j.state = JOBQ_STATE_ACTIVE;
	j.timestamp = big;
	j.processed_on = -big;
	j.finished_on = big / 3;
	j.delay_ms = -1;
	j.priority = (uint32_t)big;
	j.attempts_started = UINT32_MAX;
	j.attempts_made = 200;
	j.stalled_count = 65536;
	j.progress = with_nils ? NULL : s;
	j.result = with_nils ? NULL : result;
	j.failed_reason = with_nils ? NULL : empty;
	j.stacktrace = with_nils ? NULL : lines;
	j.stacktrace_count = with_nils ? 0 : 3;
	j.deferred_failure = with_nils ? NULL : late;
	j.token = with_nils ? NULL : s;
	j.processed_by = with_nils ? NULL : late;
	j.opts.delay_ms = big;
	j.opts.priority = 7;
	j.opts.lifo = 1;
	j.opts.attempts = 3;
	j.opts.backoff.type = JOBQ_BACKOFF_EXPONENTIAL;
	j.opts.backoff.delay_ms = -33;
	j.opts.backoff.jitter = 0.25;
	j.opts.backoff.max_delay_ms = INT64_MIN + 1;
	j.opts.backoff.custom_type = with_nils ? NULL : "mine";
	j.opts.job_id = with_nils ? NULL : s;
	j.opts.remove_on_complete = (jobq_keep){JOBQ_KEEP_LIMIT, 1000, -1};
	j.opts.remove_on_fail = (jobq_keep){JOBQ_KEEP_LIMIT, -1, big};
	j.opts.keep_logs = 129;
	j.opts.size_limit = (size_t)big;
	j.opts.dedup_id = with_nils ? NULL : "dd";
	j.opts.dedup_ttl_ms = 32767;
	j.opts.dedup_keep_last = !with_nils;
	j.opts.timestamp = -128;
	lmdb_rec r = {&j, big, -big, (uint64_t)big * 2, 17, UINT64_MAX};

	lmdb_buf b;
	assert_int_equal(jobq_lmdb__rec_encode(&b, &r), 0);

	/* msgpack-c parses the whole record: an array of 25 whose item 23 is the options. */
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	assert_int_equal(msgpack_unpack_next(&u, b.data, b.size, &off), MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, b.size);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(u.data.via.array.size, 25);
	assert_int_equal(u.data.via.array.ptr[23].type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(u.data.via.array.ptr[4].via.i64, big); /* timestamp */
	msgpack_unpacked_destroy(&u);

	lmdb_rec o;
	assert_int_equal(jobq_lmdb__rec_decode(&o, "42", b.data, b.size), 0);
	jobq_job *g = o.j;
	assert_string_equal(g->id, "42");
	assert_string_equal(g->name, s);
	assert_int_equal(g->data_len, dlen);
	assert_memory_equal(g->data, d, dlen);
	assert_int_equal(((char *)g->data)[dlen], '\0');
	assert_int_equal(g->state, JOBQ_STATE_ACTIVE);
	assert_int_equal(g->timestamp, big);
	assert_int_equal(g->processed_on, -big);
	assert_int_equal(g->finished_on, big / 3);
	assert_int_equal(g->delay_ms, -1);
	assert_int_equal(g->priority, (uint32_t)big);
	assert_int_equal(g->attempts_started, UINT32_MAX);
	assert_int_equal(g->attempts_made, 200);
	assert_int_equal(g->stalled_count, 65536);
	check_texts(g, &j);
	assert_str_eq(g->token, j.token);
	assert_str_eq(g->processed_by, j.processed_by);
	assert_int_equal(o.lock_until, big);
	assert_int_equal(o.ia, -big);
	assert_int_equal(o.ib, (uint64_t)big * 2);
	assert_int_equal(o.log_next, 17);
	assert_int_equal(o.log_count, UINT64_MAX);
	const jobq_job_options *p = &g->opts;
	assert_int_equal(p->version, JOBQ_JOB_OPTIONS_VERSION);
	assert_int_equal(p->delay_ms, big);
	assert_int_equal(p->priority, 7);
	assert_int_equal(p->lifo, 1);
	assert_int_equal(p->attempts, 3);
	assert_int_equal(p->backoff.type, JOBQ_BACKOFF_EXPONENTIAL);
	assert_int_equal(p->backoff.delay_ms, -33);
	assert_true(p->backoff.jitter == 0.25);
	assert_int_equal(p->backoff.max_delay_ms, INT64_MIN + 1);
	assert_str_eq(p->backoff.custom_type, j.opts.backoff.custom_type);
	assert_str_eq(p->job_id, j.opts.job_id);
	assert_int_equal(p->remove_on_complete.mode, JOBQ_KEEP_LIMIT);
	assert_int_equal(p->remove_on_complete.count, 1000);
	assert_int_equal(p->remove_on_complete.age_ms, -1);
	assert_int_equal(p->remove_on_fail.mode, JOBQ_KEEP_LIMIT);
	assert_int_equal(p->remove_on_fail.age_ms, big);
	assert_int_equal(p->keep_logs, 129);
	assert_int_equal(p->size_limit, (size_t)big);
	assert_str_eq(p->dedup_id, j.opts.dedup_id);
	assert_int_equal(p->dedup_ttl_ms, 32767);
	assert_int_equal(p->dedup_keep_last, j.opts.dedup_keep_last);
	assert_int_equal(p->timestamp, -128);
	jobq_job_free(g);

	/* The packed decode (one allocation, the caller's token) reads the same fields. */
	assert_int_equal(jobq_lmdb__rec_decode_packed(&o, "42", b.data, b.size, "tok"), 0);
	g = o.j;
	assert_string_equal(g->id, "42");
	assert_string_equal(g->name, s);
	assert_int_equal(g->data_len, dlen);
	assert_memory_equal(g->data, d, dlen);
	assert_int_equal(((char *)g->data)[dlen], '\0');
	assert_int_equal(g->attempts_started, UINT32_MAX);
	check_texts(g, &j);
	assert_string_equal(g->token, "tok");
	assert_str_eq(g->opts.backoff.custom_type, j.opts.backoff.custom_type);
	assert_str_eq(g->opts.job_id, j.opts.job_id);
	assert_str_eq(g->opts.dedup_id, j.opts.dedup_id);
	assert_int_equal(g->opts.dedup_keep_last, j.opts.dedup_keep_last);
	assert_int_equal(g->opts.timestamp, -128);
	assert_int_equal(o.log_count, UINT64_MAX);
	jobq_job_free(g); /* frees only what is outside the packed block (ASan checks) */

	/* Every strict prefix is refused, without reading past it (ASan checks the copy). */
	for (size_t n = 0; n < b.size; n += n < 64 || b.size - n < 64 ? 1 : 97) {
		char *cut = malloc(n ? n : 1);
		assert_non_null(cut);
		memcpy(cut, b.data, n);
		assert_int_equal(jobq_lmdb__rec_decode(&o, "42", cut, n), JOBQ_EIO);
		assert_int_equal(jobq_lmdb__rec_decode_packed(&o, "42", cut, n, NULL), JOBQ_EIO);
		free(cut);
	}
	jobq_lmdb__buf_free(&b);
	free(s);
	free(d);
	free(lines[0]);
	free(lines[2]);
}

static void
test_job_record_size_classes(void **state) {
	(void)state;
	/* strings: fixstr, str8, str16, str32; data: bin8, bin16, bin32 (past the inline buffer) */
	static const size_t lens[] = {0, 31, 32, 255, 256, 65535, 65536};
	static const int64_t ints[] = {
	    0,        127, 128, 255, 256, 65535, 65536, INT64_C(4294967295), INT64_C(4294967296),
	    INT64_MAX};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		roundtrip(lens[i], lens[(i + 3) % 7], ints[i % 10], (int)(i & 1));
	}
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		roundtrip(5, 100, ints[i], 0);
		roundtrip(5, 100, ints[i] == 0 ? -1 : -ints[i], 1);
	}
}

static void
test_job_record_older_shorter_array(void **state) {
	(void)state;
	/* A record of an older layout: [version, name, data] only; the rest reads as zero. */
	const unsigned char rec[] = {0x93, 0x01, 0xa1, 'n', 0xc4, 0x02, 'h', 'i'};
	lmdb_rec o;
	assert_int_equal(jobq_lmdb__rec_decode(&o, "7", rec, sizeof(rec)), 0);
	assert_string_equal(o.j->name, "n");
	assert_int_equal(o.j->data_len, 2);
	assert_memory_equal(o.j->data, "hi", 2);
	assert_null(o.j->token);
	assert_int_equal(o.lock_until, 0);
	assert_int_equal(o.j->opts.version, JOBQ_JOB_OPTIONS_VERSION);
	jobq_job_free(o.j);
	/* Not an array at all. */
	const unsigned char bad[] = {0xa1, 'x'};
	assert_int_equal(jobq_lmdb__rec_decode(&o, "7", bad, sizeof(bad)), JOBQ_EIO);
}

static void
test_queue_record(void **state) {
	(void)state;
	lmdb_qmeta m = {.counter = INT64_C(5000000000),
	                .paused = 1,
	                .ev_seq = 70000,
	                .wait_head = -300,
	                .wait_tail = 12,
	                .prio_front = 0,
	                .seq = 256,
	                .counts = {1, 2, 3, 4, 5, 6, 7, 8}};
	lmdb_buf b;
	assert_int_equal(jobq_lmdb__qmeta_encode(&b, &m), 0);
	lmdb_qmeta g;
	assert_int_equal(jobq_lmdb__qmeta_decode(&g, b.data, b.size), 0);
	assert_memory_equal(&g, &m, sizeof(m));
	for (size_t n = 0; n < b.size; n++) {
		assert_int_equal(jobq_lmdb__qmeta_decode(&g, b.data, n), JOBQ_EIO);
	}
	jobq_lmdb__buf_free(&b);
}

/* One running entry through the codec: msgpack-c parses it whole, fields read back. */
static void
run_roundtrip(const lmdb_run *in) {
	lmdb_buf b;
	assert_int_equal(jobq_lmdb__run_encode(&b, in), 0);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	assert_int_equal(msgpack_unpack_next(&u, b.data, b.size, &off), MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, b.size);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(u.data.via.array.size, 9);
	msgpack_unpacked_destroy(&u);
	lmdb_run g;
	assert_int_equal(jobq_lmdb__run_decode(&g, b.data, b.size), 0);
	assert_int_equal(g.seq, in->seq);
	assert_int_equal(g.lock_until, in->lock_until);
	assert_int_equal(g.processed_on, in->processed_on);
	assert_int_equal(g.attempts_started, in->attempts_started);
	assert_int_equal(g.flags, in->flags);
	assert_int_equal(g.token != NULL, in->token != NULL);
	if (in->token) {
		assert_int_equal(g.token_len, in->token_len);
		assert_memory_equal(g.token, in->token, in->token_len);
	}
	assert_int_equal(g.dedup != NULL, in->dedup != NULL);
	if (in->dedup) {
		assert_int_equal(g.dedup_len, in->dedup_len);
		assert_memory_equal(g.dedup, in->dedup, in->dedup_len);
	}
	assert_int_equal(g.pb != NULL, in->pb != NULL);
	if (in->pb) {
		assert_int_equal(g.pb_len, in->pb_len);
		assert_memory_equal(g.pb, in->pb, in->pb_len);
	}
	for (size_t n = 0; n < b.size; n++) {
		char *cut = malloc(n ? n : 1);
		assert_non_null(cut);
		memcpy(cut, b.data, n);
		assert_int_equal(jobq_lmdb__run_decode(&g, cut, n), JOBQ_EIO);
		free(cut);
	}
	jobq_lmdb__buf_free(&b);
}

static void
test_running_entry(void **state) {
	(void)state;
	char *long_tok = filled(300, 't');
	lmdb_run a = {.seq = 1,
	              .lock_until = INT64_C(1700000000000),
	              .processed_on = INT64_C(1699999990000),
	              .attempts_started = 1,
	              .flags = LMDB_RUN_LOGS,
	              .token = "tok-1",
	              .token_len = 5,
	              .dedup = "dd",
	              .dedup_len = 2,
	              .pb = "host:1",
	              .pb_len = 6};
	run_roundtrip(&a);
	lmdb_run none = {.seq = UINT64_MAX, .lock_until = -5, .attempts_started = UINT32_MAX};
	run_roundtrip(&none);
	lmdb_run big = a;
	big.token = long_tok;
	big.token_len = 300;
	big.dedup = long_tok;
	big.dedup_len = 40;
	run_roundtrip(&big);
	free(long_tok);
	/* Not an array. */
	lmdb_run g;
	const unsigned char bad[] = {0xa1, 'x'};
	assert_int_equal(jobq_lmdb__run_decode(&g, bad, sizeof(bad)), JOBQ_EIO);
}

/* Events appended one after the other (short ones take the one-check path) read back. */
static void
test_events_appended(void **state) {
	(void)state;
	char *long_val = filled(40, 'v');
	jobq_event_field f2[2] = {{"returnvalue", "null"}, {"prev", "active"}};
	jobq_event_field flong[1] = {{"failedReason", long_val}};
	jobq_event_field fnull[1] = {{"data", NULL}};
	lmdb_buf b;
	jobq_lmdb__buf_init(&b);
	assert_int_equal(jobq_lmdb__event_append(&b, "completed", "17", 2, f2), 0);
	assert_int_equal(jobq_lmdb__event_append(&b, "drained", NULL, 0, NULL), 0);
	assert_int_equal(jobq_lmdb__event_append(&b, "failed", "18", 1, flong), 0);
	assert_int_equal(jobq_lmdb__event_append(&b, "progress", "19", 1, fnull), 0);
	/* The same bytes as each encoded alone. */
	lmdb_buf one;
	assert_int_equal(jobq_lmdb__event_encode(&one, "completed", "17", 2, f2), 0);
	assert_memory_equal(b.data, one.data, one.size);
	size_t first = one.size;
	jobq_lmdb__buf_free(&one);
	jobq_event_list *l;
	assert_int_equal(jobq_event_list__new(&l), 0);
	size_t off = 0, used = 0;
	for (int i = 0; i < 4; i++) {
		char id[8];
		snprintf(id, sizeof(id), "%d", i + 1);
		assert_int_equal(
		    jobq_lmdb__event_decode_append(l, id, b.data + off, b.size - off, &used), 0);
		if (i == 0) {
			assert_int_equal(used, first);
		}
		off += used;
	}
	assert_int_equal(off, b.size);
	assert_int_equal(jobq_event_list_count(l), 4);
	const jobq_event *e = jobq_event_list_at(l, 0);
	assert_string_equal(e->event, "completed");
	assert_string_equal(e->job_id, "17");
	assert_string_equal(jobq_event_get(e, "returnvalue"), "null");
	assert_string_equal(jobq_event_get(e, "prev"), "active");
	assert_null(jobq_event_list_at(l, 1)->job_id);
	assert_string_equal(jobq_event_get(jobq_event_list_at(l, 2), "failedReason"), long_val);
	assert_string_equal(jobq_event_get(jobq_event_list_at(l, 3), "data"), "");
	jobq_event_list_free(l);
	jobq_lmdb__buf_free(&b);
	free(long_val);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_job_record_size_classes),
	    cmocka_unit_test(test_job_record_older_shorter_array),
	    cmocka_unit_test(test_queue_record),
	    cmocka_unit_test(test_running_entry),
	    cmocka_unit_test(test_events_appended),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

#else

int
main(void) {
	return 77; /* built without LMDB */
}

#endif
