/*
 * Redis backend internals: connections, script calls and the job codec.
 *
 * Threading: hiredis contexts are not thread-safe, so every call takes a connection from a
 * pool for its duration (one connection per concurrently calling thread) and gives it back.
 * Blocking waits (BZPOPMIN on the marker, XREAD BLOCK) use connections of their own and are
 * registered so that wake() can interrupt them with CLIENT UNBLOCK from another connection.
 * The sockets are our own (sock.c: TCP, unix, TLS); hiredis 0.14 only parses replies and
 * formats commands, allocating with libc, and its allocation wrappers abort on out-of-memory
 * (hiredis's alloc.h); nothing we can prevent short of replacing the reader.
 */
#ifndef JOBQ_REDIS_INT_H
#define JOBQ_REDIS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "jobq/backends.h"
#include "backends/backend.h"
#include "jobq/sys/backend.h"
#include "sock.h"

#define RQ_NKEYS 16
/* How long a command may wait for its reply unless the options say otherwise. */
#define RQ_DEFAULT_COMMAND_TIMEOUT_MS 30000
/* How messages name that setting, and what follows a timeout. */
#define RQ_COMMAND_TIMEOUT_SETTING                                                                 \
	"command_timeout_ms; the connection is dropped and the next call opens a new one"
/* Redis's default proto-max-bulk-len, for a server that does not tell its own. */
#define RQ_DEFAULT_MAX_BULK (512ULL * 1024 * 1024)

typedef struct rconn {
	rq_sock *c;
	long long client_id; /* CLIENT ID, for CLIENT UNBLOCK */
	unsigned int gen;    /* connection generation when opened */
	char *name;          /* CLIENT SETNAME given to the server, NULL: unnamed */
	struct rconn *next;
} rconn;

/* A call waiting to be combined with calls of other threads into one script call. */
typedef struct rq_call {
	void *arg;         /* the operation's arguments and outcome */
	size_t steps;      /* jobs it adds, or completions plus fetches */
	int64_t key;       /* only calls with the same key fly together */
	int finished;      /* its flight landed (all below under the combiner's mutex) */
	int released;      /* the member woken before it let it go (see combine()) */
	int urgent;        /* set by the flight: it has work to do (jobs fetched) */
	pthread_cond_t cv; /* signalled when released, or when it is to lead a flight */
	struct rq_call *next;
	struct rq_call *wake_next; /* the member it releases as it leaves */
} rq_call;

/* The calls of one kind on one queue handle waiting for a flight (redis_combine.c, rq_combine()).
 */
typedef struct rq_combiner {
	pthread_mutex_t mu;
	rq_call *head, *tail;
	int flying; /* combined calls on the wire */
} rq_combiner;

/* A blocking wait in progress. */
typedef struct rwaiter {
	long long client_id;
	struct jobq_backend_queue *q;
	int blocking; /* the blocking command may be on the wire */
	struct rwaiter *next;
} rwaiter;

typedef struct redis_backend {
	jobq_backend base;
	char *host;
	int port;
	char *unix_path;
	char *username;
	char *password;
	int db;
	char *prefix;
	int64_t connect_timeout_ms;
	int64_t command_timeout_ms;
	unsigned long long max_bulk; /* the server's proto-max-bulk-len, read at open */
	unsigned int reconnect_attempts;
	int64_t reconnect_max_delay_ms;
	/* "host:port" or the socket path, for messages; atomic because a cluster queue's
	 * backend moves to another master (cluster.c) while other threads use it */
	_Atomic(char *) where;
	rq_tls *tls;                /* NULL: plain connections */
	struct rq_cluster *cluster; /* Redis Cluster (cluster.c); NULL: one server */
	struct rq_route *route;     /* the backend of one cluster queue (cluster.c); else NULL */

	pthread_mutex_t mu;
	pthread_cond_t cv;    /* signalled when a blocking wait of a closing queue ends */
	rconn *idle;          /* pooled command connections */
	rconn *idle_blocking; /* pooled connections for blocking waits */
	rwaiter *waiters;
	uint64_t wake_gen;
	unsigned int conn_gen; /* bumped when a connection is found dead: older ones are dropped */
	unsigned int seed;
	atomic_llong down_since_ms; /* redis_info.c: when the server stopped answering, 0: up */
} redis_backend;

