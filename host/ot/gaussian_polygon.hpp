// Exact integrals of the standard bivariate normal density over polygons and
// along segments, through Owen's T function.
//
// A polygon is split into a signed fan of triangles from the origin. Each
// triangle is split again at the foot of the perpendicular from the origin
// to its edge line, into right triangles with one vertex at the origin.
// With legs h (from the origin to the foot) and a h (along the edge), such a
// right triangle has mass atan(a) / (2 pi) - T(h, a), where T is Owen's T
// function (Owen 1956, "Tables for computing bivariate normal
// probabilities"; boost::math::owens_t). Every result has an absolute error
// of a few 1e-16 per edge.
#pragma once

#include <vector>

#include <Eigen/Core>

namespace fmg {

/// Half-width R of the square [-R, R]^2 to which unbounded regions are
/// clipped. The standard normal mass outside the square is below
/// 2 erfc(R / sqrt(2)), about 1e-348, far below the 1e-300 that any result
/// here resolves.
inline constexpr double gaussian_clip_half_width = 40.0;

/// The closed half-plane {x : normal . x <= offset}.
struct HalfPlane {
  Eigen::Vector2d normal;
  double offset;
};

/// A convex polygon, counter-clockwise, whose edges carry integer labels:
/// labels[i] belongs to the edge from vertices[i] to vertices[(i + 1) % n].
/// An empty vertex list is the empty set.
struct LabelledPolygon {
  std::vector<Eigen::Vector2d> vertices;
  std::vector<int> labels;

  bool empty() const { return vertices.size() < 3; }
};

/// Mass of the standard bivariate normal inside a polygon and its first two
/// moments: E[X 1{X in P}] and E[|X|^2 1{X in P}].
struct GaussianPolygonMoments {
  double mass = 0.0;
  Eigen::Vector2d first_moment = Eigen::Vector2d::Zero();
  double second_moment = 0.0;
};

/// Returns Phi(upper) - Phi(lower) for the standard normal distribution
/// function Phi, from erfc so that both tails keep their relative accuracy.
/// Requires lower <= upper; infinite bounds are allowed.
double normal_interval_probability(double lower, double upper);

/// Returns the standard bivariate normal mass atan(leg / h) / (2 pi) -
/// T(h, leg / h) of a right triangle. Its vertices are the origin, a point
/// F at distance h from the origin, and the point at distance `leg` from F
/// perpendicular to OF. Returns 0 when h or leg is 0. Requires h, leg >= 0.
double gaussian_right_triangle_mass(double h, double leg);

/// Returns the standard bivariate normal mass of a simple polygon (convex
/// or not) given by its vertices in either orientation. Vertices may lie on
/// the origin, edges may pass through it or have zero length; fewer than
/// three vertices give 0. The result is clamped to [0, 1]; its absolute
/// error is a few 1e-16 per edge.
double gaussian_polygon_mass(const std::vector<Eigen::Vector2d>& vertices);

/// Returns the integral of the standard bivariate normal density
/// (1 / 2 pi) exp(-|x|^2 / 2) along the segment from a to b, with respect
/// to arc length: phi(h) (Phi(t_b) - Phi(t_a)), where h is the distance from
/// the origin to the segment's line and t the coordinate along that line
/// measured from the foot of the perpendicular. 0 for a == b.
double gaussian_segment_integral(const Eigen::Vector2d& a,
                                 const Eigen::Vector2d& b);

/// Returns the mass and the first two moments of the standard bivariate
/// normal over a simple polygon in either orientation. The moments follow
/// from the divergence theorem and the segment integrals I_e of its edges:
/// E[X 1_P] = -sum_e n_e I_e and E[|X|^2 1_P] = 2 m - sum_e (n_e . x_e) I_e,
/// with n_e the outward unit normal and x_e any point of edge e.
GaussianPolygonMoments gaussian_polygon_moments(
    const std::vector<Eigen::Vector2d>& vertices);

/// Returns the square [-half_width, half_width]^2, counter-clockwise from
/// (-half_width, -half_width), with every edge labelled `label`.
LabelledPolygon clip_square(double half_width, int label);

/// Intersects a convex polygon with a half-plane in place (Sutherland and
/// Hodgman). The edge cut along the half-plane's line gets `label`; the
/// other edges keep theirs. Zero-length edges are removed, and a result
/// with fewer than three vertices becomes empty. A zero normal keeps the
/// polygon when offset >= 0 and empties it otherwise.
void clip_polygon(LabelledPolygon& polygon, const HalfPlane& half_plane,
                  int label);

/// Returns the intersection of half-planes with the clip square of
/// gaussian_clip_half_width, labelling each edge by the index of the
/// half-plane that cuts it (-1 for the square).
LabelledPolygon intersect_half_planes(const std::vector<HalfPlane>& half_planes);

/// Returns the standard bivariate normal mass of an intersection of
/// half-planes, bounded or not (no half-planes gives 1 up to 1e-300).
double gaussian_half_planes_mass(const std::vector<HalfPlane>& half_planes);

}  // namespace fmg
