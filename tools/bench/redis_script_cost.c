/*
 * The cost on the Redis server of jobq's scripts against the cheapest sequence of Redis calls
 * for the same atomic steps, run alone (no jobq client logic): the script-cost section of
 * tools/bench/run.sh, which builds it against a jobq build tree.
 *
 *   redis_script_cost SOCKET [JOBS [add|process|steps K|metrics K]]
 *
 * For each step it runs JOBS jobs and reports the server's CPU time per job (INFO cpu, user +
 * sys, so the parsing and networking of each call are counted) and the wall time per job:
 *
 *   add        EVALSHA addJob (the backend's script for a lone plain add), one job per
 *              call, 100 calls pipelined
 *              vs a minimal script (INCR, HSET, LPUSH, 2 XADD, HMGET meta, ZADD marker)
 *   process k  EVALSHA completeFetch completing the k jobs fetched by the previous call and
 *              fetching k more, one call at a time (each needs the previous reply)
 *              vs a minimal script doing the same steps with the fewest calls (per
 *              completion LREM, XADD; per fetch SET PX, HINCRBY, HSET, XADD; once per call
 *              MGET locks, EXISTS jobs, EXISTS children, DEL of the finished jobs' keys, LRANGE +
 *              LTRIM + LPUSH to move the fetched ids, HMGET meta, ZRANGE delayed, ZADD
 *              marker, SREM stalled, drained check, XTRIM), each with the checks the step
 *              promises; both return the fetched ids, whose hashes the harness then reads
 *              with one pipelined HGETALL per job (counted), as the backend does
 *   steps K    only addJobs, in steps of K plain jobs, four steps in flight (what asynchronous
 *              adds send); no comparison: a load for a profile of the server
 *   metrics K [on|off]  only completeFetch as `process K`, without and with a worker's
 *              metrics (maxDataPoints 10080; all at one time, so no minute closes, as in
 *              all but one step a minute), or only one of them; for a profile of the
 *              server
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "jobq_lua.h"

static const char *const suffixes[16] = {
    "wait",   "paused",           "active",  "prioritized",   "pc",     "delayed", "completed",
    "failed", "waiting-children", "stalled", "stalled-check", "marker", "meta",    "id",
    "events", "limiter"};

static const char min_add[] =
    "local qp = ARGV[1]\n"
    "local meta = redis.call('HMGET', KEYS[13], 'paused', 'concurrency')\n"
    "local id = tostring(redis.call('INCR', KEYS[14]))\n"
    "redis.call('HSET', qp .. id, 'name', ARGV[3], 'data', ARGV[4], 'opts', ARGV[5],\n"
    "  'timestamp', ARGV[6], 'delay', 0, 'priority', 0)\n"
    "redis.call('XADD', KEYS[15], 'MAXLEN', '~', 10000, '*', 'event', 'added', 'jobId', id,\n"
    "  'name', ARGV[3])\n"
    "redis.call('LPUSH', KEYS[1], id)\n"
    "if not meta[1] then redis.call('ZADD', KEYS[12], 0, '0') end\n"
    "redis.call('XADD', KEYS[15], 'MAXLEN', '~', 10000, '*', 'event', 'waiting', 'jobId', id)\n"
    "return {0, id}\n";

static const char min_process[] =
    "local qp, nd, mx, lockMs, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4],\n"
    "  ARGV[5]\n"
    "local st, fin, jks, gone = {}, {}, {}, {}\n"
    "local locks = {}\n"
    "if nd > 0 then\n"
    "  local lk = {}\n"
    "  for i = 1, nd do\n"
    "    jks[i] = qp .. ARGV[i * 6]\n"
    "    lk[i] = jks[i] .. ':lock'\n"
    "  end\n"
    "  locks = redis.call('MGET', unpack(lk))\n"
    "  local dk = {}\n"
    "  for i = 1, nd do dk[i] = jks[i] .. ':dependencies' end\n"
    "  if redis.call('EXISTS', unpack(dk)) > 0 then return redis.error_reply('children') end\n"
    "  if redis.call('EXISTS', unpack(jks)) ~= nd then return redis.error_reply('gone') end\n"
    "end\n"
    "for i = 1, nd do\n"
    "  local a = i * 6\n"
    "  local id, jk = ARGV[a], jks[i]\n"
    "  st[i] = -2\n"
    "  if locks[i] == ARGV[a + 1] then\n"
    "    local deid = ARGV[a + 5]\n"
    "    if redis.call('LREM', KEYS[3], -1, id) == 1 then\n"
    "      local n = #gone\n"
    "      gone[n + 1], gone[n + 2], gone[n + 3] = jk, jk .. ':lock', jk .. ':logs'\n"
    "      gone[n + 4], gone[n + 5], gone[n + 6] = jk .. ':processed', jk .. ':failed',\n"
    "        jk .. ':unsuccessful'\n"
    "      redis.call('XADD', KEYS[15], '*', 'event', 'completed', 'jobId', id, 'returnvalue',\n"
    "        ARGV[a + 2], 'prev', 'active')\n"
    "      st[i] = 0\n"
    "      fin[#fin + 1] = id\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if #gone > 0 then redis.call('DEL', unpack(gone)) end\n"
    "if #fin > 0 then\n"
    "  redis.call('SREM', KEYS[10], unpack(fin))\n"
    "  if redis.call('LLEN', KEYS[3]) == 0 and redis.call('LLEN', KEYS[1]) == 0\n"
    "      and redis.call('ZCARD', KEYS[4]) == 0 then\n"
    "    redis.call('XADD', KEYS[15], '*', 'event', 'drained')\n"
    "  end\n"
    "end\n"
    "local ids = {}\n"
    "if mx > 0 then\n"
    "  local meta = redis.call('HMGET', KEYS[13], 'paused', 'concurrency')\n"
    "  redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')\n"
    "  local tail = redis.call('LRANGE', KEYS[1], -mx, -1)\n"
    "  if #tail > 0 then\n"
    "    redis.call('LTRIM', KEYS[1], 0, -(#tail + 1))\n"
    "    for k = #tail, 1, -1 do ids[#ids + 1] = tail[k] end\n"
    "    redis.call('LPUSH', KEYS[3], unpack(ids))\n"
    "  end\n"
    "  local a = 6 + nd * 6\n"
    "  for i, id in ipairs(ids) do\n"
    "    local jk = qp .. id\n"
    "    redis.call('SET', jk .. ':lock', ARGV[a + i - 1], 'PX', lockMs)\n"
    "    redis.call('HINCRBY', jk, 'ats', 1)\n"
    "    redis.call('HSET', jk, 'processedOn', now)\n"
    "    redis.call('XADD', KEYS[15], '*', 'event', 'active', 'jobId', id, 'prev', 'waiting')\n"
    "  end\n"
    "  if #ids > 0 then redis.call('ZADD', KEYS[12], 0, '0') end\n"
    "end\n"
    "redis.call('XTRIM', KEYS[15], 'MAXLEN', '~', 10000)\n"
    "return {st, ids, 0}\n";

static double
now_s(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static redisReply *
cmd(redisContext *c, int argc, const char **argv) {
	redisReply *r = redisCommandArgv(c, argc, argv, NULL);
	if (r == NULL) {
		fprintf(stderr, "redis: %s\n", c->errstr);
		exit(1);
	}
	if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "redis error: %s\n", r->str);
		exit(1);
	}
	return r;
}

static double
server_cpu(redisContext *c) {
	redisReply *r = redisCommand(c, "INFO cpu");
	double u = 0, s = 0;
	const char *p = r && r->str ? strstr(r->str, "used_cpu_sys:") : NULL;
	if (p)
		s = atof(p + 13);
	p = r && r->str ? strstr(r->str, "used_cpu_user:") : NULL;
	if (p)
		u = atof(p + 14);
	freeReplyObject(r);
	return u + s;
}

static char *
load(redisContext *c, const char *text, size_t len) {
	const char *av[] = {"SCRIPT", "LOAD", text};
	size_t al[] = {6, 4, len};
	redisReply *r = redisCommandArgv(c, 3, av, al);
	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "SCRIPT LOAD failed\n");
		exit(1);
	}
	char *sha = strdup(r->str);
	freeReplyObject(r);
	return sha;
}

typedef struct queue {
	char keys[16][96];
	char qp[64];
} queue;

static void
queue_init(queue *q, const char *name) {
	snprintf(q->qp, sizeof(q->qp), "bull:%s:", name);
	for (int i = 0; i < 16; i++)
		snprintf(q->keys[i], sizeof(q->keys[i]), "%s%s", q->qp, suffixes[i]);
}

/* EVALSHA sha 16 keys... qp args... into av; returns argc. */
static int
script_argv(const char **av, const char *sha, const queue *q, int argc, const char **args) {
	int n = 0;
	av[n++] = "EVALSHA";
	av[n++] = sha;
	av[n++] = "16";
	for (int i = 0; i < 16; i++)
		av[n++] = q->keys[i];
	av[n++] = q->qp;
	for (int i = 0; i < argc; i++)
		av[n++] = args[i];
	return n;
}

