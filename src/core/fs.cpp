#include "core/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace shardlm {

namespace fs = std::filesystem;

namespace {
std::string errno_text() {
  return std::strerror(errno);
}
}  // namespace

void fsync_path(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open " + path.string() + " to fsync it: " + errno_text());
  const int rc = ::fsync(fd);
  const std::string why = rc != 0 ? errno_text() : "";
  ::close(fd);
  if (rc != 0) fail("fsync of " + path.string() + " failed: " + why);
}

void commit_file(const fs::path& tmp, const fs::path& path) {
  fsync_path(tmp);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) fail("cannot rename " + tmp.string() + " to " + path.string() + ": " + ec.message());
  fsync_path(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

void write_file_atomic(const fs::path& path, std::string_view text) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail("cannot write " + tmp.string() + ": " + errno_text());
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) fail("cannot write " + tmp.string() + ": " + errno_text());
  }
  commit_file(tmp, path);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read " + path.string() + ": " + errno_text());
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

}  // namespace shardlm
