#include "host/ot/gaussian_polygon.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>

#include <boost/math/special_functions/owens_t.hpp>

namespace fmg {
namespace {

constexpr double two_pi = 6.28318530717958647692528676655900577;
constexpr double inv_sqrt_two = 0.70710678118654752440084436210484904;
constexpr double inv_sqrt_two_pi = 0.39894228040143267793994605993438187;

double cross(const Eigen::Vector2d& a, const Eigen::Vector2d& b) {
  return a.x() * b.y() - a.y() * b.x();
}

// Twice the signed area (shoelace); positive for counter-clockwise order.
double twice_signed_area(const std::vector<Eigen::Vector2d>& vertices) {
  const std::size_t n = vertices.size();
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    sum += cross(vertices[i], vertices[(i + 1) % n]);
  }
  return sum;
}

// Mass of the triangle (0, a, b), positive when the turn from a to b is
// counter-clockwise. The foot F of the perpendicular from the origin to the
// line ab splits it into two right triangles, or makes it their difference
// when F lies outside the edge. t is the signed coordinate along ab from F.
double signed_fan_triangle_mass(const Eigen::Vector2d& a,
                                const Eigen::Vector2d& b) {
  const Eigen::Vector2d edge = b - a;
  const double length = edge.norm();
  if (!(length > 0.0)) return 0.0;
  const double twice_area = cross(a, b);
  const double h = std::fabs(twice_area) / length;
  if (!(h > 0.0)) return 0.0;

  const Eigen::Vector2d direction = edge / length;
  const double t_a = direction.dot(a);
  const double t_b = direction.dot(b);
  const auto signed_mass = [h](double t) {
    const double mass = gaussian_right_triangle_mass(h, std::fabs(t));
    return t < 0.0 ? -mass : mass;
  };
  const double mass = signed_mass(t_b) - signed_mass(t_a);
  return twice_area > 0.0 ? mass : -mass;
}

}  // namespace

double normal_interval_probability(double lower, double upper) {
  if (!(lower < upper)) return 0.0;
  if (lower >= 0.0) {
    return 0.5 * (std::erfc(lower * inv_sqrt_two) -
                  std::erfc(upper * inv_sqrt_two));
  }
  if (upper <= 0.0) {
    return 0.5 * (std::erfc(-upper * inv_sqrt_two) -
                  std::erfc(-lower * inv_sqrt_two));
  }
  return 1.0 - 0.5 * (std::erfc(-lower * inv_sqrt_two) +
                      std::erfc(upper * inv_sqrt_two));
}

double gaussian_right_triangle_mass(double h, double leg) {
  if (!(h > 0.0) || !(leg > 0.0)) return 0.0;
  // leg / h overflows to +inf for a tiny h. Owen's T at a = inf is the
  // correct limit there, and atan2 takes leg and h without dividing.
  const double slope = leg / h;
  const double mass =
      std::atan2(leg, h) / two_pi - boost::math::owens_t(h, slope);
  return std::max(0.0, mass);
}

double gaussian_polygon_mass(const std::vector<Eigen::Vector2d>& vertices) {
  const std::size_t n = vertices.size();
  if (n < 3) return 0.0;
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    sum += signed_fan_triangle_mass(vertices[i], vertices[(i + 1) % n]);
  }
  const double area = twice_signed_area(vertices);
  if (area < 0.0) sum = -sum;
  if (area == 0.0) return 0.0;
  return std::clamp(sum, 0.0, 1.0);
}

double gaussian_segment_integral(const Eigen::Vector2d& a,
                                 const Eigen::Vector2d& b) {
  const Eigen::Vector2d edge = b - a;
  const double length = edge.norm();
  if (!(length > 0.0)) return 0.0;
  const double h = std::fabs(cross(a, b)) / length;
  const Eigen::Vector2d direction = edge / length;
  const double density_at_foot = inv_sqrt_two_pi * std::exp(-0.5 * h * h);
  return density_at_foot *
         normal_interval_probability(direction.dot(a), direction.dot(b));
}

