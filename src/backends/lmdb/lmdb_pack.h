/*
 * LMDB backend: the msgpack writer and the msgpack-c unpacking helpers under lmdb_codec.c's
 * record encodings. Only lmdb_codec.c includes this; the helpers stay static inline so the
 * codec's hot paths keep them inlined.
 */
#ifndef JOBQ_LMDB_PACK_H
#define JOBQ_LMDB_PACK_H

#include "lmdb_internal.h"
#include "backends/backend.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for n more bytes; on failure marks the buffer and returns 0. */
static inline int
buf_room(lmdb_buf *b, size_t n) {
	if (b->oom) {
		return 0;
	}
	if (n <= b->cap - b->size) {
		return 1;
	}
	size_t cap = b->cap * 2;
	while (cap - b->size < n) {
		cap *= 2;
	}
	char *d = b->data == b->inl ? malloc(cap) : realloc(b->data, cap);
	if (!d) {
		b->oom = 1;
		return 0;
	}
	if (b->data == b->inl) {
		memcpy(d, b->inl, b->size);
	}
	b->data = d;
	b->cap = cap;
	return 1;
}

static inline void
buf_start(lmdb_buf *b) {
	jobq_lmdb__buf_init(b);
}

/* msgpack, written directly (the same bytes msgpack-c packs: the smallest form of each). */
static inline void
pk_raw(lmdb_buf *b, const void *p, size_t n) {
	if (n && buf_room(b, n)) {
		memcpy(b->data + b->size, p, n);
		b->size += n;
	}
}

/* A type byte followed by the low `n` bytes of v, big-endian. */
static inline void
pk_tag(lmdb_buf *b, unsigned char tag, uint64_t v, size_t n) {
	if (!buf_room(b, 1 + n)) {
		return;
	}
	unsigned char *o = (unsigned char *)b->data + b->size;
	o[0] = tag;
	for (size_t i = 0; i < n; i++) {
		o[1 + i] = (unsigned char)(v >> (8 * (n - 1 - i)));
	}
	b->size += 1 + n;
}

static inline void
pk_u64_any(lmdb_buf *b, uint64_t v) {
	if (v < 128) {
		pk_tag(b, (unsigned char)v, 0, 0);
	} else if (v < 256) {
		pk_tag(b, 0xcc, v, 1);
	} else if (v < 65536) {
		pk_tag(b, 0xcd, v, 2);
	} else if (v <= UINT32_MAX) {
		pk_tag(b, 0xce, v, 4);
	} else {
		pk_tag(b, 0xcf, v, 8);
	}
}

/* Fixints (most fields) inline, the other forms through pk_tag. */
static inline void
pk_u64(lmdb_buf *b, uint64_t v) {
	if (v < 128 && b->size < b->cap && !b->oom) {
		b->data[b->size++] = (char)v;
		return;
	}
	pk_u64_any(b, v);
}

static inline void
pk_i64_any(lmdb_buf *b, int64_t v) {
	if (v >= 0) {
		pk_u64(b, (uint64_t)v);
	} else if (v >= -32) {
		pk_tag(b, (unsigned char)(int8_t)v, 0, 0);
	} else if (v >= INT8_MIN) {
		pk_tag(b, 0xd0, (uint64_t)v, 1);
	} else if (v >= INT16_MIN) {
		pk_tag(b, 0xd1, (uint64_t)v, 2);
	} else if (v >= INT32_MIN) {
		pk_tag(b, 0xd2, (uint64_t)v, 4);
	} else {
		pk_tag(b, 0xd3, (uint64_t)v, 8);
	}
}

static inline void
pk_i64(lmdb_buf *b, int64_t v) {
	if (v >= -32 && v < 128 && b->size < b->cap && !b->oom) {
		b->data[b->size++] = (char)(unsigned char)(int8_t)v;
		return;
	}
	pk_i64_any(b, v);
}

static inline void
pk_double(lmdb_buf *b, double d) {
	uint64_t v;
	memcpy(&v, &d, sizeof(v));
	pk_tag(b, 0xcb, v, 8);
}

static inline void
pk_nil(lmdb_buf *b) {
	pk_tag(b, 0xc0, 0, 0);
}

static inline void
pk_array(lmdb_buf *b, size_t n) {
	if (n < 16) {
		pk_tag(b, (unsigned char)(0x90 | n), 0, 0);
	} else if (n < 65536) {
		pk_tag(b, 0xdc, n, 2);
	} else {
		pk_tag(b, 0xdd, n, 4);
	}
}

static inline void
pk_str_bytes(lmdb_buf *b, const char *s, size_t n) {
	if (n < 32) {
		pk_tag(b, (unsigned char)(0xa0 | n), 0, 0);
	} else if (n < 256) {
		pk_tag(b, 0xd9, n, 1);
	} else if (n < 65536) {
		pk_tag(b, 0xda, n, 2);
	} else {
		pk_tag(b, 0xdb, n, 4);
	}
	pk_raw(b, s, n);
}

static inline void
pk_bin(lmdb_buf *b, const void *p, size_t n) {
	if (n < 256) {
		pk_tag(b, 0xc4, n, 1);
	} else if (n < 65536) {
		pk_tag(b, 0xc5, n, 2);
	} else {
		pk_tag(b, 0xc6, n, 4);
	}
	pk_raw(b, p, n);
}

static inline void
pack_str(lmdb_buf *b, const char *s) {
	if (!s) {
		pk_nil(b);
		return;
	}
	pk_str_bytes(b, s, strlen(s));
}

static inline int
buf_finish(lmdb_buf *b) {
	if (b->oom) {
		jobq_lmdb__buf_free(b);
		return jobq_error_set(JOBQ_ENOMEM, "lmdb: encoding a record");
	}
	return 0;
}

/* --- unpacking helpers ---------------------------------------------------------------------- */

static inline int64_t
obj_i64(const msgpack_object *o) {
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return (int64_t)o->via.u64;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return o->via.i64;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return jobq__f64_to_i64(o->via.f64);
	default:
		return 0;
	}
}

/* A jobq__malloc'd copy of a str/bin object, NULL for nil. Sets *err on ENOMEM. */
static inline char *
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

static inline int
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

static inline const msgpack_object *
at(const unpacked *up, size_t i) {
	return i < up->n ? &up->a[i] : &nil_obj;
}

#endif
