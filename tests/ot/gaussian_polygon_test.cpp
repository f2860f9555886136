#include "host/ot/gaussian_polygon.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "tests/ot/quadrature.hpp"

namespace fmg {
namespace {

using Polygon = std::vector<Eigen::Vector2d>;

// Standard normal distribution function, written independently of the
// library's normal_interval_probability.
double normal_cdf(double t) { return 0.5 * std::erfc(-t / std::sqrt(2.0)); }

double box_mass(double x0, double x1, double y0, double y1) {
  return (normal_cdf(x1) - normal_cdf(x0)) * (normal_cdf(y1) - normal_cdf(y0));
}

Polygon box(double x0, double x1, double y0, double y1) {
  return {{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}};
}

double quadrature_mass(const Polygon& triangle) {
  return testing::integrate_triangle(testing::bivariate_normal_density,
                                     triangle[0], triangle[1], triangle[2]);
}

TEST(GaussianPolygonMass, SquaresMatchProductOfIntervals) {
  const double cases[][4] = {{-1.0, 1.0, -1.0, 1.0},     // origin inside
                             {-0.3, 1.7, 0.2, 2.5},      // origin outside
                             {0.0, 1.0, 0.0, 1.0},       // origin at a vertex
                             {-2.0, 0.5, 0.0, 3.0},      // origin on an edge
                             {2.0, 6.0, -7.0, -3.0},     // far tail
                             {-8.0, 8.0, -8.0, 8.0}};    // nearly everything
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::Message() << "box [" << c[0] << ", " << c[1]
                                      << "] x [" << c[2] << ", " << c[3]
                                      << "]");
    const double mass = gaussian_polygon_mass(box(c[0], c[1], c[2], c[3]));
    EXPECT_NEAR(mass, box_mass(c[0], c[1], c[2], c[3]), 1e-14);
  }
}

TEST(GaussianPolygonMass, HalfPlanesMatchNormalCdf) {
  const double offsets[] = {-6.0, -1.3, 0.0, 0.4, 2.0, 5.0};
  const Eigen::Vector2d normal(3.0, -4.0);  // length 5
  for (const double offset : offsets) {
    SCOPED_TRACE(::testing::Message() << "offset " << offset);
    const double mass = gaussian_half_planes_mass({HalfPlane{normal, offset}});
    EXPECT_NEAR(mass, normal_cdf(offset / 5.0), 1e-14);
  }
}

TEST(GaussianPolygonMass, TriangleAwayFromOriginMatchesQuadrature) {
  const Polygon triangle = {{1.0, 0.5}, {2.5, 1.0}, {1.2, 2.2}};
  EXPECT_NEAR(gaussian_polygon_mass(triangle), quadrature_mass(triangle),
              1e-14);
}

TEST(GaussianPolygonMass, TriangleMatchesMpmathValue) {
  // mpmath 1.3.0 at 30 digits, mp.quad over the Duffy map of the triangle:
  // 0.0294376251094849474682699.
  const Polygon triangle = {{1.0, 0.5}, {2.5, 1.0}, {1.2, 2.2}};
  EXPECT_NEAR(gaussian_polygon_mass(triangle), 0.0294376251094849474682699,
              1e-15);
}

TEST(GaussianPolygonMass, OriginOnEdgeMatchesQuadrature) {
  const Polygon triangle = {{-1.0, 0.0}, {1.5, 0.0}, {0.3, 1.2}};
  EXPECT_NEAR(gaussian_polygon_mass(triangle), quadrature_mass(triangle),
              1e-14);
}

TEST(GaussianPolygonMass, OriginAtVertexMatchesQuadrature) {
  const Polygon triangle = {{0.0, 0.0}, {2.0, 0.5}, {-0.5, 1.5}};
  EXPECT_NEAR(gaussian_polygon_mass(triangle), quadrature_mass(triangle),
              1e-14);
}

TEST(GaussianPolygonMass, OrientationDoesNotMatter) {
  Polygon triangle = {{1.0, 0.5}, {2.5, 1.0}, {1.2, 2.2}};
  const double counter_clockwise = gaussian_polygon_mass(triangle);
  std::reverse(triangle.begin(), triangle.end());
  EXPECT_NEAR(gaussian_polygon_mass(triangle), counter_clockwise, 1e-16);
}

