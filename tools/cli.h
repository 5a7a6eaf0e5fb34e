/*
 * jobq command — shared declarations: exit codes, the options parser, store opening, output
 * helpers and the verbs. Uses the public API only (jobq.h).
 */
#ifndef JOBQ_TOOLS_CLI_H
#define JOBQ_TOOLS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "jobq.h"

/* Exit codes of the program (documented in `jobq --help`). */
enum {
	CLI_EXIT_OK = 0,       /* success */
	CLI_EXIT_FAILED = 1,   /* a job or an operation failed */
	CLI_EXIT_USAGE = 2,    /* bad command line or bad input */
	CLI_EXIT_STORE = 3,    /* store unreachable or unusable */
	CLI_EXIT_NOTFOUND = 4, /* queue item not found */
	CLI_EXIT_TIMEOUT = 5   /* wait: the timeout passed first */
};

#define CLI_DEFAULT_URL "lmdb:jobq-data"

/* --- options ----------------------------------------------------------------------------- */

typedef enum cli_opt_kind {
	CLI_OPT_FLAG,   /* --name: sets *(int *)dest to 1 */
	CLI_OPT_INT,    /* --name N: *(int64_t *)dest, checked against min..max */
	CLI_OPT_STRING, /* --name VALUE: *(const char **)dest */
	CLI_OPT_OPTINT  /* --name or --name=N: *(int64_t *)dest = N, or `dflt` without a value */
} cli_opt_kind;

typedef struct cli_opt {
	const char *name; /* long name without the dashes */
	char short_name;  /* 0: none */
	cli_opt_kind kind;
	void *dest;
	int64_t min, max; /* CLI_OPT_INT / CLI_OPT_OPTINT */
	int64_t dflt;     /* CLI_OPT_OPTINT without a value */
	int *seen;        /* optional: set to 1 when given */
} cli_opt;

/* Options every verb accepts, filled by the parser. */
typedef struct cli_globals {
	const char *url; /* -u / --url; NULL: JOBQ_URL, else CLI_DEFAULT_URL */
	int json;        /* --json */
	int help;        /* -h / --help */
	int quiet;       /* -q / --quiet: no progress line */
} cli_globals;

extern cli_globals cli_g;
/* "jobq VERB", for messages. */
extern const char *cli_verb;

#define CLI_MAX_POSITIONAL 16

typedef struct cli_args {
	int npos;
	char *pos[CLI_MAX_POSITIONAL];
	int nrest; /* after "--" (only when the verb takes a command) */
	char **rest;
} cli_args;

/*
 * Parses `argv[0..argc)` (the words after the verb) against `opts` (terminated by a NULL name)
 * and the global options. At most `max_pos` positionals; when `want_rest`, everything after
 * "--" goes to rest. Returns 0, or CLI_EXIT_USAGE after printing one line saying what is wrong.
 */
int cli_parse(cli_args *out, int argc, char **argv, const cli_opt *opts, int max_pos,
              int want_rest);
/* Parses a whole decimal integer in min..max into *out; 0 or -1. */
int cli_parse_int(int64_t *out, const char *s, int64_t min, int64_t max);

/* --- messages and errors ----------------------------------------------------------------- */

