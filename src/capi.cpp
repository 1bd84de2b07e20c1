// The C boundary: the only file with extern "C" definitions. Each call checks its
// arguments and runs inside a firewall that turns internal exceptions into PM_E*
// codes (with the message kept on the handle) and exit requests into exit(3), or,
// with no_exit, into a recorded status.
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <unistd.h>
#include <string>
#include <vector>

#include "error.h"
#include "fcgi_pm.h"
#include "params.h"
#include "proc_manager.h"
#include "status.h"
#include "title.h"

struct pm_manager {
    pm_manager() : rep(this) {}
    fcgipm::proc_manager rep;
    char errmsg[256] = "";
    int sys_errno = 0;  // behind the last failure, if it was PM_ESYS
    std::string value;  // pm_get_parameter's result
};

struct pm_status {
    fcgipm::status_reader reader;
    char errmsg[512] = "";
    int sys_errno = 0;
};

namespace {

// pm_status_*'s firewall: the message kept on st.
template <class F>
int status_guarded(pm_status_t *st, F &&f) noexcept {
    // The message is copied inside each handler: what() dies with the exception.
    auto keep = [st](int code, const char *message, int err) {
        std::snprintf(st->errmsg, sizeof st->errmsg, "%s", message);
        st->sys_errno = err;
        return code;
    };
    try {
        f();
        return keep(PM_OK, "", 0);
    } catch (const fcgipm::error &e) {
        return keep(e.code(), e.what(), e.code() == PM_ESYS ? e.sys_errno() : 0);
    } catch (const std::bad_alloc &) {
        return keep(PM_ENOMEM, "out of memory", 0);
    } catch (const std::exception &e) {
        return keep(PM_EINTERNAL, e.what(), 0);
    } catch (...) {
        return keep(PM_EINTERNAL, "unexpected exception", 0);
    }
}

// Never throws: the message is cut to the fixed buffer.
void record(pm_t *pm, const char *message, int sys_errno = 0) noexcept {
    if (pm) {
        std::snprintf(pm->errmsg, sizeof pm->errmsg, "%s", message);
        pm->sys_errno = sys_errno;
    }
}

int fail(pm_t *pm, int code, const char *message, int sys_errno = 0) noexcept {
    record(pm, message, code == PM_ESYS ? sys_errno : 0);
    return code;
}

// Ends a process the library was asked to end. A worker with "worker_exit" "_exit"
// skips the host's atexit handlers and static destructors; stdio is flushed first,
// as exit(3) would ("_exit_unflushed": not even that).
[[noreturn]] void end_process(pm_t *pm, int status) {
    if (pm->rep.quick_exit()) {
        if (pm->rep.parameters().worker_exit == fcgipm::params::worker_end::flushed_exit)
            std::fflush(nullptr);
        ::_exit(status);
    }
    std::exit(status);
}

// A worker that has learnt it must stop, with "worker_exit" "_exit" or
// "_exit_unflushed" (and "no_exit" 0), ends where it learnt it, exit 0.
void end_stopped_worker(pm_t *pm) {
    if (pm->rep.quick_exit() && !pm->rep.parameters().no_exit)
        end_process(pm, 0);
}

// The process was asked to end: exit, or record the status for a no_exit caller.
// Returns the status.
int finish(pm_t *pm, const fcgipm::exit_request &x) {
    int status = x.status & 0xff;  // what exit(3) would have made of it
    if (!pm->rep.parameters().no_exit)
        end_process(pm, status);
    pm->rep.pending_exit = status;
    ++pm->rep.exit_requests;
    return status;
}

// What a call returns when it was asked to exit and "no_exit" is 1.
constexpr int exit_with_status = -1;  // PM_EXIT + status

// Runs f, mapping what it throws; an exit request (no_exit mode) returns on_exit
// (exit_with_status: PM_EXIT + status).
template <class F>
int guarded(pm_t *pm, F &&f, int on_exit = PM_MANAGER_DONE) noexcept {
    try {
        return f();
    } catch (const fcgipm::exit_request &x) {
        int status = finish(pm, x);
        return on_exit == exit_with_status ? PM_EXIT + status : on_exit;
    } catch (const fcgipm::error &e) {
        return fail(pm, e.code(), e.what(), e.sys_errno());
    } catch (const std::bad_alloc &) {
        return fail(pm, PM_ENOMEM, "out of memory");
    } catch (const std::exception &e) {
        return fail(pm, PM_EINTERNAL, e.what());
    } catch (...) {
        return fail(pm, PM_EINTERNAL, "unexpected exception");
    }
}

std::string vformat(const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return fmt;
    std::string out(static_cast<size_t>(n) + 1, '\0');
    std::vsnprintf(out.data(), out.size(), fmt, ap);
    out.resize(static_cast<size_t>(n));
    return out;
}

// pm_notify and pm_warn.
void log_formatted(pm_t *pm, const char *fmt, va_list ap) {
    if (!pm || !fmt)
        return;
    guarded(pm, [&] {
        pm->rep.notify(vformat(fmt, ap));
        return 0;
    });
}

}  // namespace

