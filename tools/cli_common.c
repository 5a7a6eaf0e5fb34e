/*
 * jobq command — the shared options parser, error reporting, store opening and output helpers.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

cli_globals cli_g;
const char *cli_verb = "jobq";

/* --- messages ---------------------------------------------------------------------------- */

static const char *
exit_name(int code) {
	switch (code) {
	case CLI_EXIT_USAGE:
		return "usage";
	case CLI_EXIT_STORE:
		return "store";
	case CLI_EXIT_NOTFOUND:
		return "notfound";
	case CLI_EXIT_TIMEOUT:
		return "timeout";
	default:
		return "failed";
	}
}

/* One error line on stderr: "jobq VERB: message[tail]", or under --json one JSON object
 * {"error":{"code":EXIT,"kind":..,"verb":..,"message":..}}. */
static void
vmessage(int code, const char *tail, const char *fmt, va_list ap) {
	char msg[4096];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	cli_progress_done();
	if (cli_g.json) {
		json_t *e = json_pack("{s:{s:i,s:s,s:s,s:s}}", "error", "code", code, "kind",
		                      exit_name(code), "verb", cli_verb, "message", msg);
		char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
		if (text)
			fprintf(stderr, "%s\n", text);
		free(text);
		json_decref(e);
		return;
	}
	if (strcmp(cli_verb, "jobq") == 0)
		fprintf(stderr, "jobq: %s%s\n", msg, tail);
	else
		fprintf(stderr, "jobq %s: %s%s\n", cli_verb, msg, tail);
}

int
cli_fail(int code, const char *fmt, ...) {
	va_list ap;

	va_start(ap, fmt);
	vmessage(code, "", fmt, ap);
	va_end(ap);
	return code;
}

int
cli_usage_fail(const char *fmt, ...) {
	char tail[64];
	va_list ap;

	if (strcmp(cli_verb, "jobq") == 0)
		snprintf(tail, sizeof(tail), " (see 'jobq --help')");
	else
		snprintf(tail, sizeof(tail), " (see 'jobq %s --help')", cli_verb);
	va_start(ap, fmt);
	vmessage(CLI_EXIT_USAGE, tail, fmt, ap);
	va_end(ap);
	return CLI_EXIT_USAGE;
}

int
cli_exit_code(int rc) {
	switch (rc) {
	case JOBQ_ENOTFOUND:
		return CLI_EXIT_NOTFOUND;
	case JOBQ_EINVAL:
		return CLI_EXIT_USAGE;
	case JOBQ_EIO:
	case JOBQ_EBACKEND:
	case JOBQ_ECLOSED:
	case JOBQ_ENOTSUP:
	case JOBQ_EVERSION:
	case JOBQ_ENOSPC:
		return CLI_EXIT_STORE;
	default:
		return CLI_EXIT_FAILED;
	}
}

int
cli_lib_fail(int rc, const char *what) {
	const char *detail = jobq_error_message();

	if (detail && *detail)
		return cli_fail(cli_exit_code(rc), "%s: %s", what, detail);
	return cli_fail(cli_exit_code(rc), "%s: %s", what, jobq_strerror(rc));
}

/* --- options ----------------------------------------------------------------------------- */

int
cli_parse_int(int64_t *out, const char *s, int64_t min, int64_t max) {
	char *end;
	long long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < min || v > max)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static int
bad_int(const char *dash, const cli_opt *o, const char *value) {
	if (o->max == INT64_MAX)
		return cli_usage_fail("invalid value '%s' for %s%s: expected an integer >= %lld",
		                      value, dash, o->name, (long long)o->min);
	return cli_usage_fail("invalid value '%s' for %s%s: expected an integer from %lld to %lld",
	                      value, dash, o->name, (long long)o->min, (long long)o->max);
}

static const cli_opt global_opts[] = {
    {"url", 'u', CLI_OPT_STRING, &cli_g.url, 0, 0, 0, NULL},
    {"json", 0, CLI_OPT_FLAG, &cli_g.json, 0, 0, 0, NULL},
    {"help", 'h', CLI_OPT_FLAG, &cli_g.help, 0, 0, 0, NULL},
    {"quiet", 'q', CLI_OPT_FLAG, &cli_g.quiet, 0, 0, 0, NULL},
    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
};

static const cli_opt *
find_opt(const cli_opt *opts, const char *name, size_t len, char short_name) {
	const cli_opt *tables[2] = {opts, global_opts};

	for (int t = 0; t < 2; t++) {
		for (const cli_opt *o = tables[t]; o && o->name; o++) {
			if (short_name) {
				if (o->short_name == short_name)
					return o;
			} else if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) {
				return o;
			}
		}
	}
	return NULL;
}

