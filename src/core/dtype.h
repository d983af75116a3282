// Element types, shared by the kernels' buffers, the communicators and checkpoint slices.
// fp32 is what the kernels compute in today; bf16 and f16 are storage types (checkpoints,
// and later mixed-precision compute), kept as raw 16-bit patterns so that no compiler
// extension is needed to carry them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace shardlm {

enum class DType { F32, F64, I32, I64, U8, BF16, F16 };

// bfloat16 and IEEE half as their bit patterns.
struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

size_t dtype_size(DType dtype);
// "f32", "f64", "i32", "i64", "u8", "bf16", "f16"
const char* dtype_name(DType dtype);
// The inverse of dtype_name; throws naming the text and the known names.
DType dtype_from_name(const std::string& name);

// Conversions from and to fp32. bf16 and f16 round to nearest, ties to even; NaN stays NaN,
// and values beyond the f16 range become infinity.
bf16 bf16_from_float(float x);
float bf16_to_float(bf16 x);
f16 f16_from_float(float x);
float f16_to_float(f16 x);

// Buffer conversions between fp32 and the floating-point storage types (F32, BF16, F16), with
// the rounding above; `n` elements each way. Throws naming the dtype for any other.
void convert_to_float(DType dtype, const void* src, float* dst, size_t n);
void convert_from_float(const float* src, DType dtype, void* dst, size_t n);

// The C++ type of each DType, for templates over element types.
template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::F32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::F64;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::I32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::I64;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::U8;
}
template <>
constexpr DType dtype_of<bf16>() {
  return DType::BF16;
}
template <>
constexpr DType dtype_of<f16>() {
  return DType::F16;
}

}  // namespace shardlm
