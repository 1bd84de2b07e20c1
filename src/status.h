// The status reader: finds a running manager, maps its scoreboard read-only, and
// takes consistent snapshots of it (behind pm_status_*). It trusts nothing it reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fcgi_pm.h"
#include "scoreboard.h"

namespace fcgipm {

// One worker in a snapshot (pm_slot_field_t's figures).
struct worker_status {
    int pid;
    int slot;
    int state;  // pm_worker_state_t
    int busy;
    unsigned long long requests;
    long long started_us;
    long long request_start_us;  // -1: none yet
    long long request_us;        // -1: none yet
    char method[16];
    char uri[192];
    char remote[48];
    long long cpu_us;  // -1 unknown or not read
    long long rss_kb;
};

// The pool in a snapshot (pm_pool_field_t's figures).
struct pool_status {
    int manager_pid;
    char title[256];
    char phase[16];
    char mode[16];  // params "pool"
    long long started_us, uptime_us;
    int target, workers, ready, idle, busy, starting, stopping;
    int crash_backoff;
    long long backoff_us;
    unsigned long long accepted, requests, spawned, respawns, exits, crashes, reloads, max_busy, pool_full;
    unsigned long long slow_requests, deadline_kills, recycled;
    long long listen_queue, listen_queue_max, listen_backlog;  // -1 unknown
};

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

    const pool_status *pool() const { return have_ ? &pool_ : nullptr; }
    const worker_status *worker(int i) const {
        return have_ && i >= 0 && static_cast<size_t>(i) < workers_.size() ? &workers_[static_cast<size_t>(i)]
                                                                           : nullptr;
    }

    // The snapshot's figures by number (pm_status_value, pm_status_text): false for
    // no such number, or one of the other kind.
    bool pool_value(int field, long long &value) const;
    const char *pool_text(int field) const;
    static bool worker_value(const worker_status &w, int field, long long &value);
    static const char *worker_text(const worker_status &w, int field);
    // pm_status_field_info's table.
    static bool field_info(int slot, int field, const char *&name, bool &is_text);

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
    pool_status pool_ = {};
    std::vector<worker_status> workers_;
    std::vector<worker_status> next_;  // read's, kept for the next read
};

}  // namespace fcgipm