static const char payload[] =
    "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxx\"";

typedef struct cost {
	double cpu_us, wall_us; /* per job */
} cost;

static cost
add_bench(redisContext *c, const char *sha, int jobs, int ours) {
	queue q;
	queue_init(&q, ours ? "cost-add" : "cost-add-min");
	cmd(c, 1, (const char *[]){"FLUSHALL"});
	double cpu0 = server_cpu(c), t0 = now_s();
	for (int done = 0; done < jobs;) {
		int n = jobs - done < 100 ? jobs - done : 100;
		for (int i = 0; i < n; i++) {
			const char *av[40];
			int argc;
			if (ours) {
				/* (what the backend sends for a lone plain add: addJob) */
				const char *args[] = {"bench", payload, "{\"attempts\":0}",
				                      "1700000000000"};
				argc = script_argv(av, sha, &q, 4, args);
			} else {
				const char *args[] = {"1", "bench", payload, "{\"attempts\":0}",
				                      "1700000000000"};
				argc = script_argv(av, sha, &q, 5, args);
			}
			redisAppendCommandArgv(c, argc, av, NULL);
		}
		for (int i = 0; i < n; i++) {
			redisReply *r;
			if (redisGetReply(c, (void **)&r) != REDIS_OK ||
			    r->type == REDIS_REPLY_ERROR) {
				fprintf(stderr, "add failed\n");
				exit(1);
			}
			freeReplyObject(r);
		}
		done += n;
	}
	double wall = now_s() - t0, cpu = server_cpu(c) - cpu0;
	return (cost){cpu * 1e6 / jobs, wall * 1e6 / jobs};
}

