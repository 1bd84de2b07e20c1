/* The C ABI from a plain C program linked to the shared library: every argument
 * check and error path, and what a caller sees without forking. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fcgi_pm.h"
#include "proc_util.h"

/* Collects log lines sent to the notify hook. */
struct log_capture {
    char lines[16][512];
    int count;
};

static void capture_line(pm_t *pm, const char *line, void *user)
{
    struct log_capture *log = user;
    (void)pm;
    if (log->count < 16)
        snprintf(log->lines[log->count++], sizeof log->lines[0], "%s", line);
}

static void test_version(void **state)
{
    char expect[32];
    (void)state;
    snprintf(expect, sizeof expect, "%d.%d.%d", PM_VERSION_MAJOR, PM_VERSION_MINOR, PM_VERSION_PATCH);
    assert_string_equal(pm_version(), expect);
    assert_int_equal(PM_VERSION_NUMBER, PM_VERSION_MAJOR * 10000 + PM_VERSION_MINOR * 100 + PM_VERSION_PATCH);
}

static void test_strerror_covers_every_code(void **state)
{
    (void)state;
    assert_string_equal(pm_strerror(PM_OK), "success");
#define CHECK(name, value, text) assert_string_equal(pm_strerror(value), text);
    PM_ERRNO_MAP(CHECK)
#undef CHECK
    assert_string_equal(pm_strerror(PM_E_LAST_), "unknown error code");
    assert_string_equal(pm_strerror(12345), "unknown error code");
}

static void test_null_handles(void **state)
{
    (void)state;
    pm_destroy(NULL);
    assert_int_equal(pm_parameter(NULL, "n_processes", "1"), PM_EINVAL);
    assert_null(pm_get_parameter(NULL, "n_processes"));
    assert_int_equal(pm_manage(NULL), PM_EINVAL);
    pm_pre_dispatch(NULL);
    pm_post_dispatch(NULL);
    assert_int_equal(pm_set_hook(NULL, PM_HOOK_MANAGER_INIT, NULL, NULL), PM_EINVAL);
    assert_int_equal(pm_set_notify_hook(NULL, NULL, NULL), PM_EINVAL);
    pm_die(NULL, "x", 0);
    pm_exit(NULL, "x", 0);
    pm_abort(NULL, "x", 0);
    assert_int_equal(pm_wait(NULL), PM_EINVAL);
    assert_int_equal(pm_write_pid_file(NULL, "/tmp/x"), PM_EINVAL);
    assert_int_equal(pm_remove_pid_file(NULL, "/tmp/x"), PM_EINVAL);
    assert_int_equal(pm_change_process_name(NULL, "x"), PM_EINVAL);
    assert_int_equal(pm_received_signal(NULL, SIGTERM), PM_EINVAL);
    pm_notify(NULL, "x");
    pm_warn(NULL, "x");
    assert_null(pm_role(NULL));
    assert_int_equal(pm_exit_status(NULL), PM_EINVAL);
    assert_string_equal(pm_errmsg(NULL), "");
}

static void test_null_strings(void **state)
{
    pm_t *pm = pm_create();
    (void)state;
    assert_int_equal(pm_parameter(pm, NULL, "1"), PM_EINVAL);
    assert_non_null(strstr(pm_errmsg(pm), "NULL"));
    assert_int_equal(pm_parameter(pm, "n_processes", NULL), PM_EINVAL);
    assert_null(pm_get_parameter(pm, NULL));
    assert_int_equal(pm_change_process_name(pm, NULL), PM_EINVAL);
    pm_notify(pm, NULL);
    assert_string_equal(pm_get_parameter(pm, "n_processes"), "0");
    pm_destroy(pm);
}

static void test_parameters(void **state)
{
    pm_t *pm = pm_create();
    (void)state;
    assert_string_equal(pm_get_parameter(pm, "die_timeout"), "60");
    assert_int_equal(pm_parameter(pm, "n_processes", "5"), 0);
    assert_string_equal(pm_get_parameter(pm, "n_processes"), "5");
    assert_int_equal(pm_parameter(pm, "die_timeout", "1.5"), 0);
    assert_string_equal(pm_get_parameter(pm, "die_timeout"), "1.5");

    assert_int_equal(pm_parameter(pm, "n_proceses", "5"), PM_EUNKNOWN);
    assert_string_equal(pm_errmsg(pm), "unknown parameter 'n_proceses'");
    assert_null(pm_get_parameter(pm, "n_proceses"));
    assert_int_equal(pm_parameter(pm, "n_processes", "lots"), PM_EBADVALUE);
    assert_string_equal(pm_errmsg(pm), "n_processes: 'lots': not a whole number");
    assert_int_equal(pm_parameter(pm, "die_timeout", "-3"), PM_ERANGE);
    assert_string_equal(pm_errmsg(pm), "die_timeout: '-3': must not be negative");
    assert_int_equal(pm_parameter(pm, "max_requests", "184467440737095516160"), PM_ERANGE);
    /* Nothing changed. */
    assert_string_equal(pm_get_parameter(pm, "n_processes"), "5");
    assert_string_equal(pm_get_parameter(pm, "die_timeout"), "1.5");
    assert_string_equal(pm_get_parameter(pm, "max_requests"), "0");

    assert_string_equal(pm_get_parameter(pm, "worker_exit"), "exit");
    assert_int_equal(pm_parameter(pm, "worker_exit", "_exit_unflushed"), 0);
    assert_string_equal(pm_get_parameter(pm, "worker_exit"), "_exit_unflushed");
    assert_int_equal(pm_parameter(pm, "worker_exit", "_exit"), 0);
    assert_string_equal(pm_get_parameter(pm, "worker_exit"), "_exit");
    assert_int_equal(pm_parameter(pm, "worker_exit", "abort"), PM_EBADVALUE);
    assert_string_equal(pm_errmsg(pm), "worker_exit: 'abort': must be one of exit|_exit|_exit_unflushed");
    pm_destroy(pm);
}

