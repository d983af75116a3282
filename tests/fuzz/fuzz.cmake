# libFuzzer harnesses (label `fuzz`), built only in the clang sanitizer build (`make
# test-sanitize`: SHARDLM_SANITIZE=ON with clang, whose libFuzzer gcc lacks). Each test runs its
# fuzzer for SHARDLM_FUZZ_SECONDS (default 30) from the committed seeds in tests/fuzz/corpus/<name>/
# (read only; new inputs go to the build folder); a crash, a sanitizer report or a leak fails it
# and leaves the input as build/tests/fuzz/<name>/crash-*. Longer runs: docs/fuzzing.md.
#
# A new reader: add tests/fuzz/fuzz_<name>.cpp with LLVMFuzzerTestOneInput, seeds in
# tests/fuzz/corpus/<name>/, and a line `shardlm_fuzz_test(<name>)` below.
if(NOT (SHARDLM_SANITIZE AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang"))
  return()
endif()
set(SHARDLM_FUZZ_SECONDS 30 CACHE STRING "Seconds each fuzz test runs its fuzzer")
# A fixed seed makes a CTest run's inputs the same each time (a finding replays, CI does not fail
# on chance); 0 draws one. New ground is for the long runs of docs/fuzzing.md.
set(SHARDLM_FUZZ_SEED 1 CACHE STRING "libFuzzer -seed of the fuzz tests (0: random)")

# shardlm_fuzz_test(NAME [SOURCE file] [DEFINES d..]): fuzz_NAME from tests/fuzz/fuzz_NAME.cpp.
function(shardlm_fuzz_test name)
  cmake_parse_arguments(F "" "SOURCE" "DEFINES" ${ARGN})
  if(NOT F_SOURCE)
    set(F_SOURCE fuzz_${name}.cpp)
  endif()
  add_executable(fuzz_${name} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/${F_SOURCE})
  target_link_libraries(fuzz_${name} PRIVATE shardlm_core)
  target_compile_definitions(fuzz_${name} PRIVATE ${F_DEFINES})
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  set(work ${CMAKE_CURRENT_BINARY_DIR}/fuzz/${name})
  add_test(NAME fuzz_${name}
           COMMAND ${CMAKE_COMMAND} -E env TMPDIR=${work}
                   ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run_fuzzer.sh $<TARGET_FILE:fuzz_${name}>
                   ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${name} ${work} ${SHARDLM_FUZZ_SECONDS}
                   -seed=${SHARDLM_FUZZ_SEED})
  set_tests_properties(fuzz_${name} PROPERTIES LABELS fuzz TIMEOUT 600)
endfunction()

shardlm_fuzz_test(token_shard)
shardlm_fuzz_test(dataset_index)
shardlm_fuzz_test(config)
shardlm_fuzz_test(tokenizer)
shardlm_fuzz_test(tokenizer_json)
set(_ckpt SHARDLM_FUZZ_CHECKPOINT_DIR="${CMAKE_CURRENT_SOURCE_DIR}/fuzz/checkpoint")
shardlm_fuzz_test(manifest SOURCE fuzz_checkpoint_file.cpp DEFINES ${_ckpt} FUZZ_FILE="manifest.h5")
shardlm_fuzz_test(rank_file SOURCE fuzz_checkpoint_file.cpp DEFINES ${_ckpt} FUZZ_FILE="rank_00000.h5")
# The converters' readers (src/convert/); seeds from tests/fuzz/make_convert_seeds.py.
shardlm_fuzz_test(safetensors)
shardlm_fuzz_test(gguf)
