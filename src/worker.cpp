// The worker side: set-up after fork, the TERM/HUP handler, and the request path.
//
// The handler is installed once, with SA_RESTART, and never changed again, so
// pm_pre_dispatch and pm_post_dispatch make no system call. What the original got
// from toggling SA_RESTART around each request follows from what the handler does:
// it counts the signal and puts /dev/null over every listening socket of this
// process. A request in progress is untouched (its reads and writes are restarted,
// never see EINTR, and its connection is another descriptor), and pm_post_dispatch
// exits after it. An idle worker's accept, blocked (restarted by SA_RESTART) or yet
// to come, fails at once with ENOTSOCK, so the application's accept loop ends: no
// window is left in which a TERM can be lost, and a worker about to exit never holds
// the listening socket that a new manager may want to bind.
// The manager's death arrives as SIGTERM through PR_SET_PDEATHSIG; the handler
// tells it from a real TERM because the parent pid has changed by then.
#include <cerrno>
#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "error.h"
#include "os.h"
#include "proc_manager.h"
#include "title.h"

namespace fcgipm {

namespace {

constexpr int max_listeners = 16;

// Everything the handler touches: written by it or read by it, nothing else.
struct handler_state {
    volatile sig_atomic_t manager_died;
    volatile sig_atomic_t counts[_NSIG];
    pid_t manager_pid;
    int listen_fds[max_listeners];
    int n_listen;
};
handler_state state;

void release_listeners() {
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int source = null_fd >= 0 ? null_fd : STDERR_FILENO;  // any non-listening descriptor will do
    for (int i = 0; i < state.n_listen; ++i)
        ::dup3(source, state.listen_fds[i], O_CLOEXEC);
    state.n_listen = 0;
    if (null_fd >= 0)
        ::close(null_fd);
}

void on_signal(int signo) {
    int saved_errno = errno;
    if (signo == SIGTERM && state.manager_pid > 0 && ::getppid() != state.manager_pid)
        state.manager_died = 1;
    else
        state.counts[signo] = state.counts[signo] + 1;
    release_listeners();
    errno = saved_errno;
}

void install_worker_handler() {
    struct sigaction sa = {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGHUP);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGHUP, &sa, nullptr);
}

bool stop_requested() {
    return state.counts[SIGTERM] || state.counts[SIGHUP] || state.manager_died;
}

}  // namespace

int proc_manager::received_signal(int signo) {
    return signo > 0 && signo < _NSIG ? state.counts[signo] : 0;
}

void proc_manager::count_signal(int signo) {
    if (signo > 0 && signo < _NSIG)
        state.counts[signo] = state.counts[signo] + 1;
}

// Runs in the child right after fork, with every signal blocked.
void proc_manager::become_worker(pid_t manager_pid) {
    close_manager_fds();
    for (pid_file &f : pid_files_)
        f.forget();  // the manager's lock stays the manager's
    pid_files_.clear();
    slots_.clear();
    free_.clear();
    live_ = 0;
    managing_ = false;
    params_.role = "server";
    requests_ = 0;

    for (auto &count : state.counts)
        count = 0;
    state.manager_died = 0;
    state.manager_pid = manager_pid;
    state.n_listen = 0;
    for (int fd : os::listening_fds())
        if (state.n_listen < max_listeners)
            state.listen_fds[state.n_listen++] = fd;

    if (!params_.no_signals) {
        ::sigaction(SIGCHLD, &host_chld_, nullptr);
        install_worker_handler();
    }
    signals_saved_ = false;
    ::prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    set_process_title(params_.process_name);
    call_hook(PM_HOOK_SERVER_INIT);
    notify("initialized");
    ::pthread_sigmask(SIG_SETMASK, &host_mask_, nullptr);
    // The manager may have died before PR_SET_PDEATHSIG took effect.
    if (::getppid() != manager_pid)
        ::kill(::getpid(), SIGTERM);
}

int proc_manager::accept(int listen_fd) {
    for (;;) {
        int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        int err = errno;
        // The handler has put /dev/null over the socket (ENOTSOCK); with no_signals,
        // the host's own handlers may interrupt (EINTR).
        if (stop_requested())
            throw error(PM_ESTOPPED, "pm_accept: the worker is stopping");
        if (err == EINTR || err == ECONNABORTED || err == EPROTO)
            continue;
        throw error(PM_ESYS, "accept: " + os::errno_text(err));
    }
}

void proc_manager::pre_dispatch() {
    call_hook(PM_HOOK_PRE_DISPATCH);
}

void proc_manager::post_dispatch() {
    ++requests_;
    if (params_.max_requests > 0 && requests_ >= params_.max_requests)
        worker_exit("safe exit after max_requests (" + std::to_string(requests_) + ")");
    if (params_.sizecheck_num_requests > 0 && requests_ % params_.sizecheck_num_requests == 0 &&
        params_.max_size > 0 && os::vm_size_kb() > params_.max_size)
        worker_exit("safe exit due to memory limits exceeded after " + std::to_string(requests_) + " requests");
    if (state.counts[SIGTERM])
        worker_exit("safe exit after SIGTERM");
    if (state.counts[SIGHUP])
        worker_exit("safe exit after SIGHUP");
    if (state.manager_died ||
        (params_.no_signals && state.manager_pid > 0 && ::getppid() != state.manager_pid))
        worker_exit("safe exit: manager has died");
    call_hook(PM_HOOK_POST_DISPATCH);
}

void proc_manager::worker_exit(const std::string &msg) {
    exit_process(msg, 0);
}

}  // namespace fcgipm
