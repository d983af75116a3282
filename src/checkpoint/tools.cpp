// Whole-checkpoint operations behind `shardlm ckpt`: verify, consolidate, inspect.
#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <map>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "checkpoint/directory.h"
#include "checkpoint/file_checksums.h"
#include "checkpoint/h5.h"
#include "checkpoint/manifest.h"
#include "checkpoint/slice_io.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/fs.h"

namespace shardlm {

namespace fs = std::filesystem;

namespace {

// Problems with one rank file: its identity attributes, then each of its slices.
void verify_rank_file(const fs::path& dir, const Manifest& m, int rank, VerifyReport& report,
                      std::vector<std::string>& problems) {
  const fs::path path = dir / rank_file_name(rank);
  h5::Handle file;
  try {
    file = h5::open_file_read(path);
    const int64_t step = h5::read_attr_i64(file, "step"),
                  stored_rank = h5::read_attr_i64(file, "rank");
    if (step != m.step || stored_rank != rank)
      fail("the file says step " + std::to_string(step) + ", rank " + std::to_string(stored_rank) +
           "; the manifest expects step " + std::to_string(m.step) + ", rank " +
           std::to_string(rank));
  } catch (const Error& e) {
    problems.push_back(path.string() + ": " + e.what());
    return;
  }
  ++report.files;
  std::vector<float> buffer;
  for (const StoredSlice& slice : m.slices) {
    if (slice.rank != rank) continue;
    try {
      h5::Handle dataset = h5::open_dataset(file, slice.dataset);
      check_slice_attributes(dataset, slice);
      stream_slice(dataset, slice, buffer, [](const Rect&, const float*) {});
      ++report.slices;
      report.bytes += slice.numel() * static_cast<int64_t>(dtype_size(slice.dtype));
    } catch (const Error& e) {
      problems.push_back(slice_context(dir, slice) + e.what());
    }
  }
}

std::string metadata_value_text(const MetadataValue& value) {
  std::ostringstream os;
  std::visit(
      [&os](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::vector<uint8_t>>) {
          os << "<" << v.size() << " bytes>";
        } else if constexpr (std::is_same_v<T, std::string>) {
          os << '"' << v << '"';
        } else {
          os << v;
        }
      },
      value);
  return os.str();
}

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

}  // namespace

VerifyReport verify_checkpoint(const fs::path& dir) {
  h5::QuietErrors quiet;
  const Manifest m = read_manifest(dir / kManifestFileName);
  VerifyReport report;
  std::vector<std::string> problems = check_slice_coverage(m.slices);
  for (size_t r = 0; r < m.files.size(); ++r) {
    const std::string problem =
        rank_file_problem(dir, m.slices, static_cast<int>(r), m.files[r].bytes);
    if (!problem.empty()) {
      problems.push_back(problem);
      continue;
    }
    if (m.files[r].crc32c) {  // before HDF5 parses the file (file_checksums.h)
      const std::string damaged =
          file_checksum_problem(dir / rank_file_name(static_cast<int>(r)), *m.files[r].crc32c);
      if (!damaged.empty()) {
        problems.push_back(damaged);
        continue;
      }
    }
    verify_rank_file(dir, m, static_cast<int>(r), report, problems);
  }
  if (!problems.empty()) {
    std::string text = "checkpoint " + dir.string() + " failed verification (" +
                       std::to_string(problems.size()) + " problem" +
                       (problems.size() == 1 ? "" : "s") + "):";
    for (const auto& p : problems) text += "\n  " + p;
    throw Error(text);
  }
  std::map<std::pair<std::string, std::string>, int> tensors;
  for (const auto& s : m.slices) tensors[{s.role, s.name}] = 1;
  report.tensors = static_cast<int64_t>(tensors.size());
  return report;
}

