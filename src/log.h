// Log line formatting: "FastCGI: <role> (pid <pid>): <msg>", the original's format.
// The manager logs each worker it reaps and forks: that path formats on the stack.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace fcgipm {

// Writes the whole line, without its newline or a terminating NUL, into out if it
// fits in cap bytes, and returns its length either way. Trailing white space of msg
// is dropped, as the original's s/\s*$/\n/ does.
size_t format_log_line(char *out, size_t cap, std::string_view role, pid_t pid, std::string_view msg);
std::string format_log_line(std::string_view role, pid_t pid, std::string_view msg);

// Writes len bytes to stderr, retrying short writes (one write(2) for a line).
void write_stderr(const char *data, size_t len);

// A short message built without the heap; what does not fit is cut off.
class short_text {
public:
    short_text &operator<<(std::string_view s);
    short_text &operator<<(long long value);
    std::string_view view() const { return {buf_, len_}; }

private:
    char buf_[160];
    size_t len_ = 0;
};

}  // namespace fcgipm
