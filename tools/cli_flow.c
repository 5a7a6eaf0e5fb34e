/*
 * jobq command — flows: `jobq flow` adds a tree of jobs from a JSON description in BullMQ's
 * FlowProducer shape, and the dependencies `jobq get` shows for a parent.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* One node of the description with what its jobq_flow_node borrows. */
typedef struct flow_build {
	jobq_flow_node *nodes;  /* every node, pre-order; nodes[0] is the root */
	jobq_job_options *opts; /* per node */
	char **data;            /* per node: the data as JSON text */
	const json_t **src;     /* per node: its description */
	size_t n, cap;
	jobq_flow_parent parent;
	int has_parent;
	char err[512];
} flow_build;

/* Words the error about node `i` (1-based in messages, pre-order); returns -1. */
static int bad(flow_build *b, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int
bad(flow_build *b, size_t i, const char *fmt, ...) {
	snprintf(b->err, sizeof(b->err), "node %zu: ", i + 1);
	size_t l = strlen(b->err);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->err + l, sizeof(b->err) - l, fmt, ap);
	va_end(ap);
	return -1;
}

static int
opt_int(flow_build *b, size_t i, const json_t *v, const char *key, int64_t min, int64_t max,
        int64_t *out) {
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return bad(b, i, "opts.%s must be an integer in range", key);
	*out = (int64_t)json_integer_value(v);
	return 0;
}

/* A keep policy: true (remove), false (keep all), a count, or {count, age} (age in s). */
static int
opt_keep(flow_build *b, size_t i, const json_t *v, const char *key, jobq_keep *k) {
	if (json_is_boolean(v)) {
		k->mode = json_is_true(v) ? JOBQ_KEEP_NONE : JOBQ_KEEP_ALL;
		return 0;
	}
	int64_t n = 0;
	if (json_is_integer(v)) {
		if (opt_int(b, i, v, key, 0, INT32_MAX, &n) < 0)
			return -1;
		k->mode = n == 0 ? JOBQ_KEEP_NONE : JOBQ_KEEP_LIMIT;
		k->count = n;
		k->age_ms = -1;
		return 0;
	}
	const json_t *count = json_object_get(v, "count"), *age = json_object_get(v, "age");
	if (!json_is_object(v) || (count && !json_is_integer(count)) ||
	    (age && !json_is_integer(age)))
		return bad(b, i, "opts.%s must be a boolean, a count or {count, age}", key);
	k->mode = JOBQ_KEEP_LIMIT;
	k->count = count ? (int64_t)json_integer_value(count) : -1;
	k->age_ms = age ? (int64_t)json_integer_value(age) * 1000 : -1;
	return 0;
}

static int
opt_backoff(flow_build *b, size_t i, const json_t *v, jobq_backoff *bo) {
	if (json_is_integer(v)) {
		bo->type = JOBQ_BACKOFF_FIXED;
		bo->delay_ms = (int64_t)json_integer_value(v);
		return 0;
	}
	const char *type = json_string_value(json_object_get(v, "type"));
	const json_t *delay = json_object_get(v, "delay");
	if (type == NULL || (delay != NULL && !json_is_integer(delay)))
		return bad(b, i, "opts.%s must be a number or {type, delay}", "backoff");
	if (strcmp(type, "fixed") == 0)
		bo->type = JOBQ_BACKOFF_FIXED;
	else if (strcmp(type, "exponential") == 0)
		bo->type = JOBQ_BACKOFF_EXPONENTIAL;
	else
		return bad(b, i, "opts.backoff.type '%s' is not fixed or exponential", type);
	bo->delay_ms = delay ? (int64_t)json_integer_value(delay) : 0;
	return 0;
}

/* The queue of a BullMQ `parent.queue` ("<prefix>:<queue>") or a plain queue name. */
static const char *
queue_of(const char *q) {
	const char *colon = strrchr(q, ':');
	return colon ? colon + 1 : q;
}

