/*
 * jobq command — bench (throughput and pickup latency) and demo (the quick start).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define BULK_BATCH 1000

static void
sleep_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* --- bench ------------------------------------------------------------------------------- */

typedef struct bench_ctx {
	atomic_llong processed;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int latency_mode;   /* under mu */
	int64_t started_us; /* under mu: when the latency job's handler started */
	int have_start;     /* under mu */
} bench_ctx;

static int
bench_handler(jobq_job *job, void *payload) {
	bench_ctx *b = payload;
	int64_t now = cli_now_us();

	(void)job;
	pthread_mutex_lock(&b->mu);
	if (b->latency_mode && !b->have_start) {
		b->started_us = now;
		b->have_start = 1;
		pthread_cond_signal(&b->cv);
	}
	pthread_mutex_unlock(&b->mu);
	atomic_fetch_add(&b->processed, 1);
	return 0;
}

static int
cmp_i64(const void *x, const void *y) {
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return (a > b) - (a < b);
}

static int64_t
percentile(const int64_t *sorted, size_t n, double p) {
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

/* A window of asynchronous adds: the producer waits while `limit` adds have no outcome. */
typedef struct add_window {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int64_t open;  /* adds without an outcome yet */
	int64_t limit; /* adds in flight at most */
} add_window;

static void
add_window_done(void *ctx, int rc, const char *id, int outcome) {
	add_window *w = ctx;
	(void)id;
	(void)outcome;
	(void)rc; /* a failed add also fails the flush that ends the phase */
	pthread_mutex_lock(&w->mu);
	w->open--;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Adds `jobs` jobs to a queue of their own, one call per job with up to `inflight` adds in
 * flight (jobq_queue_add_async), as a producer that does not wait for each add would; sets
 * *secs to the time it took. Returns 0 or the exit code (error reported). */
static int
bench_add_inflight(double *secs, jobq_store *store, const char *qname, int64_t jobs,
                   int64_t inflight, const char *payload, size_t size) {
	char name[96];
	jobq_queue *q = NULL;
	add_window w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, inflight};
	snprintf(name, sizeof(name), "%s-inflight", qname);
	int rc = jobq_queue_open(&q, store, name);
	if (rc < 0)
		return cli_lib_fail(rc, "queue open");
	int64_t t0 = cli_now_us();
	for (int64_t i = 0; i < jobs && rc >= 0; i++) {
		pthread_mutex_lock(&w.mu);
		while (w.open >= w.limit)
			pthread_cond_wait(&w.cv, &w.mu);
		w.open++;
		pthread_mutex_unlock(&w.mu);
		rc = jobq_queue_add_async(q, "bench", payload, size, NULL, add_window_done, &w);
		if ((i & 1023) == 0)
			cli_progress("bench: adding with %lld in flight %lld/%lld",
			             (long long)inflight, (long long)i, (long long)jobs);
	}
	if (rc >= 0)
		rc = jobq_queue_flush(q, -1); /* (an add's error comes back here too) */
	*secs = (double)(cli_now_us() - t0) / 1e6;
	int code = rc < 0 ? cli_lib_fail(rc, "add with adds in flight") : 0;
	jobq_queue_obliterate(q, 1);
	jobq_queue_close(q);
	return code;
}

/* Waits until `want` jobs were processed, with a progress line; 0 or -1 after `limit_s`. */
static int
wait_processed(bench_ctx *b, long long want, const char *what, int64_t limit_s) {
	int64_t start = cli_now_us(), last = 0;

	while (atomic_load(&b->processed) < want) {
		int64_t now = cli_now_us();
		if (now - start > limit_s * 1000000)
			return -1;
		if (what && now - last > 100000) {
			cli_progress("bench: %s %lld/%lld", what,
			             (long long)atomic_load(&b->processed), want);
			last = now;
		}
		sleep_ms(1);
	}
	return 0;
}

int
cli_cmd_bench(int argc, char **argv) {
	int64_t jobs = 5000, concurrency = 4, size = 100, samples = 200, inflight = 100,
	        metrics = 0;
	const cli_opt opts[] = {
	    {"jobs", 'n', CLI_OPT_INT, &jobs, 1, 100000000, 0, NULL},
	    {"concurrency", 'c', CLI_OPT_INT, &concurrency, 1, 1024, 0, NULL},
	    {"size", 0, CLI_OPT_INT, &size, 1, 64 * 1024 * 1024, 0, NULL},
	    {"samples", 0, CLI_OPT_INT, &samples, 1, 100000, 0, NULL},
	    {"inflight", 0, CLI_OPT_INT, &inflight, 1, JOBQ_ADD_ASYNC_MAX_PENDING, 0, NULL},
	    {"metrics", 0, CLI_OPT_INT, &metrics, 1, JOBQ_METRICS_MAX_POINTS, 0, NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	jobq_store *store = NULL;
	jobq_queue *q = NULL;
	jobq_worker *w = NULL;
	jobq_worker_options wo;
	jobq_job_id id;
	jobq_job_id *ids = NULL;
	jobq_job_spec *specs = NULL;
	int64_t *lat = NULL;
	char *payload = NULL, qname[64];
	bench_ctx b;
	double add_s = 0, inflight_s = 0, bulk_s = 0, proc_s = 0;
	int64_t t0;
	int rc;

	if ((rc = cli_parse(&a, argc, argv, opts, 0, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;

	/* Payload: a JSON string of exactly `size` bytes (a digit when size is 1). */
	payload = malloc((size_t)size + 1);
	ids = calloc(BULK_BATCH, sizeof(*ids));
	specs = calloc(BULK_BATCH, sizeof(*specs));
	lat = calloc((size_t)samples, sizeof(*lat));
	if (!payload || !ids || !specs || !lat) {
		rc = cli_fail(CLI_EXIT_FAILED, "out of memory");
		goto out;
	}
	if (size == 1) {
		payload[0] = '0';
	} else {
		memset(payload, 'x', (size_t)size);
		payload[0] = payload[size - 1] = '"';
	}
	payload[size] = '\0';

	memset(&b, 0, sizeof(b));
	atomic_init(&b.processed, 0);
	pthread_mutex_init(&b.mu, NULL);
	pthread_cond_init(&b.cv, NULL);

	snprintf(qname, sizeof(qname), "jobq-bench-%ld", (long)getpid());
	if ((rc = cli_open_queue(&store, &q, qname)) != 0)
		goto out_sync;

	/* 1. one by one */
	t0 = cli_now_us();
	for (int64_t i = 0; i < jobs; i++) {
		rc = jobq_queue_add(&id, q, "bench", payload, (size_t)size, NULL);
		if (rc < 0) {
			rc = cli_lib_fail(rc, "add");
			goto out_sync;
		}
		if ((i & 1023) == 0)
			cli_progress("bench: adding %lld/%lld", (long long)i, (long long)jobs);
	}
	add_s = (double)(cli_now_us() - t0) / 1e6;

	/* 1b. one at a time, `inflight` adds in flight, on a queue of its own */
	rc = bench_add_inflight(&inflight_s, store, qname, jobs, inflight, payload, (size_t)size);
	if (rc != 0)
		goto out_sync;

	/* 2. in bulk */
	for (size_t i = 0; i < BULK_BATCH; i++)
		specs[i] = (jobq_job_spec){"bench", payload, (size_t)size, NULL};
	t0 = cli_now_us();
	for (int64_t done = 0; done < jobs;) {
		size_t n = (size_t)(jobs - done < BULK_BATCH ? jobs - done : BULK_BATCH);
		rc = jobq_queue_add_bulk(ids, NULL, q, specs, n);
		if (rc < 0) {
			rc = cli_lib_fail(rc, "bulk add");
			goto out_sync;
		}
		done += (int64_t)n;
		cli_progress("bench: bulk adding %lld/%lld", (long long)done, (long long)jobs);
	}
	bulk_s = (double)(cli_now_us() - t0) / 1e6;

	/* 3. processing with an empty handler; the clock starts before the worker does, whose
	 * threads may finish a fast store's jobs before jobq_worker_start returns. */
	t0 = cli_now_us();
	jobq_worker_options_init(&wo, JOBQ_WORKER_OPTIONS_VERSION);
	wo.concurrency = (unsigned)concurrency;
	wo.remove_on_complete.mode = JOBQ_KEEP_NONE;
	wo.metrics_max_data_points = (uint32_t)metrics;
	rc = jobq_worker_new(&w, q, bench_handler, &b, &wo);
	if (rc >= 0)
		rc = jobq_worker_start(w);
	if (rc < 0) {
		rc = cli_lib_fail(rc, "worker");
		goto out_sync;
	}
	if (wait_processed(&b, 2 * jobs, "processing", 600) < 0) {
		rc = cli_fail(CLI_EXIT_FAILED, "processing did not finish within 600 s");
		goto out_sync;
	}
	proc_s = (double)(cli_now_us() - t0) / 1e6;

	/* 4. pickup latency of an idle worker: first the worker finishes writing the completions
	 * of its last batches (the handlers are counted before those are written), so that the
	 * first samples do not wait behind them */
	for (int64_t waited = 0;; waited++) {
		jobq_counts counts;
		if ((rc = jobq_queue_counts(&counts, q)) < 0) {
			rc = cli_lib_fail(rc, "counts");
			goto out_sync;
		}
		if (counts.active == 0 && counts.waiting == 0)
			break;
		if (waited > 60000) {
			rc = cli_fail(CLI_EXIT_FAILED, "the worker did not go idle within 60 s");
			goto out_sync;
		}
		sleep_ms(1);
	}
	for (int64_t i = 0; i < samples; i++) {
		long long want = 2 * jobs + i + 1;
		int64_t start;
		struct timespec dl;

		sleep_ms(2); /* let the worker go idle in its wait */
		pthread_mutex_lock(&b.mu);
		b.latency_mode = 1;
		b.have_start = 0;
		pthread_mutex_unlock(&b.mu);
		start = cli_now_us();
		rc = jobq_queue_add(&id, q, "pickup", payload, (size_t)size, NULL);
		if (rc < 0) {
			rc = cli_lib_fail(rc, "add");
			goto out_sync;
		}
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 10;
		pthread_mutex_lock(&b.mu);
		while (!b.have_start && rc == 0)
			rc = pthread_cond_timedwait(&b.cv, &b.mu, &dl);
		lat[i] = b.started_us - start;
		b.latency_mode = 0;
		pthread_mutex_unlock(&b.mu);
		if (rc != 0) {
			rc = cli_fail(CLI_EXIT_FAILED, "a job was not picked up within 10 s");
			goto out_sync;
		}
		if (wait_processed(&b, want, NULL, 10) < 0) {
			rc = cli_fail(CLI_EXIT_FAILED, "a job was not processed within 10 s");
			goto out_sync;
		}
		cli_progress("bench: pickup latency %lld/%lld", (long long)i + 1,
		             (long long)samples);
	}
	cli_progress_done();
	qsort(lat, (size_t)samples, sizeof(*lat), cmp_i64);

	{
		double add_rate = (double)jobs / (add_s > 0 ? add_s : 1e-9);
		double bulk_rate = (double)jobs / (bulk_s > 0 ? bulk_s : 1e-9);
		double inflight_rate = (double)jobs / (inflight_s > 0 ? inflight_s : 1e-9);
		double proc_rate = (double)(2 * jobs) / (proc_s > 0 ? proc_s : 1e-9);
		int64_t p50 = percentile(lat, (size_t)samples, 0.50);
		int64_t p99 = percentile(lat, (size_t)samples, 0.99);
		if (cli_g.json) {
			json_t *j = json_object();
			json_object_set_new(j, "backend",
			                    json_string(jobq_store_backend_name(store)));
			json_object_set_new(j, "url", json_string(cli_url_shown(cli_url())));
			json_object_set_new(j, "jobs", json_integer(jobs));
			json_object_set_new(j, "concurrency", json_integer(concurrency));
			json_object_set_new(j, "size", json_integer(size));
			json_object_set_new(j, "add_per_s", json_integer((json_int_t)add_rate));
			json_object_set_new(j, "inflight", json_integer(inflight));
			json_object_set_new(j, "add_inflight_per_s",
			                    json_integer((json_int_t)inflight_rate));
			json_object_set_new(j, "add_bulk_per_s",
			                    json_integer((json_int_t)bulk_rate));
			json_object_set_new(j, "process_per_s",
			                    json_integer((json_int_t)proc_rate));
			json_object_set_new(j, "pickup_p50_us", json_integer(p50));
			json_object_set_new(j, "pickup_p99_us", json_integer(p99));
			json_object_set_new(j, "pickup_samples", json_integer(samples));
			rc = cli_print_json(j);
		} else {
			printf("backend        %s (%s)\n", jobq_store_backend_name(store),
			       cli_url_shown(cli_url()));
			printf("jobs           %lld per add phase, %lld bytes each\n",
			       (long long)jobs, (long long)size);
			printf("add            %.0f jobs/s (one by one)\n", add_rate);
			printf("add in flight  %.0f jobs/s (one by one, %lld in flight)\n",
			       inflight_rate, (long long)inflight);
			printf("add bulk       %.0f jobs/s (batches of %d)\n", bulk_rate,
			       BULK_BATCH);
			printf("process        %.0f jobs/s (%lld threads, empty handler)\n",
			       proc_rate, (long long)concurrency);
			printf("pickup         p50 %lld us, p99 %lld us (%lld samples)\n",
			       (long long)p50, (long long)p99, (long long)samples);
			rc = 0;
		}
	}

out_sync:
	cli_progress_done();
	if (w) {
		jobq_worker_close(w, 5000);
		jobq_worker_free(w);
	}
	if (q)
		jobq_queue_obliterate(q, 1);
	cli_close(store, q);
	pthread_cond_destroy(&b.cv);
	pthread_mutex_destroy(&b.mu);
out:
	free(payload);
	free(ids);
	free(specs);
	free(lat);
	return rc;
}

/* --- demo -------------------------------------------------------------------------------- */

#define DEMO_QUEUE "jobq-demo"

typedef struct demo_ctx {
	atomic_llong attempts;
	atomic_llong retries;
	atomic_llong failed_on_purpose;
} demo_ctx;

static int
demo_handler(jobq_job *job, void *payload) {
	demo_ctx *d = payload;
	size_t len = 0;
	const char *data = jobq_job_data(job, &len);
	json_t *v = cli_json_parse(data, len);
	json_int_t n = v ? json_integer_value(json_object_get(v, "n")) : 0;
	uint32_t made = jobq_job_attempts_made(job);
	char result[64];

	json_decref(v);
	atomic_fetch_add(&d->attempts, 1);
	if (made > 0)
		atomic_fetch_add(&d->retries, 1);
	/* One job in twenty fails its first attempt. */
	if (n % 20 == 7 && made == 0) {
		atomic_fetch_add(&d->failed_on_purpose, 1);
		return jobq_job_set_error(job, 0, "simulated failure of job %lld", (long long)n);
	}
	snprintf(result, sizeof(result), "{\"square\":%lld}", (long long)(n * n));
	return jobq_job_set_result(job, result, strlen(result));
}

int
cli_cmd_demo(int argc, char **argv) {
	int64_t jobs = 5000, concurrency = 4;
	const cli_opt opts[] = {
	    {"jobs", 'n', CLI_OPT_INT, &jobs, 1, 10000000, 0, NULL},
	    {"concurrency", 'c', CLI_OPT_INT, &concurrency, 1, 1024, 0, NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	const char *url;
	char url_buf[4200];
	jobq_store *store = NULL;
	jobq_queue *q = NULL;
	jobq_worker *w = NULL;
	jobq_worker_options wo;
	jobq_job_options jo;
	jobq_job_spec *specs = NULL;
	jobq_job_id *ids = NULL;
	char(*datas)[48] = NULL;
	demo_ctx d;
	jobq_counts c;
	int64_t t0, added_us = 0, total_us;
	int rc;

	if ((rc = cli_parse(&a, argc, argv, opts, 0, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;

	url = cli_url();
	/* LMDB syncs every commit by default; the demo syncs every 100 ms instead, so that it
	 * runs in about a second (a plain kill loses nothing; see jobq_lmdb_durability). */
	if (strncmp(url, "lmdb:", 5) == 0 && !strchr(url, '?')) {
		snprintf(url_buf, sizeof(url_buf), "%s?durability=periodic", url);
		url = url_buf;
	}
	rc = jobq_store_open(&store, url, NULL);
	if (rc == JOBQ_ENOTSUP) {
		fprintf(stderr, "jobq demo: the store '%s' is not built in; using mem:// instead\n",
		        cli_url_shown(url));
		url = "mem://";
		rc = jobq_store_open(&store, url, NULL);
	}
	if (rc < 0) {
		return cli_open_store(&store, url); /* prints why, returns the exit code */
	}
	rc = jobq_queue_open(&q, store, DEMO_QUEUE);
	if (rc >= 0) {
		rc = jobq_queue_obliterate(q, 1); /* start from an empty queue */
		if (rc == JOBQ_ENOTFOUND)
			rc = 0;
	}
	if (rc < 0) {
		rc = cli_lib_fail(rc, "cannot prepare the queue " DEMO_QUEUE);
		goto out;
	}

	memset(&d, 0, sizeof(d));
	atomic_init(&d.attempts, 0);
	atomic_init(&d.retries, 0);
	atomic_init(&d.failed_on_purpose, 0);
	jobq_worker_options_init(&wo, JOBQ_WORKER_OPTIONS_VERSION);
	wo.concurrency = (unsigned)concurrency;
	rc = jobq_worker_new(&w, q, demo_handler, &d, &wo);
	if (rc >= 0)
		rc = jobq_worker_start(w);
	if (rc < 0) {
		rc = cli_lib_fail(rc, "cannot start the workers");
		goto out;
	}

	jobq_job_options_init(&jo, JOBQ_JOB_OPTIONS_VERSION);
	jo.attempts = 3;
	jo.backoff.type = JOBQ_BACKOFF_EXPONENTIAL;
	jo.backoff.delay_ms = 10;
	specs = calloc(500, sizeof(*specs));
	ids = calloc(500, sizeof(*ids));
	datas = calloc(500, sizeof(*datas));
	if (!specs || !ids || !datas) {
		rc = cli_fail(CLI_EXIT_FAILED, "out of memory");
		goto out;
	}
	t0 = cli_now_us();
	for (int64_t done = 0; done < jobs;) {
		size_t n = (size_t)(jobs - done < 500 ? jobs - done : 500);
		for (size_t i = 0; i < n; i++) {
			snprintf(datas[i], sizeof(datas[i]), "{\"n\":%lld}",
			         (long long)(done + (int64_t)i));
			specs[i] = (jobq_job_spec){"square", datas[i], strlen(datas[i]), &jo};
		}
		rc = jobq_queue_add_bulk(ids, NULL, q, specs, n);
		if (rc < 0) {
			rc = cli_lib_fail(rc, "cannot add jobs");
			goto out;
		}
		done += (int64_t)n;
		cli_progress("demo: added %lld/%lld, processed %lld", (long long)done,
		             (long long)jobs, (long long)atomic_load(&d.attempts));
	}
	added_us = cli_now_us() - t0;

	for (;;) {
		rc = jobq_queue_counts(&c, q);
		if (rc < 0) {
			rc = cli_lib_fail(rc, "cannot count jobs");
			goto out;
		}
		cli_progress("demo: %llu/%lld completed, %llu failed, %llu active, %llu delayed, "
		             "%lld retries",
		             (unsigned long long)c.completed, (long long)jobs,
		             (unsigned long long)c.failed, (unsigned long long)c.active,
		             (unsigned long long)c.delayed, (long long)atomic_load(&d.retries));
		if ((int64_t)(c.completed + c.failed) >= jobs)
			break;
		if (cli_now_us() - t0 > 120 * 1000000LL) {
			rc = cli_fail(CLI_EXIT_FAILED, "the jobs did not finish within 120 s");
			goto out;
		}
		sleep_ms(20);
	}
	total_us = cli_now_us() - t0;
	cli_progress_done();
	jobq_worker_close(w, 10000);
	jobq_worker_free(w);
	w = NULL;
	jobq_queue_counts(&c, q);

	if (cli_g.json) {
		json_t *j = json_pack(
		    "{s:s,s:s,s:s,s:I,s:I,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:f,s:I,s:I,s:I}",
		    "store", cli_url_shown(url), "backend", jobq_store_backend_name(store), "queue",
		    DEMO_QUEUE, "jobs", (json_int_t)jobs, "concurrency", (json_int_t)concurrency,
		    "counts", "waiting", (json_int_t)c.waiting, "active", (json_int_t)c.active,
		    "delayed", (json_int_t)c.delayed, "prioritized", (json_int_t)c.prioritized,
		    "completed", (json_int_t)c.completed, "failed", (json_int_t)c.failed, "paused",
		    (json_int_t)c.paused, "jobs_per_s", (double)jobs * 1e6 / (double)total_us,
		    "retries", (json_int_t)atomic_load(&d.retries), "attempts",
		    (json_int_t)atomic_load(&d.attempts), "elapsed_ms",
		    (json_int_t)(total_us / 1000));
		cli_print_json(j);
	} else {
		printf("jobq demo on %s (%s), queue %s\n", cli_url_shown(url),
		       jobq_store_backend_name(store), DEMO_QUEUE);
		printf(
		    "  added       %lld jobs in %.0f ms (3 attempts, exponential backoff 10 ms)\n",
		    (long long)jobs, (double)added_us / 1000.0);
		printf("  processed   by %lld worker threads in %.0f ms: %.0f jobs/s\n",
		       (long long)concurrency, (double)total_us / 1000.0,
		       (double)jobs * 1e6 / (double)total_us);
		printf("  attempts    %lld, of which %lld retries (%lld first attempts failed on "
		       "purpose)\n",
		       (long long)atomic_load(&d.attempts), (long long)atomic_load(&d.retries),
		       (long long)atomic_load(&d.failed_on_purpose));
		printf("  counts      completed %llu, failed %llu, waiting %llu, active %llu, "
		       "delayed %llu, prioritized %llu\n",
		       (unsigned long long)c.completed, (unsigned long long)c.failed,
		       (unsigned long long)c.waiting, (unsigned long long)c.active,
		       (unsigned long long)c.delayed, (unsigned long long)c.prioritized);
		if (strcmp(jobq_store_backend_name(store), "memory") != 0)
			printf("  next        jobq%s%s counts %s; jobq%s%s get %s %s\n",
			       cli_g.url ? " -u " : "", cli_g.url ? cli_url_shown(cli_g.url) : "",
			       DEMO_QUEUE, cli_g.url ? " -u " : "",
			       cli_g.url ? cli_url_shown(cli_g.url) : "", DEMO_QUEUE, ids[0].str);
	}
	rc = (int64_t)c.completed == jobs
	         ? 0
	         : cli_fail(CLI_EXIT_FAILED, "%llu jobs failed", (unsigned long long)c.failed);
out:
	cli_progress_done();
	if (w) {
		jobq_worker_close(w, 5000);
		jobq_worker_free(w);
	}
	cli_close(store, q);
	free(specs);
	free(ids);
	free(datas);
	return rc;
}
