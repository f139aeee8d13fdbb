# Policy engine tests (policy/, gateway/cmd_policy.c).
tg_unit_test(test_pol_engine ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pol_engine.c)
tg_unit_test(test_pol_quality ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pol_quality.c)
