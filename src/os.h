// The OS seam: every system facility the manager and workers use, in one place.
#pragma once

#include <csignal>
#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

namespace fcgipm::os {

// errno as text ("No such file or directory").
std::string errno_text(int err);

// Monotonic clock in milliseconds.
int64_t now_ms();

// close(2) that ignores EINTR and a -1 argument.
void close_fd(int fd);
// Closes descriptors first..last in one call (close_range), or one at a time on
// kernels without it.
void close_fd_range(int first, int last);

// A pollable descriptor for child pid (pidfd_open), or -1 when the kernel has none.
int pidfd_open(pid_t pid);

// epoll instance and signalfd, both O_CLOEXEC; -1 with errno on failure.
int epoll_create();
int epoll_add(int epfd, int fd, uint64_t tag);
void epoll_del(int epfd, int fd);
int signalfd_create(const sigset_t &mask);

// Blocks until an event or timeout_ms (-1: forever). Fills tags; returns the count,
// 0 on timeout or EINTR.
int epoll_wait_tags(int epfd, uint64_t *tags, int max, int64_t timeout_ms);

// Reads every pending signal number from a non-blocking signalfd.
std::vector<int> read_signals(int sfd);

// Non-blocking waitpid for one pid: 0 if still running, pid when reaped (status set),
// -1 with errno.
pid_t reap(pid_t pid, int &status);
// Blocking waitpid for one pid, retrying EINTR.
pid_t reap_blocking(pid_t pid, int &status);

// Every descriptor of this process that is a listening socket (from /proc/self/fd,
// or by probing every descriptor where /proc is missing).
std::vector<int> listening_fds();

// Threads in this process (1 if it cannot tell).
int thread_count();

// Zeroed memory shared with the children forked after this call; nullptr on failure.
void *map_shared(size_t bytes);
void unmap_shared(void *p, size_t bytes);

// Virtual size of this process in KB (/proc/self/statm), -1 if unreadable.
int64_t vm_size_kb();


}  // namespace fcgipm::os
