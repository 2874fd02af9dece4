cmake_minimum_required(VERSION 3.20)
# mwtc train and eval from the command line: bad data files and bad
# checkpoints are `mwtc: error:` lines naming the file (exit 1), a small
# synthetic run trains, evaluates, resumes and dumps its LLVM IR.
set(EXPECT_DIR ${TMP})
include(${CMAKE_CURRENT_LIST_DIR}/expect.cmake)

# A program over a data set, written into TMP.
function(program name source classes shape)
  file(WRITE ${TMP}/${name}.mwt
"dataset d = ${source} { classes = ${classes}  shape = ${shape} }
model m : ${shape} -> [${classes}] { conv(4) relu gap linear(${classes}) }
train m on d { epochs = 2  batch = 16  seed = 3 }
")
endfunction()

file(REMOVE_RECURSE ${TMP})
file(MAKE_DIRECTORY ${TMP}/empty ${TMP}/short ${TMP}/text ${TMP}/proj)
set(fm /usr/share/datasets/fashion-mnist)

program(missing "idx(\"${TMP}/none\")" 10 "[1, 28, 28]")
expect(1 "mwtc: error: ${TMP}/none" train missing.mwt)
program(empty "idx(\"${TMP}/empty\")" 10 "[1, 28, 28]")
expect(1 "mwtc: error: ${TMP}/empty/train-images-idx3-ubyte" train empty.mwt)
expect(1 "(dataset d at empty.mwt:1)" train empty.mwt)
# more memory than any machine has (2.9 TB at batch 128): refused before it is touched, naming the batch
file(WRITE ${TMP}/huge.mwt "dataset d = synthetic(n = 128, test = 16) { classes = 3  shape = [1, 256, 256] }
model m : [1, 256, 256] -> [3] { conv(16384) relu conv(16384) relu gap linear(3) }
train m on d { epochs = 1  batch = 128 }
")
expect(1 "mwtc: error: out of memory: model 'm' needs" train huge.mwt)
expect(1 "to train at batch 128; a smaller batch (batch = N in its train statement) needs less" train huge.mwt)
file(WRITE ${TMP}/default_batch.mwt "dataset d = synthetic(n = 200, test = 32) { classes = 3  shape = [1, 8, 8] }
model m : [1, 8, 8] -> [3] { conv(4) relu gap linear(3) }
train m on d { epochs = 1 }
")
expect(1 "needs at least one batch of 128 images (the default batch; set batch = N), and --limit leaves 100"
       train default_batch.mwt --limit 100)
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
  # A relative directory the current one lacks is looked up next to the program (as its imports
  # are): the wrong shape's error names the files found there.
  file(CREATE_LINK ${fm} ${TMP}/proj/data SYMBOLIC)
  file(WRITE ${TMP}/proj/near.mwt "dataset d = idx(\"data\") { classes = 10  shape = [1, 32, 32] }
model m : [1, 32, 32] -> [10] { conv(4) relu gap linear(10) }
train m on d { epochs = 1  batch = 16 }
")
  expect(1 "mwtc: error: proj/data/train-images-idx3-ubyte" train proj/near.mwt)
endif()
file(WRITE ${TMP}/proj/far.mwt "dataset d = idx(\"nowhere\") { classes = 10  shape = [1, 28, 28] }
model m : [1, 28, 28] -> [10] { conv(4) relu gap linear(10) }
train m on d { epochs = 1  batch = 16 }
")
expect(1 "mwtc: error: nowhere: no such directory, here or next to proj/far.mwt (dataset d at proj/far.mwt:1)"
       train proj/far.mwt)
set(EXPECT_DIR ${TMP}/proj)
expect(1 "mwtc: error: nowhere: no such directory (dataset d at far.mwt:1)" train far.mwt)
set(EXPECT_DIR ${TMP})

# the same file imported under two names (a hard link) is imported once: its train statement is not twice
file(WRITE ${TMP}/trainer.mwt "dataset d = synthetic(n = 64, test = 32) { classes = 3  shape = [1, 8, 8] }
model net : [1, 8, 8] -> [3] { modular { conv(4) } gap linear(3) }
train net on d { batch = 16 }
")
file(CREATE_LINK ${TMP}/trainer.mwt ${TMP}/trainer_hl.mwt)
file(WRITE ${TMP}/linked.mwt "import \"trainer\"\nimport \"trainer_hl\"\nmodularize net { threshold = 0.9 }\n")
expect(0 "model net" check linked.mwt)

# A small run: train, evaluate, resume past the end, dump.
program(ok "synthetic(n = 256, test = 64)" 3 "[1, 8, 8]")
expect(0 "test accuracy" train ok.mwt -o ok.ckpt --quiet)
expect(0 "\"images_per_s\"" train ok.mwt -o ok2.ckpt --quiet --json --threads 2)
expect(0 "\"one_thread_share\": " train ok.mwt -o ok3.ckpt --quiet --json --threads 2)
expect(0 "test accuracy" eval ok.mwt --ckpt ok.ckpt)
# the model changed since: which tensor, which layer, and why
file(READ ${TMP}/ok.mwt ok_src)
string(REPLACE "conv(4)" "conv(5)" ok_src "${ok_src}")
file(WRITE ${TMP}/wider.mwt "${ok_src}")
expect(1 "ok.ckpt: param/conv1.w has shape [4, 1, 3, 3]" eval wider.mwt --ckpt ok.ckpt)
expect(1 "the model's is [5, 1, 3, 3] (the layer at wider.mwt:2): the model has changed since this checkpoint was trained"
       eval wider.mwt --ckpt ok.ckpt)
file(READ ${TMP}/ok.mwt ok_src)
string(REPLACE "linear(3) }" "linear(3) linear(3) }" ok_src "${ok_src}")
file(WRITE ${TMP}/deeper.mwt "${ok_src}")
expect(1 "ok.ckpt: has no tensor param/linear2.w (the layer at deeper.mwt:2): the model has changed" eval deeper.mwt
       --ckpt ok.ckpt)
expect(0 "\"accuracy\"" eval ok.mwt --ckpt ok.ckpt --json)
expect(1 "already trained 2 of 2 epochs" train ok.mwt --resume ok.ckpt -o ok3.ckpt --quiet)
expect(0 "test accuracy" train ok.mwt --resume ok.ckpt --epochs 3 -o ok3.ckpt --quiet)
# a resume on other images, or on another --limit, would not end where the run would have
program(other "synthetic(n = 256, test = 64, seed = 9)" 3 "[1, 8, 8]")
# (on a synthetic set an older mwtc's samples differ too, and it says so)
expect(1 "ok.ckpt: was trained on other images or labels than dataset d's (or by an older mwtc, whose synthetic"
       train other.mwt --resume ok.ckpt --epochs 3 -o ok5.ckpt --quiet)
expect(1 "ok.ckpt: was trained on all 256 training images, this run would use 100; resume without --limit"
       train ok.mwt --resume ok.ckpt --epochs 3 --limit 100 -o ok5.ckpt --quiet)
expect(0 "test accuracy" train ok.mwt --limit 100 -o ok6.ckpt --quiet)
expect(1 "ok6.ckpt: was trained on the first 100 training images, this run would use 256; resume with --limit 100"
       train ok.mwt --resume ok6.ckpt --epochs 3 -o ok5.ckpt --quiet)
expect(0 "test accuracy" train ok.mwt --resume ok6.ckpt --epochs 3 --limit 100 -o ok5.ckpt --quiet)
expect(2 "eval needs --ckpt" eval ok.mwt)
expect(1 "mwtc: error: missing.ckpt: cannot open" eval ok.mwt --ckpt missing.ckpt)
file(WRITE ${TMP}/junk.ckpt "not a checkpoint")
expect(1 "mwtc: error: junk.ckpt: not an mwtc checkpoint" eval ok.mwt --ckpt junk.ckpt)
expect(0 "define void @t0(ptr" dump llvm ok.mwt)
expect(1 "needs at least one batch of 16 images, and --limit leaves 10" train ok.mwt --limit 10 -o ok4.ckpt)
# -o or --svg naming the program's own source (or a file it imports) is refused, the source kept
file(COPY_FILE ${TMP}/ok.mwt ${TMP}/keep.mwt)
expect(2 "-o keep.mwt would overwrite the program's source keep.mwt" train keep.mwt -o keep.mwt)
expect(2 "-o ./keep.mwt would overwrite the program's source keep.mwt" keep.mwt -o ./keep.mwt)
expect(2 "--svg ${TMP}/keep.mwt would overwrite the program's source keep.mwt"
       report keep.mwt --ckpt ok.ckpt --svg ${TMP}/keep.mwt)
file(READ ${TMP}/keep.mwt kept)
file(READ ${TMP}/ok.mwt orig)
if(NOT kept STREQUAL orig)
  message(FATAL_ERROR "the program's source was overwritten:\n${kept}")
endif()
# A checkpoint that cannot be written stops the run before its first epoch.
expect(1 "mwtc: error: ${TMP}/none/ok.ckpt: cannot create" train ok.mwt -o ${TMP}/none/ok.ckpt)
expect(1 "mwtc: error: empty: is a directory" train ok.mwt -o empty)
expect(1 "mwtc: error: ok.ckpt is a checkpoint, not a program: commands take it with --ckpt" check ok.ckpt)
execute_process(COMMAND ${MWTC} train ok.mwt -o ${TMP}/none/ok.ckpt WORKING_DIRECTORY ${TMP} ERROR_VARIABLE err)
if(err MATCHES "epoch")
  message(FATAL_ERROR "training started before the checkpoint was known to be writable:\n${err}")
endif()
# -o names one checkpoint: a main job that trains two models refuses it.
file(READ ${TMP}/ok.mwt two)
file(WRITE ${TMP}/two.mwt "${two}model m2 : [1, 8, 8] -> [3] { conv(4) relu gap linear(3) }\ntrain m2 on d { epochs = 1 }\n")
expect(2 "-o names one checkpoint, but two.mwt trains 2 models" two.mwt -o two.ckpt)

# A modular model: train, modularize (frequencies go into the checkpoint),
# report without writing, a module on its classes, the main job end to end.
file(WRITE ${TMP}/mod.mwt
"dataset d = synthetic(n = 256, test = 96) { classes = 3  shape = [1, 8, 8] }
model m : [1, 8, 8] -> [3] { conv(4) relu modular { conv(6) batchnorm relu } gap linear(3) }
train m on d { epochs = 2  batch = 16  loss = cross_entropy + 0.5 * cohesion + 1.5 * coupling  seed = 3 }
modularize m { threshold = 0.8 }
reuse m as pair { classes = [0, 2]  epochs = 1 }
")
expect(0 "test accuracy" train mod.mwt -o mod.ckpt --quiet)
# what modularize measured on images is stored with the modules: report reads it back, same figures
execute_process(COMMAND ${MWTC} modularize mod.mwt --ckpt mod.ckpt --json --quiet WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE measured)
if(NOT measured MATCHES "\"krr\"" OR NOT measured MATCHES "\"stored\": false")
  message(FATAL_ERROR "modularize of a fresh checkpoint did not measure:\n${measured}")
endif()
execute_process(COMMAND ${MWTC} report mod.mwt --ckpt mod.ckpt --json WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE stored ERROR_VARIABLE stored_err)
string(REPLACE "\"stored\": true" "\"stored\": false" stored_as_measured "${stored}")
if(NOT stored MATCHES "\"stored\": true" OR NOT stored_err MATCHES "as measured and stored in mod.ckpt"
   OR NOT stored_as_measured STREQUAL measured)
  message(FATAL_ERROR "report did not read back what modularize stored:\n${measured}\n${stored}\n${stored_err}")
endif()
# --limit N: the frequencies and the calibration images come from the first N training images;
# frequencies a run over other images stored are counted again, never handed to this one
expect(0 "kernel frequencies over 100 training images" modularize mod.mwt --ckpt mod.ckpt --limit 100)
expect(0 "kernel frequencies over 256 training images" modularize mod.mwt --ckpt mod.ckpt)
expect(0 "report m: the modules at threshold 0.80 as measured and stored in mod.ckpt" report mod.mwt --ckpt mod.ckpt)
expect(0 "3 modules on 96 test and 100 calibration images" report mod.mwt --ckpt mod.ckpt --limit 100)
# a class without test images has no own-class recall to report: null, "n/a", left out of the
# sweep's mean; eval gives it no accuracy
file(WRITE ${TMP}/few.mwt
"dataset d = synthetic(n = 256, test = 3) { classes = 5  shape = [1, 8, 8] }
model m : [1, 8, 8] -> [5] { modular { conv(6) relu } gap linear(5) }
train m on d { epochs = 1  batch = 16  loss = cross_entropy + 0.5 * cohesion + 1.5 * coupling }
")
expect(0 "test accuracy" train few.mwt -o few.ckpt --quiet)
execute_process(COMMAND ${MWTC} modularize few.mwt --ckpt few.ckpt --sweep --json --quiet WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE few_json RESULT_VARIABLE rc)
string(JSON few_r4 ERROR_VARIABLE e1 TYPE "${few_json}" modules 4 recall)
string(JSON few_r0 ERROR_VARIABLE e2 TYPE "${few_json}" modules 0 recall)
string(JSON few_s0 ERROR_VARIABLE e3 TYPE "${few_json}" sweep 0 recall)
if(NOT rc EQUAL 0 OR e1 OR e2 OR e3 OR NOT few_r4 STREQUAL "NULL" OR NOT few_r0 STREQUAL "NUMBER"
   OR NOT few_s0 STREQUAL "NUMBER")
  message(FATAL_ERROR "a class without test images got a recall:\n${few_json}\n${e1}${e2}${e3}")
endif()
expect(0 "n/a     " report few.mwt --ckpt few.ckpt)
expect(0 "(no test images of its class)" report few.mwt --ckpt few.ckpt)
expect(0 "\"images\": 0, \"accuracy\": null" eval few.mwt --ckpt few.ckpt --json)
expect(0 "threshold 0.50" report mod.mwt --ckpt mod.ckpt --threshold 0.5)
expect(0 "sweep on" modularize mod.mwt --ckpt mod.ckpt --sweep --svg mod.svg)
expect(0 "\"sweep_seconds\"" report mod.mwt --ckpt mod.ckpt --sweep --json)
expect(1 "mwtc: error: ${TMP}/none/mod.svg: cannot create" report mod.mwt --ckpt mod.ckpt --svg ${TMP}/none/mod.svg)
# the main job finds --svg unwritable before it trains, not after; and says when there is nothing to chart
expect(1 "mwtc: error: ${TMP}/none/mod.svg: cannot create" mod.mwt --svg ${TMP}/none/mod.svg -o nosvg.ckpt --quiet)
if(EXISTS ${TMP}/nosvg.ckpt)
  message(FATAL_ERROR "the main job trained before it found --svg unwritable")
endif()
expect(0 "ok.mwt has no modularize statement; ignored" ok.mwt --svg ok.svg -o ok4.ckpt --quiet)
# and the reuse's checkpoint (pair.ckpt) too: a directory there stops it before it trains
file(MAKE_DIRECTORY ${TMP}/pair.ckpt)
expect(1 "mwtc: error: pair.ckpt: is a directory, not a file" mod.mwt -o nopair.ckpt --quiet)
file(REMOVE_RECURSE ${TMP}/pair.ckpt)
if(EXISTS ${TMP}/nopair.ckpt)
  message(FATAL_ERROR "the main job trained before it found the reuse's checkpoint unwritable")
endif()
# -o /dev/null: `train` writes it in place and /dev/null stays the device (a temporary file renamed
# over it had replaced it with a regular file, as root); the main job, which reads the checkpoint
# back to modularize, says so before it trains
expect(0 "checkpoint /dev/null" train mod.mwt -o /dev/null)
execute_process(COMMAND stat -c %F /dev/null OUTPUT_VARIABLE devnull OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT devnull STREQUAL "character special file")
  message(FATAL_ERROR "/dev/null is a ${devnull} after train -o /dev/null")
endif()
expect(1 "mwtc: error: /dev/null: not a regular file: the main job reads the trained model back" mod.mwt -o /dev/null)
# class names are text in the SVG, escaped: markup characters, non-ASCII ones, control characters
string(ASCII 1 ctl)
file(READ ${TMP}/mod.mwt named_src)
string(REPLACE "shape = [1, 8, 8] }" "shape = [1, 8, 8]  names = [\"Shirt & top\", \"<unk>\", \"Café${ctl}\"] }"
       named_src "${named_src}")
file(WRITE ${TMP}/named.mwt "${named_src}")
expect(0 "modules of m" report named.mwt --ckpt mod.ckpt --svg named.svg)
file(READ ${TMP}/named.svg named_svg)
foreach(n ">Shirt &amp; top<" ">&lt;unk&gt;<" ">Caf&#xe9;&#xfffd;<")
  string(FIND "${named_svg}" "${n}" at)
  if(at LESS 0)
    message(FATAL_ERROR "named.svg: no '${n}' in\n${named_svg}")
  endif()
endforeach()
# modules with their generators dropped (left out of the sliced graphs), from the same checkpoint
file(READ ${TMP}/mod.mwt mod_src)
string(REPLACE "threshold = 0.8 }" "threshold = 0.8  generators = drop }" mod_src "${mod_src}")
file(WRITE ${TMP}/moddrop.mwt "${mod_src}")
expect(0 "generators dropped" report moddrop.mwt --ckpt mod.ckpt --sweep)
expect(0 "\"stored\": false" report moddrop.mwt --ckpt mod.ckpt --json)
# report measures what the checkpoint does not hold each time, and says why and how to store it
expect(0 "mod.ckpt holds no figures measured for these modules by this build of mwtc on this CPU: measuring them on images (mwtc modularize FILE.mwt --ckpt mod.ckpt stores them)"
       report moddrop.mwt --ckpt mod.ckpt)
expect(0 "\"accuracy\"" eval moddrop.mwt --ckpt mod.ckpt --module 1 --json)
expect(0 "\"module\": \"0,2\"" eval mod.mwt --ckpt mod.ckpt --module 0,2 --json)
# each key once (a JSON object with a key twice is not one a reader can trust)
execute_process(COMMAND ${MWTC} eval mod.mwt --ckpt mod.ckpt --module 0,2 --json WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE mod02)
string(REGEX MATCHALL "\"module\"" mod02_keys "${mod02}")
list(LENGTH mod02_keys mod02_n)
if(NOT mod02_n EQUAL 1)
  message(FATAL_ERROR "eval --module 0,2 --json has \"module\" ${mod02_n} times:\n${mod02}")
endif()
# a list split at the space after its comma (`--module 0, 2`) is joined again
expect(0 "\"module\": \"0,2\"" eval mod.mwt --ckpt mod.ckpt --module 0, 2 --json)
expect(1 "class 7 is not one of the 3 classes" eval mod.mwt --ckpt mod.ckpt --module 7)
# a one-class module is always right among its classes: eval adds its own-class recall, the figure
# report gives for that module
expect(0 "choosing among all 3 outputs, the module says 1 for" eval mod.mwt --ckpt mod.ckpt --module 1)
execute_process(COMMAND ${MWTC} eval mod.mwt --ckpt mod.ckpt --module 1 --json WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE one_json)
execute_process(COMMAND ${MWTC} report mod.mwt --ckpt mod.ckpt --json WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE rep_json)
string(JSON one_recall GET "${one_json}" recall)
string(JSON rep_recall GET "${rep_json}" modules 1 recall)
if(NOT one_recall EQUAL rep_recall)
  message(FATAL_ERROR "eval --module 1 gives recall ${one_recall}, report ${rep_recall}")
endif()
# and how its calibrated probability (emit's NAME_probability) answers yes or no, over all test images
string(JSON yn_acc ERROR_VARIABLE yn_err GET "${one_json}" yes_no accuracy)
string(JSON yn_rec GET "${one_json}" yes_no recall)
string(JSON yn_pre GET "${one_json}" yes_no precision)
if(yn_err OR yn_acc LESS 0 OR yn_acc GREATER 1 OR yn_rec LESS 0 OR yn_rec GREATER 1 OR yn_pre LESS 0 OR yn_pre GREATER 1)
  message(FATAL_ERROR "eval --module 1 --json has no yes_no figures in [0, 1]:\n${one_json}\n${yn_err}")
endif()
expect(0 "\"is it class 1?\" is answered right for" eval mod.mwt --ckpt mod.ckpt --module 1)
# a module of two classes: a calibration for each, "which of them, or none" over all test images
string(JSON yn2_acc ERROR_VARIABLE yn2_err GET "${mod02}" yes_no accuracy)
string(JSON yn2_pre ERROR_VARIABLE yn2_err2 GET "${mod02}" yes_no precision)
if(yn2_err OR yn2_err2 OR yn2_acc LESS 0 OR yn2_acc GREATER 1 OR yn2_pre LESS 0 OR yn2_pre GREATER 1)
  message(FATAL_ERROR "eval --module 0,2 --json has no yes_no figures in [0, 1]:\n${mod02}\n${yn2_err}")
endif()
expect(0 "\"is it one of classes 0,2, and which?\" is answered right for" eval mod.mwt --ckpt mod.ckpt --module 0,2)
expect(2 "--module needs class numbers" eval mod.mwt --ckpt mod.ckpt --module a)
expect(2 "--module needs class numbers" eval mod.mwt --ckpt mod.ckpt --module 0,)
expect(2 "--module needs class numbers" eval mod.mwt --ckpt mod.ckpt --module 4294967296)
expect(2 "class 2 is given twice" eval mod.mwt --ckpt mod.ckpt --module 2,0,2)
expect(0 "module 0,2 of" eval mod.mwt --ckpt mod.ckpt --module " 0, 2")
expect(1 "has no masks" modularize ok.mwt --ckpt ok.ckpt)
expect(0 "\"krr\": 1.0000" eval ok.mwt --ckpt ok.ckpt --module 0,1 --json)
execute_process(COMMAND ${MWTC} eval ok.mwt --ckpt ok.ckpt --module 0,1 --json WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE ok01)
if(ok01 MATCHES "yes_no")   # no masks: the whole model, its own logits, nothing calibrated
  message(FATAL_ERROR "eval --module 0,1 of a model without masks has yes_no figures:\n${ok01}")
endif()
expect(0 "module 0,1 of m (no masks: the whole model, choosing among these classes)" eval ok.mwt --ckpt ok.ckpt --module 0,1)
expect(0 "reuse pair: classes 0 2 of m" reuse mod.mwt --ckpt mod.ckpt --quiet)
# a reuse's checkpoint keeps its module: eval gives the accuracy the reuse reported, on the same images
execute_process(COMMAND ${MWTC} reuse mod.mwt --ckpt mod.ckpt --quiet --json WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE reused)
execute_process(COMMAND ${MWTC} eval mod.mwt --ckpt pair.ckpt --json WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE evaled RESULT_VARIABLE rc)
string(REGEX MATCH "\"accuracy\": [0-9.]+, \"images\": [0-9]+" a_reused "${reused}")
string(REGEX MATCH "\"accuracy\": [0-9.]+, \"images\": [0-9]+" a_evaled "${evaled}")
if(NOT rc EQUAL 0 OR NOT a_reused OR NOT a_reused STREQUAL a_evaled OR NOT evaled MATCHES "\"model\": \"pair\"")
  message(FATAL_ERROR "eval of the reuse's checkpoint disagrees with the reuse:\n${reused}\n${evaled}")
endif()
expect(0 "class 2" eval mod.mwt --ckpt pair.ckpt)
# --module on a reuse's checkpoint: some of its classes, its head choosing among them alone (as emit
# builds them); all of them is plain eval, one of them is always right, another class is an error
execute_process(COMMAND ${MWTC} eval mod.mwt --ckpt pair.ckpt --json --module 2,0 WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE evaled_both RESULT_VARIABLE rc)
string(REGEX MATCH "\"accuracy\": [0-9.]+, \"images\": [0-9]+" a_both "${evaled_both}")
if(NOT rc EQUAL 0 OR NOT a_both STREQUAL a_evaled OR NOT evaled_both MATCHES "\"module\": \"2,0\"")
  message(FATAL_ERROR "eval --module 2,0 of reuse pair [0, 2] is not its plain eval:\n${evaled_both}\n${evaled}")
endif()
expect(0 "classes 0 of pair on their test images: pair on d (pair.ckpt, 1 epoch): test accuracy 100.00%"
       eval mod.mwt --ckpt pair.ckpt --module 0)
expect(1 "mwtc: error: --module: class 1 is not a class of reuse 'pair'" eval mod.mwt --ckpt pair.ckpt --module 1)
expect(2 "reuse needs --ckpt" reuse mod.mwt)
expect(1 "reuse pair fine-tunes on batches of 16 images, and --limit leaves 10 training images of its classes"
       reuse mod.mwt --ckpt mod.ckpt --limit 10)
# two reuse statements: `reuse --json` prints one object with both under "reuse"
file(WRITE ${TMP}/mod2.mwt "${mod_src}reuse m as one { classes = [1, 2]  epochs = 1 }\n")
execute_process(COMMAND ${MWTC} reuse mod2.mwt --ckpt mod.ckpt --quiet --json WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE reuse2 RESULT_VARIABLE rc)
string(JSON r0 ERROR_VARIABLE e1 GET "${reuse2}" reuse 0 reuse)
string(JSON r1 ERROR_VARIABLE e2 GET "${reuse2}" reuse 1 reuse)
string(JSON r1_classes ERROR_VARIABLE e3 GET "${reuse2}" reuse 1 classes 0)
if(NOT rc EQUAL 0 OR e1 OR e2 OR e3 OR NOT r0 STREQUAL "pair" OR NOT r1 STREQUAL "one" OR NOT r1_classes EQUAL 1)
  message(FATAL_ERROR "reuse --json of two reuse statements is not one object holding both:\n${reuse2}\n${e1}${e2}${e3}")
endif()
expect(0 "reuse pair: classes 0 2 of m" mod.mwt --quiet)
# the main job's --json is one object: the report, with the training and the
# reuse inside (LANGUAGE.md section 3); a file that only trains gives "train"
execute_process(COMMAND ${MWTC} mod.mwt --quiet --json -o main.ckpt WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE main_json RESULT_VARIABLE rc)
string(JSON main_krr ERROR_VARIABLE e1 GET "${main_json}" krr)
string(JSON main_reuse ERROR_VARIABLE e2 GET "${main_json}" reuse 0 reuse)
string(JSON main_train ERROR_VARIABLE e3 GET "${main_json}" train 0 checkpoint)
string(REGEX MATCHALL "\n{" objects "\n${main_json}")
list(LENGTH objects nobjects)
if(NOT rc EQUAL 0 OR e1 OR e2 OR e3 OR NOT main_reuse STREQUAL "pair" OR NOT main_train STREQUAL "main.ckpt"
   OR NOT nobjects EQUAL 1)
  message(FATAL_ERROR "the main job's --json is not one report with its steps inside:\n${main_json}\n${e1}${e2}${e3}")
endif()
# two modularize statements of one model: each its own threshold and generators; the first
# report's keys at the top (section 3), both under "reports"
file(READ ${TMP}/mod.mwt two_src)
file(WRITE ${TMP}/two_mz.mwt "${two_src}modularize m { threshold = 0.5  generators = drop }\n")
execute_process(COMMAND ${MWTC} two_mz.mwt --quiet --json -o two_mz.ckpt WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE two_json RESULT_VARIABLE rc)
string(JSON top_t ERROR_VARIABLE e1 GET "${two_json}" threshold)
string(JSON r0_t ERROR_VARIABLE e2 GET "${two_json}" reports 0 threshold)
string(JSON r1_t ERROR_VARIABLE e3 GET "${two_json}" reports 1 threshold)
string(JSON r1_g ERROR_VARIABLE e4 GET "${two_json}" reports 1 generators)
if(NOT rc EQUAL 0 OR e1 OR e2 OR e3 OR e4 OR NOT top_t EQUAL 0.8 OR NOT r0_t EQUAL 0.8 OR NOT r1_t EQUAL 0.5
   OR NOT r1_g STREQUAL "drop")
  message(FATAL_ERROR "two modularize statements did not give their own reports:\n${two_json}\n${e1}${e2}${e3}${e4}")
endif()
# the checkpoint keeps the last statement's modules; report reads them as stored
execute_process(COMMAND ${MWTC} report two_mz.mwt --ckpt two_mz.ckpt --json WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE two_rep ERROR_VARIABLE two_err RESULT_VARIABLE rc)
string(JSON rep_t ERROR_VARIABLE e1 GET "${two_rep}" threshold)
string(JSON rep_g ERROR_VARIABLE e2 GET "${two_rep}" generators)
if(NOT rc EQUAL 0 OR e1 OR e2 OR NOT rep_t EQUAL 0.5 OR NOT rep_g STREQUAL "drop" OR two_err MATCHES "measuring")
  message(FATAL_ERROR "report after two modularize statements did not read the last one's stored modules:\n${two_rep}\n${two_err}")
endif()
execute_process(COMMAND ${MWTC} ok.mwt --quiet --json -o main_ok.ckpt WORKING_DIRECTORY ${TMP}
                OUTPUT_VARIABLE ok_json RESULT_VARIABLE rc)
string(JSON ok_model ERROR_VARIABLE e1 GET "${ok_json}" train 0 model)
if(NOT rc EQUAL 0 OR e1 OR NOT ok_model STREQUAL "m")
  message(FATAL_ERROR "the main job of a file that only trains gave no training in its --json:\n${ok_json}\n${e1}")
endif()

# emit: a module as NAME.o + NAME.h (test_aot links one into a C program);
# here the command line: what it writes, and its usage errors.
expect(0 "emitted shoes.o and shoes.h: shoes_run" emit mod.mwt --ckpt mod.ckpt --module 2,0 -o shoes.o)
file(READ ${TMP}/shoes.h hdr)
if(NOT hdr MATCHES "#define SHOES_OUTPUT_SIZE  2" OR NOT hdr MATCHES "#define SHOES_CLASSES      { 2, 0 }"
   OR NOT hdr MATCHES "int shoes_run\\(const float \\*images, float \\*scores, int n\\);"
   OR NOT hdr MATCHES "#define SHOES_INPUT_SIZE   64 "
   OR NOT hdr MATCHES "#ifndef MWTC_MODULE_shoes_H")   # the name's case: Shoes.h would not hide shoes_run
  message(FATAL_ERROR "shoes.h is not the header LANGUAGE.md describes:\n${hdr}")
endif()
# two classes: their raw logits and, calibrated, a probability for each (in the order asked)
if(NOT hdr MATCHES "int shoes_probability\\(const float \\*images, float \\*p, int n\\);"
   OR NOT hdr MATCHES "p\\[i \\* SHOES_OUTPUT_SIZE \\+ j\\] is the probability")
  message(FATAL_ERROR "shoes.h, a module of two classes, does not declare shoes_probability:\n${hdr}")
endif()
# one class: its raw logit and, calibrated, its probability (test_aot checks the numbers)
expect(0 "emitted one.o and one.h: one_run (and one_probability), the module of m (classes 1)"
       emit mod.mwt --ckpt mod.ckpt --module 1 -o one.o)
file(READ ${TMP}/one.h hdr)
if(NOT hdr MATCHES "int one_probability\\(const float \\*images, float \\*p, int n\\);")
  message(FATAL_ERROR "one.h does not declare one_probability:\n${hdr}")
endif()
expect(0 "\"function\": \"onej_run\", \"probability\": \"onej_probability\", \"classes\": [1]"
       emit mod.mwt --ckpt mod.ckpt --module 1 -o onej.o --json)
# its bulk graph: 8 images a run (test_aot checks the bits against one at a time)
expect(0 "\", \"bulk\": 8 }" emit mod.mwt --ckpt mod.ckpt --module 1 -o onej.o --json)
file(READ ${TMP}/onej.h hdr)
if(NOT hdr MATCHES "A call runs its images 8 at a time")
  message(FATAL_ERROR "onej.h does not say that a call runs its images 8 at a time:\n${hdr}")
endif()
expect(0 "\"classes\": [0, 2]" emit mod.mwt --ckpt pair.ckpt -o pair_mod.o --json)
# a reuse's head is a classifier of its classes: no calibration
expect(0 "\"function\": \"pair2_run\", \"classes\": [2], \"input_size\": 64, \"output_size\": 1"
       emit mod.mwt --ckpt pair.ckpt --module 2 -o pair2.o --json)
expect(0 "64 floats in, 2 scores out; compiled for" emit ok.mwt --ckpt ok.ckpt --module 1,0 -o whole.o)
expect(0 "warning: --threshold does not apply: m has no masks" emit ok.mwt --ckpt ok.ckpt --module 1,0 -o whole2.o --threshold 0.5)
# without --model, a command given a checkpoint takes the model it was trained for: here the
# second of two, which the modularize statement does not name
file(WRITE ${TMP}/twomodels.mwt "dataset d = synthetic(n = 256, test = 64, seed = 2) { classes = 3  shape = [1, 8, 8] }
model a : [1, 8, 8] -> [3] { modular { conv(4) relu } gap linear(3) }
model b : [1, 8, 8] -> [3] { modular { conv(6) relu } gap linear(3) }
train a on d { epochs = 1  batch = 32 }
train b on d { epochs = 1  batch = 32 }
modularize a { threshold = 0.9 }
")
expect(0 "checkpoint b2.ckpt" train twomodels.mwt --model b -o b2.ckpt --quiet)
expect(0 "b on d (b2.ckpt, 1 epoch)" eval twomodels.mwt --ckpt b2.ckpt)
# without --ckpt, the checkpoint train writes for the model is suggested when it is there
expect(0 "checkpoint b.ckpt" train twomodels.mwt --model b --quiet)
expect(2 "report needs --ckpt CKPT (b.ckpt is here, where train writes model b's: --ckpt b.ckpt)"
       report twomodels.mwt --model b)
expect(0 "modules of b on d" report twomodels.mwt --ckpt b2.ckpt --quiet)
expect(0 "the module of b (classes 1)" emit twomodels.mwt --ckpt b2.ckpt --module 1 -o b2.o)
# a resumed run goes on in its own checkpoint
expect(0 "trained 2 epochs on d: test accuracy" train twomodels.mwt --resume b2.ckpt --epochs 2 --quiet)
expect(0 "b on d (b2.ckpt, 2 epochs)" eval twomodels.mwt --ckpt b2.ckpt)
# a few steps leave batchnorm's running statistics near their start: the test accuracy that uses them
# trails the training accuracy, and train says why; with more steps the note goes
file(WRITE ${TMP}/bn.mwt "dataset d = synthetic(n = 256, test = 128, seed = 1) { classes = 4  shape = [1, 12, 12] }
model m : [1, 12, 12] -> [4] { conv(8) batchnorm relu maxpool(2) conv(16) batchnorm relu gap linear(4) }
train m on d { epochs = 1  batch = 32  optimizer = sgd(lr = 0.5, momentum = 0.9)  seed = 3 }
")
expect(0 "note: batchnorm's running statistics have followed only 8 training steps" train bn.mwt -o bn.ckpt)
execute_process(COMMAND ${MWTC} train bn.mwt -o bn.ckpt --epochs 8 WORKING_DIRECTORY ${TMP} OUTPUT_VARIABLE bn_out)
if(bn_out MATCHES "running statistics" OR NOT bn_out MATCHES "trained 8 epochs")
  message(FATAL_ERROR "64 steps still gave the batchnorm note:\n${bn_out}")
endif()
# 20 input channels, each with its own (mean, std): the same pair twenty times trains exactly as
# one pair for all does, and the model emits (the first versions kept 16 pairs, read past them
# and refused to emit)
string(REPEAT "(0.5, 0.25), " 19 pairs)
foreach(norm "[${pairs}(0.5, 0.25)]" "(0.5, 0.25)")
  file(WRITE ${TMP}/wide.mwt "dataset d = synthetic(n = 256, test = 128, seed = 3) { classes = 4  shape = [20, 8, 8]
    normalize = ${norm} }
model m : [20, 8, 8] -> [4] { conv(8) batchnorm relu gap linear(4) }
train m on d { epochs = 2  batch = 32  seed = 3 }
")
  execute_process(COMMAND ${MWTC} train wide.mwt -o wide.ckpt --quiet WORKING_DIRECTORY ${TMP}
                  OUTPUT_VARIABLE wide_out RESULT_VARIABLE rc)
  string(REGEX MATCH "test accuracy [^\n]*loss [0-9.]+" wide_fig "${wide_out}")
  if(NOT rc EQUAL 0 OR NOT wide_fig)
    message(FATAL_ERROR "20 channels with normalize = ${norm}: exit ${rc}\n${wide_out}")
  endif()
  list(APPEND wide_figs "${wide_fig}")
endforeach()
list(GET wide_figs 0 per_channel)
list(GET wide_figs 1 one_pair)
if(NOT per_channel STREQUAL one_pair)
  message(FATAL_ERROR "twenty equal pairs train otherwise than one pair: ${per_channel} against ${one_pair}")
endif()
expect(0 "1280 floats in, 2 scores out" emit wide.mwt --ckpt wide.ckpt --module 1,0 -o wide.o)
expect(2 "emit needs --module" emit mod.mwt --ckpt mod.ckpt -o x.o)
expect(2 "emit needs --ckpt CKPT (m.ckpt is here, where train writes model m's: --ckpt m.ckpt)\n" emit mod.mwt --module 1 -o x.o)
expect(2 "emit needs -o NAME.o" emit mod.mwt --ckpt mod.ckpt --module 1)
expect(2 "-o needs NAME.o" emit mod.mwt --ckpt mod.ckpt --module 1 -o shoes.c)
expect(2 "'my-shoes' (from -o my-shoes.o) is not a C identifier" emit mod.mwt --ckpt mod.ckpt --module 1 -o my-shoes.o)
expect(2 "class 1 is given twice" emit mod.mwt --ckpt mod.ckpt --module 1,1 -o x.o)
expect(1 "class 5 is not one of the 3 classes" emit mod.mwt --ckpt mod.ckpt --module 5 -o x.o)
expect(1 "class 1 is not a class of reuse 'pair'" emit mod.mwt --ckpt pair.ckpt --module 1 -o x.o)
expect(1 "mwtc: error: missing.ckpt: cannot open" emit mod.mwt --ckpt missing.ckpt --module 1 -o x.o)
expect(1 "mwtc: error: cannot write ${TMP}/none/x.o" emit mod.mwt --ckpt mod.ckpt --module 1 -o ${TMP}/none/x.o)
# names C reserves, names too long, a header that hides the C library's, paths that are directories
expect(2 "'_x' (from -o _x.o) starts with '_'" emit mod.mwt --ckpt mod.ckpt --module 1 -o _x.o)
string(REPEAT "a" 200 long_name)
expect(2 "has 200 characters; at most 199" emit mod.mwt --ckpt mod.ckpt --module 1 -o ${long_name}.o)
expect(0 "warning: emit: math.h has the name of a C library header" emit mod.mwt --ckpt mod.ckpt --module 1 -o math.o)
file(MAKE_DIRECTORY ${TMP}/hd/m.h ${TMP}/dir.o)
expect(1 "cannot write hd/m.h: Is a directory (hd/m.o not written either)" emit mod.mwt --ckpt mod.ckpt --module 1 -o hd/m.o)
if(EXISTS ${TMP}/hd/m.o)
  message(FATAL_ERROR "emit left hd/m.o without its header")
endif()
expect(1 "cannot write dir.o: Is a directory" emit mod.mwt --ckpt mod.ckpt --module 1 -o dir.o)
# two headers whose names differ only in case: an #error, not a buffer sized by the other's macros
expect(0 "emitted Shoes.o" emit mod.mwt --ckpt mod.ckpt --module 1 -o Shoes.o)
file(READ ${TMP}/Shoes.h hdr2)
if(NOT hdr2 MATCHES "#if defined\\(SHOES_INPUT_SIZE\\)[^\n]*\n#error")
  message(FATAL_ERROR "Shoes.h does not refuse to follow shoes.h:\n${hdr2}")
endif()

# --json stays JSON whatever a class name or a path holds (a .mwt string may hold a backslash or a tab)
file(WRITE ${TMP}/names.mwt "dataset d = synthetic(n = 64, test = 32) { classes = 2  shape = [1, 4, 4]  names = [\"C:\\dir\", \"tab\there\"] }
model m : [1, 4, 4] -> [2] { flatten linear(2) }
train m on d { epochs = 1  batch = 16 }
")
foreach(cmd "train;names.mwt;-o;we\"ird.ckpt;--quiet;--json" "eval;names.mwt;--ckpt;we\"ird.ckpt;--json")
  execute_process(COMMAND ${MWTC} ${cmd} WORKING_DIRECTORY ${TMP} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  string(JSON kind ERROR_VARIABLE bad TYPE "${out}")
  if(NOT rc EQUAL 0 OR bad OR NOT kind STREQUAL "OBJECT")
    message(FATAL_ERROR "mwtc ${cmd}: exit ${rc}, not one JSON object (${bad}):\n${out}")
  endif()
endforeach()
string(JSON name GET "${out}" classes 0 name)
if(NOT name STREQUAL "C:\\dir")
  message(FATAL_ERROR "class 0's name came back as '${name}'")
endif()
expect(2 "whose kernels are fixed: --threshold does not apply" emit mod.mwt --ckpt pair.ckpt --threshold 0.5 -o x.o)
# a path that holds a comment's end does not end the header's comment
file(MAKE_DIRECTORY "${TMP}/c*")
file(COPY ${TMP}/mod.ckpt DESTINATION "${TMP}/c*")
expect(0 "emitted odd.o" emit mod.mwt --ckpt "c*/mod.ckpt" --module 1 -o odd.o)
file(READ ${TMP}/odd.h odd)
string(FIND "${odd}" "*/" first)
string(FIND "${odd}" "c*\\/mod.ckpt" escaped)
if(escaped LESS 0 OR first LESS escaped)
  message(FATAL_ERROR "odd.h: the path ends the comment early:\n${odd}")
endif()
# --cpu: an object for other machines than this one
expect(0 "\"cpu\": \"x86-64-v2\"" emit mod.mwt --ckpt mod.ckpt --module 0,1 -o v2.o --cpu x86-64-v2 --json)
expect(2 "--cpu pentium: not one of native, x86-64" emit mod.mwt --ckpt mod.ckpt --module 0 -o x.o --cpu pentium)
# MWTC_JIT_CPU: the kernels compiled for an x86-64 level instead of this CPU (the baseline, which
# every x86-64 runs: 8-float tiles), or `native`, this CPU's, as `emit --cpu` takes it; a name that
# is not a level is refused, naming the variable
file(WRITE ${TMP}/level.mwt "dataset d = synthetic(n = 64, test = 16) { classes = 3  shape = [4, 12, 12] }
model m : [4, 12, 12] -> [3] { conv(16) relu conv(16, k = 5, stride = 2) relu gap linear(3) }
train m on d { epochs = 1  batch = 16 }
")
set(host_mwtc ${MWTC})
set(MWTC ${CMAKE_COMMAND} -E env MWTC_JIT_CPU=x86-64 ${host_mwtc})
expect(0 "m: trained 1 epoch on d" train level.mwt -o level.ckpt --quiet)
set(MWTC ${CMAKE_COMMAND} -E env MWTC_JIT_CPU=pentium ${host_mwtc})
expect(1 "mwtc: error: MWTC_JIT_CPU=pentium: not an x86-64 level" train level.mwt -o level.ckpt --quiet)
set(MWTC ${CMAKE_COMMAND} -E env MWTC_JIT_CPU=native ${host_mwtc})
expect(0 "m: trained 1 epoch on d" train level.mwt -o level.ckpt --quiet)
set(MWTC ${host_mwtc})
