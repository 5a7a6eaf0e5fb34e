/**
 * @file
 * jobq — a job-queue engine. Include only this header.
 *
 * Threading: a jobq_store and a jobq_queue may be used from any number of threads at once; a
 * jobq_job only inside the process callback that received it (or by the thread that fetched
 * it in manual mode); error messages (jobq_error_message) are per thread.
 */
#ifndef JOBQ_H
#define JOBQ_H

#include "jobq/common.h"
#include "jobq/errors.h"
#include "jobq/clock.h"
#include "jobq/job.h"
#include "jobq/queue.h"
#include "jobq/worker.h"
#include "jobq/scheduler.h"
#include "jobq/limits.h"
#include "jobq/events.h"
#include "jobq/backends.h"
#include "jobq/log.h"
#include "jobq/metrics.h"
#include "jobq/flow.h"

#endif