static int
node_opts(flow_build *b, size_t i, json_t *opts) {
	jobq_job_options *o = &b->opts[i];
	jobq_job_options_init(o, JOBQ_JOB_OPTIONS_VERSION);
	if (opts == NULL)
		return 0;
	if (!json_is_object(opts))
		return bad(b, i, "%s must be an object", "opts");
	static const struct {
		const char *key;
		jobq_parent_policy policy;
	} policies[] = {{"failParentOnFailure", JOBQ_PARENT_FAIL},
	                {"ignoreDependencyOnFailure", JOBQ_PARENT_IGNORE},
	                {"removeDependencyOnFailure", JOBQ_PARENT_REMOVE},
	                {"continueParentOnFailure", JOBQ_PARENT_CONTINUE}};
	const char *key;
	json_t *v;
	json_object_foreach(opts, key, v) {
		int64_t n = 0;
		size_t p = 0;
		while (p < 4 && strcmp(key, policies[p].key) != 0)
			p++;
		if (p < 4) {
			if (json_is_true(v)) {
				if (b->nodes[i].on_failure != JOBQ_PARENT_WAIT)
					return bad(b, i, "opts.%s: only one failure policy per job",
					           key);
				b->nodes[i].on_failure = policies[p].policy;
			}
		} else if (strcmp(key, "jobId") == 0) {
			if ((o->job_id = json_string_value(v)) == NULL)
				return bad(b, i, "opts.%s must be a string", key);
		} else if (strcmp(key, "delay") == 0) {
			if (opt_int(b, i, v, key, 0, JOBQ_TIME_MAX_MS, &o->delay_ms) < 0)
				return -1;
		} else if (strcmp(key, "priority") == 0) {
			if (opt_int(b, i, v, key, 0, JOBQ_PRIORITY_MAX, &n) < 0)
				return -1;
			o->priority = (uint32_t)n;
		} else if (strcmp(key, "attempts") == 0) {
			if (opt_int(b, i, v, key, 0, INT32_MAX, &n) < 0)
				return -1;
			o->attempts = (uint32_t)n;
		} else if (strcmp(key, "lifo") == 0) {
			o->lifo = json_is_true(v);
		} else if (strcmp(key, "backoff") == 0) {
			if (opt_backoff(b, i, v, &o->backoff) < 0)
				return -1;
		} else if (strcmp(key, "removeOnComplete") == 0) {
			if (opt_keep(b, i, v, key, &o->remove_on_complete) < 0)
				return -1;
		} else if (strcmp(key, "removeOnFail") == 0) {
			if (opt_keep(b, i, v, key, &o->remove_on_fail) < 0)
				return -1;
		} else if (strcmp(key, "parent") == 0 && i == 0) {
			b->parent.id = json_string_value(json_object_get(v, "id"));
			b->parent.queue = json_string_value(json_object_get(v, "queue"));
			if (b->parent.id == NULL || b->parent.queue == NULL)
				return bad(b, i, "opts.%s must be {\"id\": ..., \"queue\": ...}",
				           key);
			b->parent.queue = queue_of(b->parent.queue);
			b->has_parent = 1;
		} else {
			return bad(b, i, "unknown option opts.%s", key);
		}
	}
	return 0;
}

/* Appends node `d` (and its subtree); children of one node take consecutive slots. */
static int
collect(flow_build *b, const json_t *d, size_t depth) {
	size_t i = b->n;
	if (!json_is_object(d))
		return bad(b, i, "%s must be an object", "a node");
	if (depth > JOBQ_FLOW_MAX_DEPTH)
		return bad(b, i, "%s is deeper than the limit", "the tree");
	if (b->n == b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 16;
		if (nc > JOBQ_FLOW_MAX_JOBS + 1)
			nc = JOBQ_FLOW_MAX_JOBS + 1;
		if (b->n == nc)
			return bad(b, i, "%s has more jobs than the limit", "the flow");
		b->src = realloc(b->src, nc * sizeof(*b->src));
		b->cap = nc;
		if (b->src == NULL)
			return bad(b, i, "%s", "out of memory");
	}
	b->src[b->n++] = d;
	const json_t *kids = json_object_get(d, "children");
	if (kids != NULL && !json_is_array(kids))
		return bad(b, i, "%s must be an array", "children");
	for (size_t k = 0; kids && k < json_array_size(kids); k++)
		if (collect(b, json_array_get(kids, k), depth + 1) < 0)
			return -1;
	return 0;
}

