#include "edgeq/runtime/cpu/ops.h"

#include <algorithm>
#include <cmath>

#include "ops-kernels.h"

namespace edgeq::cpu {

namespace {

void rms_norm_scalar(const float* x, const float* w, float* y, int64_t n, float eps) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
    const float r = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
    if (w == nullptr) {
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] * r;
    } else {
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] * r * w[i];
    }
}

}  // namespace

void rope_cos_sin(const RopeParams& params, int32_t n_rot, int32_t pos, float* cos, float* sin) {
    const int32_t half = n_rot / 2;
    const double base = params.freq_base;
    for (int32_t i = 0; i < half; ++i) {
        double theta = static_cast<double>(pos) * params.freq_scale *
                       std::pow(base, -2.0 * i / static_cast<double>(n_rot));
        if (!params.factors.empty()) theta /= params.factors[static_cast<size_t>(i)];
        cos[i] = static_cast<float>(std::cos(theta) * params.attn_factor);
        sin[i] = static_cast<float>(std::sin(theta) * params.attn_factor);
    }
}

void rope_apply(float* x, int32_t n_heads, int32_t head_dim, int32_t n_rot, RopeStyle style,
                const float* cos, const float* sin) {
    const int32_t half = n_rot / 2;
    for (int32_t h = 0; h < n_heads; ++h) {
        float* v = x + static_cast<int64_t>(h) * head_dim;
        for (int32_t i = 0; i < half; ++i) {
            const int32_t a = style == RopeStyle::normal ? 2 * i : i;
            const int32_t b = style == RopeStyle::normal ? 2 * i + 1 : i + half;
            const float x0 = v[a], x1 = v[b];
            v[a] = x0 * cos[i] - x1 * sin[i];
            v[b] = x0 * sin[i] + x1 * cos[i];
        }
    }
}

float silu(float x) {
    return x / (1.0f + std::exp(-x));
}

float gelu_tanh(float x) {
    constexpr float k_sqrt_2_over_pi = 0.7978845608028654f;
    return 0.5f * x * (1.0f + std::tanh(k_sqrt_2_over_pi * (x + 0.044715f * x * x * x)));
}

namespace {

void gated_activation_scalar(Activation act, const float* gate, const float* up, float* out,
                             int64_t n) {
    if (act == Activation::silu) {
        for (int64_t i = 0; i < n; ++i) out[i] = silu(gate[i]) * up[i];
    } else {
        for (int64_t i = 0; i < n; ++i) out[i] = gelu_tanh(gate[i]) * up[i];
    }
}

void soft_cap_scalar(float* x, int64_t n, float cap) {
    const float inv = 1.0f / cap;
    for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] * inv);
}

void exp_row_scalar(const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

}  // namespace

const OpsKernels& ops_for(Isa isa) {
    static const OpsKernels scalar = [] {
        OpsKernels k;
        k.exp_row = exp_row_scalar;
        k.rms_norm = rms_norm_scalar;
        k.gated_activation = gated_activation_scalar;
        k.soft_cap = soft_cap_scalar;
        return k;
    }();
    const OpsKernels* t = isa == Isa::avx512 ? avx512_ops()
                          : isa == Isa::avx2 ? avx2_ops()
                                             : nullptr;
    return t != nullptr ? *t : scalar;
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps, Isa isa) {
    ops_for(isa).rms_norm(x, w, y, n, eps);
}

void gated_activation(Activation act, const float* gate, const float* up, float* out, int64_t n,
                      Isa isa) {
    ops_for(isa).gated_activation(act, gate, up, out, n);
}

void soft_cap(float* x, int64_t n, float cap, Isa isa) {
    ops_for(isa).soft_cap(x, n, cap);
}

void exp_row(const float* x, float* y, int64_t n, Isa isa) {
    ops_for(isa).exp_row(x, y, n);
}

void softmax(float* x, int64_t n) {
    const float max = *std::max_element(x, x + n);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - max);
        sum += x[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace edgeq::cpu
