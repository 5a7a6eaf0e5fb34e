/*
 * Redis backend: the connection layer's sockets (sock.c). TCP, unix socket or TLS (OpenSSL);
 * hiredis is used only for its reply reader and its command formatting, which 0.14 has
 * (Debian 12's hiredis has no TLS).
 *
 * Sockets are blocking with SO_RCVTIMEO / SO_SNDTIMEO set to the current timeout, so that a
 * read or a write costs one system call; connecting is non-blocking with its own deadline.
 * Writes never raise SIGPIPE (send with MSG_NOSIGNAL; TLS writes with SIGPIPE blocked on the
 * calling thread and a pending one discarded).
 */
#ifndef JOBQ_REDIS_SOCK_H
#define JOBQ_REDIS_SOCK_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

/* TLS settings shared by every connection of a backend (an SSL_CTX and the peer name). */
typedef struct rq_tls rq_tls;

typedef struct rq_tls_config {
	const char *ca_file;   /* PEM file of trusted CAs; NULL and ca_path NULL: system store */
	const char *ca_path;   /* directory of hashed CA certificates */
	const char *cert_file; /* client certificate (PEM), for servers that require one */
	const char *key_file;  /* its private key (PEM) */
	const char *sni;       /* name sent as SNI and verified; NULL: the host */
	int insecure;          /* non-zero: the server's certificate is not verified */
} rq_tls_config;

/* Builds the TLS context: 0, or JOBQ_EINVAL naming the file that could not be used (message
 * in err) and *out NULL. */
int rq_tls_new(rq_tls **out, const rq_tls_config *cfg, char *err, size_t errlen);
void rq_tls_free(rq_tls *tls);
/* Non-zero when the context carries a client certificate. */
int rq_tls_has_cert(const rq_tls *tls);

typedef struct rq_sock {
	int fd;
	void *ssl; /* SSL *, NULL: plain */
	redisReader *reader;
	int64_t timeout_ms; /* SO_RCVTIMEO/SO_SNDTIMEO in force; 0: none */
	int err;            /* 0, or hiredis's REDIS_ERR_IO / _EOF / _PROTOCOL / _OOM */
	int timed_out;      /* the error is a read or write timeout */
	char errstr[200];
} rq_sock;

/* Connects to unix_path (when not NULL) or host:port, then the TLS handshake when `tls` is
 * not NULL, all within timeout_ms. 0, or JOBQ_EIO / JOBQ_ENOMEM with the reason in err
 * (*timed_out set when the time ran out). */
int rq_sock_open(rq_sock **out, const char *host, int port, const char *unix_path,
                 const rq_tls *tls, int64_t timeout_ms, char *err, size_t errlen, int *timed_out);
void rq_sock_close(rq_sock *s);
/* Each later read or write waits at most ms (0: no limit). -1 and s->err on failure. */
int rq_sock_set_timeout(rq_sock *s, int64_t ms);
/* Writes all of buf; -1 and s->err set. */
int rq_sock_write(rq_sock *s, const char *buf, size_t len);
/* The next reply (never NULL on success); NULL and s->err set. */
redisReply *rq_sock_reply(rq_sock *s);
/* Formats and writes one command (lens NULL: C strings); -1 and s->err set. */
int rq_sock_send(rq_sock *s, int argc, const char **argv, const size_t *lens);
/* rq_sock_send then rq_sock_reply. */
redisReply *rq_sock_command(rq_sock *s, int argc, const char **argv, const size_t *lens);

#endif
