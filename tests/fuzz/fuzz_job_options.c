/*
 * Job options and JSON: the `opts` JSON of a BullMQ job hash (as Node writes it, or anything
 * else found in Redis) through the Redis job decoder, with the same bytes as the job's data,
 * progress, stacktrace and numeric fields; the decoded options through the options validation,
 * and the valid ones encoded back to JSON and decoded again to the same values. Also the JSON
 * check applied to data, results and progress, and the id and name checks.
 */
#include "fuzz.h"

#include "jobq.h"
#include "core/core.h"
#ifdef JOBQ_HAVE_REDIS
#include "backends/redis/redis_int.h"
#endif

#ifdef JOBQ_HAVE_REDIS
static void
set_str(redisReply *r, const char *s, size_t len) {
	memset(r, 0, sizeof(*r));
	r->type = REDIS_REPLY_STRING;
	r->str = (char *)(uintptr_t)s; /* the decoder only reads it */
	r->len = len;
}

static int
same_str(const char *a, const char *b) {
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* A job hash {name, data, opts, ...} whose every value is `text`, but `opts` is `opts_text`. */
static int
decode(jobq_job **out, const char *opts_text, size_t opts_len, const char *text, size_t len) {
	static const char *const fields[] = {"name", "data",        "opts",      "progress",
	                                     "atm",  "stacktrace",  "timestamp", "priority",
	                                     "deid", "returnvalue", "delay",     "stc"};
	enum { NF = sizeof(fields) / sizeof(fields[0]) };
	redisReply kv[2 * NF], *el[2 * NF], hash;
	for (size_t i = 0; i < NF; i++) {
		set_str(&kv[2 * i], fields[i], strlen(fields[i]));
		if (strcmp(fields[i], "opts") == 0)
			set_str(&kv[2 * i + 1], opts_text, opts_len);
		else
			set_str(&kv[2 * i + 1], text, len);
		el[2 * i] = &kv[2 * i];
		el[2 * i + 1] = &kv[2 * i + 1];
	}
	memset(&hash, 0, sizeof(hash));
	hash.type = REDIS_REPLY_ARRAY;
	hash.elements = 2 * NF;
	hash.element = el;
	return rq_job_decode(out, "1", 1, &hash, JOBQ_STATE_WAITING, "token");
}

static void
check_opts(const char *text, size_t len) {
	jobq_job *job = NULL;
	if (decode(&job, text, len, text, len) < 0)
		return;
	FUZZ_CHECK(job != NULL && job->data != NULL && strlen(job->id) == 1);
	const jobq_job_options *o = &job->opts;
	if (jobq__validate_job_options(o) == 0) {
		char *json = NULL;
		if (rq_opts_to_json(&json, o) < 0) {
			/* refused with a reason (a string that is not UTF-8), never dropped */
			FUZZ_CHECK(strstr(jobq_error_message(), "UTF-8") != NULL);
			jobq_job_free(job);
			return;
		}
		jobq_job *again = NULL;
		FUZZ_CHECK(decode(&again, json, strlen(json), "", 0) == 0);
		const jobq_job_options *a = &again->opts;
		FUZZ_CHECK(a->attempts == o->attempts && a->priority == o->priority);
		FUZZ_CHECK(a->delay_ms == o->delay_ms && a->lifo == o->lifo);
		FUZZ_CHECK(a->backoff.type == o->backoff.type &&
		           a->backoff.delay_ms == o->backoff.delay_ms);
		FUZZ_CHECK(same_str(a->job_id, o->job_id) && same_str(a->dedup_id, o->dedup_id));
		FUZZ_CHECK(a->remove_on_complete.mode == o->remove_on_complete.mode &&
		           a->remove_on_fail.mode == o->remove_on_fail.mode);
		FUZZ_CHECK(a->keep_logs == o->keep_logs && a->size_limit == o->size_limit);
		jobq_job_free(again);
		jobq__free(json);
	}
	jobq_job_free(job);
}
#endif

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (size > 65536)
		return 0;
	char *text = fuzz_cstr(data, size);
	if (text == NULL)
		return 0;
	(void)jobq__validate_json("data", text, size);
	(void)jobq__validate_custom_id(text);
	(void)jobq__validate_queue_name(text);
	(void)jobq__validate_job_name(text);
#ifdef JOBQ_HAVE_REDIS
	check_opts(text, size);
#endif
	free(text);
	return 0;
}
