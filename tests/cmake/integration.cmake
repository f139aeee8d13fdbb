# Integration tests: the real transgate binary over real TLS on loopback,
# against the recording stub vendor and a real Apertium APY.
set(TG_IT_ENV
  "TG_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
  "TG_TRANSGATE=$<TARGET_FILE:transgate>"
  "TG_STUB_VENDOR=$<TARGET_FILE:stub_vendor>")

add_test(NAME gateway_e2e
  COMMAND ${TG_PYTHON3} ${PROJECT_SOURCE_DIR}/tests/integration/test_gateway.py)
set_tests_properties(gateway_e2e PROPERTIES LABELS integration TIMEOUT 300
  ENVIRONMENT "${TG_IT_ENV}")

add_test(NAME gateway_apertium
  COMMAND ${TG_PYTHON3} ${PROJECT_SOURCE_DIR}/tests/integration/test_apertium.py)
set_tests_properties(gateway_apertium PROPERTIES LABELS integration TIMEOUT 300
  ENVIRONMENT "${TG_IT_ENV}")

add_test(NAME gateway_policy
  COMMAND ${TG_PYTHON3} ${PROJECT_SOURCE_DIR}/tests/integration/test_policy_gateway.py)
set_tests_properties(gateway_policy PROPERTIES LABELS integration TIMEOUT 300
  ENVIRONMENT "${TG_IT_ENV}")

add_test(NAME gateway_tls_access
  COMMAND ${TG_PYTHON3} ${PROJECT_SOURCE_DIR}/tests/integration/test_tls_access.py)
set_tests_properties(gateway_tls_access PROPERTIES LABELS integration TIMEOUT 600
  ENVIRONMENT "${TG_IT_ENV}")

add_test(NAME gateway_audit
  COMMAND ${TG_PYTHON3} ${PROJECT_SOURCE_DIR}/tests/integration/test_audit_gateway.py)
set_tests_properties(gateway_audit PROPERTIES LABELS integration TIMEOUT 300
  ENVIRONMENT "${TG_IT_ENV}")
