// A shared library opened when it is first needed (dlopen), so that a process that never touches a GPU does not
// pay for loading cuBLAS and NCCL: they are ~270 MB of code whose relocation costs every `rwkv` start about
// 0.4 s of CPU, while most commands (data-info, tokenize, CPU training, every CLI test) use neither.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace rwkv {

class SharedLibrary {
public:
  // Opens the first of `names` that loads, each looked up as dlopen does (LD_LIBRARY_PATH, the RUNPATH, the
  // system's library paths) and then in `fallback_dir` (the toolkit this binary was built against). Throws
  // rwkv::Error saying what `purpose` needed it and every place tried with the loader's reason.
  static SharedLibrary open(const std::vector<std::string>& names, const std::string& fallback_dir,
                            const std::string& purpose);

  // The address of `name`; throws rwkv::Error naming the library and the symbol when it has none.
  void* symbol(const char* name) const;
  template <typename Function>
  Function function(const char* name) const {
    return reinterpret_cast<Function>(symbol(name));
  }
  const std::string& path() const { return path_; }

private:
  SharedLibrary(void* handle, std::string path) : handle_(handle), path_(std::move(path)) {}
  void* handle_;      // never closed: the library's code may run until the process exits
  std::string path_;  // the name that loaded
};

}  // namespace rwkv
