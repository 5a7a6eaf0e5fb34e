/*
 * Reads "PATTERN<TAB>ZONE<TAB>AFTER_MS" lines on stdin and prints, per line, the next run time
 * jobq_cron__next gives ("next MS"), "none" (JOBQ_ENOTFOUND), "invalid" (a parse error) or
 * "zone-error MESSAGE". ZONE "-" is UTC without a file. cron_table.js drives it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cron.h"
#include "jobq.h"

#define ZONES_MAX 64

int
main(void) {
	static char line[4096];
	char zname[ZONES_MAX][128];
	jobq_tz *zone[ZONES_MAX];
	int nz = 0, rc = 0;
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
		if (t2 == NULL) {
			fprintf(stderr, "cron_eval: bad line '%s'\n", line);
			rc = 2;
			break;
		}
		*t1 = *t2 = '\0';
		const char *zn = t1 + 1;
		jobq_tz *tz = NULL;
		int zrc = 0;
		if (strcmp(zn, "-") != 0) {
			int k = 0;
			while (k < nz && strcmp(zname[k], zn) != 0)
				k++;
			if (k == nz && nz < ZONES_MAX && strlen(zn) < sizeof(zname[0])) {
				zrc = jobq_tz__load(&zone[nz], zn);
				if (zrc == 0)
					snprintf(zname[nz++], sizeof(zname[0]), "%s", zn);
			}
			tz = k < nz ? zone[k] : NULL;
		}
		if (zrc < 0 || (strcmp(zn, "-") != 0 && tz == NULL)) {
			printf("zone-error %s\n", jobq_error_message());
			continue;
		}
		jobq_cron c;
		char err[256];
		int64_t next;
		if (jobq_cron__parse(&c, line, err, sizeof(err)) < 0)
			printf("invalid\n");
		else if (jobq_cron__next(&c, tz, strtoll(t2 + 1, NULL, 10), &next) == 0)
			printf("next %lld\n", (long long)next);
		else
			printf("none\n");
	}
	for (int k = 0; k < nz; k++)
		jobq_tz__free(zone[k]);
	return rc;
}
