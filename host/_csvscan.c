/* legrep._csvscan: the fast path of the IMU CSV reader (host/imu_csv.py).
 *
 * Why hand-written C and not a CSV library: measured on the same 1 h files (two thighs, 100 Hz,
 * 56 MB) in one run, samples/s on this project's 2-core machine: np.loadtxt 1.3 M, pandas (C
 * engine, chunks) 2.6-3.3 M, pyarrow.csv 2.9 M (one thread) / 3.9 M (threads), polars 3.6-4.2 M,
 * this scanner 20+ M (see benchmarks/throughput.py, which prints the floor np.loadtxt beside it).
 * None of the libraries is stricter than this scanner where legrep needs it (pandas and polars
 * read 'nan', 'n/a' and an empty field as missing, pyarrow trims differently), so each would still
 * need a checking pass of its own; the scanner does the checks while it parses, in one pass.
 *
 * It accepts a strict SUBSET of what the reference path (np.loadtxt line by line, in Python) accepts,
 * and gives bit-identical numbers for it:
 *   - a line is blank (only spaces/tabs before an optional '\r') or has exactly n_fields fields;
 *   - a used field is  [ \t]* [+-]? (D+ ('.' D*)? | '.' D+) ([eE] [+-]? D+)? [ \t]*
 *     with a finite value; the value is exact (Clinger's fast path: an integer mantissa below 2^53
 *     times or divided by an exact power of ten 10^k, k <= 22, is one correctly rounded IEEE operation;
 *     W. D. Clinger, "How to read floating point numbers accurately", PLDI 1990), otherwise
 *     CPython's correctly rounded PyOS_string_to_double (David Gay's dtoa), as np.loadtxt uses;
 *   - an ignored field holds printable ASCII or tabs only (no byte that str.splitlines would split
 *     on, nothing that is not ASCII: those lines go to the reference path);
 *   - time (target column 0) strictly increases from the previous row.
 * Any other line stops the scan at the start of that line; Python's reference path then accepts it
 * or raises the one-line error naming line, column, what was expected and what arrived.
 *
 * Most fields (the writer's %.8g and %.6f) take parse_plain, a shorter path to the same value (at
 * most 19 digits, no exponent, no blanks, the fraction's digits four or eight at a time); anything
 * else takes parse_number.
 *
 * format_rows is the writer's counterpart: snprintf in one C loop, not one Python %-format per row.
 *
 * The GIL is released while scanning (the two legs are read on two threads); it is taken back only
 * for the rare number that needs dtoa.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#define N_TARGET 7
#define SKIP 0xFF

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

typedef struct {
    PyThreadState *ts; /* non-NULL while the GIL is released */
} Gil;

/* Parse one used field starting at *pp (before `end`), in one pass: on success 0, the value in *out
 * and *pp just after the field's trailing blanks (at ',', '\r', '\n' or end, not checked here);
 * -1 if the field is not in the accepted grammar or not finite. */
static int
parse_number(const char **pp, const char *end, double *out, Gil *gil)
{
    const char *p = *pp;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    const char *start = p;
    int neg = 0;
    if (p < end && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
    }
    uint64_t mant = 0;
    int sig = 0;     /* significant digits taken into mant */
    int dropped = 0; /* nonzero digits beyond 19 significant ones */
    int exp10 = 0;
    int digits = 0;
    while (p < end && (unsigned)(*p - '0') < 10) {
        if (sig < 19) {
            mant = mant * 10 + (uint64_t)(*p - '0');
            sig += mant != 0; /* leading zeros are not significant */
        } else {
            exp10++;
            dropped |= *p != '0';
        }
        p++, digits++;
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && (unsigned)(*p - '0') < 10) {
            if (sig < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                sig += mant != 0;
                exp10--;
            } else {
                dropped |= *p != '0';
            }
            p++, digits++;
        }
    }
    if (digits == 0)
        return -1;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0, edigits = 0;
        long e = 0;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        while (p < end && (unsigned)(*p - '0') < 10) {
            if (e < 100000)
                e = e * 10 + (*p - '0');
            p++, edigits++;
        }
        if (edigits == 0)
            return -1;
        exp10 += (int)(eneg ? -e : e);
    }
    const char *num_end = p;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    *pp = p;
    double v;
    if (mant == 0 && !dropped) {
        v = 0.0;
    } else if (!dropped && mant <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        v = (double)mant;
        v = exp10 < 0 ? v / POW10[-exp10] : v * POW10[exp10];
    } else {
        char tmp[80];
        size_t len = (size_t)(num_end - start);
        if (len >= sizeof tmp)
            return -1;
        memcpy(tmp, start, len);
        tmp[len] = '\0';
        char *stop = NULL;
        PyEval_RestoreThread(gil->ts);
        v = PyOS_string_to_double(tmp, &stop, NULL);
        int failed = v == -1.0 && PyErr_Occurred();
        if (failed)
            PyErr_Clear();
        gil->ts = PyEval_SaveThread();
        if (failed || stop != tmp + len)
            return -1;
        *out = v;
        return isfinite(v) ? 0 : -1;
    }
    *out = neg ? -v : v;
    return isfinite(v) ? 0 : -1;
}

