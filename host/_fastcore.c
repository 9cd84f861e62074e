/*
 * host/_fastcore.c -- sequential C kernels for legrep's analysis hot path.
 *
 * Each piece is called from the Python stage that owns and documents it:
 *
 *   TiltKernel   the orientation stage of host.fusion.orientation: gyro strapdown, the
 *                accelerometer low-passed in an almost-inertial frame (after VQF, Laidig &
 *                Seel 2023), motion and rest gyro-bias estimation, still and rest detection;
 *                host/fusion/reference.py is its plain-Python specification, step by step.
 *   hip_angles   the hip angle: the long axis's flexion in the exercise plane (host.fusion.angle).
 *   tilt_angles  the up vector's rotation about the flexion axis (heading-free; host.fusion.angle).
 *   plane_angles, level_tests, movement_anchor, movement_sums, rest_angles, first_lower_rest, anchor_frame,
 *                row_offset  the array work of one decision level of
 *                host.fusion.angle.HipAngleEstimator (host/fusion/angle_reference.py: numpy forms).
 *   RepMachine   the rep state machine of host.reps.segmenter.RepSegmenter (DOWN / UP / FALL
 *                over the segmenter's sample log) with the stopwatch measures of each rep it
 *                closes; host/reps/reference.py is its plain-Python specification, written
 *                operation for operation alike so that tests can require identical numbers.
 *                measure (one rep's measures) and arm_flags (where rests have lasted
 *                arm_rest_s) are exposed for tests.
 *
 * Everything is a sequential loop over samples whose state is carried in the TiltKernel /
 * RepMachine object (no global mutable state), so any chunking of a stream gives
 * bit-identical results.  Arrays arrive through the buffer protocol (no numpy headers at
 * build time): float64 ('d') and bool ('?') buffers of the stated shapes; strided
 * buffers are accepted.  Wrong dtypes or shapes raise one ValueError that says what was
 * expected and what arrived.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <math.h>
#include <string.h>

#define RAD2DEG (180.0 / 3.14159265358979323846)

/* ------------------------------------------------------------------ buffer helpers */

/* A borrowed view of a 1-D or (N, 3) buffer, with element strides in bytes. */
typedef struct {
    Py_buffer view;
    char *base;
    Py_ssize_t n;    /* rows */
    Py_ssize_t s0;   /* byte stride between rows */
    Py_ssize_t s1;   /* byte stride between columns ((N, 3) only) */
    int held;
} Arr;

static const char *
format_name(const char *fmt)
{
    return fmt ? fmt : "B";
}

/* Is this a buffer format for the given one-character type ('d' or '?')?  Accepts the
   optional byte-order prefixes numpy and array.array use for native data. */
static int
format_is(const char *fmt, char want)
{
    if (fmt == NULL)
        return want == 'B';
    if (fmt[0] == '@' || fmt[0] == '=' || fmt[0] == '<')
        fmt++;
    return fmt[0] == want && fmt[1] == '\0';
}

/* Get `obj` as a buffer of `want` ('d' float64 or '?' bool) with ndim `ndim` (1, or 2 with
   3 columns); `rows` >= 0 requires that many rows.  `writable` asks for a writable buffer.
   On failure sets a ValueError naming `what` and returns -1. */
static int
arr_get(PyObject *obj, Arr *a, const char *what, char want, int ndim, Py_ssize_t rows, int writable)
{
    /* ndim 4: a 2-D buffer of 4 columns (quaternions) */
    const int cols = ndim == 4 ? 4 : 3;
    const char *shape2 = ndim == 4 ? "(N, 4)" : "(N, 3)";
    ndim = ndim == 4 ? 2 : ndim;
    const char *dtype = want == 'd' ? "float64" : "bool";
    int flags = PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    a->held = 0;
    if (PyObject_GetBuffer(obj, &a->view, flags) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be a %s%s array, got %.100s", what,
                     writable ? "writable " : "", dtype, Py_TYPE(obj)->tp_name);
        return -1;
    }
    a->held = 1;
    if (!format_is(a->view.format, want) || a->view.itemsize != (want == 'd' ? 8 : 1)) {
        PyErr_Format(PyExc_ValueError, "%s must be a %s array, got buffer format '%s'", what, dtype,
                     format_name(a->view.format));
        goto fail;
    }
    if (a->view.ndim != ndim || (ndim == 2 && a->view.shape[1] != cols)) {
        if (a->view.ndim == 1)
            PyErr_Format(PyExc_ValueError, "%s must have shape %s, got (%zd,)", what, ndim == 1 ? "(N,)" : shape2,
                         a->view.shape[0]);
        else if (a->view.ndim == 2)
            PyErr_Format(PyExc_ValueError, "%s must have shape %s, got (%zd, %zd)", what,
                         ndim == 1 ? "(N,)" : shape2, a->view.shape[0], a->view.shape[1]);
        else
            PyErr_Format(PyExc_ValueError, "%s must have shape %s, got %d dimensions", what,
                         ndim == 1 ? "(N,)" : shape2, a->view.ndim);
        goto fail;
    }
    a->base = (char *)a->view.buf;
    a->n = a->view.shape[0];
    a->s0 = a->view.strides[0];
    a->s1 = ndim == 2 ? a->view.strides[1] : 0;
    if (rows >= 0 && a->n != rows) {
        PyErr_Format(PyExc_ValueError, "%s must have %zd rows (like time_s), got %zd", what, rows, a->n);
        goto fail;
    }
    return 0;
fail:
    PyBuffer_Release(&a->view);
    a->held = 0;
    return -1;
}

static void
arr_release(Arr *a)
{
    if (a->held) {
        PyBuffer_Release(&a->view);
        a->held = 0;
    }
}

#define D1(a, i) (*(const double *)((a).base + (i) * (a).s0))
#define D2(a, i, j) (*(const double *)((a).base + (i) * (a).s0 + (j) * (a).s1))
#define B1(a, i) (*(const char *)((a).base + (i) * (a).s0))

/* Read a length-3 float vector (any sequence of numbers) into out. */
static int
vec3(PyObject *obj, double out[3], const char *what)
{
    if (!PyList_CheckExact(obj) && !PyTuple_CheckExact(obj) && PyObject_CheckBuffer(obj)) {
        /* a float64 buffer of 3 (a numpy vector): its doubles read directly (the numbers a
           sequence of its items gives, without making 3 scalar objects) */
        Py_buffer v;
        if (PyObject_GetBuffer(obj, &v, PyBUF_STRIDES | PyBUF_FORMAT) == 0) {
            const int ok = v.ndim == 1 && v.shape[0] == 3 && v.itemsize == 8 && format_is(v.format, 'd');
            if (ok)
                for (int k = 0; k < 3; k++)
                    out[k] = *(const double *)((const char *)v.buf + k * v.strides[0]);
            PyBuffer_Release(&v);
            if (ok)
                return 0;
        } else {
            PyErr_Clear();
        }
    }
    PyObject *seq = PySequence_Fast(obj, "");
    if (seq == NULL || PySequence_Fast_GET_SIZE(seq) != 3) {
        Py_XDECREF(seq);
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be 3 numbers, got %.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    for (int k = 0; k < 3; k++) {
        out[k] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, k));
        if (out[k] == -1.0 && PyErr_Occurred()) {
            Py_DECREF(seq);
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "%s must be 3 numbers, got a non-number", what);
            return -1;
        }
    }
    Py_DECREF(seq);
    return 0;
}

static inline double
dot3(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

/* Chunks at least this long are processed with the GIL released (a thread switch costs microseconds). */
#define GIL_FREE_ROWS 512

/* ------------------------------------------------------------------ TiltKernel */

/* The orientation stage of host.fusion.orientation (one thigh sensor): gyro strapdown,
   accelerometer low-passed in the almost-inertial I frame, motion and rest gyro-bias
   estimation, still and rest detection.  host/fusion/reference.py is the specification:
   this loop performs the same operations in the same order (step numbers below are its). */

#define SERIES_H2 0.0025
#define DEG2RAD (3.14159265358979323846 / 180.0)

typedef struct {
    /* --- fixed parameters (see reference.TiltParams) --- */
    double tau_acc;
    double tau_acc2;    /* second low-pass stage, s (0: first order) */
    double motion_gain; /* 1 / bias_motion_tau_s, or 0 */
    double motion_tau, fast_tau; /* bias_motion_tau_s, bias_motion_fast_tau_s */
    int unsure;         /* step 3b: the calibration's bias is unsure until the first bias rest */
    double t_first;     /* time of the first sample fed (NaN before it) */
    Py_ssize_t W;       /* still window, samples */
    double still2, clip2;
    double still_bias2; /* still_bias_dps^2 (0: step 5b off) */
    Py_ssize_t B;       /* rest window, samples */
    double rest_gyro2, rest_acc2, rest_cos, bias_jump2, bias_gain;
    double max_gap_s, dt_nominal_s;
    double acc_memory, acc_ridge, acc_max; /* step 7 (acc_memory 0: off) */
    double acc_turn;    /* acc_bias_turn_deg, rad */
    double turn;        /* the gyro's path since the last rest event, rad (sum of |step rotation| per axis) */
    double gap_s;       /* step 8: a longer step means lost samples */
    int uncertain;
    long long since_gap; /* samples since the last gap (or the start), this one included */
    double gap_tau_acc, gap_recover; /* after lost samples: a shorter low-pass for this long, s */
    double recover_left; /* time the shorter low-pass still runs, s */
    double onset_tau, onset_decay, onset_rest; /* step 2b: the low-pass at a movement's onset after a long rest */
    double since_still; /* time since the last still sample, s (0 while still) */
    double still_run;   /* length of the current (or the last) run of still samples, s */
    int was_still;      /* the previous sample was still */
    int onset;          /* step 2b applies to this movement (it began after a still run of onset_rest) */
    Py_ssize_t trim;    /* step 6: a rest window's last samples left out of its bias estimate */
    double lever_tau, lever_min2, lever_ridge, lever_max; /* step 2a (lever_tau 0: off) */
    double w_prev[3];   /* previous bias-corrected rate, rad/s */
    int has_wprev;
    double lever[3], ktk[6], kty[3];
    long long lever_n;
    double g_norm;      /* |ref_acc - acc_bias|: the accelerometer's 1 g */
    /* --- carried state --- */
    double acc_bias[3]; /* accelerometer bias estimate, g */
    double ref_acc[3];  /* reference rest's accelerometer mean */
    double uref[3];     /* normalize(ref_acc - acc_bias) */
    double nrm[9], z[3]; /* normal equations of the accelerometer bias */
    double m_prev[9], y_prev[3];
    int has_mprev;
    double pend[3];     /* estimate waiting for a rest near the reference pose */
    int has_pend;
    double step_rad;    /* acc_bias_step_deg, rad */
    double q[4];        /* sensor -> I frame */
    double lp[3];       /* low-passed accelerometer, I frame (the last stage) */
    double lp1[3];      /* the first low-pass stage (equal to lp when tau_acc2 is 0) */
    double bias[3];     /* gyro bias, deg/s */
    double g_prev[3];
    int has_prev;
    double t_prev;      /* NaN before the first sample */
    long long n;        /* samples processed */
    double cs;          /* running sum of the clipped squared rate */
    double *still_ring; /* W: cs after each of the last W samples */
    Py_ssize_t w_pos;
    double cum[8];      /* running sums: g (3), |g|^2, a (3), |a|^2 */
    double *ring;       /* (B + 1) x 8: cum after each of the last B + 1 samples */
    Py_ssize_t r_pos;
    /* --- diagnostics --- */
    long long n_gaps, n_bias_updates, n_still, n_acc_bias_updates, n_gap_snaps;
    double max_gap_seen_s;
} TiltCore;

static void
tilt_uref(TiltCore *c)
{
    double r[3] = {c->ref_acc[0] - c->acc_bias[0], c->ref_acc[1] - c->acc_bias[1], c->ref_acc[2] - c->acc_bias[2]};
    double norm = sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
    c->g_norm = norm;
    double inv = 1.0 / norm;
    c->uref[0] = r[0] * inv, c->uref[1] = r[1] * inv, c->uref[2] = r[2] * inv;
}

typedef struct {
    PyObject_HEAD
    TiltCore c;
    int running; /* run() is in its loop (the GIL released): another run() or __init__ is refused */
} TiltKernel;

static void
TiltKernel_dealloc(TiltKernel *self)
{
    PyMem_Free(self->c.still_ring);
    PyMem_Free(self->c.ring);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
TiltKernel_init(TiltKernel *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"gravity0", "gyro_bias0_dps", "tau_acc_s", "bias_motion_tau_s", "still_n",
                             "still_gyro_dps", "bias_n", "rest_gyro_dps", "rest_acc_g", "rest_tilt_deg",
                             "bias_jump_dps", "bias_gain", "max_gap_s", "dt_nominal_s", "t_prev_s",
                             "acc_bias_memory", "acc_bias_ridge", "acc_bias_max_g", "gap_s",
                             "lever_tau_s", "lever_min_dps", "lever_ridge", "lever_max_m", "acc_bias_step_deg",
                             "gap_tau_acc_s", "gap_recover_s", "tau_acc2_s",
                             "acc_bias_turn_deg", "still_bias_dps", "bias_motion_fast_tau_s", "bias_unsure",
                             "onset_tau_acc_s", "onset_decay_s", "onset_rest_s", "bias_trim_n", NULL};
    PyObject *g0, *b0;
    double motion_tau, still_gyro, rest_gyro, rest_acc, rest_tilt, bias_jump, lever_min, step_deg, turn_deg = 1e300;
    double still_bias = 0.0, fast_tau = 0.0;
    int unsure = 0;
    TiltCore *c = &self->c;
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "TiltKernel expected to be idle, got __init__ while run() is running on another thread");
        return -1;
    }
    c->acc_memory = 0.0, c->acc_ridge = 0.05, c->acc_max = 0.2;
    c->tau_acc2 = 0.0;
    c->onset_tau = 0.0, c->onset_decay = 1.0, c->onset_rest = 0.0, c->trim = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "$OOddndndddddddddddddddddddddddpdddn:TiltKernel", kwlist, &g0, &b0, &c->tau_acc,
                                     &motion_tau, &c->W, &still_gyro, &c->B, &rest_gyro, &rest_acc, &rest_tilt,
                                     &bias_jump, &c->bias_gain, &c->max_gap_s, &c->dt_nominal_s, &c->t_prev,
                                     &c->acc_memory, &c->acc_ridge, &c->acc_max, &c->gap_s, &c->lever_tau,
                                     &lever_min, &c->lever_ridge, &c->lever_max, &step_deg, &c->gap_tau_acc,
                                     &c->gap_recover, &c->tau_acc2, &turn_deg, &still_bias, &fast_tau,
                                     &unsure, &c->onset_tau, &c->onset_decay, &c->onset_rest, &c->trim))
        return -1;
    if (vec3(g0, c->lp, "gravity0") < 0 || vec3(b0, c->bias, "gyro_bias0_dps") < 0)
        return -1;
    if (c->W < 1 || c->B < 8 || !(c->tau_acc > 0.0) || !(dot3(c->lp, c->lp) > 0.0)) {
        PyErr_Format(PyExc_ValueError,
                     "expected still_n >= 1, bias_n >= 8, tau_acc_s > 0 and a non-zero gravity0, got %zd, %zd, %g",
                     c->W, c->B, c->tau_acc);
        return -1;
    }
    if (c->trim < 0 || c->trim > c->B / 2 || !(c->onset_decay > 0.0)) {
        PyErr_Format(PyExc_ValueError, "expected 0 <= bias_trim_n <= bias_n / 2 and onset_decay_s > 0, got %zd and %g",
                     c->trim, c->onset_decay);
        return -1;
    }
    c->motion_gain = motion_tau > 0.0 ? 1.0 / motion_tau : 0.0;
    c->motion_tau = motion_tau, c->fast_tau = fast_tau;
    c->unsure = unsure && fast_tau > 0.0 && motion_tau > 0.0;
    c->t_first = NAN;
    c->still2 = still_gyro * still_gyro;
    c->clip2 = 4.0 * still_gyro * still_gyro;
    c->still_bias2 = still_bias > 0.0 ? still_bias * still_bias : 0.0;
    c->rest_gyro2 = rest_gyro * rest_gyro;
    c->rest_acc2 = rest_acc * rest_acc;
    c->rest_cos = cos(rest_tilt * DEG2RAD);
    c->bias_jump2 = bias_jump * bias_jump;
    c->q[0] = 1.0, c->q[1] = c->q[2] = c->q[3] = 0.0;
    for (int j = 0; j < 3; j++) {
        c->ref_acc[j] = c->lp1[j] = c->lp[j];
        c->acc_bias[j] = c->z[j] = c->y_prev[j] = 0.0;
    }
    for (int j = 0; j < 9; j++)
        c->nrm[j] = c->m_prev[j] = 0.0;
    c->has_mprev = 0;
    c->n_acc_bias_updates = c->n_gap_snaps = 0;
    c->uncertain = 0;
    c->since_gap = 0;
    c->recover_left = 0.0;
    c->since_still = c->still_run = 0.0;
    c->was_still = c->onset = 0;
    c->lever_min2 = (lever_min * DEG2RAD) * (lever_min * DEG2RAD);
    c->step_rad = step_deg * DEG2RAD;
    c->acc_turn = turn_deg * DEG2RAD;
    c->turn = 0.0;
    c->has_wprev = 0;
    c->lever_n = 0;
    for (int j = 0; j < 3; j++)
        c->w_prev[j] = c->lever[j] = c->kty[j] = 0.0;
    for (int j = 0; j < 6; j++)
        c->ktk[j] = 0.0;
    tilt_uref(c);
    c->has_prev = 0;
    c->n = 0;
    c->cs = 0.0;
    c->w_pos = c->r_pos = 0;
    for (int j = 0; j < 8; j++)
        c->cum[j] = 0.0;
    PyMem_Free(c->still_ring);
    PyMem_Free(c->ring);
    c->still_ring = PyMem_Calloc((size_t)c->W, sizeof(double));
    c->ring = PyMem_Calloc((size_t)(c->B + 1) * 8, sizeof(double));
    if (!c->still_ring || !c->ring) {
        PyErr_NoMemory();
        return -1;
    }
    c->n_gaps = c->n_bias_updates = c->n_still = 0;
    c->max_gap_seen_s = 0.0;
    return 0;
}

