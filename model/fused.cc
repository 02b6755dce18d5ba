#include "model/fused.h"

#include "model/parallel.h"
#include "model/score_formula.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#define ANOMALYD_HAVE_AVX_KERNEL 1
#endif

namespace anomalyd {
namespace {

// Rows per tile: the tile's activations (tile x widest layer) stay in L1/L2
// while every layer runs over them. A multiple of the kernel's 6 rows.
constexpr size_t kTile = 48;

size_t RoundUp8(size_t n) { return (n + 7) / 8 * 8; }

float Activate(pb::Activation a, float v) {
  switch (a) {
    case pb::TANH: return std::tanh(v);
    // exp(v) - 1 as LibTorch's ELU computes it (the weights were trained
    // through that), not the more precise expm1.
    case pb::ELU: return v > 0 ? v : std::exp(v) - 1.0f;
    case pb::LEAKY_RELU: return v > 0 ? v : 0.01f * v;
    case pb::SILU: return v / (1.0f + std::exp(-v));
    default: return v > 0 ? v : 0.0f;
  }
}

// out[r][c] = bias[c] + sum_p in[r][p] * wt[p][c], then ReLU if asked:
// the portable kernel, plain loops the compiler vectorises.
void DensePortable(const FusedLayer& l, const float* in, size_t ld_in,
                   size_t n, float* out, bool relu) {
  const size_t w = l.out_padded;
  for (size_t r = 0; r < n; ++r) {
    float* o = out + r * w;
    std::memcpy(o, l.bias.data(), w * sizeof(float));
    for (size_t p = 0; p < l.in; ++p) {
      const float a = in[r * ld_in + p];
      const float* wt = l.wt.data() + p * w;
      for (size_t c = 0; c < w; ++c) o[c] += a * wt[c];
    }
    if (relu) {
      for (size_t c = 0; c < w; ++c) o[c] = o[c] > 0 ? o[c] : 0.0f;
    }
  }
}

#ifdef ANOMALYD_HAVE_AVX_KERNEL
// An MR x (8*NV) block of outputs held in registers (at most 12
// accumulators, 2 weight vectors and a broadcast: 15 of 16 ymm registers)
// while p runs over the inputs: per step NV weight loads, MR broadcasts and
// MR*NV FMAs. Named variables rather than an array: GCC keeps an array of
// accumulators in registers but also stores it to the stack every step,
// which halved the kernel's speed.
#define ANOMALYD_FOR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
template <int MR, int NV>
__attribute__((target("avx,fma"))) inline void MicroAvx(
    const float* in, size_t ld_in, size_t k, const float* wt, size_t ld_w,
    const float* bias, float* out, size_t ld_out, bool relu) {
  const __m256 b0 = _mm256_loadu_ps(bias);
  const __m256 b1 = NV > 1 ? _mm256_loadu_ps(bias + 8) : b0;
#define ANOMALYD_INIT(r) __m256 c##r##0 = b0, c##r##1 = b1;
  ANOMALYD_FOR_ROWS(ANOMALYD_INIT)
#undef ANOMALYD_INIT
  for (size_t p = 0; p < k; ++p) {
    const __m256 w0 = _mm256_loadu_ps(wt + p * ld_w);
    const __m256 w1 = NV > 1 ? _mm256_loadu_ps(wt + p * ld_w + 8) : w0;
#define ANOMALYD_STEP(r)                                          \
    if constexpr (MR > r) {                                       \
      const __m256 a = _mm256_broadcast_ss(in + r * ld_in + p);   \
      c##r##0 = _mm256_fmadd_ps(a, w0, c##r##0);                  \
      if constexpr (NV > 1) c##r##1 = _mm256_fmadd_ps(a, w1, c##r##1); \
    }
    ANOMALYD_FOR_ROWS(ANOMALYD_STEP)
#undef ANOMALYD_STEP
  }
  const __m256 zero = _mm256_setzero_ps();
#define ANOMALYD_STORE(r)                                              \
  if constexpr (MR > r) {                                              \
    _mm256_storeu_ps(out + r * ld_out,                                 \
                     relu ? _mm256_max_ps(c##r##0, zero) : c##r##0);   \
    if constexpr (NV > 1) {                                            \
      _mm256_storeu_ps(out + r * ld_out + 8,                           \
                       relu ? _mm256_max_ps(c##r##1, zero) : c##r##1); \
    }                                                                  \
  }
  ANOMALYD_FOR_ROWS(ANOMALYD_STORE)
#undef ANOMALYD_STORE
}
#undef ANOMALYD_FOR_ROWS

// All column blocks of MR rows: 16 columns at a time, then 8.
template <int MR>
__attribute__((target("avx,fma"))) void RowsAvx(const FusedLayer& l,
                                                const float* in, size_t ld_in,
                                                float* out, bool relu) {
  const size_t w = l.out_padded;
  size_t c = 0;
  for (; c + 16 <= w; c += 16) {
    MicroAvx<MR, 2>(in, ld_in, l.in, l.wt.data() + c, w, l.bias.data() + c,
                    out + c, w, relu);
  }
  if (c < w) {
    MicroAvx<MR, 1>(in, ld_in, l.in, l.wt.data() + c, w, l.bias.data() + c,
                    out + c, w, relu);
  }
}

void DenseAvx(const FusedLayer& l, const float* in, size_t ld_in, size_t n,
              float* out, bool relu) {
  const size_t w = l.out_padded;
  size_t r = 0;
  for (; r + 6 <= n; r += 6) RowsAvx<6>(l, in + r * ld_in, ld_in, out + r * w, relu);
  const float* i = in + r * ld_in;
  float* o = out + r * w;
  switch (n - r) {
    case 5: RowsAvx<5>(l, i, ld_in, o, relu); break;
    case 4: RowsAvx<4>(l, i, ld_in, o, relu); break;
    case 3: RowsAvx<3>(l, i, ld_in, o, relu); break;
    case 2: RowsAvx<2>(l, i, ld_in, o, relu); break;
    case 1: RowsAvx<1>(l, i, ld_in, o, relu); break;
    default: break;
  }
}

bool CpuHasAvxFma() {
  return __builtin_cpu_supports("avx") && __builtin_cpu_supports("fma");
}

// exp of 8 floats: Cephes' expf (range reduction by ln 2, degree-5
// polynomial; ~1 ulp), with the 2^n scaling built in two SSE halves since
// AVX without AVX2 has no 256-bit integer shifts.
__attribute__((target("avx,fma"))) inline __m256 ExpAvx(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 fx = _mm256_floor_ps(
      _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i n = _mm256_cvttps_epi32(fx);
  const __m128i bias = _mm_set1_epi32(127);
  const __m128i lo = _mm_slli_epi32(_mm_add_epi32(_mm256_castsi256_si128(n), bias), 23);
  const __m128i hi = _mm_slli_epi32(_mm_add_epi32(_mm256_extractf128_si256(n, 1), bias), 23);
  const __m256 pow2n = _mm256_castsi256_ps(
      _mm256_insertf128_si256(_mm256_castsi128_si256(lo), hi, 1));
  return _mm256_mul_ps(y, pow2n);
}

__attribute__((target("avx"))) inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// log sum_c exp(q_c) over the kernel centres, q_c = -cst_c + sum_l mu_l *
// a[l][c] - 0.5 mu_l^2 iv[l][c] (model_impl.h's LatentDensity, transposed),
// 32 centres at a time; q is scratch of k floats. Eight accumulators (the
// a- and iv-terms of four groups of 8) keep the FMA units busy: with one
// chain per 8 centres each FMA waited on the last, 1.7 us a record at 256
// centres and 16 latent dimensions.
__attribute__((target("avx,fma"))) float KernelLogSumExpAvx(
    const float* mu, size_t latent, const float* iv, const float* a,
    const float* cst, size_t k, float* q) {
  size_t c = 0;
  for (; c + 32 <= k; c += 32) {
    __m256 pa[4], pv[4];
    for (int g = 0; g < 4; ++g) {
      pa[g] = _mm256_sub_ps(_mm256_setzero_ps(), _mm256_loadu_ps(cst + c + 8 * g));
      pv[g] = _mm256_setzero_ps();
    }
    for (size_t l = 0; l < latent; ++l) {
      const __m256 m = _mm256_set1_ps(mu[l]);
      const __m256 h = _mm256_set1_ps(-0.5f * mu[l] * mu[l]);
      const float* al = a + l * k + c;
      const float* vl = iv + l * k + c;
      for (int g = 0; g < 4; ++g) {
        pa[g] = _mm256_fmadd_ps(m, _mm256_loadu_ps(al + 8 * g), pa[g]);
        pv[g] = _mm256_fmadd_ps(h, _mm256_loadu_ps(vl + 8 * g), pv[g]);
      }
    }
    for (int g = 0; g < 4; ++g) {
      _mm256_storeu_ps(q + c + 8 * g, _mm256_add_ps(pa[g], pv[g]));
    }
  }
  for (; c + 8 <= k; c += 8) {
    __m256 acc = _mm256_sub_ps(_mm256_setzero_ps(), _mm256_loadu_ps(cst + c));
    for (size_t l = 0; l < latent; ++l) {
      acc = _mm256_fmadd_ps(_mm256_set1_ps(mu[l]), _mm256_loadu_ps(a + l * k + c), acc);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(-0.5f * mu[l] * mu[l]),
                            _mm256_loadu_ps(iv + l * k + c), acc);
    }
    _mm256_storeu_ps(q + c, acc);
  }
  for (; c < k; ++c) {
    q[c] = -cst[c];
    for (size_t l = 0; l < latent; ++l) {
      q[c] += mu[l] * a[l * k + c] - 0.5f * mu[l] * mu[l] * iv[l * k + c];
    }
  }
  // The max 8 lanes at a time: std::max_element was a third of the time.
  __m256 vmax = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (c = 0; c + 8 <= k; c += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(q + c));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmax);
  float mx = *std::max_element(lanes, lanes + 8);
  for (; c < k; ++c) mx = std::max(mx, q[c]);
  const __m256 vmx = _mm256_set1_ps(mx);
  __m256 vsum = _mm256_setzero_ps();
  for (c = 0; c + 8 <= k; c += 8) {
    vsum = _mm256_add_ps(vsum, ExpAvx(_mm256_sub_ps(_mm256_loadu_ps(q + c), vmx)));
  }
  float sum = HorizontalSum(vsum);
  for (; c < k; ++c) sum += std::exp(q[c] - mx);
  return mx + std::log(sum);
}

// 0.5 * sum(mu^2 + exp(lv) - 1 - lv) of one row's head, 8 dims at a time.
__attribute__((target("avx,fma"))) float KlAvx(const float* mu, const float* lv,
                                              size_t latent, float lv_min,
                                              float lv_max) {
  __m256 acc = _mm256_setzero_ps();
  const __m256 lo = _mm256_set1_ps(lv_min), hi = _mm256_set1_ps(lv_max);
  const __m256 one = _mm256_set1_ps(1.0f);
  size_t j = 0;
  for (; j + 8 <= latent; j += 8) {
    const __m256 m = _mm256_loadu_ps(mu + j);
    const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(lv + j), lo), hi);
    const __m256 t = _mm256_sub_ps(_mm256_sub_ps(ExpAvx(v), one), v);
    acc = _mm256_add_ps(acc, _mm256_fmadd_ps(m, m, t));
  }
  float k = HorizontalSum(acc);
  for (; j < latent; ++j) {
    const float v = std::clamp(lv[j], lv_min, lv_max);
    k += mu[j] * mu[j] + std::exp(v) - 1.0f - v;
  }
  return 0.5f * k;
}

// sum_j (x_j - y_j)^2 of one row, adding each term to contrib when given.
__attribute__((target("avx,fma"))) float SquaredErrorAvx(const float* x,
                                                        const float* y,
                                                        size_t d,
                                                        float* contrib) {
  __m256 acc = _mm256_setzero_ps();
  size_t j = 0;
  for (; j + 8 <= d; j += 8) {
    const __m256 e = _mm256_sub_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(y + j));
    const __m256 t = _mm256_mul_ps(e, e);
    if (contrib) _mm256_storeu_ps(contrib + j, _mm256_add_ps(_mm256_loadu_ps(contrib + j), t));
    acc = _mm256_add_ps(acc, t);
  }
  float sum = HorizontalSum(acc);
  for (; j < d; ++j) {
    const float t = (x[j] - y[j]) * (x[j] - y[j]);
    if (contrib) contrib[j] += t;
    sum += t;
  }
  return sum;
}

__attribute__((target("avx"))) void NormaliseRowAvx(const float* in, size_t d,
                                                   const double* offset,
                                                   const double* inv_scale,
                                                   float* out) {
  const __m256d lo = _mm256_set1_pd(-Normaliser::kClip);
  const __m256d hi = _mm256_set1_pd(Normaliser::kClip);
  size_t j = 0;
  for (; j + 4 <= d; j += 4) {
    __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(in + j));
    x = _mm256_mul_pd(_mm256_sub_pd(x, _mm256_loadu_pd(offset + j)),
                      _mm256_loadu_pd(inv_scale + j));
    _mm_storeu_ps(out + j, _mm256_cvtpd_ps(_mm256_min_pd(_mm256_max_pd(x, lo), hi)));
  }
  for (; j < d; ++j) {
    const double x = (static_cast<double>(in[j]) - offset[j]) * inv_scale[j];
    out[j] = static_cast<float>(std::clamp<double>(x, -Normaliser::kClip, Normaliser::kClip));
  }
}
#else
bool CpuHasAvxFma() { return false; }
#endif

// As Normaliser::Apply, in double so that no finite input overflows before
// the clip, but multiplying by 1/scale (exact to a float's precision).
void NormaliseRow(const float* in, size_t d, const double* offset,
                  const double* inv_scale, float* out, bool portable) {
#ifdef ANOMALYD_HAVE_AVX_KERNEL
  if (!portable) {
    NormaliseRowAvx(in, d, offset, inv_scale, out);
    return;
  }
#endif
  (void)portable;
  for (size_t j = 0; j < d; ++j) {
    const double x = (static_cast<double>(in[j]) - offset[j]) * inv_scale[j];
    out[j] = static_cast<float>(std::clamp<double>(x, -Normaliser::kClip, Normaliser::kClip));
  }
}

}  // namespace

