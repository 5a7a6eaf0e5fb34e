/*
 * Memory backend: where BullMQ's per-minute metrics are kept (the rule that keeps them is the
 * engine's eng_metrics_count): the counters and points of each queue, the room reserved for
 * them before a step, and the metrics slot.
 */
#include "memory_int.h"

mmetrics *
jobq_mem__metrics_of(mqueue *q, jobq_state s) {
	return &q->metrics[s == JOBQ_STATE_FAILED];
}

int
jobq_mem__metrics_reserve(mqueue *q, jobq_state s, uint32_t max) {
	mmetrics *mm = jobq_mem__metrics_of(q, s);
	if (max == 0 || mm->cap >= max)
		return 0;
	int64_t *p = jobq__realloc(mm->pts, (size_t)max * sizeof(*p));
	if (p == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory for metrics");
	mm->pts = p;
	mm->cap = max;
	return 0;
}

void
jobq_mem__metrics_push(mmetrics *mm, int64_t point, uint32_t zeros, uint32_t max) {
	size_t add = (size_t)zeros + 1; /* <= max <= cap: reserved */
	size_t keep = mm->n < max - add ? mm->n : max - add;
	memmove(mm->pts + add, mm->pts, keep * sizeof(*mm->pts));
	memset(mm->pts, 0, zeros * sizeof(*mm->pts));
	mm->pts[zeros] = point;
	mm->n = keep + add;
}

int
jobq_mem__metrics(jobq_metrics **out, jobq_backend_queue *q, jobq_state kind, int64_t start,
                  int64_t end) {
	jobq_metrics *m = jobq__calloc(1, sizeof(*m));
	if (m == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory reading metrics");
	pthread_mutex_lock(&q->mu);
	const mmetrics *mm = jobq_mem__metrics_of(q, kind);
	size_t first = 0, n = 0;
	jobq__range_clip(&first, &n, mm->n, start, end);
	if (n > 0 && (m->data = jobq__malloc(n * sizeof(*m->data))) == NULL) {
		pthread_mutex_unlock(&q->mu);
		jobq__free(m);
		return jobq_error_set(JOBQ_ENOMEM, "memory backend: out of memory reading metrics");
	}
	if (n > 0)
		memcpy(m->data, mm->pts + first, n * sizeof(*m->data));
	m->data_len = n;
	m->points = mm->n;
	m->count = mm->count;
	m->prev_ts = mm->prev_ts;
	m->prev_count = mm->prev_count;
	pthread_mutex_unlock(&q->mu);
	*out = m;
	return 0;
}

void
jobq_mem__metrics_reset(mqueue *q) {
	for (size_t i = 0; i < 2; i++) {
		jobq__free(q->metrics[i].pts);
		memset(&q->metrics[i], 0, sizeof(q->metrics[i]));
	}
}
