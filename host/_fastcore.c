/*
 * host/_fastcore.c -- sequential C kernels for legrep's analysis hot path.
 *
 * Three pieces, each called from the Python stage that owns and documents it:
 *
 *   AngleKernel  the per-sample part of host.fusion.angle.HipAngleEstimator: quiet / still
 *                detection, rest-window gyro-bias tracking, zero-rate update with onset
 *                credit, trapezoid integration about the flexion axis, gap handling and
 *                gravity re-anchoring (hard and soft).  The steps and their reasons are
 *                listed in HipAngleEstimator._process; the comments below name them.
 *   RepMachine   the rep state machine of host.reps.segmenter.RepSegmenter (DOWN / UP / FALL
 *                over the segmenter's sample log) with the stopwatch measures of each rep it
 *                closes; host/reps/reference.py is its plain-Python specification, written
 *                operation for operation alike so that tests can require identical numbers.
 *                measure (one rep's measures) and arm_flags (where rests have lasted
 *                arm_rest_s) are exposed for tests.
 *
 * Everything is a sequential loop over samples whose state is carried in the AngleKernel /
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
    if (a->view.ndim != ndim || (ndim == 2 && a->view.shape[1] != 3)) {
        if (a->view.ndim == 1)
            PyErr_Format(PyExc_ValueError, "%s must have shape %s, got (%zd,)", what, ndim == 1 ? "(N,)" : "(N, 3)",
                         a->view.shape[0]);
        else if (a->view.ndim == 2)
            PyErr_Format(PyExc_ValueError, "%s must have shape %s, got (%zd, %zd)", what,
                         ndim == 1 ? "(N,)" : "(N, 3)", a->view.shape[0], a->view.shape[1]);
        else
            PyErr_Format(PyExc_ValueError, "%s must have shape %s, got %d dimensions", what,
                         ndim == 1 ? "(N,)" : "(N, 3)", a->view.ndim);
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

/* ------------------------------------------------------------------ AngleKernel */

/* Parameters, carried state and diagnostics of the angle loop (one per estimator). */
typedef struct {
    /* --- fixed parameters (see HipAngleEstimator.__init__) --- */
    double axis[3];     /* unit flexion axis, sensor frame */
    double bias0[3];    /* calibration gyro bias, deg/s (the quiet test uses it) */
    double gref[3];     /* gravity reference from calibration */
    double gref_norm;
    Py_ssize_t W;       /* still window, samples (still_min_s) */
    Py_ssize_t R;       /* anchor rest, samples (anchor_rest_s) */
    Py_ssize_t B;       /* bias-tracking rest window, samples (BIAS_WINDOW_S) */
    double quiet2;      /* (still_gyro_dps + 2)^2 */
    double still2;      /* still_gyro_dps^2 */
    double still_sum;   /* still_mean_dps * W: bound on the window's summed axis rate */
    double rest_cos;    /* cos(REST_TILT_DEG) */
    double bias_gain;   /* 1 - exp(-B dt / bias_tau_s) */
    double bias_jump2;  /* BIAS_JUMP_DPS^2 */
    double gap_s;       /* a step longer than this means lost samples */
    double max_gap_s;   /* diagnostics threshold */
    double anchor_max_err_deg;
    double soft_zone_deg;
    double soft_gain;
    double dt_nominal_s;
    /* --- carried state --- */
    double bias[3];     /* tracked gyro bias, deg/s */
    double t_prev;      /* time of the previous sample; NaN before the first */
    double wc_prev;     /* previous (zeroed-if-still) axis rate */
    double theta_g;     /* integrated gyro angle, deg */
    double corr;        /* gravity correction added to theta_g, deg */
    double cs;          /* running sum of the raw axis rate (windowed mean) */
    long long run;      /* quiet run length (vs the calibration bias) */
    long long run_s;    /* strict still run length (vs the tracked bias) */
    long long n_hist;   /* samples processed (history available to windows) */
    Py_ssize_t bias_phase; /* (run - 2B) % B while run >= 2B */
    int still_prev;
    int uncertain;      /* samples were lost and no still window has re-anchored yet */
    Py_ssize_t H;       /* capacity of the acc / gyr history rings */
    Py_ssize_t h_pos;   /* slot of the next sample in the history rings */
    Py_ssize_t w_pos;   /* slot of the oldest entry in the W-long rings */
    double *acc_ring;   /* H x 3 */
    double *gyr_ring;   /* H x 3 */
    double *cs_ring;    /* W: cs after each of the last W samples */
    double *lost_ring;  /* W: zeroed rate x dt of each of the last W samples */
    /* --- diagnostics --- */
    long long n_gaps, n_anchors, n_gap_anchors, n_bias_updates, n_samples, n_still;
    double max_gap_seen_s;
    double anchor_total_deg;
} AngleCore;

typedef struct {
    PyObject_HEAD
    AngleCore c;
} AngleKernel;

