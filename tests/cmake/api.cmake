# API codec and vendor adapters (gateway/api.c, gateway/adapter*.c).
tg_unit_test(test_api unit/test_api.c)
tg_unit_test(test_adapter unit/test_adapter.c)

if(TG_FUZZ)
  add_executable(fuzz_api fuzz/fuzz_api.c)
  target_compile_options(fuzz_api PRIVATE ${TG_CFLAGS})
  target_link_libraries(fuzz_api PRIVATE tgcore)
  target_link_options(fuzz_api PRIVATE -fsanitize=fuzzer)
  # libFuzzer writes new inputs into the first corpus directory: give it a
  # scratch one in the build tree so the seeds in the source tree stay put.
  set(TG_FUZZ_API_SCRATCH ${CMAKE_CURRENT_BINARY_DIR}/fuzz_api_corpus)
  file(MAKE_DIRECTORY ${TG_FUZZ_API_SCRATCH})
  add_test(NAME fuzz_api
    COMMAND fuzz_api -runs=50000 -max_total_time=15 -max_len=4096
            ${TG_FUZZ_API_SCRATCH} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/api)
  set_tests_properties(fuzz_api PROPERTIES LABELS fuzz TIMEOUT 120)
endif()

# Terminal-side HTTP/1.1 codec (gateway/h1.c).
tg_unit_test(test_h1 unit/test_h1.c)
if(TG_FUZZ)
  add_executable(fuzz_h1 fuzz/fuzz_h1.c)
  target_compile_options(fuzz_h1 PRIVATE ${TG_CFLAGS})
  target_link_libraries(fuzz_h1 PRIVATE tgcore)
  target_link_options(fuzz_h1 PRIVATE -fsanitize=fuzzer)
  set(TG_FUZZ_H1_SCRATCH ${CMAKE_CURRENT_BINARY_DIR}/fuzz_h1_corpus)
  file(MAKE_DIRECTORY ${TG_FUZZ_H1_SCRATCH})
  add_test(NAME fuzz_h1
    COMMAND fuzz_h1 -runs=200000 -max_total_time=15 -max_len=9000
            ${TG_FUZZ_H1_SCRATCH} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/h1)
  set_tests_properties(fuzz_h1 PROPERTIES LABELS fuzz TIMEOUT 120)
endif()