static void test_titles_and_paths_too_long(void **state)
{
    pm_t *pm = pm_create();
    char big[5000];
    (void)state;
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(pm_change_process_name(pm, big), PM_ETOOLONG);
    assert_int_equal(pm_parameter(pm, "pm_title", big), PM_ETOOLONG);
    assert_int_equal(pm_parameter(pm, "process_name", big), PM_ETOOLONG);
    assert_int_equal(pm_parameter(pm, "pid_fname", big), PM_ETOOLONG);
    assert_int_equal(pm_write_pid_file(pm, big), PM_ETOOLONG);
    assert_non_null(strstr(pm_errmsg(pm), "longer than"));
    assert_int_equal(pm_change_process_name(pm, "test_api-renamed"), 0);
    pm_destroy(pm);
}

static void test_accept_errors(void **state)
{
    pm_t *pm = pm_create();
    int fd = open("/dev/null", O_RDONLY);
    (void)state;
    assert_int_equal(pm_accept(NULL, 0), PM_EINVAL);
    assert_int_equal(pm_accept(pm, -1), PM_EINVAL);
    assert_int_equal(pm_accept(pm, fd), PM_ESYS);
    assert_string_equal(pm_errmsg(pm), "accept: Socket operation on non-socket");
    close(fd);
    pm_destroy(pm);
}

static void test_set_exec_errors(void **state)
{
    pm_t *pm = pm_create();
    char *empty[] = {"", NULL};
    char *none[] = {NULL};
    char *prog[] = {"true", NULL};
    (void)state;
    assert_int_equal(pm_set_exec(NULL, 0, prog, NULL), PM_EINVAL);
    assert_int_equal(pm_set_exec(pm, 0, NULL, NULL), PM_EINVAL);
    assert_int_equal(pm_set_exec(pm, 0, none, NULL), PM_EINVAL);
    assert_int_equal(pm_set_exec(pm, 0, empty, NULL), PM_EINVAL);
    assert_non_null(strstr(pm_errmsg(pm), "argv"));
    assert_int_equal(pm_set_exec(pm, -1, prog, NULL), PM_EINVAL);
    assert_int_equal(pm_set_exec(pm, 0, prog, NULL), 0);
    pm_destroy(pm);
}

static void test_bad_hook_and_signal(void **state)
{
    pm_t *pm = pm_create();
    (void)state;
    assert_int_equal(pm_set_hook(pm, (pm_hook_t)42, NULL, NULL), PM_EINVAL);
    assert_int_equal(pm_set_hook(pm, (pm_hook_t)-1, NULL, NULL), PM_EINVAL);
    assert_int_equal(pm_received_signal(pm, 0), PM_EINVAL);
    assert_int_equal(pm_received_signal(pm, 1000), PM_EINVAL);
    assert_int_equal(pm_received_signal(pm, SIGTERM), 0);
    pm_destroy(pm);
}

static void test_state_errors(void **state)
{
    pm_t *pm = pm_create();
    (void)state;
    assert_int_equal(pm_wait(pm), PM_ESTATE);
    assert_int_equal(pm_exit_status(pm), PM_ESTATE);
    assert_string_equal(pm_role(pm), "manager");
    /* n_processes 0: single-process mode, nothing forked. */
    assert_int_equal(pm_manage(pm), PM_SINGLE_PROCESS);
    pm_parameter(pm, "role", "server");
    pm_parameter(pm, "n_processes", "2");
    assert_int_equal(pm_manage(pm), PM_ESTATE);
    pm_destroy(pm);
}

static void test_notify_hook_format(void **state)
{
    struct log_capture log = {0};
    pm_t *pm = pm_create();
    char expect[128];
    (void)state;
    assert_int_equal(pm_set_notify_hook(pm, capture_line, &log), 0);
    pm_notify(pm, "hello %d  \n", 42);
    pm_warn(pm, "%s", "warned");
    assert_int_equal(log.count, 2);
    snprintf(expect, sizeof expect, "FastCGI: manager (pid %d): hello 42", (int)getpid());
    assert_string_equal(log.lines[0], expect);
    snprintf(expect, sizeof expect, "FastCGI: manager (pid %d): warned", (int)getpid());
    assert_string_equal(log.lines[1], expect);
    pm_destroy(pm);
}

/* Long lines, to the hook and to stderr, whole: around the size formatted on the
 * stack (512 bytes with the newline) and far past it. */
static char long_seen[4096];

static void capture_long(pm_t *pm, const char *line, void *user)
{
    (void)pm;
    (void)user;
    snprintf(long_seen, sizeof long_seen, "%s", line);
}

static void test_notify_long_lines(void **state)
{
    (void)state;
    pm_t *pm = pm_create();
    char prefix[64], msg[3001], expect[4096];
    int prefix_len = snprintf(prefix, sizeof prefix, "FastCGI: manager (pid %d): ", (int)getpid());
    int lengths[] = {510 - prefix_len, 511 - prefix_len, 512 - prefix_len, 513 - prefix_len, 3000};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        memset(msg, 'a' + (int)i, (size_t)lengths[i]);
        msg[lengths[i]] = '\0';
        snprintf(expect, sizeof expect, "%s%s", prefix, msg);

        pm_set_notify_hook(pm, capture_long, NULL);
        pm_notify(pm, "%s", msg);
        assert_string_equal(long_seen, expect);

        /* to stderr: one write, the line and its newline */
        char path[] = "/tmp/fcgi-pm-api-stderr-XXXXXX";
        int fd = mkstemp(path), saved = dup(2);
        assert_true(fd >= 0 && saved >= 0);
        dup2(fd, 2);
        pm_set_notify_hook(pm, NULL, NULL);
        pm_notify(pm, "%s", msg);
        dup2(saved, 2);
        close(saved);
        char got[4096];
        ssize_t n = pread(fd, got, sizeof got - 1, 0);
        close(fd);
        unlink(path);
        assert_int_equal(n, (ssize_t)strlen(expect) + 1);
        got[n] = '\0';
        assert_int_equal(got[n - 1], '\n');
        got[n - 1] = '\0';
        assert_string_equal(got, expect);
    }
    pm_destroy(pm);
}

