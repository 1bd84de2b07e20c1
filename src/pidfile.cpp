#include "pidfile.h"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "os.h"

namespace fcgipm {

namespace {

// Opens path for writing the way a pid file must be: never through a symlink, never
// blocking on a FIFO. Returns the fd or a negative PM code with message.
int open_pid_path(const std::string &path, struct stat &st, std::string &message) {
    // Looked at before it is opened: opening a device or a socket may do something.
    struct stat seen;
    if (::lstat(path.c_str(), &seen) == 0 && !S_ISREG(seen.st_mode)) {
        message = "pid file " + path + (S_ISLNK(seen.st_mode) ? " is a symbolic link: refused"
                                                                : " is not a regular file: refused");
        return PM_EPIDFILE;
    }
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0644);
    if (fd < 0) {
        int err = errno;
        if (err == ELOOP) {
            message = "pid file " + path + " is a symbolic link: refused";
            return PM_EPIDFILE;
        }
        message = "open: " + path + ": " + os::errno_text(err);
        return PM_ESYS;
    }
    if (::fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        message = "pid file " + path + " is not a regular file: refused";
        return PM_EPIDFILE;
    }
    return fd;
}

}  // namespace

pid_t read_pid_file(const std::string &path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[32];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *end = nullptr;
    long pid = std::strtol(buf, &end, 10);
    return pid > 0 && (*end == '\n' || *end == '\0') ? static_cast<pid_t>(pid) : -1;
}

int pid_file::acquire(const std::string &path, pid_t pid, std::string &message) {
    if (held() && path != path_)
        forget();
    if (!held()) {
        // The holder may unlink the file between our open and our lock: lock, then
        // check the path still names what we locked, else start over.
        for (int attempt = 0;; ++attempt) {
            struct stat st;
            int fd = open_pid_path(path, st, message);
            if (fd < 0)
                return fd;
            if (::flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int err = errno;
                ::close(fd);
                if (err == EWOULDBLOCK) {
                    pid_t holder = read_pid_file(path);
                    message = "pid file " + path + " is held by another manager" +
                              (holder > 0 ? " (pid " + std::to_string(holder) + ")" : std::string());
                    return PM_ELOCKED;
                }
                message = "open: " + path + ": " + os::errno_text(err);
                return PM_ESYS;
            }
            struct stat now;
            if (::lstat(path.c_str(), &now) == 0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino) {
                fd_ = fd;
                dev_ = st.st_dev;
                ino_ = st.st_ino;
                path_ = path;
                break;
            }
            ::close(fd);
            if (attempt == 3) {
                message = "flock: " + path + ": replaced while being locked";
                return PM_ESYS;
            }
        }
    }
    // Emptied, then the whole line in one write: a reader sees no pid or the pid,
    // never a mix with an older one.
    std::string line = std::to_string(pid) + "\n";
    if (::ftruncate(fd_, 0) < 0 ||
        ::pwrite(fd_, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size())) {
        message = "write: " + path + ": " + os::errno_text(errno);
        return PM_ESYS;
    }
    return PM_OK;
}

int pid_file::release(std::string &message) {
    if (!held())
        return PM_OK;
    int rc = PM_OK;
    struct stat st;
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
        if (::unlink(path_.c_str()) < 0) {
            message = "unlink: " + path_ + ": " + os::errno_text(errno);
            rc = PM_ESYS;
        }
    }
    forget();
    return rc;
}

void pid_file::forget() {
    os::close_fd(fd_);
    fd_ = -1;
}

}  // namespace fcgipm