/* v' = v + w t + q_v x t with t = 2 q_v x v: rotate v by the unit quaternion (w, x, y, z). */
static inline void
qrot(double w, double x, double y, double z, const double v[3], double out[3])
{
    double tx = 2.0 * (y * v[2] - z * v[1]);
    double ty = 2.0 * (z * v[0] - x * v[2]);
    double tz = 2.0 * (x * v[1] - y * v[0]);
    out[0] = v[0] + w * tx + (y * tz - z * ty);
    out[1] = v[1] + w * ty + (z * tx - x * tz);
    out[2] = v[2] + w * tz + (x * ty - y * tx);
}

/* Row-major rotation matrix of the unit quaternion q. */
static void
qmatrix(const double q[4], double m[9])
{
    double w = q[0], x = q[1], y = q[2], z = q[3];
    m[0] = 1.0 - 2.0 * (y * y + z * z), m[1] = 2.0 * (x * y - w * z), m[2] = 2.0 * (x * z + w * y);
    m[3] = 2.0 * (x * y + w * z), m[4] = 1.0 - 2.0 * (x * x + z * z), m[5] = 2.0 * (y * z - w * x);
    m[6] = 2.0 * (x * z - w * y), m[7] = 2.0 * (y * z + w * x), m[8] = 1.0 - 2.0 * (x * x + y * y);
}

/* The symmetric 3 x 3 system n x = z (row-major n) by cofactors; 0 when singular
   (reference._solve3, the same operations). */
static void
solve3(const double n[9], const double z[3], double x[3])
{
    double c00 = n[4] * n[8] - n[5] * n[7], c01 = n[5] * n[6] - n[3] * n[8], c02 = n[3] * n[7] - n[4] * n[6];
    double det = n[0] * c00 + n[1] * c01 + n[2] * c02;
    x[0] = x[1] = x[2] = 0.0;
    if (det > 0.0) {
        double c11 = n[0] * n[8] - n[2] * n[6], c12 = n[1] * n[6] - n[0] * n[7], c22 = n[0] * n[4] - n[1] * n[3];
        double inv = 1.0 / det;
        x[0] = (c00 * z[0] + c01 * z[1] + c02 * z[2]) * inv;
        x[1] = (c01 * z[0] + c11 * z[1] + c12 * z[2]) * inv;
        x[2] = (c02 * z[0] + c12 * z[1] + c22 * z[2]) * inv;
    }
}

/* Step 7: one rest pair into the accelerometer-bias estimate (reference._acc_bias_event). */
static void
tilt_acc_bias_event(TiltCore *c, const double ma[3])
{
    double m[9];
    qmatrix(c->q, m);
    double y[3] = {m[0] * ma[0] + m[1] * ma[1] + m[2] * ma[2], m[3] * ma[0] + m[4] * ma[1] + m[5] * ma[2],
                   m[6] * ma[0] + m[7] * ma[1] + m[8] * ma[2]};
    double mp[9], yp[3];
    int had = c->has_mprev;
    memcpy(mp, c->m_prev, sizeof mp);
    memcpy(yp, c->y_prev, sizeof yp);
    memcpy(c->m_prev, m, sizeof m);
    memcpy(c->y_prev, y, sizeof y);
    c->has_mprev = 1;
    const double r = c->turn / c->acc_turn;
    c->turn = 0.0;
    if (!had)
        return;
    /* the gyro relates the two poses less well the more it turned between them (Tukey's
       biweight of the path: 1 at rest, 0 from acc_turn on) */
    const double u = r < 1.0 ? 1.0 - r * r : 0.0;
    const double wt = u * u;
    double am[9], dy[3] = {y[0] - yp[0], y[1] - yp[1], y[2] - yp[2]};
    for (int j = 0; j < 9; j++)
        am[j] = m[j] - mp[j];
    double lam = 1.0 - 1.0 / c->acc_memory;
    double *nrm = c->nrm, *z = c->z;
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 3; k++)
            nrm[3 * i + k] = lam * nrm[3 * i + k] + wt * (am[i] * am[k] + am[3 + i] * am[3 + k] + am[6 + i] * am[6 + k]);
        z[i] = lam * z[i] + wt * (am[i] * dy[0] + am[3 + i] * dy[1] + am[6 + i] * dy[2]);
    }
    double n[9], nb[3];
    memcpy(n, nrm, sizeof n);
    n[0] = nrm[0] + c->acc_ridge, n[4] = nrm[4] + c->acc_ridge, n[8] = nrm[8] + c->acc_ridge;
    solve3(n, z, nb);
    double size = sqrt(nb[0] * nb[0] + nb[1] * nb[1] + nb[2] * nb[2]);
    if (size > c->acc_max) {
        double k = c->acc_max / size;
        nb[0] = nb[0] * k, nb[1] = nb[1] * k, nb[2] = nb[2] * k;
    }
    memcpy(c->pend, nb, sizeof nb);
    c->has_pend = 1;
}

/* Step 7, applying: at any rest, as much of the change as turns the up vector's angle to the
   reference by at most acc_bias_step_deg; the rest waits for later rests (reference._apply_pending). */
static void
tilt_apply_pending(TiltCore *c, const double us[3])
{
    (void)us;
    double m[9];
    qmatrix(c->q, m);
    const double *nb = c->pend;
    double d[3] = {nb[0] - c->acc_bias[0], nb[1] - c->acc_bias[1], nb[2] - c->acc_bias[2]};
    const double *lp = c->lp;
    double ls[3] = {m[0] * lp[0] + m[3] * lp[1] + m[6] * lp[2], m[1] * lp[0] + m[4] * lp[1] + m[7] * lp[2],
                    m[2] * lp[0] + m[5] * lp[1] + m[8] * lp[2]};
    double un[3] = {ls[0] - d[0], ls[1] - d[1], ls[2] - d[2]};
    double rn[3] = {c->ref_acc[0] - nb[0], c->ref_acc[1] - nb[1], c->ref_acc[2] - nb[2]};
    const double *r = c->uref;
    double c0 = (ls[0] * r[0] + ls[1] * r[1] + ls[2] * r[2]) / sqrt(ls[0] * ls[0] + ls[1] * ls[1] + ls[2] * ls[2]);
    double c1 = (un[0] * rn[0] + un[1] * rn[1] + un[2] * rn[2]) /
                sqrt((un[0] * un[0] + un[1] * un[1] + un[2] * un[2]) * (rn[0] * rn[0] + rn[1] * rn[1] + rn[2] * rn[2]));
    c0 = c0 > 1.0 ? 1.0 : (c0 < -1.0 ? -1.0 : c0);
    c1 = c1 > 1.0 ? 1.0 : (c1 < -1.0 ? -1.0 : c1);
    double jump = fabs(acos(c1) - acos(c0));
    if (jump > c->step_rad) {
        double k = c->step_rad / jump; /* part of it now, the rest at the next rests */
        d[0] = d[0] * k, d[1] = d[1] * k, d[2] = d[2] * k;
    } else {
        c->has_pend = 0;
    }
    for (int j = 0; j < 3; j++) {
        const double dj = m[3 * j] * d[0] + m[3 * j + 1] * d[1] + m[3 * j + 2] * d[2];
        c->lp[j] = c->lp[j] - dj;
        c->lp1[j] = c->lp1[j] - dj;
    }
    c->acc_bias[0] = c->acc_bias[0] + d[0], c->acc_bias[1] = c->acc_bias[1] + d[1], c->acc_bias[2] = c->acc_bias[2] + d[2];
    tilt_uref(c);
    c->n_acc_bias_updates++;
}

/* Step 6, one event at the current sample (ring slot cur): is the last B samples a rest? */
static int
tilt_rest_event(TiltCore *c, Py_ssize_t cur)
{
    Py_ssize_t nb = c->B, slots = nb + 1, qn = nb / 4;
    const double *now = c->ring + 8 * cur;
    const double *start = c->ring + 8 * ((cur - nb + slots) % slots);
    const double *q1 = c->ring + 8 * ((cur - nb + qn + slots) % slots);
    const double *q3 = c->ring + 8 * ((cur - qn + slots) % slots);
    double inv = 1.0 / (double)nb;
    double mg[3], ma[3], first[3], last[3], d[3];
    for (int j = 0; j < 3; j++)
        mg[j] = (now[j] - start[j]) * inv;
    double var_g = (now[3] - start[3]) * inv - (mg[0] * mg[0] + mg[1] * mg[1] + mg[2] * mg[2]);
    for (int j = 0; j < 3; j++)
        ma[j] = (now[4 + j] - start[4 + j]) * inv;
    double var_a = (now[7] - start[7]) * inv - (ma[0] * ma[0] + ma[1] * ma[1] + ma[2] * ma[2]);
    for (int j = 0; j < 3; j++) {
        first[j] = q1[4 + j] - start[4 + j];
        last[j] = now[4 + j] - q3[4 + j];
    }
    double dot = first[0] * last[0] + first[1] * last[1] + first[2] * last[2];
    double nf = first[0] * first[0] + first[1] * first[1] + first[2] * first[2];
    double nl = last[0] * last[0] + last[1] * last[1] + last[2] * last[2];
    double *b = c->bias;
    /* the bias estimate leaves out the window's last trim samples (a movement's slow start) */
    double mb[3];
    if (c->trim > 0) {
        const Py_ssize_t keep = nb - c->trim;
        const double *mid = c->ring + 8 * ((cur - c->trim + slots) % slots);
        const double ik = 1.0 / (double)keep;
        for (int j = 0; j < 3; j++)
            mb[j] = (mid[j] - start[j]) * ik;
    } else {
        mb[0] = mg[0], mb[1] = mg[1], mb[2] = mg[2];
    }
    d[0] = mb[0] - b[0], d[1] = mb[1] - b[1], d[2] = mb[2] - b[2];
    /* only the change along gravity is limited: the tilt test has verified the rest normal to it */
    double da = d[0] * ma[0] + d[1] * ma[1] + d[2] * ma[2];
    double na = ma[0] * ma[0] + ma[1] * ma[1] + ma[2] * ma[2];
    /* (an unsure calibration bias: the first quiet rest is the better measure, taken whole) */
    if (!(var_g < c->rest_gyro2 && var_a < c->rest_acc2 && dot > c->rest_cos * sqrt(nf * nl) &&
          (c->unsure || da * da < c->bias_jump2 * na)))
        return 0;
    const double gain = c->unsure ? 1.0 : c->bias_gain;
    b[0] = b[0] + gain * d[0];
    b[1] = b[1] + gain * d[1];
    b[2] = b[2] + gain * d[2];
    c->n_bias_updates++;
    c->unsure = 0;
    if (c->acc_memory > 0.0)
        tilt_acc_bias_event(c, ma);
    return 1;
}

#define G_MPS2 9.80665
#define INV_G (1.0 / 9.80665)
#define LEVER_SOLVE_EVERY 16

/* Step 2a (reference._lever): subtract the thigh's rotational acceleration at the sensor from
   a[3] (in place) and feed the lever-arm fit.  q is the current attitude, lp the low-pass state
   of the previous sample. */
static void
tilt_lever(TiltCore *c, double dt, double g0, double g1, double g2, double a[3], const double q[4], const double lp[3])
{
    const double *b = c->bias;
    double wx = (g0 - b[0]) * DEG2RAD, wy = (g1 - b[1]) * DEG2RAD, wz = (g2 - b[2]) * DEG2RAD;
    double ax, ay, az;
    if (c->has_wprev && dt > 0.0) {
        double idt = 1.0 / dt;
        ax = (wx - c->w_prev[0]) * idt;
        ay = (wy - c->w_prev[1]) * idt;
        az = (wz - c->w_prev[2]) * idt;
    } else {
        ax = ay = az = 0.0;
    }
    c->w_prev[0] = wx, c->w_prev[1] = wy, c->w_prev[2] = wz;
    c->has_wprev = 1;
    double w2 = wx * wx + wy * wy + wz * wz;
    double k[9] = {wx * wx - w2, wx * wy - az, wx * wz + ay, wy * wx + az, wy * wy - w2,
                   wy * wz - ax, wz * wx - ay, wz * wy + ax, wz * wz - w2};
    const double *r = c->lever;
    double o0 = a[0] - (k[0] * r[0] + k[1] * r[1] + k[2] * r[2]) * INV_G;
    double o1 = a[1] - (k[3] * r[0] + k[4] * r[1] + k[5] * r[2]) * INV_G;
    double o2 = a[2] - (k[6] * r[0] + k[7] * r[1] + k[8] * r[2]) * INV_G;
    if (w2 > c->lever_min2) {
        double inv = c->g_norm / sqrt(lp[0] * lp[0] + lp[1] * lp[1] + lp[2] * lp[2]);
        double gi[3] = {lp[0] * inv, lp[1] * inv, lp[2] * inv}, gs[3];
        qrot(q[0], -q[1], -q[2], -q[3], gi, gs);
        double y[3] = {(a[0] - gs[0]) * G_MPS2, (a[1] - gs[1]) * G_MPS2, (a[2] - gs[2]) * G_MPS2};
        double lam = 1.0 - dt / c->lever_tau;
        if (lam < 0.0)
            lam = 0.0;
        double *t = c->ktk, *z = c->kty;
        t[0] = lam * t[0] + (k[0] * k[0] + k[3] * k[3] + k[6] * k[6]);
        t[1] = lam * t[1] + (k[0] * k[1] + k[3] * k[4] + k[6] * k[7]);
        t[2] = lam * t[2] + (k[0] * k[2] + k[3] * k[5] + k[6] * k[8]);
        t[3] = lam * t[3] + (k[1] * k[1] + k[4] * k[4] + k[7] * k[7]);
        t[4] = lam * t[4] + (k[1] * k[2] + k[4] * k[5] + k[7] * k[8]);
        t[5] = lam * t[5] + (k[2] * k[2] + k[5] * k[5] + k[8] * k[8]);
        z[0] = lam * z[0] + (k[0] * y[0] + k[3] * y[1] + k[6] * y[2]);
        z[1] = lam * z[1] + (k[1] * y[0] + k[4] * y[1] + k[7] * y[2]);
        z[2] = lam * z[2] + (k[2] * y[0] + k[5] * y[1] + k[8] * y[2]);
    }
    a[0] = o0, a[1] = o1, a[2] = o2;
    c->lever_n++;
    if (c->lever_n % LEVER_SOLVE_EVERY == 0) {
        const double *t = c->ktk, *z = c->kty;
        double rg = c->lever_ridge;
        double n[9] = {t[0] + rg, t[1], t[2], t[1], t[3] + rg, t[4], t[2], t[4], t[5] + rg}, nr[3];
        solve3(n, z, nr);
        double size = sqrt(nr[0] * nr[0] + nr[1] * nr[1] + nr[2] * nr[2]);
        if (size > c->lever_max) {
            double f = c->lever_max / size;
            nr[0] = nr[0] * f, nr[1] = nr[1] * f, nr[2] = nr[2] * f;
        }
        memcpy(c->lever, nr, sizeof nr);
    }
}

PyDoc_STRVAR(TiltKernel_run_doc,
             "run(time_s, acc_g, gyr_dps, up_out, still_out, rest_out)\n--\n\n"
             "Process one chunk: time_s (N,) float64, acc_g and gyr_dps (N, 3) float64; writes the unit\n"
             "up vector (sensor frame) into up_out (N, 3) float64, the still flag into still_out (N,) bool\n"
             "and the rest events (a gyro-bias update at this sample) into rest_out (N,) bool.");

