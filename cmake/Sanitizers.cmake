# JOBQ_SANITIZE: "" | "address,undefined" | "thread" (ASan and TSan exclude each other).
if(JOBQ_SANITIZE)
  if(JOBQ_SANITIZE MATCHES "thread" AND JOBQ_SANITIZE MATCHES "address")
    message(FATAL_ERROR "JOBQ_SANITIZE: address and thread sanitizers exclude each other")
  endif()
  set(jobq_san_flags -fsanitize=${JOBQ_SANITIZE} -fno-omit-frame-pointer)
  if(JOBQ_SANITIZE MATCHES "undefined")
    list(APPEND jobq_san_flags -fno-sanitize-recover=undefined)
  endif()
  add_compile_options(${jobq_san_flags})
  add_link_options(${jobq_san_flags})
endif()

# JOBQ_FUZZ: the library and tests get libFuzzer's coverage instrumentation; the targets in
# tests/fuzz link libFuzzer's main (-fsanitize=fuzzer). clang only (libclang-rt-14-dev).
if(JOBQ_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "JOBQ_FUZZ needs clang (cmake --preset fuzz), not ${CMAKE_C_COMPILER_ID}")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
