#include "train/run_checkpoints.h"

#include <cstdio>

#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpoint_save.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/trace.h"
#include "train/checkpointing.h"

namespace fs = std::filesystem;

namespace shardlm {

RunCheckpoints::RunCheckpoints(Trainer& trainer, fs::path root, std::string config_text,
                               const Tokenizer* tokenizer, int keep_last, int keep_every,
                               bool async_save, const ProgressPrinter& out)
    : trainer_(trainer),
      root_(std::move(root)),
      config_text_(std::move(config_text)),
      keep_last_(keep_last),
      keep_every_(keep_every),
      out_(out),
      async_(async_save) {
  if (tokenizer)
    tokenizer_model_.assign(tokenizer->serialized().begin(), tokenizer->serialized().end());
  if (!async_) return;
  snapshot_.reserve_for(state_slices());
  trainer_.set_before_update([this] { wait_for_snapshot(); });
}

RunCheckpoints::~RunCheckpoints() {
  if (async_) trainer_.set_before_update(nullptr);
}

bool RunCheckpoints::snapshot_on_writer_thread() {
  // Host memory only: a device copy would need its own stream. (ZeRO-3 gathers a layer into
  // its window, never into the partition the copy reads; only the update writes that.)
  return trainer_.model().backend().host_memory();
}

void RunCheckpoints::wait_for_snapshot() {
  const double t0 = monotonic_seconds();
  if (background_.wait_until_copied()) stalled_s_ += monotonic_seconds() - t0;
}

std::vector<CheckpointSlice> RunCheckpoints::state_slices() {
  ModelStage& model = trainer_.model();
  AdamW& opt = trainer_.optimizer();
  const FlatRange written = written_param_range(trainer_);
  return training_checkpoint_slices(
      trainer_, model.weights().param_buffer().at(written.begin, written.size()), opt.exp_avg(),
      opt.exp_avg_sq());
}

std::optional<fs::path> RunCheckpoints::resume_source(const std::string& resume) const {
  if (resume == "none") return std::nullopt;
  if (resume == "auto") return find_latest_checkpoint(root_);
  try {
    return resolve_checkpoint(resume);
  } catch (const Error& e) {
    throw Error("--resume: " + std::string(e.what()));
  }
}

TrainingPosition RunCheckpoints::resume(const std::string& resume) {
  const std::optional<fs::path> source = resume_source(resume);
  if (!source) return {};
  CheckpointReader reader(*source);
  const std::string diff =
      model_config_diff(model_config_from_ini(reader.config_text()), trainer_.settings().model);
  if (!diff.empty())
    fail("checkpoint " + source->string() + " was saved with a different model (" + diff +
         "); refusing to resume");
  load_training_checkpoint(trainer_, reader);
  TrainingPosition pos;
  pos.step = static_cast<int>(reader.metadata_int("step"));
  pos.samples_consumed = static_cast<uint64_t>(reader.metadata_int("samples_consumed"));
  out_.resumed(*source, pos.step,
               "tp " + std::to_string(reader.metadata_int("layout.tp")) + ", pp " +
                   std::to_string(reader.metadata_int("layout.pp")) + ", dp " +
                   std::to_string(reader.metadata_int("layout.dp")) + ", zero " +
                   std::to_string(reader.metadata_int("layout.zero")));
  last_saved_ = pos.step;
  return pos;
}

// A checkpoint that carries a tokenizer was trained on its ids: data encoded with another
// would be another language to it.
void RunCheckpoints::check_same_tokenizer(const fs::path& dir,
                                          const std::vector<uint8_t>& theirs) const {
  if (theirs.empty() || tokenizer_model_.empty() || theirs == tokenizer_model_) return;
  const auto hex = [](const std::vector<uint8_t>& bytes) {
    char buf[19];
    std::snprintf(buf, sizeof buf, "0x%016llx",
                  static_cast<unsigned long long>(fnv1a64(bytes.data(), bytes.size())));
    return std::string(buf);
  };
  fail("--init-from: checkpoint " + dir.string() + " carries another tokenizer (fingerprint " +
       hex(theirs) + ") than --data's (" + hex(tokenizer_model_) +
       "): prepare the data with the checkpoint's tokenizer (convert --from hf writes it next "
       "to the checkpoint)");
}

void RunCheckpoints::init_from(const std::string& source) {
  fs::path dir;
  try {
    dir = resolve_checkpoint(source);
  } catch (const Error& e) {
    throw Error("--init-from: " + std::string(e.what()));
  }
  CheckpointReader reader(dir);
  const std::string diff =
      model_config_diff(model_config_from_ini(reader.config_text()), trainer_.settings().model);
  if (!diff.empty())
    fail("--init-from: checkpoint " + dir.string() + " holds a different model (" + diff + ")");
  check_same_tokenizer(dir, reader.tokenizer_model());
  load_model_params(trainer_.model().weights(), reader);
  out_.resumed(dir, 0, "parameters only (--init-from), a fresh optimizer");
}

void RunCheckpoints::save(const TrainingPosition& pos) {
  if (pos.step == last_saved_) return;
  if (async_)
    start_background_save(pos);
  else
    save_now(pos);
  last_saved_ = pos.step;
}

void RunCheckpoints::save_now(const TrainingPosition& pos) {
  const trace::Span span("save", trace::Kind::Checkpoint, 0, -1, "checkpoint");
  const double t0 = monotonic_seconds();
  const TrainingCheckpointInfo info{pos.step, pos.samples_consumed, config_text_, tokenizer_model_};
  const fs::path dir = save_training_checkpoint(trainer_, root_, info);
  if (trainer_.mesh().world_rank() == 0) apply_retention(root_, keep_last_, keep_every_);
  out_.saved(dir, monotonic_seconds() - t0);
}

void RunCheckpoints::start_background_save(const TrainingPosition& pos) {
  wait();  // one save in flight at most: the snapshot buffer is the one it writes
  const trace::Span span("save_snapshot", trace::Kind::Checkpoint, 0, -1, "checkpoint");
  const double t0 = monotonic_seconds();
  KernelBackend& be = trainer_.model().backend();
  std::vector<CheckpointSlice> slices = snapshot_.place(state_slices());
  // The state changes at the next update, not before: the thread may copy it meanwhile, and
  // the trainer waits for that copy before the update (wait_for_snapshot).
  const bool copy_on_thread = snapshot_on_writer_thread();
  if (!copy_on_thread) snapshot_.copy(be);
  const TrainingCheckpointInfo info{pos.step, pos.samples_consumed, config_text_, tokenizer_model_};
  auto save =
      std::make_unique<CheckpointSave>(trainer_.mesh().world(), root_, pos.step, std::move(slices),
                                       training_checkpoint_info(trainer_, info));
  std::function<void()> copy;
  if (copy_on_thread) copy = [this, backend = &be] { snapshot_.copy(*backend); };
  background_.start(std::move(save), std::move(copy),
                    [this] { apply_retention(root_, keep_last_, keep_every_); });
  started_s_ = t0;
  stalled_s_ = monotonic_seconds() - t0;
}

template <typename Advance>
void RunCheckpoints::advance_background_save(Advance advance) {
  if (!background_.in_flight()) return;
  const double t0 = monotonic_seconds();
  const std::optional<fs::path> dir = advance();
  const double t1 = monotonic_seconds();
  stalled_s_ += t1 - t0;
  if (dir) out_.saved_in_background(*dir, t1 - started_s_, stalled_s_);
}

void RunCheckpoints::poll() {
  advance_background_save([&] { return background_.poll(trainer_.mesh().world()); });
}

void RunCheckpoints::wait() {
  if (!background_.in_flight()) return;
  const trace::Span span("save_wait", trace::Kind::Checkpoint, 0, -1, "checkpoint");
  advance_background_save([&] { return background_.wait(trainer_.mesh().world()); });
}

}  // namespace shardlm
