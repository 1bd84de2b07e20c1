// The status reader: finds a running manager, maps its scoreboard read-only, and
// takes consistent snapshots of it (behind pm_status_*). It trusts nothing it reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fcgi_pm.h"
#include "scoreboard.h"

namespace fcgipm {

class status_reader {
public:
    status_reader() = default;
    ~status_reader();
    status_reader(const status_reader &) = delete;
    status_reader &operator=(const status_reader &) = delete;

    // Throw error (PM_E*) with a message naming target.
    void open(const std::string &target);
    void read(int flags);
    void close();

    const pm_pool_status_t *pool() const { return have_ ? &pool_ : nullptr; }
    const pm_worker_status_t *worker(int i) const {
        return have_ && i >= 0 && static_cast<size_t>(i) < workers_.size() ? &workers_[static_cast<size_t>(i)]
                                                                           : nullptr;
    }

private:
    void open_pid(int pid, const std::string &what);
    void open_pid_file(const std::string &path);
    void open_socket(const std::string &target);
    bool open_status_socket(const std::string &path);
    void map(int fd, int pid, const std::string &what);

    const board_header *header_ = nullptr;
    size_t bytes_ = 0;
    int pid_ = 0;
    std::string what_;  // the manager, as the messages name it
    bool have_ = false;
    pm_pool_status_t pool_ = {};
    std::vector<pm_worker_status_t> workers_;
    // read's buffers, kept for the next read
    std::vector<worker_slot> copy_;
    std::vector<char> view_;
    std::vector<pm_worker_status_t> next_;
};

}  // namespace fcgipm
