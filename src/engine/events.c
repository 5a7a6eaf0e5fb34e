/*
 * Event names and fields of the in-process engine (see events.h), as BullMQ's events stream
 * carries them: the same keys on every backend.
 */
#include <stddef.h>

#include "engine/events.h"

static const char *const names[ENG_EV__COUNT] = {
    [ENG_EV_ADDED] = "added",
    [ENG_EV_WAITING] = "waiting",
    [ENG_EV_DELAYED] = "delayed",
    [ENG_EV_ACTIVE] = "active",
    [ENG_EV_PROGRESS] = "progress",
    [ENG_EV_COMPLETED] = "completed",
    [ENG_EV_FAILED] = "failed",
    [ENG_EV_RETRIES_EXHAUSTED] = "retries-exhausted",
    [ENG_EV_STALLED] = "stalled",
    [ENG_EV_DRAINED] = "drained",
    [ENG_EV_REMOVED] = "removed",
    [ENG_EV_CLEANED] = "cleaned",
    [ENG_EV_PAUSED] = "paused",
    [ENG_EV_RESUMED] = "resumed",
    [ENG_EV_DUPLICATED] = "duplicated",
    [ENG_EV_DEDUPLICATED] = "deduplicated",
    [ENG_EV_WAITING_CHILDREN] = "waiting-children",
};

const char *
jobq_eng__event_name(int type) {
	return (unsigned)type < ENG_EV__COUNT ? names[type] : "unknown";
}

size_t
jobq_eng__event_fields(jobq_event_field *f, const char **job_id, int type, int prev,
                       const char *num, const char *s1, const char *s2) {
	size_t n = 0;
	switch (type) {
	case ENG_EV_ADDED:
		f[n++] = (jobq_event_field){"name", s1};
		break;
	case ENG_EV_WAITING:
	case ENG_EV_WAITING_CHILDREN:
	case ENG_EV_ACTIVE:
	case ENG_EV_REMOVED:
		if (prev)
			f[n++] = (jobq_event_field){"prev", jobq_state_name((jobq_state)prev)};
		break;
	case ENG_EV_DELAYED:
		f[n++] = (jobq_event_field){"delay", num};
		break;
	case ENG_EV_PROGRESS:
		f[n++] = (jobq_event_field){"data", s1};
		break;
	case ENG_EV_COMPLETED:
		f[n++] = (jobq_event_field){"returnvalue", s1};
		f[n++] = (jobq_event_field){"prev", "active"};
		break;
	case ENG_EV_FAILED:
		f[n++] = (jobq_event_field){"failedReason", s1};
		f[n++] = (jobq_event_field){"prev", "active"};
		break;
	case ENG_EV_RETRIES_EXHAUSTED:
		f[n++] = (jobq_event_field){"attemptsMade", num};
		break;
	case ENG_EV_CLEANED:
		f[n++] = (jobq_event_field){"count", num};
		*job_id = NULL;
		break;
	case ENG_EV_DRAINED:
	case ENG_EV_PAUSED:
	case ENG_EV_RESUMED:
		*job_id = NULL;
		break;
	case ENG_EV_DEDUPLICATED:
		f[n++] = (jobq_event_field){"deduplicationId", s1};
		f[n++] = (jobq_event_field){"deduplicatedJobId", s2};
		break;
	default:
		break;
	}
	return n;
}
