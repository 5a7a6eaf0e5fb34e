/*
 * Redis backend: sockets of our own (plain TCP, unix socket, TLS over OpenSSL), see sock.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "backends/backend.h"
#include "sock.h"

struct rq_tls {
	SSL_CTX *ctx;
	char *sni;
	int insecure;
	int has_cert;
};

int
rq_tls_has_cert(const rq_tls *tls) {
	return tls->has_cert;
}

/* --- TLS context ---------------------------------------------------------------------------- */

/* The reason of OpenSSL's last queued error ("" when none), and the queue cleared. */
static const char *
ssl_reason(char *buf, size_t len) {
	unsigned long e = ERR_peek_last_error();
	buf[0] = '\0';
	if (e != 0) {
		const char *r = ERR_reason_error_string(e);
		if (r != NULL)
			snprintf(buf, len, "%s", r);
		else
			ERR_error_string_n(e, buf, len);
	}
	ERR_clear_error();
	return buf;
}

int
rq_tls_new(rq_tls **out, const rq_tls_config *cfg, char *err, size_t errlen) {
	*out = NULL;
	char why[160];
	rq_tls *t = jobq__calloc(1, sizeof(*t));
	if (t == NULL || (cfg->sni != NULL && (t->sni = jobq__strdup(cfg->sni)) == NULL)) {
		jobq__free(t);
		snprintf(err, errlen, "out of memory");
		return JOBQ_ENOMEM;
	}
	t->insecure = cfg->insecure;
	t->has_cert = cfg->cert_file != NULL;
	ERR_clear_error();
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (t->ctx == NULL) {
		snprintf(err, errlen, "cannot create a TLS context: %s",
		         ssl_reason(why, sizeof(why)));
		rq_tls_free(t);
		return JOBQ_ENOMEM;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(t->ctx, SSL_MODE_AUTO_RETRY);
	SSL_CTX_set_verify(t->ctx, cfg->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	const char *bad = NULL, *what = NULL;
	struct stat st;
	if (cfg->ca_path != NULL && (stat(cfg->ca_path, &st) != 0 || !S_ISDIR(st.st_mode))) {
		snprintf(err, errlen, "TLS capath '%s' cannot be used: not a directory",
		         cfg->ca_path);
		rq_tls_free(t);
		return JOBQ_EINVAL;
	}
	if (cfg->ca_file != NULL || cfg->ca_path != NULL) {
		if (SSL_CTX_load_verify_locations(t->ctx, cfg->ca_file, cfg->ca_path) != 1) {
			bad = cfg->ca_file ? cfg->ca_file : cfg->ca_path;
			what = cfg->ca_file ? "cacert" : "capath";
		}
	} else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
		bad = "(system store)";
		what = "the system's CA certificates";
	}
	if (bad == NULL && (cfg->cert_file != NULL) != (cfg->key_file != NULL)) {
		snprintf(err, errlen, "a client certificate needs both cert=FILE and key=FILE");
		rq_tls_free(t);
		return JOBQ_EINVAL;
	}
	if (bad == NULL && cfg->cert_file != NULL) {
		if (SSL_CTX_use_certificate_chain_file(t->ctx, cfg->cert_file) != 1) {
			bad = cfg->cert_file;
			what = "cert";
		} else if (SSL_CTX_use_PrivateKey_file(t->ctx, cfg->key_file, SSL_FILETYPE_PEM) !=
		           1) {
			bad = cfg->key_file;
			what = "key";
		} else if (SSL_CTX_check_private_key(t->ctx) != 1) {
			bad = cfg->key_file;
			what = "key (it does not match cert)";
		}
	}
	if (bad != NULL) {
		snprintf(err, errlen, "TLS %s '%s' cannot be used: %s", what, bad,
		         ssl_reason(why, sizeof(why)));
		rq_tls_free(t);
		return JOBQ_EINVAL;
	}
	*out = t;
	return 0;
}

void
rq_tls_free(rq_tls *tls) {
	if (tls != NULL) {
		SSL_CTX_free(tls->ctx);
		jobq__free(tls->sni);
		jobq__free(tls);
	}
}

/*
 * OpenSSL's own socket BIO writes with write(2), which raises SIGPIPE on a closed connection;
 * this one sends with MSG_NOSIGNAL instead.
 */
static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static int
nosig_write(BIO *b, const char *buf, int len) {
	int fd = (int)(intptr_t)BIO_get_data(b);
	ssize_t n;
	BIO_clear_retry_flags(b);
	do
		n = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_write(b);
	return (int)n;
}

static int
nosig_read(BIO *b, char *buf, int len) {
	int fd = (int)(intptr_t)BIO_get_data(b);
	ssize_t n;
	BIO_clear_retry_flags(b);
	do
		n = recv(fd, buf, (size_t)len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_read(b);
	return (int)n;
}

static long
nosig_ctrl(BIO *b, int cmd, long num, void *ptr) {
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
nosig_create(BIO *b) {
	BIO_set_init(b, 1);
	return 1;
}

static void
nosig_init(void) {
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "jobq socket");
	if (m != NULL &&
	    (BIO_meth_set_write(m, nosig_write) != 1 || BIO_meth_set_read(m, nosig_read) != 1 ||
	     BIO_meth_set_ctrl(m, nosig_ctrl) != 1 || BIO_meth_set_create(m, nosig_create) != 1)) {
		BIO_meth_free(m);
		m = NULL;
	}
	nosig_method = m;
}

/* --- sockets -------------------------------------------------------------------------------- */

static int64_t
now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
set_timeouts(int fd, int64_t ms) {
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		return -1;
	return 0;
}

/* Non-blocking connect within `deadline` (monotonic ms); the fd (blocking again) or -1. */
static int
connect_one(const struct sockaddr *sa, socklen_t salen, int64_t deadline, int *timed_out,
            int *error) {
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error = errno;
		return -1;
	}
	int rc = connect(fd, sa, salen);
	if (rc != 0 && errno == EINPROGRESS) {
		struct pollfd p = {fd, POLLOUT, 0};
		int64_t left;
		do {
			left = deadline - now_ms();
			rc = left > 0 ? poll(&p, 1, (int)(left > 1000000 ? 1000000 : left)) : 0;
		} while (rc < 0 && errno == EINTR);
		if (rc == 0) {
			*timed_out = 1;
			*error = ETIMEDOUT;
			close(fd);
			return -1;
		}
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
			soerr = errno;
		rc = soerr ? -1 : 0;
		errno = soerr;
	}
	if (rc != 0) {
		*error = errno;
		close(fd);
		return -1;
	}
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
		*error = errno;
		close(fd);
		return -1;
	}
	if (sa->sa_family != AF_UNIX) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return fd;
}

