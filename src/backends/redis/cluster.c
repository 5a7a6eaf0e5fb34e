/*
 * Redis backend: Redis Cluster (redis+cluster://host:port[,host:port...], rediss+cluster://).
 *
 * All keys of a BullMQ queue share one hash tag (a `{tag}` in the prefix or braces in the
 * queue's name), so a queue lives on one master. The cluster backend reads the slot map
 * (CLUSTER SLOTS) from the first seed that answers; each queue gets an ordinary Redis backend
 * of its own (its own connections), made for the master serving the queue's slot. A queue
 * whose keys would spread over slots is refused. Only masters are ever connected to.
 *
 * When the cluster changes, a queue's backend moves (route_move): a MOVED reply points it to
 * the new master (and updates the map); a failed connect reads the map again from any node
 * that answers (a failover). ASK is followed for one command (ASKING, then the command on the
 * importing master); TRYAGAIN and CLUSTERDOWN are retried after a short wait; all within
 * command_timeout_ms. A redirected command did not run, so following it is always safe.
 *
 * While a queue's slot migrates, a script never runs half on one master: every script names
 * the queue's 16 keys and at least one of them does not exist (`wait` and `paused` never both
 * do), so Redis answers TRYAGAIN (or ASK, then TRYAGAIN) until the slot is given to its new
 * master. Single-key commands follow ASK.
 *
 * Pipelined adds (add_send / add_recv) are not offered on a cluster; adds go one awaited
 * script call per batch instead. A redirected step did not run, but the steps sent behind it
 * may have: during a migration every addJobs call is refused (see above), yet when the
 * migration is undone (SETSLOT ... STABLE or NODE back to the source) or the slot comes back
 * between two steps, an earlier step can be refused and a later one run. Sending the refused
 * step again would put its jobs after the later ones (ids and wait order no longer the order
 * of the adds, which add_async promises, and outcomes reported out of order); doing it right
 * means keeping every step's arguments and draining before resending, which gives up the
 * pipeline exactly when it matters. On one machine it gained nothing measurable
 * (BENCHMARKS.md, Redis Cluster).
 * Listing queues asks every master.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq/log.h"
#include "redis_int.h"

#define RQ_SLOTS     16384
#define RQ_MAX_NODES 64
/* A map read this recently is not read again (many threads see a failover at once). */
#define RQ_MAP_FRESH_MS 100
/* The strings of jobq_redis_options a cluster keeps a copy of (all but the hosts). */
#define RQ_OPT_STRINGS 8

struct rq_node {
	char *host;
	int port;
	char *where; /* "host:port": a moved backend's b->where (lives as long as the cluster) */
};

/* One queue's backend. */
struct rq_route {
	struct rq_cluster *c;
	redis_backend *b;
	unsigned slot;
	char *own_where; /* b's own where, given back before b is freed */
	struct rq_route *next;
};

