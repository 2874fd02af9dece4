# cmocka tests of the compiler library, one file per stage.
foreach(t test_lexer test_parser test_sema test_shapes test_import test_fuzz test_alloc test_ir test_json
          test_repl_complete)
  mwtc_add_unit_test(${t} SOURCES unit/${t}.c unit/mwt_test.c LIBS mwtc_compiler)
endforeach()

# The JIT against the natively compiled kernels.
mwtc_add_unit_test(test_jit SOURCES unit/test_jit.c unit/mwt_test.c LIBS mwt_jit mwt_kernels mwtc_compiler)

# Autodiff against finite differences, and the memory plan's liveness.
mwtc_add_unit_test(test_grad SOURCES unit/test_grad.c unit/mwt_test.c LIBS mwtc_compiler)
mwtc_add_unit_test(test_plan SOURCES unit/test_plan.c unit/mwt_test.c LIBS mwtc_compiler)
# The training loop: learning, determinism across thread counts, resume.
mwtc_add_unit_test(test_train SOURCES unit/test_train.c unit/mwt_test.c LIBS mwtc_compiler)
# Modules, their metrics, and modularize end to end.
mwtc_add_unit_test(test_modules SOURCES unit/test_modules.c unit/mwt_test.c LIBS mwtc_compiler)
mwtc_add_unit_test(test_slice SOURCES unit/test_slice.c unit/mwt_test.c LIBS mwtc_compiler)
mwtc_add_unit_test(test_fuse SOURCES unit/test_fuse.c unit/mwt_test.c LIBS mwtc_compiler)
# emit: an emitted module linked into a C program (tests/aot/aot_main.c) by the
# C compiler that builds mwtc, against the JIT's scores.
mwtc_add_unit_test(test_aot SOURCES unit/test_aot.c unit/mwt_test.c LIBS mwtc_compiler)
target_compile_definitions(test_aot PRIVATE MWTC_TEST_CC="${CMAKE_C_COMPILER}")
mwtc_add_unit_test(test_phase SOURCES unit/test_phase.c unit/mwt_test.c LIBS mwtc_compiler)
