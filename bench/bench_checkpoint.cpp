// Checkpoint save and load throughput against the disk's own speed, measured in the same run:
// `dd if=/dev/zero of=FILE bs=1M count=MB conv=fdatasync` (write), the same with the tensors'
// own (non-zero) bytes from /dev/shm as input (virtual disks may treat zero blocks specially),
// and dd of the written file from a cold page cache (read).
//   usage: [mpirun -np P] bench_checkpoint [--mb 500] [--dir DIR] [--repeat 3] [--keep]
// MB of fp32 tensors (param, exp_avg, exp_avg_sq of [1024, 4096] matrices plus small vectors)
// are split by rows over the P ranks, so the checkpoint has P files of MB/P each. Save includes
// the fsyncs and the commit. Load opens the checkpoint from a cold page cache (the files are
// evicted with posix_fadvise(DONTNEED) after the save) and reads every rank's own rows back,
// checksums included; "resharded" then reads column blocks with a fresh reader (warm cache).
#include <fcntl.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_args.h"
#include "checkpoint/checkpoint.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/parse.h"
#include "parallel/mesh.h"
#include "parallel/mpi_comm.h"

namespace {

namespace fs = std::filesystem;
using namespace shardlm;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Drops the file's pages from the page cache (they are clean after fsync/fdatasync).
void evict_from_cache(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// Seconds dd reports for its copy (dd prints "..., 1.234 s, 405 MB/s" on stderr).
double run_dd(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) fail("cannot run: " + command);
  std::string output;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), pipe)) output += buf;
  if (::pclose(pipe) != 0) fail("'" + command + "' failed:\n" + output);
  const size_t copied = output.rfind("copied, ");
  if (copied == std::string::npos) fail("cannot parse dd's output:\n" + output);
  const size_t seconds = copied + 8, end = output.find(' ', seconds);
  return parse_double("dd's copy time", std::string_view(output).substr(seconds, end - seconds));
}

struct Tensor {
  std::string role, name;
  int64_t rows, cols;
};

// Tensors adding up to about `mb` MiB: 16 MiB matrices in three roles, plus small vectors.
std::vector<Tensor> make_tensors(int64_t mb) {
  std::vector<Tensor> tensors;
  const char* roles[] = {kRoleParam, kRoleExpAvg, kRoleExpAvgSq};
  for (int64_t i = 0; i < mb / 16; ++i)
    tensors.push_back({roles[i % 3], "h." + std::to_string(i / 3) + ".w", 1024, 4096});
  for (int i = 0; i < 24; ++i)
    tensors.push_back({roles[i % 3], "h." + std::to_string(i / 3) + ".bias", 1, 4096});
  return tensors;
}

int64_t rows_of(int64_t rows, int rank, int ranks) {
  return rows / ranks + (rank < rows % ranks ? 1 : 0);
}
int64_t row_offset(int64_t rows, int rank, int ranks) {
  int64_t offset = 0;
  for (int r = 0; r < rank; ++r) offset += rows_of(rows, r, ranks);
  return offset;
}

}  // namespace

