# End-to-end tests of the SLURM templates (label `slurm`) and of launch/shardlm-launch (label
# `launcher`) with the real trainer: `shardlm train` on configs/e2e-tiny.ini, 2 MPI ranks. They
# start real processes: a private single-node SLURM cluster (tests/slurm/slurm_cluster.sh; needs
# root and scripts/install-slurm.sh, otherwise the SLURM tests exit 77 and CTest reports them
# skipped) and real MPI ranks. They share one lock so that no two run at once (one cluster,
# fixed ports, timing-sensitive fault injection).
#
# A recovered run must end bit-identical to an uninterrupted one: the fixtures e2e_reference_*
# make that uninterrupted run once per ctest invocation (tests/launcher/reference_run.sh), and
# the tests that need it get its folder as REFERENCE.

find_package(Python3 REQUIRED COMPONENTS Interpreter)

set(SHARDLM_E2E_SCRATCH ${CMAKE_CURRENT_BINARY_DIR}/e2e)
# The mpirun flags the MPI tests use (SHARDLM_MPIRUN in tests/CMakeLists.txt), less the
# executable and what the scripts add themselves.
list(SUBLIST SHARDLM_MPIRUN 1 -1 _e2e_mpirun_flags)
list(REMOVE_ITEM _e2e_mpirun_flags --allow-run-as-root --oversubscribe)
list(JOIN _e2e_mpirun_flags " " SHARDLM_E2E_MPIRUN_ARGS)

set(_slurm ${CMAKE_CURRENT_SOURCE_DIR}/slurm)
set(_launcher ${CMAKE_CURRENT_SOURCE_DIR}/launcher)
set(_trainer $<TARGET_FILE:shardlm>)
# The run every test trains: 30 steps of a tiny model in a few seconds, checkpoints every
# SAVE_EVERY=5 steps (the scripts' default), so that faults land between checkpoints.
set(_config ${PROJECT_SOURCE_DIR}/configs/e2e-tiny.ini)
set(_ranks 2)
# kill-during-save: a bigger model, so that a save (~1 s here) is long next to the ~1 ms from
# seeing its step_<n>.tmp folder to the kill.
set(_big_flags --n-layer 4 --n-embd 256 --steps 20)
# The time-limit test: a run far longer than the one-minute limit, so that only the pre-timeout
# warning can end a start (the test cancels the job once the next start has resumed).
set(_long_flags --steps 100000)

# shardlm_e2e_test(NAME LABELS TIMEOUT [REFERENCE ref] [ENV VAR=VALUE..] COMMAND cmd args..)
# REFERENCE: the name of an e2e reference fixture; the test gets its folder as $REFERENCE.
function(shardlm_e2e_test name labels timeout)
  cmake_parse_arguments(E2E "" "REFERENCE" "ENV;COMMAND" ${ARGN})
  add_test(NAME ${name} COMMAND ${E2E_COMMAND})
  set(_env "MPIRUN_ARGS=${SHARDLM_E2E_MPIRUN_ARGS}" OMP_NUM_THREADS=1 RANKS=${_ranks} ${E2E_ENV})
  if(E2E_REFERENCE)
    list(APPEND _env REFERENCE=${SHARDLM_E2E_SCRATCH}/reference_${E2E_REFERENCE})
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED e2e_reference_${E2E_REFERENCE})
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${labels}" TIMEOUT ${timeout} RESOURCE_LOCK slurm
    SKIP_RETURN_CODE 77 PROCESSORS 2 ENVIRONMENT "${_env}")
endfunction()

# shardlm_e2e_reference(NAME LABELS [TRAINER_FLAGS..]): the uninterrupted run of _config + flags.
function(shardlm_e2e_reference name labels)
  shardlm_e2e_test(e2e_reference_${name} "${labels}" 300
    COMMAND ${_launcher}/reference_run.sh ${SHARDLM_E2E_SCRATCH}/reference_${name} ${_trainer} ${_config} ${ARGN})
  set_tests_properties(e2e_reference_${name} PROPERTIES FIXTURES_SETUP e2e_reference_${name})
endfunction()

shardlm_e2e_reference(tiny "slurm;launcher")
shardlm_e2e_reference(big launcher ${_big_flags})

# slurm/shardlm-cpu.sbatch on the private cluster, one way of stopping the job each: the
# pre-timeout warning with the template's default mpirun; a requeue from outside (SIGTERM to
# every process of the job) with srun; `scancel --batch --signal=USR1` through shardlm-launch.
shardlm_e2e_test(slurm_cpu_template_timelimit slurm 300
  COMMAND ${_slurm}/test_cpu_template.sh timelimit ${SHARDLM_E2E_SCRATCH}/cpu_timelimit
          ${_trainer} ${_config} ${_long_flags})
