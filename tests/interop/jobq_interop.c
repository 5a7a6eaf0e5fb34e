/*
 * The jobq side of the BullMQ interop test (driven by interop.js):
 *
 *   jobq_interop add URL QUEUE [events]  adds the jobq-produced job set (or the events
 *                                    check's set); prints {"name": "id", ...}
 *   jobq_interop remove URL QUEUE ID
 *   jobq_interop work URL QUEUE MS [POINTS]  runs a jobq worker (counting metrics with
 *                                    POINTS data points if given) until the queue has had
 *                                    nothing waiting, delayed or active for MS ms; prints stats
 *   jobq_interop metrics URL QUEUE KIND  prints jobq_queue_metrics of completed|failed in
 *                                    the shape of BullMQ's getMetrics
 *   jobq_interop stall URL QUEUE     fetches one job with a 300 ms lock and exits without
 *                                    finishing it (a crashed worker); prints its id
 *   jobq_interop serve URL QUEUE CONC LOCK_MS [LIMIT_MAX LIMIT_DURATION]
 *                                    runs a worker (stalled check every 300 ms; with the rate
 *                                    limiter given) until stdin ends; prints "ready", then
 *                                    "start <id>" / "done <id>" per job, and a stats line at
 *                                    the end
 *   jobq_interop limit URL QUEUE MAX DURATION CONCURRENCY
 *                                    sets the global rate limit and concurrency (0: removes)
 *   jobq_interop limits URL QUEUE    prints {"max","duration","concurrency"} (null: none)
 *   jobq_interop addn URL QUEUE N NAME  adds N jobs named NAME in one bulk; prints the ids
 *   jobq_interop dedup URL QUEUE DEDUP_ID  adds one job with that dedup id; prints
 *                                    {"id":..., "outcome":...}
 *   jobq_interop pause|resume URL QUEUE
 *   jobq_interop progress URL QUEUE ID JSON LINE  sets a job's progress, appends a log line
 *   jobq_interop inspect URL QUEUE ID...  prints jobq's view: counts, paused, and per job
 *                                    state, progress, logs, attempts, result, failedReason
 *   jobq_interop events URL QUEUE    prints every event of the queue as read by
 *                                    jobq_events_read (JSON array)
 *   jobq_interop schedule URL QUEUE ID KEY=VALUE...  creates or updates a job scheduler
 *                                    (keys: every offset pattern tz limit start end name
 *                                    data attempts remove_on_complete); prints {"id": ...}
 *                                    with its iteration's id
 *   jobq_interop schedulers URL QUEUE  prints jobq's view of the schedulers (JSON array)
 *   jobq_interop unschedule URL QUEUE ID
 *   jobq_interop addopt URL QUEUE NAME DATA KEY=VALUE...  adds one job (keys: id attempts
 *                                    stl (stack_trace_limit, "none" for none) backoff
 *                                    (TYPE:MS) jitter max); prints {"id": ...}, or
 *                                    {"error": NAME, "message": ...} if the add is refused
 *   jobq_interop flow URL QUEUE CQUEUE  adds a flow: a root in QUEUE with children "c1",
 *                                    "fail-always" (ignoreDependencyOnFailure) and "c3" in
 *                                    CQUEUE and "sub" in QUEUE, whose child "g" is in CQUEUE;
 *                                    prints {"root": id, "c1": id, ...}
 *   jobq_interop child URL QUEUE PQUEUE PID  adds job "late" to QUEUE as a child of PID
 *   jobq_interop deps URL QUEUE ID   prints the job's dependencies as jobq reads them, with
 *                                    BullMQ's getDependencies names
 *
 * Worker behaviour by job name: "fail-always" fails every attempt ("boom <n>"), "flaky"
 * fails its first two attempts, "progress" reports progress and logs, "rate-limit" rate-limits
 * the queue for 400 ms in its first attempt (jobq_job_rate_limit), "mixed" takes 1 ms and
 * "slow" 20 ms of work, "hang" 60 s (for kill -9 tests), anything else completes with
 * {"name": <name>, "data": <data>}.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq.h"

static int
die(const char *what, int rc) {
	fprintf(stderr, "jobq_interop: %s: %s (%s)\n", what, jobq_error_name(rc),
	        jobq_error_message());
	return 1;
}

static void
sleep_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int
add_one(jobq_queue *q, const char *name, const char *data, const jobq_job_options *o, int *first) {
	jobq_job_id id;
	int rc = jobq_queue_add(&id, q, name, data, strlen(data), o);
	if (rc < 0)
		return die(name, rc);
	printf("%s\"%s\":\"%s\"", *first ? "" : ",", name, id.str);
	*first = 0;
	return 0;
}

static int
cmd_add(jobq_queue *q) {
	int first = 1, bad = 0;
	jobq_job_options o;
	printf("{");
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	bad |= add_one(q, "std", "{\"a\":1,\"s\":\"\xc3\xbcnicode \xe2\x9c\x93\",\"n\":[1,2.5]}",
	               &o, &first);
	bad |= add_one(q, "string", "\"just a string\"", &o, &first);
	o.job_id = "my-id";
	bad |= add_one(q, "custom", "{\"c\":true}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.priority = 5;
	bad |= add_one(q, "prio5", "{}", &o, &first);
	o.priority = 2;
	bad |= add_one(q, "prio2", "{}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.lifo = 1;
	bad |= add_one(q, "lifo", "{}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.delay_ms = 1500;
	bad |= add_one(q, "delayed", "{\"d\":1}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.attempts = 3;
	o.backoff.type = JOBQ_BACKOFF_FIXED;
	o.backoff.delay_ms = 200;
	bad |= add_one(q, "retry-fixed", "{}", &o, &first);
	o.backoff.type = JOBQ_BACKOFF_EXPONENTIAL;
	o.backoff.delay_ms = 100;
	bad |= add_one(q, "retry-exp", "{}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.remove_on_complete.mode = JOBQ_KEEP_NONE;
	bad |= add_one(q, "roc", "{}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.remove_on_fail.mode = JOBQ_KEEP_NONE;
	bad |= add_one(q, "rof", "{}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.remove_on_complete.mode = JOBQ_KEEP_LIMIT;
	o.remove_on_complete.count = 1;
	o.remove_on_complete.age_ms = -1;
	bad |= add_one(q, "keep1", "{}", &o, &first);
	printf("}\n");
	return bad;
}

/* The job set of the events check: every lifecycle event a jobq worker produces. */
static int
cmd_add_events(jobq_queue *q) {
	int first = 1, bad = 0;
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	printf("{");
	bad |= add_one(q, "std", "{\"a\":1}", &o, &first);
	bad |= add_one(q, "progress", "{}", &o, &first);
	o.attempts = 3;
	o.backoff.type = JOBQ_BACKOFF_FIXED;
	o.backoff.delay_ms = 100;
	bad |= add_one(q, "flaky", "{}", &o, &first);
	o.backoff.type = JOBQ_BACKOFF_EXPONENTIAL;
	o.backoff.delay_ms = 50;
	bad |= add_one(q, "fail-always", "{}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.delay_ms = 300;
	bad |= add_one(q, "delayed", "{}", &o, &first);
	o.delay_ms = 600000;
	bad |= add_one(q, "remove-me", "{}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.job_id = "ev-custom";
	bad |= add_one(q, "custom", "{}", &o, &first);
	bad |= add_one(q, "custom-dup", "{}", &o, &first);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	o.dedup_id = "ev-dd";
	bad |= add_one(q, "dd-owner", "{}", &o, &first);
	bad |= add_one(q, "dd-dup", "{}", &o, &first);
	printf("}\n");
	return bad;
}

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static int announce; /* serve: print start/done lines */

static void
say(const char *what, const char *id) {
	if (!announce)
		return;
	pthread_mutex_lock(&out_mu);
	printf("%s %s\n", what, id);
	fflush(stdout);
	pthread_mutex_unlock(&out_mu);
}

static int
handler(jobq_job *job, void *payload) {
	(void)payload;
	const char *name = jobq_job_name(job);
	uint32_t made = jobq_job_attempts_made(job);
	say("start", jobq_job_id_of(job));
	if (strcmp(name, "mixed") == 0 || strcmp(name, "slow") == 0 || strcmp(name, "hang") == 0) {
		/* simulated work, not a wait for a condition */
		long ms = name[0] == 'm' ? 1 : name[0] == 's' ? 20 : 60000;
		for (long t = 0; t < ms && !jobq_job_is_cancelled(job); t += 1)
			sleep_ms(1);
		say("done", jobq_job_id_of(job));
		return jobq_job_set_result(job, "{\"by\":\"jobq\"}", 13);
	}
	if (strcmp(name, "fail-always") == 0)
		return jobq_job_set_error(job, 0, "boom %u", made);
	if (strcmp(name, "flaky") == 0 && made < 2)
		return jobq_job_set_error(job, 0, "flaky %u", made);
	if (strcmp(name, "rate-limit") == 0 && jobq_job_attempts_started(job) == 1) {
		say("limited", jobq_job_id_of(job));
		return jobq_job_rate_limit(job, 400);
	}
	if (strcmp(name, "progress") == 0) {
		jobq_job_update_progress(job, "42");
		jobq_job_update_progress(job, "{\"step\":\"two\"}");
		jobq_job_log(job, "line one");
		jobq_job_log(job, "line two");
	}
	size_t len = 0;
	const char *data = jobq_job_data(job, &len);
	size_t n = strlen(name) + len + 32;
	char *out = malloc(n);
	if (out == NULL)
		return jobq_job_set_error(job, 0, "out of memory");
	snprintf(out, n, "{\"name\":\"%s\",\"data\":%.*s}", name, (int)len, data);
	int rc = jobq_job_set_result(job, out, strlen(out));
	free(out);
	say("done", jobq_job_id_of(job));
	return rc < 0 ? rc : 0;
}

static int
cmd_limit(jobq_queue *q, long max, long duration, long conc) {
	int rc =
	    max > 0 ? jobq_queue_set_rate_limit(q, max, duration) : jobq_queue_remove_rate_limit(q);
	if (rc >= 0)
		rc = conc > 0 ? jobq_queue_set_concurrency(q, conc)
		              : jobq_queue_remove_concurrency(q);
	if (rc < 0)
		return die("limit", rc);
	printf("{}\n");
	return 0;
}

static void
print_or_null(const char *key, int64_t v, const char *sep) {
	if (v > 0)
		printf("\"%s\":%lld%s", key, (long long)v, sep);
	else
		printf("\"%s\":null%s", key, sep);
}

static int
cmd_limits(jobq_queue *q) {
	jobq_queue_limits l;
	int rc = jobq_queue_get_limits(&l, q);
	if (rc < 0)
		return die("limits", rc);
	printf("{");
	print_or_null("max", l.max, ",");
	print_or_null("duration", l.duration_ms, ",");
	print_or_null("concurrency", l.concurrency, "}\n");
	return 0;
}

static int
cmd_work(jobq_queue *q, long idle_ms, unsigned points) {
	jobq_worker *w = NULL;
	jobq_worker_options wo = JOBQ_WORKER_OPTIONS_INIT;
	wo.concurrency = 2;
	wo.metrics_max_data_points = points;
	wo.stalled_interval_ms = 300;
	int rc = jobq_worker_new(&w, q, handler, NULL, &wo);
	if (rc < 0 || (rc = jobq_worker_start(w)) < 0)
		return die("worker", rc);
	long quiet = 0;
	for (long waited = 0; waited < 60000 && quiet < idle_ms; waited += 50) {
		jobq_counts c;
		if (jobq_queue_counts(&c, q) < 0)
			break;
		if (c.waiting + c.active + c.delayed + c.prioritized == 0)
			quiet += 50;
		else
			quiet = 0;
		sleep_ms(50);
	}
	jobq_worker_stats st;
	jobq_worker_get_stats(&st, w);
	jobq_worker_close(w, 5000);
	jobq_worker_free(w);
	printf("{\"completed\":%llu,\"failed\":%llu}\n", (unsigned long long)st.completed,
	       (unsigned long long)st.failed);
	return 0;
}

static int
cmd_metrics(jobq_queue *q, const char *kind) {
	jobq_metrics *m = NULL;
	int rc = jobq_queue_metrics(
	    &m, q, strcmp(kind, "failed") == 0 ? JOBQ_STATE_FAILED : JOBQ_STATE_COMPLETED, 0, -1);
	if (rc < 0)
		return die("metrics", rc);
	printf("{\"meta\":{\"count\":%lld,\"prevTS\":%lld,\"prevCount\":%lld},\"data\":[",
	       (long long)m->count, (long long)m->prev_ts, (long long)m->prev_count);
	for (size_t i = 0; i < m->data_len; i++)
		printf("%s%lld", i ? "," : "", (long long)m->data[i]);
	printf("],\"count\":%zu}\n", m->points);
	jobq_metrics_free(m);
	return 0;
}

static int
cmd_stall(jobq_queue *q) {
	jobq_job *job = NULL;
	int rc = jobq_queue_fetch(&job, q, 300);
	if (rc < 0)
		return die("fetch", rc);
	printf("{\"id\":\"%s\"}\n", jobq_job_id_of(job));
	jobq_job_free(job);
	return 0;
}

static int
cmd_serve(jobq_queue *q, unsigned conc, long lock_ms, long limit_max, long limit_duration) {
	jobq_worker *w = NULL;
	jobq_worker_options wo = JOBQ_WORKER_OPTIONS_INIT;
	wo.concurrency = conc ? conc : 1;
	wo.limiter.max = limit_max;
	wo.limiter.duration_ms = limit_duration;
	wo.stalled_interval_ms = 300;
	if (lock_ms > 0)
		wo.lock_ms = lock_ms;
	announce = 1;
	int rc = jobq_worker_new(&w, q, handler, NULL, &wo);
	if (rc < 0 || (rc = jobq_worker_start(w)) < 0)
		return die("worker", rc);
	say("ready", "-");
	char buf[256];
	while (fgets(buf, sizeof(buf), stdin) != NULL) {
	}
	jobq_worker_stats st;
	jobq_worker_get_stats(&st, w);
	jobq_worker_close(w, 5000);
	jobq_worker_free(w);
	pthread_mutex_lock(&out_mu);
	printf("stats {\"completed\":%llu,\"failed\":%llu}\n", (unsigned long long)st.completed,
	       (unsigned long long)st.failed);
	pthread_mutex_unlock(&out_mu);
	return 0;
}

static int
cmd_addn(jobq_queue *q, long n, const char *name) {
	jobq_job_spec *specs = calloc((size_t)n, sizeof(*specs));
	jobq_job_id *ids = calloc((size_t)n, sizeof(*ids));
	if (specs == NULL || ids == NULL)
		return die("addn", JOBQ_ENOMEM);
	for (long i = 0; i < n; i++)
		specs[i] = (jobq_job_spec){name, "{\"c\":\"jobq\"}", 12, NULL};
	int rc = jobq_queue_add_bulk(ids, NULL, q, specs, (size_t)n);
	if (rc < 0)
		return die("addn", rc);
	printf("[");
	for (long i = 0; i < n; i++)
		printf("%s\"%s\"", i ? "," : "", ids[i].str);
	printf("]\n");
	free(specs);
	free(ids);
	return 0;
}

static int
cmd_dedup(jobq_queue *q, const char *dedup_id) {
	jobq_job_options o = JOBQ_JOB_OPTIONS_INIT;
	o.dedup_id = dedup_id;
	jobq_job_id id;
	int rc = jobq_queue_add(&id, q, "dedup", "{\"by\":\"jobq\"}", 13, &o);
	if (rc < 0)
		return die("dedup", rc);
	printf("{\"id\":\"%s\",\"outcome\":%d}\n", id.str, rc);
	return 0;
}

/* Prints `s` as a JSON string (the test's data is UTF-8 already). */
static void
put_json(const char *s) {
	if (s == NULL) {
		printf("null");
		return;
	}
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static int
cmd_inspect(jobq_queue *q, int n, char **ids) {
	jobq_counts c;
	int paused = 0;
	int rc = jobq_queue_counts(&c, q);
	if (rc < 0 || (rc = jobq_queue_is_paused(&paused, q)) < 0)
		return die("counts", rc);
	printf("{\"counts\":{\"waiting\":%llu,\"active\":%llu,\"delayed\":%llu,"
	       "\"prioritized\":%llu,\"completed\":%llu,\"failed\":%llu,\"paused\":%llu},"
	       "\"isPaused\":%s,\"jobs\":{",
	       (unsigned long long)c.waiting, (unsigned long long)c.active,
	       (unsigned long long)c.delayed, (unsigned long long)c.prioritized,
	       (unsigned long long)c.completed, (unsigned long long)c.failed,
	       (unsigned long long)c.paused, paused ? "true" : "false");
	for (int i = 0; i < n; i++) {
		jobq_job *job = NULL;
		printf("%s", i ? "," : "");
		put_json(ids[i]);
		printf(":");
		if (jobq_queue_get_job(&job, q, ids[i]) < 0) {
			printf("null");
			continue;
		}
		jobq_strings *logs = NULL;
		jobq_queue_get_logs(&logs, q, ids[i], 0, 0);
		printf("{\"state\":");
		put_json(jobq_state_name(jobq_job_state(job)));
		printf(",\"name\":");
		put_json(jobq_job_name(job));
		printf(",\"progress\":");
		put_json(jobq_job_progress(job));
		printf(",\"result\":");
		put_json(jobq_job_result(job));
		printf(",\"failedReason\":");
		put_json(jobq_job_failed_reason(job));
		printf(",\"stacktrace\":[");
		for (size_t k = 0; k < jobq_job_stacktrace_count(job); k++) {
			printf("%s", k ? "," : "");
			put_json(jobq_job_stacktrace_at(job, k));
		}
		printf("]");
		printf(",\"attemptsMade\":%u,\"attemptsStarted\":%u,\"logs\":[",
		       jobq_job_attempts_made(job), jobq_job_attempts_started(job));
		for (size_t k = 0; logs != NULL && k < logs->count; k++) {
			printf("%s", k ? "," : "");
			put_json(logs->items[k]);
		}
		printf("]}");
		jobq_strings_free(logs);
		jobq_job_free(job);
	}
	printf("}}\n");
	return 0;
}

static int
cmd_events(jobq_queue *q) {
	char cursor[128] = JOBQ_EVENTS_START;
	int first = 1;
	printf("[");
	for (;;) {
		jobq_event_list *list = NULL;
		int rc = jobq_events_read(&list, q, cursor, 500, 0);
		if (rc < 0)
			return die("events", rc);
		size_t n = jobq_event_list_count(list);
		for (size_t i = 0; i < n; i++) {
			const jobq_event *e = jobq_event_list_at(list, i);
			printf("%s{\"id\":", first ? "" : ",");
			first = 0;
			put_json(e->id);
			printf(",\"event\":");
			put_json(e->event);
			if (e->job_id != NULL) {
				printf(",\"jobId\":");
				put_json(e->job_id);
			}
			for (size_t k = 0; k < e->nfields; k++) {
				printf(",");
				put_json(e->fields[k].key);
				printf(":");
				put_json(e->fields[k].value);
			}
			printf("}");
		}
		snprintf(cursor, sizeof(cursor), "%s", jobq_event_list_cursor(list));
		jobq_event_list_free(list);
		if (n == 0)
			break;
	}
	printf("]\n");
	return 0;
}

static int
cmd_schedule(jobq_queue *q, const char *id, int n, char **kv) {
	jobq_scheduler_spec spec;
	jobq_job_options o;
	jobq_scheduler_spec_init(&spec, JOBQ_SCHEDULER_SPEC_VERSION);
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	for (int i = 0; i < n; i++) {
		char *v = strchr(kv[i], '=');
		if (v == NULL)
			return 2;
		*v++ = '\0';
		if (strcmp(kv[i], "every") == 0)
			spec.every_ms = atoll(v);
		else if (strcmp(kv[i], "offset") == 0)
			spec.offset_ms = atoll(v);
		else if (strcmp(kv[i], "pattern") == 0)
			spec.pattern = v;
		else if (strcmp(kv[i], "tz") == 0)
			spec.tz = v;
		else if (strcmp(kv[i], "limit") == 0)
			spec.limit = atoll(v);
		else if (strcmp(kv[i], "start") == 0)
			spec.start_ms = atoll(v);
		else if (strcmp(kv[i], "end") == 0)
			spec.end_ms = atoll(v);
		else if (strcmp(kv[i], "name") == 0)
			spec.name = v;
		else if (strcmp(kv[i], "data") == 0)
			spec.data = v;
		else if (strcmp(kv[i], "attempts") == 0)
			o.attempts = (uint32_t)atoi(v);
		else if (strcmp(kv[i], "remove_on_complete") == 0) {
			o.remove_on_complete.mode = JOBQ_KEEP_LIMIT;
			o.remove_on_complete.count = atoll(v);
			o.remove_on_complete.age_ms = -1;
		} else
			return 2;
	}
	spec.opts = &o;
	jobq_job_id it;
	int rc = jobq_queue_upsert_scheduler(&it, q, id, &spec);
	if (rc < 0)
		return die("schedule", rc);
	printf("{\"id\":\"%s\"}\n", it.str);
	return 0;
}

static int
cmd_schedulers(jobq_queue *q) {
	jobq_scheduler_list *list = NULL;
	int rc = jobq_queue_list_schedulers(&list, q);
	if (rc < 0)
		return die("schedulers", rc);
	printf("[");
	for (size_t i = 0; i < list->count; i++) {
		const jobq_scheduler *s = &list->items[i];
		printf("%s{\"id\":", i ? "," : "");
		put_json(s->id);
		printf(",\"name\":");
		put_json(s->name);
		printf(",\"every\":%lld,\"offset\":%lld,\"pattern\":", (long long)s->every_ms,
		       (long long)s->offset_ms);
		put_json(s->pattern ? s->pattern : "");
		printf(",\"tz\":");
		put_json(s->tz ? s->tz : "");
		printf(",\"limit\":%lld,\"iterations\":%lld,\"next\":%lld,\"data\":%s,"
		       "\"opts\":%s}",
		       (long long)s->limit, (long long)s->iterations, (long long)s->next_ms,
		       s->data, s->opts_json);
	}
	printf("]\n");
	jobq_scheduler_list_free(list);
	return 0;
}

/* One job with the options given as KEY=VALUE (see the top of the file). */
static int
cmd_addopt(jobq_queue *q, const char *name, const char *data, int n, char **kv) {
	jobq_job_options o;
	jobq_job_options_init(&o, JOBQ_JOB_OPTIONS_VERSION);
	for (int i = 0; i < n; i++) {
		char *eq = strchr(kv[i], '=');
		if (eq == NULL)
			return 2;
		*eq = '\0';
		const char *k = kv[i], *v = eq + 1;
		if (strcmp(k, "id") == 0)
			o.job_id = v;
		else if (strcmp(k, "attempts") == 0)
			o.attempts = (uint32_t)atoi(v);
		else if (strcmp(k, "stl") == 0)
			o.stack_trace_limit =
			    strcmp(v, "none") == 0 ? JOBQ_STACK_TRACE_NONE : atol(v);
		else if (strcmp(k, "backoff") == 0) {
			const char *colon = strchr(v, ':');
			o.backoff.delay_ms = colon ? atol(colon + 1) : 0;
			if (strncmp(v, "fixed", 5) == 0)
				o.backoff.type = JOBQ_BACKOFF_FIXED;
			else if (strncmp(v, "exponential", 11) == 0)
				o.backoff.type = JOBQ_BACKOFF_EXPONENTIAL;
			else if (strncmp(v, "linear", 6) == 0)
				o.backoff.type = JOBQ_BACKOFF_LINEAR;
			else
				return 2;
		} else if (strcmp(k, "jitter") == 0)
			o.backoff.jitter = atof(v);
		else if (strcmp(k, "max") == 0)
			o.backoff.max_delay_ms = atol(v);
		else
			return 2;
	}
	jobq_job_id id;
	int rc = jobq_queue_add(&id, q, name, data, strlen(data), &o);
	if (rc < 0) {
		printf("{\"error\":");
		put_json(jobq_error_name(rc));
		printf(",\"message\":");
		put_json(jobq_error_message());
		printf("}\n");
		return 0;
	}
	printf("{\"id\":");
	put_json(id.str);
	printf("}\n");
	return 0;
}

/* --- flows ------------------------------------------------------------------------------ */

static int
cmd_flow(jobq_queue *q, const char *cq) {
	jobq_flow_node g[] = {{cq, "g", "{\"n\":5}", 7, NULL, JOBQ_PARENT_WAIT, NULL, 0}};
	jobq_flow_node kids[] = {{cq, "c1", "{\"n\":1}", 7, NULL, JOBQ_PARENT_WAIT, NULL, 0},
	                         {cq, "fail-always", "{}", 2, NULL, JOBQ_PARENT_IGNORE, NULL, 0},
	                         {cq, "c3", "{\"n\":3}", 7, NULL, JOBQ_PARENT_WAIT, NULL, 0},
	                         {NULL, "sub", "{\"s\":1}", 7, NULL, JOBQ_PARENT_WAIT, g, 1}};
	jobq_flow_node root = {NULL, "root", "{\"p\":3}", 7, NULL, JOBQ_PARENT_WAIT, kids, 4};
	static const char *const names[] = {"root", "c1", "fail", "c3", "sub", "g"};
	jobq_job_id ids[6];
	int rc = jobq_flow_add(ids, q, &root, NULL);
	if (rc < 0)
		return die("flow", rc);
	printf("{");
	for (int i = 0; i < 6; i++)
		printf("%s\"%s\":\"%s\"", i ? "," : "", names[i], ids[i].str);
	printf("}\n");
	return 0;
}

static int
cmd_child(jobq_queue *q, const char *pq, const char *pid) {
	jobq_flow_node late = {NULL, "late", "{\"n\":9}", 7, NULL, JOBQ_PARENT_WAIT, NULL, 0};
	jobq_flow_parent parent = {pq, pid};
	jobq_job_id id;
	int rc = jobq_flow_add(&id, q, &late, &parent);
	if (rc < 0)
		return die("child", rc);
	printf("{\"id\":\"%s\"}\n", id.str);
	return 0;
}

/* `n` children as a JSON object key -> value (values JSON text when `raw`), or an array. */
static void
put_deps(const char *name, const jobq_dependency *d, size_t n, int object, int raw) {
	printf("\"%s\":%s", name, object ? "{" : "[");
	for (size_t i = 0; i < n; i++) {
		printf("%s", i ? "," : "");
		put_json(d[i].key);
		if (object) {
			printf(":");
			if (raw)
				printf("%s", d[i].value);
			else
				put_json(d[i].value);
		}
	}
	printf("%s", object ? "}" : "]");
}

static int
cmd_deps(jobq_queue *q, const char *id) {
	jobq_dependencies *d = NULL;
	int rc = jobq_queue_get_dependencies(&d, q, id);
	if (rc < 0)
		return die("deps", rc);
	printf("{");
	put_deps("processed", d->processed, d->nprocessed, 1, 1);
	printf(",");
	put_deps("unprocessed", d->pending, d->npending, 0, 0);
	printf(",");
	put_deps("ignored", d->ignored, d->nignored, 1, 0);
	printf(",");
	put_deps("failed", d->failed, d->nfailed, 0, 0);
	printf("}\n");
	jobq_dependencies_free(d);
	return 0;
}

int
main(int argc, char **argv) {
	if (argc < 4) {
		fprintf(stderr, "usage: jobq_interop COMMAND URL QUEUE [ARGS] (see the source)\n");
		return 2;
	}
	jobq_store *s = NULL;
	jobq_queue *q = NULL;
	int rc = jobq_store_open(&s, argv[2], NULL);
	if (rc < 0)
		return die(argv[2], rc);
	if ((rc = jobq_queue_open(&q, s, argv[3])) < 0)
		return die(argv[3], rc);
	if (strcmp(argv[1], "add") == 0 && argc > 4 && strcmp(argv[4], "events") == 0)
		rc = cmd_add_events(q);
	else if (strcmp(argv[1], "add") == 0)
		rc = cmd_add(q);
	else if (strcmp(argv[1], "remove") == 0 && argc > 4) {
		rc = jobq_queue_remove(q, argv[4]);
		rc = rc < 0 ? die("remove", rc) : (printf("{}\n"), 0);
	} else if (strcmp(argv[1], "work") == 0)
		rc = cmd_work(q, argc > 4 ? atol(argv[4]) : 500,
		              argc > 5 ? (unsigned)atoi(argv[5]) : 0);
	else if (strcmp(argv[1], "metrics") == 0 && argc > 4)
		rc = cmd_metrics(q, argv[4]);
	else if (strcmp(argv[1], "stall") == 0)
		rc = cmd_stall(q);
	else if (strcmp(argv[1], "serve") == 0)
		rc = cmd_serve(q, argc > 4 ? (unsigned)atoi(argv[4]) : 1,
		               argc > 5 ? atol(argv[5]) : 0, argc > 7 ? atol(argv[6]) : 0,
		               argc > 7 ? atol(argv[7]) : 0);
	else if (strcmp(argv[1], "limit") == 0 && argc > 6)
		rc = cmd_limit(q, atol(argv[4]), atol(argv[5]), atol(argv[6]));
	else if (strcmp(argv[1], "limits") == 0)
		rc = cmd_limits(q);
	else if (strcmp(argv[1], "addn") == 0 && argc > 5)
		rc = cmd_addn(q, atol(argv[4]), argv[5]);
	else if (strcmp(argv[1], "dedup") == 0 && argc > 4)
		rc = cmd_dedup(q, argv[4]);
	else if (strcmp(argv[1], "pause") == 0 || strcmp(argv[1], "resume") == 0) {
		rc = argv[1][0] == 'p' ? jobq_queue_pause(q) : jobq_queue_resume(q);
		rc = rc < 0 ? die(argv[1], rc) : (printf("{}\n"), 0);
	} else if (strcmp(argv[1], "progress") == 0 && argc > 6) {
		rc = jobq_queue_update_progress(q, argv[4], argv[5]);
		if (rc >= 0)
			rc = jobq_queue_add_log(q, argv[4], argv[6]);
		rc = rc < 0 ? die("progress", rc) : (printf("{}\n"), 0);
	} else if (strcmp(argv[1], "inspect") == 0)
		rc = cmd_inspect(q, argc - 4, argv + 4);
	else if (strcmp(argv[1], "events") == 0)
		rc = cmd_events(q);
	else if (strcmp(argv[1], "schedule") == 0 && argc > 4)
		rc = cmd_schedule(q, argv[4], argc - 5, argv + 5);
	else if (strcmp(argv[1], "addopt") == 0 && argc > 5)
		rc = cmd_addopt(q, argv[4], argv[5], argc - 6, argv + 6);
	else if (strcmp(argv[1], "schedulers") == 0)
		rc = cmd_schedulers(q);
	else if (strcmp(argv[1], "unschedule") == 0 && argc > 4) {
		rc = jobq_queue_remove_scheduler(q, argv[4]);
		rc = rc < 0 ? die("unschedule", rc) : (printf("{}\n"), 0);
	} else if (strcmp(argv[1], "flow") == 0 && argc > 4)
		rc = cmd_flow(q, argv[4]);
	else if (strcmp(argv[1], "child") == 0 && argc > 5)
		rc = cmd_child(q, argv[4], argv[5]);
	else if (strcmp(argv[1], "deps") == 0 && argc > 4)
		rc = cmd_deps(q, argv[4]);
	else
		rc = 2;
	fflush(stdout);
	jobq_queue_close(q);
	jobq_store_close(s);
	return rc;
}