struct jobq_backend_queue {
	redis_backend *b;
	char *name;
	char *qp; /* "<prefix>:<queue>:" */
	size_t qp_len;
	char *keys[RQ_NKEYS];
	char *worker_name; /* "<prefix>:<base64(queue)>": client name of a waiting worker (§6.3) */
	char *events_name; /* worker_name + ":qe": client name of an event reader */
	int waits;         /* blocking waits in progress (under b->mu) */
	atomic_int named_wait; /* a wait holds the connection named worker_name */
	atomic_int attached;   /* named workers holding a presence (redis_presence.c) */
	int closing;           /* queue_close started: waits end with JOBQ_ECLOSED */
	/* pipelined adds (redis_add.c, rq_add_send / rq_add_recv; one thread at a time) */
	struct rconn *pipe;   /* own connection, NULL until the first */
	size_t pipe_inflight; /* steps sent whose replies are not read yet */
	int pipe_broken;      /* an I/O error: reopened once nothing is outstanding */
	/* calls of several threads combined into one script call (redis_combine.c, rq_combine()) */
	rq_combiner adds;
	rq_combiner cf; /* complete_fetch */
};

/* conn.c */
int rq_conn_get(rconn **out, redis_backend *b, int blocking);
void rq_conn_put(redis_backend *b, rconn *conn, int blocking);
/* A blocking connection: an idle one named `name`, else an idle unnamed one, else a new one
 * (never an idle one with another name). */
int rq_conn_get_named(rconn **out, redis_backend *b, const char *name);
/* Closes the idle blocking connections named `name` (their queue is closing). */
void rq_conn_drop_named(redis_backend *b, const char *name);
/* Runs one command on `conn`, first renaming it to `name` (CLIENT SETNAME, pipelined with
 * the command: no extra round trip) if it has another name. NULL and c->err set on I/O
 * errors; a refused SETNAME is ignored (the command still runs). */
redisReply *rq_conn_command_named(rconn *conn, const char *name, int argc, const char **argv);
/* Standard base64 with '=' padding of [s, s+n) into a new string (jobq__malloc). */
char *rq_base64(const char *s, size_t n);
/* Runs one command; on a dropped connection, reconnects and retries once if `idempotent`.
 * Returns the reply (never an error reply: those become JOBQ_EBACKEND) or NULL with *rc set. */
redisReply *rq_command(int *rc, redis_backend *b, int idempotent, int argc, const char **argv,
                       const size_t *lens);
/* Runs `n` read-only commands of `argc` arguments each (argv and lens: n * argc entries) in
 * one write and one round trip; `out` gets the n replies (error replies included). On a
 * dropped connection it reconnects and sends them again once. 0 or < 0 (nothing in out). */
int rq_command_many(redis_backend *b, size_t n, int argc, const char **argv, const size_t *lens,
                    redisReply **out);
/* A connection of the caller's own (not pooled), and its close. */
int rq_conn_open_own(rconn **out, redis_backend *b);
void rq_conn_close_own(rconn *conn);
/* One command on `conn`, waiting for its reply (NULL on I/O errors). */
redisReply *rq_conn_call(rconn *conn, int argc, const char **argv, const size_t *lens);
/* The next reply on `conn` (NULL on I/O errors). */
redisReply *rq_conn_read(rconn *conn);
/* Sends EVALSHA of `script` (as rq_script) on `conn` without reading the reply. */
int rq_script_send(rconn *conn, jobq_backend_queue *q, int script, int argc, const char **argv,
                   const size_t *lens);
/* Runs embedded script `script` with the queue's keys and ARGV = {qp, args...}. */
redisReply *rq_script(int *rc, jobq_backend_queue *q, int script, int argc, const char **argv,
                      const size_t *lens);
/* A connection of its own to host:port instead of the backend's server (cluster redirects),
 * with the backend's settings; one try. */
int rq_conn_open_at(rconn **out, redis_backend *b, const char *host, int port);
/* Opens one connection to check the server, and reads its proto-max-bulk-len. */
int rq_connect_check(redis_backend *b);
/* JOBQ_EINVAL, worded as "<what> of N bytes is over Redis's limit of M", when `len` is more
 * than the server accepts in one string (a command carrying it would be refused and its
 * connection closed); else 0. */
int rq_check_size(redis_backend *b, size_t len, const char *what);
/* Non-zero when the socket's I/O error is a read or write timeout. */
int rq_timed_out(const rq_sock *c);
/* JOBQ_EIO for the I/O error on `c` while running `cmd`: a timeout says which setting
 * (`setting`, `timeout_ms`) ran out, anything else hiredis's words; `tail` is appended. */
int rq_io_error(redis_backend *b, const rq_sock *c, const char *cmd, int64_t timeout_ms,
                const char *setting, const char *tail);
/* Closes the pooled connections and frees the TLS context. */
void rq_pool_free(redis_backend *b);
/* The connection layer's settings from `opts` (TLS context): 0, or < 0 with the error set. */
int rq_conn_init(redis_backend *b, const jobq_redis_options *opts);
/* Each later read or write on `conn` waits at most `ms` (0: no limit). */
void rq_conn_set_timeout(rconn *conn, int64_t ms);

/* redis_info.c: the vtable's list_queues and count_workers slots, and the log lines for a
 * server that stopped answering (rq_note_lost, after an I/O error has been set) and answers
 * again (rq_note_restored, after a connection opened). */
