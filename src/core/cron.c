/*
 * Cron patterns evaluated as BullMQ 6.7.0 evaluates them: its worker computes a scheduler's next
 * run with the npm package cron-parser 5.10.3 (luxon for time zones), so a jobq worker sharing a
 * queue with Node ones must compute the same instants, quirks included. What is accepted and
 * the walk below follow that package's documented and observed behaviour; tests/unit
 * (cron_table) compares the results with the package itself.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "jobq/errors.h"
#include "jobq/sys/backend.h"

/* --- parsing ------------------------------------------------------------------------------- */

enum { F_SECOND, F_MINUTE, F_HOUR, F_MDAY, F_MONTH, F_WDAY, F_COUNT };

static const char *const field_names[F_COUNT] = {"second",       "minute", "hour",
                                                 "day of month", "month",  "day of week"};
static const int field_min[F_COUNT] = {0, 0, 0, 1, 1, 0};
static const int field_max[F_COUNT] = {59, 59, 23, 31, 12, 7};

#define PATTERN_MAX 1024 /* cron-parser refuses longer expressions */
#define VALUES_MAX  256  /* nor more than this many values in a field */

static const struct {
	const char *name, *pattern;
} aliases[] = {
    {"@yearly", "0 0 0 1 1 *"},     {"@annually", "0 0 0 1 1 *"}, {"@monthly", "0 0 0 1 * *"},
    {"@weekly", "0 0 0 * * 0"},     {"@daily", "0 0 0 * * *"},    {"@hourly", "0 0 * * * *"},
    {"@minutely", "0 * * * * *"},   {"@secondly", "* * * * * *"}, {"@weekdays", "0 0 0 * * 1-5"},
    {"@weekends", "0 0 0 * * 0,6"},
};

/* Month and weekday names; either table serves both fields, as in cron-parser. */
static const char *const names3[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat",
                                     "jan", "feb", "mar", "apr", "may", "jun", "jul",
                                     "aug", "sep", "oct", "nov", "dec"};

typedef struct parse_ctx {
	char *err;
	size_t errlen;
} parse_ctx;

static int fail(parse_ctx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(parse_ctx *p, const char *fmt, ...) {
	if (p->errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->err, p->errlen, fmt, ap);
		va_end(ap);
	}
	return JOBQ_EINVAL;
}

