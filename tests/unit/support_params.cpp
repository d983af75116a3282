#include "support_params.h"

#include "kernels/backend.h"

namespace shardlm::testing {

std::vector<float> stage_params_on_host(Trainer& trainer) {
  ModelStage& model = trainer.model();
  FlatBuffer& params = model.weights().param_buffer();
  KernelBackend& be = model.backend();
  std::vector<float> out(model.layout().total());
  for (const TensorView& v : model.layout().views())
    if (params.in_place(v.flat_offset, v.numel))
      be.copy_to_host(out.data() + v.flat_offset, params.at(v.flat_offset, v.numel),
                      v.numel * sizeof(float));
  if (!params.windowed()) return out;
  const std::vector<FlatRange> units = model.layer_units();
  for (size_t u = 0; u < units.size(); ++u) {
    const int unit = static_cast<int>(u);
    trainer.gradient_sync().before_use(unit);  // ZeRO-3: gathers the unit into the window
    be.copy_to_host(out.data() + units[u].begin, params.unit(unit).at(units[u].begin),
                    units[u].size() * sizeof(float));
    trainer.gradient_sync().after_forward(unit);
  }
  return out;
}

}  // namespace shardlm::testing
