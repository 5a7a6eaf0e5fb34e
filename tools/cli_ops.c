/*
 * jobq command — for operators: the log handler, the overview verbs (queues, stats, metrics,
 * health, top) and the verbs that report for a job (progress, log, logs).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* --- logs -------------------------------------------------------------------------------- */

static cli_log_format log_format = CLI_LOG_TEXT;
static int log_quiet;

static void
write_line(jobq_log_level level, const char *component, const char *queue, const char *job_id,
           const char *message) {
	const char *clear = cli_progress_enabled() ? "\r\033[K" : "";
	if (log_quiet && level < JOBQ_LOG_WARN)
		return;
	if (log_format == CLI_LOG_JSON) {
		char t[64];
		json_t *j = json_pack(
		    "{s:s,s:s,s:s,s:s}", "time", cli_fmt_time(t, sizeof(t), cli_wall_ms()), "level",
		    jobq_log_level_name(level), "component", component, "message", message);
		char *text;
		if (!j)
			return;
		if (queue)
			json_object_set_new(j, "queue", json_string(queue));
		if (job_id)
			json_object_set_new(j, "job", json_string(job_id));
		text = json_dumps(j, JSON_COMPACT);
		if (text)
			fprintf(stderr, "%s%s\n", clear, text);
		free(text);
		json_decref(j);
		return;
	}
	fprintf(stderr, "%sjobq %s: %s%s%s%s\n", clear, cli_verb, queue ? queue : component, ": ",
	        level == JOBQ_LOG_ERROR  ? "error: "
	        : level == JOBQ_LOG_WARN ? "warning: "
	                                 : "",
	        message);
}

static void
on_log(const jobq_log_record *r, void *user) {
	(void)user;
	write_line(r->level, r->component, r->queue, r->job_id, r->message);
}

void
cli_log_install(cli_log_format format, int quiet) {
	log_format = format;
	log_quiet = quiet;
	jobq_log_set_handler(on_log, NULL);
}

