/**
 * @file
 * jobq — flows: parent jobs that wait for their children (BullMQ's FlowProducer).
 *
 * A flow is a tree of jobs across the queues of one store. A job with children (a parent)
 * waits in the state `waiting-children` until each child has finished; then it moves to
 * waiting, or delayed or prioritized as its options say (event `waiting` with prev
 * `waiting-children`, or `delayed`). Its handler reads the children's results with
 * jobq_queue_get_dependencies (BullMQ's getChildrenValues and getDependencies).
 *
 * What a child's failure for good does to its parent is the child's jobq_parent_policy.
 *
 * Backends: Redis, written as BullMQ 6's FlowProducer writes it (a Node worker runs a flow
 * added by jobq and the other way round), and memory; LMDB answers JOBQ_ENOTSUP for now.
 * Keys of children: on Redis "<prefix>:<queue>:<id>" (BullMQ's), on memory "<queue>:<id>".
 * Thread safety: any thread.
 */
#ifndef JOBQ_FLOW_H
#define JOBQ_FLOW_H

#include "common.h"
#include "job.h"
#include "queue.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Most levels in one flow (a root with children and grandchildren has 3). */
#define JOBQ_FLOW_MAX_DEPTH 100
/** Most jobs in one flow (one atomic step of the store). */
#define JOBQ_FLOW_MAX_JOBS 100000

/** What a child's failure for good does to its parent (BullMQ's four options). */
typedef enum jobq_parent_policy {
	/** None: the parent keeps waiting for the failed child (BullMQ's default). */
	JOBQ_PARENT_WAIT = 0,
	/** failParentOnFailure: the parent fails, reason "child <child key> failed". */
	JOBQ_PARENT_FAIL,
	/** ignoreDependencyOnFailure: the dependency is released and the failure recorded on
	 * the parent (jobq_dependencies.ignored). */
	JOBQ_PARENT_IGNORE,
	/** removeDependencyOnFailure: the dependency is released, nothing recorded. */
	JOBQ_PARENT_REMOVE,
	/** continueParentOnFailure: the failure is recorded (ignored) and the parent runs at
	 * once, whatever its other children are doing. */
	JOBQ_PARENT_CONTINUE
} jobq_parent_policy;

/** One job of a flow and, through `children`, the subtree below it. */
typedef struct jobq_flow_node {
	/** The job's queue in the store; NULL: its parent's queue (the root: the queue passed
	 * to jobq_flow_add). */
	const char *queue;
	const char *name;                      /**< the job's name */
	const void *data;                      /**< its data (JSON text for BullMQ interop) */
	size_t len;                            /**< bytes of data */
	const jobq_job_options *opts;          /**< NULL: defaults; no deduplication in a flow */
	jobq_parent_policy on_failure;         /**< what its failure for good does to its parent */
	const struct jobq_flow_node *children; /**< `nchildren` nodes, or NULL */
	size_t nchildren;                      /**< > 0: the job waits for its children */
} jobq_flow_node;

/** An existing job of the same store that a flow's root becomes a child of. */
typedef struct jobq_flow_parent {
	const char *queue; /**< the parent's queue */
	const char *id;    /**< the parent's id */
} jobq_flow_parent;

/**
 * The number of jobs in the tree under `root` (`root` included), the size of the `ids`
 * array jobq_flow_add fills; 0 when `root` is NULL.
 */
JOBQ_EXTERN size_t jobq_flow_count(const jobq_flow_node *root);

/**
 * Adds the flow `root` in one atomic step: every job or, on any error, none. The root goes
 * into queue `q` (root->queue NULL or q's name), the other nodes into their `queue` (NULL:
 * their parent's). Each job with children starts in `waiting-children`; the others as any
 * add places them (waiting, delayed, prioritized). With `parent` non-NULL, the root becomes
 * a new child of that existing job (its own on_failure applies): this also adds one child
 * to an existing parent.
 *
 * `ids` (optional; jobq_flow_count(root) entries) gets each job's id in pre-order: the root,
 * then each child's subtree in order.
 *
 * Ids: generated ones as any add; a custom id (opts->job_id) that exists already is, for a
 * job without children, attached to its new parent as BullMQ does (its result counted if it
 * completed), unless it belongs to another parent that still exists.
 *
 * Errors (nothing is added): JOBQ_EINVAL for bad input, naming the node (its pre-order
 * number and name): an invalid name, data or option, deduplication, a repeated custom id
 * (the same queue and id twice in the flow, or the parent's own), a tree deeper than
 * JOBQ_FLOW_MAX_DEPTH or larger than JOBQ_FLOW_MAX_JOBS; JOBQ_ENOTFOUND when `parent` does
 * not exist; JOBQ_EEXISTS for a custom id that exists and has children in the flow, or that
 * belongs to another live parent (BullMQ's -7); JOBQ_ENOTSUP on a backend without flows.
 * Thread safety: any thread.
 */
JOBQ_EXTERN int jobq_flow_add(jobq_job_id *ids, jobq_queue *q, const jobq_flow_node *root,
                              const jobq_flow_parent *parent);

/** One child of a parent, in jobq_dependencies. */
typedef struct jobq_dependency {
	/** BullMQ's key of the child, the name getChildrenValues uses: on Redis
	 * "<prefix>:<queue>:<id>", elsewhere "<queue>:<id>". */
	char *key;
	char *queue; /**< the child's queue (NULL when the key cannot be read as one) */
	char *id;    /**< the child's id */
	/** processed: the child's result (JSON text); ignored: its failure reason; else NULL. */
	char *value;
} jobq_dependency;

/** A parent's children by what became of them (BullMQ's getDependencies). */
typedef struct jobq_dependencies {
	size_t nprocessed;          /**< completed children */
	jobq_dependency *processed; /**< with their results: BullMQ's getChildrenValues */
	size_t npending;            /**< children not finished yet (BullMQ's unprocessed) */
	jobq_dependency *pending;   /**< the pending children */
	size_t nignored;            /**< failed children whose failure was ignored or continued */
	jobq_dependency *ignored;   /**< with their failure reasons */
	size_t nfailed;             /**< failed children with JOBQ_PARENT_FAIL (BullMQ's failed) */
	jobq_dependency *failed;    /**< the failed children */
} jobq_dependencies;

/**
 * Reads the dependencies of job `id` of `q` (all empty for a job without children).
 * JOBQ_ENOTFOUND if there is no such job. Free with jobq_dependencies_free().
 * Thread safety: any thread.
 */
JOBQ_EXTERN int jobq_queue_get_dependencies(jobq_dependencies **out, jobq_queue *q, const char *id);
/** Frees what jobq_queue_get_dependencies returned. NULL is a no-op. */
JOBQ_EXTERN void jobq_dependencies_free(jobq_dependencies *deps);

#ifdef __cplusplus
}
#endif
#endif