int main(int argc, char** argv) {
  MpiRuntime mpi(&argc, &argv);
  MpiCommunicator world(MPI_COMM_WORLD, "world");
  int64_t mb = 500;
  int repeat = 3;
  bool keep = false;
  std::string dir_flag = (fs::temp_directory_path() / "shardlm-bench-checkpoint").string();
  shardlm::bench::Flags flags(
      "usage: [mpirun -np P] bench_checkpoint [--mb 500] [--dir DIR] [--repeat 3] [--keep]");
  flags.add("mb", &mb).add("dir", &dir_flag).add("repeat", &repeat).add_switch("keep", &keep);
  try {
    if (!flags.parse(argc, argv)) {
      if (world.rank() == 0) std::printf("%s\n", flags.usage().c_str());
      return 0;
    }
  } catch (const shardlm::Error& e) {
    if (world.rank() == 0) std::fprintf(stderr, "bench_checkpoint: %s\n", e.what());
    return 2;
  }
  const fs::path dir = dir_flag;
  const int rank = world.rank(), ranks = world.size();
  const bool leader = rank == 0;
  try {
    // This rank's rows of every tensor, with exactly representable, position-dependent values.
    const auto tensors = make_tensors(mb);
    std::vector<std::vector<float>> data;
    std::vector<CheckpointSlice> slices;
    int64_t total_bytes = 0, my_bytes = 0;
    for (const auto& t : tensors) {
      const int64_t n = t.rows > 1 ? rows_of(t.rows, rank, ranks) : (rank == 0 ? 1 : 0);
      const int64_t offset = t.rows > 1 ? row_offset(t.rows, rank, ranks) : 0;
      std::vector<float> block(static_cast<size_t>(n * t.cols));
      for (size_t i = 0; i < block.size(); ++i)
        block[i] = static_cast<float>((offset * t.cols + i) % 1000003);
      data.push_back(std::move(block));
      slices.push_back({t.role, t.name, {t.rows, t.cols}, {offset, 0}, {n, t.cols}, nullptr});
      total_bytes += t.rows * t.cols * 4;
      my_bytes += n * t.cols * 4;
    }
    for (size_t i = 0; i < slices.size(); ++i) slices[i].data = data[i].data();
    const double total_mib = static_cast<double>(total_bytes) / (1 << 20);
    const int64_t dd_mib = total_bytes >> 20;  // dd copies whole MiB

    if (leader) {
      fs::create_directories(dir);
      std::printf(
          "bench_checkpoint: %d rank file(s), %zu tensors, %.1f MiB of fp32 in %s, %d repeats\n",
          ranks, tensors.size(), total_mib, dir.c_str(), repeat);
    }
    // dd's second input: the first dd_mib MiB of this rank's tensor bytes, in memory (/dev/shm).
    const fs::path dd_source = "/dev/shm/shardlm-bench-checkpoint-source";
    if (leader) {
      FILE* f = std::fopen(dd_source.c_str(), "wb");
      if (!f) fail("cannot create " + dd_source.string());
      int64_t left = dd_mib << 20;
      for (size_t i = 0; left > 0; i = (i + 1) % data.size()) {
        const auto n =
            std::min<int64_t>(left, static_cast<int64_t>(data[i].size() * sizeof(float)));
        std::fwrite(data[i].data(), 1, static_cast<size_t>(n), f);
        left -= n;
      }
      std::fclose(f);
    }
    std::vector<double> dd_write, dd_write_data, dd_read, save, load, reshard;
    std::vector<float> dest;
    // Round 0 is a warm-up. Each round first deletes the previous round's checkpoint, so that
    // dd and the save both write into blocks the file system just freed: on thin-provisioned
    // virtual disks, first writes to never-used blocks are several times slower.
    for (int it = 0; it <= repeat; ++it) {
      if (leader) fs::remove_all(dir / "ckpt");
      // The disk's own speed, on the same file system, right before the save.
      double dd_write_s = 0, dd_write_data_s = 0, dd_read_s = 0;
      if (leader) {
        const fs::path dd_file = dir / "dd.bin";
        const std::string count = std::to_string(dd_mib);
        dd_write_s = run_dd("dd if=/dev/zero of=" + dd_file.string() + " bs=1M count=" + count +
                            " conv=fdatasync");
        fs::remove(dd_file);
        dd_write_data_s = run_dd("dd if=" + dd_source.string() + " of=" + dd_file.string() +
                                 " bs=1M conv=fdatasync");
        evict_from_cache(dd_file);
        dd_read_s = run_dd("dd if=" + dd_file.string() + " of=/dev/null bs=1M");
        fs::remove(dd_file);
      }
      world.barrier();
      double t0 = shardlm::monotonic_seconds();
      const fs::path ckpt = save_checkpoint(world, dir / "ckpt", it + 1, slices, {});
      world.barrier();
      const double save_s = shardlm::monotonic_seconds() - t0;

      char rank_file[32];
      std::snprintf(rank_file, sizeof(rank_file), "rank_%05d.h5", rank);
      evict_from_cache(ckpt / rank_file);
      world.barrier();
      std::vector<std::vector<float>> loaded(slices.size());
      for (size_t i = 0; i < slices.size(); ++i) loaded[i].resize(data[i].size());
      t0 = shardlm::monotonic_seconds();
      {
        CheckpointReader reader(ckpt);
        for (size_t i = 0; i < slices.size(); ++i)
          reader.read(slices[i].role, slices[i].name, slices[i].offset, slices[i].count,
                      loaded[i].data());
      }
      world.barrier();
      const double load_s = shardlm::monotonic_seconds() - t0;
      if (loaded != data) fail("the loaded tensors differ from the saved ones");
      loaded.clear();

      // Resharded: rank r reads column block r of every tensor (every stored file is touched).
      t0 = shardlm::monotonic_seconds();
      {
        CheckpointReader reader(ckpt);
        for (const auto& t : tensors) {
          const int64_t cols = t.cols / ranks, col0 = rank * cols;
          dest.resize(static_cast<size_t>(t.rows * cols));
          reader.read(t.role, t.name, {0, col0}, {t.rows, cols}, dest.data());
        }
      }
      world.barrier();
      if (it == 0) continue;
      dd_write.push_back(dd_write_s);
      dd_write_data.push_back(dd_write_data_s);
      dd_read.push_back(dd_read_s);
      save.push_back(save_s);
      load.push_back(load_s);
      reshard.push_back(shardlm::monotonic_seconds() - t0);
    }
    if (leader) {
      // MiB/s of the baselines.
      const double write_speed = dd_mib / median(dd_write),
                   data_speed = dd_mib / median(dd_write_data),
                   read_speed = dd_mib / median(dd_read);
      auto line = [&](const char* what, const std::vector<double>& times, const char* note) {
        const double t = median(times), speed = total_mib / t;
        std::printf("%-30s %6.3f s %7.1f MiB/s  %4.0f%% / %4.0f%% / %4.0f%%   %s\n", what, t, speed,
                    100.0 * speed / write_speed, 100.0 * speed / data_speed,
                    100.0 * speed / read_speed, note);
      };
      std::printf("%-30s %6.3f s %7.1f MiB/s\n", "dd write /dev/zero fdatasync", median(dd_write),
                  write_speed);
      std::printf("%-30s %6.3f s %7.1f MiB/s\n", "dd write tensor bytes fdatasync",
                  median(dd_write_data), data_speed);
      std::printf("%-30s %6.3f s %7.1f MiB/s\n", "dd read (cold cache)", median(dd_read),
                  read_speed);
      std::printf("%-30s %6s   %7s        of dd write zero / write data / read\n", "", "", "");
      line("save (incl. fsync, commit)", save, "");
      line("load (cold cache, own rows)", load, "checksums verified");
      line("load resharded (warm)", reshard, "column blocks from every file");
      std::printf("(medians of %d; per-rank share %.1f MiB)\n", repeat,
                  static_cast<double>(my_bytes) / (1 << 20));
    }
    world.barrier();
    if (leader) fs::remove(dd_source);
    if (leader && !keep) fs::remove_all(dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_checkpoint: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return 0;
}
