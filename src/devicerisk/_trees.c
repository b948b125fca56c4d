/*
 * One pass over a gradient-boosted ensemble for many rows: each row's raw output (the margin), its
 * tree-path (Saabas) contributions per feature, and the features that raised it most, for scores and
 * reasons at once.
 *
 * For each row and each tree, the row's path from the root to its leaf is walked; at every split the
 * change in the node's expected value (child minus parent) is added to the split feature's
 * contribution, and the leaf's value to the margin. The margin starts at the baseline and adds the
 * trees' leaves in tree order, as HistGradientBoosting's own prediction does, so it is the same number;
 * the contributions plus the roots' expected values add up to it. The routing is HistGradientBoosting's:
 * a missing value follows ``missing_left``, any other goes left when ``x <= threshold``.
 *
 * Speed: each node is packed into one record (one cache line per step instead of one per array), and a
 * leaf becomes a node that routes to itself and credits nothing, so BLOCK rows walk a tree side by side
 * for the tree's depth with no branch on the data: their independent steps overlap in the CPU, where a
 * data-dependent branch would be mispredicted at about every other split. A block's values and
 * contributions are laid out feature-major, so a lane's cell is the split's offset plus the lane; a
 * missing value is resolved by which copy of the values a split reads (see run()). Large batches split
 * their rows between threads.
 *
 * It is an accelerator only: reasons.py computes the same numbers in numpy when this module is not
 * built, and the tests hold both to each other and to the model's own decision function.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define BLOCK 8
#define MAX_THREADS 16
#define MAX_TOP 64

typedef struct {
    double threshold;  /* at a leaf: the leaf's value */
    double delta[2];   /* expected value of the left / right child minus this node's (0 at a leaf) */
    int32_t child[2];  /* left, right, as byte offsets into the node array; at a leaf: itself */
    int32_t x_at;      /* where the block's values of the split feature are (see run()) */
    int32_t credit_at; /* where the block's contributions of the split feature are */
} Node;

typedef struct {
    const double *X;
    Py_ssize_t k;
    const Node *nodes;
    const int64_t *roots;
    const int32_t *depth; /* per tree: the longest path's number of splits */
    Py_ssize_t trees;
    double baseline;
    double *margin;  /* n */
    double *contrib; /* n*k, or NULL: only the chosen features are wanted */
    int64_t *chosen; /* n*top, or NULL */
    int top;
    double minimum;
    Py_ssize_t start, stop;
} Job;

/* One split for lane b: a comparison and a credit, no branch. */
static inline void step(const char *nodes, int32_t *at, const double *xs, double *os, int b) {
    const Node *nd = (const Node *)(nodes + *at);
    const int right = !((xs + b)[nd->x_at] <= nd->threshold);
    (os + b)[nd->credit_at] += nd->delta[right];
    *at = nd->child[right];
}

/* The row's ``top`` features of largest contribution at least ``minimum`` (a missing value's counts as 0),
 * largest first, ties to the lower index; -1 after the last. ``o`` holds feature f's at o[f * stride]. */
static void choose(const double *x, const double *o, Py_ssize_t stride, Py_ssize_t k, int top, double minimum,
                   int64_t *out) {
    double best[MAX_TOP];
    int found = 0;
    for (Py_ssize_t f = 0; f < k; f++) {
        const double c = isnan(x[f]) ? 0.0 : o[f * stride];
        if (!(c >= minimum) || (found == top && !(c > best[top - 1])))
            continue;
        int at = found < top ? found++ : top - 1;
        for (; at > 0 && c > best[at - 1]; at--) {
            best[at] = best[at - 1];
            out[at] = out[at - 1];
        }
        best[at] = c;
        out[at] = f;
    }
    for (int r = found; r < top; r++) out[r] = -1;
}

/* Rows in blocks of BLOCK lanes. A block's values are laid out feature-major, twice: xs[f * BLOCK + b] with
 * a missing value as -inf (it goes left at every split: -inf <= any threshold), then xs[(k + f) * BLOCK + b]
 * as it is (NaN goes right: NaN <= x is false); a split that sends missing values left reads the first
 * copy, any other the second. Its contributions are feature-major too: os[f * BLOCK + b]. */