/* n_processes < 0 with no_exit: initialised, then dies at once, exit status 0,
 * nothing forked; the pid file is written, then removed. */
static void test_negative_n_returning(void **state)
{
    struct log_capture log = {0};
    char dir[] = "/tmp/fcgi-pm-api-XXXXXX", path[64], expect[128];
    pm_t *pm = pm_create();
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/pm.pid", dir);
    pm_set_notify_hook(pm, capture_line, &log);
    assert_int_equal(pm_parameter(pm, "n_processes", "-1"), 0);
    assert_int_equal(pm_parameter(pm, "no_exit", "1"), 0);
    assert_int_equal(pm_parameter(pm, "pid_fname", path), 0);
    assert_int_equal(pm_manage(pm), PM_MANAGER_DONE);
    assert_int_equal(pm_exit_status(pm), 0);
    assert_int_equal(log.count, 2);
    snprintf(expect, sizeof expect, "FastCGI: manager (pid %d): initialized", (int)getpid());
    assert_string_equal(log.lines[0], expect);
    snprintf(expect, sizeof expect, "FastCGI: manager (pid %d): dying:", (int)getpid());
    assert_string_equal(log.lines[1], expect);
    assert_int_equal(access(path, F_OK), -1);
    pm_destroy(pm);
    rmdir(dir);
}

static void test_exit_and_abort_returning(void **state)
{
    struct log_capture log = {0};
    pm_t *pm = pm_create();
    (void)state;
    pm_set_notify_hook(pm, capture_line, &log);
    pm_parameter(pm, "no_exit", "1");
    pm_exit(pm, "leaving", 7);
    assert_int_equal(pm_exit_status(pm), 7);
    assert_non_null(strstr(log.lines[0], "): leaving"));
    pm_abort(pm, "aborting", 0);
    assert_int_equal(pm_exit_status(pm), 1);
    pm_abort(pm, "aborting", 5);
    assert_int_equal(pm_exit_status(pm), 5);
    pm_die(pm, "bye", 3);
    assert_int_equal(pm_exit_status(pm), 3);
    assert_non_null(strstr(log.lines[3], "): dying: bye"));
    pm_destroy(pm);
}

static void test_pid_files(void **state)
{
    struct log_capture log = {0};
    char dir[] = "/tmp/fcgi-pm-api-XXXXXX", path[64], link_path[64];
    pm_t *a = pm_create(), *b = pm_create();
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/pm.pid", dir);
    snprintf(link_path, sizeof link_path, "%s/link.pid", dir);
    pm_set_notify_hook(b, capture_line, &log);
    assert_int_equal(pm_write_pid_file(a, NULL), 0); /* no pid_fname: nothing to do */
    assert_int_equal(pm_write_pid_file(a, path), 0);
    assert_int_equal(pm_write_pid_file(b, path), PM_ELOCKED);
    assert_non_null(strstr(pm_errmsg(b), "held by another manager"));
    assert_int_equal(log.count, 1);
    assert_int_equal(symlink(path, link_path), 0);
    assert_int_equal(pm_write_pid_file(b, link_path), PM_EPIDFILE);
    assert_int_equal(pm_remove_pid_file(a, path), 0);
    assert_int_equal(access(path, F_OK), -1);
    /* Removing a file that is not there is reported as the original does. */
    assert_int_equal(pm_remove_pid_file(b, path), PM_ESYS);
    assert_non_null(strstr(log.lines[log.count - 1], "unlink: "));
    assert_non_null(strstr(log.lines[log.count - 1], ": No such file or directory"));
    unlink(link_path);
    pm_destroy(a);
    pm_destroy(b);
    rmdir(dir);
}

static void test_dispatch_without_manager(void **state)
{
    struct log_capture log = {0};
    pm_t *pm = pm_create();
    (void)state;
    pm_set_notify_hook(pm, capture_line, &log);
    pm_parameter(pm, "no_exit", "1");
    pm_parameter(pm, "max_requests", "3");
    for (int i = 0; i < 2; i++) {
        pm_pre_dispatch(pm);
        pm_post_dispatch(pm);
        assert_int_equal(pm_exit_status(pm), PM_ESTATE);
    }
    pm_pre_dispatch(pm);
    pm_post_dispatch(pm);
    assert_int_equal(pm_exit_status(pm), 0);
    assert_non_null(strstr(log.lines[0], "): safe exit after max_requests (3)"));
    pm_destroy(pm);
}

static void read_proc(const char *file, char *buf, size_t size)
{
    FILE *f = fopen(file, "r");
    size_t n = 0;
    assert_non_null(f);
    n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
}

/* A second manager on a held pid file is refused before anything happens: no fork,
 * the signal mask as it was, the file unchanged. */
