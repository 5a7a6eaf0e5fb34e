/*
 * jobq_queue_add from T threads at once, the jobq counterpart of Node BullMQ's add() with T
 * calls in flight (tools/bench/bullmq_bench.js --inflight T): with jobq's synchronous add,
 * T adds are in flight when T threads add one job each at a time. tools/bench/run.sh builds
 * it against a jobq build tree and uses it when `jobq bench` has no --inflight.
 *
 *   redis_add_threads URL THREADS JOBS SIZE
 *
 * Prints {"threads":T,"jobs":N,"add_threads_per_s":R}; the queue is obliterated after.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobq.h"

typedef struct producer {
	jobq_queue *q;
	const char *payload;
	size_t size;
	long jobs;
	int rc;
	char msg[256]; /* the error of a failed add (error details are per thread) */
	pthread_t thread;
} producer;

static void *
produce(void *arg) {
	producer *p = arg;
	jobq_job_id id;
	for (long i = 0; i < p->jobs && p->rc == 0; i++)
		if (jobq_queue_add(&id, p->q, "bench", p->payload, p->size, NULL) < 0) {
			p->rc = -1;
			snprintf(p->msg, sizeof(p->msg), "%s", jobq_error_message());
		}
	return NULL;
}

static double
now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv) {
	if (argc != 5) {
		fprintf(stderr, "usage: redis_add_threads URL THREADS JOBS SIZE\n");
		return 2;
	}
	int threads = atoi(argv[2]);
	long jobs = atol(argv[3]);
	size_t size = (size_t)atol(argv[4]);
	if (threads < 1 || threads > 1024 || jobs < threads || size < 2) {
		fprintf(stderr, "redis_add_threads: THREADS 1..1024, JOBS >= THREADS, SIZE >= 2\n");
		return 2;
	}
	/* a JSON string of exactly `size` bytes, as jobq bench and bullmq_bench.js */
	char *payload = malloc(size + 1);
	producer *ps = calloc((size_t)threads, sizeof(*ps));
	if (payload == NULL || ps == NULL)
		return 1;
	memset(payload, 'x', size);
	payload[0] = payload[size - 1] = '"';
	payload[size] = '\0';
	jobq_store *store = NULL;
	jobq_queue *q = NULL;
	char name[64];
	snprintf(name, sizeof(name), "jobq-add-threads-%ld", (long)getpid());
	if (jobq_store_open(&store, argv[1], NULL) < 0 || jobq_queue_open(&q, store, name) < 0) {
		fprintf(stderr, "redis_add_threads: %s\n", jobq_error_message());
		return 1;
	}
	long per = jobs / threads;
	double t0 = now_s();
	for (int i = 0; i < threads; i++) {
		ps[i] = (producer){.q = q, .payload = payload, .size = size, .jobs = per};
		if (pthread_create(&ps[i].thread, NULL, produce, &ps[i]) != 0) {
			fprintf(stderr, "redis_add_threads: cannot create a thread\n");
			return 1;
		}
	}
	const char *failed = NULL;
	for (int i = 0; i < threads; i++) {
		pthread_join(ps[i].thread, NULL);
		if (ps[i].rc != 0)
			failed = ps[i].msg;
	}
	double secs = now_s() - t0;
	if (failed != NULL) {
		fprintf(stderr, "redis_add_threads: an add failed: %s\n", failed);
		return 1;
	}
	printf("{\"threads\":%d,\"jobs\":%ld,\"add_threads_per_s\":%.0f}\n", threads, per * threads,
	       (double)(per * threads) / secs);
	jobq_queue_obliterate(q, 1);
	jobq_queue_close(q);
	jobq_store_close(store);
	free(ps);
	free(payload);
	return 0;
}
