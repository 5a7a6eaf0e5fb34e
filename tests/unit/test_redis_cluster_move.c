/*
 * A queue's slot migrates to another master (CLUSTER SETSLOT ... IMPORTING / MIGRATING, then
 * MIGRATE of its keys a few at a time, then SETSLOT ... NODE) while a producer adds and a
 * worker runs jobs, on the three-master cluster of tests/support/redis_cluster.sh: commands
 * meet ASK, TRYAGAIN and at the end MOVED; no acknowledged job may be lost, none may run
 * twice, and afterwards the queue's keys live on the new master. The same again with
 * `redis-cli --cluster reshard` doing the move.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cluster_harness.h"

static int
setup(void **state) {
	(void)state;
	ch_load();
	return 0;
}

/* MIGRATE of `keys` (an array reply of key names) from node `from` to node `to`. */
static void
migrate_keys(int from, int to, const redisReply *keys) {
	const char *av[8 + 64];
	size_t n = 0;
	char port[16];
	snprintf(port, sizeof(port), "%d", ch_ports[to]);
	av[n++] = "MIGRATE";
	av[n++] = "127.0.0.1";
	av[n++] = port;
	av[n++] = "";
	av[n++] = "0";
	av[n++] = "5000";
	av[n++] = "KEYS";
	for (size_t i = 0; i < keys->elements && i < 64; i++)
		av[n++] = keys->element[i]->str;
	char sock[600];
	snprintf(sock, sizeof(sock), "%s/node%d/redis.sock", ch_dir, from + 1);
	redisContext *c = redisConnectUnix(sock);
	assert_non_null(c);
	redisReply *r = redisCommandArgv(c, (int)n, av, NULL);
	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("MIGRATE: %s", r->str);
	freeReplyObject(r);
	redisFree(c);
}

static void
expect_ok(redisReply *r, const char *what) {
	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		fail_msg("%s: %s", what, r != NULL ? r->str : "no reply");
	freeReplyObject(r);
}

static void
slot_migrates_under_load(void **state) {
	(void)state;
	if (ch_nodes < 3)
		skip();
	char tag[64], prefix[80], url[300];
	snprintf(tag, sizeof(tag), "jobqmv%ld", (long)getpid());
	snprintf(prefix, sizeof(prefix), "{%s}", tag);
	snprintf(url, sizeof(url),
	         "redis+cluster://127.0.0.1:%d?prefix=%s&command_timeout_ms=20000", ch_ports[0],
	         prefix);
	int slot = -1;
	int from = ch_master_of(0, tag, &slot);
	assert_true(from >= 0);
	int to = -1;
	for (int i = 0; i < ch_nodes && to < 0; i++) {
		char role[32];
		redisReply *r = ch_cmd(i, "ROLE");
		snprintf(role, sizeof(role), "%s",
		         r != NULL && r->type == REDIS_REPLY_ARRAY ? r->element[0]->str : "");
		if (r != NULL)
			freeReplyObject(r);
		if (i != from && strcmp(role, "master") == 0)
			to = i;
	}
	assert_true(to >= 0);
	char from_id[64], to_id[64];
	ch_str(from_id, sizeof(from_id), from, "CLUSTER MYID", NULL);
	ch_str(to_id, sizeof(to_id), to, "CLUSTER MYID", NULL);

	static ch_harness h;
	if (ch_start(&h, url, "q") != 0)
		fail_msg("start: %s", jobq_error_message());
	assert_int_equal(ch_wait_processed(&h, 0, 200, 30000), 0);

	long long asking_before = ch_info(to, "commandstats", "cmdstat_asking:calls=");
	expect_ok(ch_cmd(to, "CLUSTER SETSLOT %d IMPORTING %s", slot, from_id), "IMPORTING");
	expect_ok(ch_cmd(from, "CLUSTER SETSLOT %d MIGRATING %s", slot, to_id), "MIGRATING");
	/* the queue's meta hash first: a single-key read of it now meets ASK and is answered
	 * by the importing master */
	char meta[128];
	snprintf(meta, sizeof(meta), "%s:q:meta", prefix);
	redisReply *one = ch_cmd(from, "EXISTS %s", meta);
	int has_meta = one != NULL && one->type == REDIS_REPLY_INTEGER && one->integer == 1;
	if (one != NULL)
		freeReplyObject(one);
	if (has_meta) {
		redisReply keys = {0};
		redisReply k = {0};
		redisReply *kv[1] = {&k};
		k.type = REDIS_REPLY_STRING;
		k.str = meta;
		k.len = strlen(meta);
		keys.type = REDIS_REPLY_ARRAY;
		keys.elements = 1;
		keys.element = kv;
		migrate_keys(from, to, &keys);
		int paused = -1;
		assert_int_equal(jobq_queue_is_paused(&paused, h.q), 0);
		assert_int_equal(paused, 0);
		assert_true(ch_info(to, "commandstats", "cmdstat_asking:calls=") >
		            (asking_before < 0 ? 0 : asking_before));
	}
	/* the rest a few keys at a time, as redis-cli --cluster reshard does */
	int rounds = 0;
	for (; rounds < 100000; rounds++) {
		redisReply *keys = ch_cmd(from, "CLUSTER GETKEYSINSLOT %d 5", slot);
		assert_non_null(keys);
		assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
		size_t n = keys->elements;
		if (n > 0)
			migrate_keys(from, to, keys);
		freeReplyObject(keys);
		if (n == 0)
			break;
		ch_pause_ms(20); /* the migration takes a while, as a real one does */
	}
	assert_true(rounds < 100000);
	for (int i = 0; i < ch_nodes; i++)
		expect_ok(ch_cmd(i == 0    ? to
		                 : i == to ? 0
		                           : i,
		                 "CLUSTER SETSLOT %d NODE %s", slot, to_id),
		          "SETSLOT NODE");
	/* work goes on at the new master: MOVED points the queue there */
	int seen = atomic_load(&h.processed);
	assert_int_equal(ch_wait_processed(&h, seen, 50, 30000), 0);
	int twice;
	assert_int_equal(ch_finish(&h, 30000, &twice), 0);
	assert_int_equal(twice, 0);
	int now;
	assert_int_equal(ch_master_of(0, tag, &now), to);
}