static void
AngleKernel_dealloc(AngleKernel *self)
{
    PyMem_Free(self->c.acc_ring);
    PyMem_Free(self->c.gyr_ring);
    PyMem_Free(self->c.cs_ring);
    PyMem_Free(self->c.lost_ring);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
AngleKernel_init(AngleKernel *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"axis", "gyro_bias0_dps", "gyro_bias_dps", "gravity_ref",
                             "still_n", "anchor_n", "bias_n",
                             "still_gyro_dps", "still_mean_dps", "rest_tilt_deg", "bias_gain", "bias_jump_dps",
                             "gap_s", "max_gap_s", "anchor_max_error_deg", "soft_zone_deg", "soft_gain",
                             "dt_nominal_s", "t_prev_s", "run", "run_s", NULL};
    PyObject *axis, *b0, *b, *g;
    double still_gyro, still_mean, rest_tilt, bias_jump;
    long long run, run_s;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOnnnddddddddddddLL:AngleKernel", kwlist, &axis, &b0, &b, &g,
                                     &self->c.W, &self->c.R, &self->c.B, &still_gyro, &still_mean, &rest_tilt,
                                     &self->c.bias_gain, &bias_jump, &self->c.gap_s, &self->c.max_gap_s,
                                     &self->c.anchor_max_err_deg, &self->c.soft_zone_deg, &self->c.soft_gain,
                                     &self->c.dt_nominal_s, &self->c.t_prev, &run, &run_s))
        return -1;
    if (vec3(axis, self->c.axis, "axis") < 0 || vec3(b0, self->c.bias0, "gyro_bias0_dps") < 0 ||
        vec3(b, self->c.bias, "gyro_bias_dps") < 0 || vec3(g, self->c.gref, "gravity_ref") < 0)
        return -1;
    if (self->c.W < 1 || self->c.R <= self->c.W || self->c.B < 4) {
        PyErr_Format(PyExc_ValueError, "expected still_n >= 1, anchor_n > still_n and bias_n >= 4, got %zd, %zd, %zd",
                     self->c.W, self->c.R, self->c.B);
        return -1;
    }
    self->c.gref_norm = sqrt(dot3(self->c.gref, self->c.gref));
    self->c.quiet2 = (still_gyro + 2.0) * (still_gyro + 2.0);
    self->c.still2 = still_gyro * still_gyro;
    self->c.still_sum = still_mean * (double)self->c.W;
    self->c.rest_cos = cos(rest_tilt / RAD2DEG);
    self->c.bias_jump2 = bias_jump * bias_jump;
    self->c.run = run;
    self->c.run_s = run_s;
    self->c.bias_phase = run >= 2 * self->c.B ? (Py_ssize_t)((run - 2 * self->c.B) % self->c.B) : 0;
    self->c.wc_prev = self->c.theta_g = self->c.corr = self->c.cs = 0.0;
    self->c.n_hist = 0;
    self->c.still_prev = 1; /* calibration (or the pending phase) ended at rest */
    self->c.uncertain = 0;
    /* history long enough for the anchor window (R) and a bias window with its margin (2B) */
    self->c.H = self->c.R > 2 * self->c.B ? self->c.R : 2 * self->c.B;
    self->c.h_pos = self->c.w_pos = 0;
    PyMem_Free(self->c.acc_ring);
    PyMem_Free(self->c.gyr_ring);
    PyMem_Free(self->c.cs_ring);
    PyMem_Free(self->c.lost_ring);
    self->c.acc_ring = PyMem_Calloc((size_t)self->c.H * 3, sizeof(double));
    self->c.gyr_ring = PyMem_Calloc((size_t)self->c.H * 3, sizeof(double));
    self->c.cs_ring = PyMem_Calloc((size_t)self->c.W, sizeof(double));   /* before the start the sum is 0 */
    self->c.lost_ring = PyMem_Calloc((size_t)self->c.W, sizeof(double));
    if (!self->c.acc_ring || !self->c.gyr_ring || !self->c.cs_ring || !self->c.lost_ring) {
        PyErr_NoMemory();
        return -1;
    }
    self->c.n_gaps = self->c.n_anchors = self->c.n_gap_anchors = self->c.n_bias_updates = 0;
    self->c.n_samples = self->c.n_still = 0;
    self->c.max_gap_seen_s = 0.0;
    self->c.anchor_total_deg = 0.0;
    return 0;
}

/* Sum of the `count` history rows ending `age_end` samples before the current one
   (age 0 = current sample), oldest first, into out[3]. */
static void
ring_sum(const AngleCore *k, const double *ring, Py_ssize_t age_end, Py_ssize_t count, double out[3])
{
    Py_ssize_t cur = k->h_pos - 1; /* slot of the current sample */
    Py_ssize_t j = cur - age_end - count + 1;
    while (j < 0)
        j += k->H;
    out[0] = out[1] = out[2] = 0.0;
    for (Py_ssize_t c = 0; c < count; c++) {
        out[0] += ring[3 * j];
        out[1] += ring[3 * j + 1];
        out[2] += ring[3 * j + 2];
        if (++j == k->H)
            j = 0;
    }
}

