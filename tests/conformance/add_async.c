/* Asynchronous adds: outcomes through callbacks, in order; bad input refused at the call;
 * flush; close sends what is pending; callbacks may add more. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

enum { MANY = 3000 };

/* What the callbacks saw, in the order they ran. */
typedef struct seen {
	size_t count;
	int rc[MANY];
	int outcome[MANY];
	size_t tag[MANY];
	jobq_job_id id[MANY];
} seen;

typedef struct tagged {
	seen *s;
	size_t tag;
} tagged;

static void
record(void *ctx, int rc, const char *id, int outcome) {
	tagged *t = ctx;
	seen *s = t->s;
	size_t i = s->count++;
	s->rc[i] = rc;
	s->outcome[i] = outcome;
	s->tag[i] = t->tag;
	snprintf(s->id[i].str, sizeof(s->id[i].str), "%s", id ? id : "");
}

/* Many adds come back created, in the order they were made, and land in FIFO order. */
static void
add_async_many_in_order(void **state) {
	conf *c = conf_begin(state);
	seen *s = calloc(1, sizeof(*s));
	tagged *tags = calloc(MANY, sizeof(*tags));
	assert_non_null(s);
	assert_non_null(tags);
	for (size_t i = 0; i < MANY; i++) {
		tags[i] = (tagged){s, i};
		char data[32];
		int n = snprintf(data, sizeof(data), "{\"i\":%zu}", i);
		assert_int_equal(
		    jobq_queue_add_async(c->q, "n", data, (size_t)n, NULL, record, &tags[i]), 0);
	}
	assert_int_equal(jobq_queue_flush(c->q, conf_ms(30000)), 0);
	assert_int_equal(s->count, MANY);
	for (size_t i = 0; i < MANY; i++) {
		assert_int_equal(s->rc[i], 0);
		assert_int_equal(s->outcome[i], JOBQ_ADD_CREATED);
		assert_int_equal(s->tag[i], i);
		if (i > 0)
			assert_true(strtoll(s->id[i].str, NULL, 10) >
			            strtoll(s->id[i - 1].str, NULL, 10));
	}
	conf_assert_counts(c, MANY, 0, 0, 0, 0, 0);
	/* the data went with its job, and the first added is the first fetched */
	jobq_job *job = conf_get(c, s->id[17].str);
	size_t len = 0;
	const char *data = jobq_job_data(job, &len);
	assert_int_equal(len, strlen("{\"i\":17}"));
	assert_memory_equal(data, "{\"i\":17}", len);
	jobq_job_free(job);
	conf_fetch_complete(c, s->id[0].str, NULL);
	free(tags);
	free(s);
}

/* Bad input is refused by the call itself: no callback, nothing added. */
static void
add_async_bad_input_refused(void **state) {
	conf *c = conf_begin(state);
	seen *s = calloc(1, sizeof(*s));
	tagged t = {s, 0};
	jobq_job_options o = conf_opts();
	o.delay_ms = -5;
	conf_assert_error(jobq_queue_add_async(c->q, "n", "{}", 2, &o, record, &t), JOBQ_EINVAL);
	conf_assert_error(jobq_queue_add_async(c->q, NULL, "{}", 2, NULL, record, &t), JOBQ_EINVAL);
	conf_assert_error(jobq_queue_add_async(c->q, "n", NULL, 4, NULL, record, &t), JOBQ_EINVAL);
	if (conf_has(c, JOBQ_CAP_JSON_DATA))
		conf_assert_error(jobq_queue_add_async(c->q, "n", "{oops", 5, NULL, record, &t),
		                  JOBQ_EINVAL);
	conf_assert_error(jobq_queue_add_async(NULL, "n", "{}", 2, NULL, record, &t), JOBQ_EINVAL);
	assert_int_equal(jobq_queue_flush(c->q, conf_ms(10000)), 0);
	assert_int_equal(s->count, 0);
	conf_assert_counts(c, 0, 0, 0, 0, 0, 0);
	free(s);
}

