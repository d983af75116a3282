// Clocks for timing: wall time that never jumps, and the CPU time of the process or of the
// calling thread (what a rate on a shared machine should be divided by).
#pragma once

namespace shardlm {

double monotonic_seconds();    // steady clock, from an arbitrary origin
double process_cpu_seconds();  // CPU seconds of every thread of this process so far
double thread_cpu_seconds();   // CPU seconds of the calling thread so far

}  // namespace shardlm
