/*
 * The Redis backend as a conformance target. Each case gets a unique key prefix
 * (jobqtest:<pid>:<n>) on the fixture's server (unix socket in JOBQ_TEST_REDIS_SOCKET, or
 * over TLS to the server of JOBQ_TEST_REDIS_TLS_DIR, tests/support/redis_tls.sh);
 * teardown deletes every key under it. No socket or no server: the case is skipped (77).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "backends/backend.h"
#include "target.h"

typedef struct redis_ctx {
	char socket[256];
	char prefix[64];
	char ca[320], cert[320], key[320]; /* over TLS (JOBQ_TEST_REDIS_TLS_DIR) */
	char nodes[3][256]; /* a cluster's node sockets (JOBQ_TEST_REDIS_CLUSTER_DIR) */
	int nnodes;
} redis_ctx;

static unsigned int case_counter;

static void
delete_prefix(const char *socket, const char *prefix) {
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectUnixWithTimeout(socket, tv);
	char pattern[80];
	char cursor[32] = "0";

	if (c == NULL || c->err) {
		if (c != NULL)
			redisFree(c);
		return;
	}
	snprintf(pattern, sizeof(pattern), "%s:*", prefix);
	do {
		redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			if (r != NULL)
				freeReplyObject(r);
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (size_t i = 0; i < r->element[1]->elements; i++) {
			redisReply *d = redisCommand(c, "UNLINK %b", r->element[1]->element[i]->str,
			                             (size_t)r->element[1]->element[i]->len);
			if (d != NULL)
				freeReplyObject(d);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	redisFree(c);
}

/* Redis Cluster (tests/support/redis_cluster.sh): redis+cluster:// (rediss+cluster:// on the TLS
 * cluster) with a hash-tagged prefix {jobqtest:<pid>:<n>}, so that each case's queues live on
 * one master. */
static int
cluster_setup(jobq_backend **out, void **ctx, const char *dir) {
	char path[300], url[800];
	int ports[3];
	snprintf(path, sizeof(path), "%.200s/ports", dir);
	FILE *f = fopen(path, "r");
	int n = f ? fscanf(f, "%d %d %d", &ports[0], &ports[1], &ports[2]) : 0;
	if (f != NULL)
		fclose(f);
	if (n != 3)
		return 77;
	redis_ctx *rc = calloc(1, sizeof(*rc));
	if (rc == NULL)
		return JOBQ_ENOMEM;
	snprintf(rc->prefix, sizeof(rc->prefix), "{jobqtest:%ld:%u}", (long)getpid(),
	         ++case_counter);
	for (int i = 0; i < 3; i++)
		snprintf(rc->nodes[i], sizeof(rc->nodes[i]), "%.200s/node%d/redis.sock", dir,
		         i + 1);
	rc->nnodes = 3;
	/* a TLS cluster (redis_cluster.sh ... tls) has its CA in DIR/ca.crt: rediss+cluster:// */
	char ca[320];
	snprintf(ca, sizeof(ca), "%.200s/ca.crt", dir);
	int tls = access(ca, R_OK) == 0;
	snprintf(url, sizeof(url), "%s://127.0.0.1:%d,127.0.0.1:%d?prefix=%s%s%s",
	         tls ? "rediss+cluster" : "redis+cluster", ports[0], ports[1], rc->prefix,
	         tls ? "&cacert=" : "", tls ? ca : "");
	int err = jobq__backend_open_url(out, url);
	if (err < 0) {
		free(rc);
		return err;
	}
	*ctx = rc;
	return 0;
}

static int
redis_setup(jobq_backend **out, void **ctx) {
	const char *sock = getenv("JOBQ_TEST_REDIS_SOCKET");
	redis_ctx *rc;
	jobq_redis_options o = JOBQ_REDIS_OPTIONS_INIT;
	int err;

	*ctx = NULL;
	const char *cluster_dir = getenv("JOBQ_TEST_REDIS_CLUSTER_DIR");
	if (cluster_dir != NULL)
		return cluster_setup(out, ctx, cluster_dir);
	const char *tls_dir = getenv("JOBQ_TEST_REDIS_TLS_DIR");
	char tls_sock[256];
	int tls_port = 0;
	if (tls_dir != NULL) {
		char path[300];
		snprintf(path, sizeof(path), "%s/tls.port", tls_dir);
		FILE *f = fopen(path, "r");
		if (f == NULL || fscanf(f, "%d", &tls_port) != 1)
			tls_port = 0;
		if (f != NULL)
			fclose(f);
		if (tls_port == 0)
			return 77;
		if ((size_t)snprintf(tls_sock, sizeof(tls_sock), "%.200s/redis.sock", tls_dir) >=
		    sizeof(tls_sock))
			return 77;
		sock = tls_sock;
	}
	if (sock == NULL || sock[0] == '\0' || access(sock, F_OK) != 0)
		return 77;
	rc = calloc(1, sizeof(*rc));
	if (rc == NULL)
		return JOBQ_ENOMEM;
	snprintf(rc->socket, sizeof(rc->socket), "%s", sock);
	snprintf(rc->prefix, sizeof(rc->prefix), "jobqtest:%ld:%u", (long)getpid(), ++case_counter);
	o.unix_path = rc->socket;
	o.prefix = rc->prefix;
	if (tls_dir != NULL) {
		/* over TLS with a client certificate; cleanup and dumps use the unix socket */
		o.unix_path = NULL;
		o.host = "127.0.0.1";
		o.port = tls_port;
		o.tls = 1;
		snprintf(rc->ca, sizeof(rc->ca), "%s/ca.crt", tls_dir);
		snprintf(rc->cert, sizeof(rc->cert), "%s/client.crt", tls_dir);
		snprintf(rc->key, sizeof(rc->key), "%s/client.key", tls_dir);
		o.tls_ca_file = rc->ca;
		o.tls_cert_file = rc->cert;
		o.tls_key_file = rc->key;
	}
	err = jobq_backend_redis_new(out, &o);
	if (err < 0) {
		free(rc);
		return err == JOBQ_EIO ? 77 : err;
	}
	*ctx = rc;
	return 0;
}

static void
redis_teardown(void *ctx) {
	redis_ctx *rc = ctx;

	if (rc == NULL)
		return;
	if (rc->nnodes == 0)
		delete_prefix(rc->socket, rc->prefix);
	for (int i = 0; i < rc->nnodes; i++)
		delete_prefix(rc->nodes[i], rc->prefix);
	free(rc);
}

/* Appends `len` bytes to the growing text *buf (size *cap, used *used); -1 on ENOMEM. */
static int
text_append(char **buf, size_t *used, size_t *cap, const char *s, size_t len) {
	if (*used + len + 1 > *cap) {
		size_t want = *cap ? *cap * 2 : 4096;
		while (want < *used + len + 1)
			want *= 2;
		char *grown = realloc(*buf, want);
		if (grown == NULL)
			return -1;
		*buf = grown;
		*cap = want;
	}
	memcpy(*buf + *used, s, len);
	*used += len;
	(*buf)[*used] = '\0';
	return 0;
}

static int
key_cmp(const void *a, const void *b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every key under the case's prefix, sorted, with its TYPE and DUMP (hex). TTLs are left out:
 * they change as time passes. */
static char *
dump_node(const char *socket, const char *prefix) {
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectUnixWithTimeout(socket, tv);
	char pattern[80], cursor[32] = "0";
	char **keys = NULL;
	size_t nkeys = 0, kcap = 0, used = 0, cap = 0;
	char *out = NULL;
	int ok = 1;

	if (c == NULL || c->err) {
		if (c != NULL)
			redisFree(c);
		return NULL;
	}
	snprintf(pattern, sizeof(pattern), "%s:*", prefix);
	do {
		redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			if (r != NULL)
				freeReplyObject(r);
			ok = 0;
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (size_t i = 0; ok && i < r->element[1]->elements; i++) {
			if (nkeys == kcap) {
				kcap = kcap ? kcap * 2 : 64;
				char **grown = realloc(keys, kcap * sizeof(*keys));
				if (grown == NULL) {
					ok = 0;
					break;
				}
				keys = grown;
			}
			keys[nkeys] = strdup(r->element[1]->element[i]->str);
			ok = keys[nkeys++] != NULL;
		}
		freeReplyObject(r);
	} while (ok && strcmp(cursor, "0") != 0);
	if (ok && nkeys > 0) /* (a cluster node may hold none) */
		qsort(keys, nkeys, sizeof(*keys), key_cmp);
	ok = ok && text_append(&out, &used, &cap, "", 0) == 0;
	for (size_t i = 0; ok && i < nkeys; i++) {
		redisReply *t = redisCommand(c, "TYPE %s", keys[i]);
		redisReply *d = redisCommand(c, "DUMP %s", keys[i]);
		ok = t != NULL && d != NULL && t->type == REDIS_REPLY_STATUS;
		/* SCAN may list a key that expired but is not deleted yet (a 1 ms lock): TYPE then
		 * answers none, and the key is no part of the queue's state */
		if (ok && strcmp(t->str, "none") != 0) {
			ok = text_append(&out, &used, &cap, keys[i], strlen(keys[i])) == 0 &&
			     text_append(&out, &used, &cap, " ", 1) == 0 &&
			     text_append(&out, &used, &cap, t->str, strlen(t->str)) == 0 &&
			     text_append(&out, &used, &cap, " ", 1) == 0;
			for (size_t j = 0; ok && d->type == REDIS_REPLY_STRING && j < d->len; j++) {
				char hex[3];
				snprintf(hex, sizeof(hex), "%02x", (unsigned char)d->str[j]);
				ok = text_append(&out, &used, &cap, hex, 2) == 0;
			}
			ok = ok && text_append(&out, &used, &cap, "\n", 1) == 0;
		}
		if (t != NULL)
			freeReplyObject(t);
		if (d != NULL)
			freeReplyObject(d);
	}
	for (size_t i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	redisFree(c);
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}

/* Every key under the case's prefix (on a cluster: on every node; they are on one). */
static char *
redis_dump(void *ctx) {
	redis_ctx *rc = ctx;
	if (rc->nnodes == 0)
		return dump_node(rc->socket, rc->prefix);
	char *all = NULL;
	size_t used = 0, cap = 0;
	for (int i = 0; i < rc->nnodes; i++) {
		char *d = dump_node(rc->nodes[i], rc->prefix);
		if (d == NULL || text_append(&all, &used, &cap, d, strlen(d)) < 0) {
			free(d);
			free(all);
			return NULL;
		}
		free(d);
	}
	return all;
}

const jobq_test_target jobq_test_target_redis = {
    "redis",
    JOBQ_CAP_BLOCKING_WAIT | JOBQ_CAP_DURABLE | JOBQ_CAP_MULTIPROCESS | JOBQ_CAP_JSON_DATA |
        JOBQ_CAP_DUE_CLOCK | JOBQ_CAP_DEDUP_KEEP_LAST,
    redis_setup,
    redis_teardown,
    redis_dump,
};
