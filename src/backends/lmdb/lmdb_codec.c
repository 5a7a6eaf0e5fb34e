/*
 * LMDB backend: msgpack encodings of the stored records. Every record is an array whose first
 * element is its format version; fields are only appended, and a decoder accepts arrays shorter
 * than it knows (missing fields are zero).
 */
#include "lmdb_internal.h"
#include "backends/backend.h"
#include "lmdb_pack.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#define REC_VERSION 1

/* --- packing helpers (the msgpack writer itself is in lmdb_pack.h) ------------------------ */

/*
 * Records are packed into a lmdb_buf: its inline space holds the usual record, so encoding
 * allocates only for big ones (msgpack's sbuffer starts with an 8 KiB malloc per record).
 */
void
jobq_lmdb__buf_free(lmdb_buf *b) {
	if (b->data != b->inl) {
		free(b->data);
	}
	b->data = b->inl;
	b->size = 0;
	b->cap = sizeof(b->inl);
}

void
jobq_lmdb__buf_init(lmdb_buf *b) {
	b->data = b->inl;
	b->size = 0;
	b->cap = sizeof(b->inl);
	b->oom = 0;
}

int
jobq_lmdb__buf_append(lmdb_buf *b, const void *p, size_t n) {
	if (n && !buf_room(b, n)) {
		return jobq_error_set(JOBQ_ENOMEM, "lmdb: collecting events");
	}
	memcpy(b->data + b->size, p, n);
	b->size += n;
	return 0;
}

/* --- job records ---------------------------------------------------------------------------- */

static void
pack_keep(lmdb_buf *b, const jobq_keep *k) {
	pk_i64(b, (int64_t)k->mode);
	pk_i64(b, k->count);
	pk_i64(b, k->age_ms);
}

int
jobq_lmdb__rec_encode(lmdb_buf *b, const lmdb_rec *r) {
	const jobq_job *j = r->j;
	const jobq_job_options *o = &j->opts;
	buf_start(b);

	pk_array(b, 25);
	pk_i64(b, REC_VERSION);                         /* 0 */
	pack_str(b, j->name);                           /* 1 */
	pk_bin(b, j->data ? j->data : "", j->data_len); /* 2 */
	pk_i64(b, (int64_t)j->state);                   /* 3 */
	pk_i64(b, j->timestamp);                        /* 4 */
	pk_i64(b, j->processed_on);                     /* 5 */
	pk_i64(b, j->finished_on);                      /* 6 */
	pk_i64(b, j->delay_ms);                         /* 7 */
	pk_u64(b, j->priority);                         /* 8 */
	pk_u64(b, j->attempts_started);
	pk_u64(b, j->attempts_made);
	pk_u64(b, j->stalled_count); /* 11 */
	pack_str(b, j->progress);    /* 12 */
	pack_str(b, j->result);
	pack_str(b, j->failed_reason);
	pk_array(b, j->stacktrace_count); /* 15 */
	for (size_t i = 0; i < j->stacktrace_count; i++) {
		pack_str(b, j->stacktrace[i]);
	}
	pack_str(b, j->deferred_failure); /* 16 */
	pack_str(b, j->token);            /* 17 */
	pk_i64(b, r->lock_until);
	pk_i64(b, r->ia);
	pk_u64(b, r->ib);
	pk_u64(b, r->log_next);
	pk_u64(b, r->log_count); /* 22 */

	pk_array(b, 23); /* 23: options */
	pk_i64(b, o->delay_ms);
	pk_u64(b, o->priority);
	pk_i64(b, o->lifo);
	pk_u64(b, o->attempts);
	pk_i64(b, (int64_t)o->backoff.type);
	pk_i64(b, o->backoff.delay_ms);
	pk_double(b, o->backoff.jitter);
	pk_i64(b, o->backoff.max_delay_ms);
	pack_str(b, o->backoff.custom_type);
	pack_str(b, o->job_id);
	pack_keep(b, &o->remove_on_complete);
	pack_keep(b, &o->remove_on_fail);
	pk_i64(b, o->keep_logs);
	pk_u64(b, (uint64_t)o->size_limit);
	pack_str(b, o->dedup_id);
	pk_i64(b, o->dedup_ttl_ms);
	pk_i64(b, o->timestamp);
	pk_i64(b, o->stack_trace_limit);
	pk_i64(b, o->dedup_keep_last);
	pack_str(b, j->processed_by); /* 24 */
	return buf_finish(b);
}

