# Watching a run through the real binary (label `observe`): TensorBoard's own reader on the
# event files (test venv), a tp2 x pp2 trace on 4 MPI ranks, and plots (Debian's matplotlib).
add_test(NAME observe_tensorboard
         COMMAND ${SHARDLM_TEST_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/observe/test_observe.py tensorboard
                 $<TARGET_FILE:shardlm> ${CMAKE_CURRENT_BINARY_DIR}/observe/tensorboard)
set_tests_properties(observe_tensorboard PROPERTIES LABELS "observe" TIMEOUT 600 FIXTURES_REQUIRED test_venv)
foreach(case trace plot)
  add_test(NAME observe_${case}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/observe/test_observe.py ${case}
                   $<TARGET_FILE:shardlm> ${CMAKE_CURRENT_BINARY_DIR}/observe/${case})
  set_tests_properties(observe_${case} PROPERTIES LABELS "observe" TIMEOUT 600 PROCESSORS 2)
endforeach()
