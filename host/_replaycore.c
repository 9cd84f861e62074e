/* legrep._replaycore: the file replay's hot loops in C (host/replay_batch.py, host/recording.py,
 * host/clock.py, host/export.py).
 *
 * Each function here has a plain-Python reference that live capture runs (or that the tests run):
 *
 *   fit_drift      the clock's envelope fit (ClockMapper._refit; reference clock.fit_drift_reference)
 *   replay_run     the in-order packet path of SensorStream.data: decode, PacketTracker, ClockMapper
 *                  (observe, refit, map_ticks), scaling -- for every record that continues its
 *                  stream in order; it stops at the first record that needs the full Python path
 *                  (reference: SessionCore.process; tests/test_replay_batch.py compares them)
 *   walk_records   RecordingReader's validating pass over intact records (length, CRC-32, time)
 *   format_imu_rows  the canonical IMU CSV rows ("%.6f" time, "%.8g" values) as Python's %-format
 *
 * Results are bit-identical to the references: the same IEEE double operations in the same order
 * (built with -ffp-contract=off, so no fused multiply-adds), sums taken sequentially as the
 * Python loops take them, medians as exact order statistics. Plain C over the buffer protocol.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------- CRCs */

static uint16_t CRC16_TABLE[8][256];
static uint32_t CRC32_TABLE[8][256];

