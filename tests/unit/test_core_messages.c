/* Unit tests of what the library says: long error messages kept whole, store URLs shown with
 * their password hidden, and the ids reserved for a queue's own storage keys. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"

/* A message longer than any fixed buffer comes back whole, and can quote the message before
 * it (a caller wrapping the error of a call that failed). */
static void
long_messages_are_kept_whole(void **state) {
	(void)state;
	char reason[3000];
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	assert_int_equal(jobq_error_set(JOBQ_EIO, "first: %s: end", reason), JOBQ_EIO);
	const char *m = jobq_error_message();
	assert_int_equal(strlen(m), strlen(reason) + strlen("first: : end"));
	assert_non_null(strstr(m, ": end"));
	jobq_error_set(JOBQ_EIO, "outer: %s", jobq_error_message());
	m = jobq_error_message();
	assert_int_equal(strncmp(m, "outer: first: rrr", 17), 0);
	assert_non_null(strstr(m, ": end"));
	/* a short one after a long one, and wrapping a short one */
	jobq_error_set(JOBQ_EINVAL, "short");
	jobq_error_set(JOBQ_EINVAL, "wrapped %s", jobq_error_message());
	assert_string_equal(jobq_error_message(), "wrapped short");
	jobq_error_clear();
	assert_string_equal(jobq_error_message(), "");
}

static void *
thread_sets_long_message(void *arg) {
	char *big = arg;
	jobq_error_set(JOBQ_EIO, "%s", big);
	return strlen(jobq_error_message()) == strlen(big) ? big : NULL;
}

/* Messages are per thread; a thread's long message is freed when it exits (ASan and valgrind
 * see a leak otherwise). */
static void
long_messages_are_per_thread(void **state) {
	(void)state;
	char *big = malloc(5000);
	assert_non_null(big);
	memset(big, 'x', 4999);
	big[4999] = '\0';
	jobq_error_set(JOBQ_EINVAL, "main");
	pthread_t t;
	void *ret = NULL;
	assert_int_equal(pthread_create(&t, NULL, thread_sets_long_message, big), 0);
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_ptr_equal(ret, big);
	assert_string_equal(jobq_error_message(), "main");
	free(big);
}

static void
expect_redacted(const char *url, const char *want) {
	char buf[256];
	size_t n = jobq_url_redact(buf, sizeof(buf), url);
	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));
}

/* Passwords in store URLs: user:password@, a bare secret@, ?password=; nothing else moves. */
static void
urls_are_shown_without_passwords(void **state) {
	(void)state;
	expect_redacted("redis://:hunter2@host:6379", "redis://:***@host:6379");
	expect_redacted("redis://alice:hunter2@host:6379/2?prefix=p",
	                "redis://alice:***@host:6379/2?prefix=p");
	expect_redacted("redis://hunter2@host", "redis://***@host");
	expect_redacted("redis://a:b@c@host", "redis://a:***@host");
	expect_redacted("redis+unix:///tmp/r.sock?user=u&password=hunter2&db=1",
	                "redis+unix:///tmp/r.sock?user=u&password=***&db=1");
	expect_redacted("redis://host:1?PASSWORD=x", "redis://host:1?PASSWORD=***");
	expect_redacted("redis://host:6379", "redis://host:6379");
	expect_redacted("lmdb:rel/dir", "lmdb:rel/dir");
	expect_redacted("mem://x", "mem://x");
	expect_redacted("", "");
	/* a small buffer: cut and terminated, the full length returned */
	char small[12];
	assert_int_equal(jobq_url_redact(small, sizeof(small), "redis://:pw@h:1"),
	                 strlen("redis://:***@h:1"));
	assert_string_equal(small, "redis://:**");
	assert_int_equal(jobq_url_redact(NULL, 0, "redis://:pw@h"), strlen("redis://:***@h"));
}

/* The ids that name a queue's own keys; ids of jobs (generated, custom, BullMQ's three-part
 * scheduler ids) are not reserved. */
static void
reserved_ids_are_the_queue_keys(void **state) {
	(void)state;
	static const char *const reserved[] = {"meta",
	                                       "id",
	                                       "wait",
	                                       "paused",
	                                       "active",
	                                       "prioritized",
	                                       "delayed",
	                                       "completed",
	                                       "failed",
	                                       "stalled",
	                                       "stalled-check",
	                                       "limiter",
	                                       "marker",
	                                       "events",
	                                       "pc",
	                                       "repeat",
	                                       "waiting-children",
	                                       "metrics",
	                                       "de",
	                                       "dn",
	                                       "de:x",
	                                       "dn:x",
	                                       "metrics:completed",
	                                       "metrics:failed:data",
	                                       "1:lock",
	                                       "1:logs",
	                                       "repeat:s",
	                                       "a:b:c:d",
	                                       "0:x"};
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		if (jobq__reserved_id(reserved[i]) == NULL)
			fail_msg("'%s' is not reserved", reserved[i]);
	}
	static const char *const jobs[] = {
	    "1", "42", "my-job", "metaX", "waiting", "repeat:s:1700000000000", "a:b:c", "ids"};
	for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
		if (jobq__reserved_id(jobs[i]) != NULL)
			fail_msg("'%s' is reserved", jobs[i]);
	}
	/* adds refuse them, saying why */
	assert_int_equal(jobq__validate_custom_id("meta"), JOBQ_EINVAL);
	assert_non_null(strstr(jobq_error_message(), "reserved"));
	assert_non_null(strstr(jobq_error_message(), "settings"));
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(long_messages_are_kept_whole),
	    cmocka_unit_test(long_messages_are_per_thread),
	    cmocka_unit_test(urls_are_shown_without_passwords),
	    cmocka_unit_test(reserved_ids_are_the_queue_keys),
	};
	return cmocka_run_group_tests_name("unit.core_messages", tests, NULL, NULL);
}
