# End-to-end tests of the SLURM templates (label `slurm`) and of launch/shardlm-launch (label
# `launcher`). They start real processes: a private single-node SLURM cluster
# (tests/slurm/slurm_cluster.sh; needs root and scripts/install-slurm.sh, otherwise the SLURM
# tests exit 77 and CTest reports them skipped) and real MPI ranks. They share one lock so that
# no two run at once (one cluster, fixed ports, timing-sensitive fault injection).
#
# Until `shardlm train` exists they run against contract_trainer (tests/launcher/
# contract_trainer.c), a small MPI program that follows the trainer's process contract (exit
# codes, checkpoints committed by rename, progress heartbeats, run_config.ini; docs/launcher.md).
# The same scripts run against the real trainer when SHARDLM_TRAINER_E2E_TESTS is ON (below).

find_package(Python3 REQUIRED COMPONENTS Interpreter)
add_executable(contract_trainer launcher/contract_trainer.c)
target_link_libraries(contract_trainer PRIVATE MPI::MPI_C m)

set(SHARDLM_E2E_SCRATCH ${CMAKE_CURRENT_BINARY_DIR}/e2e)
# The mpirun flags the MPI tests use (SHARDLM_MPIRUN in tests/CMakeLists.txt), less the
# executable and what the scripts add themselves.
list(SUBLIST SHARDLM_MPIRUN 1 -1 _e2e_mpirun_flags)
list(REMOVE_ITEM _e2e_mpirun_flags --allow-run-as-root --oversubscribe)
list(JOIN _e2e_mpirun_flags " " SHARDLM_E2E_MPIRUN_ARGS)

# shardlm_e2e_test(NAME LABEL TIMEOUT [ENV VAR=VALUE..] COMMAND cmd args..)
function(shardlm_e2e_test name label timeout)
  cmake_parse_arguments(E2E "" "" "ENV;COMMAND" ${ARGN})
  add_test(NAME ${name} COMMAND ${E2E_COMMAND})
  set_tests_properties(${name} PROPERTIES LABELS "${label}" TIMEOUT ${timeout} RESOURCE_LOCK slurm
    SKIP_RETURN_CODE 77 PROCESSORS 2
    ENVIRONMENT "MPIRUN_ARGS=${SHARDLM_E2E_MPIRUN_ARGS};OMP_NUM_THREADS=1;${E2E_ENV}")
endfunction()

set(_slurm ${CMAKE_CURRENT_SOURCE_DIR}/slurm)
set(_launcher ${CMAKE_CURRENT_SOURCE_DIR}/launcher)

# The harness with plain MPI programs and bash jobs.
shardlm_e2e_test(slurm_mpi_jobs slurm 300
  COMMAND ${_slurm}/test_mpi_jobs.sh ${SHARDLM_E2E_SCRATCH}/slurm_mpi_jobs)
shardlm_e2e_test(slurm_requeue_signal slurm 300
  COMMAND ${_slurm}/test_requeue_signal.sh ${SHARDLM_E2E_SCRATCH}/slurm_requeue_signal)

