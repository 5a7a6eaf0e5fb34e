/*
 * The memory backend's event log: a ring of the newest EV_RING_MAX events per queue, each
 * stored as the engine's (kind, job id, previous state, number, strings) and formatted with
 * the engine's fields only when read (see memory_int.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "backends/memory/memory_int.h"
#include "engine/events.h"

int
jobq_mem__ring_grow(evring *r) {
	size_t ncap = r->cap ? r->cap * 2 : EV_RING_MIN;
	mevent *nbuf = jobq__malloc(ncap * sizeof(*nbuf));
	if (nbuf == NULL)
		return JOBQ_ENOMEM;
	for (uint64_t s = r->first; s < r->next; s++)
		nbuf[s & (ncap - 1)] = r->buf[s & (r->cap - 1)];
	jobq__free(r->buf);
	r->buf = nbuf;
	r->cap = ncap;
	return 0;
}

void
jobq_mem__ring_clear(evring *r) {
	for (uint64_t s = r->first; s < r->next; s++)
		jobq__free(r->buf[s & (r->cap - 1)].heap);
	r->first = r->next;
}

/* Drops the events from sequence `from` on (rollback of a failed add). */
void
jobq_mem__ring_truncate(evring *r, uint64_t from) {
	for (uint64_t s = from > r->first ? from : r->first; s < r->next; s++)
		jobq__free(r->buf[s & (r->cap - 1)].heap);
	r->next = from;
	if (r->first > from)
		r->first = from;
}

static void
ev_wake_readers(mqueue *q) {
	if (q->ev_waiters)
		pthread_cond_broadcast(&q->ev_cv);
}

void
jobq_mem__ev_store(mqueue *q, int type, const char *job_id, size_t l0, int prev, int64_t num,
                   const char *s1, size_t l1, const char *s2, size_t l2, char *pre) {
	evring *r = &q->ev;
	if (r->next - r->first == r->cap) {
		if (r->cap >= EV_RING_MAX || jobq_mem__ring_grow(r) < 0) {
			if (r->cap == 0) {
				jobq__free(pre);
				return;
			}
			mevent *old = &r->buf[r->first & (r->cap - 1)];
			if (old->heap != NULL)
				jobq__free(old->heap);
			r->first++;
		}
	}
	mevent *e = &r->buf[r->next & (r->cap - 1)];
	size_t total = l0 + l1 + l2 + 3;
	char *dst = e->inl;
	e->heap = NULL;
	if (total <= EV_INLINE) {
		jobq__free(pre);
	} else {
		e->heap = pre != NULL ? pre : jobq__malloc(total);
		if (e->heap != NULL) {
			dst = e->heap;
		} else {
			l1 = l2 = 0;
			if (l0 > EV_INLINE - 3)
				l0 = EV_INLINE - 3;
		}
	}
	/* Most events carry a job id only: copy what there is. */
	if (l0 > 0)
		memcpy(dst, job_id, l0);
	dst[l0] = '\0';
	if (l1 > 0)
		memcpy(dst + l0 + 1, s1, l1);
	dst[l0 + 1 + l1] = '\0';
	if (l2 > 0)
		memcpy(dst + l0 + l1 + 2, s2, l2);
	dst[l0 + l1 + l2 + 2] = '\0';
	e->type = (uint8_t)type;
	e->prev = (uint8_t)prev;
	e->num = num;
	e->seq = r->next++;
	ev_wake_readers(q);
}

/* Formats one stored event into `list`. */
static int
ev_format(jobq_event_list *list, const mevent *e) {
	char id[24], num[24];
	const char *s0 = e->heap ? e->heap : e->inl;
	const char *s1 = s0 + strlen(s0) + 1;
	const char *s2 = s1 + strlen(s1) + 1;
	jobq_event_field f[ENG_EV_FIELDS_MAX];
	const char *job_id = s0;
	snprintf(id, sizeof(id), "%" PRIu64, e->seq);
	snprintf(num, sizeof(num), "%" PRId64, e->num);
	size_t n = jobq_eng__event_fields(f, &job_id, e->type, e->prev, num, s1, s2);
	return jobq_event_list__append(list, id, jobq_eng__event_name(e->type), job_id, n, f);
}

/* Parses a cursor: "$" (newest), "0" or a sequence number, optionally "N-M" as a stream id. */
static int
parse_cursor(uint64_t *out, mqueue *q, const char *after) {
	if (after == NULL || strcmp(after, JOBQ_EVENTS_NOW) == 0) {
		*out = q->ev.next - 1;
		return 0;
	}
	const char *p = after;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			goto bad;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '-') {
		p++;
		if (*p < '0' || *p > '9')
			goto bad;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p != '\0')
		goto bad;
	*out = v;
	return 0;
bad:
	return jobq_error_set(JOBQ_EINVAL, "invalid event cursor '%s' (want \"0\", \"$\" or an id)",
	                      after);
}

int
jobq_mem__events_read(jobq_event_list **out, jobq_backend_queue *q, const char *after, size_t max,
                      int64_t timeout_ms) {
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "memory backend: events_read needs out");
	jobq_event_list *list = NULL;
	int rc = jobq_event_list__new(&list);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&q->mu);
	uint64_t a = 0;
	rc = parse_cursor(&a, q, after);
	if (rc < 0)
		goto out;
	if (q->ev.next - 1 <= a && timeout_ms != 0) {
		uint64_t gen = q->gen;
		int64_t deadline = timeout_ms > 0 ? jobq__mono_ms() + timeout_ms : 0;
		struct timespec ts;
		if (timeout_ms > 0)
			jobq__ms_to_timespec(&ts, deadline);
		q->ev_waiters++;
		while (q->ev.next - 1 <= a && q->gen == gen) {
			if (timeout_ms > 0) {
				if (pthread_cond_timedwait(&q->ev_cv, &q->mu, &ts) != 0 &&
				    jobq__mono_ms() >= deadline)
					break;
			} else {
				pthread_cond_wait(&q->ev_cv, &q->mu);
			}
		}
		q->ev_waiters--;
	}
	uint64_t start = a + 1 > q->ev.first ? a + 1 : q->ev.first;
	size_t n = 0;
	for (uint64_t s = start; s < q->ev.next && (max == 0 || n < max); s++, n++) {
		rc = ev_format(list, &q->ev.buf[s & (q->ev.cap - 1)]);
		if (rc < 0)
			goto out;
	}
	if (n == 0) {
		char cur[24];
		uint64_t c = a < q->ev.next - 1 ? a : q->ev.next - 1;
		snprintf(cur, sizeof(cur), "%" PRIu64, c);
		rc = jobq_event_list__set_cursor(list, cur);
	}
out:
	pthread_mutex_unlock(&q->mu);
	if (rc < 0) {
		jobq_event_list_free(list);
		return rc;
	}
	*out = list;
	return 0;
}

/* --- waiting for work ------------------------------------------------------------------- */