TEST(GaussianPolygonMass, NonConvexPolygonIsSumOfBoxes) {
  // An L shape: [-1, 2] x [-1, 0] and [-1, 0] x [0, 1.5].
  const Polygon shape = {{-1.0, -1.0}, {2.0, -1.0}, {2.0, 0.0},
                         {0.0, 0.0},   {0.0, 1.5},  {-1.0, 1.5}};
  const double expected =
      box_mass(-1.0, 2.0, -1.0, 0.0) + box_mass(-1.0, 0.0, 0.0, 1.5);
  EXPECT_NEAR(gaussian_polygon_mass(shape), expected, 1e-14);
}

TEST(GaussianPolygonMass, DegenerateEdgesGiveNoNan) {
  const Polygon clean = box(-0.5, 1.0, -0.25, 2.0);
  // Repeated vertices, an edge of length 1e-300, a collinear vertex and a
  // vertex exactly at the origin of a zero-area sliver.
  const Polygon messy = {{-0.5, -0.25}, {-0.5, -0.25}, {0.25, -0.25},
                         {1.0, -0.25},  {1.0, 2.0},    {1.0, 2.0 + 1e-300},
                         {-0.5, 2.0}};
  const double mass = gaussian_polygon_mass(messy);
  EXPECT_TRUE(std::isfinite(mass));
  EXPECT_NEAR(mass, gaussian_polygon_mass(clean), 1e-15);
}

TEST(GaussianPolygonMass, TinyPolygonAtOriginIsFinite) {
  const Polygon tiny = box(0.0, 1e-200, 0.0, 1e-200);
  const double mass = gaussian_polygon_mass(tiny);
  EXPECT_TRUE(std::isfinite(mass));
  EXPECT_NEAR(mass, 0.0, 1e-16);
}

TEST(GaussianPolygonMass, FewerThanThreeVerticesGiveZero) {
  EXPECT_EQ(gaussian_polygon_mass({}), 0.0);
  EXPECT_EQ(gaussian_polygon_mass({{0.0, 0.0}, {1.0, 1.0}}), 0.0);
}

TEST(GaussianPolygonMass, ClipSquareHoldsAllMass) {
  EXPECT_NEAR(gaussian_half_planes_mass({}), 1.0, 1e-15);
}

TEST(GaussianPolygonMass, EmptyIntersectionHasNoMass) {
  const std::vector<HalfPlane> planes = {
      HalfPlane{Eigen::Vector2d(1.0, 0.0), -1.0},
      HalfPlane{Eigen::Vector2d(-1.0, 0.0), -1.0}};
  EXPECT_EQ(gaussian_half_planes_mass(planes), 0.0);
}

TEST(GaussianRightTriangleMass, MatchesQuadrature) {
  const double cases[][2] = {{0.3, 0.2}, {1.0, 1.0}, {2.5, 7.0}, {0.01, 3.0}};
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::Message() << "h " << c[0] << ", leg " << c[1]);
    const Polygon triangle = {{0.0, 0.0}, {c[0], 0.0}, {c[0], c[1]}};
    EXPECT_NEAR(gaussian_right_triangle_mass(c[0], c[1]),
                quadrature_mass(triangle), 1e-14);
  }
}

TEST(GaussianRightTriangleMass, ZeroOrTinyLegsAreFinite) {
  EXPECT_EQ(gaussian_right_triangle_mass(0.0, 1.0), 0.0);
  EXPECT_EQ(gaussian_right_triangle_mass(1.0, 0.0), 0.0);
  const double mass = gaussian_right_triangle_mass(1e-310, 2.0);
  EXPECT_TRUE(std::isfinite(mass));
  EXPECT_LT(mass, 1e-16);
}

TEST(NormalIntervalProbability, KeepsTailAccuracy) {
  // mpmath 1.3.0 at 40 digits: ncdf(-30) - ncdf(-31). The argument's last
  // bit alone moves erfc near 21 by about 1e-13 relative.
  const double expected = 4.906713927147917534525689e-198;
  EXPECT_NEAR(normal_interval_probability(-31.0, -30.0) / expected, 1.0,
              1e-12);
  EXPECT_NEAR(normal_interval_probability(30.0, 31.0) / expected, 1.0, 1e-12);
}

TEST(NormalIntervalProbability, StraddlingIntervalMatchesMpmath) {
  // mpmath 1.3.0 at 40 digits: ncdf(0.5) - ncdf(-2).
  EXPECT_NEAR(normal_interval_probability(-2.0, 0.5),
              0.668712329325833896437422, 1e-16);
}