# shardlm_e2e_suite(SUFFIX TRAINER CONFIG LONG_FLAGS RANKS [FLAGS..]): the template and launcher
# tests for one trainer executable. CONFIG must run at least 4 checkpoint intervals
# (SAVE_EVERY=5 steps, so 20+ steps) for a few seconds; CONFIG plus LONG_FLAGS (a ;-list of
# extra `train` flags) must need more than a minute of training, for the time-limit test
# (--time=1). RANKS: the rank count for every test ("" keeps the scripts' defaults: 2 for the
# templates, 3 for the launcher). FLAGS go to `train` in the launcher tests.
function(shardlm_e2e_suite suffix trainer config long_flags ranks)
  if(ranks)
    set(_ranks_env RANKS=${ranks})
  endif()
  foreach(mode signal timelimit)
    set(_flags)
    set(_timeout 600)
    if(mode STREQUAL "timelimit")
      set(_flags ${long_flags})
      set(_timeout 1200)
    endif()
    shardlm_e2e_test(slurm_cpu_template_${mode}_${suffix} slurm ${_timeout} ENV ${_ranks_env}
      COMMAND ${_slurm}/test_cpu_template.sh ${mode} ${SHARDLM_E2E_SCRATCH}/cpu_${mode}_${suffix}
              ${trainer} ${config} ${_flags})
  endforeach()
  shardlm_e2e_test(slurm_cpu_template_requeue_srun_${suffix} slurm 600 ENV LAUNCHER=srun ${_ranks_env}
    COMMAND ${_slurm}/test_cpu_template.sh requeue ${SHARDLM_E2E_SCRATCH}/cpu_requeue_${suffix}
            ${trainer} ${config})
  shardlm_e2e_test(slurm_cpu_template_signal_launcher_${suffix} slurm 600 ENV LAUNCHER=shardlm-launch ${_ranks_env}
    COMMAND ${_slurm}/test_cpu_template.sh signal ${SHARDLM_E2E_SCRATCH}/cpu_signal_launcher_${suffix}
            ${trainer} ${config})
  foreach(mode kill hang)
    shardlm_e2e_test(slurm_launcher_srun_${mode}_${suffix} slurm 600 ENV ${_ranks_env}
      COMMAND ${_slurm}/test_launcher_srun.sh ${mode} ${SHARDLM_E2E_SCRATCH}/launcher_srun_${mode}_${suffix}
              ${trainer} ${config})
  endforeach()
  foreach(mode kill-rank kill-during-save hang stop-resume refuse-model give-up)
    shardlm_e2e_test(launcher_${mode}_${suffix} launcher 600 ENV ${_ranks_env}
      COMMAND ${Python3_EXECUTABLE} ${_launcher}/launcher_test.py ${mode}
              ${SHARDLM_E2E_SCRATCH}/launcher_${mode}_${suffix} ${trainer} ${config} ${ARGN})
  endforeach()
endfunction()

# With contract_trainer: --save-ms widens each save to 0.3 s so kill-during-save can hit one;
# --steps 500 (at 0.1 s a step) outlasts the one-minute time limit.
shardlm_e2e_suite(contract $<TARGET_FILE:contract_trainer> ${_launcher}/contract.ini "--steps;500" "" --save-ms 300)

# The same suite with the real trainer. Needs: `shardlm train` following docs/launcher.md
# (exit 75 on SIGUSR1/SIGTERM after saving, with the handlers installed before any slow
# start-up work; checkpoints/latest; progress/rank_<k>.txt; run_config.ini with [model]
# n_layer=..), and a small CPU config (SHARDLM_E2E_CONFIG) that runs at least 20 steps in a few
# seconds on SHARDLM_E2E_RANKS ranks, plus flags (SHARDLM_E2E_LONG_FLAGS) that make it train for over a minute.
# Turn on with -DSHARDLM_TRAINER_E2E_TESTS=ON.
option(SHARDLM_TRAINER_E2E_TESTS "SLURM and launcher end-to-end tests with the real shardlm trainer" OFF)
set(SHARDLM_E2E_CONFIG ${PROJECT_SOURCE_DIR}/configs/e2e-tiny.ini CACHE FILEPATH
    "small CPU training config for the trainer end-to-end tests")
set(SHARDLM_E2E_LONG_FLAGS "" CACHE STRING
    "extra `shardlm train` flags (;-list) that make SHARDLM_E2E_CONFIG train for over a minute")
set(SHARDLM_E2E_RANKS 2 CACHE STRING "ranks of every trainer end-to-end run (the config must fit)")
if(SHARDLM_TRAINER_E2E_TESTS)
  if(NOT EXISTS ${SHARDLM_E2E_CONFIG})
    message(FATAL_ERROR "SHARDLM_TRAINER_E2E_TESTS needs SHARDLM_E2E_CONFIG (${SHARDLM_E2E_CONFIG})")
  endif()
  shardlm_e2e_suite(trainer $<TARGET_FILE:shardlm> ${SHARDLM_E2E_CONFIG} "${SHARDLM_E2E_LONG_FLAGS}"
                    ${SHARDLM_E2E_RANKS})
endif()
