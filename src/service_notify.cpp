#include "service_notify.h"

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "os.h"

namespace fcgipm {

void service_notifier::take_from_environment() {
    const char *value = ::getenv("NOTIFY_SOCKET");
    std::string address = value ? value : "";
    was_set_ = value != nullptr;
    taken_ = address;
    ::unsetenv("NOTIFY_SOCKET");
    bool usable = !address.empty() && (address[0] == '/' || address[0] == '@') &&
                  address.size() < sizeof(sockaddr_un{}.sun_path);
    address_ = usable ? address : "";
}

void service_notifier::give_back_to_environment() {
    if (was_set_)
        ::setenv("NOTIFY_SOCKET", taken_.c_str(), 1);
    was_set_ = false;
    address_.clear();
}

void service_notifier::send(const std::string &message) const {
    if (address_.empty())
        return;
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, address_.data(), address_.size());
    if (address_[0] == '@')
        addr.sun_path[0] = '\0';  // abstract namespace
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() +
                                      (address_[0] == '@' ? 0 : 1));
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    // Never blocks: a service manager that stopped reading must not stall the loop.
    ::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT, reinterpret_cast<sockaddr *>(&addr),
             len);
    os::close_fd(fd);
}

void service_notifier::send(const std::string &state, const std::string &status_text) {
    if (address_.empty())
        return;
    last_status_ = status_text;
    send(state + "\nSTATUS=" + status_text);
}

void service_notifier::status(const std::string &text) {
    if (address_.empty() || text == last_status_)
        return;
    last_status_ = text;
    send("STATUS=" + text);
}

long long service_notifier::monotonic_usec() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace fcgipm