/* addJobs alone in steps of k plain jobs ("p", then "s" for the rest of the step), four
 * steps on the wire at once, as asynchronous adds send them. */
static cost
steps_bench(redisContext *c, const char *sha, int jobs, int k) {
	queue q;
	queue_init(&q, "cost-steps");
	cmd(c, 1, (const char *[]){"FLUSHALL"});
	const char **args = calloc((size_t)(1 + 5 + (k - 1) * 2), sizeof(*args));
	const char **av = calloc((size_t)(21 + 5 + (k - 1) * 2), sizeof(*av));
	char nb[16];
	snprintf(nb, sizeof(nb), "%d", k);
	int a = 0;
	args[a++] = nb;
	const char *first[] = {"p", "bench", payload, "{\"attempts\":0}", "1700000000000"};
	for (int i = 0; i < 5; i++)
		args[a++] = first[i];
	for (int i = 1; i < k; i++) {
		args[a++] = "s";
		args[a++] = payload;
	}
	int argc = script_argv(av, sha, &q, a, args);
	int calls = jobs / k, sent = 0, got = 0;
	double cpu0 = server_cpu(c), t0 = now_s();
	while (got < calls) {
		while (sent < calls && sent - got < 4) {
			redisAppendCommandArgv(c, argc, av, NULL);
			sent++;
		}
		redisReply *r;
		if (redisGetReply(c, (void **)&r) != REDIS_OK || r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "addJobs step failed\n");
			exit(1);
		}
		freeReplyObject(r);
		got++;
	}
	double wall = now_s() - t0, cpu = server_cpu(c) - cpu0;
	free(args);
	free(av);
	return (cost){cpu * 1e6 / (calls * k), wall * 1e6 / (calls * k)};
}

