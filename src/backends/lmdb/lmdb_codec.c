/*
 * LMDB backend: msgpack encodings of the stored records. Every record is an array whose first
 * element is its format version; fields are only appended, and a decoder accepts arrays shorter
 * than it knows (missing fields are zero).
 */
#include "lmdb_internal.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#define REC_VERSION 1

/* --- packing helpers ------------------------------------------------------------------------ */

static void
pack_str(msgpack_packer *pk, const char *s) {
	if (!s) {
		msgpack_pack_nil(pk);
		return;
	}
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

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

static int
buf_write(void *data, const char *p, size_t n) {
	lmdb_buf *b = data;
	if (b->oom) {
		return -1;
	}
	if (n > b->cap - b->size) {
		size_t cap = b->cap * 2;
		while (cap - b->size < n) {
			cap *= 2;
		}
		char *d = b->data == b->inl ? malloc(cap) : realloc(b->data, cap);
		if (!d) {
			b->oom = 1;
			return -1;
		}
		if (b->data == b->inl) {
			memcpy(d, b->inl, b->size);
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->size, p, n);
	b->size += n;
	return 0;
}

static void
buf_start(lmdb_buf *b, msgpack_packer *pk) {
	b->data = b->inl;
	b->size = 0;
	b->cap = sizeof(b->inl);
	b->oom = 0;
	msgpack_packer_init(pk, b, buf_write);
}

static int
buf_finish(lmdb_buf *b) {
	if (b->oom) {
		jobq_lmdb__buf_free(b);
		return jobq_error_set(JOBQ_ENOMEM, "lmdb: encoding a record");
	}
	return 0;
}

/* --- unpacking helpers ---------------------------------------------------------------------- */

static int64_t
obj_i64(const msgpack_object *o) {
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return (int64_t)o->via.u64;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return o->via.i64;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return (int64_t)o->via.f64;
	default:
		return 0;
	}
}

static double
obj_f64(const msgpack_object *o) {
	if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) {
		return o->via.f64;
	}
	return (double)obj_i64(o);
}

/* A jobq__malloc'd copy of a str/bin object, NULL for nil. Sets *err on ENOMEM. */
static char *
obj_str(const msgpack_object *o, int *err) {
	const char *p;
	size_t n;
	if (o->type == MSGPACK_OBJECT_STR) {
		p = o->via.str.ptr;
		n = o->via.str.size;
	} else if (o->type == MSGPACK_OBJECT_BIN) {
		p = o->via.bin.ptr;
		n = o->via.bin.size;
	} else {
		return NULL;
	}
	char *s = jobq__strndup(p ? p : "", n);
	if (!s) {
		*err = 1;
	}
	return s;
}

typedef struct unpacked {
	msgpack_unpacked u;
	const msgpack_object *a;
	size_t n;
} unpacked;