/* Eight ASCII digits at p (little-endian load) as their value, or -1 if any byte is not a digit:
 * eight bytes at once in one 64-bit word (pairs, then quads, then the eight, in three
 * multiplications), the technique of D. Lemire, "Number parsing at a gigabyte per second",
 * Software: Practice and Experience 51(8), 2021. Exact integer arithmetic: the same digits give the
 * same integer as the digit-by-digit loop. */
static inline int64_t
eight_digits(const char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, 8);
    /* every byte 0x30..0x39: high nibble 3, and adding 6 does not carry into it */
    if (((v & UINT64_C(0xF0F0F0F0F0F0F0F0)) | (((v + UINT64_C(0x0606060606060606)) & UINT64_C(0xF0F0F0F0F0F0F0F0)) >> 4)) !=
        UINT64_C(0x3333333333333333))
        return -1;
    v -= UINT64_C(0x3030303030303030);
    v = (v * 10) + (v >> 8); /* byte 2k: the two-digit value of digits 2k, 2k+1 */
    v = (((v & UINT64_C(0x000000FF000000FF)) * (100 + (UINT64_C(1000000) << 32))) +
         (((v >> 16) & UINT64_C(0x000000FF000000FF)) * (1 + (UINT64_C(10000) << 32)))) >> 32;
    return (int64_t)v;
#else
    (void)p;
    return -1;
#endif
}

/* Four ASCII digits at p as their value, or -1 (as eight_digits). */
static inline int32_t
four_digits(const char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t v;
    memcpy(&v, p, 4);
    if (((v & 0xF0F0F0F0u) | (((v + 0x06060606u) & 0xF0F0F0F0u) >> 4)) != 0x33333333u)
        return -1;
    v -= 0x30303030u;
    v = (v * 10) + (v >> 8); /* bytes 0 and 2: the two-digit values of digits 0, 1 and 2, 3 */
    return (int32_t)((v & 0xFF) * 100 + ((v >> 16) & 0xFF));
#else
    (void)p;
    return -1;
#endif
}

/* parse_number for the common field: [+-]? D+ ('.' D+)? of at most 19 digits, right before ',',
 * '\r', '\n' or the end; any other field is left to parse_number (returns 1, *pp unchanged).
 * The same mantissa and power of ten as parse_number's (all digits are significant there too when
 * there are at most 19 of them), so the same value. */