static PyObject *
TiltKernel_run(TiltKernel *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 7 || nargs > 9) {
        PyErr_Format(PyExc_TypeError,
                     "run expected 7 to 9 arrays (time_s, acc_g, gyr_dps, up_out, uref_out, still_out, rest_out"
                     "[, quat_out[, lever_out]]), got %zd",
                     nargs);
        return NULL;
    }
    Arr t = {0}, acc = {0}, gyr = {0}, up = {0}, ur = {0}, st = {0}, rs = {0}, qo = {0}, lo = {0};
    const int want_q = nargs >= 8 && args[7] != Py_None, want_l = nargs == 9 && args[8] != Py_None;
    if (want_q && arr_get(args[7], &qo, "quat_out", 'd', 4, -1, 1) < 0)
        return NULL;
    if (want_l && arr_get(args[8], &lo, "lever_out", 'd', 2, -1, 1) < 0) {
        arr_release(&qo);
        return NULL;
    }
    if (arr_get(args[0], &t, "time_s", 'd', 1, -1, 0) < 0 || arr_get(args[1], &acc, "acc_g", 'd', 2, t.n, 0) < 0 ||
        arr_get(args[2], &gyr, "gyr_dps", 'd', 2, t.n, 0) < 0 || arr_get(args[3], &up, "up_out", 'd', 2, t.n, 1) < 0 ||
        arr_get(args[4], &ur, "uref_out", 'd', 2, t.n, 1) < 0 ||
        arr_get(args[5], &st, "still_out", '?', 1, t.n, 1) < 0 || arr_get(args[6], &rs, "rest_out", '?', 1, t.n, 1) < 0)
        goto fail;
    if ((want_q && qo.n != t.n) || (want_l && lo.n != t.n)) {
        PyErr_Format(PyExc_ValueError, "quat_out and lever_out must have %zd rows (like time_s), got %zd and %zd", t.n,
                     want_q ? qo.n : t.n, want_l ? lo.n : t.n);
        goto fail;
    }

    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "TiltKernel.run expected to be idle, got a call while it runs on another thread");
        goto fail;
    }
    /* the loop works on a copy of the state, stored back at the end: the compiler may keep its fields in
       registers (a store into an output buffer cannot change the copy, as it could self->c) */
    TiltCore core = self->c;
    TiltCore *c = &core;
    const Py_ssize_t n = t.n, W = c->W, B = c->B, half = c->B / 2;
    const double tau = c->tau_acc, mgain = c->motion_gain * RAD2DEG, still2 = c->still2, clip2 = c->clip2;
    double qw = c->q[0], qx = c->q[1], qy = c->q[2], qz = c->q[3];
    double l0 = c->lp[0], l1 = c->lp[1], l2 = c->lp[2];
    double f0 = c->lp1[0], f1 = c->lp1[1], f2 = c->lp1[2];
    const double tau2 = c->tau_acc2;
    double *b = c->bias;
    double t_prev = c->t_prev, cs = c->cs;
    double p0 = c->g_prev[0], p1 = c->g_prev[1], p2 = c->g_prev[2];
    int has_prev = c->has_prev;
    long long cnt = c->n, n_still = 0;
    Py_ssize_t phase = (Py_ssize_t)(cnt % half); /* cnt % half, kept by counting (no division per sample) */
    /* step 2b: from this time since the last still sample on, exp(-since / onset_decay) times
       |onset_tau / tau - 1| is below 2^-54 (e^-40 of it), so r rounds to 1 exactly: no exp() needed */
    const double onset_flat_s = c->onset_decay * (log(fabs(c->onset_tau / tau - 1.0)) + 40.0);
    Py_ssize_t w_pos = c->w_pos, r_pos = c->r_pos;
    double *const still_ring = c->still_ring, *const ring = c->ring, *const cum = c->cum;

    if (n > 0 && isnan(c->t_first))
        c->t_first = D1(t, 0); /* step 3b's clock starts at the first sample fed */
    /* the loop touches only the buffers and this kernel's state: the GIL is released for a long chunk
       (the other leg's stages run meanwhile in an offline analysis; a live chunk keeps it) */
    self->running = 1;
    PyThreadState *released = n >= GIL_FREE_ROWS ? PyEval_SaveThread() : NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        const double ti = D1(t, i);
        const double ar[3] = {D2(acc, i, 0), D2(acc, i, 1), D2(acc, i, 2)};
        double a[3] = {ar[0] - c->acc_bias[0], ar[1] - c->acc_bias[1], ar[2] - c->acc_bias[2]};
        const double g0 = D2(gyr, i, 0), g1 = D2(gyr, i, 1), g2 = D2(gyr, i, 2);
        double dt = isnan(t_prev) ? c->dt_nominal_s : ti - t_prev;
        if (dt > c->max_gap_s) {
            c->n_gaps++;
            if (dt > c->max_gap_seen_s)
                c->max_gap_seen_s = dt;
        }
        if (dt > c->gap_s) {
            c->uncertain = 1;
            c->has_mprev = 0; /* the gyro did not see the gap: no rest pair across it */
            c->has_wprev = 0;
            c->since_gap = 0;
            c->onset = c->was_still = 0; /* the gyro bridged the gap: no slower onset (step 2b) */
        }
        c->since_gap++;
        if (!has_prev)
            p0 = g0, p1 = g1, p2 = g2;
        /* 1. strapdown: the sample's rate over the step before it (see reference.py) */
        double k = dt * 0.5 * DEG2RAD;
        double hx = (g0 - b[0]) * k;
        double hy = (g1 - b[1]) * k;
        double hz = (g2 - b[2]) * k;
        if (dt > c->gap_s) {
            /* lost samples: their rates taken as linear between the two samples around the gap */
            double kc = (dt + c->dt_nominal_s) * 0.25 * DEG2RAD, kp = (dt - c->dt_nominal_s) * 0.25 * DEG2RAD;
            hx = (g0 - b[0]) * kc + (p0 - b[0]) * kp;
            hy = (g1 - b[1]) * kc + (p1 - b[1]) * kp;
            hz = (g2 - b[2]) * kc + (p2 - b[2]) * kp;
        }
        c->turn = c->turn + 2.0 * (fabs(hx) + fabs(hy) + fabs(hz));
        double h2 = hx * hx + hy * hy + hz * hz, cw, s;
        if (h2 < SERIES_H2) {
            cw = 1.0 - h2 / 2.0 + h2 * h2 / 24.0;
            s = 1.0 - h2 / 6.0 + h2 * h2 / 120.0;
        } else {
            double h = sqrt(h2);
            cw = cos(h);
            s = sin(h) / h;
        }
        double bw = cw, bx = s * hx, by = s * hy, bz = s * hz;
        double nw = qw * bw - qx * bx - qy * by - qz * bz;
        double nx = qw * bx + qx * bw + qy * bz - qz * by;
        double ny = qw * by - qx * bz + qy * bw + qz * bx;
        double nz = qw * bz + qx * by - qy * bx + qz * bw;
        double inv = 1.0 / sqrt(nw * nw + nx * nx + ny * ny + nz * nz);
        qw = nw * inv, qx = nx * inv, qy = ny * inv, qz = nz * inv;
        /* 2a. lever arm */
        if (c->lever_tau > 0.0) {
            const double qc[4] = {qw, qx, qy, qz}, lc[3] = {l0, l1, l2};
            tilt_lever(c, dt, g0, g1, g2, a, qc, lc);
        }
        /* 2. accelerometer into the I frame, low-passed */
        double ai[3];
        qrot(qw, qx, qy, qz, a, ai);
        double tau_i = tau;
        const int recovering = c->recover_left > 0.0;
        if (recovering) {
            tau_i = c->gap_tau_acc;
            c->recover_left -= dt;
        }
        if (dt > c->gap_s)
            c->recover_left = c->gap_recover; /* from the next sample (see reference.py, step 8) */
        double tau2_i = tau2;
        if (c->onset && !recovering) {
            /* 2b. a movement after a long rest: both stages slower, relaxing to tau over onset_decay */
            if (!(c->since_still > onset_flat_s)) {
                double r = 1.0 + (c->onset_tau / tau - 1.0) * exp(-c->since_still / c->onset_decay);
                tau_i = tau * r;
                tau2_i = tau2 * r;
            } /* (else r is 1.0: tau * 1.0 is tau) */
        }
        double alpha = dt / (tau_i + 0.5 * dt);
        if (alpha > 1.0)
            alpha = 1.0;
        f0 = f0 + alpha * (ai[0] - f0), f1 = f1 + alpha * (ai[1] - f1), f2 = f2 + alpha * (ai[2] - f2);
        double m0 = f0, m1 = f1, m2 = f2;
        if (tau2 > 0.0 && !recovering) {
            /* second stage (while recovering from lost samples it is bypassed: lp follows lp1) */
            double alpha2 = dt / (tau2_i + 0.5 * dt);
            if (alpha2 > 1.0)
                alpha2 = 1.0;
            m0 = l0 + alpha2 * (f0 - l0), m1 = l1 + alpha2 * (f1 - l1), m2 = l2 + alpha2 * (f2 - l2);
        }
        double n2 = m0 * m0 + m1 * m1 + m2 * m2;
        /* 3. motion bias (not while the low-pass recovers from a gap: that turn is no bias) */
        if (mgain > 0.0 && !recovering && !(dt > c->gap_s)) {
            double in2 = 1.0 / n2;
            double rho[3] = {(l1 * m2 - l2 * m1) * in2, (l2 * m0 - l0 * m2) * in2, (l0 * m1 - l1 * m0) * in2};
            double d[3];
            qrot(qw, -qx, -qy, -qz, rho, d);
            double mg = mgain;
            if (c->unsure) {
                /* 3b. the time constant grows from fast_tau with the time since the start */
                double te = c->fast_tau + (ti - c->t_first);
                if (te < c->motion_tau)
                    mg = RAD2DEG / te;
            }
            b[0] = b[0] + mg * d[0];
            b[1] = b[1] + mg * d[1];
            b[2] = b[2] + mg * d[2];
        }
        l0 = m0, l1 = m1, l2 = m2;
        /* 4. up vector */
        double ninv = 1.0 / sqrt(n2);
        double ui[3] = {m0 * ninv, m1 * ninv, m2 * ninv}, us[3];
        qrot(qw, -qx, -qy, -qz, ui, us);
        double *u = (double *)(up.base + i * up.s0);
        *u = us[0];
        *(double *)((char *)u + up.s1) = us[1];
        *(double *)((char *)u + 2 * up.s1) = us[2];
        /* 5. still */
        double e0 = g0 - b[0], e1 = g1 - b[1], e2 = g2 - b[2];
        double e = e0 * e0 + e1 * e1 + e2 * e2;
        if (e > clip2)
            e = clip2;
        cs = cs + e;
        double win = cs - still_ring[w_pos];
        still_ring[w_pos] = cs;
        w_pos = w_pos + 1 < W ? w_pos + 1 : 0;
        cnt++;
        double filled = (double)(cnt < W ? cnt : W);
        int still = win < still2 * filled;
        /* 6. rest windows */
        cum[0] += g0;
        cum[1] += g1;
        cum[2] += g2;
        cum[3] += g0 * g0 + g1 * g1 + g2 * g2;
        cum[4] += ar[0];
        cum[5] += ar[1];
        cum[6] += ar[2];
        cum[7] += ar[0] * ar[0] + ar[1] * ar[1] + ar[2] * ar[2];
        memcpy(ring + 8 * r_pos, cum, 8 * sizeof(double));
        Py_ssize_t cur = r_pos;
        r_pos = r_pos < B ? r_pos + 1 : 0;
        if (!still && cnt > W && W <= B && c->still_bias2 > 0.0) {
            /* 5b. still about the window's own mean rate: a steady rate within still_bias_dps of
               the bias (a bias estimate still off) with a quarter of the still variance */
            const Py_ssize_t back = cur - W; /* (cur - W) mod (B + 1), with 0 <= cur <= B and W <= B */
            const double *o = ring + 8 * (back < 0 ? back + B + 1 : back);
            double iw = 1.0 / (double)W;
            double m0 = (cum[0] - o[0]) * iw, m1 = (cum[1] - o[1]) * iw, m2 = (cum[2] - o[2]) * iw;
            double var = (cum[3] - o[3]) * iw - (m0 * m0 + m1 * m1 + m2 * m2);
            double d0 = m0 - b[0], d1 = m1 - b[1], d2 = m2 - b[2];
            still = var < 0.25 * still2 && d0 * d0 + d1 * d1 + d2 * d2 < c->still_bias2;
        }
        *(char *)(st.base + i * st.s0) = (char)still;
        n_still += still;
        /* 5c. the clock of step 2b: a movement that ends a still run of onset_rest (no gap in it) */
        if (still) {
            c->still_run = c->was_still ? c->still_run + dt : 0.0;
            c->since_still = 0.0;
            c->onset = 0;
        } else {
            if (c->was_still)
                c->onset = c->onset_tau > tau && c->still_run >= c->onset_rest;
            c->since_still = c->since_still + dt;
        }
        c->was_still = still;
        int rest = 0;
        phase = phase + 1 < half ? phase + 1 : 0;
        if (cnt > B && phase == 0) {
            c->q[0] = qw, c->q[1] = qx, c->q[2] = qy, c->q[3] = qz;
            c->lp[0] = l0, c->lp[1] = l1, c->lp[2] = l2;
            c->lp1[0] = f0, c->lp1[1] = f1, c->lp1[2] = f2;
            rest = tilt_rest_event(c, cur);
            if (rest && c->has_pend)
                tilt_apply_pending(c, us);
            l0 = c->lp[0], l1 = c->lp[1], l2 = c->lp[2];
            f0 = c->lp1[0], f1 = c->lp1[1], f2 = c->lp1[2];
        }
        if (c->uncertain && still && c->since_gap >= W) {
            /* (the whole still window after the gap: before it the thigh may have been elsewhere) */
            /* 8. after lost samples: restart the low-pass at the still window's mean */
            static const double zero[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            const double *old = cnt > W ? ring + 8 * ((cur - W + (B + 1)) % (B + 1)) : zero;
            double inv_w = 1.0 / (double)W;
            double mw[3] = {(cum[4] - old[4]) * inv_w - c->acc_bias[0], (cum[5] - old[5]) * inv_w - c->acc_bias[1],
                            (cum[6] - old[6]) * inv_w - c->acc_bias[2]};
            double li[3];
            qrot(qw, qx, qy, qz, mw, li);
            l0 = f0 = li[0], l1 = f1 = li[1], l2 = f2 = li[2];
            c->uncertain = 0;
            c->n_gap_snaps++;
        }
        *(char *)(rs.base + i * rs.s0) = (char)rest;
        if (want_q) {
            /* the attitude (sensor -> I frame) the up vector of this sample was read with */
            double *o = (double *)(qo.base + i * qo.s0);
            *o = qw;
            *(double *)((char *)o + qo.s1) = qx;
            *(double *)((char *)o + 2 * qo.s1) = qy;
            *(double *)((char *)o + 3 * qo.s1) = qz;
        }
        if (want_l) {
            /* the lever-arm estimate after this sample (hip -> sensor, sensor frame, m) */
            double *o = (double *)(lo.base + i * lo.s0);
            *o = c->lever[0];
            *(double *)((char *)o + lo.s1) = c->lever[1];
            *(double *)((char *)o + 2 * lo.s1) = c->lever[2];
        }
        double *v = (double *)(ur.base + i * ur.s0);
        *v = c->uref[0];
        *(double *)((char *)v + ur.s1) = c->uref[1];
        *(double *)((char *)v + 2 * ur.s1) = c->uref[2];
        p0 = g0, p1 = g1, p2 = g2;
        has_prev = 1;
        t_prev = ti;
    }
    if (released != NULL)
        PyEval_RestoreThread(released);
    self->running = 0;
    c->q[0] = qw, c->q[1] = qx, c->q[2] = qy, c->q[3] = qz;
    c->lp[0] = l0, c->lp[1] = l1, c->lp[2] = l2;
    c->lp1[0] = f0, c->lp1[1] = f1, c->lp1[2] = f2;
    c->t_prev = t_prev, c->cs = cs;
    c->g_prev[0] = p0, c->g_prev[1] = p1, c->g_prev[2] = p2;
    c->has_prev = has_prev;
    c->n = cnt;
    c->w_pos = w_pos, c->r_pos = r_pos;
    c->n_still += n_still;
    self->c = core;
    arr_release(&t), arr_release(&acc), arr_release(&gyr), arr_release(&up), arr_release(&ur), arr_release(&st),
        arr_release(&rs), arr_release(&qo), arr_release(&lo);
    Py_RETURN_NONE;
fail:
    arr_release(&t), arr_release(&acc), arr_release(&gyr), arr_release(&up), arr_release(&ur), arr_release(&st),
        arr_release(&rs), arr_release(&qo), arr_release(&lo);
    return NULL;
}

static PyObject *
TiltKernel_get_lever(TiltKernel *self, void *closure)
{
    (void)closure;
    return Py_BuildValue("(ddd)", self->c.lever[0], self->c.lever[1], self->c.lever[2]);
}

static PyObject *
TiltKernel_get_acc_bias(TiltKernel *self, void *closure)
{
    (void)closure;
    return Py_BuildValue("(ddd)", self->c.acc_bias[0], self->c.acc_bias[1], self->c.acc_bias[2]);
}

static PyObject *
TiltKernel_get_bias(TiltKernel *self, void *closure)
{
    (void)closure;
    return Py_BuildValue("(ddd)", self->c.bias[0], self->c.bias[1], self->c.bias[2]);
}

