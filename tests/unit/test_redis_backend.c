/*
 * Redis backend specifics the conformance cases cannot cover (locks there expire on server
 * time, not the manual clock): real lock expiry, BullMQ's two-phase stalled check, wake()
 * interrupting a blocked wait, URL parsing and a server that is down. Waits are bounded polls
 * on a condition.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include <cmocka.h>

#include "backends/backend.h"
#include "jobq.h"
#include "jobq/sys/backend.h"

static const char *sock;
static char prefix[64];

static int64_t
mono_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
pause_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int64_t
wall_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct fixture {
	jobq_backend *b;
	jobq_backend_queue *q;
} fixture;

static int
setup(void **state) {
	static unsigned n;
	if (sock == NULL)
		return 0;
	fixture *f = calloc(1, sizeof(*f));
	jobq_redis_options o = JOBQ_REDIS_OPTIONS_INIT;
	snprintf(prefix, sizeof(prefix), "jobqunit:%ld:%u", (long)getpid(), ++n);
	o.unix_path = sock;
	o.prefix = prefix;
	if (jobq_backend_redis_new(&f->b, &o) < 0 || f->b->queue_open(&f->q, f->b, "q") < 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state) {
	fixture *f = *state;
	if (f == NULL)
		return 0;
	f->b->obliterate(f->q, 1, 0);
	f->b->queue_close(f->q);
	f->b->free(f->b);
	free(f);
	return 0;
}

static void
add_job(fixture *f, jobq_job_id *id) {
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.timestamp = wall_ms();
	jobq_add_request r = {"n", "{}", 2, &o};
	int outcome = -1;
	assert_int_equal(f->b->add(id, &outcome, f->q, &r, 1, wall_ms()), 0);
	assert_int_equal(outcome, JOBQ_ADD_CREATED);
}

/* Job data is `len` bytes, not a C string: an exact-size heap buffer with no NUL (ASan
 * catches any read past it) and a prefix of a longer buffer are stored byte for byte. */
static void
add_data_is_not_a_c_string(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	static const char text[] = "{\"a\":1}{\"junk\":true}";
	size_t len = 7; /* {"a":1} */
	char *exact = malloc(len);
	assert_non_null(exact);
	memcpy(exact, text, len);
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.timestamp = wall_ms();
	jobq_add_request r[2] = {{"exact", exact, len, &o}, {"prefix", text, len, &o}};
	jobq_job_id ids[2];
	int outcomes[2] = {-1, -1};
	assert_int_equal(f->b->add(ids, outcomes, f->q, r, 2, wall_ms()), 0);
	free(exact);
	for (int i = 0; i < 2; i++) {
		jobq_job *job = NULL;
		assert_int_equal(outcomes[i], JOBQ_ADD_CREATED);
		assert_int_equal(f->b->get(&job, f->q, ids[i].str), 0);
		assert_int_equal(job->data_len, len);
		assert_memory_equal(job->data, "{\"a\":1}", len);
		jobq_job_free(job);
	}
}

/*
 * addJobs takes a plain job in a short form ("p"), a plain job that repeats the name, opts
 * and timestamp of the plain job before it in a shorter one ("s"), any other job whole ("j"),
 * and answers only for the "j" jobs. A step that mixes them, both as one call (add) and
 * pipelined (add_send / add_recv), gives every job its id, outcome and fields.
 */
enum { MIXED = 9 };

static void
mixed_requests(jobq_add_request *r, jobq_job_options *o, int64_t ts) {
	static const char *const data[MIXED] = {"{\"i\":0}", "{\"i\":1}", "{\"i\":2}",
	                                        "{\"i\":3}", "{\"i\":4}", "{\"i\":5}",
	                                        "{\"i\":6}", "{\"i\":7}", "{\"i\":8}"};
	/* p a, s, p b (name), j custom, s (repeats b across the j), p (timestamp), j delayed,
	 * j duplicate custom id, p (opts: attempts) */
	static const char *const names[MIXED] = {"a", "a", "b", "b", "b", "b", "b", "b", "b"};
	for (int i = 0; i < MIXED; i++) {
		o[i] = (jobq_job_options)JOBQ_JOB_OPTIONS_INIT;
		o[i].timestamp = i == 5 ? ts + 1 : ts;
		r[i] = (jobq_add_request){names[i], data[i], strlen(data[i]), &o[i]};
	}
	o[3].job_id = "mixed-custom";
	o[6].delay_ms = 60000;
	o[7].job_id = "mixed-custom";
	o[8].attempts = 3;
}

