# What `cmake --install` puts where, and the Debian package cpack builds from it
# (docs/packaging.md). Paths are relative to CMAKE_INSTALL_PREFIX (/usr in the package).

set(CLUSTERMGR_PROGRAMS clustermgrd clustermgr state-inspect serf-events)
install(TARGETS ${CLUSTERMGR_PROGRAMS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Man pages, generated from each program's --help and --version (and docs/man/*.h2m).
if(CLUSTERMGR_MANPAGES)
  find_program(HELP2MAN help2man)
  if(NOT HELP2MAN)
    message(FATAL_ERROR "help2man not found: install it (scripts/install-deps.sh) or configure "
                        "with -DCLUSTERMGR_MANPAGES=OFF")
  endif()
  set(man_pages "")
  foreach(entry "clustermgr;1;command-line client of the clustermgr cluster manager"
                "clustermgrd;8;the clustermgr manager daemon"
                "state-inspect;1;read clustermgr data dirs and live instances"
                "serf-events;1;print Serf membership events")
    list(GET entry 0 prog)
    list(GET entry 1 section)
    list(GET entry 2 summary)
    set(page ${CMAKE_BINARY_DIR}/man/${prog}.${section})
    set(include_file ${PROJECT_SOURCE_DIR}/docs/man/${prog}.h2m)
    set(include_args "")
    set(include_deps "")
    if(EXISTS ${include_file})
      set(include_args --include=${include_file})
      set(include_deps ${include_file})
    endif()
    add_custom_command(
      OUTPUT ${page}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
      COMMAND ${HELP2MAN} --no-info --section=${section} --name=${summary}
              --version-string=${PROJECT_VERSION} ${include_args} --output=${page}
              $<TARGET_FILE:${prog}>
      DEPENDS ${prog} ${include_deps}
      COMMENT "help2man ${prog}.${section}"
      VERBATIM)
    list(APPEND man_pages ${page})
    install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endforeach()
  add_custom_target(man_pages ALL DEPENDS ${man_pages})
endif()

# Shell completion: one script for the three interactive programs, under each one's name.
foreach(prog clustermgr clustermgrd state-inspect)
  install(FILES ${PROJECT_SOURCE_DIR}/docs/completion/clustermgr.bash
          DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME ${prog})
endforeach()

# systemd: the units, and the dedicated user they run as.
install(FILES ${PROJECT_SOURCE_DIR}/docs/systemd/clustermgrd.service
              ${PROJECT_SOURCE_DIR}/docs/systemd/clustermgr-serf.service
        DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/docs/systemd/clustermgr.sysusers
        DESTINATION lib/sysusers.d RENAME clustermgr.conf)

# Documentation and example configuration.
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/operations.md
              ${PROJECT_SOURCE_DIR}/docs/packaging.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/docs/systemd/clustermgrd.conf.example
              ${PROJECT_SOURCE_DIR}/docs/systemd/serf.json.example
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/demo/playbooks/
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/playbooks)

# The Debian package: cpack -G DEB (in the build dir). Library dependencies come from
# dpkg-shlibdeps (dpkg-dev); the programs clustermgrd runs are declared here.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME clustermgr)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "clustermgr maintainers <clustermgr-maintainers@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "highly available cluster manager (Serf discovery, Ansible playbooks, replicated state)")
set(CPACK_PACKAGE_DESCRIPTION
    "clustermgrd instances discover machines through Serf, commission, decommission and update \
them with Ansible playbooks, and keep their inventory as CRDTs gossiped between instances and \
persisted in LevelDB. clustermgr is the command-line client; state-inspect reads data dirs.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "serf, ansible-core, systemd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/postinst ${PROJECT_SOURCE_DIR}/packaging/prerm
    ${PROJECT_SOURCE_DIR}/packaging/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
