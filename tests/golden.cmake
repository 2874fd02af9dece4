# Golden tests: tests/parse/NAME.mwt with NAME.ast (`mwtc dump ast`) and/or
# NAME.out (`mwtc check`), and tests/errors/NAME.mwt with NAME.err (the exact
# diagnostics of `mwtc check`, which must exit 1). tests/update_golden.sh
# rewrites the expectations from the current build: review its diff.
file(GLOB parse_cases RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}/parse ${CMAKE_CURRENT_SOURCE_DIR}/parse/*.mwt)
foreach(case ${parse_cases})
  get_filename_component(name ${case} NAME_WE)
  foreach(kind ast out json)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/parse/${name}.${kind})
      add_test(NAME parse/${name}.${kind}
               COMMAND ${CMAKE_COMMAND} -DMWTC=$<TARGET_FILE:mwtc> -DDIR=${CMAKE_CURRENT_SOURCE_DIR}/parse
                       -DNAME=${name} -DKIND=${kind} -P ${CMAKE_CURRENT_SOURCE_DIR}/run_golden.cmake)
    endif()
  endforeach()
endforeach()

# tests/ir/NAME.mwt with NAME.ir: `mwtc dump ir`, the graph IR.
file(GLOB ir_cases RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}/ir ${CMAKE_CURRENT_SOURCE_DIR}/ir/*.mwt)
foreach(case ${ir_cases})
  get_filename_component(name ${case} NAME_WE)
  add_test(NAME ir/${name}
           COMMAND ${CMAKE_COMMAND} -DMWTC=$<TARGET_FILE:mwtc> -DDIR=${CMAKE_CURRENT_SOURCE_DIR}/ir
                   -DNAME=${name} -DKIND=ir -P ${CMAKE_CURRENT_SOURCE_DIR}/run_golden.cmake)
endforeach()

file(GLOB error_cases RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}/errors ${CMAKE_CURRENT_SOURCE_DIR}/errors/*.mwt)
foreach(case ${error_cases})
  get_filename_component(name ${case} NAME_WE)
  add_test(NAME errors/${name}
           COMMAND ${CMAKE_COMMAND} -DMWTC=$<TARGET_FILE:mwtc> -DDIR=${CMAKE_CURRENT_SOURCE_DIR}/errors
                   -DNAME=${name} -DKIND=err -P ${CMAKE_CURRENT_SOURCE_DIR}/run_golden.cmake)
endforeach()

# Every stdlib model checks with the parameter count PyTorch printed for the
# same layers (tests/models/torch_params.py -> expected_params.txt).
add_test(NAME models/params
         COMMAND ${CMAKE_COMMAND} -DMWTC=$<TARGET_FILE:mwtc> -DSRC=${CMAKE_SOURCE_DIR}
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/models/check_params.cmake)

# The command line: exit codes and usage messages.
add_test(NAME cli/usage
         COMMAND ${CMAKE_COMMAND} -DMWTC=$<TARGET_FILE:mwtc> -DSRC=${CMAKE_SOURCE_DIR}
                 -DTMP=${CMAKE_CURRENT_BINARY_DIR}/tmp/cli_usage -P ${CMAKE_CURRENT_SOURCE_DIR}/cli/run_cli.cmake)

# mwtc train / eval: data and checkpoint errors, a small run end to end.
add_test(NAME cli/train
         COMMAND ${CMAKE_COMMAND} -DMWTC=$<TARGET_FILE:mwtc> -DSRC=${CMAKE_SOURCE_DIR}
                 -DTMP=${CMAKE_CURRENT_BINARY_DIR}/tmp/cli_train -P ${CMAKE_CURRENT_SOURCE_DIR}/cli/run_train.cmake)

# Ctrl-C while training: stopped after the step, exit 130, the checkpoint whole, --resume goes on.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
add_test(NAME cli/interrupt
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/cli/interrupt.py --mwtc $<TARGET_FILE:mwtc>
                 --tmp ${CMAKE_CURRENT_BINARY_DIR}/tmp/cli_interrupt)

# Ctrl-C in the REPL (on a pty) during modularize: stopped between batches, the session goes on.
add_test(NAME cli/repl_interrupt
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/cli/repl_interrupt.py --mwtc $<TARGET_FILE:mwtc>
                 --tmp ${CMAKE_CURRENT_BINARY_DIR}/tmp/cli_repl_interrupt)
set_tests_properties(cli/repl_interrupt PROPERTIES TIMEOUT 600)

# Tab in the REPL (on a pty): the completed line is the one that runs.
add_test(NAME cli/repl_tab
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/cli/repl_tab.py --mwtc $<TARGET_FILE:mwtc>
                 --tmp ${CMAKE_CURRENT_BINARY_DIR}/tmp/cli_repl_tab)

# mwtc repl fed from a pipe.
add_test(NAME cli/repl
         COMMAND ${CMAKE_COMMAND} -DMWTC=$<TARGET_FILE:mwtc> -DTMP=${CMAKE_CURRENT_BINARY_DIR}/tmp/cli_repl
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/cli/run_repl.cmake)

# Mutated programs, checkpoints and IDX files, REPL sessions and command lines
# (scripts/fuzz.py): no input may end mwtc by a signal or trip a sanitizer
# (LANGUAGE.md section 2). And random
# valid models (arch: about 6 of them in 48 runs) through check, train on one
# thread and on many (the same checkpoint), modularize, report, eval and emit,
# its object linked into a C program. A fixed number of runs from a fixed
# seed, so a failure reproduces.
foreach(mode_runs mwt:400 ckpt:200 idx:200 arch:48 repl:150 cli:300)
  string(REPLACE ":" ";" mr ${mode_runs})
  list(GET mr 0 mode)
  list(GET mr 1 runs)
  add_test(NAME fuzz/${mode}
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/fuzz.py --mwtc $<TARGET_FILE:mwtc>
                   --mode ${mode} --runs ${runs} --seed 1 --out ${CMAKE_CURRENT_BINARY_DIR}/tmp/fuzz)
endforeach()