/* The same with the tool operators use: `redis-cli --cluster reshard` moves one slot (the
 * lowest of its master, which is the one the tool takes) while the producer and the worker
 * run. The hash tag jobqrs15971 is in slot 0, the lowest slot of whichever master has it. */
static void
slot_reshards_under_load(void **state) {
	(void)state;
	if (ch_nodes < 3)
		skip();
	const char *tag = "jobqrs15971";
	char url[300], name[64];
	snprintf(url, sizeof(url),
	         "redis+cluster://127.0.0.1:%d?prefix={%s}&command_timeout_ms=20000", ch_ports[0],
	         tag);
	snprintf(name, sizeof(name), "rs%ld", (long)getpid());
	int slot = -1;
	int from = ch_master_of(0, tag, &slot);
	assert_true(from >= 0);
	assert_int_equal(slot, 0);
	int to = -1;
	for (int i = 0; i < ch_nodes && to < 0; i++) {
		redisReply *r = ch_cmd(i, "ROLE");
		if (i != from && r != NULL && r->type == REDIS_REPLY_ARRAY &&
		    strcmp(r->element[0]->str, "master") == 0)
			to = i;
		if (r != NULL)
			freeReplyObject(r);
	}
	assert_true(to >= 0);
	char from_id[64], to_id[64];
	ch_str(from_id, sizeof(from_id), from, "CLUSTER MYID", NULL);
	ch_str(to_id, sizeof(to_id), to, "CLUSTER MYID", NULL);

	static ch_harness h;
	if (ch_start(&h, url, name) != 0)
		fail_msg("start: %s", jobq_error_message());
	assert_int_equal(ch_wait_processed(&h, 0, 200, 30000), 0);
	/* two keys per MIGRATE, so that the move takes many steps between the queue's calls */
	char cmd[600];
	snprintf(cmd, sizeof(cmd),
	         "redis-cli --cluster reshard 127.0.0.1:%d --cluster-from %s --cluster-to %s "
	         "--cluster-slots 1 --cluster-yes --cluster-pipeline 2 >'%s/reshard.log' 2>&1",
	         ch_ports[from], from_id, to_id, ch_dir);
	if (system(cmd) != 0)
		fail_msg("redis-cli --cluster reshard failed (see %s/reshard.log)", ch_dir);
	assert_int_equal(ch_master_of(0, tag, &slot), to);
	int seen = atomic_load(&h.processed);
	assert_int_equal(ch_wait_processed(&h, seen, 50, 30000), 0);
	int twice;
	assert_int_equal(ch_finish(&h, 30000, &twice), 0);
	assert_int_equal(twice, 0);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(slot_migrates_under_load),
	    cmocka_unit_test(slot_reshards_under_load),
	};
	return cmocka_run_group_tests_name("redis_cluster_move", tests, setup, NULL);
}