FusedLayer MakeFusedLayer(const float* weight, const float* bias, size_t in,
                          size_t out, bool activation) {
  FusedLayer l;
  l.in = in;
  l.out = out;
  l.out_padded = RoundUp8(out);
  l.activation = activation;
  l.wt.assign(in * l.out_padded, 0.0f);
  l.bias.assign(l.out_padded, 0.0f);
  for (size_t o = 0; o < out; ++o) {
    for (size_t p = 0; p < in; ++p) l.wt[p * l.out_padded + o] = weight[o * in + p];
    l.bias[o] = bias[o];
  }
  return l;
}

void FusedMember::SetDecoderLogvar(const float* lv, size_t d) {
  inv_var.resize(d);
  constant.resize(d);
  for (size_t j = 0; j < d; ++j) {
    inv_var[j] = std::exp(-lv[j]);
    constant[j] = 0.5f * (lv[j] + static_cast<float>(std::log(2.0 * M_PI)));
  }
}

// Per-thread buffers for one tile: the normalised input, two ping-pong
// buffers for hidden layers, the encoder head and the decoder output.
struct FusedScorer::Scratch {
  std::vector<float> x, a, b, head, y, density, q;
  void Reserve(size_t d_padded, size_t width, size_t head_width) {
    density.resize(kTile);
    x.resize(kTile * d_padded);
    a.resize(kTile * width);
    b.resize(kTile * width);
    head.resize(kTile * head_width);
    y.resize(kTile * d_padded);
  }
};