extern "C" {

pm_t *pm_create(void) {
    try {
        return new pm_manager();
    } catch (...) {
        return nullptr;
    }
}

void pm_destroy(pm_t *pm) {
    delete pm;
}

int pm_parameter(pm_t *pm, const char *name, const char *value) {
    if (!pm)
        return PM_EINVAL;
    if (!name || !value)
        return fail(pm, PM_EINVAL, "pm_parameter: name and value must not be NULL");
    return guarded(pm, [&] {
        std::string message;
        int rc = fcgipm::set_param(pm->rep.parameters(), name, value, message, pm->rep.started());
        if (rc != PM_OK)
            throw fcgipm::error(rc, message);
        return 0;
    });
}

int pm_check_parameters(pm_t *pm) {
    if (!pm)
        return PM_EINVAL;
    return guarded(pm, [&] {
        std::string why = fcgipm::check_pool(pm->rep.parameters());
        if (!why.empty())
            throw fcgipm::error(PM_EBADVALUE, why);
        return 0;
    });
}

const char *pm_get_parameter(pm_t *pm, const char *name) {
    if (!pm || !name)
        return nullptr;
    int rc = guarded(pm, [&] {
        if (!fcgipm::get_param(pm->rep.parameters(), name, pm->value))
            throw fcgipm::error(PM_EUNKNOWN, std::string("unknown parameter '") + name + "'");
        return 0;
    });
    return rc == 0 ? pm->value.c_str() : nullptr;
}

int pm_manage(pm_t *pm) {
    if (!pm)
        return PM_EINVAL;
    return guarded(pm, [&] { return pm->rep.manage(); });
}

int pm_set_exec(pm_t *pm, int listen_fd, char *const argv[], char *const envp[]) {
    if (!pm)
        return PM_EINVAL;
    if (!argv || !argv[0] || !argv[0][0])
        return fail(pm, PM_EINVAL, "pm_set_exec: argv must name a program");
    if (listen_fd < 0)
        return fail(pm, PM_EINVAL, "pm_set_exec: negative listening descriptor");
    return guarded(pm, [&] {
        std::vector<std::string> args, env;
        for (char *const *a = argv; *a; ++a)
            args.emplace_back(*a);
        for (char *const *e = envp; e && *e; ++e)
            env.emplace_back(*e);
        pm->rep.set_exec(listen_fd, std::move(args), envp != nullptr, std::move(env));
        return 0;
    });
}

int pm_accept(pm_t *pm, int listen_fd) {
    if (!pm)
        return PM_EINVAL;
    if (listen_fd < 0)
        return fail(pm, PM_EINVAL, "pm_accept: negative descriptor");
    int fd = guarded(pm, [&] { return pm->rep.accept(listen_fd); });
    if (fd == PM_ESTOPPED)
        end_stopped_worker(pm);
    return fd == PM_ESTOPPED ? fail(pm, PM_ESTOPPED, "pm_accept: the worker is stopping") : fd;
}

// pm_worker_stopping's and pm_accept_begin's answer: 1 (after the quick exit, if
// that applies) when the worker must stop, else 0.
static int stopping_answer(pm_t *pm, bool stopping) {
    if (stopping)
        end_stopped_worker(pm);
    return stopping ? 1 : 0;
}

int pm_worker_stopping(pm_t *pm) {
    return pm ? stopping_answer(pm, pm->rep.must_stop()) : PM_EINVAL;
}

int pm_accept_begin(pm_t *pm) {
    return pm ? stopping_answer(pm, pm->rep.accept_begin()) : PM_EINVAL;
}

int pm_accept_end(pm_t *pm) {
    if (!pm)
        return PM_EINVAL;
    pm->rep.accept_end();
    return 0;
}

int pm_wait_connection(pm_t *pm, int fd) {
    if (!pm)
        return PM_EINVAL;
    if (fd < 0)
        return fail(pm, PM_EINVAL, "pm_wait_connection: negative descriptor");
    int rc = guarded(pm, [&] { return pm->rep.wait_connection(fd); });
    if (rc == PM_ESTOPPED)
        end_stopped_worker(pm);
    return rc == PM_ESTOPPED ? fail(pm, PM_ESTOPPED, "pm_wait_connection: the worker is stopping") : rc;
}

int pm_pre_dispatch(pm_t *pm) {
    if (!pm)
        return PM_EINVAL;
    return guarded(
        pm,
        [&] {
            pm->rep.pre_dispatch();
            return 0;
        },
        exit_with_status);
}

int pm_post_dispatch(pm_t *pm) {
    if (!pm)
        return PM_EINVAL;
    return guarded(
        pm,
        [&] {
            pm->rep.post_dispatch();
            return 0;
        },
        exit_with_status);
}

int pm_set_hook(pm_t *pm, pm_hook_t which, pm_hook_fn fn, void *user) {
    if (!pm)
        return PM_EINVAL;
    int index;  // copied as an int: C callers may pass any value, not only the enum's
    std::memcpy(&index, &which, sizeof index);
    if (index < PM_HOOK_MANAGER_INIT || index > PM_HOOK_MANAGER_SIGNAL)
        return fail(pm, PM_EINVAL, "pm_set_hook: unknown hook");
    pm->rep.set_hook(which, fn, user);
    return 0;
}

int pm_set_notify_hook(pm_t *pm, pm_notify_fn fn, void *user) {
    if (!pm)
        return PM_EINVAL;
    pm->rep.set_notify_hook(fn, user);
    return 0;
}

int pm_set_end_hook(pm_t *pm, pm_end_fn fn, void *user) {
    if (!pm)
        return PM_EINVAL;
    pm->rep.set_end_hook(fn, user);
    return 0;
}

int pm_die(pm_t *pm, const char *msg, int status) {
    if (!pm)
        return PM_EINVAL;
    return guarded(
        pm,
        [&] {
            pm->rep.die(msg ? msg : "", status);
            return 0;
        },
        exit_with_status);
}

int pm_exit(pm_t *pm, const char *msg, int status) {
    if (!pm)
        return PM_EINVAL;
    return guarded(
        pm,
        [&] {
            pm->rep.exit_process(msg ? msg : "", status);
            return 0;
        },
        exit_with_status);
}

int pm_abort(pm_t *pm, const char *msg, int status) {
    return pm_exit(pm, msg, status ? status : 1);
}

int pm_request_stop(pm_t *pm, int signo) {
    if (!pm || signo < 0 || signo >= _NSIG)
        return PM_EINVAL;  // no message: this may run in a signal handler
    return pm->rep.request_stop(signo);
}

int pm_request_reload(pm_t *pm) {
    if (!pm)
        return PM_EINVAL;
    return pm->rep.request_reload();
}

int pm_wait(pm_t *pm) {
    if (!pm)
        return PM_EINVAL;
    return guarded(pm, [&] { return static_cast<int>(pm->rep.wait_one()); }, PM_ESTOPPED);
}

int pm_write_pid_file(pm_t *pm, const char *fname) {
    if (!pm)
        return PM_EINVAL;
    return guarded(pm, [&] {
        std::string path = fname ? fname : pm->rep.parameters().pid_fname;
        return path.empty() ? 0 : pm->rep.write_pid_file(path);
    });
}

int pm_remove_pid_file(pm_t *pm, const char *fname) {
    if (!pm)
        return PM_EINVAL;
    return guarded(pm, [&] {
        std::string path = fname ? fname : pm->rep.parameters().pid_fname;
        return path.empty() ? 0 : pm->rep.remove_pid_file(path);
    });
}

int pm_change_process_name(pm_t *pm, const char *name) {
    if (!pm)
        return PM_EINVAL;
    if (!name)
        return fail(pm, PM_EINVAL, "pm_change_process_name: name must not be NULL");
    return guarded(pm, [&] {
        if (std::strlen(name) > fcgipm::max_title_length)
            throw fcgipm::error(PM_ETOOLONG, "process name longer than " +
                                                 std::to_string(fcgipm::max_title_length) + " bytes");
        fcgipm::set_process_title(name);
        return 0;
    });
}

int pm_received_signal(pm_t *pm, int signo) {
    if (!pm)
        return PM_EINVAL;
    if (signo <= 0 || signo >= _NSIG)
        return fail(pm, PM_EINVAL, "pm_received_signal: no such signal");
    return fcgipm::proc_manager::received_signal(signo);
}

void pm_notify(pm_t *pm, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_formatted(pm, fmt, ap);
    va_end(ap);
}

void pm_warn(pm_t *pm, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_formatted(pm, fmt, ap);  // the original's pm_warn is pm_notify
    va_end(ap);
}

const char *pm_role(pm_t *pm) {
    return pm ? pm->rep.role().c_str() : nullptr;
}

int pm_exit_status(pm_t *pm) {
    if (!pm)
        return PM_EINVAL;
    return pm->rep.pending_exit >= 0 ? pm->rep.pending_exit : PM_ESTATE;
}

const char *pm_errmsg(pm_t *pm) {
    return pm ? pm->errmsg : "";
}

int pm_errno(pm_t *pm) {
    return pm ? pm->sys_errno : 0;
}

int pm_parameter_info(int index, const char **name, int *type, const char **bounds, int *settable_when_running) {
    fcgipm::param_info info;
    try {
        if (!fcgipm::describe_param(index, info))
            return PM_ERANGE;
    } catch (...) {
        return PM_ENOMEM;  // the table could not be built
    }
    if (name)
        *name = info.name;
    if (type)
        *type = info.type;
    if (bounds)
        *bounds = info.bounds;
    if (settable_when_running)
        *settable_when_running = info.settable_when_running ? 1 : 0;
    return 0;
}

int pm_set_request(pm_t *pm, const char *method, const char *uri, const char *remote) {
    if (!pm)
        return PM_EINVAL;
    pm->rep.set_request(method, uri, remote);
    return PM_OK;
}

int pm_set_request_params(pm_t *pm, char *const *envp) {
    if (!pm)
        return PM_EINVAL;
    pm->rep.set_request_params(envp);
    return PM_OK;
}

pm_status_t *pm_status_new(void) {
    return new (std::nothrow) pm_status;
}

int pm_status_open(pm_status_t *st, const char *target) {
    if (!st)
        return PM_EINVAL;
    if (!target) {
        std::snprintf(st->errmsg, sizeof st->errmsg, "pm_status_open: target must not be NULL");
        return PM_EINVAL;
    }
    return status_guarded(st, [&] { st->reader.open(target); });
}

int pm_status_read(pm_status_t *st, int flags) {
    if (!st)
        return PM_EINVAL;
    if (flags & ~PM_STATUS_PROC) {
        std::snprintf(st->errmsg, sizeof st->errmsg, "pm_status_read: unknown flags 0x%x", flags);
        return PM_EINVAL;
    }
    return status_guarded(st, [&] { st->reader.read(flags); });
}

int pm_status_workers(pm_status_t *st) {
    if (!st)
        return PM_EINVAL;
    const fcgipm::pool_status *p = st->reader.pool();
    return p ? p->workers : PM_ESTATE;
}

int pm_status_value(pm_status_t *st, int worker, int field, long long *value) {
    if (!st || !value)
        return PM_EINVAL;
    const fcgipm::pool_status *p = st->reader.pool();
    if (!p)
        return PM_ESTATE;
    if (worker == PM_STATUS_POOL)
        return st->reader.pool_value(field, *value) ? PM_OK : PM_ERANGE;
    const fcgipm::worker_status *w = st->reader.worker(worker);
    return w && fcgipm::status_reader::worker_value(*w, field, *value) ? PM_OK : PM_ERANGE;
}

const char *pm_status_text(pm_status_t *st, int worker, int field) {
    if (!st || !st->reader.pool())
        return nullptr;
    if (worker == PM_STATUS_POOL)
        return st->reader.pool_text(field);
    const fcgipm::worker_status *w = st->reader.worker(worker);
    return w ? fcgipm::status_reader::worker_text(*w, field) : nullptr;
}

int pm_status_field_info(int slot, int field, const char **name, int *is_text) {
    const char *n = nullptr;
    bool text = false;
    if (!fcgipm::status_reader::field_info(slot, field, n, text))
        return PM_ERANGE;
    if (name)
        *name = n;
    if (is_text)
        *is_text = text ? 1 : 0;
    return PM_OK;
}

const char *pm_worker_state_name(int state) {
    static const char *const names[] = {"starting", "idle", "busy", "stopping", "running"};
    return state >= 0 && state < 5 ? names[state] : "?";
}

const char *pm_status_errmsg(pm_status_t *st) {
    return st ? st->errmsg : "";
}

int pm_status_errno(pm_status_t *st) {
    return st ? st->sys_errno : 0;
}

void pm_status_close(pm_status_t *st) {
    delete st;
}

int pm_version_number(void) {
    return PM_VERSION_NUMBER;
}

const char *pm_strerror(int code) {
    switch (code) {
    case PM_OK:
        return "success";
#define PM_XX_CASE(name, value, text) \
    case PM_##name:                   \
        return text;
        PM_ERRNO_MAP(PM_XX_CASE)
#undef PM_XX_CASE
    default:
        return "unknown error code";
    }
}

const char *pm_version(void) {
#define PM_STR2(x) #x
#define PM_STR(x) PM_STR2(x)
    return PM_STR(PM_VERSION_MAJOR) "." PM_STR(PM_VERSION_MINOR) "." PM_STR(PM_VERSION_PATCH);
}

}  // extern "C"
