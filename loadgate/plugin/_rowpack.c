/* The recorder's request listener in C: the same packed row as Columns.listener's Python closure
 * (loadgate/plugin/columns.py), without a Python frame per request.
 *
 * Locust fires ``handler(**kwargs)``; a type with only tp_call receives Locust's dict as it is, so
 * the fast path allocates nothing but what the Python listener's helpers allocate. Anything unusual
 * goes to Python, and the row is still the Python listener's:
 *   - a positional call, or a missing argument: the Python listener itself (``fallback``);
 *   - a value that does not pack as struct.pack would pack it: ``slow`` (Columns.append_checked).
 * Built only where it can be (setup.py marks it optional); columns.py uses the Python listener when
 * this module is absent, or when LOADGATE_PURE_PYTHON is set.
 *
 * The row's layout is not written here: columns.py hands it over at init (``layout``: the spec's
 * (column, typecode) pairs in row order, as its struct format packs them), and each value goes to its
 * column's offset as that column's type. This file knows only how to compute each named column; a
 * column it does not know, or a type it cannot give a value, is an error at init (tests/test_row_spec.py).
 *
 * Only CPython's public C API (no underscore-prefixed function), and of Locust only what the request
 * event passes and the public ``response.status_code``: a Locust or CPython release that changes their
 * internals leaves this file as it is (tests/test_rowpack.py checks both).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>
#include <stdint.h>

#if PY_BIG_ENDIAN
#error "rows are packed little-endian ('<'); this build is big-endian: the Python listener is used"
#endif

static PyObject *s_request_type, *s_name, *s_response_time, *s_response_length, *s_response,
    *s_exception, *s_start_time, *s_status_code, *s_number, *s_first, *s_period, *s_late_ms,
    *s_omitted, *s_period_ms, *s_wake, *s_tolerance;

/* The keyword arguments the listener reads, in the order Locust passes them. */
enum { K_TYPE, K_NAME, K_RT, K_LENGTH, K_RESPONSE, K_EXCEPTION, K_START, K_COUNT };
static PyObject **const kw_names[K_COUNT] = {&s_request_type, &s_name, &s_response_time, &s_response_length,
                                            &s_response, &s_exception, &s_start_time};

/* The columns this listener can compute, by their names in columns.py's spec; the first ones any request
 * has, the last three only a paced user's (the schedule). Each is a float (a double) or an integer. */
enum { C_TS, C_RT, C_LENGTH, C_CODE, C_USERS, C_KEY, C_EXC, C_USER, C_REQ, C_INTENDED, C_OMITTED, C_PERIOD,
       C_COUNT };
#define C_FIRST_SCHEDULE C_INTENDED
static const char *const column_names[C_COUNT] = {"ts", "rt", "length", "code", "users", "key", "exc", "user",
                                                  "req", "intended", "omitted", "period"};
static const char column_is_float[C_COUNT] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1};
#define MAX_ROW 256

/* Where a column goes in the row and as what: 'd' (double), 'q' (int64), 'i' (int32); 0: not in the layout. */
typedef struct { char type; unsigned char offset; } Slot;

typedef struct {
    PyObject_HEAD
    Slot slots[C_COUNT];
    Py_ssize_t row_size;
    PyObject *rows;            /* bytearray: the packed rows */
    PyObject *keys;            /* dict: request_type -> dict: name -> key code */
    PyObject *new_key;         /* Columns.new_key(request_type, name) -> int */
    PyObject *exception_code;  /* Columns.exception_code(exception) -> int */
    PyObject *users;           /* len() is the runner's user count */
    PyObject *getcurrent;      /* greenlet.getcurrent */
    PyObject *by_greenlet;     /* dict: greenlet -> UserState (pacing.USERS) */
    PyObject *state_of;        /* pacing.state_of(greenlet) -> UserState */
    PyObject *current;         /* dict: greenlet -> requirement code, or None: not attributed */
    PyObject *slow;            /* Columns.append_checked(...) */
    PyObject *counts;          /* list [paced iterations, started late] */
    PyObject *fallback;        /* the Python listener */
    int paced;
} Listener;