static void test_manage_refused_on_held_pid_file(void **state)
{
    char dir[] = "/tmp/fcgi-pm-api-XXXXXX", path[64], children[256] = "";
    sigset_t before, after;
    pm_t *holder = pm_create(), *second = pm_create();
    struct log_capture log = {0};
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/pm.pid", dir);
    assert_int_equal(pm_write_pid_file(holder, path), 0);
    pm_set_notify_hook(second, capture_line, &log);
    pm_parameter(second, "n_processes", "2");
    pm_parameter(second, "pid_fname", path);
    sigprocmask(SIG_SETMASK, NULL, &before);
    assert_int_equal(pm_manage(second), PM_ELOCKED);
    assert_non_null(strstr(pm_errmsg(second), "is held by another manager"));
    sigprocmask(SIG_SETMASK, NULL, &after);
    for (int s = 1; s < 32; s++)
        assert_int_equal(sigismember(&before, s), sigismember(&after, s));
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)getpid(), (int)getpid());
    read_proc(path, children, sizeof children);
    assert_string_equal(children, "");
    assert_int_equal(log.count, 1); /* the refusal, and no "initialized" */
    pm_destroy(second);
    snprintf(path, sizeof path, "%s/pm.pid", dir);
    pm_remove_pid_file(holder, path);
    pm_destroy(holder);
    rmdir(dir);
}

static void *idle_thread(void *arg)
{
    (void)arg;
    pause();
    return NULL;
}

/* Signals blocked by pm_manage hold for its own thread only: with other threads
 * about, a TERM could land in one of them, so pm_manage refuses. */
static void test_manage_refuses_threads(void **state)
{
    pthread_t t;
    pm_t *pm = pm_create();
    (void)state;
    assert_int_equal(pthread_create(&t, NULL, idle_thread, NULL), 0);
    pm_parameter(pm, "n_processes", "1");
    assert_int_equal(pm_manage(pm), PM_ESTATE);
    assert_non_null(strstr(pm_errmsg(pm), "threads"));
    pthread_cancel(t);
    pthread_join(t, NULL);
    pm_destroy(pm);
}

/* With SIGCHLD ignored (SIG_IGN, or SA_NOCLDWAIT) the kernel reaps children unseen;
 * no_signals forbids setting it back, so pm_manage refuses, forks nothing and leaves
 * the disposition as it was. Without no_signals the manager sets it for its own
 * lifetime (test_hygiene). */
static void test_manage_refuses_ignored_sigchld_with_no_signals(void **state)
{
    (void)state;
    struct sigaction ignore = {0}, nocldwait = {0}, saved, now;
    ignore.sa_handler = SIG_IGN;
    nocldwait.sa_handler = SIG_DFL;
    nocldwait.sa_flags = SA_NOCLDWAIT;
    const struct sigaction *modes[] = {&ignore, &nocldwait};
    sigaction(SIGCHLD, NULL, &saved);
    for (int i = 0; i < 2; i++) {
        pm_t *pm = pm_create();
        pm_parameter(pm, "n_processes", "1");
        pm_parameter(pm, "no_signals", "1");
        sigaction(SIGCHLD, modes[i], NULL);
        assert_int_equal(pm_manage(pm), PM_ESTATE);
        assert_non_null(strstr(pm_errmsg(pm), "SIGCHLD is ignored"));
        sigaction(SIGCHLD, NULL, &now);
        assert_true(now.sa_handler == modes[i]->sa_handler);
        assert_int_equal(now.sa_flags & SA_NOCLDWAIT, modes[i]->sa_flags & SA_NOCLDWAIT);
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no child was forked */
        assert_int_equal(errno, ECHILD);
        pm_destroy(pm);
    }
    sigaction(SIGCHLD, &saved, NULL);
}

/* A notify hook that ends the manager (no_exit) or waits from inside its loop. */
static void exit_on_started(pm_t *pm, const char *line, void *user)
{
    (void)user;
    if (strstr(line, ") started"))
        pm_exit(pm, "stopped from the hook", 4);
}

static void wait_on_started(pm_t *pm, const char *line, void *user)
{
    if (strstr(line, ") started") && *(int *)user == 0)
        *(int *)user = pm_wait(pm);
}

static void test_reentry_from_notify_hook(void **state)
{
    sigset_t before, after;
    pm_t *pm = pm_create();
    (void)state;
    sigprocmask(SIG_SETMASK, NULL, &before);
    pm_parameter(pm, "n_processes", "2");
    pm_parameter(pm, "no_exit", "1");
    pm_set_notify_hook(pm, exit_on_started, NULL);
    int rc = pm_manage(pm);
    if (rc == PM_WORKER)
        _exit(0); /* a worker forked before the hook ended the manager */
    assert_int_equal(rc, PM_MANAGER_DONE);
    assert_int_equal(pm_exit_status(pm), 4);
    sigprocmask(SIG_SETMASK, NULL, &after);
    for (int s = 1; s < 32; s++)
        assert_int_equal(sigismember(&before, s), sigismember(&after, s));
    /* Its workers were killed and reaped: this process has no child left. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    /* Finished: a second pm_manage is refused. */
    assert_int_equal(pm_manage(pm), PM_ESTATE);
    pm_destroy(pm);

    int waited = 0;
    pm = pm_create();
    pm_parameter(pm, "n_processes", "1");
    pm_parameter(pm, "no_exit", "1");
    pm_parameter(pm, "die_timeout", "5");
    pm_set_notify_hook(pm, wait_on_started, &waited);
    pm_set_hook(pm, PM_HOOK_MANAGER_INIT, NULL, NULL);
    pid_t self = getpid();
    pid_t killer = fork();
    if (killer == 0) {
        usleep(300 * 1000);
        kill(self, SIGTERM);
        _exit(0);
    }
    rc = pm_manage(pm);
    if (rc == PM_WORKER)
        _exit(0);
    assert_int_equal(rc, PM_MANAGER_DONE);
    assert_int_equal(waited, PM_ESTATE); /* the loop owns waiting */
    assert_int_equal(pm_exit_status(pm), 0);
    waitpid(killer, NULL, 0);
    pm_destroy(pm);
}