int
cli_parse(cli_args *out, int argc, char **argv, const cli_opt *opts, int max_pos, int want_rest) {
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		const cli_opt *o;
		const char *value = NULL, *dash;
		char shortbuf[2] = {0, 0};

		if (strcmp(a, "--") == 0) {
			if (!want_rest) {
				/* Everything after "--" is positional. */
				for (i++; i < argc; i++) {
					if (out->npos >= max_pos)
						return cli_usage_fail("unexpected argument '%s'",
						                      argv[i]);
					out->pos[out->npos++] = argv[i];
				}
				break;
			}
			out->rest = argv + i + 1;
			out->nrest = argc - i - 1;
			break;
		}
		if (a[0] != '-' || a[1] == '\0') { /* positional ("-" means stdin) */
			if (out->npos >= max_pos || out->npos >= CLI_MAX_POSITIONAL)
				return cli_usage_fail("unexpected argument '%s'", a);
			out->pos[out->npos++] = a;
			continue;
		}
		if (a[1] == '-') {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			dash = "--";
			o = find_opt(opts, name, len, 0);
			if (!o)
				return cli_usage_fail("unknown option '--%.*s'", (int)len, name);
			if (eq)
				value = eq + 1;
		} else {
			dash = "-";
			o = find_opt(opts, NULL, 0, a[1]);
			if (!o)
				return cli_usage_fail("unknown option '-%c'", a[1]);
			shortbuf[0] = a[1];
			if (a[2] != '\0')
				value = a + 2;
		}
		if (o->seen)
			*o->seen = 1;
		switch (o->kind) {
		case CLI_OPT_FLAG:
			if (value)
				return cli_usage_fail("option %s%s takes no value", dash,
				                      shortbuf[0] ? shortbuf : o->name);
			*(int *)o->dest = 1;
			break;
		case CLI_OPT_OPTINT:
			if (!value) {
				*(int64_t *)o->dest = o->dflt;
				break;
			}
			if (cli_parse_int((int64_t *)o->dest, value, o->min, o->max) < 0)
				return bad_int(dash, o, value);
			break;
		case CLI_OPT_INT:
		case CLI_OPT_STRING:
			if (!value) {
				if (i + 1 >= argc)
					return cli_usage_fail("option %s%s needs a value", dash,
					                      shortbuf[0] ? shortbuf : o->name);
				value = argv[++i];
			}
			if (o->kind == CLI_OPT_STRING) {
				*(const char **)o->dest = value;
			} else if (cli_parse_int((int64_t *)o->dest, value, o->min, o->max) < 0) {
				return bad_int(dash, o, value);
			}
			break;
		}
	}
	return 0;
}

/* --- store ------------------------------------------------------------------------------- */

const char *
cli_url(void) {
	const char *env;

	if (cli_g.url)
		return cli_g.url;
	env = getenv("JOBQ_URL");
	if (env && *env)
		return env;
	return CLI_DEFAULT_URL;
}

const char *
cli_url_shown(const char *url) {
	static char *shown;
	size_t n = jobq_url_redact(NULL, 0, url);
	char *grown = realloc(shown, n + 1);

	if (!grown)
		return "(a store URL)";
	shown = grown;
	jobq_url_redact(shown, n + 1, url);
	return shown;
}

static int
mentions_url(const char *s) {
	for (; *s; s++)
		if (tolower((unsigned char)s[0]) == 'u' && tolower((unsigned char)s[1]) == 'r' &&
		    tolower((unsigned char)s[2]) == 'l')
			return 1;
	return 0;
}

int
cli_open_store(jobq_store **out, const char *url) {
	int rc = jobq_store_open(out, url, NULL);
	const char *detail;

	if (rc >= 0)
		return 0;
	*out = NULL;
	detail = jobq_error_message();
	if (!detail || !*detail)
		detail = jobq_strerror(rc);
	/* A malformed URL is a usage error; a well-formed one naming a store that cannot be
	 * used (a directory that cannot be created, a foreign file) is exit 3. The library
	 * returns JOBQ_EINVAL for both; its URL parsers say "URL" in their messages. */
	if (rc == JOBQ_EINVAL && mentions_url(detail))
		return cli_fail(CLI_EXIT_USAGE, "invalid store URL '%s': %s", cli_url_shown(url),
		                detail);
	return cli_fail(CLI_EXIT_STORE, "cannot open store '%s': %s", cli_url_shown(url), detail);
}