void
cli_log_line(jobq_log_level level, const char *component, const char *queue, const char *job_id,
             const char *fmt, ...) {
	char message[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	write_line(level, component, queue, job_id, message);
}

/* --- reading a store --------------------------------------------------------------------- */

int64_t
cli_wall_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t
cli_counts_total(const jobq_counts *c) {
	return c->waiting + c->active + c->delayed + c->prioritized + c->completed + c->failed +
	       c->paused + c->waiting_children;
}

int
cli_queue_exists(jobq_store *store, const char *name) {
	jobq_strings *names = NULL;
	int found = 0;
	if (jobq_store_list_queues(&names, store) < 0)
		return -1;
	for (size_t i = 0; i < names->count && !found; i++)
		found = strcmp(names->items[i], name) == 0;
	jobq_strings_free(names);
	return found;
}

/* Jobs finished in `st` since `since_ms` among the newest kept (newest first, bounded), and
 * the processing times of the first ones into s->samples (completed only). */
#define SCAN_PAGE 200
#define SCAN_MAX  5000

static int
recent(int64_t *count, cli_qstats *s, jobq_queue *q, jobq_state st, int64_t since_ms) {
	*count = 0;
	for (size_t offset = 0; offset < SCAN_MAX; offset += SCAN_PAGE) {
		jobq_job_list *list = NULL;
		int rc = jobq_queue_list(&list, q, st, offset, SCAN_PAGE);
		int done = 0;
		if (rc < 0)
			return rc;
		size_t n = list ? list->count : 0;
		for (size_t i = 0; i < n; i++) {
			const jobq_job *j = list->jobs[i];
			int64_t fin = jobq_job_finished_on(j), start = jobq_job_processed_on(j);
			if (s && s->nsamples < sizeof(s->samples) / sizeof(s->samples[0]) &&
			    start > 0 && fin >= start) {
				s->samples[s->nsamples++] = fin - start;
				s->samples_sum += fin - start;
			}
			if (fin >= since_ms)
				(*count)++;
			else if (!s || s->nsamples >= sizeof(s->samples) / sizeof(s->samples[0]))
				done = 1;
		}
		jobq_job_list_free(list);
		if (done || n < SCAN_PAGE)
			break;
	}
	return 0;
}

static int
cmp_i64(const void *a, const void *b) {
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int
cli_read_qstats(cli_qstats *s, jobq_queue *q, int64_t now_ms) {
	jobq_job_list *list = NULL;
	int rc;
	memset(s, 0, sizeof(*s));
	if ((rc = jobq_queue_counts(&s->counts, q)) < 0 ||
	    (rc = jobq_queue_is_paused(&s->paused, q)) < 0)
		return rc;
	rc = jobq_queue_count_workers(q);
	s->workers = rc >= 0 ? rc : -1;
	if (rc < 0 && rc != JOBQ_ENOTSUP)
		return rc;
	int64_t kept_done = 0, kept_failed = 0; /* (the samples are taken here too) */
	if ((rc = recent(&kept_done, s, q, JOBQ_STATE_COMPLETED, now_ms - 60000)) < 0 ||
	    (rc = recent(&kept_failed, NULL, q, JOBQ_STATE_FAILED, now_ms - 60000)) < 0)
		return rc;
	/* the true figures where the queue's workers keep metrics, else what the jobs kept say */
	if ((rc = cli_metrics_rate(&s->completed_1m, &s->completed_total, q, JOBQ_STATE_COMPLETED,
	                           now_ms)) < 0)
		return rc;
	if (rc == 0) {
		s->completed_1m = kept_done;
		s->completed_total = -1;
	}
	if ((rc = cli_metrics_rate(&s->failed_1m, &s->failed_total, q, JOBQ_STATE_FAILED, now_ms)) <
	    0)
		return rc;
	if (rc == 0) {
		s->failed_1m = kept_failed;
		s->failed_total = -1;
	}
	qsort(s->samples, s->nsamples, sizeof(s->samples[0]), cmp_i64);
	s->oldest_waiting_ms = -1;
	if ((rc = jobq_queue_list(&list, q, JOBQ_STATE_WAITING, 0, 1)) < 0)
		return rc;
	if (list && list->count > 0) {
		int64_t age = now_ms - jobq_job_timestamp(list->jobs[0]);
		s->oldest_waiting_ms = age > 0 ? age : 0;
	}
	jobq_job_list_free(list);
	return 0;
}

int64_t
cli_quantile(const cli_qstats *s, double q) {
	if (s->nsamples == 0)
		return 0;
	size_t i = (size_t)(q * (double)(s->nsamples - 1) + 0.5);
	return s->samples[i < s->nsamples ? i : s->nsamples - 1];
}

/* The queues named on the command line, else every queue of the store (sorted). */
static int
queue_names(jobq_strings **out, jobq_store *store, char **names, int n) {
	*out = NULL;
	if (n > 0) {
		jobq_strings *l = calloc(1, sizeof(*l));
		if (!l || !(l->items = calloc((size_t)n, sizeof(char *)))) {
			free(l);
			return cli_fail(CLI_EXIT_FAILED, "out of memory");
		}
		for (int i = 0; i < n; i++)
			l->items[l->count++] = strdup(names[i]);
		*out = l;
		return 0;
	}
	int rc = jobq_store_list_queues(out, store);
	return rc < 0 ? cli_lib_fail(rc, "cannot list the queues") : 0;
}

static void
free_names(jobq_strings *l, int own) {
	if (!l)
		return;
	if (!own) {
		jobq_strings_free(l);
		return;
	}
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	free(l);
}

/* Reads the stats of every queue in `names` into a new array. */
static int
read_all(cli_qstats **out, jobq_store *store, const jobq_strings *names) {
	cli_qstats *all = calloc(names->count ? names->count : 1, sizeof(*all));
	int64_t now = cli_wall_ms();
	if (!all)
		return cli_fail(CLI_EXIT_FAILED, "out of memory");
	for (size_t i = 0; i < names->count; i++) {
		jobq_queue *q;
		int rc = jobq_queue_open(&q, store, names->items[i]);
		if (rc >= 0) {
			rc = cli_read_qstats(&all[i], q, now);
			jobq_queue_close(q);
		}
		if (rc < 0) {
			free(all);
			return cli_lib_fail(rc, names->items[i]);
		}
	}
	*out = all;
	return 0;
}

static json_t *
counts_json(const cli_qstats *s) {
	const jobq_counts *c = &s->counts;
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "waiting", (json_int_t)c->waiting,
	                 "active", (json_int_t)c->active, "delayed", (json_int_t)c->delayed,
	                 "prioritized", (json_int_t)c->prioritized, "completed",
	                 (json_int_t)c->completed, "failed", (json_int_t)c->failed, "paused",
	                 (json_int_t)c->paused);
}

/* --- queues, stats ----------------------------------------------------------------------- */

static const cli_opt no_opts[] = {{NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL}};

/* Parses, opens the store and reads the stats of the queues named (or all). */
static int
overview_begin(cli_args *a, jobq_store **store, jobq_strings **names, cli_qstats **all, int argc,
               char **argv, const cli_opt *opts, int max_pos) {
	int rc;
	*store = NULL;
	*names = NULL;
	*all = NULL;
	if ((rc = cli_parse(a, argc, argv, opts, max_pos, 0)) != 0)
		return rc;
	if (cli_want_help())
		return -1;
	if ((rc = cli_open_store(store, cli_url())) != 0)
		return rc;
	for (int i = 0; i < a->npos; i++) {
		if (cli_queue_exists(*store, a->pos[i]) == 0) {
			rc = cli_fail(CLI_EXIT_NOTFOUND, "no queue '%s' in the store", a->pos[i]);
			goto fail;
		}
	}
	if ((rc = queue_names(names, *store, a->pos, a->npos)) != 0)
		goto fail;
	if ((rc = read_all(all, *store, *names)) != 0)
		goto fail;
	return 0;
fail:
	free_names(*names, a->npos > 0);
	*names = NULL;
	jobq_store_close(*store);
	*store = NULL;
	return rc;
}

static void
overview_end(cli_args *a, jobq_store *store, jobq_strings *names, cli_qstats *all) {
	free(all);
	free_names(names, a->npos > 0);
	jobq_store_close(store);
}

int
cli_cmd_queues(int argc, char **argv) {
	cli_args a;
	jobq_store *store;
	jobq_strings *names;
	cli_qstats *all;
	int rc = overview_begin(&a, &store, &names, &all, argc, argv, no_opts, 0);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (cli_g.json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < names->count; i++)
			json_array_append_new(
			    arr, json_pack("{s:s,s:o,s:b}", "name", names->items[i], "counts",
			                   counts_json(&all[i]), "isPaused", all[i].paused));
		rc = cli_print_json(json_pack("{s:o}", "queues", arr));
	} else {
		printf("QUEUE\tWAITING\tACTIVE\tDELAYED\tPRIORITIZED\tCOMPLETED\tFAILED\tPAUSED\n");
		for (size_t i = 0; i < names->count; i++) {
			const jobq_counts *c = &all[i].counts;
			printf("%s\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%s\n", names->items[i],
			       (unsigned long long)(c->waiting + c->paused),
			       (unsigned long long)c->active, (unsigned long long)c->delayed,
			       (unsigned long long)c->prioritized, (unsigned long long)c->completed,
			       (unsigned long long)c->failed, all[i].paused ? "yes" : "no");
		}
		rc = 0;
	}
	overview_end(&a, store, names, all);
	return rc;
}