static inline int
parse_plain(const char **pp, const char *end, double *out)
{
    const char *p = *pp;
    int neg = 0;
    if (p < end && (*p == '-' || *p == '+')) {
        neg = *p == '-';
        p++;
    }
    uint64_t mant = 0;
    int n_int = 0, n_frac = 0;
    while (p < end && (unsigned)(*p - '0') < 10) {
        mant = mant * 10 + (uint64_t)(*p - '0');
        p++, n_int++;
        if (n_int > 19)
            return 1;
    }
    if (n_int == 0)
        return 1;
    if (p < end && *p == '.') {
        p++;
        if (end - p >= 8 && n_int <= 11) {
            int64_t d8 = eight_digits(p);
            if (d8 >= 0) {
                mant = mant * 100000000 + (uint64_t)d8;
                p += 8, n_frac = 8;
            }
        }
        if (n_frac == 0 && end - p >= 4 && n_int <= 15) {
            int32_t d4 = four_digits(p);
            if (d4 >= 0) {
                mant = mant * 10000 + (uint64_t)d4;
                p += 4, n_frac = 4;
            }
        }
        int room = 19 - n_int - n_frac; /* digits mant may still take */
        while (p < end && (unsigned)(*p - '0') < 10) {
            if (room-- == 0)
                return 1;
            mant = mant * 10 + (uint64_t)(*p - '0');
            p++, n_frac++;
        }
        if (n_frac == 0)
            return 1;
    }
    if (p < end && *p != ',' && *p != '\n' && *p != '\r')
        return 1;
    if (mant > (UINT64_C(1) << 53) || n_frac > 22)
        return 1;
    double v = mant == 0 ? 0.0 : (n_frac ? (double)mant / POW10[n_frac] : (double)mant * POW10[0]);
    *out = neg ? -v : v;
    *pp = p;
    return 0;
}

PyDoc_STRVAR(scan_doc,
             "scan(buf, pos, time_s, acc, gyr, row, col_map, prev_t, lineno) -> tuple\n--\n\n"
             "Parse the lines of buf[pos:] (bytes ending at a line end, or the end of the file) into\n"
             "time_s (cap,), acc (cap, 3) and gyr (cap, 3) float64 from row ``row`` on.  col_map has one\n"
             "byte per field: 0 time, 1-3 acc x/y/z, 4-6 gyr x/y/z, 255 ignored.  prev_t is the previous\n"
             "row's time (-inf for none), lineno the 1-based number of the line at pos.\n\n"
             "Returns (pos, row, lineno, prev_t, last_row_pos, last_row_lineno, status): status 0 when\n"
             "buf is consumed, 1 when the line at pos needs the reference parser, 2 when the arrays are\n"
             "full.  last_row_pos is -1 if no row was stored by this call.");