/* Hip angle implied by gravity alone (deg): the rotation about the axis that takes the
   gravity reference to the measured accelerometer mean, both projected onto the plane
   normal to the axis.  Gravity seen from the thigh turns the opposite way to the thigh. */
static double
tilt_about_axis(const AngleCore *k, const double acc[3])
{
    const double *ax = k->axis, *gr = k->gref;
    double pa = dot3(acc, ax), pg = dot3(gr, ax);
    double a[3] = {acc[0] - pa * ax[0], acc[1] - pa * ax[1], acc[2] - pa * ax[2]};
    double g[3] = {gr[0] - pg * ax[0], gr[1] - pg * ax[1], gr[2] - pg * ax[2]};
    double c[3] = {g[1] * a[2] - g[2] * a[1], g[2] * a[0] - g[0] * a[2], g[0] * a[1] - g[1] * a[0]};
    return -atan2(dot3(ax, c), dot3(g, a)) * RAD2DEG;
}

/* Step 5 (gravity), one event: compare the angle with gravity's tilt over the `w` samples
   ending at the current one; re-anchor fully beyond `max_err`, or softly near the
   calibration pose.  Updates k->corr (the caller re-adds it to theta_g). */
static void
anchor_event(AngleCore *k, Py_ssize_t w, double max_err)
{
    double a[3];
    if (k->n_hist < w)
        return; /* not enough history (stream start) */
    ring_sum(k, k->acc_ring, 0, w, a);
    a[0] /= (double)w;
    a[1] /= (double)w;
    a[2] /= (double)w;
    if (fabs(sqrt(dot3(a, a)) - k->gref_norm) > 0.1 * k->gref_norm)
        return; /* still but accelerating (vehicle, impacts): do not trust */
    double tilt = tilt_about_axis(k, a);
    double theta = k->theta_g + k->corr;
    /* wrap the difference into [-180, 180) like Python's % */
    double d = fmod(tilt - theta + 180.0, 360.0);
    if (d < 0.0)
        d += 360.0;
    d -= 180.0;
    int near = fabs(tilt) < k->soft_zone_deg;
    if (!near && max_err < k->anchor_max_err_deg)
        max_err = k->anchor_max_err_deg; /* away from the pose accelerometer errors tilt gravity */
    if (fabs(d) > max_err) {
        k->corr += d;
        k->n_anchors++;
        k->anchor_total_deg += fabs(d);
    } else if (near) {
        k->corr += k->soft_gain * d; /* soft anchor: remove part of the drift at rest */
    }
}

/* Step 6 (bias tracking), one event: the bias window is B samples ending B/2 samples before
   the current one; use it if gravity's direction kept within rest_tilt between its first
   and last quarter and its mean rate is near the current bias. */
static void
rest_bias_event(AngleCore *k)
{
    Py_ssize_t B = k->B, G = B / 2, q = B / 4;
    if (k->n_hist < G + B)
        return;
    double first[3], last[3], gsum[3];
    ring_sum(k, k->acc_ring, G + B - q, q, first);
    ring_sum(k, k->acc_ring, G, q, last);
    ring_sum(k, k->gyr_ring, G, B, gsum);
    double dot = dot3(first, last);
    double norm2 = dot3(first, first) * dot3(last, last);
    if (!(dot > k->rest_cos * sqrt(norm2)))
        return; /* gravity moved: the thigh turned slowly, not a rest */
    double d[3];
    for (int c = 0; c < 3; c++)
        d[c] = gsum[c] / (double)B - k->bias[c];
    if (!(dot3(d, d) < k->bias_jump2))
        return; /* too far from the current bias to be drift */
    for (int c = 0; c < 3; c++)
        k->bias[c] = k->bias[c] + k->bias_gain * d[c];
    k->n_bias_updates++;
}

PyDoc_STRVAR(AngleKernel_run_doc,
             "run(time_s, acc_g, gyr_dps, angle_out_deg, rest_out)\n--\n\n"
             "Process one chunk: time_s (N,) float64, acc_g and gyr_dps (N, 3) float64; writes the hip\n"
             "angle (deg) into angle_out_deg (N,) float64 and the at-rest flag into rest_out (N,) bool.");

