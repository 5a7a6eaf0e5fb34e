/*
 * rediss:// against the TLS fixture (tests/support/redis_tls.sh: a redis-server with a TLS
 * port, a plain port and a unix socket, certificates made at test time in
 * JOBQ_TEST_REDIS_TLS_DIR): the handshake with cacert= and capath=, a certificate of another
 * CA refused, SNI and name checks, insecure=1, a client certificate the server requires, and
 * a plain server on a TLS URL (and the reverse) failing with words that say so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "jobq.h"

static const char *dir;
static int tls_port, plain_port;

static int
read_port(const char *name) {
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	int port = 0;
	if (f == NULL || fscanf(f, "%d", &port) != 1)
		port = 0;
	if (f != NULL)
		fclose(f);
	return port;
}

static int
setup(void **state) {
	(void)state;
	dir = getenv("JOBQ_TEST_REDIS_TLS_DIR");
	if (dir != NULL) {
		tls_port = read_port("tls.port");
		plain_port = read_port("plain.port");
	}
	return 0;
}

static void
need_fixture(void) {
	if (dir == NULL || tls_port == 0 || plain_port == 0)
		skip();
}

/* "SCHEME://HOST:PORT?prefix=...&" + query, with each '@' in `query` replaced by the
 * fixture's directory. */
static void
make_url(char *url, size_t len, const char *scheme, const char *host, int port, const char *query) {
	char q[1024];
	size_t o = 0;
	for (const char *c = query; *c != '\0' && o + 1 < sizeof(q); c++) {
		if (*c == '@')
			o += (size_t)snprintf(q + o, sizeof(q) - o, "%s", dir);
		else
			q[o++] = *c;
		if (o >= sizeof(q))
			fail_msg("query too long");
	}
	q[o] = '\0';
	snprintf(url, len, "%s://%s:%d?prefix=jobqtls%ld&%s", scheme, host, port, (long)getpid(),
	         q);
}

/* Opens the store and adds a job and reads it back: the connection works both ways. */
static void
works(const char *scheme, const char *host, int port, const char *query) {
	char url[2048];
	make_url(url, sizeof(url), scheme, host, port, query);
	jobq_store *s = NULL;
	jobq_queue *q = NULL;
	int rc = jobq_store_open(&s, url, NULL);
	if (rc != 0)
		fail_msg("%s: %s", url, jobq_error_message());
	assert_int_equal(jobq_queue_open(&q, s, "tls"), 0);
	jobq_job_id id;
	assert_true(jobq_queue_add(&id, q, "n", "{\"x\":1}", 7, NULL) >= 0);
	jobq_job *job = NULL;
	assert_int_equal(jobq_queue_get_job(&job, q, id.str), 0);
	jobq_job_free(job);
	assert_int_equal(jobq_queue_obliterate(q, 1), 0);
	jobq_queue_close(q);
	jobq_store_close(s);
}

/* Opening fails with JOBQ_EIO and a message holding `words`. */
static void
refused(const char *scheme, const char *host, int port, const char *query, const char *words) {
	char url[2048];
	make_url(url, sizeof(url), scheme, host, port, query);
	jobq_store *s = NULL;
	int rc = jobq_store_open(&s, url, NULL);
	if (rc == 0) {
		jobq_store_close(s);
		fail_msg("%s: opened", url);
	}
	if (rc != JOBQ_EIO || strstr(jobq_error_message(), words) == NULL)
		fail_msg("%s: %s '%s' lacks '%s'", url, jobq_error_name(rc), jobq_error_message(),
		         words);
}

static void
handshake_with_cacert_or_capath(void **state) {
	(void)state;
	need_fixture();
	works("rediss", "127.0.0.1", tls_port, "cacert=@/ca.crt");
	works("rediss", "localhost", tls_port, "capath=@/capath");
}

static void
other_ca_refused(void **state) {
	(void)state;
	need_fixture();
	refused("rediss", "127.0.0.1", tls_port, "cacert=@/wrongca.crt",
	        "the server's certificate is refused");
	/* the system store does not know the test CA either */
	refused("rediss", "127.0.0.1", tls_port, "connect_timeout_ms=3000", "cacert=FILE");
	/* insecure=1 skips the check (and warns) */
	works("rediss", "127.0.0.1", tls_port, "cacert=@/wrongca.crt&insecure=1");
}

static void
sni_names_the_server(void **state) {
	(void)state;
	need_fixture();
	/* the certificate is valid for localhost: reached by address, verified by name */
	works("rediss", "127.0.0.1", tls_port, "cacert=@/ca.crt&sni=localhost");
	refused("rediss", "127.0.0.1", tls_port, "cacert=@/ca.crt&sni=other.example",
	        "not valid for the sni= name");
}

static redisReply *
admin(const char *cmd) {
	char sock[600];
	snprintf(sock, sizeof(sock), "%s/redis.sock", dir);
	redisContext *c = redisConnectUnix(sock);
	assert_non_null(c);
	assert_int_equal(c->err, 0);
	redisReply *r = redisCommand(c, cmd);
	redisFree(c);
	return r;
}

static void
client_certificate_required(void **state) {
	(void)state;
	need_fixture();
	redisReply *r = admin("CONFIG SET tls-auth-clients yes");
	assert_non_null(r);
	assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
	refused("rediss", "127.0.0.1", tls_port, "cacert=@/ca.crt", "client certificate");
	works("rediss", "127.0.0.1", tls_port,
	      "cacert=@/ca.crt&cert=@/client.crt&key=@/client.key");
	r = admin("CONFIG SET tls-auth-clients optional");
	assert_non_null(r);
	freeReplyObject(r);
}

static void
plain_and_tls_mixed_up(void **state) {
	(void)state;
	need_fixture();
	/* TLS to a plain port: the server waits for a line end; the timeout says why */
	refused("rediss", "127.0.0.1", plain_port, "cacert=@/ca.crt&connect_timeout_ms=300",
	        "use redis://");
	refused("redis", "127.0.0.1", tls_port, "connect_timeout_ms=3000", "use rediss://");
	/* the plain port does work with redis:// */
	works("redis", "127.0.0.1", plain_port, "db=0");
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(handshake_with_cacert_or_capath),
	    cmocka_unit_test(other_ca_refused),
	    cmocka_unit_test(sni_names_the_server),
	    cmocka_unit_test(client_certificate_required),
	    cmocka_unit_test(plain_and_tls_mixed_up),
	};
	return cmocka_run_group_tests_name("redis_tls", tests, setup, NULL);
}