static PyObject *
scan(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 9) {
        PyErr_Format(PyExc_TypeError, "scan expected 9 arguments, got %zd", nargs);
        return NULL;
    }
    Py_buffer buf = {0}, bt = {0}, ba = {0}, bg = {0}, bm = {0};
    PyObject *result = NULL;
    if (PyObject_GetBuffer(args[0], &buf, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[2], &bt, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0 ||
        PyObject_GetBuffer(args[3], &ba, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0 ||
        PyObject_GetBuffer(args[4], &bg, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0 ||
        PyObject_GetBuffer(args[6], &bm, PyBUF_SIMPLE) < 0)
        goto done;
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    Py_ssize_t row = PyLong_AsSsize_t(args[5]);
    double prev_t = PyFloat_AsDouble(args[7]);
    long long lineno = PyLong_AsLongLong(args[8]);
    if (PyErr_Occurred())
        goto done;
    Py_ssize_t cap = bt.len / (Py_ssize_t)sizeof(double);
    if (ba.len < cap * 3 * (Py_ssize_t)sizeof(double) || bg.len < cap * 3 * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "scan: acc and gyr must hold 3 values per row of time_s");
        goto done;
    }
    if (pos < 0 || pos > buf.len || row < 0 || row > cap || bm.len < 1 || bm.len > 4096) {
        PyErr_SetString(PyExc_ValueError, "scan: pos/row out of range or col_map empty");
        goto done;
    }
    const char *data = (const char *)buf.buf;
    const Py_ssize_t n = buf.len;
    const unsigned char *map = (const unsigned char *)bm.buf;
    const Py_ssize_t n_fields = bm.len;
    double *t = (double *)bt.buf, *acc = (double *)ba.buf, *gyr = (double *)bg.buf;
    Py_ssize_t last_pos = -1;
    long long last_line = 0;
    int status = 0;
    Gil gil = {PyEval_SaveThread()};
    const char *end = data + n;
    while (pos < n) {
        const char *line = data + pos;
        const char *q = line;
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        if (q < end && *q == '\r')
            q++;
        if (q == end || *q == '\n') { /* blank line */
            pos = (q == end ? end : q + 1) - data;
            lineno++;
            continue;
        }
        if (row >= cap) {
            status = 2;
            break;
        }
        double v[N_TARGET];
        int ok = 1;
        Py_ssize_t field = 0;
        const char *c = line;
        for (;;) {
            if (field < n_fields && map[field] != SKIP) {
                if (parse_plain(&c, end, &v[map[field]]) != 0 && parse_number(&c, end, &v[map[field]], &gil) < 0) {
                    ok = 0;
                    break;
                }
            } else {
                while (c < end && *c != ',' && *c != '\n' && *c != '\r') {
                    unsigned char b = (unsigned char)*c;
                    if ((b < 0x20 && b != '\t') || b >= 0x7F) {
                        ok = 0;
                        break;
                    }
                    c++;
                }
                if (!ok)
                    break;
            }
            field++;
            if (c < end && *c == ',') {
                c++;
                continue;
            }
            if (c < end && *c == '\r')
                c++;
            if (c < end && *c != '\n')
                ok = 0; /* a stray character after a number, or a lone CR */
            break;
        }
        if (!ok || field != n_fields || !(v[0] > prev_t)) {
            status = 1;
            break;
        }
        t[row] = v[0];
        acc[3 * row] = v[1], acc[3 * row + 1] = v[2], acc[3 * row + 2] = v[3];
        gyr[3 * row] = v[4], gyr[3 * row + 1] = v[5], gyr[3 * row + 2] = v[6];
        prev_t = v[0];
        last_pos = pos, last_line = lineno;
        row++;
        pos = (c < end ? c + 1 : end) - data;
        lineno++;
    }
    PyEval_RestoreThread(gil.ts);
    result = Py_BuildValue("(nnLdnLi)", pos, row, lineno, prev_t, last_pos, last_line, status);
done:
    PyBuffer_Release(&buf);
    if (bt.obj)
        PyBuffer_Release(&bt);
    if (ba.obj)
        PyBuffer_Release(&ba);
    if (bg.obj)
        PyBuffer_Release(&bg);
    if (bm.obj)
        PyBuffer_Release(&bm);
    return result;
}

/* "%.8g" of a finite double v into out (returns length): the 8-digit mantissa is v scaled by an exact
 * power of ten and rounded half-even in x87 extended precision (64-bit mantissa). For IMU values
 * (a 16-bit count times a power-of-two LSB) the scaled product is exact, so the text is printf's;
 * for others it differs from printf only within ~1e-19 (relative) of a rounding tie. Falls back
 * to snprintf where long double is no wider than double. */
static int
fmt_g8(double v, char *out)
{
#if LDBL_MANT_DIG >= 64
    if (v == 0.0) {
        if (signbit(v)) {
            memcpy(out, "-0", 2);
            return 2;
        }
        out[0] = '0';
        return 1;
    }
    static const long double P10[28] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
                                        1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
                                        1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
    long double a = fabsl((long double)v);
    int e = (int)floor(log10((double)a));
    long long d = 0;
    for (int tries = 0; tries < 3; tries++) {
        int k = 7 - e;
        if (k > 27 || k < -27)
            goto fallback;
        long double scaled = k >= 0 ? a * P10[k] : a / P10[-k];
        d = (long long)rintl(scaled);
        if (d >= 100000000LL)
            e++;
        else if (d < 10000000LL)
            e--;
        else
            break;
    }
    if (d < 10000000LL || d >= 100000000LL)
        goto fallback;
    char dig[8];
    for (int i = 7; i >= 0; i--) {
        dig[i] = (char)('0' + d % 10);
        d /= 10;
    }
    int nd = 8;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    int len = 0;
    if (v < 0)
        out[len++] = '-';
    if (e < -4 || e >= 8) { /* d.ddddddde[+-]XX */
        out[len++] = dig[0];
        if (nd > 1) {
            out[len++] = '.';
            memcpy(out + len, dig + 1, (size_t)(nd - 1));
            len += nd - 1;
        }
        out[len++] = 'e';
        out[len++] = e < 0 ? '-' : '+';
        int ae = e < 0 ? -e : e;
        if (ae >= 100)
            out[len++] = (char)('0' + ae / 100);
        out[len++] = (char)('0' + ae / 10 % 10);
        out[len++] = (char)('0' + ae % 10);
    } else if (e < 0) { /* 0.000ddd */
        out[len++] = '0';
        out[len++] = '.';
        for (int i = 0; i < -e - 1; i++)
            out[len++] = '0';
        memcpy(out + len, dig, (size_t)nd);
        len += nd;
    } else { /* ddd.ddd */
        memcpy(out + len, dig, (size_t)(e + 1));
        len += e + 1;
        if (nd > e + 1) {
            out[len++] = '.';
            memcpy(out + len, dig + e + 1, (size_t)(nd - e - 1));
            len += nd - e - 1;
        }
    }
    return len;
fallback:
#endif
    return snprintf(out, 32, "%.8g", v);
}

/* "%.6f" of a finite double t (|t| < 9e12): microseconds rounded half-even in extended precision. */
static int
fmt_f6(double t, char *out)
{
#if LDBL_MANT_DIG >= 64
    if (fabs(t) < 9e12) {
        long double us = rintl((long double)t * 1000000.0L);
        int neg = signbit(t) != 0;
        unsigned long long u = (unsigned long long)fabsl(us);
        char tmp[32];
        int n = 0;
        for (int i = 0; i < 6; i++) {
            tmp[n++] = (char)('0' + u % 10);
            u /= 10;
        }
        tmp[n++] = '.';
        do {
            tmp[n++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        int len = 0;
        if (neg)
            out[len++] = '-';
        while (n)
            out[len++] = tmp[--n];
        return len;
    }
#endif
    return snprintf(out, 400, "%.6f", t);
}

PyDoc_STRVAR(format_rows_doc,
             "format_rows(time_s, values) -> bytes\n--\n\n"
             "The canonical IMU CSV rows of time_s (N,) and values (N, 6) float64: time with 6 decimals\n"
             "(\"%.6f\"), the six values with 8 significant digits (\"%.8g\"), comma-separated, one row per\n"
             "line; the text Python's %-formatting gives (see fmt_g8 for the one caveat).  Finite values only.");

static PyObject *
format_rows(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "format_rows expected 2 arguments, got %zd", nargs);
        return NULL;
    }
    Py_buffer bt = {0}, bv = {0};
    PyObject *out = NULL;
    if (PyObject_GetBuffer(args[0], &bt, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &bv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        goto done;
    if (strcmp(bt.format, "d") != 0 || strcmp(bv.format, "d") != 0 || bv.len != 6 * bt.len) {
        PyErr_SetString(PyExc_ValueError, "format_rows expected float64 time_s (N,) and values (N, 6)");
        goto done;
    }
    Py_ssize_t n = bt.len / (Py_ssize_t)sizeof(double);
    const double *t = (const double *)bt.buf, *v = (const double *)bv.buf;
    /* a row: "%.6f" of a finite double is at most ~330 chars; "%.8g" at most 15 */
    size_t cap = (size_t)n * 120 + 64, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        PyErr_NoMemory();
        goto done;
    }
    int ok = 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && ok; i++) {
        if (cap - len < 512) {
            size_t ncap = cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                ok = 0;
                break;
            }
            buf = nb, cap = ncap;
        }
        len += (size_t)fmt_f6(t[i], buf + len);
        for (int c = 0; c < 6; c++) {
            buf[len++] = ',';
            len += (size_t)fmt_g8(v[6 * i + c], buf + len);
        }
        buf[len++] = '\n';
    }
    Py_END_ALLOW_THREADS
    if (!ok) {
        free(buf);
        PyErr_NoMemory();
        goto done;
    }
    out = PyBytes_FromStringAndSize(buf, (Py_ssize_t)len);
    free(buf);
done:
    if (bt.obj)
        PyBuffer_Release(&bt);
    if (bv.obj)
        PyBuffer_Release(&bv);
    return out;
}

static PyMethodDef module_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL, scan_doc},
    {"format_rows", (PyCFunction)(void (*)(void))format_rows, METH_FASTCALL, format_rows_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef csvscan_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "legrep._csvscan",
    .m_doc = "Fast path of legrep's IMU CSV reader (see host/_csvscan.c).",
    .m_size = 0,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__csvscan(void)
{
    return PyModuleDef_Init(&csvscan_module);
}
