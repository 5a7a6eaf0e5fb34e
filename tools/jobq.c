/*
 * jobq — the command-line program: a small dispatcher over the verbs in cli_*.c.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_verb_info verbs[] = {
    {"add", cli_cmd_add,
     "add QUEUE NAME [DATA] [--delay MS] [--priority N] [--lifo] [--attempts N]\n"
     "          [--backoff fixed:MS|exponential:MS|linear:MS] [--id JOBID]\n"
     "          [--remove-on-complete[=N]] [--remove-on-fail[=N]]\n"
     "          [--dedup ID [--dedup-ttl MS] [--dedup-keep-last]]",
     "add a job; prints its id",
     "DATA is JSON text (default {}); '-' reads it from stdin.\n"
     "\n"
     "Options:\n"
     "  --delay MS               run no earlier than MS milliseconds from now\n"
     "  --priority N             1 (first) .. 2097151; 0 means none\n"
     "  --lifo                   run before the jobs already waiting\n"
     "  --attempts N             attempts before the job fails for good (default 1)\n"
     "  --backoff TYPE:MS        delay between attempts: fixed:MS, exponential:MS\n"
     "                           or linear:MS (MS x attempt; BullMQ: a custom type)\n"
     "  --id JOBID               custom job id; an existing id is returned, nothing added\n"
     "  --remove-on-complete[=N] remove when completed, or keep only the newest N\n"
     "  --remove-on-fail[=N]     remove when failed for good, or keep only the newest N\n"
     "  --dedup ID               deduplication id (BullMQ's deduplication.id): while a job\n"
     "                           holds it (until it finishes, or for --dedup-ttl MS), an\n"
     "                           add with it adds nothing and prints the holder's id\n"
     "  --dedup-keep-last        BullMQ's keepLastIfActive: the latest add while the holder\n"
     "                           is active runs after it (Redis only)\n"
     "  --json                   print {\"id\":..., \"outcome\":...}\n"
     "\n"
     "Examples:\n"
     "  jobq add mail send '{\"to\":\"ann@example.com\"}'\n"
     "  jobq add mail send --attempts 5 --backoff exponential:1000 < payload.json -\n"
     "  jobq -u redis://localhost:6379 add reports build '{}' --delay 60000\n"},
    {"get", cli_cmd_get, "get QUEUE ID [--json]",
     "show a job: state, attempts, progress, result, failure",
     "Options:\n"
     "  --json   one JSON object with BullMQ's field names (id, name, state, data, opts,\n"
     "           progress, returnvalue, failedReason, stacktrace, attemptsMade, ...) and\n"
     "           logs (its log lines); a parent also has dependencies (processed,\n"
     "           unprocessed, ignored, failed: BullMQ's getDependencies) and\n"
     "           childrenValues (getChildrenValues)\n"
     "\n"
     "Exit status 4 when the job does not exist.\n"
     "\n"
     "Examples:\n"
     "  jobq get mail 42\n"
     "  jobq get mail 42 --json | jq .returnvalue\n"},
    {"flow", cli_cmd_flow, "flow [FILE|-] [--json]",
     "add a flow: a parent job and its children, from JSON; prints the ids",
     "Reads a flow in the shape of BullMQ's FlowProducer.add (from FILE, or standard input\n"
     "when FILE is '-' or missing): {\"name\", \"queueName\", \"data\", \"opts\", \"children\":\n"
     "[...]}; a child without queueName is in its parent's queue. The whole tree is added\n"
     "in one step, or nothing is. Each parent waits in waiting-children until its children\n"
     "finish. opts: jobId, delay, priority, lifo, attempts, backoff, removeOnComplete,\n"
     "removeOnFail, one of failParentOnFailure, ignoreDependencyOnFailure,\n"
     "removeDependencyOnFailure, continueParentOnFailure, and on the root parent: {id,\n"
     "queue} to add it under an existing job. Not on LMDB stores yet.\n"
     "\n"
     "Options:\n"
     "  --json   the tree with ids, as FlowProducer.add returns it: {job: {id, name,\n"
     "           queueName}, children: [...]}\n"
     "\n"
     "Examples:\n"
     "  echo '{\"name\":\"zip\",\"queueName\":\"files\",\"children\":[{\"name\":\"resize\",\n"
     "        \"queueName\":\"images\",\"data\":{\"f\":\"a.png\"}}]}' | jobq flow\n"
     "  jobq get files 1 --json | jq .childrenValues\n"},
    {"wait", cli_cmd_wait, "wait QUEUE ID [--timeout MS] [--json]",
     "wait until a job finishes; prints its result",
     "Prints the job's result (JSON) when it completes and exits 0. Exits 1 when the job\n"
     "failed (its reason on stderr), 5 when the timeout passed first, 4 when the job does\n"
     "not exist.\n"
     "\n"
     "Options:\n"
     "  --timeout MS   give up after MS milliseconds (default: wait forever)\n"
     "  --json         print the whole job (as `get --json`) instead of the result\n"
     "\n"
     "Examples:\n"
     "  id=$(jobq add render page '{\"url\":\"/\"}') && jobq wait render \"$id\" --timeout "
     "10000\n"},
    {"counts", cli_cmd_counts, "counts QUEUE [--json]", "number of jobs in each state",
     "Options:\n"
     "  --json   "
     "{\"waiting\":..,\"active\":..,\"delayed\":..,\"prioritized\":..,\"completed\":..,\n"
     "           \"failed\":..,\"paused\":..} plus \"isPaused\"\n"
     "\n"
     "Exit status 4 when the queue does not exist in the store (see `jobq queues`).\n"
     "\n"
     "Examples:\n"
     "  jobq counts mail\n"
     "  jobq counts mail --json | jq .failed\n"},
    {"list", cli_cmd_list, "list QUEUE STATE [--limit N] [--offset N] [--json]",
     "list jobs in a state",
     "STATE is one of waiting, prioritized, delayed, active, completed, failed,\n"
     "waiting-children (parents of flows waiting for their children).\n"
     "Waiting, prioritized, delayed and active jobs are listed in the order they run;\n"
     "completed and failed ones newest first.\n"
     "\n"
     "Prints a header line, then one tab-separated line per job with the columns that\n"
     "matter in STATE (run-at time for delayed jobs, progress for active ones, result or\n"
     "reason for finished ones). When more jobs exist than shown, a line on stderr says how\n"
     "many and the --offset that shows the next ones.\n"
     "\n"
     "Options:\n"
     "  --limit N    at most N jobs (default 100; 0: all)\n"
     "  --offset N   skip the first N\n"
     "  --json       {\"jobs\":[..],\"total\":N,\"offset\":N,\"more\":bool}, jobs as `get --json`\n"
     "\n"
     "Examples:\n"
     "  jobq list mail failed --limit 10\n"},
    {"pause", cli_cmd_pause, "pause QUEUE", "stop workers from taking new jobs",
     "Adding jobs still works; running jobs finish.\n"
     "\n"
     "Examples:\n"
     "  jobq pause mail && jobq resume mail\n"},
    {"resume", cli_cmd_resume, "resume QUEUE", "let workers take jobs again",
     "Examples:\n"
     "  jobq resume mail\n"},
    {"limit", cli_cmd_limit, "limit QUEUE [--max N --duration MS | --remove | --for MS] [--json]",
     "read, set or remove the queue's global rate limit",
     "The global rate limit: at most N jobs start in any window of MS milliseconds, over\n"
     "every worker of the queue (BullMQ's setGlobalRateLimit: on Redis Node workers keep it\n"
     "too). It overrides a worker's own --limit-max; a worker's --limit-duration overrides\n"
     "its MS. Without options, prints the limit (or `none`) and the current window.\n"
     "\n"
     "Options:\n"
     "  --max N --duration MS   set the limit (N and MS in 1..2147483647)\n"
     "  --remove                remove it\n"
     "  --for MS                rate-limit the queue now, for MS (BullMQ's rateLimit: it\n"
     "                          holds back the workers that have a rate limit in force)\n"
     "  --json                  {\"queue\":..,\"max\":N|null,\"duration\":MS|null,\n"
     "                           \"windowUsed\":N,\"windowLeftMs\":MS}\n"
     "\n"
     "Examples:\n"
     "  jobq limit mail --max 100 --duration 60000\n"
     "  jobq limit mail\n"
     "  jobq limit mail --remove\n"},
    {"concurrency", cli_cmd_concurrency, "concurrency QUEUE [N | --remove] [--json]",
     "read, set or remove the queue's global concurrency",
     "The global concurrency: at most N jobs of the queue active at once, over every\n"
     "worker (BullMQ's setGlobalConcurrency). Without N, prints it (or `none`).\n"
     "\n"
     "Options:\n"
     "  --remove   remove it\n"
     "  --json     {\"queue\":..,\"concurrency\":N|null}\n"
     "\n"
     "Examples:\n"
     "  jobq concurrency mail 4\n"
     "  jobq concurrency mail --remove\n"},
    {"drain", cli_cmd_drain, "drain QUEUE [--delayed]", "remove every job waiting to run",
     "Removes waiting and prioritized jobs (and delayed ones with --delayed); prints how\n"
     "many jobs it removed.\n"
     "\n"
     "Examples:\n"
     "  jobq drain mail --delayed\n"},
    {"obliterate", cli_cmd_obliterate, "obliterate QUEUE [--force]",
     "delete a queue and all its jobs",
     "Refuses (exit 1) while the queue holds any job, unless --force (which also deletes\n"
     "active jobs).\n"
     "\n"
     "Examples:\n"
     "  jobq obliterate scratch --force\n"},
    {"clean", cli_cmd_clean, "clean QUEUE STATE --grace MS [--limit N]",
     "remove old jobs in a state",
     "Removes jobs in STATE (completed, failed, waiting, prioritized, delayed, active)\n"
     "older than MS milliseconds; prints how many it removed.\n"
     "\n"
     "Options:\n"
     "  --grace MS   keep jobs younger than this (required; 0 removes all)\n"
     "  --limit N    remove at most N jobs (default: no limit)\n"
     "  --json       {\"removed\":N,\"ids\":[...]}\n"
     "\n"
     "Examples:\n"
     "  jobq clean mail completed --grace 86400000\n"},
    {"retry", cli_cmd_retry, "retry QUEUE (ID | --all-failed)", "move failed jobs back to waiting",
     "Examples:\n"
     "  jobq retry mail 42\n"
     "  jobq retry mail --all-failed\n"},
    {"promote", cli_cmd_promote, "promote QUEUE (ID | --all-delayed)",
     "make delayed jobs ready to run now",
     "Examples:\n"
     "  jobq promote mail 42\n"
     "  jobq promote mail --all-delayed\n"},
    {"remove", cli_cmd_remove, "remove QUEUE ID", "delete a job",
     "Refuses (exit 1) while the job is active and locked; exit 4 if it does not exist.\n"
     "\n"
     "Examples:\n"
     "  jobq remove mail 42\n"},
    {"schedule", cli_cmd_schedule,
     "schedule QUEUE ID (--every MS [--offset MS] | --cron PATTERN [--tz ZONE]) [NAME [DATA]]\n"
     "          [--start TIME] [--end TIME] [--limit N] [--immediately] [job options]",
     "create or update a job scheduler; prints its pending iteration's id",
     "A job scheduler adds a job (an iteration, id repeat:ID:MILLIS) every MS milliseconds or\n"
     "at the times of a cron pattern, as BullMQ's upsertJobScheduler: one iteration is\n"
     "pending at a time, and the worker that fetches it creates the next. Scheduling an\n"
     "existing ID updates it and replaces its pending iteration. NAME defaults to ID, DATA\n"
     "(JSON) to {}.\n"
     "\n"
     "Options:\n"
     "  --every MS               an iteration every MS milliseconds\n"
     "  --offset MS              with --every: at multiples of MS plus this\n"
     "  --cron PATTERN           cron pattern, 5 fields or 6 with seconds first\n"
     "  --tz ZONE                the pattern's time zone (default: the local one)\n"
     "  --start TIME, --end TIME no iteration before / after TIME (ms since the epoch or\n"
     "                           YYYY-MM-DDTHH:MM[:SS[.mmm]]Z)\n"
     "  --limit N                at most N iterations\n"
     "  --immediately            with --cron: the first iteration runs now\n"
     "  --priority N, --lifo, --attempts N, --backoff TYPE:MS, --remove-on-complete[=N],\n"
     "  --remove-on-fail[=N]     the iterations' job options, as for add\n"
     "  --json                   print {\"scheduler\", \"iteration\", \"next\"}\n"
     "\n"
     "Examples:\n"
     "  jobq schedule reports nightly --cron '0 30 2 * * *' --tz Europe/Paris build\n"
     "  jobq schedule sync pull --every 30000 --attempts 3 pull '{\"full\":false}'\n"},
    {"schedulers", cli_cmd_schedulers, "schedulers QUEUE [--json]",
     "list the job schedulers with their next run",
     "One line per scheduler, earliest next run first: id, job name, schedule, next run\n"
     "(UTC) and iterations so far (/ the limit).\n"
     "\n"
     "Options:\n"
     "  --json   an array with the fields of BullMQ's getJobSchedulers() (key, name, next,\n"
     "           iterationCount, limit, startDate, endDate, tz, pattern, every, offset,\n"
     "           template)\n"},
    {"unschedule", cli_cmd_unschedule, "unschedule QUEUE ID", "remove a job scheduler",
     "Removes the scheduler and its pending iteration if that waits for its time; an\n"
     "iteration already due still runs, and creates no next one. Exit status 4 when there\n"
     "is no such scheduler.\n"},
    {"work", cli_cmd_work,
     "work QUEUE [--concurrency N] [--max-jobs N] [--idle-exit MS] [--timeout MS]\n"
     "          [--lock-ms MS] [--stalled-interval MS] [--max-stalled N]\n"
     "          [--shutdown-timeout MS] [--stderr-log[=N]] [--log text|json]\n"
     "          [--metrics N] [--limit-max N --limit-duration MS] -- CMD [ARGS...]",
     "process jobs by running a command for each",
     "Runs CMD once per job, without a shell: the job data on stdin; JOBQ_QUEUE, JOBQ_JOB_ID,\n"
     "JOBQ_JOB_NAME and JOBQ_ATTEMPT (1 for the first attempt) in its environment. Its\n"
     "stdout becomes the job's result (kept as JSON when it is JSON, else stored as a JSON\n"
     "string, one trailing newline removed). A non-zero exit fails the attempt with the last\n"
     "line of stderr as the reason; exit status 64 fails the job for good, skipping the\n"
     "remaining attempts. SIGTERM and SIGINT close gracefully: no new jobs, running commands\n"
     "may finish until --shutdown-timeout, then they are killed and their jobs go back to\n"
     "waiting; locks are released.\n"
     "\n"
     "The command may report while it runs by writing lines to the file descriptor named\n"
     "by JOBQ_REPORT_FD (a pipe): \"progress JSON\" sets the job's progress, \"log TEXT\"\n"
     "appends a line to the job's logs (e.g. in sh: echo 'progress 50' >&\"$JOBQ_REPORT_FD\").\n"
     "\n"
     "The worker logs to stderr, one line each (--log json: one JSON object with time,\n"
     "level, component, queue, job, message): every job finished, and what it sees beside\n"
     "the jobs: store outages and recoveries, lost locks, jobs failed for good, stalled\n"
     "jobs recovered, results the store refused (kept and tried again, the command is not\n"
     "run again), recorded late, or given up at --shutdown-timeout. -q keeps warnings and\n"
     "errors only.\n"
     "\n"
     "Options:\n"
     "  --concurrency N        commands run at once (default 1)\n"
     "  --max-jobs N           stop after starting N jobs\n"
     "  --idle-exit MS         stop after MS milliseconds without a job\n"
     "  --timeout MS           kill a command running longer and fail the attempt\n"
     "  --lock-ms MS           job lock time, renewed while the command runs (default 30000)\n"
     "  --stalled-interval MS  how often to look for stalled jobs (default 30000)\n"
     "  --max-stalled N        stalls a job survives before it fails (default 1)\n"
     "  --shutdown-timeout MS  how long running commands may finish on close (default 30000)\n"
     "  --stderr-log[=N]       keep the last N lines of the command's stderr (default 100)\n"
     "                         as the job's log lines\n"
     "  --log text|json        the format of the log lines (default text)\n"
     "  --metrics N            count the jobs completed and failed per minute as BullMQ's\n"
     "                         metrics (worker option metrics.maxDataPoints), keeping N\n"
     "                         minutes (10080: a week); read them with `jobq metrics`\n"
     "  --remove-on-complete[=N] for jobs that set no policy of their own: remove when\n"
     "                         completed, or keep only the newest N completed\n"
     "  --remove-on-fail[=N]   likewise for jobs failed for good\n"
     "  --name NAME            the worker's name (default HOST:PID), written on each job it\n"
     "                         runs (processedBy) and listed by BullMQ's getWorkers()\n"
     "  --limit-max N --limit-duration MS\n"
     "                         the worker's rate limiter: at most N jobs start per MS,\n"
     "                         counted with every worker of the queue (BullMQ's worker\n"
     "                         `limiter`); the queue's `jobq limit` overrides N\n"
     "\n"
     "Exit status: 0; 1 when an attempt failed during the run; 3 when a result the store\n"
     "refused was given up (its job will run again), or when it stopped (--idle-exit,\n"
     "--max-jobs, a signal) while the store was unreachable.\n"
     "\n"
     "Examples:\n"
     "  jobq work images --concurrency 4 -- ./resize.sh\n"
     "  jobq work mail --max-jobs 1 --timeout 5000 -- python3 send.py\n"},
    {"events", cli_cmd_events, "events QUEUE [--follow] [--since ID] [--count N] [--json]",
     "print the queue's events",
     "Without --follow, prints the retained events and exits. With --follow, prints new\n"
     "events as they happen (from --since ID if given) until interrupted or --count.\n"
     "\n"
     "Options:\n"
     "  --follow     keep waiting for new events\n"
     "  --since ID   start after event ID (0: the oldest retained)\n"
     "  --count N    stop after N events\n"
     "  --json       one JSON object per event and line: id, event, jobId, other fields\n"
     "\n"
     "Examples:\n"
     "  jobq events mail\n"
     "  jobq events mail --follow --json | jq -c 'select(.event==\"failed\")'\n"},
    {"progress", cli_cmd_progress, "progress QUEUE ID JSON", "set a job's progress",
     "JSON is any JSON value (a number such as 42, or an object). Works on a job in any\n"
     "state, without its lock. Exit status 4 when the job does not exist.\n"
     "\n"
     "Examples:\n"
     "  jobq progress render 42 50\n"
     "  jobq progress render 42 '{\"page\":3,\"of\":10}'\n"},
    {"log", cli_cmd_log, "log QUEUE ID LINE", "append a line to a job's logs",
     "LINE '-' appends each line of stdin. Exit status 4 when the job does not exist.\n"
     "\n"
     "Examples:\n"
     "  jobq log render 42 'fetched 3 pages'\n"
     "  make 2>&1 | jobq log build 7 -\n"},
    {"logs", cli_cmd_logs, "logs QUEUE ID [--json]", "print a job's log lines",
     "Prints the job's log lines, oldest first, one per line.\n"
     "\n"
     "Options:\n"
     "  --json   {\"logs\":[..],\"count\":N}\n"
     "\n"
     "Exit status 4 when the job does not exist.\n"
     "\n"
     "Examples:\n"
     "  jobq logs render 42\n"},
    {"queues", cli_cmd_queues, "queues [--json]", "every queue in the store with its counts",
     "Lists the queues the store holds, sorted by name, with their job counts (waiting\n"
     "includes the waiting jobs of a paused queue). Memory: the queues of this process;\n"
     "LMDB: every queue with jobs or settings; Redis: every queue under the URL's prefix,\n"
     "found with SCAN (the server is not blocked).\n"
     "\n"
     "Options:\n"
     "  --json   {\"queues\":[{\"name\":..,\"counts\":{..},\"isPaused\":..},..]}\n"
     "\n"
     "Examples:\n"
     "  jobq -u redis://localhost:6379 queues\n"},
    {"stats", cli_cmd_stats, "stats [QUEUE...] [--json]",
     "counts, rates, workers, latency of queues",
     "For each QUEUE (default: every queue): the counts, the jobs completed and failed in\n"
     "the last minute and in all (from the metrics the queue's workers keep, see `jobq\n"
     "metrics`; without them, the last minute among the jobs kept), the workers connected\n"
     "(Redis; '-' elsewhere), the age of the oldest waiting job, and the processing time\n"
     "percentiles of the newest completed jobs (up to 1000).\n"
     "\n"
     "Options:\n"
     "  --json   {\"queues\":[{\"name\",\"counts\",\"isPaused\",\"completedPerMinute\",\n"
     "           \"failedPerMinute\",\"completedTotal\",\"failedTotal\",\"workers\",\n"
     "           \"oldestWaitingMs\",\"processingMs\":{\"count\",\"p50\",\"p90\",\"p99\"}}]}\n"
     "           (totals: null without metrics; workers, oldestWaitingMs: null when unknown)\n"
     "\n"
     "Exit status 4 when a QUEUE does not exist.\n"
     "\n"
     "Examples:\n"
     "  jobq stats mail --json | jq '.queues[0].failedPerMinute'\n"},
    {"metrics", cli_cmd_metrics,
     "metrics QUEUE [--start N] [--end N] | metrics --prometheus [QUEUE...]",
     "print a queue's per-minute metrics, or Prometheus text",
     "With QUEUE: the jobs completed and failed per minute as BullMQ's getMetrics returns\n"
     "them (kept by workers that enable metrics: jobq work --metrics N, a Node worker's\n"
     "metrics.maxDataPoints): the count since counting began, when the newest point was\n"
     "closed (prevTS) and the count then (prevCount), and the points from --start to --end\n"
     "(0 the newest minute, -1 the oldest; default all). --json: {queue, completed:\n"
     "{meta: {count, prevTS, prevCount}, data, count}, failed: {...}}.\n"
     "\n"
     "With --prometheus, for each QUEUE (default: every queue): jobq_jobs{queue,state}\n"
     "(completed and failed count the jobs kept), jobq_queue_paused,\n"
     "jobq_completed_last_minute, jobq_failed_last_minute (from the metrics when the queue\n"
     "has them, else among the jobs kept), jobq_completed_total and jobq_failed_total\n"
     "(queues with metrics), jobq_oldest_waiting_age_seconds, the summary\n"
     "jobq_processing_seconds (quantiles 0.5, 0.9, 0.99 of the newest completed jobs, _sum,\n"
     "_count), jobq_workers (Redis only); and jobq_up.\n"
     "\n"
     "Options:\n"
     "  --start N, --end N  the points to print (default 0 and -1: all)\n"
     "  --prometheus        the Prometheus text exposition format (0.0.4)\n"
     "\n"
     "Examples:\n"
     "  jobq metrics mail --json --end 59   # the last hour\n"
     "  jobq metrics --prometheus > /var/lib/node_exporter/jobq.prom\n"},
    {"serve-metrics", cli_cmd_serve_metrics, "serve-metrics --listen ADDR [QUEUE...]",
     "answer /metrics and /healthz over HTTP",
     "Serves GET /metrics (what `metrics --prometheus` prints; jobq_up 0 when the store\n"
     "does not answer) and GET /healthz (200 \"ok\" when the store answers, else 503) until\n"
     "SIGINT or SIGTERM. Prints \"listening on http://HOST:PORT/metrics\" once it listens.\n"
     "\n"
     "Options:\n"
     "  --listen ADDR   HOST:PORT, [IPV6]:PORT, :PORT or PORT (host default 127.0.0.1);\n"
     "                  port 0 picks a free port (printed)\n"
     "\n"
     "Examples:\n"
     "  jobq -u redis://localhost:6379 serve-metrics --listen 0.0.0.0:9464\n"},
    {"health", cli_cmd_health, "health [QUEUE...] [--min-workers N] [--json]",
     "check that the store answers and workers are there",
     "Exit status: 0 the store answers (and every QUEUE, default all, has at least N\n"
     "workers); 1 a queue has fewer than N workers; 2 usage error, or --min-workers on a\n"
     "backend that cannot count workers (memory, LMDB); 3 the store does not answer; 4 a\n"
     "QUEUE does not exist.\n"
     "\n"
     "Options:\n"
     "  --min-workers N   workers each queue needs (default 0; Redis only)\n"
     "  --json            {\"ok\":..,\"backend\":..,\"queues\":[{\"name\":..,\"workers\":..}]}\n"
     "\n"
     "Examples:\n"
     "  jobq -u redis://localhost:6379 health mail --min-workers 1 || alert\n"},
    {"top", cli_cmd_top, "top [QUEUE...] [--interval MS] [--iterations N]",
     "a live view of the store's queues",
     "Redraws, every --interval, one line per QUEUE (default: every queue): counts, jobs\n"
     "completed and failed in the last minute, workers (Redis), the oldest waiting job's\n"
     "age and the median processing time. Plain ANSI (works over ssh). Quits on q, Ctrl-C\n"
     "or SIGTERM.\n"
     "\n"
     "Options:\n"
     "  --interval MS      refresh period (default 1000)\n"
     "  -n, --iterations N draw N frames, then exit\n"
     "\n"
     "Examples:\n"
     "  jobq -u redis://localhost:6379 top\n"},
    {"bench", cli_cmd_bench,
     "bench [--jobs N] [--concurrency N] [--size BYTES] [--inflight K] [--metrics N]\n"
     "          [--json]",
     "measure add/process throughput and pickup latency",
     "Adds N jobs one by one (each awaited), N one by one with up to K adds in flight\n"
     "(asynchronous adds, on a queue of their own) and N in bulk; processes the first and\n"
     "the last N with an empty handler, then measures the pickup latency of an idle worker\n"
     "(add one job, time until the handler starts, 200 times). Works on fresh queues that\n"
     "it deletes at the end. The store is\n"
     "the default one (lmdb:jobq-data) unless -u is given: use `-u mem://` for memory.\n"
     "\n"
     "Options:\n"
     "  --jobs N          jobs per add phase (default 5000)\n"
     "  --concurrency N   worker threads (default 4)\n"
     "  --size BYTES      payload size (default 100)\n"
     "  --samples N       pickup latency samples (default 200)\n"
     "  --inflight K      asynchronous adds in flight at most (default 100)\n"
     "  --metrics N       the worker keeps BullMQ's metrics (N points), as work --metrics\n"
     "  --json            backend, jobs, concurrency, size, add_per_s, inflight,\n"
     "                    add_inflight_per_s, add_bulk_per_s,\n"
     "                    process_per_s, pickup_p50_us, pickup_p99_us\n"
     "\n"
     "Examples:\n"
     "  jobq -u mem:// bench\n"
     "  jobq -u lmdb:/tmp/bench bench --jobs 20000 --json\n"},
    {"check", cli_cmd_check, "check [--json]", "check the store's integrity (LMDB)",
     "Reads the whole store in one snapshot (workers may keep running) and holds its\n"
     "tables against each other: every job record decodes, every index entry names an\n"
     "existing job in that state, every job is in the index its state names, and each\n"
     "queue's counters equal its index sizes. Prints one line per problem and a summary.\n"
     "LMDB keeps no checksums: this is what finds bytes changed inside its file. It\n"
     "repairs nothing.\n"
     "\n"
     "Exit status 0 when consistent, 1 when damage was found, 3 when the store cannot be\n"
     "opened or read, or its backend has no check (memory, Redis).\n"
     "\n"
     "Options:\n"
     "  --json   {\"queues\":..,\"jobs\":..,\"entries\":..,\"problems\":..,\"messages\":[..]}\n"
     "\n"
     "Examples:\n"
     "  jobq -u lmdb:/var/lib/jobq check\n"},
    {"demo", cli_cmd_demo, "demo [--jobs N] [--concurrency N]",
     "the quick start: a producer and workers on the default store",
     "Adds 5000 jobs to the queue jobq-demo (emptied first), processes them with 4 worker\n"
     "threads while 5% of the jobs fail their first attempt and are retried (3 attempts,\n"
     "exponential backoff from 10 ms), and prints the counts per state, the throughput and\n"
     "the retries. Exits 0 when every job completed. On LMDB the demo syncs every 100 ms\n"
     "(durability=periodic) unless the URL sets its own durability.\n"
     "\n"
     "Options:\n"
     "  --jobs N          jobs to add (default 5000)\n"
     "  --concurrency N   worker threads (default 4)\n"
     "  --json            the summary as one JSON object\n"
     "\n"
     "Examples:\n"
     "  jobq demo\n"
     "  jobq -u mem:// demo\n"
     "  jobq counts jobq-demo\n"},
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

const cli_verb_info *
cli_find_verb(const char *name) {
	for (size_t i = 0; i < NVERBS; i++)
		if (strcmp(verbs[i].name, name) == 0)
			return &verbs[i];
	return NULL;
}

void
cli_verb_help(const cli_verb_info *v) {
	printf("Usage: jobq [-u URL] %s\n\n%s.\n\n%s", v->synopsis, v->summary, v->help);
	printf("\nGlobal options: -u URL (else $JOBQ_URL, else %s), --json, -q (no progress), "
	       "-h\n",
	       CLI_DEFAULT_URL);
}

static void
main_help(FILE *f) {
	fprintf(f, "Usage: jobq [-u URL] [--json] [-q] VERB [ARGS...]\n"
	           "\n"
	           "A job queue over memory, LMDB and Redis (BullMQ-compatible) stores.\n"
	           "\n"
	           "Verbs:\n");
	for (size_t i = 0; i < NVERBS; i++)
		fprintf(f, "  %-13s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(
	    f,
	    "\n"
	    "Options (before or after the verb):\n"
	    "  -u, --url URL   the store: mem://[NAME], lmdb:DIR, lmdb:///ABS/DIR,\n"
	    "                  redis://[user:pass@]host:port[/db][?prefix=bull],\n"
	    "                  redis+unix:///path.sock (default: $JOBQ_URL, else %s)\n"
	    "  --json          print one JSON document (one per line for events --follow)\n"
	    "  -q, --quiet     no progress line\n"
	    "  -h, --help      help; `jobq VERB --help` for a verb\n"
	    "  --version       print the version\n"
	    "\n"
	    "Exit status: 0 success, 1 a job or operation failed, 2 usage error, 3 store\n"
	    "unreachable or unusable, 4 not found, 5 timed out (wait). Under --json, errors\n"
	    "are one JSON object on stderr: {\"error\":{\"code\":EXIT,\"kind\":..,\"verb\":..,\n"
	    "\"message\":..}}.\n"
	    "\n"
	    "Examples:\n"
	    "  jobq add mail send '{\"to\":\"ann@example.com\"}'\n"
	    "  jobq work mail --concurrency 4 -- ./send-mail.sh\n"
	    "  jobq counts mail --json\n"
	    "  jobq -u mem:// demo\n",
	    CLI_DEFAULT_URL);
}

int
cli_want_help(void) {
	const cli_verb_info *v;

	if (!cli_g.help)
		return 0;
	v = cli_find_verb(cli_verb);
	if (v)
		cli_verb_help(v);
	return 1;
}

int
main(int argc, char **argv) {
	int i = 1;
	const cli_verb_info *v;

	signal(SIGPIPE, SIG_IGN);
	cli_verb = "jobq";
	/* Global options before the verb. */
	while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			main_help(stdout);
			return CLI_EXIT_OK;
		} else if (strcmp(a, "--version") == 0) {
			printf("jobq %s\n", jobq_version());
			return CLI_EXIT_OK;
		} else if (strcmp(a, "--json") == 0) {
			cli_g.json = 1;
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			cli_g.quiet = 1;
		} else if (strcmp(a, "-u") == 0 || strcmp(a, "--url") == 0) {
			if (i + 1 >= argc)
				return cli_usage_fail("option %s needs a value (a store URL)", a);
			cli_g.url = argv[++i];
		} else if (strncmp(a, "--url=", 6) == 0) {
			cli_g.url = a + 6;
		} else if (strncmp(a, "-u", 2) == 0) {
			cli_g.url = a + 2;
		} else {
			return cli_usage_fail("unknown option '%s'", a);
		}
		i++;
	}
	if (i >= argc)
		return cli_usage_fail("missing VERB");
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 < argc && (v = cli_find_verb(argv[i + 1])) != NULL) {
			cli_verb_help(v);
			return CLI_EXIT_OK;
		}
		main_help(stdout);
		return CLI_EXIT_OK;
	}
	v = cli_find_verb(argv[i]);
	if (!v)
		return cli_usage_fail("unknown verb '%s'", argv[i]);
	cli_verb = v->name;
	return v->run(argc - i - 1, argv + i + 1);
}