/* struct.pack's conversions; 0 on success, -1 (no exception set) where struct.pack would refuse. */
static int as_double(PyObject *v, double *out) {
    double x = PyFloat_AsDouble(v);
    if (x == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
    *out = x;
    return 0;
}

static int as_int64(PyObject *v, long long *out) {
    PyObject *i;
    if (PyLong_Check(v)) { Py_INCREF(v); i = v; }
    else if (PyIndex_Check(v)) { i = PyNumber_Index(v); if (i == NULL) { PyErr_Clear(); return -1; } }
    else return -1;
    long long x = PyLong_AsLongLong(i);
    Py_DECREF(i);
    if (x == -1 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
    *out = x;
    return 0;
}

/* ``value or 0`` packed as an integer */
static int or_zero_int64(PyObject *v, long long *out) {
    if (v == Py_None) { *out = 0; return 0; }
    int t = PyObject_IsTrue(v);
    if (t < 0) { PyErr_Clear(); return -1; }
    if (!t) { *out = 0; return 0; }
    return as_int64(v, out);
}

/* An int attribute of a UserState (or the int a callable returned), as a C long; -1 with an exception set on error. */
static int long_of(PyObject *v, long long *out) {
    if (v == NULL) return -1;
    long long x = PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    *out = x;
    return 0;
}

static int attr_double(PyObject *obj, PyObject *name, double *out) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) return -1;
    double x = PyFloat_AsDouble(v);
    Py_DECREF(v);
    if (x == -1.0 && PyErr_Occurred()) return -1;
    *out = x;
    return 0;
}

static int attr_long(PyObject *obj, PyObject *name, long long *out) {
    PyObject *v = PyObject_GetAttr(obj, name);
    int r = long_of(v, out);
    Py_XDECREF(v);
    return r;
}

static int append_row(PyObject *rows, const char *row, Py_ssize_t size) {
    Py_ssize_t n = PyByteArray_GET_SIZE(rows);
    if (PyByteArray_Resize(rows, n + size) < 0) return -1;
    memcpy(PyByteArray_AS_STRING(rows) + n, row, (size_t)size);
    return 0;
}

/* The values of the keyword arguments the listener reads, in one pass over Locust's dict: its keys are the
 * interned names (``fire(**kwargs)`` of identifiers), matched by identity. A name not found that way (absent,
 * or a key equal to it but built otherwise) is looked up as before: the required ones with errors raised
 * (-1), the optional ones as PyDict_GetItem does. Borrowed references; NULL where absent. */
static int read_kwargs(PyObject *kwargs, PyObject **vals) {
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    int found = 0;
    for (int i = 0; i < K_COUNT; i++) vals[i] = NULL;
    while (found < K_COUNT && PyDict_Next(kwargs, &pos, &k, &v)) {
        for (int i = 0; i < K_COUNT; i++) {
            if (k == *kw_names[i]) {
                if (vals[i] == NULL) found++;
                vals[i] = v;
                break;
            }
        }
    }
    for (int i = 0; found < K_COUNT && i < K_COUNT; i++) {
        if (vals[i] != NULL) continue;
        if (i <= K_LENGTH) {
            vals[i] = PyDict_GetItemWithError(kwargs, *kw_names[i]);
            if (vals[i] == NULL && PyErr_Occurred()) return -1;
        } else {
            vals[i] = PyDict_GetItem(kwargs, *kw_names[i]);
        }
    }
    return 0;
}

/* ``getattr(response, "status_code", 0)``: a new reference, NULL with an exception set. Only the public
 * attribute, as the Python listener reads it (FastHttpUser's is a property: its Python frame runs here too).
 * None has no such attribute: 0, without raising and clearing the AttributeError. */
static PyObject *status_code_of(PyObject *response) {
    if (response == Py_None) return PyLong_FromLong(0);
    PyObject *code = PyObject_GetAttr(response, s_status_code);
    if (code == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        return PyLong_FromLong(0);
    }
    return code;
}