void consolidate_checkpoint(const fs::path& dir, const fs::path& out_h5) {
  CheckpointReader reader(dir);
  h5::QuietErrors quiet;
  fs::path tmp = out_h5;
  tmp += ".tmp";
  const std::vector<StoredTensor> tensors = reader.tensors();
  int64_t format_version = kCheckpointFormatVersion;
  for (const StoredTensor& t : tensors)
    format_version = std::max(format_version, format_version_for(t.dtype));
  {
    h5::Handle file = h5::create_file(tmp);
    write_run_info(file, format_version, reader.step(), reader.config_text(),
                   reader.tokenizer_model(), reader.metadata());
    h5::write_attr_string(file, "checksum_algorithm", "crc32c");
    h5::write_attr_string(file, "consolidated_from", fs::absolute(dir).string());
    std::vector<float> buffer;
    std::vector<uint8_t> stored;  // a block in the tensor's dtype
    for (const StoredTensor& t : tensors) {
      h5::Handle dataset = create_tensor_dataset(file, t.role, slice_dataset_path(t.role, t.name),
                                                 t.global_shape, t.dtype);
      uint32_t crc = 0;
      const Rect whole{std::vector<int64_t>(t.global_shape.size(), 0), t.global_shape};
      for_each_block(whole, kStreamBlockElements, [&](const Rect& block) {
        const auto n = static_cast<size_t>(block.numel());
        buffer.resize(n);
        stored.resize(n * dtype_size(t.dtype));
        reader.read(t.role, t.name, block.offset, block.count, buffer.data());
        // Back to the stored dtype: exact, as every bf16/f16 value is an f32 one (NaNs stay NaN).
        convert_from_float(buffer.data(), t.dtype, stored.data(), n);
        crc = write_block(dataset, block, t.dtype, stored.data(), crc);
      });
      write_slice_attributes(dataset, t.global_shape, whole.offset, crc, t.dtype);
    }
    file.close_checked();
  }
  commit_file(tmp, out_h5);
}

std::string describe_checkpoint(const fs::path& dir) {
  CheckpointReader reader(dir);
  std::ostringstream os;
  os << "checkpoint  " << dir.string() << "\n"
     << "format      " << kCheckpointFormatName << " version " << reader.format_version() << "\n"
     << "step        " << reader.step() << "\n";
  int64_t file_bytes = 0;
  for (int r = 0; r < reader.world_size(); ++r) {
    std::error_code ec;
    file_bytes += static_cast<int64_t>(fs::file_size(dir / rank_file_name(r), ec));
  }
  os << "files       " << reader.world_size() << " rank files, " << mib(file_bytes) << "\n"
     << "tokenizer   " << reader.tokenizer_model().size() << " bytes\n"
     << "metadata\n";
  for (const auto& [key, value] : reader.metadata())
    os << "  " << key << " = " << metadata_value_text(value) << "\n";

  std::map<std::pair<std::string, std::string>, int> slice_counts;
  for (const auto& s : reader.slices()) ++slice_counts[{s.role, s.name}];
  const auto tensors = reader.tensors();
  std::map<std::string, int64_t> role_elements;
  size_t name_width = 4;
  for (const auto& t : tensors) {
    role_elements[t.role] += t.numel();
    name_width = std::max(name_width, t.role.size() + 1 + t.name.size());
  }
  os << "tensors     " << tensors.size() << " (";
  bool first = true;
  for (const auto& [role, n] : role_elements) {
    os << (first ? "" : ", ") << role << ": " << n << " elements";
    first = false;
  }
  os << ")\n";
  for (const auto& t : tensors) {
    os << "  " << std::left << std::setw(static_cast<int>(name_width))
       << tensor_label(t.role, t.name) << "  " << std::setw(5) << dtype_name(t.dtype)
       << std::setw(20) << shape_string(t.global_shape) << std::right << std::setw(12) << t.numel()
       << " elements " << std::setw(11)
       << mib(t.numel() * static_cast<int64_t>(dtype_size(t.dtype))) << "  "
       << slice_counts[{t.role, t.name}] << " slice"
       << (slice_counts[{t.role, t.name}] == 1 ? "" : "s") << "\n";
  }
  os << "config\n";
  std::istringstream config(reader.config_text());
  for (std::string line; std::getline(config, line);) os << "  " << line << "\n";
  return os.str();
}

}  // namespace shardlm
