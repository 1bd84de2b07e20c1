#include "log.h"

#include <cerrno>
#include <unistd.h>

namespace fcgipm {

namespace {
// Perl's \s: space, \t, \n, \v, \f, \r.
bool is_perl_space(char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}
}  // namespace

std::string format_log_line(std::string_view role, pid_t pid, std::string_view msg) {
    while (!msg.empty() && is_perl_space(msg.back()))
        msg.remove_suffix(1);
    std::string line = "FastCGI: ";
    line.append(role);
    line += " (pid ";
    line += std::to_string(pid);
    line += "): ";
    line.append(msg);
    return line;
}

void write_stderr_line(const std::string &line) {
    std::string out = line + '\n';
    const char *p = out.data();
    size_t left = out.size();
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;  // stderr is gone: nothing better to do with a log line
        p += n;
        left -= static_cast<size_t>(n);
    }
}

}  // namespace fcgipm
