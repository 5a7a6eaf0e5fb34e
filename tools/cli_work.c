/*
 * jobq command — work: runs a command for each job, without a shell.
 *
 * Each job's command is started with posix_spawnp in a process group of its own (so that a
 * terminal's Ctrl-C reaches only jobq, which then closes gracefully, and a timeout kills the
 * command's children too). The job data goes to its stdin; stdout becomes the result; the last
 * line of stderr becomes the failure reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

#define OUT_MAX            (64u * 1024 * 1024) /* largest stdout kept as the result */
#define ERR_KEEP           (64u * 1024)        /* tail of stderr kept for the reason */
#define EXIT_UNRECOVERABLE 64                  /* exit status that skips remaining attempts */
#define KILL_GRACE_MS      2000                /* SIGTERM to SIGKILL when cancelled */
#define REPORT_FD          3                   /* the command's end of the report pipe */
#define REPORT_LINE_MAX    (64u * 1024)        /* longer report lines are cut */

typedef struct work_ctx {
	char **cmd;
	const char *queue;
	int64_t timeout_ms;
	int64_t max_jobs;
	jobq_worker *w;
	atomic_llong started;
	atomic_llong finished;
	atomic_llong failed;
	atomic_llong completed;
	atomic_int running;
	atomic_llong last_activity_us;
	atomic_llong dropped;  /* results the store refused and the worker gave up */
	atomic_int store_down; /* the last store event was an outage */
	int64_t stderr_log;    /* --stderr-log: stderr lines kept as job logs, 0: none */
} work_ctx;

/* Pipes are made and the command spawned under this lock, so that no other command started
 * at the same moment inherits this one's pipe ends (they are close-on-exec by then). */
static pthread_mutex_t spawn_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct buf {
	char *p;
	size_t len, cap;
} buf;

