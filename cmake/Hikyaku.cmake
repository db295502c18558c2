# Project helpers that keep every component's CMakeLists.txt uniform (STYLE R2).

set(HIKYAKU_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers)
# GCC 12 (Debian bookworm's) reports a false -Wrestrict inside libstdc++'s
# std::string::insert when it inlines `"literal" + std::string` at -O3 (GCC
# bug 105329, fixed in 13): a Release build would stop on correct code.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND HIKYAKU_WARNINGS -Wno-restrict)
endif()
# HIKYAKU_SANITIZE: AddressSanitizer + UBSanitizer; HIKYAKU_TSAN:
# ThreadSanitizer. The runtimes cannot be combined in one binary.
if(HIKYAKU_SANITIZE AND HIKYAKU_TSAN)
  message(FATAL_ERROR "HIKYAKU_SANITIZE (ASan/UBSan) and HIKYAKU_TSAN cannot be combined")
endif()
if(HIKYAKU_SANITIZE)
  set(HIKYAKU_SANITIZER_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer
                              -fno-sanitize-recover=undefined)
elseif(HIKYAKU_TSAN)
  set(HIKYAKU_SANITIZER_FLAGS -fsanitize=thread -fno-omit-frame-pointer)
endif()

function(hikyaku_apply_flags target)
  target_compile_options(${target} PRIVATE ${HIKYAKU_WARNINGS})
  if(HIKYAKU_TSAN)
    # Asio's std_fenced_block uses std::atomic_thread_fence, which TSan does
    # not model (GCC: -Werror=tsan). It only orders a handler run inline on
    # the calling thread; every cross-thread hand-off in Asio goes through its
    # scheduler's mutex, which TSan sees. Every target gets the same setting.
    target_compile_definitions(${target} PRIVATE BOOST_ASIO_DISABLE_FENCED_BLOCK)
  endif()
  if(HIKYAKU_SANITIZE OR HIKYAKU_TSAN)
    target_compile_options(${target} PRIVATE ${HIKYAKU_SANITIZER_FLAGS})
    target_link_options(${target} PRIVATE ${HIKYAKU_SANITIZER_FLAGS})
  endif()
  if(HIKYAKU_FUZZ)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined)
  endif()
endfunction()

# hikyaku_add_component(NAME [PUBLIC_DEPS ...] [PRIVATE_DEPS ...] [TEST_DEPS ...]
#                       [EXCLUDE subfolder ...])
# Builds hikyaku_<NAME> (alias hikyaku::<NAME>) from every *.cpp under the
# component's folder (subfolders included) except *_test.cpp, and one
# GoogleTest executable <NAME>_test from the *_test.cpp files beside the code
# (STYLE R13). Headers are included as "<component>/<file>.hpp" from src/.
function(hikyaku_add_component name)
  cmake_parse_arguments(ARG "" "" "PUBLIC_DEPS;PRIVATE_DEPS;TEST_DEPS;EXCLUDE" ${ARGN})
  file(GLOB_RECURSE all_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  # A subfolder with its own library (e.g. the sans-I/O protocol/ of smtp
  # and pop3, which fuzz targets link without Asio) is left out here.
  foreach(sub ${ARG_EXCLUDE})
    list(FILTER all_sources EXCLUDE REGEX "^${CMAKE_CURRENT_SOURCE_DIR}/${sub}/")
  endforeach()
  set(sources "")
  set(tests "")
  foreach(f ${all_sources})
    if(f MATCHES "_test\\.cpp$")
      list(APPEND tests ${f})
    else()
      list(APPEND sources ${f})
    endif()
  endforeach()
  if(NOT sources)
    return()  # a component folder that has no code yet
  endif()
  add_library(hikyaku_${name} STATIC ${sources})
  add_library(hikyaku::${name} ALIAS hikyaku_${name})
  target_include_directories(hikyaku_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(hikyaku_${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  hikyaku_apply_flags(hikyaku_${name})
  if(HIKYAKU_SANITIZE OR HIKYAKU_TSAN)
    target_link_options(hikyaku_${name} INTERFACE ${HIKYAKU_SANITIZER_FLAGS})
  endif()
  if(tests AND HIKYAKU_TESTS)
    hikyaku_add_test(${name} SOURCES ${tests} DEPS hikyaku::${name} ${ARG_TEST_DEPS})
  endif()
endfunction()

# hikyaku_add_test(NAME SOURCES ... DEPS ...): one GoogleTest executable and
# one CTest test that runs all of it in one process (a process per test case
# cost ~0.1 s plain and ~0.3 s under a sanitizer, 1,700 times a stage). The
# per-case verdicts come from GoogleTest's own report: with
# GTEST_OUTPUT=xml:DIR/ each executable writes DIR/<name>_test.xml, which
# scripts/suite_report.py reads; run one case with --gtest_filter. Tests find
# the public suites through HIKYAKU_TESTDATA_DIR (../shared/testdata beside
# the checkout).
function(hikyaku_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name}_test ${ARG_SOURCES})
  target_link_libraries(${name}_test PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_compile_definitions(${name}_test PRIVATE
    HIKYAKU_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    HIKYAKU_TESTDATA_DIR="${PROJECT_SOURCE_DIR}/../shared/testdata")
  hikyaku_apply_flags(${name}_test)
  add_test(NAME ${name}_test COMMAND ${name}_test)
  set_tests_properties(${name}_test PROPERTIES LABELS unit TIMEOUT 1800)
endfunction()
