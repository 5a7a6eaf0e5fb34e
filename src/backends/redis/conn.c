/*
 * Redis backend: connection pool, reconnects, script calls.
 *
 * A call takes an idle connection (or opens one), runs, and gives it back. When a command
 * fails because the connection dropped, the connection generation is bumped so that every
 * pooled connection opened before is discarded instead of failing in turn; the call then
 * reconnects with capped exponential backoff and jitter and is retried once only when that
 * is safe: read-only scripts, extendLock (sets the same token and TTL again), pause/resume
 * and obliterate (same end state), updateProgress (same end state, the event may repeat).
 * Everything else (adds, fetch, finish, retry, stall check, ...) may have run before the
 * connection dropped, so it fails with JOBQ_EIO and the caller decides; an add that did run
 * is found by its id, a fetch that did run is recovered by the stalled check.
 *
 * Nothing waits on the server without a deadline: the setup of a connection (AUTH, SELECT,
 * CLIENT ID, CONFIG GET) has connect_timeout_ms, every command command_timeout_ms (30 s by
 * default), and blocking commands their blocking time plus command_timeout_ms. A call that
 * times out fails with JOBQ_EIO saying so, its connection is dropped (a late reply must not be
 * read as the answer to the next command) and the next call opens a fresh one. A timed-out
 * call is not sent again: a server that did not answer in time is not retried at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "jobq/log.h"
#include "jobq_lua.h"
#include "redis_int.h"

static const unsigned char script_idempotent[JOBQ_LUA_COUNT] = {
    [JOBQ_LUA_EXTENDLOCK] = 1, [JOBQ_LUA_GETCOUNTS] = 1,      [JOBQ_LUA_GETJOB] = 1,
    [JOBQ_LUA_HASWORK] = 1,    [JOBQ_LUA_LISTJOBS] = 1,       [JOBQ_LUA_PAUSE] = 1,
    [JOBQ_LUA_OBLITERATE] = 1, [JOBQ_LUA_UPDATEPROGRESS] = 1, [JOBQ_LUA_GETDEPENDENCIES] = 1,
};

static void
sleep_ms(int64_t ms) {
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

int
rq_timed_out(const rq_sock *c) {
	return c->err != 0 && c->timed_out;
}

int
rq_io_error(redis_backend *b, const rq_sock *c, const char *cmd, int64_t timeout_ms,
            const char *setting, const char *tail) {
	if (rq_timed_out(c))
		return jobq_error_set(JOBQ_EIO, "redis %s: no reply to %s within %lld ms (%s)%s",
		                      b->where, cmd, (long long)timeout_ms, setting, tail);
	int rc = jobq_error_set(JOBQ_EIO, "redis %s: %s: %s%s", b->where, cmd, c->errstr, tail);
	rq_note_lost(b);
	return rc;
}

static int
setup_error(redis_backend *b, const rconn *conn, const char *cmd) {
	const char *hint = "";
	if (!rq_timed_out(conn->c) &&
	    (conn->c->err == REDIS_ERR_EOF || conn->c->err == REDIS_ERR_IO)) {
		/* a TLS port drops a plain client at its first bytes; a server that requires a
		 * client certificate drops a TLS client without one after the handshake (TLS 1.3),
		 * its alert often lost in the reset */
		if (b->tls == NULL)
			hint = " (if this is a TLS port, use rediss://)";
		else if (!rq_tls_has_cert(b->tls) && strstr(conn->c->errstr, "certificate") == NULL)
			hint = " (if the server requires a client certificate: cert=FILE&key=FILE)";
	}
	return rq_io_error(b, conn->c, cmd, b->connect_timeout_ms, "connect_timeout_ms", hint);
}

/* A setup command's reply, or NULL with the error set (`what` names the command; an error
 * reply is JOBQ_EBACKEND "<what> refused: ..." when `refuse`). */
static redisReply *
setup_command(int *rc, redis_backend *b, rconn *conn, const char *what, int refuse, int argc,
              const char **argv) {
	redisReply *r = rq_sock_command(conn->c, argc, argv, NULL);
	if (r == NULL) {
		*rc = setup_error(b, conn, what);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR && refuse) {
		*rc = jobq_error_set(JOBQ_EBACKEND, "redis %s: %s refused: %s", b->where, what,
		                     r->str);
		freeReplyObject(r);
		return NULL;
	}
	*rc = 0;
	return r;
}