static void
check_mixed(fixture *f, const jobq_job_id *ids, const int *outcomes, int64_t ts) {
	long long first = strtoll(ids[0].str, NULL, 10);
	for (int i = 0; i < MIXED; i++) {
		char want[32];
		if (i == 3 || i == 7)
			snprintf(want, sizeof(want), "mixed-custom");
		else
			snprintf(want, sizeof(want), "%lld", first + i);
		assert_string_equal(ids[i].str, want);
		assert_int_equal(outcomes[i], i == 7 ? JOBQ_ADD_DUPLICATE : JOBQ_ADD_CREATED);
		if (i == 7)
			continue;
		jobq_job *job = NULL;
		char data[16];
		snprintf(data, sizeof(data), "{\"i\":%d}", i);
		assert_int_equal(f->b->get(&job, f->q, ids[i].str), 0);
		assert_string_equal(job->name, i < 2 ? "a" : "b");
		assert_int_equal(job->data_len, strlen(data));
		assert_memory_equal(job->data, data, strlen(data));
		assert_int_equal(job->timestamp, i == 5 ? ts + 1 : ts);
		assert_int_equal(job->delay_ms, i == 6 ? 60000 : 0);
		assert_int_equal(job->state, i == 6 ? JOBQ_STATE_DELAYED : JOBQ_STATE_WAITING);
		assert_true((job->opts.attempts == 3) == (i == 8));
		jobq_job_free(job);
	}
}

static void
add_mixed_forms(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	jobq_add_request r[MIXED];
	jobq_job_options o[MIXED];
	jobq_job_id ids[MIXED];
	int outcomes[MIXED];
	int64_t ts = wall_ms();
	mixed_requests(r, o, ts);
	assert_int_equal(f->b->add(ids, outcomes, f->q, r, MIXED, wall_ms()), 0);
	check_mixed(f, ids, outcomes, ts);

	/* pipelined, on a fresh queue: two steps on the wire before either reply is read */
	jobq_backend_queue *q2 = NULL;
	assert_int_equal(f->b->queue_open(&q2, f->b, "q2"), 0);
	jobq_backend_queue *q1 = f->q;
	f->q = q2;
	jobq_job_id ids2[2][MIXED];
	int outcomes2[2][MIXED];
	assert_int_equal(f->b->add_send(q2, r, MIXED, wall_ms()), 0);
	assert_int_equal(f->b->add_send(q2, r, 3, wall_ms()), 0);
	assert_int_equal(f->b->add_recv(ids2[0], outcomes2[0], q2, MIXED), 0);
	assert_int_equal(f->b->add_recv(ids2[1], outcomes2[1], q2, 3), 0);
	check_mixed(f, ids2[0], outcomes2[0], ts);
	long long next = strtoll(ids2[0][MIXED - 1].str, NULL, 10) + 1;
	for (int i = 0; i < 3; i++) {
		char want[32];
		snprintf(want, sizeof(want), "%lld", next + i);
		assert_string_equal(ids2[1][i].str, want);
		assert_int_equal(outcomes2[1][i], JOBQ_ADD_CREATED);
	}
	f->b->obliterate(q2, 1, 0);
	f->b->queue_close(q2);
	f->q = q1;
}

/* A lock set with PX expires on the server: extend/complete then answer JOBQ_ELOCKLOST. */
static void
lock_expires_on_server_time(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	jobq_job_id id;
	jobq_job *job = NULL;
	add_job(f, &id);
	assert_int_equal(f->b->fetch(&job, NULL, f->q, "tok-1", 100, wall_ms()), 0);
	assert_int_equal(f->b->extend_lock(f->q, id.str, "tok-1", 100, wall_ms()), 0);
	int64_t deadline = mono_ms() + 3000;
	int rc = 0;
	while (mono_ms() < deadline &&
	       (rc = f->b->progress(f->q, id.str, "tok-1", "1", wall_ms())) == 0)
		pause_ms(20);
	assert_int_equal(rc, JOBQ_ELOCKLOST); /* progress checks the lock without renewing */
	assert_int_equal(f->b->extend_lock(f->q, id.str, "tok-1", 100, wall_ms()), JOBQ_ELOCKLOST);
	assert_int_equal(f->b->complete(f->q, id.str, "tok-1", "1", NULL, wall_ms()),
	                 JOBQ_ELOCKLOST);
	jobq_job_free(job);
}

/* First check marks the active job as suspect; a later check after the lock expired
 * recovers it (stc 1, back to waiting); past max_stalled it carries `defa`. */
static void
stalled_check_is_two_phase(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	jobq_job_id id;
	jobq_job *job = NULL;
	jobq_strings *rec = NULL;
	add_job(f, &id);
	assert_int_equal(f->b->fetch(&job, NULL, f->q, "tok-1", 150, wall_ms()), 0);
	jobq_job_free(job);
	/* phase 1: nothing recovered, the job becomes a suspect */
	assert_int_equal(f->b->reap_stalled(&rec, f->q, 0, 0, wall_ms()), 0);
	jobq_strings_free(rec);
	rec = NULL;
	int64_t deadline = mono_ms() + 3000;
	int n = 0;
	while (mono_ms() < deadline && n == 0) {
		n = f->b->reap_stalled(&rec, f->q, 0, 0, wall_ms());
		assert_true(n >= 0);
		if (n == 0)
			pause_ms(20);
	}
	assert_int_equal(n, 1);
	assert_string_equal(rec->items[0], id.str);
	jobq_strings_free(rec);
	assert_int_equal(f->b->get(&job, f->q, id.str), 0);
	assert_int_equal(job->state, JOBQ_STATE_WAITING);
	assert_int_equal(job->stalled_count, 1);
	assert_non_null(job->deferred_failure); /* max_stalled 0 */
	jobq_job_free(job);
}