static PyObject *
AngleKernel_run(AngleKernel *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "run expected 5 arrays (time_s, acc_g, gyr_dps, angle_out_deg, rest_out), got %zd",
                     nargs);
        return NULL;
    }
    Arr t = {0}, acc = {0}, gyr = {0}, th = {0}, rs = {0};
    if (arr_get(args[0], &t, "time_s", 'd', 1, -1, 0) < 0 || arr_get(args[1], &acc, "acc_g", 'd', 2, t.n, 0) < 0 ||
        arr_get(args[2], &gyr, "gyr_dps", 'd', 2, t.n, 0) < 0 ||
        arr_get(args[3], &th, "angle_out_deg", 'd', 1, t.n, 1) < 0 || arr_get(args[4], &rs, "rest_out", '?', 1, t.n, 1) < 0)
        goto fail;

    AngleCore *k = &self->c;
    /* Parameters and the hot state live in local variables for the loop, so they stay in
       registers (stores to the output arrays cannot alias locals) and the run counters
       compile to conditional moves.  The state goes back into *k around the rare events
       (which work on *k) and at the end. */
    const Py_ssize_t n = t.n, W = k->W, R = k->R, B = k->B, H = k->H;
    const long long span = 2 * (long long)B;
    const double ax0 = k->axis[0], ax1 = k->axis[1], ax2 = k->axis[2];
    const double c0 = k->bias0[0], c1 = k->bias0[1], c2 = k->bias0[2];
    const double quiet2 = k->quiet2, still2 = k->still2, still_sum = k->still_sum;
    const double gap_s = k->gap_s, max_gap_s = k->max_gap_s, anchor_max_err = k->anchor_max_err_deg;
    double *const acc_ring = k->acc_ring, *const gyr_ring = k->gyr_ring;
    double *const cs_ring = k->cs_ring, *const lost_ring = k->lost_ring;
    double b0 = k->bias[0], b1 = k->bias[1], b2 = k->bias[2];
    double t_prev = k->t_prev, wc_prev = k->wc_prev, theta_g = k->theta_g, corr = k->corr, cs = k->cs;
    long long run = k->run, run_s = k->run_s, n_hist = k->n_hist, n_still = 0;
    Py_ssize_t h_pos = k->h_pos, w_pos = k->w_pos, bias_phase = k->bias_phase;
    int still_prev = k->still_prev, uncertain = k->uncertain;
    if (n > 0 && isnan(t_prev))
        t_prev = D1(t, 0) - k->dt_nominal_s; /* the first sample ever steps dt_nominal */

    /* row pointers and strides as locals too (the Arr structs are address-taken) */
    const char *t_row = t.base, *acc_row = acc.base, *gyr_row = gyr.base;
    char *th_row = th.base, *rs_row = rs.base;
    const Py_ssize_t t_s = t.s0, acc_s = acc.s0, acc_c = acc.s1, gyr_s = gyr.s0, gyr_c = gyr.s1;
    const Py_ssize_t th_s = th.s0, rs_s = rs.s0;

    for (Py_ssize_t i = 0; i < n; i++, t_row += t_s, acc_row += acc_s, gyr_row += gyr_s, th_row += th_s, rs_row += rs_s) {
        const double ti = *(const double *)t_row;
        const double a0 = *(const double *)acc_row, a1 = *(const double *)(acc_row + acc_c),
                     a2 = *(const double *)(acc_row + 2 * acc_c);
        const double g0 = *(const double *)gyr_row, g1 = *(const double *)(gyr_row + gyr_c),
                     g2 = *(const double *)(gyr_row + 2 * gyr_c);

        /* history rings (windows below end at the current sample) */
        double *ar = acc_ring + 3 * h_pos, *gr = gyr_ring + 3 * h_pos;
        ar[0] = a0, ar[1] = a1, ar[2] = a2;
        gr[0] = g0, gr[1] = g1, gr[2] = g2;
        h_pos = h_pos + 1 == H ? 0 : h_pos + 1;
        n_hist++;

        /* quiet: at most slowly moving, judged against the calibration bias (feeds the
           bias windows and the anchor rests, which must not depend on the tracked bias) */
        double e0 = g0 - c0, e1 = g1 - c1, e2 = g2 - c2;
        run = (e0 * e0 + e1 * e1 + e2 * e2 < quiet2) ? run + 1 : 0;

        /* strict still run against the tracked bias, and the rate about the flexion axis */
        double w0 = g0 - b0, w1 = g1 - b1, w2 = g2 - b2;
        run_s = (w0 * w0 + w1 * w1 + w2 * w2 < still2) ? run_s + 1 : 0;
        double wc = w0 * ax0 + w1 * ax1 + w2 * ax2;

        /* still = W samples under still_gyro_dps and a small windowed mean axis rate:
           noise averages out, a slow sag does not.  cs_ring holds the running sum after
           each of the last W samples, so the window sum is one subtraction. */
        cs = cs + wc;
        double win = cs - cs_ring[w_pos];
        cs_ring[w_pos] = cs;
        int still = (run_s >= W) & (fabs(win) < still_sum);

        /* trapezoid with the zero-rate update */
        double dt = ti - t_prev;
        double lost = still ? wc * dt : 0.0;
        double wz = still ? 0.0 : wc;
        double inc = (wz + wc_prev) * dt * 0.5;
        if (still_prev && !still) {
            /* a still window ends with the onset of the next movement, whose first slow
               samples it zeroed: credit them back here (oldest first) */
            double credit = 0.0;
            for (Py_ssize_t c = 0, j = w_pos; c < W; c++, j = j + 1 == W ? 0 : j + 1)
                credit += lost_ring[j];
            inc += credit;
        }
        lost_ring[w_pos] = lost;
        w_pos = w_pos + 1 == W ? 0 : w_pos + 1;
        theta_g += inc;

        if (dt > max_gap_s) { /* long gaps: diagnostics (the trapezoid bridges them) */
            k->n_gaps++;
            if (dt > k->max_gap_seen_s)
                k->max_gap_seen_s = dt;
        }

        /* gravity: after lost samples trust it at the first still window; and compare at
           the first anchor_rest_s of each quiet rest (gap event first, as angle.py sorts) */
        int gap_event = uncertain && still && !still_prev;
        if (!gap_event && dt > gap_s)
            uncertain = 1;
        if (gap_event || run == R) {
            k->h_pos = h_pos, k->n_hist = n_hist, k->theta_g = theta_g;
            if (gap_event) {
                anchor_event(k, W, 0.0);
                k->n_gap_anchors++;
                uncertain = 0;
            }
            if (run == R)
                anchor_event(k, R, anchor_max_err);
            corr = k->corr;
        }

        *(double *)th_row = theta_g + corr;
        /* at rest for the segmenter: still_min_s of every sample under still_gyro_dps */
        *rs_row = run_s >= W;

        /* bias tracking: at quiet run lengths 2B, 3B, ... (bias_phase counts samples since
           the last of them, avoiding a division per sample); applies from the next sample */
        if (run >= span && (run == span || ++bias_phase == B)) {
            bias_phase = 0;
            k->h_pos = h_pos, k->n_hist = n_hist;
            rest_bias_event(k);
            b0 = k->bias[0], b1 = k->bias[1], b2 = k->bias[2];
        }

        still_prev = still;
        wc_prev = wz;
        t_prev = ti;
        n_still += still;
    }
    k->t_prev = t_prev, k->wc_prev = wc_prev, k->theta_g = theta_g, k->corr = corr, k->cs = cs;
    k->run = run, k->run_s = run_s, k->n_hist = n_hist;
    k->h_pos = h_pos, k->w_pos = w_pos, k->bias_phase = bias_phase;
    k->still_prev = still_prev, k->uncertain = uncertain;
    k->n_still += n_still;
    k->n_samples += n;
    arr_release(&t), arr_release(&acc), arr_release(&gyr), arr_release(&th), arr_release(&rs);
    Py_RETURN_NONE;