static int
conn_setup(redis_backend *b, rconn *conn) {
	redisReply *r;
	int rc;
	if (b->password != NULL) {
		const char *av[] = {"AUTH", b->username ? b->username : b->password, b->password};
		r = setup_command(&rc, b, conn, "AUTH", 1, b->username ? 3 : 2, av);
		if (r == NULL)
			return rc;
		freeReplyObject(r);
	}
	if (b->db != 0) {
		char db[16], what[32];
		snprintf(db, sizeof(db), "%d", b->db);
		snprintf(what, sizeof(what), "SELECT %d", b->db);
		const char *av[] = {"SELECT", db};
		r = setup_command(&rc, b, conn, what, 1, 2, av);
		if (r == NULL)
			return rc;
		freeReplyObject(r);
	}
	const char *av[] = {"CLIENT", "ID"};
	r = setup_command(&rc, b, conn, "CLIENT ID", 0, 2, av);
	if (r == NULL)
		return rc;
	if (r->type == REDIS_REPLY_ERROR) {
		/* NOAUTH (a password is needed) or NOPERM: say so now, not at the first command */
		rc = jobq_error_set(JOBQ_EBACKEND, "redis %s: %s%s", b->where, r->str,
		                    strncmp(r->str, "NOAUTH", 6) == 0
		                        ? " (give a password: ?password=... or user:password@)"
		                        : "");
		freeReplyObject(r);
		return rc;
	}
	conn->client_id = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	freeReplyObject(r);
	return 0;
}

/* One connection to `host`:`port` (NULL: the backend's server, which a cluster queue's
 * backend may change under b->mu). */
static int
conn_open_once(rconn **out, redis_backend *b, unsigned int gen, int *timed_out, const char *host,
               int port) {
	char why[256], addr[256];
	if (host == NULL) {
		pthread_mutex_lock(&b->mu);
		snprintf(addr, sizeof(addr), "%s", b->host);
		port = b->port;
		pthread_mutex_unlock(&b->mu);
		host = addr;
	}
	rq_sock *c = NULL;
	int rc = rq_sock_open(&c, host, port, b->unix_path, b->tls, b->connect_timeout_ms, why,
	                      sizeof(why), timed_out);
	if (rc < 0 && b->unix_path == NULL)
		return jobq_error_set(rc, "redis %s:%d: cannot connect: %s", host, port, why);
	if (rc < 0)
		return jobq_error_set(rc, "redis %s: cannot connect: %s", b->where, why);
	rconn *conn = jobq__calloc(1, sizeof(*conn));
	/* the setup's replies are part of connecting */
	if (conn == NULL || rq_sock_set_timeout(c, b->connect_timeout_ms) < 0) {
		rq_sock_close(c);
		jobq__free(conn);
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	}
	conn->c = c;
	conn->gen = gen;
	rc = conn_setup(b, conn);
	if (rc == 0 && rq_sock_set_timeout(c, b->command_timeout_ms) < 0) /* 0: no limit */
		rc = setup_error(b, conn, "setsockopt");
	if (rc < 0) {
		*timed_out = rq_timed_out(c);
		rq_sock_close(c);
		jobq__free(conn);
		return rc;
	}
	*out = conn;
	return 0;
}

/* Opens a connection, retrying I/O failures with capped exponential backoff and jitter. */
static int
conn_open(rconn **out, redis_backend *b) {
	int64_t delay = 10;
	pthread_mutex_lock(&b->mu);
	unsigned int gen = b->conn_gen;
	pthread_mutex_unlock(&b->mu);
	for (unsigned int attempt = 0;; attempt++) {
		int timed_out;
		int rc = conn_open_once(out, b, gen, &timed_out, NULL, 0);
		/* a server that accepts but does not answer is not tried again at once */
		if (rc == 0)
			rq_note_restored(b);
		/* a cluster queue's master may have failed over: ask the cluster where it is now */
		if (rc == JOBQ_EIO && b->route != NULL && rq_route_refresh(b))
			continue;
		if (rc != JOBQ_EIO || timed_out || attempt >= b->reconnect_attempts) {
			if (rc == JOBQ_EIO)
				rq_note_lost(b);
			return rc;
		}
		pthread_mutex_lock(&b->mu);
		unsigned int r = (unsigned int)rand_r(&b->seed);
		pthread_mutex_unlock(&b->mu);
		/* full jitter between delay/2 and delay */
		sleep_ms(delay / 2 + (int64_t)(r % (unsigned int)(delay / 2 + 1)));
		delay *= 2;
		if (delay > b->reconnect_max_delay_ms)
			delay = b->reconnect_max_delay_ms;
	}
}

