# `shardlm convert` checked by the real consumers (label `convert`): transformers and torch
# (check_convert.py), llama.cpp through llama-cpp-python and gguf-py (check_gguf.py), all from
# the test venv (tests/python/requirements-convert.txt).
# convert_CASE: SCRIPT CASE SHARDLM SCRATCH from the test venv.
function(shardlm_convert_test case script)
  add_test(NAME convert_${case}
           COMMAND ${SHARDLM_TEST_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/convert/${script} ${case}
                   $<TARGET_FILE:shardlm> ${CMAKE_CURRENT_BINARY_DIR}/convert/${case})
  set_tests_properties(convert_${case} PROPERTIES LABELS "convert" TIMEOUT 900 PROCESSORS 2
                       FIXTURES_REQUIRED test_venv SKIP_RETURN_CODE 77)
endfunction()
foreach(case hf-gpt2 hf-llama import-gpt2 import-llama bad-input)
  shardlm_convert_test(${case} check_convert.py)
endforeach()
# gguf-llamacpp-*: llama.cpp itself (llama-cpp-python in the venv); skipped (77) only when
# the venv was made with SHARDLM_TEST_LLAMACPP=0.
foreach(case gguf-gpt2 gguf-llama gguf-llamacpp-gpt2 gguf-llamacpp-llama gguf-llamacpp-rope-scaling)
  shardlm_convert_test(${case} check_gguf.py)
endforeach()
# Byte-level BPE tokenizers (a tokenizer.json of GPT-2's kind) against `tokenizers`,
# transformers and llama.cpp (check_bpe.py).
foreach(case bpe-tokenizer bpe-flow bpe-bad-input)
  shardlm_convert_test(${case} check_bpe.py)
endforeach()
# Peak resident memory of import and exports: near the largest tensor, not the model
# (check_memory.py).
shardlm_convert_test(memory check_memory.py)
