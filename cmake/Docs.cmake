# The API reference (Doxygen over the public headers) and the man page.
# `cmake --build --preset dev --target docs` writes <build>/docs/api/html; the test docs.api runs
# the same configuration and fails on any warning (an undocumented public symbol included).
find_program(JOBQ_DOXYGEN doxygen)
set(JOBQ_DOCS_OUT ${PROJECT_BINARY_DIR}/docs/api)
set(JOBQ_DOCS_WARN_AS_ERROR FAIL_ON_WARNINGS)
file(MAKE_DIRECTORY ${JOBQ_DOCS_OUT})
configure_file(${PROJECT_SOURCE_DIR}/docs/api/Doxyfile.in ${JOBQ_DOCS_OUT}/Doxyfile @ONLY)
if(JOBQ_DOXYGEN)
  add_custom_target(docs
    COMMAND ${JOBQ_DOXYGEN} ${JOBQ_DOCS_OUT}/Doxyfile
    COMMENT "Doxygen: API reference in ${JOBQ_DOCS_OUT}/html"
    VERBATIM)
endif()