/* Prints "jobq VERB: <message>" on stderr. Returns `code`, for `return cli_fail(...)`. */
int cli_fail(int code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Maps a library error to an exit code and prints "jobq VERB: what: detail". */
int cli_lib_fail(int rc, const char *what);
/* Exit code for a library error code. */
int cli_exit_code(int rc);
/* Prints the usage error hint "Try 'jobq VERB --help'" and returns CLI_EXIT_USAGE. */
int cli_usage_fail(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* --- store ------------------------------------------------------------------------------- */

/* The URL in effect: -u, else JOBQ_URL, else CLI_DEFAULT_URL. */
const char *cli_url(void);
/* `url` with its password hidden, for printing; valid until the next call. */
const char *cli_url_shown(const char *url);
/* Opens the store; on failure prints why and returns the exit code (> 0). */
int cli_open_store(jobq_store **out, const char *url);
/* Opens the store and queue `name`; on failure prints why and returns the exit code. */
int cli_open_queue(jobq_store **store, jobq_queue **q, const char *name);
void cli_close(jobq_store *store, jobq_queue *q);

/* --- output ------------------------------------------------------------------------------ */

/* Prints `v` as one compact line on stdout and releases it. Returns 0 or CLI_EXIT_FAILED. */
int cli_print_json(json_t *v);
/* Parses JSON text (any value); NULL if it is not JSON. */
json_t *cli_json_parse(const char *text, size_t len);
/* A JSON string of arbitrary bytes (invalid UTF-8 replaced by '?'). */
json_t *cli_json_string(const char *s, size_t len);
/* A job as BullMQ's Job.toJSON names its fields. */
json_t *cli_job_json(const jobq_job *job);
/* The job's options with BullMQ's opts keys. */
json_t *cli_job_opts_json(const jobq_job_options *o);
/* The keep policy of --remove-on-complete[=N] / --remove-on-fail[=N]: 0 removes at once, N
 * keeps the newest N. */
void cli_set_keep(jobq_keep *k, int64_t n);

/* Progress line on stderr, shown only on a terminal and without --json / --quiet. */
int cli_progress_enabled(void);
void cli_progress(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
void cli_progress_done(void);

/* Monotonic time. */
int64_t cli_now_us(void);
/* Formats milliseconds since the epoch as ISO 8601 UTC into buf (or "-" when 0). */
const char *cli_fmt_time(char *buf, size_t n, int64_t ms);

/* --- logs and overview (cli_ops.c) -------------------------------------------------------- */

typedef enum cli_log_format { CLI_LOG_TEXT, CLI_LOG_JSON } cli_log_format;
/* Installs the library's log handler: one line per record on stderr, text or JSON; with
 * `quiet`, info and debug records are dropped. */
void cli_log_install(cli_log_format format, int quiet);
/* Writes one line as the installed handler would (also without one: text, not quiet). */
void cli_log_line(jobq_log_level level, const char *component, const char *queue,
                  const char *job_id, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* Jobs in every state. */
uint64_t cli_counts_total(const jobq_counts *c);
/* Whether queue `name` exists in the store: 1, 0, or -1 when the backend cannot tell. */
int cli_queue_exists(jobq_store *store, const char *name);

/* What stats, metrics and top show of one queue. */
typedef struct cli_qstats {
	jobq_counts counts;
	int paused;
	int workers;          /* < 0: unknown (the backend cannot count them) */
	int64_t completed_1m; /* finished in the last minute: from BullMQ's metrics, else among */
	int64_t failed_1m;    /* the jobs kept (cli_metrics.c) */
	int64_t completed_total; /* finished since the metrics began; -1: no metrics */
	int64_t failed_total;
	int64_t oldest_waiting_ms; /* age of the oldest waiting job, -1: none waiting */
	size_t nsamples;           /* processing times of recent completed jobs, ms, sorted */
	int64_t samples[1000];
	int64_t samples_sum;
} cli_qstats;
/* Reads them at wall-clock `now_ms`. 0 or a library error. */
int cli_read_qstats(cli_qstats *out, jobq_queue *q, int64_t now_ms);
/* cli_metrics.c: the jobs of `kind` finished in the last minute at `now_ms` and in all, from
 * BullMQ's metrics: 1 (*per_minute, *total set), 0 when the queue has none, or < 0. */
int cli_metrics_rate(int64_t *per_minute, int64_t *total, jobq_queue *q, jobq_state kind,
                     int64_t now_ms);
/* cli_metrics.c: prints the metrics of queue `name`, points start..end (jobq metrics QUEUE).
 * 0 or an exit code. */
int cli_metrics_queue(jobq_store *store, const char *name, int64_t start, int64_t end);
/* The q-quantile of the sorted samples (0 when there are none). */
int64_t cli_quantile(const cli_qstats *s, double q);
/* Milliseconds since the epoch. */
int64_t cli_wall_ms(void);
/* The Prometheus text of every queue in the store (or the given ones) into `out` (a
 * malloc'd string). 0 or an exit code (message printed unless `quiet_errors`). */
int cli_prometheus(char **out, jobq_store *store, char **queues, int nqueues);

/* --- job options (cli_jobs.c) ------------------------------------------------------------- */

/* The job options `add` and `schedule` share: --priority, --lifo, --attempts, --backoff
 * TYPE:MS, --remove-on-complete[=N] and --remove-on-fail[=N] (0 removes at once, N keeps the
 * newest N). CLI_JOB_OPT_ENTRIES(j) are their entries in a verb's option table. */
typedef struct cli_job_opts {
	int64_t priority, attempts, remove_on_complete, remove_on_fail;
	int lifo, remove_on_complete_seen, remove_on_fail_seen;
	const char *backoff;
} cli_job_opts;
#define CLI_JOB_OPTS_INIT                                                                          \
	{ 0, 0, -1, -1, 0, 0, 0, NULL }
/* clang-format off */
#define CLI_JOB_OPT_ENTRIES(j)                                                                    \
	{"priority", 0, CLI_OPT_INT, &(j).priority, 0, JOBQ_PRIORITY_MAX, 0, NULL},                \
	{"lifo", 0, CLI_OPT_FLAG, &(j).lifo, 0, 0, 0, NULL},                                       \
	{"attempts", 0, CLI_OPT_INT, &(j).attempts, 1, 1000000, 0, NULL},                          \
	{"backoff", 0, CLI_OPT_STRING, &(j).backoff, 0, 0, 0, NULL},                               \
	{"remove-on-complete", 0, CLI_OPT_OPTINT, &(j).remove_on_complete, 0, INT64_MAX, 0,        \
	 &(j).remove_on_complete_seen},                                                            \
	{"remove-on-fail", 0, CLI_OPT_OPTINT, &(j).remove_on_fail, 0, INT64_MAX, 0,                \
	 &(j).remove_on_fail_seen}
/* clang-format on */
/* Sets those fields of `o` from `j`: 0, or the usage exit code (message printed) for a bad
 * --backoff. */
int cli_job_opts_apply(jobq_job_options *o, const cli_job_opts *j);

/* --- verbs ------------------------------------------------------------------------------- */

typedef struct cli_verb_info {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis; /* one line, after "jobq " */
	const char *summary;  /* short description for `jobq --help` */
	const char *help;     /* full text: options and examples */
} cli_verb_info;

/* Prints the verb's help on stdout. */
void cli_verb_help(const cli_verb_info *v);
const cli_verb_info *cli_find_verb(const char *name);

int cli_cmd_add(int argc, char **argv);
int cli_cmd_get(int argc, char **argv);
int cli_cmd_wait(int argc, char **argv);
int cli_cmd_remove(int argc, char **argv);
int cli_cmd_retry(int argc, char **argv);
int cli_cmd_promote(int argc, char **argv);
int cli_cmd_counts(int argc, char **argv);
int cli_cmd_list(int argc, char **argv);
int cli_cmd_pause(int argc, char **argv);
int cli_cmd_resume(int argc, char **argv);
int cli_cmd_drain(int argc, char **argv);
int cli_cmd_obliterate(int argc, char **argv);
int cli_cmd_clean(int argc, char **argv);
int cli_cmd_work(int argc, char **argv);
int cli_cmd_events(int argc, char **argv);
int cli_cmd_bench(int argc, char **argv);
int cli_cmd_demo(int argc, char **argv);
int cli_cmd_check(int argc, char **argv);
int cli_cmd_queues(int argc, char **argv);
int cli_cmd_schedule(int argc, char **argv);
int cli_cmd_schedulers(int argc, char **argv);
int cli_cmd_unschedule(int argc, char **argv);
int cli_cmd_stats(int argc, char **argv);
int cli_cmd_metrics(int argc, char **argv);
int cli_cmd_serve_metrics(int argc, char **argv);
int cli_cmd_health(int argc, char **argv);
int cli_cmd_top(int argc, char **argv);
int cli_cmd_progress(int argc, char **argv);
int cli_cmd_log(int argc, char **argv);
int cli_cmd_logs(int argc, char **argv);
int cli_cmd_limit(int argc, char **argv);
int cli_cmd_concurrency(int argc, char **argv);
/* cli_flow.c: `jobq flow`, and the dependencies of a parent for `jobq get` (nothing when the
 * job has no children or the backend no flows) */
int cli_cmd_flow(int argc, char **argv);
int cli_flow_deps_json(json_t *job_json, jobq_queue *q, const char *id);
void cli_flow_deps_text(jobq_queue *q, const char *id);

/* Verb help if --help was given (returns 1 then). */
int cli_want_help(void);

#endif
