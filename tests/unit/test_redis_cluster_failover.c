/*
 * Failovers under a running queue, on the three masters and three replicas of
 * tests/support/redis_cluster.sh (REPLICAS 1): CLUSTER FAILOVER on the replica of the queue's
 * master, and the queue's master killed with -9 and replaced by its replica. A producer adds
 * and a worker runs jobs throughout; the worker must keep working (it reconnects and reads
 * the slot map again). No acknowledged job may be lost. A manual failover waits for the
 * replica to catch up, so no job may run twice either; after a kill, a completion the dead
 * master acknowledged but had not yet replicated is lost and its job runs again (a crash).
 */
#include <setjmp.h>
#include <signal.h>
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

/* The replica (0-based node) of node `master`, or -1. */
static int
replica_of(int master) {
	char want[32];
	snprintf(want, sizeof(want), "master_port:%d\r", ch_ports[master]);
	for (int i = 0; i < ch_nodes; i++) {
		redisReply *r = ch_cmd(i, "INFO replication");
		int hit = r != NULL && r->type == REDIS_REPLY_STRING &&
		          strstr(r->str, "role:slave") != NULL && strstr(r->str, want) != NULL;
		if (r != NULL)
			freeReplyObject(r);
		if (hit)
			return i;
	}
	return -1;
}

/* Waits (at most ms) until node `node` is the master of `tag`'s slot in its own map. */
static int
wait_master(int node, const char *tag, int64_t ms) {
	int64_t deadline = ch_mono_ms() + ms;
	int slot = -1;
	while (ch_master_of(node, tag, &slot) != node)
		if (ch_mono_ms() > deadline)
			return -1;
		else
			ch_pause_ms(20);
	return 0;
}

/* A queue on a tag of its own: its master, that master's replica, the harness running. */
static void
start(ch_harness *h, char *tag, size_t tl, const char *what, int *master, int *replica) {
	char url[300];
	snprintf(tag, tl, "jobqfo%s%ld", what, (long)getpid());
	int slot = -1;
	*master = ch_master_of(0, tag, &slot);
	if (*master < 0) /* node 1 may be the one a case killed */
		*master = ch_master_of(1, tag, &slot);
	assert_true(*master >= 0);
	*replica = replica_of(*master);
	assert_true(*replica >= 0);
	/* every live node as a seed */
	size_t n = (size_t)snprintf(url, sizeof(url), "redis+cluster://");
	for (int i = 0; i < ch_nodes; i++)
		n += (size_t)snprintf(url + n, sizeof(url) - n, "%s127.0.0.1:%d", i ? "," : "",
		                      ch_ports[i]);
	snprintf(url + n, sizeof(url) - n, "?prefix={%s}&command_timeout_ms=20000", tag);
	if (ch_start(h, url, "q") != 0)
		fail_msg("start: %s", jobq_error_message());
	assert_int_equal(ch_wait_processed(h, 0, 100, 30000), 0);
}

/* Once `replica` is the master of the queue's slot, 100 more jobs run, then the harness stops:
 * no acknowledged job may be lost. Returns how many ran twice. */
static int
go_on(ch_harness *h, int replica, const char *tag) {
	assert_int_equal(wait_master(replica, tag, 30000), 0);
	int seen = atomic_load(&h->processed);
	assert_int_equal(ch_wait_processed(h, seen, 100, 60000), 0);
	int twice;
	assert_int_equal(ch_finish(h, 60000, &twice), 0);
	return twice;
}

static void
manual_failover(void **state) {
	(void)state;
	if (ch_nodes < 6)
		skip();
	static ch_harness h;
	char tag[64];
	int master, replica;
	start(&h, tag, sizeof(tag), "m", &master, &replica);
	redisReply *r = ch_cmd(replica, "CLUSTER FAILOVER");
	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("CLUSTER FAILOVER: %s", r->str);
	freeReplyObject(r);
	assert_int_equal(go_on(&h, replica, tag), 0);
}

static void
master_killed(void **state) {
	(void)state;
	if (ch_nodes < 6)
		skip();
	static ch_harness h;
	char tag[64];
	int master, replica;
	start(&h, tag, sizeof(tag), "k", &master, &replica);
	/* what the producer was told is stored must be on the replica before the crash:
	 * replication is asynchronous, as with any Redis */
	atomic_store(&h.paused, 1);
	int64_t deadline = ch_mono_ms() + 10000;
	for (;;) {
		long long m = ch_info(master, "replication", "master_repl_offset:");
		long long s = ch_info(replica, "replication", "slave_repl_offset:");
		if (m > 0 && s >= m)
			break;
		assert_true(ch_mono_ms() < deadline);
		ch_pause_ms(5);
	}
	char path[600];
	snprintf(path, sizeof(path), "%s/node%d/redis.pid", ch_dir, master + 1);
	FILE *f = fopen(path, "r");
	long pid = 0;
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
	atomic_store(&h.paused, 0);
	go_on(&h, replica, tag);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(manual_failover),
	    cmocka_unit_test(master_killed),
	};
	return cmocka_run_group_tests_name("redis_cluster_failover", tests, setup, NULL);
}
