# tests/stub/stub_vendor: the recording DeepL-compatible vendor stub used by
# the integration tests and the benchmarks.
add_executable(stub_vendor ${PROJECT_SOURCE_DIR}/tests/stub/stub_vendor.c)
target_compile_options(stub_vendor PRIVATE ${TG_CFLAGS})
target_link_libraries(stub_vendor PRIVATE PkgConfig::OPENSSL)

add_test(NAME stub_vendor_smoke
  COMMAND ${TG_PYTHON3} ${PROJECT_SOURCE_DIR}/tests/integration/test_stub.py)
set_tests_properties(stub_vendor_smoke PROPERTIES LABELS integration
  ENVIRONMENT "TG_BUILD_DIR=${PROJECT_BINARY_DIR};TG_SOURCE_DIR=${PROJECT_SOURCE_DIR};TG_STUB_VENDOR=$<TARGET_FILE:stub_vendor>")
