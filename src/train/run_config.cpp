#include "train/run_config.h"

#include <sstream>

namespace shardlm {

std::string RunConfig::to_ini() const {
  std::ostringstream os;
  os << model_config_to_ini(model) << "\n[device]\ndevice=" << device << "\n"
     << "\n[data]\ndata=" << data << "\nseed=" << seed << "\n"
     << "\n[batch]\nseq_len=" << seq_len << "\nmicro_batch=" << micro_batch
     << "\nglobal_batch=" << global_batch << "\nsteps=" << steps << "\n"
     << "\n[optimizer]\nlr=" << optim.lr << "\nmin_lr=" << optim.min_lr
     << "\nwarmup=" << optim.warmup_steps << "\nweight_decay=" << optim.weight_decay
     << "\ngrad_clip=" << optim.grad_clip << "\nbeta1=" << optim.beta1 << "\nbeta2=" << optim.beta2
     << "\neps=" << optim.eps << "\non_nan=" << (skip_non_finite ? "skip" : "error") << "\n"
     << "\n[parallel]\ntp=" << tp << "\npp=" << pp << "\nzero=" << zero << "\npp_layers=";
  for (size_t i = 0; i < pp_layers.size(); ++i) os << (i ? "," : "") << pp_layers[i];
  os << "\n\n[checkpoint]\nsave_every=" << save_every << "\nkeep_last=" << keep_last
     << "\nkeep_every=" << keep_every << "\n\n[logging]\neval_every=" << eval_every
     << "\neval_steps=" << eval_steps << "\nlog_every=" << log_every
     << "\npeak_tflops=" << peak_tflops << "\n";
  return os.str();
}

}  // namespace shardlm
