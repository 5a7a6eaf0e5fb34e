/*
 * Redis backend: Redis Cluster (redis+cluster://host:port[,host:port...], rediss+cluster://).
 *
 * All keys of a BullMQ queue share one hash tag (a `{tag}` in the prefix or braces in the
 * queue's name), so a queue lives on one master. The cluster backend reads the slot map
 * (CLUSTER SLOTS) from the first seed that answers, opens one ordinary Redis backend per
 * master, and opens each queue on the backend of the master serving the queue's slot; every
 * later call of the queue goes there. A queue whose keys would spread over slots is refused.
 *
 * Not done yet: MOVED and ASK are not followed and the map is not refreshed after the
 * cluster changes (a resharded or failed-over queue fails with the server's MOVED error until
 * the store is opened again); replicas are never used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_int.h"

#define RQ_SLOTS     16384
#define RQ_MAX_NODES 64

struct rq_cluster {
	redis_backend *nodes[RQ_MAX_NODES]; /* one backend per master */
	size_t n;
	uint16_t owner[RQ_SLOTS]; /* index into nodes; RQ_MAX_NODES: no master */
	int (*queue_open)(jobq_backend_queue **out, jobq_backend *b, const char *name);
	void (*wake)(jobq_backend *b);
	void (*free)(jobq_backend *b);
};

/* CRC16-CCITT (XMODEM), the checksum of Redis Cluster's key slots. */
static uint16_t
crc16(const char *s, size_t n) {
	uint16_t crc = 0;
	for (size_t i = 0; i < n; i++) {
		crc ^= (uint16_t)((unsigned char)s[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
	}
	return crc;
}

int
rq_key_hash_tag(const char *key, size_t *len) {
	const char *open = strchr(key, '{');
	if (open == NULL)
		return -1;
	const char *close = strchr(open + 1, '}');
	if (close == NULL || close == open + 1)
		return -1;
	*len = (size_t)(close - open - 1);
	return (int)(open + 1 - key);
}

static int
cluster_queue_open(jobq_backend_queue **out, jobq_backend *base, const char *name) {
	redis_backend *b = (redis_backend *)base;
	struct rq_cluster *c = b->cluster;
	size_t n = strlen(b->prefix) + strlen(name) + 3;
	char *qp = jobq__malloc(n);
	if (qp == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	snprintf(qp, n, "%s:%s:", b->prefix, name);
	size_t tl;
	int at = rq_key_hash_tag(qp, &tl);
	if (at < 0) {
		int rc = jobq_error_set(
		    JOBQ_EINVAL,
		    "redis cluster: queue '%s' with prefix '%s' would spread its keys over the "
		    "cluster's slots: give the prefix a hash tag (prefix={%s}) or the queue a name "
		    "in braces ({%s})",
		    name, b->prefix, b->prefix, name);
		jobq__free(qp);
		return rc;
	}
	unsigned slot = crc16(qp + at, tl) % RQ_SLOTS;
	jobq__free(qp);
	if (c->owner[slot] >= c->n)
		return jobq_error_set(JOBQ_EBACKEND,
		                      "redis cluster %s: no master serves slot %u of queue '%s'",
		                      b->where, slot, name);
	redis_backend *node = c->nodes[c->owner[slot]];
	return c->queue_open(out, &node->base, name);
}

static void
cluster_wake(jobq_backend *base) {
	redis_backend *b = (redis_backend *)base;
	for (size_t i = 0; i < b->cluster->n; i++)
		b->cluster->wake(&b->cluster->nodes[i]->base);
	b->cluster->wake(base);
}

static void
cluster_free(jobq_backend *base) {
	redis_backend *b = (redis_backend *)base;
	struct rq_cluster *c = b->cluster;
	for (size_t i = 0; i < c->n; i++)
		c->free(&c->nodes[i]->base);
	b->cluster = NULL;
	void (*free_fn)(jobq_backend *) = c->free;
	jobq__free(c);
	free_fn(base);
}

/* The master of `range` {start, end, {ip, port, ...}, replicas...}: index in c->nodes (opened
 * when new), or < 0 with the error set. */
static int
master_of(struct rq_cluster *c, redis_backend *seed, const redisReply *range,
          const jobq_redis_options *opts) {
	const redisReply *m = range->element[2];
	if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
	    m->element[0]->type != REDIS_REPLY_STRING || m->element[1]->type != REDIS_REPLY_INTEGER)
		return jobq_error_set(JOBQ_EBACKEND, "redis cluster %s: CLUSTER SLOTS: bad reply",
		                      seed->where);
	/* an empty address means the node that answered */
	const char *host = m->element[0]->len > 0 ? m->element[0]->str : seed->host;
	int port = (int)m->element[1]->integer;
	for (size_t i = 0; i < c->n; i++)
		if (c->nodes[i]->port == port && strcmp(c->nodes[i]->host, host) == 0)
			return (int)i;
	if (c->n == RQ_MAX_NODES)
		return jobq_error_set(JOBQ_ENOTSUP, "redis cluster %s: more than %d masters",
		                      seed->where, RQ_MAX_NODES);
	jobq_redis_options o = *opts;
	o.host = host;
	o.port = port;
	o.connect_wait_ms = 0;
	jobq_backend *nb = NULL;
	int rc = jobq_backend_redis_new(&nb, &o);
	if (rc < 0)
		return rc;
	c->nodes[c->n] = (redis_backend *)nb;
	return (int)c->n++;
}

static int
read_slots(struct rq_cluster *c, redis_backend *seed, const jobq_redis_options *opts) {
	const char *av[] = {"CLUSTER", "SLOTS"};
	int rc;
	redisReply *r = rq_command(&rc, seed, 1, 2, av, NULL);
	if (r == NULL)
		return jobq_error_set(rc, "redis cluster: %s", jobq_error_message());
	for (size_t s = 0; s < RQ_SLOTS; s++)
		c->owner[s] = RQ_MAX_NODES;
	rc = r->type == REDIS_REPLY_ARRAY && r->elements > 0
	         ? 0
	         : jobq_error_set(JOBQ_EBACKEND, "redis cluster %s: CLUSTER SLOTS: no slots",
	                          seed->where);
	for (size_t i = 0; rc == 0 && i < r->elements; i++) {
		const redisReply *e = r->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
		    e->element[0]->type != REDIS_REPLY_INTEGER ||
		    e->element[1]->type != REDIS_REPLY_INTEGER || e->element[0]->integer < 0 ||
		    e->element[1]->integer >= RQ_SLOTS ||
		    e->element[0]->integer > e->element[1]->integer) {
			rc = jobq_error_set(JOBQ_EBACKEND,
			                    "redis cluster %s: CLUSTER SLOTS: bad reply",
			                    seed->where);
			break;
		}
		int node = master_of(c, seed, e, opts);
		if (node < 0) {
			rc = node;
			break;
		}
		for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++)
			c->owner[s] = (uint16_t)node;
	}
	freeReplyObject(r);
	return rc;
}

