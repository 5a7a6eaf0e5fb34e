/*
 * Flows (include/jobq/flow.h): the tree is checked and flattened here, once for every backend;
 * the backend's flow_add slot adds it in one step.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define BACKEND(q) ((q)->store->backend)
/* Slots of version 5: a backend written for an older version has no such fields. */
#define HAS_FLOWS(b) ((b)->version >= 5 && (b)->flow_add != NULL && (b)->dependencies != NULL)

/* Counts down to one level past the limit: a deeper tree is refused anyway. */
static size_t
count_at(const jobq_flow_node *node, size_t depth) {
	size_t n = 1;
	if (depth > JOBQ_FLOW_MAX_DEPTH || node->children == NULL)
		return n;
	for (size_t i = 0; i < node->nchildren && n <= JOBQ_FLOW_MAX_JOBS; i++)
		n += count_at(&node->children[i], depth + 1);
	return n;
}

size_t
jobq_flow_count(const jobq_flow_node *root) {
	return root == NULL ? 0 : count_at(root, 1);
}

typedef struct flattening {
	jobq_queue *q;
	jobq_flow_job *jobs;
	jobq_job_options *opts;
	size_t n, cap;
	int64_t now;
} flattening;

/* "flow node 3 ('resize')": how messages name a node (1-based, pre-order). */
static int node_error(int rc, size_t i, const jobq_flow_node *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
node_error(int rc, size_t i, const jobq_flow_node *node, const char *fmt, ...) {
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	const char *name = node->name ? node->name : "";
	return jobq_error_set(rc, "flow add: node %zu ('%.60s%s'): %s", i + 1, name,
	                      strlen(name) > 60 ? "..." : "", what);
}

static int
flatten(flattening *f, const jobq_flow_node *node, size_t parent, const char *parent_queue,
        size_t depth) {
	size_t i = f->n;
	if (depth > JOBQ_FLOW_MAX_DEPTH)
		return node_error(JOBQ_EINVAL, i, node, "the tree is deeper than %d levels",
		                  JOBQ_FLOW_MAX_DEPTH);
	if (i >= f->cap)
		return jobq_error_set(JOBQ_EINVAL, "flow add: more than %d jobs in one flow",
		                      JOBQ_FLOW_MAX_JOBS);
	const char *queue = node->queue ? node->queue : parent_queue;
	int rc = jobq__validate_queue_name(queue);
	if (rc < 0)
		return node_error(rc, i, node, "%s", jobq_error_message());
	if (node->nchildren > 0 && node->children == NULL)
		return node_error(JOBQ_EINVAL, i, node, "%zu children but children is NULL",
		                  node->nchildren);
	if ((unsigned)node->on_failure > JOBQ_PARENT_CONTINUE)
		return node_error(JOBQ_EINVAL, i, node, "unknown on_failure policy %d",
		                  (int)node->on_failure);
	jobq_job_spec spec = {node->name, node->data, node->len, node->opts};
	if ((rc = jobq_queue__prepare_add(&f->opts[i], f->q, &spec, f->now)) < 0)
		return node_error(rc, i, node, "%s", jobq_error_message());
	if (f->opts[i].dedup_id != NULL)
		return node_error(JOBQ_EINVAL, i, node,
		                  "deduplication cannot be used in a flow (BullMQ refuses it too)");
	f->jobs[i] = (jobq_flow_job){queue,
	                             {node->name, node->data, node->len, &f->opts[i]},
	                             parent,
	                             node->nchildren,
	                             node->on_failure};
	f->n++;
	for (size_t c = 0; c < node->nchildren; c++)
		if ((rc = flatten(f, &node->children[c], i, queue, depth + 1)) < 0)
			return rc;
	return 0;
}

/* Orders the jobs with custom ids by queue, then id. */
static const jobq_flow_job *sort_base;
static int
by_queue_id(const void *a, const void *b) {
	const jobq_flow_job *x = &sort_base[*(const size_t *)a],
	                    *y = &sort_base[*(const size_t *)b];
	int c = strcmp(x->queue, y->queue);
	return c != 0 ? c : strcmp(x->req.opts->job_id, y->req.opts->job_id);
}

static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;

/* No custom id twice in one queue of the flow, and none equal to the parent's (a cycle). */
static int
check_ids(const jobq_flow_job *jobs, size_t n, const jobq_flow_parent *parent) {
	size_t *idx = jobq__malloc((n ? n : 1) * sizeof(*idx));
	if (idx == NULL)
		return JOBQ_ENOMEM;
	size_t m = 0;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *id = jobs[i].req.opts->job_id;
		if (id == NULL)
			continue;
		idx[m++] = i;
		if (parent != NULL && strcmp(id, parent->id) == 0 &&
		    strcmp(jobs[i].queue, parent->queue) == 0)
			rc = jobq_error_set(
			    JOBQ_EINVAL,
			    "flow add: node %zu has the id of the parent it is added "
			    "under ('%s' in queue '%s'): a cycle",
			    i + 1, id, parent->queue);
	}
	if (rc == 0 && m > 1) {
		pthread_mutex_lock(&sort_mu);
		sort_base = jobs;
		qsort(idx, m, sizeof(*idx), by_queue_id);
		pthread_mutex_unlock(&sort_mu);
		for (size_t k = 1; k < m && rc == 0; k++) {
			const jobq_flow_job *a = &jobs[idx[k - 1]], *b = &jobs[idx[k]];
			if (strcmp(a->queue, b->queue) == 0 &&
			    strcmp(a->req.opts->job_id, b->req.opts->job_id) == 0) {
				size_t i = idx[k - 1] < idx[k] ? idx[k - 1] : idx[k];
				size_t j = idx[k - 1] < idx[k] ? idx[k] : idx[k - 1];
				rc = jobq_error_set(
				    JOBQ_EINVAL,
				    "flow add: nodes %zu and %zu have the same id '%s' in "
				    "queue '%s' (a job appears once in a flow)",
				    i + 1, j + 1, a->req.opts->job_id, a->queue);
			}
		}
	}
	jobq__free(idx);
	return rc;
}