static bool
is_space(char ch) {
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static bool
is_digit(char ch) {
	return ch >= '0' && ch <= '9';
}

static bool
is_alpha(char ch) {
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* JavaScript's parseInt(s, 10) over our characters: the leading digits, or -1 for none. */
static long
leading_int(const char *s, size_t n) {
	long v = 0;
	size_t i = 0;
	for (; i < n && is_digit(s[i]); i++)
		v = v > 100000 ? 100001 : v * 10 + (s[i] - '0'); /* saturates far above any field */
	return i == 0 ? -1 : v;
}

/* One field's values as cron-parser collects them, before they become bit sets. */
typedef struct field_values {
	int num[VALUES_MAX + 64]; /* numbers */
	size_t nnum;
	char str[VALUES_MAX + 1][4]; /* `nL` strings (day fields) */
	size_t nstr;
} field_values;

static int
add_range(parse_ctx *p, field_values *fv, int f, const char *atom, size_t n, long step,
          const char *raw) {
	const char *dash = memchr(atom, '-', n);
	/* cron-parser reads `a-b` with parseInt and ignores a third part (`1-2-3` is `1-2`). */
	long lo = leading_int(atom, (size_t)(dash - atom));
	const char *hi_s = dash + 1;
	const char *hi_end = memchr(hi_s, '-', n - (size_t)(hi_s - atom));
	long hi = leading_int(hi_s, hi_end ? (size_t)(hi_end - hi_s) : n - (size_t)(hi_s - atom));
	if (lo < 0 || hi < 0 || lo < field_min[f] || hi > field_max[f])
		return fail(p, "%s field: range '%.*s' outside %d-%d in '%s'", field_names[f],
		            (int)n, atom, field_min[f], field_max[f], raw);
	if (lo > hi)
		return fail(p, "%s field: range '%.*s' runs backwards in '%s'", field_names[f],
		            (int)n, atom, raw);
	if (step <= 0)
		return fail(p, "%s field: step must be a positive number in '%s'", field_names[f],
		            raw);
	size_t first = fv->nnum;
	/* A day-of-week range ending on 7 whose step lands on it also yields 0 (Sunday). */
	if (f == F_WDAY && hi % 7 == 0 && (hi - lo) % step == 0)
		fv->num[fv->nnum++] = 0;
	for (long v = lo; v <= hi; v += step) {
		bool seen = false;
		for (size_t i = first; i < fv->nnum; i++)
			seen = seen || fv->num[i] == v;
		if (!seen)
			fv->num[fv->nnum++] = (int)v;
	}
	return 0;
}

/*
 * A weekday of 22 digits or more is, as a JavaScript number, at least 1e21, which cron-parser
 * reads back from its exponent form ("3.5e+33"): only the first digit of the shortest such
 * form counts. Mirrored so that both sides accept the same patterns.
 */
static long
js_exponent_lead(const char *s, size_t n) {
	char buf[PATTERN_MAX + 1], out[40];
	memcpy(buf, s, n);
	buf[n] = '\0';
	double v = strtod(buf, NULL);
	if (v < 1e21)
		return leading_int(s, n);
	for (int prec = 0; prec < 17; prec++) { /* the shortest form that reads back the same */
		snprintf(out, sizeof(out), "%.*e", prec, v);
		if (strtod(out, NULL) == v)
			break;
	}
	return out[0] - '0';
}

/* One element of a list: `v`, `a-b`, `a-b/s`, `a/s`, or (day fields) `nL`, `L`. */
static int
parse_atom(parse_ctx *p, field_values *fv, int f, const char *atom, size_t n, const char *raw) {
	const char *slash = memchr(atom, '/', n);
	if (slash != NULL) {
		const char *s2 = slash + 1;
		size_t n2 = n - (size_t)(s2 - atom);
		if (memchr(s2, '/', n2) != NULL)
			return fail(p, "%s field: more than one '/' in '%.*s'", field_names[f],
			            (int)n, atom);
		long step = leading_int(s2, n2);
		size_t n1 = (size_t)(slash - atom);
		if (memchr(atom, '-', n1) != NULL)
			return add_range(p, fv, f, atom, n1, step, raw);
		/* `a/s` means `a-max/s`. */
		char buf[64];
		int len = snprintf(buf, sizeof(buf), "%.*s-%d", (int)(n1 > 40 ? 40 : n1), atom,
		                   field_max[f]);
		if (n1 > 40) /* a start that long is no number of the field */
			return fail(p, "%s field: '%.*s' is not a value of the field",
			            field_names[f], (int)n, atom);
		return add_range(p, fv, f, buf, (size_t)len, step, raw);
	}
	if (memchr(atom, '-', n) != NULL)
		return add_range(p, fv, f, atom, n, 1, raw);
	bool digits = true;
	for (size_t i = 0; i < n; i++)
		digits = digits && is_digit(atom[i]);
	if (!digits) {
		/* Only day fields allow letters here, and then only `L` (checked by the caller). */
		if (memchr(atom, 'L', n) == NULL)
			return fail(p, "%s field: '%.*s' is not a value of the field",
			            field_names[f], (int)n, atom);
		/* cron-parser keeps `L` strings of at most two digits and an L. */
		bool ok = n >= 1 && n <= 3 && atom[n - 1] == 'L';
		for (size_t i = 0; ok && i + 1 < n; i++)
			ok = is_digit(atom[i]);
		if (!ok)
			return fail(
			    p,
			    "%s field: '%.*s' is not a value of the field (L takes at most two "
			    "digits before it)",
			    field_names[f], (int)n, atom);
		memcpy(fv->str[fv->nstr], atom, n);
		fv->str[fv->nstr][n] = '\0';
		fv->nstr++;
		return 0;
	}
	long v = leading_int(atom, n);
	if (f == F_WDAY && n >= 22)
		v = js_exponent_lead(atom, n);
	if (v < field_min[f] || v > field_max[f])
		return fail(p, "%s field: value '%.*s' outside %d-%d", field_names[f], (int)n, atom,
		            field_min[f], field_max[f]);
	fv->num[fv->nnum++] = (f == F_WDAY) ? (int)(v % 7) : (int)v;
	return 0;
}

/* JavaScript's Number() of the text after `#`, for the forms that can reach it here. */
static bool
js_number(const char *s, size_t n, double *out) {
	char buf[64];
	if (n == 0) {
		*out = 0;
		return true;
	}
	if (n >= sizeof(buf))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_digit(s[i]) && s[i] != '.' && s[i] != 'e' && s[i] != 'E' && s[i] != '+')
			return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *end;
	*out = strtod(buf, &end);
	return end == buf + n;
}

/*
 * One field: `text` (`n` bytes) is what the pattern has there; month and weekday names are
 * replaced by numbers first, then `*`/`?` by the field's whole range.
 */
static int
parse_field(parse_ctx *p, jobq_cron *c, int f, const char *text, size_t n) {
	char raw[PATTERN_MAX + 1];
	memcpy(raw, text, n);
	raw[n] = '\0';

	/* `#n` (day of week): split off before the names are read, as cron-parser does. */
	const char *hash = f == F_WDAY ? memchr(raw, '#', n) : NULL;
	if (hash != NULL) {
		const char *bad = strpbrk(raw, ",-/");
		if (bad != NULL)
			return fail(p,
			            "day of week field: '#' cannot be combined with '%c' in '%s'",
			            *bad, raw);
		const char *num = strrchr(raw, '#') + 1;
		double nth;
		if (strchr(hash + 1, '#') != NULL || !js_number(num, strlen(num), &nth) ||
		    nth < 1 || nth > 5)
			return fail(
			    p, "day of week field: '%s' needs '#' and an occurrence from 1 to 5",
			    raw);
		c->nth = nth == (double)(int)nth ? (uint8_t)nth : 255;
		n = (size_t)(hash - raw);
		raw[n] = '\0';
	}

	/* Names (three letters, any case) become numbers; text is rebuilt in `val`. */
	char val[PATTERN_MAX * 2 + 16];
	size_t vn = 0;
	for (size_t i = 0; i < n;) {
		/* '*' and '?' grow into a range: room for the longest piece one step writes. */
		if (vn + 16 > sizeof(val))
			return fail(
			    p, "%s field: too long once '*', '?' and names are expanded in '%s'",
			    field_names[f], raw);
		if ((f == F_MONTH || f == F_WDAY) && i + 3 <= n && is_alpha(raw[i]) &&
		    is_alpha(raw[i + 1]) && is_alpha(raw[i + 2])) {
			char low[4] = {(char)(raw[i] | 0x20), (char)(raw[i + 1] | 0x20),
			               (char)(raw[i + 2] | 0x20), 0};
			int idx = -1;
			for (int k = 0; k < (int)(sizeof(names3) / sizeof(names3[0])); k++)
				if (strcmp(low, names3[k]) == 0)
					idx = k;
			if (idx < 0)
				return fail(p, "%s field: unknown name '%.3s' in '%s'",
				            field_names[f], raw + i, raw);
			vn += (size_t)snprintf(val + vn, sizeof(val) - vn, "%d",
			                       idx < 7 ? idx : idx - 6);
			i += 3;
			continue;
		}
		char ch = raw[i];
		bool ok = is_digit(ch) || ch == ',' || ch == '-' || ch == '/' || ch == '*' ||
		          ch == '?' || ((f == F_MDAY || f == F_WDAY) && ch == 'L');
		if (ch == 'H')
			return fail(p, "%s field: 'H' (a random value) is not supported in '%s'",
			            field_names[f], raw);
		if (!ok)
			return fail(p, "%s field: character '%c' not allowed in '%s'",
			            field_names[f], ch, raw);
		if (ch == '*' || ch == '?')
			vn += (size_t)snprintf(val + vn, sizeof(val) - vn, "%d-%d", field_min[f],
			                       field_max[f]);
		else
			val[vn++] = ch;
		i++;
	}
	val[vn] = '\0';
	if (vn == 0)
		return fail(p, "%s field: empty", field_names[f]);

	static _Thread_local field_values fv;
	fv.nnum = fv.nstr = 0;
	for (size_t i = 0; i <= vn;) {
		if (fv.nnum + fv.nstr > VALUES_MAX)
			return fail(p, "%s field: more than %d values in '%s'", field_names[f],
			            VALUES_MAX, raw);
		size_t j = i;
		while (j < vn && val[j] != ',')
			j++;
		if (j == i)
			return fail(p, "%s field: empty list element in '%s'", field_names[f], raw);
		int rc = parse_atom(p, &fv, f, val + i, j - i, raw);
		if (rc < 0)
			return rc;
		i = j + 1;
	}
	if (f == F_WDAY)
		for (size_t i = 0; i < fv.nstr; i++)
			if (strcmp(fv.str[i], "L") == 0)
				return fail(
				    p, "day of week field: 'L' needs a weekday before it in '%s'",
				    raw);

	/* The same value twice (`1-5,3`, `0,7` as weekdays) is an error for cron-parser. */
	uint64_t bits = 0;
	for (size_t i = 0; i < fv.nnum; i++) {
		if (bits & (1ULL << fv.num[i]))
			return fail(p, "%s field: value %d appears twice in '%s'", field_names[f],
			            fv.num[i], raw);
		bits |= 1ULL << fv.num[i];
	}
	for (size_t i = 0; i < fv.nstr; i++)
		for (size_t k = 0; k < i; k++)
			if (strcmp(fv.str[i], fv.str[k]) == 0)
				return fail(p, "%s field: '%s' appears twice in '%s'",
				            field_names[f], fv.str[i], raw);

	/* cron-parser reads these two from the field as written (`JUL` as a weekday has an L). */
	bool star = strcmp(text, "*") == 0 || strcmp(text, "?") == 0;
	bool last = strchr(text, 'L') != NULL;
	switch (f) {
	case F_SECOND:
		c->second = bits;
		break;
	case F_MINUTE:
		c->minute = bits;
		break;
	case F_HOUR:
		c->hour = (uint32_t)bits;
		break;
	case F_MONTH:
		c->month = (uint16_t)bits;
		break;
	case F_MDAY:
		c->mday = (uint32_t)bits;
		c->mday_last = last;
		c->mday_star = star;
		break;
	default:
		c->wday = (uint8_t)bits;
		c->wday_last = last;
		c->wday_star = star;
		/* In a month's last week, every value counts by its first digit (`8L` is Monday).
		 */
		for (size_t i = 0; i < fv.nnum; i++) {
			int d = fv.num[i];
			c->wday_lastd |= (uint8_t)(1u << (d % 7));
		}
		for (size_t i = 0; i < fv.nstr; i++)
			c->wday_lastd |= (uint8_t)(1u << ((fv.str[i][0] - '0') % 7));
		break;
	}
	return 0;
}

int
jobq_cron__parse(jobq_cron *out, const char *pattern, char *err, size_t errlen) {
	parse_ctx p = {err, errlen};
	if (errlen > 0)
		err[0] = '\0';
	if (pattern == NULL)
		return fail(&p, "cron pattern: missing");
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcmp(pattern, aliases[i].name) == 0)
			pattern = aliases[i].pattern;
	if (pattern[0] == '\0')
		pattern = "0 * * * * *"; /* cron-parser's reading of an empty pattern */
	size_t len = strlen(pattern);
	if (len > PATTERN_MAX)
		return fail(&p, "cron pattern: longer than %d characters", PATTERN_MAX);

	const char *start[F_COUNT];
	size_t n[F_COUNT];
	int count = 0;
	for (size_t i = 0; i < len;) {
		while (i < len && is_space(pattern[i]))
			i++;
		if (i == len)
			break;
		size_t j = i;
		while (j < len && !is_space(pattern[j]))
			j++;
		if (count == F_COUNT)
			return fail(&p, "cron pattern: more than 6 fields in '%s'", pattern);
		start[count] = pattern + i;
		n[count++] = j - i;
		i = j;
	}
	if (count == 0)
		return fail(&p, "cron pattern: only white space");

	/* Fewer than 6 fields: the first ones come from `0 * * * * *`. */
	static const char *const defaults[F_COUNT] = {"0", "*", "*", "*", "*", "*"};
	const char *ftext[F_COUNT];
	size_t flen[F_COUNT];
	for (int f = 0; f < F_COUNT; f++) {
		int k = f - (F_COUNT - count);
		ftext[f] = k < 0 ? defaults[f] : start[k];
		flen[f] = k < 0 ? 1 : n[k];
	}
	/* The pattern's field order is second minute hour day-of-month month day-of-week. */
	static const int order[F_COUNT] = {F_SECOND, F_MINUTE, F_HOUR, F_MDAY, F_MONTH, F_WDAY};
	jobq_cron c;
	memset(&c, 0, sizeof(c));
	for (int i = 0; i < F_COUNT; i++) {
		char one[PATTERN_MAX + 1];
		memcpy(one, ftext[i], flen[i]);
		one[flen[i]] = '\0';
		int rc = parse_field(&p, &c, order[i], one, flen[i]);
		if (rc < 0)
			return rc;
	}
	/* One month, a plain day of month, any weekday: a day that month never has is refused. */
	if (__builtin_popcount(c.month) == 1 && !c.mday_last && c.wday_star && c.mday != 0) {
		int m = __builtin_ctz(c.month), first = __builtin_ctz(c.mday);
		static const int longest[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
		if (first > longest[m - 1])
			return fail(&p, "day of month field: day %d never occurs in month %d",
			            first, m);
	}
	*out = c;
	return 0;
}

/* --- the next run time --------------------------------------------------------------------- */

/*
 * cron-parser does not solve for the next matching instant: it walks a date forward field by
 * field (month, day, hour, minute, second), each step a luxon operation in the schedule's zone,
 * and DST transitions show through the walk. Agreeing with it in every case (0 mismatches in
 * the table test) takes the same walk, so `walk` below is a small model of its date: the
 * instant, the offset in force, the wall-clock fields, and the two DST marks it keeps.
 *
 * What that gives at transitions (Europe/Berlin, America/New_York, Australia/Lord_Howe checked
 * against the package):
 * - Spring forward, with a restricted hour field: a run in the skipped hour happens in the hour
 *   the clock lands on, at the pattern's minute (`30 2 * * *` runs at 03:30 in Berlin on the
 *   last Sunday of March). It happens when the walk crosses the gap by whole hours; a 30-minute
 *   gap (Lord Howe) is crossed like that only from the later half of the hour before it, so
 *   there the result depends on where the walk started. An hour field of `*` (all 24 hours)
 *   never runs in the gap: the gap's minutes do not exist.
 * - Fall back, with a restricted hour field: the repeated wall-clock hour runs once, in its first
 *   pass (`30 2 * * *` runs at 02:30 summer time only), unless the walk starts inside the second
 *   pass. With `*` hours both passes run (every 15 minutes fires 8 times from 02:00 to 02:59).
 * - Wall-clock times set directly are resolved as luxon resolves them (jobq_tz__to_utc).
 */

#define WALK_STEPS 10000 /* cron-parser's step limit; past it there is no next time */

typedef struct walk {
	const jobq_tz *tz;
	const jobq_cron *c;
	int64_t t;   /* seconds since the epoch */
	int32_t off; /* seconds east of UTC */
	int64_t days, year;
	int month, day, hour, minute, second, wday;
	int dst_start, dst_land, dst_end; /* DST marks of the walk, -1 when unset */
	int nhours;                       /* values in the hour field */
} walk;

static void
walk_refresh(walk *w) {
	int64_t local = w->t + w->off;
	w->days = local / 86400 - (local % 86400 < 0);
	int64_t s = local - w->days * 86400;
	jobq_tz__civil_from_days(w->days, &w->year, &w->month, &w->day);
	w->hour = (int)(s / 3600);
	w->minute = (int)(s / 60 % 60);
	w->second = (int)(s % 60);
	w->wday = (int)(((w->days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
}

/* Sets the wall clock to day `days`, second `secs` of it, the current offset as the guess. */
static void
walk_set_local(walk *w, int64_t days, int64_t secs) {
	w->t = jobq_tz__to_utc(w->tz, days * 86400 + secs, w->off, &w->off);
	walk_refresh(w);
}

static void
walk_set_time(walk *w, int h, int m, int s) {
	walk_set_local(w, w->days, (int64_t)h * 3600 + m * 60 + s);
}

static void
walk_add_seconds(walk *w, int64_t n) {
	w->t += n;
	w->off = jobq_tz__offset(w->tz, w->t);
	walk_refresh(w);
}

/* The next month's first day at 00:00 (a month later, then the start of that month). */
static void
walk_next_month(walk *w) {
	int64_t y = w->year + (w->month == 12);
	int m = w->month % 12 + 1;
	int d = w->day < jobq_tz__days_in_month(y, m) ? w->day : jobq_tz__days_in_month(y, m);
	walk_set_local(w, jobq_tz__days_from_civil(y, m, d),
	               (int64_t)w->hour * 3600 + w->minute * 60 + w->second);
	walk_set_local(w, jobq_tz__days_from_civil(w->year, w->month, 1), 0);
}

/* The next day at 00:00 (a day later, then the start of that day). */
static void
walk_next_day(walk *w) {
	walk_set_local(w, w->days + 1, (int64_t)w->hour * 3600 + w->minute * 60 + w->second);
	walk_set_local(w, w->days, 0);
}

enum { U_HOUR, U_MINUTE, U_SECOND };

/* One unit later (an hour or minute later starts that hour or minute), noting DST marks. */
static void
walk_step(walk *w, int unit) {
	int prev_hour = w->hour;
	int32_t prev_off = w->off;
	if (unit == U_HOUR) {
		walk_add_seconds(w, 3600);
		walk_set_time(w, w->hour, 0, 0);
	} else if (unit == U_MINUTE) {
		walk_add_seconds(w, 60);
		walk_set_time(w, w->hour, w->minute, 0);
	} else {
		walk_add_seconds(w, 1);
	}
	int advance = (w->hour - prev_hour + 24) % 24;
	if (w->nhours == 24)
		return;
	if (w->off > prev_off && advance >= 2) {
		w->dst_start = (prev_hour + 1) % 24; /* first skipped wall-clock hour */
		w->dst_land = w->hour;
	} else if (advance == 0 && w->minute == 0 && w->second == 0) {
		w->dst_end = w->hour; /* the clock went back to the start of this hour */
	}
}

/* The lowest value of `bits` above `v`, or -1. */
static int
next_bit(uint64_t bits, int v) {
	uint64_t above = v >= 63 ? 0 : bits & ~((2ULL << v) - 1);
	return above == 0 ? -1 : __builtin_ctzll(above);
}

static int
low_bit(uint64_t bits) {
	return __builtin_ctzll(bits);
}

static bool
has(uint64_t bits, int v) {
	return (bits >> v) & 1;
}

/*
 * Day of month and day of week: when both are restricted a day matching either runs (classic
 * cron); a field counts as unrestricted only when written exactly `*` or `?`.
 */
static bool
day_matches(const jobq_cron *c, const walk *w) {
	int dim = jobq_tz__days_in_month(w->year, w->month);
	bool dom = has(c->mday, w->day) || (c->mday_last && w->day == dim);
	bool dow = (has(c->wday, w->wday) && (c->nth == 0 || (w->day + 6) / 7 == c->nth)) ||
	           (c->wday_last && w->day > dim - 7 && has(c->wday_lastd, w->wday));
	if (!c->mday_star && !c->wday_star)
		return dom || dow;
	if (c->wday_star)
		return dom;
	return dow;
}

/* Whether the offset changes during the walk's current day (midnight to 23:59:59.999). */
static bool
walk_dst_day(const walk *w) {
	walk a = *w, b = *w;
	walk_set_local(&a, a.days, 0);
	walk_next_day(&b);
	return a.off != jobq_tz__offset(w->tz, b.t - 1);
}

static bool
walk_hour_matches(walk *w) {
	const jobq_cron *c = w->c;
	int cur = w->hour;
	if (w->dst_start >= 0 && w->dst_land == cur) /* landed after a gap: a skipped hour runs */
		for (int h = w->dst_start, i = 0; h != cur && i < 24; h = (h + 1) % 24, i++)
			if (has(c->hour, h))
				return true;
	if (w->dst_end == cur) { /* the repeated hour's second pass: go past it */
		w->dst_end = -1;
		walk_step(w, U_HOUR);
		return false;
	}
	if (has(c->hour, cur))
		return true;
	w->dst_start = w->dst_land = -1;
	int next = next_bit(c->hour, cur);
	if (next < 0) {
		walk_next_day(w);
		return false;
	}
	if (walk_dst_day(w)) { /* by whole hours, so the DST marks are noted */
		for (int i = 0; i < next - cur; i++) {
			walk_step(w, U_HOUR);
			if (w->hour >= next)
				break;
		}
	} else {
		walk_set_time(w, next, w->minute, w->second);
	}
	walk_set_time(w, w->hour, low_bit(c->minute), w->second);
	walk_set_time(w, w->hour, w->minute, low_bit(c->second));
	return false;
}

int
jobq_cron__next(const jobq_cron *c, const jobq_tz *tz, int64_t after_ms, int64_t *next_ms) {
	/* JavaScript dates reach +-8.64e15 ms; stay inside, with a margin for the walk. */
	if (after_ms < -8000000000000000LL || after_ms > 8000000000000000LL)
		return jobq_error_set(JOBQ_EINVAL, "cron: time %lld ms out of range",
		                      (long long)after_ms);
	if (c->second == 0 || c->minute == 0 || c->hour == 0 || c->month == 0)
		return jobq_error_set(JOBQ_EINVAL, "cron: pattern not parsed");
	walk w = {.tz = tz, .c = c, .dst_start = -1, .dst_land = -1, .dst_end = -1};
	w.nhours = __builtin_popcount(c->hour);
	int64_t ms = after_ms % 1000 < 0 ? after_ms % 1000 + 1000 : after_ms % 1000;
	w.t = (after_ms - ms) / 1000;
	w.off = jobq_tz__offset(tz, w.t);
	walk_refresh(&w);
	if (ms > 0)
		walk_step(&w, U_SECOND);
	for (int step = 1; step < WALK_STEPS; step++) {
		if (!has(c->month, w.month)) {
			walk_next_month(&w);
		} else if (!day_matches(c, &w)) {
			walk_next_day(&w);
		} else if (!walk_hour_matches(&w)) {
			continue;
		} else if (!has(c->minute, w.minute)) {
			int m = next_bit(c->minute, w.minute);
			if (m >= 0) {
				walk_set_time(&w, w.hour, m, w.second);
			} else {
				walk_step(&w, U_HOUR);
				walk_set_time(&w, w.hour, low_bit(c->minute), w.second);
			}
			walk_set_time(&w, w.hour, w.minute, low_bit(c->second));
		} else if (!has(c->second, w.second)) {
			int s = next_bit(c->second, w.second);
			if (s < 0) {
				walk_step(&w, U_MINUTE);
				s = low_bit(c->second);
			}
			walk_set_time(&w, w.hour, w.minute, s);
		} else if (w.t * 1000 == after_ms) {
			walk_step(&w, U_SECOND); /* strictly after */
		} else {
			*next_ms = w.t * 1000;
			return 0;
		}
	}
	return jobq_error_set(JOBQ_ENOTFOUND, "cron: no run time within %d steps of the walk",
	                      WALK_STEPS);
}
