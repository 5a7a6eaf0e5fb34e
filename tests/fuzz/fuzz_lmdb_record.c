/*
 * LMDB records: the bytes of any value the LMDB backend reads from disk, through every
 * decoder of src/backends/lmdb/lmdb_codec.c (jobs, both ways; the peek of a completion;
 * running entries; queue records; event batches; dedup keys). A decode must refuse what is
 * not a record and never read outside the bytes; a job it accepts must encode again and
 * decode to the same record.
 */
#include "fuzz.h"

#include "jobq.h"
#include "backends/lmdb/lmdb_internal.h"

/* Whether [p, p + n) lies inside [data, data + size). */
static int
inside(const void *p, size_t n, const uint8_t *data, size_t size) {
	const uint8_t *b = p;
	return b >= data && n <= size && b - data <= (ptrdiff_t)(size - n);
}

static void
check_job(const uint8_t *data, size_t size) {
	lmdb_rec r;
	if (jobq_lmdb__rec_decode(&r, "7", data, size) < 0)
		return;
	FUZZ_CHECK(r.j != NULL && strcmp(r.j->id, "7") == 0);
	lmdb_buf b;
	FUZZ_CHECK(jobq_lmdb__rec_encode(&b, &r) == 0);
	lmdb_rec again;
	FUZZ_CHECK(jobq_lmdb__rec_decode(&again, "7", b.data, b.size) == 0);
	FUZZ_CHECK(again.lock_until == r.lock_until && again.ia == r.ia && again.ib == r.ib);
	FUZZ_CHECK(again.j->state == r.j->state && again.j->data_len == r.j->data_len);
	FUZZ_CHECK(again.j->attempts_made == r.j->attempts_made);
	jobq_job_free(again.j);
	jobq_lmdb__buf_free(&b);
	jobq_job_free(r.j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	if (size > 65536)
		return 0;
	check_job(data, size);

	lmdb_rec r;
	if (jobq_lmdb__rec_decode_packed(&r, "7", data, size, "tok") == 0) {
		FUZZ_CHECK(strcmp(r.j->token, "tok") == 0);
		jobq_job_free(r.j);
	}

	lmdb_peek pk;
	if (jobq_lmdb__rec_peek(&pk, data, size) == 0) {
		FUZZ_CHECK(!pk.has_token || inside(pk.token, pk.token_len, data, size));
		FUZZ_CHECK(!pk.has_dedup || inside(pk.dedup, pk.dedup_len, data, size));
	}

	lmdb_run run;
	if (jobq_lmdb__run_decode(&run, data, size) == 0) {
		FUZZ_CHECK(run.token == NULL || inside(run.token, run.token_len, data, size));
		FUZZ_CHECK(run.dedup == NULL || inside(run.dedup, run.dedup_len, data, size));
	}

	lmdb_qmeta m;
	(void)jobq_lmdb__qmeta_decode(&m, data, size);

	/* an event batch: events one after the other under one key */
	jobq_event_list *list = NULL;
	if (jobq_event_list__new(&list) == 0) {
		size_t off = 0;
		for (int i = 0; i < 1000 && off < size; i++) {
			size_t used = 0;
			if (jobq_lmdb__event_decode_append(list, "1-0", data + off, size - off,
			                                   &used) < 0)
				break;
			FUZZ_CHECK(used > 0 && used <= size - off);
			off += used;
		}
		jobq_event_list_free(list);
	}

	char owner[JOBQ_ID_MAX + 1];
	int64_t expires_at;
	if (jobq_lmdb__dedup_decode(owner, sizeof(owner), &expires_at, data, size) == 0)
		FUZZ_CHECK(memchr(owner, '\0', sizeof(owner)) != NULL);
	return 0;
}
