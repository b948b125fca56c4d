/*
 * Tree-path (Saabas) contributions of a gradient-boosted ensemble, for the reasons of many rows.
 *
 * For each row and each tree, the row's path from the root to its leaf is walked; at every split the
 * change in the node's expected value (child minus parent) is added to the split feature's
 * contribution. The sums over all trees add up, per row, to the ensemble's raw output minus the sum of
 * the roots' expected values. The routing is HistGradientBoosting's: a missing value follows
 * ``missing_left``, any other goes left when ``x <= threshold``.
 *
 * It is an accelerator only: reasons.py computes the same sums in numpy when this module is not
 * built, and the tests hold both to each other and to the model's own decision function.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

typedef struct {
    const double *X;
    Py_ssize_t k;
    const int64_t *feature;
    const double *threshold;
    const uint8_t *missing_left;
    const int64_t *left;
    const int64_t *right;
    const uint8_t *is_leaf;
    const double *value;
    const int64_t *roots;
    Py_ssize_t trees;
    double *out;
    Py_ssize_t start, stop;
} Job;

static void *run(void *arg) {
    const Job *j = (const Job *)arg;
    for (Py_ssize_t i = j->start; i < j->stop; i++) {
        const double *x = j->X + i * j->k;
        double *o = j->out + i * j->k;
        for (Py_ssize_t t = 0; t < j->trees; t++) {
            int64_t node = j->roots[t];
            while (!j->is_leaf[node]) {
                int64_t f = j->feature[node];
                double v = x[f];
                int64_t child = isnan(v) ? (j->missing_left[node] ? j->left[node] : j->right[node])
                                         : (v <= j->threshold[node] ? j->left[node] : j->right[node]);
                o[f] += j->value[child] - j->value[node];
                node = child;
            }
        }
    }
    return NULL;
}

/* path_contributions(X, n, k, feature, threshold, missing_left, left, right, is_leaf, value, roots, out)
 * X and out: n*k float64 (row-major; out is added to); per node: int64 feature, float64 threshold, uint8
 * missing_left, int64 left and right (indices into the node arrays), uint8 is_leaf, float64 value;
 * roots: int64 index of each tree's root. */
static PyObject *path_contributions(PyObject *self, PyObject *args) {
    Py_buffer X, feature, threshold, missing_left, left, right, is_leaf, value, roots, out;
    Py_ssize_t n, k;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*y*y*y*y*y*w*", &X, &n, &k, &feature, &threshold, &missing_left, &left,
                          &right, &is_leaf, &value, &roots, &out))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t m = value.len / 8, trees = roots.len / 8;
    if (n < 0 || k < 1 || X.len != n * k * 8 || out.len != X.len || value.len != m * 8 || feature.len != m * 8 ||
        threshold.len != m * 8 || missing_left.len != m || left.len != m * 8 || right.len != m * 8 ||
        is_leaf.len != m || roots.len != trees * 8) {
        PyErr_SetString(PyExc_ValueError, "inconsistent array sizes");
        goto done;
    }
    const int64_t *f = feature.buf, *l = left.buf, *r = right.buf, *root = roots.buf;
    const uint8_t *leaf = is_leaf.buf;
    for (Py_ssize_t t = 0; t < trees; t++)
        if (root[t] < 0 || root[t] >= m) {
            PyErr_SetString(PyExc_ValueError, "a root outside the node arrays");
            goto done;
        }
    for (Py_ssize_t i = 0; i < m; i++) /* children after their parent: every walk ends at a leaf */
        if (!leaf[i] && (f[i] < 0 || f[i] >= k || l[i] <= i || l[i] >= m || r[i] <= i || r[i] >= m)) {
            PyErr_SetString(PyExc_ValueError, "a split node with a bad feature or child index");
            goto done;
        }
    /* one thread: a few hundred thousand rows take a fraction of a second, and the machine is shared */
    Job job = {X.buf, k, f, threshold.buf, missing_left.buf, l, r, leaf, value.buf, root, trees, out.buf, 0, n};
    Py_BEGIN_ALLOW_THREADS
    run(&job);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);

done:
    PyBuffer_Release(&X);
    PyBuffer_Release(&feature);
    PyBuffer_Release(&threshold);
    PyBuffer_Release(&missing_left);
    PyBuffer_Release(&left);
    PyBuffer_Release(&right);
    PyBuffer_Release(&is_leaf);
    PyBuffer_Release(&value);
    PyBuffer_Release(&roots);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"path_contributions", path_contributions, METH_VARARGS,
     "Add each row's tree-path (Saabas) contributions per feature to out."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_trees", "Tree-path contributions of boosted trees.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__trees(void) { return PyModule_Create(&module); }