/* A value into its column's place in ``row``, as struct.pack would pack it with the column's typecode;
 * -1 where struct.pack would refuse it (an integer out of the column's range): the careful path packs it. */
static int put_long(char *row, Slot s, long long v) {
    if (s.type == 'q') { int64_t x = (int64_t)v; memcpy(row + s.offset, &x, sizeof x); }
    else if (s.type == 'i') {
        if (v < INT32_MIN || v > INT32_MAX) return -1;
        int32_t x = (int32_t)v;
        memcpy(row + s.offset, &x, sizeof x);
    }
    return 0;
}

static void put_double(char *row, Slot s, double v) {
    if (s.type == 'd') memcpy(row + s.offset, &v, sizeof v);
}

static PyObject *
Listener_call(Listener *self, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || kwargs == NULL || !PyDict_CheckExact(kwargs))
        return PyObject_Call(self->fallback, args, kwargs);
    PyObject *kw[K_COUNT];
    if (read_kwargs(kwargs, kw) < 0) return NULL;
    PyObject *request_type = kw[K_TYPE], *name = kw[K_NAME], *response_time = kw[K_RT],
        *response_length = kw[K_LENGTH], *response = kw[K_RESPONSE], *exception = kw[K_EXCEPTION],
        *start_time = kw[K_START];
    if (request_type == NULL || name == NULL || response_time == NULL || response_length == NULL)
        return PyObject_Call(self->fallback, args, kwargs);  /* a missing argument: Python says which */
    /* the optional ones default to None */
    if (response == NULL) response = Py_None;
    if (exception == NULL) exception = Py_None;
    if (start_time == NULL) start_time = Py_None;

    PyObject *result = NULL, *key_obj = NULL, *code = NULL, *g = NULL, *user = NULL;
    long long key, exc = 0, req = 0, number;

    /* key = keys[request_type][name], else new_key(request_type, name) */
    PyObject *names = PyDict_GetItemWithError(self->keys, request_type);
    PyObject *found = NULL;
    if (names != NULL && PyDict_Check(names))
        found = PyDict_GetItemWithError(names, name);
    if (found == NULL) {
        if (PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_TypeError)) return NULL;  /* unhashable: new_key says */
            PyErr_Clear();
        }
        key_obj = PyObject_CallFunctionObjArgs(self->new_key, request_type, name, NULL);
        if (long_of(key_obj, &key) < 0) goto done;
    } else if (long_of(found, &key) < 0) {
        goto done;
    }

    code = status_code_of(response);
    if (code == NULL) goto done;

    g = PyObject_CallNoArgs(self->getcurrent);
    if (g == NULL) goto done;
    user = PyDict_GetItemWithError(self->by_greenlet, g);
    if (user != NULL) {
        Py_INCREF(user);
    } else {
        if (PyErr_Occurred()) goto done;
        user = PyObject_CallOneArg(self->state_of, g);
        if (user == NULL) goto done;
    }
    if (exception != Py_None) {
        PyObject *e = PyObject_CallOneArg(self->exception_code, exception);
        int r = long_of(e, &exc);
        Py_XDECREF(e);
        if (r < 0) goto done;
    }
    if (self->current != Py_None) {
        PyObject *r = PyDict_GetItemWithError(self->current, g);
        if (r == NULL && PyErr_Occurred()) goto done;
        if (r != NULL && long_of(r, &req) < 0) goto done;
    }
    Py_ssize_t n_users = PyObject_Size(self->users);
    if (n_users < 0) goto done;
    if (attr_long(user, s_number, &number) < 0) goto done;

    double ts = 0.0, rt = 0.0;
    long long length = 0, code64 = 0;
    int fast = as_double(start_time, &ts) == 0 && as_double(response_time, &rt) == 0
        && or_zero_int64(response_length, &length) == 0;
    if (fast) {
        int t = PyObject_IsTrue(code);
        if (t < 0) { PyErr_Clear(); fast = 0; }
        else if (t) fast = as_int64(code, &code64) == 0;
    }
    const Slot *at = self->slots;
    char row[MAX_ROW];
    put_double(row, at[C_TS], ts);
    put_double(row, at[C_RT], rt);
    if (!fast || put_long(row, at[C_LENGTH], length) < 0 || put_long(row, at[C_CODE], code64) < 0
            || put_long(row, at[C_USERS], n_users) < 0 || put_long(row, at[C_KEY], key) < 0
            || put_long(row, at[C_EXC], exc) < 0 || put_long(row, at[C_USER], number) < 0
            || put_long(row, at[C_REQ], req) < 0)
        goto slow;
    if (!self->paced) {
        if (append_row(self->rows, row, self->row_size) < 0) goto done;
        result = Py_NewRef(Py_None);
        goto done;
    }

    /* paced: intended, omitted (the first request of an iteration), period; then count the iteration */
    PyObject *first_obj = PyObject_GetAttr(user, s_first);
    if (first_obj == NULL) goto done;
    int first = PyObject_IsTrue(first_obj);
    Py_DECREF(first_obj);
    if (first < 0) goto done;
    PyObject *period = PyObject_GetAttr(user, s_period);
    if (period == NULL) goto done;
    double intended = NAN, period_ms, late;
    int period_none = period == Py_None;
    Py_DECREF(period);
    if (!period_none) {
        if (attr_double(user, s_late_ms, &late) < 0) goto done;
        intended = rt + late;
    }
    long long omitted = -1;
    if (first && attr_long(user, s_omitted, &omitted) < 0) goto done;
    if (attr_double(user, s_period_ms, &period_ms) < 0) goto done;
    if (put_long(row, at[C_OMITTED], omitted) < 0) goto slow;
    put_double(row, at[C_INTENDED], intended);
    put_double(row, at[C_PERIOD], period_ms);
    if (append_row(self->rows, row, self->row_size) < 0) goto done;
    if (first) {
        double wake, tolerance;
        if (PyObject_SetAttr(user, s_first, Py_False) < 0) goto done;
        if (attr_double(user, s_wake, &wake) < 0 || attr_double(user, s_tolerance, &tolerance) < 0) goto done;
        for (Py_ssize_t i = 0; i < 2; i++) {
            if (i == 1 && !(ts - wake > tolerance)) break;
            PyObject *old = PyList_GetItem(self->counts, i);
            if (old == NULL) goto done;
            PyObject *one = PyLong_FromLong(1);
            PyObject *sum = one ? PyNumber_Add(old, one) : NULL;
            Py_XDECREF(one);
            if (sum == NULL || PyList_SetItem(self->counts, i, sum) < 0) goto done;
        }
    }
    result = Py_NewRef(Py_None);
    goto done;

