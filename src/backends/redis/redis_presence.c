/*
 * Redis backend: a named worker's presence (the worker_attach / worker_detach slots). BullMQ's
 * getWorkers() lists the clients named "<prefix>:<base64(queue)>:w:<name>" (bullmq-protocol.md
 * §6.3); a jobq worker's commands run on pooled connections shared with the rest of the
 * process, so the worker holds one connection of its own under that name, open and idle for
 * as long as it runs, busy or not. While a queue handle has such a worker, its waits leave
 * their connections unnamed (redis_wait.c): each worker is listed once.
 */
#include <stdio.h>
#include <string.h>

#include "redis_ops.h"

typedef struct presence {
	rconn *conn;
} presence;

int
rq_worker_attach(void **out, jobq_backend_queue *q, const char *name) {
	*out = NULL;
	size_t n = strlen(q->worker_name) + 3 + strlen(name) + 1;
	char *client = jobq__malloc(n);
	presence *p = jobq__calloc(1, sizeof(*p));
	if (client == NULL || p == NULL) {
		jobq__free(client);
		jobq__free(p);
		return jobq_error_set(JOBQ_ENOMEM, "redis: out of memory");
	}
	snprintf(client, n, "%s:w:%s", q->worker_name, name);
	int rc = rq_conn_open_own(&p->conn, q->b);
	if (rc == 0) {
		const char *av[] = {"CLIENT", "SETNAME", client};
		redisReply *r = rq_conn_call(p->conn, 3, av, NULL);
		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			rc = jobq_error_set(JOBQ_EBACKEND, "redis %s: CLIENT SETNAME %s: %s",
			                    q->b->where, client,
			                    r != NULL ? r->str : "connection lost");
		if (r != NULL)
			freeReplyObject(r);
	}
	jobq__free(client);
	if (rc < 0) {
		rq_conn_close_own(p->conn);
		jobq__free(p);
		return rc;
	}
	atomic_fetch_add(&q->attached, 1);
	/* a connection a wait named before stays listed while idle: close it */
	rq_conn_drop_named(q->b, q->worker_name);
	*out = p;
	return 0;
}

void
rq_worker_detach(jobq_backend_queue *q, void *arg) {
	presence *p = arg;
	rq_conn_close_own(p->conn);
	jobq__free(p);
	atomic_fetch_sub(&q->attached, 1);
}