struct rq_cluster {
	pthread_mutex_t mu;                 /* the nodes and the map */
	struct rq_node nodes[RQ_MAX_NODES]; /* every master and seed seen (appended only) */
	size_t n;
	uint16_t owner[RQ_SLOTS]; /* index into nodes; RQ_MAX_NODES: no master */
	int64_t read_ms;          /* when the map was last read (monotonic), 0: never */
	pthread_mutex_t routes_mu;
	struct rq_route *routes;
	jobq_redis_options opts;     /* a copy: each queue's backend gets them */
	char *owned[RQ_OPT_STRINGS]; /* its strings */
	redis_backend *seed;
	int (*queue_open)(jobq_backend_queue **out, jobq_backend *b, const char *name);
	void (*queue_close)(jobq_backend_queue *q);
	void (*wake)(jobq_backend *b);
	void (*free)(jobq_backend *b);
	int (*list_queues)(jobq_strings **out, jobq_backend *b);
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

static void
sleep_ms(int64_t ms) {
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* --- nodes and the slot map ------------------------------------------------------------------ */

/* The index of host:port in c->nodes, added when new; -1 when full or out of memory. Under
 * c->mu. */
static int
node_index(struct rq_cluster *c, const char *host, int port) {
	for (size_t i = 0; i < c->n; i++)
		if (c->nodes[i].port == port && strcmp(c->nodes[i].host, host) == 0)
			return (int)i;
	if (c->n == RQ_MAX_NODES)
		return -1;
	size_t wl = strlen(host) + 16;
	struct rq_node *nd = &c->nodes[c->n];
	nd->host = jobq__strdup(host);
	nd->where = jobq__malloc(wl);
	if (nd->host == NULL || nd->where == NULL) {
		jobq__free(nd->host);
		jobq__free(nd->where);
		nd->host = nd->where = NULL;
		return -1;
	}
	nd->port = port;
	snprintf(nd->where, wl, "%s:%d", host, port);
	return (int)c->n++;
}

/* Fills owner[] from a CLUSTER SLOTS reply got from `host` (the address of a master that is
 * empty means the node that answered). Under c->mu. 0, or < 0 with the error set. */
static int
parse_slots(struct rq_cluster *c, uint16_t *owner, const redisReply *r, const char *host,
            const char *where) {
	for (size_t s = 0; s < RQ_SLOTS; s++)
		owner[s] = RQ_MAX_NODES;
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
		return jobq_error_set(JOBQ_EBACKEND, "redis cluster %s: CLUSTER SLOTS: %s", where,
		                      r->type == REDIS_REPLY_ERROR ? r->str : "no slots");
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		const redisReply *m =
		    e->type == REDIS_REPLY_ARRAY && e->elements >= 3 ? e->element[2] : NULL;
		if (m == NULL || e->element[0]->type != REDIS_REPLY_INTEGER ||
		    e->element[1]->type != REDIS_REPLY_INTEGER || e->element[0]->integer < 0 ||
		    e->element[1]->integer >= RQ_SLOTS ||
		    e->element[0]->integer > e->element[1]->integer ||
		    m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
		    m->element[0]->type != REDIS_REPLY_STRING ||
		    m->element[1]->type != REDIS_REPLY_INTEGER)
			return jobq_error_set(JOBQ_EBACKEND,
			                      "redis cluster %s: CLUSTER SLOTS: bad reply", where);
		/* element 2 is the master; replicas follow and are never used */
		int node = node_index(c, m->element[0]->len > 0 ? m->element[0]->str : host,
		                      (int)m->element[1]->integer);
		if (node < 0)
			return jobq_error_set(JOBQ_ENOTSUP, "redis cluster %s: more than %d nodes",
			                      where, RQ_MAX_NODES);
		for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++)
			owner[s] = (uint16_t)node;
	}
	return 0;
}

/* CLUSTER SLOTS from host:port over a connection of `via`'s settings into the map. */
static int
read_map_from(struct rq_cluster *c, redis_backend *via, const char *host, int port,
              uint16_t *owner) {
	rconn *conn = NULL;
	int rc = rq_conn_open_at(&conn, via, host, port);
	if (rc < 0)
		return rc;
	const char *av[] = {"CLUSTER", "SLOTS"};
	redisReply *r = rq_conn_call(conn, 2, av, NULL);
	char where[300];
	snprintf(where, sizeof(where), "%s:%d", host, port);
	if (r == NULL) {
		rc = jobq_error_set(JOBQ_EIO, "redis cluster %s: CLUSTER SLOTS: %s", where,
		                    conn->c->errstr);
	} else {
		pthread_mutex_lock(&c->mu);
		rc = parse_slots(c, owner, r, host, where);
		if (rc == 0) {
			memcpy(c->owner, owner, sizeof(c->owner));
			c->read_ms = jobq__mono_ms();
		}
		pthread_mutex_unlock(&c->mu);
		freeReplyObject(r);
	}
	rq_conn_close_own(conn);
	return rc;
}

/* Reads the map again from the first node that answers (unless `force` is 0 and it was read
 * a moment ago). 0, or < 0 with the error set. */
