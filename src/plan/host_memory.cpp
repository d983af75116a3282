#include "plan/host_memory.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/parse.h"
#include "kernels/memory_account.h"

namespace fs = std::filesystem;

namespace shardlm {

namespace {

const char* env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

uint64_t mem_available(const std::string& path) {
  std::istringstream in(read_file(path));
  std::string key, unit;
  uint64_t kib = 0;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return kib * 1024;
  }
  fail(path + " has no MemAvailable line");
}

// One number from a cgroup file; nullopt-like 0 with ok=false for "max" or a missing file.
bool read_number(const fs::path& file, uint64_t& out) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return false;
  std::string text = read_file(file);
  text.erase(text.find_last_not_of(" \n") + 1);
  if (text == "max") return false;
  out = parse_uint64(file.string(), text);
  // cgroup v1 writes "no limit" as a huge page-rounded number.
  return out < (uint64_t{1} << 62);
}

// limit - usage of one cgroup directory (v2 names first, then v1), if it has a limit.
bool cgroup_free_in(const fs::path& dir, uint64_t& free_bytes) {
  uint64_t limit = 0, usage = 0;
  if (read_number(dir / "memory.max", limit)) {
    read_number(dir / "memory.current", usage);
  } else if (read_number(dir / "memory.limit_in_bytes", limit)) {
    read_number(dir / "memory.usage_in_bytes", usage);
  } else {
    return false;
  }
  free_bytes = limit > usage ? limit - usage : 0;
  return true;
}

// This process's memory cgroup directories, innermost first (v2 "0::/p", v1 "N:memory:/p").
std::vector<fs::path> own_cgroups() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  fs::path mount, rel;
  while (std::getline(in, line)) {
    const auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    if (controllers == "memory") {
      mount = "/sys/fs/cgroup/memory", rel = line.substr(b + 1);
      break;
    }
    if (controllers.empty() && fs::exists("/sys/fs/cgroup/cgroup.controllers"))
      mount = "/sys/fs/cgroup", rel = line.substr(b + 1);
  }
  std::vector<fs::path> dirs;
  if (mount.empty()) return dirs;
  for (fs::path p = rel; !p.empty() && p != p.root_path(); p = p.parent_path())
    dirs.push_back(mount / p.relative_path());
  dirs.push_back(mount);
  return dirs;
}

}  // namespace

uint64_t HostMemory::usable() const {
  return cgroup_limited ? std::min(mem_available, cgroup_free) : mem_available;
}

std::string HostMemory::describe() const {
  std::string s = "MemAvailable " + format_bytes(static_cast<double>(mem_available));
  if (cgroup_limited)
    s += ", memory cgroup " + cgroup + ": " + format_bytes(static_cast<double>(cgroup_free)) +
         " below its limit";
  return s;
}

HostMemory read_host_memory() {
  HostMemory m;
  m.mem_available = mem_available(env_or("SHARDLM_MEMINFO", "/proc/meminfo"));
  const char* fake = std::getenv("SHARDLM_CGROUP_DIR");
  const std::vector<fs::path> dirs = fake != nullptr ? std::vector<fs::path>{fake} : own_cgroups();
  for (const fs::path& dir : dirs) {
    uint64_t free_bytes = 0;
    if (!cgroup_free_in(dir, free_bytes)) continue;
    if (!m.cgroup_limited || free_bytes < m.cgroup_free) {
      m.cgroup_limited = true;
      m.cgroup_free = free_bytes;
      m.cgroup = dir.string();
    }
  }
  return m;
}

}  // namespace shardlm
