/**
 * @file
 * jobq — the lifecycle events of a queue, with BullMQ's event names and fields: added,
 * waiting, delayed, active, progress, completed, failed, retries-exhausted, stalled, drained,
 * removed, cleaned, paused, resumed, duplicated, deduplicated.
 */
#ifndef JOBQ_EVENTS_H
#define JOBQ_EVENTS_H

#include "common.h"
#include "queue.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One field of an event, as in the BullMQ events stream. */
typedef struct jobq_event_field {
	const char *key;   /**< the field's name */
	const char *value; /**< its value, as text */
} jobq_event_field;

/** One event. `id` is its cursor: events are ordered by it. */
typedef struct jobq_event {
	const char *id;     /**< the event's id, its cursor */
	const char *event;  /**< "completed", ... */
	const char *job_id; /**< NULL for queue events (drained, paused, ...) */
	size_t nfields;     /**< the other fields: prev, returnvalue, failedReason, delay, ... */
	const jobq_event_field *fields; /**< `nfields` fields */
} jobq_event;

/** Events read by jobq_events_read (opaque); free with jobq_event_list_free(). */
typedef struct jobq_event_list jobq_event_list;
/** Number of events in `list`. */
JOBQ_EXTERN size_t jobq_event_list_count(const jobq_event_list *list);
/** Event `i` (0-based, < the count) of `list`; it lives as long as the list. */
JOBQ_EXTERN const jobq_event *jobq_event_list_at(const jobq_event_list *list, size_t i);
/** The cursor after the last event of the list (or the one read from, if empty). */
JOBQ_EXTERN const char *jobq_event_list_cursor(const jobq_event_list *list);
/** Frees a list and its events. NULL is a no-op. */
JOBQ_EXTERN void jobq_event_list_free(jobq_event_list *list);
/** Value of field `key` of `e` ("jobId" and "event" included), or NULL. */
JOBQ_EXTERN const char *jobq_event_get(const jobq_event *e, const char *key);

#define JOBQ_EVENTS_START "0" /**< cursor before the oldest retained event */
#define JOBQ_EVENTS_NOW   "$" /**< cursor after the newest event */

/**
 * Reads up to `max` events after cursor `after` (JOBQ_EVENTS_START, JOBQ_EVENTS_NOW or an
 * event id). If none is there, waits up to `timeout_ms` of real time (0: do not wait; < 0:
 * forever) for one. An empty list is not an error. JOBQ_ECLOSED (and `*out` NULL) if `q` is
 * closed, also when jobq_queue_close closes it while this call waits: `q` is then gone, and
 * the caller must not use it again. Thread safety: any thread.
 */
JOBQ_EXTERN int jobq_events_read(jobq_event_list **out, jobq_queue *q, const char *after,
                                 size_t max, int64_t timeout_ms);

/** A subscription started by jobq_events_subscribe (opaque). */
typedef struct jobq_subscription jobq_subscription;
/** Called on the subscription's thread for each event; return non-zero to stop. */
typedef int (*jobq_event_fn)(const jobq_event *e, void *payload);

/** Calls `fn` for every event after `after`, from a thread of its own, until unsubscribed. */
JOBQ_EXTERN int jobq_events_subscribe(jobq_subscription **out, jobq_queue *q, const char *after,
                                      jobq_event_fn fn, void *payload);
/** Stops and joins the subscription thread, then frees. Not from inside `fn`. */
JOBQ_EXTERN void jobq_events_unsubscribe(jobq_subscription *sub);

#ifdef __cplusplus
}
#endif
#endif