static PyMethodDef TiltKernel_methods[] = {
    {"run", (PyCFunction)(void (*)(void))TiltKernel_run, METH_FASTCALL, TiltKernel_run_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef TiltKernel_getset[] = {
    {"gyro_bias_dps", (getter)TiltKernel_get_bias, NULL, "estimated gyro bias (x, y, z), deg/s", NULL},
    {"acc_bias_g", (getter)TiltKernel_get_acc_bias, NULL, "estimated accelerometer bias (x, y, z), g", NULL},
    {"lever_m", (getter)TiltKernel_get_lever, NULL, "estimated lever arm hip -> sensor (x, y, z), sensor frame, m", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

#define TRO(name, type, field, doc) {name, type, offsetof(TiltKernel, c.field), READONLY, doc}
static PyMemberDef TiltKernel_members[] = {
    TRO("n_gaps", T_LONGLONG, n_gaps, "steps longer than max_gap_s"),
    TRO("max_gap_s", T_DOUBLE, max_gap_seen_s, "longest step seen longer than max_gap_s, s"),
    TRO("n_bias_updates", T_LONGLONG, n_bias_updates, "rest windows used for the gyro bias"),
    TRO("n_samples", T_LONGLONG, n, "samples processed"),
    TRO("n_still", T_LONGLONG, n_still, "samples judged still"),
    TRO("n_acc_bias_updates", T_LONGLONG, n_acc_bias_updates, "rest pairs used for the accelerometer bias"),
    TRO("n_gap_snaps", T_LONGLONG, n_gap_snaps, "low-pass restarts at a still window after lost samples"),
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(TiltKernel_doc,
             "TiltKernel(*, gravity0, gyro_bias0_dps, tau_acc_s, bias_motion_tau_s, still_n, still_gyro_dps,\n"
             "           bias_n, rest_gyro_dps, rest_acc_g, rest_tilt_deg, bias_jump_dps, bias_gain,\n"
             "           max_gap_s, dt_nominal_s, t_prev_s, acc_bias_memory, acc_bias_ridge,\n"
             "           acc_bias_max_g, gap_s, lever_tau_s, lever_min_dps, lever_ridge, lever_max_m,\n"
             "           acc_bias_step_deg, gap_tau_acc_s, gap_recover_s, tau_acc2_s, acc_bias_turn_deg,\n"
             "           still_bias_dps, bias_motion_fast_tau_s, bias_unsure, onset_tau_acc_s, onset_decay_s,\n"
             "           onset_rest_s, bias_trim_n)\n--\n\n"
             "Orientation stage of one sensor (host/fusion/reference.py is its specification).\n"
             "t_prev_s is NaN when no sample precedes the first chunk.");

static PyTypeObject TiltKernelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "legrep._fastcore.TiltKernel",
    .tp_basicsize = sizeof(TiltKernel),
    .tp_dealloc = (destructor)TiltKernel_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = TiltKernel_doc,
    .tp_methods = TiltKernel_methods,
    .tp_members = TiltKernel_members,
    .tp_getset = TiltKernel_getset,
    .tp_init = (initproc)TiltKernel_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------ hip angle from the up vector */

/* One row of tilt_angles: the up vector u[i]'s rotation about the axis f from u_ref r[i], deg. */
static inline double
tilt_row(const Arr *u, const Arr *r, Py_ssize_t i, const double f[3], double off)
{
    double u0 = D2(*u, i, 0), u1 = D2(*u, i, 1), u2 = D2(*u, i, 2);
    double r0 = D2(*r, i, 0), r1 = D2(*r, i, 1), r2 = D2(*r, i, 2);
    double cx = u1 * r2 - u2 * r1, cy = u2 * r0 - u0 * r2, cz = u0 * r1 - u1 * r0;
    double y = f[0] * cx + f[1] * cy + f[2] * cz;
    double uf = u0 * f[0] + u1 * f[1] + u2 * f[2];
    double rf = r0 * f[0] + r1 * f[1] + r2 * f[2];
    double x = (u0 * r0 + u1 * r1 + u2 * r2) - uf * rf;
    return atan2(y, x) * RAD2DEG + off;
}

/* One row of hip_angles: up u[i], g_ref r[i], attitude q[i]; long axis a (sensor frame), long_ref
   al and axis_ref f (I frame). */
static inline double
hip_row(const Arr *u, const Arr *r, const Arr *q, Py_ssize_t i, const double a[3], const double al[3],
        const double f[3], double off)
{
    const double up[3] = {D2(*u, i, 0), D2(*u, i, 1), D2(*u, i, 2)};
    const double g0 = D2(*r, i, 0), g1 = D2(*r, i, 1), g2 = D2(*r, i, 2);
    const double qw = D2(*q, i, 0), qx = D2(*q, i, 1), qy = D2(*q, i, 2), qz = D2(*q, i, 3);
    double g[3], v[3];
    qrot(qw, qx, qy, qz, up, g); /* gravity's direction now, I frame */
    qrot(qw, qx, qy, qz, a, v);  /* the long axis now, I frame */
    /* C: the smallest rotation taking g to g_ref (the I frame's tilt drift undone),
       C v = c v + k x v + k (k . v) / (1 + c) with k = g x g_ref, c = g . g_ref */
    double kx = g[1] * g2 - g[2] * g1, ky = g[2] * g0 - g[0] * g2, kz = g[0] * g1 - g[1] * g0;
    double c = g[0] * g0 + g[1] * g1 + g[2] * g2;
    double kv = (kx * v[0] + ky * v[1] + kz * v[2]) / (1.0 + c);
    double w0 = c * v[0] + (ky * v[2] - kz * v[1]) + kx * kv;
    double w1 = c * v[1] + (kz * v[0] - kx * v[2]) + ky * kv;
    double w2 = c * v[2] + (kx * v[1] - ky * v[0]) + kz * kv;
    double cx = al[1] * w2 - al[2] * w1, cy = al[2] * w0 - al[0] * w2, cz = al[0] * w1 - al[1] * w0;
    double y = f[0] * cx + f[1] * cy + f[2] * cz;
    double x = al[0] * w0 + al[1] * w1 + al[2] * w2;
    return atan2(y, x) * RAD2DEG + off;
}

PyDoc_STRVAR(tilt_angles_doc,
             "tilt_angles(up, u_ref, axis, offset_deg, angle_out_deg)\n--\n\n"
             "angle_out_deg[i] = atan2(axis . (up[i] x u_ref[i]), up_p . u_ref_p) in degrees + offset_deg, with\n"
             "_p the parts normal to axis: the up vector's rotation about the axis, heading-free; up and u_ref\n"
             "(N, 3) float64 (u_ref may have 0 row stride). See host/fusion/reference.py reference_tilt_angle.");

static PyObject *
tilt_angles(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr u = {0}, r = {0}, out = {0};
    double f[3];
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "tilt_angles expected 5 arguments, got %zd", nargs);
        return NULL;
    }
    if (vec3(args[2], f, "axis") < 0)
        return NULL;
    double off = PyFloat_AsDouble(args[3]);
    if (off == -1.0 && PyErr_Occurred())
        return NULL;
    if (arr_get(args[0], &u, "up", 'd', 2, -1, 0) < 0 || arr_get(args[1], &r, "u_ref", 'd', 2, u.n, 0) < 0 ||
        arr_get(args[4], &out, "angle_out_deg", 'd', 1, u.n, 1) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < u.n; i++)
        *(double *)(out.base + i * out.s0) = tilt_row(&u, &r, i, f, off);
    arr_release(&u), arr_release(&r), arr_release(&out);
    Py_RETURN_NONE;
fail:
    arr_release(&u), arr_release(&r), arr_release(&out);
    return NULL;
}

PyDoc_STRVAR(hip_angles_doc,
             "hip_angles(up, g_ref, quat, long_axis, long_ref, axis_ref, offset_deg, angle_out_deg)\n--\n\n"
             "The thigh's flexion from the reference pose (host/fusion/reference.py reference_hip_angle):\n"
             "v = C (quat long_axis), with C the smallest rotation taking quat up to g_ref, and\n"
             "angle_out_deg[i] = atan2(axis_ref . (long_ref x v), long_ref . v) in degrees + offset_deg.\n"
             "up (N, 3), quat (N, 4) (w, x, y, z: sensor -> I frame) and g_ref (N, 3) (may have 0 row\n"
             "stride) float64; long_axis (sensor frame), long_ref, axis_ref (I frame) 3-vectors.");

static PyObject *
hip_angles(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr u = {0}, r = {0}, q = {0}, out = {0};
    double a[3], al[3], f[3];
    if (nargs != 8) {
        PyErr_Format(PyExc_TypeError, "hip_angles expected 8 arguments, got %zd", nargs);
        return NULL;
    }
    if (vec3(args[3], a, "long_axis") < 0 || vec3(args[4], al, "long_ref") < 0 || vec3(args[5], f, "axis_ref") < 0)
        return NULL;
    double off = PyFloat_AsDouble(args[6]);
    if (off == -1.0 && PyErr_Occurred())
        return NULL;
    if (arr_get(args[0], &u, "up", 'd', 2, -1, 0) < 0 || arr_get(args[1], &r, "g_ref", 'd', 2, u.n, 0) < 0 ||
        arr_get(args[2], &q, "quat", 'd', 4, u.n, 0) < 0 || arr_get(args[7], &out, "angle_out_deg", 'd', 1, u.n, 1) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < u.n; i++)
        *(double *)(out.base + i * out.s0) = hip_row(&u, &r, &q, i, a, al, f, off);
    arr_release(&u), arr_release(&r), arr_release(&q), arr_release(&out);
    Py_RETURN_NONE;
fail:
    arr_release(&u), arr_release(&r), arr_release(&q), arr_release(&out);
    return NULL;
}

/* ------------------------------------------------------------------ the first movement of a held stretch */

PyDoc_STRVAR(first_movement_doc,
             "first_movement(time_s, rate_dps, still, min_rotation_deg, t_prev_s) -> (k, lo) or None\n--\n\n"
             "The search of host.fusion.angle.fit_axis (fit_axis_reference, numpy, is its specification):\n"
             "the rotation of a movement is the running sum of |rate_dps[i]| * (time_s[i] - time_s[i-1]) since\n"
             "the last still sample (time_s[-1] = t_prev_s, or time_s[0] if that is not finite); k is the first\n"
             "sample where it reaches min_rotation_deg, lo the first sample after the last still one before it.\n"
             "time_s (N,) float64, rate_dps (N, 3) float64, still (N,) bool. Same operations in the same order\n"
             "as the numpy form (|rate| as ((x*x + y*y) + z*z) ** 0.5, the cumulative sum from the first\n"
             "sample), so the same k.");

static PyObject *
first_movement(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr t = {0}, w = {0}, st = {0};
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "first_movement expected 5 arguments, got %zd", nargs);
        return NULL;
    }
    double thr = PyFloat_AsDouble(args[3]);
    if (thr == -1.0 && PyErr_Occurred())
        return NULL;
    double prev = PyFloat_AsDouble(args[4]);
    if (prev == -1.0 && PyErr_Occurred())
        return NULL;
    if (arr_get(args[0], &t, "time_s", 'd', 1, -1, 0) < 0 || arr_get(args[1], &w, "rate_dps", 'd', 2, t.n, 0) < 0 ||
        arr_get(args[2], &st, "still", '?', 1, t.n, 0) < 0)
        goto fail;
    if (t.n && !isfinite(prev))
        prev = D1(t, 0);
    double cs = 0.0, base = 0.0;
    Py_ssize_t last = -1, k = -1;
    for (Py_ssize_t i = 0; i < t.n; i++) {
        double ti = D1(t, i), dt = ti - prev;
        prev = ti;
        double x = D2(w, i, 0), y = D2(w, i, 1), z = D2(w, i, 2);
        int still = B1(st, i) != 0;
        double rot = still ? 0.0 : sqrt((x * x + y * y) + z * z) * dt;
        cs = i == 0 ? rot : cs + rot;
        if (still)
            last = i, base = cs;
        if (cs - (last >= 0 ? base : 0.0) >= thr) {
            k = i;
            break;
        }
    }
    arr_release(&t), arr_release(&w), arr_release(&st);
    if (k < 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(nn)", k, last + 1);
fail:
    arr_release(&t), arr_release(&w), arr_release(&st);
    return NULL;
}

/* ------------------------------------------------------------------ accelerometer means at rest events */

PyDoc_STRVAR(window_means_doc,
             "window_means(x, rest, n, out)\n--\n\n"
             "For x (N, 3) float64 and rest (M,) bool flags of its last M rows (M <= N): at each flagged row\n"
             "j, out[j] (out (M, 3) float64) = the mean of the n rows of x ending there (fewer at the start),\n"
             "x[max(0, e - n + 1) : e + 1].mean(axis=0) with e = N - M + j; other rows of out are left as\n"
             "they are. Each sum is taken row by row from 0.0, as numpy's reduction over the first axis adds\n"
             "them, then divided by the row count (tests compare it with numpy bit for bit).");

static PyObject *
window_means(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr x = {0}, rs = {0}, out = {0};
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "window_means expected 4 arguments, got %zd", nargs);
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[2]);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 1) {
        PyErr_Format(PyExc_ValueError, "window_means expected n >= 1, got %zd", n);
        return NULL;
    }
    if (arr_get(args[0], &x, "x", 'd', 2, -1, 0) < 0 || arr_get(args[1], &rs, "rest", '?', 1, -1, 0) < 0 ||
        arr_get(args[3], &out, "out", 'd', 2, rs.n, 1) < 0)
        goto fail;
    if (rs.n > x.n) {
        PyErr_Format(PyExc_ValueError, "window_means expected at most %zd rest flags (rows of x), got %zd", x.n, rs.n);
        goto fail;
    }
    Py_ssize_t off = x.n - rs.n;
    for (Py_ssize_t j = 0; j < rs.n; j++) {
        if (!B1(rs, j))
            continue;
        Py_ssize_t end = off + j, lo = end - n + 1 > 0 ? end - n + 1 : 0;
        double s0 = 0.0, s1 = 0.0, s2 = 0.0;
        for (Py_ssize_t r = lo; r <= end; r++) {
            s0 = s0 + D2(x, r, 0);
            s1 = s1 + D2(x, r, 1);
            s2 = s2 + D2(x, r, 2);
        }
        double cnt = (double)(end - lo + 1);
        char *o = out.base + j * out.s0;
        *(double *)o = s0 / cnt;
        *(double *)(o + out.s1) = s1 / cnt;
        *(double *)(o + 2 * out.s1) = s2 / cnt;
    }
    arr_release(&x), arr_release(&rs), arr_release(&out);
    Py_RETURN_NONE;
fail:
    arr_release(&x), arr_release(&rs), arr_release(&out);
    return NULL;
}

/* ------------------------------------------------------------------ the angle stage's array work */
/* HipAngleEstimator._angles and Mounting.angles (host/fusion/angle.py) decide in Python; the
   per-sample work of one decision level runs here, in the operations and order of the numpy forms
   in host/fusion/angle_reference.py (tests require identical numbers). */

/* numpy's float remainder (npy_remainder: fmod, moved to the divisor's sign, a zero signed like it). */
static inline double
np_remainder(double a, double b)
{
    if (a > 0.0 && a < b)
        return a; /* (what fmod and the adjustments give there, without fmod's cost) */
    double mod = fmod(a, b);
    if (!b)
        return mod;
    if (mod) {
        if ((b < 0) != (mod < 0))
            mod += b;
    } else {
        mod = copysign(0.0, b);
    }
    return mod;
}

/* numpy's clip of a float (a NaN stays NaN). */
static inline double
np_clip(double x, double lo, double hi)
{
    double y = isnan(x) ? x : (x > lo ? x : lo);
    return isnan(y) ? y : (y < hi ? y : hi);
}

PyDoc_STRVAR(plane_angles_doc,
             "plane_angles(up, u_ref, g_ref, quat, axis, offset_deg, long_axis, long_ref, axis_ref, max_correction_deg,\n"
             "             angle_out_deg)\n--\n\n"
             "Mounting.angles of an anchored mounting: the tilt t (tilt_angles(up, u_ref, axis, offset_deg)) plus\n"
             "the plane's correction clipped to +-max_correction_deg: with h = hip_angles(up, g_ref, quat,\n"
             "long_axis, long_ref, axis_ref, offset_deg), t + clip(remainder(h - t + 180, 360) - 180) as numpy\n"
             "computes it. up, u_ref, g_ref (N, 3) (u_ref, g_ref may have 0 row stride), quat (N, 4) float64.");

static PyObject *
plane_angles(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr u = {0}, r = {0}, g = {0}, q = {0}, out = {0};
    double f[3], a[3], al[3], fi[3];
    if (nargs != 11) {
        PyErr_Format(PyExc_TypeError, "plane_angles expected 11 arguments, got %zd", nargs);
        return NULL;
    }
    if (vec3(args[4], f, "axis") < 0 || vec3(args[6], a, "long_axis") < 0 || vec3(args[7], al, "long_ref") < 0 ||
        vec3(args[8], fi, "axis_ref") < 0)
        return NULL;
    double off = PyFloat_AsDouble(args[5]);
    if (off == -1.0 && PyErr_Occurred())
        return NULL;
    double lim = PyFloat_AsDouble(args[9]);
    if (lim == -1.0 && PyErr_Occurred())
        return NULL;
    if (arr_get(args[0], &u, "up", 'd', 2, -1, 0) < 0 || arr_get(args[1], &r, "u_ref", 'd', 2, u.n, 0) < 0 ||
        arr_get(args[2], &g, "g_ref", 'd', 2, u.n, 0) < 0 || arr_get(args[3], &q, "quat", 'd', 4, u.n, 0) < 0 ||
        arr_get(args[10], &out, "angle_out_deg", 'd', 1, u.n, 1) < 0)
        goto fail;
    PyThreadState *released = u.n >= GIL_FREE_ROWS ? PyEval_SaveThread() : NULL; /* (as TiltKernel.run) */
    for (Py_ssize_t i = 0; i < u.n; i++) {
        double t = tilt_row(&u, &r, i, f, off);
        double h = hip_row(&u, &g, &q, i, a, al, fi, off);
        double d = np_remainder(h - t + 180.0, 360.0) - 180.0;
        *(double *)(out.base + i * out.s0) = t + np_clip(d, -lim, lim);
    }
    if (released != NULL)
        PyEval_RestoreThread(released);
    arr_release(&u), arr_release(&r), arr_release(&g), arr_release(&q), arr_release(&out);
    Py_RETURN_NONE;
fail:
    arr_release(&u), arr_release(&r), arr_release(&g), arr_release(&q), arr_release(&out);
    return NULL;
}

/* The rotation of sample i of a movement: |rate| * dt, 0 at still samples.  |rate|^2 is summed
   (x*x + z*z) + y*y, the order numpy's einsum("ni,ni->n") gave (kept: the same numbers). */
