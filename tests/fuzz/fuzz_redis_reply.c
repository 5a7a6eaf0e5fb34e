/*
 * Redis replies: bytes from the server through hiredis's reply reader (the one the
 * connections use), each reply then through the backend's conversion of replies: a job hash
 * (HGETALL) into a job, an addJobs reply into ids and outcomes, an XREAD reply into events,
 * an array of ids into strings. Whatever the server sends, the conversion must refuse it or
 * give values within bounds, never crash.
 */
#include "fuzz.h"

#include <hiredis/hiredis.h>

#include "jobq.h"
#include "backends/redis/redis_int.h"

enum { ADD_TOTAL = 8 };

static void
convert(const redisReply *r) {
	jobq_job *job = NULL;
	if (rq_job_decode(&job, "3", 1, r, JOBQ_STATE_ACTIVE, "tok") == 0) {
		FUZZ_CHECK(job != NULL && strcmp(job->id, "3") == 0 && job->data != NULL);
		jobq_job_free(job);
	}

	/* one call of ADD_TOTAL jobs, read as the whole call and as one step of it */
	jobq_job_id ids[ADD_TOTAL];
	int outcomes[ADD_TOTAL];
	if (rq_add_reply_read(ids, outcomes, r, 0, ADD_TOTAL, ADD_TOTAL) == 0)
		for (size_t i = 0; i < ADD_TOTAL; i++)
			FUZZ_CHECK(memchr(ids[i].str, '\0', sizeof(ids[i].str)) != NULL);
	(void)rq_add_reply_read(ids, NULL, r, 3, 2, ADD_TOTAL);

	jobq_event_list *events = NULL;
	if (jobq_event_list__new(&events) == 0) {
		(void)rq_events_from_reply(events, r);
		jobq_event_list_free(events);
	}

	jobq_strings *strings = NULL;
	(void)rq_strings_from_reply(&strings, r);
	jobq_strings_free(strings);
}

/*
 * hiredis 0.14's reader allocates an array reply's element pointers as its header counts them,
 * before any element arrives: "*1000000000\r\n" alone asks calloc for 8 GB (a reader error if
 * that fails; nothing of ours). Inputs that announce more elements than they have bytes are
 * left out, so that libFuzzer's malloc limit finds our allocations, not that one.
 */
static int
counts_fit(const uint8_t *data, size_t size) {
	for (size_t i = 0; i < size; i++) {
		if (data[i] != '*')
			continue;
		unsigned long long n = 0;
		for (size_t k = i + 1; k < size && data[k] >= '0' && data[k] <= '9'; k++) {
			n = n * 10 + (unsigned)(data[k] - '0');
			if (n > size)
				return 0;
		}
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (size > 65536 || !counts_fit(data, size))
		return 0;
	redisReader *rd = redisReaderCreate();
	if (rd == NULL)
		return 0;
	if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK) {
		for (int i = 0; i < 64; i++) {
			void *reply = NULL;
			if (redisReaderGetReply(rd, &reply) != REDIS_OK || reply == NULL)
				break;
			convert(reply);
			freeReplyObject(reply);
		}
	}
	redisReaderFree(rd);
	return 0;
}
