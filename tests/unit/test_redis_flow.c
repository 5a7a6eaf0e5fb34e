/*
 * Redis flows added by jobq (jobq_flow_add): the keys and fields BullMQ 6's FlowProducer writes
 * (checked raw with hiredis), the dependencies read back, and bad flows refused with nothing
 * written. The interop suite runs such flows under Node workers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <cmocka.h>

#include "jobq.h"

static const char *sock;

typedef struct fixture {
	char prefix[64];
	jobq_store *s;
	jobq_queue *pq, *cq;
} fixture;

static int
setup_prefix(void **state, int tagged) {
	static unsigned n;
	if (sock == NULL)
		return 0;
	fixture *f = calloc(1, sizeof(*f));
	snprintf(f->prefix, sizeof(f->prefix), "%sjqflow%ld-%u%s", tagged ? "{" : "",
	         (long)getpid(), ++n, tagged ? "}" : "");
	char url[512];
	snprintf(url, sizeof(url), "redis+unix://%s?prefix=%s", sock, f->prefix);
	if (jobq_store_open(&f->s, url, NULL) < 0 || jobq_queue_open(&f->pq, f->s, "pq") < 0 ||
	    jobq_queue_open(&f->cq, f->s, "cq") < 0)
		return -1;
	*state = f;
	return 0;
}

static int
setup(void **state) {
	return setup_prefix(state, 0);
}

static int
setup_tagged(void **state) {
	return setup_prefix(state, 1);
}

static redisReply *
cmd(const char *fmt, ...) {
	redisContext *c = redisConnectUnix(sock);
	assert_non_null(c);
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	redisFree(c);
	return r;
}

/* A string reply as text ("" for nil), an integer in decimal. */
static char *
text(const char *fmt, ...) {
	static char out[4][1024];
	static int k;
	char *t = out[k++ % 4];
	redisContext *c = redisConnectUnix(sock);
	assert_non_null(c);
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		snprintf(t, 1024, "%s", r->str);
	else if (r->type == REDIS_REPLY_INTEGER)
		snprintf(t, 1024, "%lld", r->integer);
	else
		t[0] = '\0';
	freeReplyObject(r);
	redisFree(c);
	return t;
}