static json_t *
int_or_null(int64_t v) {
	return v < 0 ? json_null() : json_integer((json_int_t)v);
}

int
cli_cmd_stats(int argc, char **argv) {
	cli_args a;
	jobq_store *store;
	jobq_strings *names;
	cli_qstats *all;
	int rc = overview_begin(&a, &store, &names, &all, argc, argv, no_opts, CLI_MAX_POSITIONAL);
	if (rc)
		return rc < 0 ? 0 : rc;
	json_t *arr = cli_g.json ? json_array() : NULL;
	for (size_t i = 0; i < names->count; i++) {
		const cli_qstats *s = &all[i];
		if (arr) {
			json_array_append_new(
			    arr,
			    json_pack("{s:s,s:o,s:b,s:I,s:I,s:o,s:o,s:o,s:o,s:{s:I,s:I,s:I,s:I}}",
			              "name", names->items[i], "counts", counts_json(s), "isPaused",
			              s->paused, "completedPerMinute", (json_int_t)s->completed_1m,
			              "failedPerMinute", (json_int_t)s->failed_1m, "completedTotal",
			              int_or_null(s->completed_total), "failedTotal",
			              int_or_null(s->failed_total), "workers",
			              int_or_null(s->workers), "oldestWaitingMs",
			              int_or_null(s->oldest_waiting_ms), "processingMs", "count",
			              (json_int_t)s->nsamples, "p50",
			              (json_int_t)cli_quantile(s, 0.5), "p90",
			              (json_int_t)cli_quantile(s, 0.9), "p99",
			              (json_int_t)cli_quantile(s, 0.99)));
			continue;
		}
		const jobq_counts *c = &s->counts;
		char workers[32], oldest[32];
		snprintf(workers, sizeof(workers), s->workers < 0 ? "-" : "%d", s->workers);
		if (s->oldest_waiting_ms < 0)
			snprintf(oldest, sizeof(oldest), "-");
		else
			snprintf(oldest, sizeof(oldest), "%.1f s",
			         (double)s->oldest_waiting_ms / 1000);
		printf("%s%s\n", names->items[i], s->paused ? " (paused)" : "");
		printf(
		    "  waiting %llu  active %llu  delayed %llu  prioritized %llu  completed %llu  "
		    "failed %llu\n",
		    (unsigned long long)(c->waiting + c->paused), (unsigned long long)c->active,
		    (unsigned long long)c->delayed, (unsigned long long)c->prioritized,
		    (unsigned long long)c->completed, (unsigned long long)c->failed);
		printf("  completed/min %lld  failed/min %lld  workers %s  oldest waiting %s\n",
		       (long long)s->completed_1m, (long long)s->failed_1m, workers, oldest);
		if (s->completed_total >= 0 || s->failed_total >= 0)
			printf("  metrics: completed %lld  failed %lld in all\n",
			       (long long)(s->completed_total < 0 ? 0 : s->completed_total),
			       (long long)(s->failed_total < 0 ? 0 : s->failed_total));
		printf("  processing ms (last %zu): p50 %lld  p90 %lld  p99 %lld\n", s->nsamples,
		       (long long)cli_quantile(s, 0.5), (long long)cli_quantile(s, 0.9),
		       (long long)cli_quantile(s, 0.99));
	}
	rc = arr ? cli_print_json(json_pack("{s:o}", "queues", arr)) : 0;
	overview_end(&a, store, names, all);
	return rc;
}