/* Fills node `i` from its description (its children pointer is set by layout). */
static int
fill(flow_build *b, size_t i) {
	const json_t *d = b->src[i];
	jobq_flow_node *nd = &b->nodes[i];
	const json_t *name = json_object_get(d, "name"), *queue = json_object_get(d, "queueName");
	if (!json_is_string(name))
		return bad(b, i, "%s must be a string", "name");
	if (queue != NULL && !json_is_string(queue))
		return bad(b, i, "%s must be a string", "queueName");
	nd->name = json_string_value(name);
	nd->queue = json_string_value(queue);
	const json_t *data = json_object_get(d, "data");
	b->data[i] = data ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
	if (b->data[i] == NULL)
		return bad(b, i, "%s", "data cannot be encoded");
	nd->data = b->data[i];
	nd->len = strlen(b->data[i]);
	if (node_opts(b, i, json_object_get(d, "opts")) < 0)
		return -1;
	nd->opts = &b->opts[i];
	const json_t *kids = json_object_get(d, "children");
	nd->nchildren = kids ? json_array_size(kids) : 0;
	return 0;
}

static void
build_free(flow_build *b) {
	for (size_t i = 0; b->data && i < b->n; i++)
		free(b->data[i]);
	free(b->data);
	free(b->opts);
	free(b->nodes);
	free(b->src);
}

/*
 * jobq_flow_node wants the children of a node in one array; the descriptions come in
 * pre-order. Lay the nodes out breadth-first: the root, then each node's children in a block.
 */
static int
layout(flow_build *b) {
	b->nodes = calloc(b->n, sizeof(*b->nodes));
	b->opts = calloc(b->n, sizeof(*b->opts));
	b->data = calloc(b->n, sizeof(*b->data));
	const json_t **pre = b->src;
	const json_t **slot = calloc(b->n, sizeof(*slot));
	if (b->nodes == NULL || b->opts == NULL || b->data == NULL || slot == NULL) {
		free(slot);
		return bad(b, 0, "%s", "out of memory");
	}
	/* slots in breadth-first order; the children of the node in slot s get a block */
	size_t used = 1;
	slot[0] = pre[0];
	for (size_t s = 0; s < b->n; s++) {
		const json_t *kids = json_object_get(slot[s], "children");
		for (size_t k = 0; kids && k < json_array_size(kids); k++)
			slot[used++] = json_array_get(kids, k);
	}
	b->src = slot;
	for (size_t s = 0; s < b->n; s++) {
		if (fill(b, s) < 0) {
			free((void *)pre);
			return -1;
		}
	}
	/* children pointers: the block of slot s starts after the blocks of slots before it */
	size_t at = 1;
	for (size_t s = 0; s < b->n; s++) {
		b->nodes[s].children = b->nodes[s].nchildren ? &b->nodes[at] : NULL;
		at += b->nodes[s].nchildren;
	}
	free((void *)pre);
	return 0;
}

/* The tree with ids, as FlowProducer.add returns it: {job: {id, name, queueName}, children}. */
static json_t *
tree_json(const jobq_flow_node *nd, const char *queue, const jobq_job_id *ids, size_t *k) {
	json_t *job = json_object(), *o = json_object();
	const char *q = nd->queue ? nd->queue : queue;
	json_object_set_new(job, "id", json_string(ids[(*k)++].str));
	json_object_set_new(job, "name", json_string(nd->name));
	json_object_set_new(job, "queueName", json_string(q));
	json_object_set_new(o, "job", job);
	if (nd->nchildren > 0) {
		json_t *kids = json_array();
		for (size_t c = 0; c < nd->nchildren; c++)
			json_array_append_new(kids, tree_json(&nd->children[c], q, ids, k));
		json_object_set_new(o, "children", kids);
	}
	return o;
}

static void
tree_text(const jobq_flow_node *nd, const char *queue, const jobq_job_id *ids, size_t *k,
          int depth) {
	const char *q = nd->queue ? nd->queue : queue;
	printf("%*s%s\t%s\t%s\n", depth * 2, "", q, ids[(*k)++].str, nd->name);
	for (size_t c = 0; c < nd->nchildren; c++)
		tree_text(&nd->children[c], q, ids, k, depth + 1);
}

