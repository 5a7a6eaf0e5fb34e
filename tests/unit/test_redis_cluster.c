/*
 * redis+cluster:// against the three-master cluster of tests/support/redis_cluster.sh
 * (JOBQ_TEST_REDIS_CLUSTER_DIR): a queue whose keys would spread over slots is refused, and a
 * queue's keys land on exactly one master, whether the hash tag is in the prefix or in the
 * queue's name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "jobq.h"

static const char *dir;
static int ports[3];

static int
setup(void **state) {
	(void)state;
	dir = getenv("JOBQ_TEST_REDIS_CLUSTER_DIR");
	if (dir != NULL) {
		char path[600];
		snprintf(path, sizeof(path), "%s/ports", dir);
		FILE *f = fopen(path, "r");
		if (f == NULL || fscanf(f, "%d %d %d", &ports[0], &ports[1], &ports[2]) != 3)
			dir = NULL;
		if (f != NULL)
			fclose(f);
	}
	return 0;
}

static jobq_store *
open_store(const char *prefix) {
	if (dir == NULL)
		skip();
	char url[300];
	snprintf(url, sizeof(url), "redis+cluster://127.0.0.1:%d,127.0.0.1:%d?prefix=%s", ports[1],
	         ports[2], prefix);
	jobq_store *s = NULL;
	if (jobq_store_open(&s, url, NULL) != 0)
		fail_msg("%s: %s", url, jobq_error_message());
	return s;
}

static void
untagged_queue_refused(void **state) {
	(void)state;
	jobq_store *s = open_store("bull");
	jobq_queue *q = NULL;
	assert_int_equal(jobq_queue_open(&q, s, "plain"), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "hash tag"));
	jobq_store_close(s);
}

/* How many of the three masters hold `key`. */
static int
holders(const char *key) {
	int n = 0;
	for (int i = 1; i <= 3; i++) {
		char sock[600];
		snprintf(sock, sizeof(sock), "%s/node%d/redis.sock", dir, i);
		redisContext *c = redisConnectUnix(sock);
		assert_non_null(c);
		assert_int_equal(c->err, 0);
		redisReply *r = redisCommand(c, "EXISTS %s", key);
		assert_non_null(r);
		n += r->type == REDIS_REPLY_INTEGER && r->integer == 1;
		freeReplyObject(r);
		redisFree(c);
	}
	return n;
}

/* Adds a job to `name` under `prefix`; its hash lives on exactly one master. */
static void
one_master(const char *prefix, const char *name) {
	jobq_store *s = open_store(prefix);
	jobq_queue *q = NULL;
	assert_int_equal(jobq_queue_open(&q, s, name), 0);
	jobq_job_id id;
	assert_true(jobq_queue_add(&id, q, "n", "{}", 2, NULL) >= 0);
	char key[300];
	snprintf(key, sizeof(key), "%s:%s:%s", prefix, name, id.str);
	assert_int_equal(holders(key), 1);
	assert_int_equal(jobq_queue_obliterate(q, 1), 0);
	assert_int_equal(holders(key), 0);
	jobq_queue_close(q);
	jobq_store_close(s);
}

static void
queues_live_on_one_master(void **state) {
	(void)state;
	char prefix[64], name[64];
	/* several tags, so that more than one master is used */
	for (int i = 0; i < 6; i++) {
		snprintf(prefix, sizeof(prefix), "{jobqcl%ld_%d}", (long)getpid(), i);
		one_master(prefix, "q");
		snprintf(name, sizeof(name), "{jobqcl%ld_%d}", (long)getpid(), i);
		one_master("bull", name);
	}
}

/* Queues on every master are listed. */
static void
queues_listed_from_every_master(void **state) {
	(void)state;
	jobq_store *s = open_store("bull");
	jobq_queue *q[6];
	char names[6][64];
	for (int i = 0; i < 6; i++) {
		snprintf(names[i], sizeof(names[i]), "{jobqls%ld_%d}", (long)getpid(), i);
		assert_int_equal(jobq_queue_open(&q[i], s, names[i]), 0);
		jobq_job_id id;
		assert_true(jobq_queue_add(&id, q[i], "n", "{}", 2, NULL) >= 0);
	}
	jobq_strings *list = NULL;
	assert_int_equal(jobq_store_list_queues(&list, s), 0);
	for (int i = 0; i < 6; i++) {
		int found = 0;
		for (size_t k = 0; list != NULL && k < list->count; k++)
			found += strcmp(list->items[k], names[i]) == 0;
		assert_int_equal(found, 1);
		assert_int_equal(jobq_queue_obliterate(q[i], 1), 0);
		jobq_queue_close(q[i]);
	}
	jobq_strings_free(list);
	jobq_store_close(s);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(untagged_queue_refused),
	    cmocka_unit_test(queues_live_on_one_master),
	    cmocka_unit_test(queues_listed_from_every_master),
	};
	return cmocka_run_group_tests_name("redis_cluster", tests, setup, NULL);
}