static int
by_str(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every key under the prefix with its content (events aside): what a refused call must not
 * change. */
static char *
snapshot(const fixture *f) {
	redisReply *r = cmd("KEYS %s:*", f->prefix);
	char **keys = calloc(r->elements + 1, sizeof(*keys));
	for (size_t i = 0; i < r->elements; i++)
		keys[i] = r->element[i]->str;
	qsort(keys, r->elements, sizeof(*keys), by_str);
	size_t cap = 1 << 16, len = 0;
	char *s = calloc(1, cap);
	for (size_t i = 0; i < r->elements; i++) {
		const char *k = keys[i], *type = text("TYPE %s", k);
		const char *verb = strcmp(type, "hash") == 0     ? "HGETALL"
		                   : strcmp(type, "set") == 0    ? "SMEMBERS"
		                   : strcmp(type, "string") == 0 ? "GET"
		                                                 : NULL;
		len += (size_t)snprintf(s + len, cap - len, "%s %s:", k, type);
		redisReply *v = strcmp(type, "zset") == 0   ? cmd("ZRANGE %s 0 -1 WITHSCORES", k)
		                : strcmp(type, "list") == 0 ? cmd("LRANGE %s 0 -1", k)
		                : verb != NULL              ? cmd("%s %s", verb, k)
		                                            : NULL;
		if (v == NULL)
			continue;
		if (v->type == REDIS_REPLY_STRING)
			len += (size_t)snprintf(s + len, cap - len, " %s", v->str);
		/* A hash's fields and a set's members come in the server's table order, which a
		 * rehash may change between two reads of unchanged data (seen on Valkey): sorted.
		 */
		size_t step = strcmp(type, "hash") == 0 ? 2 : 1, n = 0;
		char **items =
		    calloc(v->type == REDIS_REPLY_ARRAY ? v->elements + 1 : 1, sizeof(*items));
		for (size_t j = 0; v->type == REDIS_REPLY_ARRAY && j + step <= v->elements;
		     j += step) {
			items[n] = malloc(2048);
			if (step == 2)
				snprintf(items[n++], 2048, "%s %s", v->element[j]->str,
				         v->element[j + 1]->str);
			else
				snprintf(items[n++], 2048, "%s", v->element[j]->str);
		}
		if (step == 2 || strcmp(type, "set") == 0)
			qsort(items, n, sizeof(*items), by_str);
		for (size_t j = 0; j < n; j++) {
			len += (size_t)snprintf(s + len, cap - len, " %s", items[j]);
			free(items[j]);
		}
		free(items);
		len += (size_t)snprintf(s + len, cap - len, "\n");
		freeReplyObject(v);
		assert_true(len < cap);
	}
	free(keys);
	freeReplyObject(r);
	return s;
}

static int
teardown(void **state) {
	fixture *f = *state;
	if (f == NULL)
		return 0;
	redisReply *r = cmd("KEYS %s:*", f->prefix);
	for (size_t i = 0; i < r->elements; i++)
		freeReplyObject(cmd("DEL %s", r->element[i]->str));
	freeReplyObject(r);
	jobq_queue_close(f->pq);
	jobq_queue_close(f->cq);
	jobq_store_close(f->s);
	free(f);
	return 0;
}

#define LEAF(q, n, d)                                                                              \
	{ (q), (n), (d), sizeof(d) - 1, NULL, JOBQ_PARENT_WAIT, NULL, 0 }

/* Completes the next job of `q` with `result`; returns its id in `id`. */
static void
run_one(jobq_queue *q, const char *result, char *id) {
	jobq_job *job = NULL;
	assert_int_equal(jobq_queue_fetch(&job, q, 30000), 0);
	strcpy(id, jobq_job_id_of(job));
	assert_int_equal(jobq_job_complete(job, result), 0);
	jobq_job_free(job);
}

/* A tree over two queues: the root and a sub-parent in "pq", leaves in "cq", one with
 * failParentOnFailure; each written as Node's FlowProducer writes it. */
static void
flow_written_as_node(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	const char *P = f->prefix;
	jobq_flow_node grand[] = {LEAF("cq", "g", "{\"g\":1}")};
	jobq_flow_node kids[] = {LEAF("cq", "a", "{\"a\":1}"),
	                         LEAF("cq", "b", "{\"b\":1}"),
	                         {NULL, "sub", "{}", 2, NULL, JOBQ_PARENT_WAIT, grand, 1}};
	kids[1].on_failure = JOBQ_PARENT_FAIL;
	jobq_flow_node root = {NULL, "root", "{\"r\":1}", 7, NULL, JOBQ_PARENT_WAIT, kids, 3};
	assert_int_equal(jobq_flow_count(&root), 5);
	jobq_job_id ids[5];
	assert_int_equal(jobq_flow_add(ids, f->pq, &root, NULL), 0);
	/* pre-order: root, a, b, sub, g; ids generated per queue */
	assert_string_equal(ids[0].str, "1");
	assert_string_equal(ids[1].str, "1");
	assert_string_equal(ids[2].str, "2");
	assert_string_equal(ids[3].str, "2");
	assert_string_equal(ids[4].str, "3");
	assert_string_equal(text("ZSCORE %s:pq:waiting-children 1", P),
	                    text("HGET %s:pq:1 timestamp", P));
	assert_string_equal(text("ZSCORE %s:pq:waiting-children 2", P),
	                    text("HGET %s:pq:2 timestamp", P));
	assert_string_equal(text("HEXISTS %s:pq:1 parentKey", P), "0");
	assert_string_equal(text("HGET %s:pq:1 opts", P), "{\"attempts\":0}");
	assert_string_equal(text("SCARD %s:pq:1:dependencies", P), "3");
	assert_string_equal(text("SISMEMBER %s:pq:1:dependencies %s:cq:2", P, P), "1");
	assert_string_equal(text("SISMEMBER %s:pq:1:dependencies %s:pq:2", P, P), "1");
	assert_string_equal(text("SMEMBERS %s:pq:2:dependencies", P), "");
	assert_string_equal(text("SISMEMBER %s:pq:2:dependencies %s:cq:3", P, P), "1");
	char want[512];
	snprintf(want, sizeof(want), "%s:pq:1", P);
	assert_string_equal(text("HGET %s:cq:1 parentKey", P), want);
	snprintf(want, sizeof(want), "{\"id\":\"1\",\"queueKey\":\"%s:pq\"}", P);
	assert_string_equal(text("HGET %s:cq:1 parent", P), want);
	snprintf(want, sizeof(want), "{\"id\":\"1\",\"queueKey\":\"%s:pq\",\"fpof\":true}", P);
	assert_string_equal(text("HGET %s:cq:2 parent", P), want);
	snprintf(want, sizeof(want),
	         "{\"attempts\":0,\"parent\":{\"id\":\"1\",\"queue\":\"%s:pq\"},\"fpof\":true}", P);
	assert_string_equal(text("HGET %s:cq:2 opts", P), want);
	snprintf(want, sizeof(want), "{\"id\":\"2\",\"queueKey\":\"%s:pq\"}", P);
	assert_string_equal(text("HGET %s:cq:3 parent", P), want);
	assert_string_equal(text("LLEN %s:cq:wait", P), "3");
	assert_string_equal(text("ZSCORE %s:cq:marker 0", P), "0");

	jobq_counts c;
	assert_int_equal(jobq_queue_counts(&c, f->pq), 0);
	assert_int_equal(c.waiting_children, 2);
	jobq_state st;
	assert_int_equal(jobq_queue_get_state(&st, f->pq, "1"), 0);
	assert_int_equal(st, JOBQ_STATE_WAITING_CHILDREN);

	jobq_dependencies *d = NULL;
	assert_int_equal(jobq_queue_get_dependencies(&d, f->pq, "1"), 0);
	assert_int_equal(d->npending, 3);
	assert_int_equal(d->nprocessed + d->nignored + d->nfailed, 0);
	int seen = 0;
	for (size_t i = 0; i < d->npending; i++) {
		assert_non_null(d->pending[i].queue);
		if (strcmp(d->pending[i].queue, "cq") == 0 && strcmp(d->pending[i].id, "1") == 0) {
			snprintf(want, sizeof(want), "%s:cq:1", P);
			assert_string_equal(d->pending[i].key, want);
			seen = 1;
		}
	}
	assert_true(seen);
	jobq_dependencies_free(d);

	/* the children run: their results reach the parents, the sub-parent is released */
	char id[JOBQ_ID_MAX + 1];
	run_one(f->cq, "{\"done\":\"a\"}", id);
	assert_string_equal(id, "1");
	run_one(f->cq, "7", id);
	run_one(f->cq, "{\"done\":\"g\"}", id);
	assert_string_equal(id, "3");
	assert_int_equal(jobq_queue_get_state(&st, f->pq, "2"), 0);
	assert_int_equal(st, JOBQ_STATE_WAITING);
	assert_int_equal(jobq_queue_get_dependencies(&d, f->pq, "1"), 0);
	assert_int_equal(d->nprocessed, 2);
	assert_int_equal(d->npending, 1);
	assert_string_equal(d->pending[0].queue, "pq");
	for (size_t i = 0; i < d->nprocessed; i++)
		assert_string_equal(d->processed[i].value, strcmp(d->processed[i].id, "1") == 0
		                                               ? "{\"done\":\"a\"}"
		                                               : "7");
	jobq_dependencies_free(d);
	assert_int_equal(jobq_queue_get_dependencies(&d, f->pq, "2"), 0);
	assert_int_equal(d->nprocessed, 1);
	assert_string_equal(d->processed[0].value, "{\"done\":\"g\"}");
	jobq_dependencies_free(d);
	run_one(f->pq, "\"sub\"", id);
	assert_string_equal(id, "2");
	assert_int_equal(jobq_queue_get_state(&st, f->pq, "1"), 0);
	assert_int_equal(st, JOBQ_STATE_WAITING);
}

/* A child added under an existing parent; an existing completed job with a custom id counts
 * as processed at once (a parent whose children are all done is released in the same step). */
static void
flow_child_of_existing_parent(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	jobq_flow_node kid[] = {LEAF("cq", "a", "{}")};
	jobq_flow_node root = {NULL, "root", "{}", 2, NULL, JOBQ_PARENT_WAIT, kid, 1};
	jobq_job_id ids[2];
	assert_int_equal(jobq_flow_add(ids, f->pq, &root, NULL), 0);
	jobq_flow_node more = LEAF(NULL, "more", "{}");
	more.on_failure = JOBQ_PARENT_IGNORE;
	jobq_flow_parent parent = {"pq", ids[0].str};
	jobq_job_id more_id;
	assert_int_equal(jobq_flow_add(&more_id, f->cq, &more, &parent), 0);
	assert_string_equal(more_id.str, "2");
	assert_string_equal(text("SCARD %s:pq:1:dependencies", f->prefix), "2");

	/* a job "done" that completed before its parent existed */
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.job_id = "done";
	jobq_job_id done;
	assert_int_equal(jobq_queue_add(&done, f->cq, "d", "{}", 2, &o), 0);
	char id[JOBQ_ID_MAX + 1];
	for (int i = 0; i < 3; i++)
		run_one(f->cq, "{\"v\":1}", id);
	jobq_flow_node old[] = {{NULL, "d", "{}", 2, &o, JOBQ_PARENT_WAIT, NULL, 0}};
	jobq_flow_node p2 = {NULL, "p2", "{}", 2, NULL, JOBQ_PARENT_WAIT, old, 1};
	old[0].queue = "cq";
	assert_int_equal(jobq_flow_add(ids, f->pq, &p2, NULL), 0);
	assert_string_equal(ids[1].str, "done");
	jobq_state st;
	assert_int_equal(jobq_queue_get_state(&st, f->pq, ids[0].str), 0);
	assert_int_equal(st, JOBQ_STATE_WAITING);
	jobq_dependencies *d = NULL;
	assert_int_equal(jobq_queue_get_dependencies(&d, f->pq, ids[0].str), 0);
	assert_int_equal(d->nprocessed, 1);
	assert_string_equal(d->processed[0].id, "done");
	assert_string_equal(d->processed[0].value, "{\"v\":1}");
	jobq_dependencies_free(d);
}

/* Bad flows: a clear error and not one key changed. */
static void
bad_flows_change_nothing(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	jobq_job_options top = JOBQ_JOB_OPTIONS_INIT, kido = JOBQ_JOB_OPTIONS_INIT;
	top.job_id = "top";
	kido.job_id = "kid";
	jobq_flow_node kid[] = {{"cq", "a", "{}", 2, &kido, JOBQ_PARENT_WAIT, NULL, 0}};
	jobq_flow_node root = {NULL, "root", "{}", 2, &top, JOBQ_PARENT_WAIT, kid, 1};
	jobq_job_id ids[4];
	assert_int_equal(jobq_flow_add(ids, f->pq, &root, NULL), 0);
	char *before = snapshot(f);

	jobq_flow_parent missing = {"pq", "404"};
	assert_int_equal(jobq_flow_add(ids, f->cq, &kid[0], &missing), JOBQ_ENOTFOUND);
	assert_non_null(strstr(jobq_error_message(), "404"));

	/* a repeated id, and a cycle through the parent's id */
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.job_id = "x";
	jobq_flow_node twice[] = {{"cq", "a", "{}", 2, &o, JOBQ_PARENT_WAIT, NULL, 0},
	                          {"cq", "b", "{}", 2, &o, JOBQ_PARENT_WAIT, NULL, 0}};
	jobq_flow_node r2 = {NULL, "r", "{}", 2, NULL, JOBQ_PARENT_WAIT, twice, 2};
	assert_int_equal(jobq_flow_add(ids, f->pq, &r2, NULL), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "same id 'x'"));
	jobq_flow_node self = {NULL, "r", "{}", 2, &top, JOBQ_PARENT_WAIT, NULL, 0};
	jobq_flow_parent p1 = {"pq", "top"};
	assert_int_equal(jobq_flow_add(ids, f->pq, &self, &p1), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "cycle"));

	/* a child owned by another parent that exists (BullMQ -7), an existing id with children */
	jobq_flow_node stolen[] = {{"cq", "a", "{}", 2, &kido, JOBQ_PARENT_WAIT, NULL, 0}};
	jobq_flow_node r3 = {NULL, "r", "{}", 2, NULL, JOBQ_PARENT_WAIT, stolen, 1};
	assert_int_equal(jobq_flow_add(ids, f->pq, &r3, NULL), JOBQ_EEXISTS);
	assert_non_null(strstr(jobq_error_message(), "another parent"));
	jobq_flow_node r4 = {NULL, "r", "{}", 2, &top, JOBQ_PARENT_WAIT, stolen, 1};
	assert_int_equal(jobq_flow_add(ids, f->pq, &r4, NULL), JOBQ_EEXISTS);

	/* too deep; bad data in a leaf; dedup */
	jobq_flow_node chain[JOBQ_FLOW_MAX_DEPTH + 1];
	for (size_t i = 0; i <= JOBQ_FLOW_MAX_DEPTH; i++)
		chain[i] = (jobq_flow_node){NULL,
		                            "c",
		                            "{}",
		                            2,
		                            NULL,
		                            JOBQ_PARENT_WAIT,
		                            i < JOBQ_FLOW_MAX_DEPTH ? &chain[i + 1] : NULL,
		                            i < JOBQ_FLOW_MAX_DEPTH ? 1 : 0};
	assert_int_equal(jobq_flow_add(NULL, f->pq, &chain[0], NULL), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "deeper"));
	jobq_flow_node bad[] = {LEAF("cq", "a", "{nope")};
	jobq_flow_node r5 = {NULL, "r", "{}", 2, NULL, JOBQ_PARENT_WAIT, bad, 1};
	assert_int_equal(jobq_flow_add(ids, f->pq, &r5, NULL), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "node 2"));
	jobq_job_options de = JOBQ_JOB_OPTIONS_INIT;
	de.dedup_id = "d";
	jobq_flow_node r6 = {NULL, "r", "{}", 2, &de, JOBQ_PARENT_WAIT, kid, 1};
	assert_int_equal(jobq_flow_add(ids, f->pq, &r6, NULL), JOBQ_EINVAL);

	char *after = snapshot(f);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

int
main(void) {
	sock = getenv("JOBQ_TEST_REDIS_SOCKET");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(flow_written_as_node, setup, teardown),
	    cmocka_unit_test_setup_teardown(flow_written_as_node, setup_tagged, teardown),
	    cmocka_unit_test_setup_teardown(flow_child_of_existing_parent, setup, teardown),
	    cmocka_unit_test_setup_teardown(bad_flows_change_nothing, setup, teardown),
	};
	return cmocka_run_group_tests_name("redis_flow", tests, NULL, NULL);
}
