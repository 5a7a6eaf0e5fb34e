/*
 * Shared by the libFuzzer targets: the entry point's prototype (-Wmissing-prototypes) and a
 * check that crashes, so that libFuzzer keeps the input, when a decoded value breaks a rule
 * the rest of the library relies on.
 */
#ifndef JOBQ_FUZZ_H
#define JOBQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* A NUL-terminated copy of the input (malloc; NULL when out of memory). */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size) {
	char *s = malloc(size + 1);
	if (s != NULL) {
		if (size > 0)
			memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

#endif