static void ignore_sigchld(pm_t *pm, void *user)
{
    (void)pm;
    (void)user;
    signal(SIGCHLD, SIG_IGN);
}

/* A manager_init hook that makes SIGCHLD ignored is refused before any fork. */
static void test_manage_refuses_sigchld_ignored_by_hook(void **state)
{
    (void)state;
    pm_t *pm = pm_create();
    pm_parameter(pm, "n_processes", "1");
    pm_set_hook(pm, PM_HOOK_MANAGER_INIT, ignore_sigchld, NULL);
    assert_int_equal(pm_manage(pm), PM_ESTATE);
    assert_non_null(strstr(pm_errmsg(pm), "manager_init hook made SIGCHLD ignored"));
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no child was forked */
    signal(SIGCHLD, SIG_DFL);
    pm_destroy(pm);
}

static void die_on_first_exit(pm_t *pm, const char *line, void *user)
{
    int *exits = user;
    if (strstr(line, ") exited with status") && ++*exits == 1)
        pm_die(pm, "dying from the hook", 0);
}

/* Two workers exit while the manager is stopped, so one SIGCHLD stands for both; the
 * notify hook for the first exit ends the manager. The second exit, whose signal was
 * read with the first, must still be found: the manager exits 0 at once, not 1
 * after die_timeout. */
