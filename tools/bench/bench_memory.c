/*
 * jobq_bench — the throughput workloads of issue 6, through the public API only:
 *
 *   add     one producer thread, jobq_queue_add one job at a time
 *   bulk    one producer thread, jobq_queue_add_bulk in batches of --batch
 *   e2e     one producer thread adding in bulk (or one by one with --single) while a worker
 *           with --concurrency handler threads (default 1) runs an empty handler; the rate is
 *           jobs / (time from the first add to the last completion)
 *
 * Each workload runs --repeat times on a fresh queue; the best and the median are printed
 * (the machine is shared, so the best is the most repeatable figure). Any store URL works:
 *   jobq_bench -u mem:// --jobs 1000000
 *   jobq_bench -u 'lmdb:/tmp/jb?durability=group' --jobs 100000
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobq.h"

typedef struct config {
	const char *url;
	long long jobs;
	long long batch;
	long long size;
	unsigned int concurrency;
	int repeat;
	int json;
	int keep_all;
	const char *only; /* NULL: every workload */
} config;

typedef struct e2e_ctx {
	const config *cfg;
	jobq_queue *q;
	const char *payload;
	int rc; /* the producer's result */
} e2e_ctx;

static double
now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_us(long us) {
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
	nanosleep(&ts, NULL);
}

static int
fail(int rc, const char *what) {
	fprintf(stderr, "jobq_bench: %s: %s (%s)\n", what, jobq_error_message(),
	        jobq_error_name(rc));
	return rc;
}

/* Adds cfg->jobs jobs, one by one or in batches. */
static int
produce(const config *cfg, jobq_queue *q, const char *payload, int single) {
	jobq_job_id id;
	if (single) {
		for (long long i = 0; i < cfg->jobs; i++) {
			int rc = jobq_queue_add(&id, q, "bench", payload, (size_t)cfg->size, NULL);
			if (rc < 0)
				return fail(rc, "add");
		}
		return 0;
	}
	size_t batch = (size_t)cfg->batch;
	jobq_job_spec *specs = calloc(batch, sizeof(*specs));
	jobq_job_id *ids = calloc(batch, sizeof(*ids));
	int rc = 0;
	if (specs == NULL || ids == NULL) {
		rc = JOBQ_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < batch; i++)
		specs[i] = (jobq_job_spec){"bench", payload, (size_t)cfg->size, NULL};
	for (long long done = 0; done < cfg->jobs;) {
		long long left = cfg->jobs - done;
		size_t n = left < (long long)batch ? (size_t)left : batch;
		if ((rc = jobq_queue_add_bulk(ids, NULL, q, specs, n)) < 0) {
			fail(rc, "add bulk");
			goto out;
		}
		done += (long long)n;
	}
out:
	free(specs);
	free(ids);
	return rc;
}

static void *
producer_thread(void *arg) {
	e2e_ctx *c = arg;
	c->rc =
	    produce(c->cfg, c->q, c->payload, c->cfg->only && strcmp(c->cfg->only, "e2e1") == 0);
	return NULL;
}

static int
empty_handler(jobq_job *job, void *payload) {
	(void)job;
	(void)payload;
	return 0;
}

/* One run of workload `w` on a fresh queue; *rate gets jobs per second. */
static int
run_once(double *rate, const config *cfg, jobq_store *store, const char *w, int round,
         const char *payload) {
	char qname[64];
	jobq_queue *q = NULL;
	jobq_worker *wk = NULL;
	int rc;
	snprintf(qname, sizeof(qname), "bench-%ld-%s-%d", (long)getpid(), w, round);
	if ((rc = jobq_queue_open(&q, store, qname)) < 0)
		return fail(rc, "queue open");
	double t0, t1;
	if (strcmp(w, "add") == 0 || strcmp(w, "bulk") == 0) {
		t0 = now_s();
		rc = produce(cfg, q, payload, strcmp(w, "add") == 0);
		t1 = now_s();
	} else {
		/* e2e (bulk producer) or e2e1 (one-by-one producer) */
		jobq_worker_options wo;
		jobq_worker_options_init(&wo, JOBQ_WORKER_OPTIONS_VERSION);
		wo.concurrency = cfg->concurrency;
		wo.remove_on_complete.mode = cfg->keep_all ? JOBQ_KEEP_ALL : JOBQ_KEEP_NONE;
		if ((rc = jobq_worker_new(&wk, q, empty_handler, NULL, &wo)) < 0 ||
		    (rc = jobq_worker_start(wk)) < 0) {
			fail(rc, "worker");
			goto out;
		}
		config c2 = *cfg;
		c2.only = w;
		e2e_ctx ctx = {&c2, q, payload, 0};
		pthread_t th;
		t0 = now_s();
		if (pthread_create(&th, NULL, producer_thread, &ctx) != 0) {
			rc = JOBQ_ERROR;
			fprintf(stderr, "jobq_bench: cannot create the producer thread\n");
			goto out;
		}
		jobq_worker_stats st;
		for (;;) {
			jobq_worker_get_stats(&st, wk);
			if ((long long)st.completed >= cfg->jobs || st.failed > 0)
				break;
			sleep_us(200);
		}
		t1 = now_s();
		pthread_join(th, NULL);
		rc = ctx.rc;
		if (rc >= 0 && st.failed > 0) {
			fprintf(stderr, "jobq_bench: %llu jobs failed\n",
			        (unsigned long long)st.failed);
			rc = JOBQ_ERROR;
		}
	}
	*rate = (double)cfg->jobs / (t1 - t0 > 0 ? t1 - t0 : 1e-9);
out:
	if (wk != NULL)
		jobq_worker_free(wk);
	jobq_queue_obliterate(q, 1);
	jobq_queue_close(q);
	return rc;
}

