#include "core/shared_library.h"

#include <dlfcn.h>

#include "core/error.h"

namespace rwkv {

SharedLibrary SharedLibrary::open(const std::vector<std::string>& names, const std::string& fallback_dir,
                                  const std::string& purpose) {
  std::string tried;
  std::vector<std::string> candidates = names;
  if (!fallback_dir.empty()) {
    for (const std::string& name : names) candidates.push_back(fallback_dir + "/" + name);
  }
  for (const std::string& candidate : candidates) {
    if (void* handle = ::dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL)) return SharedLibrary(handle, candidate);
    const char* reason = ::dlerror();
    tried += "\n  " + candidate + ": " + (reason != nullptr ? reason : "cannot be loaded");
  }
  RWKV_FAIL(purpose, " needs a shared library that could not be loaded; tried:", tried,
            "\n(install the library, or add the directory that holds it to LD_LIBRARY_PATH)");
}

void* SharedLibrary::symbol(const char* name) const {
  ::dlerror();
  void* address = ::dlsym(handle_, name);
  const char* reason = ::dlerror();
  RWKV_CHECK(address != nullptr && reason == nullptr, path_, " has no symbol ", name, " (",
             reason != nullptr ? reason : "null", "); is it the version this binary was built against?");
  return address;
}

}  // namespace rwkv
