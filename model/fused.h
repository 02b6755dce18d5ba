// FusedScorer: the CPU inference path for the common case (latent-mean
// scoring, the default). LibTorch's per-operator dispatch, temporaries and
// thread-pool hand-offs cost more than the arithmetic for these small
// networks (a forward pass of the reference model is ~26 kFLOP per
// record), so this path runs the same trained weights through one pass per
// tile of rows: normalise, every layer, the loss terms, all while the tile
// stays in cache, with a register-blocked AVX/FMA kernel when the CPU has
// it and plain loops otherwise. Tests check it against LibTorch's output.
// No LibTorch in this header or its .cc; model/scorer.cc builds it from
// the trained modules.
#ifndef ANOMALYD_MODEL_FUSED_H_
#define ANOMALYD_MODEL_FUSED_H_

#include <cstddef>
#include <functional>
#include <vector>

#include "model/normaliser.h"
#include "proto/anomalyd.pb.h"

namespace anomalyd {

// One linear layer, weights transposed and padded so that every output
// row is a whole number of 8-float vectors: wt is in x out_padded
// (input-major), bias out_padded. Padding weights and biases are zero, so
// padded outputs are zero before the activation, and every supported
// activation maps 0 to 0; the next layer reads only the `in` true inputs.
struct FusedLayer {
  size_t in = 0, out = 0;  // true sizes
  size_t out_padded = 0;   // out rounded up to a multiple of 8
  bool activation = true;  // false for the encoder head and the output
  std::vector<float> wt;
  std::vector<float> bias;
};

struct FusedMember {
  std::vector<FusedLayer> encoder;  // hidden layers, then the head (2*latent)
  std::vector<FusedLayer> decoder;  // hidden layers, then the output (d)
  // GAUSSIAN_LEARNED only, from the clamped decoder log-variance: the
  // per-feature 1/variance and the constant 0.5 * (logvar + log 2 pi).
  std::vector<float> inv_var, constant;
  void SetDecoderLogvar(const float* clamped_logvar, size_t d);
  // Density term (Architecture.density_weight > 0): `centres` kernels as
  // model_impl.h's LatentDensity, inv_var and a transposed to [latent][K].
  size_t centres = 0;
  std::vector<float> density_inv_var, density_a, density_c;
};

// Fills a layer from a PyTorch-layout weight [out][in] and bias [out].
FusedLayer MakeFusedLayer(const float* weight, const float* bias, size_t in,
                          size_t out, bool activation);

class FusedScorer {
 public:
  // `arch` gives dims, activation, likelihood, logvar clamp and the score's
  // KL weight (arch.beta); scores are averaged over `members`.
  FusedScorer(const pb::Architecture& arch, const Normaliser& normaliser,
              std::vector<FusedMember> members);

  // Scores n raw rows (finite, checked by the caller) into rec, kl and
  // score (n each), when contrib is not null contributions (n x d) and,
  // when density is not null and arch.density_weight > 0, the density term
  // (n; averaged over the members).
  // Splits large batches over WorkerPool (model/parallel.h). `scored`, when
  // set, is called with each finished range [begin, end) on the thread that
  // scored it, so per-record work after the scores (p-values) runs in
  // parallel too instead of on the caller afterwards.
  using RangeFn = std::function<void(size_t begin, size_t end)>;
  void Score(const float* rows, size_t n, float* rec, float* kl, float* score,
             float* contrib, const RangeFn& scored = nullptr,
             float* density = nullptr) const;

  // Forces the portable kernel (tests compare both with LibTorch).
  void set_portable(bool portable) { portable_ = portable; }

 private:
  struct Scratch;
  void ScoreTile(const float* rows, size_t n, float* rec, float* kl,
                 float* score, float* contrib, float* density,
                 Scratch& s) const;
  // Runs `layers` on n rows of `in` (row stride ld_in); the last layer
  // writes to `out`, the others to the scratch buffers.
  void Forward(const std::vector<FusedLayer>& layers, const float* in,
               size_t ld_in, size_t n, float* out, Scratch& s) const;
  void Dense(const FusedLayer& layer, const float* in, size_t ld_in, size_t n,
             float* out) const;
  // Adds one member's terms for n rows to the accumulators.
  void AddTerms(const FusedMember& m, const float* x, const float* head,
                const float* y, size_t n, float* rec, float* kl,
                float* contrib) const;
  // One row's density term (posterior-variance part + kernel -log density)
  // from its head (mu, then logvar); q is scratch of m.centres floats.
  float DensityRow(const FusedMember& m, const float* head, float* q) const;

  pb::Architecture arch_;
  size_t d_ = 0, latent_ = 0, d_padded_ = 0, width_ = 0;
  std::vector<double> offset_, inv_scale_;
  Normaliser quantile_;  // used instead of offset_/inv_scale_ when not affine
  std::vector<FusedMember> members_;
  bool portable_ = false;
};

}  // namespace anomalyd

#endif  // ANOMALYD_MODEL_FUSED_H_
