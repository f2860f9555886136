// Branch-free exp, log and sin written in plain arithmetic, so that loops
// over SIMD lanes calling them vectorise. Each result depends only on its
// argument, never on the instruction set the loop is compiled for.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

// Every function is forced inline: a call left in a lane loop stops the
// loop from vectorising.
#if defined(__GNUC__) || defined(__clang__)
#define FMG_LANE_INLINE inline __attribute__((always_inline))
#else
#define FMG_LANE_INLINE inline
#endif

namespace fmg::lanes {

// Polynomials below use explicit fused multiply-adds in Estrin's scheme. A
// fused operation is exactly rounded everywhere, so results do not depend on
// whether the processor has an FMA unit. Estrin's tree keeps the dependency
// chain short, so the vector units stay busy.
template <class T>
FMG_LANE_INLINE T fmadd(T a, T b, T c) {
  return std::fma(a, b, c);
}

template <class To, class From>
FMG_LANE_INLINE To bit_cast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast needs equal sizes");
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}

/// e^x from `clamped`, x already clamped to at most 709, or to -708 where
/// x < -708, which gives 0. Callers whose arguments cannot exceed 709 skip
/// that comparison.
FMG_LANE_INLINE double exp_of_clamped(double x, double clamped) {
  // Round x / ln 2 to the nearest integer k with the 1.5 * 2^52 shifter.
  const double shifter = 6755399441055744.0;
  const double kd = fmadd(clamped, 1.4426950408889634074, shifter);
  const double k = kd - shifter;
  // r = x - k ln 2 in two fused steps: ln 2 split into the double nearest it
  // and the remainder, each product exact inside its fused operation.
  const double r = fmadd(-k, 2.319046813846299558e-17,
                         fmadd(-k, 6.93147180559945286227e-01, clamped));
  // e^r on |r| <= ln(2) / 2 by the degree-11 polynomial interpolating it at
  // the Chebyshev nodes of that interval (computed with mpmath at 50
  // digits); its own error is 4e-18, below the rounding of its evaluation.
  const double r2 = r * r;
  const double r4 = r2 * r2;
  const double r8 = r4 * r4;
  const double p01 = r + 1.0;
  const double p23 = fmadd(r, 0.1666666666666668, 0.5000000000000019);
  const double p45 = fmadd(r, 0.008333333333319601, 0.0416666666664881);
  const double p67 = fmadd(r, 0.00019841269890047113, 0.0013888888952314775);
  const double p89 = fmadd(r, 2.755724091857897e-06, 2.4801485482328494e-05);
  const double p1011 = fmadd(r, 2.5110037605963777e-08, 2.763263963904103e-07);
  const double q0 = fmadd(p23, r2, p01);
  const double q1 = fmadd(p67, r2, p45);
  const double q2 = fmadd(p1011, r2, p89);
  const double s0 = fmadd(q1, r4, q0);
  const double p = fmadd(q2, r8, s0);
  const std::int64_t k_int =
      bit_cast<std::int64_t>(kd) - bit_cast<std::int64_t>(shifter);
  const double scale = bit_cast<double>((k_int + 1023) << 52);
  return x < -708.0 ? 0.0 : p * scale;
}

/// e^x to within 1e-15 relative; 0 for x < -708 (where e^x is subnormal or 0), so
/// e^-inf = 0. Arguments above 709 saturate at e^709.
FMG_LANE_INLINE double exp(double x) {
  return exp_of_clamped(x, x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x));
}

/// exp(x) for x <= 0, the arguments of the responsibilities' log-sum-exp,
/// with one comparison fewer; bit for bit the same as exp there.
FMG_LANE_INLINE double exp_nonpositive(double x) {
  return exp_of_clamped(x, x < -708.0 ? -708.0 : x);
}

/// Computes e^x in float as exp_of_clamped does in double: x clamped to at
/// most 88, and x < -87 gives 0.
FMG_LANE_INLINE float exp_of_clamped(float x, float clamped) {
  const float shifter = 12582912.0f;  // 1.5 * 2^23
  const float kd = clamped * 1.44269504f + shifter;
  const float k = kd - shifter;
  const float r = (clamped - k * 0.693145752f) - k * 1.42860677e-6f;
  const float r2 = r * r;
  const float r4 = r2 * r2;
  const float p01 = r + 1.0f;
  const float p23 = fmadd(r, 1.0f / 6.0f, 0.5f);
  const float p45 = fmadd(r, 1.0f / 120.0f, 1.0f / 24.0f);
  const float p67 = fmadd(r, 1.0f / 5040.0f, 1.0f / 720.0f);
  const float p = fmadd(fmadd(p67, r2, p45), r4, fmadd(p23, r2, p01));
  const std::int32_t k_int =
      bit_cast<std::int32_t>(kd) - bit_cast<std::int32_t>(shifter);
  const float scale = bit_cast<float>((k_int + 127) << 23);
  return x < -87.0f ? 0.0f : p * scale;
}

/// e^x to within 1e-6 relative in float; 0 for x < -87.
FMG_LANE_INLINE float exp(float x) {
  return exp_of_clamped(x, x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x));
}