static cost
process_bench(redisContext *c, const char *add_sha, const char *sha, int jobs, int k, int metrics) {
	queue q;
	queue_init(&q, "cost-proc");
	cmd(c, 1, (const char *[]){"FLUSHALL"});
	/* fill the queue with addJobs in batches of 1000 */
	for (int done = 0; done < jobs;) {
		int n = jobs - done < 1000 ? jobs - done : 1000;
		const char **args = calloc((size_t)(1 + n * 5), sizeof(*args));
		const char **av = calloc((size_t)(21 + n * 5), sizeof(*av));
		char nb[16];
		snprintf(nb, sizeof(nb), "%d", n);
		args[0] = nb;
		for (int i = 0; i < n; i++) {
			/* (addJobs' short form of a plain job) */
			const char *one[] = {"p", "bench", payload, "{\"attempts\":0}",
			                     "1700000000000"};
			memcpy(args + 1 + i * 5, one, sizeof(one));
		}
		int argc = script_argv(av, add_sha, &q, 1 + n * 5, args);
		freeReplyObject(cmd(c, argc, av));
		free(args);
		free(av);
		done += n;
	}
	char ids[64][32], toks[2][64][16];
	int held = 0, processed = 0, round = 0;
	double cpu0 = server_cpu(c), t0 = now_s();
	while (processed < jobs) {
		const char *args[4 + 64 * 8], *av[30 + 64 * 8];
		char nd[16], mx[16];
		int a = 0;
		snprintf(nd, sizeof(nd), "%d", held);
		snprintf(mx, sizeof(mx), "%d", k);
		args[a++] = nd;
		args[a++] = mx;
		args[a++] = "30000";
		args[a++] = "1700000000000";
		for (int i = 0; i < held; i++) {
			args[a++] = ids[i];
			args[a++] = toks[round % 2][i];
			args[a++] = "null";
			args[a++] = "0";
			args[a++] = "-1";
			args[a++] = ""; /* no dedup id */
		}
		round++;
		for (int i = 0; i < k; i++) {
			snprintf(toks[round % 2][i], 16, "t%d-%d", round, i);
			args[a++] = toks[round % 2][i];
		}
		args[a++] = "";  /* no worker name */
		args[a++] = "0"; /* no limiter: max, duration */
		args[a++] = "0";
		if (metrics && held > 0)
			args[a++] = "10080"; /* the worker's maxDataPoints, for every completion */
		int argc = script_argv(av, sha, &q, a, args);
		redisReply *r = cmd(c, argc, av);
		processed += held;
		const redisReply *list = r->element[1];
		held = (int)list->elements;
		for (int i = 0; i < held; i++)
			snprintf(ids[i], sizeof(ids[i]), "%s", list->element[i]->str);
		/* the fetched jobs' hashes, read after the step as the backend does */
		for (int i = 0; i < held; i++)
			redisAppendCommand(c, "HGETALL %s%s", q.qp, ids[i]);
		for (int i = 0; i < held; i++) {
			void *h = NULL;
			if (redisGetReply(c, &h) != REDIS_OK) {
				fprintf(stderr, "redis: %s\n", c->errstr);
				exit(1);
			}
			freeReplyObject(h);
		}
		freeReplyObject(r);
		if (held == 0 && processed < jobs) {
			fprintf(stderr, "process: ran out of jobs at %d\n", processed);
			exit(1);
		}
	}
	double wall = now_s() - t0, cpu = server_cpu(c) - cpu0;
	return (cost){cpu * 1e6 / processed, wall * 1e6 / processed};
}

enum { ROUNDS = 5 };

static int
cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
median(double *v) {
	qsort(v, ROUNDS, sizeof(double), cmp_double);
	return v[ROUNDS / 2];
}

/* Prints the medians of ROUNDS runs of ours and of the minimal script, run alternately. */
static void
report(const char *label, const cost *ours, const cost *min) {
	double oc[ROUNDS], mc[ROUNDS], ow[ROUNDS], mw[ROUNDS];
	for (int i = 0; i < ROUNDS; i++) {
		oc[i] = ours[i].cpu_us;
		mc[i] = min[i].cpu_us;
		ow[i] = ours[i].wall_us;
		mw[i] = min[i].wall_us;
	}
	double a = median(oc), b = median(mc);
	printf("%-16s %9.2f %9.2f %7.2f  %9.2f %9.2f\n", label, a, b, a / b, median(ow),
	       median(mw));
}

