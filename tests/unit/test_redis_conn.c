/*
 * Redis connections against private redis-server processes this test starts itself (each on a
 * unix socket in a temporary directory): AUTH with a password and with an ACL user, database
 * selection, a server that is down at open (fail at once, or wait), and a server restarted
 * (kill -9, AOF with appendfsync always) in the middle of a run of producers and workers.
 * Waits are bounded polls on a condition.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "backends/backend.h"
#include "jobq.h"
#include "jobq/sys/backend.h"

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

/* --- private servers ------------------------------------------------------------------------ */

typedef struct server {
	char dir[64];
	char sock[96];
	char log[96];
	pid_t pid;
} server;

/* Starts redis-server on `s->sock` with `extra` arguments (NULL-terminated) and waits until it
 * answers PING (or NOAUTH) for up to 10 s. */
static int
server_start(server *s, const char *const *extra) {
	const char *argv[32] = {"redis-server",
	                        "--port",
	                        "0",
	                        "--unixsocket",
	                        s->sock,
	                        "--dir",
	                        s->dir,
	                        "--save",
	                        "",
	                        "--daemonize",
	                        "no",
	                        "--logfile",
	                        s->log,
	                        "--maxmemory-policy",
	                        "noeviction"};
	int n = 15;
	for (int i = 0; extra != NULL && extra[i] != NULL && n < 31; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char *av[32];
		for (int i = 0; i <= n; i++)
			av[i] = argv[i] ? strdup(argv[i]) : NULL;
		execvp("redis-server", av);
		_exit(127);
	}
	s->pid = pid;
	for (int64_t deadline = mono_ms() + 10000; mono_ms() < deadline;) {
		redisContext *c = redisConnectUnix(s->sock);
		if (c != NULL && !c->err) {
			redisReply *r = redisCommand(c, "PING");
			int up = r != NULL;
			freeReplyObject(r);
			redisFree(c);
			if (up)
				return 0;
		} else if (c != NULL) {
			redisFree(c);
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		pause_ms(10);
	}
	return -1;
}

static void
server_stop(server *s, int sig) {
	if (s->pid > 0) {
		kill(s->pid, sig);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}

static int
server_setup(server *s) {
	snprintf(s->dir, sizeof(s->dir), "/tmp/jobq-rconn-XXXXXX");
	if (mkdtemp(s->dir) == NULL)
		return -1;
	snprintf(s->sock, sizeof(s->sock), "%s/redis.sock", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/redis.log", s->dir);
	s->pid = 0;
	return 0;
}

static void
server_teardown(server *s) {
	char cmd[160];
	server_stop(s, SIGKILL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", s->dir);
}

/* Runs one admin command through hiredis (authenticated with `pass` if given). */
static long long
admin(const server *s, const char *pass, int db, const char *fmt, const char *arg) {
	redisContext *c = redisConnectUnix(s->sock);
	assert_non_null(c);
	assert_int_equal(c->err, 0);
	redisReply *r;
	if (pass != NULL) {
		r = redisCommand(c, "AUTH %s", pass);
		assert_non_null(r);
		freeReplyObject(r);
	}
	r = redisCommand(c, "SELECT %d", db);
	freeReplyObject(r);
	r = arg ? redisCommand(c, fmt, arg) : redisCommand(c, fmt);
	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("%s: %s", fmt, r->str);
	long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
	freeReplyObject(r);
	redisFree(c);
	return v;
}

static int
open_url(jobq_store **st, jobq_queue **q, const char *url) {
	int rc = jobq_store_open(st, url, NULL);
	if (rc < 0)
		return rc;
	rc = jobq_queue_open(q, *st, "conn");
	if (rc < 0)
		jobq_store_close(*st);
	return rc;
}

static void
close_store(jobq_store *st, jobq_queue *q) {
	jobq_queue_close(q);
	jobq_store_close(st);
}

/* An add and a fetch + complete work through `q`. */
static void
round_trip(jobq_queue *q) {
	jobq_job_id id;
	jobq_job *job = NULL;
	assert_true(jobq_queue_add(&id, q, "n", "{}", 2, NULL) >= 0);
	assert_int_equal(jobq_queue_fetch(&job, q, 30000), 0);
	assert_string_equal(jobq_job_id_of(job), id.str);
	assert_int_equal(jobq_job_complete(job, "1"), 0);
	jobq_job_free(job);
}

/* --- AUTH, ACL, SELECT ----------------------------------------------------------------------- */

static void
auth_password_and_acl_user(void **state) {
	(void)state;
	server s;
	assert_int_equal(server_setup(&s), 0);
	const char *extra[] = {"--requirepass", "s3cret", NULL};
	assert_int_equal(server_start(&s, extra), 0);
	jobq_store *st = NULL;
	jobq_queue *q = NULL;
	char url[256];

	/* no password: refused at open with a clear error, not at the first command */
	snprintf(url, sizeof(url), "redis+unix://%s", s.sock);
	assert_int_equal(open_url(&st, &q, url), JOBQ_EBACKEND);
	assert_non_null(strstr(jobq_error_message(), "NOAUTH"));
	/* wrong password */
	snprintf(url, sizeof(url), "redis+unix://%s?password=wrong", s.sock);
	assert_int_equal(open_url(&st, &q, url), JOBQ_EBACKEND);
	assert_non_null(strstr(jobq_error_message(), "AUTH refused"));
	/* right password (default user) */
	snprintf(url, sizeof(url), "redis+unix://%s?password=s3cret&prefix=pw", s.sock);
	assert_int_equal(open_url(&st, &q, url), 0);
	round_trip(q);
	close_store(st, q);

	/* an ACL user limited to keys app:* */
	admin(&s, "s3cret", 0, "ACL SETUSER jobqapp on >app%%pw ~app:* &* +@all", NULL);
	snprintf(url, sizeof(url), "redis+unix://%s?user=jobqapp&password=app%%25pw&prefix=app",
	         s.sock);
	assert_int_equal(open_url(&st, &q, url), 0);
	round_trip(q);
	close_store(st, q);
	/* the same user, keys outside its pattern: the script is refused, and we say so */
	snprintf(url, sizeof(url), "redis+unix://%s?user=jobqapp&password=app%%25pw&prefix=other",
	         s.sock);
	assert_int_equal(open_url(&st, &q, url), 0);
	jobq_job_id id;
	assert_int_equal(jobq_queue_add(&id, q, "n", "{}", 2, NULL), JOBQ_EBACKEND);
	assert_non_null(strstr(jobq_error_message(), "NOPERM"));
	close_store(st, q);
	/* options instead of a URL, wrong user password */
	jobq_redis_options o = JOBQ_REDIS_OPTIONS_INIT;
	jobq_backend *b = NULL;
	o.unix_path = s.sock;
	o.username = "jobqapp";
	o.password = "nope";
	assert_int_equal(jobq_backend_redis_new(&b, &o), JOBQ_EBACKEND);
	server_teardown(&s);
}

static void
database_select(void **state) {
	(void)state;
	server s;
	assert_int_equal(server_setup(&s), 0);
	assert_int_equal(server_start(&s, NULL), 0);
	jobq_store *st = NULL;
	jobq_queue *q = NULL;
	jobq_job_id id;
	char url[256];
	snprintf(url, sizeof(url), "redis+unix://%s?db=5&prefix=dbt", s.sock);
	assert_int_equal(open_url(&st, &q, url), 0);
	assert_true(jobq_queue_add(&id, q, "n", "{}", 2, NULL) >= 0);
	char key[160];
	snprintf(key, sizeof(key), "dbt:conn:%s", id.str);
	assert_int_equal(admin(&s, NULL, 5, "EXISTS %s", key), 1);
	assert_int_equal(admin(&s, NULL, 0, "EXISTS %s", key), 0);
	assert_int_equal(admin(&s, NULL, 0, "DBSIZE", NULL), 0);
	jobq_job *job = NULL;
	assert_int_equal(jobq_queue_fetch(&job, q, 30000), 0);
	assert_string_equal(jobq_job_id_of(job), id.str);
	jobq_job_free(job);
	close_store(st, q);
	server_teardown(&s);
}

/* --- asynchronous adds and a server that goes away -------------------------------------------- */

typedef struct async_tally {
	pthread_mutex_t mu;
	int ok, failed, first_error;
} async_tally;

static void
async_done(void *ctx, int rc, const char *id, int outcome) {
	async_tally *t = ctx;
	(void)outcome;
	pthread_mutex_lock(&t->mu);
	if (rc == 0 && id != NULL && id[0] != '\0') {
		t->ok++;
	} else {
		t->failed++;
		if (t->first_error == 0)
			t->first_error = rc;
	}
	pthread_mutex_unlock(&t->mu);
}

/* Adds sent while the server is gone fail with a store error through their callbacks and the
 * flush (none is reported added and none is silently dropped); after a restart they work. */
static void
async_adds_server_gone(void **state) {
	(void)state;
	server s;
	assert_int_equal(server_setup(&s), 0);
	assert_int_equal(server_start(&s, NULL), 0);
	jobq_store *st = NULL;
	jobq_queue *q = NULL;
	char url[256];
	snprintf(url, sizeof(url), "redis+unix://%s", s.sock);
	assert_int_equal(open_url(&st, &q, url), 0);
	async_tally t = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
	for (int i = 0; i < 500; i++)
		assert_int_equal(jobq_queue_add_async(q, "n", "{}", 2, NULL, async_done, &t), 0);
	assert_int_equal(jobq_queue_flush(q, 30000), 0);
	assert_int_equal(t.ok, 500);
	assert_int_equal(admin(&s, NULL, 0, "LLEN bull:conn:wait", NULL), 500);

	server_stop(&s, SIGKILL);
	for (int i = 0; i < 200; i++)
		assert_int_equal(jobq_queue_add_async(q, "n", "{}", 2, NULL, async_done, &t), 0);
	int rc = jobq_queue_flush(q, 60000);
	assert_true(rc == JOBQ_EIO || rc == JOBQ_EBACKEND);
	assert_int_equal(t.ok + t.failed, 700);
	assert_int_equal(t.failed, 200);
	assert_true(t.first_error == JOBQ_EIO || t.first_error == JOBQ_EBACKEND);

	assert_int_equal(server_start(&s, NULL), 0); /* (no persistence: an empty server) */
	for (int i = 0; i < 100; i++)
		assert_int_equal(jobq_queue_add_async(q, "n", "{}", 2, NULL, async_done, &t), 0);
	assert_int_equal(jobq_queue_flush(q, 30000), 0);
	assert_int_equal(t.ok, 600);
	assert_int_equal(admin(&s, NULL, 0, "LLEN bull:conn:wait", NULL), 100);
	close_store(st, q);
	server_teardown(&s);
}

/* --- strings over the server's limit ---------------------------------------------------------- */

/* A cmocka teardown: stops the server the case put in *state (after a failed assertion too). */
static int
stop_server(void **state) {
	if (*state != NULL)
		server_teardown(*state);
	return 0;
}

/* `n` bytes of JSON: a string of x's. */
static char *
big_json(size_t n) {
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, 'x', n);
	s[0] = '"';
	s[n - 1] = '"';
	s[n] = '\0';
	return s;
}

/* On a server started with proto-max-bulk-len 1mb: job data (and a result) over it is refused
 * before anything is sent, with the sizes in the message; the connection stays usable and
 * the jobs around the refused one are added. */
static void
payload_over_max_bulk_len(void **state) {
	static server s;
	*state = &s; /* stopped by stop_server even when an assertion fails */
	assert_int_equal(server_setup(&s), 0);
	const char *extra[] = {"--proto-max-bulk-len", "1mb", NULL};
	assert_int_equal(server_start(&s, extra), 0);
	jobq_store *st = NULL;
	jobq_queue *q = NULL;
	char url[256];
	snprintf(url, sizeof(url), "redis+unix://%s?prefix=big", s.sock);
	assert_int_equal(open_url(&st, &q, url), 0);

	size_t len = 1024 * 1024 + 10;
	char *data = big_json(len);
	jobq_job_id id;
	assert_int_equal(jobq_queue_add(&id, q, "n", data, len, NULL), JOBQ_EINVAL);
	const char *msg = jobq_error_message();
	if (strstr(msg, "job data of 1048586 bytes is over Redis's limit of 1 MB") == NULL)
		fail_msg("message: %s", msg);

	/* in a bulk add: the whole step is refused, naming the job */
	jobq_job_spec specs[3] = {
	    {"n", "{}", 2, NULL}, {"n", data, len, NULL}, {"n", "{}", 2, NULL}};
	jobq_job_id ids[3];
	assert_int_equal(jobq_queue_add_bulk(ids, NULL, q, specs, 3), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "job 2 of 3: job data of 1048586 bytes"));
	jobq_counts c;
	assert_int_equal(jobq_queue_counts(&c, q), 0);
	assert_int_equal(c.waiting, 0);

	/* asynchronous adds, sent together in steps as they come: only the big one fails; its
	 * neighbours are added */
	async_tally t = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
	for (int i = 0; i < 41; i++) {
		const jobq_job_spec *sp = &specs[i == 20 ? 1 : 0];
		assert_int_equal(
		    jobq_queue_add_async(q, sp->name, sp->data, sp->len, NULL, async_done, &t), 0);
	}
	assert_int_equal(jobq_queue_flush(q, 10000), JOBQ_EINVAL);
	assert_int_equal(t.ok, 40);
	assert_int_equal(t.failed, 1);
	assert_int_equal(t.first_error, JOBQ_EINVAL);

	/* a result over the limit: refused, the job stays active under its lock */
	jobq_job *job = NULL;
	assert_int_equal(jobq_queue_fetch(&job, q, 30000), 0);
	assert_int_equal(jobq_job_complete(job, data), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "is over Redis's limit of 1 MB"));
	assert_int_equal(jobq_job_complete(job, "1"), 0);
	jobq_job_free(job);

	/* the connection works: the largest accepted size goes through */
	free(data);
	data = big_json(1024 * 1024);
	assert_true(jobq_queue_add(&id, q, "n", data, 1024 * 1024, NULL) >= 0);
	free(data);
	assert_int_equal(jobq_queue_get_job(&job, q, id.str), 0);
	size_t got = 0;
	jobq_job_data(job, &got);
	assert_int_equal(got, 1024 * 1024);
	jobq_job_free(job);
	close_store(st, q);
	/* stop_server removes the server */
}

/* --- a server that is down at open ---------------------------------------------------------- */

typedef struct opener {
	char url[256];
	int rc;
	int64_t took;
} opener;

static void *
open_thread(void *arg) {
	opener *o = arg;
	jobq_store *st = NULL;
	jobq_queue *q = NULL;
	int64_t t0 = mono_ms();
	o->rc = open_url(&st, &q, o->url);
	o->took = mono_ms() - t0;
	if (o->rc == 0) {
		round_trip(q);
		close_store(st, q);
	}
	return NULL;
}

static void
down_at_open(void **state) {
	(void)state;
	server s;
	assert_int_equal(server_setup(&s), 0);
	jobq_store *st = NULL;
	jobq_queue *q = NULL;
	char url[256];
	/* default: a clear JOBQ_EIO at once */
	snprintf(url, sizeof(url), "redis+unix://%s", s.sock);
	int64_t t0 = mono_ms();
	assert_int_equal(open_url(&st, &q, url), JOBQ_EIO);
	assert_true(mono_ms() - t0 < 2000);
	assert_non_null(strstr(jobq_error_message(), s.sock));
	assert_non_null(strstr(jobq_error_message(), "cannot connect"));
	/* connect_wait_ms: retries for that long, then the same error, saying it waited */
	snprintf(url, sizeof(url), "redis+unix://%s?connect_wait_ms=400", s.sock);
	t0 = mono_ms();
	assert_int_equal(open_url(&st, &q, url), JOBQ_EIO);
	int64_t took = mono_ms() - t0;
	assert_true(took >= 400 && took < 3000);
	assert_non_null(strstr(jobq_error_message(), "still down after waiting 400 ms"));
	/* ... and succeeds as soon as the server comes up within the wait */
	opener o;
	snprintf(o.url, sizeof(o.url), "redis+unix://%s?connect_wait_ms=20000", s.sock);
	o.rc = -1;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, open_thread, &o), 0);
	pause_ms(300); /* the opener is retrying meanwhile */
	assert_int_equal(server_start(&s, NULL), 0);
	pthread_join(th, NULL);
	assert_int_equal(o.rc, 0);
	assert_true(o.took >= 300 && o.took < 15000);
	/* options form */
	jobq_redis_options ro = JOBQ_REDIS_OPTIONS_INIT;
	jobq_backend *b = NULL;
	ro.unix_path = s.sock;
	ro.connect_wait_ms = -1;
	assert_int_equal(jobq_backend_redis_new(&b, &ro), JOBQ_EINVAL);
	ro.connect_wait_ms = 1000;
	assert_int_equal(jobq_backend_redis_new(&b, &ro), 0);
	b->free(b);
	server_teardown(&s);
}