static int
read_map(struct rq_cluster *c, redis_backend *via, int force) {
	pthread_mutex_lock(&c->mu);
	int fresh = c->read_ms != 0 && jobq__mono_ms() - c->read_ms < RQ_MAP_FRESH_MS;
	size_t n = c->n;
	pthread_mutex_unlock(&c->mu);
	if (fresh && !force)
		return 0;
	uint16_t *owner = jobq__malloc(sizeof(c->owner));
	if (owner == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	int rc = jobq_error_set(JOBQ_EIO, "redis cluster: no node known");
	/* nodes are only appended: entries below n stay as they are without the lock */
	for (size_t i = 0; i < n && rc < 0; i++)
		rc = read_map_from(c, via, c->nodes[i].host, c->nodes[i].port, owner);
	jobq__free(owner);
	return rc;
}

/* The master of `slot` (index into c->nodes), or -1. */
static int
slot_owner(struct rq_cluster *c, unsigned slot) {
	pthread_mutex_lock(&c->mu);
	int i = c->owner[slot] < c->n ? c->owner[slot] : -1;
	pthread_mutex_unlock(&c->mu);
	return i;
}

/* --- a queue's backend following its slot ---------------------------------------------------- */

/* Points `b` at node `i`: later connections go there, pooled ones are dropped. 1 if it moved. */
static int
route_move(redis_backend *b, int i) {
	const struct rq_node *nd = &b->route->c->nodes[i];
	char *host = jobq__strdup(nd->host);
	if (host == NULL)
		return 0;
	pthread_mutex_lock(&b->mu);
	int moved = b->port != nd->port || strcmp(b->host, nd->host) != 0;
	if (moved) {
		jobq__free(b->host);
		b->host = host;
		host = NULL;
		b->port = nd->port;
		b->where = nd->where;
		b->conn_gen++;
	}
	pthread_mutex_unlock(&b->mu);
	jobq__free(host);
	if (moved)
		jobq_log_emit(JOBQ_LOG_INFO, "redis", NULL, NULL,
		              "redis cluster: slot %u is now served by %s", b->route->slot,
		              nd->where);
	return moved;
}

int
rq_route_refresh(redis_backend *b) {
	struct rq_cluster *c = b->route->c;
	if (read_map(c, b, 0) < 0)
		return 0;
	int i = slot_owner(c, b->route->slot);
	return i >= 0 && route_move(b, i);
}

enum { REDIR_NONE, REDIR_MOVED, REDIR_ASK, REDIR_WAIT, REDIR_DOWN };

static int
redirect_kind(const char *err) {
	if (strncmp(err, "MOVED ", 6) == 0)
		return REDIR_MOVED;
	if (strncmp(err, "ASK ", 4) == 0)
		return REDIR_ASK;
	if (strncmp(err, "TRYAGAIN", 8) == 0)
		return REDIR_WAIT;
	if (strncmp(err, "CLUSTERDOWN", 11) == 0)
		return REDIR_DOWN;
	return REDIR_NONE;
}

int
rq_route_is_redirect(const char *err) {
	return redirect_kind(err) != REDIR_NONE;
}

/* "MOVED|ASK <slot> <host>:<port>": slot, host (empty: the node that answered) and port. */
static int
parse_redirect(const char *err, unsigned *slot, char *host, size_t hl, int *port) {
	const char *p = strchr(err, ' ');
	char *end = NULL;
	long s = p != NULL ? strtol(p + 1, &end, 10) : -1;
	if (s < 0 || s >= RQ_SLOTS || end == NULL || *end != ' ')
		return -1;
	const char *addr = end + 1;
	const char *colon = strrchr(addr, ':');
	long pt = colon != NULL ? strtol(colon + 1, NULL, 10) : 0;
	if (colon == NULL || pt <= 0 || pt > 65535 || (size_t)(colon - addr) >= hl)
		return -1;
	snprintf(host, hl, "%.*s", (int)(colon - addr), addr);
	*slot = (unsigned)s;
	*port = (int)pt;
	return 0;
}

int
rq_route_follow(redis_backend *b, const char *err, rq_redir *st, char *ask_host,
                size_t ask_host_len, int *ask_port) {
	int kind = redirect_kind(err);
	if (kind == REDIR_NONE)
		return 0;
	int64_t now = jobq__mono_ms();
	if (st->deadline_ms == 0) {
		st->deadline_ms = now + (b->command_timeout_ms > 0 ? b->command_timeout_ms
		                                                   : RQ_DEFAULT_COMMAND_TIMEOUT_MS);
		st->delay_ms = 2;
	}
	if (now >= st->deadline_ms)
		return 0;
	struct rq_cluster *c = b->route->c;
	unsigned slot;
	int port;
	char host[256];
	if (kind == REDIR_MOVED || kind == REDIR_ASK) {
		if (parse_redirect(err, &slot, host, sizeof(host), &port) < 0)
			return 0;
		if (host[0] == '\0') {
			pthread_mutex_lock(&b->mu);
			snprintf(host, sizeof(host), "%s", b->host);
			pthread_mutex_unlock(&b->mu);
		}
	}
	if (kind == REDIR_ASK) {
		snprintf(ask_host, ask_host_len, "%s", host);
		*ask_port = port;
		return 2;
	}
	if (kind == REDIR_MOVED) {
		pthread_mutex_lock(&c->mu);
		int i = node_index(c, host, port);
		if (i >= 0)
			c->owner[slot] = (uint16_t)i;
		pthread_mutex_unlock(&c->mu);
		if (i >= 0 && slot == b->route->slot && route_move(b, i))
			return 1;
		/* a MOVED to where it already was (or elsewhere): the map is read again */
		kind = REDIR_DOWN;
	}
	/* the slot is migrating, or the cluster is changing its mind: wait a little */
	sleep_ms(st->delay_ms);
	st->delay_ms = st->delay_ms * 2 > 100 ? 100 : st->delay_ms * 2;
	if (kind == REDIR_DOWN)
		rq_route_refresh(b);
	return 1;
}

/* --- the vtable ------------------------------------------------------------------------------ */

/* An ordinary backend for node i. */
static int
node_backend(jobq_backend **out, struct rq_cluster *c, int i) {
	jobq_redis_options o = c->opts;
	o.host = c->nodes[i].host;
	o.port = c->nodes[i].port;
	o.connect_wait_ms = 0;
	return jobq_backend_redis_new(out, &o);
}

/* A backend for the master of `slot`; on a connect failure the map is read again once. */
static int
route_backend(jobq_backend **out, struct rq_cluster *c, unsigned slot, const char *name) {
	int rc = JOBQ_EIO;
	for (int attempt = 0; attempt < 2 && rc == JOBQ_EIO; attempt++) {
		if (attempt > 0 && read_map(c, c->seed, 1) < 0)
			return rc;
		int i = slot_owner(c, slot);
		if (i < 0)
			return jobq_error_set(
			    JOBQ_EBACKEND,
			    "redis cluster %s: no master serves slot %u of queue '%s'",
			    c->seed->where, slot, name);
		rc = node_backend(out, c, i);
	}
	return rc;
}

/* The queues of every master (a queue lives on one). */
static int
cluster_list_queues(jobq_strings **out, jobq_backend *base) {
	struct rq_cluster *c = ((redis_backend *)base)->cluster;
	int rc = read_map(c, c->seed, 0);
	unsigned char master[RQ_MAX_NODES] = {0};
	pthread_mutex_lock(&c->mu);
	for (size_t s = 0; s < RQ_SLOTS; s++)
		if (c->owner[s] < c->n)
			master[c->owner[s]] = 1;
	size_t n = c->n;
	pthread_mutex_unlock(&c->mu);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		jobq_backend *nb = NULL;
		if (master[i] && (rc = node_backend(&nb, c, (int)i)) == 0) {
			rc = c->list_queues(out, nb);
			nb->free(nb);
		}
	}
	return rc;
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
	jobq_backend *nb = NULL;
	int rc = route_backend(&nb, c, slot, name);
	if (rc < 0)
		return rc;
	struct rq_route *rt = jobq__calloc(1, sizeof(*rt));
	if (rt == NULL) {
		nb->free(nb);
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	}
	redis_backend *qb = (redis_backend *)nb;
	rt->c = c;
	rt->b = qb;
	rt->slot = slot;
	rt->own_where = qb->where;
	qb->route = rt;
	if ((rc = c->queue_open(out, nb, name)) < 0) {
		nb->free(nb);
		jobq__free(rt);
		return rc;
	}
	pthread_mutex_lock(&c->routes_mu);
	rt->next = c->routes;
	c->routes = rt;
	pthread_mutex_unlock(&c->routes_mu);
	return 0;
}