/*
 * A streaming reader for job records: they are decoded twice per job on the worker's path, and
 * msgpack_unpack_next builds a whole object tree in a fresh zone each time. The reader takes the
 * same liberties as the obj_* helpers: a number of any kind reads as an integer, str and bin as
 * strings, anything else as 0 / NULL; missing trailing fields are zero.
 */
typedef struct mp_rd {
	const unsigned char *p, *end;
	int bad;
} mp_rd;

static uint64_t
mp_be(mp_rd *r, size_t n) {
	if ((size_t)(r->end - r->p) < n) {
		r->bad = 1;
		r->p = r->end;
		return 0;
	}
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		v = v << 8 | r->p[i];
	}
	r->p += n;
	return v;
}

static void mp_skip_any(mp_rd *r);

/* Fixint, nil, fixstr (most fields) inline, anything else through the general reader. */
static inline void
mp_skip(mp_rd *r) {
	if (r->p < r->end) {
		unsigned c = *r->p;
		if (c <= 0x7f || c >= 0xe0 || c == 0xc0) {
			r->p++;
			return;
		}
		if (c >= 0xa0 && c <= 0xbf && (size_t)(r->end - r->p) > (c & 0x1fu)) {
			r->p += 1 + (c & 0x1f);
			return;
		}
	}
	mp_skip_any(r);
}

/* Reads the header of the next object. Kinds: 'i' signed, 'u' unsigned, 'f' float (in *f),
 * 's' str/bin (length in *n, bytes at r->p), 'a' array (*n items), 'm' map (*n pairs), 'n' nil
 * or bool or ext (skipped). */
static int
mp_head(mp_rd *r, uint64_t *n, double *f) {
	if (r->p >= r->end) {
		r->bad = 1;
		return 'n';
	}
	unsigned c = *r->p++;
	if (c <= 0x7f) {
		*n = c;
		return 'u';
	}
	if (c >= 0xe0) {
		*n = (uint64_t)(int64_t)(int8_t)c;
		return 'i';
	}
	if (c >= 0xa0 && c <= 0xbf) {
		*n = c & 0x1f;
		return 's';
	}
	if (c >= 0x90 && c <= 0x9f) {
		*n = c & 0x0f;
		return 'a';
	}
	if (c >= 0x80 && c <= 0x8f) {
		*n = c & 0x0f;
		return 'm';
	}
	switch (c) {
	case 0xcc:
		*n = mp_be(r, 1);
		return 'u';
	case 0xcd:
		*n = mp_be(r, 2);
		return 'u';
	case 0xce:
		*n = mp_be(r, 4);
		return 'u';
	case 0xcf:
		*n = mp_be(r, 8);
		return 'u';
	case 0xd0:
		*n = (uint64_t)(int64_t)(int8_t)mp_be(r, 1);
		return 'i';
	case 0xd1:
		*n = (uint64_t)(int64_t)(int16_t)mp_be(r, 2);
		return 'i';
	case 0xd2:
		*n = (uint64_t)(int64_t)(int32_t)mp_be(r, 4);
		return 'i';
	case 0xd3:
		*n = mp_be(r, 8);
		return 'i';
	case 0xca: {
		uint32_t b = (uint32_t)mp_be(r, 4);
		float x;
		memcpy(&x, &b, sizeof(x));
		*f = x;
		return 'f';
	}
	case 0xcb: {
		uint64_t b = mp_be(r, 8);
		memcpy(f, &b, sizeof(*f));
		return 'f';
	}
	case 0xc4:
	case 0xd9:
		*n = mp_be(r, 1);
		return 's';
	case 0xc5:
	case 0xda:
		*n = mp_be(r, 2);
		return 's';
	case 0xc6:
	case 0xdb:
		*n = mp_be(r, 4);
		return 's';
	case 0xdc:
		*n = mp_be(r, 2);
		return 'a';
	case 0xdd:
		*n = mp_be(r, 4);
		return 'a';
	case 0xde:
		*n = mp_be(r, 2);
		return 'm';
	case 0xdf:
		*n = mp_be(r, 4);
		return 'm';
	case 0xc0:
	case 0xc2:
	case 0xc3:
		return 'n';
	case 0xd4:
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8: { /* fixext: type byte + 1..16 bytes */
		static const size_t len[] = {1, 2, 4, 8, 16};
		mp_be(r, 1);
		*n = len[c - 0xd4];
		break;
	}
	case 0xc7:
	case 0xc8:
	case 0xc9:
		*n = mp_be(r, c == 0xc7 ? 1 : c == 0xc8 ? 2 : 4);
		mp_be(r, 1);
		break;
	default:
		r->bad = 1;
		r->p = r->end;
		return 'n';
	}
	/* ext payload */
	if ((uint64_t)(r->end - r->p) < *n) {
		r->bad = 1;
		r->p = r->end;
	} else {
		r->p += *n;
	}
	return 'n';
}

