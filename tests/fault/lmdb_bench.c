/*
 * LMDB benchmark driver (not a test): per durability mode,
 *   - add rate: one thread adding single jobs for about 2 s;
 *   - end-to-end rate: P producer and W worker processes (lmdb_helper) moving N jobs, for
 *     1 + 1 and 4 + 4;
 *   - cross-process pickup latency: jobs added one at a time (every 5 ms) by this process,
 *     picked up by an idle worker process; p50 / p99 / max of add-returned -> handler-started.
 *
 *   lmdb_bench [MODE...]     (modes: sync group periodic; default all three)
 *
 * Environment: JOBQ_BENCH_DIR (default /tmp), JOBQ_BENCH_JOBS (end-to-end jobs; default 1000
 * for sync, 5000 for group, 20000 for periodic), JOBQ_BENCH_LATENCY_JOBS (default 300).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobq.h"

#ifndef LMDB_HELPER_PATH
#error "LMDB_HELPER_PATH must name the lmdb_helper binary"
#endif

static int64_t
mono_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
sleep_us(int64_t us) {
	struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

static pid_t
spawn(const char *const *args) {
	const char *argv[16];
	size_t n = 0;
	argv[n++] = LMDB_HELPER_PATH;
	for (; args[n - 1] && n < 15; n++) {
		argv[n] = args[n - 1];
	}
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid == 0) {
		execv(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	return pid;
}

static int
wait_ok(pid_t pid) {
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "lmdb_bench: helper %ld failed (status %d)\n", (long)pid, st);
		return -1;
	}
	return 0;
}

static void
fresh_dir(char *dir, size_t cap, const char *tag) {
	const char *base = getenv("JOBQ_BENCH_DIR");
	snprintf(dir, cap, "%s/jobq-bench-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
}

static void
rm_dir(const char *dir) {
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "lmdb_bench: could not remove %s\n", dir);
	}
}

static int
open_queue(jobq_store **s, jobq_queue **q, const char *url) {
	int rc = jobq_store_open(s, url, NULL);
	if (rc == 0) {
		rc = jobq_queue_open(q, *s, "bench");
	}
	if (rc < 0) {
		fprintf(stderr, "lmdb_bench: %s: %s\n", url, jobq_error_message());
	}
	return rc;
}

static void
bench_add(const char *mode) {
	char dir[300], url[400];
	fresh_dir(dir, sizeof(dir), mode);
	snprintf(url, sizeof(url), "lmdb://%s?durability=%s", dir, mode);
	jobq_store *s;
	jobq_queue *q;
	if (open_queue(&s, &q, url) < 0) {
		exit(1);
	}
	int64_t t0 = mono_us(), t;
	long n = 0;
	do {
		jobq_job_id id;
		if (jobq_queue_add(&id, q, "job", "{}", 2, NULL) < 0) {
			fprintf(stderr, "add: %s\n", jobq_error_message());
			exit(1);
		}
		n++;
		t = mono_us();
	} while (t - t0 < 2000000);
	printf("%-8s add (1 thread, single adds): %8.0f jobs/s  (%ld jobs)\n", mode,
	       (double)n * 1e6 / (double)(t - t0), n);
	jobq_queue_close(q);
	jobq_store_close(s);
	rm_dir(dir);
}

static void
bench_e2e(const char *mode, int producers, int workers, long jobs) {
	char dir[300], url[400], count[32], total[32], log[400];
	fresh_dir(dir, sizeof(dir), mode);
	snprintf(url, sizeof(url), "lmdb://%s?durability=%s", dir, mode);
	snprintf(count, sizeof(count), "%ld", jobs / producers);
	snprintf(total, sizeof(total), "%ld", (jobs / producers) * producers);
	snprintf(log, sizeof(log), "%s/log", dir);
	pid_t pids[16];
	int64_t t0 = mono_us();
	for (int i = 0; i < workers; i++) {
		const char *args[] = {"work", url, "bench", log, total, "1", "30000", NULL};
		pids[i] = spawn(args);
	}
	for (int i = 0; i < producers; i++) {
		const char *args[] = {"produce", url, "bench", count, "1", log, NULL};
		pids[workers + i] = spawn(args);
	}
	int bad = 0;
	for (int i = 0; i < producers + workers; i++) {
		bad |= wait_ok(pids[i]);
	}
	int64_t t = mono_us() - t0;
	printf("%-8s end-to-end %d producer(s) + %d worker(s), single adds: %8.0f jobs/s  (%s "
	       "jobs, %.2f s)%s\n",
	       mode, producers, workers, (double)atol(total) * 1e6 / (double)t, total, t / 1e6,
	       bad ? " FAILED" : "");
	rm_dir(dir);
}

static int
cmp_ll(const void *a, const void *b) {
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

static void
bench_latency(const char *mode, long jobs) {
	char dir[300], url[400], total[32], log[400];
	fresh_dir(dir, sizeof(dir), mode);
	snprintf(url, sizeof(url), "lmdb://%s?durability=%s", dir, mode);
	snprintf(total, sizeof(total), "%ld", jobs);
	snprintf(log, sizeof(log), "%s/latency.log", dir);
	jobq_store *s;
	jobq_queue *q;
	if (open_queue(&s, &q, url) < 0) {
		exit(1);
	}
	const char *args[] = {"work", url, "bench", log, total, "1", "30000", NULL};
	pid_t w = spawn(args);
	sleep_us(300000); /* let the worker start and go idle */
	for (long i = 0; i < jobs; i++) {
		char data[64];
		int n = snprintf(data, sizeof(data), "{\"t\":%lld}", (long long)mono_us());
		jobq_job_id id;
		if (jobq_queue_add(&id, q, "job", data, (size_t)n, NULL) < 0) {
			fprintf(stderr, "add: %s\n", jobq_error_message());
			exit(1);
		}
		sleep_us(5000);
	}
	wait_ok(w);
	FILE *fp = fopen(log, "r");
	long long *lat = calloc((size_t)jobs, sizeof(long long));
	size_t n = 0;
	char line[256];
	while (fp && lat && n < (size_t)jobs && fgets(line, sizeof(line), fp)) {
		char *sp = strchr(line, ' ');
		if (sp) {
			lat[n++] = atoll(sp + 1);
		}
	}
	if (fp) {
		fclose(fp);
	}
	qsort(lat, n, sizeof(long long), cmp_ll);
	if (n > 0) {
		printf(
		    "%-8s pickup latency across processes (%zu jobs, 1 every 5 ms): p50 %.2f ms, "
		    "p99 %.2f ms, max %.2f ms\n",
		    mode, n, lat[n / 2] / 1e3, lat[(n * 99) / 100] / 1e3, lat[n - 1] / 1e3);
	}
	free(lat);
	jobq_queue_close(q);
	jobq_store_close(s);
	rm_dir(dir);
}

int
main(int argc, char **argv) {
	const char *all[] = {"sync", "group", "periodic"};
	const char *const *modes = argc > 1 ? (const char *const *)(argv + 1) : all;
	int nmodes = argc > 1 ? argc - 1 : 3;
	const char *je = getenv("JOBQ_BENCH_JOBS");
	const char *le = getenv("JOBQ_BENCH_LATENCY_JOBS");
	long lat_jobs = le ? atol(le) : 300;
	for (int i = 0; i < nmodes; i++) {
		const char *m = modes[i];
		long jobs = je                        ? atol(je)
		            : strcmp(m, "sync") == 0  ? 1000
		            : strcmp(m, "group") == 0 ? 5000
		                                      : 20000;
		bench_add(m);
		bench_e2e(m, 1, 1, jobs);
		bench_e2e(m, 4, 4, jobs);
		bench_latency(m, lat_jobs);
		fflush(stdout);
	}
	return 0;
}