int
cli_cmd_flow(int argc, char **argv) {
	const cli_opt opts[] = {{NULL, 0, CLI_OPT_FLAG, NULL, 0, 0, 0, NULL}};
	cli_args a;
	int rc;
	if ((rc = cli_parse(&a, argc, argv, opts, 1, 0)) != 0)
		return rc;
	if (cli_want_help())
		return 0;
	const char *file = a.npos > 0 ? a.pos[0] : "-";
	json_error_t jerr;
	json_t *desc =
	    strcmp(file, "-") == 0 ? json_loadf(stdin, 0, &jerr) : json_load_file(file, 0, &jerr);
	if (desc == NULL)
		return cli_fail(CLI_EXIT_USAGE, "%s: line %d: %s",
		                strcmp(file, "-") == 0 ? "standard input" : file, jerr.line,
		                jerr.text);
	flow_build b;
	memset(&b, 0, sizeof(b));
	jobq_job_id *ids = NULL;
	const char *root_queue = json_string_value(json_object_get(desc, "queueName"));
	if (collect(&b, desc, 1) < 0 || layout(&b) < 0) {
		rc = cli_fail(CLI_EXIT_USAGE, "%s", b.err[0] ? b.err : "out of memory");
	} else if (root_queue == NULL) {
		rc = cli_fail(CLI_EXIT_USAGE, "the root needs a queueName");
	} else {
		jobq_store *store;
		jobq_queue *q;
		if ((rc = cli_open_queue(&store, &q, root_queue)) != 0)
			goto out;
		size_t n = jobq_flow_count(&b.nodes[0]);
		ids = calloc(n ? n : 1, sizeof(*ids));
		rc = ids ? jobq_flow_add(ids, q, &b.nodes[0], b.has_parent ? &b.parent : NULL)
		         : JOBQ_ENOMEM;
		if (rc < 0) {
			rc = cli_lib_fail(rc, "cannot add the flow");
		} else {
			size_t k = 0;
			if (cli_g.json)
				rc = cli_print_json(tree_json(&b.nodes[0], root_queue, ids, &k));
			else
				tree_text(&b.nodes[0], root_queue, ids, &k, 0);
		}
		cli_close(store, q);
	}
out:
	free(ids);
	build_free(&b);
	json_decref(desc);
	return rc;
}

/* --- a parent's dependencies in `jobq get` --------------------------------------------------- */

static json_t *
deps_object(const jobq_dependency *d, size_t n, int parse) {
	json_t *o = json_object();
	for (size_t i = 0; i < n; i++) {
		const char *v = d[i].value ? d[i].value : "null";
		json_t *val = parse ? cli_json_parse(v, strlen(v)) : cli_json_string(v, strlen(v));
		json_object_set_new(o, d[i].key, val ? val : json_null());
	}
	return o;
}

static json_t *
deps_array(const jobq_dependency *d, size_t n) {
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(d[i].key));
	return a;
}

int
cli_flow_deps_json(json_t *job_json, jobq_queue *q, const char *id) {
	jobq_dependencies *d = NULL;
	if (jobq_queue_get_dependencies(&d, q, id) < 0)
		return 0; /* a backend without flows, or the job went: nothing to show */
	if (d->nprocessed + d->npending + d->nignored + d->nfailed > 0) {
		json_t *deps = json_object();
		json_object_set_new(deps, "processed", deps_object(d->processed, d->nprocessed, 1));
		json_object_set_new(deps, "unprocessed", deps_array(d->pending, d->npending));
		json_object_set_new(deps, "ignored", deps_object(d->ignored, d->nignored, 0));
		json_object_set_new(deps, "failed", deps_array(d->failed, d->nfailed));
		json_object_set_new(job_json, "dependencies", deps);
		json_object_set_new(job_json, "childrenValues",
		                    deps_object(d->processed, d->nprocessed, 1));
	}
	jobq_dependencies_free(d);
	return 0;
}

void
cli_flow_deps_text(jobq_queue *q, const char *id) {
	jobq_dependencies *d = NULL;
	if (jobq_queue_get_dependencies(&d, q, id) < 0)
		return;
	if (d->nprocessed + d->npending + d->nignored + d->nfailed > 0) {
		printf("children:     %zu pending, %zu processed, %zu ignored, %zu failed\n",
		       d->npending, d->nprocessed, d->nignored, d->nfailed);
		for (size_t i = 0; i < d->npending; i++)
			printf("  pending     %s\n", d->pending[i].key);
		for (size_t i = 0; i < d->nprocessed; i++)
			printf("  processed   %s = %s\n", d->processed[i].key,
			       d->processed[i].value);
		for (size_t i = 0; i < d->nignored; i++)
			printf("  ignored     %s: %s\n", d->ignored[i].key, d->ignored[i].value);
		for (size_t i = 0; i < d->nfailed; i++)
			printf("  failed      %s\n", d->failed[i].key);
	}
	jobq_dependencies_free(d);
}