static void test_die_from_hook_finds_every_exit(void **state)
{
    (void)state;
    int exits = 0;
    pm_t *pm = pm_create();
    pm_parameter(pm, "n_processes", "2");
    pm_parameter(pm, "no_exit", "1");
    pm_parameter(pm, "die_timeout", "3");
    pm_set_notify_hook(pm, die_on_first_exit, &exits);
    pid_t self = getpid();
    pid_t helper = fork();
    if (helper == 0) {
        pid_t kids[8];
        int n = 0;
        for (int tries = 0; tries < 2000 && n != 3; tries++) { /* the helper, and 2 workers */
            usleep(1000);
            n = pu_children(self, kids, 8);
        }
        kill(self, SIGSTOP);
        for (int i = 0; i < n; i++)
            if (kids[i] != getpid())
                kill(kids[i], SIGKILL);
        for (int i = 0; i < n; i++)
            for (int tries = 0; tries < 2000 && kids[i] != getpid() && pu_proc_state(kids[i]) != 'Z'; tries++)
                usleep(1000);
        kill(self, SIGCONT);
        pause(); /* alive till the end: an exited helper would be a child of the host's too */
        _exit(0);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = pm_manage(pm);
    if (rc == PM_WORKER) {
        pause();
        _exit(0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kill(helper, SIGKILL);
    waitpid(helper, NULL, 0);
    assert_int_equal(rc, PM_MANAGER_DONE);
    assert_int_equal(exits, 2);
    assert_int_equal(pm_exit_status(pm), 0); /* 1 would be "wait timeout" */
    assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 2500);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* nothing left */
    pm_destroy(pm);
}

/* exit(3) keeps the low 8 bits of a status: so does the recorded one. */
static void test_exit_status_range(void **state)
{
    pm_t *pm = pm_create();
    (void)state;
    pm_set_notify_hook(pm, capture_line, &(struct log_capture){0});
    pm_parameter(pm, "no_exit", "1");
    pm_exit(pm, "x", -1);
    assert_int_equal(pm_exit_status(pm), 255);
    pm_exit(pm, "x", 256);
    assert_int_equal(pm_exit_status(pm), 0);
    pm_destroy(pm);
}

static void count_hook(pm_t *pm, void *user)
{
    (void)pm;
    ++*(int *)user;
}

static void test_dispatch_hooks(void **state)
{
    int pre = 0, post = 0;
    pm_t *pm = pm_create();
    (void)state;
    assert_int_equal(pm_set_hook(pm, PM_HOOK_PRE_DISPATCH, count_hook, &pre), 0);
    assert_int_equal(pm_set_hook(pm, PM_HOOK_POST_DISPATCH, count_hook, &post), 0);
    pm_pre_dispatch(pm);
    assert_int_equal(pre, 1);
    assert_int_equal(post, 0);
    pm_post_dispatch(pm);
    assert_int_equal(post, 1);
    assert_int_equal(pm_set_hook(pm, PM_HOOK_PRE_DISPATCH, NULL, NULL), 0);
    pm_pre_dispatch(pm);
    assert_int_equal(pre, 1);
    pm_destroy(pm);
}

/* Constrained's size limit: checked every sizecheck_num_requests requests, even
 * without max_requests (the original counted requests only when it was set). */
static void test_max_size(void **state)
{
    struct log_capture log = {0};
    pm_t *pm = pm_create();
    (void)state;
    pm_set_notify_hook(pm, capture_line, &log);
    pm_parameter(pm, "no_exit", "1");
    pm_parameter(pm, "max_size", "1"); /* 1 KB: any process exceeds it */
    pm_parameter(pm, "sizecheck_num_requests", "2");
    pm_pre_dispatch(pm);
    pm_post_dispatch(pm);
    assert_int_equal(pm_exit_status(pm), PM_ESTATE); /* not checked on request 1 */
    pm_pre_dispatch(pm);
    pm_post_dispatch(pm);
    assert_int_equal(pm_exit_status(pm), 0);
    assert_non_null(strstr(log.lines[0], "): safe exit due to memory limits exceeded after 2 requests"));
    pm_destroy(pm);

    /* A limit far above the process size is never hit. */
    pm = pm_create();
    pm_parameter(pm, "no_exit", "1");
    pm_parameter(pm, "max_size", "9000000000000000"); /* 8 EiB: far above even ASan's reservations */
    pm_parameter(pm, "sizecheck_num_requests", "1");
    pm_pre_dispatch(pm);
    pm_post_dispatch(pm);
    assert_int_equal(pm_exit_status(pm), PM_ESTATE);
    pm_destroy(pm);
}

/* FCGI::Engine's Constrained limits on the shared size: a process shares some pages
 * (libc's), fewer than 8 EiB; its unshared part is more than 1 KB. */
static void one_limit(const char *name, const char *value, int expect_exit)
{
    struct log_capture log = {0};
    pm_t *pm = pm_create();
    pm_set_notify_hook(pm, capture_line, &log);
    pm_parameter(pm, "no_exit", "1");
    assert_int_equal(pm_parameter(pm, name, value), 0);
    pm_parameter(pm, "sizecheck_num_requests", "1");
    pm_pre_dispatch(pm);
    pm_post_dispatch(pm);
    if (expect_exit) {
        assert_int_equal(pm_exit_status(pm), 0);
        assert_non_null(strstr(log.lines[0], "): safe exit due to memory limits exceeded after 1 requests"));
    } else {
        assert_int_equal(pm_exit_status(pm), PM_ESTATE);
    }
    pm_destroy(pm);
}

static void test_share_limits(void **state)
{
    (void)state;
    one_limit("min_share_size", "9000000000000000", 1);
    one_limit("min_share_size", "1", 0);
    one_limit("max_unshared_size", "1", 1);
    one_limit("max_unshared_size", "9000000000000000", 0);
    pm_t *pm = pm_create();
    assert_int_equal(pm_parameter(pm, "min_share_size", "-1"), PM_ERANGE);
    assert_string_equal(pm_get_parameter(pm, "min_share_size"), "0");
    pm_destroy(pm);
}

/* The title shows in comm (15 bytes) and in cmdline. */
static void test_process_title(void **state)
{
    char buf[512];
    pm_t *pm = pm_create();
    (void)state;
    assert_int_equal(pm_change_process_name(pm, "api-title"), 0);
    read_proc("/proc/self/comm", buf, sizeof buf);
    assert_string_equal(buf, "api-title\n");
    read_proc("/proc/self/cmdline", buf, sizeof buf);
    assert_string_equal(buf, "api-title");
    /* glibc's program name (error(3), syslog) lived in argv: it is kept. */
    assert_string_equal(program_invocation_short_name, "test_api");
    pm_destroy(pm);
}

/* Some calls under test end the process when they misbehave: a test program that
 * stops before its last test must not pass for one that ran them all. */
static int all_tests_ran; /* checked at exit: a process of this program's must not end early */

/* The status reader's bad input: each refused with its code and a message naming
 * the problem, nothing opened. */
static void test_status_errors(void **state)
{
    (void)state;
    assert_int_equal(pm_status_open(NULL, "1"), PM_EINVAL);
    assert_int_equal(pm_status_read(NULL, 0), PM_EINVAL);
    long long v = 0;
    assert_int_equal(pm_status_workers(NULL), PM_EINVAL);
    assert_int_equal(pm_status_value(NULL, PM_STATUS_POOL, PM_POOL_BUSY, &v), PM_EINVAL);
    assert_null(pm_status_text(NULL, PM_STATUS_POOL, PM_POOL_TITLE));
    /* Every field named, numbered from 0; none past the last. */
    const char *name;
    int is_text;
    assert_int_equal(pm_status_field_info(0, PM_POOL_BUSY, &name, &is_text), 0);
    assert_string_equal(name, "busy");
    assert_int_equal(is_text, 0);
    assert_int_equal(pm_status_field_info(0, PM_POOL_TITLE, &name, &is_text), 0);
    assert_string_equal(name, "title");
    assert_int_equal(is_text, 1);
    assert_int_equal(pm_status_field_info(1, PM_SLOT_URI, &name, &is_text), 0);
    assert_string_equal(name, "uri");
    assert_int_equal(pm_status_field_info(0, PM_POOL_FIELDS_, &name, &is_text), PM_ERANGE);
    assert_int_equal(pm_status_field_info(1, PM_SLOT_FIELDS_, NULL, NULL), PM_ERANGE);
    assert_int_equal(pm_status_field_info(2, 0, NULL, NULL), PM_ERANGE);
    assert_int_equal(pm_status_field_info(0, -1, NULL, NULL), PM_ERANGE);
    assert_string_equal(pm_status_errmsg(NULL), "");
    pm_status_close(NULL);
    assert_string_equal(pm_worker_state_name(PM_WORKER_BUSY), "busy");
    assert_string_equal(pm_worker_state_name(99), "?");

    pm_status_t *st = pm_status_new();
    assert_non_null(st);
    assert_int_equal(pm_status_read(st, 0), PM_ESTATE);
    assert_non_null(strstr(pm_status_errmsg(st), "no manager open"));
    assert_int_equal(pm_status_workers(st), PM_ESTATE);
    assert_int_equal(pm_status_value(st, PM_STATUS_POOL, PM_POOL_BUSY, &v), PM_ESTATE);
    assert_int_equal(pm_status_open(st, NULL), PM_EINVAL);
    assert_int_equal(pm_status_open(st, ""), PM_EINVAL);

    char self[32];
    snprintf(self, sizeof self, "%d", (int)getpid());
    assert_int_equal(pm_status_open(st, self), PM_EINVAL);
    assert_non_null(strstr(pm_status_errmsg(st), "is not an fcgi-pm manager"));

    assert_int_equal(pm_status_open(st, "4194304"), PM_ESYS); /* above any pid */
    assert_int_equal(pm_status_errno(st), ESRCH);
    assert_non_null(strstr(pm_status_errmsg(st), "pid 4194304: no such process"));

    assert_int_equal(pm_status_open(st, "/nonexistent/app.pid"), PM_ESYS);
    assert_int_equal(pm_status_errno(st), ENOENT);
    assert_non_null(strstr(pm_status_errmsg(st), "/nonexistent/app.pid"));

    assert_int_equal(pm_status_open(st, "/dev/null"), PM_EINVAL); /* neither pid file nor socket */
    assert_int_equal(pm_status_open(st, "tcp:127.0.0.1"), PM_EINVAL);
    assert_int_equal(pm_status_read(st, 0x80), PM_EINVAL);
    assert_non_null(strstr(pm_status_errmsg(st), "unknown flags"));
    pm_status_close(st);

    /* Naming a request outside a worker changes nothing. */
    assert_int_equal(pm_set_request(NULL, "GET", "/", ""), PM_EINVAL);
    assert_int_equal(pm_set_request_params(NULL, NULL), PM_EINVAL);
    pm_t *pm = pm_create();
    assert_int_equal(pm_set_request(pm, "GET", "/x", "127.0.0.1"), 0);
    assert_int_equal(pm_set_request_params(pm, NULL), 0);
    assert_int_equal(pm_parameter(pm, "scoreboard", "2"), PM_EBADVALUE);
    assert_string_equal(pm_get_parameter(pm, "scoreboard"), "1");
    /* A status group needs a status socket, and must exist: refused before anything. */
    assert_int_equal(pm_parameter(pm, "n_processes", "1"), 0);
    assert_int_equal(pm_parameter(pm, "status_group", "root"), 0);
    assert_int_equal(pm_manage(pm), PM_EBADVALUE);
    assert_non_null(strstr(pm_errmsg(pm), "needs a status_socket"));
    assert_int_equal(pm_parameter(pm, "status_socket", "/nonexistent/dir/status.sock"), 0);
    assert_int_equal(pm_parameter(pm, "status_group", "no-such-group-here"), 0);
    assert_int_equal(pm_manage(pm), PM_EBADVALUE);
    assert_non_null(strstr(pm_errmsg(pm), "no group 'no-such-group-here'"));
    assert_int_equal(pm_parameter(pm, "status_group", ""), 0);
    assert_int_equal(pm_manage(pm), PM_ESYS); /* the socket's directory does not exist */
    assert_non_null(strstr(pm_errmsg(pm), "status_socket: /nonexistent/dir/status.sock"));
    assert_string_equal(pm_role(pm), "manager");
    pm_destroy(pm);
}

/* A pool of two forked workers (scoreboard on or off), each of which serves two
 * named requests and then stays in a third until to_child[1] is closed. */
static pid_t start_named_pool(int to_child[2], const char *scoreboard)
{
    assert_int_equal(pipe(to_child), 0);
    pid_t manager = fork();
    assert_true(manager >= 0);
    if (manager == 0) {
        close(to_child[1]);
        all_tests_ran = 1; /* this process is the pool's: its exit is no early end */
        pm_t *pm = pm_create();
        pm_parameter(pm, "n_processes", "2");
        pm_parameter(pm, "die_timeout", "5");
        pm_parameter(pm, "scoreboard", scoreboard);
        pm_set_notify_hook(pm, NULL, NULL);
        if (pm_manage(pm) != PM_WORKER)
            _exit(1);
        /* Each worker: two named requests, then a third left open until told. */
        for (int i = 0; i < 2; i++) {
            pm_set_request(pm, "POST", "/api/done", "192.0.2.7");
            pm_pre_dispatch(pm);
            pm_post_dispatch(pm);
        }
        pm_set_request(pm, "GET", "/api/open", "192.0.2.8");
        pm_pre_dispatch(pm);
        char c;
        while (read(to_child[0], &c, 1) < 0 && errno == EINTR) {
        }
        pm_post_dispatch(pm); /* the manager's TERM came through the slot: exit 0 */
        _exit(2);
    }
    close(to_child[0]);
    return manager;
}

/* Without the scoreboard's views, the stop protocol's phase still tells busy from
 * idle, and the requests are counted; nothing is named. */
static void test_status_without_scoreboard(void **state)
{
    (void)state;
    int to_child[2];
    pid_t manager = start_named_pool(to_child, "0");
    char target[32];
    snprintf(target, sizeof target, "%d", (int)manager);
    pm_status_t *st = pm_status_new();
    long long busy = 0, v = 0;
    for (int tries = 0; tries < 500 && busy < 2; tries++) {
        pu_sleep_ms(10);
        if (pm_status_open(st, target) == 0 && pm_status_read(st, 0) == 0)
            pm_status_value(st, PM_STATUS_POOL, PM_POOL_BUSY, &busy);
    }
    assert_int_equal(busy, 2);
    assert_int_equal(pm_status_value(st, PM_STATUS_POOL, PM_POOL_REQUESTS, &v), 0);
    assert_int_equal(v, 4);
    assert_int_equal(pm_status_value(st, PM_STATUS_POOL, PM_POOL_ACCEPTED, &v), 0);
    assert_int_equal(v, 6);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pm_status_value(st, i, PM_SLOT_STATE, &v), 0);
        assert_int_equal(v, PM_WORKER_BUSY);
        assert_string_equal(pm_status_text(st, i, PM_SLOT_URI), "");
        assert_int_equal(pm_status_value(st, i, PM_SLOT_REQUEST_US, &v), 0);
        assert_int_equal(v, -1);
    }
    kill(manager, SIGTERM);
    close(to_child[1]);
    int status;
    assert_int_equal(pu_wait_exit(manager, 10000, &status), 1);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    pm_status_close(st);
}

