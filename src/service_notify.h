// Service manager notifications (systemd's sd_notify protocol), sent by the manager
// when it was started with NOTIFY_SOCKET: READY=1 once the pool is up, RELOADING=1
// on HUP, STOPPING=1 on TERM, and STATUS= lines with the pool's size.
#pragma once

#include <string>

namespace fcgipm {

class service_notifier {
public:
    // Takes NOTIFY_SOCKET out of the environment (workers must not talk to the
    // service manager in the manager's name) and remembers it. Nothing is sent if it
    // was not set, or is not a unix socket address.
    void take_from_environment();
    // Puts NOTIFY_SOCKET back as it was taken (a pm_manage that failed changes nothing).
    void give_back_to_environment();
    bool active() const { return !address_.empty(); }

    // Sends one datagram of "KEY=value" lines; failures are ignored (the service
    // manager may be gone), as sd_notify's callers do.
    void send(const std::string &message) const;
    // State lines, then STATUS=status_text (remembered as the last status sent).
    void send(const std::string &state, const std::string &status_text);
    // As send, but only when status differs from the last STATUS= sent.
    void status(const std::string &text);

    // CLOCK_MONOTONIC in microseconds, for RELOADING's MONOTONIC_USEC.
    static long long monotonic_usec();

private:
    std::string address_;  // a path, or '@' then an abstract name
    std::string taken_;    // the variable's value as it was
    bool was_set_ = false;
    std::string last_status_;
};

}  // namespace fcgipm
