// The decoder's elementwise and row operations on floats: RMS norm, rotary embeddings (both
// layouts, with frequency factors and linear scaling), gated activations, soft-capping, softmax.
// Each works on one row (or one token's heads) so the engine can spread rows over threads.
//
// The functions taking an Isa have AVX2 and AVX-512 variants (exp and tanh by polynomials, float
// sums in vector lanes); Isa::scalar runs the reference, which uses libm. They default to
// active_isa().
#pragma once

#include <cstdint>

#include "edgeq/core/cpu.h"
#include "edgeq/model/model-spec.h"

namespace edgeq::cpu {

// y = x / sqrt(mean(x^2) + eps) * w over n values; w may be null (no weight); y may be x.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps,
              Isa isa = active_isa());

// cos and sin (n_rot/2 each) of the angles pos * freq_scale * base^(-2i/n_rot) / factors[i],
// times attn_factor.
void rope_cos_sin(const RopeParams& params, int32_t n_rot, int32_t pos, float* cos, float* sin);

// Rotates the first n_rot values of each of n_heads heads (head_dim apart) in place, pair i by
// the angle whose cos and sin are cos[i], sin[i]. normal pairs (2i, 2i+1); neox pairs
// (i, i + n_rot/2).
void rope_apply(float* x, int32_t n_heads, int32_t head_dim, int32_t n_rot, RopeStyle style,
                const float* cos, const float* sin);

float silu(float x);       // x * sigmoid(x)
float gelu_tanh(float x);  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))

// out[i] = act(gate[i]) * up[i]; out may alias gate or up.
void gated_activation(Activation act, const float* gate, const float* up, float* out, int64_t n,
                      Isa isa = active_isa());

// x = cap * tanh(x / cap), in place.
void soft_cap(float* x, int64_t n, float cap, Isa isa = active_isa());

// y = exp(x) over n values; y may be x. The vector variants are within 2 ulp of exp for results
// above FLT_MIN, flush x < -104 to 0 and keep NaN.
void exp_row(const float* x, float* y, int64_t n, Isa isa = active_isa());

// x = exp(x - max) / sum, in place; n > 0.
void softmax(float* x, int64_t n);

}  // namespace edgeq::cpu
