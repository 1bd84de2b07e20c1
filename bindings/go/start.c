/*
 * The C side of the package: where a pool starts, before Go's runtime exists.
 *
 * Serve, in the process the user started, execs the same program again (same pid)
 * with the pool's parameters in FCGIPM_MANAGE_VARIABLE. In that image this
 * constructor runs before Go's runtime has started a thread, so the library may
 * manage: pm_manage does not return in the manager (it exits here once the pool has
 * stopped), and returns in each worker it forks, which then goes on to start Go's
 * runtime and run main afresh, where Serve finds itself a worker. A program the
 * fcgi-pm program exec'd as a worker (FCGI_PM_MANAGER_PID names its parent) is
 * adopted here the same way. Nothing else of Go runs in the manager.
 */
/* cgo's declarations first: _GoString_, which start.h uses (the export header
 * includes start.h itself, through worker.go's preamble). */
#include "_cgo_export.h"
#include "start.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fcgipm_start fcgipm_started = {FCGIPM_NONE, NULL, -1, 0, 0, {0}};

static void failed(pm_t *pm, int code, const char *what) {
    fcgipm_started.state = FCGIPM_FAILED;
    fcgipm_started.code = code;
    fcgipm_started.sys_errno = pm && code == PM_ESYS ? pm_errno(pm) : 0;
    const char *msg = pm && *pm_errmsg(pm) ? pm_errmsg(pm) : what;
    snprintf(fcgipm_started.message, sizeof fcgipm_started.message, "%s", msg);
}

/* pm_manage writes the process title over argv's memory: Go's os.Args is read from
 * the same array later, so each argument is given a copy of its own first. */
static void keep_arguments(int argc, char **argv) {
    for (int i = 0; argv && i < argc; ++i) {
        char *copy = argv[i] ? strdup(argv[i]) : NULL;
        if (copy)
            argv[i] = copy;
    }
}

/* TERM and HUP back at their default actions, as Go's runtime expects to find them:
 * the Go side takes them with os/signal and tells the library (pm_request_stop). */
static void signals_for_go(void) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGTERM, &dfl, NULL);
    sigaction(SIGHUP, &dfl, NULL);
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX in place (Serve writes '%', newline and control bytes so). */
static int unescape(char *s) {
    char *out = s;
    for (; *s; ++s) {
        if (*s != '%') {
            *out++ = *s;
            continue;
        }
        int hi = hex_digit(s[1]), lo = hi < 0 ? -1 : hex_digit(s[2]);
        if (lo < 0)
            return -1;
        *out++ = (char)(hi * 16 + lo);
        s += 2;
    }
    *out = '\0';
    return 0;
}

/* Each "name=value" line of spec, set on pm. */
static int set_parameters(pm_t *pm, char *spec) {
    for (char *line = spec; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (!eq || unescape(eq + 1) != 0) {
            failed(NULL, PM_EINTERNAL, "fcgipm: the parameters handed over across exec are garbled");
            return -1;
        }
        *eq = '\0';
        int rc = pm_parameter(pm, line, eq + 1);
        if (rc < 0) {
            failed(pm, rc, "fcgipm: a parameter was refused");
            return -1;
        }
        line = next;
    }
    return 0;
}

/* spec and listen_value are copies, spec is written over. */
static void start_pool(char *spec, const char *listen_value) {
    char *end = NULL;
    long fd = listen_value ? strtol(listen_value, &end, 10) : -1;
    if (!listen_value || !*listen_value || *end || fd < 0) {
        failed(NULL, PM_EINTERNAL, "fcgipm: the listening socket was not handed over across exec");
        return;
    }
    pm_t *pm = pm_create();
    if (!pm) {
        failed(NULL, PM_ENOMEM, "fcgipm: out of memory");
        return;
    }
    int rc = set_parameters(pm, spec);
    if (rc == 0)
        rc = pm_parameter(pm, "no_exit", "1");  /* the Go side ends its workers itself */
    if (rc == 0)
        rc = pm_manage(pm);
    if (rc == PM_WORKER) {
        fcgipm_started.state = FCGIPM_WORKER;
        fcgipm_started.pm = pm;
        fcgipm_started.listen_fd = (int)fd;
        signals_for_go();
        return;
    }
    if (rc == PM_MANAGER_DONE) {  /* the manager, once its pool has stopped */
        int status = pm_exit_status(pm);
        pm_destroy(pm);
        exit(status);
    }
    if (rc >= 0)  /* PM_SINGLE_PROCESS: Serve never asks for a pool of 0 */
        failed(NULL, PM_EINTERNAL, "fcgipm: pm_manage did not start a pool");
    else if (fcgipm_started.state != FCGIPM_FAILED)
        failed(pm, rc, "fcgipm: pm_manage failed");
    pm_destroy(pm);
    close((int)fd);  /* no pool: the socket refuses connections (Serve removes its file) */
}

