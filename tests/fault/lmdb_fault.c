/*
 * LMDB fault tests with real processes (fork+exec of lmdb_helper):
 *
 * - multiprocess: 2 producer and 4 worker processes move 50,000 jobs through one store that
 *   starts with a 1 MiB map (grown while they run); every job is acknowledged once, handled
 *   once and completed once.
 * - killed_worker: a process holding locked jobs is killed with SIGKILL; a worker in another
 *   process reaps them after the lock expires and completes them.
 * - crash_rounds: producers and workers are killed with SIGKILL at random moments of a heavy
 *   run (JOBQ_FAULT_ROUNDS rounds, default 3): the store opens cleanly, the integrity check
 *   (jobq_store_check) finds nothing, every acknowledged add is there, the counts agree with
 *   the jobs listed per state, a fresh worker completes every job left, and the check finds
 *   nothing again.
 *
 * JOBQ_FAULT_DURABILITY=sync|group|periodic picks the mode of the multiprocess case (default
 * periodic: a process crash loses nothing in any mode, and synced commits would take minutes).
 * Crash rounds cycle through all three modes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobq.h"

#ifndef LMDB_HELPER_PATH
#error "LMDB_HELPER_PATH must name the lmdb_helper binary"
#endif

typedef struct fixture {
	char dir[256];
} fixture;

static int64_t
mono_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int64_t ms) {
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

static int
setup(void **state) {
	fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/jobq-fault-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int
teardown(void **state) {
	fixture *f = *state;
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0) {
		print_error("could not remove %s\n", f->dir);
	}
	free(f);
	return 0;
}

/* Starts the helper with `args` (NULL-terminated, without argv[0]); stdout to `out_fd`. */
static pid_t
spawn(const char *const *args, int out_fd) {
	const char *argv[16];
	size_t n = 0;
	argv[n++] = LMDB_HELPER_PATH;
	for (; args[n - 1] && n < 15; n++) {
		argv[n] = args[n - 1];
	}
	argv[n] = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (out_fd >= 0) {
			dup2(out_fd, 1);
		}
		execv(argv[0], (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	return pid;
}

/* Waits for every pid; kills the rest once one fails or `timeout_ms` has passed. Returns the
 * number of failures. */
static int
wait_all(pid_t *pids, size_t n, int64_t timeout_ms) {
	int64_t deadline = mono_ms() + timeout_ms;
	size_t left = n;
	int failures = 0;
	while (left > 0) {
		for (size_t i = 0; i < n; i++) {
			if (pids[i] <= 0) {
				continue;
			}
			int st;
			pid_t r = waitpid(pids[i], &st, WNOHANG);
			if (r == pids[i]) {
				if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
					print_error("helper %ld ended with status %d\n",
					            (long)pids[i], st);
					failures++;
				}
				pids[i] = 0;
				left--;
			}
		}
		if (left > 0 && (failures > 0 || mono_ms() > deadline)) {
			for (size_t i = 0; i < n; i++) {
				if (pids[i] > 0) {
					kill(pids[i], SIGKILL);
					waitpid(pids[i], NULL, 0);
					pids[i] = 0;
					failures++;
				}
			}
			print_error("helpers failed or did not finish in %lld ms\n",
			            (long long)timeout_ms);
			break;
		}
		if (left > 0) {
			sleep_ms(10); /* polling children's exit; the deadline bounds it */
		}
	}
	return failures;
}

/* --- id sets ------------------------------------------------------------------------------ */

typedef struct idset {
	size_t n, cap;
	char **ids;
} idset;

static void
idset_add(idset *s, const char *id) {
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->ids = realloc(s->ids, s->cap * sizeof(char *));
		assert_non_null(s->ids);
	}
	s->ids[s->n++] = strdup(id);
}

static void
idset_free(idset *s) {
	for (size_t i = 0; i < s->n; i++) {
		free(s->ids[i]);
	}
	free(s->ids);
	memset(s, 0, sizeof(*s));
}

