# Project helpers that keep every component's CMakeLists.txt uniform (STYLE R2).

set(HIKYAKU_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers)
set(HIKYAKU_SANITIZER_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer
                            -fno-sanitize-recover=undefined)

function(hikyaku_apply_flags target)
  target_compile_options(${target} PRIVATE ${HIKYAKU_WARNINGS})
  if(HIKYAKU_SANITIZE)
    target_compile_options(${target} PRIVATE ${HIKYAKU_SANITIZER_FLAGS})
    target_link_options(${target} PRIVATE ${HIKYAKU_SANITIZER_FLAGS})
  endif()
  if(HIKYAKU_FUZZ)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined)
  endif()
endfunction()

# hikyaku_add_component(NAME SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# Builds hikyaku_<NAME> (alias hikyaku::<NAME>); headers are included as
# "<component>/<file>.hpp" from src/.
function(hikyaku_add_component name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(hikyaku_${name} STATIC ${ARG_SOURCES})
  add_library(hikyaku::${name} ALIAS hikyaku_${name})
  target_include_directories(hikyaku_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(hikyaku_${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  hikyaku_apply_flags(hikyaku_${name})
  if(HIKYAKU_SANITIZE)
    target_link_options(hikyaku_${name} INTERFACE ${HIKYAKU_SANITIZER_FLAGS})
  endif()
endfunction()

# hikyaku_add_test(NAME SOURCES ... DEPS ...): one GoogleTest executable per
# component, test names discovered by CTest.
function(hikyaku_add_test name)
  if(NOT HIKYAKU_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name}_test ${ARG_SOURCES})
  target_link_libraries(${name}_test PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_compile_definitions(${name}_test PRIVATE
    HIKYAKU_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    HIKYAKU_TESTDATA_DIR="${PROJECT_SOURCE_DIR}/../shared/testdata")
  hikyaku_apply_flags(${name}_test)
  gtest_discover_tests(${name}_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS unit)
endfunction()
