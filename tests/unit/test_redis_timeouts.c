/*
 * Servers that do not answer: a tiny fake Redis on loopback (a thread with a listening socket)
 * that accepts and stays silent, answers the connection's setup and then goes silent, sends
 * half of a bulk reply and stops, or announces a $9999999999 bulk. Each call must fail with a
 * clear message within its timeout, nothing may hang, nothing huge may be allocated, and the
 * connection must be dropped and opened again by the next call. Also, on the fixture's real
 * server: blocking waits (events, a worker's wait for jobs) outlast a short command timeout.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "jobq.h"
#include "jobq/sys/backend.h"

enum { TIMEOUT_MS = 300 };

static int64_t
mono_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
scaled_ms(int64_t ms) {
	const char *m = getenv("JOBQ_TEST_TIMEOUT_MULTIPLIER");
	long k = m != NULL ? strtol(m, NULL, 10) : 1;
	return ms * (k > 0 ? k : 1);
}

/* --- the fake server ------------------------------------------------------------------------ */

typedef enum fake_mode {
	FAKE_SILENT,       /* never answers anything */
	FAKE_SETUP_SILENT, /* answers the setup (CLIENT, CONFIG, ...), then nothing */
	FAKE_PARTIAL_BULK, /* answers the setup, then "$10\r\nabc" and nothing more */
	FAKE_HUGE_BULK,    /* answers the setup, then "$9999999999\r\n" and nothing more */
	FAKE_ERROR         /* answers the setup, then "-ERR fake server" to each command */
} fake_mode;

#define FAKE_MAX_CONNS 16

typedef struct fake {
	int lfd;
	int port;
	fake_mode modes[FAKE_MAX_CONNS]; /* by order of connection; the last repeats */
	size_t nmodes;
	atomic_int accepted;
	atomic_int stop;
	pthread_t thread;
	int fds[FAKE_MAX_CONNS];
	char *buf[FAKE_MAX_CONNS];
	size_t len[FAKE_MAX_CONNS];
} fake;

static void
send_str(int fd, const char *s) {
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* The length of the first whole RESP command in [b, b+n) and its first word in `cmd`, or 0. */
static size_t
parse_command(const char *b, size_t n, char *cmd, size_t cmd_size) {
	const char *end = b + n, *p = b;
	if (n < 4 || *p != '*')
		return 0;
	long argc = strtol(p + 1, NULL, 10);
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	if (nl == NULL)
		return 0;
	p = nl + 1;
	cmd[0] = '\0';
	for (long i = 0; i < argc; i++) {
		if (p >= end || *p != '$')
			return 0;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return 0;
		long len = strtol(p + 1, NULL, 10);
		p = nl + 1;
		if (end - p < len + 2)
			return 0;
		if (i == 0)
			snprintf(cmd, cmd_size, "%.*s", (int)(len < 31 ? len : 31), p);
		p += len + 2;
	}
	return (size_t)(p - b);
}

static void
answer(fake *f, int i, fake_mode mode) {
	char cmd[32];
	size_t used;
	while ((used = parse_command(f->buf[i], f->len[i], cmd, sizeof(cmd))) > 0) {
		memmove(f->buf[i], f->buf[i] + used, f->len[i] - used);
		f->len[i] -= used;
		if (mode == FAKE_SILENT)
			continue;
		if (strcasecmp(cmd, "CLIENT") == 0)
			send_str(f->fds[i], ":7\r\n");
		else if (strcasecmp(cmd, "CONFIG") == 0)
			send_str(f->fds[i], "-ERR unknown command 'CONFIG'\r\n");
		else if (strcasecmp(cmd, "AUTH") == 0 || strcasecmp(cmd, "SELECT") == 0 ||
		         strcasecmp(cmd, "SCRIPT") == 0)
			send_str(f->fds[i], "+OK\r\n");
		else if (mode == FAKE_PARTIAL_BULK)
			send_str(f->fds[i], "$10\r\nabc");
		else if (mode == FAKE_HUGE_BULK)
			send_str(f->fds[i], "$9999999999\r\n");
		else if (mode == FAKE_ERROR)
			send_str(f->fds[i], "-ERR fake server\r\n");
	}
}

static void *
fake_run(void *arg) {
	fake *f = arg;
	while (!atomic_load(&f->stop)) {
		struct pollfd pfd[FAKE_MAX_CONNS + 1];
		int n = atomic_load(&f->accepted);
		pfd[0] = (struct pollfd){f->lfd, POLLIN, 0};
		for (int i = 0; i < n; i++)
			pfd[i + 1] = (struct pollfd){f->fds[i], POLLIN, 0};
		if (poll(pfd, (nfds_t)n + 1, 20) <= 0)
			continue;
		if ((pfd[0].revents & POLLIN) && n < FAKE_MAX_CONNS) {
			int fd = accept(f->lfd, NULL, NULL);
			if (fd >= 0) {
				f->fds[n] = fd;
				f->buf[n] = NULL;
				f->len[n] = 0;
				atomic_store(&f->accepted, n + 1);
			}
		}
		for (int i = 0; i < n; i++) {
			if (f->fds[i] < 0 || !(pfd[i + 1].revents & (POLLIN | POLLHUP)))
				continue;
			char tmp[65536];
			ssize_t r = recv(f->fds[i], tmp, sizeof(tmp), 0);
			if (r <= 0) {
				close(f->fds[i]);
				f->fds[i] = -1;
				continue;
			}
			char *grown = realloc(f->buf[i], f->len[i] + (size_t)r);
			if (grown == NULL)
				continue;
			f->buf[i] = grown;
			memcpy(f->buf[i] + f->len[i], tmp, (size_t)r);
			f->len[i] += (size_t)r;
			answer(f, i, f->modes[(size_t)i < f->nmodes ? (size_t)i : f->nmodes - 1]);
		}
	}
	return NULL;
}

static void
fake_start(fake *f, const fake_mode *modes, size_t nmodes) {
	memset(f, 0, sizeof(*f));
	memcpy(f->modes, modes, nmodes * sizeof(*modes));
	f->nmodes = nmodes;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = 0;
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->lfd, 16), 0);
	socklen_t al = sizeof(a);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &al), 0);
	f->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_run, f), 0);
}