/* FCGI_PM_MANAGER_PID naming the parent: a worker of a manager in exec mode. */
static void adopt(const char *manager) {
    char *end = NULL;
    long pid = strtol(manager, &end, 10);
    if (!*manager || *end || pid != (long)getppid())
        return;  /* stale: pm_manage takes it out of the environment if it runs */
    pm_t *pm = pm_create();
    if (!pm) {
        failed(NULL, PM_ENOMEM, "fcgipm: out of memory");
        return;
    }
    int rc = pm_parameter(pm, "no_exit", "1");
    if (rc == 0)
        rc = pm_manage(pm);
    if (rc == PM_WORKER) {
        fcgipm_started.state = FCGIPM_ADOPTED;
        fcgipm_started.pm = pm;
        fcgipm_started.listen_fd = 0;
        signals_for_go();
        return;
    }
    /* Not a pool of its own either: Serve reports it. */
    failed(rc < 0 ? pm : NULL, rc < 0 ? rc : PM_EINTERNAL, "fcgipm: the manager's worker was not adopted");
    pm_destroy(pm);
}

/* glibc passes a constructor of the executable main's arguments. */
__attribute__((constructor)) static void fcgipm_start_before_go(int argc, char **argv, char **envp) {
    (void)envp;
    const char *spec = getenv(FCGIPM_MANAGE_VARIABLE);
    if (spec || getenv("FCGI_PM_MANAGER_PID"))
        keep_arguments(argc, argv);
    if (spec) {
        const char *listen_value = getenv(FCGIPM_LISTEN_VARIABLE);
        char *spec_copy = strdup(spec), *listen_copy = listen_value ? strdup(listen_value) : NULL;
        /* Neither is the program's to see, nor its children's. */
        unsetenv(FCGIPM_MANAGE_VARIABLE);
        unsetenv(FCGIPM_LISTEN_VARIABLE);
        if (spec_copy && (listen_copy || !listen_value))
            start_pool(spec_copy, listen_copy);
        else
            failed(NULL, PM_ENOMEM, "fcgipm: out of memory");
        free(spec_copy);
        free(listen_copy);
        return;
    }
    const char *manager = getenv("FCGI_PM_MANAGER_PID");
    if (manager)
        adopt(manager);
}

/* s as a C string in buf (the library keeps at most 191 bytes of a field). A Go
 * string is {p, n} here as in _cgo_export.h's GoString. */
static const char *c_string(char (*buf)[192], _GoString_ s) {
    size_t n = s.n < (ptrdiff_t)sizeof *buf ? (size_t)s.n : sizeof *buf - 1;
    if (n > 0)
        memcpy(*buf, s.p, n);
    (*buf)[n] = '\0';
    return *buf;
}

int fcgipm_pre_dispatch(pm_t *pm, _GoString_ method, _GoString_ uri, _GoString_ remote, int *stopping) {
    char m[192], u[192], r[192];
    pm_set_request(pm, c_string(&m, method), c_string(&u, uri), c_string(&r, remote));
    int rc = pm_pre_dispatch(pm);
    *stopping = pm_worker_stopping(pm);
    return rc;
}

int fcgipm_post_dispatch(pm_t *pm, int *stopping) {
    int rc = pm_post_dispatch(pm);
    *stopping = pm_worker_stopping(pm);
    return rc;
}

static void log_line(pm_t *pm, const char *line, void *user) {
    (void)pm;
    (void)user;
    fcgipmGoLog((char *)line);
}

void fcgipm_log_to_go(pm_t *pm, int on) {
    pm_set_notify_hook(pm, on ? log_line : NULL, NULL);
}

void fcgipm_notify(pm_t *pm, const char *line) {
    pm_notify(pm, "%s", line);
}
