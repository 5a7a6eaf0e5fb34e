/*
 * The JSON check of job data, results and progress: RFC 8259 text, any top-level value, at any
 * depth. Node's JSON.parse reads any depth and its JSON.stringify writes data some thousands of
 * levels deep, while a parser that recurses (jansson stops at 2,048 levels) refuses it: so the
 * check keeps only the kind of each open container, in a stack that grows on the heap, and
 * never recurses. Strings must be UTF-8; escapes are checked for shape (\u0000 and lone
 * surrogates are accepted, as JSON.parse accepts them).
 */
#include <string.h>

#include "core.h"

typedef struct scan {
	const unsigned char *p, *end, *start;
	char *stack; /* '{' or '[' per open container */
	size_t depth, cap;
	const char *why;
} scan;

static void
skip_ws(scan *s) {
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int
fail(scan *s, const char *why) {
	s->why = why;
	return -1;
}

/* One UTF-8 sequence at s->p (its first byte >= 0x80). */
static int
utf8_seq(scan *s) {
	unsigned char c = *s->p;
	size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
	if (n == 0 || c > 0xf4 || (size_t)(s->end - s->p) < n)
		return fail(s, "invalid UTF-8");
	unsigned char c1 = s->p[1];
	if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) || (c == 0xf0 && c1 < 0x90) ||
	    (c == 0xf4 && c1 > 0x8f))
		return fail(s, "invalid UTF-8");
	for (size_t i = 1; i < n; i++)
		if ((s->p[i] & 0xc0) != 0x80)
			return fail(s, "invalid UTF-8");
	s->p += n;
	return 0;
}

static int
is_hex(unsigned char c) {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string; s->p is at its opening quote. */
static int
string(scan *s) {
	s->p++;
	while (s->p < s->end) {
		unsigned char c = *s->p;
		if (c == '"') {
			s->p++;
			return 0;
		}
		if (c < 0x20)
			return fail(s, "control character in a string (escape it)");
		if (c == '\\') {
			if (s->end - s->p < 2)
				break;
			unsigned char e = s->p[1];
			if (e == 'u') {
				if (s->end - s->p < 6 || !is_hex(s->p[2]) || !is_hex(s->p[3]) ||
				    !is_hex(s->p[4]) || !is_hex(s->p[5]))
					return fail(s, "invalid \\u escape");
				s->p += 6;
			} else if (strchr("\"\\/bfnrt", e) != NULL && e != '\0') {
				s->p += 2;
			} else {
				return fail(s, "invalid escape");
			}
		} else if (c >= 0x80) {
			if (utf8_seq(s) < 0)
				return -1;
		} else {
			s->p++;
		}
	}
	return fail(s, "unterminated string");
}

static int
digits(scan *s) {
	const unsigned char *at = s->p;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > at ? 0 : fail(s, "invalid number");
}

static int
number(scan *s) {
	if (*s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (digits(s) < 0)
		return -1;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (digits(s) < 0)
			return -1;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (digits(s) < 0)
			return -1;
	}
	return 0;
}

static int
literal(scan *s, const char *word) {
	size_t n = strlen(word);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return fail(s, "invalid value");
	s->p += n;
	return 0;
}

/* An object's key and its ':'. */
static int
key(scan *s) {
	skip_ws(s);
	if (s->p >= s->end || *s->p != '"')
		return fail(s, "an object key must be a string");
	if (string(s) < 0)
		return -1;
	skip_ws(s);
	if (s->p >= s->end || *s->p != ':')
		return fail(s, "':' expected after an object key");
	s->p++;
	return 0;
}

static int
push(scan *s, char kind) {
	if (s->depth == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		char *grown = jobq__realloc(s->stack, cap);
		if (grown == NULL)
			return jobq_error_set(JOBQ_ENOMEM, "out of memory checking JSON");
		s->stack = grown;
		s->cap = cap;
	}
	s->stack[s->depth++] = kind;
	s->p++;
	return 0;
}

/* The text: values, and after each the separator or the end of its container. */
static int
text(scan *s) {
	for (;;) {
		/* a value */
		skip_ws(s);
		if (s->p >= s->end)
			return fail(s, "a value is missing");
		unsigned char c = *s->p;
		int rc;
		if (c == '{' || c == '[') {
			if ((rc = push(s, (char)c)) != 0)
				return rc;
			skip_ws(s);
			if (s->p < s->end && *s->p == (c == '{' ? '}' : ']')) {
				s->p++;
				s->depth--;
			} else {
				if (c == '{' && key(s) < 0)
					return -1;
				continue;
			}
		} else if (c == '"') {
			rc = string(s);
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			rc = number(s);
		} else if (c == 't') {
			rc = literal(s, "true");
		} else if (c == 'f') {
			rc = literal(s, "false");
		} else if (c == 'n') {
			rc = literal(s, "null");
		} else {
			return fail(s, "invalid value");
		}
		if (rc < 0)
			return -1;
		/* what follows a value: ',' or the close of its container, any number of times */
		for (;;) {
			skip_ws(s);
			if (s->depth == 0)
				return s->p == s->end ? 0 : fail(s, "end of text expected");
			if (s->p >= s->end)
				return fail(s, "unterminated object or array");
			char kind = s->stack[s->depth - 1];
			if (*s->p == (kind == '{' ? '}' : ']')) {
				s->p++;
				s->depth--;
				continue;
			}
			if (*s->p != ',')
				return fail(s, kind == '{' ? "',' or '}' expected"
				                           : "',' or ']' expected");
			s->p++;
			if (kind == '{' && key(s) < 0)
				return -1;
			break;
		}
	}
}

int
jobq__validate_json(const char *what, const char *json, size_t len) {
	scan s = {(const unsigned char *)json,
	          (const unsigned char *)json + len,
	          (const unsigned char *)json,
	          NULL,
	          0,
	          0,
	          NULL};
	if (json == NULL)
		return jobq_error_set(JOBQ_EINVAL, "%s is NULL", what);
	int rc = text(&s);
	jobq__free(s.stack);
	if (rc < 0 && s.why != NULL)
		return jobq_error_set(JOBQ_EINVAL, "%s is not valid JSON: %s at byte %zu", what,
		                      s.why, (size_t)(s.p - s.start));
	return rc;
}

int
jobq_json_check(const char *json, size_t len) {
	return jobq__validate_json("the text", json, len);
}