/* Skips the bytes of a str/bin whose header was read. */
static void
mp_skip_bytes(mp_rd *r, uint64_t n) {
	if ((uint64_t)(r->end - r->p) < n) {
		r->bad = 1;
		r->p = r->end;
	} else {
		r->p += n;
	}
}

/* Records nest two deep: deeper is corruption, refused before it exhausts the stack (msgpack-c
 * stops at 32 too). */
enum { MP_DEPTH_MAX = 32 };

static void
mp_skip_at(mp_rd *r, int depth) {
	uint64_t n = 0;
	double f;
	int k = mp_head(r, &n, &f);
	if (k == 's') {
		mp_skip_bytes(r, n);
	} else if (k == 'a' || k == 'm') {
		if (depth >= MP_DEPTH_MAX) {
			r->bad = 1;
			r->p = r->end;
			return;
		}
		uint64_t items = k == 'm' ? n * 2 : n;
		for (uint64_t i = 0; i < items && !r->bad; i++) {
			mp_skip_at(r, depth + 1);
		}
	}
}

static void
mp_skip_any(mp_rd *r) {
	mp_skip_at(r, 0);
}

static int64_t
mp_i64_any(mp_rd *r) {
	uint64_t n = 0;
	double f = 0;
	int k = mp_head(r, &n, &f);
	switch (k) {
	case 'u':
	case 'i':
		return (int64_t)n;
	case 'f':
		return jobq__f64_to_i64(f);
	case 's':
		mp_skip_bytes(r, n);
		return 0;
	case 'a':
	case 'm':
		for (uint64_t i = 0; i < (k == 'm' ? n * 2 : n) && !r->bad; i++) {
			mp_skip(r);
		}
		return 0;
	default:
		return 0;
	}
}

/* Fixints (most fields) inline, anything else through the general reader. */
static inline int64_t
mp_i64(mp_rd *r) {
	if (r->p < r->end) {
		unsigned c = *r->p;
		if (c <= 0x7f) {
			r->p++;
			return (int64_t)c;
		}
		if (c >= 0xe0) {
			r->p++;
			return (int64_t)(int8_t)c;
		}
	}
	return mp_i64_any(r);
}

static double
mp_f64(mp_rd *r) {
	const unsigned char *at0 = r->p;
	uint64_t n = 0;
	double f = 0;
	if (mp_head(r, &n, &f) == 'f') {
		return f;
	}
	r->p = at0;
	return (double)mp_i64(r);
}

/*
 * Where decoded strings go: a jobq__malloc'd copy each (p == NULL), or one after the other
 * into the storage of a packed job (jobq_job__new_packed), which the record's own length
 * bounds: every str/bin has a header of at least one byte, room for its NUL.
 */
typedef struct str_sink {
	char *p, *end;
	int *err;
} str_sink;

static char *
sink_copy(str_sink *s, const void *b, size_t n) {
	if (!s->p) {
		char *c = jobq__strndup(n ? (const char *)b : "", n);
		if (!c) {
			*s->err = 1;
		}
		return c;
	}
	if ((size_t)(s->end - s->p) < n + 1) { /* cannot happen (see above); stay safe */
		*s->err = 2;
		return NULL;
	}
	char *c = s->p;
	if (n) {
		memcpy(c, b, n);
	}
	c[n] = '\0';
	s->p += n + 1;
	return c;
}