static int
open_fd(const char *host, int port, const char *unix_path, int64_t deadline, char *err,
        size_t errlen, int *timed_out) {
	int error = 0;
	if (unix_path != NULL) {
		struct sockaddr_un sun;
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(unix_path) >= sizeof(sun.sun_path)) {
			snprintf(err, errlen, "socket path is longer than %zu bytes",
			         sizeof(sun.sun_path) - 1);
			return -1;
		}
		memcpy(sun.sun_path, unix_path, strlen(unix_path));
		int fd =
		    connect_one((struct sockaddr *)&sun, sizeof(sun), deadline, timed_out, &error);
		if (fd < 0)
			snprintf(err, errlen, "%s",
			         *timed_out ? "connect timed out" : strerror(error));
		return fd;
	}
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	struct addrinfo hints, *ai = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int gai = getaddrinfo(host, ps, &hints, &ai);
	if (gai != 0) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(gai));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *a = ai; a != NULL && fd < 0 && !*timed_out; a = a->ai_next)
		fd = connect_one(a->ai_addr, a->ai_addrlen, deadline, timed_out, &error);
	freeaddrinfo(ai);
	if (fd < 0)
		snprintf(err, errlen, "%s", *timed_out ? "connect timed out" : strerror(error));
	return fd;
}

/* Words for a failed TLS call (ret: its return value) into buf; *timed_out when it was the
 * socket's timeout. */