static int
cmp_str(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
idset_sort(idset *s) {
	if (s->n > 1) { /* qsort of a NULL array (nothing handled yet) is undefined */
		qsort(s->ids, s->n, sizeof(char *), cmp_str);
	}
}

static int
idset_has(const idset *s, const char *id) {
	return bsearch(&id, s->ids, s->n, sizeof(char *), cmp_str) != NULL;
}

/* Number of ids that appear more than once (sorted set). */
static size_t
idset_dups(const idset *s) {
	size_t d = 0;
	for (size_t i = 1; i < s->n; i++) {
		d += strcmp(s->ids[i - 1], s->ids[i]) == 0;
	}
	return d;
}

/* Reads complete lines ("id\n") of `path` into `s`; a torn last line is ignored. */
static void
read_log(idset *s, const char *path) {
	FILE *fp = fopen(path, "r");
	if (!fp) {
		return;
	}
	char line[256];
	while (fgets(line, sizeof(line), fp)) {
		size_t len = strlen(line);
		if (len == 0 || line[len - 1] != '\n') {
			break;
		}
		line[len - 1] = '\0';
		idset_add(s, line);
	}
	fclose(fp);
}

static void
log_path(char *buf, size_t cap, const fixture *f, const char *kind, int i) {
	snprintf(buf, cap, "%s/%s-%d.log", f->dir, kind, i);
}

/* --- checks on a store ----------------------------------------------------------------------- */

static const jobq_state states[] = {JOBQ_STATE_WAITING, JOBQ_STATE_PRIORITIZED, JOBQ_STATE_DELAYED,
                                    JOBQ_STATE_ACTIVE,  JOBQ_STATE_COMPLETED,   JOBQ_STATE_FAILED};

/* Lists every state; checks each count and that no id is listed twice. Returns the total. */
static uint64_t
check_counts(jobq_queue *q, idset *all, idset *completed) {
	jobq_counts c;
	assert_int_equal(jobq_queue_counts(&c, q), 0);
	uint64_t want[] = {c.waiting, c.prioritized, c.delayed, c.active, c.completed, c.failed};
	uint64_t total = 0;
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		jobq_job_list *l = NULL;
		assert_int_equal(jobq_queue_list(&l, q, states[i], 0, 0), 0);
		size_t n = l ? l->count : 0;
		if (n != want[i]) {
			fail_msg("state %s: counts say %llu, %zu listed",
			         jobq_state_name(states[i]), (unsigned long long)want[i], n);
		}
		for (size_t k = 0; k < n; k++) {
			assert_int_equal(jobq_job_state(l->jobs[k]), states[i]);
			idset_add(all, jobq_job_id_of(l->jobs[k]));
			if (completed && states[i] == JOBQ_STATE_COMPLETED) {
				idset_add(completed, jobq_job_id_of(l->jobs[k]));
			}
		}
		total += n;
		jobq_job_list_free(l);
	}
	idset_sort(all);
	assert_int_equal(idset_dups(all), 0);
	return total;
}

static jobq_queue *
open_store(jobq_store **s, const char *url) {
	jobq_queue *q;
	int rc = jobq_store_open(s, url, NULL);
	if (rc < 0) {
		fail_msg("store %s did not open: %s", url, jobq_error_message());
	}
	assert_int_equal(jobq_queue_open(&q, *s, "fault"), 0);
	return q;
}

/* --- multiprocess ------------------------------------------------------------------------- */