TEST(NormalIntervalProbability, EmptyIntervalIsZero) {
  EXPECT_EQ(normal_interval_probability(1.0, 1.0), 0.0);
  EXPECT_EQ(normal_interval_probability(2.0, 1.0), 0.0);
}

TEST(GaussianSegmentIntegral, MatchesQuadrature) {
  const Eigen::Vector2d cases[][2] = {
      {{-1.0, 0.5}, {2.0, 0.5}},    // foot inside the segment
      {{0.5, -2.0}, {1.5, 1.0}},    // oblique
      {{1.0, 1.0}, {3.0, 2.0}},     // foot outside the segment
      {{0.0, 0.0}, {1.0, 1.0}},     // through the origin
      {{-3.0, 4.0}, {-2.0, 5.5}}};  // tail
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::Message() << "segment (" << c[0].transpose()
                                      << ") to (" << c[1].transpose() << ")");
    const double expected = testing::integrate_segment(
        testing::bivariate_normal_density, c[0], c[1]);
    EXPECT_NEAR(gaussian_segment_integral(c[0], c[1]) / expected, 1.0, 1e-13);
  }
}

TEST(GaussianSegmentIntegral, IsSymmetricAndZeroForPoints) {
  const Eigen::Vector2d a(0.3, -1.1);
  const Eigen::Vector2d b(1.7, 0.4);
  EXPECT_NEAR(gaussian_segment_integral(a, b), gaussian_segment_integral(b, a),
              1e-16);
  EXPECT_EQ(gaussian_segment_integral(a, a), 0.0);
}

TEST(GaussianPolygonMoments, MatchQuadrature) {
  const Polygon triangle = {{-0.5, -0.2}, {2.0, 0.3}, {0.4, 1.8}};
  const GaussianPolygonMoments moments = gaussian_polygon_moments(triangle);
  const auto integrate = [&triangle](auto weight) {
    return testing::integrate_triangle(
        [weight](const Eigen::Vector2d& x) {
          return weight(x) * testing::bivariate_normal_density(x);
        },
        triangle[0], triangle[1], triangle[2]);
  };
  EXPECT_NEAR(moments.mass, integrate([](const Eigen::Vector2d&) { return 1.0; }),
              1e-14);
  EXPECT_NEAR(moments.first_moment.x(),
              integrate([](const Eigen::Vector2d& x) { return x.x(); }), 1e-14);
  EXPECT_NEAR(moments.first_moment.y(),
              integrate([](const Eigen::Vector2d& x) { return x.y(); }), 1e-14);
  EXPECT_NEAR(moments.second_moment,
              integrate([](const Eigen::Vector2d& x) { return x.squaredNorm(); }),
              1e-14);
}

TEST(ClipPolygon, KeepsEdgeLabels) {
  LabelledPolygon polygon = clip_square(1.0, -1);
  clip_polygon(polygon, HalfPlane{Eigen::Vector2d(1.0, 1.0), 0.0}, 7);
  // The square [-1, 1]^2 below the line x + y = 0 is a triangle.
  ASSERT_EQ(polygon.vertices.size(), 3u);
  int cut_edges = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    const Eigen::Vector2d& a = polygon.vertices[i];
    const Eigen::Vector2d& b = polygon.vertices[(i + 1) % 3];
    const bool on_cut = std::fabs(a.sum()) < 1e-15 && std::fabs(b.sum()) < 1e-15;
    if (on_cut) ++cut_edges;
    EXPECT_EQ(polygon.labels[i], on_cut ? 7 : -1);
  }
  EXPECT_EQ(cut_edges, 1);
}

TEST(ClipPolygon, TouchingLinesLeaveNoZeroEdge) {
  // x <= 1 runs along the right edge and x + y <= 2 touches one corner:
  // neither cuts anything away.
  const HalfPlane planes[] = {HalfPlane{Eigen::Vector2d(1.0, 0.0), 1.0},
                              HalfPlane{Eigen::Vector2d(1.0, 1.0), 2.0}};
  for (const HalfPlane& plane : planes) {
    SCOPED_TRACE(::testing::Message() << "normal " << plane.normal.transpose());
    LabelledPolygon polygon = clip_square(1.0, -1);
    clip_polygon(polygon, plane, 3);
    ASSERT_EQ(polygon.vertices.size(), 4u);
    for (std::size_t i = 0; i < 4; ++i) {
      EXPECT_GT((polygon.vertices[(i + 1) % 4] - polygon.vertices[i]).norm(),
                0.0);
    }
  }
}

}  // namespace
}  // namespace fmg
