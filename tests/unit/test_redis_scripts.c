/*
 * Every embedded Lua script loads into the real server (this is also the Lua syntax check)
 * and SCRIPT LOAD answers the SHA1 computed at build time, so EVALSHA finds it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "jobq_lua.h"

static void
scripts_load_with_build_sha(void **state) {
	(void)state;
	const char *sock = getenv("JOBQ_TEST_REDIS_SOCKET");
	if (sock == NULL || access(sock, F_OK) != 0)
		skip();
	redisContext *c = redisConnectUnix(sock);
	assert_non_null(c);
	assert_int_equal(c->err, 0);
	assert_true(JOBQ_LUA_COUNT > 0);
	for (int i = 0; i < JOBQ_LUA_COUNT; i++) {
		const jobq_lua_script *s = &jobq_lua_scripts[i];
		assert_int_equal(strlen(s->sha1), 40);
		assert_int_equal(s->numkeys, 16);
		redisReply *r = redisCommand(c, "SCRIPT LOAD %b", s->bytes, s->len);
		assert_non_null(r);
		if (r->type == REDIS_REPLY_ERROR)
			fail_msg("script %s does not load: %s", s->name, r->str);
		assert_int_equal(r->type, REDIS_REPLY_STRING);
		assert_string_equal(r->str, s->sha1);
		freeReplyObject(r);
		/* the embedded text carries no blank line and no unexpanded include */
		assert_null(strstr((const char *)s->bytes, "\n\n"));
		assert_null(strstr((const char *)s->bytes, "@include"));
	}
	redisFree(c);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(scripts_load_with_build_sha),
	};
	return cmocka_run_group_tests_name("redis_scripts", tests, NULL, NULL);
}