static void
test_multiprocess(void **state) {
	fixture *f = *state;
	const char *mode = getenv("JOBQ_FAULT_DURABILITY");
	const char *jobs_env = getenv("JOBQ_FAULT_JOBS");
	long total = jobs_env ? atol(jobs_env) : 50000;
	char url[400], count[32], totals[32], logs[6][300];
	/* A 1 MiB map to start with: the six processes grow it many times while they run. */
	snprintf(url, sizeof(url), "lmdb://%s/store?durability=%s&map_size=1048576", f->dir,
	         mode ? mode : "periodic");
	snprintf(count, sizeof(count), "%ld", total / 2);
	snprintf(totals, sizeof(totals), "%ld", total);
	pid_t pids[6];
	int64_t t0 = mono_ms();
	for (int i = 0; i < 4; i++) {
		log_path(logs[i], sizeof(logs[i]), f, "worker", i);
		const char *args[] = {"work", url, "fault", logs[i], totals, "4", "30000", NULL};
		pids[i] = spawn(args, -1);
	}
	for (int i = 0; i < 2; i++) {
		log_path(logs[4 + i], sizeof(logs[4 + i]), f, "producer", i);
		const char *args[] = {"produce", url, "fault", count, "50", logs[4 + i], NULL};
		pids[4 + i] = spawn(args, -1);
	}
	assert_int_equal(wait_all(pids, 6, 250000), 0);
	print_message("multiprocess: %ld jobs, 2 producers + 4 workers (%s): %lld ms\n", total,
	              mode ? mode : "periodic", (long long)(mono_ms() - t0));

	idset acked = {0}, handled = {0}, stored = {0};
	for (int i = 0; i < 2; i++) {
		read_log(&acked, logs[4 + i]);
	}
	for (int i = 0; i < 4; i++) {
		read_log(&handled, logs[i]);
	}
	idset_sort(&acked);
	idset_sort(&handled);
	assert_int_equal(acked.n, (size_t)total);
	assert_int_equal(idset_dups(&acked), 0);
	assert_int_equal(handled.n, (size_t)total); /* each job ran exactly once */
	assert_int_equal(idset_dups(&handled), 0);
	for (size_t i = 0; i < acked.n; i++) {
		if (!idset_has(&handled, acked.ids[i])) {
			fail_msg("job %s was acknowledged but never handled", acked.ids[i]);
		}
	}
	jobq_store *s;
	jobq_queue *q = open_store(&s, url);
	jobq_counts c;
	assert_int_equal(jobq_queue_counts(&c, q), 0);
	assert_int_equal(c.completed, (uint64_t)total);
	assert_int_equal(c.waiting + c.active + c.delayed + c.prioritized + c.failed, 0);
	assert_int_equal(check_counts(q, &stored, NULL), (uint64_t)total);
	for (size_t i = 0; i < acked.n; i++) {
		assert_true(idset_has(&stored, acked.ids[i]));
	}
	jobq_queue_close(q);
	jobq_store_close(s);
	idset_free(&acked);
	idset_free(&handled);
	idset_free(&stored);
}

/* --- a killed worker's jobs come back -----------------------------------------------------------
 */

static void
test_killed_worker(void **state) {
	fixture *f = *state;
	char url[400], log[300];
	snprintf(url, sizeof(url), "lmdb://%s/store", f->dir);
	jobq_store *s;
	jobq_queue *q = open_store(&s, url);
	for (int i = 0; i < 20; i++) {
		jobq_job_id id;
		assert_int_equal(jobq_queue_add(&id, q, "job", "1", 1, NULL), 0);
	}
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	const char *hold_args[] = {"hold", url, "fault", "5", "1000", NULL};
	pid_t holder = spawn(hold_args, fds[1]);
	close(fds[1]);
	FILE *out = fdopen(fds[0], "r");
	char line[256];
	idset held = {0};
	while (fgets(line, sizeof(line), out) && strcmp(line, "held\n") != 0) {
		line[strcspn(line, "\n")] = '\0';
		idset_add(&held, line);
	}
	fclose(out);
	assert_int_equal(held.n, 5);
	jobq_counts c;
	assert_int_equal(jobq_queue_counts(&c, q), 0);
	assert_int_equal(c.active, 5);
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);

	log_path(log, sizeof(log), f, "worker", 0);
	const char *work_args[] = {"work", url, "fault", log, "20", "2", "1000", NULL};
	pid_t worker = spawn(work_args, -1);
	assert_int_equal(wait_all(&worker, 1, 60000), 0);
	assert_int_equal(jobq_queue_counts(&c, q), 0);
	assert_int_equal(c.completed, 20);
	for (size_t i = 0; i < held.n; i++) {
		jobq_job *job;
		assert_int_equal(jobq_queue_get_job(&job, q, held.ids[i]), 0);
		assert_int_equal(jobq_job_state(job), JOBQ_STATE_COMPLETED);
		assert_true(jobq_job_stalled_count(job) >= 1);
		jobq_job_free(job);
	}
	idset_free(&held);
	jobq_queue_close(q);
	jobq_store_close(s);
}

/* --- random kills ------------------------------------------------------------------------------
 */

/* The integrity check (jobq_store_check) finds nothing wrong with the store. */
static void
check_store(jobq_store *s, int round, const char *when) {
	jobq_check_report *r = NULL;
	int rc = jobq_store_check(&r, s, 20);
	if (rc < 0) {
		fail_msg("round %d, %s: check: %s", round, when, jobq_error_message());
	}
	for (size_t i = 0; r->messages && i < r->messages->count; i++) {
		print_error("round %d, %s: %s\n", round, when, r->messages->items[i]);
	}
	uint64_t problems = r->problems;
	jobq_check_report_free(r);
	if (problems > 0) {
		fail_msg("round %d, %s: the check found %llu problems", round, when,
		         (unsigned long long)problems);
	}
}