FusedScorer::FusedScorer(const pb::Architecture& arch,
                         const Normaliser& normaliser,
                         std::vector<FusedMember> members)
    : arch_(arch), members_(std::move(members)) {
  d_ = arch.input_dim();
  latent_ = arch.latent_dim();
  d_padded_ = RoundUp8(d_);
  for (const FusedMember& m : members_) {
    for (const auto* layers : {&m.encoder, &m.decoder}) {
      for (const FusedLayer& l : *layers) width_ = std::max(width_, l.out_padded);
    }
  }
  if (!normaliser.affine()) quantile_ = normaliser;
  offset_.assign(normaliser.offset().begin(), normaliser.offset().end());
  for (float scale : normaliser.scale()) inv_scale_.push_back(1.0 / scale);
  portable_ = !CpuHasAvxFma();
}

void FusedScorer::Dense(const FusedLayer& l, const float* in, size_t ld_in,
                        size_t n, float* out) const {
  const bool relu = l.activation && arch_.activation() == pb::RELU;
#ifdef ANOMALYD_HAVE_AVX_KERNEL
  if (!portable_) {
    DenseAvx(l, in, ld_in, n, out, relu);
  } else {
    DensePortable(l, in, ld_in, n, out, relu);
  }
#else
  DensePortable(l, in, ld_in, n, out, relu);
#endif
  if (l.activation && !relu) {
    for (size_t i = 0; i < n * l.out_padded; ++i) {
      out[i] = Activate(arch_.activation(), out[i]);
    }
  }
}