fail:
    arr_release(&t), arr_release(&acc), arr_release(&gyr), arr_release(&th), arr_release(&rs);
    return NULL;
}

static PyObject *
AngleKernel_get_bias(AngleKernel *self, void *closure)
{
    (void)closure;
    return Py_BuildValue("(ddd)", self->c.bias[0], self->c.bias[1], self->c.bias[2]);
}

static PyMethodDef AngleKernel_methods[] = {
    {"run", (PyCFunction)(void (*)(void))AngleKernel_run, METH_FASTCALL, AngleKernel_run_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef AngleKernel_getset[] = {
    {"gyro_bias_dps", (getter)AngleKernel_get_bias, NULL, "tracked gyro bias (x, y, z), deg/s", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

#define RO(name, type, field, doc) {name, type, offsetof(AngleKernel, c.field), READONLY, doc}
static PyMemberDef AngleKernel_members[] = {
    RO("n_gaps", T_LONGLONG, n_gaps, "steps longer than max_gap_s"),
    RO("max_gap_s", T_DOUBLE, max_gap_seen_s, "longest step seen longer than max_gap_s, s"),
    RO("n_anchors", T_LONGLONG, n_anchors, "full re-anchors to gravity"),
    RO("anchor_total_deg", T_DOUBLE, anchor_total_deg, "sum of |full re-anchor corrections|, deg"),
    RO("n_gap_anchors", T_LONGLONG, n_gap_anchors, "gravity comparisons forced by lost samples"),
    RO("n_bias_updates", T_LONGLONG, n_bias_updates, "rest windows used for gyro bias tracking"),
    RO("n_samples", T_LONGLONG, n_samples, "samples processed"),
    RO("n_still", T_LONGLONG, n_still, "samples judged still (zero-rate update)"),
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(AngleKernel_doc,
             "AngleKernel(*, axis, gyro_bias0_dps, gyro_bias_dps, gravity_ref, still_n, anchor_n, bias_n,\n"
             "            still_gyro_dps, still_mean_dps, rest_tilt_deg, bias_gain, bias_jump_dps, gap_s,\n"
             "            max_gap_s, anchor_max_error_deg, soft_zone_deg, soft_gain, dt_nominal_s,\n"
             "            t_prev_s, run, run_s)\n--\n\n"
             "Sequential hip-angle loop of HipAngleEstimator (see host/fusion/angle.py).\n"
             "t_prev_s is NaN when no sample precedes the first chunk.");

static PyTypeObject AngleKernelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "host._fastcore.AngleKernel",
    .tp_basicsize = sizeof(AngleKernel),
    .tp_dealloc = (destructor)AngleKernel_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = AngleKernel_doc,
    .tp_methods = AngleKernel_methods,
    .tp_members = AngleKernel_members,
    .tp_getset = AngleKernel_getset,
    .tp_init = (initproc)AngleKernel_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------ reps: speed and stopwatch measures */

/* host.reps.reference.speed_at: least-squares slope (deg/s) of angle against time over the
   samples [j-k, j+k] clipped to [lo, hi].  Same operations in the same order as the
   reference, so the results are bit-identical (built with -ffp-contract=off). */
static double
speed_at(const double *t, const double *a, Py_ssize_t j, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t k)
{
    Py_ssize_t j0 = j - k > lo ? j - k : lo;
    Py_ssize_t j1 = j + k < hi ? j + k : hi;
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

/* host.reps.reference.measure_window (its docstring holds the definitions).  t, a are
   contiguous; v is scratch of at least c + 1 doubles.  out: start_s, peak_s, end_s,
   baseline_deg, peak_deg, rom_deg, up_s, hold_s, down_s, end_deg. */
static void
measure_window(const double *t, const double *a, double *v, Py_ssize_t lo, Py_ssize_t s0, Py_ssize_t c,
               Py_ssize_t k, double frac, double out[10])
{
    Py_ssize_t p = s0, iu = s0, idn, i;
    for (i = s0 + 1; i <= c; i++)
        if (a[i] > a[p])
            p = i;
    for (i = lo; i <= c; i++)
        v[i] = speed_at(t, a, i, lo, c, k);
    for (i = s0 + 1; i <= p; i++)
        if (v[i] > v[iu])
            iu = i;
    idn = p;
    for (i = p + 1; i <= c; i++)
        if (v[i] < v[idn])
            idn = i;
    double thr_up = frac * v[iu], thr_dn = frac * v[idn], f;
    double start = t[s0], base = a[s0];
    for (i = iu - 1; i >= s0; i--)
        if (v[i] <= thr_up) {
            f = speed_frac_between(v[i], v[i + 1], thr_up);
            start = t[i] + f * (t[i + 1] - t[i]);
            base = a[i] + f * (a[i + 1] - a[i]);
            break;
        }
    double top_in = t[c];
    for (i = iu + 1; i <= c; i++)
        if (v[i] <= thr_up) {
            f = speed_frac_between(v[i - 1], v[i], thr_up);
            top_in = t[i - 1] + f * (t[i] - t[i - 1]);
            break;
        }
    double top_out = t[iu];
    for (i = idn - 1; i >= iu; i--)
        if (v[i] >= thr_dn) {
            f = speed_frac_between(v[i], v[i + 1], thr_dn);
            top_out = t[i] + f * (t[i + 1] - t[i]);
            break;
        }
    if (top_out < top_in)
        top_out = top_in;
    double end = t[c], end_deg = a[c];
    for (i = idn + 1; i <= c; i++)
        if (v[i] >= thr_dn) {
            f = speed_frac_between(v[i - 1], v[i], thr_dn);
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
    Py_ssize_t pos;     /* global index of the next sample to examine */
    int mode;
    double low;         /* running low (DOWN, FALL) */
    Py_ssize_t i_low;
    double rest_deg;    /* last rest in DOWN (NaN: none) */
    int chain;          /* the last excursion was a rep or an anchored fidget */
    Py_ssize_t s0;      /* candidate: where its rise starts */
    double base_deg;    /* angle at s0 */
    int cand_anchored;
    int cand_from_rest; /* the candidate rose from a rest (stricter undershoot) */
    double peak;
    Py_ssize_t i_peak;
    Py_ssize_t up_rest; /* rest on the way up (or part-way down), -1 if none */
    double up_rest_deg;
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
                             "max_rep_s", "confirm_s", "speed_frac", "speed_half_n", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "$dddddddddn:RepMachine", kwlist, &self->enter_deg,
                                     &self->undershoot_deg, &self->undershoot_frac, &self->chained_undershoot_frac,
                                     &self->min_rom_deg,
                                     &self->min_return_frac, &self->max_rep_s, &self->confirm_s, &self->speed_frac,
                                     &self->k))
        return -1;
    if (self->k < 1) {
        PyErr_Format(PyExc_ValueError, "speed_half_n must be >= 1, got %zd", self->k);
        return -1;
    }
    self->pos = 0;
    self->mode = MODE_DOWN;
    self->low = self->rest_deg = self->base_deg = NAN;
    self->i_low = self->s0 = self->i_peak = 0;
    self->chain = 1; /* the stream start anchors */
    self->cand_anchored = self->cand_from_rest = 0;
    self->peak = self->up_rest_deg = 0.0;
    self->up_rest = -1;
    self->n_rejected = self->n_fidgets = 0;
    return 0;
}

static Py_ssize_t
oldest_needed(const RepMachine *m)
{
    Py_ssize_t first = m->mode != MODE_DOWN ? m->s0 : m->i_low;
    if (m->pos < first)
        first = m->pos;
    first -= m->k;
    return first > 0 ? first : 0;
}

static void
open_cand(RepMachine *m, Py_ssize_t s0, double s0_deg, Py_ssize_t i, double x, int anchored, int from_rest)
{
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
    m->low = x;
    m->i_low = i;
    m->rest_deg = NAN;
}

/* RepMachineRef._close: measure the candidate closed at global sample c, judge it, append
   a rep to out.  t, a, v are contiguous from global index base. */
static int
close_cand(RepMachine *m, const double *t, const double *a, double *v, Py_ssize_t base, Py_ssize_t c, PyObject *out)
{
    Py_ssize_t lo = m->s0 - m->k;
    if (lo < base)
        lo = base;
    double r[10];
    measure_window(t, a, v, lo - base, m->s0 - base, c - base, m->k, m->speed_frac, r);
    double rom = r[5];
    double frac = m->cand_from_rest ? m->undershoot_frac : m->chained_undershoot_frac;
    double under = m->undershoot_deg > frac * rom ? m->undershoot_deg : frac * rom;
    if (rom < m->min_rom_deg) {
        m->n_fidgets++;
        m->chain = m->cand_anchored;
    } else if (!m->cand_anchored || r[9] < r[3] - under || r[2] - r[0] > m->max_rep_s) {
        m->n_rejected++;
        m->chain = 0;
    } else {
        m->chain = 1;
        PyObject *item = Py_BuildValue("(dddddddddn)", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], c);
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            return -1;
        }
        Py_DECREF(item);
    }
    return 0;
}

PyDoc_STRVAR(RepMachine_advance_doc,
             "advance(time_s, angle_deg, arm, base) -> list[tuple[float x 9, int]]\n--\n\n"
             "Run the machine over the logged samples (global indices base .. base + N - 1; the samples\n"
             "from oldest_needed() on must be there).  Returns the reps closed, in order, as (start_s,\n"
             "peak_s, end_s, baseline_deg, peak_deg, rom_deg, up_s, hold_s, down_s, closed index).");

/* host.reps.reference.RepMachineRef.advance, step for step. */
static PyObject *
RepMachine_advance(RepMachine *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "advance expected 4 arguments (time_s, angle_deg, arm, base), got %zd", nargs);
        return NULL;
    }
    Arr ta = {0}, aa = {0}, arm = {0};
    PyObject *out = NULL;
    double *t = NULL, *a = NULL, *v = NULL;
    if (arr_get(args[0], &ta, "time_s", 'd', 1, -1, 0) < 0 || arr_get(args[1], &aa, "angle_deg", 'd', 1, ta.n, 0) < 0 ||
        arr_get(args[2], &arm, "arm", '?', 1, ta.n, 0) < 0)
        goto fail;
    Py_ssize_t base = PyLong_AsSsize_t(args[3]);
    if (base == -1 && PyErr_Occurred())
        goto fail;
    RepMachine *m = self;
    if (oldest_needed(m) < base) {
        PyErr_Format(PyExc_ValueError, "advance expected samples from %zd, got base %zd", oldest_needed(m), base);
        goto fail;
    }
    Py_ssize_t n = ta.n;
    if ((t = arr_copy(&ta, 0, n)) == NULL || (a = arr_copy(&aa, 0, n)) == NULL || (v = arr_copy(&ta, 0, n)) == NULL)
        goto fail;
    out = PyList_New(0);
    if (out == NULL)
        goto fail;
    const double enter = m->enter_deg;
    for (Py_ssize_t j = m->pos - base; j < n; j++) {
        Py_ssize_t i = j + base;
        double x = a[j];
        int armed = B1(arm, j) != 0;
        if (i == 0) { /* the stream start: a turning point that anchors (chain is 1) */
            m->low = x;
            m->i_low = 0;
        }
        if (m->mode == MODE_DOWN) {
            if (armed) {
                m->rest_deg = x;
                m->low = x;
                m->i_low = i;
            } else if (x < m->low || t[j] - t[m->i_low - base] > m->max_rep_s) {
                m->low = x;
                m->i_low = i;
            }
            if (x > m->low + enter) {
                int near_rest = m->low >= m->rest_deg - m->undershoot_deg; /* false when rest_deg is NaN */
                open_cand(m, m->i_low, m->low, i, x, m->chain || near_rest, near_rest);
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
            if (m->up_rest >= 0 && x > m->up_rest_deg + enter) {
                open_cand(m, m->up_rest, m->up_rest_deg, i, x, 1, 1);
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
                    if (close_cand(m, t, a, v, base, i, out) < 0)
                        goto fail;
                    m->mode = MODE_DOWN;
                    m->rest_deg = x;
                    m->low = x;
                    m->i_low = i;
                } else {
                    m->up_rest = i;
                    m->up_rest_deg = x;
                }
            } else if (x > m->low + enter) {
                if (returned) {
                    if (close_cand(m, t, a, v, base, i, out) < 0)
                        goto fail;
                    open_cand(m, m->i_low, m->low, i, x, m->chain, 0);
                } else {
                    m->mode = MODE_UP;
                    if (m->up_rest >= 0 && x > m->up_rest_deg + enter)
                        open_cand(m, m->up_rest, m->up_rest_deg, i, x, 1, 1);
                }
            } else if (returned && t[j] - t[m->i_low - base] >= m->confirm_s) {
                if (close_cand(m, t, a, v, base, i, out) < 0)
                    goto fail;
                m->mode = MODE_DOWN;
                m->rest_deg = NAN;
            } else if (t[j] - t[m->s0 - base] > m->max_rep_s) {
                drop_cand(m, i, x);
            }
        }
    }
    if (base + n > m->pos)
        m->pos = base + n;
    PyMem_Free(t), PyMem_Free(a), PyMem_Free(v);
    arr_release(&ta), arr_release(&aa), arr_release(&arm);
    return out;
fail:
    Py_XDECREF(out);
    PyMem_Free(t), PyMem_Free(a), PyMem_Free(v);
    arr_release(&ta), arr_release(&aa), arr_release(&arm);
    return NULL;
}

PyDoc_STRVAR(RepMachine_finish_doc,
             "finish(time_s, angle_deg, base) -> list[tuple[float x 9, int]]\n--\n\n"
             "End of stream: a candidate that has come down far enough closes at the last sample.");

static PyObject *
RepMachine_finish(RepMachine *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "finish expected 3 arguments (time_s, angle_deg, base), got %zd", nargs);
        return NULL;
    }
    Arr ta = {0}, aa = {0};
    PyObject *out = NULL;
    double *t = NULL, *a = NULL, *v = NULL;
    if (arr_get(args[0], &ta, "time_s", 'd', 1, -1, 0) < 0 || arr_get(args[1], &aa, "angle_deg", 'd', 1, ta.n, 0) < 0)
        goto fail;
    Py_ssize_t base = PyLong_AsSsize_t(args[2]);
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
        if ((t = arr_copy(&ta, 0, n)) == NULL || (a = arr_copy(&aa, 0, n)) == NULL || (v = arr_copy(&ta, 0, n)) == NULL)
            goto fail;
        if (close_cand(m, t, a, v, base, base + n - 1, out) < 0)
            goto fail;
        m->mode = MODE_DOWN;
    }
    PyMem_Free(t), PyMem_Free(a), PyMem_Free(v);
    arr_release(&ta), arr_release(&aa);
    return out;