static inline double
turn_row(const Arr *w, const Arr *st, Py_ssize_t i, double dt)
{
    if (B1(*st, i))
        return sqrt(0.0) * dt;
    double x = D2(*w, i, 0), y = D2(*w, i, 1), z = D2(*w, i, 2);
    return sqrt((x * x + z * z) + y * y) * dt;
}

PyDoc_STRVAR(movement_anchor_doc,
             "movement_anchor(rate_dps, still, rest, ok, dt_s, turned_deg, anchored_deg, rotation_deg) -> int\n--\n\n"
             "The first rest event e (counting rest's True rows in order) with ok[e] where the thigh has turned\n"
             "rotation_deg since the last anchoring, counting its sample i: with turned[0] = turned_deg and\n"
             "turned[i + 1] = turned[i] + |rate_dps[i]| * dt_s (0 at still samples), turned[i + 1] - anchored_deg\n"
             ">= rotation_deg; or -1 (numpy's flatnonzero(ok & moved)[0], movement_moved_reference in\n"
             "host/fusion/angle_reference.py). The rotation count stops there (the samples after it are not read).\n"
             "rate_dps (N, 3) float64, still, rest (N,) bool, ok (E,) bool with E the number of rest events.");

static PyObject *
movement_anchor(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr w = {0}, st = {0}, rs = {0}, ok = {0};
    if (nargs != 8) {
        PyErr_Format(PyExc_TypeError, "movement_anchor expected 8 arguments, got %zd", nargs);
        return NULL;
    }
    double dt = PyFloat_AsDouble(args[4]), turned = PyFloat_AsDouble(args[5]);
    double anchored = PyFloat_AsDouble(args[6]), rot = PyFloat_AsDouble(args[7]);
    if (PyErr_Occurred())
        return NULL;
    if (arr_get(args[0], &w, "rate_dps", 'd', 2, -1, 0) < 0 || arr_get(args[1], &st, "still", '?', 1, w.n, 0) < 0 ||
        arr_get(args[2], &rs, "rest", '?', 1, w.n, 0) < 0 || arr_get(args[3], &ok, "ok", '?', 1, -1, 0) < 0)
        goto fail;
    Py_ssize_t n_rest = 0;
    for (Py_ssize_t i = 0; i < w.n; i++)
        n_rest += B1(rs, i) != 0;
    if (ok.n != n_rest) {
        PyErr_Format(PyExc_ValueError, "ok must have one row per rest event (%zd), got %zd", n_rest, ok.n);
        goto fail;
    }
    Py_ssize_t e = 0, found = -1;
    for (Py_ssize_t i = 0; i < w.n && e < ok.n; i++) {
        turned = turned + turn_row(&w, &st, i, dt);
        if (B1(rs, i)) {
            if (B1(ok, e) && turned - anchored >= rot) {
                found = e;
                break;
            }
            e++;
        }
    }
    arr_release(&w), arr_release(&st), arr_release(&rs), arr_release(&ok);
    return PyLong_FromSsize_t(found);
fail:
    arr_release(&w), arr_release(&st), arr_release(&rs), arr_release(&ok);
    return NULL;
}

PyDoc_STRVAR(rows_minus_doc,
             "rows_minus(x, v, out)\n--\n\n"
             "out[i, k] = x[i, k] - v[k]: numpy's x - v of an (N, 3) float64 array and a 3-vector (the same\n"
             "subtractions in one pass over the rows); out (N, 3) float64, writable.");

static PyObject *
rows_minus(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr x = {0}, out = {0};
    double v[3];
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "rows_minus expected 3 arguments, got %zd", nargs);
        return NULL;
    }
    if (vec3(args[1], v, "v") < 0)
        return NULL;
    if (arr_get(args[0], &x, "x", 'd', 2, -1, 0) < 0 || arr_get(args[2], &out, "out", 'd', 2, x.n, 1) < 0) {
        arr_release(&x), arr_release(&out);
        return NULL;
    }
    if (x.s0 == 3 * (Py_ssize_t)sizeof(double) && x.s1 == sizeof(double) && out.s0 == x.s0 && out.s1 == x.s1) {
        /* (both C-contiguous: rows of 3 in a row; a loop the compiler can keep in registers) */
        const double *a = (const double *)x.base;
        double *o = (double *)out.base;
        const double v0 = v[0], v1 = v[1], v2 = v[2];
        for (Py_ssize_t i = 0; i < x.n; i++) {
            o[3 * i] = a[3 * i] - v0;
            o[3 * i + 1] = a[3 * i + 1] - v1;
            o[3 * i + 2] = a[3 * i + 2] - v2;
        }
    } else {
        for (Py_ssize_t i = 0; i < x.n; i++) {
            double *o = (double *)(out.base + i * out.s0);
            for (int k = 0; k < 3; k++)
                *(double *)((char *)o + k * out.s1) = D2(x, i, k) - v[k];
        }
    }
    arr_release(&x), arr_release(&out);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(level_tests_doc,
             "level_tests(up, u_ref, angle_ev, along, ref_along, axis, offset_deg, zone_deg, posture_deg, slip_sin,\n"
             "            slip_far_sin, anchor_sin, rate_dps, still, rest, dt_s, turned_deg, anchored_deg, rotation_deg)\n"
             "            -> (slip_event, anchor_event, anchor_tilt_deg)\n--\n\n"
             "The rest-event tests of one decision level (HipAngleEstimator._level; level_tests_reference in\n"
             "host/fusion/angle_reference.py is its numpy form). At rest event e (row i, the e-th True row of rest),\n"
             "with off = |along[e] - ref_along[e]| (ref_along an (E,) array or one number): bad if off > slip_sin\n"
             "near the reference pose (|angle_ev[e] - offset_deg| <= zone_deg), off > slip_far_sin or angle_ev[e] >\n"
             "posture_deg; near if the tilt of row i (tilt_angles of up, u_ref about axis, plus offset_deg) is within\n"
             "zone_deg of offset_deg or off <= anchor_sin. The events are read in order up to the first bad one\n"
             "or the anchoring one a = movement_anchor(rate_dps, still, rest, near & ~bad, dt_s, turned_deg,\n"
             "anchored_deg, rotation_deg), whichever comes first (the level ends there): (bad, -1, nan),\n"
             "(-1, a, tilt at a) or (-1, -1, nan).\n"
             "up, u_ref (N, 3) (u_ref may have 0 row stride), rate_dps (N, 3) float64; still, rest (N,) bool;\n"
             "angle_ev, along (E,) float64.");

static PyObject *
level_tests(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr u = {0}, r = {0}, ang = {0}, al = {0}, ra = {0}, w = {0}, st = {0}, rs = {0};
    double f[3], p[12];
    if (nargs != 19) {
        PyErr_Format(PyExc_TypeError, "level_tests expected 19 arguments, got %zd", nargs);
        return NULL;
    }
    if (vec3(args[5], f, "axis") < 0)
        return NULL;
    /* offset, zone, posture, slip, slip_far, anchor, (rate...), dt, turned, anchored, rotation */
    static const int num_at[10] = {6, 7, 8, 9, 10, 11, 15, 16, 17, 18};
    for (int k = 0; k < 10; k++) {
        p[k] = PyFloat_AsDouble(args[num_at[k]]);
        if (p[k] == -1.0 && PyErr_Occurred())
            return NULL;
    }
    const double off = p[0], zone = p[1], posture = p[2], slip_sin = p[3], slip_far_sin = p[4], anchor_sin = p[5];
    const double dt = p[6], anchored = p[8], rot = p[9];
    double turned = p[7];
    /* ref_along: one number (a fixed reference rest) or one per event */
    const int ref_scalar = PyFloat_Check(args[4]) || PyLong_Check(args[4]);
    double ref_one = 0.0;
    if (ref_scalar) {
        ref_one = PyFloat_AsDouble(args[4]);
        if (ref_one == -1.0 && PyErr_Occurred())
            return NULL;
    }
    if (arr_get(args[0], &u, "up", 'd', 2, -1, 0) < 0 || arr_get(args[1], &r, "u_ref", 'd', 2, u.n, 0) < 0 ||
        arr_get(args[2], &ang, "angle_ev", 'd', 1, -1, 0) < 0 || arr_get(args[3], &al, "along", 'd', 1, ang.n, 0) < 0 ||
        (!ref_scalar && arr_get(args[4], &ra, "ref_along", 'd', 1, ang.n, 0) < 0) ||
        arr_get(args[12], &w, "rate_dps", 'd', 2, u.n, 0) < 0 || arr_get(args[13], &st, "still", '?', 1, u.n, 0) < 0 ||
        arr_get(args[14], &rs, "rest", '?', 1, u.n, 0) < 0)
        goto fail;
    Py_ssize_t n_rest = 0;
    if (rs.s0 == 1) { /* (a contiguous run of flags: a loop the compiler vectorises) */
        const char *b = rs.base;
        for (Py_ssize_t i = 0; i < u.n; i++)
            n_rest += b[i] != 0;
    } else {
        for (Py_ssize_t i = 0; i < u.n; i++)
            n_rest += B1(rs, i) != 0;
    }
    if (ang.n != n_rest) {
        PyErr_Format(PyExc_ValueError, "angle_ev must have one row per rest event (%zd), got %zd", n_rest, ang.n);
        goto fail;
    }
    Py_ssize_t e = 0, slip = -1, anchor = -1;
    double anchor_tilt = NAN;
    /* (up to the first bad event or the anchoring one, whichever comes first: the level ends there) */
    for (Py_ssize_t i = 0; i < u.n && e < ang.n && slip < 0 && anchor < 0; i++) {
        turned = turned + turn_row(&w, &st, i, dt);
        if (!B1(rs, i))
            continue;
        const double a = D1(ang, e);
        const double o = fabs(D1(al, e) - (ref_scalar ? ref_one : D1(ra, e)));
        const int low = fabs(a - off) <= zone;
        const int bad = (o > slip_sin && low) || o > slip_far_sin || a > posture;
        if (bad)
            slip = e;
        else {
            const double tilt = tilt_row(&u, &r, i, f, off);
            const int near = fabs(tilt - off) <= zone || o <= anchor_sin;
            if (near && turned - anchored >= rot)
                anchor = e, anchor_tilt = tilt;
        }
        e++;
    }
    arr_release(&u), arr_release(&r), arr_release(&ang), arr_release(&al), arr_release(&ra), arr_release(&w),
        arr_release(&st), arr_release(&rs);
    return Py_BuildValue("(nnd)", slip, anchor, anchor_tilt);
fail:
    arr_release(&u), arr_release(&r), arr_release(&ang), arr_release(&al), arr_release(&ra), arr_release(&w),
        arr_release(&st), arr_release(&rs);
    return NULL;
}

PyDoc_STRVAR(movement_sums_doc,
             "movement_sums(rate_dps, still, n, dt_s, turned_deg, cov, cov_out) -> float\n--\n\n"
             "The movement statistics of samples [0, n) carried on: returns turned_deg + the sum of\n"
             "|rate_dps[i]| * dt_s and sets cov_out = cov + the sum of w w^T * dt_s (w = rate_dps[i], 0 at still\n"
             "samples), each added sample by sample from the first. rate_dps (N, 3), cov, cov_out (3, 3) float64.");

static PyObject *
movement_sums(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr w = {0}, st = {0}, c = {0}, out = {0};
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError, "movement_sums expected 7 arguments, got %zd", nargs);
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[2]);
    double dt = PyFloat_AsDouble(args[3]), turned = PyFloat_AsDouble(args[4]);
    if (PyErr_Occurred())
        return NULL;
    if (arr_get(args[0], &w, "rate_dps", 'd', 2, -1, 0) < 0 || arr_get(args[1], &st, "still", '?', 1, w.n, 0) < 0 ||
        arr_get(args[5], &c, "cov", 'd', 2, 3, 0) < 0 || arr_get(args[6], &out, "cov_out", 'd', 2, 3, 1) < 0)
        goto fail;
    if (n < 0 || n > w.n) {
        PyErr_Format(PyExc_ValueError, "movement_sums expected 0 <= n <= %zd, got %zd", w.n, n);
        goto fail;
    }
    double s[3][3];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            s[a][b] = D2(c, a, b);
    /* the upper triangle only: v[a] * v[b] is v[b] * v[a] bit for bit, so s[b][a] is s[a][b] whenever
       cov is symmetric (what the estimator passes); the lower triangle is summed on its own otherwise */
    const int sym = !memcmp(&s[1][0], &s[0][1], sizeof(double)) && !memcmp(&s[2][0], &s[0][2], sizeof(double)) &&
                    !memcmp(&s[2][1], &s[1][2], sizeof(double)); /* (bit for bit: a -0.0 is not a 0.0 here) */
    for (Py_ssize_t i = 0; i < n; i++) {
        turned = turned + turn_row(&w, &st, i, dt);
        if (B1(st, i)) {
            /* (a still sample adds (0 * 0) * dt: +0.0, which leaves every sum but a -0.0 as it is) */
            for (int a = 0; a < 3; a++)
                for (int b = sym ? a : 0; b < 3; b++)
                    s[a][b] = s[a][b] + (0.0 * 0.0) * dt;
            continue;
        }
        const double v[3] = {D2(w, i, 0), D2(w, i, 1), D2(w, i, 2)};
        for (int a = 0; a < 3; a++)
            for (int b = sym ? a : 0; b < 3; b++)
                s[a][b] = s[a][b] + (v[a] * v[b]) * dt;
    }
    if (sym)
        s[1][0] = s[0][1], s[2][0] = s[0][2], s[2][1] = s[1][2];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            *(double *)(out.base + a * out.s0 + b * out.s1) = s[a][b];
    arr_release(&w), arr_release(&st), arr_release(&c), arr_release(&out);
    return PyFloat_FromDouble(turned);
fail:
    arr_release(&w), arr_release(&st), arr_release(&c), arr_release(&out);
    return NULL;
}

/* numpy's dot of two 3-vectors as it computes it here (DOUBLE_dot: 0.0 + OpenBLAS ddot, whose
   kernel fuses the multiply-adds): kept so that the numbers stay what the numpy code gave. */
static inline double
np_dot3(const double a[3], const double b[3])
{
    return 0.0 + fma(a[2], b[2], fma(a[1], b[1], fma(a[0], b[0], 0.0)));
}

PyDoc_STRVAR(rest_angles_doc,
             "rest_angles(acc_means, raw_ref, axis, offset_deg, angle_out_deg)\n--\n\n"
             "HipAngleEstimator._rest_angles: each accelerometer mean (M, 3) made a unit vector (its norm\n"
             "sqrt(v . v) as numpy's dot gives it), then tilt_angles against raw_ref (a 3-vector) about axis; a\n"
             "mean of norm 0 (or NaN) reads 0. angle_out_deg (M,) float64.");

static PyObject *
rest_angles(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr x = {0}, out = {0};
    double ref[3], f[3];
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "rest_angles expected 5 arguments, got %zd", nargs);
        return NULL;
    }
    if (vec3(args[1], ref, "raw_ref") < 0 || vec3(args[2], f, "axis") < 0)
        return NULL;
    double off = PyFloat_AsDouble(args[3]);
    if (off == -1.0 && PyErr_Occurred())
        return NULL;
    if (arr_get(args[0], &x, "acc_means", 'd', 2, -1, 0) < 0 || arr_get(args[4], &out, "angle_out_deg", 'd', 1, x.n, 1) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < x.n; i++) {
        const double v[3] = {D2(x, i, 0), D2(x, i, 1), D2(x, i, 2)};
        double nrm = sqrt(np_dot3(v, v)), res = 0.0;
        if (nrm > 0) {
            double unit[3] = {v[0] / nrm, v[1] / nrm, v[2] / nrm};
            Arr u1 = {.base = (char *)unit, .n = 1, .s0 = 0, .s1 = sizeof(double)};
            Arr r1 = {.base = (char *)ref, .n = 1, .s0 = 0, .s1 = sizeof(double)};
            res = tilt_row(&u1, &r1, 0, f, off);
        }
        *(double *)(out.base + i * out.s0) = res;
    }
    arr_release(&x), arr_release(&out);
    Py_RETURN_NONE;
fail:
    arr_release(&x), arr_release(&out);
    return NULL;
}

PyDoc_STRVAR(first_lower_rest_doc,
             "first_lower_rest(acc_means, n, raw_ref, axis, offset_deg, lo_deg, hi_deg) -> (row, angle_deg) | None\n--\n\n"
             "The first of rows [0, n) of acc_means (N, 3) float64 that holds an accelerometer mean (a row not all\n"
             "zero) whose rest angle (rest_angles of that row) lies strictly between lo_deg and hi_deg, with that\n"
             "angle; None if there is none (first_lower_rest_reference in host/fusion/angle_reference.py).");

static PyObject *
first_lower_rest(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr x = {0};
    double ref[3], f[3];
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError, "first_lower_rest expected 7 arguments, got %zd", nargs);
        return NULL;
    }
    const Py_ssize_t n = PyLong_AsSsize_t(args[1]);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (vec3(args[2], ref, "raw_ref") < 0 || vec3(args[3], f, "axis") < 0)
        return NULL;
    const double off = PyFloat_AsDouble(args[4]), lo = PyFloat_AsDouble(args[5]), hi = PyFloat_AsDouble(args[6]);
    if (PyErr_Occurred())
        return NULL;
    if (arr_get(args[0], &x, "acc_means", 'd', 2, -1, 0) < 0)
        return NULL;
    if (n < 0 || n > x.n) {
        PyErr_Format(PyExc_ValueError, "first_lower_rest expected 0 <= n <= %zd, got %zd", x.n, n);
        arr_release(&x);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const double v[3] = {D2(x, i, 0), D2(x, i, 1), D2(x, i, 2)};
        if (!(v[0] != 0.0 || v[1] != 0.0 || v[2] != 0.0))
            continue;
        /* (rest_angles of this row, the same operations) */
        double nrm = sqrt(np_dot3(v, v)), a = 0.0;
        if (nrm > 0) {
            double unit[3] = {v[0] / nrm, v[1] / nrm, v[2] / nrm};
            Arr u1 = {.base = (char *)unit, .n = 1, .s0 = 0, .s1 = sizeof(double)};
            Arr r1 = {.base = (char *)ref, .n = 1, .s0 = 0, .s1 = sizeof(double)};
            a = tilt_row(&u1, &r1, 0, f, off);
        }
        if (lo < a && a < hi) {
            arr_release(&x);
            return Py_BuildValue("(nd)", i, a);
        }
    }
    arr_release(&x);
    Py_RETURN_NONE;
}