GaussianPolygonMoments gaussian_polygon_moments(
    const std::vector<Eigen::Vector2d>& vertices) {
  GaussianPolygonMoments moments;
  const std::size_t n = vertices.size();
  const double area = twice_signed_area(vertices);
  if (n < 3 || area == 0.0) return moments;
  moments.mass = gaussian_polygon_mass(vertices);

  // Outward normal of a counter-clockwise edge: the direction turned
  // clockwise; a clockwise polygon flips it.
  const double orientation = area > 0.0 ? 1.0 : -1.0;
  double boundary_term = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const Eigen::Vector2d& a = vertices[i];
    const Eigen::Vector2d& b = vertices[(i + 1) % n];
    const Eigen::Vector2d edge = b - a;
    const double length = edge.norm();
    if (!(length > 0.0)) continue;
    const Eigen::Vector2d normal =
        orientation * Eigen::Vector2d(edge.y(), -edge.x()) / length;
    const double integral = gaussian_segment_integral(a, b);
    moments.first_moment -= normal * integral;
    boundary_term += normal.dot(a) * integral;
  }
  moments.second_moment = std::max(0.0, 2.0 * moments.mass - boundary_term);
  return moments;
}

LabelledPolygon clip_square(double half_width, int label) {
  LabelledPolygon square;
  square.vertices = {Eigen::Vector2d(-half_width, -half_width),
                     Eigen::Vector2d(half_width, -half_width),
                     Eigen::Vector2d(half_width, half_width),
                     Eigen::Vector2d(-half_width, half_width)};
  square.labels.assign(4, label);
  return square;
}

void clip_polygon(LabelledPolygon& polygon, const HalfPlane& half_plane,
                  int label) {
  if (polygon.empty()) {
    polygon = LabelledPolygon{};
    return;
  }
  if (half_plane.normal.x() == 0.0 && half_plane.normal.y() == 0.0) {
    if (!(half_plane.offset >= 0.0)) polygon = LabelledPolygon{};
    return;
  }

  LabelledPolygon clipped;
  const auto push = [&clipped](const Eigen::Vector2d& vertex, int edge_label) {
    // A repeated vertex would open a zero-length edge: keep the first copy
    // and give it the label of the edge that leaves the second.
    if (!clipped.vertices.empty() && clipped.vertices.back() == vertex) {
      clipped.labels.back() = edge_label;
      return;
    }
    clipped.vertices.push_back(vertex);
    clipped.labels.push_back(edge_label);
  };

  const std::size_t n = polygon.vertices.size();
  for (std::size_t i = 0; i < n; ++i) {
    const Eigen::Vector2d& p = polygon.vertices[i];
    const Eigen::Vector2d& q = polygon.vertices[(i + 1) % n];
    const double s_p = half_plane.normal.dot(p) - half_plane.offset;
    const double s_q = half_plane.normal.dot(q) - half_plane.offset;
    const int edge_label = polygon.labels[i];
    if (s_p <= 0.0) {
      push(p, edge_label);
      if (s_q > 0.0) {
        // Leaving: the new vertex starts the edge along the cut line.
        push(p + (s_p / (s_p - s_q)) * (q - p), label);
      }
    } else if (s_q <= 0.0) {
      // Entering: the new vertex starts what is left of edge pq.
      push(p + (s_p / (s_p - s_q)) * (q - p), edge_label);
    }
  }
  while (clipped.vertices.size() > 1 &&
         clipped.vertices.back() == clipped.vertices.front()) {
    clipped.vertices.pop_back();
    clipped.labels.pop_back();
  }
  if (clipped.vertices.size() < 3) clipped = LabelledPolygon{};
  polygon = std::move(clipped);
}

LabelledPolygon intersect_half_planes(
    const std::vector<HalfPlane>& half_planes) {
  LabelledPolygon polygon = clip_square(gaussian_clip_half_width, -1);
  for (std::size_t i = 0; i < half_planes.size() && !polygon.empty(); ++i) {
    clip_polygon(polygon, half_planes[i], static_cast<int>(i));
  }
  return polygon;
}

double gaussian_half_planes_mass(const std::vector<HalfPlane>& half_planes) {
  return gaussian_polygon_mass(intersect_half_planes(half_planes).vertices);
}

}  // namespace fmg
