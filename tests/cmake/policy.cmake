# Policy engine tests (policy/, gateway/cmd_policy.c).  See docs/rules.md.
tg_unit_test(test_pol_engine ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pol_engine.c)
tg_unit_test(test_pol_cli ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pol_cli.c)
# Measured recall/precision over the labelled corpus; prints the table.
tg_unit_test(test_pol_quality ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pol_quality.c)
set_tests_properties(test_pol_quality PROPERTIES LABELS "unit;quality")

# Golden detections and masked outputs over the corpus, the detector cases
# and seeded random texts (tests/data/policy/golden/default.txt, written by
# the engine before its scan was optimised): proves speed work changed no
# behaviour.  Links only tgpolicy, so gateway work in progress cannot block it.
add_executable(test_pol_golden ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pol_golden.c)
target_compile_options(test_pol_golden PRIVATE ${TG_CFLAGS})
target_link_libraries(test_pol_golden PRIVATE tgpolicy PkgConfig::CMOCKA PkgConfig::JANSSON)
add_test(NAME test_pol_golden COMMAND test_pol_golden)
set_tests_properties(test_pol_golden PROPERTIES LABELS unit
  ENVIRONMENT "TG_SOURCE_DIR=${PROJECT_SOURCE_DIR};TG_DATA_DIR=${PROJECT_SOURCE_DIR}/tests/data")

# Proof that POL_PH_TOKEN placeholders survive the real Apertium engine.
# Skipped (exit 77) when APY is not reachable (TG_APERTIUM_URL, default
# http://127.0.0.1:2737).  Links only tgpolicy and libcurl.
add_executable(test_pol_apertium ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pol_apertium.c)
target_compile_options(test_pol_apertium PRIVATE ${TG_CFLAGS})
target_link_libraries(test_pol_apertium PRIVATE tgpolicy PkgConfig::CURL PkgConfig::CMOCKA
  PkgConfig::JANSSON)
add_test(NAME test_pol_apertium COMMAND test_pol_apertium)
set_tests_properties(test_pol_apertium PROPERTIES LABELS "integration;apertium"
  SKIP_RETURN_CODE 77 TIMEOUT 120
  ENVIRONMENT "TG_SOURCE_DIR=${PROJECT_SOURCE_DIR}")

# Masking throughput benchmark (not a test; run tests/bench/policy/run.sh).
add_executable(bench_pol ${PROJECT_SOURCE_DIR}/tests/bench/policy/bench_pol.c)
target_compile_options(bench_pol PRIVATE ${TG_CFLAGS})
target_link_libraries(bench_pol PRIVATE tgpolicy PkgConfig::JANSSON)

if(TG_FUZZ)
  foreach(h session pack diff)
    add_executable(fuzz_pol_${h} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_pol_${h}.c)
    target_link_libraries(fuzz_pol_${h} PRIVATE tgpolicy)
    target_link_options(fuzz_pol_${h} PRIVATE -fsanitize=fuzzer)
    # libFuzzer writes new inputs into the first directory: keep it in the
    # build tree; the committed seeds are read-only input.
    file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz-corpus/pol_${h})
    add_test(NAME fuzz_pol_${h}_smoke
      COMMAND fuzz_pol_${h} -runs=20000 -max_total_time=20 -rss_limit_mb=2048
              ${CMAKE_BINARY_DIR}/fuzz-corpus/pol_${h}
              ${PROJECT_SOURCE_DIR}/tests/data/policy/fuzz-seeds/${h})
    set_tests_properties(fuzz_pol_${h}_smoke PROPERTIES LABELS fuzz TIMEOUT 120
      ENVIRONMENT "TG_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  endforeach()
endif()