static void
conn_close(rconn *conn) {
	if (conn != NULL) {
		rq_sock_close(conn->c);
		jobq__free(conn->name);
		jobq__free(conn);
	}
}

static int
same_name(const char *a, const char *b) {
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

int
rq_conn_get_named(rconn **out, redis_backend *b, const char *name) {
	pthread_mutex_lock(&b->mu);
	rconn **unnamed = NULL;
	for (rconn **p = &b->idle_blocking; *p != NULL;) {
		rconn *conn = *p;
		if (conn->gen != b->conn_gen) { /* opened before the last outage */
			*p = conn->next;
			conn_close(conn);
			continue;
		}
		if (same_name(conn->name, name)) {
			*p = conn->next;
			pthread_mutex_unlock(&b->mu);
			conn->next = NULL;
			*out = conn;
			return 0;
		}
		if (conn->name == NULL && unnamed == NULL)
			unnamed = p;
		p = &conn->next;
	}
	/* never another name's connection: renaming it would hide that waiter from getWorkers */
	if (unnamed != NULL) {
		rconn *conn = *unnamed;
		*unnamed = conn->next;
		pthread_mutex_unlock(&b->mu);
		conn->next = NULL;
		*out = conn;
		return 0;
	}
	pthread_mutex_unlock(&b->mu);
	return conn_open(out, b);
}

void
rq_conn_drop_named(redis_backend *b, const char *name) {
	rconn *drop = NULL;
	pthread_mutex_lock(&b->mu);
	for (rconn **p = &b->idle_blocking; *p != NULL;) {
		rconn *conn = *p;
		if (same_name(conn->name, name)) {
			*p = conn->next;
			conn->next = drop;
			drop = conn;
		} else {
			p = &conn->next;
		}
	}
	pthread_mutex_unlock(&b->mu);
	while (drop != NULL) {
		rconn *next = drop->next;
		conn_close(drop);
		drop = next;
	}
}

redisReply *
rq_conn_command_named(rconn *conn, const char *name, int argc, const char **argv) {
	if (same_name(conn->name, name))
		return rq_sock_command(conn->c, argc, argv, NULL);
	/* an empty name resets it (CLIENT SETNAME "" = no name) */
	const char *sv[] = {"CLIENT", "SETNAME", name ? name : ""};
	if (rq_sock_send(conn->c, 3, sv, NULL) < 0 || rq_sock_send(conn->c, argc, argv, NULL) < 0)
		return NULL;
	redisReply *r = rq_sock_reply(conn->c);
	if (r == NULL)
		return NULL;
	int named = r->type != REDIS_REPLY_ERROR;
	freeReplyObject(r);
	jobq__free(conn->name);
	conn->name = NULL;
	if (named && name != NULL)
		conn->name = jobq__strdup(name); /* NULL on ENOMEM: renamed again next time */
	return rq_sock_reply(conn->c);
}

char *
rq_base64(const char *s, size_t n) {
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = jobq__malloc((n + 2) / 3 * 4 + 1);
	if (out == NULL)
		return NULL;
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)u[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)u[i + 1] << 8;
		if (i + 2 < n)
			v |= u[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

int
rq_conn_get(rconn **out, redis_backend *b, int blocking) {
	pthread_mutex_lock(&b->mu);
	rconn **pool = blocking ? &b->idle_blocking : &b->idle;
	while (*pool != NULL) {
		rconn *conn = *pool;
		*pool = conn->next;
		if (conn->gen == b->conn_gen) {
			pthread_mutex_unlock(&b->mu);
			conn->next = NULL;
			*out = conn;
			return 0;
		}
		conn_close(conn); /* opened before the last outage */
	}
	pthread_mutex_unlock(&b->mu);
	return conn_open(out, b);
}

void
rq_conn_put(redis_backend *b, rconn *conn, int blocking) {
	if (conn == NULL)
		return;
	pthread_mutex_lock(&b->mu);
	if (conn->c->err) {
		if (conn->gen == b->conn_gen)
			b->conn_gen++;
		pthread_mutex_unlock(&b->mu);
		conn_close(conn);
		return;
	}
	rconn **pool = blocking ? &b->idle_blocking : &b->idle;
	conn->next = *pool;
	*pool = conn;
	pthread_mutex_unlock(&b->mu);
}

void
rq_pool_free(redis_backend *b) {
	rconn *pools[2] = {b->idle, b->idle_blocking};
	for (int i = 0; i < 2; i++) {
		while (pools[i] != NULL) {
			rconn *next = pools[i]->next;
			conn_close(pools[i]);
			pools[i] = next;
		}
	}
	b->idle = b->idle_blocking = NULL;
	rq_tls_free(b->tls);
	b->tls = NULL;
}

int
rq_conn_init(redis_backend *b, const jobq_redis_options *opts) {
	if (!opts->tls) {
		if (opts->tls_ca_file || opts->tls_ca_path || opts->tls_cert_file ||
		    opts->tls_key_file || opts->tls_sni || opts->tls_insecure)
			return jobq_error_set(
			    JOBQ_EINVAL, "redis %s: TLS settings given without tls (use rediss://)",
			    b->where);
		return 0;
	}
	if (b->unix_path != NULL)
		return jobq_error_set(
		    JOBQ_EINVAL, "redis %s: TLS over a unix socket is not supported", b->where);
	rq_tls_config cfg = {opts->tls_ca_file,  opts->tls_ca_path, opts->tls_cert_file,
	                     opts->tls_key_file, opts->tls_sni,     opts->tls_insecure};
	char why[512];
	int rc = rq_tls_new(&b->tls, &cfg, why, sizeof(why));
	if (rc < 0)
		return jobq_error_set(rc, "redis %s: %s", b->where, why);
	if (opts->tls_insecure)
		jobq_log_emit(
		    JOBQ_LOG_WARN, "redis", NULL, NULL,
		    "redis %s: TLS without verifying the server's certificate (insecure=1)",
		    b->where);
	return 0;
}

void
rq_conn_set_timeout(rconn *conn, int64_t ms) {
	rq_sock_set_timeout(conn->c, ms); /* a failure sets conn->c->err: the call fails */
}

/* The value of a CONFIG GET reply {name, value}, or NULL (CONFIG refused by an ACL or a
 * managed server, or nothing usable). */
static const char *
config_value(const redisReply *r) {
	return r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	               r->element[1]->type == REDIS_REPLY_STRING
	           ? r->element[1]->str
	           : NULL;
}

/* Reads the server's proto-max-bulk-len (the largest string a command may carry; Redis's
 * default when unknown) and warns unless maxmemory-policy is noeviction: under any other
 * policy the server may evict a queue's keys (jobs lost, locks gone), as BullMQ warns too. */
static int
read_config(redis_backend *b, rconn *conn) {
	b->max_bulk = RQ_DEFAULT_MAX_BULK;
	const char *bulk[] = {"CONFIG", "GET", "proto-max-bulk-len"};
	const char *policy[] = {"CONFIG", "GET", "maxmemory-policy"};
	if (rq_sock_send(conn->c, 3, bulk, NULL) < 0 || rq_sock_send(conn->c, 3, policy, NULL) < 0)
		return setup_error(b, conn, "CONFIG GET");
	redisReply *r = rq_sock_reply(conn->c);
	redisReply *p = r != NULL ? rq_sock_reply(conn->c) : NULL;
	if (r == NULL || p == NULL) {
		if (r != NULL)
			freeReplyObject(r);
		return setup_error(b, conn, "CONFIG GET");
	}
	const char *v = config_value(r);
	if (v != NULL) {
		char *end = NULL;
		unsigned long long n = strtoull(v, &end, 10);
		if (end != v && *end == '\0' && n > 0)
			b->max_bulk = n;
	}
	v = config_value(p);
	if (v != NULL && strcmp(v, "noeviction") != 0)
		jobq_log_emit(JOBQ_LOG_WARN, "redis", NULL, NULL,
		              "redis %s: maxmemory-policy is '%s'; it should be 'noeviction', or "
		              "the server may evict a queue's keys under memory pressure",
		              b->where, v);
	freeReplyObject(r);
	freeReplyObject(p);
	return 0;
}

int
rq_connect_check(redis_backend *b) {
	rconn *conn = NULL;
	int timed_out;
	int rc = conn_open_once(&conn, b, 0, &timed_out, NULL, 0);
	if (rc < 0)
		return rc;
	if ((rc = read_config(b, conn)) < 0) {
		conn_close(conn);
		return rc;
	}
	rq_conn_put(b, conn, 0);
	return 0;
}

int
rq_check_size(redis_backend *b, size_t len, const char *what) {
	if ((unsigned long long)len <= b->max_bulk)
		return 0;
	char limit[48];
	if (b->max_bulk % (1024 * 1024) == 0)
		snprintf(limit, sizeof(limit), "%llu MB", b->max_bulk / (1024 * 1024));
	else
		snprintf(limit, sizeof(limit), "%llu bytes", b->max_bulk);
	return jobq_error_set(JOBQ_EINVAL,
	                      "%s of %zu bytes is over Redis's limit of %s (proto-max-bulk-len "
	                      "of the server at %s); nothing was sent",
	                      what, len, limit, b->where);
}

static int
command_error(redis_backend *b, const rq_sock *c, const char *cmd, const char *tail) {
	return rq_io_error(b, c, cmd, b->command_timeout_ms, RQ_COMMAND_TIMEOUT_SETTING, tail);
}

int
rq_conn_open_at(rconn **out, redis_backend *b, const char *host, int port) {
	int timed_out;
	return conn_open_once(out, b, 0, &timed_out, host, port);
}

/* ASKING, then the command, in one write (a cluster's ASK redirect). */
static redisReply *
asking_command(rq_sock *c, int argc, const char **argv, const size_t *lens) {
	const char *av[] = {"ASKING"};
	if (rq_sock_send(c, 1, av, NULL) < 0 || rq_sock_send(c, argc, argv, lens) < 0)
		return NULL;
	redisReply *r = rq_sock_reply(c);
	if (r == NULL)
		return NULL;
	freeReplyObject(r); /* OK */
	return rq_sock_reply(c);
}

/* Gives back a pooled connection, or closes the one opened for an ASK redirect. */
static void
conn_release(redis_backend *b, rconn *conn, int own) {
	if (own)
		conn_close(conn);
	else
		rq_conn_put(b, conn, 0);
}

redisReply *
rq_command(int *rc, redis_backend *b, int idempotent, int argc, const char **argv,
           const size_t *lens) {
	rq_redir redir = {0, 0};
	char ask_host[256];
	int ask_port = 0;
	for (int attempt = 0;;) {
		rconn *conn = NULL;
		int asking = ask_port > 0;
		*rc = asking ? rq_conn_open_at(&conn, b, ask_host, ask_port)
		             : rq_conn_get(&conn, b, 0);
		if (*rc < 0)
			return NULL;
		ask_port = 0;
		redisReply *r = asking ? asking_command(conn->c, argc, argv, lens)
		                       : rq_sock_command(conn->c, argc, argv, lens);
		if (r == NULL) {
			int timed_out = rq_timed_out(conn->c);
			if (idempotent && attempt++ == 0 && !timed_out) {
				conn_release(b, conn, asking);
				continue;
			}
			*rc = command_error(b, conn->c, argv[0],
			                    idempotent ? ""
			                               : " (the command may or may not have run)");
			conn_release(b, conn, asking);
			return NULL;
		}
		conn_release(b, conn, asking);
		/* a cluster redirect: the command did not run, it runs where the cluster says */
		if (r->type == REDIS_REPLY_ERROR && b->route != NULL &&
		    rq_route_follow(b, r->str, &redir, ask_host, sizeof(ask_host), &ask_port) > 0) {
			freeReplyObject(r);
			continue;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			/* OOM: over maxmemory with noeviction, refused before any change */
			*rc = jobq_error_set(strncmp(r->str, "OOM ", 4) == 0 ? JOBQ_ENOSPC
			                                                     : JOBQ_EBACKEND,
			                     "redis %s: %s", b->where, r->str);
			if (strncmp(r->str, "NOSCRIPT", 8) == 0)
				*rc = 1; /* the caller loads the script */
			freeReplyObject(r);
			return NULL;
		}
		*rc = 0;
		return r;
	}
}

static void
replies_free(redisReply **out, size_t n) {
	for (size_t i = 0; i < n; i++) {
		if (out[i] != NULL)
			freeReplyObject(out[i]);
		out[i] = NULL;
	}
}

/* The `n` commands of `argc` arguments each, in one write; their replies in `out`. */
static int
pipeline_once(rq_sock *c, size_t n, int argc, const char **argv, const size_t *lens,
              redisReply **out) {
	size_t total = 0, cap = 0;
	char *buf = NULL;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char *cmd = NULL;
		int len = redisFormatCommandArgv(
		    &cmd, argc, (const char **)(argv + i * (size_t)argc), lens + i * (size_t)argc);
		if (len < 0 || cmd == NULL) {
			rc = -1;
			break;
		}
		if (total + (size_t)len > cap) {
			size_t want = cap ? cap * 2 : 4096;
			while (want < total + (size_t)len)
				want *= 2;
			char *grown = realloc(buf, want);
			if (grown == NULL) {
				free(cmd);
				rc = -1;
				break;
			}
			buf = grown;
			cap = want;
		}
		memcpy(buf + total, cmd, (size_t)len);
		total += (size_t)len;
		free(cmd);
	}
	if (rc < 0) {
		free(buf);
		c->err = REDIS_ERR_OOM;
		snprintf(c->errstr, sizeof(c->errstr), "out of memory formatting commands");
		return -1;
	}
	rc = rq_sock_write(c, buf, total);
	free(buf);
	for (size_t i = 0; i < n; i++)
		out[i] = NULL;
	for (size_t i = 0; i < n && rc == 0; i++) {
		out[i] = rq_sock_reply(c);
		if (out[i] == NULL)
			rc = -1;
	}
	if (rc < 0)
		replies_free(out, n);
	return rc;
}

/* On a cluster: the commands of `out` that met a redirect run again, one by one, where the
 * cluster says (read-only: safe). 0, or < 0 with `out` emptied. */
static int
redirected_again(redis_backend *b, size_t n, int argc, const char **argv, const size_t *lens,
                 redisReply **out) {
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (out[i]->type != REDIS_REPLY_ERROR || !rq_route_is_redirect(out[i]->str))
			continue;
		freeReplyObject(out[i]);
		out[i] =
		    rq_command(&rc, b, 1, argc, argv + i * (size_t)argc, lens + i * (size_t)argc);
	}
	if (rc < 0)
		replies_free(out, n);
	return rc;
}

