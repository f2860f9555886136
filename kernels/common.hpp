// Shared definitions for the per-sample maths compiled by both the host
// compiler and nvcc.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define FMG_HD __host__ __device__
#define FMG_INLINE __forceinline__
#else
#define FMG_HD
#define FMG_INLINE inline
#endif

namespace fmg {

/// Schedules (a(t), b(t)) of the interpolant X_t = a X0 + b X1.
enum class ScheduleKind : int { linear = 0, variance_preserving = 1, cosine = 2 };

/// Per-sample integration methods.
enum class Method : int { euler = 0, heun = 1, rk4 = 2, dopri5 = 3 };

/// Floating-point precision of a run.
enum class Precision : int { float32 = 0, float64 = 1 };

/// Outcome of integrating one sample.
enum class SampleStatus : std::uint8_t {
  ok = 0,
  max_steps_reached = 1,  ///< Dormand-Prince stopped before t_end.
  non_finite_state = 2,   ///< A stage or the state became NaN or infinite.
};

namespace math {

// Overloads that resolve to the single or double precision function on both
// the host and the device, so templates never promote float to double.
FMG_HD FMG_INLINE float exp(float x) { return ::expf(x); }
FMG_HD FMG_INLINE double exp(double x) { return ::exp(x); }
FMG_HD FMG_INLINE float log(float x) { return ::logf(x); }
FMG_HD FMG_INLINE double log(double x) { return ::log(x); }
FMG_HD FMG_INLINE float sqrt(float x) { return ::sqrtf(x); }
FMG_HD FMG_INLINE double sqrt(double x) { return ::sqrt(x); }
FMG_HD FMG_INLINE float sin(float x) { return ::sinf(x); }
FMG_HD FMG_INLINE double sin(double x) { return ::sin(x); }
FMG_HD FMG_INLINE float cos(float x) { return ::cosf(x); }
FMG_HD FMG_INLINE double cos(double x) { return ::cos(x); }
FMG_HD FMG_INLINE float fabs(float x) { return ::fabsf(x); }
FMG_HD FMG_INLINE double fabs(double x) { return ::fabs(x); }
FMG_HD FMG_INLINE float pow(float x, float y) { return ::powf(x, y); }
FMG_HD FMG_INLINE double pow(double x, double y) { return ::pow(x, y); }

// Fallbacks for other scalar types, such as Eigen's AutoDiffScalar on the
// host, found through argument-dependent lookup.
template <class T>
inline T exp(const T& x) { using std::exp; return exp(x); }
template <class T>
inline T log(const T& x) { using std::log; return log(x); }
template <class T>
inline T sqrt(const T& x) { using std::sqrt; return sqrt(x); }

template <class T>
FMG_HD FMG_INLINE bool isfinite(T x) {
  // x - x is 0 for finite x and NaN for infinities and NaN.
  return (x - x) == (x - x);
}

template <class T>
FMG_HD FMG_INLINE T min(T x, T y) { return y < x ? y : x; }

template <class T>
FMG_HD FMG_INLINE T max(T x, T y) { return x < y ? y : x; }

template <class T>
FMG_HD FMG_INLINE T infinity() { return static_cast<T>(HUGE_VAL); }

template <class T>
FMG_HD FMG_INLINE T pi() { return T(3.14159265358979323846264338327950288); }

}  // namespace math
}  // namespace fmg