/* A custom id that exists and a live dedup id give their outcomes and the existing ids. */
static void
add_async_outcomes(void **state) {
	conf *c = conf_begin(state);
	seen *s = calloc(1, sizeof(*s));
	tagged t[3] = {{s, 0}, {s, 1}, {s, 2}};
	jobq_job_options custom = conf_opts(), dedup = conf_opts();
	jobq_job_id owner;
	custom.job_id = "order-7";
	dedup.dedup_id = "once";
	conf_add(c, &owner, "n", "{}", &dedup);
	assert_int_equal(jobq_queue_add_async(c->q, "n", "{}", 2, &custom, record, &t[0]), 0);
	assert_int_equal(jobq_queue_add_async(c->q, "n", "{}", 2, &custom, record, &t[1]), 0);
	assert_int_equal(jobq_queue_add_async(c->q, "n", "{}", 2, &dedup, record, &t[2]), 0);
	assert_int_equal(jobq_queue_flush(c->q, -1), 0);
	assert_int_equal(s->count, 3);
	assert_int_equal(s->outcome[0], JOBQ_ADD_CREATED);
	assert_string_equal(s->id[0].str, "order-7");
	assert_int_equal(s->outcome[1], JOBQ_ADD_DUPLICATE);
	assert_string_equal(s->id[1].str, "order-7");
	assert_int_equal(s->outcome[2], JOBQ_ADD_DEDUPLICATED);
	assert_string_equal(s->id[2].str, owner.str);
	conf_assert_counts(c, 2, 0, 0, 0, 0, 0);
	free(s);
}

/* Closing a queue handle sends its pending adds first: none is lost, every callback runs. */
static void
add_async_close_sends_pending(void **state) {
	conf *c = conf_begin(state);
	seen *s = calloc(1, sizeof(*s));
	tagged *tags = calloc(MANY, sizeof(*tags));
	jobq_queue *other = NULL;
	assert_int_equal(jobq_queue_open(&other, c->store, CONF_QUEUE), 0);
	for (size_t i = 0; i < MANY; i++) {
		tags[i] = (tagged){s, i};
		assert_int_equal(jobq_queue_add_async(other, "n", "{}", 2, NULL, record, &tags[i]),
		                 0);
	}
	jobq_queue_close(other);
	assert_int_equal(s->count, MANY);
	for (size_t i = 0; i < MANY; i++)
		assert_int_equal(s->rc[i], 0);
	conf_assert_counts(c, MANY, 0, 0, 0, 0, 0);
	free(tags);
	free(s);
}

/* A callback may add again (without waiting for room); a flush from a callback is refused. */
typedef struct chain {
	jobq_queue *q;
	int rc;
	int added;
	int flush_rc;
	seen *s;
	tagged t;
} chain;

static void
chain_done(void *ctx, int rc, const char *id, int outcome) {
	chain *ch = ctx;
	(void)id;
	(void)outcome;
	ch->rc = rc; /* (checked by the test's thread: cmocka asserts only there) */
	ch->flush_rc = jobq_queue_flush(ch->q, 0);
	ch->added = jobq_queue_add_async(ch->q, "second", "{}", 2, NULL, record, &ch->t);
}

static void
add_async_from_callback(void **state) {
	conf *c = conf_begin(state);
	chain ch = {c->q, -100, -100, 0, calloc(1, sizeof(seen)), {NULL, 9}};
	ch.t.s = ch.s;
	assert_int_equal(jobq_queue_add_async(c->q, "first", "{}", 2, NULL, chain_done, &ch), 0);
	assert_int_equal(jobq_queue_flush(c->q, conf_ms(10000)), 0);
	/* the callback ran before that flush returned, so its add was queued before this one */
	assert_int_equal(jobq_queue_flush(c->q, conf_ms(10000)), 0);
	assert_int_equal(ch.rc, 0);
	assert_int_equal(ch.flush_rc, JOBQ_EINVAL);
	assert_int_equal(ch.added, 0);
	assert_int_equal(ch.s->count, 1);
	assert_int_equal(ch.s->rc[0], 0);
	conf_assert_counts(c, 2, 0, 0, 0, 0, 0);
	free(ch.s);
}

static const struct CMUnitTest cases[] = {
    CONF_CASE(add_async_many_in_order), CONF_CASE(add_async_bad_input_refused),
    CONF_CASE(add_async_outcomes),      CONF_CASE(add_async_close_sends_pending),
    CONF_CASE(add_async_from_callback),
};
CONF_TABLE(conf_add_async_cases, cases);
