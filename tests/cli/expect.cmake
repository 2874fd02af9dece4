# expect(RC NEEDLE ARGS...): runs ${MWTC} ARGS in ${EXPECT_DIR}; fails unless
# it exits RC and NEEDLE appears in its stdout or stderr. Shared by the cli/
# scripts, which set MWTC (and EXPECT_DIR) before including this.
function(expect rc_want needle)
  execute_process(COMMAND ${MWTC} ${ARGN} WORKING_DIRECTORY ${EXPECT_DIR}
                  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc STREQUAL "${rc_want}")
    message(FATAL_ERROR "mwtc ${ARGN}: exit ${rc}, expected ${rc_want}\nstdout: ${out}\nstderr: ${err}")
  endif()
  string(FIND "${out}${err}" "${needle}" at)
  if(at LESS 0)
    message(FATAL_ERROR "mwtc ${ARGN}: no '${needle}' in\nstdout: ${out}\nstderr: ${err}")
  endif()
endfunction()
