#include "log.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <unistd.h>

namespace fcgipm {

namespace {
// Perl's \s: space, \t, \n, \v, \f, \r.
bool is_perl_space(char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

// Appends s to out at len, as far as it fits in cap; len counts it all regardless.
void put(char *out, size_t cap, size_t &len, std::string_view s) {
    if (len < cap)
        std::memcpy(out + len, s.data(), std::min(s.size(), cap - len));
    len += s.size();
}
}  // namespace

size_t format_log_line(char *out, size_t cap, std::string_view role, pid_t pid, std::string_view msg) {
    while (!msg.empty() && is_perl_space(msg.back()))
        msg.remove_suffix(1);
    char digits[16];
    auto end = std::to_chars(digits, digits + sizeof digits, pid).ptr;
    size_t len = 0;
    put(out, cap, len, "FastCGI: ");
    put(out, cap, len, role);
    put(out, cap, len, " (pid ");
    put(out, cap, len, {digits, static_cast<size_t>(end - digits)});
    put(out, cap, len, "): ");
    put(out, cap, len, msg);
    return len;
}

std::string format_log_line(std::string_view role, pid_t pid, std::string_view msg) {
    std::string line(format_log_line(nullptr, 0, role, pid, msg), '\0');
    format_log_line(line.data(), line.size(), role, pid, msg);
    return line;
}

void write_stderr(const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = ::write(STDERR_FILENO, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;  // stderr is gone: nothing better to do with a log line
        data += n;
        len -= static_cast<size_t>(n);
    }
}

short_text &short_text::operator<<(std::string_view s) {
    size_t n = std::min(s.size(), sizeof buf_ - len_);
    std::memcpy(buf_ + len_, s.data(), n);
    len_ += n;
    return *this;
}

short_text &short_text::operator<<(long long value) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    return *this << std::string_view(digits, static_cast<size_t>(end - digits));
}

}  // namespace fcgipm