/* A copy of a str/bin (through the sink), NULL for anything else. */
static char *
mp_str(mp_rd *r, str_sink *sk, size_t *len_out) {
	if (r->p < r->end && *r->p == 0xc0) { /* nil, without the general reader */
		r->p++;
		return NULL;
	}
	if (r->p < r->end && *r->p >= 0xa0 && *r->p <= 0xbf) { /* fixstr, likewise */
		size_t n = *r->p & 0x1f;
		const unsigned char *b = ++r->p;
		mp_skip_bytes(r, n);
		if (r->bad) {
			return NULL;
		}
		char *s = sink_copy(sk, b, n);
		if (s && len_out) {
			*len_out = n;
		}
		return s;
	}
	const unsigned char *at0 = r->p;
	uint64_t n = 0;
	double f;
	if (mp_head(r, &n, &f) != 's') {
		r->p = at0;
		mp_skip(r);
		return NULL;
	}
	const unsigned char *b = r->p;
	mp_skip_bytes(r, n);
	if (r->bad) {
		return NULL;
	}
	char *s = sink_copy(sk, b, (size_t)n);
	if (s && len_out) {
		*len_out = (size_t)n;
	}
	return s;
}

static void
mp_keep(mp_rd *r, jobq_keep *k, uint64_t *left) {
	int64_t v[3] = {0, 0, 0};
	for (int i = 0; i < 3; i++) {
		if (*left > 0) {
			v[i] = mp_i64(r);
			(*left)--;
		}
	}
	k->mode = (jobq_keep_mode)v[0];
	k->count = v[1];
	k->age_ms = v[2];
}

/* A str/bin left in place: 1 (and *p, *n set) or 0 for anything else (skipped). */
static int
mp_strref(mp_rd *r, const char **p, size_t *n) {
	const unsigned char *at0 = r->p;
	uint64_t len = 0;
	double f;
	if (mp_head(r, &len, &f) != 's') {
		r->p = at0;
		mp_skip(r);
		return 0;
	}
	*p = (const char *)r->p;
	*n = (size_t)len;
	mp_skip_bytes(r, len);
	return !r->bad;
}

int
jobq_lmdb__rec_peek(lmdb_peek *pk, const void *buf, size_t len) {
	mp_rd rd = {buf, (const unsigned char *)buf + len, 0};
	uint64_t n = 0;
	double f;
	memset(pk, 0, sizeof(*pk));
	if (mp_head(&rd, &n, &f) != 'a' || rd.bad) {
		return JOBQ_EIO;
	}
	for (uint64_t i = 0; i < n && i < 24 && !rd.bad; i++) {
		switch (i) {
		case 3:
			pk->state = mp_i64(&rd);
			break;
		case 17:
			pk->has_token = mp_strref(&rd, &pk->token, &pk->token_len);
			break;
		case 18:
			pk->lock_until = mp_i64(&rd);
			break;
		case 19:
			pk->ia = mp_i64(&rd);
			break;
		case 20:
			pk->ib = (uint64_t)mp_i64(&rd);
			break;
		case 22:
			pk->log_count = (uint64_t)mp_i64(&rd);
			break;
		case 23: {
			const unsigned char *at0 = rd.p;
			uint64_t on = 0;
			if (mp_head(&rd, &on, &f) != 'a') {
				rd.p = at0;
				mp_skip(&rd);
				break;
			}
			for (uint64_t k = 0; k < on && k <= 18 && !rd.bad; k++) {
				if (k == 18) {
					pk->has_dedup = mp_strref(&rd, &pk->dedup, &pk->dedup_len);
				} else {
					mp_skip(&rd);
				}
			}
			break;
		}
		default:
			mp_skip(&rd);
		}
	}
	return rd.bad ? JOBQ_EIO : 0;
}

