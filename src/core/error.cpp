#include "core/error.h"

#include <hdf5.h>
#include <mpi.h>

#include <sstream>

#include "core/host_name.h"

namespace shardlm {

namespace {
int g_rank = -1;

std::string where() {
  std::ostringstream os;
  os << "[rank " << (g_rank < 0 ? std::string("?") : std::to_string(g_rank)) << " on "
     << host_name() << "]";
  return os.str();
}
}  // namespace

void set_error_rank(int rank) {
  g_rank = rank;
}
int error_rank() {
  return g_rank;
}

void throw_error(const char* kind, const char* expr, const char* file, int line,
                 const std::string& detail) {
  std::ostringstream os;
  os << kind << " error " << where() << ": " << detail << " (`" << expr << "` at " << file << ":"
     << line << ")";
  throw Error(os.str());
}

void fail(const std::string& message) {
  throw Error(message + " " + where());
}

std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(buf, static_cast<size_t>(len));
}

namespace {
herr_t collect_hdf5_error(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (!out->empty()) *out += "; ";
  *out += err->desc ? err->desc : "?";
  if (err->func_name) *out += std::string(" in ") + err->func_name;
  return 0;
}
}  // namespace

std::string hdf5_error_string() {
  std::string out;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_hdf5_error, &out);
  H5Eclear2(H5E_DEFAULT);
  return out.empty() ? "HDF5 call failed" : out;
}

}  // namespace shardlm
