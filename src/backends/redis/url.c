/*
 * Redis backend: store URLs.
 *   redis://[[user]:password@]host[:port][/db][?prefix=P&...]
 *   rediss://... (TLS) with the query keys cacert=FILE, capath=DIR, cert=FILE, key=FILE,
 *     sni=NAME, insecure=1 (only on rediss://)
 *   redis+unix:///path/to.sock[?db=N&prefix=P&password=...&user=...]
 *   redis+cluster://[[user]:password@]host:port[,host:port...][?...], rediss+cluster://...
 * Query keys: prefix, db, user (or username), password, connect_timeout_ms (default 5000),
 * command_timeout_ms (default 30000), connect_wait_ms (0: fail at once when the server is
 * down). User and password
 * may be percent-encoded. Messages quote the URL with its password hidden.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "redis_int.h"

typedef rq_url url_parts;

static int
hexval(int c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes [s, s+n) into a new string; NULL and *bad set on a bad escape. */
static char *
decode(const char *s, size_t n, int *bad) {
	char *out = jobq__malloc(n + 1);
	size_t o = 0;
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int a = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
			int c = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
			if (a < 0 || c < 0 || a * 16 + c == 0) {
				*bad = 1;
				jobq__free(out);
				return NULL;
			}
			out[o++] = (char)(a * 16 + c);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

static int
parse_long(long long *out, const char *s, size_t n, long long lo, long long hi) {
	if (n == 0 || n > 18)
		return -1;
	long long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
set_str(char **dst, const char *s, size_t n, const char *url, const char *what) {
	int bad = 0;
	jobq__free(*dst);
	*dst = decode(s, n, &bad);
	if (*dst == NULL)
		return bad ? jobq_error_set(JOBQ_EINVAL, "redis URL %s: bad %%-escape in %s", url,
		                            what)
		           : jobq_error_set(JOBQ_ENOMEM, "redis URL: out of memory");
	return 0;
}

static int
parse_query(url_parts *p, const char *q, const char *url) {
	while (*q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', len);
		if (eq == NULL)
			return jobq_error_set(JOBQ_EINVAL,
			                      "redis URL %s: query item '%.*s' has no '='", url,
			                      (int)len, q);
		size_t kl = (size_t)(eq - q), vl = len - kl - 1;
		const char *v = eq + 1;
		long long num;
		int rc = 0;
#define KEY_IS(s) (kl == strlen(s) && strncmp(q, s, kl) == 0)
		if (KEY_IS("prefix")) {
			if (vl == 0)
				return jobq_error_set(JOBQ_EINVAL, "redis URL %s: empty prefix",
				                      url);
			rc = set_str(&p->prefix, v, vl, url, "prefix");
		} else if (KEY_IS("db")) {
			if (parse_long(&num, v, vl, 0, 1000000) < 0)
				return jobq_error_set(JOBQ_EINVAL,
				                      "redis URL %s: db '%.*s' is not a number",
				                      url, (int)vl, v);
			p->db = (long)num;
		} else if (KEY_IS("user") || KEY_IS("username")) {
			rc = set_str(&p->user, v, vl, url, "user");
		} else if (KEY_IS("password")) {
			rc = set_str(&p->password, v, vl, url, "password");
		} else if (KEY_IS("connect_wait_ms")) {
			if (parse_long(&num, v, vl, 0, 86400000) < 0)
				return jobq_error_set(
				    JOBQ_EINVAL,
				    "redis URL %s: connect_wait_ms '%.*s' is not a number of ms",
				    url, (int)vl, v);
			p->connect_wait_ms = num;
		} else if (KEY_IS("connect_timeout_ms") || KEY_IS("command_timeout_ms")) {
			if (parse_long(&num, v, vl, 1, 86400000) < 0)
				return jobq_error_set(
				    JOBQ_EINVAL,
				    "redis URL %s: %.*s '%.*s' is not a positive number", url,
				    (int)kl, q, (int)vl, v);
			if (KEY_IS("connect_timeout_ms"))
				p->connect_timeout_ms = num;
			else
				p->command_timeout_ms = num;
		} else if (KEY_IS("cacert") || KEY_IS("capath") || KEY_IS("cert") ||
		           KEY_IS("key") || KEY_IS("sni") || KEY_IS("insecure")) {
			if (!p->tls)
				return jobq_error_set(JOBQ_EINVAL,
				                      "redis URL %s: '%.*s' is a TLS setting: use "
				                      "rediss://",
				                      url, (int)kl, q);
			if (vl == 0)
				return jobq_error_set(JOBQ_EINVAL, "redis URL %s: empty %.*s", url,
				                      (int)kl, q);
			if (KEY_IS("insecure")) {
				if (vl != 1 || (v[0] != '0' && v[0] != '1'))
					return jobq_error_set(
					    JOBQ_EINVAL,
					    "redis URL %s: insecure '%.*s' is not 0 or 1", url,
					    (int)vl, v);
				p->tls_insecure = v[0] == '1';
			} else {
				char **dst = KEY_IS("cacert")   ? &p->tls_ca_file
				             : KEY_IS("capath") ? &p->tls_ca_path
				             : KEY_IS("cert")   ? &p->tls_cert_file
				             : KEY_IS("key")    ? &p->tls_key_file
				                                : &p->tls_sni;
				char what[16];
				snprintf(what, sizeof(what), "%.*s", (int)kl, q);
				rc = set_str(dst, v, vl, url, what);
			}
		} else {
			return jobq_error_set(JOBQ_EINVAL, "redis URL %s: unknown query key '%.*s'",
			                      url, (int)kl, q);
		}
#undef KEY_IS
		if (rc < 0)
			return rc;
		q += len + (amp ? 1 : 0);
	}
	return 0;
}

static int
parse_tcp(url_parts *p, const char *s, const char *url) {
	size_t alen = strcspn(s, "/?");
	const char *auth_end = s + alen;
	const char *at = NULL;
	for (const char *c = s; c < auth_end; c++)
		if (*c == '@')
			at = c;
	const char *hp = s;
	int rc;
	if (at != NULL) {
		const char *colon = memchr(s, ':', (size_t)(at - s));
		if (colon == NULL)
			return jobq_error_set(JOBQ_EINVAL,
			                      "redis URL %s: credentials must be user:password or "
			                      ":password",
			                      url);
		if (colon > s && (rc = set_str(&p->user, s, (size_t)(colon - s), url, "user")) < 0)
			return rc;
		if ((rc = set_str(&p->password, colon + 1, (size_t)(at - colon - 1), url,
		                  "password")) < 0)
			return rc;
		hp = at + 1;
	}
	const char *host_end;
	const char *port_start = NULL;
	if (*hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(auth_end - hp));
		if (rb == NULL)
			return jobq_error_set(JOBQ_EINVAL, "redis URL %s: unclosed '[' in host",
			                      url);
		if ((rc = set_str(&p->host, hp + 1, (size_t)(rb - hp - 1), url, "host")) < 0)
			return rc;
		host_end = rb + 1;
		if (host_end < auth_end && *host_end != ':')
			return jobq_error_set(JOBQ_EINVAL, "redis URL %s: junk after ']'", url);
	} else {
		host_end = memchr(hp, ':', (size_t)(auth_end - hp));
		if (host_end == NULL)
			host_end = auth_end;
		if (host_end > hp &&
		    (rc = set_str(&p->host, hp, (size_t)(host_end - hp), url, "host")) < 0)
			return rc;
	}
	if (p->host == NULL || p->host[0] == '\0')
		return jobq_error_set(JOBQ_EINVAL, "redis URL %s: no host", url);
	if (host_end < auth_end && *host_end == ':')
		port_start = host_end + 1;
	if (port_start != NULL) {
		long long port;
		if (parse_long(&port, port_start, (size_t)(auth_end - port_start), 1, 65535) < 0)
			return jobq_error_set(
			    JOBQ_EINVAL, "redis URL %s: port '%.*s' is not a number in 1..65535",
			    url, (int)(auth_end - port_start), port_start);
		p->port = (long)port;
	}
	const char *rest = auth_end;
	if (*rest == '/') {
		rest++;
		size_t dl = strcspn(rest, "?");
		long long db;
		if (dl > 0) {
			if (parse_long(&db, rest, dl, 0, 1000000) < 0)
				return jobq_error_set(
				    JOBQ_EINVAL, "redis URL %s: database '%.*s' is not a number",
				    url, (int)dl, rest);
			p->db = (long)db;
		}
		rest += dl;
	}
	if (*rest == '?')
		return parse_query(p, rest + 1, url);
	return 0;
}

/* [user:pass@]host:port[,host:port...][/db][?query]: the first seed parsed as a redis:// URL,
 * the others kept in p->cluster_seeds (each checked for a port). */
static int
parse_cluster(url_parts *p, const char *s, const char *url) {
	size_t alen = strcspn(s, "/?");
	const char *at = NULL;
	for (const char *c = s; c < s + alen; c++)
		if (*c == '@')
			at = c;
	const char *hosts = at ? at + 1 : s;
	size_t first = strcspn(hosts, ",/?");
	size_t rest_len = (size_t)(s + alen - (hosts + first));
	if (rest_len > 0) {
		const char *seeds = hosts + first + 1;
		size_t sl = rest_len - 1;
		for (size_t i = 0; i < sl;) {
			size_t n = strcspn(seeds + i, ",");
			if (n > sl - i)
				n = sl - i;
			const char *colon = NULL;
			for (size_t k = 0; k < n; k++)
				if (seeds[i + k] == ':')
					colon = seeds + i + k;
			long long port;
			if (colon == NULL ||
			    parse_long(&port, colon + 1, (size_t)(seeds + i + n - colon - 1), 1,
			               65535) < 0)
				return jobq_error_set(JOBQ_EINVAL,
				                      "redis URL %s: cluster seed '%.*s' is not "
				                      "host:port",
				                      url, (int)n, seeds + i);
			i += n + 1;
		}
		p->cluster_seeds = jobq__malloc(sl + 1);
		if (p->cluster_seeds == NULL)
			return jobq_error_set(JOBQ_ENOMEM, "redis URL: out of memory");
		memcpy(p->cluster_seeds, seeds, sl);
		p->cluster_seeds[sl] = '\0';
	}
	/* the URL without the other seeds */
	size_t head = (size_t)(hosts + first - s);
	size_t tail = strlen(s + alen);
	char *one = jobq__malloc(head + tail + 1);
	if (one == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis URL: out of memory");
	memcpy(one, s, head);
	memcpy(one + head, s + alen, tail + 1);
	int rc = parse_tcp(p, one, url);
	jobq__free(one);
	if (rc == 0 && p->db != 0)
		rc = jobq_error_set(JOBQ_EINVAL, "redis URL %s: Redis Cluster has only database 0",
		                    url);
	return rc;
}

int
rq_url_parse(rq_url *p, const char *full_url) {
	memset(p, 0, sizeof(*p));
	/* `url` is what messages quote (the password hidden); the parsers read `full_url` */
	char *url = jobq__url_redacted(full_url);
	if (url == NULL)
		return jobq_error_set(JOBQ_ENOMEM, "redis URL: out of memory");
	int rc;
	if (strncmp(full_url, "redis+cluster://", 16) == 0 ||
	    strncmp(full_url, "rediss+cluster://", 17) == 0) {
		p->tls = full_url[5] == 's';
		p->cluster = 1;
		rc = parse_cluster(p, full_url + (p->tls ? 17 : 16), url);
	} else if (strncmp(full_url, "rediss://", 9) == 0) {
		p->tls = 1;
		rc = parse_tcp(p, full_url + 9, url);
	} else if (strncmp(full_url, "redis://", 8) == 0) {
		rc = parse_tcp(p, full_url + 8, url);
	} else if (strncmp(full_url, "redis+unix://", 13) == 0) {
		const char *path = full_url + 13;
		size_t pl = strcspn(path, "?");
		if (pl == 0 || path[0] != '/')
			rc = jobq_error_set(
			    JOBQ_EINVAL, "redis URL %s: expected redis+unix:///absolute/path.sock",
			    url);
		else if ((rc = set_str(&p->unix_path, path, pl, url, "socket path")) == 0 &&
		         path[pl] == '?')
			rc = parse_query(p, path + pl + 1, url);
	} else {
		rc = jobq_error_set(
		    JOBQ_EINVAL,
		    "redis URL %s: expected redis://host:port, rediss://host:port or "
		    "redis+unix:///path",
		    url);
	}
	if (rc == 0 && p->user != NULL && p->password == NULL)
		rc = jobq_error_set(JOBQ_EINVAL, "redis URL %s: a user needs a password", url);
	if (rc == 0 && (p->tls_cert_file != NULL) != (p->tls_key_file != NULL))
		rc = jobq_error_set(
		    JOBQ_EINVAL,
		    "redis URL %s: a client certificate needs both cert= and key=", url);
	if (rc < 0)
		rq_url_free(p);
	jobq__free(url);
	return rc;
}

void
rq_url_free(rq_url *p) {
	jobq__free(p->host);
	jobq__free(p->unix_path);
	jobq__free(p->user);
	jobq__free(p->password);
	jobq__free(p->prefix);
	jobq__free(p->tls_ca_file);
	jobq__free(p->tls_ca_path);
	jobq__free(p->tls_cert_file);
	jobq__free(p->tls_key_file);
	jobq__free(p->tls_sni);
	jobq__free(p->cluster_seeds);
	memset(p, 0, sizeof(*p));
}

int
jobq__redis_open_url(jobq_backend **out, const char *url) {
	url_parts p;
	int rc = rq_url_parse(&p, url);
	if (rc == 0) {
		jobq_redis_options o = JOBQ_REDIS_OPTIONS_INIT;
		o.host = p.host;
		o.port = (int)p.port;
		o.unix_path = p.unix_path;
		o.username = p.user;
		o.password = p.password;
		o.db = (int)p.db;
		o.prefix = p.prefix;
		o.connect_timeout_ms = p.connect_timeout_ms;
		o.command_timeout_ms = p.command_timeout_ms;
		o.connect_wait_ms = p.connect_wait_ms;
		o.tls = p.tls;
		o.tls_ca_file = p.tls_ca_file;
		o.tls_ca_path = p.tls_ca_path;
		o.tls_cert_file = p.tls_cert_file;
		o.tls_key_file = p.tls_key_file;
		o.tls_sni = p.tls_sni;
		o.tls_insecure = p.tls_insecure;
		rc = p.cluster ? rq_cluster_open(out, &o, p.cluster_seeds)
		               : jobq_backend_redis_new(out, &o);
		rq_url_free(&p);
	}
	return rc;
}