static int
check_parent(const jobq_queue *q, const jobq_flow_parent *parent) {
	if (parent == NULL)
		return 0;
	if (parent->queue == NULL || parent->id == NULL)
		return jobq_error_set(JOBQ_EINVAL, "flow add: the parent needs a queue and an id");
	int rc = jobq__validate_queue_name(parent->queue);
	if (rc < 0)
		return jobq_error_set(rc, "flow add: parent: %s", jobq_error_message());
	if ((rc = jobq_queue__check_id(q, parent->id, "flow add: parent")) < 0)
		return rc == JOBQ_ENOTFOUND
		           ? jobq_error_set(rc,
		                            "flow add: the parent job '%s' of queue '%s' does "
		                            "not exist",
		                            parent->id, parent->queue)
		           : rc;
	return 0;
}

int
jobq_flow_add(jobq_job_id *ids, jobq_queue *q, const jobq_flow_node *root,
              const jobq_flow_parent *parent) {
	int rc = jobq_queue__check(q, "flow add");
	if (rc < 0)
		return rc;
	if (root == NULL)
		return jobq_error_set(JOBQ_EINVAL, "flow add: the root node is NULL");
	if (root->queue != NULL && strcmp(root->queue, q->name) != 0)
		return jobq_error_set(
		    JOBQ_EINVAL,
		    "flow add: the root's queue '%s' is not the queue '%s' the flow "
		    "is added to",
		    root->queue, q->name);
	if (!HAS_FLOWS(BACKEND(q)))
		return jobq_error_set(JOBQ_ENOTSUP, "flow add: the %s backend has no flows yet",
		                      BACKEND(q)->name);
	if ((rc = check_parent(q, parent)) < 0)
		return rc;
	size_t n = jobq_flow_count(root);
	size_t cap = n > JOBQ_FLOW_MAX_JOBS ? JOBQ_FLOW_MAX_JOBS : n;
	flattening f = {q,
	                jobq__calloc(cap, sizeof(jobq_flow_job)),
	                jobq__calloc(cap, sizeof(jobq_job_options)),
	                0,
	                cap,
	                jobq_queue__now(q)};
	jobq_job_id *out = ids ? ids : jobq__malloc(cap * sizeof(*out));
	if (f.jobs == NULL || f.opts == NULL || out == NULL)
		rc = JOBQ_ENOMEM;
	else if ((rc = flatten(&f, root, SIZE_MAX, q->name, 1)) == 0 &&
	         (rc = check_ids(f.jobs, f.n, parent)) == 0)
		rc = BACKEND(q)->flow_add(out, q->bq, f.jobs, f.n, parent, f.now);
	if (out != ids)
		jobq__free(out);
	jobq__free(f.jobs);
	jobq__free(f.opts);
	return rc < 0 ? rc : 0;
}

