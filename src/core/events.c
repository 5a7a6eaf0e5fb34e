/*
 * Event lists (built by backends, read by users), the cursor-based read, and callback
 * subscriptions. Each event's strings live in one allocation with its field array.
 */
#include <string.h>

#include "core.h"

struct jobq_event_list {
	size_t count;
	size_t cap;
	jobq_event *events;
	char *cursor;
};

int
jobq_event_list__new(jobq_event_list **out) {
	*out = jobq__calloc(1, sizeof(**out));
	return *out ? 0 : JOBQ_ENOMEM;
}

static size_t
str_size(const char *s) {
	return s ? strlen(s) + 1 : 0;
}

static char *
put_str(char **cursor, const char *s) {
	if (s == NULL)
		return NULL;
	size_t n = strlen(s) + 1;
	char *dst = *cursor;
	memcpy(dst, s, n);
	*cursor += n;
	return dst;
}

int
jobq_event_list__append(jobq_event_list *list, const char *id, const char *event,
                        const char *job_id, size_t nfields, const jobq_event_field *fields) {
	if (id == NULL || event == NULL)
		return jobq_error_set(JOBQ_EINVAL, "event list: id and event are required");
	size_t size =
	    nfields * sizeof(jobq_event_field) + str_size(id) + str_size(event) + str_size(job_id);
	for (size_t i = 0; i < nfields; i++)
		size += str_size(fields[i].key) + str_size(fields[i].value);
	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 16;
		jobq_event *events = jobq__realloc(list->events, cap * sizeof(*events));
		if (events == NULL)
			return JOBQ_ENOMEM;
		list->events = events;
		list->cap = cap;
	}
	/* The field array comes first in the block, so the block pointer is the array's. */
	jobq_event_field *block = jobq__malloc(size);
	if (block == NULL)
		return JOBQ_ENOMEM;
	char *strings = (char *)(block + nfields);
	jobq_event *e = &list->events[list->count];
	for (size_t i = 0; i < nfields; i++) {
		block[i].key = put_str(&strings, fields[i].key ? fields[i].key : "");
		block[i].value = put_str(&strings, fields[i].value ? fields[i].value : "");
	}
	e->id = put_str(&strings, id);
	e->event = put_str(&strings, event);
	e->job_id = put_str(&strings, job_id);
	e->nfields = nfields;
	e->fields = block;
	list->count++;
	return 0;
}

int
jobq_event_list__set_cursor(jobq_event_list *list, const char *cursor) {
	char *copy = jobq__strdup(cursor);
	if (cursor != NULL && copy == NULL)
		return JOBQ_ENOMEM;
	jobq__free(list->cursor);
	list->cursor = copy;
	return 0;
}

size_t
jobq_event_list_count(const jobq_event_list *list) {
	return list ? list->count : 0;
}

const jobq_event *
jobq_event_list_at(const jobq_event_list *list, size_t i) {
	return list && i < list->count ? &list->events[i] : NULL;
}

const char *
jobq_event_list_cursor(const jobq_event_list *list) {
	if (list == NULL)
		return NULL;
	if (list->count > 0)
		return list->events[list->count - 1].id;
	return list->cursor;
}

void
jobq_event_list_free(jobq_event_list *list) {
	if (list == NULL)
		return;
	for (size_t i = 0; i < list->count; i++)
		jobq__free((void *)(uintptr_t)list->events[i].fields);
	jobq__free(list->events);
	jobq__free(list->cursor);
	jobq__free(list);
}

const char *
jobq_event_get(const jobq_event *e, const char *key) {
	if (e == NULL || key == NULL)
		return NULL;
	if (strcmp(key, "event") == 0)
		return e->event;
	if (strcmp(key, "jobId") == 0)
		return e->job_id;
	for (size_t i = 0; i < e->nfields; i++)
		if (strcmp(e->fields[i].key, key) == 0)
			return e->fields[i].value;
	return NULL;
}