int
main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: redis_script_cost SOCKET [JOBS [add|process|steps "
		                "K|metrics K [on|off]]]\n");
		return 2;
	}
	int jobs = argc > 2 ? atoi(argv[2]) : 20000;
	redisContext *c = redisConnectUnix(argv[1]);
	if (c == NULL || c->err) {
		fprintf(stderr, "cannot connect to %s\n", argv[1]);
		return 1;
	}
	const jobq_lua_script *add = &jobq_lua_scripts[JOBQ_LUA_ADDJOBS];
	const jobq_lua_script *add1 = &jobq_lua_scripts[JOBQ_LUA_ADDJOB];
	const jobq_lua_script *cf = &jobq_lua_scripts[JOBQ_LUA_COMPLETEFETCH];
	char *add_sha = load(c, (const char *)add->bytes, add->len);
	char *add1_sha = load(c, (const char *)add1->bytes, add1->len);
	char *cf_sha = load(c, (const char *)cf->bytes, cf->len);
	char *min_add_sha = load(c, min_add, strlen(min_add));
	char *min_proc_sha = load(c, min_process, strlen(min_process));
	const char *only = argc > 3 ? argv[3] : "";
	if (strcmp(only, "metrics") == 0) {
		int k = argc > 4 ? atoi(argv[4]) : 8;
		if (k < 1 || k > 64) {
			fprintf(stderr, "metrics K: K is 1..64, not %s\n", argc > 4 ? argv[4] : "");
			return 2;
		}
		const char *which = argc > 5 ? argv[5] : "";
		for (int m = strcmp(which, "on") == 0; m < 2 - (strcmp(which, "off") == 0); m++) {
			cost x = process_bench(c, add_sha, cf_sha, jobs, k, m);
			printf(
			    "completeFetch k=%d, metrics %s: %.2f us server CPU, %.2f us wall per "
			    "job\n",
			    k, m ? "on " : "off", x.cpu_us, x.wall_us);
		}
		return 0;
	}
	if (strcmp(only, "steps") == 0) {
		/* (for a profile of the server, e.g. under callgrind: no comparison) */
		int k = argc > 4 ? atoi(argv[4]) : 32;
		if (k < 1 || k > 1000) {
			fprintf(stderr, "steps K: K is 1..1000, not %s\n", argc > 4 ? argv[4] : "");
			return 2;
		}
		cost x = steps_bench(c, add_sha, jobs, k);
		printf("addJobs in steps of %d plain jobs, 4 steps in flight: %.2f us server CPU, "
		       "%.2f us wall per job\n",
		       k, x.cpu_us, x.wall_us);
		return 0;
	}
	printf("%d jobs per run, median of %d alternating runs; server CPU from INFO cpu "
	       "(user+sys)\n",
	       jobs, ROUNDS);
	printf("%-16s %9s %9s %7s  %9s %9s\n", "step", "jobq us", "min us", "ratio", "jobq wall",
	       "min wall");
	cost ours[ROUNDS], min[ROUNDS];
	if (strcmp(only, "process") != 0) {
		for (int r = 0; r < ROUNDS; r++) {
			ours[r] = add_bench(c, add1_sha, jobs, 1);
			min[r] = add_bench(c, min_add_sha, jobs, 0);
		}
		report("add (1 per call)", ours, min);
	}
	int ks[] = {1, 8, 64};
	for (int i = 0; i < 3 && strcmp(only, "add") != 0; i++) {
		for (int r = 0; r < ROUNDS; r++) {
			ours[r] = process_bench(c, add_sha, cf_sha, jobs, ks[i], 0);
			min[r] = process_bench(c, add_sha, min_proc_sha, jobs, ks[i], 0);
		}
		char label[32];
		snprintf(label, sizeof(label), "process k=%d", ks[i]);
		report(label, ours, min);
	}
	free(add_sha);
	free(add1_sha);
	free(cf_sha);
	free(min_add_sha);
	free(min_proc_sha);
	redisFree(c);
	return 0;
}
