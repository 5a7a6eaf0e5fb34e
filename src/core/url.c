/* Store URLs as they may be shown: with the password hidden. */
#include <string.h>
#include <strings.h>

#include "core.h"
#include "backends/backend.h"

typedef struct out_buf {
	char *s;
	size_t size, len; /* len counts every byte, written or not */
} out_buf;

static void
put(out_buf *o, const char *s, size_t n) {
	for (size_t i = 0; i < n; i++, o->len++)
		if (o->size > 0 && o->len < o->size - 1)
			o->s[o->len] = s[i];
}

/* The query's items, with the value of `password=` replaced. */
static void
put_query(out_buf *o, const char *q) {
	while (*q) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		size_t kl = eq ? (size_t)(eq - q) : len;
		if (eq != NULL && kl == 8 && strncasecmp(q, "password", 8) == 0) {
			put(o, q, kl + 1);
			put(o, "***", 3);
		} else {
			put(o, q, len);
		}
		q += len;
		if (*q == '&')
			put(o, q++, 1);
	}
}

size_t
jobq_url_redact(char *out, size_t size, const char *url) {
	out_buf o = {out, size, 0};
	if (url == NULL)
		url = "";
	const char *q = strchr(url, '?');
	size_t before_query = q ? (size_t)(q - url) : strlen(url);
	const char *scheme_end = strstr(url, "://");
	if (scheme_end != NULL && (size_t)(scheme_end - url) < before_query) {
		const char *auth = scheme_end + 3;
		size_t alen = strcspn(auth, "/?#");
		const char *at = NULL;
		for (const char *c = auth; c < auth + alen; c++)
			if (*c == '@')
				at = c;
		if (at != NULL) {
			/* user:password@ -> user:***@, and a bare secret@ -> ***@ */
			const char *colon = memchr(auth, ':', (size_t)(at - auth));
			put(&o, url, (size_t)((colon ? colon + 1 : auth) - url));
			put(&o, "***", 3);
			put(&o, at, before_query - (size_t)(at - url));
		} else {
			put(&o, url, before_query);
		}
	} else {
		put(&o, url, before_query);
	}
	if (q != NULL) {
		put(&o, "?", 1);
		put_query(&o, q + 1);
	}
	if (size > 0)
		out[o.len < size ? o.len : size - 1] = '\0';
	return o.len;
}

char *
jobq__url_redacted(const char *url) {
	size_t n = jobq_url_redact(NULL, 0, url);
	char *s = jobq__malloc(n + 1);
	if (s != NULL)
		jobq_url_redact(s, n + 1, url);
	return s;
}
