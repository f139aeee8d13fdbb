# tests/bench: the gateway benchmark's load generator. Run by hand through
# tests/bench/bench_gateway.sh; deliberately not registered with ctest (a
# timed assertion on a shared CI machine would only measure the machine).
add_executable(tg_load ${PROJECT_SOURCE_DIR}/tests/bench/tg_load.c)
target_compile_options(tg_load PRIVATE ${TG_CFLAGS})
target_link_libraries(tg_load PRIVATE PkgConfig::OPENSSL m)

# The audit trail alone (per-record CPU), for work on its cost.
add_executable(bench_audit_records ${PROJECT_SOURCE_DIR}/tests/bench/bench_audit_records.c)
target_compile_options(bench_audit_records PRIVATE ${TG_CFLAGS})
target_link_libraries(bench_audit_records PRIVATE tgcore Threads::Threads)