int
rq_command_many(redis_backend *b, size_t n, int argc, const char **argv, const size_t *lens,
                redisReply **out) {
	for (int attempt = 0;; attempt++) {
		rconn *conn = NULL;
		int rc = rq_conn_get(&conn, b, 0);
		if (rc < 0)
			return rc;
		if (pipeline_once(conn->c, n, argc, argv, lens, out) == 0) {
			rq_conn_put(b, conn, 0);
			return b->route != NULL ? redirected_again(b, n, argc, argv, lens, out) : 0;
		}
		if (attempt == 0 && !rq_timed_out(conn->c)) {
			rq_conn_put(b, conn, 0);
			continue; /* read-only commands: safe to send again */
		}
		rc = command_error(b, conn->c, argv[0], "");
		rq_conn_put(b, conn, 0);
		return rc;
	}
}

#define RQ_MAX_ARGS 64

/* EVALSHA sha numkeys keys... qp argv... into avp/alp (3 + RQ_NKEYS + 1 + argc entries). */
static size_t
script_argv(const char **avp, size_t *alp, char *nk, size_t nk_size, jobq_backend_queue *q,
            int script, int argc, const char **argv, const size_t *lens) {
	const jobq_lua_script *s = &jobq_lua_scripts[script];
	snprintf(nk, nk_size, "%d", s->numkeys);
	size_t n = 0;
	avp[n] = "EVALSHA";
	alp[n++] = 7;
	avp[n] = s->sha1;
	alp[n++] = strlen(s->sha1);
	avp[n] = nk;
	alp[n++] = strlen(nk);
	for (int i = 0; i < RQ_NKEYS; i++) {
		avp[n] = q->keys[i];
		alp[n++] = strlen(q->keys[i]);
	}
	avp[n] = q->qp;
	alp[n++] = q->qp_len;
	for (int i = 0; i < argc; i++) {
		avp[n] = argv[i];
		alp[n++] = lens ? lens[i] : strlen(argv[i]);
	}
	return n;
}

