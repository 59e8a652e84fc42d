# Included by the top-level CMakeLists.txt before the layers when RWKV_FUZZ is ON: every project library is
# compiled with libFuzzer's coverage instrumentation and ASan + UBSan, so the fuzz targets find memory errors and
# undefined behaviour in our parsers, not only in the few lines of the targets themselves.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "RWKV_FUZZ=ON needs clang (libFuzzer), e.g. -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang")
endif()
if(RWKV_HAVE_CUDA)
  message(FATAL_ERROR "RWKV_FUZZ=ON needs -DRWKV_CUDA=OFF (the parsers are CPU code; nvcc cannot take these flags)")
endif()
# -fno-sanitize-recover: undefined behaviour aborts, so libFuzzer records it as a crash instead of a log line.
# _GLIBCXX_ASSERTIONS: bounds-checked std::vector/string/span indexing, so an off-by-one aborts even inside an
# allocation's slack where ASan cannot see it.
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
                    -D_GLIBCXX_ASSERTIONS)
add_link_options(-fsanitize=address,undefined)
# The project's warning list is GCC's (-Wshadow=local); clang does not know every option.
target_compile_options(rwkv_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-unknown-warning-option>)