static int
rec_decode(lmdb_rec *r, const char *id, const void *buf, size_t len, int packed,
           const char *token) {
	mp_rd rd = {buf, (const unsigned char *)buf + len, 0};
	uint64_t n = 0;
	double fdummy;
	if (mp_head(&rd, &n, &fdummy) != 'a' || rd.bad) {
		return jobq_error_set(JOBQ_EIO, "lmdb: corrupt job record (not a msgpack array)");
	}
	memset(r, 0, sizeof(*r));
	int err = 0;
	str_sink sink = {NULL, NULL, &err};
	str_sink *sk = &sink;
	size_t idlen = strlen(id), toklen = token ? strlen(token) : 0;
	jobq_job *j;
	if (packed) {
		size_t extra = len + idlen + 1 + (token ? toklen + 1 : 0);
		j = jobq_job__new_packed(extra, &sink.p);
		sink.end = sink.p + extra;
	} else {
		j = jobq_job__new();
	}
	if (!j) {
		return JOBQ_ENOMEM;
	}
	j->id = sink_copy(sk, id, idlen);
	if (token) {
		j->token = sink_copy(sk, token, toklen);
	}
	uint64_t left = n;
/* The next field, if the record has it. */
#define HAVE() (left > 0 && (left--, 1))
	if (HAVE()) {
		mp_i64(&rd); /* 0: version */
	}
	if (HAVE()) {
		j->name = mp_str(&rd, sk, NULL);
	}
	if (HAVE()) {
		const unsigned char *at0 = rd.p;
		uint64_t dn = 0;
		double f;
		int k = mp_head(&rd, &dn, &f);
		if (k == 's' && at0 < rd.end && (*at0 == 0xc4 || *at0 == 0xc5 || *at0 == 0xc6)) {
			const unsigned char *b = rd.p;
			mp_skip_bytes(&rd, dn);
			if (!rd.bad) {
				j->data = sink_copy(sk, b, (size_t)dn);
				j->data_len = (size_t)dn;
			}
		} else {
			rd.p = at0;
			mp_skip(&rd);
		}
	}
	int64_t v[9] = {0};
	for (int i = 0; i < 9; i++) { /* 3..11 */
		if (HAVE()) {
			v[i] = mp_i64(&rd);
		}
	}
	j->state = (jobq_state)v[0];
	j->timestamp = v[1];
	j->processed_on = v[2];
	j->finished_on = v[3];
	j->delay_ms = v[4];
	j->priority = (uint32_t)v[5];
	j->attempts_started = (uint32_t)v[6];
	j->attempts_made = (uint32_t)v[7];
	j->stalled_count = (uint32_t)v[8];
	if (HAVE()) {
		j->progress = mp_str(&rd, sk, NULL);
	}
	if (HAVE()) {
		j->result = mp_str(&rd, sk, NULL);
	}
	if (HAVE()) {
		j->failed_reason = mp_str(&rd, sk, NULL);
	}
	if (HAVE()) { /* 15: stack trace */
		const unsigned char *at0 = rd.p;
		uint64_t sn = 0;
		double f;
		if (mp_head(&rd, &sn, &f) == 'a') {
			if (sn > 0 && sn <= (uint64_t)(rd.end - rd.p)) {
				j->stacktrace = jobq__calloc((size_t)sn, sizeof(char *));
				if (!j->stacktrace) {
					err = 1;
				}
			}
			for (uint64_t i = 0; i < sn && !rd.bad; i++) {
				char *line = mp_str(&rd, sk, NULL);
				if (!j->stacktrace) {
					if (!packed) {
						jobq__free(line);
					}
					continue;
				}
				if (!line) {
					line = sink_copy(sk, "", 0);
				}
				j->stacktrace[i] = line;
			}
			if (j->stacktrace) {
				j->stacktrace_count = (size_t)sn;
			}
		} else {
			rd.p = at0;
			mp_skip(&rd);
		}
	}
	if (HAVE()) {
		j->deferred_failure = mp_str(&rd, sk, NULL);
	}
	if (HAVE()) {
		if (token) {
			mp_skip(&rd); /* the caller's token replaces it */
		} else {
			j->token = mp_str(&rd, sk, NULL);
		}
	}
	int64_t w[5] = {0};
	for (int i = 0; i < 5; i++) { /* 18..22 */
		if (HAVE()) {
			w[i] = mp_i64(&rd);
		}
	}
	r->lock_until = w[0];
	r->ia = w[1];
	r->ib = (uint64_t)w[2];
	r->log_next = (uint64_t)w[3];
	r->log_count = (uint64_t)w[4];

	jobq_job_options *o = &j->opts;
	o->version = JOBQ_JOB_OPTIONS_VERSION;
	if (HAVE()) { /* 23: options */
		const unsigned char *at0 = rd.p;
		uint64_t on = 0;
		double f;
		if (mp_head(&rd, &on, &f) == 'a') {
			uint64_t ol = on;
#define OHAVE() (ol > 0 && (ol--, 1))
			o->delay_ms = OHAVE() ? mp_i64(&rd) : 0;
			o->priority = OHAVE() ? (uint32_t)mp_i64(&rd) : 0;
			o->lifo = OHAVE() ? (int)mp_i64(&rd) : 0;
			o->attempts = OHAVE() ? (uint32_t)mp_i64(&rd) : 0;
			o->backoff.type = OHAVE() ? (jobq_backoff_type)mp_i64(&rd) : 0;
			o->backoff.delay_ms = OHAVE() ? mp_i64(&rd) : 0;
			o->backoff.jitter = OHAVE() ? mp_f64(&rd) : 0;
			o->backoff.max_delay_ms = OHAVE() ? mp_i64(&rd) : 0;
			o->backoff.custom_type = OHAVE() ? mp_str(&rd, sk, NULL) : NULL;
			o->job_id = OHAVE() ? mp_str(&rd, sk, NULL) : NULL;
			mp_keep(&rd, &o->remove_on_complete, &ol);
			mp_keep(&rd, &o->remove_on_fail, &ol);
			o->keep_logs = OHAVE() ? mp_i64(&rd) : 0;
			o->size_limit = OHAVE() ? (size_t)mp_i64(&rd) : 0;
			o->dedup_id = OHAVE() ? mp_str(&rd, sk, NULL) : NULL;
			o->dedup_ttl_ms = OHAVE() ? mp_i64(&rd) : 0;
			o->timestamp = OHAVE() ? mp_i64(&rd) : 0;
			o->stack_trace_limit = OHAVE() ? mp_i64(&rd) : 0;
			o->dedup_keep_last = OHAVE() ? (int)mp_i64(&rd) : 0;
			while (ol > 0 && !rd.bad) { /* fields of a later version */
				ol--;
				mp_skip(&rd);
			}
#undef OHAVE
		} else {
			rd.p = at0;
			mp_skip(&rd);
		}
	}
	if (HAVE()) {
		j->processed_by = mp_str(&rd, sk, NULL); /* 24 */
	}
#undef HAVE
	if (err || rd.bad) {
		jobq_job_free(j);
		return err == 1 ? jobq_error_set(JOBQ_ENOMEM, "lmdb: decoding job %s", id)
		                : jobq_error_set(JOBQ_EIO, "lmdb: corrupt record of job %s", id);
	}
	r->j = j;
	return 0;
}

