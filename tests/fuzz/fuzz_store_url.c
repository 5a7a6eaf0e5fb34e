/*
 * Store URLs: every URL parser of the library, called directly (no store opened, no server
 * contacted, no directory created): mem://NAME, lmdb: with its query keys, redis:// and
 * redis+unix:// with user, password, host, port, db and query keys. A refused URL must come
 * with an error message; an accepted one must hold values its backend can use.
 */
#include "fuzz.h"

#include "jobq.h"
#include "backends/backend.h"
#ifdef JOBQ_HAVE_REDIS
#include "backends/redis/redis_int.h"
#endif

static void
check_refused(int rc) {
	FUZZ_CHECK(rc < 0);
	const char *msg = jobq_error_message();
	FUZZ_CHECK(msg != NULL && strlen(msg) > 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (size > 4096)
		return 0;
	char *url = fuzz_cstr(data, size);
	if (url == NULL)
		return 0;
	int rc;
	if (strncmp(url, "mem:", 4) == 0) {
		jobq_backend *b = NULL;
		rc = jobq__memory_open_url(&b, url);
		if (rc == 0) {
			FUZZ_CHECK(b != NULL && jobq__backend_check(b) == 0);
			b->free(b);
		} else {
			check_refused(rc);
		}
	}
#ifdef JOBQ_HAVE_LMDB
	char dir[512];
	jobq_lmdb_options lo;
	rc = jobq__lmdb_url_parse(dir, sizeof(dir), &lo, url);
	if (rc == 0) {
		size_t n = strnlen(dir, sizeof(dir));
		FUZZ_CHECK(n > 0 && n < sizeof(dir) && strstr(url, dir) != NULL);
		FUZZ_CHECK(lo.version == JOBQ_LMDB_OPTIONS_VERSION);
	} else {
		check_refused(rc);
	}
#endif
#ifdef JOBQ_HAVE_REDIS
	rq_url ru;
	rc = rq_url_parse(&ru, url);
	if (rc == 0) {
		FUZZ_CHECK((ru.host != NULL && ru.host[0] != '\0') != (ru.unix_path != NULL));
		FUZZ_CHECK(ru.port >= 0 && ru.port <= 65535 && ru.db >= 0);
		FUZZ_CHECK(ru.prefix == NULL || ru.prefix[0] != '\0');
		FUZZ_CHECK(ru.user == NULL || ru.password != NULL);
		FUZZ_CHECK(ru.connect_timeout_ms >= 0 && ru.command_timeout_ms >= 0 &&
		           ru.connect_wait_ms >= 0);
		rq_url_free(&ru);
	} else {
		check_refused(rc);
	}
#endif
	free(url);
	return 0;
}
