/*
 * Point-in-time feature windows over risk signals (see risk/signals.py and risk/windows.py), in one
 * pass per partition: the same numbers as features.TRANSACTION_SQL, without a sort per window.
 *
 * Rows are the lake's events in time order. Each is given a dense code per account, device and
 * network; a stable counting sort then lays every entity's rows out contiguously, still in time order,
 * like SQL's PARTITION BY ... ORDER BY t. Within an entity the rows are walked once, a group of equal
 * times at a time: the group's queries (transactions in [start, end)) read the state first, then the
 * group's rows update it, so a feature at t sees only rows strictly before t (RANGE ... 1 PRECEDING).
 *
 * Windowed sums keep a head index per width and subtract what leaves; distinct counts keep each pair's
 * newest sighting and a queue of sightings to expire; "first seen" keeps a per-pair list of daily
 * sightings. The account pass and the device and network passes run on two threads: they write
 * disjoint feature columns.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define H_US 3600000000LL
#define D_US 86400000000LL
#define W_US (7 * D_US)
#define HIST_US (31 * D_US)
#define MEDIAN_US (30 * D_US)
#define NO_MAJOR INT32_MIN

/* feature columns, in catalog.ENGINE_FEATURES order: risk/windows.py checks their count, and the parity
 * tests (tests/unit/risk/test_risk_windows.py) compare every column with the SQL feature of its name */
enum {
    F_ACC_ON_DEV_24H, F_ACC_ON_DEV_31D, F_DEV_OF_ACC_7D, F_DEV_OF_ACC_31D, F_ACC_ON_NET_24H,
    F_ACCT_TXN_1H, F_ACCT_TXN_24H, F_ACCT_TXN_7D, F_ACCT_FAILED_1H, F_ACCT_FAILED_24H, F_ACCT_LOGIN_24H,
    F_ACCT_LF_24H, F_ACCT_LF_7D,
    F_DEV_TXN_1H, F_DEV_TXN_24H, F_DEV_FAILED_24H, F_DEV_LOGIN_24H,
    F_DEV_AGE, F_NET_AGE, F_NEW_SIM, F_SINCE_REG, F_SINCE_PW,
    F_EMU_MODEL, F_EMU_HW, F_ROOTED, F_ROOT_APP, F_HOOK_APP, F_IMEI_BAD, F_APP_BEHIND, F_CRASH_RATE,
    F_SIM_TZ, F_SIM_LANG, F_TZ_LANG,
    F_AMOUNT_MEDIAN, F_AMOUNT, F_FAILED_STATUS, F_BANK, F_CP_REPORTS, F_ACCT_REPORTS, F_DEV_REPORTS,
    NF
};

typedef struct {
    Py_ssize_t n;
    const int64_t *t;
    const uint64_t *acct, *dev, *net, *cp;
    const uint8_t *etype, *action, *crash, *root_app, *hook_app;
    const int8_t *failed, *hw_emu, *rooted, *emu_model, *imei_ok, *bank;
    const double *amount;
    const uint32_t *sim, *tzc, *langr, *platform;
    const int32_t *major;
    /* report steps, sorted by time */
    Py_ssize_t m;
    const int64_t *st;
    const uint8_t *skind;
    const uint64_t *skey;
    const int8_t *sstep;
    int64_t start, end;
    /* derived */
    int32_t *qrow;  /* per row: its query index, or -1 */
    double *X;      /* nq rows of `width` columns, the first NF of them ours */
    int64_t width;
    const int64_t *qidx; /* per query: its row */
    Py_ssize_t nq;
} Ctx;

/* ---- growable vectors and an open-addressing map of 64-bit keys ---- */

#define VEC(T, name)                                                                                                  \
    typedef struct {                                                                                                  \
        T *v;                                                                                                         \
        Py_ssize_t len, cap;                                                                                          \
    } name;                                                                                                           \
    static int name##_push(name *a, T x) {                                                                            \
        if (a->len == a->cap) {                                                                                       \
            Py_ssize_t c = a->cap ? a->cap * 2 : 64;                                                                  \
            T *p = realloc(a->v, (size_t)c * sizeof(T));                                                              \
            if (!p) return -1;                                                                                        \
            a->v = p;                                                                                                 \
            a->cap = c;                                                                                               \
        }                                                                                                             \
        a->v[a->len++] = x;                                                                                           \
        return 0;                                                                                                     \
    }

typedef struct {
    int64_t t;
    int32_t slot, next;
} Sight;
typedef struct {
    int64_t t;
    int32_t a, b, c, d;
} Step4;
typedef struct {
    int64_t t;
    double x;
} TimedValue;
VEC(Sight, SightVec)
VEC(Step4, StepVec)
VEC(TimedValue, ValueVec)
VEC(double, DoubleVec)

typedef struct {
    uint64_t *keys;
    int32_t *vals;
    size_t cap, used;
    uint64_t last_key; /* the key asked for last (0: none): an entity's rows mostly repeat their device, etc. */
    int32_t last_val;
} Map;

static inline uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int map_init(Map *m, size_t cap) {
    m->cap = cap;
    m->used = 0;
    m->last_key = 0;
    m->keys = calloc(cap, sizeof(uint64_t));
    m->vals = malloc(cap * sizeof(int32_t));
    return (m->keys && m->vals) ? 0 : -1;
}

static void map_free(Map *m) {
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
}

/* Empty the map for the next entity; a table grown large for one busy entity is replaced by a small one,
 * so that the many small entities after it do not each clear it. */
static int map_clear(Map *m) {
    if (m->cap > 256) {
        map_free(m);
        return map_init(m, 64);
    }
    if (m->used) memset(m->keys, 0, m->cap * sizeof(uint64_t));
    m->used = 0;
    m->last_key = 0;
    return 0;
}

/* The value of key (never 0), or -1 when absent. */
static inline int32_t map_find(const Map *m, uint64_t key) {
    size_t mask = m->cap - 1, i = mix(key) & mask;
    while (m->keys[i]) {
        if (m->keys[i] == key) return m->vals[i];
        i = (i + 1) & mask;
    }
    return -1;
}

