// Counter-based standard normal samples that are bit-identical on the host
// and on CUDA devices.
//
// Coordinate j of sample i comes from Philox4x32-10 (Random123) with key
// (seed) and counter (i, j / 2): the four 32-bit words make two 53-bit
// uniforms in (0, 1), and Box-Muller turns them into the normals for
// coordinates 2 (j / 2) and 2 (j / 2) + 1. The result depends only on
// (seed, i, j), never on threads, chunks or launch shapes.
//
// Library log, sin and cos differ in the last bits between glibc and CUDA, so
// Box-Muller here uses its own log and sin/cos built from additions,
// multiplications, divisions and square roots that are correctly rounded on
// both sides. On the device each one is an explicit _rn intrinsic, so nvcc
// cannot fuse a multiply and an add; host code is compiled without
// contraction (-ffp-contract=off).
#pragma once

#include <cstdint>
#include <type_traits>

#include <Random123/philox.h>

#include "kernels/common.hpp"

namespace fmg {
namespace detail {

FMG_HD FMG_INLINE double add_rn(double x, double y) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(x, y);
#else
  return x + y;
#endif
}

FMG_HD FMG_INLINE double mul_rn(double x, double y) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(x, y);
#else
  return x * y;
#endif
}

FMG_HD FMG_INLINE double div_rn(double x, double y) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(x, y);
#else
  return x / y;
#endif
}

FMG_HD FMG_INLINE double sqrt_rn(double x) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

/// Natural logarithm of u in (0, 1], to a few ulp, from exactly rounded
/// operations only.
FMG_HD FMG_INLINE double deterministic_log(double u) {
  // u = f 2^e with f in [sqrt(1/2), sqrt(2)); frexp and ldexp are exact.
  int e = 0;
  double f = ::frexp(u, &e);
  if (f < 0.70710678118654752440) {
    f = ::ldexp(f, 1);
    e -= 1;
  }

  // log f = 2 atanh(z) = 2 (z + z^3/3 + z^5/5 + ...), z = (f - 1) / (f + 1),
  // |z| <= 0.1716, so 12 odd terms reach double precision.
  const double z = div_rn(add_rn(f, -1.0), add_rn(f, 1.0));
  const double z2 = mul_rn(z, z);
  double series = 1.0 / 25.0;
  series = add_rn(mul_rn(series, z2), 1.0 / 23.0);
  series = add_rn(mul_rn(series, z2), 1.0 / 21.0);
  series = add_rn(mul_rn(series, z2), 1.0 / 19.0);
  series = add_rn(mul_rn(series, z2), 1.0 / 17.0);
  series = add_rn(mul_rn(series, z2), 1.0 / 15.0);
  series = add_rn(mul_rn(series, z2), 1.0 / 13.0);
  series = add_rn(mul_rn(series, z2), 1.0 / 11.0);
  series = add_rn(mul_rn(series, z2), 1.0 / 9.0);
  series = add_rn(mul_rn(series, z2), 1.0 / 7.0);
  series = add_rn(mul_rn(series, z2), 1.0 / 5.0);
  series = add_rn(mul_rn(series, z2), 1.0 / 3.0);
  const double log_f = mul_rn(2.0, add_rn(z, mul_rn(mul_rn(z, z2), series)));

  // ln 2 split so that e * ln2_hi is exact for |e| < 2^11.
  const double ln2_hi = 6.93147180369123816490e-01;
  const double ln2_lo = 1.90821492927058770002e-10;
  const double de = static_cast<double>(e);
  return add_rn(mul_rn(de, ln2_hi), add_rn(log_f, mul_rn(de, ln2_lo)));
}

