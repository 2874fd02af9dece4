# Unit tests of runtime/ (cmocka), included by tests/CMakeLists.txt; paths relative to tests/.
mwtc_add_unit_test(test_rt_rng        SOURCES unit/test_rt_rng.c        LIBS mwt_runtime)
mwtc_add_unit_test(test_rt_data_idx   SOURCES unit/test_rt_data_idx.c   LIBS mwt_runtime)
mwtc_add_unit_test(test_rt_data_cifar SOURCES unit/test_rt_data_cifar.c LIBS mwt_runtime)
mwtc_add_unit_test(test_rt_data_synth SOURCES unit/test_rt_data_synth.c LIBS mwt_runtime)
mwtc_add_unit_test(test_rt_data_batch SOURCES unit/test_rt_data_batch.c LIBS mwt_runtime)