int
cli_open_queue(jobq_store **store, jobq_queue **q, const char *name) {
	int rc = cli_open_store(store, cli_url());

	*q = NULL;
	if (rc)
		return rc;
	rc = jobq_queue_open(q, *store, name);
	if (rc < 0) {
		int code = cli_lib_fail(rc, "cannot open queue");
		jobq_store_close(*store);
		*store = NULL;
		*q = NULL;
		return code;
	}
	return 0;
}

void
cli_close(jobq_store *store, jobq_queue *q) {
	jobq_queue_close(q);
	jobq_store_close(store);
}

/* --- output ------------------------------------------------------------------------------ */

int
cli_print_json(json_t *v) {
	char *s;

	if (!v)
		return cli_fail(CLI_EXIT_FAILED, "out of memory");
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	if (!s)
		return cli_fail(CLI_EXIT_FAILED, "out of memory");
	puts(s);
	free(s);
	return 0;
}

json_t *
cli_json_parse(const char *text, size_t len) {
	json_error_t err;

	if (!text)
		return NULL;
	return json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
}

json_t *
cli_json_string(const char *s, size_t len) {
	json_t *v = json_stringn(s, len);
	char *copy;

	if (v)
		return v;
	/* Not UTF-8: keep ASCII, replace the rest. */
	copy = malloc(len + 1);
	if (!copy)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		copy[i] = (c < 0x80) ? (char)c : '?';
	}
	v = json_stringn(copy, len);
	free(copy);
	return v;
}

/* JSON text stored by the library -> a value; a string if it does not parse. */
static json_t *
json_or_string(const char *text, json_t *absent) {
	json_t *v;

	if (!text)
		return absent;
	v = cli_json_parse(text, strlen(text));
	json_decref(absent);
	return v ? v : cli_json_string(text, strlen(text));
}

static json_t *
keep_json(const jobq_keep *k) {
	json_t *o;

	switch (k->mode) {
	case JOBQ_KEEP_ALL:
		return json_false();
	case JOBQ_KEEP_NONE:
		return json_true();
	case JOBQ_KEEP_LIMIT:
		if (k->age_ms < 0 && k->count >= 0)
			return json_integer(k->count);
		o = json_object();
		if (k->count >= 0)
			json_object_set_new(o, "count", json_integer(k->count));
		if (k->age_ms >= 0)
			json_object_set_new(o, "age", json_integer(k->age_ms / 1000));
		return o;
	case JOBQ_KEEP_DEFAULT:
	default:
		return NULL;
	}
}

json_t *
cli_job_opts_json(const jobq_job_options *o) {
	json_t *j = json_object();
	json_t *k;

	if (!o)
		return j;
	json_object_set_new(j, "attempts", json_integer(o->attempts));
	if (o->delay_ms > 0)
		json_object_set_new(j, "delay", json_integer(o->delay_ms));
	if (o->priority > 0)
		json_object_set_new(j, "priority", json_integer(o->priority));
	if (o->lifo)
		json_object_set_new(j, "lifo", json_true());
	if (o->backoff.type != JOBQ_BACKOFF_NONE) {
		json_t *b = json_object();
		const char *type = o->backoff.type == JOBQ_BACKOFF_FIXED         ? "fixed"
		                   : o->backoff.type == JOBQ_BACKOFF_EXPONENTIAL ? "exponential"
		                   : o->backoff.type == JOBQ_BACKOFF_LINEAR      ? "linear"
		                   : o->backoff.custom_type ? o->backoff.custom_type
		                                            : "custom";
		json_object_set_new(b, "type", json_string(type));
		json_object_set_new(b, "delay", json_integer(o->backoff.delay_ms));
		if (o->backoff.jitter > 0)
			json_object_set_new(b, "jitter", json_real(o->backoff.jitter));
		if (o->backoff.max_delay_ms > 0)
			json_object_set_new(b, "maxDelay", json_integer(o->backoff.max_delay_ms));
		json_object_set_new(j, "backoff", b);
	}
	if (o->job_id)
		json_object_set_new(j, "jobId", json_string(o->job_id));
	if ((k = keep_json(&o->remove_on_complete)) != NULL)
		json_object_set_new(j, "removeOnComplete", k);
	if ((k = keep_json(&o->remove_on_fail)) != NULL)
		json_object_set_new(j, "removeOnFail", k);
	if (o->keep_logs > 0)
		json_object_set_new(j, "keepLogs", json_integer(o->keep_logs));
	if (o->size_limit > 0)
		json_object_set_new(j, "sizeLimit", json_integer((json_int_t)o->size_limit));
	if (o->dedup_id) {
		json_t *d = json_object();
		json_object_set_new(d, "id", json_string(o->dedup_id));
		if (o->dedup_ttl_ms > 0)
			json_object_set_new(d, "ttl", json_integer(o->dedup_ttl_ms));
		json_object_set_new(j, "deduplication", d);
	}
	if (o->timestamp > 0)
		json_object_set_new(j, "timestamp", json_integer(o->timestamp));
	if (o->stack_trace_limit != 0)
		json_object_set_new(
		    j, "stackTraceLimit",
		    json_integer(o->stack_trace_limit < 0 ? 0 : o->stack_trace_limit));
	return j;
}

