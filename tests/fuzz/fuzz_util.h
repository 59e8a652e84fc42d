// Helpers shared by the libFuzzer targets: a private scratch directory for parsers that take a path, and the
// rule every target enforces: bad input may only throw rwkv::Error (naming the file when there is one).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace rwkv::fuzz {

// A directory of this process's own (under $TMPDIR or /tmp), made on first use and removed at exit.
const std::string& scratch_dir();
// Writes bytes to scratch_dir()/name and returns the full path.
std::string write_scratch_file(const std::string& name, const std::uint8_t* data, std::size_t size);
std::string write_scratch_file(const std::string& name, std::string_view text);

// Runs body. An rwkv::Error is the expected answer to bad input: it is swallowed, after checking that its
// message is not empty and contains `must_mention` (when given: the file name). Anything else (another
// exception type, an error without the file name) aborts with a message, which libFuzzer records as a crash.
void expect_clean_errors(const std::function<void()>& body, const std::string& must_mention = "");

// Aborts with a message when a property that must hold for every input fails.
void require(bool condition, const std::string& what);

}  // namespace rwkv::fuzz