/* The value of key, inserting ``next`` when absent (*added set); -2 when out of memory. */
static int32_t map_get(Map *m, uint64_t key, int32_t next, int *added) {
    if (key == m->last_key) {
        *added = 0;
        return m->last_val;
    }
    if ((m->used + 1) * 2 > m->cap) {
        Map bigger;
        if (map_init(&bigger, m->cap * 2)) return -2;
        for (size_t j = 0; j < m->cap; j++)
            if (m->keys[j]) {
                size_t mask = bigger.cap - 1, i = mix(m->keys[j]) & mask;
                while (bigger.keys[i]) i = (i + 1) & mask;
                bigger.keys[i] = m->keys[j];
                bigger.vals[i] = m->vals[j];
            }
        bigger.used = m->used;
        map_free(m);
        *m = bigger;
    }
    size_t mask = m->cap - 1, i = mix(key) & mask;
    while (m->keys[i]) {
        if (m->keys[i] == key) {
            *added = 0;
            m->last_key = key;
            return m->last_val = m->vals[i];
        }
        i = (i + 1) & mask;
    }
    m->keys[i] = key;
    m->vals[i] = next;
    m->used++;
    *added = 1;
    m->last_key = key;
    return m->last_val = next;
}

/* ---- partitions: rows of one entity, contiguous and in time order ---- */

typedef struct {
    int32_t *code;   /* per row: its entity's dense code, -1 for none (or at/after end) */
    int64_t *first;  /* per code: offset of its rows in the partition; first[codes] = total */
    int32_t codes;
} Partition;

static void partition_free(Partition *p) {
    free(p->code);
    free(p->first);
}

/* Dense codes of the query rows' ``key`` (0 = none), each row's code (-1: an entity no query row has,
 * whose rows no feature reads), and each code's offset for a stable counting sort: the passes scatter
 * their packed rows to ``first[code]++`` in one sequential read. */
static int partition(const Ctx *c, const uint64_t *key, Partition *out, Map *map) {
    int32_t *code = out->code = malloc((size_t)(c->n ? c->n : 1) * sizeof(int32_t));
    if (!code || map_init(map, 1024)) return -1;
    int32_t codes = 0;
    for (Py_ssize_t q = 0; q < c->nq; q++) {
        uint64_t k = key[c->qidx[q]];
        int added;
        if (k && map_get(map, k, codes, &added) == -2) return -1;
        codes += k ? added : 0;
    }
    for (Py_ssize_t i = 0; i < c->n; i++) code[i] = (key[i] && c->t[i] < c->end) ? map_find(map, key[i]) : -1;
    out->codes = codes;
    out->first = calloc((size_t)codes + 1, sizeof(int64_t));
    if (!out->first) return -1;
    for (Py_ssize_t i = 0; i < c->n; i++)
        if (code[i] >= 0) out->first[code[i] + 1]++;
    for (int32_t k = 0; k < codes; k++) out->first[k + 1] += out->first[k];
    return 0;
}

/* Report steps of one kind grouped by entity code (time order kept): first[code]..first[code+1]. */
static int steps_by_code(const Ctx *c, uint8_t kind, const Map *map, int32_t codes, int32_t **rows_out,
                         int64_t **first_out) {
    int64_t *first = calloc((size_t)codes + 1, sizeof(int64_t));
    int32_t *code = malloc((size_t)(c->m ? c->m : 1) * sizeof(int32_t));
    if (!first || !code) {
        free(first);
        free(code);
        return -1;
    }
    for (Py_ssize_t j = 0; j < c->m; j++) {
        code[j] = (c->skind[j] == kind && c->skey[j]) ? map_find(map, c->skey[j]) : -1;
        if (code[j] >= 0) first[code[j] + 1]++;
    }
    for (int32_t k = 0; k < codes; k++) first[k + 1] += first[k];
    int32_t *rows = malloc((size_t)(first[codes] ? first[codes] : 1) * sizeof(int32_t));
    int64_t *fill = malloc((size_t)(codes ? codes : 1) * sizeof(int64_t));
    if (!rows || !fill) {
        free(first);
        free(code);
        free(rows);
        free(fill);
        return -1;
    }
    memcpy(fill, first, (size_t)codes * sizeof(int64_t));
    for (Py_ssize_t j = 0; j < c->m; j++)
        if (code[j] >= 0) rows[fill[code[j]]++] = (int32_t)j;
    free(fill);
    free(code);
    *rows_out = rows;
    *first_out = first;
    return 0;
}

/* ---- distinct counts over a sliding window of sightings ---- */

/* The oldest sighting a window of ``width`` before start can reach, down to a whole bucket (as the SQL). */
static int64_t since(const Ctx *c, int64_t width, int64_t bucket) { return (c->start - width) / bucket * bucket; }

typedef struct {
    int64_t bucket_width, width, since; /* sighting bucket, window width, rows before ``since`` ignored */
    SightVec queue;
    Py_ssize_t head;
    int32_t count;
    /* per slot */
    int64_t *bucket, *newest;
    uint8_t *in;
    Py_ssize_t slots;
} Distinct;

static int distinct_slots(Distinct *d, Py_ssize_t slots) {
    if (slots <= d->slots) return 0;
    Py_ssize_t cap = d->slots ? d->slots : 16;
    while (cap < slots) cap *= 2;
    int64_t *b = realloc(d->bucket, (size_t)cap * sizeof(int64_t));
    if (!b) return -1;
    d->bucket = b;
    int64_t *nw = realloc(d->newest, (size_t)cap * sizeof(int64_t));
    if (!nw) return -1;
    d->newest = nw;
    uint8_t *in = realloc(d->in, (size_t)cap);
    if (!in) return -1;
    d->in = in;
    d->slots = cap;
    return 0;
}

static void distinct_reset(Distinct *d) {
    d->queue.len = 0;
    d->head = 0;
    d->count = 0;
}

/* A row of ``slot`` at time t: a new sighting when it is the slot's first row in its bucket. */
static int distinct_see(Distinct *d, int32_t slot, int32_t fresh, int64_t t) {
    if (fresh) {
        d->bucket[slot] = INT64_MIN;
        d->in[slot] = 0;
    }
    if (t < d->since) return 0;
    int64_t b = t / d->bucket_width;
    if (d->bucket[slot] == b) return 0;
    d->bucket[slot] = b;
    d->newest[slot] = t;
    if (!d->in[slot]) {
        d->in[slot] = 1;
        d->count++;
    }
    Sight s = {t, slot, -1};
    return SightVec_push(&d->queue, s);
}