/* --- Prometheus -------------------------------------------------------------------------- */

/* A label value with \, " and newline escaped as the text format wants. */
static void
label(FILE *f, const char *s) {
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void
family(FILE *f, const char *name, const char *type, const char *help) {
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
sample(FILE *f, const char *name, const char *q, const char *extra_label, const char *extra,
       double v) {
	fprintf(f, "%s{queue=\"", name);
	label(f, q);
	fputc('"', f);
	if (extra_label) {
		fprintf(f, ",%s=\"", extra_label);
		label(f, extra);
		fputc('"', f);
	}
	fprintf(f, "} %.17g\n", v);
}

/* A family of one sample per queue: the int64_t at `off` of its stats (negative: none). */
static void
per_queue(FILE *f, const char *name, const char *type, const char *help, const jobq_strings *names,
          const cli_qstats *all, size_t off) {
	family(f, name, type, help);
	for (size_t i = 0; i < names->count; i++) {
		int64_t v;
		memcpy(&v, (const char *)&all[i] + off, sizeof(v));
		if (v >= 0)
			sample(f, name, names->items[i], NULL, NULL, (double)v);
	}
}

int
cli_prometheus(char **out, jobq_store *store, char **queues, int nqueues) {
	jobq_strings *names;
	cli_qstats *all;
	char *text = NULL;
	size_t len = 0;
	int rc = queue_names(&names, store, queues, nqueues);
	if (rc)
		return rc;
	if ((rc = read_all(&all, store, names)) != 0) {
		free_names(names, nqueues > 0);
		return rc;
	}
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		free(all);
		free_names(names, nqueues > 0);
		return cli_fail(CLI_EXIT_FAILED, "out of memory");
	}
	static const char *const states[] = {"waiting",   "active", "delayed", "prioritized",
	                                     "completed", "failed", "paused"};
	family(f, "jobq_up", "gauge", "1 when the store answered this scrape.");
	fprintf(f, "jobq_up 1\n");
	family(f, "jobq_jobs", "gauge",
	       "Jobs in each state (completed and failed: the jobs the queue keeps).");
	for (size_t i = 0; i < names->count; i++) {
		const jobq_counts *c = &all[i].counts;
		const uint64_t v[] = {c->waiting,   c->active, c->delayed, c->prioritized,
		                      c->completed, c->failed, c->paused};
		for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++)
			sample(f, "jobq_jobs", names->items[i], "state", states[k], (double)v[k]);
	}
	family(f, "jobq_queue_paused", "gauge", "1 when the queue is paused.");
	for (size_t i = 0; i < names->count; i++)
		sample(f, "jobq_queue_paused", names->items[i], NULL, NULL, all[i].paused);
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} counted[] = {
	    {"jobq_completed_last_minute", "gauge",
	     "Jobs completed in the last 60 seconds (from the metrics the workers keep, else "
	     "among the jobs kept).",
	     offsetof(cli_qstats, completed_1m)},
	    {"jobq_failed_last_minute", "gauge",
	     "Jobs failed for good in the last 60 seconds (from the metrics the workers keep, "
	     "else among the jobs kept).",
	     offsetof(cli_qstats, failed_1m)},
	    {"jobq_completed_total", "counter",
	     "Jobs completed since the workers began keeping metrics (queues with metrics).",
	     offsetof(cli_qstats, completed_total)},
	    {"jobq_failed_total", "counter",
	     "Jobs failed for good since the workers began keeping metrics (queues with metrics).",
	     offsetof(cli_qstats, failed_total)},
	};
	for (size_t k = 0; k < sizeof(counted) / sizeof(counted[0]); k++)
		per_queue(f, counted[k].name, counted[k].type, counted[k].help, names, all,
		          counted[k].off);
	family(f, "jobq_oldest_waiting_age_seconds", "gauge",
	       "Age of the oldest waiting job (0 when none waits).");
	for (size_t i = 0; i < names->count; i++)
		sample(f, "jobq_oldest_waiting_age_seconds", names->items[i], NULL, NULL,
		       all[i].oldest_waiting_ms < 0 ? 0 : (double)all[i].oldest_waiting_ms / 1000);
	family(f, "jobq_processing_seconds", "summary",
	       "Processing time of the newest completed jobs (at most 1000 per queue).");
	for (size_t i = 0; i < names->count; i++) {
		static const double qs[] = {0.5, 0.9, 0.99};
		static const char *const qn[] = {"0.5", "0.9", "0.99"};
		for (size_t k = 0; k < 3; k++)
			sample(f, "jobq_processing_seconds", names->items[i], "quantile", qn[k],
			       (double)cli_quantile(&all[i], qs[k]) / 1000);
		sample(f, "jobq_processing_seconds_sum", names->items[i], NULL, NULL,
		       (double)all[i].samples_sum / 1000);
		sample(f, "jobq_processing_seconds_count", names->items[i], NULL, NULL,
		       (double)all[i].nsamples);
	}
	family(f, "jobq_workers", "gauge", "Workers connected to the queue (Redis only).");
	for (size_t i = 0; i < names->count; i++)
		if (all[i].workers >= 0)
			sample(f, "jobq_workers", names->items[i], NULL, NULL, all[i].workers);
	fclose(f);
	free(all);
	free_names(names, nqueues > 0);
	*out = text;
	return 0;
}

