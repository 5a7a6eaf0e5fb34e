/*
 * Time zones read from the system's TZif files (RFC 8536, versions 1-3): the transitions the
 * file lists, then the POSIX TZ string of its footer for instants after the last one.
 * Leap-second records are skipped: luxon (through ICU) does not count leap seconds.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "jobq/errors.h"
#include "jobq/sys/alloc.h"
#include "jobq/sys/backend.h"
#include "tzfile.h"

#define TZ_FILE_MAX (1 << 20) /* the largest zone file is ~ 4 kB; refuse absurd ones */
#define TZ_NAME_MAX 255

/* A rule of a POSIX TZ string: Jn, n or Mm.w.d, at `time` seconds of local time. */
typedef struct tz_rule {
	char kind; /* 'J', 'D' (zero-based day n) or 'M' */
	int day, week, month;
	int32_t time;
} tz_rule;

typedef struct tz_posix {
	int32_t std_off, dst_off; /* seconds east of UTC */
	bool has_dst;
	tz_rule start, end;
} tz_posix;

struct jobq_tz {
	char *name;
	size_t count;       /* transitions */
	int64_t *at;        /* transition instants, ascending */
	int32_t *off_after; /* offset from each transition on */
	int32_t off_before; /* before the first transition */
	bool has_footer;
	tz_posix footer;
};

/* --- calendar ------------------------------------------------------------------------------ */