void FusedScorer::Forward(const std::vector<FusedLayer>& layers,
                          const float* in, size_t ld_in, size_t n, float* out,
                          Scratch& s) const {
  float* bufs[2] = {s.a.data(), s.b.data()};
  for (size_t i = 0; i < layers.size(); ++i) {
    float* dst = i + 1 == layers.size() ? out : bufs[i % 2];
    Dense(layers[i], in, ld_in, n, dst);
    in = dst;
    ld_in = layers[i].out_padded;
  }
}

namespace {

// Per-feature reconstruction term t (the contribution) and the constant
// the full likelihood adds, for each supported likelihood; the loops below
// are instantiated per likelihood so they carry no branch per feature.
struct GaussianTerm {
  float operator()(float x, float y, size_t) const {
    const float e = x - y;
    return e * e;
  }
  float constant(size_t) const { return 0.0f; }
};

struct LearnedGaussianTerm {
  const float* inv_var;   // exp(-logvar), clamped logvar
  const float* constant_; // 0.5 * (logvar + log 2 pi)
  float operator()(float x, float y, size_t j) const {
    const float e = x - y;
    return 0.5f * e * e * inv_var[j];
  }
  float constant(size_t j) const { return constant_[j]; }
};

struct BernoulliTerm {
  float operator()(float x, float z, size_t) const {
    const float target = std::clamp(x, 0.0f, 1.0f);
    const float outside = (x - target) * (x - target);
    return std::max(z, 0.0f) - z * target + std::log1p(std::exp(-std::fabs(z))) +
           outside;
  }
  float constant(size_t) const { return 0.0f; }
};

void KlRows(const float* head, size_t hw, size_t n, size_t latent,
            float lv_min, float lv_max, float* kl) {
  for (size_t r = 0; r < n; ++r) {
    const float* h = head + r * hw;
    float k = 0;
    for (size_t j = 0; j < latent; ++j) {
      const float lv = std::clamp(h[latent + j], lv_min, lv_max);
      k += h[j] * h[j] + std::exp(lv) - 1.0f - lv;
    }
    kl[r] += 0.5f * k;
  }
}

template <typename Term>
void ReconstructionRows(const Term& term, const float* x, const float* y,
                        size_t n, size_t d, size_t ld, float* rec,
                        float* contrib) {
  float constant = 0;
  for (size_t j = 0; j < d; ++j) constant += term.constant(j);
  for (size_t r = 0; r < n; ++r) {
    const float* xr = x + r * ld;
    const float* yr = y + r * ld;
    float sum = 0;
    if (contrib) {
      float* cr = contrib + r * d;
      for (size_t j = 0; j < d; ++j) {
        const float t = term(xr[j], yr[j], j);
        cr[j] += t;
        sum += t;
      }
    } else {
      for (size_t j = 0; j < d; ++j) sum += term(xr[j], yr[j], j);
    }
    rec[r] += sum + constant;
  }
}

}  // namespace

