// Gauss-Legendre quadrature for the tests: an independent check of the
// exact Gaussian integrals.
#pragma once

#include <cmath>
#include <functional>
#include <vector>

#include <Eigen/Core>

namespace fmg {
namespace testing {

/// Nodes and weights of the n-point Gauss-Legendre rule on [0, 1], from
/// Newton's method on the Legendre polynomial P_n.
struct GaussLegendre {
  std::vector<double> nodes;
  std::vector<double> weights;

  explicit GaussLegendre(int n) : nodes(n), weights(n) {
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < n; ++i) {
      double x = std::cos(pi * (i + 0.75) / (n + 0.5));
      double derivative = 0.0;
      for (int iteration = 0; iteration < 100; ++iteration) {
        double p0 = 1.0;
        double p1 = x;
        for (int k = 2; k <= n; ++k) {
          const double p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
          p0 = p1;
          p1 = p2;
        }
        derivative = n * (x * p1 - p0) / (x * x - 1.0);
        const double dx = p1 / derivative;
        x -= dx;
        if (std::fabs(dx) < 1e-16) break;
      }
      nodes[i] = 0.5 * (1.0 - x);
      weights[i] = 1.0 / ((1.0 - x * x) * derivative * derivative);
    }
  }
};

/// Standard bivariate normal density.
inline double bivariate_normal_density(const Eigen::Vector2d& x) {
  return std::exp(-0.5 * x.squaredNorm()) / (2.0 * 3.14159265358979323846);
}

/// Integrates f over the triangle (a, b, c) through the Duffy map
/// x = a + u (b - a) + u v (c - b) of the unit square, whose Jacobian
/// u |(b - a) x (c - b)| is a polynomial, with `order` points per axis on
/// each of `pieces` x `pieces` sub-squares.
inline double integrate_triangle(
    const std::function<double(const Eigen::Vector2d&)>& f,
    const Eigen::Vector2d& a, const Eigen::Vector2d& b,
    const Eigen::Vector2d& c, int order = 24, int pieces = 4) {
  const GaussLegendre rule(order);
  const Eigen::Vector2d ab = b - a;
  const Eigen::Vector2d bc = c - b;
  const double jacobian = std::fabs(ab.x() * bc.y() - ab.y() * bc.x());
  const double h = 1.0 / pieces;
  double sum = 0.0;
  for (int pu = 0; pu < pieces; ++pu) {
    for (int pv = 0; pv < pieces; ++pv) {
      for (int i = 0; i < order; ++i) {
        const double u = (pu + rule.nodes[i]) * h;
        for (int j = 0; j < order; ++j) {
          const double v = (pv + rule.nodes[j]) * h;
          const Eigen::Vector2d x = a + u * ab + u * v * bc;
          sum += rule.weights[i] * rule.weights[j] * h * h * u * f(x);
        }
      }
    }
  }
  return sum * jacobian;
}

/// Integrates f along the segment from a to b with respect to arc length,
/// with `order` points on each of `pieces` equal sub-segments.
inline double integrate_segment(
    const std::function<double(const Eigen::Vector2d&)>& f,
    const Eigen::Vector2d& a, const Eigen::Vector2d& b, int order = 24,
    int pieces = 16) {
  const GaussLegendre rule(order);
  const double h = 1.0 / pieces;
  double sum = 0.0;
  for (int p = 0; p < pieces; ++p) {
    for (int i = 0; i < order; ++i) {
      const double s = (p + rule.nodes[i]) * h;
      sum += rule.weights[i] * h * f(a + s * (b - a));
    }
  }
  return sum * (b - a).norm();
}

}  // namespace testing
}  // namespace fmg
