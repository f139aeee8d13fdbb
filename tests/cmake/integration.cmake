# Integration tests: the real transgate binary over real TLS on loopback,
# against the recording stub vendor and a real Apertium APY.
set(TG_IT_ENV
  "TG_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
  "TG_TRANSGATE=$<TARGET_FILE:transgate>"
  "TG_STUB_VENDOR=$<TARGET_FILE:stub_vendor>")

# name, script under tests/integration/, timeout in seconds
foreach(it
    "gateway_e2e;test_gateway.py;300"
    "gateway_apertium;test_apertium.py;300"
    "gateway_policy;test_policy_gateway.py;300"
    "gateway_tls_access;test_tls_access.py;600"
    "gateway_audit;test_audit_gateway.py;300"
    "gateway_suspend;test_suspend_gateway.py;300")
  list(GET it 0 name)
  list(GET it 1 script)
  list(GET it 2 timeout)
  add_test(NAME ${name}
    COMMAND ${TG_PYTHON3} ${PROJECT_SOURCE_DIR}/tests/integration/${script})
  set_tests_properties(${name} PROPERTIES LABELS integration TIMEOUT ${timeout}
    ENVIRONMENT "${TG_IT_ENV}")
endforeach()
