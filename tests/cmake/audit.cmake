# Audit trail (gateway/audit.c, gateway/audit_cli.c).  See docs/audit.md.
tg_unit_test(test_audit ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit.c)
set_tests_properties(test_audit PROPERTIES TIMEOUT 120)

# A small writer for the CLI tests: opens a trail through the library and
# writes records, rotates, or runs cmd_audit itself (for the variant that
# does not depend on the daemon's dispatch).
add_executable(audit_tool ${CMAKE_CURRENT_SOURCE_DIR}/integration/audit_tool.c)
target_compile_options(audit_tool PRIVATE ${TG_CFLAGS})
target_link_libraries(audit_tool PRIVATE tgcore)

# The CLI through the real binary ('transgate audit ...').
add_test(NAME audit_cli
  COMMAND ${TG_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_audit_cli.py)
set_tests_properties(audit_cli PROPERTIES LABELS integration TIMEOUT 120
  SKIP_RETURN_CODE 77
  ENVIRONMENT "TG_AUDIT_CLI=$<TARGET_FILE:transgate>;TG_AUDIT_TOOL=$<TARGET_FILE:audit_tool>")

# The same checks through audit_tool's own cmd_audit, so the CLI code is
# tested even before (or without) the binary's dispatch.
add_test(NAME audit_cli_lib
  COMMAND ${TG_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_audit_cli.py)
set_tests_properties(audit_cli_lib PROPERTIES LABELS integration TIMEOUT 120
  ENVIRONMENT "TG_AUDIT_CLI=$<TARGET_FILE:audit_tool>;TG_AUDIT_TOOL=$<TARGET_FILE:audit_tool>")