static int
cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void
usage(void) {
	fprintf(stderr, "usage: jobq_bench [-u URL] [--jobs N] [--batch N] [--size BYTES] "
	                "[--concurrency N]\n"
	                "                  [--repeat N] [--only add|bulk|e2e|e2e1] [--keep-all] "
	                "[--json]\n");
}

int
main(int argc, char **argv) {
	config cfg = {"mem://", 1000000, 1000, 100, 1, 3, 0, 0, NULL};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if ((strcmp(a, "-u") == 0 || strcmp(a, "--url") == 0) && v) {
			cfg.url = v;
			i++;
		} else if (strcmp(a, "--jobs") == 0 && v) {
			cfg.jobs = atoll(v);
			i++;
		} else if (strcmp(a, "--batch") == 0 && v) {
			cfg.batch = atoll(v);
			i++;
		} else if (strcmp(a, "--size") == 0 && v) {
			cfg.size = atoll(v);
			i++;
		} else if (strcmp(a, "--concurrency") == 0 && v) {
			cfg.concurrency = (unsigned)atoi(v);
			i++;
		} else if (strcmp(a, "--repeat") == 0 && v) {
			cfg.repeat = atoi(v);
			i++;
		} else if (strcmp(a, "--only") == 0 && v) {
			cfg.only = v;
			i++;
		} else if (strcmp(a, "--keep-all") == 0) {
			cfg.keep_all = 1;
		} else if (strcmp(a, "--json") == 0) {
			cfg.json = 1;
		} else {
			usage();
			return 2;
		}
	}
	if (cfg.jobs < 1 || cfg.batch < 1 || cfg.size < 1 || cfg.concurrency < 1 ||
	    cfg.repeat < 1) {
		usage();
		return 2;
	}

	/* A JSON string of exactly `size` bytes (a digit when size is 1), as `jobq bench`. */
	char *payload = malloc((size_t)cfg.size + 1);
	if (payload == NULL)
		return 1;
	if (cfg.size == 1) {
		payload[0] = '0';
	} else {
		memset(payload, 'x', (size_t)cfg.size);
		payload[0] = payload[cfg.size - 1] = '"';
	}
	payload[cfg.size] = '\0';

	jobq_store *store = NULL;
	int rc = jobq_store_open(&store, cfg.url, NULL);
	if (rc < 0) {
		free(payload);
		return fail(rc, "store open") < 0 ? 1 : 0;
	}
	static const char *const workloads[] = {"add", "bulk", "e2e", "e2e1"};
	double *rates = calloc((size_t)cfg.repeat, sizeof(*rates));
	if (cfg.json)
		printf("{\"url\":\"%s\",\"backend\":\"%s\",\"jobs\":%lld,\"batch\":%lld,"
		       "\"size\":%lld,\"concurrency\":%u,\"repeat\":%d",
		       cfg.url, jobq_store_backend_name(store), cfg.jobs, cfg.batch, cfg.size,
		       cfg.concurrency, cfg.repeat);
	else
		printf("%s (%s): %lld jobs of %lld bytes, batch %lld, concurrency %u, best/median "
		       "of %d\n",
		       cfg.url, jobq_store_backend_name(store), cfg.jobs, cfg.size, cfg.batch,
		       cfg.concurrency, cfg.repeat);
	for (size_t k = 0; k < sizeof(workloads) / sizeof(*workloads) && rc >= 0; k++) {
		const char *w = workloads[k];
		if (cfg.only != NULL && strcmp(cfg.only, w) != 0)
			continue;
		for (int r = 0; r < cfg.repeat && rc >= 0; r++)
			rc = run_once(&rates[r], &cfg, store, w, r, payload);
		if (rc < 0)
			break;
		qsort(rates, (size_t)cfg.repeat, sizeof(*rates), cmp_double);
		double best = rates[cfg.repeat - 1], median = rates[cfg.repeat / 2];
		if (cfg.json)
			printf(",\"%s_per_s\":%.0f,\"%s_median_per_s\":%.0f", w, best, w, median);
		else
			printf("  %-5s %12.0f jobs/s best, %12.0f median\n", w, best, median);
		fflush(stdout);
	}
	if (cfg.json)
		printf("}\n");
	free(rates);
	jobq_store_close(store);
	free(payload);
	return rc < 0 ? 1 : 0;
}
