// The OS seam: every system facility the manager and workers use, in one place.
#pragma once

#include <csignal>
#include <cstdint>
#include <string>
#include <sys/socket.h>
#include <sys/types.h>
#include <vector>

namespace fcgipm::os {

// errno as text ("No such file or directory").
std::string errno_text(int err);

// Monotonic clock in milliseconds.
int64_t now_ms();

// close(2) that ignores EINTR and a -1 argument.
void close_fd(int fd);

// epoll instance and signalfd, both O_CLOEXEC; -1 with errno on failure.
int epoll_create();
int epoll_add(int epfd, int fd, uint64_t tag, bool edge = false);  // edge: EPOLLET
// An edge-triggered fd watched again (ADD: reported at once if it is readable) or not
// at all (DEL: a descriptor left in the set with no events would still report HUP).
void epoll_rearm(int epfd, int fd, uint64_t tag, bool on);
void epoll_del(int epfd, int fd);
int signalfd_create(const sigset_t &mask);

// Blocks until an event or timeout_ms (-1: forever). Fills tags; returns the count,
// 0 on timeout or EINTR (then interrupted is set), -1 with errno if the wait itself
// failed.
int epoll_wait_tags(int epfd, uint64_t *tags, int max, int64_t timeout_ms, bool &interrupted);

// A non-blocking, close-on-exec eventfd (-1 with errno); wake adds one to it (only
// write(2): async-signal-safe; fd < 0 is a no-op); drain reads it back to zero
// (0, or -1 with errno on a failure other than EAGAIN).
int eventfd_create();
void wake(int fd);
int drain_eventfd(int fd);

// pipe2 with O_CLOEXEC and O_NONBLOCK; false with errno.
bool cloexec_pipe(int fds[2]);
// On an exec'd child's pipe: 1 with err set if the child wrote the errno of a failed
// exec; 0 if the pipe closed empty (the exec succeeded); -1 if neither yet.
int read_exec_failure(int fd, int &err);
// In a child before exec: tells the parent the exec failed with err.
void write_exec_failure(int fd, int err);

// Waits up to timeout_ms for a SIGCHLD (blocked) to be pending, and takes it.
void wait_for_sigchld(int64_t timeout_ms);

// A signal read from a signalfd: its number, the sender (for SIGCHLD, the child),
// and, if sent by sigqueue(3) (code SI_QUEUE), its value.
struct signal_event {
    int signo;
    pid_t pid;
    int code;
    int value;
};
// Reads up to max_events pending signals from a non-blocking signalfd into events
// (no allocation); returns the count, or -1 with errno if the read failed (other
// than for want of signals). Any left over keep the descriptor readable.
ssize_t read_signals(int sfd, signal_event *events, size_t max_events);

// A child that has exited and is not yet reaped, left unreaped (waitid WNOWAIT);
// 0 if none, or no child at all. The kernel answers by walking the children.
pid_t exited_child();
// Non-blocking waitpid for one pid: 0 if still running, pid when reaped (status set),
// -1 with errno.
pid_t reap(pid_t pid, int &status);
// Blocking waitpid for one pid, retrying EINTR.
pid_t reap_blocking(pid_t pid, int &status);

// Every descriptor of this process that is a listening socket (from /proc/self/fd,
// or by probing every descriptor where /proc is missing).
std::vector<int> listening_fds();

// A socket's own address (getsockname), to tell the connections accepted from it.
struct socket_name {
    sockaddr_storage addr;
    socklen_t len;
};
bool name_of(int fd, socket_name &name);

// From a signal handler's context (SA_SIGINFO): the system call the thread was
// blocked in when the signal came, which the kernel restarts after the handler
// (SA_RESTART), with its descriptor in fd. "none": it was running, or in a call that
// is not restarted (poll, select...). Known on x86_64 only: "unknown" elsewhere.
// Async-signal-safe.
enum class blocked_call { none, read, write, accept, other, unknown };
blocked_call interrupted_call(const void *context, int &fd);

// True if fd is a connection accepted from a listening socket called one of names
// (n of them), with nothing unread; on TCP also one we have sent data on (not a new
// connection waiting for its first request) and received nothing on since (not a
// request arriving in pieces). Async-signal-safe.
bool answered_and_quiet(int fd, const socket_name *names, int n);

// One byte and a descriptor over a unix socket (SCM_RIGHTS): send_fd never blocks
// and never raises SIGPIPE; receive_fd returns the descriptor (close-on-exec) and the
// byte in tag, or -1 if there was no descriptor.
void send_fd(int sock, char tag, int fd);
int receive_fd(int sock, char &tag);

// A group's id from its name or number; false if there is no such group.
bool group_id(const std::string &name, gid_t &gid);

// Threads in this process (1 if it cannot tell).
int thread_count();

// Virtual size and shared resident size of this process in KB (/proc/self/statm,
// its first and third fields). False if unreadable.
bool process_size_kb(int64_t &size, int64_t &share);

// A socket's address family and inode (what the kernel's socket diagnostics name it
// by); false if fd is not a socket.
bool socket_identity(int fd, int &family, uint64_t &inode);

// User + system CPU time (microseconds) and resident memory (KiB) of pid, from the
// one file /proc/PID/stat (proc: a descriptor of /proc). false if it cannot be read.
bool proc_usage(int proc, pid_t pid, int64_t &cpu_us, int64_t &rss_kb);


}  // namespace fcgipm::os