/* The stalled-check key throttles: a second check within the interval does nothing. */
static void
stalled_check_is_throttled(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	jobq_job_id id;
	jobq_job *job = NULL;
	add_job(f, &id);
	assert_int_equal(f->b->fetch(&job, NULL, f->q, "tok-1", 30000, wall_ms()), 0);
	jobq_job_free(job);
	assert_int_equal(f->b->reap_stalled(NULL, f->q, 1, 60000, wall_ms()), 0);
	assert_int_equal(f->b->reap_stalled(NULL, f->q, 1, 60000, wall_ms()), 0);
}

typedef struct waiter {
	fixture *f;
	int rc;
	int64_t took;
} waiter;

static void *
wait_thread(void *arg) {
	waiter *w = arg;
	int64_t t0 = mono_ms();
	w->rc = w->f->b->wait_for_work(w->f->q, jobq_clock_system(), 20000);
	w->took = mono_ms() - t0;
	return NULL;
}

/* wake() interrupts a BZPOPMIN in progress (CLIENT UNBLOCK from another connection). */
static void
wake_interrupts_blocked_wait(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	waiter w = {f, -1, 0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
	pause_ms(200); /* let it reach the server; a wake before that is also fine */
	f->b->wake(f->b);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, 0);
	assert_true(w.took < 5000);
}

/* An add wakes a blocked waiter through the marker. */
static void
add_wakes_waiter(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	waiter w = {f, -1, 0};
	pthread_t th;
	jobq_job_id id;
	assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
	pause_ms(100);
	add_job(f, &id);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, 0);
	assert_true(w.took < 5000);
}

static void
urls(void **state) {
	(void)state;
	jobq_backend *b = NULL;
	const char *bad[] = {"redis://",
	                     "redis://host:notaport",
	                     "redis://host:70000",
	                     "redis://host/abc",
	                     "redis://host?prefix=",
	                     "redis://host?color=blue",
	                     "redis://user@host",
	                     "redis://h%zz:pw@host",
	                     "redis+unix://relative.sock",
	                     "redis+unix:///x.sock?db=x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = jobq__redis_open_url(&b, bad[i]);
		if (rc != JOBQ_EINVAL)
			fail_msg("%s: %s (%s)", bad[i], jobq_error_name(rc), jobq_error_message());
		assert_non_null(strstr(jobq_error_message(), "redis URL"));
	}
	/* TLS settings: each bad one named; nothing is contacted */
	const char *bad_tls[][2] = {
	    {"redis://127.0.0.1:1?cacert=/x.pem", "'cacert' is a TLS setting"},
	    {"rediss://127.0.0.1:1?insecure=2", "insecure '2'"},
	    {"rediss://127.0.0.1:1?sni=", "empty sni"},
	    {"rediss://127.0.0.1:1?cert=/c.pem", "needs both cert= and key="},
	    {"rediss://127.0.0.1:1?cacert=/nonexistent/ca.pem", "cacert '/nonexistent/ca.pem'"},
	    {"rediss://127.0.0.1:1?capath=/nonexistent/dir", "capath '/nonexistent/dir'"},
	    {"rediss://127.0.0.1:1?cert=/nonexistent/c.pem&key=/k.pem",
	     "cert '/nonexistent/c.pem'"},
	    {"redis+cluster://127.0.0.1:1,otherhost?prefix={q}", "cluster seed 'otherhost'"},
	    {"redis+cluster://127.0.0.1:1,h:2/3", "only database 0"},
	    {"rediss+cluster://127.0.0.1:1?insecure=x", "insecure 'x'"},
	};
	for (size_t i = 0; i < sizeof(bad_tls) / sizeof(bad_tls[0]); i++) {
		int rc = jobq__redis_open_url(&b, bad_tls[i][0]);
		if (rc != JOBQ_EINVAL || strstr(jobq_error_message(), bad_tls[i][1]) == NULL)
			fail_msg("%s: %s (%s)", bad_tls[i][0], jobq_error_name(rc),
			         jobq_error_message());
	}
	/* nobody listens there: a clear JOBQ_EIO naming the address */
	assert_int_equal(jobq__redis_open_url(&b, "redis+unix:///nonexistent/jobq.sock?prefix=x"),
	                 JOBQ_EIO);
	assert_non_null(strstr(jobq_error_message(), "/nonexistent/jobq.sock"));
	if (sock != NULL) {
		char url[300];
		snprintf(url, sizeof(url), "redis+unix://%s?db=3&prefix=jobqurl", sock);
		assert_int_equal(jobq__redis_open_url(&b, url), 0);
		b->free(b);
	}
}

/* A job's dedup id comes back with the fetched job and goes with its completion: completing
 * it through complete_fetch releases the dedup key (the next add with that id is created),
 * without the script reading the job. */