int
jobq_lmdb__rec_decode(lmdb_rec *r, const char *id, const void *buf, size_t len) {
	return rec_decode(r, id, buf, len, 0, NULL);
}

int
jobq_lmdb__rec_decode_packed(lmdb_rec *r, const char *id, const void *buf, size_t len,
                             const char *token) {
	return rec_decode(r, id, buf, len, 1, token);
}

/* --- running entries -------------------------------------------------------------------------- */

#define RUN_VERSION 1

int
jobq_lmdb__run_encode(lmdb_buf *b, const lmdb_run *run) {
	buf_start(b);
	pk_array(b, 9);
	pk_i64(b, RUN_VERSION);
	pk_u64(b, run->seq);
	if (run->token) {
		pk_str_bytes(b, run->token, run->token_len);
	} else {
		pk_nil(b);
	}
	pk_i64(b, run->lock_until);
	pk_i64(b, run->processed_on);
	pk_u64(b, run->attempts_started);
	pk_u64(b, run->flags);
	if (run->dedup) {
		pk_str_bytes(b, run->dedup, run->dedup_len);
	} else {
		pk_nil(b);
	}
	if (run->pb) {
		pk_str_bytes(b, run->pb, run->pb_len);
	} else {
		pk_nil(b);
	}
	return buf_finish(b);
}

int
jobq_lmdb__run_decode(lmdb_run *run, const void *buf, size_t len) {
	mp_rd rd = {buf, (const unsigned char *)buf + len, 0};
	uint64_t n = 0;
	double f;
	memset(run, 0, sizeof(*run));
	if (mp_head(&rd, &n, &f) != 'a' || rd.bad) {
		return jobq_error_set(JOBQ_EIO,
		                      "lmdb: corrupt running entry (not a msgpack array)");
	}
	for (uint64_t i = 0; i < n && !rd.bad; i++) {
		switch (i) {
		case 1:
			run->seq = (uint64_t)mp_i64(&rd);
			break;
		case 2:
			if (!mp_strref(&rd, &run->token, &run->token_len)) {
				run->token = NULL;
			}
			break;
		case 3:
			run->lock_until = mp_i64(&rd);
			break;
		case 4:
			run->processed_on = mp_i64(&rd);
			break;
		case 5:
			run->attempts_started = (uint32_t)mp_i64(&rd);
			break;
		case 6:
			run->flags = (uint32_t)mp_i64(&rd);
			break;
		case 7:
			if (!mp_strref(&rd, &run->dedup, &run->dedup_len)) {
				run->dedup = NULL;
			}
			break;
		case 8:
			if (!mp_strref(&rd, &run->pb, &run->pb_len)) {
				run->pb = NULL;
			}
			break;
		default:
			mp_skip(&rd);
		}
	}
	return rd.bad ? jobq_error_set(JOBQ_EIO, "lmdb: corrupt running entry") : 0;
}