slow: {
        PyObject *u = PyLong_FromSsize_t(n_users), *k = PyLong_FromLongLong(key), *e = PyLong_FromLongLong(exc),
            *q = PyLong_FromLongLong(req);
        if (u && k && e && q)
            result = PyObject_CallFunctionObjArgs(self->slow, start_time, response_time, response_length, code,
                                                  u, k, e, q, user, NULL);
        Py_XDECREF(u); Py_XDECREF(k); Py_XDECREF(e); Py_XDECREF(q);
    }
done:
    Py_XDECREF(key_obj);
    Py_XDECREF(code);
    Py_XDECREF(g);
    Py_XDECREF(user);
    return result;
}

#ifdef LOADGATE_TIMING
/* Only in bench/recorder_split.py's build (-DLOADGATE_TIMING), never in an installed one: the time each
 * call spends in the listener, read at the end of a real run (``_rowpack.timing()``). */
#include <time.h>
static long long timed_ns, timed_calls;

static PyObject *
Listener_timed(Listener *self, PyObject *args, PyObject *kwargs)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    PyObject *result = Listener_call(self, args, kwargs);
    clock_gettime(CLOCK_MONOTONIC, &b);
    timed_ns += (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    timed_calls++;
    return result;
}

static PyObject *timing(PyObject *module, PyObject *unused) { return Py_BuildValue("(LL)", timed_ns, timed_calls); }
static PyMethodDef module_methods[] = {
    {"timing", timing, METH_NOARGS, "(nanoseconds spent in the listener, calls) so far"}, {NULL}};
