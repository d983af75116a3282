# Multi-node tests on test hosts made of network namespaces (tests/multinode/cluster.py), label
# `multinode`; they need root and skip (77) without it. multinode_sweep, the cleanup fixture,
# removes what a harness killed outright (a timeout) left behind.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(SHARDLM_MULTINODE ${CMAKE_CURRENT_SOURCE_DIR}/multinode)
add_test(NAME multinode_sweep COMMAND /usr/bin/python3 ${SHARDLM_MULTINODE}/cluster.py sweep)
set_tests_properties(multinode_sweep PROPERTIES LABELS "multinode" FIXTURES_CLEANUP multinode_hosts)
foreach(case harness equivalence mesh-hosts node-failure)
  add_test(NAME multinode_${case}
           COMMAND /usr/bin/python3 ${SHARDLM_MULTINODE}/test_multinode.py ${case}
                   ${CMAKE_BINARY_DIR} ${CMAKE_CURRENT_BINARY_DIR}/multinode/${case})
  set_tests_properties(multinode_${case} PROPERTIES LABELS "multinode" TIMEOUT 900 PROCESSORS 4
                       SKIP_RETURN_CODE 77 FIXTURES_REQUIRED multinode_hosts)
endforeach()
