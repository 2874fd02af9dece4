cmake_minimum_required(VERSION 3.20)
# mwtc repl, fed from a pipe: items are checked as they come (an error leaves
# the session as it was and is reported against <repl>), a model shows its
# layer table, commands run on the session, and the exit status says whether
# every line succeeded.
file(REMOVE_RECURSE ${TMP})
file(MAKE_DIRECTORY ${TMP} ${TMP}/home)
file(WRITE ${TMP}/base.mwt
"dataset d = synthetic(n = 128, test = 64) { classes = 3  shape = [1, 8, 8] }
")

# repl(RC IN STDOUT_NEEDLES STDERR_NEEDLES ARGS...): the needles are ';' lists
function(repl rc_want input out_needles err_needles)
  file(WRITE ${TMP}/in.txt "${input}")
  execute_process(COMMAND ${MWTC} repl ${ARGN} WORKING_DIRECTORY ${TMP} INPUT_FILE ${TMP}/in.txt
                  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc STREQUAL "${rc_want}")
    message(FATAL_ERROR "mwtc repl ${ARGN}: exit ${rc}, expected ${rc_want}\nstdout: ${out}\nstderr: ${err}")
  endif()
  foreach(n ${out_needles})
    string(FIND "${out}" "${n}" at)
    if(at LESS 0)
      message(FATAL_ERROR "mwtc repl ${ARGN}: no '${n}' in stdout:\n${out}\nstderr: ${err}")
    endif()
  endforeach()
  foreach(n ${err_needles})
    string(FIND "${err}" "${n}" at)
    if(at LESS 0)
      message(FATAL_ERROR "mwtc repl ${ARGN}: no '${n}' in stderr:\n${err}\nstdout: ${out}")
    endif()
  endforeach()
endfunction()

# a session that works: a model over three lines, its training, a module emitted
repl(0 "model m : [1, 8, 8] -> [3] {
    modular { conv(4) batchnorm relu }
    flatten linear(3) }
train m on d { epochs = 1  batch = 16  loss = cross_entropy + 0.5 * cohesion + 1.5 * coupling }
modularize m { threshold = 0.9 }
train --quiet -o m.ckpt
eval --ckpt m.ckpt --json
emit --ckpt m.ckpt --module 2,0 -o two.o
:show
:quit
check
"
  "model m : [1, 8, 8] -> [3];mask 1->4->4;ok;m: trained 1 epoch on d;\"accuracy\";emitted two.o and two.h;import \"${TMP}/base.mwt\""
  "" base.mwt)
if(NOT EXISTS ${TMP}/two.o OR NOT EXISTS ${TMP}/two.h)
  message(FATAL_ERROR "emit in the REPL wrote no two.o and two.h")
endif()

# without --ckpt, what reads a checkpoint reads the one the session's last training wrote, for
# its model; before any training, and for another model, it still needs --ckpt
repl(1 "model k : [1, 8, 8] -> [3] {
    modular { conv(4) batchnorm relu }
    flatten linear(3) }
train k on d { epochs = 1  batch = 16  loss = cross_entropy + 0.5 * cohesion + 1.5 * coupling }
modularize k { threshold = 0.9 }
model j : [1, 8, 8] -> [3] { gap linear(3) }
eval
train --quiet -o k1.ckpt
modularize --quiet --threshold 0.5
report --model j
eval --json
"
  "modules of k on d: threshold 0.50;\"accuracy\""
  "eval needs --ckpt CKPT;--ckpt k1.ckpt (model k, as this session last trained it);report needs --ckpt CKPT"
  base.mwt)

# an item left open ends at a command line: the checker says what is missing, and the command runs
repl(1 "model m : [1, 8, 8] -> [3] {
    conv(4) relu
check
dump ir --model n
model n : [1, 8, 8] -> [3] { flatten linear(3) }
dump ir --model n
"
  "<repl>: no models;graph n (batch 1, inference, 2 params);%0 = input \"images\" : [1, 1, 8, 8]  \\; line 5"
  "this '{' is not closed;has no model named 'n'" base.mwt)

# a comment inside an item ends at its line: the braces after it still count
# (a '{' in a comment does not), and the next line is a command again
repl(0 "model c : [1, 8, 8] -> [3] {   # a model { with a comment
    flatten    # flat
    linear(3) }
:show
"
  "model c : [1, 8, 8] -> [3];linear(3) }" "" base.mwt)

# an item typed again replaces the one typed before, in its place (the train statement after the
# model still follows it); one that does not check leaves the session as it was. Diagnostics
# call a line by the line it was typed on (here the fifth), not by its place in the session
repl(1 "model r : [1, 8, 8] -> [3] { gap linear(3) }
train r on d { batch = 16 }
model r : [1, 8, 8] -> [3] { conv(4) relu gap linear(3) }
train r on d { batch = 32  epochs = 1 }
model r : [1, 8, 8] -> [3] { conv(4) linear(3) }
:show
"
  "replaced model r;replaced train r;model r : [1, 8, 8] -> [3] { conv(4) relu gap linear(3) }\ntrain r on d { batch = 32  epochs = 1 }"
  "<repl>:5:38: error: linear needs a flat input" base.mwt)