int
rq_cluster_open(jobq_backend **out, const jobq_redis_options *opts, const char *seeds) {
	*out = NULL;
	jobq_backend *seed = NULL;
	int rc = jobq_backend_redis_new(&seed, opts);
	/* the other seeds, "host:port,host:port", when the first is down */
	for (const char *s = seeds; rc == JOBQ_EIO && s != NULL && *s != '\0';) {
		size_t len = strcspn(s, ",");
		char addr[300];
		snprintf(addr, sizeof(addr), "%.*s", (int)(len < 299 ? len : 299), s);
		char *colon = strrchr(addr, ':');
		if (colon != NULL) {
			*colon = '\0';
			jobq_redis_options o = *opts;
			o.host = addr[0] == '[' ? addr + 1 : addr;
			if (addr[0] == '[' && colon > addr && colon[-1] == ']')
				colon[-1] = '\0';
			o.port = atoi(colon + 1);
			rc = jobq_backend_redis_new(&seed, &o);
		}
		s += len + (s[len] == ',' ? 1 : 0);
	}
	if (rc < 0)
		return rc;
	redis_backend *b = (redis_backend *)seed;
	struct rq_cluster *c = jobq__calloc(1, sizeof(*c));
	if (c == NULL) {
		seed->free(seed);
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	}
	c->queue_open = seed->queue_open;
	c->wake = seed->wake;
	c->free = seed->free;
	b->cluster = c;
	seed->queue_open = cluster_queue_open;
	seed->wake = cluster_wake;
	seed->free = cluster_free;
	rc = read_slots(c, b, opts);
	if (rc < 0) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", jobq_error_message());
		seed->free(seed);
		return jobq_error_set(rc, "%s", msg);
	}
	*out = seed;
	return 0;
}