int64_t
jobq_tz__days_from_civil(int64_t y, int m, int d) {
	/* Counting from 0000-03-01 puts the leap day last in its 400-year era. */
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void
jobq_tz__civil_from_days(int64_t z, int64_t *year, int *month, int *day) {
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int d = (int)(doy - (153 * mp + 2) / 5 + 1);
	int m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*year = yoe + era * 400 + (m <= 2);
	*month = m;
	*day = d;
}

static bool
is_leap(int64_t y) {
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
jobq_tz__days_in_month(int64_t y, int m) {
	static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static int64_t
floor_div(int64_t a, int64_t b) {
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* --- POSIX TZ strings ---------------------------------------------------------------------- */

static const char *
posix_name(const char *s) {
	if (*s == '<') {
		const char *e = strchr(s, '>');
		return e != NULL && e - s >= 2 ? e + 1 : NULL;
	}
	const char *b = s;
	while (isalpha((unsigned char)*s))
		s++;
	return s - b >= 3 ? s : NULL;
}

/* [+-]hh[:mm[:ss]], hours up to `max_h`; sets seconds (sign as written). */
static const char *
posix_time(const char *s, int max_h, int32_t *out) {
	int sign = 1;
	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	int part[3] = {0, 0, 0};
	for (int i = 0; i < 3; i++) {
		if (i > 0) {
			if (*s != ':')
				break;
			s++;
		}
		if (!isdigit((unsigned char)*s))
			return NULL;
		int v = 0;
		for (int k = 0; k < 3 && isdigit((unsigned char)*s); k++)
			v = v * 10 + (*s++ - '0');
		part[i] = v;
	}
	if (part[0] > max_h || part[1] > 59 || part[2] > 59)
		return NULL;
	*out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
	return s;
}

static const char *
posix_rule(const char *s, tz_rule *r) {
	char *end;
	r->time = 7200; /* 02:00 unless given */
	if (*s == 'M') {
		r->kind = 'M';
		r->month = (int)strtol(s + 1, &end, 10);
		if (*end != '.' || r->month < 1 || r->month > 12)
			return NULL;
		r->week = (int)strtol(end + 1, &end, 10);
		if (*end != '.' || r->week < 1 || r->week > 5)
			return NULL;
		r->day = (int)strtol(end + 1, &end, 10);
		if (r->day < 0 || r->day > 6)
			return NULL;
	} else {
		r->kind = *s == 'J' ? 'J' : 'D';
		if (!isdigit((unsigned char)s[r->kind == 'J']))
			return NULL;
		r->day = (int)strtol(s + (r->kind == 'J'), &end, 10);
		if (r->day > 365 || (r->kind == 'J' && r->day < 1))
			return NULL;
	}
	s = end;
	if (*s == '/')
		s = posix_time(s + 1, 167, &r->time); /* RFC 8536 allows -167..167 hours */
	return s;
}

/* Parses "STDoffset[DST[offset][,rule,rule]]"; POSIX offsets count west, ours east. */
static bool
posix_parse(const char *s, tz_posix *tz) {
	int32_t v;
	memset(tz, 0, sizeof(*tz));
	if ((s = posix_name(s)) == NULL || (s = posix_time(s, 24, &v)) == NULL)
		return false;
	tz->std_off = -v;
	if (*s == '\0')
		return true;
	if ((s = posix_name(s)) == NULL)
		return false;
	tz->has_dst = true;
	tz->dst_off = tz->std_off + 3600;
	if (*s != ',' && *s != '\0') {
		if ((s = posix_time(s, 24, &v)) == NULL)
			return false;
		tz->dst_off = -v;
	}
	if (*s == '\0') { /* no rules: the US rules, as POSIX's default */
		tz->start = (tz_rule){'M', 0, 2, 3, 7200};
		tz->end = (tz_rule){'M', 0, 1, 11, 7200};
		return true;
	}
	if (*s != ',' || (s = posix_rule(s + 1, &tz->start)) == NULL || *s != ',' ||
	    (s = posix_rule(s + 1, &tz->end)) == NULL)
		return false;
	return *s == '\0';
}

/* Local seconds since the epoch, in year `y`, at which rule `r` applies. */
static int64_t
rule_local(const tz_rule *r, int64_t y) {
	int64_t day;
	if (r->kind == 'J') { /* 1-365, February 29 never counted */
		day = jobq_tz__days_from_civil(y, 1, 1) + r->day - 1;
		if (is_leap(y) && r->day >= 60)
			day++;
	} else if (r->kind == 'D') {
		day = jobq_tz__days_from_civil(y, 1, 1) + r->day;
	} else {
		int64_t first = jobq_tz__days_from_civil(y, r->month, 1);
		int wd1 = (int)((first % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
		int64_t d = first + (r->day - wd1 + 7) % 7 + (int64_t)(r->week - 1) * 7;
		int64_t dim = jobq_tz__days_in_month(y, r->month);
		while (d >= first + dim)
			d -= 7;
		day = d;
	}
	return day * 86400 + r->time;
}

static int32_t
posix_offset(const tz_posix *tz, int64_t t) {
	if (!tz->has_dst)
		return tz->std_off;
	int64_t y;
	int m, d;
	jobq_tz__civil_from_days(floor_div(t + tz->std_off, 86400), &y, &m, &d);
	/* The start rule's time is in standard time, the end rule's in daylight time. */
	int64_t start = rule_local(&tz->start, y) - tz->std_off;
	int64_t end = rule_local(&tz->end, y) - tz->dst_off;
	bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
	return dst ? tz->dst_off : tz->std_off;
}

/* --- loading ------------------------------------------------------------------------------- */

static uint32_t
be32(const unsigned char *p) {
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t
be64(const unsigned char *p) {
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tzif_counts {
	uint32_t isut, isstd, leap, time, type, chars;
} tzif_counts;

static size_t
block_size(const tzif_counts *c, size_t tsize) {
	return c->time * tsize + c->time + c->type * 6 + c->chars + c->leap * (tsize + 4) +
	       c->isstd + c->isut;
}

static int
bad_file(const char *name, const char *why) {
	return jobq_error_set(JOBQ_EIO, "time zone '%s': damaged zone file (%s)", name, why);
}

/* Fills `tz` from the TZif bytes `b` (n of them). */
static int
tzif_parse(jobq_tz *tz, const unsigned char *b, size_t n) {
	if (n < 44 || memcmp(b, "TZif", 4) != 0)
		return bad_file(tz->name, "no TZif header");
	tzif_counts c = {be32(b + 20), be32(b + 24), be32(b + 28),
	                 be32(b + 32), be32(b + 36), be32(b + 40)};
	size_t tsize = 4;
	const unsigned char *p = b + 44;
	if (c.time > 100000 || c.type > 256 || c.type == 0 || c.chars > 100000 || c.leap > 10000 ||
	    c.isut > 256 || c.isstd > 256 || block_size(&c, 4) > n - 44)
		return bad_file(tz->name, "counts");
	if (b[4] >= '2') { /* skip the 32-bit block, read the 64-bit one */
		p += block_size(&c, 4);
		if ((size_t)(p - b) + 44 > n || memcmp(p, "TZif", 4) != 0)
			return bad_file(tz->name, "no second header");
		c = (tzif_counts){be32(p + 20), be32(p + 24), be32(p + 28),
		                  be32(p + 32), be32(p + 36), be32(p + 40)};
		p += 44;
		tsize = 8;
		if (c.time > 100000 || c.type > 256 || c.type == 0 || c.chars > 100000 ||
		    c.leap > 10000 || c.isut > 256 || c.isstd > 256 ||
		    block_size(&c, 8) > n - (size_t)(p - b))
			return bad_file(tz->name, "counts");
	}
	const unsigned char *times = p, *idx = p + c.time * tsize, *types = idx + c.time;
	int32_t offs[256];
	for (uint32_t i = 0; i < c.type; i++) {
		offs[i] = (int32_t)be32(types + i * 6);
		if (offs[i] < -25 * 3600 || offs[i] > 26 * 3600)
			return bad_file(tz->name, "offset");
	}
	tz->count = c.time;
	if (c.time > 0) {
		tz->at = jobq__malloc(c.time * sizeof(*tz->at));
		tz->off_after = jobq__malloc(c.time * sizeof(*tz->off_after));
		if (tz->at == NULL || tz->off_after == NULL)
			return jobq_error_set(JOBQ_ENOMEM, "time zone '%s': out of memory",
			                      tz->name);
	}
	for (uint32_t i = 0; i < c.time; i++) {
		tz->at[i] = tsize == 8 ? be64(times + i * 8) : (int32_t)be32(times + i * 4);
		if (idx[i] >= c.type || (i > 0 && tz->at[i] <= tz->at[i - 1]))
			return bad_file(tz->name, "transitions");
		tz->off_after[i] = offs[idx[i]];
	}
	tz->off_before = offs[0]; /* RFC 8536: type 0 before the first transition */
	if (tsize == 8) {
		const unsigned char *f = p + block_size(&c, 8), *end = b + n;
		if (f < end && *f == '\n') {
			const unsigned char *nl = memchr(f + 1, '\n', (size_t)(end - f - 1));
			char s[128];
			size_t len = nl ? (size_t)(nl - f - 1) : 0;
			if (nl == NULL || len >= sizeof(s))
				return bad_file(tz->name, "footer");
			memcpy(s, f + 1, len);
			s[len] = '\0';
			if (len > 0) {
				if (!posix_parse(s, &tz->footer))
					return bad_file(tz->name, "footer TZ string");
				tz->has_footer = true;
			}
		}
	}
	return 0;
}

static int
load_file(jobq_tz *tz, const char *path) {
	FILE *fp = fopen(path, "rb");
	if (fp == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			return jobq_error_set(JOBQ_ENOTFOUND, "time zone '%s': unknown (no %s)",
			                      tz->name, path);
		return jobq_error_set(JOBQ_EIO, "time zone '%s': cannot read %s: %s", tz->name,
		                      path, strerror(errno));
	}
	unsigned char *buf = jobq__malloc(TZ_FILE_MAX);
	if (buf == NULL) {
		fclose(fp);
		return jobq_error_set(JOBQ_ENOMEM, "time zone '%s': out of memory", tz->name);
	}
	size_t n = fread(buf, 1, TZ_FILE_MAX, fp);
	int rc = ferror(fp)
	             ? jobq_error_set(JOBQ_EIO, "time zone '%s': cannot read %s", tz->name, path)
	         : n == TZ_FILE_MAX ? bad_file(tz->name, "too large")
	                            : tzif_parse(tz, buf, n);
	fclose(fp);
	jobq__free(buf);
	return rc;
}

/* luxon's fixed-offset names: UTC, GMT, UTC+H, UTC-HH:MM (any case). */
static bool
fixed_offset(const char *name, int32_t *off) {
	if (strcasecmp(name, "utc") == 0 || strcasecmp(name, "gmt") == 0) {
		*off = 0;
		return true;
	}
	if (strncasecmp(name, "utc", 3) != 0 || (name[3] != '+' && name[3] != '-'))
		return false;
	const char *s = name + 4;
	int h = 0, m = 0, nd = 0;
	while (isdigit((unsigned char)*s) && nd < 3)
		h = h * 10 + (*s++ - '0'), nd++;
	if (nd < 1 || nd > 2)
		return false;
	if (*s == ':') {
		if (!isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]))
			return false;
		m = (s[1] - '0') * 10 + (s[2] - '0');
		s += 3;
	}
	if (*s != '\0')
		return false;
	*off = (name[3] == '-' ? -1 : 1) * (h * 3600 + m * 60);
	return true;
}

static bool
valid_name(const char *name) {
	size_t n = strlen(name);
	if (n == 0 || n > TZ_NAME_MAX || name[0] == '/' || name[n - 1] == '/')
		return false;
	for (const char *s = name; *s; s++) {
		if (!isalnum((unsigned char)*s) && strchr("/_+-.", *s) == NULL)
			return false;
		if (*s == '.' && (s == name || s[-1] == '/')) /* no "..", no hidden files */
			return false;
		if (*s == '/' && s[1] == '/')
			return false;
	}
	return true;
}

static const char *
zone_dir(void) {
	const char *dir = getenv("TZDIR");
	return dir != NULL && dir[0] != '\0' ? dir : "/usr/share/zoneinfo";
}

static int
load_local(jobq_tz *tz) {
	const char *env = getenv("TZ");
	char path[4096];
	if (env == NULL)
		return access("/etc/localtime", R_OK) == 0 ? load_file(tz, "/etc/localtime") : 0;
	if (*env == ':')
		env++;
	if (*env == '\0')
		return 0; /* UTC */
	if (env[0] == '/')
		return load_file(tz, env);
	if (valid_name(env)) {
		snprintf(path, sizeof(path), "%s/%s", zone_dir(), env);
		if (access(path, R_OK) == 0)
			return load_file(tz, path);
	}
	if (posix_parse(env, &tz->footer))
		tz->has_footer = true;
	return 0; /* anything else: UTC, as the C library does */
}

int
jobq_tz__load(jobq_tz **out, const char *name) {
	*out = NULL;
	int32_t off = 0;
	bool fixed = name != NULL && fixed_offset(name, &off);
	if (name != NULL && !fixed && !valid_name(name))
		return jobq_error_set(JOBQ_EINVAL, "time zone '%s': not a zone name", name);
	jobq_tz *tz = jobq__calloc(1, sizeof(*tz));
	const char *shown = name != NULL ? name : "local";
	if (tz == NULL || (tz->name = jobq__malloc(strlen(shown) + 1)) == NULL) {
		jobq__free(tz);
		return jobq_error_set(JOBQ_ENOMEM, "time zone: out of memory");
	}
	memcpy(tz->name, shown, strlen(shown) + 1);
	int rc = 0;
	if (name == NULL) {
		rc = load_local(tz);
	} else if (fixed) {
		tz->off_before = off;
	} else {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", zone_dir(), name);
		rc = load_file(tz, path);
	}
	if (rc < 0) {
		jobq_tz__free(tz);
		return rc;
	}
	*out = tz;
	return 0;
}

void
jobq_tz__free(jobq_tz *tz) {
	if (tz == NULL)
		return;
	jobq__free(tz->at);
	jobq__free(tz->off_after);
	jobq__free(tz->name);
	jobq__free(tz);
}

const char *
jobq_tz__name(const jobq_tz *tz) {
	return tz->name;
}

int32_t
jobq_tz__offset(const jobq_tz *tz, int64_t t) {
	if (tz == NULL)
		return 0;
	if (tz->count == 0 || t < tz->at[0]) {
		if (tz->count == 0 && tz->has_footer)
			return posix_offset(&tz->footer, t);
		return tz->off_before;
	}
	if (t >= tz->at[tz->count - 1] && tz->has_footer)
		return posix_offset(&tz->footer, t);
	size_t lo = 0, hi = tz->count; /* the last transition at or before t */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (tz->at[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return tz->off_after[lo];
}

int64_t
jobq_tz__to_utc(const jobq_tz *tz, int64_t local, int32_t guess, int32_t *offset_out) {
	/* luxon's resolution: try the guess, then the offset found there, then settle a gap. */
	int64_t t = local - guess;
	int32_t o2 = jobq_tz__offset(tz, t);
	if (o2 == guess) {
		*offset_out = guess;
		return t;
	}
	t -= o2 - guess;
	int32_t o3 = jobq_tz__offset(tz, t);
	if (o3 == o2) {
		*offset_out = o2;
		return t;
	}
	*offset_out = o2 > o3 ? o2 : o3;
	return local - (o2 < o3 ? o2 : o3);
}