static void
complete_fetch_releases_dedup(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.timestamp = wall_ms();
	o.dedup_id = "once";
	jobq_add_request r = {"n", "{}", 2, &o};
	jobq_job_id id, again;
	int outcome = -1;
	assert_int_equal(f->b->add(&id, &outcome, f->q, &r, 1, wall_ms()), 0);
	assert_int_equal(outcome, JOBQ_ADD_CREATED);
	assert_int_equal(f->b->add(&again, &outcome, f->q, &r, 1, wall_ms()), 0);
	assert_int_equal(outcome, JOBQ_ADD_DEDUPLICATED);
	const char *tokens[1] = {"tok-dedup"};
	jobq_job *jobs[1] = {NULL};
	assert_int_equal(
	    f->b->complete_fetch(jobs, NULL, f->q, NULL, 0, tokens, 1, 30000, wall_ms()), 1);
	assert_string_equal(jobs[0]->id, id.str);
	assert_non_null(jobs[0]->opts.dedup_id);
	assert_string_equal(jobs[0]->opts.dedup_id, "once");
	jobq_completion done = {
	    jobs[0]->id, jobs[0]->token,         "null", {JOBQ_KEEP_NONE, -1, -1},
	    1,           jobs[0]->opts.dedup_id, 0};
	assert_int_equal(
	    f->b->complete_fetch(NULL, NULL, f->q, &done, 1, NULL, 0, 30000, wall_ms()), 0);
	assert_int_equal(done.rc, 0);
	assert_int_equal(f->b->add(&again, &outcome, f->q, &r, 1, wall_ms()), 0);
	assert_int_equal(outcome, JOBQ_ADD_CREATED);
	assert_string_not_equal(again.str, id.str);
	jobq_job_free(jobs[0]);
}

/* An integer reply of one command on the test's own connection. */
static long long
redis_int(const char *fmt, const char *a, const char *b) {
	redisContext *c = redisConnectUnix(sock);
	assert_non_null(c);
	assert_int_equal(c->err, 0);
	redisReply *r = redisCommand(c, fmt, a, b);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	long long v = r->integer;
	freeReplyObject(r);
	redisFree(c);
	return v;
}

/*
 * Finishing releases the dedup key alike whether one complete (moveToFinished) or a batched
 * complete_fetch (completeFetch) finishes the job: `de:` goes when it names the job and has
 * no TTL (BullMQ 6 on finalization) or the job is not kept (its owner is gone); a key with a
 * TTL of a kept job stays until it expires. Then, on every path, the pending payload `dn:`
 * (Node's keepLastIfActive) becomes the next job, which owns the key, and goes (BullMQ 6.7.0's
 * requeue on finalization).
 */
static const char *redis_text(char *out, size_t cap, const char *fmt, ...);

static void
finish_releases_dedup_as_bullmq(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	char dk[128], dn[128];
	for (int path = 0; path < 8; path++) {
		int batched = path & 1, ttl = (path >> 1) & 1, kept = path >> 2;
		char deid[16];
		snprintf(deid, sizeof(deid), "d%d", path);
		snprintf(dk, sizeof(dk), "%s:q:de:%s", prefix, deid);
		snprintf(dn, sizeof(dn), "%s:q:dn:%s", prefix, deid);
		jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
		o.timestamp = wall_ms();
		o.dedup_id = deid;
		o.dedup_ttl_ms = ttl ? 600000 : 0;
		jobq_add_request r = {"n", "{}", 2, &o};
		jobq_job_id id;
		int outcome = -1;
		assert_int_equal(f->b->add(&id, &outcome, f->q, &r, 1, wall_ms()), 0);
		assert_int_equal(outcome, JOBQ_ADD_CREATED);
		assert_int_equal(redis_int("HSET %s name %s", dn, "next"), 1);
		const char *tokens[1] = {"tok-fin"};
		jobq_job *jobs[1] = {NULL};
		assert_int_equal(
		    f->b->complete_fetch(jobs, NULL, f->q, NULL, 0, tokens, 1, 30000, wall_ms()),
		    1);
		assert_string_equal(jobs[0]->id, id.str);
		jobq_keep keep = {kept ? JOBQ_KEEP_ALL : JOBQ_KEEP_NONE, -1, -1};
		if (batched) {
			jobq_completion done = {jobs[0]->id, jobs[0]->token, "null", keep,
			                        1,           deid,           0};
			assert_int_equal(f->b->complete_fetch(NULL, NULL, f->q, &done, 1, NULL, 0,
			                                      30000, wall_ms()),
			                 0);
			assert_int_equal(done.rc, 0);
		} else {
			assert_int_equal(f->b->complete(f->q, jobs[0]->id, jobs[0]->token, "null",
			                                &keep, wall_ms()),
			                 0);
		}
		assert_int_equal(redis_int("EXISTS %s %s", dk, dk), 2); /* the next job's */
		assert_int_equal(redis_int("EXISTS %s %s", dn, dn), 0);
		char owner[64], name[64];
		redis_text(owner, sizeof(owner), "GET %s", dk);
		assert_string_not_equal(owner, id.str);
		assert_string_equal(
		    redis_text(name, sizeof(name), "HGET %s:q:%s name", prefix, owner), "next");
		/* out of the way of the next round's fetch */
		char jk[256], wk[128];
		snprintf(jk, sizeof(jk), "%s:q:%s", prefix, owner);
		snprintf(wk, sizeof(wk), "%s:q:wait", prefix);
		assert_int_equal(redis_int("DEL %s %s", dk, jk), 2);
		assert_int_equal(redis_int("LREM %s 0 %s", wk, owner), 1);
		jobq_job_free(jobs[0]);
	}
}

