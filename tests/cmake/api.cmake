# API codec and vendor adapters (gateway/api.c, gateway/adapter*.c).
tg_unit_test(test_api unit/test_api.c)
tg_unit_test(test_adapter unit/test_adapter.c)
if(TG_FUZZ)
  tg_fuzz_test(fuzz_api 50000 4096)
endif()

# Terminal-side HTTP/1.1 codec (gateway/h1.c).
tg_unit_test(test_h1 unit/test_h1.c)
if(TG_FUZZ)
  tg_fuzz_test(fuzz_h1 200000 9000)
endif()