static void
fake_stop(fake *f) {
	atomic_store(&f->stop, 1);
	pthread_join(f->thread, NULL);
	for (int i = 0; i < atomic_load(&f->accepted); i++) {
		if (f->fds[i] >= 0)
			close(f->fds[i]);
		free(f->buf[i]);
	}
	close(f->lfd);
}

static int
open_fake(jobq_backend **out, const fake *f) {
	jobq_redis_options o = JOBQ_REDIS_OPTIONS_INIT;
	o.host = "127.0.0.1";
	o.port = f->port;
	o.connect_timeout_ms = TIMEOUT_MS;
	o.command_timeout_ms = TIMEOUT_MS;
	return jobq_backend_redis_new(out, &o);
}

static void
assert_has(const char *s, const char *part) {
	if (strstr(s, part) == NULL)
		fail_msg("'%s' lacks '%s'", s, part);
}

/* --- cases ----------------------------------------------------------------------------------- */

/* A server that accepts and never answers: opening the store fails within the connect
 * timeout (once: a silent server is not tried again and again), saying so. */
static void
silent_server_fails_open(void **state) {
	(void)state;
	fake f;
	fake_mode m = FAKE_SILENT;
	fake_start(&f, &m, 1);
	jobq_backend *b = NULL;
	int64_t t0 = mono_ms();
	int rc = open_fake(&b, &f);
	int64_t took = mono_ms() - t0;
	assert_int_equal(rc, JOBQ_EIO);
	assert_null(b);
	const char *msg = jobq_error_message();
	char where[64];
	snprintf(where, sizeof(where), "127.0.0.1:%d", f.port);
	assert_has(msg, where);
	assert_has(msg, "no reply to CLIENT ID within 300 ms");
	assert_has(msg, "connect_timeout_ms");
	assert_int_equal(atomic_load(&f.accepted), 1);
	assert_true(took < scaled_ms(10 * TIMEOUT_MS)); /* it did not hang */
	fake_stop(&f);

	/* the same through a URL, and through the jobq command's path (jobq_store_open) */
	fake_start(&f, &m, 1);
	char url[128];
	snprintf(url, sizeof(url), "redis://:secret@127.0.0.1:%d/?connect_timeout_ms=%d", f.port,
	         TIMEOUT_MS);
	jobq_store *s = NULL;
	assert_int_equal(jobq_store_open(&s, url, NULL), JOBQ_EIO);
	assert_has(jobq_error_message(), "no reply to");
	fake_stop(&f);
}

/* Runs one call (counts) against a server that answered the setup and then misbehaves in
 * `mode`; the call fails within the command timeout, and the next call, on a fresh
 * connection, gets the server's answer. */
static void
misbehaving_reply(fake_mode mode) {
	fake f;
	fake_mode modes[2] = {mode, FAKE_ERROR};
	fake_start(&f, modes, 2);
	jobq_backend *b = NULL;
	jobq_store *s = NULL;
	jobq_queue *q = NULL;
	assert_int_equal(open_fake(&b, &f), 0);
	assert_int_equal(jobq_store_open_backend(&s, b, NULL), 0);
	assert_int_equal(jobq_queue_open(&q, s, "q"), 0);

	jobq_counts c;
	int64_t t0 = mono_ms();
	int rc = jobq_queue_counts(&c, q);
	int64_t took = mono_ms() - t0;
	assert_int_equal(rc, JOBQ_EIO);
	const char *msg = jobq_error_message();
	assert_has(msg, "no reply to EVALSHA within 300 ms (command_timeout_ms");
	assert_true(took < scaled_ms(10 * TIMEOUT_MS));
	int before = atomic_load(&f.accepted);

	/* the next call opens a new connection and reads that connection's answer */
	rc = jobq_queue_counts(&c, q);
	assert_int_equal(rc, JOBQ_EBACKEND);
	assert_has(jobq_error_message(), "fake server");
	assert_int_equal(atomic_load(&f.accepted), before + 1);

	jobq_queue_close(q);
	jobq_store_close(s);
	fake_stop(&f);
}