# the lines typed stay the lines' names when an item before them is replaced: b's layers were
# typed on line 3, its failed replacement on line 5
repl(1 "model a : [1, 8, 8] -> [3] { conv(4) gap linear(3) }
model b : [1, 8, 8] -> [3] {
  conv(4) gap linear(3) }
model a : [1, 8, 8] -> [3] { conv(8) gap linear(3) }
model b : [1, 8, 8] -> [3] { conv(4) linear(3) }
check --model b
"
  "replaced model a;      3  conv 3x3/1 pad 1 -> 4" "<repl>:5:38: error: linear needs a flat input")

# ~/ in a command's words is $HOME/, as in a shell
file(WRITE ${TMP}/in.txt "model t : [1, 8, 8] -> [3] { conv(4) relu gap linear(3) }
train t on d { batch = 16  epochs = 1 }
train --quiet -o ~/tilde.ckpt
")
execute_process(COMMAND ${CMAKE_COMMAND} -E env HOME=${TMP}/home ${MWTC} repl base.mwt WORKING_DIRECTORY ${TMP}
                INPUT_FILE ${TMP}/in.txt OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT EXISTS ${TMP}/home/tilde.ckpt)
  message(FATAL_ERROR "train -o ~/tilde.ckpt in the REPL: exit ${rc}, no ${TMP}/home/tilde.ckpt\n${out}\n${err}")
endif()

# lines ending in CR LF or spaces: commands and items read as typed; a REPL command without its
# ':' says so instead of going to the parser
string(ASCII 13 cr)
repl(1 "model q : [1, 8, 8] -> [3] {${cr}
  gap linear(3) }${cr}
check --model q${cr}
:show  ${cr}
quit
"
  "model q : [1, 8, 8] -> [3];total: 6 parameters;import \"${TMP}/base.mwt\""
  "'quit' is neither an item nor a command; REPL commands start with ':' (:quit)" base.mwt)

# an item whose header goes on over lines is read up to its first brace; a
# blank line before that brace ends it, and the checker says what is missing
repl(1 "model h
    : [1, 8, 8] -> [3]
{ conv(4) gap linear(3) }
modularize h

check --model h
"
  "model h : [1, 8, 8] -> [3];gap" "<repl>:4:13: error: syntax error: unexpected end of file, expecting '{'" base.mwt)

# a command: 'single quotes' keep a word, a '#' word starts a comment, the main job runs as
# `run` (the session in the file's place), and dump without what to dump is a usage error
repl(1 "model m : [1, 8, 8] -> [3] { conv(4) gap linear(3) }
check --model 'm'   # the layer table
run --help
dump --help
dump
"
  "model m : [1, 8, 8] -> [3];usage: mwtc FILE.mwt;usage: mwtc dump ast|ir|llvm" "dump needs what to dump: ast, ir or llvm" base.mwt)

# errors: a model with a shape error is not added (the next item may use its
# name), an unknown word, an unknown REPL command, a command's usage error
repl(1 "model m : [1, 8, 8] -> [3] { conv(4) linear(3) }
model m : [1, 8, 8] -> [3] { conv(4) gap linear(3) }
nonsense
:frobnicate
train --epochs
check --model m
:reset
check
"
  "model m : [1, 8, 8] -> [3];gap;<repl>: no models"
  "<repl>:1:38: error: linear needs a flat input;<repl>:3:1: error: syntax error;unknown REPL command ':frobnicate';option '--epochs' needs a value"
  base.mwt)

# no file: the session starts empty; a file that does not check is left out
repl(0 "dataset q = synthetic(n = 64, test = 32) { classes = 2  shape = [1, 4, 4] }\n" "ok" "")
file(WRITE ${TMP}/bad.mwt "model x : [1, 8, 8] -> [3] { linear(3) }\n")
repl(1 ":show\n" "" "bad.mwt:1:30: error;bad.mwt has errors: the session starts without it" bad.mwt)
# :reset reads the file again: still broken, the session goes on without it (fixed, it would join)
repl(1 ":reset\ncheck\n" "ok;<repl>: no models" "bad.mwt has errors: the session goes on without it" bad.mwt)
repl(1 "" "" "mwtc: error: cannot read missing.mwt" missing.mwt)

# a usage error in the session points to the session's help, not to mwtc --help
repl(1 "check --epochs ten
" "" "--epochs needs an integer, not 'ten';Try ':help'" base.mwt)
# a file named after a command: commands run on the session
repl(1 "check base.mwt
" "" "commands here run on the session; to add 'base.mwt' to it, import it")

# a NUL byte: that line is left out, said, and the exit status says so; the next line stands alone
execute_process(COMMAND printf "dataset d = synthetic(n = 64, test = 32) { classes = 2 \\000 shape = [1, 4, 4] }\\ndataset d = synthetic(n = 64, test = 32) { classes = 2  shape = [1, 4, 4] }\\n"
                OUTPUT_FILE ${TMP}/nul.txt)
execute_process(COMMAND ${MWTC} repl WORKING_DIRECTORY ${TMP} INPUT_FILE ${TMP}/nul.txt
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 1 OR NOT err MATCHES "a NUL byte at column 56 of this line; the line is left out" OR NOT out MATCHES "ok"
   OR err MATCHES "syntax error")
  message(FATAL_ERROR "a NUL byte in a REPL line: exit ${rc}\nstdout: ${out}\nstderr: ${err}")
endif()
