# End-to-end tests of `shardlm train` and friends through the real binary (label `cli`).
find_package(Python3 REQUIRED COMPONENTS Interpreter)
foreach(case config-errors resume-bit-exact signal-requeue kill-during-save corrupt-checkpoint nan data-run
             legacy-checkpoint config-roundtrip legacy-run-dir generate-device threads-and-isa)
  add_test(NAME cli_${case}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_train_cli.py ${case}
                   $<TARGET_FILE:shardlm> ${CMAKE_CURRENT_BINARY_DIR}/cli/${case})
  set_tests_properties(cli_${case} PROPERTIES LABELS "cli" TIMEOUT 600 PROCESSORS 2)
endforeach()