/* --- restart in the middle of a run ---------------------------------------------------------- */

enum { PRODUCERS = 2, PER_PRODUCER = 400 };

typedef struct producer {
	jobq_queue *q;
	jobq_job_id ids[PER_PRODUCER];
	atomic_int ok; /* adds that returned success (read by the main thread while it runs) */
	int failed;    /* adds that returned an error (may or may not have run) */
} producer;

static void *
produce(void *arg) {
	producer *p = arg;
	for (int i = 0; i < PER_PRODUCER; i++) {
		int rc = jobq_queue_add(&p->ids[p->ok], p->q, "r", "{\"r\":1}", 7, NULL);
		if (rc >= 0)
			p->ok++;
		else
			p->failed++;
		pause_ms(2); /* a steady stream of adds across the restart */
	}
	return NULL;
}

static int
handle(jobq_job *job, void *payload) {
	(void)job;
	(void)payload;
	return 0;
}

static void
restart_mid_run(void **state) {
	(void)state;
	server s;
	assert_int_equal(server_setup(&s), 0);
	const char *extra[] = {"--appendonly", "yes", "--appendfsync", "always", NULL};
	assert_int_equal(server_start(&s, extra), 0);
	jobq_store *st = NULL;
	jobq_queue *q = NULL;
	char url[256];
	snprintf(url, sizeof(url), "redis+unix://%s?prefix=rs", s.sock);
	assert_int_equal(open_url(&st, &q, url), 0);

	jobq_worker *w = NULL;
	jobq_worker_options wo = JOBQ_WORKER_OPTIONS_INIT;
	wo.concurrency = 4;
	wo.lock_ms = 1000; /* jobs whose finish was lost in the outage come back quickly */
	wo.stalled_interval_ms = 300;
	assert_int_equal(jobq_worker_new(&w, q, handle, NULL, &wo), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	producer p[PRODUCERS];
	pthread_t th[PRODUCERS];
	memset(p, 0, sizeof(p));
	for (int i = 0; i < PRODUCERS; i++) {
		p[i].q = q;
		assert_int_equal(pthread_create(&th[i], NULL, produce, &p[i]), 0);
	}
	/* restart once a quarter of the adds went through */
	int64_t deadline = mono_ms() + 20000;
	while (mono_ms() < deadline && p[0].ok + p[1].ok < PRODUCERS * PER_PRODUCER / 4)
		pause_ms(5);
	int before = p[0].ok + p[1].ok;
	assert_true(before >= PRODUCERS * PER_PRODUCER / 4);
	server_stop(&s, SIGKILL);
	pause_ms(200); /* the server stays down a while: adds and fetches fail meanwhile */
	assert_int_equal(server_start(&s, extra), 0);
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	int ok = p[0].ok + p[1].ok;
	assert_true(ok > before); /* the producers resumed by themselves */
	/* every add that returned success is there and gets completed */
	deadline = mono_ms() + 30000;
	int pending = ok;
	while (mono_ms() < deadline && pending > 0) {
		pending = 0;
		for (int i = 0; i < PRODUCERS; i++)
			for (int k = 0; k < p[i].ok; k++) {
				jobq_state stt = JOBQ_STATE_UNKNOWN;
				int rc = jobq_queue_get_state(&stt, q, p[i].ids[k].str);
				if (rc == JOBQ_ENOTFOUND)
					fail_msg("job %s was added but is gone", p[i].ids[k].str);
				if (rc < 0 || stt != JOBQ_STATE_COMPLETED)
					pending++;
			}
		if (pending > 0)
			pause_ms(50);
	}
	if (pending > 0)
		fail_msg("%d of %d acknowledged jobs not completed", pending, ok);
	jobq_worker_stats ws;
	jobq_worker_get_stats(&ws, w);
	assert_true(ws.completed > 0);
	print_message("restart: %d adds acknowledged (%d before the kill), %d failed during the "
	              "outage, worker completed %llu\n",
	              ok, before, p[0].failed + p[1].failed, (unsigned long long)ws.completed);
	assert_int_equal(jobq_worker_close(w, 5000), 0);
	jobq_worker_free(w);
	close_store(st, q);
	server_teardown(&s);
}

int
main(void) {
	if (system("command -v redis-server >/dev/null 2>&1") != 0) {
		fprintf(stderr, "redis-server not found\n");
		return getenv("CI") ? 1 : 77;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(auth_password_and_acl_user),
	    cmocka_unit_test(database_select),
	    cmocka_unit_test_teardown(payload_over_max_bulk_len, stop_server),
	    cmocka_unit_test(down_at_open),
	    cmocka_unit_test(async_adds_server_gone),
	    cmocka_unit_test(restart_mid_run),
	};
	return cmocka_run_group_tests_name("redis_conn", tests, NULL, NULL);
}