/* A forked pool read through the API: the workers as the manager forked them, the
 * requests they named and counted, the state of one still in its request. */
static void test_status_of_forked_pool(void **state)
{
    (void)state;
    int to_child[2];
    pid_t manager = start_named_pool(to_child, "1");
    char target[32];
    snprintf(target, sizeof target, "%d", (int)manager);
    pm_status_t *st = pm_status_new();
    long long busy = 0, v = 0;
    for (int tries = 0; tries < 500 && busy < 2; tries++) {
        pu_sleep_ms(10);
        if (pm_status_open(st, target) < 0 || pm_status_read(st, PM_STATUS_PROC) < 0)
            continue;
        pm_status_value(st, PM_STATUS_POOL, PM_POOL_BUSY, &busy);
    }
    assert_int_equal(busy, 2);
#define POOL(field, want)                                                      \
    do {                                                                       \
        assert_int_equal(pm_status_value(st, PM_STATUS_POOL, field, &v), 0);   \
        assert_int_equal(v, want);                                             \
    } while (0)
    POOL(PM_POOL_MANAGER_PID, manager);
    POOL(PM_POOL_WORKERS, 2);
    POOL(PM_POOL_TARGET, 2);
    POOL(PM_POOL_REQUESTS, 4);
    POOL(PM_POOL_ACCEPTED, 6);
    assert_int_equal(pm_status_workers(st), 2);
    assert_string_equal(pm_status_text(st, PM_STATUS_POOL, PM_POOL_PHASE), "running");
    assert_int_equal(pm_status_value(st, PM_STATUS_POOL, PM_POOL_TITLE, &v), PM_ERANGE); /* text */
    assert_null(pm_status_text(st, PM_STATUS_POOL, PM_POOL_BUSY));                      /* a number */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pm_status_value(st, i, PM_SLOT_STATE, &v), 0);
        assert_int_equal(v, PM_WORKER_BUSY);
        assert_int_equal(pm_status_value(st, i, PM_SLOT_REQUESTS, &v), 0);
        assert_int_equal(v, 2);
        assert_string_equal(pm_status_text(st, i, PM_SLOT_METHOD), "GET");
        assert_string_equal(pm_status_text(st, i, PM_SLOT_URI), "/api/open");
        assert_string_equal(pm_status_text(st, i, PM_SLOT_REMOTE), "192.0.2.8");
        assert_int_equal(pm_status_value(st, i, PM_SLOT_REQUEST_US, &v), 0);
        assert_true(v >= 0);
        assert_int_equal(pm_status_value(st, i, PM_SLOT_RSS_KB, &v), 0);
        assert_true(v > 0);
    }
    assert_int_equal(pm_status_value(st, 2, PM_SLOT_PID, &v), PM_ERANGE);
    assert_null(pm_status_text(st, 2, PM_SLOT_URI));
    /* TERM: the manager flags both busy workers; they stay in their request. */
    kill(manager, SIGTERM);
    long long stopping = 0;
    for (int tries = 0; tries < 500 && stopping < 2; tries++) {
        pu_sleep_ms(10);
        if (pm_status_read(st, 0) == 0)
            pm_status_value(st, PM_STATUS_POOL, PM_POOL_STOPPING, &stopping);
    }
    assert_int_equal(stopping, 2);
    assert_string_equal(pm_status_text(st, PM_STATUS_POOL, PM_POOL_PHASE), "stopping");