int
jobq_events_read(jobq_event_list **out, jobq_queue *q, const char *after, size_t max,
                 int64_t timeout_ms) {
	if (out == NULL || q == NULL)
		return jobq_error_set(JOBQ_EINVAL, "events read: out and queue are required");
	if (atomic_load(&q->closed))
		return jobq_error_set(JOBQ_ECLOSED, "events read: queue %s is closed", q->name);
	if (after == NULL || after[0] == '\0')
		after = JOBQ_EVENTS_START;
	if (max == 0)
		max = 1000;
	*out = NULL;
	int rc = jobq_queue__enter_wait(q);
	if (rc < 0)
		return rc;
	rc = q->store->backend->events_read(out, q->bq, after, max, timeout_ms);
	if (atomic_load(&q->closed)) {
		/* Closed while we waited: once we leave the wait, close may free `q`, so this is
		 * the last look at it, and the caller must not call again. */
		rc = jobq_error_set(JOBQ_ECLOSED, "events read: queue %s was closed", q->name);
		jobq_queue__leave_wait(q);
		jobq_event_list_free(*out);
		*out = NULL;
		return rc;
	}
	jobq_queue__leave_wait(q);
	if (rc >= 0 && *out == NULL)
		rc = jobq_event_list__new(out);
	if (rc >= 0 && jobq_event_list_cursor(*out) == NULL && strcmp(after, JOBQ_EVENTS_NOW) != 0)
		rc = jobq_event_list__set_cursor(*out, after);
	return rc;
}

/* --- subscriptions ------------------------------------------------------------------------ */

struct jobq_subscription {
	jobq_queue *queue;
	jobq_event_fn fn;
	void *payload;
	char *cursor;
	atomic_int stop;
	pthread_t thread;
};

/* Reads in short blocking rounds so that unsubscribe is noticed within one round. */
enum { SUBSCRIPTION_ROUND_MS = 200 };

static void *
subscription_main(void *arg) {
	jobq_subscription *sub = arg;
	while (!atomic_load(&sub->stop)) {
		jobq_event_list *list = NULL;
		int rc =
		    jobq_events_read(&list, sub->queue, sub->cursor, 256, SUBSCRIPTION_ROUND_MS);
		if (rc < 0) {
			jobq_event_list_free(list);
			if (rc == JOBQ_ECLOSED)
				break;
			continue; /* the backend retries its connection; try again */
		}
		for (size_t i = 0; i < list->count && !atomic_load(&sub->stop); i++)
			if (sub->fn(&list->events[i], sub->payload) != 0)
				atomic_store(&sub->stop, 1);
		const char *cursor = jobq_event_list_cursor(list);
		if (cursor != NULL && (sub->cursor == NULL || strcmp(cursor, sub->cursor) != 0)) {
			char *copy = jobq__strdup(cursor);
			if (copy != NULL) {
				jobq__free(sub->cursor);
				sub->cursor = copy;
			}
		}
		jobq_event_list_free(list);
	}
	return NULL;
}

int
jobq_events_subscribe(jobq_subscription **out, jobq_queue *q, const char *after, jobq_event_fn fn,
                      void *payload) {
	if (out == NULL || q == NULL || fn == NULL)
		return jobq_error_set(JOBQ_EINVAL,
		                      "subscribe: out, queue and callback are required");
	jobq_subscription *sub = jobq__calloc(1, sizeof(*sub));
	if (sub == NULL)
		return JOBQ_ENOMEM;
	sub->queue = q;
	sub->fn = fn;
	sub->payload = payload;
	/* Resolve "$" now, so events after the subscribe call are not missed. */
	if (after != NULL && strcmp(after, JOBQ_EVENTS_NOW) == 0) {
		jobq_event_list *list = NULL;
		int rc = jobq_events_read(&list, q, JOBQ_EVENTS_NOW, 1, 0);
		if (rc < 0) {
			jobq__free(sub);
			return rc;
		}
		const char *c = jobq_event_list_cursor(list);
		sub->cursor = jobq__strdup(c ? c : JOBQ_EVENTS_START);
		jobq_event_list_free(list);
	} else {
		sub->cursor = jobq__strdup(after ? after : JOBQ_EVENTS_START);
	}
	if (sub->cursor == NULL) {
		jobq__free(sub);
		return JOBQ_ENOMEM;
	}
	int err = pthread_create(&sub->thread, NULL, subscription_main, sub);
	if (err != 0) {
		jobq__free(sub->cursor);
		jobq__free(sub);
		return jobq_error_set(JOBQ_ERROR, "subscribe: cannot start thread (error %d)", err);
	}
	*out = sub;
	return 0;
}

void
jobq_events_unsubscribe(jobq_subscription *sub) {
	if (sub == NULL)
		return;
	atomic_store(&sub->stop, 1);
	pthread_join(sub->thread, NULL);
	jobq__free(sub->cursor);
	jobq__free(sub);
}
