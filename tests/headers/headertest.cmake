# Compiles every public header under INCLUDE_DIR alone: as C99 with -pedantic -Werror, and as
# C++ (when CXX names a compiler). Run by ctest: cmake -DCC=.. -DCXX=.. -DINCLUDE_DIR=..
# -DWORK_DIR=.. [-DGEN_INCLUDE_DIR=<build>/include] -P headertest.cmake
# GEN_INCLUDE_DIR: where the generated jobq/version.h is, in a build tree (installed, it sits
# beside the other headers).
cmake_minimum_required(VERSION 3.25)
set(extra_includes "")
if(GEN_INCLUDE_DIR)
  set(extra_includes -I${GEN_INCLUDE_DIR})
endif()

file(GLOB_RECURSE headers RELATIVE ${INCLUDE_DIR} ${INCLUDE_DIR}/*.h)
list(SORT headers)
if(NOT headers)
  message(FATAL_ERROR "headertest: no headers under ${INCLUDE_DIR}")
endif()
file(MAKE_DIRECTORY ${WORK_DIR})
set(failed "")
set(checked 0)
foreach(h IN LISTS headers)
  string(MAKE_C_IDENTIFIER ${h} stem)
  # Included twice: the include guard must work too.
  file(WRITE ${WORK_DIR}/${stem}.c "#include \"${h}\"\n#include \"${h}\"\nint main(void) { return 0; }\n")
  execute_process(
    COMMAND ${CC} -std=c99 -pedantic -Werror -Wall -Wextra -Wstrict-prototypes -fsyntax-only
            -I${INCLUDE_DIR} ${extra_includes} ${WORK_DIR}/${stem}.c
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  math(EXPR checked "${checked} + 1")
  if(NOT rc EQUAL 0)
    message("FAIL (C99) ${h}:\n${out}")
    list(APPEND failed "${h} (C99)")
  endif()
  if(CXX)
    file(WRITE ${WORK_DIR}/${stem}.cpp "#include \"${h}\"\nint main() { return 0; }\n")
    execute_process(
      COMMAND ${CXX} -std=c++11 -pedantic -Werror -Wall -Wextra -fsyntax-only
              -I${INCLUDE_DIR} ${extra_includes} ${WORK_DIR}/${stem}.cpp
      RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    math(EXPR checked "${checked} + 1")
    if(NOT rc EQUAL 0)
      message("FAIL (C++) ${h}:\n${out}")
      list(APPEND failed "${h} (C++)")
    endif()
  endif()
endforeach()
list(LENGTH failed nfailed)
math(EXPR npassed "${checked} - ${nfailed}")
message("headertest: ${npassed} passed, ${nfailed} failed")
if(failed)
  message(FATAL_ERROR "headers that do not compile alone: ${failed}")
endif()