/* Distinct slots sighted in [t - width, t). */
static int32_t distinct_at(Distinct *d, int64_t t) {
    while (d->head < d->queue.len && d->queue.v[d->head].t < t - d->width) {
        Sight s = d->queue.v[d->head++];
        if (d->in[s.slot] && d->newest[s.slot] == s.t) {
            d->in[s.slot] = 0;
            d->count--;
        }
    }
    return d->count;
}

static void distinct_free(Distinct *d) {
    free(d->queue.v);
    free(d->bucket);
    free(d->newest);
    free(d->in);
}

/* ---- first daily sighting of a pair in the last 31 days ---- */

typedef struct {
    int64_t since;
    SightVec days;               /* daily sightings, linked per slot */
    int32_t *headi, *taili;      /* per slot: oldest unexpired and newest sighting (-1: none) */
    int64_t *bucket;
    Py_ssize_t slots;
} FirstSeen;

static int first_slots(FirstSeen *f, Py_ssize_t slots) {
    if (slots <= f->slots) return 0;
    Py_ssize_t cap = f->slots ? f->slots : 16;
    while (cap < slots) cap *= 2;
    int32_t *h = realloc(f->headi, (size_t)cap * sizeof(int32_t));
    if (!h) return -1;
    f->headi = h;
    int32_t *tl = realloc(f->taili, (size_t)cap * sizeof(int32_t));
    if (!tl) return -1;
    f->taili = tl;
    int64_t *b = realloc(f->bucket, (size_t)cap * sizeof(int64_t));
    if (!b) return -1;
    f->bucket = b;
    f->slots = cap;
    return 0;
}

static int first_see(FirstSeen *f, int32_t slot, int32_t fresh, int64_t t) {
    if (fresh) {
        f->headi[slot] = f->taili[slot] = -1;
        f->bucket[slot] = INT64_MIN;
    }
    if (t < f->since) return 0;
    int64_t b = t / D_US;
    if (f->bucket[slot] == b) return 0;
    f->bucket[slot] = b;
    Sight s = {t, slot, -1};
    int32_t at = (int32_t)f->days.len;
    if (SightVec_push(&f->days, s)) return -1;
    if (f->taili[slot] >= 0) f->days.v[f->taili[slot]].next = at;
    if (f->headi[slot] < 0) f->headi[slot] = at;
    f->taili[slot] = at;
    return 0;
}

/* Hours since the slot's first daily sighting in [t - 31 d, t); 0 when none (a pair new at t). */
static double first_age(FirstSeen *f, int32_t slot, int64_t t, int *found) {
    *found = 0;
    if (slot < 0) return 0.0;
    int32_t i = f->headi[slot];
    while (i >= 0 && f->days.v[i].t < t - HIST_US) i = f->days.v[i].next;
    f->headi[slot] = i;
    if (i < 0) return 0.0;
    *found = 1;
    return (double)(t - f->days.v[i].t) / (double)H_US;
}

static void first_free(FirstSeen *f) {
    free(f->days.v);
    free(f->headi);
    free(f->taili);
    free(f->bucket);
}

/* ---- windowed sums: a head per width over a vector of timed entries ---- */

typedef struct {
    int64_t width;
    Py_ssize_t head;
    int64_t sum[4]; /* sums of the entries before head */
} Head;

static void head_move(Head *h, const Step4 *v, Py_ssize_t len, int64_t t) {
    while (h->head < len && v[h->head].t < t - h->width) {
        h->sum[0] += v[h->head].a;
        h->sum[1] += v[h->head].b;
        h->sum[2] += v[h->head].c;
        h->sum[3] += v[h->head].d;
        h->head++;
    }
}

/* The amounts of the last 30 days, in arrival order (to expire) and sorted (to read the median). */
typedef struct {
    ValueVec arrived;
    Py_ssize_t head;
    DoubleVec sorted;
} Amounts;

