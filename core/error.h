// Errors: every failure in this project is an rwkv::Error whose message says what went wrong and where
// (the op or file, the shapes, dtypes or values involved). Never undefined behaviour on bad input.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace rwkv {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
// Joins any streamable pieces into one message.
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

}  // namespace rwkv

// RWKV_CHECK(cond, "op name: ", pieces...) throws rwkv::Error with the joined message when cond is false.
#define RWKV_CHECK(cond, ...)                                        \
  do {                                                               \
    if (!(cond)) [[unlikely]] {                                      \
      throw ::rwkv::Error(::rwkv::detail::concat(__VA_ARGS__));      \
    }                                                                \
  } while (0)

#define RWKV_FAIL(...) throw ::rwkv::Error(::rwkv::detail::concat(__VA_ARGS__))
