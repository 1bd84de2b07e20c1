// Log line formatting: "FastCGI: <role> (pid <pid>): <msg>", the original's format.
#pragma once

#include <string>
#include <string_view>
#include <sys/types.h>

namespace fcgipm {

// The whole line without its newline. Trailing white space of msg is dropped, as the
// original's s/\s*$/\n/ does.
std::string format_log_line(std::string_view role, pid_t pid, std::string_view msg);

// Writes line plus a newline to stderr in one write(2), retrying short writes.
void write_stderr_line(const std::string &line);

}  // namespace fcgipm
