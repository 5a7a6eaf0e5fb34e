/*
 * Redis and the log hook: a connection lost and restored (a private redis-server this test
 * stops and starts again with tests/support/redis.sh), a job failed for good; and the
 * version-5 slots: the queues under a prefix (SCAN) and the workers of a queue (CLIENT LIST
 * names, as BullMQ's getWorkers). Waits are bounded polls on a condition.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "jobq.h"

static const char *sock;

static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static char found_text[64][512];
static jobq_log_level found_level[64];
static char found_component[64][32];
static int nfound;

static void
collect(const jobq_log_record *r, void *user) {
	(void)user;
	pthread_mutex_lock(&rec_mu);
	if (nfound < 64) {
		snprintf(found_text[nfound], sizeof(found_text[0]), "%s", r->message);
		snprintf(found_component[nfound], sizeof(found_component[0]), "%s", r->component);
		found_level[nfound++] = r->level;
	}
	pthread_mutex_unlock(&rec_mu);
}

/* Index of the first record containing `text` from `component`, or -1. */
static int
find(const char *component, const char *text) {
	int at = -1;
	pthread_mutex_lock(&rec_mu);
	for (int i = 0; i < nfound && at < 0; i++)
		if (strcmp(found_component[i], component) == 0 && strstr(found_text[i], text))
			at = i;
	pthread_mutex_unlock(&rec_mu);
	return at;
}

static void
pause_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int
setup(void **state) {
	(void)state;
	pthread_mutex_lock(&rec_mu);
	nfound = 0;
	pthread_mutex_unlock(&rec_mu);
	jobq_log_set_handler(collect, NULL);
	return 0;
}

static int
teardown(void **state) {
	(void)state;
	jobq_log_set_handler(NULL, NULL);
	return 0;
}

static int
redis_sh(const char *cmd, const char *dir) {
	char line[1024];
	snprintf(line, sizeof(line), "sh '%s' %s '%s' >/dev/null 2>&1", JOBQ_REDIS_SH, cmd, dir);
	return system(line);
}

static void
connection_lost_and_restored(void **state) {
	(void)state;
	char dir[] = "/tmp/jobq-redis-log.XXXXXX", url[256];
	jobq_store *store;
	jobq_queue *q;
	jobq_counts c;
	int rc = -1, at;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(redis_sh("start", dir), 0);
	snprintf(url, sizeof(url), "redis+unix://%s/redis.sock", dir);
	assert_int_equal(jobq_store_open(&store, url, NULL), 0);
	assert_int_equal(jobq_queue_open(&q, store, "lost"), 0);
	assert_int_equal(jobq_queue_counts(&c, q), 0);
	assert_int_equal(find("redis", "lost"), -1);

	assert_int_equal(redis_sh("stop", dir), 0);
	assert_true(jobq_queue_counts(&c, q) < 0);
	at = find("redis", "lost");
	assert_true(at >= 0);
	assert_int_equal(found_level[at], JOBQ_LOG_WARN);
	assert_non_null(strstr(found_text[at], "redis.sock"));
	assert_true(jobq_queue_counts(&c, q) < 0); /* still down: told once */
	pthread_mutex_lock(&rec_mu);
	int lost_lines = 0;
	for (int i = 0; i < nfound; i++)
		lost_lines += strstr(found_text[i], "lost") != NULL;
	pthread_mutex_unlock(&rec_mu);
	assert_int_equal(lost_lines, 1);

	assert_int_equal(redis_sh("start", dir), 0);
	for (int i = 0; i < 500 && rc < 0; i++) {
		rc = jobq_queue_counts(&c, q);
		if (rc < 0)
			pause_ms(20);
	}
	assert_int_equal(rc, 0);
	at = find("redis", "restored after");
	assert_true(at >= 0);
	assert_int_equal(found_level[at], JOBQ_LOG_INFO);
	jobq_queue_close(q);
	jobq_store_close(store);
	redis_sh("stop", dir);
	rmdir(dir);
}