static void
silent_after_setup(void **state) {
	(void)state;
	misbehaving_reply(FAKE_SETUP_SILENT);
}

static void
partial_bulk_reply(void **state) {
	(void)state;
	misbehaving_reply(FAKE_PARTIAL_BULK);
}

/* "$9999999999" announces a 10 GB reply: the call times out like any other, and nothing of
 * that size is allocated. */
static void
huge_bulk_header(void **state) {
	(void)state;
	misbehaving_reply(FAKE_HUGE_BULK);
	struct rusage ru;
	assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
	assert_true(ru.ru_maxrss < 1024L * 1024L); /* KiB: under 1 GiB at its peak */
}

static int
complete_it(jobq_job *job, void *payload) {
	(void)payload;
	return jobq_job_set_result(job, "1", 1);
}

/* On the fixture's real server with a command timeout far shorter than the waits: an event
 * read and a worker's wait for jobs block longer than the command timeout without failing. */
static void
blocking_waits_outlast_the_command_timeout(void **state) {
	(void)state;
	const char *sock = getenv("JOBQ_TEST_REDIS_SOCKET");
	if (sock == NULL || access(sock, F_OK) != 0)
		skip();
	char url[512], prefix[64];
	snprintf(prefix, sizeof(prefix), "jobqtimeout%ld", (long)getpid());
	snprintf(url, sizeof(url), "redis+unix://%s?prefix=%s&command_timeout_ms=100", sock,
	         prefix);
	jobq_store *s = NULL;
	jobq_queue *q = NULL;
	assert_int_equal(jobq_store_open(&s, url, NULL), 0);
	assert_int_equal(jobq_queue_open(&q, s, "q"), 0);

	/* an event read that waits 600 ms for nothing: no events, no error */
	jobq_event_list *ev = NULL;
	int64_t t0 = mono_ms();
	assert_int_equal(jobq_events_read(&ev, q, JOBQ_EVENTS_NOW, 10, 600), 0);
	assert_true(mono_ms() - t0 >= 500);
	assert_int_equal(jobq_event_list_count(ev), 0);
	jobq_event_list_free(ev);

	/* a job waited for past the command timeout: the wait times out as asked, not as I/O */
	jobq_job_id id;
	assert_true(jobq_queue_add(&id, q, "n", "{}", 2, NULL) >= 0);
	assert_int_equal(jobq_queue_wait_job(NULL, q, id.str, 500), JOBQ_ETIMEDOUT);

	/* the wait of a worker for jobs (BZPOPMIN on the marker), on the backend itself: 600
	 * ms of waiting is no error */
	jobq_backend *b = NULL;
	jobq_backend_queue *bq = NULL;
	jobq_redis_options o = JOBQ_REDIS_OPTIONS_INIT;
	o.unix_path = sock;
	o.prefix = prefix;
	o.command_timeout_ms = 100;
	assert_int_equal(jobq_backend_redis_new(&b, &o), 0);
	assert_int_equal(b->queue_open(&bq, b, "idle"), 0);
	t0 = mono_ms();
	assert_int_equal(b->wait_for_work(bq, jobq_clock_system(), 600), 0);
	assert_true(mono_ms() - t0 >= 500);
	b->queue_close(bq);
	b->free(b);

	/* a worker that waits for jobs for 5 times the command timeout, then gets the job
	 * added meanwhile */
	assert_int_equal(jobq_queue_remove(q, id.str), 0);
	jobq_worker_options wo = JOBQ_WORKER_OPTIONS_INIT;
	jobq_worker *w = NULL;
	assert_int_equal(jobq_worker_new(&w, q, complete_it, NULL, &wo), 0);
	assert_int_equal(jobq_worker_start(w), 0);
	struct timespec idle = {0, 500 * 1000000L};
	nanosleep(&idle, NULL); /* the worker's wait must last past the command timeout */
	assert_true(jobq_queue_add(&id, q, "n", "{}", 2, NULL) >= 0);
	jobq_job *done = NULL;
	assert_int_equal(jobq_queue_wait_job(&done, q, id.str, scaled_ms(10000)), 0);
	assert_string_equal(jobq_job_result(done), "1");
	jobq_job_free(done);
	jobq_worker_free(w);
	assert_int_equal(jobq_queue_obliterate(q, 1), 0);
	jobq_queue_close(q);
	jobq_store_close(s);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(silent_server_fails_open),
	    cmocka_unit_test(silent_after_setup),
	    cmocka_unit_test(partial_bulk_reply),
	    cmocka_unit_test(huge_bulk_header),
	    cmocka_unit_test(blocking_waits_outlast_the_command_timeout),
	};
	return cmocka_run_group_tests_name("unit.redis_timeouts", tests, NULL, NULL);
}