/* 3-vector helpers of anchor_frame, operation for operation as host/fusion/angle.py's numpy
   (cross3, _rotate, _tilted_back, _level). */
static inline void
cross3(const double a[3], const double b[3], double out[3])
{
    double o0 = a[1] * b[2] - a[2] * b[1], o1 = a[2] * b[0] - a[0] * b[2], o2 = a[0] * b[1] - a[1] * b[0];
    out[0] = o0, out[1] = o1, out[2] = o2;
}

static inline void
rotate_q(const double q[4], const double v[3], double out[3])
{
    const double u[3] = {q[1], q[2], q[3]};
    double c[3], t[3], ut[3];
    cross3(u, v, c);
    for (int k = 0; k < 3; k++)
        t[k] = 2.0 * c[k];
    cross3(u, t, ut);
    for (int k = 0; k < 3; k++)
        out[k] = (v[k] + q[0] * t[k]) + ut[k];
}

static inline void
tilted_back(const double q[4], const double up[3], const double g_ref[3], const double v[3], double out[3])
{
    double g[3], w[3], k[3], kw[3];
    rotate_q(q, up, g);
    rotate_q(q, v, w);
    cross3(g, g_ref, k);
    double c = np_dot3(g, g_ref);
    cross3(k, w, kw);
    double s = np_dot3(k, w) / (1.0 + c);
    for (int i = 0; i < 3; i++)
        out[i] = (c * w[i] + kw[i]) + k[i] * s;
}

static inline void
level3(const double v[3], const double g[3], double out[3])
{
    double d = np_dot3(v, g), x[3];
    for (int i = 0; i < 3; i++)
        x[i] = v[i] - d * g[i];
    double n = sqrt(np_dot3(x, x));
    for (int i = 0; i < 3; i++)
        out[i] = x[i] / n;
}

PyDoc_STRVAR(anchor_frame_doc,
             "anchor_frame(quat, up, g_ref, axis, long_axis, turn_deg) -> (long_i, axis_i, g_ref)\n--\n\n"
             "Mounting.anchored's exercise plane at a rest (host/fusion/angle.py: anchor_frame_reference in\n"
             "host/fusion/angle_reference.py): g_ref (None: quat applied to up) is gravity's direction in the\n"
             "I frame; axis_i the flexion axis there (tilt drift undone, level), long_i the long axis there turned\n"
             "back by turn_deg about axis_i. 3-tuples of floats; quat (w, x, y, z).");

static PyObject *
anchor_frame(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    double q[4], up[3], g[3], f[3], a[3];
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "anchor_frame expected 6 arguments, got %zd", nargs);
        return NULL;
    }
    PyObject *seq = PySequence_Fast(args[0], "");
    if (seq == NULL || PySequence_Fast_GET_SIZE(seq) != 4) {
        Py_XDECREF(seq);
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "quat must be 4 numbers, got %.100s", Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    for (int k = 0; k < 4; k++)
        q[k] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, k));
    Py_DECREF(seq);
    if (PyErr_Occurred())
        return NULL;
    if (vec3(args[1], up, "up") < 0 || vec3(args[3], f, "axis") < 0 || vec3(args[4], a, "long_axis") < 0)
        return NULL;
    if (args[2] == Py_None)
        rotate_q(q, up, g);
    else if (vec3(args[2], g, "g_ref") < 0)
        return NULL;
    double turn = PyFloat_AsDouble(args[5]);
    if (turn == -1.0 && PyErr_Occurred())
        return NULL;
    double fb[3], fi[3], ab[3], an[3], fxa[3], li[3];
    tilted_back(q, up, g, f, fb);
    level3(fb, g, fi);
    tilted_back(q, up, g, a, ab);
    level3(ab, fi, an);
    double d = turn * (3.14159265358979323846 / 180.0), cd = cos(d), sd = sin(d);
    cross3(fi, an, fxa);
    for (int i = 0; i < 3; i++)
        li[i] = cd * an[i] - sd * fxa[i];
    return Py_BuildValue("((ddd)(ddd)(ddd))", li[0], li[1], li[2], fi[0], fi[1], fi[2], g[0], g[1], g[2]);
}

/* ------------------------------------------------------------------ the mounting's axes at an anchoring */
/* host/fusion/angle.py's level_axis, long_axis_flat and long_axis_from_lever on 3-vectors, operation
   for operation as their numpy form gave them (its dot products: np_dot3; the rest elementwise), in
   one call each instead of a dozen numpy calls on (3,) arrays. */

static inline double
norm3_np(const double v[3])
{
    return sqrt(np_dot3(v, v));
}

/* level_axis: the axis made normal to up_ref (unit), or the axis itself if that leaves under 0.5. */
static void
level_axis3(const double axis[3], const double up[3], double out[3])
{
    const double d = np_dot3(axis, up);
    double x[3];
    for (int i = 0; i < 3; i++)
        x[i] = axis[i] - d * up[i];
    const double n = norm3_np(x);
    for (int i = 0; i < 3; i++)
        out[i] = n > 0.5 ? x[i] / n : axis[i];
}

/* long_axis_flat: axis x up_ref made unit (axis x the basis vector where |axis| is least if they are parallel). */
static void
long_axis_flat3(const double axis[3], const double up[3], double out[3])
{
    double x[3];
    cross3(axis, up, x);
    double n = norm3_np(x);
    if (n > 1e-6) {
        for (int i = 0; i < 3; i++)
            out[i] = x[i] / n;
        return;
    }
    int k = 0; /* np.argmin(np.abs(axis)): the first NaN, else the first least */
    double best = fabs(axis[0]);
    for (int i = 1; i < 3 && !isnan(best); i++) {
        const double v = fabs(axis[i]);
        if (isnan(v) || v < best)
            k = i, best = v;
    }
    const double e[3] = {k == 0 ? 1.0 : 0.0, k == 1 ? 1.0 : 0.0, k == 2 ? 1.0 : 0.0};
    cross3(axis, e, x);
    n = norm3_np(x);
    for (int i = 0; i < 3; i++)
        out[i] = x[i] / n;
}

static PyObject *
tuple3(const double v[3])
{
    return Py_BuildValue("(ddd)", v[0], v[1], v[2]);
}

PyDoc_STRVAR(level_axis_doc,
             "level_axis(axis, up_ref) -> (x, y, z)\n--\n\n"
             "host/fusion/angle.py level_axis: axis - (axis . up_ref) up_ref made unit, or axis itself when that\n"
             "part's norm is not over 0.5 (3-vectors; dot products as numpy's).");

static PyObject *
level_axis_c(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    double a[3], u[3], out[3];
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "level_axis expected 2 arguments, got %zd", nargs);
        return NULL;
    }
    if (vec3(args[0], a, "axis") < 0 || vec3(args[1], u, "up_ref") < 0)
        return NULL;
    level_axis3(a, u, out);
    return tuple3(out);
}

PyDoc_STRVAR(long_axis_flat_doc,
             "long_axis_flat(axis, up_ref) -> (x, y, z)\n--\n\n"
             "host/fusion/angle.py long_axis_flat: axis x up_ref made unit (axis x the basis vector along the\n"
             "least |axis| component when that cross product's norm is not over 1e-6).");

static PyObject *
long_axis_flat_c(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    double a[3], u[3], out[3];
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "long_axis_flat expected 2 arguments, got %zd", nargs);
        return NULL;
    }
    if (vec3(args[0], a, "axis") < 0 || vec3(args[1], u, "up_ref") < 0)
        return NULL;
    long_axis_flat3(a, u, out);
    return tuple3(out);
}

PyDoc_STRVAR(long_axis_from_lever_doc,
             "long_axis_from_lever(axis, up_ref, lever_m, lever_min_m) -> (x, y, z)\n--\n\n"
             "host/fusion/angle.py long_axis_from_lever: long_axis_flat, or the upright axis (up_ref's part\n"
             "normal to axis, unit) when the lever arm's part normal to axis is longer than lever_min_m and\n"
             "lies nearer to it.");

static PyObject *
long_axis_from_lever_c(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    double a[3], u[3], l[3], flat[3], lev[3], upr[3];
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "long_axis_from_lever expected 4 arguments, got %zd", nargs);
        return NULL;
    }
    if (vec3(args[0], a, "axis") < 0 || vec3(args[1], u, "up_ref") < 0 || vec3(args[2], l, "lever_m") < 0)
        return NULL;
    const double lever_min = PyFloat_AsDouble(args[3]);
    if (lever_min == -1.0 && PyErr_Occurred())
        return NULL;
    long_axis_flat3(a, u, flat);
    const double dl = np_dot3(l, a), du = np_dot3(u, a);
    for (int i = 0; i < 3; i++) {
        lev[i] = l[i] - dl * a[i];
        upr[i] = u[i] - du * a[i];
    }
    const double nu = norm3_np(upr);
    if (!(norm3_np(lev) > lever_min && nu > 1e-6))
        return tuple3(flat);
    for (int i = 0; i < 3; i++)
        upr[i] = upr[i] / nu;
    return tuple3(fabs(np_dot3(lev, flat)) >= fabs(np_dot3(lev, upr)) ? flat : upr);
}

PyDoc_STRVAR(row_offset_doc,
             "row_offset(part, whole) -> int | None\n--\n\n"
             "k if the array part is the rows whole[k : k + len(part)] (the same memory: part and whole share\n"
             "the array that owns it, with the same dtype, strides and row shape), else None\n"
             "(host/fusion/angle_reference.py row_offset_reference is its Python form).");

static PyObject *
row_offset(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "row_offset expected 2 arguments, got %zd", nargs);
        return NULL;
    }
    PyObject *part = args[0], *whole = args[1];
    PyObject *pb = PyObject_GetAttrString(part, "base");
    if (pb == NULL)
        return NULL;
    PyObject *wb = PyObject_GetAttrString(whole, "base");
    if (wb == NULL) {
        Py_DECREF(pb);
        return NULL;
    }
    int same = (pb == Py_None ? part : pb) == (wb == Py_None ? whole : wb);
    Py_DECREF(pb), Py_DECREF(wb);
    if (!same)
        Py_RETURN_NONE;
    Py_buffer p, w;
    if (PyObject_GetBuffer(part, &p, PyBUF_STRIDES | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(whole, &w, PyBUF_STRIDES | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&p);
        return NULL;
    }
    Py_ssize_t k = -1;
    int ok = p.ndim == w.ndim && p.ndim >= 1 && p.itemsize == w.itemsize &&
             strcmp(p.format ? p.format : "B", w.format ? w.format : "B") == 0;
    for (int d = 0; ok && d < p.ndim; d++)
        ok = p.strides[d] == w.strides[d] && (d == 0 || p.shape[d] == w.shape[d]);
    if (ok && w.strides[0] > 0) {
        Py_ssize_t step = w.strides[0], off = (char *)p.buf - (char *)w.buf;
        /* (Python's divmod: a negative offset never gives a row) */
        if (off >= 0 && off % step == 0 && off / step + p.shape[0] <= w.shape[0])
            k = off / step;
    }
    PyBuffer_Release(&p), PyBuffer_Release(&w);
    if (k < 0)
        Py_RETURN_NONE;
    return PyLong_FromSsize_t(k);
}

/* ------------------------------------------------------------------ exercise: the posture fit's rows */
/* measure_posture (host/exercise.py) decides in Python and solves with numpy; this fills its design
   matrix and residual in the operations and order of its numpy form (posture_rows_reference there;
   a test requires identical numbers). The cosines, sines and |w|^2 come from numpy (its own sin, cos
   and einsum are not libm's, nor this loop's order). */

PyDoc_STRVAR(posture_rows_doc,
             "posture_rows(wd, w2, alpha, cos, sin, acc, axis, f_b, axis_x_f_b, axis_dot_f_b, g_norm, design_out,\n"
             "             resid_out)\n--\n\n"
             "The rows of the posture fit (host/exercise.py posture_rows_reference): for each of the M samples,\n"
             "design_out (M * 18,) holds its (3, 6) block [w w^T - |w|^2 I + [alpha]x | I (1 - c) + [n]x s - n n^T (1 - c)]\n"
             "and resid_out (M * 3,) (acc - gravity) / g_norm, gravity = f_b c - (n x f_b) s + (1 - c) n (n . f_b).\n"
             "wd, alpha, acc (M, 3); w2, cos, sin (M,) float64; axis, f_b, axis_x_f_b 3-vectors.");

static PyObject *
posture_rows(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr wd = {0}, w2 = {0}, al = {0}, cs = {0}, sn = {0}, ad = {0}, dz = {0}, rz = {0};
    double n[3], fb[3], nxf[3];
    if (nargs != 13) {
        PyErr_Format(PyExc_TypeError, "posture_rows expected 13 arguments, got %zd", nargs);
        return NULL;
    }
    if (vec3(args[6], n, "axis") < 0 || vec3(args[7], fb, "f_b") < 0 || vec3(args[8], nxf, "axis_x_f_b") < 0)
        return NULL;
    const double nf = PyFloat_AsDouble(args[9]), g_norm = PyFloat_AsDouble(args[10]);
    if (PyErr_Occurred())
        return NULL;
    if (arr_get(args[0], &wd, "wd", 'd', 2, -1, 0) < 0 || arr_get(args[1], &w2, "w2", 'd', 1, wd.n, 0) < 0 ||
        arr_get(args[2], &al, "alpha", 'd', 2, wd.n, 0) < 0 || arr_get(args[3], &cs, "cos", 'd', 1, wd.n, 0) < 0 ||
        arr_get(args[4], &sn, "sin", 'd', 1, wd.n, 0) < 0 || arr_get(args[5], &ad, "acc", 'd', 2, wd.n, 0) < 0 ||
        arr_get(args[11], &dz, "design_out", 'd', 1, 18 * wd.n, 1) < 0 ||
        arr_get(args[12], &rz, "resid_out", 'd', 1, 3 * wd.n, 1) < 0)
        goto fail;
    const double kn[3][3] = {{0.0, -n[2], n[1]}, {n[2], 0.0, -n[0]}, {-n[1], n[0], 0.0}};
    const double nfn[3] = {n[0] * nf, n[1] * nf, n[2] * nf};
    for (Py_ssize_t k = 0; k < wd.n; k++) {
        const double w[3] = {D2(wd, k, 0), D2(wd, k, 1), D2(wd, k, 2)};
        const double a[3] = {D2(al, k, 0), D2(al, k, 1), D2(al, k, 2)};
        const double c = D1(cs, k), s = D1(sn, k), ww = D1(w2, k);
        const double one_c = 1.0 - c;
        double blk[3][6];
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++) {
                blk[i][j] = w[i] * w[j];
                blk[i][3 + j] = ((i == j ? 1.0 : 0.0) * one_c + kn[i][j] * s) - (n[i] * n[j]) * one_c;
            }
            blk[i][i] = blk[i][i] - ww;
        }
        blk[0][1] = blk[0][1] - a[2];
        blk[0][2] = blk[0][2] + a[1];
        blk[1][0] = blk[1][0] + a[2];
        blk[1][2] = blk[1][2] - a[0];
        blk[2][0] = blk[2][0] - a[1];
        blk[2][1] = blk[2][1] + a[0];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 6; j++)
                *(double *)(dz.base + (18 * k + 6 * i + j) * dz.s0) = blk[i][j];
        for (int j = 0; j < 3; j++) {
            const double grav = (fb[j] * c - nxf[j] * s) + one_c * nfn[j];
            *(double *)(rz.base + (3 * k + j) * rz.s0) = (D2(ad, k, j) - grav) / g_norm;
        }
    }
    arr_release(&wd), arr_release(&w2), arr_release(&al), arr_release(&cs), arr_release(&sn), arr_release(&ad),
        arr_release(&dz), arr_release(&rz);
    Py_RETURN_NONE;
fail:
    arr_release(&wd), arr_release(&w2), arr_release(&al), arr_release(&cs), arr_release(&sn), arr_release(&ad),
        arr_release(&dz), arr_release(&rz);
    return NULL;
}

/* ------------------------------------------------------------------ reps: speed and stopwatch measures */

/* host.reps.reference.speed_at: least-squares slope (deg/s) of angle against time over the
   samples [j-k, j+k] clipped to [lo, hi] and to the moving samples around j (0 at a rest).  Same operations in the same order as the
   reference, so the results are bit-identical (built with -ffp-contract=off). */
