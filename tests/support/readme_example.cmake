# Extracts the first ```c fenced block of README, compiles it against the static library and
# runs it. Fails (never skips) when README has no such block. Run by ctest:
# cmake -DREADME=.. -DCC=.. -DINCLUDE_DIR=.. -DGEN_INCLUDE_DIR=<build>/include -DLIB=.. -DLIBS=a|b -DFLAGS=x|y -DWORK_DIR=..
#       -P readme_example.cmake
cmake_minimum_required(VERSION 3.25)

if(NOT EXISTS "${README}")
  message(FATAL_ERROR "readme.example: ${README} does not exist; it must hold a ```c example")
endif()
file(READ "${README}" text)
# The opening fence: a line that is exactly ```c (the first one in the file).
string(REGEX MATCH "(^|\n)```c[ \t]*\n" open "${text}")
if(NOT open)
  message(FATAL_ERROR "readme.example: no ```c fenced block in ${README}")
endif()
string(FIND "${text}" "${open}" at)
string(LENGTH "${open}" len)
math(EXPR at "${at} + ${len}")
string(SUBSTRING "${text}" ${at} -1 rest)
string(FIND "${rest}" "\n```" close)
if(close EQUAL -1)
  message(FATAL_ERROR "readme.example: the ```c block in ${README} is not closed")
endif()
math(EXPR close "${close} + 1")
string(SUBSTRING "${rest}" 0 ${close} code)

file(MAKE_DIRECTORY "${WORK_DIR}")
file(WRITE "${WORK_DIR}/readme_example.c" "${code}")
string(REPLACE "|" ";" libs "${LIBS}")
string(REPLACE "|" ";" flags "${FLAGS}")
execute_process(
  COMMAND ${CC} -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror ${flags}
          -I${INCLUDE_DIR} -I${GEN_INCLUDE_DIR} "${WORK_DIR}/readme_example.c" "${LIB}" ${libs}
          -o "${WORK_DIR}/readme_example"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "readme.example: the README example does not compile:\n${out}")
endif()
execute_process(COMMAND "${WORK_DIR}/readme_example" WORKING_DIRECTORY "${WORK_DIR}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "readme.example: the README example exited with ${rc}")
endif()
message("readme.example: compiled and ran the README's C example")