static void
tls_error(SSL *ssl, int ret, const char *when, char *buf, size_t len, int *timed_out) {
	int saved = errno;
	int e = SSL_get_error(ssl, ret);
	unsigned long code = ERR_peek_last_error();
	char why[160];
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*timed_out = 1;
		/* a plain server waits for the end of a line that never comes */
		snprintf(buf, len, "%s timed out%s", when,
		         SSL_is_init_finished(ssl) ? ""
		                                   : " (if the server does not speak TLS on this "
		                                     "port, use redis://)");
	} else if (e == SSL_ERROR_SYSCALL && code == 0) {
		snprintf(buf, len, "%s: %s", when,
		         ret == 0 || saved == 0 ? "connection closed by the server"
		                                : strerror(saved));
	} else if (e == SSL_ERROR_ZERO_RETURN) {
		snprintf(buf, len, "%s: connection closed by the server", when);
	} else {
		int reason = ERR_GET_REASON(code);
		const char *hint = "";
		if (reason == SSL_R_WRONG_VERSION_NUMBER ||
		    reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
		    reason == SSL_R_RECORD_LENGTH_MISMATCH)
			hint = " (the server does not speak TLS on this port: use redis://)";
		else if (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
		         reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE ||
		         reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
			hint = " (the server requires a client certificate: cert=FILE&key=FILE)";
		snprintf(buf, len, "%s: %s%s", when, ssl_reason(why, sizeof(why)), hint);
	}
	ERR_clear_error();
}

static int
is_ip(const char *s) {
	unsigned char a[16];
	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static int
tls_handshake(rq_sock *s, const rq_tls *tls, const char *host, char *err, size_t errlen,
              int *timed_out) {
	pthread_once(&nosig_once, nosig_init);
	ERR_clear_error();
	SSL *ssl = SSL_new(tls->ctx);
	BIO *bio = nosig_method ? BIO_new(nosig_method) : NULL;
	if (ssl == NULL || bio == NULL) {
		BIO_free(bio);
		SSL_free(ssl);
		ERR_clear_error();
		snprintf(err, errlen, "out of memory for TLS");
		return JOBQ_ENOMEM;
	}
	BIO_set_data(bio, (void *)(intptr_t)s->fd);
	SSL_set_bio(ssl, bio, bio);
	s->ssl = ssl;
	const char *name = tls->sni ? tls->sni : host;
	if (is_ip(name)) {
		if (!tls->insecure &&
		    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1) {
			snprintf(err, errlen, "TLS: cannot verify the address %s", name);
			return JOBQ_EIO;
		}
	} else if (SSL_set_tlsext_host_name(ssl, name) != 1 ||
	           (!tls->insecure && SSL_set1_host(ssl, name) != 1)) {
		ERR_clear_error();
		snprintf(err, errlen, "TLS: cannot use the server name '%s'", name);
		return JOBQ_EIO;
	}
	int ret = SSL_connect(ssl);
	if (ret == 1)
		return 0;
	long v = SSL_get_verify_result(ssl);
	if (v != X509_V_OK) {
		const char *hint = "";
		if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
			hint = tls->sni ? " (the certificate is not valid for the sni= name)"
			                : " (the certificate is not valid for this host name; "
			                  "sni=NAME verifies another)";
		else if (v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		         v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
		         v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)
			hint = " (not signed by a trusted CA: give it with cacert=FILE)";
		snprintf(err, errlen,
		         "TLS: the server's certificate is refused: %s%s (for '%s'; insecure=1 "
		         "skips the check)",
		         X509_verify_cert_error_string(v), hint, name);
		ERR_clear_error();
		return JOBQ_EIO;
	}
	tls_error(ssl, ret, "TLS handshake", err, errlen, timed_out);
	return JOBQ_EIO;
}

int
rq_sock_open(rq_sock **out, const char *host, int port, const char *unix_path, const rq_tls *tls,
             int64_t timeout_ms, char *err, size_t errlen, int *timed_out) {
	*out = NULL;
	*timed_out = 0;
	rq_sock *s = jobq__calloc(1, sizeof(*s));
	if (s == NULL || (s->reader = redisReaderCreate()) == NULL) {
		jobq__free(s);
		snprintf(err, errlen, "out of memory");
		return JOBQ_ENOMEM;
	}
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 86400000);
	s->fd = open_fd(host, port, unix_path, deadline, err, errlen, timed_out);
	if (s->fd < 0) {
		rq_sock_close(s);
		return JOBQ_EIO;
	}
	if (tls != NULL) {
		int64_t left = deadline - now_ms();
		int rc = rq_sock_set_timeout(s, left > 0 ? left : 1);
		if (rc == 0)
			rc = tls_handshake(s, tls, host, err, errlen, timed_out);
		else
			snprintf(err, errlen, "%s", s->errstr);
		if (rc < 0) {
			rq_sock_close(s);
			return rc;
		}
	}
	*out = s;
	return 0;
}

