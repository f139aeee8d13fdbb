# Configuration, secret files and client keys.
tg_unit_test(test_config ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_config.c)
tg_unit_test(test_secret ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_secret.c)
tg_unit_test(test_auth ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_auth.c)
