#!/usr/bin/env bash
# A real MPI program (compiled here with mpicc) as 4-rank batch jobs on the private cluster:
# once launched by mpirun inside the allocation, once by `srun --mpi=pmix`. Both must end
# COMPLETED with every rank agreeing on the ring and the sum.
#   test_mpi_jobs.sh SCRATCH_DIR
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/lib.sh"
setup_scratch "${1:?usage: test_mpi_jobs.sh SCRATCH_DIR}"
start_cluster

mpicc -O2 -o "$scratch/mpi_ring" "$SLURM_TESTS_DIR/mpi_ring.c"
declare -A jobs
jobs[mpirun]=$(sbatch --parsable -n 4 -J ring-mpirun -o "$scratch/ring-mpirun.out" -D "$scratch" \
  --wrap "mpirun $(mpirun_flags) -np 4 $scratch/mpi_ring 4")
jobs[srun]=$(sbatch --parsable -n 4 -J ring-srun -o "$scratch/ring-srun.out" -D "$scratch" \
  --wrap "srun --mpi=pmix -n 4 $scratch/mpi_ring 4")
for how in mpirun srun; do
  job=${jobs[$how]}
  state=$(wait_job_done "$job" 120)
  test_log "$how job $job: $state, exit $(job_field "$job" ExitCode)"
  [ "$state" = COMPLETED ] || fail "$how job $job ended $state"
  grep -q "mpi_ring: 4 ranks ok" "$scratch/ring-$how.out" || fail "$how job printed no success line"
done
test_log "PASS"
