/*
 * jobq command — serve-metrics: /metrics (Prometheus text) and /healthz over HTTP, served by
 * libmicrohttpd on one internal thread (so the store is used by one request at a time).
 */
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "cli.h"

typedef struct serve_ctx {
	jobq_store *store;
	char **queues;
	int nqueues;
} serve_ctx;

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned int status, const char *type, const char *body) {
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(body), (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ok;
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	ok = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
	serve_ctx *ctx = cls;
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
	if (strcmp(url, "/metrics") == 0) {
		char *text = NULL;
		enum MHD_Result ok;
		if (cli_prometheus(&text, ctx->store, ctx->queues, ctx->nqueues) != 0)
			return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
			             "# HELP jobq_up 1 when the store answered this scrape.\n"
			             "# TYPE jobq_up gauge\njobq_up 0\n");
		ok = reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text);
		free(text);
		return ok;
	}
	if (strcmp(url, "/healthz") == 0) {
		jobq_strings *names = NULL;
		int rc = jobq_store_list_queues(&names, ctx->store);
		jobq_strings_free(names);
		if (rc < 0) {
			char body[1200];
			snprintf(body, sizeof(body), "store unreachable: %s\n",
			         jobq_error_message());
			return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", body);
		}
		return reply(conn, MHD_HTTP_OK, "text/plain", "ok\n");
	}
	return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain",
	             "not found: try /metrics or /healthz\n");
}

/* HOST:PORT, [V6]:PORT, :PORT or PORT into an address (host default 127.0.0.1); the host
 * as given goes to `host`. */
static int
parse_listen(struct sockaddr_storage *out, socklen_t *len, char *host, size_t hsize,
             const char *spec) {
	const char *colon = strrchr(spec, ':'), *p = spec;
	char port[16];
	struct addrinfo hints, *res = NULL;
	snprintf(host, hsize, "127.0.0.1");
	if (colon) {
		const char *h = spec;
		size_t hl = (size_t)(colon - spec);
		if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
			h++;
			hl -= 2;
		}
		if (hl >= hsize)
			return -1;
		if (hl > 0) {
			memcpy(host, h, hl);
			host[hl] = '\0';
		}
		p = colon + 1;
	}
	if (!*p || strlen(p) >= sizeof(port) || strspn(p, "0123456789") != strlen(p))
		return -1;
	snprintf(port, sizeof(port), "%s", p);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
		return -1;
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int
cli_cmd_serve_metrics(int argc, char **argv) {
	const char *listen = NULL;
	const cli_opt opts[] = {
	    {"listen", 'l', CLI_OPT_STRING, &listen, 0, 0, 0, NULL},
	    {NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL},
	};
	cli_args a;
	serve_ctx ctx;
	struct sockaddr_storage addr;
	socklen_t alen = 0;
	char host[256];
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	sigset_t sigs;
	int rc, sig = 0;

	if ((rc = cli_parse(&a, argc, argv, opts, CLI_MAX_POSITIONAL, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	if (!listen)
		return cli_usage_fail("missing --listen ADDR (e.g. 127.0.0.1:9464, or :0 for any "
		                      "free port)");
	if (parse_listen(&addr, &alen, host, sizeof(host), listen) < 0)
		return cli_usage_fail("invalid --listen '%s': expected HOST:PORT, :PORT or PORT",
		                      listen);
	memset(&ctx, 0, sizeof(ctx));
	ctx.queues = a.pos;
	ctx.nqueues = a.npos;
	if ((rc = cli_open_store(&ctx.store, cli_url())) != 0)
		return rc;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* before MHD's thread starts: it inherits it */
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
	                         (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
	                     0, NULL, NULL, answer, &ctx, MHD_OPTION_SOCK_ADDR,
	                     (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT,
	                     (unsigned int)30, MHD_OPTION_END);
	if (!d) {
		jobq_store_close(ctx.store);
		return cli_fail(CLI_EXIT_FAILED,
		                "cannot listen on '%s' (in use, or not an address "
		                "of this host?)",
		                listen);
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("listening on http://%s%s%s:%u/metrics\n", addr.ss_family == AF_INET6 ? "[" : "",
	       host, addr.ss_family == AF_INET6 ? "]" : "", info ? (unsigned)info->port : 0u);
	fflush(stdout);
	while (sigwait(&sigs, &sig) != 0)
		;
	MHD_stop_daemon(d);
	jobq_store_close(ctx.store);
	return 0;
}