static void
crash_round(const fixture *f, int round, unsigned int *seed) {
	static const char *const modes[] = {"sync", "group", "periodic"};
	const char *mode = modes[round % 3];
	char dir[300], url[400], logs[4][300], batch[16];
	snprintf(dir, sizeof(dir), "%s/round%d", f->dir, round);
	snprintf(url, sizeof(url), "lmdb://%s?durability=%s", dir, mode);
	snprintf(batch, sizeof(batch), "%d", 1 + (int)(rand_r(seed) % 20));
	pid_t pids[4];
	for (int i = 0; i < 2; i++) {
		log_path(logs[i], sizeof(logs[i]), f, "crash-producer", round * 10 + i);
		const char *args[] = {"produce", url, "fault", "0", batch, logs[i], NULL};
		pids[i] = spawn(args, -1);
	}
	for (int i = 0; i < 2; i++) {
		log_path(logs[2 + i], sizeof(logs[2 + i]), f, "crash-worker", round * 10 + i);
		const char *args[] = {"work", url, "fault", logs[2 + i], "0", "3", "500", NULL};
		pids[2 + i] = spawn(args, -1);
	}
	/* Kill everyone at random moments, in a random order. */
	sleep_ms(150 + rand_r(seed) % 500);
	for (int k = 0; k < 4; k++) {
		int i = (int)(rand_r(seed) % 4);
		while (pids[i] == 0) {
			i = (i + 1) % 4;
		}
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
		pids[i] = 0;
		sleep_ms(rand_r(seed) % 80);
	}

	idset acked = {0}, handled = {0}, stored = {0}, completed = {0};
	for (int i = 0; i < 2; i++) {
		read_log(&acked, logs[i]);
		read_log(&handled, logs[2 + i]);
	}
	idset_sort(&handled);
	jobq_store *s;
	jobq_queue *q = open_store(&s, url);
	check_store(s, round, "after the crash");
	uint64_t total = check_counts(q, &stored, &completed);
	for (size_t i = 0; i < acked.n; i++) {
		if (!idset_has(&stored, acked.ids[i])) {
			fail_msg("round %d (%s): acknowledged job %s is missing", round, mode,
			         acked.ids[i]);
		}
	}
	for (size_t i = 0; i < completed.n; i++) {
		if (!idset_has(&handled, completed.ids[i])) {
			fail_msg("round %d: job %s completed but never handled", round,
			         completed.ids[i]);
		}
	}
	/* A fresh worker (reaper on) finishes every job left, stalled ones included. None when
	 * the producers were killed before their first add (a total of 0 would mean "run on"). */
	char log[300];
	log_path(log, sizeof(log), f, "crash-finisher", round);
	char totals[32];
	snprintf(totals, sizeof(totals), "%llu", (unsigned long long)total);
	const char *args[] = {"work", url, "fault", log, totals, "4", "500", NULL};
	if (total > 0) {
		pid_t fin = spawn(args, -1);
		assert_int_equal(wait_all(&fin, 1, 120000), 0);
	}
	jobq_counts c;
	assert_int_equal(jobq_queue_counts(&c, q), 0);
	assert_int_equal(c.completed, total);
	check_store(s, round, "after the finisher");
	print_message("round %d (%s, batch %s): %zu acknowledged, %llu stored, %zu completed "
	              "before the crash\n",
	              round, mode, batch, acked.n, (unsigned long long)total, completed.n);
	jobq_queue_close(q);
	jobq_store_close(s);
	idset_free(&acked);
	idset_free(&handled);
	idset_free(&stored);
	idset_free(&completed);
}

static void
test_crash_rounds(void **state) {
	fixture *f = *state;
	const char *r = getenv("JOBQ_FAULT_ROUNDS");
	int rounds = r ? atoi(r) : 3;
	const char *seed_env = getenv("JOBQ_FAULT_SEED");
	unsigned int seed = seed_env ? (unsigned int)atol(seed_env) : (unsigned int)time(NULL);
	print_message("crash rounds: %d, seed %u\n", rounds, seed);
	for (int i = 0; i < rounds; i++) {
		crash_round(f, i, &seed);
	}
}

int
main(int argc, char **argv) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_multiprocess, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_killed_worker, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crash_rounds, setup, teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1) {
		cmocka_set_test_filter(argv[1]);
	}
	return cmocka_run_group_tests_name("fault.lmdb", tests, NULL, NULL);
}
