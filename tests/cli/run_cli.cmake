cmake_minimum_required(VERSION 3.20)
# The command line's exit codes (LANGUAGE.md section 2): 0 success, 1 a
# diagnosed error, 2 bad usage; and where each message goes.
set(EXPECT_DIR ${SRC})
include(${CMAKE_CURRENT_LIST_DIR}/expect.cmake)

expect(0 "usage: mwtc FILE.mwt" --help)
expect(0 "usage: mwtc check FILE.mwt" check --help)
expect(0 "usage: mwtc dump ast|ir|llvm" dump --help)
expect(0 "usage: mwtc reuse FILE.mwt --ckpt CKPT" reuse --help)
expect(2 "no input file")
expect(2 "unknown option '--frobnicate'" check examples/fashion.mwt --frobnicate)
expect(2 "check needs a FILE.mwt" check)
expect(2 "--epochs needs an integer, not 'ten'" check examples/fashion.mwt --epochs ten)
# no value wraps on its way to an int: the bounds are the train statement's
expect(2 "--epochs needs an integer from 1 to 100000, not '4294967298'" train examples/fashion.mwt --epochs 4294967298)
expect(2 "--threads needs an integer from 1 to 1024, not '100000'" train examples/fashion.mwt --threads 100000)
expect(2 "--seed needs an integer from 0 to 9223372036854775807, not '9223372036854775808'"
       train examples/fashion.mwt --seed 9223372036854775808)
expect(2 "unknown command 'trian'; did you mean 'train'?" trian examples/fashion.mwt)
expect(2 "unknown command 'frobnicate' (commands: check train" frobnicate examples/fashion.mwt)
# a checkpoint or a directory where the program goes: one line that says so, not a page of syntax errors
expect(1 "mwtc: error: ${SRC}/examples is a directory, not a program" repl ${SRC}/examples)
# output that cannot be written (a full disk) is an I/O error: exit 1, said on stderr
if(EXISTS /dev/full)
  execute_process(COMMAND ${MWTC} check examples/fashion.mwt WORKING_DIRECTORY ${SRC} OUTPUT_FILE /dev/full
                  ERROR_VARIABLE full_err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 1 OR NOT full_err MATCHES "mwtc: error: cannot write the output: No space left on device")
    message(FATAL_ERROR "check > /dev/full: exit ${rc}\n${full_err}")
  endif()
endif()
# options before the command: the command still counts
expect(0 "usage: mwtc train FILE.mwt" --help train)
expect(0 "model simcnn : [1, 28, 28] -> [10]" --quiet check examples/fashion.mwt)
expect(2 "--limit needs an integer of at least 1, not '0'" train examples/fashion.mwt --limit 0)
expect(2 "unknown command 'trian'" trian)
expect(2 "option '--model' needs a value" check examples/fashion.mwt --model)
# an empty value (CMake's lists drop empty arguments: through sh)
execute_process(COMMAND sh -c "'${MWTC}' train examples/fashion.mwt -o ''" WORKING_DIRECTORY ${SRC}
                ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 2 OR NOT err MATCHES "option '-o' needs a non-empty value")
  message(FATAL_ERROR "-o '' was not a usage error: exit ${rc}\n${err}")
endif()
# an option the command does not read is a warning (the command still runs), never silence
expect(0 "mwtc: warning: --ckpt does not apply to check; ignored" check examples/fashion.mwt --ckpt x.ckpt)
expect(0 "mwtc: warning: --epochs does not apply to check; ignored" check examples/fashion.mwt --epochs 3 --threads 1)
expect(2 "eval needs --ckpt" eval examples/fashion.mwt -o x.ckpt)
execute_process(COMMAND sh -c "'${MWTC}' check examples/fashion.mwt --model simcnn --json --quiet --threads 2 &&
                                 '${MWTC}' dump ast examples/fashion.mwt --model simcnn >/dev/null"
                WORKING_DIRECTORY ${SRC} OUTPUT_QUIET ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT err STREQUAL "")
  message(FATAL_ERROR "check with only options it reads (and --quiet, --threads) was not silent: exit ${rc}\n${err}")
endif()
# --name=value is --name value; an option given twice is a warning (the last counts)
expect(0 "model simcnn" check examples/fashion.mwt --model=simcnn)
expect(2 "option '--json' takes no value" check examples/fashion.mwt --json=yes)
expect(0 "mwtc: warning: --model is given more than once; the last one counts"
       check examples/fashion.mwt --model nosuch --model=simcnn)
expect(2 "mwtc: error: --module needs class numbers (0 or more)" eval examples/fashion.mwt --ckpt x.ckpt --module -1)
expect(1 "mwtc: error: examples/fashion.mwt has no model named 'nosuch'" train examples/fashion.mwt --model nosuch)
expect(1 "has no model named 'SimCNN'; did you mean 'simcnn'?" train examples/fashion.mwt --model SimCNN)
expect(1 "has no model named 'fashion' (that is a dataset)" check examples/fashion.mwt --model fashion)
# an ignored option is dropped: check -o over the program warns and writes nothing, refuses nothing
expect(0 "mwtc: warning: -o does not apply to check; ignored" check examples/fashion.mwt -o examples/fashion.mwt)
expect(1 "cannot read examples/fashion: no such file; did you mean examples/fashion.mwt?" check examples/fashion)
expect(2 "option '-o' needs a value" train examples/fashion.mwt -o --quiet)
expect(2 "option '--ckpt' needs a value" eval examples/fashion.mwt --ckpt --json)
expect(2 "dump what? 'bytes'" dump bytes examples/fashion.mwt)
expect(2 "--threshold needs a number in (0, 1]" modularize examples/fashion.mwt --threshold 2)
expect(1 "mwtc: error: cannot read nope.mwt: No such file or directory" check nope.mwt)
expect(1 "mwtc: error: examples is a directory, not a program" check examples)
expect(0 "total: 466186 parameters" check examples/fashion.mwt)
expect(0 "\"masked_kernels\": 288" check --json examples/fashion.mwt)
expect(0 "model resnet18 :" check stdlib/models/resnet18.mwt --model resnet18)
expect(1 "has no model named 'nothing'" check examples/fashion.mwt --model nothing)
expect(0 "(model simcnn" dump ast examples/fashion.mwt)
expect(0 "%0 = input \"images\" : [128, 1, 28, 28]" dump ir examples/fashion.mwt)
expect(0 "graph vgg16_standard (batch 1" dump ir stdlib/models/vgg16.mwt --model vgg16_standard)
expect(0 "define void @t0(ptr" dump llvm examples/fashion.mwt)