FMG_LANE_INLINE float exp_nonpositive(float x) {
  return exp_of_clamped(x, x < -87.0f ? -87.0f : x);
}

/// x^(-1/5) for x >= 1e-30, to about 1e-9 relative; step-size factors need
/// no more. Smaller x and NaN give the value at 1e-30.
template <class T>
FMG_LANE_INLINE T pow_minus_fifth(T x) {
  const double v = x > T(1e-30) ? static_cast<double>(x) : 1e-30;
  // log2 v = e + log2 m with m in [1, 2), log m = 2 atanh(z).
  const std::int64_t bits = bit_cast<std::int64_t>(v);
  const double exponent = static_cast<double>(((bits >> 52) & 0x7ff) - 1023);
  const double m =
      bit_cast<double>((bits & 0x000fffffffffffffLL) | 0x3ff0000000000000LL);
  const double z = (m - 1.0) / (m + 1.0);
  // Both polynomials in Estrin's scheme, which shortens their dependency
  // chains to a few operations each.
  const double z2 = z * z;
  const double z4 = z2 * z2;
  const double z8 = z4 * z4;
  const double series =
      fmadd(fmadd(1.0 / 13, z4, fmadd(1.0 / 11, z2, 1.0 / 9)), z8,
            fmadd(fmadd(1.0 / 7, z2, 1.0 / 5), z4, fmadd(1.0 / 3, z2, 1.0)));
  const double log2_v = fmadd(2.0 * 1.4426950408889634074 * z, series, exponent);
  // 2^y = 2^n 2^f with n = floor(y) and f in [0, 1).
  const double y = -0.2 * log2_v;
  const double n = std::floor(y);
  const double g = (y - n) * 0.69314718055994530942;
  const double g2 = g * g;
  const double g4 = g2 * g2;
  const double g8 = g4 * g4;
  const double e01 = g + 1.0;
  const double e23 = fmadd(g, 1.0 / 6, 1.0 / 2);
  const double e45 = fmadd(g, 1.0 / 120, 1.0 / 24);
  const double e67 = fmadd(g, 1.0 / 5040, 1.0 / 720);
  const double e89 = fmadd(g, 1.0 / 362880, 1.0 / 40320);
  const double e03 = fmadd(e23, g2, e01);
  const double e47 = fmadd(e67, g2, e45);
  const double e810 = fmadd(1.0 / 3628800, g2, e89);
  const double p = fmadd(e810, g8, fmadd(e47, g4, e03));
  // n is a whole number in [-205, 21]; adding the 1.5 * 2^52 shifter puts
  // it in the low bits, where integer arithmetic builds 2^n.
  const double shifter = 6755399441055744.0;
  const std::int64_t n_int =
      bit_cast<std::int64_t>(n + shifter) - bit_cast<std::int64_t>(shifter);
  const double scale = bit_cast<double>((n_int + 1023) << 52);
  return static_cast<T>(p * scale);
}

/// sin x for x in [0, pi/2], from its Taylor series to degree 23 in double
/// and 13 in float.
FMG_LANE_INLINE double sin_quadrant(double x) {
  const double x2 = x * x;
  const double x4 = x2 * x2;
  const double x8 = x4 * x4;
  // sin x = x (1 + x2 q(x2)), q(y) = sum_i (-1)^(i+1) y^i / (2 i + 3)!.
  const double c0 = -1.0 / 6.0, c1 = 1.0 / 120.0, c2 = -1.0 / 5040.0,
               c3 = 1.0 / 362880.0, c4 = -1.0 / 39916800.0,
               c5 = 1.0 / 6227020800.0, c6 = -1.0 / 1307674368000.0,
               c7 = 1.0 / 355687428096000.0, c8 = -1.0 / 121645100408832000.0,
               c9 = 1.0 / 51090942171709440000.0,
               c10 = -1.0 / 25852016738884976640000.0;
  const double q01 = fmadd(x2, c1, c0);
  const double q23 = fmadd(x2, c3, c2);
  const double q45 = fmadd(x2, c5, c4);
  const double q67 = fmadd(x2, c7, c6);
  const double q89 = fmadd(x2, c9, c8);
  const double q03 = fmadd(q23, x4, q01);
  const double q47 = fmadd(q67, x4, q45);
  const double q810 = fmadd(c10, x4, q89);
  const double q = fmadd(fmadd(q810, x8, q47), x8, q03);
  return fmadd(x * x2, q, x);
}

FMG_LANE_INLINE float sin_quadrant(float x) {
  const float x2 = x * x;
  const float x4 = x2 * x2;
  const float c0 = -1.0f / 6.0f, c1 = 1.0f / 120.0f, c2 = -1.0f / 5040.0f,
              c3 = 1.0f / 362880.0f, c4 = -1.0f / 39916800.0f,
              c5 = 1.0f / 6227020800.0f;
  const float q = fmadd(fmadd(fmadd(x2, c5, c4), x4, fmadd(x2, c3, c2)), x4,
                        fmadd(x2, c1, c0));
  return fmadd(x * x2, q, x);
}

}  // namespace fmg::lanes