static void *run(void *arg) {
    const Job *j = (const Job *)arg;
    const char *nodes = (const char *)j->nodes;
    const Py_ssize_t k = j->k;
    double *xs = malloc(sizeof(double) * BLOCK * 3 * (size_t)k), *os = xs + 2 * BLOCK * k;
    if (xs == NULL)
        return (void *)1;
    for (Py_ssize_t i0 = j->start; i0 < j->stop; i0 += BLOCK) {
        const int b_n = (int)(j->stop - i0 < BLOCK ? j->stop - i0 : BLOCK);
        const double *x = j->X + i0 * k;
        double m[BLOCK];
        for (int b = 0; b < BLOCK; b++) {
            m[b] = j->baseline;
            for (Py_ssize_t f = 0; f < k; f++) {
                const double v = b < b_n ? x[b * k + f] : 0.0; /* lanes past the last row walk zeros */
                xs[f * BLOCK + b] = isnan(v) ? -INFINITY : v;
                xs[(k + f) * BLOCK + b] = v;
                os[f * BLOCK + b] = 0.0;
            }
        }
        for (Py_ssize_t t = 0; t < j->trees; t++) {
            int32_t at[BLOCK];
            for (int b = 0; b < BLOCK; b++) at[b] = (int32_t)(j->roots[t] * (int64_t)sizeof(Node));
            for (int32_t d = 0; d < j->depth[t]; d++)
                for (int b = 0; b < BLOCK; b++) step(nodes, at + b, xs, os, b);
            for (int b = 0; b < BLOCK; b++) m[b] += ((const Node *)(nodes + at[b]))->threshold;
        }
        for (int b = 0; b < b_n; b++) {
            j->margin[i0 + b] = m[b];
            if (j->contrib != NULL)
                for (Py_ssize_t f = 0; f < k; f++) j->contrib[(i0 + b) * k + f] = os[f * BLOCK + b];
            if (j->chosen != NULL)
                choose(x + b * k, os + b, BLOCK, k, j->top, j->minimum, j->chosen + (i0 + b) * j->top);
        }
    }
    free(xs);
    return NULL;
}

/* Each tree's depth, from the roots down (children come after their parent, so one pass in order
 * reaches every node); -1 if a node is reached twice, which would leave a walk's length ambiguous. */
static int tree_depths(Py_ssize_t m, Py_ssize_t trees, const int64_t *root, const int64_t *l, const int64_t *r,
                       const uint8_t *leaf, int32_t *level, int32_t *tree_of, int32_t *depth) {
    for (Py_ssize_t i = 0; i < m; i++) level[i] = -1;
    for (Py_ssize_t t = 0; t < trees; t++) {
        if (level[root[t]] >= 0) return -1;
        level[root[t]] = 0;
        tree_of[root[t]] = (int32_t)t;
        depth[t] = 0;
    }
    for (Py_ssize_t i = 0; i < m; i++) {
        if (level[i] < 0 || leaf[i]) continue;
        const int32_t t = tree_of[i];
        for (int c = 0; c < 2; c++) {
            const int64_t child = c ? r[i] : l[i];
            if (level[child] >= 0) return -1;
            level[child] = level[i] + 1;
            tree_of[child] = t;
            if (level[child] > depth[t]) depth[t] = level[child];
        }
    }
    return 0;
}

/* walk(X, n, k, feature, threshold, missing_left, left, right, is_leaf, value, roots, baseline, margin,
 *      contributions, chosen, top, minimum, threads)
 * X: n*k float64, row-major. Per node: int64 feature, float64 threshold, uint8 missing_left, int64 left
 * and right (indices into the node arrays), uint8 is_leaf, float64 value (expected raw output below the
 * node; a leaf's own value); roots: int64 index of each tree's root. Written: margin (n float64);
 * contributions (n*k float64) unless None; chosen (n*top int64: see choose()) unless None.
 * threads: how many threads share the rows. */