static void
cluster_queue_close(jobq_backend_queue *q) {
	if (q == NULL)
		return;
	redis_backend *qb = q->b;
	struct rq_route *rt = qb->route;
	struct rq_cluster *c = rt->c;
	c->queue_close(q);
	pthread_mutex_lock(&c->routes_mu);
	for (struct rq_route **p = &c->routes; *p != NULL; p = &(*p)->next) {
		if (*p == rt) {
			*p = rt->next;
			break;
		}
	}
	pthread_mutex_unlock(&c->routes_mu);
	qb->where = rt->own_where;
	qb->route = NULL;
	qb->base.free(&qb->base);
	jobq__free(rt);
}

static void
cluster_wake(jobq_backend *base) {
	redis_backend *b = (redis_backend *)base;
	struct rq_cluster *c = b->cluster;
	pthread_mutex_lock(&c->routes_mu);
	for (struct rq_route *rt = c->routes; rt != NULL; rt = rt->next)
		c->wake(&rt->b->base);
	pthread_mutex_unlock(&c->routes_mu);
	c->wake(base);
}

static void
opts_free(struct rq_cluster *c) {
	for (size_t i = 0; i < RQ_OPT_STRINGS; i++)
		jobq__free(c->owned[i]);
}

/* c->opts: a copy of `in` whose strings the cluster owns (hosts are the nodes'). */
static int
opts_copy(struct rq_cluster *c, const jobq_redis_options *in) {
	jobq_redis_options *o = &c->opts;
	*o = *in;
	o->host = NULL;
	o->unix_path = NULL;
	const char **fields[RQ_OPT_STRINGS] = {&o->username,     &o->password,    &o->prefix,
	                                       &o->tls_ca_file,  &o->tls_ca_path, &o->tls_cert_file,
	                                       &o->tls_key_file, &o->tls_sni};
	int ok = 1;
	for (size_t i = 0; i < RQ_OPT_STRINGS; i++) {
		if (*fields[i] == NULL)
			continue;
		c->owned[i] = jobq__strdup(*fields[i]);
		*fields[i] = c->owned[i];
		ok = ok && c->owned[i] != NULL;
	}
	if (!ok) {
		opts_free(c);
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	}
	return 0;
}