/* A command's reply as text (a string, or an integer's decimal), "" for nil, in `out`. */
static const char *
redis_text(char *out, size_t cap, const char *fmt, ...) {
	redisContext *c = redisConnectUnix(sock);
	assert_non_null(c);
	assert_int_equal(c->err, 0);
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		snprintf(out, cap, "%s", r->str);
	else if (r->type == REDIS_REPLY_INTEGER)
		snprintf(out, cap, "%lld", r->integer);
	else {
		assert_int_equal(r->type, REDIS_REPLY_NIL);
		out[0] = '\0';
	}
	freeReplyObject(r);
	redisFree(c);
	return out;
}

/* Where parent `pid` of queue "pq" is: "w" wait, "p" prioritized, "c" waiting-children. */
static const char *
parent_state(const char *pid) {
	static char t[64];
	if (redis_text(t, sizeof(t), "LPOS %s:pq:wait %s", prefix, pid)[0] != '\0')
		return "w";
	if (redis_text(t, sizeof(t), "ZSCORE %s:pq:prioritized %s", prefix, pid)[0] != '\0')
		return "p";
	if (redis_text(t, sizeof(t), "ZSCORE %s:pq:waiting-children %s", prefix, pid)[0] != '\0')
		return "c";
	return "?";
}

/* A parent `pid` in queue "pq", as Node's FlowProducer writes it, waiting for `n` jobs added to
 * queue "q" (their keys in `ck`) whose `parent` JSON carries `policy` (NULL: none). */
static void
flow_parent(fixture *f, const char *pid, int priority, const char *policy, size_t n,
            char ck[][200]) {
	char t[64], pk[96], parent[192];
	snprintf(pk, sizeof(pk), "%s:pq:%s", prefix, pid);
	redis_text(t, sizeof(t),
	           "HSET %s name p data {} opts {\"attempts\":0} timestamp 1 delay 0 "
	           "priority %d",
	           pk, priority);
	redis_text(t, sizeof(t), "ZADD %s:pq:waiting-children 1 %s", prefix, pid);
	snprintf(parent, sizeof(parent), "{\"id\":\"%s\",\"queueKey\":\"%s:pq\"%s%s%s}", pid,
	         prefix, policy ? ",\"" : "", policy ? policy : "", policy ? "\":true" : "");
	for (size_t i = 0; i < n; i++) {
		jobq_job_id id;
		add_job(f, &id);
		snprintf(ck[i], 200, "%s:q:%s", prefix, id.str);
		redis_text(t, sizeof(t), "SADD %s:dependencies %s", pk, ck[i]);
		redis_text(t, sizeof(t), "HSET %s parentKey %s parent %s", ck[i], pk, parent);
	}
}

/* Drops the keys of queue "pq", which the fixture's obliterate of "q" leaves. */
static void
drop_parent_queue(void) {
	redisContext *c = redisConnectUnix(sock);
	assert_non_null(c);
	redisReply *r = redisCommand(c, "KEYS %s:pq:*", prefix);
	assert_non_null(r);
	for (size_t i = 0; i < r->elements; i++)
		freeReplyObject(redisCommand(c, "DEL %s", r->element[i]->str));
	freeReplyObject(r);
	redisFree(c);
}

/*
 * Flows: a child that jobq completes, by complete (moveToFinished) or a batched complete_fetch
 * (completeFetch), kept or not, leaves its parent's dependencies with its result in the
 * parent's `:processed`; the last one moves the parent (in another queue) out of
 * waiting-children to wait, or prioritized by its priority, with event waiting (prev
 * waiting-children), as BullMQ 6's finish does.
 */
static void
finish_releases_flow_parent(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	char t[256], pid[16], pk[96], ck[2][200];
	for (int path = 0; path < 4; path++) {
		int batched = path & 1, kept = path >> 1;
		snprintf(pid, sizeof(pid), "P%d", path);
		snprintf(pk, sizeof(pk), "%s:pq:%s", prefix, pid);
		flow_parent(f, pid, path == 3 ? 2 : 0, NULL, 2, ck);
		const char *tokens[2] = {"tok-a", "tok-b"};
		jobq_job *jobs[2] = {NULL, NULL};
		assert_int_equal(
		    f->b->complete_fetch(jobs, NULL, f->q, NULL, 0, tokens, 2, 30000, wall_ms()),
		    2);
		jobq_keep keep = {kept ? JOBQ_KEEP_ALL : JOBQ_KEEP_NONE, -1, -1};
		for (int i = 0; i < 2; i++) {
			const char *value = i == 0 ? "\"r0\"" : "\"r1\"";
			if (batched) {
				jobq_completion done = {jobs[i]->id, jobs[i]->token, value, keep,
				                        1,           NULL,           0};
				assert_int_equal(f->b->complete_fetch(NULL, NULL, f->q, &done, 1,
				                                      NULL, 0, 30000, wall_ms()),
				                 0);
				assert_int_equal(done.rc, 0);
			} else {
				assert_int_equal(f->b->complete(f->q, jobs[i]->id, jobs[i]->token,
				                                value, &keep, wall_ms()),
				                 0);
			}
			assert_string_equal(redis_text(t, sizeof(t), "SCARD %s:dependencies", pk),
			                    i == 0 ? "1" : "0");
			assert_string_equal(parent_state(pid), i == 0      ? "c"
			                                       : path == 3 ? "p"
			                                                   : "w");
		}
		char key[200];
		for (int i = 0; i < 2; i++) {
			snprintf(key, sizeof(key), "%s:q:%s", prefix, jobs[i]->id);
			assert_string_equal(
			    redis_text(t, sizeof(t), "HGET %s:processed %s", pk, key),
			    i == 0 ? "\"r0\"" : "\"r1\"");
			jobq_job_free(jobs[i]);
		}
		redisContext *c = redisConnectUnix(sock);
		assert_non_null(c);
		redisReply *r = redisCommand(c, "XREVRANGE %s:pq:events + - COUNT 1", prefix);
		assert_non_null(r);
		assert_int_equal(r->elements, 1);
		redisReply *fl = r->element[0]->element[1];
		assert_int_equal(fl->elements, 6);
		const char *want[] = {"event", "waiting", "jobId", pid, "prev", "waiting-children"};
		for (size_t i = 0; i < 6; i++)
			assert_string_equal(fl->element[i]->str, want[i]);
		freeReplyObject(r);
		redisFree(c);
	}
	drop_parent_queue();
}