fail:
    Py_XDECREF(out);
    PyMem_Free(t), PyMem_Free(a), PyMem_Free(v);
    arr_release(&ta), arr_release(&aa);
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
             "           confirm_s, speed_frac, speed_half_n)\n--\n\n"
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
             "measure(time_s, angle_deg, lo, s0, c, speed_half_n, speed_frac) -> tuple of 10 floats\n--\n\n"
             "host.reps.reference.measure_window: (start_s, peak_s, end_s, baseline_deg, peak_deg, rom_deg,\n"
             "up_s, hold_s, down_s, end_deg).  Requires 0 <= lo <= s0 <= c < N and speed_half_n >= 1.");

static PyObject *
measure(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    Arr ta = {0}, aa = {0};
    double *t = NULL, *a = NULL, *v = NULL;
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError, "measure expected 7 arguments, got %zd", nargs);
        return NULL;
    }
    if (arr_get(args[0], &ta, "time_s", 'd', 1, -1, 0) < 0 || arr_get(args[1], &aa, "angle_deg", 'd', 1, ta.n, 0) < 0)
        goto fail;
    Py_ssize_t lo = PyLong_AsSsize_t(args[2]), s0 = PyLong_AsSsize_t(args[3]), c = PyLong_AsSsize_t(args[4]);
    Py_ssize_t k = PyLong_AsSsize_t(args[5]);
    double frac = PyFloat_AsDouble(args[6]);
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
        (v = arr_copy(&ta, 0, ta.n)) == NULL)
        goto fail;
    double r[10];
    measure_window(t, a, v, lo, s0, c, k, frac, r);
    PyMem_Free(t), PyMem_Free(a), PyMem_Free(v);
    arr_release(&ta), arr_release(&aa);
    return Py_BuildValue("(dddddddddd)", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]);
fail:
    PyMem_Free(t), PyMem_Free(a), PyMem_Free(v);
    arr_release(&ta), arr_release(&aa);
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
    if (add_type(m, &AngleKernelType, "AngleKernel") < 0 || add_type(m, &RepMachineType, "RepMachine") < 0)
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