/* --- dependencies ---------------------------------------------------------------------- */

/* The public struct and the capacity of each of its four arrays. */
typedef struct deps_impl {
	jobq_dependencies pub;
	size_t cap[4];
} deps_impl;

int
jobq_dependencies__append(jobq_dependencies *d, int which, const char *key, const char *queue,
                          const char *id, const char *value, size_t value_len) {
	deps_impl *impl = (deps_impl *)d;
	jobq_dependency **arr[4] = {&d->processed, &d->pending, &d->ignored, &d->failed};
	size_t *count[4] = {&d->nprocessed, &d->npending, &d->nignored, &d->nfailed};
	if (which < 0 || which > 3)
		return jobq_error_set(JOBQ_EINVAL, "dependencies: unknown kind %d", which);
	if (*count[which] == impl->cap[which]) {
		size_t nc = impl->cap[which] ? impl->cap[which] * 2 : 8;
		jobq_dependency *na = jobq__realloc(*arr[which], nc * sizeof(*na));
		if (na == NULL)
			return JOBQ_ENOMEM;
		*arr[which] = na;
		impl->cap[which] = nc;
	}
	jobq_dependency *e = &(*arr[which])[*count[which]];
	*e = (jobq_dependency){jobq__strdup(key), queue ? jobq__strdup(queue) : NULL,
	                       id ? jobq__strdup(id) : NULL, NULL};
	if (value != NULL) {
		e->value = jobq__malloc(value_len + 1);
		if (e->value != NULL) {
			memcpy(e->value, value, value_len);
			e->value[value_len] = '\0';
		}
	}
	(*count[which])++;
	if (e->key == NULL || (queue && e->queue == NULL) || (id && e->id == NULL) ||
	    (value && e->value == NULL))
		return JOBQ_ENOMEM;
	return 0;
}

static void
deps_free_array(jobq_dependency *a, size_t n) {
	for (size_t i = 0; i < n; i++) {
		jobq__free(a[i].key);
		jobq__free(a[i].queue);
		jobq__free(a[i].id);
		jobq__free(a[i].value);
	}
	jobq__free(a);
}

void
jobq_dependencies_free(jobq_dependencies *d) {
	if (d == NULL)
		return;
	deps_free_array(d->processed, d->nprocessed);
	deps_free_array(d->pending, d->npending);
	deps_free_array(d->ignored, d->nignored);
	deps_free_array(d->failed, d->nfailed);
	jobq__free(d);
}

int
jobq_queue_get_dependencies(jobq_dependencies **out, jobq_queue *q, const char *id) {
	if (out != NULL)
		*out = NULL;
	int rc = jobq_queue__check(q, "get dependencies");
	if (rc < 0 || (rc = jobq_queue__check_id(q, id, "get dependencies")) < 0)
		return rc;
	if (out == NULL)
		return jobq_error_set(JOBQ_EINVAL, "get dependencies: out is NULL");
	if (!HAS_FLOWS(BACKEND(q)))
		return jobq_error_set(JOBQ_ENOTSUP,
		                      "get dependencies: the %s backend has no flows yet",
		                      BACKEND(q)->name);
	deps_impl *d = jobq__calloc(1, sizeof(*d));
	if (d == NULL)
		return JOBQ_ENOMEM;
	if ((rc = BACKEND(q)->dependencies(&d->pub, q->bq, id)) < 0) {
		jobq_dependencies_free(&d->pub);
		return rc;
	}
	*out = &d->pub;
	return 0;
}