static void
init_tables(void)
{
    for (int i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)(i << 8);
        for (int k = 0; k < 8; k++)
            c = (uint16_t)((c & 0x8000) ? ((c << 1) ^ 0x1021) : (c << 1));
        CRC16_TABLE[0][i] = c;
        uint32_t d = (uint32_t)i;
        for (int k = 0; k < 8; k++)
            d = (d & 1) ? ((d >> 1) ^ 0xEDB88320u) : (d >> 1);
        CRC32_TABLE[0][i] = d;
    }
    /* CRC16_TABLE[t][i]: byte i followed by t zero bytes (so 8 bytes take 8 independent lookups) */
    for (int i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            CRC16_TABLE[t][i] = (uint16_t)(((CRC16_TABLE[t - 1][i] << 8) & 0xFFFF) ^ CRC16_TABLE[0][CRC16_TABLE[t - 1][i] >> 8]);
    for (int i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            CRC32_TABLE[t][i] = (CRC32_TABLE[t - 1][i] >> 8) ^ CRC32_TABLE[0][CRC32_TABLE[t - 1][i] & 0xFF];
}

/* CRC-16/CCITT-FALSE (binascii.crc_hqx(data, 0xFFFF)) */
static uint16_t
crc16(const uint8_t *p, Py_ssize_t n)
{
    uint16_t c = 0xFFFF;
    while (n >= 8) {
        c = (uint16_t)(CRC16_TABLE[7][(c >> 8) ^ p[0]] ^ CRC16_TABLE[6][(c & 0xFF) ^ p[1]] ^ CRC16_TABLE[5][p[2]] ^
                       CRC16_TABLE[4][p[3]] ^ CRC16_TABLE[3][p[4]] ^ CRC16_TABLE[2][p[5]] ^ CRC16_TABLE[1][p[6]] ^
                       CRC16_TABLE[0][p[7]]);
        p += 8;
        n -= 8;
    }
    while (n-- > 0)
        c = (uint16_t)((c << 8) ^ CRC16_TABLE[0][((c >> 8) ^ *p++) & 0xFF]);
    return c;
}

/* CRC-32 of zlib.crc32 (slicing by 8) */
static uint32_t
crc32(const uint8_t *p, Py_ssize_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n >= 8) {
        uint32_t a = c ^ ((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24));
        uint32_t b = (uint32_t)p[4] | ((uint32_t)p[5] << 8) | ((uint32_t)p[6] << 16) | ((uint32_t)p[7] << 24);
        c = CRC32_TABLE[7][a & 0xFF] ^ CRC32_TABLE[6][(a >> 8) & 0xFF] ^ CRC32_TABLE[5][(a >> 16) & 0xFF] ^
            CRC32_TABLE[4][a >> 24] ^ CRC32_TABLE[3][b & 0xFF] ^ CRC32_TABLE[2][(b >> 8) & 0xFF] ^
            CRC32_TABLE[1][(b >> 16) & 0xFF] ^ CRC32_TABLE[0][b >> 24];
        p += 8;
        n -= 8;
    }
    while (n-- > 0)
        c = CRC32_TABLE[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static inline uint32_t
rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline double
rdf64(const uint8_t *p)
{
    double d;
    memcpy(&d, p, 8); /* (little-endian hosts: the file is little-endian) */
    return d;
}

/* ----------------------------------------------------------------------------- the clock's fit */

/* k-th smallest of v[0..n) (v is reordered: v[0..k) <= v[k] <= v[k+1..n)): an exact order
 * statistic, as sorting gives. Quickselect with a median-of-three pivot and a branchless Lomuto
 * partition (each element is compared and stored whichever side it falls on: no mispredicted
 * branch per element, which was most of the clock fit's time). */
static double
select_kth(double *v, Py_ssize_t n, Py_ssize_t k)
{
    Py_ssize_t lo = 0, hi = n - 1;
    while (hi - lo > 16) {
        /* median of three (v[lo], v[mid], v[hi]) as the pivot, moved to v[hi] */
        Py_ssize_t mid = lo + (hi - lo) / 2;
        double a = v[lo], b = v[mid], c = v[hi];
        Py_ssize_t p = (a < b) ? ((b < c) ? mid : ((a < c) ? hi : lo)) : ((a < c) ? lo : ((b < c) ? hi : mid));
        double pivot = v[p];
        v[p] = v[hi];
        v[hi] = pivot;
        /* v[lo..store) < pivot <= v[store..i) */
        Py_ssize_t store = lo;
        for (Py_ssize_t i = lo; i < hi; i++) {
            double x = v[i];
            Py_ssize_t less = x < pivot;
            v[i] = v[store];
            v[store] = x;
            store += less;
        }
        v[hi] = v[store];
        v[store] = pivot;
        if (k == store)
            return pivot;
        if (k < store)
            hi = store - 1;
        else
            lo = store + 1;
    }
    /* a few left: insertion sort of v[lo..hi] */
    for (Py_ssize_t i = lo + 1; i <= hi; i++) {
        double x = v[i];
        Py_ssize_t j = i;
        while (j > lo && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
    return v[k];
}

/* clock.median: the middle value, or the two middle ones' sum over 2 (v is reordered) */
static double
median(double *v, Py_ssize_t n)
{
    Py_ssize_t h = n / 2;
    double upper = select_kth(v, n, h);
    if (n % 2)
        return upper;
    double lower = v[0]; /* the largest of v[0..h) after the selection */
    for (Py_ssize_t i = 1; i < h; i++)
        if (v[i] > lower)
            lower = v[i];
    return (lower + upper) / 2.0;
}

/* clock.fit_line_reference: least squares line through (x, y) from centred sums, sequential */
static void
fit_line(const double *x, const double *y, Py_ssize_t n, double *slope, double *icept)
{
    double sx = 0.0, sy = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        sx += x[i];
        sy += y[i];
    }
    double mx = sx / (double)n, my = sy / (double)n;
    double sxx = 0.0, sxy = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double dx = x[i] - mx;
        sxx += dx * dx;
        sxy += dx * (y[i] - my);
    }
    *slope = sxx > 0.0 ? sxy / sxx : 0.0;
    *icept = my - *slope * mx;
}

/* clock.fit_drift_reference; tmp holds 4 n doubles */
static double
fit_drift(const double *xs, const double *rs, Py_ssize_t n, double min_span_s, double max_drift, double *tmp)
{
    if (!(n >= 3 && xs[n - 1] - xs[0] >= min_span_s))
        return 0.0;
    double slope, icept;
    fit_line(xs, rs, n, &slope, &icept);
    double *resid = tmp, *work = tmp + n, *kx = tmp + 2 * n, *kr = tmp + 3 * n;
    for (Py_ssize_t i = 0; i < n; i++) {
        resid[i] = rs[i] - (icept + slope * xs[i]);
        work[i] = resid[i];
    }
    double med = median(work, n);
    for (Py_ssize_t i = 0; i < n; i++) {
        double d = resid[i] - med;
        work[i] = d < 0 ? -d : d;
    }
    double mad = median(work, n) + 1e-6;
    double limit = med + 4.0 * 1.4826 * mad;
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (resid[i] <= limit) {
            kx[m] = xs[i];
            kr[m] = rs[i];
            m++;
        }
    if (3 <= m && m < n)
        fit_line(kx, kr, m, &slope, &icept);
    double lo = -max_drift;
    double d = slope;
    d = (lo > d) ? lo : d;             /* max(slope, -max_drift) */
    return (max_drift < d) ? max_drift : d; /* min(., max_drift) */
}

/* release the views that were taken (obj set), of n */
static void
release_views(Py_buffer *views, int n)
{
    for (int i = 0; i < n; i++)
        if (views[i].obj)
            PyBuffer_Release(&views[i]);
}

static int
get_f64(PyObject *obj, Py_buffer *view, const char *name, Py_ssize_t min_len, int writable)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    if (strcmp(view->format, "d") != 0 || view->len < min_len * (Py_ssize_t)sizeof(double)) {
        PyErr_Format(PyExc_ValueError, "%s: a contiguous float64 array of at least %zd values expected", name, min_len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int
get_i64(PyObject *obj, Py_buffer *view, const char *name, Py_ssize_t min_len, int writable)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    if ((strcmp(view->format, "l") != 0 && strcmp(view->format, "q") != 0) || view->itemsize != 8 ||
        view->len < min_len * 8) {
        PyErr_Format(PyExc_ValueError, "%s: a contiguous int64 array of at least %zd values expected", name, min_len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(fit_drift_doc, "fit_drift(xs, rs, min_span_s, max_drift) -> float\n--\n\n"
                            "The clock's drift from its envelope points (clock.fit_drift_reference, bit for bit).");

static PyObject *
py_fit_drift(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *ox, *orr;
    double min_span, max_drift;
    if (!PyArg_ParseTuple(args, "OOdd", &ox, &orr, &min_span, &max_drift))
        return NULL;
    Py_buffer bx, br;
    if (get_f64(ox, &bx, "xs", 0, 0) < 0)
        return NULL;
    if (get_f64(orr, &br, "rs", 0, 0) < 0) {
        PyBuffer_Release(&bx);
        return NULL;
    }
    Py_ssize_t n = bx.len / 8;
    if (br.len / 8 != n) {
        PyErr_Format(PyExc_ValueError, "fit_drift: xs and rs of one length expected, got %zd and %zd", n, br.len / 8);
        PyBuffer_Release(&bx);
        PyBuffer_Release(&br);
        return NULL;
    }
    double *tmp = malloc(sizeof(double) * (size_t)(4 * n + 4));
    if (!tmp) {
        PyBuffer_Release(&bx);
        PyBuffer_Release(&br);
        return PyErr_NoMemory();
    }
    double d = fit_drift((const double *)bx.buf, (const double *)br.buf, n, min_span, max_drift, tmp);
    free(tmp);
    PyBuffer_Release(&bx);
    PyBuffer_Release(&br);
    return PyFloat_FromDouble(d);
}

/* ----------------------------------------------------------------------------- replay_run */

/* per-sensor integer state (istate[slot][I_*]) */
enum {
    I_NEXT_SEQ, I_MAX_SEQ, I_NEXT_SAMPLE, I_HAS_NEXT_SAMPLE, I_TICK_REF, I_HAS_TICK_REF, I_OPEN_INDEX,
    I_HAS_LAST, I_W0, I_W1, I_S0, I_S1, I_WINDOWS_CLOSED, I_RATE, I_PACKETS, I_SAMPLES, I_NOUT, I_NPKT,
    I_COUNT
};
/* per-sensor float state (fstate[slot][F_*]) */
enum {
    F_X0, F_ORIGIN, F_WINDOW_S, F_OPEN_X, F_OPEN_R, F_OFFSET, F_DRIFT, F_LAST_X, F_LAST_T, F_MAX_CORR,
    F_MAX_SLEW, F_ACC_LSB, F_GYR_LSB, F_FIT_SPAN, F_MIN_SPAN, F_MAX_DRIFT, F_COUNT
};

#define TICKS_PER_S 32768
#define HEAD_SIZE 10   /* u8 kind, u8 sensor, f64 t_s */
#define KIND_DATA 3
#define FLAG_RESENT 0x01
#define MIN_SYNCS_KEPT 3

/* ClockMapper._trim + _refit on the sensor's state; win: [2][wcap], syncs: [3][scap] */
static void
refit(int64_t *is, double *fs, double *win, Py_ssize_t wcap, double *syncs, Py_ssize_t scap, double *tmp)
{
    double *wx = win, *wr = win + wcap;
    double *sx = syncs, *sr = syncs + scap, *srtt = syncs + 2 * scap;
    Py_ssize_t w0 = (Py_ssize_t)is[I_W0], w1 = (Py_ssize_t)is[I_W1];
    Py_ssize_t s0 = (Py_ssize_t)is[I_S0], s1 = (Py_ssize_t)is[I_S1];
    /* _trim (the open point always exists here) */
    double newest = w1 > w0 ? wx[w1 - 1] : -INFINITY;
    if (fs[F_OPEN_X] > newest)
        newest = fs[F_OPEN_X];
    if (s1 > s0 && sx[s1 - 1] > newest)
        newest = sx[s1 - 1];
    double cut = newest - fs[F_FIT_SPAN];
    if (w1 > w0 && wx[w0] < cut) {
        while (w0 < w1 && wx[w0] < cut)
            w0++;
    }
    if (s1 - s0 > MIN_SYNCS_KEPT && sx[s0] < cut) {
        while (s1 - s0 > MIN_SYNCS_KEPT && sx[s0] < cut)
            s0++;
    }
    is[I_W0] = w0;
    is[I_S0] = s0;
    Py_ssize_t n = w1 - w0;
    double drift = fit_drift(wx + w0, wr + w0, n, fs[F_MIN_SPAN], fs[F_MAX_DRIFT], tmp);
    fs[F_DRIFT] = drift;
    if (s1 > s0) {
        double lo = srtt[s0];
        for (Py_ssize_t k = s0 + 1; k < s1; k++)
            if (srtt[k] < lo)
                lo = srtt[k];
        double limit = lo * 1.5 + 1e-4, total = 0.0;
        Py_ssize_t m = 0;
        for (Py_ssize_t k = s0; k < s1; k++)
            if (srtt[k] <= limit) {
                total += sr[k] - drift * sx[k];
                m++;
            }
        fs[F_OFFSET] = total / (double)m;
    } else {
        double lowest = INFINITY;
        for (Py_ssize_t k = w0; k < w1; k++) {
            double v = wr[k] - drift * wx[k];
            if (v < lowest)
                lowest = v;
        }
        double v = fs[F_OPEN_R] - drift * fs[F_OPEN_X];
        if (v < lowest)
            lowest = v;
        fs[F_OFFSET] = lowest; /* (finite: the open point is there) */
    }
}

PyDoc_STRVAR(replay_run_doc,
             "replay_run(data, starts, ends, times, r0, r1, slot_of, istate, fstate, win, syncs, out_t, out_acc,\n"
             "           out_gyr, max_packets) -> (r, reason)\n--\n\n"
             "Take records r0.. of a recording on the in-order packet path (see host/replay_batch.py) until\n"
             "record r needs the Python path (reason 1), a sensor holds max_packets packets (reason 2: r is\n"
             "the next record) or r == r1 (reason 0). The state arrays are updated in place.");

static PyObject *
py_replay_run(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *odata, *ostarts, *oends, *otimes, *oslot, *ois, *ofs, *owin, *osyn, *ot, *oacc, *ogyr;
    Py_ssize_t r0, r1, max_packets;
    if (!PyArg_ParseTuple(args, "OOOOnnOOOOOOOOn", &odata, &ostarts, &oends, &otimes, &r0, &r1, &oslot, &ois, &ofs,
                          &owin, &osyn, &ot, &oacc, &ogyr, &max_packets))
        return NULL;
    Py_buffer views[12];
    memset(views, 0, sizeof(views));
    Py_buffer *bd = &views[0], *bs = &views[1], *be = &views[2], *bt = &views[3], *bslot = &views[4],
              *bis = &views[5], *bfs = &views[6], *bw = &views[7], *bsy = &views[8], *bot = &views[9],
              *boa = &views[10], *bog = &views[11];
    PyObject *result = NULL;
    double *tmp = NULL;
    if (PyObject_GetBuffer(odata, bd, PyBUF_SIMPLE) < 0)
        return NULL;
    if (get_i64(ostarts, bs, "starts", r1, 0) < 0 || get_i64(oends, be, "ends", r1, 0) < 0 ||
        get_f64(otimes, bt, "times", r1, 0) < 0 || get_i64(oslot, bslot, "slot_of", 256, 0) < 0 ||
        get_i64(ois, bis, "istate", I_COUNT, 1) < 0 || get_f64(ofs, bfs, "fstate", F_COUNT, 1) < 0 ||
        get_f64(owin, bw, "win", 2, 1) < 0 || get_f64(osyn, bsy, "syncs", 3, 1) < 0 ||
        get_f64(ot, bot, "out_t", 1, 1) < 0 || get_f64(oacc, boa, "out_acc", 3, 1) < 0 ||
        get_f64(ogyr, bog, "out_gyr", 3, 1) < 0)
        goto done;
    Py_ssize_t slots = bis->len / (8 * I_COUNT);
    if (bis->len != slots * 8 * I_COUNT || bfs->len != slots * 8 * F_COUNT || slots < 1 || bw->len % (16 * slots) ||
        bsy->len % (24 * slots) || bot->len % (8 * slots) || boa->len != 3 * bot->len || bog->len != 3 * bot->len) {
        PyErr_SetString(PyExc_ValueError, "replay_run: state arrays of inconsistent shapes");
        goto done;
    }
    Py_ssize_t wcap = bw->len / (16 * slots), scap = bsy->len / (24 * slots), ocap = bot->len / (8 * slots);
    const uint8_t *data = (const uint8_t *)bd->buf;
    Py_ssize_t nbytes = bd->len;
    const int64_t *starts = (const int64_t *)bs->buf, *ends = (const int64_t *)be->buf, *slot_of = (const int64_t *)bslot->buf;
    const double *times = (const double *)bt->buf;
    tmp = malloc(sizeof(double) * (size_t)(4 * wcap + 4));
    if (!tmp) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t r = r0;
    int reason = 0;
    int64_t offsets[64][32], off_rate[64];
    for (int k = 0; k < 64; k++)
        off_rate[k] = 0;
    for (; r < r1; r++) {
        int64_t start = starts[r], end = ends[r];
        if (start < 0 || end > nbytes || end - start < 8 + HEAD_SIZE) {
            reason = 1;
            break;
        }
        const uint8_t *rec = data + start + 4;
        if (rec[0] != KIND_DATA) {
            reason = 1;
            break;
        }
        int64_t slot = slot_of[rec[1]];
        if (slot < 0 || slot >= slots) {
            reason = 1;
            break;
        }
        int64_t *is = (int64_t *)bis->buf + slot * I_COUNT;
        double *fs = (double *)bfs->buf + slot * F_COUNT;
        double *win = (double *)bw->buf + slot * 2 * wcap;
        double *syn = (double *)bsy->buf + slot * 3 * scap;
        const uint8_t *p = rec + HEAD_SIZE;
        Py_ssize_t size = (Py_ssize_t)(end - 4 - (start + 4 + HEAD_SIZE));
        /* decode_imu_packet's checks, and not re-sent (a re-sent packet never continues in order) */
        if (size < 30 || size > 18 + 12 * 32 || (size - 18) % 12) {
            reason = 1;
            break;
        }
        int n = (int)((size - 18) / 12);
        if (p[0] != 0x01 || p[2] != n || (p[1] & FLAG_RESENT) ||
            crc16(p, size - 2) != (uint16_t)(p[size - 2] | (p[size - 1] << 8))) {
            reason = 1;
            break;
        }
        int64_t seq = rd32(p + 4), first = rd32(p + 8), raw_ticks = rd32(p + 12);
        /* in order: the tracker's next seq, nothing missing, the next sample */
        if (!(seq == is[I_NEXT_SEQ] && is[I_MAX_SEQ] == seq - 1 && (!is[I_HAS_NEXT_SAMPLE] || first == is[I_NEXT_SAMPLE]))) {
            reason = 1;
            break;
        }
        if (is[I_NOUT] + n > ocap || (is[I_W1] == wcap && is[I_W0] == 0)) {
            reason = 1; /* (no room: Python's path; cannot happen with the capacities replay_batch gives) */
            break;
        }
        double t_s = times[r];
        int64_t rate = is[I_RATE];
        if (slot >= 64 || rate <= 0) {
            reason = 1; /* (the Python path; no legrep session has 64 sensors) */
            break;
        }
        if (rate != off_rate[slot]) { /* tick_offset(k, rate) for k < 32 */
            for (int k = 0; k < 32; k++)
                offsets[slot][k] = (2 * (int64_t)k * TICKS_PER_S + rate) / (2 * rate);
            off_rate[slot] = rate;
        }
        const int64_t *off = offsets[slot];
        /* PacketTracker.unwrap_ticks */
        int64_t ticks = raw_ticks;
        if (is[I_HAS_TICK_REF]) {
            int64_t ref = is[I_TICK_REF];
            ticks = ref + (((raw_ticks - ref + 0x80000000LL) & 0xFFFFFFFFLL) - 0x80000000LL);
        }
        is[I_TICK_REF] = ticks;
        is[I_HAS_TICK_REF] = 1;
        int64_t last = ticks + off[n - 1];
        /* ClockMapper.observe_packet */
        double x = (double)last / 32768.0 - fs[F_X0];
        double rr = (t_s - fs[F_ORIGIN]) - x;
        double idx_f = floor(x / fs[F_WINDOW_S]);
        int64_t index = (int64_t)idx_f;
        if (index > is[I_OPEN_INDEX]) {
            /* close the open window: its point joins the envelope, a refit */
            Py_ssize_t w1 = (Py_ssize_t)is[I_W1];
            if (w1 == wcap) { /* move the live points to the front */
                Py_ssize_t w0 = (Py_ssize_t)is[I_W0], live = w1 - w0;
                memmove(win, win + w0, sizeof(double) * (size_t)live);
                memmove(win + wcap, win + wcap + w0, sizeof(double) * (size_t)live);
                is[I_W0] = 0;
                w1 = live;
            }
            win[w1] = fs[F_OPEN_X];
            win[wcap + w1] = fs[F_OPEN_R];
            is[I_W1] = w1 + 1;
            is[I_WINDOWS_CLOSED] += 1;
            is[I_OPEN_INDEX] = index;
            fs[F_OPEN_X] = x;
            fs[F_OPEN_R] = rr;
            refit(is, fs, win, wcap, syn, scap, tmp);
        } else if (index == is[I_OPEN_INDEX]) {
            if (rr < fs[F_OPEN_R]) {
                fs[F_OPEN_X] = x;
                fs[F_OPEN_R] = rr;
            }
        } /* (an older window's point: ignored, as ClockMapper does) */
        /* PacketTracker.feed + _release for a packet in order */
        is[I_PACKETS] += 1;
        is[I_MAX_SEQ] = seq;
        is[I_NEXT_SEQ] = seq + 1;
        is[I_NEXT_SAMPLE] = first + n;
        is[I_HAS_NEXT_SAMPLE] = 1;
        is[I_SAMPLES] += n;
        /* ClockMapper.map_ticks over the packet's samples, then SampleBatch.scaled */
        double e = fs[F_DRIFT], c = fs[F_OFFSET], x0 = fs[F_X0];
        double *ot_ = (double *)bot->buf + slot * ocap + is[I_NOUT];
        double *oa_ = (double *)boa->buf + 3 * (slot * ocap + is[I_NOUT]);
        double *og_ = (double *)bog->buf + 3 * (slot * ocap + is[I_NOUT]);
        const uint8_t *sp = p + 16;
        double acc_lsb = fs[F_ACC_LSB], gyr_lsb = fs[F_GYR_LSB];
        double xk = 0.0, outk = 0.0;
        if (!is[I_HAS_LAST]) {
            for (int k = 0; k < n; k++) {
                int64_t tk = ticks + off[k];
                xk = (double)tk / 32768.0 - x0;
                outk = xk + c + e * xk;
                ot_[k] = outk;
            }
        } else {
            double lx = fs[F_LAST_X], lt = fs[F_LAST_T];
            double error = (lx + c + e * lx) - lt;
            double slew = fs[F_MAX_SLEW], one_e = 1.0 + e;
            for (int k = 0; k < n; k++) {
                int64_t tk = ticks + off[k];
                xk = (double)tk / 32768.0 - x0;
                double d = xk - lx;
                double dx = (d >= 0.0) ? d : 0.0;
                double bound = slew * dx;
                double nb = -bound;
                double cl = (nb > error) ? nb : error;
                cl = (bound < cl) ? bound : cl;
                outk = lt + dx * one_e + cl;
                ot_[k] = outk;
            }
            double ae = error < 0 ? -error : error;
            if (ae > fs[F_MAX_CORR])
                fs[F_MAX_CORR] = ae;
        }
        fs[F_LAST_X] = xk;
        fs[F_LAST_T] = outk;
        is[I_HAS_LAST] = 1;
        for (int k = 0; k < n; k++) {
            const uint8_t *q = sp + 12 * k;
            for (int j = 0; j < 3; j++) {
                int16_t a = (int16_t)(q[2 * j] | (q[2 * j + 1] << 8));
                int16_t g = (int16_t)(q[6 + 2 * j] | (q[6 + 2 * j + 1] << 8));
                oa_[3 * k + j] = (double)a * acc_lsb;
                og_[3 * k + j] = (double)g * gyr_lsb;
            }
        }
        is[I_NOUT] += n;
        is[I_NPKT] += 1;
        if (is[I_NPKT] >= max_packets) {
            r++;
            reason = 2;
            break;
        }
    }
    result = Py_BuildValue("(ni)", r, reason);
done:
    free(tmp);
    release_views(views, 12);
    return result;
}

/* ----------------------------------------------------------------------------- walk_records */

PyDoc_STRVAR(walk_records_doc,
             "walk_records(data, pos, max_t_s, starts, ends, times, kinds) -> (count, pos)\n--\n\n"
             "RecordingReader._walk's fast path: the intact records from byte pos on (length within\n"
             "[10, max_record], CRC-32, time within +-max_t_s), written to the int64 arrays starts, ends, the\n"
             "float64 times and the int64 kinds; stops at the first record that is not intact or has an\n"
             "implausible time (pos is where), or when the arrays are full.");

static PyObject *
py_walk_records(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *odata, *os_, *oe, *ot, *ok;
    Py_ssize_t pos, max_record;
    double max_t;
    if (!PyArg_ParseTuple(args, "OndnOOOO", &odata, &pos, &max_t, &max_record, &os_, &oe, &ot, &ok))
        return NULL;
    Py_buffer views[5];
    memset(views, 0, sizeof(views));
    Py_buffer *bd = &views[0], *bs = &views[1], *be = &views[2], *bt = &views[3], *bk = &views[4];
    PyObject *result = NULL;
    if (PyObject_GetBuffer(odata, bd, PyBUF_SIMPLE) < 0)
        return NULL;
    if (get_i64(os_, bs, "starts", 0, 1) < 0 || get_i64(oe, be, "ends", 0, 1) < 0 ||
        get_f64(ot, bt, "times", 0, 1) < 0 || get_i64(ok, bk, "kinds", 0, 1) < 0)
        goto done;
    Py_ssize_t cap = bs->len / 8;
    if (be->len / 8 < cap || bt->len / 8 < cap || bk->len / 8 < cap) {
        PyErr_SetString(PyExc_ValueError, "walk_records: output arrays of one length expected");
        goto done;
    }
    const uint8_t *data = (const uint8_t *)bd->buf;
    Py_ssize_t n = bd->len, count = 0;
    int64_t *starts = (int64_t *)bs->buf, *ends = (int64_t *)be->buf, *kinds = (int64_t *)bk->buf;
    double *times = (double *)bt->buf;
    Py_BEGIN_ALLOW_THREADS
    while (pos < n && count < cap) {
        if (n - pos < 8 + HEAD_SIZE)
            break;
        Py_ssize_t length = (Py_ssize_t)rd32(data + pos);
        if (length < HEAD_SIZE || length > max_record || pos + 8 + length > n)
            break;
        Py_ssize_t end = pos + 8 + length;
        if (crc32(data + pos, end - 4 - pos) != rd32(data + end - 4))
            break;
        double t = rdf64(data + pos + 6);
        if (!(-max_t <= t && t <= max_t))
            break;
        starts[count] = pos;
        ends[count] = end;
        times[count] = t;
        kinds[count] = data[pos + 4];
        count++;
        pos = end;
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(nn)", count, pos);
done:
    release_views(views, 5);
    return result;
}

/* ----------------------------------------------------------------------------- format_imu_rows */

/* A value v that is k * lsb for an integer 0 < |k| <= 32768 (every sample of a legrep sensor, and
 * of most IMU CSVs) is formatted once per k ("%.8g" by snprintf) and copied after; any other value
 * (zero too: -0.0 prints "-0") is formatted by snprintf directly. The text is snprintf's either way.
 * The tables live as long as the module (one per LSB, a few at most). The rows are formatted with the
 * GIL released (an export formats on a thread of its own beside the analysis); the tables' entries are
 * then filled under LUT_LOCK, and tables are made or dropped only with the GIL held. */
typedef struct {
    double lsb, inv_lsb;
    char text[65537][16];
    unsigned char len[65537];
    unsigned char have[65537];
} Lut;

#define N_LUTS 4
static Lut *LUTS[N_LUTS];
static PyThread_type_lock LUT_LOCK; /* one formatting loop at a time (made at import) */

static Lut *
lut_for(double lsb)
{
    if (!(lsb > 0.0 && isfinite(lsb)))
        return NULL;
    for (int i = 0; i < N_LUTS; i++)
        if (LUTS[i] != NULL && memcmp(&LUTS[i]->lsb, &lsb, sizeof(double)) == 0)
            return LUTS[i];
    int slot = 0;
    for (int i = 0; i < N_LUTS; i++)
        if (LUTS[i] == NULL) {
            slot = i;
            break;
        } else if (i == N_LUTS - 1) {
            free(LUTS[0]); /* (more LSBs than tables: the first one goes) */
            memmove(LUTS, LUTS + 1, sizeof(Lut *) * (N_LUTS - 1));
            LUTS[N_LUTS - 1] = NULL;
            slot = N_LUTS - 1;
        }
    LUTS[slot] = calloc(1, sizeof(Lut));
    if (LUTS[slot] != NULL) {
        LUTS[slot]->lsb = lsb;
        LUTS[slot]->inv_lsb = 1.0 / lsb;
    }
    return LUTS[slot];
}

static inline int
fmt_value(char *out, double v, Lut *lut)
{
    if (v == 0.0) { /* (printf's "0" and "-0") */
        if (signbit(v)) {
            out[0] = '-';
            out[1] = '0';
            return 2;
        }
        out[0] = '0';
        return 1;
    }
    if (lut != NULL) {
        double q = v * lut->inv_lsb; /* (near k: k * lsb == v is what counts) */
        if (q >= -32768.0 && q <= 32768.0) {
            double k = (double)lrint(q); /* (any near integer: checked below; no branch on the sign) */
            if (k != 0.0 && k * lut->lsb == v) {
                int i = (int)k + 32768;
                if (!lut->have[i]) {
                    int m = snprintf(lut->text[i], 16, "%.8g", v);
                    if (m <= 0 || m >= 16)
                        return snprintf(out, 32, "%.8g", v);
                    lut->len[i] = (unsigned char)m;
                    lut->have[i] = 1;
                }
                memcpy(out, lut->text[i], 16); /* (a whole slot: the caller's buffer has room) */
                return lut->len[i];
            }
        }
    }
    return snprintf(out, 32, "%.8g", v);
}

static const char DIGITS2[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                              "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                              "8081828384858687888990919293949596979899";

/* "%.6f" of t: an integer count of microseconds when the product t * 1e6 is not within its rounding
 * error (half an ulp, taken as 2 ulps) of a half -- then rounding it gives snprintf's correctly
 * rounded digits; snprintf otherwise (ties, near-ties, negative or huge times) */
static inline int
fmt_time(char *out, double t)
{
    if (t >= 0.0 && t < 1e9) {
        double p = t * 1e6; /* < 2**50 */
        double f = floor(p);
        double frac = p - f; /* (exact) */
        if (fabs(frac - 0.5) > p * 4.5e-16 + 1e-300) {
            uint64_t m = (uint64_t)f + (frac > 0.5 ? 1u : 0u);
            uint64_t whole = m / 1000000u;
            uint32_t micro = (uint32_t)(m % 1000000u);
            char tmp[24];
            int len = 0;
            do {
                tmp[len++] = (char)('0' + whole % 10u);
                whole /= 10u;
            } while (whole);
            int o = 0;
            while (len)
                out[o++] = tmp[--len];
            out[o++] = '.';
            memcpy(out + o, DIGITS2 + 2 * (micro / 10000u), 2);
            memcpy(out + o + 2, DIGITS2 + 2 * (micro / 100u % 100u), 2);
            memcpy(out + o + 4, DIGITS2 + 2 * (micro % 100u), 2);
            return o + 6;
        }
    }
    return snprintf(out, 400, "%.6f", t);
}

PyDoc_STRVAR(format_imu_rows_doc,
             "format_imu_rows(time_s, values, acc_lsb, gyr_lsb) -> bytes\n--\n\n"
             "The canonical IMU CSV rows of time_s (N,) and values (N, 6) float64 (finite): time \"%.6f\", the\n"
             "six values \"%.8g\", the bytes legrep._csvscan.format_rows gives; values that are whole\n"
             "multiples of acc_lsb (columns 0-2) or gyr_lsb (3-5) come from a table (0: no table).");

static PyObject *
py_format_imu_rows(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *ot, *ov;
    double lsb[2];
    if (!PyArg_ParseTuple(args, "OOdd", &ot, &ov, &lsb[0], &lsb[1]))
        return NULL;
    Py_buffer bt = {0}, bv = {0};
    PyObject *out = NULL;
    Lut *luts[2] = {NULL, NULL};
    char *buf = NULL;
    if (get_f64(ot, &bt, "time_s", 0, 0) < 0)
        return NULL;
    if (get_f64(ov, &bv, "values", 0, 0) < 0)
        goto done;
    Py_ssize_t n = bt.len / 8;
    if (bv.len != 6 * bt.len) {
        PyErr_Format(PyExc_ValueError, "format_imu_rows: values of shape (%zd, 6) expected, got %zd values", n, bv.len / 8);
        goto done;
    }
    size_t cap = (size_t)n * 640 + 64; /* worst case: every field through snprintf at full length */
    if (n > 0 && cap / 640 < (size_t)n) {
        PyErr_NoMemory();
        goto done;
    }
    buf = malloc(cap);
    if (!buf) {
        PyErr_NoMemory();
        goto done;
    }
    size_t len = 0;
    const double *t = (const double *)bt.buf, *v = (const double *)bv.buf;
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(LUT_LOCK, WAIT_LOCK);
    Py_END_ALLOW_THREADS
    /* (the lock and the GIL held: a table another thread formats with is never dropped) */
    for (int j = 0; j < 2; j++)
        luts[j] = lut_for(lsb[j]); /* (NULL without memory: snprintf for every value) */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        char *o = buf + len;
        int m = fmt_time(o, t[i]);
        for (int j = 0; j < 6; j++) {
            o[m++] = ',';
            m += fmt_value(o + m, v[6 * i + j], luts[j / 3]);
        }
        o[m++] = '\n';
        len += (size_t)m;
    }
    PyThread_release_lock(LUT_LOCK);
    Py_END_ALLOW_THREADS
    out = PyBytes_FromStringAndSize(buf, (Py_ssize_t)len);
done:
    free(buf);
    PyBuffer_Release(&bt);
    if (bv.obj)
        PyBuffer_Release(&bv);
    return out;
}

/* ----------------------------------------------------------------------------- module */

/* crc32(data) / crc16(data) for the tests: one wrapper, the width as the module function's self */
static PyObject *
buffer_crc(PyObject *arg, int width)
{
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    unsigned long c = width == 32 ? crc32((const uint8_t *)b.buf, b.len) : crc16((const uint8_t *)b.buf, b.len);
    PyBuffer_Release(&b);
    return PyLong_FromUnsignedLong(c);
}

static PyObject *
py_crc32(PyObject *mod, PyObject *arg)
{
    (void)mod;
    return buffer_crc(arg, 32);
}

static PyObject *
py_crc16(PyObject *mod, PyObject *arg)
{
    (void)mod;
    return buffer_crc(arg, 16);
}

static PyMethodDef methods[] = {
    {"fit_drift", py_fit_drift, METH_VARARGS, fit_drift_doc},
    {"replay_run", py_replay_run, METH_VARARGS, replay_run_doc},
    {"walk_records", py_walk_records, METH_VARARGS, walk_records_doc},
    {"format_imu_rows", py_format_imu_rows, METH_VARARGS, format_imu_rows_doc},
    {"crc32", py_crc32, METH_O, "crc32(data) -> int\n--\n\nzlib.crc32(data) (for the tests)."},
    {"crc16", py_crc16, METH_O, "crc16(data) -> int\n--\n\nbinascii.crc_hqx(data, 0xFFFF) (for the tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_replaycore", "The file replay's hot loops in C.", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC
PyInit__replaycore(void)
{
    init_tables();
    if (LUT_LOCK == NULL && (LUT_LOCK = PyThread_allocate_lock()) == NULL)
        return PyErr_NoMemory();
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    PyModule_AddIntConstant(m, "I_COUNT", I_COUNT);
    PyModule_AddIntConstant(m, "F_COUNT", F_COUNT);
    return m;
}
