/* Retry policy: BullMQ's backoff formulas and jobq's linear one, jitter and the cap. */
#include <math.h>
#include <time.h>

#include "core.h"

int
jobq__backoff_delay(int64_t *delay_ms, const jobq_backoff *b, uint32_t attempts_made,
                    double rand01) {
	double base;
	switch (b->type) {
	case JOBQ_BACKOFF_NONE:
		*delay_ms = 0;
		return 0;
	case JOBQ_BACKOFF_FIXED:
		base = (double)b->delay_ms;
		break;
	case JOBQ_BACKOFF_EXPONENTIAL: {
		uint32_t n = attempts_made ? attempts_made : 1;
		/* 2^(n-1) * delay, rounded as Math.round does; 2^62 caps the exponent. */
		double factor = ldexp(1.0, (int)(n - 1 > 62 ? 62 : n - 1));
		base = floor(factor * (double)b->delay_ms + 0.5);
		break;
	}
	case JOBQ_BACKOFF_LINEAR: {
		uint32_t n = attempts_made ? attempts_made : 1;
		base = (double)n * (double)b->delay_ms;
		break;
	}
	default:
		return JOBQ_ENOTSUP;
	}
	if (b->jitter > 0.0)
		base = floor(rand01 * base * b->jitter + base * (1.0 - b->jitter));
	if (b->max_delay_ms > 0 && base > (double)b->max_delay_ms)
		base = (double)b->max_delay_ms;
	if (base > 9.0e15) /* keep due times far below 2^53 */
		base = 9.0e15;
	*delay_ms = (int64_t)base;
	return 0;
}

double
jobq__random01(void) {
	/* xorshift64*, seeded per thread from the time and the thread's address. */
	static _Thread_local uint64_t state;
	if (state == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
		        (uint64_t)(uintptr_t)&state;
		if (state == 0)
			state = 0x9E3779B97F4A7C15u;
	}
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	uint64_t r = state * 0x2545F4914F6CDD1Du;
	return (double)(r >> 11) * (1.0 / 9007199254740992.0);
}