static PyObject *walk(PyObject *self, PyObject *args) {
    Py_buffer X, feature, threshold, missing_left, left, right, is_leaf, value, roots, margin;
    Py_buffer contrib = {0}, chosen = {0};
    PyObject *contrib_obj, *chosen_obj;
    Py_ssize_t n, k;
    double baseline, minimum;
    int top, threads;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*y*y*y*y*y*dw*OOidi", &X, &n, &k, &feature, &threshold, &missing_left,
                          &left, &right, &is_leaf, &value, &roots, &baseline, &margin, &contrib_obj, &chosen_obj,
                          &top, &minimum, &threads))
        return NULL;
    PyObject *result = NULL;
    Node *nodes = NULL;
    int32_t *level = NULL, *tree_of = NULL, *depth = NULL;
    if ((contrib_obj != Py_None && PyObject_GetBuffer(contrib_obj, &contrib, PyBUF_WRITABLE) < 0) ||
        (chosen_obj != Py_None && PyObject_GetBuffer(chosen_obj, &chosen, PyBUF_WRITABLE) < 0))
        goto done;
    Py_ssize_t m = value.len / 8, trees = roots.len / 8;
    if (n < 0 || k < 1 || X.len != n * k * 8 || margin.len != n * 8 || value.len != m * 8 || feature.len != m * 8 ||
        threshold.len != m * 8 || missing_left.len != m || left.len != m * 8 || right.len != m * 8 ||
        is_leaf.len != m || roots.len != trees * 8 || (contrib.obj != NULL && contrib.len != X.len) ||
        top < 1 || top > MAX_TOP || (chosen.obj != NULL && chosen.len != n * top * 8)) {
        PyErr_SetString(PyExc_ValueError, "inconsistent array sizes");
        goto done;
    }
    const Py_ssize_t size = sizeof(Node);
    if (m > INT32_MAX / size || k > INT32_MAX / (2 * BLOCK)) {
        PyErr_SetString(PyExc_ValueError, "too many nodes or features");
        goto done;
    }
    const int64_t *f = feature.buf, *l = left.buf, *r = right.buf, *root = roots.buf;
    const double *thr = threshold.buf, *val = value.buf;
    const uint8_t *leaf = is_leaf.buf, *ml = missing_left.buf;
    for (Py_ssize_t t = 0; t < trees; t++)
        if (root[t] < 0 || root[t] >= m) {
            PyErr_SetString(PyExc_ValueError, "a root outside the node arrays");
            goto done;
        }
    for (Py_ssize_t i = 0; i < m; i++) /* children after their parent: every walk ends at a leaf */
        if (!leaf[i] && (f[i] < 0 || f[i] >= k || l[i] <= i || l[i] >= m || r[i] <= i || r[i] >= m || isnan(thr[i]))) {
            PyErr_SetString(PyExc_ValueError, "a split node with a bad feature or child index, or no threshold");
            goto done;
        }
    nodes = PyMem_Malloc(sizeof(Node) * (size_t)(m ? m : 1));
    level = PyMem_Malloc(sizeof(int32_t) * (size_t)(m ? m : 1));
    tree_of = PyMem_Malloc(sizeof(int32_t) * (size_t)(m ? m : 1));
    depth = PyMem_Malloc(sizeof(int32_t) * (size_t)(trees ? trees : 1));
    if (nodes == NULL || level == NULL || tree_of == NULL || depth == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (tree_depths(m, trees, root, l, r, leaf, level, tree_of, depth) < 0) {
        PyErr_SetString(PyExc_ValueError, "a node reached from two parents or roots");
        goto done;
    }
    for (Py_ssize_t i = 0; i < m; i++)
        nodes[i] = leaf[i] ? (Node){val[i], {0.0, 0.0}, {(int32_t)(i * size), (int32_t)(i * size)}, 0, 0}
                           : (Node){thr[i], {val[l[i]] - val[i], val[r[i]] - val[i]},
                                    {(int32_t)(l[i] * size), (int32_t)(r[i] * size)},
                                    (int32_t)((ml[i] ? f[i] : k + f[i]) * BLOCK), (int32_t)(f[i] * BLOCK)};
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > n) threads = (int)n;
    if (threads < 1) threads = 1;
    Job jobs[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    void *failed = NULL;
    for (int t = 0; t < threads; t++)
        jobs[t] = (Job){X.buf, k, nodes, root, depth, trees, baseline, margin.buf, contrib.buf, chosen.buf, top,
                        minimum, n * t / threads, n * (t + 1) / threads};
    Py_BEGIN_ALLOW_THREADS
    for (int t = 1; t < threads; t++) started[t] = pthread_create(&ids[t], NULL, run, &jobs[t]) == 0;
    failed = run(&jobs[0]);
    for (int t = 1; t < threads; t++) {
        void *status = NULL;
        if (started[t])
            pthread_join(ids[t], &status);
        else /* no thread to be had: this one does that share too */
            status = run(&jobs[t]);
        if (status != NULL) failed = status;
    }
    Py_END_ALLOW_THREADS
    if (failed != NULL) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);

done:
    PyMem_Free(nodes);
    PyMem_Free(level);
    PyMem_Free(tree_of);
    PyMem_Free(depth);
    PyBuffer_Release(&X);
    PyBuffer_Release(&feature);
    PyBuffer_Release(&threshold);
    PyBuffer_Release(&missing_left);
    PyBuffer_Release(&left);
    PyBuffer_Release(&right);
    PyBuffer_Release(&is_leaf);
    PyBuffer_Release(&value);
    PyBuffer_Release(&roots);
    PyBuffer_Release(&margin);
    if (contrib.obj != NULL) PyBuffer_Release(&contrib);
    if (chosen.obj != NULL) PyBuffer_Release(&chosen);
    return result;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS,
     "Write each row's raw output, its tree-path (Saabas) contributions and its strongest features."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_trees",
                                    "Raw output and tree-path contributions of boosted trees.", -1, methods};

PyMODINIT_FUNC PyInit__trees(void) { return PyModule_Create(&module); }