static int
buf_append(buf *b, const char *s, size_t n) {
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;
		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			return -1;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

#define NOURS 5 /* the variables make_env sets */

static int
is_env(const char *entry, const char *name) {
	size_t n = strlen(name);
	return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/* environ without our variables, plus our variables. Frees with free_env. */
static char **
make_env(const jobq_job *job, const char *queue) {
	static const char *const ours[] = {"JOBQ_QUEUE", "JOBQ_JOB_ID", "JOBQ_JOB_NAME",
	                                   "JOBQ_ATTEMPT", "JOBQ_REPORT_FD"};
	size_t n = 0, k = 0;
	char **env;
	char attempt[32];
	const char *values[NOURS];
	char report_fd[16];

	while (environ[n])
		n++;
	env = calloc(n + NOURS + 1, sizeof(*env));
	if (!env)
		return NULL;
	snprintf(attempt, sizeof(attempt), "%u", jobq_job_attempts_made(job) + 1);
	values[0] = queue;
	values[1] = jobq_job_id_of(job);
	values[2] = jobq_job_name(job);
	values[3] = attempt;
	snprintf(report_fd, sizeof(report_fd), "%d", REPORT_FD);
	values[4] = report_fd;
	for (size_t i = 0; i < NOURS; i++) {
		size_t len = strlen(ours[i]) + strlen(values[i]) + 2;
		env[i] = malloc(len);
		if (!env[i]) {
			for (size_t j = 0; j < i; j++)
				free(env[j]);
			free(env);
			return NULL;
		}
		snprintf(env[i], len, "%s=%s", ours[i], values[i]);
	}
	k = NOURS;
	for (size_t i = 0; i < n; i++) {
		int skip = 0;
		for (size_t j = 0; j < NOURS; j++)
			skip |= is_env(environ[i], ours[j]);
		if (!skip)
			env[k++] = environ[i];
	}
	env[k] = NULL;
	return env;
}

static void
free_env(char **env) {
	if (!env)
		return;
	for (size_t i = 0; i < NOURS; i++)
		free(env[i]);
	free(env);
}

static void
close_fd(int *fd) {
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int
set_cloexec(int fd) {
	int flags = fcntl(fd, F_GETFD);
	return flags < 0 ? -1 : fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

static int
set_nonblock(int fd) {
	int flags = fcntl(fd, F_GETFL);
	return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Starts the command with its three pipes. Returns 0 or an errno value. */
static int
spawn_command(pid_t *pid, int *in_w, int *out_r, int *err_r, int *rep_r, char **cmd, char **env) {
	int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1}, prep[2] = {-1, -1};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	int err = 0;

	sigemptyset(&none);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGPIPE);
	sigaddset(&defaults, SIGINT);
	sigaddset(&defaults, SIGTERM);
	sigaddset(&defaults, SIGQUIT);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	                                    POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawnattr_setpgroup(&attr, 0);

	pthread_mutex_lock(&spawn_lock);
	if (pipe(pin) < 0 || pipe(pout) < 0 || pipe(perr) < 0 || pipe(prep) < 0) {
		err = errno;
	} else {
		int fds[8] = {pin[0], pin[1], pout[0], pout[1], perr[0], perr[1], prep[0], prep[1]};
		for (int i = 0; i < 8 && !err; i++)
			if (set_cloexec(fds[i]) < 0)
				err = errno;
	}
	/* dup2 onto itself would keep close-on-exec: move the write end off REPORT_FD */
	if (!err && prep[1] <= REPORT_FD) {
		int moved = fcntl(prep[1], F_DUPFD_CLOEXEC, REPORT_FD + 1);
		if (moved < 0)
			err = errno;
		else {
			close(prep[1]);
			prep[1] = moved;
		}
	}
	if (!err) {
		posix_spawn_file_actions_adddup2(&fa, pin[0], STDIN_FILENO);
		posix_spawn_file_actions_adddup2(&fa, pout[1], STDOUT_FILENO);
		posix_spawn_file_actions_adddup2(&fa, perr[1], STDERR_FILENO);
		posix_spawn_file_actions_adddup2(&fa, prep[1], REPORT_FD);
		err = posix_spawnp(pid, cmd[0], &fa, &attr, cmd, env);
	}
	pthread_mutex_unlock(&spawn_lock);

	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close_fd(&pin[0]);
	close_fd(&pout[1]);
	close_fd(&perr[1]);
	close_fd(&prep[1]);
	if (err) {
		close_fd(&pin[1]);
		close_fd(&pout[0]);
		close_fd(&perr[0]);
		close_fd(&prep[0]);
		return err;
	}
	set_nonblock(pin[1]);
	set_nonblock(pout[0]);
	set_nonblock(perr[0]);
	set_nonblock(prep[0]);
	*in_w = pin[1];
	*out_r = pout[0];
	*err_r = perr[0];
	*rep_r = prep[0];
	return 0;
}

/* The last non-empty line of `s` (trailing whitespace trimmed), written into `line`. */
static void
last_line(char *line, size_t n, const char *s, size_t len) {
	size_t end = len, start;

	while (end > 0 && (s[end - 1] == '\n' || s[end - 1] == '\r' || s[end - 1] == ' ' ||
	                   s[end - 1] == '\t'))
		end--;
	start = end;
	while (start > 0 && s[start - 1] != '\n')
		start--;
	if (end - start >= n)
		start = end - (n - 1);
	memcpy(line, s + start, end - start);
	line[end - start] = '\0';
}

/* Sets the job's result from the command's stdout. */
static int
set_result_from(jobq_job *job, buf *out) {
	size_t len = out->len, start = 0;
	const char *s = out->p ? out->p : "";
	json_t *v;
	char *text;
	int rc;

	while (start < len &&
	       (s[start] == ' ' || s[start] == '\n' || s[start] == '\t' || s[start] == '\r'))
		start++;
	if (start == len)
		return jobq_job_set_result(job, "null", 4);
	if (jobq_json_check(s, len) == 0) {
		while (len > start && (s[len - 1] == '\n' || s[len - 1] == '\r' ||
		                       s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		return jobq_job_set_result(job, s + start, len - start);
	}
	/* Plain text: one trailing newline goes. */
	len = out->len;
	if (len > 0 && s[len - 1] == '\n')
		len--;
	if (len > 0 && s[len - 1] == '\r')
		len--;
	v = cli_json_string(s, len);
	text = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	json_decref(v);
	if (!text)
		return jobq_job_set_error(job, 0, "out of memory storing the result");
	rc = jobq_job_set_result(job, text, strlen(text));
	free(text);
	return rc;
}

/* One line the command wrote on its report pipe: "progress JSON" or "log TEXT". */
static void
report_line(jobq_job *job, work_ctx *ctx, char *line) {
	size_t n = strlen(line);
	int rc;
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	if (n == 0)
		return;
	if (strncmp(line, "progress ", 9) == 0) {
		rc = jobq_job_update_progress(job, line + 9);
		if (rc < 0)
			cli_log_line(JOBQ_LOG_WARN, "work", ctx->queue, jobq_job_id_of(job),
			             "job %s: progress not set: %s", jobq_job_id_of(job),
			             jobq_error_message());
	} else if (strncmp(line, "log ", 4) == 0) {
		rc = jobq_job_log(job, line + 4);
		if (rc < 0)
			cli_log_line(JOBQ_LOG_WARN, "work", ctx->queue, jobq_job_id_of(job),
			             "job %s: log line not added: %s", jobq_job_id_of(job),
			             jobq_error_message());
	} else {
		cli_log_line(
		    JOBQ_LOG_WARN, "work", ctx->queue, jobq_job_id_of(job),
		    "job %s: report line is neither 'progress JSON' nor 'log TEXT': '%.60s'",
		    jobq_job_id_of(job), line);
	}
}

/* Acts on the complete lines in `b` (all of it when `final`), keeping a partial last line;
 * a line longer than REPORT_LINE_MAX is taken as it is. */
static void
report_lines(jobq_job *job, work_ctx *ctx, buf *b, int final) {
	size_t start = 0;
	if (b->len == 0)
		return;
	while (start < b->len) {
		char *nl = memchr(b->p + start, '\n', b->len - start);
		size_t end;
		if (nl)
			end = (size_t)(nl - b->p);
		else if (final || b->len - start > REPORT_LINE_MAX)
			end = b->len;
		else
			break;
		b->p[end] = '\0';
		report_line(job, ctx, b->p + start);
		start = end + 1;
	}
	if (start >= b->len) {
		b->len = 0;
	} else {
		memmove(b->p, b->p + start, b->len - start);
		b->len -= start;
	}
	b->p[b->len] = '\0';
}

/* Appends the last `keep` lines of the command's stderr to the job's logs. */
static void
stderr_to_logs(jobq_job *job, const buf *errb, int64_t keep) {
	size_t end = errb->len, start;
	int64_t lines = 0;
	if (keep <= 0 || end == 0)
		return;
	if (errb->p[end - 1] == '\n')
		end--;
	start = end;
	while (start > 0 && lines < keep) {
		if (errb->p[start - 1] == '\n' && ++lines == keep)
			break;
		start--;
	}
	while (start <= end) {
		const char *nl = memchr(errb->p + start, '\n', end - start);
		size_t stop = nl ? (size_t)(nl - errb->p) : end;
		char *line = strndup(errb->p + start, stop - start);
		if (line) {
			size_t n = strlen(line);
			if (n > 0 && line[n - 1] == '\r')
				line[n - 1] = '\0';
			jobq_job_log(job, line);
			free(line);
		}
		start = stop + 1;
	}
}

static const char *
signal_name(int sig) {
	switch (sig) {
	case SIGKILL:
		return "SIGKILL";
	case SIGTERM:
		return "SIGTERM";
	case SIGINT:
		return "SIGINT";
	case SIGSEGV:
		return "SIGSEGV";
	case SIGABRT:
		return "SIGABRT";
	case SIGPIPE:
		return "SIGPIPE";
	default:
		return "signal";
	}
}

static int
run_command(jobq_job *job, work_ctx *ctx) {
	size_t dlen = 0, dpos = 0;
	const char *data = jobq_job_data(job, &dlen);
	char **env = make_env(job, ctx->queue);
	int in_w = -1, out_r = -1, err_r = -1, rep_r = -1, status = 0, err;
	int timed_out = 0, cancelled = 0, too_big = 0;
	int64_t start = cli_now_us(), term_at = 0;
	buf out = {0}, errb = {0}, repb = {0};
	pid_t pid;
	char line[1024], why[1100];
	unsigned flags = 0;
	int rc;

	if (!env)
		return jobq_job_set_error(job, 0, "out of memory");
	err = spawn_command(&pid, &in_w, &out_r, &err_r, &rep_r, ctx->cmd, env);
	free_env(env);
	if (err)
		return jobq_job_set_error(job, 0, "cannot run '%s': %s", ctx->cmd[0],
		                          strerror(err));
	if (!data || dlen == 0)
		close_fd(&in_w);

	while (out_r >= 0 || err_r >= 0 || rep_r >= 0) {
		struct pollfd p[4];
		nfds_t np = 0;
		int wait_ms = 100, idx_in = -1, idx_out = -1, idx_err = -1, idx_rep = -1;
		int64_t now = cli_now_us();

		if (ctx->timeout_ms > 0 && !timed_out && now - start >= ctx->timeout_ms * 1000) {
			timed_out = 1;
			kill(-pid, SIGKILL);
			break;
		}
		if (!cancelled && jobq_job_is_cancelled(job)) {
			cancelled = 1;
			term_at = now;
			kill(-pid, SIGTERM);
		}
		if (cancelled && now - term_at >= (int64_t)KILL_GRACE_MS * 1000) {
			kill(-pid, SIGKILL);
			break;
		}
		if (in_w >= 0) {
			idx_in = (int)np;
			p[np++] = (struct pollfd){in_w, POLLOUT, 0};
		}
		if (out_r >= 0) {
			idx_out = (int)np;
			p[np++] = (struct pollfd){out_r, POLLIN, 0};
		}
		if (err_r >= 0) {
			idx_err = (int)np;
			p[np++] = (struct pollfd){err_r, POLLIN, 0};
		}
		if (rep_r >= 0) {
			idx_rep = (int)np;
			p[np++] = (struct pollfd){rep_r, POLLIN, 0};
		}
		if (ctx->timeout_ms > 0) {
			int64_t left = (start + ctx->timeout_ms * 1000 - now) / 1000 + 1;
			if (left < wait_ms)
				wait_ms = (int)left;
		}
		if (poll(p, np, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (idx_in >= 0 && p[idx_in].revents) {
			ssize_t w = write(in_w, data + dpos, dlen - dpos);
			if (w > 0)
				dpos += (size_t)w;
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				close_fd(&in_w); /* the command does not read stdin */
			else if (dpos >= dlen)
				close_fd(&in_w);
		}
		for (int k = 0; k < 3; k++) {
			int idx = k == 0 ? idx_out : k == 1 ? idx_err : idx_rep;
			int *fd = k == 0 ? &out_r : k == 1 ? &err_r : &rep_r;
			char chunk[16384];
			ssize_t r;
			if (idx < 0 || !p[idx].revents)
				continue;
			r = read(*fd, chunk, sizeof(chunk));
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				close_fd(fd);
				continue;
			}
			if (r < 0)
				continue;
			if (k == 0) {
				if (out.len + (size_t)r > OUT_MAX) {
					too_big = 1;
					kill(-pid, SIGKILL);
					close_fd(fd);
					continue;
				}
				buf_append(&out, chunk, (size_t)r);
			} else if (k == 2) {
				buf_append(&repb, chunk, (size_t)r);
				report_lines(job, ctx, &repb, 0);
			} else {
				buf_append(&errb, chunk, (size_t)r);
				if (errb.len > ERR_KEEP) { /* keep the tail */
					size_t drop = errb.len - ERR_KEEP / 2;
					memmove(errb.p, errb.p + drop, errb.len - drop + 1);
					errb.len -= drop;
				}
			}
		}
	}
	close_fd(&in_w);
	close_fd(&out_r);
	close_fd(&err_r);
	close_fd(&rep_r);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	report_lines(job, ctx, &repb, 1);
	if (errb.p)
		stderr_to_logs(job, &errb, ctx->stderr_log);

	line[0] = '\0';
	if (errb.p)
		last_line(line, sizeof(line), errb.p, errb.len);
	why[0] = '\0';
	if (timed_out) {
		snprintf(why, sizeof(why), "timed out after %lld ms: killed",
		         (long long)ctx->timeout_ms);
	} else if (too_big) {
		snprintf(why, sizeof(why), "output larger than %u bytes", OUT_MAX);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		/* the result below */
	} else if (WIFEXITED(status)) {
		flags = WEXITSTATUS(status) == EXIT_UNRECOVERABLE ? JOBQ_FAIL_UNRECOVERABLE : 0;
		if (line[0])
			snprintf(why, sizeof(why), "%s", line);
		else
			snprintf(why, sizeof(why), "exited with status %d", WEXITSTATUS(status));
	} else {
		int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
		if (line[0])
			snprintf(why, sizeof(why), "%s", line);
		else
			snprintf(why, sizeof(why), "killed by %s (%d)", signal_name(sig), sig);
	}
	rc = why[0] ? jobq_job_set_error(job, flags, "%s", why) : set_result_from(job, &out);
	if (rc >= 0)
		cli_log_line(JOBQ_LOG_INFO, "work", ctx->queue, jobq_job_id_of(job),
		             "job %s (%s) completed in %lld ms", jobq_job_id_of(job),
		             jobq_job_name(job), (long long)((cli_now_us() - start) / 1000));
	else if (!jobq_job_is_cancelled(job))
		cli_log_line(JOBQ_LOG_INFO, "work", ctx->queue, jobq_job_id_of(job),
		             "job %s (%s) attempt %u failed after %lld ms: %s", jobq_job_id_of(job),
		             jobq_job_name(job), jobq_job_attempts_made(job) + 1,
		             (long long)((cli_now_us() - start) / 1000),
		             why[0] ? why : "no result");
	free(out.p);
	free(errb.p);
	free(repb.p);
	return rc < 0 ? JOBQ_EUSER : 0;
}

static int
handle(jobq_job *job, void *payload) {
	work_ctx *ctx = payload;
	long long n = atomic_fetch_add(&ctx->started, 1) + 1;
	int rc;

	if (ctx->max_jobs > 0 && n >= ctx->max_jobs)
		jobq_worker_stop(ctx->w);
	atomic_fetch_add(&ctx->running, 1);
	atomic_store(&ctx->last_activity_us, cli_now_us());
	rc = run_command(job, ctx);
	if (rc >= 0)
		atomic_fetch_add(&ctx->completed, 1);
	else if (!jobq_job_is_cancelled(job)) /* a cancelled job goes back to waiting */
		atomic_fetch_add(&ctx->failed, 1);
	atomic_fetch_add(&ctx->finished, 1);
	atomic_store(&ctx->last_activity_us, cli_now_us());
	atomic_fetch_sub(&ctx->running, 1);
	return rc;
}

/*
 * What the worker sees beside the jobs, one log line each on stderr. Runs on the worker's
 * threads (one fprintf per line keeps lines whole).
 */
static void
on_worker_event(const jobq_worker_event *e, void *payload) {
	work_ctx *ctx = payload;
	const char *what = "event";
	jobq_log_level level = JOBQ_LOG_WARN;
	switch (e->type) {
	case JOBQ_WORKER_STORE_DOWN:
		what = "store outage";
		level = JOBQ_LOG_ERROR;
		atomic_store(&ctx->store_down, 1);
		break;
	case JOBQ_WORKER_STORE_UP:
		what = "store recovered";
		level = JOBQ_LOG_INFO;
		atomic_store(&ctx->store_down, 0);
		break;
	case JOBQ_WORKER_LOCK_LOST:
		what = "lock lost";
		break;
	case JOBQ_WORKER_RESULT_REFUSED:
		what = "result refused";
		break;
	case JOBQ_WORKER_RESULT_RECORDED:
		what = "result recorded";
		level = JOBQ_LOG_INFO;
		break;
	case JOBQ_WORKER_RESULT_DROPPED:
		what = "result given up";
		atomic_fetch_add(&ctx->dropped, 1);
		break;
	}
	cli_log_line(level, "worker", ctx->queue, e->job_id, "%s: %s%s%s%s", what, e->message,
	             e->error ? " (" : "", e->error ? jobq_error_name(e->error) : "",
	             e->error ? ")" : "");
}

/* Is the command runnable? (posix_spawnp's own search, checked once up front.) */
static int
command_exists(const char *cmd) {
	const char *path, *p;
	char full[4096];

	if (strchr(cmd, '/'))
		return access(cmd, X_OK) == 0;
	path = getenv("PATH");
	if (!path)
		path = "/bin:/usr/bin";
	for (p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		struct stat st;
		snprintf(full, sizeof(full), "%.*s/%s", (int)n, n ? p : ".", cmd);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
			return 1;
		if (!end)
			return 0;
		p = end;
	}
}

int
cli_cmd_work(int argc, char **argv) {
	int64_t concurrency = 1, max_jobs = 0, idle_exit = 0, timeout = 0, lock_ms = 30000;
	int64_t stalled_interval = 30000, max_stalled = 1, shutdown_ms = 30000, stderr_log = 0;
	int64_t metrics = 0;
	int64_t roc = -1, rof = -1;
	int roc_seen = 0, rof_seen = 0;
	const char *log_format = "text", *worker_name = NULL;
	int64_t limit_max = 0, limit_duration = 0;
	const cli_opt opts[] = {
	    {"concurrency", 'c', CLI_OPT_INT, &concurrency, 1, 1024, 0, NULL},
	    {"max-jobs", 0, CLI_OPT_INT, &max_jobs, 1, INT64_MAX, 0, NULL},
	    {"idle-exit", 0, CLI_OPT_INT, &idle_exit, 1, INT64_MAX / 2000, 0, NULL},
	    {"timeout", 0, CLI_OPT_INT, &timeout, 1, INT64_MAX / 2000, 0, NULL},
	    {"lock-ms", 0, CLI_OPT_INT, &lock_ms, 10, INT32_MAX, 0, NULL},
	    {"stalled-interval", 0, CLI_OPT_INT, &stalled_interval, 10, INT32_MAX, 0, NULL},
	    {"max-stalled", 0, CLI_OPT_INT, &max_stalled, 0, 1000000, 0, NULL},
	    {"shutdown-timeout", 0, CLI_OPT_INT, &shutdown_ms, 0, INT32_MAX, 0, NULL},
	    {"stderr-log", 0, CLI_OPT_OPTINT, &stderr_log, 1, 10000, 100, NULL},
	    {"metrics", 0, CLI_OPT_INT, &metrics, 1, JOBQ_METRICS_MAX_POINTS, 0, NULL},
	    {"log", 0, CLI_OPT_STRING, &log_format, 0, 0, 0, NULL},
	    {"name", 0, CLI_OPT_STRING, &worker_name, 0, 0, 0, NULL},
	    {"remove-on-complete", 0, CLI_OPT_OPTINT, &roc, 0, INT64_MAX, 0, &roc_seen},
	    {"remove-on-fail", 0, CLI_OPT_OPTINT, &rof, 0, INT64_MAX, 0, &rof_seen},
	    {"limit-max", 0, CLI_OPT_INT, &limit_max, 1, JOBQ_LIMIT_MAX, 0, NULL},
	    {"limit-duration", 0, CLI_OPT_INT, &limit_duration, 1, JOBQ_LIMIT_MAX, 0, NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	jobq_store *store;
	jobq_queue *q;
	jobq_worker_options wo;
	work_ctx ctx;
	sigset_t sigs;
	int rc, sig = 0;
	const char *why = NULL;

	if ((rc = cli_parse(&a, argc, argv, opts, 1, 1)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if (a.npos < 1)
		return cli_usage_fail("missing QUEUE");
	if (!a.rest || a.nrest < 1)
		return cli_usage_fail(
		    "missing the command: jobq work QUEUE [OPTIONS] -- CMD [ARGS...]");
	if (!command_exists(a.rest[0]))
		return cli_usage_fail("command not found or not executable: '%s'", a.rest[0]);
	if (strcmp(log_format, "text") != 0 && strcmp(log_format, "json") != 0)
		return cli_usage_fail("invalid --log '%s': expected text or json", log_format);
	if ((limit_max > 0) != (limit_duration > 0))
		return cli_usage_fail("--limit-max and --limit-duration go together");
	cli_log_install(strcmp(log_format, "json") == 0 ? CLI_LOG_JSON : CLI_LOG_TEXT, cli_g.quiet);

	memset(&ctx, 0, sizeof(ctx));
	ctx.cmd = a.rest;
	ctx.queue = a.pos[0];
	ctx.timeout_ms = timeout;
	ctx.max_jobs = max_jobs;
	ctx.stderr_log = stderr_log;
	atomic_init(&ctx.started, 0);
	atomic_init(&ctx.finished, 0);
	atomic_init(&ctx.failed, 0);
	atomic_init(&ctx.completed, 0);
	atomic_init(&ctx.running, 0);
	atomic_init(&ctx.last_activity_us, cli_now_us());
	atomic_init(&ctx.dropped, 0);
	atomic_init(&ctx.store_down, 0);

	/* Signals are taken by sigtimedwait below; every thread created from here blocks them.
	 * A shell starts background commands with SIGINT ignored: undo that, or it is lost. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if ((rc = cli_open_queue(&store, &q, a.pos[0])) != 0)
		return rc;

	jobq_worker_options_init(&wo, JOBQ_WORKER_OPTIONS_VERSION);
	if (max_jobs > 0 && concurrency > max_jobs)
		concurrency = max_jobs;
	wo.concurrency = (unsigned)concurrency;
	wo.limiter.max = limit_max;
	wo.limiter.duration_ms = limit_duration;
	wo.lock_ms = lock_ms;
	wo.stalled_interval_ms = stalled_interval;
	wo.max_stalled = (uint32_t)max_stalled;
	wo.metrics_max_data_points = (uint32_t)metrics;
	/* for the jobs that do not set their own, as BullMQ's worker options */
	if (roc_seen)
		cli_set_keep(&wo.remove_on_complete, roc);
	if (rof_seen)
		cli_set_keep(&wo.remove_on_fail, rof);
	wo.on_event = on_worker_event;
	wo.event_payload = &ctx;
	rc = jobq_worker_new(&ctx.w, q, handle, &ctx, &wo);
	if (rc == 0 && worker_name != NULL && (rc = jobq_worker_set_name(ctx.w, worker_name)) < 0)
		jobq_worker_free(ctx.w);
	if (rc < 0) {
		rc = cli_lib_fail(rc, "cannot create the worker");
		cli_close(store, q);
		return rc;
	}
	rc = jobq_worker_start(ctx.w);
	if (rc < 0) {
		rc = cli_lib_fail(rc, "cannot start the worker");
		jobq_worker_free(ctx.w);
		cli_close(store, q);
		return rc;
	}

	for (;;) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		int64_t now;

		sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig > 0) {
			why = sig == SIGINT ? "SIGINT" : "SIGTERM";
			break;
		}
		if (max_jobs > 0 && atomic_load(&ctx.finished) >= max_jobs)
			break;
		now = cli_now_us();
		if (idle_exit > 0 && atomic_load(&ctx.running) == 0 &&
		    now - atomic_load(&ctx.last_activity_us) >= idle_exit * 1000)
			break;
		cli_progress("%s: %lld completed, %lld failed, %d running", a.pos[0],
		             (long long)atomic_load(&ctx.completed),
		             (long long)atomic_load(&ctx.failed), atomic_load(&ctx.running));
	}
	cli_progress_done();
	if (why && !cli_g.quiet && atomic_load(&ctx.running) > 0)
		fprintf(stderr,
		        "jobq work: %s: closing, waiting up to %lld ms for %d running jobs\n", why,
		        (long long)shutdown_ms, atomic_load(&ctx.running));
	rc = jobq_worker_close(ctx.w, shutdown_ms);
	if (rc < 0)
		rc = cli_lib_fail(rc, "closing the worker");
	jobq_worker_free(ctx.w);
	cli_close(store, q);
	if (rc > 0)
		return rc;
	if (cli_g.json)
		cli_print_json(json_pack("{s:I,s:I}", "completed",
		                         (json_int_t)atomic_load(&ctx.completed), "failed",
		                         (json_int_t)atomic_load(&ctx.failed)));
	if (atomic_load(&ctx.store_down))
		return cli_fail(CLI_EXIT_STORE, "stopped while the store is unreachable");
	if (atomic_load(&ctx.dropped) > 0)
		return cli_fail(CLI_EXIT_STORE,
		                "gave up %lld result(s) the store refused (their jobs will run "
		                "again)",
		                (long long)atomic_load(&ctx.dropped));
	if (atomic_load(&ctx.failed) > 0)
		return cli_fail(CLI_EXIT_FAILED, "%lld of %lld attempts failed",
		                (long long)atomic_load(&ctx.failed),
		                (long long)atomic_load(&ctx.finished));
	return 0;
}