static Py_ssize_t lower_bound(const DoubleVec *v, double x) {
    Py_ssize_t lo = 0, hi = v->len;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (v->v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int amounts_add(Amounts *a, int64_t t, double x) {
    TimedValue e = {t, x};
    if (ValueVec_push(&a->arrived, e) || DoubleVec_push(&a->sorted, x)) return -1;
    Py_ssize_t at = lower_bound(&a->sorted, x); /* the pushed copy sits at the end: shift it into place */
    memmove(&a->sorted.v[at + 1], &a->sorted.v[at], (size_t)(a->sorted.len - 1 - at) * sizeof(double));
    a->sorted.v[at] = x;
    return 0;
}

/* Median of the amounts in [t - 30 d, t), as DuckDB's median (mean of the middle two); NAN when none. */
static double amounts_median(Amounts *a, int64_t t) {
    while (a->head < a->arrived.len && a->arrived.v[a->head].t < t - MEDIAN_US) {
        Py_ssize_t at = lower_bound(&a->sorted, a->arrived.v[a->head++].x);
        memmove(&a->sorted.v[at], &a->sorted.v[at + 1], (size_t)(a->sorted.len - 1 - at) * sizeof(double));
        a->sorted.len--;
    }
    Py_ssize_t k = a->sorted.len;
    if (k == 0) return NAN;
    double hi = a->sorted.v[k / 2];
    if (k % 2) return hi;
    double lo = a->sorted.v[k / 2 - 1];
    return lo + (hi - lo) * 0.5;
}

/* ---- packed rows: one entity's rows read sequentially, not by scattered index ---- */

typedef struct {
    int64_t t;
    uint64_t dev, net;
    double amount;
    uint32_t sim;
    int32_t q;
    uint8_t etype, action;
    int8_t failed;
} ARow;

typedef struct {
    int64_t t;
    uint64_t acct;
    uint32_t tzc, langr, sim;
    int32_t q;
    uint8_t etype, action, crash, root_app, hook_app;
    int8_t failed, hw_emu, rooted;
} DRow;

typedef struct {
    int64_t t;
    uint64_t acct;
    int32_t q;
} NRow;

/* Each entity's rows, packed and contiguous in time order: one sequential read of the columns. */
#define SCATTER(Type, ...)                                                                                            \
    int64_t total = P->first[P->codes];                                                                               \
    Type *R = malloc((size_t)(total ? total : 1) * sizeof(Type));                                                     \
    int64_t *fill = malloc((size_t)(P->codes ? P->codes : 1) * sizeof(int64_t));                                      \
    if (!R || !fill) {                                                                                                \
        free(R);                                                                                                      \
        free(fill);                                                                                                   \
        return NULL;                                                                                                  \
    }                                                                                                                 \
    memcpy(fill, P->first, (size_t)P->codes * sizeof(int64_t));                                                      \
    for (Py_ssize_t r = 0; r < c->n; r++)                                                                             \
        if (P->code[r] >= 0) R[fill[P->code[r]]++] = (Type){__VA_ARGS__};                                                    \
    free(fill);                                                                                                       \
    return R;

static ARow *gather_accounts(const Ctx *c, const Partition *P) {
    SCATTER(ARow, c->t[r], c->dev[r], c->net[r], c->amount[r], c->sim[r], c->qrow[r], c->etype[r], c->action[r],
                   c->failed[r])
}

static DRow *gather_devices(const Ctx *c, const Partition *P) {
    SCATTER(DRow, c->t[r], c->acct[r], c->tzc[r], c->langr[r], c->sim[r], c->qrow[r], c->etype[r], c->action[r],
                   c->crash[r], c->root_app[r], c->hook_app[r], c->failed[r], c->hw_emu[r], c->rooted[r])
}

static NRow *gather_networks(const Ctx *c, const Partition *P) { SCATTER(NRow, c->t[r], c->acct[r], c->qrow[r]) }

/* ---- the passes ---- */

#define XQ(q, f) c->X[(int64_t)(q) * c->width + (f)]

static inline int recent(int64_t at, int64_t t) { return at != INT64_MIN && at >= t - HIST_US; }

static void step_counts(const Ctx *c, const int32_t *srows, int64_t *sp, int64_t stop, int64_t t, int64_t *sum) {
    while (*sp < stop && c->st[srows[*sp]] < t) *sum += c->sstep[srows[(*sp)++]];
}

/* Per-account features: velocity, registration and password age, amount median, devices of the
 * account, novelty of device, network and SIM country, and reports on the account. */
static int account_pass(Ctx *c) {
    Partition P = {0};
    Map accts = {0}, devs = {0}, nets = {0}, sims = {0};
    Distinct dh = {H_US, W_US, since(c, W_US, H_US)}, dd = {D_US, HIST_US, since(c, HIST_US, D_US)};
    int64_t day_since = since(c, HIST_US, D_US);
    FirstSeen fdev = {day_since}, fnet = {day_since}, fsim = {day_since};
    StepVec vel = {0};
    Amounts amounts = {0};
    ARow *R = NULL;
    int32_t *srows = NULL;
    int64_t *sfirst = NULL;
    int rc = -1;
    if (partition(c, c->acct, &P, &accts) || steps_by_code(c, 1, &accts, P.codes, &srows, &sfirst) ||
        map_init(&devs, 64) || map_init(&nets, 64) || map_init(&sims, 64) || !(R = gather_accounts(c, &P)))
        goto done;
    for (int32_t code = 0; code < P.codes; code++) {
        if (map_clear(&devs) || map_clear(&nets) || map_clear(&sims)) goto done;
        distinct_reset(&dh);
        distinct_reset(&dd);
        fdev.days.len = fnet.days.len = fsim.days.len = 0;
        vel.len = amounts.arrived.len = amounts.sorted.len = 0;
        amounts.head = 0;
        Head h1 = {H_US, 0, {0}}, hd = {D_US, 0, {0}}, hw = {W_US, 0, {0}};
        int64_t total[4] = {0}, last_reg = INT64_MIN, last_pw = INT64_MIN, reports = 0, sp = sfirst[code];
        int32_t ndev = 0, nnet = 0, nsim = 0;
        int64_t lo = P.first[code], hi = P.first[code + 1];
        for (int64_t i = lo; i < hi;) {
            int64_t t = R[i].t, j = i;
            while (j < hi && R[j].t == t) j++;
            for (int64_t k = i; k < j; k++) {
                const ARow *w = &R[k];
                int32_t q = w->q;
                if (q < 0) continue;
                head_move(&h1, vel.v, vel.len, t);
                head_move(&hd, vel.v, vel.len, t);
                head_move(&hw, vel.v, vel.len, t);
                XQ(q, F_ACCT_TXN_1H) = (double)(total[0] - h1.sum[0]);
                XQ(q, F_ACCT_FAILED_1H) = (double)(total[1] - h1.sum[1]);
                XQ(q, F_ACCT_TXN_24H) = (double)(total[0] - hd.sum[0]);
                XQ(q, F_ACCT_FAILED_24H) = (double)(total[1] - hd.sum[1]);
                XQ(q, F_ACCT_LOGIN_24H) = (double)(total[2] - hd.sum[2]);
                XQ(q, F_ACCT_LF_24H) = (double)(total[3] - hd.sum[3]);
                XQ(q, F_ACCT_TXN_7D) = (double)(total[0] - hw.sum[0]);
                XQ(q, F_ACCT_LF_7D) = (double)(total[3] - hw.sum[3]);
                XQ(q, F_SINCE_REG) = recent(last_reg, t) ? (double)(t - last_reg) / (double)H_US : NAN;
                XQ(q, F_SINCE_PW) = recent(last_pw, t) ? (double)(t - last_pw) / (double)H_US : NAN;
                double median = amounts_median(&amounts, t);
                XQ(q, F_AMOUNT_MEDIAN) = (isnan(median) || median == 0.0) ? NAN : w->amount / median;
                XQ(q, F_DEV_OF_ACC_7D) = distinct_at(&dh, t);
                XQ(q, F_DEV_OF_ACC_31D) = distinct_at(&dd, t);
                int found;
                if (w->dev) {
                    double age = first_age(&fdev, map_find(&devs, w->dev), t, &found);
                    XQ(q, F_DEV_AGE) = age;
                }
                if (w->net) {
                    double age = first_age(&fnet, map_find(&nets, w->net), t, &found);
                    XQ(q, F_NET_AGE) = age;
                }
                if (w->sim) {
                    first_age(&fsim, map_find(&sims, w->sim), t, &found);
                    XQ(q, F_NEW_SIM) = found ? 0.0 : 1.0;
                }
                step_counts(c, srows, &sp, sfirst[code + 1], t, &reports);
                XQ(q, F_ACCT_REPORTS) = (double)reports;
            }
            for (int64_t k = i; k < j; k++) {
                const ARow *w = &R[k];
                uint8_t et = w->etype;
                if (et == 1 || et == 2) {
                    Step4 e = {t, et == 1, w->failed == 1, w->action == 1, w->action == 2};
                    if (StepVec_push(&vel, e)) goto done;
                    total[0] += e.a;
                    total[1] += e.b;
                    total[2] += e.c;
                    total[3] += e.d;
                    if (w->action == 3) last_reg = t;
                    if (w->action == 4) last_pw = t;
                    if (et == 1 && !isnan(w->amount)) {
                        if (amounts_add(&amounts, t, w->amount)) goto done;
                    }
                }
                int added;
                if (w->dev) {
                    int32_t s = map_get(&devs, w->dev, ndev, &added);
                    ndev += added;
                    if (s < 0 || distinct_slots(&dh, ndev) || distinct_slots(&dd, ndev) || first_slots(&fdev, ndev) ||
                        distinct_see(&dh, s, added, t) || distinct_see(&dd, s, added, t) ||
                        first_see(&fdev, s, added, t))
                        goto done;
                }
                if (w->net) {
                    int32_t s = map_get(&nets, w->net, nnet, &added);
                    nnet += added;
                    if (s < 0 || first_slots(&fnet, nnet) || first_see(&fnet, s, added, t)) goto done;
                }
                if (w->sim) {
                    int32_t s = map_get(&sims, w->sim, nsim, &added);
                    nsim += added;
                    if (s < 0 || first_slots(&fsim, nsim) || first_see(&fsim, s, added, t)) goto done;
                }
            }
            i = j;
        }
    }
    rc = 0;
done:
    partition_free(&P);
    map_free(&accts);
    map_free(&devs);
    map_free(&nets);
    map_free(&sims);
    distinct_free(&dh);
    distinct_free(&dd);
    first_free(&fdev);
    first_free(&fnet);
    first_free(&fsim);
    free(vel.v);
    free(amounts.arrived.v);
    free(amounts.sorted.v);
    free(R);
    free(srows);
    free(sfirst);
    return rc;
}

typedef struct {
    int64_t t;
    uint32_t v;
} Last;

static inline uint32_t last_recent(Last l, int64_t t) { return recent(l.t, t) ? l.v : 0; }

static inline double mismatch(uint32_t a, uint32_t b) { return (a >= 2 && b >= 2) ? (double)(a != b) : NAN; }

/* Per-device features: velocity, integrity, crash rate, locale against the SIM, accounts on the device,
 * and reports linked to the device. */
static int device_pass(Ctx *c) {
    Partition P = {0};
    Map devmap = {0}, accts = {0};
    Distinct dh = {H_US, D_US, since(c, W_US, H_US)}, dd = {D_US, HIST_US, since(c, HIST_US, D_US)};
    StepVec vel = {0}, di = {0};
    DRow *R = NULL;
    int32_t *srows = NULL;
    int64_t *sfirst = NULL;
    int rc = -1;
    if (partition(c, c->dev, &P, &devmap) || steps_by_code(c, 2, &devmap, P.codes, &srows, &sfirst) ||
        map_init(&accts, 64) || !(R = gather_devices(c, &P)))
        goto done;
    for (int32_t code = 0; code < P.codes; code++) {
        if (map_clear(&accts)) goto done;
        distinct_reset(&dh);
        distinct_reset(&dd);
        vel.len = di.len = 0;
        Head h1 = {H_US, 0, {0}}, hd = {D_US, 0, {0}}, hw = {W_US, 0, {0}};
        int64_t total[4] = {0}, dtotal[2] = {0}, reports = 0, sp = sfirst[code];
        int64_t hw_true = INT64_MIN, hw_known = INT64_MIN, root_true = INT64_MIN, root_known = INT64_MIN;
        int64_t root_app = INT64_MIN, hook_app = INT64_MIN;
        Last tz = {INT64_MIN, 0}, lang = {INT64_MIN, 0}, sim = {INT64_MIN, 0};
        int32_t nacct = 0;
        int64_t lo = P.first[code], hi = P.first[code + 1];
        for (int64_t i = lo; i < hi;) {
            int64_t t = R[i].t, j = i;
            while (j < hi && R[j].t == t) j++;
            for (int64_t k = i; k < j; k++) {
                const DRow *w = &R[k];
                int32_t q = w->q;
                if (q < 0) continue;
                head_move(&h1, vel.v, vel.len, t);
                head_move(&hd, vel.v, vel.len, t);
                head_move(&hw, di.v, di.len, t);
                XQ(q, F_DEV_TXN_1H) = (double)(total[0] - h1.sum[0]);
                XQ(q, F_DEV_TXN_24H) = (double)(total[0] - hd.sum[0]);
                XQ(q, F_DEV_FAILED_24H) = (double)(total[1] - hd.sum[1]);
                XQ(q, F_DEV_LOGIN_24H) = (double)(total[2] - hd.sum[2]);
                XQ(q, F_EMU_HW) = recent(hw_true, t) ? 1.0 : recent(hw_known, t) ? 0.0 : NAN;
                XQ(q, F_ROOTED) = recent(root_true, t) ? 1.0 : recent(root_known, t) ? 0.0 : NAN;
                XQ(q, F_ROOT_APP) = recent(root_app, t) ? 1.0 : 0.0;
                XQ(q, F_HOOK_APP) = recent(hook_app, t) ? 1.0 : 0.0;
                int64_t crashes = dtotal[0] - hw.sum[0], starts = dtotal[1] - hw.sum[1];
                XQ(q, F_CRASH_RATE) = starts ? (double)crashes / (double)starts : NAN;
                uint32_t z = last_recent(tz, t), l = last_recent(lang, t);
                uint32_t s = w->sim ? w->sim : last_recent(sim, t);
                XQ(q, F_SIM_TZ) = mismatch(s, z);
                XQ(q, F_SIM_LANG) = mismatch(s, l);
                XQ(q, F_TZ_LANG) = mismatch(z, l);
                XQ(q, F_ACC_ON_DEV_24H) = distinct_at(&dh, t);
                XQ(q, F_ACC_ON_DEV_31D) = distinct_at(&dd, t);
                step_counts(c, srows, &sp, sfirst[code + 1], t, &reports);
                XQ(q, F_DEV_REPORTS) = (double)reports;
            }
            for (int64_t k = i; k < j; k++) {
                const DRow *w = &R[k];
                uint8_t et = w->etype;
                if (et == 1 || et == 2) {
                    Step4 e = {t, et == 1, w->failed == 1, w->action == 1, 0};
                    if (StepVec_push(&vel, e)) goto done;
                    total[0] += e.a;
                    total[1] += e.b;
                    total[2] += e.c;
                } else if (et >= 3) {
                    Step4 e = {t, w->crash, et == 3, 0, 0};
                    if (StepVec_push(&di, e)) goto done;
                    dtotal[0] += e.a;
                    dtotal[1] += e.b;
                    if (w->hw_emu >= 0) hw_known = t;
                    if (w->hw_emu == 1) hw_true = t;
                    if (w->rooted >= 0) root_known = t;
                    if (w->rooted == 1) root_true = t;
                    if (w->root_app) root_app = t;
                    if (w->hook_app) hook_app = t;
                    if (w->tzc) tz = (Last){t, w->tzc};
                    if (w->langr) lang = (Last){t, w->langr};
                    if (w->sim) sim = (Last){t, w->sim};
                }
                if (w->acct) {
                    int added;
                    int32_t s = map_get(&accts, w->acct, nacct, &added);
                    nacct += added;
                    if (s < 0 || distinct_slots(&dh, nacct) || distinct_slots(&dd, nacct) ||
                        distinct_see(&dh, s, added, t) || distinct_see(&dd, s, added, t))
                        goto done;
                }
            }
            i = j;
        }
    }
    rc = 0;
done:
    partition_free(&P);
    map_free(&devmap);
    map_free(&accts);
    distinct_free(&dh);
    distinct_free(&dd);
    free(vel.v);
    free(di.v);
    free(R);
    free(srows);
    free(sfirst);
    return rc;
}

/* Accounts per network prefix in 24 h (hourly sightings since start - 24 h). */
static int network_pass(Ctx *c) {
    Partition P = {0};
    Map netmap = {0}, accts = {0};
    Distinct dh = {H_US, D_US, since(c, D_US, H_US)};
    NRow *R = NULL;
    int rc = -1;
    if (partition(c, c->net, &P, &netmap) || map_init(&accts, 64) || !(R = gather_networks(c, &P))) goto done;
    for (int32_t code = 0; code < P.codes; code++) {
        if (map_clear(&accts)) goto done;
        distinct_reset(&dh);
        int32_t nacct = 0;
        int64_t lo = P.first[code], hi = P.first[code + 1];
        for (int64_t i = lo; i < hi;) {
            int64_t t = R[i].t, j = i;
            while (j < hi && R[j].t == t) j++;
            for (int64_t k = i; k < j; k++) {
                int32_t q = R[k].q;
                if (q >= 0) XQ(q, F_ACC_ON_NET_24H) = distinct_at(&dh, t);
            }
            for (int64_t k = i; k < j; k++) {
                const NRow *w = &R[k];
                if (!w->acct) continue;
                int added;
                int32_t s = map_get(&accts, w->acct, nacct, &added);
                nacct += added;
                if (s < 0 || distinct_slots(&dh, nacct) || distinct_see(&dh, s, added, t)) goto done;
            }
            i = j;
        }
    }
    rc = 0;
done:
    partition_free(&P);
    map_free(&netmap);
    map_free(&accts);
    distinct_free(&dh);
    free(R);
    return rc;
}

/* Counterparty reports, app versions behind the newest of the platform, and the row's own flags. */
static int query_pass(Ctx *c, const int64_t *qidx, int32_t nq) {
    Map cps = {0}, platforms = {0};
    int64_t *sums = NULL;
    int32_t *newest = NULL;
    int rc = -1;
    if (map_init(&cps, 1024) || map_init(&platforms, 16)) goto done;
    int32_t ncp = 0, nplat = 0;
    for (Py_ssize_t j = 0; j < c->m; j++)
        if (c->skind[j] == 0 && c->skey[j]) {
            int added;
            if (map_get(&cps, c->skey[j], ncp, &added) == -2) goto done;
            ncp += added;
        }
    sums = calloc((size_t)ncp + 1, sizeof(int64_t));
    /* newest major per platform and day, over the days of the rows before end */
    int64_t day0 = INT64_MAX, day1 = INT64_MIN;
    for (Py_ssize_t i = 0; i < c->n && c->t[i] < c->end; i++) {
        if (c->major[i] == NO_MAJOR || !c->platform[i]) continue;
        int added;
        if (map_get(&platforms, c->platform[i], nplat, &added) == -2) goto done;
        nplat += added;
        int64_t d = c->t[i] / D_US;
        day0 = d < day0 ? d : day0;
        day1 = d > day1 ? d : day1;
    }
    int64_t days = nplat ? day1 - day0 + 1 : 0;
    newest = malloc((size_t)(nplat * days + 1) * sizeof(int32_t));
    if (!sums || !newest) goto done;
    for (int64_t k = 0; k < nplat * days; k++) newest[k] = NO_MAJOR;
    for (Py_ssize_t i = 0; i < c->n && c->t[i] < c->end; i++) {
        if (c->major[i] == NO_MAJOR || !c->platform[i]) continue;
        int32_t *cell = &newest[map_find(&platforms, c->platform[i]) * days + (c->t[i] / D_US - day0)];
        if (c->major[i] > *cell) *cell = c->major[i];
    }
    Py_ssize_t sp = 0;
    for (int32_t q = 0; q < nq; q++) {
        int64_t r = qidx[q], t = c->t[r];
        while (sp < c->m && c->st[sp] < t) {
            if (c->skind[sp] == 0 && c->skey[sp]) sums[map_find(&cps, c->skey[sp])] += c->sstep[sp];
            sp++;
        }
        int32_t at = c->cp[r] ? map_find(&cps, c->cp[r]) : -1;
        XQ(q, F_CP_REPORTS) = at >= 0 ? (double)sums[at] : 0.0;
        double behind = 0.0;
        int32_t p = c->platform[r] ? map_find(&platforms, c->platform[r]) : -1;
        if (p >= 0 && c->major[r] != NO_MAJOR) {
            int64_t d = t / D_US - day0;
            int32_t best = NO_MAJOR;
            for (int64_t e = d - 31; e <= d - 1; e++)
                if (e >= 0 && e < days && newest[p * days + e] > best) best = newest[p * days + e];
            if (best != NO_MAJOR && best > c->major[r]) behind = (double)best - (double)c->major[r];
        }
        XQ(q, F_APP_BEHIND) = behind;
        if (!c->dev[r]) XQ(q, F_DEV_REPORTS) = 0.0; /* no device: no report linked to it */
        XQ(q, F_EMU_MODEL) = c->emu_model[r] < 0 ? NAN : (double)c->emu_model[r];
        XQ(q, F_IMEI_BAD) = c->imei_ok[r] < 0 ? NAN : (double)(1 - c->imei_ok[r]);
        XQ(q, F_AMOUNT) = c->amount[r]; /* NaN when missing, as the SQL's NULL */
        XQ(q, F_FAILED_STATUS) = c->failed[r] < 0 ? NAN : (double)c->failed[r];
        XQ(q, F_BANK) = c->bank[r] < 0 ? NAN : (double)c->bank[r];
    }
    rc = 0;
done:
    map_free(&cps);
    map_free(&platforms);
    free(sums);
    free(newest);
    return rc;
}

typedef struct {
    Ctx *c;
    int rc;
} Job;

static void *device_and_network(void *arg) {
    Job *j = arg;
    j->rc = device_pass(j->c) || network_pass(j->c);
    return NULL;
}

/* ---- module entry ---- */

typedef struct {
    Py_buffer b;
    int held;
} Buf;

static int take(PyObject *seq, Py_ssize_t i, Buf *out, Py_ssize_t itemsize, Py_ssize_t n, int writable) {
    PyObject *o = PyTuple_GET_ITEM(seq, i);
    if (PyObject_GetBuffer(o, &out->b, writable ? PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS : PyBUF_C_CONTIGUOUS))
        return -1;
    out->held = 1;
    if (out->b.len != n * itemsize) {
        PyErr_Format(PyExc_ValueError, "array %zd: %zd bytes, expected %zd", i, out->b.len, n * itemsize);
        return -1;
    }
    return 0;
}

#define NCOLS 22
static const Py_ssize_t SIZES[NCOLS] = {8, 8, 8, 8, 8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 8, 4, 4, 4, 4, 4};

/* windows(columns, steps, start, end, qidx, X)
 * columns: t, acct, dev, net, cp, etype, action, crash, root_app, hook_app, failed, hw_emu, rooted,
 *          emu_model, imei_ok, bank, amount, sim, tzc, langr, platform, major (time order);
 * steps: t, kind, key, step (time order); qidx: int64 row of each query; X: float64 nq x k (k >= NF), NaN-filled:
 * the engine fills its first NF columns, and the caller may put more features in the others. */
static PyObject *windows(PyObject *self, PyObject *args) {
    PyObject *cols, *steps;
    long long start, end;
    Py_buffer qb = {0}, xb = {0};
    if (!PyArg_ParseTuple(args, "O!O!LLy*w*", &PyTuple_Type, &cols, &PyTuple_Type, &steps, &start, &end, &qb, &xb))
        return NULL;
    Buf b[NCOLS + 4] = {0};
    PyObject *result = NULL;
    Ctx c = {0};
    if (PyTuple_GET_SIZE(cols) != NCOLS || PyTuple_GET_SIZE(steps) != 4) {
        PyErr_SetString(PyExc_ValueError, "expected 22 signal columns and 4 step columns");
        goto done;
    }
    PyObject *first = PyTuple_GET_ITEM(cols, 0);
    Py_ssize_t n = PyObject_Length(first), m = PyObject_Length(PyTuple_GET_ITEM(steps, 0));
    if (n < 0 || m < 0) goto done;
    if (n >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many rows for one call");
        goto done;
    }
    for (int i = 0; i < NCOLS; i++)
        if (take(cols, i, &b[i], SIZES[i], n, 0)) goto done;
    static const Py_ssize_t STEP_SIZES[4] = {8, 1, 8, 1};
    for (int i = 0; i < 4; i++)
        if (take(steps, i, &b[NCOLS + i], STEP_SIZES[i], m, 0)) goto done;
    Py_ssize_t nq = qb.len / 8;
    int64_t width = nq ? xb.len / (nq * 8) : NF;
    if (xb.len != nq * width * 8 || width < NF) {
        PyErr_SetString(PyExc_ValueError, "X must be nq x k float64, k >= NF");
        goto done;
    }
    c = (Ctx){n, b[0].b.buf, b[1].b.buf, b[2].b.buf, b[3].b.buf, b[4].b.buf, b[5].b.buf, b[6].b.buf,
              b[7].b.buf, b[8].b.buf, b[9].b.buf, b[10].b.buf, b[11].b.buf, b[12].b.buf, b[13].b.buf,
              b[14].b.buf, b[15].b.buf, b[16].b.buf, b[17].b.buf, b[18].b.buf, b[19].b.buf, b[20].b.buf,
              b[21].b.buf, m, b[22].b.buf, b[23].b.buf, b[24].b.buf, b[25].b.buf, start, end, NULL, xb.buf, width};
    const int64_t *qidx = qb.buf;
    for (Py_ssize_t i = 1; i < n; i++)
        if (c.t[i] < c.t[i - 1]) {
            PyErr_SetString(PyExc_ValueError, "signal rows must be in time order");
            goto done;
        }
    for (Py_ssize_t j = 1; j < m; j++)
        if (c.st[j] < c.st[j - 1]) {
            PyErr_SetString(PyExc_ValueError, "report steps must be in time order");
            goto done;
        }
    c.qidx = qb.buf;
    c.nq = nq;
    c.qrow = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (!c.qrow) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) c.qrow[i] = -1;
    for (Py_ssize_t q = 0; q < nq; q++) {
        int64_t r = qidx[q];
        if (r < 0 || r >= n || (q && r <= qidx[q - 1]) || c.t[r] < start || c.t[r] >= end || !c.acct[r]) {
            PyErr_SetString(PyExc_ValueError, "query rows must be increasing transaction rows in [start, end)");
            goto done;
        }
        c.qrow[r] = (int32_t)q;
    }
    int failed;
    Py_BEGIN_ALLOW_THREADS
    Job j = {&c, 0};
    pthread_t other;
    int threaded = pthread_create(&other, NULL, device_and_network, &j) == 0;
    if (!threaded) device_and_network(&j);
    failed = account_pass(&c);
    if (threaded) pthread_join(other, NULL);
    failed = failed || j.rc || query_pass(&c, qidx, (int32_t)nq);
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    free(c.qrow);
    for (int i = 0; i < NCOLS + 4; i++)
        if (b[i].held) PyBuffer_Release(&b[i].b);
    PyBuffer_Release(&qb);
    PyBuffer_Release(&xb);
    return result;
}

/* ---- the rows a feature can see ---- */

typedef struct {
    uint64_t a, b;
    int64_t bucket, first; /* first: the bucket's earliest time (rows tied with it are kept too) */
} Bucket;

typedef struct {
    Bucket *slots;
    size_t cap, used;
} BucketSet;

/* Sets *first to the bucket's first time (``t`` when the bucket is new); -1 when out of memory. */
static int bucket_first(BucketSet *s, uint64_t a, uint64_t b, int64_t bucket, int64_t t, int64_t *first) {
    if ((s->used + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1 << 16;
        Bucket *slots = calloc(cap, sizeof(Bucket));
        if (!slots) return -1;
        for (size_t j = 0; j < s->cap; j++)
            if (s->slots[j].a) {
                size_t i = mix(s->slots[j].a ^ mix(s->slots[j].b ^ (uint64_t)s->slots[j].bucket)) & (cap - 1);
                while (slots[i].a) i = (i + 1) & (cap - 1);
                slots[i] = s->slots[j];
            }
        free(s->slots);
        s->slots = slots;
        s->cap = cap;
    }
    size_t mask = s->cap - 1, i = mix(a ^ mix(b ^ (uint64_t)bucket)) & mask;
    while (s->slots[i].a) {
        Bucket *x = &s->slots[i];
        if (x->a == a && x->b == b && x->bucket == bucket) {
            *first = x->first;
            return 0;
        }
        i = (i + 1) & mask;
    }
    s->slots[i] = (Bucket){a, b, bucket, t};
    s->used++;
    *first = t;
    return 0;
}

/* keep_firsts(t, etype, acct, dev, net, sim, platform, major, keep)
 * Marks the rows a feature can see (rows in time order): every transaction, account, device-info,
 * app-list and crash event, and of the others the first of their (account, device) and (account,
 * network) hour, (account, SIM country) day and (platform, major version) day. */
static PyObject *keep_firsts(PyObject *self, PyObject *args) {
    PyObject *cols;
    Py_buffer kb = {0};
    if (!PyArg_ParseTuple(args, "O!w*", &PyTuple_Type, &cols, &kb)) return NULL;
    Buf b[8] = {0};
    static const Py_ssize_t sizes[8] = {8, 1, 8, 8, 8, 4, 4, 4};
    PyObject *result = NULL;
    BucketSet sets[4] = {0};
    Py_ssize_t n = kb.len;
    if (PyTuple_GET_SIZE(cols) != 8) {
        PyErr_SetString(PyExc_ValueError, "expected 8 columns");
        goto done;
    }
    for (int i = 0; i < 8; i++)
        if (take(cols, i, &b[i], sizes[i], n, 0)) goto done;
    const int64_t *t = b[0].b.buf;
    const uint8_t *etype = b[1].b.buf;
    const uint64_t *acct = b[2].b.buf, *dev = b[3].b.buf, *net = b[4].b.buf;
    const uint32_t *sim = b[5].b.buf, *platform = b[6].b.buf;
    const int32_t *major = b[7].b.buf;
    uint8_t *keep = kb.buf;
    for (Py_ssize_t i = 1; i < n; i++)
        if (t[i] < t[i - 1]) {
            PyErr_SetString(PyExc_ValueError, "rows must be in time order");
            goto done;
        }
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !failed; i++) {
        int64_t f = 0;
        int k = etype[i] != 0;
        if (acct[i] && dev[i]) {
            failed |= bucket_first(&sets[0], acct[i], dev[i], t[i] / H_US, t[i], &f);
            k |= f == t[i];
        }
        if (acct[i] && net[i]) {
            failed |= bucket_first(&sets[1], acct[i], net[i], t[i] / H_US, t[i], &f);
            k |= f == t[i];
        }
        if (acct[i] && sim[i]) {
            failed |= bucket_first(&sets[2], acct[i], sim[i], t[i] / D_US, t[i], &f);
            k |= f == t[i];
        }
        if (platform[i] && major[i] != NO_MAJOR) {
            failed |= bucket_first(&sets[3], platform[i], (uint64_t)(uint32_t)major[i] + 1, t[i] / D_US, t[i], &f);
            k |= f == t[i];
        }
        keep[i] = (uint8_t)k;
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    for (int i = 0; i < 4; i++) free(sets[i].slots);
    for (int i = 0; i < 8; i++)
        if (b[i].held) PyBuffer_Release(&b[i].b);
    PyBuffer_Release(&kb);
    return result;
}

static PyObject *feature_count(PyObject *self, PyObject *unused) { return PyLong_FromLong(NF); }

static PyMethodDef methods[] = {
    {"windows", windows, METH_VARARGS, "Fill X with the point-in-time features of the query rows."},
    {"feature_count", feature_count, METH_NOARGS, "The number of feature columns the engine fills."},
    {"keep_firsts", keep_firsts, METH_VARARGS, "Mark the signal rows a feature can see."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_windows", "Point-in-time feature windows.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__windows(void) { return PyModule_Create(&module); }