/*
 * Flows: a child that jobq fails for good applies the policy its `parent` JSON carries:
 * fpof marks the parent to fail (defa naming the child, :unsuccessful) and moves it to wait,
 * cpof records the failure in :failed and moves it to wait though a sibling is pending, idof
 * records it and releases the dependency, rdof releases it, and with no policy the parent
 * keeps waiting for the failed child.
 */
static void
fail_applies_flow_policy(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	static const struct {
		const char *policy;
		size_t n;       /* children: the first fails, the second stays pending */
		const char *at; /* where the parent is afterwards */
		int failed;     /* the failure is in the parent's :failed */
	} cases[] = {{"fpof", 2, "w", 0},
	             {"cpof", 2, "w", 1},
	             {"idof", 1, "w", 1},
	             {"rdof", 1, "w", 0},
	             {NULL, 1, "c", 0}};
	char t[256], pid[16], pk[96], ck[2][200];
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		snprintf(pid, sizeof(pid), "F%zu", k);
		snprintf(pk, sizeof(pk), "%s:pq:%s", prefix, pid);
		flow_parent(f, pid, 0, cases[k].policy, cases[k].n, ck);
		const char *tokens[1] = {"tok-f"};
		jobq_job *jobs[1] = {NULL};
		assert_int_equal(
		    f->b->complete_fetch(jobs, NULL, f->q, NULL, 0, tokens, 1, 30000, wall_ms()),
		    1);
		assert_string_equal(jobs[0]->id, ck[0] + strlen(prefix) + 3);
		jobq_failure fl = {"boom", NULL, -1, {JOBQ_KEEP_ALL, -1, -1}, 1, 0, 0};
		assert_int_equal((f->b->fail)(f->q, jobs[0]->id, jobs[0]->token, &fl, wall_ms()),
		                 0);
		jobq_job_free(jobs[0]);
		assert_string_equal(parent_state(pid), cases[k].at);
		assert_string_equal(redis_text(t, sizeof(t), "HGET %s:failed %s", pk, ck[0]),
		                    cases[k].failed ? "boom" : "");
		assert_string_equal(
		    redis_text(t, sizeof(t), "SISMEMBER %s:dependencies %s", pk, ck[0]),
		    cases[k].policy ? "0" : "1");
		char why[240];
		snprintf(why, sizeof(why), "child %s failed", ck[0]);
		int fpof = k == 0;
		assert_string_equal(redis_text(t, sizeof(t), "HGET %s defa", pk), fpof ? why : "");
		assert_string_equal(
		    redis_text(t, sizeof(t), "ZSCORE %s:unsuccessful %s", pk, ck[0])[0] ? "1" : "",
		    fpof ? "1" : "");
		/* the sibling (fetched by the next case or left waiting) is not touched */
		if (cases[k].n == 2)
			assert_string_equal(
			    redis_text(t, sizeof(t), "SISMEMBER %s:dependencies %s", pk, ck[1]),
			    "1");
		/* out of the way of the next case's fetch */
		if (cases[k].n == 2)
			redis_text(t, sizeof(t), "LREM %s:q:wait 0 %s", prefix,
			           ck[1] + strlen(prefix) + 3);
	}
	drop_parent_queue();
}

/* Flows: removing a child releases its dependency; the last one moves the parent to wait, as
 * BullMQ's remove does, with nothing recorded in the parent's :processed. */
static void
remove_releases_flow_parent(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	char t[64], pk[96], ck[2][200];
	snprintf(pk, sizeof(pk), "%s:pq:R", prefix);
	flow_parent(f, "R", 0, NULL, 2, ck);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(f->b->remove(f->q, ck[i] + strlen(prefix) + 3, wall_ms()), 0);
		assert_string_equal(redis_text(t, sizeof(t), "SCARD %s:dependencies", pk),
		                    i == 0 ? "1" : "0");
		assert_string_equal(parent_state("R"), i == 0 ? "c" : "w");
	}
	assert_string_equal(redis_text(t, sizeof(t), "EXISTS %s:processed", pk), "0");
	drop_parent_queue();
}

