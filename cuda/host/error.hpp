// error.hpp: the one exception type of the executor. Every message names where it happened
// (file, rank, op, tensor, field) so that a failure on a GPU machine is readable from a log.
#pragma once

#include <stdexcept>
#include <string>
#include <sstream>

namespace spx {

// Error is a data or runtime problem (bad file, bad program, CUDA/NCCL failure). Programming
// errors inside the executor are Errors too: the executor never aborts without a message.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// cat concatenates its arguments with operator<< (for building messages).
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

}  // namespace spx