void
rq_sock_close(rq_sock *s) {
	if (s == NULL)
		return;
	if (s->ssl != NULL)
		SSL_free(s->ssl); /* no close_notify: Redis does not need one */
	if (s->fd >= 0)
		close(s->fd);
	if (s->reader != NULL)
		redisReaderFree(s->reader);
	jobq__free(s);
}

static void
fail(rq_sock *s, int err, const char *msg) {
	s->err = err;
	snprintf(s->errstr, sizeof(s->errstr), "%s", msg);
}

int
rq_sock_set_timeout(rq_sock *s, int64_t ms) {
	if (ms < 0)
		ms = 0;
	if (ms == s->timeout_ms)
		return 0;
	if (set_timeouts(s->fd, ms) != 0) {
		fail(s, REDIS_ERR_IO, strerror(errno));
		return -1;
	}
	s->timeout_ms = ms;
	return 0;
}

int
rq_sock_write(rq_sock *s, const char *buf, size_t len) {
	if (s->err)
		return -1;
	if (s->ssl != NULL) {
		while (len > 0) {
			int chunk = len > 1 << 30 ? 1 << 30 : (int)len;
			int n = SSL_write(s->ssl, buf, chunk);
			if (n <= 0) {
				tls_error(s->ssl, n, "write", s->errstr, sizeof(s->errstr),
				          &s->timed_out);
				s->err = REDIS_ERR_IO;
				return -1;
			}
			buf += n;
			len -= (size_t)n;
		}
		return 0;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = send(s->fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			s->timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
			fail(s, REDIS_ERR_IO,
			     s->timed_out ? "write timed out"
			     : n < 0      ? strerror(errno)
			                  : "connection closed by the server");
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Reads what is there into buf: > 0, or -1 and s->err set. */
static ssize_t
sock_read(rq_sock *s, char *buf, size_t len) {
	if (s->ssl != NULL) {
		int n = SSL_read(s->ssl, buf, (int)len);
		if (n > 0)
			return n;
		tls_error(s->ssl, n, "read", s->errstr, sizeof(s->errstr), &s->timed_out);
		s->err = REDIS_ERR_IO;
		return -1;
	}
	for (;;) {
		ssize_t n = recv(s->fd, buf, len, 0);
		if (n > 0)
			return n;
		if (n < 0 && errno == EINTR)
			continue;
		s->timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
		if (n == 0)
			fail(s, REDIS_ERR_EOF, "connection closed by the server");
		else
			fail(s, REDIS_ERR_IO, s->timed_out ? "read timed out" : strerror(errno));
		return -1;
	}
}

static redisReply *
reader_failed(rq_sock *s) {
	fail(s, s->reader->err == REDIS_ERR_OOM ? REDIS_ERR_OOM : REDIS_ERR_PROTOCOL,
	     s->reader->errstr);
	return NULL;
}

redisReply *
rq_sock_reply(rq_sock *s) {
	void *r = NULL;
	if (s->err)
		return NULL;
	if (redisReaderGetReply(s->reader, &r) != REDIS_OK)
		return reader_failed(s);
	while (r == NULL) {
		char buf[16 * 1024];
		ssize_t n = sock_read(s, buf, sizeof(buf));
		if (n < 0)
			return NULL;
		if (redisReaderFeed(s->reader, buf, (size_t)n) != REDIS_OK ||
		    redisReaderGetReply(s->reader, &r) != REDIS_OK)
			return reader_failed(s);
	}
	return r;
}

int
rq_sock_send(rq_sock *s, int argc, const char **argv, const size_t *lens) {
	char *cmd = NULL;
	int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
	if (len < 0 || cmd == NULL) {
		fail(s, REDIS_ERR_OOM, "out of memory formatting a command");
		return -1;
	}
	int rc = rq_sock_write(s, cmd, (size_t)len);
	free(cmd);
	return rc;
}

redisReply *
rq_sock_command(rq_sock *s, int argc, const char **argv, const size_t *lens) {
	return rq_sock_send(s, argc, argv, lens) == 0 ? rq_sock_reply(s) : NULL;
}