void FusedScorer::AddTerms(const FusedMember& m, const float* x,
                           const float* head, const float* y, size_t n,
                           float* rec, float* kl, float* contrib) const {
  const size_t hw = m.encoder.back().out_padded;
  const float lv_min = arch_.logvar_min(), lv_max = arch_.logvar_max();
#ifdef ANOMALYD_HAVE_AVX_KERNEL
  if (!portable_) {
    for (size_t r = 0; r < n; ++r) {
      const float* h = head + r * hw;
      kl[r] += KlAvx(h, h + latent_, latent_, lv_min, lv_max);
    }
    if (arch_.likelihood() == pb::GAUSSIAN) {
      for (size_t r = 0; r < n; ++r) {
        rec[r] += SquaredErrorAvx(x + r * d_padded_, y + r * d_padded_, d_,
                                  contrib ? contrib + r * d_ : nullptr);
      }
      return;
    }
  } else {
    KlRows(head, hw, n, latent_, lv_min, lv_max, kl);
  }
#else
  KlRows(head, hw, n, latent_, lv_min, lv_max, kl);
#endif
  switch (arch_.likelihood()) {
    case pb::BERNOULLI:
      ReconstructionRows(BernoulliTerm{}, x, y, n, d_, d_padded_, rec, contrib);
      break;
    case pb::GAUSSIAN_LEARNED:
      ReconstructionRows(LearnedGaussianTerm{m.inv_var.data(), m.constant.data()},
                         x, y, n, d_, d_padded_, rec, contrib);
      break;
    default:
      ReconstructionRows(GaussianTerm{}, x, y, n, d_, d_padded_, rec, contrib);
      break;
  }
}

