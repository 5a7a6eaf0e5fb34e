/*
 * Redis backend: what an operator asks about the store (its queues, a queue's workers), and
 * the log lines for a server that stops and starts answering.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq/log.h"
#include "redis_int.h"

/* Each SCAN call asks for this many keys: enough for few round trips, small enough that the
 * server never works long on one call. */
#define SCAN_COUNT      "1000"
#define SCAN_ROUNDS_MAX 1000000 /* a bound on the loop; a real scan ends far sooner */

static int64_t
wall_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
rq_note_lost(redis_backend *b) {
	long long expected = 0, now = wall_ms();
	if (now == 0)
		now = 1;
	if (atomic_compare_exchange_strong(&b->down_since_ms, &expected, now))
		jobq_log_emit(JOBQ_LOG_WARN, "redis", NULL, NULL,
		              "connection to %s lost: %s; reconnecting with backoff", b->where,
		              jobq_error_message());
}

void
rq_note_restored(redis_backend *b) {
	long long since = atomic_exchange(&b->down_since_ms, 0);
	if (since != 0)
		jobq_log_emit(JOBQ_LOG_INFO, "redis", NULL, NULL,
		              "connection to %s restored after %lld ms", b->where,
		              (long long)(wall_ms() - since));
}

/* `s` with the glob characters of SCAN's MATCH escaped, into a new string. */
static char *
glob_escape(const char *s) {
	char *out = jobq__malloc(strlen(s) * 2 + 1), *p = out;
	if (out == NULL)
		return NULL;
	for (; *s; s++) {
		if (strchr("*?[]\\", *s))
			*p++ = '\\';
		*p++ = *s;
	}
	*p = '\0';
	return out;
}

static int
has_name(const jobq_strings *list, const char *s, size_t n) {
	for (size_t i = 0; list != NULL && i < list->count; i++)
		if (strlen(list->items[i]) == n && memcmp(list->items[i], s, n) == 0)
			return 1;
	return 0;
}

/* Adds the queue names of the keys `<prefix>:<queue><suffix>` that SCAN finds. */
static int
scan_suffix(jobq_strings **out, redis_backend *b, const char *esc, const char *suffix) {
	size_t plen = strlen(b->prefix) + 1, slen = strlen(suffix);
	size_t mlen = strlen(esc) + slen + 4;
	char *match = jobq__malloc(mlen);
	char cursor[32] = "0";
	int rc = 0;
	if (match == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis: listing queues: out of memory");
	snprintf(match, mlen, "%s:*%s", esc, suffix);
	for (int round = 0; rc == 0 && round < SCAN_ROUNDS_MAX; round++) {
		const char *argv[] = {"SCAN", cursor, "MATCH", match, "COUNT", SCAN_COUNT};
		redisReply *r = rq_command(&rc, b, 1, 6, argv, NULL);
		if (r == NULL)
			break;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			rc = jobq_error_set(JOBQ_EBACKEND, "redis %s: SCAN: unexpected reply",
			                    b->where);
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		const redisReply *keys = r->element[1];
		for (size_t i = 0; i < keys->elements && rc == 0; i++) {
			const redisReply *k = keys->element[i];
			if (k->type != REDIS_REPLY_STRING || k->len <= plen + slen)
				continue;
			const char *name = k->str + plen;
			size_t n = k->len - plen - slen;
			/* a queue name has no ':' (refused at open): a longer match is another key
			 * (the MATCH star spans colons) */
			if (n <= JOBQ_QUEUE_NAME_MAX && !memchr(name, ':', n) &&
			    !has_name(*out, name, n))
				rc = jobq_strings__append(out, name, n);
		}
		freeReplyObject(r);
		if (strcmp(cursor, "0") == 0)
			break;
	}
	jobq__free(match);
	return rc < 0 ? rc : 0;
}

int
rq_list_queues(jobq_strings **out, jobq_backend *base) {
	redis_backend *b = (redis_backend *)base;
	char *esc = glob_escape(b->prefix);
	if (esc == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis: listing queues: out of memory");
	int rc = scan_suffix(out, b, esc, ":meta");
	if (rc == 0)
		rc = scan_suffix(out, b, esc, ":id");
	jobq__free(esc);
	return rc;
}

/* Whether client `name` is a worker of the queue whose unnamed-worker name is `w` (§6.3). */
static int
is_worker_name(const char *name, size_t n, const char *w) {
	size_t wl = strlen(w);
	if (n < wl || memcmp(name, w, wl) != 0)
		return 0;
	return n == wl || (n > wl + 3 && memcmp(name + wl, ":w:", 3) == 0);
}

int
rq_count_workers(jobq_backend_queue *q) {
	const char *argv[] = {"CLIENT", "LIST"};
	int rc = 0, count = 0;
	redisReply *r = rq_command(&rc, q->b, 1, 2, argv, NULL);
	if (r == NULL)
		return rc < 0 ? rc : JOBQ_EBACKEND;
	if (r->type != REDIS_REPLY_STRING) {
		freeReplyObject(r);
		return jobq_error_set(JOBQ_EBACKEND, "redis %s: CLIENT LIST: unexpected reply",
		                      q->b->where);
	}
	/* one client per line: "id=.. addr=.. name=NAME age=.." */
	for (const char *line = r->str; line != NULL && *line;) {
		const char *end = strchr(line, '\n');
		size_t ll = end ? (size_t)(end - line) : strlen(line);
		for (const char *p = line; p + 5 <= line + ll; p++) {
			if ((p == line || p[-1] == ' ') && memcmp(p, "name=", 5) == 0) {
				const char *v = p + 5, *ve = v;
				while (ve < line + ll && *ve != ' ' && *ve != '\r')
					ve++;
				count += is_worker_name(v, (size_t)(ve - v), q->worker_name);
				break;
			}
		}
		line = end ? end + 1 : NULL;
	}
	freeReplyObject(r);
	return count;
}