/// Computes sin(2 pi u) and cos(2 pi u) for u in [0, 1) from exactly
/// rounded operations only.
FMG_HD FMG_INLINE void deterministic_sincos_2pi(double u, double* sin_out,
                                                double* cos_out) {
  // 4u = q + r with r in [0, 1) is exact; the angle is q pi/2 + r pi/2.
  const double u4 = mul_rn(u, 4.0);
  const double q = ::floor(u4);
  const double r = add_rn(u4, -q);
  const double x = mul_rn(r, 1.57079632679489661923);
  const double x2 = mul_rn(x, x);

  // Taylor series on [0, pi/2): terms beyond x^23 / 23! are below 2^-60.
  double s = -1.0 / 25852016738884976640000.0;  // -1/23!
  s = add_rn(mul_rn(s, x2), 1.0 / 51090942171709440000.0);
  s = add_rn(mul_rn(s, x2), -1.0 / 121645100408832000.0);
  s = add_rn(mul_rn(s, x2), 1.0 / 355687428096000.0);
  s = add_rn(mul_rn(s, x2), -1.0 / 1307674368000.0);
  s = add_rn(mul_rn(s, x2), 1.0 / 6227020800.0);
  s = add_rn(mul_rn(s, x2), -1.0 / 39916800.0);
  s = add_rn(mul_rn(s, x2), 1.0 / 362880.0);
  s = add_rn(mul_rn(s, x2), -1.0 / 5040.0);
  s = add_rn(mul_rn(s, x2), 1.0 / 120.0);
  s = add_rn(mul_rn(s, x2), -1.0 / 6.0);
  const double sin_x = add_rn(x, mul_rn(mul_rn(x, x2), s));

  double c = 1.0 / 1124000727777607680000.0;  // 1/22!
  c = add_rn(mul_rn(c, x2), -1.0 / 2432902008176640000.0);
  c = add_rn(mul_rn(c, x2), 1.0 / 6402373705728000.0);
  c = add_rn(mul_rn(c, x2), -1.0 / 20922789888000.0);
  c = add_rn(mul_rn(c, x2), 1.0 / 87178291200.0);
  c = add_rn(mul_rn(c, x2), -1.0 / 479001600.0);
  c = add_rn(mul_rn(c, x2), 1.0 / 3628800.0);
  c = add_rn(mul_rn(c, x2), -1.0 / 40320.0);
  c = add_rn(mul_rn(c, x2), 1.0 / 720.0);
  c = add_rn(mul_rn(c, x2), -1.0 / 24.0);
  c = add_rn(mul_rn(c, x2), 0.5);
  const double cos_x = add_rn(1.0, -mul_rn(x2, c));

  switch (static_cast<int>(q)) {
    case 0: *sin_out = sin_x; *cos_out = cos_x; break;
    case 1: *sin_out = cos_x; *cos_out = -sin_x; break;
    case 2: *sin_out = -sin_x; *cos_out = -cos_x; break;
    default: *sin_out = -cos_x; *cos_out = sin_x; break;
  }
}

/// Maps 64 random bits to a double in (0, 1), never 0 or 1.
FMG_HD FMG_INLINE double bits_to_open_unit(std::uint32_t hi,
                                           std::uint32_t lo) {
  const std::uint64_t bits =
      (static_cast<std::uint64_t>(hi) << 32) | static_cast<std::uint64_t>(lo);
  const double k = static_cast<double>(bits >> 11);  // 53 bits, exact
  return mul_rn(add_rn(k, 0.5), 1.1102230246251565404e-16);  // 2^-53
}

}  // namespace detail

/// Returns the standard normals for coordinates 2 p and 2 p + 1 of sample
/// `index` under `seed`.
FMG_HD FMG_INLINE void philox_normal_pair(std::uint64_t seed,
                                          std::uint64_t index, std::uint32_t p,
                                          double* z0, double* z1) {
  r123::Philox4x32 generator;
  r123::Philox4x32::ctr_type counter = {
      {static_cast<std::uint32_t>(index),
       static_cast<std::uint32_t>(index >> 32), p, 0u}};
  r123::Philox4x32::key_type key = {
      {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
  const r123::Philox4x32::ctr_type bits = generator(counter, key);

  const double u1 = detail::bits_to_open_unit(bits[0], bits[1]);
  const double u2 = detail::bits_to_open_unit(bits[2], bits[3]);
  const double radius =
      detail::sqrt_rn(detail::mul_rn(-2.0, detail::deterministic_log(u1)));
  double sin_theta = 0.0;
  double cos_theta = 0.0;
  detail::deterministic_sincos_2pi(u2, &sin_theta, &cos_theta);
  *z0 = detail::mul_rn(radius, cos_theta);
  *z1 = detail::mul_rn(radius, sin_theta);
}

/// Writes the d coordinates of base sample `index` into x, in the precision
/// of Vec's elements (normals are drawn in double and rounded once).
template <class Vec>
FMG_HD FMG_INLINE void philox_base_sample(std::uint64_t seed,
                                          std::uint64_t index, Vec& x) {
  using T = typename std::remove_reference<decltype(x[0])>::type;
  const int d = x.size();
  for (int j = 0; j < d; j += 2) {
    double z0 = 0.0;
    double z1 = 0.0;
    philox_normal_pair(seed, index, static_cast<std::uint32_t>(j / 2), &z0,
                       &z1);
    x[j] = static_cast<T>(z0);
    if (j + 1 < d) x[j + 1] = static_cast<T>(z1);
  }
}

}  // namespace fmg
