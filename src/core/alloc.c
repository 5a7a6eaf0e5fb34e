/* The allocator hook and the allocation helpers everything in the library goes through. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

static void *
libc_malloc(void *ctx, size_t size) {
	(void)ctx;
	return malloc(size);
}

static void *
libc_realloc(void *ctx, void *ptr, size_t size) {
	(void)ctx;
	return realloc(ptr, size);
}

static void
libc_free(void *ctx, void *ptr) {
	(void)ctx;
	free(ptr);
}

static jobq_allocator allocator = {NULL, libc_malloc, libc_realloc, libc_free};

int
jobq_set_allocator(const jobq_allocator *a) {
	if (a == NULL) {
		allocator = (jobq_allocator){NULL, libc_malloc, libc_realloc, libc_free};
		return 0;
	}
	if (a->malloc == NULL || a->realloc == NULL || a->free == NULL)
		return jobq_error_set(JOBQ_EINVAL,
		                      "allocator: malloc, realloc and free are required");
	allocator = *a;
	return 0;
}

void *
jobq__malloc(size_t size) {
	void *p = allocator.malloc(allocator.ctx, size ? size : 1);
	if (p == NULL)
		jobq_error_set(JOBQ_ENOMEM, "out of memory allocating %zu bytes", size);
	return p;
}

void *
jobq__calloc(size_t n, size_t size) {
	if (size != 0 && n > SIZE_MAX / size) {
		jobq_error_set(JOBQ_ENOMEM, "allocation of %zu x %zu bytes overflows", n, size);
		return NULL;
	}
	void *p = jobq__malloc(n * size);
	if (p != NULL)
		memset(p, 0, (n * size) > 0 ? n * size : 1);
	return p;
}

void *
jobq__realloc(void *ptr, size_t size) {
	void *p = allocator.realloc(allocator.ctx, ptr, size ? size : 1);
	if (p == NULL)
		jobq_error_set(JOBQ_ENOMEM, "out of memory reallocating to %zu bytes", size);
	return p;
}

void
jobq__free(void *ptr) {
	if (ptr != NULL)
		allocator.free(allocator.ctx, ptr);
}

void *
jobq__memdup(const void *p, size_t n) {
	if (p == NULL)
		return NULL;
	char *copy = jobq__malloc(n + 1);
	if (copy == NULL)
		return NULL;
	memcpy(copy, p, n);
	copy[n] = '\0';
	return copy;
}

char *
jobq__strndup(const char *s, size_t n) {
	return jobq__memdup(s, n);
}

char *
jobq__strdup(const char *s) {
	return s == NULL ? NULL : jobq__memdup(s, strlen(s));
}

void
jobq_strings_free(jobq_strings *list) {
	if (list == NULL)
		return;
	for (size_t i = 0; i < list->count; i++)
		jobq__free(list->items[i]);
	jobq__free(list->items);
	jobq__free(list);
}

int
jobq_strings__append(jobq_strings **list, const char *s, size_t len) {
	if (*list == NULL) {
		*list = jobq__calloc(1, sizeof(**list));
		if (*list == NULL)
			return JOBQ_ENOMEM;
	}
	jobq_strings *l = *list;
	char *copy = jobq__memdup(s, len);
	if (copy == NULL)
		return JOBQ_ENOMEM;
	/* Grow by doubling: the capacity is the next power of two above count. */
	if ((l->count & (l->count - 1)) == 0) {
		size_t cap = l->count ? l->count * 2 : 4;
		char **items = jobq__realloc(l->items, cap * sizeof(*items));
		if (items == NULL) {
			jobq__free(copy);
			return JOBQ_ENOMEM;
		}
		l->items = items;
	}
	l->items[l->count++] = copy;
	return 0;
}
