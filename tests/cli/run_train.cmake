cmake_minimum_required(VERSION 3.20)
# mwtc train and eval from the command line: bad data files and bad
# checkpoints are `mwtc: error:` lines naming the file (exit 1), a small
# synthetic run trains, evaluates, resumes and dumps its LLVM IR.
function(expect rc_want needle)
  execute_process(COMMAND ${MWTC} ${ARGN} WORKING_DIRECTORY ${TMP}
                  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc STREQUAL "${rc_want}")
    message(FATAL_ERROR "mwtc ${ARGN}: exit ${rc}, expected ${rc_want}\nstdout: ${out}\nstderr: ${err}")
  endif()
  string(FIND "${out}${err}" "${needle}" at)
  if(at LESS 0)
    message(FATAL_ERROR "mwtc ${ARGN}: no '${needle}' in\nstdout: ${out}\nstderr: ${err}")
  endif()
endfunction()

# A program over a data set, written into TMP.
function(program name source classes shape)
  file(WRITE ${TMP}/${name}.mwt
"dataset d = ${source} { classes = ${classes}  shape = ${shape} }
model m : ${shape} -> [${classes}] { conv(4) relu gap linear(${classes}) }
train m on d { epochs = 2  batch = 16  seed = 3 }
")
endfunction()

file(REMOVE_RECURSE ${TMP})
file(MAKE_DIRECTORY ${TMP}/empty ${TMP}/short ${TMP}/text)
set(fm /usr/share/datasets/fashion-mnist)

program(missing "idx(\"${TMP}/none\")" 10 "[1, 28, 28]")
expect(1 "mwtc: error: ${TMP}/none" train missing.mwt)
program(empty "idx(\"${TMP}/empty\")" 10 "[1, 28, 28]")
expect(1 "mwtc: error: ${TMP}/empty/train-images-idx3-ubyte" train empty.mwt)
# A file cut short after its header, and one that is not IDX at all.
file(WRITE ${TMP}/short/train-images-idx3-ubyte "")
program(short "idx(\"${TMP}/short\")" 10 "[1, 28, 28]")
expect(1 "mwtc: error: ${TMP}/short/train-images-idx3-ubyte" train short.mwt)
file(WRITE ${TMP}/text/train-images-idx3-ubyte "these are not the images you are looking for\n")
program(text "idx(\"${TMP}/text\")" 10 "[1, 28, 28]")
expect(1 "mwtc: error: ${TMP}/text/train-images-idx3-ubyte" train text.mwt)
if(EXISTS ${fm})
  # The real files against a wrong declared shape, and labels above `classes`.
  program(shape "idx(\"fashion-mnist\")" 10 "[1, 32, 32]")
  expect(1 "mwtc: error: ${fm}/train-images-idx3-ubyte" train shape.mwt)
  program(labels "idx(\"fashion-mnist\")" 5 "[1, 28, 28]")
  expect(1 "mwtc: error: ${fm}/train-labels-idx1-ubyte" train labels.mwt)
endif()

# A small run: train, evaluate, resume past the end, dump.
program(ok "synthetic(n = 256, test = 64)" 3 "[1, 8, 8]")
expect(0 "test accuracy" train ok.mwt -o ok.ckpt --quiet)
expect(0 "\"images_per_s\"" train ok.mwt -o ok2.ckpt --quiet --json --threads 2)
expect(0 "test accuracy" eval ok.mwt --ckpt ok.ckpt)
expect(0 "\"accuracy\"" eval ok.mwt --ckpt ok.ckpt --json)
expect(1 "already trained 2 of 2 epochs" train ok.mwt --resume ok.ckpt -o ok3.ckpt --quiet)
expect(0 "test accuracy" train ok.mwt --resume ok.ckpt --epochs 3 -o ok3.ckpt --quiet)
expect(2 "eval needs --ckpt" eval ok.mwt)
expect(1 "mwtc: error: missing.ckpt: cannot open" eval ok.mwt --ckpt missing.ckpt)
file(WRITE ${TMP}/junk.ckpt "not a checkpoint")
expect(1 "mwtc: error: junk.ckpt: not an mwtc checkpoint" eval ok.mwt --ckpt junk.ckpt)
expect(0 "define void @t0(ptr" dump llvm ok.mwt)