shardlm_e2e_test(slurm_cpu_template_requeue_srun slurm 300 REFERENCE tiny ENV LAUNCHER=srun
  COMMAND ${_slurm}/test_cpu_template.sh requeue ${SHARDLM_E2E_SCRATCH}/cpu_requeue_srun ${_trainer} ${_config})
shardlm_e2e_test(slurm_cpu_template_signal_launcher slurm 300 REFERENCE tiny ENV LAUNCHER=shardlm-launch
  COMMAND ${_slurm}/test_cpu_template.sh signal ${SHARDLM_E2E_SCRATCH}/cpu_signal_launcher ${_trainer} ${_config})
# A SIGUSR1 that reaches the batch script while the step starts, before the ranks run.
shardlm_e2e_test(slurm_cpu_template_early slurm 300 REFERENCE tiny
  COMMAND ${_slurm}/test_cpu_template.sh early ${SHARDLM_E2E_SCRATCH}/cpu_early ${_trainer} ${_config})
# The same from a copy of the tree under a 0700 folder with a space in its name (munged runs as
# user munge; paths must be quoted everywhere): one job through shardlm-launch, SIGUSR1, resume.
shardlm_e2e_test(slurm_checkout_path slurm 300 REFERENCE tiny
  COMMAND ${_slurm}/test_checkout_path.sh ${SHARDLM_E2E_SCRATCH}/checkout_path ${_trainer} ${_config})
# shardlm-launch inside an allocation (srun): a killed and a stopped rank.
foreach(mode kill hang)
  shardlm_e2e_test(slurm_launcher_srun_${mode} slurm 300 REFERENCE tiny
    COMMAND ${_slurm}/test_launcher_srun.sh ${mode} ${SHARDLM_E2E_SCRATCH}/launcher_srun_${mode} ${_trainer} ${_config})
endforeach()

# shardlm-launch with mpirun on this machine.
foreach(mode kill-rank hang stop-resume stop-early refuse-model give-up)
  set(_ref)
  if(mode MATCHES "kill-rank|hang|stop-resume|stop-early")
    set(_ref REFERENCE tiny)
  endif()
  shardlm_e2e_test(launcher_${mode} launcher 300 ${_ref}
    COMMAND ${Python3_EXECUTABLE} ${_launcher}/launcher_test.py ${mode}
            ${SHARDLM_E2E_SCRATCH}/launcher_${mode} ${_trainer} ${_config})
endforeach()
shardlm_e2e_test(launcher_kill-during-save launcher 300 REFERENCE big
  COMMAND ${Python3_EXECUTABLE} ${_launcher}/launcher_test.py kill-during-save
          ${SHARDLM_E2E_SCRATCH}/launcher_kill-during-save ${_trainer} ${_config} ${_big_flags})
# The same with --async-save: the kill lands while the writer thread writes step_<n>.tmp (the
# training thread has moved on); the restart (async again) must end bit-identical to the
# synchronous reference, so async checkpoints are the sync ones and resume exactly.
shardlm_e2e_test(launcher_kill-during-save-async launcher 300 REFERENCE big
  COMMAND ${Python3_EXECUTABLE} ${_launcher}/launcher_test.py kill-during-save
          ${SHARDLM_E2E_SCRATCH}/launcher_kill-during-save-async ${_trainer} ${_config} ${_big_flags}
          --async-save)
# kill -9 at a random step, more trials: other seeds pick other ranks and steps.
foreach(seed 11 12)
  shardlm_e2e_test(launcher_kill-rank_seed${seed} launcher 300 REFERENCE tiny ENV SEED=${seed}
    COMMAND ${Python3_EXECUTABLE} ${_launcher}/launcher_test.py kill-rank
            ${SHARDLM_E2E_SCRATCH}/launcher_kill-rank_seed${seed} ${_trainer} ${_config})
endforeach()
# Its naming of lost hosts (heartbeat host field, TCP probe), without a job.
add_test(NAME launcher_lost-hosts COMMAND ${Python3_EXECUTABLE} ${_launcher}/test_lost_hosts.py
         ${SHARDLM_E2E_SCRATCH}/launcher_lost-hosts)
set_tests_properties(launcher_lost-hosts PROPERTIES LABELS launcher TIMEOUT 60)
