// Laguerre cells in the plane as convex polygons, and the exact cell masses,
// dual Hessian and transport cost under the standard bivariate normal.
#pragma once

#include <vector>

#include <Eigen/Core>

#include "host/ot/cell_measures.hpp"
#include "host/ot/gaussian_polygon.hpp"

namespace fmg {

/// Returns the Laguerre cell L_k = {x : |x - mu_k|^2 / 2 - psi_k <=
/// |x - mu_j|^2 / 2 - psi_j for all j} of every atom, clipped to the square
/// of half-width gaussian_clip_half_width, as a counter-clockwise polygon.
/// labels[i] of a cell is the atom whose cell shares edge i, or -1 where the
/// edge lies on the clip square.
///
/// atoms is K x 2; psi has K entries, finite or -inf. An atom with psi = -inf
/// gets an empty cell and bounds no other. Of several atoms at the same
/// point only one gets a cell: the one with the largest psi, the lowest
/// index among equal psi (the tie rule of laguerre_cell). Cost O(K^2).
std::vector<LabelledPolygon> laguerre_cells_2d(const PointMatrix& atoms,
                                               const Eigen::VectorXd& psi);

/// Computes the exact masses of the Laguerre cells under N(0, I_2) and the
/// Hessian of the dual (sign convention in CellMeasures). The facet
/// integrals come from gaussian_segment_integral, each averaged over the
/// two cells that share the facet. Masses have an absolute error of about
/// 1e-15; a cell beyond the clip square has mass 0.
///
/// Throws InvalidArgument unless atoms is K x 2 with finite entries and psi
/// has K entries, each finite or -inf.
CellMeasures exact_cell_measures_2d(const PointMatrix& atoms,
                                    const Eigen::VectorXd& psi);

/// Returns the exact transport cost E|T(X) - X|^2 of the map T that sends
/// each Laguerre cell to its atom, for X ~ N(0, I_2), from the mass and the
/// first two moments of every cell (gaussian_polygon_moments). Same
/// arguments and errors as exact_cell_measures_2d.
double exact_transport_cost_2d(const PointMatrix& atoms,
                               const Eigen::VectorXd& psi);

}  // namespace fmg
