/*
 * The declared features' two primitives (see risk/declared.py), for rows keyed by (key, time):
 *
 * - order(keys, times, out): the stable order of rows by (key, time), as numpy's lexsort gives it, by
 *   an LSD radix sort on 11-bit digits (passes whose digit is the same in every row are skipped: times
 *   within a month share their high bits; rows already in time order skip the time passes altogether);
 * - lower_bounds(keys, times, q_keys, q_times, out): per query, the number of stream rows before
 *   (q_key, q_time), for a stream and queries both in (key, time) order: one merge, two pointers.
 *
 * Every declared aggregate is a difference of such positions (counts), of prefix sums at them (sums) or a
 * time read at one (first sightings); the semantics stay in declared.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DIGIT 11 /* bits per pass: 6 passes for 64 bits */
#define PASSES ((64 + DIGIT - 1) / DIGIT)
#define BUCKETS (1 << DIGIT)

/* Stable sort of (v, ix) by v in place; v2 and ix2 are scratch of the same size, count PASSES x BUCKETS. */
static void radix(uint64_t *v, int64_t *ix, uint64_t *v2, int64_t *ix2, Py_ssize_t n, size_t *count) {
    memset(count, 0, PASSES * BUCKETS * sizeof *count);
    for (Py_ssize_t i = 0; i < n; i++)
        for (int b = 0; b < PASSES; b++) count[b * BUCKETS + ((v[i] >> (DIGIT * b)) & (BUCKETS - 1))]++;
    uint64_t *src_v = v, *dst_v = v2;
    int64_t *src_i = ix, *dst_i = ix2;
    for (int b = 0; b < PASSES; b++) {
        size_t *c = count + b * BUCKETS, at = 0;
        int shift = DIGIT * b;
        if (c[(src_v[0] >> shift) & (BUCKETS - 1)] == (size_t)n) continue; /* one digit value: nothing moves */
        for (int d = 0; d < BUCKETS; d++) {
            size_t k = c[d];
            c[d] = at;
            at += k;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            size_t to = c[(src_v[i] >> shift) & (BUCKETS - 1)]++;
            dst_v[to] = src_v[i];
            dst_i[to] = src_i[i];
        }
        uint64_t *tv = src_v;
        src_v = dst_v;
        dst_v = tv;
        int64_t *ti = src_i;
        src_i = dst_i;
        dst_i = ti;
    }
    if (src_v != v) {
        memcpy(v, src_v, (size_t)n * sizeof *v);
        memcpy(ix, src_i, (size_t)n * sizeof *ix);
    }
}

/* The stable (key, time) order of n rows into out: time first (unless already in order), then key. */
static int order_rows(const uint64_t *key, const int64_t *time, Py_ssize_t n, int64_t *out) {
    uint64_t *v = malloc((size_t)n * sizeof *v), *v2 = malloc((size_t)n * sizeof *v2);
    int64_t *ix2 = malloc((size_t)n * sizeof *ix2);
    size_t *count = malloc(PASSES * BUCKETS * sizeof *count);
    if (!v || !v2 || !ix2 || !count) {
        free(v), free(v2), free(ix2), free(count);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) out[i] = i;
    int timed = 1;
    for (Py_ssize_t i = 1; i < n && timed; i++) timed = time[i] >= time[i - 1];
    if (!timed) {
        for (Py_ssize_t i = 0; i < n; i++) v[i] = (uint64_t)time[i] ^ 0x8000000000000000ULL; /* signed order */
        radix(v, out, v2, ix2, n, count);
    }
    for (Py_ssize_t i = 0; i < n; i++) v[i] = key[out[i]];
    radix(v, out, v2, ix2, n, count);
    free(v), free(v2), free(ix2), free(count);
    return 0;
}

static int before(uint64_t ka, int64_t ta, uint64_t kb, int64_t tb) { return ka < kb || (ka == kb && ta < tb); }

/* ---- module entry ---- */

static int buffers_of(Py_buffer *b, int count, Py_ssize_t n, const char *what) {
    for (int i = 0; i < count; i++)
        if (b[i].len != n * 8) {
            PyErr_Format(PyExc_ValueError, "%s: every array must hold %zd 8-byte values", what, n);
            return -1;
        }
    return 0;
}

/* order(keys u64[n], times i64[n], out i64[n]) */
static PyObject *order(PyObject *self, PyObject *args) {
    Py_buffer b[3] = {{0}};
    if (!PyArg_ParseTuple(args, "y*y*w*", &b[0], &b[1], &b[2])) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = b[0].len / 8;
    if (buffers_of(b, 3, n, "order")) goto done;
    int failed = 0;
    if (n) {
        Py_BEGIN_ALLOW_THREADS
        failed = order_rows(b[0].buf, b[1].buf, n, b[2].buf);
        Py_END_ALLOW_THREADS
    }
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    for (int i = 0; i < 3; i++) PyBuffer_Release(&b[i]);
    return result;
}

/* lower_bounds(keys u64[n], times i64[n], q_keys u64[m], q_times i64[m], out i64[m]) */
static PyObject *lower_bounds(PyObject *self, PyObject *args) {
    Py_buffer b[5] = {{0}};
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*", &b[0], &b[1], &b[2], &b[3], &b[4])) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = b[0].len / 8, m = b[2].len / 8;
    if (buffers_of(b, 2, n, "lower_bounds stream") || buffers_of(b + 2, 3, m, "lower_bounds queries")) goto done;
    const uint64_t *key = b[0].buf, *qk = b[2].buf;
    const int64_t *t = b[1].buf, *qt = b[3].buf;
    int64_t *out = b[4].buf;
    int unordered = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 1; i < n && !unordered; i++) unordered = before(key[i], t[i], key[i - 1], t[i - 1]);
    for (Py_ssize_t i = 1; i < m && !unordered; i++) unordered = before(qk[i], qt[i], qk[i - 1], qt[i - 1]);
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < m && !unordered; i++) {
        while (j < n && before(key[j], t[j], qk[i], qt[i])) j++;
        out[i] = j;
    }
    Py_END_ALLOW_THREADS
    if (unordered) {
        PyErr_SetString(PyExc_ValueError, "lower_bounds: stream and queries must be in (key, time) order");
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    for (int i = 0; i < 5; i++) PyBuffer_Release(&b[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"order", order, METH_VARARGS, "The stable order of rows by (key, time)."},
    {"lower_bounds", lower_bounds, METH_VARARGS, "Per query, the stream rows before it, both in (key, time) order."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_declared", "The declared features' primitives.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__declared(void) { return PyModule_Create(&module); }
