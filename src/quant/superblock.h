// Two-level quantization of a 256-value k-quant super-block: each sub-block gets its own
// scale (and minimum), and those are themselves quantized to small integers times one F16
// super-block scale. The search fits every sub-block, then tries several super-block scales;
// for each it picks every sub-block's integer scale among the neighbours of its rounding, and
// it finishes with a least-squares refit of the super-block scales, keeping whatever lowers
// the weighted error.
#pragma once

#include <cstdint>

#include "fit.h"

namespace edgeq::quant {

// The super-block scales tried: base * (1 + step * t) for t in [-n_below, n_above], where
// base maps the largest sub-block scale to the edge of the integer range.
struct ScaleTries {
    int n_below;
    int n_above;
    float step;
};

// value = d * sc_j * q_i, integer q in [qmin, qmax] or, for `iq4`, q an index into the IQ4 grid.
struct SymmetricLayout {
    int n_sub;
    int sub_size;
    int qmin;
    int qmax;
    int sc_min;  // the largest-magnitude sub-block scale is mapped to sc_min (< 0)
    int sc_max;
    bool iq4;
    Grid grid;           // the sub-block fit
    Grid weighted_grid;  // the same with importance weights: it reaches further out, since the
                         // largest value may matter little and be better clipped
    ScaleTries tries;
};

struct SymmetricBlock {
    uint16_t d;
    int sc[16];
    int q[256];  // integers in [qmin, qmax], or IQ4 grid indices
};

// `weighted`: w holds importance weights (not all ones), so weighted_grid applies.
void quantize_superblock_symmetric(const float* x, const float* w, bool weighted,
                                   const SymmetricLayout& layout, SymmetricBlock& out);

// value = d * sc_j * q_i - dmin * m_j, q in [0, qmax], sc and m in [0, sc_max].
struct AffineLayout {
    int n_sub;
    int sub_size;
    int qmax;
    int sc_max;
    Grid grid;
    Grid weighted_grid;
    ScaleTries tries;
};

struct AffineBlock {
    uint16_t d;
    uint16_t dmin;
    int sc[16];
    int m[16];
    int q[256];
};

void quantize_superblock_affine(const float* x, const float* w, bool weighted,
                                const AffineLayout& layout, AffineBlock& out);

}  // namespace edgeq::quant
