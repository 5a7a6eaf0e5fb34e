/*
 * Clocks. The system clock reads CLOCK_REALTIME. A manual clock holds a time that only moves
 * on jobq_clock_advance, after which it calls its listeners (stores wake their backend's
 * waiters, workers their timers), so nothing that waits on a manual clock polls.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "backends/backend.h"

typedef struct listener {
	jobq_clock_listener_fn fn;
	void *arg;
	struct listener *next;
} listener;

struct jobq_clock {
	int manual;
	pthread_mutex_t mu;
	atomic_int_fast64_t now_ms;
	listener *listeners;
};

static jobq_clock system_clock = {.manual = 0, .mu = PTHREAD_MUTEX_INITIALIZER};

jobq_clock *
jobq_clock_system(void) {
	return &system_clock;
}

int
jobq_clock_manual_new(jobq_clock **out, int64_t start_ms) {
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "clock: out is NULL");
	if (start_ms < 0)
		return jobq_error_set(JOBQ_EINVAL, "clock: start time %lld is negative",
		                      (long long)start_ms);
	jobq_clock *c = jobq__calloc(1, sizeof(*c));
	if (c == NULL)
		return JOBQ_ENOMEM;
	c->manual = 1;
	pthread_mutex_init(&c->mu, NULL);
	atomic_init(&c->now_ms, start_ms);
	*out = c;
	return 0;
}

void
jobq_clock_free(jobq_clock *clock) {
	if (clock == NULL || !clock->manual)
		return;
	for (listener *l = clock->listeners, *next; l != NULL; l = next) {
		next = l->next;
		jobq__free(l);
	}
	pthread_mutex_destroy(&clock->mu);
	jobq__free(clock);
}

int64_t
jobq_clock_now(jobq_clock *clock) {
	if (clock == NULL || !clock->manual) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	return atomic_load(&clock->now_ms);
}

int
jobq_clock_advance(jobq_clock *clock, int64_t ms) {
	if (clock == NULL || !clock->manual)
		return jobq_error_set(JOBQ_EINVAL, "clock: only a manual clock can be advanced");
	if (ms < 0)
		return jobq_error_set(JOBQ_EINVAL, "clock: cannot move back by %lld ms",
		                      (long long)-ms);
	/* Listeners run under the clock's mutex so that unlisten() never races a call. */
	pthread_mutex_lock(&clock->mu);
	atomic_fetch_add(&clock->now_ms, ms);
	for (listener *l = clock->listeners; l != NULL; l = l->next)
		l->fn(l->arg);
	pthread_mutex_unlock(&clock->mu);
	return 0;
}

int
jobq_clock__is_manual(const jobq_clock *clock) {
	return clock != NULL && clock->manual;
}

int
jobq_clock__listen(jobq_clock *clock, jobq_clock_listener_fn fn, void *arg) {
	if (clock == NULL || !clock->manual)
		return 0;
	listener *l = jobq__malloc(sizeof(*l));
	if (l == NULL)
		return JOBQ_ENOMEM;
	l->fn = fn;
	l->arg = arg;
	pthread_mutex_lock(&clock->mu);
	l->next = clock->listeners;
	clock->listeners = l;
	pthread_mutex_unlock(&clock->mu);
	return 0;
}

void
jobq_clock__unlisten(jobq_clock *clock, jobq_clock_listener_fn fn, void *arg) {
	if (clock == NULL || !clock->manual)
		return;
	pthread_mutex_lock(&clock->mu);
	for (listener **pp = &clock->listeners; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->fn == fn && (*pp)->arg == arg) {
			listener *dead = *pp;
			*pp = dead->next;
			jobq__free(dead);
			break;
		}
	}
	pthread_mutex_unlock(&clock->mu);
}

int64_t
jobq_clock__monotonic_ms(void) {
	return jobq__mono_ms();
}

int64_t
jobq_clock__monotonic_us(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
jobq_clock__deadline(struct timespec *ts, int64_t ms) {
	clock_gettime(CLOCK_MONOTONIC, ts);
	if (ms < 0)
		ms = 0;
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec += 1;
		ts->tv_nsec -= 1000000000L;
	}
}

int
jobq_clock__cond_init(pthread_cond_t *cond) {
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return rc == 0 ? 0 : jobq_error_set(JOBQ_ERROR, "pthread_cond_init: %s", strerror(rc));
}