/* Flows: a parent one of whose failParentOnFailure children failed (its `:unsuccessful`) is
 * not completed, by either script, as BullMQ 6 refuses it; nothing changes. */
static void
complete_refused_with_failed_child(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	char t[64];
	jobq_job_id id;
	add_job(f, &id);
	const char *tokens[1] = {"tok-u"};
	jobq_job *jobs[1] = {NULL};
	assert_int_equal(
	    f->b->complete_fetch(jobs, NULL, f->q, NULL, 0, tokens, 1, 30000, wall_ms()), 1);
	redis_text(t, sizeof(t), "ZADD %s:q:%s:unsuccessful 1 %s:q:child", prefix, id.str, prefix);
	jobq_keep keep = {JOBQ_KEEP_ALL, -1, -1};
	assert_int_equal(f->b->complete(f->q, id.str, "tok-u", "1", &keep, wall_ms()), JOBQ_ESTATE);
	jobq_completion done = {id.str, "tok-u", "1", keep, 1, NULL, 0};
	assert_int_equal(
	    f->b->complete_fetch(NULL, NULL, f->q, &done, 1, NULL, 0, 30000, wall_ms()), 0);
	assert_int_equal(done.rc, JOBQ_ESTATE);
	assert_string_equal(redis_text(t, sizeof(t), "LPOS %s:q:active %s", prefix, id.str), "0");
	assert_string_equal(redis_text(t, sizeof(t), "GET %s:q:%s:lock", prefix, id.str), "tok-u");
	jobq_job_free(jobs[0]);
}

/* The queue's active list, head first, as ids. */
static size_t
active_list(char ids[][32], size_t max) {
	redisContext *c = redisConnectUnix(sock);
	assert_non_null(c);
	assert_int_equal(c->err, 0);
	redisReply *r = redisCommand(c, "LRANGE %s:q:active 0 -1", prefix);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	assert_true(r->elements <= max);
	for (size_t i = 0; i < r->elements; i++)
		snprintf(ids[i], 32, "%s", r->element[i]->str);
	size_t n = r->elements;
	freeReplyObject(r);
	redisFree(c);
	return n;
}

/*
 * Completing a batch out of a long active list: a batch fetched in one step and completed
 * whole is cut out by moving the shorter side around it (at the tail, at the head, in the
 * middle), a partial batch by marking; whatever the path, exactly the completed jobs leave
 * and the others keep their order.
 */
static void
complete_fetch_cuts_batches_out(void **state) {
	fixture *f = *state;
	if (f == NULL)
		skip();
	enum { B = 7, K = 40 };
	char tokens_buf[B * K][32];
	const char *tokens[B * K];
	jobq_job *jobs[B][K] = {{0}};
	for (int i = 0; i < B * K; i++) {
		jobq_job_id id;
		add_job(f, &id);
		snprintf(tokens_buf[i], sizeof(tokens_buf[i]), "tok-%d", i);
		tokens[i] = tokens_buf[i];
	}
	for (int b = 0; b < B; b++)
		assert_int_equal(f->b->complete_fetch(jobs[b], NULL, f->q, NULL, 0, tokens + b * K,
		                                      K, 30000, wall_ms()),
		                 K);
	/* the expected list, head first: the newest batch first, each batch's last job first */
	static char expect[B * K][32];
	int gone[B][K] = {{0}};
	/* batch 0 (at the tail), batch 6 (at the head), batch 2 (nearer the tail: the tail side
	 * moves), batch 4 (nearer the head: the head side moves), and every other job of batch 3
	 * (not a whole run: marked) */
	const int order[] = {0, 6, 2, 4, 3};
	for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++) {
		int b = order[o];
		jobq_completion done[K];
		size_t nd = 0;
		for (int i = 0; i < K; i++) {
			if (b == 3 && i % 2 == 1)
				continue;
			done[nd++] = (jobq_completion){jobs[b][i]->id,
			                               jobs[b][i]->token,
			                               "null",
			                               {JOBQ_KEEP_NONE, -1, -1},
			                               1,
			                               NULL,
			                               0};
			gone[b][i] = 1;
		}
		jobq_job *none[1] = {0};
		assert_int_equal(
		    f->b->complete_fetch(none, NULL, f->q, done, nd, tokens, 0, 30000, wall_ms()),
		    0);
		for (size_t i = 0; i < nd; i++)
			assert_int_equal(done[i].rc, 0);
		size_t n = 0;
		for (int bb = B - 1; bb >= 0; bb--)
			for (int i = K - 1; i >= 0; i--)
				if (!gone[bb][i])
					snprintf(expect[n++], 32, "%s", jobs[bb][i]->id);
		static char got[B * K][32];
		assert_int_equal(active_list(got, B * K), n);
		for (size_t i = 0; i < n; i++)
			assert_string_equal(got[i], expect[i]);
	}
	for (int b = 0; b < B; b++)
		for (int i = 0; i < K; i++)
			jobq_job_free(jobs[b][i]);
}