float FusedScorer::DensityRow(const FusedMember& m, const float* head,
                              float* q) const {
  const float lv_min = arch_.logvar_min(), lv_max = arch_.logvar_max();
  const size_t k = m.centres;
  float var = 0;
  for (size_t l = 0; l < latent_; ++l) {
    const float lv = std::clamp(head[latent_ + l], lv_min, lv_max);
    var += 0.5f * (std::exp(lv) - 1.0f - lv);
  }
#ifdef ANOMALYD_HAVE_AVX_KERNEL
  if (!portable_) {
    return var + std::log(static_cast<float>(k)) -
           KernelLogSumExpAvx(head, latent_, m.density_inv_var.data(),
                              m.density_a.data(), m.density_c.data(), k, q);
  }
#endif
  for (size_t c = 0; c < k; ++c) q[c] = -m.density_c[c];
  for (size_t l = 0; l < latent_; ++l) {
    const float mu = head[l], half_sq = -0.5f * head[l] * head[l];
    const float* iv = m.density_inv_var.data() + l * k;
    const float* a = m.density_a.data() + l * k;
    for (size_t c = 0; c < k; ++c) q[c] += mu * a[c] + half_sq * iv[c];
  }
  const float mx = *std::max_element(q, q + k);
  float sum = 0;
  for (size_t c = 0; c < k; ++c) sum += std::exp(q[c] - mx);
  return var + std::log(static_cast<float>(k)) - (mx + std::log(sum));
}