/* A store on the shared server with a prefix of this run's own. */
static jobq_store *
open_shared(char *prefix, size_t n) {
	char url[512];
	jobq_store *store;
	snprintf(prefix, n, "logt%ld", (long)getpid());
	snprintf(url, sizeof(url), "redis+unix://%s?prefix=%s", sock, prefix);
	assert_int_equal(jobq_store_open(&store, url, NULL), 0);
	return store;
}

static void
failed_for_good_is_logged(void **state) {
	(void)state;
	char prefix[64];
	jobq_store *store = open_shared(prefix, sizeof(prefix));
	jobq_queue *q;
	jobq_job_id id;
	jobq_job *job;
	char text[256];
	assert_int_equal(jobq_queue_open(&q, store, "ffg"), 0);
	assert_int_equal(jobq_queue_add(&id, q, "n", "{}", 2, NULL), 0);
	assert_int_equal(jobq_queue_fetch(&job, q, 5000), 0);
	assert_true(jobq_job_fail(job, "gone wrong", 0) >= 0);
	jobq_job_free(job);
	snprintf(text, sizeof(text), "job %s failed for good after 1 attempt: gone wrong", id.str);
	assert_true(find("worker", text) >= 0);
	jobq_queue_obliterate(q, 1);
	jobq_queue_close(q);
	jobq_store_close(store);
}

static int
sleep_handler(jobq_job *job, void *payload) {
	(void)job;
	(void)payload;
	return 0;
}

static void
queues_and_workers(void **state) {
	(void)state;
	char prefix[64];
	jobq_store *store = open_shared(prefix, sizeof(prefix));
	jobq_queue *a, *b;
	jobq_strings *names;
	jobq_job_id id;
	jobq_worker *w;
	jobq_worker_options wo = JOBQ_WORKER_OPTIONS_INIT;
	int n = -1;

	assert_int_equal(jobq_queue_open(&a, store, "beta-2"), 0);
	assert_int_equal(jobq_queue_open(&b, store, "alpha"), 0);
	assert_int_equal(jobq_queue_add(&id, a, "n", "{}", 2, NULL), 0);
	assert_int_equal(jobq_queue_add(&id, b, "n", "{}", 2, NULL), 0);
	assert_int_equal(jobq_queue_pause(b), 0); /* meta and id keys: listed once */
	assert_int_equal(jobq_store_list_queues(&names, store), 0);
	assert_int_equal(names->count, 2);
	assert_string_equal(names->items[0], "alpha");
	assert_string_equal(names->items[1], "beta-2");
	jobq_strings_free(names);

	assert_int_equal(jobq_queue_count_workers(b), 0);
	assert_int_equal(jobq_worker_new(&w, b, sleep_handler, NULL, &wo), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	/* a paused queue's worker waits on its named connection */
	for (int i = 0; i < 500 && n != 1; i++) {
		n = jobq_queue_count_workers(b);
		if (n != 1)
			pause_ms(20);
	}
	assert_int_equal(n, 1);
	assert_int_equal(jobq_queue_count_workers(a), 0);
	assert_int_equal(jobq_worker_close(w, 5000), 0);
	jobq_worker_free(w);
	jobq_queue_obliterate(a, 1);
	jobq_queue_obliterate(b, 1);
	assert_int_equal(jobq_store_list_queues(&names, store), 0);
	assert_int_equal(names->count, 0);
	jobq_strings_free(names);
	jobq_queue_close(a);
	jobq_queue_close(b);
	jobq_store_close(store);
}

int
main(void) {
	sock = getenv("JOBQ_TEST_REDIS_SOCKET");
	if (sock == NULL || access(sock, F_OK) != 0) {
		fprintf(stderr, "no redis socket (JOBQ_TEST_REDIS_SOCKET)\n");
		return getenv("CI") ? 1 : 77;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(connection_lost_and_restored, setup, teardown),
	    cmocka_unit_test_setup_teardown(failed_for_good_is_logged, setup, teardown),
	    cmocka_unit_test_setup_teardown(queues_and_workers, setup, teardown),
	};
	return cmocka_run_group_tests_name("redis_log", tests, NULL, NULL);
}