static json_t *
time_or_null(int64_t ms) {
	return ms > 0 ? json_integer(ms) : json_null();
}

void
cli_set_keep(jobq_keep *k, int64_t n) {
	if (n == 0) {
		k->mode = JOBQ_KEEP_NONE;
	} else {
		k->mode = JOBQ_KEEP_LIMIT;
		k->count = n;
		k->age_ms = -1;
	}
}

json_t *
cli_job_json(const jobq_job *job) {
	json_t *j = json_object();
	json_t *st = json_array();
	size_t len = 0;
	const void *data = jobq_job_data(job, &len);
	const char *reason = jobq_job_failed_reason(job);
	json_t *dv;

	json_object_set_new(j, "id", json_string(jobq_job_id_of(job)));
	json_object_set_new(j, "name",
	                    cli_json_string(jobq_job_name(job), strlen(jobq_job_name(job))));
	json_object_set_new(j, "queueName", json_string(jobq_job_queue_name(job)));
	json_object_set_new(j, "state", json_string(jobq_state_name(jobq_job_state(job))));
	dv = data ? cli_json_parse(data, len) : NULL;
	if (!dv)
		dv = data ? cli_json_string(data, len) : json_object();
	json_object_set_new(j, "data", dv);
	json_object_set_new(j, "opts", cli_job_opts_json(jobq_job_options_of(job)));
	json_object_set_new(j, "progress", json_or_string(jobq_job_progress(job), json_integer(0)));
	json_object_set_new(j, "returnvalue", json_or_string(jobq_job_result(job), json_null()));
	json_object_set_new(j, "failedReason",
	                    reason ? cli_json_string(reason, strlen(reason)) : json_null());
	for (size_t i = 0; i < jobq_job_stacktrace_count(job); i++) {
		const char *line = jobq_job_stacktrace_at(job, i);
		if (line)
			json_array_append_new(st, cli_json_string(line, strlen(line)));
	}
	json_object_set_new(j, "stacktrace", st);
	json_object_set_new(j, "attemptsMade", json_integer(jobq_job_attempts_made(job)));
	json_object_set_new(j, "attemptsStarted", json_integer(jobq_job_attempts_started(job)));
	json_object_set_new(j, "stalledCounter", json_integer(jobq_job_stalled_count(job)));
	json_object_set_new(j, "timestamp", json_integer(jobq_job_timestamp(job)));
	json_object_set_new(j, "processedOn", time_or_null(jobq_job_processed_on(job)));
	json_object_set_new(j, "finishedOn", time_or_null(jobq_job_finished_on(job)));
	json_object_set_new(j, "delay", json_integer(jobq_job_delay(job)));
	json_object_set_new(j, "priority", json_integer(jobq_job_priority(job)));
	const char *pb = jobq_job_processed_by(job);
	json_object_set_new(j, "processedBy", pb ? cli_json_string(pb, strlen(pb)) : json_null());
	return j;
}

/* --- progress and time ------------------------------------------------------------------- */

static int progress_shown;

int
cli_progress_enabled(void) {
	return !cli_g.json && !cli_g.quiet && isatty(STDERR_FILENO);
}

void
cli_progress(const char *fmt, ...) {
	va_list ap;

	static int64_t last_us;
	int64_t now = cli_now_us();

	if (!cli_progress_enabled() || (progress_shown && now - last_us < 100000))
		return; /* at most ten updates a second */
	last_us = now;
	fputs("\r\033[K", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
	progress_shown = 1;
}

void
cli_progress_done(void) {
	if (!progress_shown)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	progress_shown = 0;
}

int64_t
cli_now_us(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *
cli_fmt_time(char *buf, size_t n, int64_t ms) {
	time_t secs;
	struct tm tm;
	char tmp[32];

	if (ms <= 0) {
		snprintf(buf, n, "-");
		return buf;
	}
	secs = (time_t)(ms / 1000);
	gmtime_r(&secs, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, n, "%s.%03dZ", tmp, (int)(ms % 1000));
	return buf;
}
