/*
 * The events of the in-process engine: their kinds, names and fields, written once. A backend
 * stores an event as (kind, job id, previous state, a number, up to two strings) and turns it
 * into the public fields with jobq_eng__event_fields, when it is stored (LMDB) or read
 * (memory).
 */
#ifndef JOBQ_ENGINE_EVENTS_H
#define JOBQ_ENGINE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "jobq/events.h"
#include "jobq/job.h"

typedef enum eng_event {
	ENG_EV_ADDED,             /* s1: the job's name */
	ENG_EV_WAITING,           /* prev (0: none, on add) */
	ENG_EV_DELAYED,           /* num: the due time */
	ENG_EV_ACTIVE,            /* prev */
	ENG_EV_PROGRESS,          /* s1: the progress JSON */
	ENG_EV_COMPLETED,         /* s1: the result JSON */
	ENG_EV_FAILED,            /* s1: the failure reason */
	ENG_EV_RETRIES_EXHAUSTED, /* num: attempts made */
	ENG_EV_STALLED,
	ENG_EV_DRAINED, /* a queue event: no job */
	ENG_EV_REMOVED, /* prev */
	ENG_EV_CLEANED, /* num: how many; a queue event */
	ENG_EV_PAUSED,
	ENG_EV_RESUMED,
	ENG_EV_DUPLICATED,
	ENG_EV_DEDUPLICATED,     /* the owner's id; s1: the dedup id, s2: the id asked for */
	ENG_EV_WAITING_CHILDREN, /* a parent of a flow added; prev (0: none) */
	ENG_EV__COUNT
} eng_event;

/* The public name of event kind `type` ("added", ...). */
const char *jobq_eng__event_name(int type);

/* Room for the fields of any event kind. */
#define ENG_EV_FIELDS_MAX 3

/*
 * The public fields of an event: fills f (ENG_EV_FIELDS_MAX) and returns how many; *job_id is
 * set to NULL for queue events. `num` is the event's number in decimal; `prev` a jobq_state
 * or 0. The strings are borrowed.
 */
size_t jobq_eng__event_fields(jobq_event_field *f, const char **job_id, int type, int prev,
                              const char *num, const char *s1, const char *s2);

#endif
