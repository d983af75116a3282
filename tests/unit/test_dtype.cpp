// core/dtype.h: sizes, names, and the fp32 <-> bf16 / f16 conversions against exact values.
#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "support_errors.h"

namespace shardlm {
namespace {

TEST(DType, SizesAndNamesRoundTrip) {
  for (DType d :
       {DType::F32, DType::F64, DType::I32, DType::I64, DType::U8, DType::BF16, DType::F16})
    EXPECT_EQ(dtype_from_name(dtype_name(d)), d);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F16), 2u);
  EXPECT_EQ(dtype_size(DType::F64), 8u);
  testing::expect_error([] { dtype_from_name("fp8"); }, {"fp8", "bf16"});
}

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(bf16_from_float(1.0f).bits, 0x3F80);
  EXPECT_EQ(bf16_from_float(-2.0f).bits, 0xC000);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
  EXPECT_EQ(bf16_from_float(1.0f + 0x1p-8f).bits, 0x3F80);
  // 1 + 3*2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even (1 + 2^-6).
  EXPECT_EQ(bf16_from_float(1.0f + 3 * 0x1p-8f).bits, 0x3F82);
  EXPECT_EQ(bf16_to_float(bf16{0x4049}), 3.140625f);
  EXPECT_TRUE(std::isnan(bf16_to_float(bf16_from_float(std::nanf("")))));
  EXPECT_EQ(bf16_to_float(bf16_from_float(std::numeric_limits<float>::infinity())),
            std::numeric_limits<float>::infinity());
}

TEST(DType, F16NormalSubnormalAndOverflow) {
  EXPECT_EQ(f16_from_float(1.0f).bits, 0x3C00);
  EXPECT_EQ(f16_from_float(-2.5f).bits, 0xC100);
  EXPECT_EQ(f16_from_float(65504.0f).bits, 0x7BFF);         // the largest f16
  EXPECT_EQ(f16_from_float(65519.0f).bits, 0x7BFF);         // rounds down to it
  EXPECT_EQ(f16_from_float(65520.0f).bits, 0x7C00);         // rounds up to infinity
  EXPECT_EQ(f16_from_float(0x1p-14f).bits, 0x0400);         // smallest normal
  EXPECT_EQ(f16_from_float(0x1p-24f).bits, 0x0001);         // smallest subnormal
  EXPECT_EQ(f16_from_float(0x1p-25f).bits, 0x0000);         // halfway to it: ties to even (0)
  EXPECT_EQ(f16_from_float(3 * 0x1p-25f).bits, 0x0002);     // 1.5 ulp: ties to even (2)
  EXPECT_EQ(f16_from_float(1.0f + 0x1p-11f).bits, 0x3C00);  // halfway: ties to even
  EXPECT_TRUE(std::isnan(f16_to_float(f16_from_float(std::nanf("")))));
  // Every finite f16 survives f16 -> f32 -> f16.
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const f16 h{static_cast<uint16_t>(b)};
    if ((b & 0x7C00) == 0x7C00) continue;  // inf / NaN
    ASSERT_EQ(f16_from_float(f16_to_float(h)).bits, h.bits) << std::hex << b;
  }
  EXPECT_EQ(f16_to_float(f16{0x3555}), 0.333251953125f);
}

TEST(DType, BufferConversionsMatchTheScalarOnes) {
  const std::vector<float> x{1.0f, -2.5f, 3.14159f, 0x1p-20f, 70000.0f, 0.0f};
  std::vector<bf16> b(x.size());
  std::vector<f16> h(x.size());
  std::vector<float> f32(x.size()), back(x.size());
  convert_from_float(x.data(), DType::BF16, b.data(), x.size());
  convert_from_float(x.data(), DType::F16, h.data(), x.size());
  convert_from_float(x.data(), DType::F32, f32.data(), x.size());
  EXPECT_EQ(f32, x);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(b[i].bits, bf16_from_float(x[i]).bits) << i;
    EXPECT_EQ(h[i].bits, f16_from_float(x[i]).bits) << i;
  }
  convert_to_float(DType::BF16, b.data(), back.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(back[i], bf16_to_float(b[i])) << i;
  convert_to_float(DType::F16, h.data(), back.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(back[i], f16_to_float(h[i])) << i;
  convert_to_float(DType::F32, x.data(), back.data(), x.size());
  EXPECT_EQ(back, x);
  int32_t ints[1] = {};
  float out[1] = {};
  testing::expect_error([&] { convert_to_float(DType::I32, ints, out, 1); }, {"i32"});
  testing::expect_error([&] { convert_from_float(out, DType::U8, ints, 1); }, {"u8"});
}

}  // namespace
}  // namespace shardlm
