# clustermgr_purity_check(NAME ALLOWED <layers...>)
#
# Proves that the static library NAME uses nothing but the C++ standard library and the pure
# layers in ALLOWED (themselves checked the same way):
# * configuring fails if NAME's CMake target names any other library;
# * on every build, every object of libNAME.a, linked into a shared object with --no-undefined
#   against the ALLOWED archives and the C++ runtime alone, must resolve.
function(clustermgr_purity_check name)
  cmake_parse_arguments(P "" "" "ALLOWED" ${ARGN})
  get_target_property(links ${name} LINK_LIBRARIES)
  get_target_property(iface_links ${name} INTERFACE_LINK_LIBRARIES)
  foreach(lib IN LISTS links iface_links)
    if(lib AND NOT lib MATCHES "NOTFOUND$" AND NOT lib IN_LIST P_ALLOWED)
      message(FATAL_ERROR "${name} must link nothing but the standard library"
                          " (and ${P_ALLOWED}), but links ${lib}")
    endif()
  endforeach()

  get_target_property(type ${name} TYPE)
  # clang links no sanitizer runtime into a shared object, so under CLUSTERMGR_FUZZ the check
  # could not resolve the instrumentation's symbols; the gcc builds (CI's main one) run it.
  if(type STREQUAL "INTERFACE_LIBRARY" OR CLUSTERMGR_FUZZ)
    return()
  endif()
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  set(allowed_archives "")
  foreach(dep IN LISTS P_ALLOWED)
    list(APPEND allowed_archives $<TARGET_FILE:${dep}>)
  endforeach()
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${name}_link_check.so)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_CXX_COMPILER} -shared -o ${out}
            -Wl,--whole-archive $<TARGET_FILE:${name}> -Wl,--no-whole-archive ${allowed_archives}
            -Wl,--no-undefined -Wl,--no-as-needed -lstdc++ -lm -lgcc_s -lc ${CLUSTERMGR_SANITIZE}
    DEPENDS ${name} ${P_ALLOWED}
    COMMENT "Checking that ${name} links nothing but the standard library")
  add_custom_target(${name}_link_check ALL DEPENDS ${out})
endfunction()