/* --- queue meta ----------------------------------------------------------------------------- */

#define QMETA_FIELDS 20 /* the int64 fields of lmdb_qmeta, in order */
_Static_assert(sizeof(lmdb_qmeta) == QMETA_FIELDS * sizeof(int64_t),
               "lmdb_qmeta is QMETA_FIELDS int64 fields in a row");

int
jobq_lmdb__qmeta_encode(lmdb_buf *b, const lmdb_qmeta *m) {
	buf_start(b);
	const int64_t *v = &m->counter;
	pk_array(b, 1 + QMETA_FIELDS);
	pk_i64(b, REC_VERSION);
	for (size_t i = 0; i < QMETA_FIELDS; i++) {
		pk_i64(b, v[i]);
	}
	return buf_finish(b);
}

int
jobq_lmdb__qmeta_decode(lmdb_qmeta *m, const void *buf, size_t len) {
	/* Read by every write operation: the streaming reader, not an object tree. */
	mp_rd rd = {buf, (const unsigned char *)buf + len, 0};
	uint64_t n = 0;
	double f;
	if (mp_head(&rd, &n, &f) != 'a' || rd.bad) {
		return jobq_error_set(JOBQ_EIO, "lmdb: corrupt queue record (not a msgpack array)");
	}
	memset(m, 0, sizeof(*m));
	int64_t *v = &m->counter;
	if (n > 0) {
		mp_i64(&rd); /* version */
	}
	for (size_t i = 0; i < QMETA_FIELDS && i + 1 < n; i++) {
		v[i] = mp_i64(&rd);
	}
	if (rd.bad) {
		return jobq_error_set(JOBQ_EIO, "lmdb: corrupt queue record");
	}
	return 0;
}

/* --- events --------------------------------------------------------------------------------- */

int
jobq_lmdb__event_encode(lmdb_buf *b, const char *name, const char *job_id, size_t nfields,
                        const jobq_event_field *fields) {
	buf_start(b);
	return jobq_lmdb__event_append(b, name, job_id, nfields, fields);
}

int
jobq_lmdb__event_append(lmdb_buf *b, const char *name, const char *job_id, size_t nfields,
                        const jobq_event_field *fields) {
	/* Events are written for every job several times: short strings (< 32 bytes, the
	 * usual case) are packed in one go after a single room check. */
	enum { FIX_MAX = 15 }; /* items of a fixarray */
	const char *s[FIX_MAX];
	size_t len[FIX_MAX], n = 2 + 2 * nfields, total = 1;
	int small = n <= FIX_MAX;
	for (size_t i = 0; small && i < n; i++) {
		if (i < 2) {
			s[i] = i == 0 ? name : job_id; /* NULL: nil */
		} else if (i % 2 == 0) {
			s[i] = fields[(i - 2) / 2].key; /* NULL: nil */
		} else {
			s[i] = fields[(i - 2) / 2].value ? fields[(i - 2) / 2].value : "";
		}
		len[i] = s[i] ? strlen(s[i]) : 0;
		small = len[i] < 32;
		total += 1 + len[i];
	}
	if (!small || !buf_room(b, total)) {
		pk_array(b, n);
		pack_str(b, name);
		pack_str(b, job_id);
		for (size_t i = 0; i < nfields; i++) {
			pack_str(b, fields[i].key);
			pack_str(b, fields[i].value ? fields[i].value : "");
		}
		return buf_finish(b);
	}
	unsigned char *o = (unsigned char *)b->data + b->size;
	*o++ = (unsigned char)(0x90 | n);
	for (size_t i = 0; i < n; i++) {
		if (!s[i]) {
			*o++ = 0xc0;
			continue;
		}
		*o++ = (unsigned char)(0xa0 | len[i]);
		memcpy(o, s[i], len[i]);
		o += len[i];
	}
	b->size = (size_t)((char *)o - b->data);
	return 0;
}