static void
cluster_free(jobq_backend *base) {
	redis_backend *b = (redis_backend *)base;
	struct rq_cluster *c = b->cluster;
	b->cluster = NULL;
	void (*free_fn)(jobq_backend *) = c->free;
	for (size_t i = 0; i < c->n; i++) {
		jobq__free(c->nodes[i].host);
		jobq__free(c->nodes[i].where);
	}
	opts_free(c);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->routes_mu);
	jobq__free(c);
	free_fn(base);
}

/* The seeds as nodes to read the map from: the one connected to, then "host:port,...". */
static void
add_seeds(struct rq_cluster *c, redis_backend *seed, const char *seeds) {
	node_index(c, seed->host, seed->port);
	for (const char *s = seeds; s != NULL && *s != '\0';) {
		size_t len = strcspn(s, ",");
		char addr[300];
		snprintf(addr, sizeof(addr), "%.*s", (int)(len < 299 ? len : 299), s);
		char *colon = strrchr(addr, ':');
		if (colon != NULL) {
			*colon = '\0';
			char *host = addr[0] == '[' ? addr + 1 : addr;
			if (addr[0] == '[' && colon > addr && colon[-1] == ']')
				colon[-1] = '\0';
			node_index(c, host, atoi(colon + 1));
		}
		s += len + (s[len] == ',' ? 1 : 0);
	}
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
	if (c == NULL || opts_copy(c, opts) < 0) {
		jobq__free(c);
		seed->free(seed);
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->routes_mu, NULL);
	c->seed = b;
	c->queue_open = seed->queue_open;
	c->queue_close = seed->queue_close;
	c->wake = seed->wake;
	c->free = seed->free;
	c->list_queues = seed->list_queues;
	b->cluster = c;
	seed->queue_open = cluster_queue_open;
	seed->queue_close = cluster_queue_close;
	seed->wake = cluster_wake;
	seed->free = cluster_free;
	seed->list_queues = cluster_list_queues;
	seed->add_send = NULL;
	seed->add_recv = NULL;
	add_seeds(c, b, seeds);
	rc = read_map(c, b, 1);
	if (rc < 0) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", jobq_error_message());
		seed->free(seed);
		return jobq_error_set(rc, "%s", msg);
	}
	*out = seed;
	return 0;
}
