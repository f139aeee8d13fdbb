# certs/tg-certs: the development PKI tool, checked with the openssl CLI.
add_test(NAME certs_tool
  COMMAND bash ${PROJECT_SOURCE_DIR}/tests/integration/test_certs.sh
          ${PROJECT_SOURCE_DIR}/certs/tg-certs)
set_tests_properties(certs_tool PROPERTIES LABELS integration)
