# One static library per layer folder, built from every .cc in it except tests, benchmarks and
# mains. Every *_test.cc of the folder goes into one gtest binary that CTest discovers, so a
# test file cannot be silently left out of the build.

set(CLUSTERMGR_WARNINGS -Wall -Wextra -Wpedantic)
# clang checks the thread-safety annotations (base/thread_annotations.h); gcc ignores them.
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  list(APPEND CLUSTERMGR_WARNINGS -Wthread-safety)
endif()
if(CLUSTERMGR_WERROR)
  list(APPEND CLUSTERMGR_WARNINGS -Werror)
endif()
set(CLUSTERMGR_SANITIZE "")
if(CLUSTERMGR_FUZZ)
  # Coverage instrumentation for libFuzzer without its main(); fuzz/ links the fuzzer itself.
  # UB is fatal, so that the fuzzer reports it as a crash.
  set(CLUSTERMGR_SANITIZE -fsanitize=fuzzer-no-link,address,undefined
                          -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
elseif(CLUSTERMGR_ASAN)
  set(CLUSTERMGR_SANITIZE -fsanitize=address,undefined -fno-omit-frame-pointer)
elseif(CLUSTERMGR_TSAN)
  set(CLUSTERMGR_SANITIZE -fsanitize=thread)
endif()

# Generated Cap'n Proto code lands in ${CMAKE_BINARY_DIR}/gen/<folder>/x.capnp.h so that it is
# included as "net/x.capnp.h", like the sources.
set(CLUSTERMGR_GEN_DIR ${CMAKE_BINARY_DIR}/gen)
# The version every program reports, from project(VERSION): #include "clustermgr_version.h".
configure_file(${PROJECT_SOURCE_DIR}/cmake/version.h.in ${CLUSTERMGR_GEN_DIR}/clustermgr_version.h
               @ONLY)

function(clustermgr_target_defaults target)
  target_compile_options(${target} PRIVATE ${CLUSTERMGR_WARNINGS} ${CLUSTERMGR_SANITIZE})
  target_link_options(${target} PRIVATE ${CLUSTERMGR_SANITIZE})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR} ${CLUSTERMGR_GEN_DIR})
endfunction()

# clustermgr_layer(NAME DEPS <libs...> TEST_DEPS <libs...>)
function(clustermgr_layer name)
  cmake_parse_arguments(L "" "" "DEPS;TEST_DEPS" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  list(FILTER srcs EXCLUDE REGEX "_(test|bench|main)\\.cc$")
  file(GLOB_RECURSE tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc)
  file(GLOB_RECURSE schemas CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.capnp)
  # A sub-folder with a CMakeLists.txt of its own is a library of its own (mgr/http,
  # mgr/fencing).
  file(GLOB_RECURSE sublists CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*/CMakeLists.txt)
  foreach(sublist ${sublists})
    get_filename_component(subdir ${sublist} DIRECTORY)
    foreach(var srcs tests schemas)
      list(FILTER ${var} EXCLUDE REGEX "^${subdir}/")
    endforeach()
  endforeach()

  if(schemas)
    set(CAPNPC_SRC_PREFIX ${PROJECT_SOURCE_DIR})
    set(CAPNPC_OUTPUT_DIR ${CLUSTERMGR_GEN_DIR})
    file(MAKE_DIRECTORY ${CLUSTERMGR_GEN_DIR})
    capnp_generate_cpp(capnp_srcs capnp_hdrs ${schemas})
    list(APPEND srcs ${capnp_srcs})
  endif()

  if(NOT srcs)
    # A layer with no code yet still exists in the link graph (and its tests still build: test/
    # may hold nothing but tests).
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR} ${CLUSTERMGR_GEN_DIR})
    target_link_libraries(${name} INTERFACE ${L_DEPS})
  else()
    add_library(${name} STATIC ${srcs})
    clustermgr_target_defaults(${name})
    if(schemas)
      # Generated code is not ours to warn about.
      set_source_files_properties(${capnp_srcs} PROPERTIES COMPILE_OPTIONS "-w")
    endif()
    target_link_libraries(${name} PUBLIC ${L_DEPS})
  endif()

  if(tests AND CLUSTERMGR_TESTS)
    add_executable(${name}_tests ${tests})
    clustermgr_target_defaults(${name}_tests)
    target_link_libraries(${name}_tests PRIVATE ${name} ${L_TEST_DEPS} GTest::gmock GTest::gtest_main)
    gtest_discover_tests(${name}_tests DISCOVERY_TIMEOUT 60 PROPERTIES LABELS ${name})
  endif()
endfunction()

# Every <name>_main.cc in the current folder becomes the program <name> (underscores become
# dashes: state_inspect_main.cc -> state-inspect), linked against LIBS.
function(clustermgr_programs)
  cmake_parse_arguments(P "" "" "LIBS" ${ARGN})
  file(GLOB mains CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_main.cc)
  foreach(main ${mains})
    get_filename_component(base ${main} NAME_WE)
    string(REGEX REPLACE "_main$" "" prog ${base})
    string(REPLACE "_" "-" prog ${prog})
    add_executable(${prog} ${main})
    clustermgr_target_defaults(${prog})
    target_link_libraries(${prog} PRIVATE ${P_LIBS})
  endforeach()
endfunction()

# clustermgr_link_check(LIB): every object of LIB, linked into a program with nothing but LIB's
# declared dependencies, must resolve. A sub-layer that calls into the layer above it (or one
# beside it that it does not list) fails the build. Not under CLUSTERMGR_FUZZ (instrumented
# objects need the fuzzer's runtime to link).
function(clustermgr_link_check lib)
  if(CLUSTERMGR_FUZZ)
    return()
  endif()
  set(main ${CMAKE_CURRENT_BINARY_DIR}/${lib}_link_check_main.cc)
  file(CONFIGURE OUTPUT ${main} CONTENT "int main() { return 0; }\n")
  add_executable(${lib}_link_check ${main})
  clustermgr_target_defaults(${lib}_link_check)
  target_link_libraries(${lib}_link_check PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,${lib}>")
  set_target_properties(${lib}_link_check PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                                     ${CMAKE_CURRENT_BINARY_DIR})
endfunction()
