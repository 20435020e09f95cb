// Scale searches shared by the quantizers.
//
// Every quantizer approximates a group of values x (with importance weights w) by a scale
// times integers, and they all minimise the weighted squared error
//     E = sum_i w_i * (x_i - value_i)^2.
// For a fixed assignment of integers q, the best scale (and offset) is a least-squares
// solution in closed form; for a fixed scale, the best q is rounding. The searches below try a
// grid of candidate scales, keep the assignment with the least error, then alternate the two
// steps until the error stops falling.
#pragma once

#include <cstdint>

namespace edgeq::quant {

// The candidate grid: the largest-magnitude value is mapped to level (edge + k * step) for
// k in [-n_below, n_above]; edge is the outermost level on the side it is mapped to.
struct Grid {
    int n_below;
    int n_above;
    float step;
};

// x ~= s * q, q integer in [qmin, qmax] (qmin < 0 < qmax). Writes q, returns s (0 when all
// x are 0). `error` (optional) receives E.
float fit_symmetric(const float* x, const float* w, int n, int qmin, int qmax, const Grid& grid,
                    int8_t* q, float* error = nullptr);

struct AffineFit {
    float scale;
    float offset;  // value_i = scale * q_i + offset
    float error;
};

// x ~= s * q + b, q integer in [0, qmax]. If `offset_nonpositive`, b <= 0 (the k-quant
// convention: a stored minimum m >= 0 gives b = -m).
AffineFit fit_affine(const float* x, const float* w, int n, int qmax, bool offset_nonpositive,
                     const Grid& grid, uint8_t* q);

// x ~= s * k_iq4_grid[q], q in 0..15. Writes q, returns s.
float fit_iq4(const float* x, const float* w, int n, const Grid& grid, uint8_t* q,
              float* error = nullptr);

// Index of the IQ4 grid value nearest to v.
int nearest_iq4(float v);

// Ternary: x ~= s * q, q in {-1, 0, 1}, exact (the non-zero set is always the largest |x|).
float fit_ternary(const float* x, const float* w, int n, int8_t* q);

// The weights of a group: the importance values, or 1 where there are none (or where all
// of the group's importance is zero, which would leave the scale undetermined).
void group_weights(const float* importance, int n, float* w);

// Rounds to the nearest integer in [lo, hi] (ties to even).
inline int round_clamp(float v, int lo, int hi) {
    const float c = v < static_cast<float>(lo)   ? static_cast<float>(lo)
                    : v > static_cast<float>(hi) ? static_cast<float>(hi)
                                                 : v;
    return static_cast<int>(__builtin_lrintf(c));
}

}  // namespace edgeq::quant
