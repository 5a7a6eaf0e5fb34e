/*
 * A helper process for the LMDB fault tests and benchmark (fork+exec'd by them).
 *
 *   lmdb_helper produce URL QUEUE COUNT BATCH LOG
 *       adds COUNT jobs in bulks of BATCH (COUNT 0: until killed); after each bulk returns,
 *       appends every acknowledged id to LOG, one "id\n" line per id, with O_APPEND.
 *   lmdb_helper work URL QUEUE LOG TOTAL CONCURRENCY LOCK_MS
 *       runs a worker (reaper every LOCK_MS / 2) whose handler appends "id\n" to LOG and
 *       completes the job; exits 0 once the queue has TOTAL completed jobs (TOTAL 0: never).
 *       A job whose data is {"t":MICROS} (CLOCK_MONOTONIC at the add) logs "id LATENCY_US".
 *   lmdb_helper hold URL QUEUE N LOCK_MS
 *       fetches N jobs with LOCK_MS locks, prints their ids and "held" on stdout, then
 *       sleeps until killed.
 *
 * Exit status: 0 done, 1 a library call failed (message on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobq.h"

static int
die(const char *what, int rc) {
	fprintf(stderr, "lmdb_helper[%ld]: %s: %s (%s)\n", (long)getpid(), what,
	        jobq_error_message(), jobq_error_name(rc));
	return 1;
}

static int
append_lines(int fd, const char *buf, size_t len) {
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
open_queue(jobq_store **s, jobq_queue **q, const char *url, const char *name) {
	int rc = jobq_store_open(s, url, NULL);
	if (rc < 0) {
		return die("store open", rc);
	}
	rc = jobq_queue_open(q, *s, name);
	if (rc < 0) {
		return die("queue open", rc);
	}
	return 0;
}

static int
produce(const char *url, const char *queue, long count, long batch, const char *log) {
	jobq_store *s;
	jobq_queue *q;
	if (open_queue(&s, &q, url, queue)) {
		return 1;
	}
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || batch <= 0 || batch > 1000) {
		fprintf(stderr, "lmdb_helper: bad log %s or batch %ld\n", log, batch);
		return 2;
	}
	jobq_job_spec specs[1000];
	jobq_job_id ids[1000];
	char data[64];
	snprintf(data, sizeof(data), "{\"pid\":%ld}", (long)getpid());
	for (long i = 0; i < batch; i++) {
		specs[i] = (jobq_job_spec){"job", data, strlen(data), NULL};
	}
	char *lines = malloc((size_t)batch * (JOBQ_ID_MAX + 2));
	if (!lines) {
		return 1;
	}
	for (long done = 0; count == 0 || done < count;) {
		long n = count == 0 || count - done > batch ? batch : count - done;
		int rc = jobq_queue_add_bulk(ids, NULL, q, specs, (size_t)n);
		if (rc < 0) {
			return die("add_bulk", rc);
		}
		size_t len = 0;
		for (long i = 0; i < n; i++) {
			len += (size_t)sprintf(lines + len, "%s\n", ids[i].str);
		}
		if (append_lines(fd, lines, len) < 0) {
			perror("lmdb_helper: log");
			return 1;
		}
		done += n;
	}
	free(lines);
	close(fd);
	jobq_queue_close(q);
	jobq_store_close(s);
	return 0;
}

static int log_fd = -1;

static int64_t
mono_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
handle(jobq_job *job, void *payload) {
	(void)payload;
	char line[JOBQ_ID_MAX + 40];
	size_t len;
	const char *data = jobq_job_data(job, &len);
	int n;
	long long t0;
	/* Data {"t":MICROS} (CLOCK_MONOTONIC, the same in every process): log the pickup latency.
	 */
	if (len > 5 && strncmp(data, "{\"t\":", 5) == 0 && sscanf(data + 5, "%lld", &t0) == 1) {
		n = snprintf(line, sizeof(line), "%s %lld\n", jobq_job_id_of(job),
		             (long long)mono_us() - t0);
	} else {
		n = snprintf(line, sizeof(line), "%s\n", jobq_job_id_of(job));
	}
	if (append_lines(log_fd, line, (size_t)n) < 0) {
		return jobq_job_set_error(job, 0, "log write failed");
	}
	return 0;
}

static int
work(const char *url, const char *queue, const char *log, long total, long conc, long lock_ms) {
	jobq_store *s;
	jobq_queue *q;
	if (open_queue(&s, &q, url, queue)) {
		return 1;
	}
	log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log_fd < 0) {
		perror("lmdb_helper: log");
		return 2;
	}
	jobq_worker_options o = JOBQ_WORKER_OPTIONS_INIT;
	o.concurrency = (unsigned int)conc;
	o.lock_ms = lock_ms;
	o.stalled_interval_ms = lock_ms / 2 > 0 ? lock_ms / 2 : 1;
	o.max_stalled = 1000; /* crash tests stall jobs many times; never fail them for it */
	jobq_worker *w;
	int rc = jobq_worker_new(&w, q, handle, NULL, &o);
	if (rc < 0 || (rc = jobq_worker_start(w)) < 0) {
		return die("worker", rc);
	}
	for (;;) {
		jobq_counts c;
		rc = jobq_queue_counts(&c, q);
		if (rc < 0) {
			return die("counts", rc);
		}
		if (total > 0 && c.completed >= (uint64_t)total) {
			break;
		}
		/* Done when the completed count says so; the test bounds the whole run. */
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	jobq_worker_close(w, 5000);
	jobq_worker_free(w);
	close(log_fd);
	jobq_queue_close(q);
	jobq_store_close(s);
	return 0;
}

static int
hold(const char *url, const char *queue, long n, long lock_ms) {
	jobq_store *s;
	jobq_queue *q;
	if (open_queue(&s, &q, url, queue)) {
		return 1;
	}
	for (long i = 0; i < n; i++) {
		jobq_job *job;
		int rc = jobq_queue_fetch(&job, q, lock_ms);
		if (rc < 0) {
			return die("fetch", rc);
		}
		printf("%s\n", jobq_job_id_of(job));
		jobq_job_free(job);
	}
	printf("held\n");
	fflush(stdout);
	for (;;) {
		pause(); /* until kill -9 */
	}
}

int
main(int argc, char **argv) {
	if (argc == 7 && strcmp(argv[1], "produce") == 0) {
		return produce(argv[2], argv[3], atol(argv[4]), atol(argv[5]), argv[6]);
	}
	if (argc == 8 && strcmp(argv[1], "work") == 0) {
		return work(argv[2], argv[3], argv[4], atol(argv[5]), atol(argv[6]), atol(argv[7]));
	}
	if (argc == 6 && strcmp(argv[1], "hold") == 0) {
		return hold(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
	}
	fprintf(stderr, "usage: lmdb_helper produce URL QUEUE COUNT BATCH LOG\n"
	                "       lmdb_helper work URL QUEUE LOG TOTAL CONCURRENCY LOCK_MS\n"
	                "       lmdb_helper hold URL QUEUE N LOCK_MS\n");
	return 2;
}
