/*
 * Shared by the Redis Cluster tests that change the cluster under a running queue
 * (test_redis_cluster_move.c, test_redis_cluster_failover.c): the fixture's nodes (sockets
 * DIR/nodeN/redis.sock, ports in DIR/ports), commands to them, and a harness of one producer
 * thread and one worker on a hash-tagged queue that counts how often each job ran.
 */
#ifndef JOBQ_TEST_CLUSTER_HARNESS_H
#define JOBQ_TEST_CLUSTER_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "jobq.h"

#define CH_MAX_NODES 6
#define CH_MAX_JOBS  20000

static const char *ch_dir;
static int ch_ports[CH_MAX_NODES];
static int ch_nodes;

static inline int64_t
ch_mono_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void
ch_pause_ms(int64_t ms) {
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Reads DIR/ports ("port port ..."); 0 nodes when the fixture is missing. */
static inline void
ch_load(void) {
	ch_dir = getenv("JOBQ_TEST_REDIS_CLUSTER_DIR");
	ch_nodes = 0;
	if (ch_dir == NULL)
		return;
	char path[600];
	snprintf(path, sizeof(path), "%s/ports", ch_dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	while (ch_nodes < CH_MAX_NODES && fscanf(f, "%d", &ch_ports[ch_nodes]) == 1)
		ch_nodes++;
	fclose(f);
}

/* Node n (0-based) by its port, or -1. */
static inline int
ch_node_of_port(int port) {
	for (int i = 0; i < ch_nodes; i++)
		if (ch_ports[i] == port)
			return i;
	return -1;
}

/* A command to node n over its unix socket; NULL when the node is down. */
static inline redisReply *
ch_cmd(int n, const char *fmt, ...) {
	char sock[600];
	snprintf(sock, sizeof(sock), "%s/node%d/redis.sock", ch_dir, n + 1);
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectUnixWithTimeout(sock, tv);
	if (c == NULL || c->err) {
		if (c != NULL)
			redisFree(c);
		return NULL;
	}
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	redisFree(c);
	return r;
}

/* The string reply of a command to node n, into buf ("" on anything else). */
static inline const char *
ch_str(char *buf, size_t len, int n, const char *fmt, const char *arg) {
	redisReply *r = ch_cmd(n, fmt, arg);
	buf[0] = '\0';
	if (r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
		snprintf(buf, len, "%s", r->str);
	if (r != NULL)
		freeReplyObject(r);
	return buf;
}

/* The slot of hash tag `tag` and the node (0-based) of its master, asked of node `via`. */
static inline int
ch_master_of(int via, const char *tag, int *slot) {
	redisReply *r = ch_cmd(via, "CLUSTER KEYSLOT %s", tag);
	if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
		if (r != NULL)
			freeReplyObject(r);
		return -1;
	}
	*slot = (int)r->integer;
	freeReplyObject(r);
	r = ch_cmd(via, "CLUSTER SLOTS");
	int node = -1;
	for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		redisReply *e = r->element[i];
		if (e->element[0]->integer <= *slot && *slot <= e->element[1]->integer)
			node = ch_node_of_port((int)e->element[2]->element[1]->integer);
	}
	if (r != NULL)
		freeReplyObject(r);
	return node;
}

/* The number after `field` ("name:" or "cmdstat_x:calls=") in INFO `section` of node n
 * (-1: none). */
static inline long long
ch_info(int n, const char *section, const char *field) {
	redisReply *r = ch_cmd(n, "INFO %s", section);
	long long v = -1;
	if (r != NULL && r->type == REDIS_REPLY_STRING) {
		const char *p = strstr(r->str, field);
		if (p != NULL)
			v = strtoll(p + strlen(field), NULL, 10);
	}
	if (r != NULL)
		freeReplyObject(r);
	return v;
}

/* --- producer and worker --------------------------------------------------------------------- */

typedef struct ch_harness {
	jobq_store *s;
	jobq_queue *q;
	jobq_worker *w;
	pthread_t producer;
	atomic_int stop;   /* the producer stops */
	atomic_int paused; /* the producer adds nothing for now */
	atomic_int added;  /* jobs the producer tried to add */
	atomic_int acked;  /* of which the store acknowledged */
	atomic_int processed;
	unsigned char ack[CH_MAX_JOBS];
	atomic_int runs[CH_MAX_JOBS];
} ch_harness;

static inline int
ch_process(jobq_job *job, void *payload) {
	ch_harness *h = payload;
	size_t len;
	const char *data = jobq_job_data(job, &len);
	long i = strtol(data, NULL, 10);
	if (i >= 0 && i < CH_MAX_JOBS)
		atomic_fetch_add(&h->runs[i], 1);
	atomic_fetch_add(&h->processed, 1);
	return 0;
}

static inline void *
ch_produce(void *arg) {
	ch_harness *h = arg;
	while (!atomic_load(&h->stop)) {
		if (atomic_load(&h->paused)) {
			ch_pause_ms(2);
			continue;
		}
		int i = atomic_load(&h->added);
		if (i >= CH_MAX_JOBS)
			break;
		char data[16];
		snprintf(data, sizeof(data), "%d", i);
		jobq_job_id id;
		int rc = jobq_queue_add(&id, h->q, "n", data, strlen(data), NULL);
		if (rc >= 0) {
			h->ack[i] = 1;
			atomic_fetch_add(&h->acked, 1);
		}
		atomic_fetch_add(&h->added, 1);
		ch_pause_ms(2); /* a steady flow, not a flood: the test runs on shared cores */
	}
	return NULL;
}

/* Opens `url`'s queue `name`, starts a worker (2 threads) and the producer. */
static inline int
ch_start(ch_harness *h, const char *url, const char *name) {
	memset(h, 0, sizeof(*h));
	if (jobq_store_open(&h->s, url, NULL) != 0 || jobq_queue_open(&h->q, h->s, name) != 0)
		return -1;
	jobq_worker_options o = JOBQ_WORKER_OPTIONS_INIT;
	o.concurrency = 2;
	o.stalled_interval_ms = 1000; /* a job of a crashed master's lost lock comes back */
	o.lock_ms = 5000;
	if (jobq_worker_new(&h->w, h->q, ch_process, h, &o) != 0 || jobq_worker_start(h->w) != 0)
		return -1;
	return pthread_create(&h->producer, NULL, ch_produce, h) == 0 ? 0 : -1;
}

/* Waits (at most ms) until `n` more jobs than `from` ran; 0 when they did. */
static inline int
ch_wait_processed(ch_harness *h, int from, int n, int64_t ms) {
	int64_t deadline = ch_mono_ms() + ms;
	while (atomic_load(&h->processed) < from + n)
		if (ch_mono_ms() > deadline)
			return -1;
		else
			ch_pause_ms(5);
	return 0;
}

/* Stops the producer, waits (at most ms) until every acknowledged job ran, stops the worker.
 * Returns the acknowledged jobs that never ran; *twice gets those that ran more than once. */
static inline int
ch_finish(ch_harness *h, int64_t ms, int *twice) {
	atomic_store(&h->stop, 1);
	pthread_join(h->producer, NULL);
	int n = atomic_load(&h->added);
	int64_t deadline = ch_mono_ms() + ms;
	int lost;
	for (;;) {
		lost = 0;
		for (int i = 0; i < n; i++)
			lost += h->ack[i] && atomic_load(&h->runs[i]) == 0;
		if (lost == 0 || ch_mono_ms() > deadline)
			break;
		ch_pause_ms(10);
	}
	jobq_worker_close(h->w, 10000);
	jobq_worker_free(h->w);
	*twice = 0;
	for (int i = 0; i < n; i++)
		*twice += atomic_load(&h->runs[i]) > 1;
	printf("# %d adds tried, %d acknowledged, %d runs; %d lost, %d ran twice\n", n,
	       atomic_load(&h->acked), atomic_load(&h->processed), lost, *twice);
	jobq_queue_obliterate(h->q, 1);
	jobq_queue_close(h->q);
	jobq_store_close(h->s);
	return lost;
}

#endif