#define TP_CALL Listener_timed
#define MODULE_METHODS module_methods
#else
#define TP_CALL Listener_call
#define MODULE_METHODS NULL
#endif

/* The spec's layout, ((column, typecode), ...) in row order, as the listener's slots: each column's offset
 * (struct's '<': no padding) and type. 0, or -1 with an exception that names the column it cannot pack. */
static int read_layout(Listener *self, PyObject *layout, int paced) {
    PyObject *seq = PySequence_Fast(layout, "layout must be a sequence of (column, typecode) pairs");
    if (seq == NULL) return -1;
    Slot slots[C_COUNT] = {{0, 0}};
    Py_ssize_t offset = 0;
    int ok = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        const char *name = NULL, *type = NULL;
        if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 2 && PyUnicode_Check(PyTuple_GET_ITEM(item, 0))
                && PyUnicode_Check(PyTuple_GET_ITEM(item, 1))) {
            name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(item, 0));
            type = name ? PyUnicode_AsUTF8(PyTuple_GET_ITEM(item, 1)) : NULL;
            if (type == NULL) goto out;
        } else {
            PyErr_SetString(PyExc_TypeError, "layout: each column is a (name, typecode) pair of str");
            goto out;
        }
        int c = 0;
        while (c < C_COUNT && strcmp(column_names[c], name) != 0) c++;
        if (c == C_COUNT || slots[c].type) {
            PyErr_Format(PyExc_ValueError, "the C listener cannot pack column '%s': %s (teach _rowpack.c to compute "
                         "it, or set LOADGATE_PURE_PYTHON=1)", name,
                         c == C_COUNT ? "it knows no such column" : "it is in the layout twice");
            goto out;
        }
        int size = strcmp(type, "d") == 0 ? 8 : strcmp(type, "q") == 0 ? 8 : strcmp(type, "i") == 0 ? 4 : 0;
        if (size == 0 || (type[0] == 'd') != column_is_float[c]) {
            PyErr_Format(PyExc_TypeError, "the C listener cannot pack column '%s' as '%s' (it has %s for it)", name,
                         type, column_is_float[c] ? "a float: 'd'" : "an integer: 'q' or 'i'");
            goto out;
        }
        if (c >= C_FIRST_SCHEDULE && !paced) {
            PyErr_Format(PyExc_ValueError, "column '%s' is a paced user's: not in an unpaced layout", name);
            goto out;
        }
        if (offset + size > MAX_ROW) {
            PyErr_SetString(PyExc_ValueError, "the layout's row is longer than the C listener's buffer");
            goto out;
        }
        slots[c].type = type[0];
        slots[c].offset = (unsigned char)offset;
        offset += size;
    }
    memcpy(self->slots, slots, sizeof slots);
    self->row_size = offset;
    ok = 1;
out:
    Py_DECREF(seq);
    return ok ? 0 : -1;
}

static int
Listener_init(Listener *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"rows", "keys", "new_key", "exception_code", "users", "getcurrent", "by_greenlet",
                             "state_of", "current", "slow", "counts", "fallback", "paced", "layout", NULL};
    PyObject *o[12], *layout;
    int paced;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!OOOOO!OOOO!OpO", kwlist, &PyByteArray_Type, &o[0],
                                     &PyDict_Type, &o[1], &o[2], &o[3], &o[4], &o[5], &PyDict_Type, &o[6],
                                     &o[7], &o[8], &o[9], &PyList_Type, &o[10], &o[11], &paced, &layout))
        return -1;
    if (o[8] != Py_None && !PyDict_Check(o[8])) {
        PyErr_SetString(PyExc_TypeError, "current must be a dict or None");
        return -1;
    }
    if (PyList_GET_SIZE(o[10]) != 2) {
        PyErr_SetString(PyExc_ValueError, "counts must be a list of two ints");
        return -1;
    }
    if (read_layout(self, layout, paced) < 0)
        return -1;
    PyObject **slots[12] = {&self->rows, &self->keys, &self->new_key, &self->exception_code, &self->users,
                            &self->getcurrent, &self->by_greenlet, &self->state_of, &self->current, &self->slow,
                            &self->counts, &self->fallback};
    for (int i = 0; i < 12; i++) {  /* (__init__ may run again: drop what it held) */
        PyObject *old = *slots[i];
        *slots[i] = Py_NewRef(o[i]);
        Py_XDECREF(old);
    }
    self->paced = paced;
    return 0;
}