int
rq_script_send(rconn *conn, jobq_backend_queue *q, int script, int argc, const char **argv,
               const size_t *lens) {
	size_t total = 3 + RQ_NKEYS + 1 + (size_t)argc;
	const char **avp = jobq__malloc(total * sizeof(*avp));
	size_t *alp = jobq__malloc(total * sizeof(*alp));
	int rc = 0;
	if (avp == NULL || alp == NULL) {
		rc = jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	} else {
		char nk[8];
		size_t n = script_argv(avp, alp, nk, sizeof(nk), q, script, argc, argv, lens);
		char *cmd = NULL;
		int len = redisFormatCommandArgv(&cmd, (int)n, avp, alp);
		if (len < 0 || cmd == NULL)
			rc = jobq_error_set(JOBQ_ENOMEM,
			                    "redis: out of memory formatting a command");
		else if (rq_sock_write(conn->c, cmd, (size_t)len) < 0)
			rc = command_error(q->b, conn->c, "EVALSHA", "");
		free(cmd);
	}
	jobq__free(avp);
	jobq__free(alp);
	return rc;
}

redisReply *
rq_conn_read(rconn *conn) {
	return rq_sock_reply(conn->c);
}

redisReply *
rq_conn_call(rconn *conn, int argc, const char **argv, const size_t *lens) {
	return rq_sock_command(conn->c, argc, argv, lens);
}