int
jobq_lmdb__event_decode_append(jobq_event_list *list, const char *id, const void *buf, size_t len,
                               size_t *used) {
	mp_rd rd = {buf, (const unsigned char *)buf + len, 0};
	mp_skip(&rd);
	if (rd.bad) {
		return jobq_error_set(JOBQ_EIO, "lmdb: corrupt event %s", id);
	}
	*used = (size_t)(rd.p - (const unsigned char *)buf);
	if (!list) {
		return 0;
	}
	unpacked up;
	int rc = unpack_array(&up, buf, *used, "event");
	if (rc < 0) {
		return rc;
	}
	int err = 0;
	size_t nf = up.n >= 2 ? (up.n - 2) / 2 : 0;
	char *name = obj_str(at(&up, 0), &err);
	char *job = obj_str(at(&up, 1), &err);
	jobq_event_field fields[16];
	char *strs[32] = {0};
	if (nf > 16) {
		nf = 16;
	}
	for (size_t i = 0; i < nf; i++) {
		strs[2 * i] = obj_str(at(&up, 2 + 2 * i), &err);
		strs[2 * i + 1] = obj_str(at(&up, 3 + 2 * i), &err);
		fields[i].key = strs[2 * i] ? strs[2 * i] : "";
		fields[i].value = strs[2 * i + 1] ? strs[2 * i + 1] : "";
	}
	if (err) {
		rc = jobq_error_set(JOBQ_ENOMEM, "lmdb: decoding event %s", id);
	} else {
		rc = jobq_event_list__append(list, id, name ? name : "", job, nf, fields);
	}
	for (size_t i = 0; i < 2 * nf; i++) {
		jobq__free(strs[i]);
	}
	jobq__free(name);
	jobq__free(job);
	msgpack_unpacked_destroy(&up.u);
	return rc;
}

/* --- dedup keys ----------------------------------------------------------------------------- */

int
jobq_lmdb__dedup_encode(lmdb_buf *b, const char *owner, int64_t expires_at, const char *stash_id,
                        const void *stash, size_t stash_len) {
	buf_start(b);
	pk_array(b, stash_id != NULL ? 5 : 3);
	pk_i64(b, REC_VERSION);
	pack_str(b, owner);
	pk_i64(b, expires_at);
	if (stash_id != NULL) {
		pack_str(b, stash_id);
		pk_bin(b, stash, stash_len);
	}
	return buf_finish(b);
}

int
jobq_lmdb__dedup_stash(char *id, const void **rec, size_t *rec_len, const void *buf, size_t len) {
	mp_rd rd = {buf, (const unsigned char *)buf + len, 0};
	uint64_t n = 0;
	double f;
	const char *p = NULL;
	size_t pl = 0;
	if (mp_head(&rd, &n, &f) != 'a') {
		return jobq_error_set(JOBQ_EIO, "lmdb: corrupt dedup record");
	}
	if (n < 5) {
		return 0;
	}
	for (int i = 0; i < 3; i++) {
		mp_skip(&rd);
	}
	if (!mp_strref(&rd, &p, &pl) || pl == 0 || pl > JOBQ_ID_MAX ||
	    !mp_strref(&rd, (const char **)rec, rec_len)) {
		return jobq_error_set(JOBQ_EIO, "lmdb: corrupt dedup record");
	}
	memcpy(id, p, pl);
	id[pl] = '\0';
	return 1;
}

int
jobq_lmdb__dedup_decode(char *owner, size_t owner_cap, int64_t *expires_at, const void *buf,
                        size_t len) {
	/* msgpack-c allocates a container's items as its header counts them, before it reads
	 * them: the streaming reader first checks that they are there */
	mp_rd rd = {buf, (const unsigned char *)buf + len, 0};
	mp_skip(&rd);
	if (rd.bad) {
		return jobq_error_set(JOBQ_EIO, "lmdb: corrupt dedup record");
	}
	unpacked up;
	int rc = unpack_array(&up, buf, len, "dedup");
	if (rc < 0) {
		return rc;
	}
	const msgpack_object *o = at(&up, 1);
	owner[0] = '\0';
	/* (an empty str has no pointer, and memcpy from NULL is undefined even for 0 bytes) */
	if (o->type == MSGPACK_OBJECT_STR && o->via.str.size > 0 && o->via.str.size < owner_cap) {
		memcpy(owner, o->via.str.ptr, o->via.str.size);
		owner[o->via.str.size] = '\0';
	}
	*expires_at = obj_i64(at(&up, 2));
	msgpack_unpacked_destroy(&up.u);
	return 0;
}
