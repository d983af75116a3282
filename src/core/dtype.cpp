#include "core/dtype.h"

#include <bit>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace shardlm {

namespace {
struct DTypeInfo {
  DType dtype;
  size_t size;
  const char* name;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F32, 4, "f32"}, {DType::F64, 8, "f64"}, {DType::I32, 4, "i32"},
    {DType::I64, 8, "i64"}, {DType::U8, 1, "u8"},   {DType::BF16, 2, "bf16"},
    {DType::F16, 2, "f16"},
};
const DTypeInfo& info(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d;
  fail("unknown DType value " + std::to_string(static_cast<int>(dtype)));
}
}  // namespace

size_t dtype_size(DType dtype) {
  return info(dtype).size;
}
const char* dtype_name(DType dtype) {
  return info(dtype).name;
}

DType dtype_from_name(const std::string& name) {
  std::string known;
  for (const auto& d : kDTypes) {
    if (name == d.name) return d.dtype;
    known += known.empty() ? d.name : std::string(", ") + d.name;
  }
  fail("unknown dtype '" + name + "' (known: " + known + ")");
}

bf16 bf16_from_float(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  if (std::isnan(x)) return bf16{static_cast<uint16_t>((u >> 16) | 0x40)};  // quiet NaN
  const uint32_t rounding = 0x7FFF + ((u >> 16) & 1);                       // ties to even
  return bf16{static_cast<uint16_t>((u + rounding) >> 16)};
}

float bf16_to_float(bf16 x) {
  return std::bit_cast<float>(static_cast<uint32_t>(x.bits) << 16);
}

f16 f16_from_float(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t abs = u & 0x7FFFFFFF;
  if (abs > 0x7F800000) return f16{static_cast<uint16_t>(sign | 0x7E00)};   // NaN
  if (abs >= 0x477FF000) return f16{static_cast<uint16_t>(sign | 0x7C00)};  // rounds past 65504
  if (abs < 0x38800000) {
    // Subnormal f16 (or zero): value = m * 2^-24 with m = round(|x| * 2^24).
    const float scaled = std::bit_cast<float>(abs) * 16777216.0f;  // exact: a power of two
    const auto m = static_cast<uint16_t>(std::nearbyint(scaled));  // default mode: ties to even
    return f16{static_cast<uint16_t>(sign | m)};
  }
  // Normal: rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits.
  const uint32_t rebased = abs - (112u << 23);
  const uint32_t rounding = 0xFFF + ((rebased >> 13) & 1);
  return f16{static_cast<uint16_t>(sign | ((rebased + rounding) >> 13))};
}

float f16_to_float(f16 x) {
  const uint32_t sign = static_cast<uint32_t>(x.bits & 0x8000) << 16;
  const uint32_t exp = (x.bits >> 10) & 0x1F, mant = x.bits & 0x3FF;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    const float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7F800000 | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

void convert_to_float(DType dtype, const void* src, float* dst, size_t n) {
  if (n == 0) return;  // an empty range may come with null pointers, which memcpy may not take
  switch (dtype) {
    case DType::F32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_float(static_cast<const bf16*>(src)[i]);
      return;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_float(static_cast<const f16*>(src)[i]);
      return;
    default:
      fail(std::string("cannot convert ") + dtype_name(dtype) + " to f32 (f32, bf16 and f16 only)");
  }
}

void convert_from_float(const float* src, DType dtype, void* dst, size_t n) {
  if (n == 0) return;
  switch (dtype) {
    case DType::F32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) static_cast<bf16*>(dst)[i] = bf16_from_float(src[i]);
      return;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) static_cast<f16*>(dst)[i] = f16_from_float(src[i]);
      return;
    default:
      fail(std::string("cannot convert f32 to ") + dtype_name(dtype) + " (f32, bf16 and f16 only)");
  }
}

}  // namespace shardlm