void FusedScorer::ScoreTile(const float* rows, size_t n, float* rec,
                            float* kl, float* score, float* contrib,
                            float* density, Scratch& s) const {
  if (quantile_.dim() != 0) {
    quantile_.Apply(rows, s.x.data(), n, d_padded_);
  } else {
    for (size_t r = 0; r < n; ++r) {
      NormaliseRow(rows + r * d_, d_, offset_.data(), inv_scale_.data(),
                   s.x.data() + r * d_padded_, portable_);
    }
  }
  std::fill(rec, rec + n, 0.0f);
  std::fill(kl, kl + n, 0.0f);
  const float density_weight = arch_.density_weight();
  if (density_weight > 0) std::fill(s.density.begin(), s.density.begin() + n, 0.0f);
  if (contrib) std::fill(contrib, contrib + n * d_, 0.0f);
  for (const FusedMember& m : members_) {
    Forward(m.encoder, s.x.data(), d_padded_, n, s.head.data(), s);
    // The decoder reads the latent mean: the first `latent_` head outputs.
    Forward(m.decoder, s.head.data(), m.encoder.back().out_padded, n, s.y.data(), s);
    AddTerms(m, s.x.data(), s.head.data(), s.y.data(), n, rec, kl, contrib);
    if (density_weight > 0) {
      const size_t hw = m.encoder.back().out_padded;
      s.q.resize(m.centres);
      for (size_t r = 0; r < n; ++r) {
        s.density[r] += DensityRow(m, s.head.data() + r * hw, s.q.data());
      }
    }
  }
  const float inv = 1.0f / static_cast<float>(members_.size());
  const ScoreWeights w = ScoreWeights::Of(arch_);
  for (size_t r = 0; r < n; ++r) {
    if (members_.size() > 1) {
      rec[r] *= inv;
      kl[r] *= inv;
    }
    if (w.has_density()) {
      const float dens = s.density[r] * inv;
      score[r] = CombineScore(rec[r], kl[r], dens, w);
      if (density) density[r] = dens;
    } else {
      score[r] = CombineScore(rec[r], kl[r], w);
    }
  }
  if (contrib && members_.size() > 1) {
    for (size_t i = 0; i < n * d_; ++i) contrib[i] *= inv;
  }
}

void FusedScorer::Score(const float* rows, size_t n, float* rec, float* kl,
                        float* score, float* contrib,
                        const RangeFn& scored, float* density) const {
  const size_t head_width = members_.front().encoder.back().out_padded;
  auto run = [&](size_t begin, size_t end) {
    thread_local Scratch s;
    s.Reserve(d_padded_, width_, head_width);
    for (size_t t = begin; t < end; t += kTile) {
      const size_t m = std::min(kTile, end - t);
      ScoreTile(rows + t * d_, m, rec + t, kl + t, score + t,
                contrib ? contrib + t * d_ : nullptr,
                density ? density + t : nullptr, s);
    }
    if (scored) scored(begin, end);
  };
  // Small batches stay on the calling thread: waking the pool costs more
  // than a few tiles of arithmetic.
  if (n <= 4 * kTile) {
    run(0, n);
    return;
  }
  const size_t tiles = (n + kTile - 1) / kTile;
  WorkerPool::Instance().Run(tiles, [&](size_t t) {
    run(t * kTile, std::min(n, (t + 1) * kTile));
  });
}

}  // namespace anomalyd