static double
speed_at(const double *t, const double *a, const char *rest, Py_ssize_t j, Py_ssize_t lo, Py_ssize_t hi,
         Py_ssize_t k)
{
    if (rest != NULL && rest[j])
        return 0.0;
    Py_ssize_t j0 = j, j1 = j;
    while (j0 > lo && j - j0 < k && (rest == NULL || !rest[j0 - 1]))
        j0--;
    while (j1 < hi && j1 - j < k && (rest == NULL || !rest[j1 + 1]))
        j1++;
    double n = (double)(j1 - j0 + 1), tj = t[j], st = 0.0, sa = 0.0, num = 0.0, den = 0.0;
    for (Py_ssize_t i = j0; i <= j1; i++) {
        st += t[i] - tj;
        sa += a[i];
    }
    double mt = st / n, ma = sa / n;
    for (Py_ssize_t i = j0; i <= j1; i++) {
        double d = (t[i] - tj) - mt;
        num += d * (a[i] - ma);
        den += d * d;
    }
    return den > 0.0 ? num / den : 0.0;
}

/* host.reps.reference._frac */
static double
speed_frac_between(double vi, double vj, double level)
{
    if (vj == vi)
        return 1.0;
    double f = (level - vi) / (vj - vi);
    return f < 0.0 ? 0.0 : (f > 1.0 ? 1.0 : f);
}

/* host.reps.reference._fastest: the sample of [i0, i1] moving fastest in direction sign among
   those whose angle lies in the middle half between a_lo and a_hi (all of them if none does). */
static Py_ssize_t
fastest_in_band(const double *v, const double *a, Py_ssize_t i0, Py_ssize_t i1, double a_lo, double a_hi, double sign)
{
    double band_lo = a_lo + 0.25 * (a_hi - a_lo), band_hi = a_lo + 0.75 * (a_hi - a_lo);
    Py_ssize_t best = -1, i;
    for (i = i0; i <= i1; i++)
        if (a[i] >= band_lo && a[i] <= band_hi && (best < 0 || sign * v[i] > sign * v[best]))
            best = i;
    if (best < 0) {
        best = i0;
        for (i = i0 + 1; i <= i1; i++)
            if (sign * v[i] > sign * v[best])
                best = i;
    }
    return best;
}

/* host.reps.reference.measure_window (its docstring holds the definitions).  t, a, rest are
   contiguous; v is scratch of at least 2 (c + 1) doubles (the speeds zero at rests for the peak
   speeds, then w: as measured at rests too, for the crossings).  out: start_s, peak_s, end_s,
   baseline_deg, peak_deg, rom_deg, up_s, hold_s, down_s, end_deg. */
static void
measure_window(const double *t, const double *a, const char *rest, double *v, Py_ssize_t lo, Py_ssize_t s0,
               Py_ssize_t c, Py_ssize_t k, double frac, double out[10])
{
    Py_ssize_t p = s0, iu, idn, i;
    for (i = s0 + 1; i <= c; i++)
        if (a[i] > a[p])
            p = i;
    double *w = v + (c + 1);
    for (i = lo; i <= c; i++) {
        v[i] = speed_at(t, a, rest, i, lo, c, k);
        w[i] = rest[i] ? speed_at(t, a, NULL, i, lo, c, k) : v[i];
    }
    /* v_up, v_dn: the peak speeds of the middle half of the rise and of the descent (by angle) */
    iu = fastest_in_band(v, a, s0, p, a[s0], a[p], 1.0);
    idn = fastest_in_band(v, a, p, c, a[c], a[p], -1.0);
    double thr_up = frac * v[iu], thr_dn = frac * v[idn], f;
    double start = t[s0], base = a[s0];
    for (i = iu - 1; i >= s0; i--)
        if (w[i] <= thr_up) {
            f = speed_frac_between(w[i], w[i + 1], thr_up);
            start = t[i] + f * (t[i + 1] - t[i]);
            base = a[i] + f * (a[i + 1] - a[i]);
            break;
        }
    double top_in = t[c];
    for (i = iu + 1; i <= c; i++)
        if (w[i] <= thr_up) {
            f = speed_frac_between(w[i - 1], w[i], thr_up);
            top_in = t[i - 1] + f * (t[i] - t[i - 1]);
            break;
        }
    double top_out = t[iu];
    for (i = idn - 1; i >= iu; i--)
        if (w[i] >= thr_dn) {
            f = speed_frac_between(w[i], w[i + 1], thr_dn);
            top_out = t[i] + f * (t[i + 1] - t[i]);
            break;
        }
    if (top_out < top_in)
        top_out = top_in;
    double end = t[c], end_deg = a[c];
    for (i = idn + 1; i <= c; i++)
        if (w[i] >= thr_dn) {
            f = speed_frac_between(w[i - 1], w[i], thr_dn);
            end = t[i - 1] + f * (t[i] - t[i - 1]);
            end_deg = a[i - 1] + f * (a[i] - a[i - 1]);
            break;
        }
    double peak = a[p];
    out[0] = start;
    out[1] = t[p];
    out[2] = end;
    out[3] = base;
    out[4] = peak;
    out[5] = peak - base;
    out[6] = top_in - start;
    out[7] = top_out - top_in;
    out[8] = end - top_out;
    out[9] = end_deg;
}

/* The data of a 1-D float64 Arr as a contiguous array: the buffer itself when it is
   contiguous (*owned = NULL), else a copy the caller frees (*owned).  NULL on no memory. */
static double *arr_copy(const Arr *x, Py_ssize_t lo, Py_ssize_t hi);
static char *arr_copy_bool(const Arr *x, Py_ssize_t n);

static const double *
arr_doubles(const Arr *x, double **owned)
{
    *owned = NULL;
    if (x->s0 == (Py_ssize_t)sizeof(double))
        return (const double *)x->base;
    *owned = arr_copy(x, 0, x->n);
    return *owned;
}

/* Likewise for a 1-D bool Arr. */
static const char *
arr_bools(const Arr *x, char **owned)
{
    *owned = NULL;
    if (x->s0 == 1)
        return (const char *)x->base;
    *owned = arr_copy_bool(x, x->n);
    return *owned;
}

/* Copy a 1-D bool Arr into a contiguous buffer. */
static char *
arr_copy_bool(const Arr *x, Py_ssize_t n)
{
    char *buf = PyMem_Malloc((size_t)(n > 0 ? n : 1));
    if (buf == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        buf[i] = B1(*x, i) != 0;
    return buf;
}

/* Copy a 1-D float64 Arr into a contiguous buffer (the measures index it directly). */
static double *
arr_copy(const Arr *x, Py_ssize_t lo, Py_ssize_t hi)
{
    double *buf = PyMem_Malloc((size_t)(hi > lo ? hi - lo : 1) * sizeof(double));
    if (buf == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = lo; i < hi; i++)
        buf[i - lo] = D1(*x, i);
    return buf;
}

/* ------------------------------------------------------------------ reps: the state machine */

enum { MODE_DOWN = 0, MODE_UP = 1, MODE_FALL = 2 };

/* host.reps.reference.RepMachineRef: parameters and carried state (global sample indices). */
typedef struct {
    PyObject_HEAD
    double enter_deg, undershoot_deg, undershoot_frac, chained_undershoot_frac, min_rom_deg, min_return_frac, max_rep_s, confirm_s, speed_frac;
    Py_ssize_t k;       /* speed half-window, samples */
    double floor_margin_deg;
    double held_rise_min_rom_deg;
    double min_baseline_deg; /* a rep's stopwatch baseline below this is rejected (RepMachineRef._close) */
    double floor_deg;   /* the lowest rest at the bottom so far, never above start_deg (NaN: none yet) */
    double start_deg;   /* the angle at the stream start (NaN: not yet) */
    double last_rom;    /* rom_deg of the last rep counted */
    Py_ssize_t pos;     /* global index of the next sample to examine */
    int mode;
    double low;         /* running low (DOWN, FALL) */
    Py_ssize_t i_low;
    double rest_deg;    /* last rest in DOWN (NaN: none) */
    double pause_deg;   /* last still sample in DOWN, a pause shorter than a rest too (NaN: none) */
    int chain;          /* the last excursion was a rep or an anchored fidget */
    Py_ssize_t s0;      /* candidate: where its rise starts */
    double base_deg;    /* angle at s0 */
    int cand_anchored;
    int cand_from_rest; /* the candidate rose from a rest (stricter undershoot) */
    double peak;
    Py_ssize_t i_peak;
    Py_ssize_t up_rest; /* rest on the way up (or part-way down), -1 if none */
    double up_rest_deg;
    /* the candidate before its rise started again at a rest on the way up (orig_s0 -1: not rebased) */
    Py_ssize_t orig_s0;
    double orig_deg;
    int orig_anchored;
    int has_held;       /* a rep that came down well below the rest it rose from, awaiting a rest */
    double held[9];
    double held_end_deg;
    long long n_rejected, n_fidgets;
} RepMachine;

static void
RepMachine_dealloc(RepMachine *self)
{
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
RepMachine_init(RepMachine *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"enter_deg", "undershoot_deg", "undershoot_frac", "chained_undershoot_frac",
                             "min_rom_deg", "min_return_frac",
                             "max_rep_s", "confirm_s", "speed_frac", "speed_half_n", "floor_margin_deg",
                             "held_rise_min_rom_deg", "min_baseline_deg", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "$dddddddddnddd:RepMachine", kwlist, &self->enter_deg,
                                     &self->undershoot_deg, &self->undershoot_frac, &self->chained_undershoot_frac,
                                     &self->min_rom_deg,
                                     &self->min_return_frac, &self->max_rep_s, &self->confirm_s, &self->speed_frac,
                                     &self->k, &self->floor_margin_deg, &self->held_rise_min_rom_deg,
                                     &self->min_baseline_deg))
        return -1;
    if (self->k < 1) {
        PyErr_Format(PyExc_ValueError, "speed_half_n must be >= 1, got %zd", self->k);
        return -1;
    }
    self->pos = 0;
    self->mode = MODE_DOWN;
    self->low = self->rest_deg = self->pause_deg = self->base_deg = self->floor_deg = self->start_deg = NAN;
    self->last_rom = 0.0;
    self->i_low = self->s0 = self->i_peak = 0;
    self->chain = 1; /* the stream start anchors */
    self->cand_anchored = self->cand_from_rest = 0;
    self->peak = self->up_rest_deg = 0.0;
    self->up_rest = -1;
    self->orig_s0 = -1;
    self->orig_deg = 0.0;
    self->orig_anchored = 0;
    self->has_held = 0;
    self->n_rejected = self->n_fidgets = 0;
    return 0;
}

static Py_ssize_t
oldest_needed(const RepMachine *m)
{
    Py_ssize_t first = m->mode != MODE_DOWN ? m->s0 : m->i_low;
    if (m->mode != MODE_DOWN && m->orig_s0 >= 0 && m->orig_s0 < first)
        first = m->orig_s0;
    if (m->pos < first)
        first = m->pos;
    first -= m->k;
    return first > 0 ? first : 0;
}

/* RepMachineRef._open; rebase: the open candidate's rise starts again at s0 (a rest on the way up),
   and the start it had is kept (close_cand). */
static void
open_cand(RepMachine *m, Py_ssize_t s0, double s0_deg, Py_ssize_t i, double x, int anchored, int from_rest, int rebase)
{
    if (!rebase) {
        m->orig_s0 = -1;
    } else {
        m->orig_s0 = m->s0;
        m->orig_deg = m->base_deg;
        m->orig_anchored = m->cand_anchored;
    }
    m->mode = MODE_UP;
    m->cand_from_rest = from_rest;
    m->s0 = s0;
    m->base_deg = s0_deg;
    m->cand_anchored = anchored;
    m->peak = x;
    m->i_peak = i;
    m->up_rest = -1;
}

static void
drop_cand(RepMachine *m, Py_ssize_t i, double x)
{
    m->n_rejected++;
    m->chain = 0;
    m->mode = MODE_DOWN;
    if (m->up_rest >= 0) { /* resting on the way up (a bent-knee set's 45 deg): that rest anchors what follows */
        m->low = m->rest_deg = m->pause_deg = m->up_rest_deg;
        m->i_low = m->up_rest;
    } else {
        m->low = x;
        m->i_low = i;
        m->rest_deg = m->pause_deg = NAN;
    }
}

/* RepMachineRef._rest_at: a rest at the bottom may lower the floor (NaN: the first rest); the floor
   is never above the stream start's angle. */
static void
rest_at(RepMachine *m, double x)
{
    if (m->start_deg < x)
        x = m->start_deg;
    if (!(x >= m->floor_deg))
        m->floor_deg = x;
}

/* RepMachineRef._chained: the low is anchored by the chain (it follows a rep) and not far below the
   floor (a NaN floor sets no limit). */
static int
chained(const RepMachine *m)
{
    double margin = m->undershoot_deg > m->chained_undershoot_frac * m->last_rom ? m->undershoot_deg
                                                                              : m->chained_undershoot_frac * m->last_rom;
    return m->chain && !(m->low < m->floor_deg - margin);
}

/* Append (r[0..8], c) to the list of closed reps. */
static int
append_rep(PyObject *out, const double *r, Py_ssize_t c)
{
    PyObject *item = Py_BuildValue("(dddddddddn)", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], c);
    if (item == NULL || PyList_Append(out, item) < 0) {
        Py_XDECREF(item);
        return -1;
    }
    Py_DECREF(item);
    return 0;
}

/* RepMachineRef._close: measure the candidate closed at global sample c, judge it, append
   a rep to out.  t, a, v are contiguous from global index base. */