int
rq_conn_open_own(rconn **out, redis_backend *b) {
	return conn_open(out, b);
}

void
rq_conn_close_own(rconn *conn) {
	if (conn != NULL)
		conn_close(conn);
}

redisReply *
rq_script(int *rc, jobq_backend_queue *q, int script, int argc, const char **argv,
          const size_t *lens) {
	const jobq_lua_script *s = &jobq_lua_scripts[script];
	const char *av[RQ_MAX_ARGS];
	size_t al[RQ_MAX_ARGS];
	const char **avp = av;
	size_t *alp = al;
	size_t total = 3 + RQ_NKEYS + 1 + (size_t)argc;
	if (total > RQ_MAX_ARGS) {
		avp = jobq__malloc(total * sizeof(*avp));
		alp = jobq__malloc(total * sizeof(*alp));
		if (avp == NULL || alp == NULL) {
			jobq__free(avp);
			jobq__free(alp);
			*rc = jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
			return NULL;
		}
	}
	char nk[8];
	size_t n = script_argv(avp, alp, nk, sizeof(nk), q, script, argc, argv, lens);
	for (size_t i = 0; i < n; i++) {
		if (alp[i] > q->b->max_bulk) {
			char what[64];
			snprintf(what, sizeof(what), "an argument of script %s", s->name);
			*rc = rq_check_size(q->b, alp[i], what);
			if (avp != av) {
				jobq__free(avp);
				jobq__free(alp);
			}
			return NULL;
		}
	}
	int idem = script_idempotent[script];
	redisReply *r = rq_command(rc, q->b, idem, (int)n, avp, alp);
	if (r == NULL && *rc == 1) {
		/* NOSCRIPT: load it (SCRIPT LOAD is idempotent), then call again. */
		const char *lv[3] = {"SCRIPT", "LOAD", (const char *)s->bytes};
		size_t ll[3] = {6, 4, s->len};
		redisReply *lr = rq_command(rc, q->b, 1, 3, lv, ll);
		if (lr != NULL) {
			freeReplyObject(lr);
			r = rq_command(rc, q->b, idem, (int)n, avp, alp);
		}
	}
	if (r == NULL && *rc == 1)
		*rc = jobq_error_set(JOBQ_EBACKEND, "redis %s: script %s could not be loaded",
		                     q->b->where, s->name);
	if (r == NULL && *rc == JOBQ_EBACKEND) {
		/* keep the server's words, name the script */
		*rc = jobq_error_set(JOBQ_EBACKEND, "redis script %s: %s", s->name,
		                     jobq_error_message());
	}
	if (avp != av) {
		jobq__free(avp);
		jobq__free(alp);
	}
	return r;
}