static int
Listener_traverse(Listener *self, visitproc visit, void *arg)
{
    Py_VISIT(self->rows); Py_VISIT(self->keys); Py_VISIT(self->new_key); Py_VISIT(self->exception_code);
    Py_VISIT(self->users); Py_VISIT(self->getcurrent); Py_VISIT(self->by_greenlet); Py_VISIT(self->state_of);
    Py_VISIT(self->current); Py_VISIT(self->slow); Py_VISIT(self->counts); Py_VISIT(self->fallback);
    return 0;
}

static int
Listener_clear(Listener *self)
{
    Py_CLEAR(self->rows); Py_CLEAR(self->keys); Py_CLEAR(self->new_key); Py_CLEAR(self->exception_code);
    Py_CLEAR(self->users); Py_CLEAR(self->getcurrent); Py_CLEAR(self->by_greenlet); Py_CLEAR(self->state_of);
    Py_CLEAR(self->current); Py_CLEAR(self->slow); Py_CLEAR(self->counts); Py_CLEAR(self->fallback);
    return 0;
}

static void
Listener_dealloc(Listener *self)
{
    PyObject_GC_UnTrack(self);
    Listener_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Listener_get_paced(Listener *self, void *closure)
{
    return PyBool_FromLong(self->paced);
}

static PyObject *
Listener_get_row_size(Listener *self, void *closure)
{
    return PyLong_FromSsize_t(self->row_size);
}

static PyGetSetDef Listener_getset[] = {
    {"paced", (getter)Listener_get_paced, NULL, "whether rows carry the schedule columns", NULL},
    {"row_size", (getter)Listener_get_row_size, NULL, "bytes a row takes in the layout given at init", NULL},
    {NULL}
};

static PyTypeObject ListenerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "loadgate.plugin._rowpack.Listener",
    .tp_doc = "Locust's request listener: one packed row per request into a bytearray (see columns.py).",
    .tp_basicsize = sizeof(Listener),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Listener_init,
    .tp_call = (ternaryfunc)TP_CALL,
    .tp_traverse = (traverseproc)Listener_traverse,
    .tp_clear = (inquiry)Listener_clear,
    .tp_dealloc = (destructor)Listener_dealloc,
    .tp_getset = Listener_getset,
};

static struct PyModuleDef rowpack_module = {
    PyModuleDef_HEAD_INIT, "_rowpack", "The recorder's request listener, in C (optional).", -1, MODULE_METHODS,
};

PyMODINIT_FUNC
PyInit__rowpack(void)
{
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(s_request_type, "request_type"); INTERN(s_name, "name"); INTERN(s_response_time, "response_time");
    INTERN(s_response_length, "response_length"); INTERN(s_response, "response"); INTERN(s_exception, "exception");
    INTERN(s_start_time, "start_time"); INTERN(s_status_code, "status_code"); INTERN(s_number, "number");
    INTERN(s_first, "first"); INTERN(s_period, "period"); INTERN(s_late_ms, "late_ms");
    INTERN(s_omitted, "omitted"); INTERN(s_period_ms, "period_ms"); INTERN(s_wake, "wake");
    INTERN(s_tolerance, "tolerance");
#undef INTERN
    if (PyType_Ready(&ListenerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&rowpack_module);
    if (m == NULL) return NULL;
    if (PyModule_AddObject(m, "Listener", Py_NewRef((PyObject *)&ListenerType)) < 0) {
        Py_DECREF(&ListenerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