static int
unpack_array(unpacked *up, const void *buf, size_t len, const char *what) {
	size_t off = 0;
	msgpack_unpacked_init(&up->u);
	if (msgpack_unpack_next(&up->u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    up->u.data.type != MSGPACK_OBJECT_ARRAY) {
		msgpack_unpacked_destroy(&up->u);
		return jobq_error_set(JOBQ_EIO, "lmdb: corrupt %s record (not a msgpack array)",
		                      what);
	}
	up->a = up->u.data.via.array.ptr;
	up->n = up->u.data.via.array.size;
	return 0;
}

static const msgpack_object nil_obj = {.type = MSGPACK_OBJECT_NIL};

static const msgpack_object *
at(const unpacked *up, size_t i) {
	return i < up->n ? &up->a[i] : &nil_obj;
}

/* --- job records ---------------------------------------------------------------------------- */

static void
pack_keep(msgpack_packer *pk, const jobq_keep *k) {
	msgpack_pack_int64(pk, (int64_t)k->mode);
	msgpack_pack_int64(pk, k->count);
	msgpack_pack_int64(pk, k->age_ms);
}

int
jobq_lmdb__rec_encode(lmdb_buf *b, const lmdb_rec *r) {
	const jobq_job *j = r->j;
	const jobq_job_options *o = &j->opts;
	msgpack_packer pk;
	buf_start(b, &pk);

	msgpack_pack_array(&pk, 24);
	msgpack_pack_int64(&pk, REC_VERSION); /* 0 */
	pack_str(&pk, j->name);               /* 1 */
	msgpack_pack_bin(&pk, j->data_len);   /* 2 */
	msgpack_pack_bin_body(&pk, j->data ? j->data : "", j->data_len);
	msgpack_pack_int64(&pk, (int64_t)j->state); /* 3 */
	msgpack_pack_int64(&pk, j->timestamp);      /* 4 */
	msgpack_pack_int64(&pk, j->processed_on);   /* 5 */
	msgpack_pack_int64(&pk, j->finished_on);    /* 6 */
	msgpack_pack_int64(&pk, j->delay_ms);       /* 7 */
	msgpack_pack_uint32(&pk, j->priority);      /* 8 */
	msgpack_pack_uint32(&pk, j->attempts_started);
	msgpack_pack_uint32(&pk, j->attempts_made);
	msgpack_pack_uint32(&pk, j->stalled_count); /* 11 */
	pack_str(&pk, j->progress);                 /* 12 */
	pack_str(&pk, j->result);
	pack_str(&pk, j->failed_reason);
	msgpack_pack_array(&pk, j->stacktrace_count); /* 15 */
	for (size_t i = 0; i < j->stacktrace_count; i++) {
		pack_str(&pk, j->stacktrace[i]);
	}
	pack_str(&pk, j->deferred_failure); /* 16 */
	pack_str(&pk, j->token);            /* 17 */
	msgpack_pack_int64(&pk, r->lock_until);
	msgpack_pack_int64(&pk, r->ia);
	msgpack_pack_uint64(&pk, r->ib);
	msgpack_pack_uint64(&pk, r->log_next);
	msgpack_pack_uint64(&pk, r->log_count); /* 22 */

	msgpack_pack_array(&pk, 21); /* 23: options */
	msgpack_pack_int64(&pk, o->delay_ms);
	msgpack_pack_uint32(&pk, o->priority);
	msgpack_pack_int64(&pk, o->lifo);
	msgpack_pack_uint32(&pk, o->attempts);
	msgpack_pack_int64(&pk, (int64_t)o->backoff.type);
	msgpack_pack_int64(&pk, o->backoff.delay_ms);
	msgpack_pack_double(&pk, o->backoff.jitter);
	msgpack_pack_int64(&pk, o->backoff.max_delay_ms);
	pack_str(&pk, o->backoff.custom_type);
	pack_str(&pk, o->job_id);
	pack_keep(&pk, &o->remove_on_complete);
	pack_keep(&pk, &o->remove_on_fail);
	msgpack_pack_int64(&pk, o->keep_logs);
	msgpack_pack_uint64(&pk, (uint64_t)o->size_limit);
	pack_str(&pk, o->dedup_id);
	msgpack_pack_int64(&pk, o->dedup_ttl_ms);
	msgpack_pack_int64(&pk, o->timestamp);
	return buf_finish(b);
}

static void
unpack_keep(jobq_keep *k, const unpacked *o, size_t i) {
	k->mode = (jobq_keep_mode)obj_i64(at(o, i));
	k->count = obj_i64(at(o, i + 1));
	k->age_ms = obj_i64(at(o, i + 2));
}

int
jobq_lmdb__rec_decode(lmdb_rec *r, const char *id, const void *buf, size_t len) {
	unpacked up;
	int rc = unpack_array(&up, buf, len, "job");
	if (rc < 0) {
		return rc;
	}
	memset(r, 0, sizeof(*r));
	jobq_job *j = jobq_job__new();
	if (!j) {
		msgpack_unpacked_destroy(&up.u);
		return JOBQ_ENOMEM;
	}
	int err = 0;
	j->id = jobq__strdup(id);
	err |= j->id == NULL;
	j->name = obj_str(at(&up, 1), &err);
	const msgpack_object *d = at(&up, 2);
	if (d->type == MSGPACK_OBJECT_BIN) {
		j->data = jobq__memdup(d->via.bin.size ? d->via.bin.ptr : "", d->via.bin.size);
		j->data_len = d->via.bin.size;
		err |= j->data == NULL;
	}
	j->state = (jobq_state)obj_i64(at(&up, 3));
	j->timestamp = obj_i64(at(&up, 4));
	j->processed_on = obj_i64(at(&up, 5));
	j->finished_on = obj_i64(at(&up, 6));
	j->delay_ms = obj_i64(at(&up, 7));
	j->priority = (uint32_t)obj_i64(at(&up, 8));
	j->attempts_started = (uint32_t)obj_i64(at(&up, 9));
	j->attempts_made = (uint32_t)obj_i64(at(&up, 10));
	j->stalled_count = (uint32_t)obj_i64(at(&up, 11));
	j->progress = obj_str(at(&up, 12), &err);
	j->result = obj_str(at(&up, 13), &err);
	j->failed_reason = obj_str(at(&up, 14), &err);
	const msgpack_object *st = at(&up, 15);
	if (st->type == MSGPACK_OBJECT_ARRAY && st->via.array.size > 0) {
		j->stacktrace = jobq__calloc(st->via.array.size, sizeof(char *));
		if (!j->stacktrace) {
			err = 1;
		} else {
			for (size_t i = 0; i < st->via.array.size; i++) {
				j->stacktrace[i] = obj_str(&st->via.array.ptr[i], &err);
				if (!j->stacktrace[i]) {
					j->stacktrace[i] = jobq__strdup("");
					err |= j->stacktrace[i] == NULL;
				}
			}
			j->stacktrace_count = st->via.array.size;
		}
	}
	j->deferred_failure = obj_str(at(&up, 16), &err);
	j->token = obj_str(at(&up, 17), &err);
	r->lock_until = obj_i64(at(&up, 18));
	r->ia = obj_i64(at(&up, 19));
	r->ib = (uint64_t)obj_i64(at(&up, 20));
	r->log_next = (uint64_t)obj_i64(at(&up, 21));
	r->log_count = (uint64_t)obj_i64(at(&up, 22));

	const msgpack_object *oo = at(&up, 23);
	jobq_job_options *o = &j->opts;
	o->version = JOBQ_JOB_OPTIONS_VERSION;
	if (oo->type == MSGPACK_OBJECT_ARRAY) {
		unpacked op = {.a = oo->via.array.ptr, .n = oo->via.array.size};
		o->delay_ms = obj_i64(at(&op, 0));
		o->priority = (uint32_t)obj_i64(at(&op, 1));
		o->lifo = (int)obj_i64(at(&op, 2));
		o->attempts = (uint32_t)obj_i64(at(&op, 3));
		o->backoff.type = (jobq_backoff_type)obj_i64(at(&op, 4));
		o->backoff.delay_ms = obj_i64(at(&op, 5));
		o->backoff.jitter = obj_f64(at(&op, 6));
		o->backoff.max_delay_ms = obj_i64(at(&op, 7));
		o->backoff.custom_type = obj_str(at(&op, 8), &err);
		o->job_id = obj_str(at(&op, 9), &err);
		unpack_keep(&o->remove_on_complete, &op, 10);
		unpack_keep(&o->remove_on_fail, &op, 13);
		o->keep_logs = obj_i64(at(&op, 16));
		o->size_limit = (size_t)obj_i64(at(&op, 17));
		o->dedup_id = obj_str(at(&op, 18), &err);
		o->dedup_ttl_ms = obj_i64(at(&op, 19));
		o->timestamp = obj_i64(at(&op, 20));
	}
	msgpack_unpacked_destroy(&up.u);
	if (err) {
		jobq_job_free(j);
		return jobq_error_set(JOBQ_ENOMEM, "lmdb: decoding job %s", id);
	}
	r->j = j;
	return 0;
}

/* --- queue meta ----------------------------------------------------------------------------- */

#define QMETA_FIELDS 15

int
jobq_lmdb__qmeta_encode(lmdb_buf *b, const lmdb_qmeta *m) {
	msgpack_packer pk;
	buf_start(b, &pk);
	const int64_t *v = &m->counter;
	msgpack_pack_array(&pk, 1 + QMETA_FIELDS);
	msgpack_pack_int64(&pk, REC_VERSION);
	for (size_t i = 0; i < QMETA_FIELDS; i++) {
		msgpack_pack_int64(&pk, v[i]);
	}
	return buf_finish(b);
}

int
jobq_lmdb__qmeta_decode(lmdb_qmeta *m, const void *buf, size_t len) {
	unpacked up;
	int rc = unpack_array(&up, buf, len, "queue");
	if (rc < 0) {
		return rc;
	}
	memset(m, 0, sizeof(*m));
	int64_t *v = &m->counter;
	for (size_t i = 0; i < QMETA_FIELDS; i++) {
		v[i] = obj_i64(at(&up, i + 1));
	}
	msgpack_unpacked_destroy(&up.u);
	return 0;
}

/* --- events --------------------------------------------------------------------------------- */

int
jobq_lmdb__event_encode(lmdb_buf *b, const char *name, const char *job_id, size_t nfields,
                        const jobq_event_field *fields) {
	msgpack_packer pk;
	buf_start(b, &pk);
	msgpack_pack_array(&pk, 2 + 2 * nfields);
	pack_str(&pk, name);
	pack_str(&pk, job_id);
	for (size_t i = 0; i < nfields; i++) {
		pack_str(&pk, fields[i].key);
		pack_str(&pk, fields[i].value ? fields[i].value : "");
	}
	return buf_finish(b);
}

int
jobq_lmdb__event_decode_append(jobq_event_list *list, const char *id, const void *buf, size_t len) {
	unpacked up;
	int rc = unpack_array(&up, buf, len, "event");
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
jobq_lmdb__dedup_encode(lmdb_buf *b, const char *owner, int64_t expires_at) {
	msgpack_packer pk;
	buf_start(b, &pk);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int64(&pk, REC_VERSION);
	pack_str(&pk, owner);
	msgpack_pack_int64(&pk, expires_at);
	return buf_finish(b);
}

int
jobq_lmdb__dedup_decode(char *owner, size_t owner_cap, int64_t *expires_at, const void *buf,
                        size_t len) {
	unpacked up;
	int rc = unpack_array(&up, buf, len, "dedup");
	if (rc < 0) {
		return rc;
	}
	const msgpack_object *o = at(&up, 1);
	owner[0] = '\0';
	if (o->type == MSGPACK_OBJECT_STR && o->via.str.size < owner_cap) {
		memcpy(owner, o->via.str.ptr, o->via.str.size);
		owner[o->via.str.size] = '\0';
	}
	*expires_at = obj_i64(at(&up, 2));
	msgpack_unpacked_destroy(&up.u);
	return 0;
}
