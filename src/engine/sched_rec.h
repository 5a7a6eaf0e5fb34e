/*
 * Job schedulers in the in-process engine (memory, LMDB): the stored record of a scheduler
 * (the definition, its iteration count and next time, as BullMQ's `repeat` hash and zset hold
 * them on Redis) and the times of its iterations. The rules that use them are in
 * engine_sched.h.
 */
#ifndef JOBQ_ENGINE_SCHED_REC_H
#define JOBQ_ENGINE_SCHED_REC_H

#include <stddef.h>
#include <stdint.h>

#include "jobq/scheduler.h"
#include "jobq/sys/backend.h"

/* A scheduler record; the strings are owned (jobq_eng__sched_clear frees them). */
typedef struct eng_sched {
	int64_t every_ms, offset_ms, start_ms, end_ms;
	int64_t limit;      /* < 0: none */
	int64_t iterations; /* created so far */
	int64_t next_ms;    /* the pending iteration's time */
	char *pattern, *tz; /* NULL: none */
	char *name;
	char *data;      /* the template's data, JSON */
	char *opts_json; /* the template's options, BullMQ's opts JSON */
} eng_sched;

/* The record as text (*out: jobq__malloc'ed, *len bytes). 0 or JOBQ_ENOMEM. */
int jobq_eng__sched_encode(char **out, size_t *len, const eng_sched *s);
/* Decodes a record; JOBQ_EBACKEND naming `sid` for a damaged one. */
int jobq_eng__sched_decode(eng_sched *s, const char *sid, const char *text, size_t len);
void jobq_eng__sched_clear(eng_sched *s);
/* The public view of record `s` of scheduler `sid` (strings copied). 0 or JOBQ_ENOMEM. */
int jobq_eng__sched_public(jobq_scheduler *out, const char *sid, const eng_sched *s);
/* Sorts `n` schedulers by next time, earliest first (then by id). */
void jobq_eng__sched_sort(jobq_scheduler *items, size_t n);

/*
 * A new or updated record from `spec` (checked by the core) at `now`, with `prev` the record
 * it replaces (NULL: none) and `replacing` whether its pending iteration waits and is replaced:
 * the definition, the iteration count kept (1 when new), and the first time (`pattern_next` for
 * a pattern; for every: as BullMQ's upsert computes it). 0 or JOBQ_ENOMEM (*s cleared).
 */
int jobq_eng__sched_make(eng_sched *s, const jobq_scheduler_spec *spec, const eng_sched *prev,
                         int replacing, int64_t pattern_next, int64_t now);

/*
 * The time of the iteration after the one at s->next_ms, fetched at `now`, as BullMQ's worker
 * computes it: 1 and *next; 0 when the series ends (the limit reached, past the end date, no
 * cron time left); JOBQ_EINVAL for a pattern or zone that cannot be evaluated.
 */
int jobq_eng__sched_following(int64_t *next, const eng_sched *s, const char *sid, int64_t now);

/* "repeat:<sid>:<millis>" into buf (at least JOBQ_ID_MAX + 1 bytes); its length. */
size_t jobq_eng__iteration_id(char *buf, const char *sid, int64_t millis);
/* The scheduler id of iteration id `id` ("repeat:<sid>:<digits>") into buf (JOBQ_ID_MAX + 1
 * bytes) and its millis: 1, or 0 when `id` is not shaped so. */
int jobq_eng__iteration_of(char *buf, int64_t *millis, const char *id, size_t id_len);

/* Sets job->scheduler_id (a new string) when the job is an iteration of a job scheduler, so that
 * the core continues the series when it fetches it. 0 or JOBQ_ENOMEM. */
int jobq_eng__mark_iteration(jobq_job *job);

#endif