#undef POOL
    close(to_child[1]); /* ends both requests */
    int status;
    assert_int_equal(pu_wait_exit(manager, 10000, &status), 1);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(pm_status_read(st, 0), PM_ESYS);
    assert_int_equal(pm_status_errno(st), ESRCH);
    assert_non_null(strstr(pm_status_errmsg(st), "the manager is gone"));
    pm_status_close(st);
}

static void check_all_tests_ran(void)
{
    if (!all_tests_ran) {
        fprintf(stderr, "test_api: the process exited before its tests were done\n");
        _exit(1);
    }
}

int main(void)
{
    atexit(check_all_tests_ran);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_status_errors),
        cmocka_unit_test(test_status_of_forked_pool),
        cmocka_unit_test(test_status_without_scoreboard),
        cmocka_unit_test(test_strerror_covers_every_code),
        cmocka_unit_test(test_null_handles),
        cmocka_unit_test(test_null_strings),
        cmocka_unit_test(test_parameters),
        cmocka_unit_test(test_titles_and_paths_too_long),
        cmocka_unit_test(test_accept_errors),
        cmocka_unit_test(test_set_exec_errors),
        cmocka_unit_test(test_bad_hook_and_signal),
        cmocka_unit_test(test_state_errors),
        cmocka_unit_test(test_notify_hook_format),
        cmocka_unit_test(test_notify_long_lines),
        cmocka_unit_test(test_negative_n_returning),
        cmocka_unit_test(test_exit_and_abort_returning),
        cmocka_unit_test(test_pid_files),
        cmocka_unit_test(test_dispatch_without_manager),
        cmocka_unit_test(test_manage_refused_on_held_pid_file),
        cmocka_unit_test(test_manage_refuses_threads),
        cmocka_unit_test(test_manage_refuses_ignored_sigchld_with_no_signals),
        cmocka_unit_test(test_die_from_hook_finds_every_exit),
        cmocka_unit_test(test_manage_refuses_sigchld_ignored_by_hook),
        cmocka_unit_test(test_reentry_from_notify_hook),
        cmocka_unit_test(test_exit_status_range),
        cmocka_unit_test(test_dispatch_hooks),
        cmocka_unit_test(test_max_size),
        cmocka_unit_test(test_share_limits),
        cmocka_unit_test(test_process_title),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    all_tests_ran = 1;
    return failed;
}