int rq_list_queues(jobq_strings **out, jobq_backend *b);
int rq_count_workers(jobq_backend_queue *q);
/* redis_presence.c: the worker_attach / worker_detach slots. */
int rq_worker_attach(void **presence, jobq_backend_queue *q, const char *name);
void rq_worker_detach(jobq_backend_queue *q, void *presence);
void rq_note_lost(redis_backend *b);
void rq_note_restored(redis_backend *b);
/* url.c: the parts of a redis:// or redis+unix:// store URL (strings percent-decoded, owned). */
typedef struct rq_url {
	char *host, *unix_path, *user, *password, *prefix;
	char *tls_ca_file, *tls_ca_path, *tls_cert_file, *tls_key_file, *tls_sni;
	int tls, tls_insecure;
	int cluster;         /* redis+cluster:// or rediss+cluster:// */
	char *cluster_seeds; /* the seeds after the first, "host:port,host:port" */
	long port, db;
	long long connect_timeout_ms, command_timeout_ms, connect_wait_ms;
} rq_url;
/* Parses `url` without connecting: 0, or < 0 with the error set and nothing to free. */
int rq_url_parse(rq_url *p, const char *url);
void rq_url_free(rq_url *p);

/* cluster.c: a cluster backend from the first seed in `opts` (the others in `seeds`, "host:port,
 * ...", tried when it is down). */
int rq_cluster_open(jobq_backend **out, const jobq_redis_options *opts, const char *seeds);
/* Redis Cluster redirects of a cluster queue's backend (b->route != NULL). A call starts with
 * a zeroed rq_redir; rq_route_follow() looks at an error reply of a command that therefore
 * did not run: MOVED (the backend moves to the new master, the map is updated; retry: 1),
 * ASK (retry once on *ask_host:*ask_port after ASKING: 2), TRYAGAIN or CLUSTERDOWN (waits a
 * little, the map is read again on CLUSTERDOWN; retry: 1). 0: not a redirect, or the time
 * for redirects (command_timeout_ms) is over: the caller reports the error. */
typedef struct rq_redir {
	int64_t deadline_ms; /* 0: not started */
	int64_t delay_ms;
} rq_redir;
int rq_route_follow(redis_backend *b, const char *err, rq_redir *st, char *ask_host,
                    size_t ask_host_len, int *ask_port);
/* After a failed connect: reads the slot map again from any master that answers and moves
 * the backend when its slot changed master. 1 if it moved, else 0. */
int rq_route_refresh(redis_backend *b);
/* Non-zero when `err` is a cluster redirect (MOVED, ASK, TRYAGAIN, CLUSTERDOWN). */
int rq_route_is_redirect(const char *err);
/* The offset and *len of the hash tag of `key` (Redis Cluster's rule: the first {...} that is
 * not empty), or -1 when the whole key is hashed. */
int rq_key_hash_tag(const char *key, size_t *len);

/* codec.c */
int rq_opts_to_json(char **out, const jobq_job_options *opts);
int rq_job_from_hash(jobq_job **out, const char *id, const redisReply *hash, jobq_state state);
/* The same in one allocation, with the lock token `token` (NULL: none) stored with it. */
int rq_job_decode(jobq_job **out, const char *id, size_t id_len, const redisReply *hash,
                  jobq_state state, const char *token);
/* Reads the outcomes and ids of jobs `from` .. `from + n - 1` of an addJobs reply for
 * `total` jobs into ids[0 .. n) and outcomes[0 .. n) (may be NULL). */
int rq_add_reply_read(jobq_job_id *ids, int *outcomes, const redisReply *r, size_t from, size_t n,
                      size_t total);
/* Appends the string elements of an array reply to `list` (may be NULL); returns how many
 * elements the reply has. */
int rq_strings_from_reply(jobq_strings **list, const redisReply *r);
/* Appends the events of an XREAD reply {{stream, {{id, {field, value, ...}}, ...}}, ...}. */
int rq_events_from_reply(jobq_event_list *list, const redisReply *r);

/* redis_sched.c: the scheduler_next slot (lua/updateJobScheduler-16.lua) */
int rq_scheduler_next(jobq_backend_queue *q, const jobq_job *job, int64_t now_ms);
/* redis_sched.c: the scheduler_upsert, _get, _list, _remove slots (lua/upsertJobScheduler-16,
 * getJobSchedulers-16, removeJobScheduler-16) */
int rq_scheduler_upsert(jobq_job_id *iteration, jobq_backend_queue *q, const char *id,
                        const jobq_scheduler_spec *s, int64_t pattern_next_ms, int64_t now_ms);
int rq_scheduler_get(jobq_scheduler **out, jobq_backend_queue *q, const char *id);
int rq_scheduler_list(jobq_scheduler_list **out, jobq_backend_queue *q);
int rq_scheduler_remove(jobq_backend_queue *q, const char *id, int64_t now_ms);

#endif
