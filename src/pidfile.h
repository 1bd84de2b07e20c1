// The manager's pid file: opened without following symlinks, locked with flock for
// as long as it is held, its content written in one write, and removed only while
// the path still names the file this process wrote.
#pragma once

#include <string>
#include <sys/types.h>

namespace fcgipm {

class pid_file {
public:
    pid_file() = default;
    pid_file(const pid_file &) = delete;
    pid_file &operator=(const pid_file &) = delete;
    ~pid_file() { forget(); }

    // Creates or takes over `path` and writes pid. PM_OK, or PM_ELOCKED (another live
    // holder), PM_EPIDFILE (symlink, FIFO, directory...), PM_ESYS; `message` says why.
    // The PM_ESYS message has the original's form "open: <file>: <reason>".
    int acquire(const std::string &path, pid_t pid, std::string &message);

    // Unlinks the file if the path still names it, then lets go of it. PM_OK, or
    // PM_ESYS with "unlink: <file>: <reason>".
    int release(std::string &message);

    // Closes the descriptor without touching the file (in a forked worker, and at exit).
    void forget();

    bool held() const { return fd_ >= 0; }
    const std::string &path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
};

// The pid a pid file names, or -1 if it names none.
pid_t read_pid_file(const std::string &path);

}  // namespace fcgipm