/* TYPE and DUMP (hex) of every key under the test's prefix, sorted by name. */
static char *
dump_keys(void) {
	redisContext *c = redisConnectUnix(sock);
	assert_non_null(c);
	assert_int_equal(c->err, 0);
	redisReply *r = redisCommand(c, "KEYS %s:*", prefix);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_ARRAY);
	/* sort the names (a few dozen: insertion sort) */
	for (size_t i = 1; i < r->elements; i++)
		for (size_t j = i; j > 0 && strcmp(r->element[j - 1]->str, r->element[j]->str) > 0;
		     j--) {
			redisReply *t = r->element[j];
			r->element[j] = r->element[j - 1];
			r->element[j - 1] = t;
		}
	size_t cap = 1 << 16, used = 0;
	char *out = malloc(cap);
	assert_non_null(out);
	out[0] = '\0';
	for (size_t i = 0; i < r->elements; i++) {
		const char *k = r->element[i]->str;
		redisReply *t = redisCommand(c, "TYPE %s", k);
		redisReply *d = redisCommand(c, "DUMP %s", k);
		assert_non_null(t);
		assert_non_null(d);
		size_t need = strlen(k) + strlen(t->str) + 2 * d->len + 4;
		while (used + need >= cap) {
			cap *= 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		used += (size_t)sprintf(out + used, "%s %s ", k, t->str);
		for (size_t b = 0; b < d->len; b++)
			used += (size_t)sprintf(out + used, "%02x", (unsigned char)d->str[b]);
		out[used++] = '\n';
		out[used] = '\0';
		freeReplyObject(t);
		freeReplyObject(d);
	}
	freeReplyObject(r);
	redisFree(c);
	return out;
}

/* The scripts themselves never touch the queue's own keys, even when an id naming one reaches
 * them without the core's check (jobq__reserved_id): every id-taking step answers that there
 * is no such job, and every key keeps its type and value. */
static void
scripts_leave_queue_keys_alone(void **state) {
	fixture *f = *state;
	jobq_job_id id;
	add_job(f, &id);
	jobq_job *job = NULL;
	assert_int_equal(f->b->fetch(&job, NULL, f->q, "tok", 30000, wall_ms()), 0);
	jobq_job_free(job);
	add_job(f, &id);
	assert_int_equal(f->b->set_paused(f->q, 1, wall_ms()), 0);
	char *before = dump_keys();
	static const char *const ids[] = {"meta",   "wait",          "id",     "events", "marker",
	                                  "active", "stalled-check", "repeat", "de:x",   "1:lock",
	                                  "pc",     "limiter"};
	jobq_failure fl = {"boom", "boom", -1, {JOBQ_KEEP_ALL, -1, -1}, 1, 0, 0};
	jobq_keep keep = {JOBQ_KEEP_ALL, -1, -1};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const char *r = ids[i];
		int64_t now = wall_ms();
		job = NULL;
		assert_int_equal(f->b->get(&job, f->q, r), JOBQ_ENOTFOUND);
		assert_null(job);
		assert_true(f->b->remove(f->q, r, now) < 0);
		assert_true(f->b->progress(f->q, r, NULL, "42", now) < 0);
		assert_true(f->b->add_log(f->q, r, "line", 0) < 0);
		assert_true(f->b->promote(f->q, r, now) < 0);
		assert_true(f->b->retry_failed(f->q, r, now) < 0);
		assert_true(f->b->complete(f->q, r, "tok", "1", &keep, now) < 0);
		assert_true((f->b->fail)(f->q, r, "tok", &fl, now) < 0);
		assert_true(f->b->release(f->q, r, "tok", now) < 0);
	}
	char *after = dump_keys();
	assert_string_equal(after, before);
	free(before);
	free(after);
}

int
main(void) {
	sock = getenv("JOBQ_TEST_REDIS_SOCKET");
	if (sock == NULL || access(sock, F_OK) != 0) {
		/* no server (its fixture said why): skipped, but never in CI */
		fprintf(stderr, "no redis socket (JOBQ_TEST_REDIS_SOCKET): NOT run\n");
		return getenv("CI") ? 1 : 77;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(add_data_is_not_a_c_string, setup, teardown),
	    cmocka_unit_test_setup_teardown(add_mixed_forms, setup, teardown),
	    cmocka_unit_test_setup_teardown(complete_fetch_cuts_batches_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(complete_fetch_releases_dedup, setup, teardown),
	    cmocka_unit_test_setup_teardown(finish_releases_dedup_as_bullmq, setup, teardown),
	    cmocka_unit_test_setup_teardown(finish_releases_flow_parent, setup, teardown),
	    cmocka_unit_test_setup_teardown(fail_applies_flow_policy, setup, teardown),
	    cmocka_unit_test_setup_teardown(remove_releases_flow_parent, setup, teardown),
	    cmocka_unit_test_setup_teardown(complete_refused_with_failed_child, setup, teardown),
	    cmocka_unit_test_setup_teardown(lock_expires_on_server_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(stalled_check_is_two_phase, setup, teardown),
	    cmocka_unit_test_setup_teardown(stalled_check_is_throttled, setup, teardown),
	    cmocka_unit_test_setup_teardown(wake_interrupts_blocked_wait, setup, teardown),
	    cmocka_unit_test_setup_teardown(add_wakes_waiter, setup, teardown),
	    cmocka_unit_test_setup_teardown(scripts_leave_queue_keys_alone, setup, teardown),
	    cmocka_unit_test(urls),
	};
	return cmocka_run_group_tests_name("redis_backend", tests, NULL, NULL);
}
