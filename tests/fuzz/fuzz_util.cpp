#include "fuzz_util.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <typeinfo>

#include "core/error.h"

namespace rwkv::fuzz {

namespace {
[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "\n==fuzz== %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace

const std::string& scratch_dir() {
  // Never destroyed: the atexit handler that removes the directory runs after static destructors would.
  static const std::string* dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    auto* pattern = new std::string(std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/rwkv-fuzz-XXXXXX");
    if (mkdtemp(pattern->data()) == nullptr) die("cannot create a scratch directory from " + *pattern);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_dir(), ignored);
    });
    return pattern;
  }();
  return *dir;
}

std::string write_scratch_file(const std::string& name, const std::uint8_t* data, std::size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  file.close();
  if (!file) die("cannot write the scratch file " + path);
  return path;
}

std::string write_scratch_file(const std::string& name, std::string_view text) {
  return write_scratch_file(name, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

void expect_clean_errors(const std::function<void()>& body, const std::string& must_mention) {
  try {
    body();
  } catch (const rwkv::Error& error) {
    const std::string message = error.what();
    if (message.empty()) die("rwkv::Error with an empty message");
    if (!must_mention.empty() && message.find(must_mention) == std::string::npos) {
      die("rwkv::Error that does not name '" + must_mention + "': " + message);
    }
  } catch (const std::exception& error) {
    die(std::string("bad input escaped as ") + typeid(error).name() + " instead of rwkv::Error: " + error.what());
  }
}

void require(bool condition, const std::string& what) {
  if (!condition) die("property violated: " + what);
}

}  // namespace rwkv::fuzz