int
cli_cmd_metrics(int argc, char **argv) {
	int prometheus = 0;
	int64_t start = 0, end = -1;
	const cli_opt opts[] = {
	    {"prometheus", 0, CLI_OPT_FLAG, &prometheus, 0, 0, 0, NULL},
	    {"start", 0, CLI_OPT_INT, &start, -JOBQ_METRICS_MAX_POINTS, JOBQ_METRICS_MAX_POINTS, 0,
	     NULL},
	    {"end", 0, CLI_OPT_INT, &end, -JOBQ_METRICS_MAX_POINTS, JOBQ_METRICS_MAX_POINTS, 0,
	     NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	jobq_store *store;
	char *text = NULL;
	int rc;
	if ((rc = cli_parse(&a, argc, argv, opts, CLI_MAX_POSITIONAL, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if (!prometheus && a.npos != 1)
		return cli_usage_fail("name one QUEUE, or use --prometheus");
	if ((rc = cli_open_store(&store, cli_url())) != 0)
		return rc;
	if (!prometheus) {
		rc = cli_metrics_queue(store, a.pos[0], start, end);
		jobq_store_close(store);
		return rc;
	}
	for (int i = 0; i < a.npos && rc == 0; i++)
		if (cli_queue_exists(store, a.pos[i]) == 0)
			rc = cli_fail(CLI_EXIT_NOTFOUND, "no queue '%s' in the store", a.pos[i]);
	if (rc == 0 && (rc = cli_prometheus(&text, store, a.pos, a.npos)) == 0)
		fputs(text, stdout);
	free(text);
	jobq_store_close(store);
	return rc;
}

/* --- health ------------------------------------------------------------------------------ */

int
cli_cmd_health(int argc, char **argv) {
	int64_t min_workers = 0;
	const cli_opt opts[] = {
	    {"min-workers", 0, CLI_OPT_INT, &min_workers, 0, 1000000, 0, NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	jobq_store *store;
	jobq_strings *names = NULL;
	json_t *arr = NULL;
	int rc, bad = 0;
	if ((rc = cli_parse(&a, argc, argv, opts, CLI_MAX_POSITIONAL, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if ((rc = cli_open_store(&store, cli_url())) != 0)
		return rc;
	/* Listing the queues is the store's answer (a round trip on Redis, a read on LMDB). */
	rc = jobq_store_list_queues(&names, store);
	if (rc < 0) {
		rc =
		    cli_fail(CLI_EXIT_STORE, "the store does not answer: %s", jobq_error_message());
		goto out;
	}
	for (int i = 0; i < a.npos; i++) {
		int found = 0;
		for (size_t k = 0; k < names->count && !found; k++)
			found = strcmp(names->items[k], a.pos[i]) == 0;
		if (!found) {
			rc = cli_fail(CLI_EXIT_NOTFOUND, "no queue '%s' in the store", a.pos[i]);
			goto out;
		}
	}
	arr = json_array();
	for (size_t k = 0; k < (a.npos ? (size_t)a.npos : names->count); k++) {
		const char *name = a.npos ? a.pos[k] : names->items[k];
		jobq_queue *q;
		if ((rc = jobq_queue_open(&q, store, name)) < 0) {
			rc = cli_lib_fail(rc, name);
			goto out;
		}
		int w = jobq_queue_count_workers(q);
		jobq_queue_close(q);
		if (w == JOBQ_ENOTSUP && min_workers > 0) {
			rc = cli_usage_fail(
			    "the %s backend cannot count workers (--min-workers needs "
			    "Redis)",
			    jobq_store_backend_name(store));
			goto out;
		}
		if (w < 0 && w != JOBQ_ENOTSUP) {
			rc = cli_fail(CLI_EXIT_STORE, "the store does not answer: %s",
			              jobq_error_message());
			goto out;
		}
		if (w >= 0 && w < min_workers) {
			bad++;
			if (!cli_g.json)
				fprintf(stderr,
				        "jobq health: queue '%s' has %d workers, fewer than %lld\n",
				        name, w, (long long)min_workers);
		}
		json_array_append_new(
		    arr, json_pack("{s:s,s:o}", "name", name, "workers", int_or_null(w)));
	}
	if (cli_g.json) {
		cli_print_json(json_pack("{s:b,s:s,s:O}", "ok", bad == 0, "backend",
		                         jobq_store_backend_name(store), "queues", arr));
	} else if (bad == 0) {
		printf("ok: %s store answers, %zu queues\n", jobq_store_backend_name(store),
		       a.npos ? (size_t)a.npos : names->count);
	}
	rc = bad ? CLI_EXIT_FAILED : 0;
out:
	json_decref(arr);
	jobq_strings_free(names);
	jobq_store_close(store);
	return rc;
}

/* --- top --------------------------------------------------------------------------------- */

static struct termios saved_tty;
static int tty_raw;
static volatile sig_atomic_t top_stop;

static void
on_stop_signal(int sig) {
	(void)sig;
	top_stop = 1;
}

static void
tty_restore(void) {
	if (tty_raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
		tty_raw = 0;
	}
}

/* One frame: the screen cleared, a header line, one row per queue. */
static void
top_frame(FILE *f, jobq_store *store, int64_t interval, char **only, int nonly) {
	jobq_strings *names = NULL;
	char t[64];
	fputs("\033[H\033[2J", f);
	fprintf(f, "jobq top  %s  %s  every %lld ms  (q quits)\r\n", cli_url_shown(cli_url()),
	        cli_fmt_time(t, sizeof(t), cli_wall_ms()), (long long)interval);
	if (nonly > 0) {
		names = calloc(1, sizeof(*names));
		if (names) {
			names->items = only;
			names->count = (size_t)nonly;
		}
	} else if (jobq_store_list_queues(&names, store) < 0) {
		fprintf(f, "\r\nthe store does not answer: %s\r\n", jobq_error_message());
		fflush(f);
		return;
	}
	fprintf(f, "\r\n%-20s %8s %7s %7s %7s %9s %7s %6s %6s %7s %8s %7s\r\n", "QUEUE", "WAITING",
	        "ACTIVE", "DELAYED", "PRIO", "COMPLETED", "FAILED", "DONE/m", "FAIL/m", "WORKERS",
	        "OLDEST", "P50ms");
	cli_qstats *one = calloc(1, sizeof(*one));
	int64_t now = cli_wall_ms();
	for (size_t i = 0; one && names && i < names->count; i++) {
		jobq_queue *q;
		char workers[16], oldest[16];
		if (jobq_queue_open(&q, store, names->items[i]) < 0)
			continue;
		int rc = cli_read_qstats(one, q, now);
		jobq_queue_close(q);
		if (rc < 0) {
			fprintf(f, "%-20.20s %s\r\n", names->items[i], jobq_error_message());
			continue;
		}
		const jobq_counts *c = &one->counts;
		snprintf(workers, sizeof(workers), one->workers < 0 ? "-" : "%d", one->workers);
		if (one->oldest_waiting_ms < 0)
			snprintf(oldest, sizeof(oldest), "-");
		else
			snprintf(oldest, sizeof(oldest), "%.1fs",
			         (double)one->oldest_waiting_ms / 1000);
		fprintf(
		    f,
		    "%-20.20s %8llu %7llu %7llu %7llu %9llu %7llu %6lld %6lld %7s %8s %7lld%s\r\n",
		    names->items[i], (unsigned long long)(c->waiting + c->paused),
		    (unsigned long long)c->active, (unsigned long long)c->delayed,
		    (unsigned long long)c->prioritized, (unsigned long long)c->completed,
		    (unsigned long long)c->failed, (long long)one->completed_1m,
		    (long long)one->failed_1m, workers, oldest, (long long)cli_quantile(one, 0.5),
		    one->paused ? "  paused" : "");
	}
	if (!names || names->count == 0)
		fprintf(f, "(no queues)\r\n");
	free(one);
	if (nonly > 0)
		free(names); /* the items are argv's */
	else
		jobq_strings_free(names);
	fflush(f);
}

int
cli_cmd_top(int argc, char **argv) {
	int64_t interval = 1000, iterations = 0;
	const cli_opt opts[] = {
	    {"interval", 0, CLI_OPT_INT, &interval, 100, 3600000, 0, NULL},
	    {"iterations", 'n', CLI_OPT_INT, &iterations, 1, INT64_MAX, 0, NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	jobq_store *store;
	int rc;
	if ((rc = cli_parse(&a, argc, argv, opts, CLI_MAX_POSITIONAL, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if ((rc = cli_open_store(&store, cli_url())) != 0)
		return rc;
	signal(SIGINT, on_stop_signal);
	signal(SIGTERM, on_stop_signal);
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tty) == 0) {
		struct termios raw = saved_tty;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
			tty_raw = 1;
	}
	int stdin_open = 1;
	for (int64_t n = 0; !top_stop && (iterations == 0 || n < iterations); n++) {
		top_frame(stdout, store, interval, a.pos, a.npos);
		if (iterations > 0 && n + 1 >= iterations)
			break;
		int64_t until = cli_now_us() + interval * 1000;
		/* sleep until the next frame, waking for a key */
		for (int64_t left = interval; !top_stop && left > 0;
		     left = (until - cli_now_us()) / 1000) {
			struct pollfd p = {STDIN_FILENO, POLLIN, 0};
			int r = poll(&p, stdin_open ? 1 : 0, (int)left);
			if (r > 0) {
				char ch;
				ssize_t got = read(STDIN_FILENO, &ch, 1);
				if (got == 1 && (ch == 'q' || ch == 'Q' || ch == 3 /* Ctrl-C */))
					top_stop = 1;
				else if (got <= 0)
					stdin_open = 0; /* no terminal: just refresh */
			} else if (r < 0 && errno != EINTR) {
				break;
			}
		}
	}
	tty_restore();
	if (!iterations)
		fputs("\r\n", stdout);
	jobq_store_close(store);
	return 0;
}

/* --- progress, log, logs ----------------------------------------------------------------- */

/* Parses QUEUE ID (and a third word named by `missing3` when not NULL) and opens the queue.
 * Returns 0, an exit code, or -1 when help was printed. */
static int
job_verb_begin(cli_args *a, int argc, char **argv, const char *missing3) {
	int npos = missing3 ? 3 : 2, rc;
	if ((rc = cli_parse(a, argc, argv, no_opts, npos, 0)) != 0)
		return rc;
	if (cli_want_help())
		return -1;
	if (a->npos < npos)
		return cli_usage_fail("missing %s", a->npos < 1   ? "QUEUE"
		                                    : a->npos < 2 ? "ID"
		                                                  : missing3);
	return 0;
}

/* The exit code for the library's answer `rc`, and the queue closed. */
static int
job_verb_end(int rc, const cli_args *a, const char *what, jobq_store *store, jobq_queue *q) {
	if (rc == JOBQ_ENOTFOUND)
		rc = cli_fail(CLI_EXIT_NOTFOUND, "no job '%s' in queue '%s'", a->pos[1], a->pos[0]);
	else if (rc < 0)
		rc = cli_lib_fail(rc, what);
	cli_close(store, q);
	return rc;
}

int
cli_cmd_progress(int argc, char **argv) {
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	json_t *v;
	int rc = job_verb_begin(&a, argc, argv, "the progress (JSON, e.g. 42 or '{\"done\":3}')");
	if (rc)
		return rc < 0 ? 0 : rc;
	if (!(v = cli_json_parse(a.pos[2], strlen(a.pos[2]))))
		return cli_usage_fail("the progress is not JSON: '%s'", a.pos[2]);
	json_decref(v);
	if ((rc = cli_open_queue(&store, &q, a.pos[0])) != 0)
		return rc;
	rc = jobq_queue_update_progress(q, a.pos[1], a.pos[2]);
	return job_verb_end(rc < 0 ? rc : 0, &a, "cannot set the progress", store, q);
}

int
cli_cmd_log(int argc, char **argv) {
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	int rc = job_verb_begin(&a, argc, argv, "LINE ('-' reads lines from stdin)");
	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = cli_open_queue(&store, &q, a.pos[0])) != 0)
		return rc;
	if (strcmp(a.pos[2], "-") != 0) {
		rc = jobq_queue_add_log(q, a.pos[1], a.pos[2]);
	} else {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;
		rc = 0;
		while (rc >= 0 && (n = getline(&line, &cap, stdin)) >= 0) {
			if (n > 0 && line[n - 1] == '\n')
				line[n - 1] = '\0';
			rc = jobq_queue_add_log(q, a.pos[1], line);
		}
		free(line);
	}
	return job_verb_end(rc < 0 ? rc : 0, &a, "cannot add the log line", store, q);
}

int
cli_cmd_logs(int argc, char **argv) {
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	jobq_strings *lines = NULL;
	int rc = job_verb_begin(&a, argc, argv, NULL);
	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = cli_open_queue(&store, &q, a.pos[0])) != 0)
		return rc;
	rc = jobq_queue_get_logs(&lines, q, a.pos[1], 0, 0);
	if (rc >= 0 && cli_g.json) {
		json_t *arr = json_array();
		for (size_t i = 0; lines && i < lines->count; i++)
			json_array_append_new(
			    arr, cli_json_string(lines->items[i], strlen(lines->items[i])));
		rc = cli_print_json(json_pack("{s:o,s:I}", "logs", arr, "count",
		                              (json_int_t)(lines ? lines->count : 0)));
	} else if (rc >= 0) {
		for (size_t i = 0; lines && i < lines->count; i++)
			printf("%s\n", lines->items[i]);
		rc = 0;
	}
	jobq_strings_free(lines);
	return job_verb_end(rc, &a, "cannot read the logs", store, q);
}
