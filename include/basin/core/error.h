// basin::Error and BASIN_CHECK: every failure inside the library is an exception carrying one
// line of the form "what was being done: what was expected, what was found". The CLI catches it
// once, prints the line and exits non-zero.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace basin {

class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest> void append(std::ostringstream& out, const T& value, const Rest&... rest) {
    out << value;
    append(out, rest...);
}
} // namespace detail

// Builds a message from any streamable pieces: fail("reading ", path, ": bad header").
template <typename... Parts> [[noreturn]] void fail(const Parts&... parts) {
    std::ostringstream out;
    detail::append(out, parts...);
    throw Error(out.str());
}

template <typename... Parts> std::string str(const Parts&... parts) {
    std::ostringstream out;
    detail::append(out, parts...);
    return out.str();
}

} // namespace basin

// BASIN_CHECK(cond, "reading ", path, ": expected ...") throws basin::Error when cond is false.
#define BASIN_CHECK(cond, ...)                                                                                         \
    do {                                                                                                               \
        if (!(cond)) ::basin::fail(__VA_ARGS__);                                                                       \
    } while (0)
