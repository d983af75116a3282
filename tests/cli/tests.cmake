# End-to-end tests of `shardlm train` and friends through the real binary (label `cli`).
find_package(Python3 REQUIRED COMPONENTS Interpreter)
foreach(case config-errors resume-bit-exact signal-requeue kill-during-save corrupt-checkpoint nan data-run
             legacy-checkpoint config-roundtrip legacy-run-dir generate-device llama damaged-files
             threads-and-isa async-save async-stop async-disk-full)
  add_test(NAME cli_${case}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_train_cli.py ${case}
                   $<TARGET_FILE:shardlm> ${CMAKE_CURRENT_BINARY_DIR}/cli/${case})
  set_tests_properties(cli_${case} PROPERTIES LABELS "cli" TIMEOUT 600 PROCESSORS 2)
endforeach()
# The memory preflight and `shardlm plan` (issues 12 and 18); cli_memory-cgroup needs a memory
# cgroup it can create (root), and is skipped (exit 77) where it cannot.
foreach(case refused just-under cgroup plan-best plan-model-section plan-network)
  add_test(NAME cli_memory-${case}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_memory_cli.py ${case}
                   $<TARGET_FILE:shardlm> ${CMAKE_CURRENT_BINARY_DIR}/cli/memory-${case})
  set_tests_properties(cli_memory-${case} PROPERTIES LABELS "cli" TIMEOUT 600 PROCESSORS 2
                       SKIP_RETURN_CODE 77)
endforeach()