static int
close_cand(RepMachine *m, const double *t, const double *a, const char *rest, Py_ssize_t base, Py_ssize_t c,
           PyObject *out)
{
    Py_ssize_t lo = m->s0 - m->k;
    if (lo < base)
        lo = base;
    double r[10];
    double *v = PyMem_Malloc(2 * (size_t)(c - base + 1) * sizeof(double)); /* speeds (two arrays), indexed like t */
    if (v == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    measure_window(t, a, rest, v, lo - base, m->s0 - base, c - base, m->k, m->speed_frac, r);
    double rom = r[5];
    /* judged from the stopwatch baseline, or, for a rise from a rest that rested again on the way up,
       from the candidate's low if that lies over undershoot_deg below it (a raise that paused
       part-way up: RepMachineRef._close) */
    double low = m->cand_from_rest && m->up_rest >= 0 && r[3] - m->base_deg > m->undershoot_deg ? m->base_deg : r[3];
    double rise = r[4] - low;
    double loose = m->undershoot_deg > m->chained_undershoot_frac * rise ? m->undershoot_deg
                                                                        : m->chained_undershoot_frac * rise;
    double strict = m->undershoot_deg > m->undershoot_frac * rise ? m->undershoot_deg : m->undershoot_frac * rise;
    if (m->orig_s0 >= 0 && rise >= m->min_rom_deg && (r[9] <= m->orig_deg + m->undershoot_deg || r[9] < low - loose)) {
        /* a rise that paused on the way up and came back down to where it first started, or far
           below the pause: one rep from where it first started (RepMachineRef._close) */
        Py_ssize_t lo0 = m->orig_s0 - m->k;
        if (lo0 < base)
            lo0 = base;
        double r0[10];
        measure_window(t, a, rest, v, lo0 - base, m->orig_s0 - base, c - base, m->k, m->speed_frac, r0);
        if (r0[4] - m->orig_deg >= m->min_rom_deg && m->orig_anchored && r0[2] - r0[0] <= m->max_rep_s &&
            r0[3] >= m->min_baseline_deg) {
            PyMem_Free(v);
            m->chain = 1;
            m->last_rom = r0[5];
            return append_rep(out, r0, c);
        }
    }
    PyMem_Free(v);
    if (rise < m->min_rom_deg) {
        m->n_fidgets++;
        m->chain = m->cand_anchored;
    } else if (!m->cand_anchored || r[9] < low - loose || r[2] - r[0] > m->max_rep_s || r[3] < m->min_baseline_deg) {
        m->n_rejected++;
        m->chain = 0;
    } else if (m->cand_from_rest && r[9] < low - strict) {
        m->has_held = 1; /* a rest next confirms it, a rise rejects it */
        for (int q = 0; q < 9; q++)
            m->held[q] = r[q];
        m->held_end_deg = r[9];
        m->chain = 0;
    } else {
        m->chain = 1;
        m->last_rom = rom;
        return append_rep(out, r, c);
    }
    return 0;
}

/* RepMachineRef._resolve: a held rep is confirmed by a rest (closed at i), and by a rise when its
   descent ended no more than floor_margin_deg below the floor or it rose held_rise_min_rom_deg or
   more; else the rise rejects it. */
static int
resolve_held(RepMachine *m, int rest, Py_ssize_t i, PyObject *out)
{
    if (!m->has_held)
        return 0;
    m->has_held = 0;
    if (rest || m->held_end_deg >= m->floor_deg - m->floor_margin_deg /* false when no floor (NaN) */
        || m->held[5] >= m->held_rise_min_rom_deg) {
        m->chain = 1;
        m->last_rom = m->held[5];
        return append_rep(out, m->held, i);
    }
    m->n_rejected++;
    return 0;
}

PyDoc_STRVAR(RepMachine_advance_doc,
             "advance(time_s, angle_deg, arm, still, base) -> list[tuple[float x 9, int]]\n--\n\n"
             "Run the machine over the logged samples (global indices base .. base + N - 1; the samples\n"
             "from oldest_needed() on must be there); arm marks rests of arm_rest_s, still the fusion's rests.  Returns the reps closed, in order, as (start_s,\n"
             "peak_s, end_s, baseline_deg, peak_deg, rom_deg, up_s, hold_s, down_s, closed index).");

/* host.reps.reference.RepMachineRef.advance, step for step. */
static PyObject *
RepMachine_advance(RepMachine *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "advance expected 5 arguments (time_s, angle_deg, arm, still, base), got %zd",
                     nargs);
        return NULL;
    }
    Arr ta = {0}, aa = {0}, arm = {0}, sta = {0};
    PyObject *out = NULL;
    double *t_own = NULL, *a_own = NULL;
    char *r_own = NULL;
    const double *t, *a;
    const char *r;
    if (arr_get(args[0], &ta, "time_s", 'd', 1, -1, 0) < 0 || arr_get(args[1], &aa, "angle_deg", 'd', 1, ta.n, 0) < 0 ||
        arr_get(args[2], &arm, "arm", '?', 1, ta.n, 0) < 0 || arr_get(args[3], &sta, "still", '?', 1, ta.n, 0) < 0)
        goto fail;
    Py_ssize_t base = PyLong_AsSsize_t(args[4]);
    if (base == -1 && PyErr_Occurred())
        goto fail;
    RepMachine *m = self;
    if (oldest_needed(m) < base) {
        PyErr_Format(PyExc_ValueError, "advance expected samples from %zd, got base %zd", oldest_needed(m), base);
        goto fail;
    }
    Py_ssize_t n = ta.n;
    if ((t = arr_doubles(&ta, &t_own)) == NULL || (a = arr_doubles(&aa, &a_own)) == NULL ||
        (r = arr_bools(&sta, &r_own)) == NULL)
        goto fail;
    out = PyList_New(0);
    if (out == NULL)
        goto fail;
    const double enter = m->enter_deg;
    const double rebase = m->enter_deg > m->min_rom_deg ? m->enter_deg : m->min_rom_deg;
    for (Py_ssize_t j = m->pos - base; j < n; j++) {
        Py_ssize_t i = j + base;
        double x = a[j];
        int armed = B1(arm, j) != 0;
        if (i == 0) { /* the stream start: a turning point that anchors (chain is 1) */
            m->low = x;
            m->i_low = 0;
            m->start_deg = x;
        }

        if (m->mode == MODE_DOWN) {
            if (armed) {
                rest_at(m, x);
                if (resolve_held(m, 1, i, out) < 0)
                    goto fail;
                m->rest_deg = m->pause_deg = x;
                m->low = x;
                m->i_low = i;
            } else if (x < m->low || t[j] - t[m->i_low - base] > m->max_rep_s) {
                m->low = x;
                m->i_low = i;
            }
            if (r[j])
                m->pause_deg = x;
            if (x > m->low + enter) {
                if (resolve_held(m, 0, i, out) < 0)
                    goto fail;
                /* near the last rest, or the last pause (a still sample, if shorter than arm_rest_s);
                   false when NaN */
                int near_rest = m->low >= m->rest_deg - m->undershoot_deg || m->low >= m->pause_deg - m->undershoot_deg;
                open_cand(m, m->i_low, m->low, i, x, chained(m) || near_rest, near_rest, 0);
            }
        } else if (m->mode == MODE_UP) {
            if (x > m->peak) {
                m->peak = x;
                m->i_peak = i;
            }
            if (armed) {
                m->up_rest = i;
                m->up_rest_deg = x;
            }
            if (m->up_rest >= 0 && x > m->up_rest_deg + rebase) {
                open_cand(m, m->up_rest, m->up_rest_deg, i, x, 1, 1, 1);
            } else if (x < m->peak - enter) {
                m->mode = MODE_FALL;
                m->low = x;
                m->i_low = i;
            } else if (t[j] - t[m->s0 - base] > m->max_rep_s) {
                drop_cand(m, i, x);
            }
        } else { /* MODE_FALL */
            if (x < m->low) {
                m->low = x;
                m->i_low = i;
            }
            int returned = m->peak - m->low >= m->min_return_frac * (m->peak - m->base_deg);
            if (armed) {
                if (returned) {
                    rest_at(m, x);
                    if (close_cand(m, t, a, r, base, i, out) < 0 || resolve_held(m, 1, i, out) < 0)
                        goto fail;
                    m->mode = MODE_DOWN;
                    m->rest_deg = m->pause_deg = x;
                    m->low = x;
                    m->i_low = i;
                } else {
                    m->up_rest = i;
                    m->up_rest_deg = x;
                }
            } else if (x > m->low + enter) {
                if (returned) {
                    if (close_cand(m, t, a, r, base, i, out) < 0 || resolve_held(m, 0, i, out) < 0)
                        goto fail;
                    open_cand(m, m->i_low, m->low, i, x, chained(m), 0, 0);
                } else {
                    m->mode = MODE_UP;
                    if (m->up_rest >= 0 && x > m->up_rest_deg + rebase)
                        open_cand(m, m->up_rest, m->up_rest_deg, i, x, 1, 1, 1);
                }
            } else if (returned && t[j] - t[m->i_low - base] >= m->confirm_s) {
                if (close_cand(m, t, a, r, base, i, out) < 0)
                    goto fail;
                m->mode = MODE_DOWN;
                m->rest_deg = m->pause_deg = NAN;
            } else if (t[j] - t[m->s0 - base] > m->max_rep_s) {
                drop_cand(m, i, x);
            }
        }
    }
    if (base + n > m->pos)
        m->pos = base + n;
    PyMem_Free(t_own), PyMem_Free(a_own), PyMem_Free(r_own);
    arr_release(&ta), arr_release(&aa), arr_release(&arm), arr_release(&sta);
    return out;
fail:
    Py_XDECREF(out);
    PyMem_Free(t_own), PyMem_Free(a_own), PyMem_Free(r_own);
    arr_release(&ta), arr_release(&aa), arr_release(&arm), arr_release(&sta);
    return NULL;
}

PyDoc_STRVAR(RepMachine_finish_doc,
             "finish(time_s, angle_deg, still, base) -> list[tuple[float x 9, int]]\n--\n\n"
             "End of stream: a candidate that has come down far enough closes at the last sample.");

static PyObject *
RepMachine_finish(RepMachine *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "finish expected 4 arguments (time_s, angle_deg, still, base), got %zd", nargs);
        return NULL;
    }
    Arr ta = {0}, aa = {0}, arm = {0};
    PyObject *out = NULL;
    double *t_own = NULL, *a_own = NULL;
    char *r_own = NULL;
    const double *t, *a;
    const char *r;
    if (arr_get(args[0], &ta, "time_s", 'd', 1, -1, 0) < 0 || arr_get(args[1], &aa, "angle_deg", 'd', 1, ta.n, 0) < 0 ||
        arr_get(args[2], &arm, "still", '?', 1, ta.n, 0) < 0)
        goto fail;
    Py_ssize_t base = PyLong_AsSsize_t(args[3]);
    if (base == -1 && PyErr_Occurred())
        goto fail;
    out = PyList_New(0);
    if (out == NULL)
        goto fail;
    RepMachine *m = self;
    Py_ssize_t n = ta.n;
    if (m->mode == MODE_FALL && n > 0 && m->peak - m->low >= m->min_return_frac * (m->peak - m->base_deg)) {
        if (oldest_needed(m) < base) {
            PyErr_Format(PyExc_ValueError, "finish expected samples from %zd, got base %zd", oldest_needed(m), base);
            goto fail;
        }
        if ((t = arr_doubles(&ta, &t_own)) == NULL || (a = arr_doubles(&aa, &a_own)) == NULL ||
            (r = arr_bools(&arm, &r_own)) == NULL)
            goto fail;
        if (close_cand(m, t, a, r, base, base + n - 1, out) < 0)
            goto fail;
        m->mode = MODE_DOWN;
    }
    if (n > 0 && resolve_held(m, 1, base + n - 1, out) < 0) /* the stream ended after the descent */
        goto fail;
    PyMem_Free(t_own), PyMem_Free(a_own), PyMem_Free(r_own);
    arr_release(&ta), arr_release(&aa), arr_release(&arm);
    return out;
fail:
    Py_XDECREF(out);
    PyMem_Free(t_own), PyMem_Free(a_own), PyMem_Free(r_own);
    arr_release(&ta), arr_release(&aa), arr_release(&arm);
    return NULL;
}

PyDoc_STRVAR(RepMachine_oldest_needed_doc,
             "oldest_needed() -> int\n--\n\nEarliest global sample a future rep can use (the log keeps it).");

static PyObject *
RepMachine_oldest_needed(RepMachine *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSsize_t(oldest_needed(self));
}

static PyObject *
RepMachine_get_level(RepMachine *self, void *closure)
{
    (void)closure;
    if (self->pos == 0)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(self->mode == MODE_DOWN ? self->low : self->base_deg);
}

static PyMethodDef RepMachine_methods[] = {
    {"advance", (PyCFunction)(void (*)(void))RepMachine_advance, METH_FASTCALL, RepMachine_advance_doc},
    {"finish", (PyCFunction)(void (*)(void))RepMachine_finish, METH_FASTCALL, RepMachine_finish_doc},
    {"oldest_needed", (PyCFunction)RepMachine_oldest_needed, METH_NOARGS, RepMachine_oldest_needed_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef RepMachine_getset[] = {
    {"level_deg", (getter)RepMachine_get_level, NULL, "angle the next rep would be measured from (None at first)",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef RepMachine_members[] = {
    {"pos", T_PYSSIZET, offsetof(RepMachine, pos), READONLY, "global index of the next sample to examine"},
    {"mode", T_INT, offsetof(RepMachine, mode), READONLY, "0 DOWN, 1 UP, 2 FALL"},
    {"n_rejected", T_LONGLONG, offsetof(RepMachine, n_rejected), READONLY, "excursions rejected"},
    {"n_fidgets", T_LONGLONG, offsetof(RepMachine, n_fidgets), READONLY, "excursions under min_rom_deg"},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(RepMachine_doc,
             "RepMachine(*, enter_deg, undershoot_deg, undershoot_frac, chained_undershoot_frac, min_rom_deg,\n"
             "           min_return_frac, max_rep_s,\n"
             "           confirm_s, speed_frac, speed_half_n, floor_margin_deg,\n"
             "           held_rise_min_rom_deg)\n--\n\n"
             "The rep state machine of RepSegmenter; specified in host/reps/reference.py.");

static PyTypeObject RepMachineType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "host._fastcore.RepMachine",
    .tp_basicsize = sizeof(RepMachine),
    .tp_dealloc = (destructor)RepMachine_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = RepMachine_doc,
    .tp_methods = RepMachine_methods,
    .tp_members = RepMachine_members,
    .tp_getset = RepMachine_getset,
    .tp_init = (initproc)RepMachine_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------ reps: functions for tests */

PyDoc_STRVAR(measure_doc,
             "measure(time_s, angle_deg, rest, lo, s0, c, speed_half_n, speed_frac) -> tuple of 10 floats\n--\n\n"
             "host.reps.reference.measure_window: (start_s, peak_s, end_s, baseline_deg, peak_deg, rom_deg,\n"
             "up_s, hold_s, down_s, end_deg).  Requires 0 <= lo <= s0 <= c < N and speed_half_n >= 1.");

static PyObject *
measure(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr ta = {0}, aa = {0}, ra = {0};
    double *t = NULL, *a = NULL, *v = NULL;
    char *r = NULL;
    if (nargs != 8) {
        PyErr_Format(PyExc_TypeError, "measure expected 8 arguments, got %zd", nargs);
        return NULL;
    }
    if (arr_get(args[0], &ta, "time_s", 'd', 1, -1, 0) < 0 || arr_get(args[1], &aa, "angle_deg", 'd', 1, ta.n, 0) < 0 ||
        arr_get(args[2], &ra, "rest", '?', 1, ta.n, 0) < 0)
        goto fail;
    Py_ssize_t lo = PyLong_AsSsize_t(args[3]), s0 = PyLong_AsSsize_t(args[4]), c = PyLong_AsSsize_t(args[5]);
    Py_ssize_t k = PyLong_AsSsize_t(args[6]);
    double frac = PyFloat_AsDouble(args[7]);
    if (PyErr_Occurred())
        goto fail;
    if (!(0 <= lo && lo <= s0 && s0 <= c && c < ta.n) || k < 1) {
        PyErr_Format(PyExc_ValueError,
                     "measure expected 0 <= lo <= s0 <= c < %zd and speed_half_n >= 1, got lo %zd, s0 %zd, c %zd, "
                     "speed_half_n %zd",
                     ta.n, lo, s0, c, k);
        goto fail;
    }
    if ((t = arr_copy(&ta, 0, ta.n)) == NULL || (a = arr_copy(&aa, 0, ta.n)) == NULL ||
        ((v = PyMem_Malloc(2 * (size_t)ta.n * sizeof(double))) == NULL && (PyErr_NoMemory(), 1)) || (r = arr_copy_bool(&ra, ta.n)) == NULL)
        goto fail;
    double res[10];
    measure_window(t, a, r, v, lo, s0, c, k, frac, res);
    PyMem_Free(t), PyMem_Free(a), PyMem_Free(v), PyMem_Free(r);
    arr_release(&ta), arr_release(&aa), arr_release(&ra);
    return Py_BuildValue("(dddddddddd)", res[0], res[1], res[2], res[3], res[4], res[5], res[6], res[7], res[8],
                         res[9]);
fail:
    PyMem_Free(t), PyMem_Free(a), PyMem_Free(v), PyMem_Free(r);
    arr_release(&ta), arr_release(&aa), arr_release(&ra);
    return NULL;
}

PyDoc_STRVAR(arm_flags_doc,
             "arm_flags(still, run, arm_n, arm_out) -> int\n--\n\n"
             "Continue a run of True of length run over still (N,) bool; arm_out[i] = (run at i >= arm_n),\n"
             "i.e. the samples of a rest that has lasted arm_n samples.  Returns the run at the end.");

/* RepSegmenter.update: where a rest has lasted arm_n samples (host.reps.reference.arm_flags). */
static PyObject *
arm_flags(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr st = {0}, out = {0};
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "arm_flags expected 4 arguments, got %zd", nargs);
        return NULL;
    }
    long long run = PyLong_AsLongLong(args[1]);
    long long arm_n = PyLong_AsLongLong(args[2]);
    if (PyErr_Occurred())
        return NULL;
    if (arr_get(args[0], &st, "still", '?', 1, -1, 0) < 0 || arr_get(args[3], &out, "arm_out", '?', 1, st.n, 1) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < st.n; i++) {
        run = B1(st, i) ? run + 1 : 0;
        *(char *)(out.base + i * out.s0) = run >= arm_n;
    }
    arr_release(&st), arr_release(&out);
    return PyLong_FromLongLong(run);
fail:
    arr_release(&st), arr_release(&out);
    return NULL;
}


/* ------------------------------------------------------------------ module */

static PyMethodDef module_methods[] = {
    {"arm_flags", (PyCFunction)(void (*)(void))arm_flags, METH_FASTCALL, arm_flags_doc},
    {"measure", (PyCFunction)(void (*)(void))measure, METH_FASTCALL, measure_doc},
    {"hip_angles", (PyCFunction)(void (*)(void))hip_angles, METH_FASTCALL, hip_angles_doc},
    {"tilt_angles", (PyCFunction)(void (*)(void))tilt_angles, METH_FASTCALL, tilt_angles_doc},
    {"first_movement", (PyCFunction)(void (*)(void))first_movement, METH_FASTCALL, first_movement_doc},
    {"window_means", (PyCFunction)(void (*)(void))window_means, METH_FASTCALL, window_means_doc},
    {"plane_angles", (PyCFunction)(void (*)(void))plane_angles, METH_FASTCALL, plane_angles_doc},
    {"movement_sums", (PyCFunction)(void (*)(void))movement_sums, METH_FASTCALL, movement_sums_doc},
    {"movement_anchor", (PyCFunction)(void (*)(void))movement_anchor, METH_FASTCALL, movement_anchor_doc},
    {"level_tests", (PyCFunction)(void (*)(void))level_tests, METH_FASTCALL, level_tests_doc},
    {"rows_minus", (PyCFunction)(void (*)(void))rows_minus, METH_FASTCALL, rows_minus_doc},
    {"rest_angles", (PyCFunction)(void (*)(void))rest_angles, METH_FASTCALL, rest_angles_doc},
    {"first_lower_rest", (PyCFunction)(void (*)(void))first_lower_rest, METH_FASTCALL, first_lower_rest_doc},
    {"anchor_frame", (PyCFunction)(void (*)(void))anchor_frame, METH_FASTCALL, anchor_frame_doc},
    {"level_axis", (PyCFunction)(void (*)(void))level_axis_c, METH_FASTCALL, level_axis_doc},
    {"long_axis_flat", (PyCFunction)(void (*)(void))long_axis_flat_c, METH_FASTCALL, long_axis_flat_doc},
    {"long_axis_from_lever", (PyCFunction)(void (*)(void))long_axis_from_lever_c, METH_FASTCALL, long_axis_from_lever_doc},
    {"row_offset", (PyCFunction)(void (*)(void))row_offset, METH_FASTCALL, row_offset_doc},
    {"posture_rows", (PyCFunction)(void (*)(void))posture_rows, METH_FASTCALL, posture_rows_doc},
    {NULL, NULL, 0, NULL},
};

static int
add_type(PyObject *m, PyTypeObject *type, const char *name)
{
    if (PyType_Ready(type) < 0)
        return -1;
    Py_INCREF(type);
    if (PyModule_AddObject(m, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

static int
module_exec(PyObject *m)
{
    if (add_type(m, &TiltKernelType, "TiltKernel") < 0 || add_type(m, &RepMachineType, "RepMachine") < 0)
        return -1;
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

static struct PyModuleDef fastcore_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "host._fastcore",
    .m_doc = "Sequential C kernels for legrep's hip angle and rep segmenter (see host/_fastcore.c).",
    .m_size = 0,
    .m_methods = module_methods,
    .m_slots = module_slots,
};

PyMODINIT_FUNC
PyInit__fastcore(void)
{
    return PyModuleDef_Init(&fastcore_module);
}
