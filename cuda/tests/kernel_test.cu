// kernel_test: every CUDA kernel against nn's float64 results (tests/testdata/
// kernels_golden.safetensors, written by cuda/gputraces from the Go kernels), in fp32, bf16 and
// fp64; generated starting tensors bit for bit against the host's generation.
// Outputs are poisoned with NaN before each kernel, so an element it forgot to write fails.
// Usage: kernel_test TESTDATA_DIR [filter]
#include <cmath>

#include "../gpu/check.cuh"
#include "../gpu/kernels.cuh"
#include "../host/emit.hpp"
#include "../host/safetensors.hpp"
#include "testing.hpp"

using namespace spx;

// Normwise relative error bounds, max|got−ref| / max|ref|:
// kF32Tol: fp32 unit roundoff 2^-24 ≈ 6e-8 times reduction depths up to ~100 here, with margin
// (METHOD.md: float32 lands far under 1e-3).
constexpr double kF32Tol = 2e-5;
// kBF16Tol: inputs and outputs rounded to bf16 (unit roundoff 2^-8 ≈ 3.9e-3), a few roundings
// deep, accumulation in fp32 (METHOD.md: bf16 operands land between 1e-3 and 1e-2).
constexpr double kBF16Tol = 3e-2;
// kF64Tol: the fp64 kernels are the GPU reference; they differ from nn's float64 only in the
// order of their sums (unit roundoff 2^-53 ≈ 1.1e-16 times depths up to ~100).
constexpr double kF64Tol = 1e-13;

static StFile* g_golden;
static std::string g_testdata;
static Gpu g_gpu;

static DTensor in(const char* key, DType d) {
  const StTensor& t = g_golden->at(key);
  return upload(g_gpu, d, t.shape, g_golden->values(t), key);
}

static DTensor ints(const char* key) {
  const StTensor& t = g_golden->at(key);
  return upload(g_gpu, DType::I32, t.shape, g_golden->values(t), key);
}

static double rel_err(const std::vector<double>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); i++) {
    double e = std::fabs(got[i] - ref[i]);
    if (std::isnan(got[i])) e = INFINITY;
    num = std::max(num, e);
    den = std::max(den, std::fabs(ref[i]));
  }
  return den > 0 ? num / den : num;
}

static void expect(const char* what, DType d, const DTensor& got, const char* key) {
  const StTensor& t = g_golden->at(key);
  std::vector<double> ref = g_golden->values(t);
  CHECK_MSG(got.shape == t.shape, "%s %s: shape %s, want %s", what, dtype_name(d), shape_str(got.shape).c_str(), shape_str(t.shape).c_str());
  if (got.shape != t.shape) return;
  double e = rel_err(download(g_gpu, got), ref);
  double tol = d == DType::F32 ? kF32Tol : d == DType::F64 ? kF64Tol : kBF16Tol;
  std::printf("  %-22s %-4s rel err %.3g (tol %.0e)\n", what, dtype_name(d), e, tol);
  CHECK_MSG(e <= tol, "%s %s: rel err %.3g > %.0e", what, dtype_name(d), e, tol);
}

// expect_tail_zero: every element of tokens ≥ from (dim 1 of [B,S,…]) is exactly 0.
static void expect_tail_zero(const char* what, const DTensor& t, int64_t from) {
  std::vector<double> v = download(g_gpu, t);
  int64_t B = t.shape[0], S = t.shape[1], inner = t.numel() / (B * S), bad = 0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t s = from; s < S; s++)
      for (int64_t i = 0; i < inner; i++) bad += v[(b * S + s) * inner + i] != 0.0;
  CHECK_MSG(bad == 0, "%s: %lld elements of tokens >= %lld are not 0", what, static_cast<long long>(bad), static_cast<long long>(from));
}

static const DType kDTypes[] = {DType::F32, DType::BF16, DType::F64};

TEST(linear) {
  for (DType d : kDTypes) {
    DTensor x = in("linear.x", d), w = in("linear.w", d), dy = in("linear.dy", d);
    expect("linear.y", d, kern::linear(g_gpu, x, w), "linear.y");
    expect("linear.dx", d, kern::linear_grad_input(g_gpu, w, dy, x.shape), "linear.dx");
    expect("linear.dw", d, kern::linear_grad_weight(g_gpu, x, dy), "linear.dw");
  }
}

TEST(rmsnorm) {
  for (DType d : kDTypes) {
    DTensor x = in("rmsnorm.x", d), w = in("rmsnorm.w", d), dy = in("rmsnorm.dy", d), y, rstd, dx, dw;
    kern::rmsnorm(g_gpu, x, w, kern::kRMSNormEps, &y, &rstd);
    expect("rmsnorm.y", d, y, "rmsnorm.y");
    kern::rmsnorm_backward(g_gpu, x, w, rstd, dy, &dx, &dw);
    expect("rmsnorm.dx", d, dx, "rmsnorm.dx");
    expect("rmsnorm.dw", d, dw, "rmsnorm.dw");
  }
}

TEST(rope) {
  for (DType d : kDTypes) {
    DTensor x = in("rope.x", d), pos = ints("rope.pos"), dy = in("rope.dy", d);
    expect("rope.y", d, kern::rope(g_gpu, x, pos, 1), "rope.y");
    expect("rope.dx", d, kern::rope(g_gpu, dy, pos, -1), "rope.dx");
  }
}

TEST(attention) {
  for (DType d : kDTypes) {
    DTensor q = in("attn.q", d), k = in("attn.k", d), v = in("attn.v", d), cu = ints("attn.cu"), dout = in("attn.dout", d);
    DTensor out, probs, dq, dk, dv;
    kern::attention(g_gpu, q, k, v, cu, &out, &probs);
    expect("attn.out", d, out, "attn.out");
    expect("attn.probs", d, probs, "attn.probs");
    kern::attention_backward(g_gpu, q, k, v, probs, dout, cu, &dq, &dk, &dv);
    expect("attn.dq", d, dq, "attn.dq");
    expect("attn.dk", d, dk, "attn.dk");
    expect("attn.dv", d, dv, "attn.dv");
  }
}

// cu_seqlens that end before the row (flash-attn varlen): the tail tokens must come out exactly
// 0 in every output (NaN-poisoned buffers catch an element left unwritten).
TEST(attention_short_cu) {
  for (DType d : kDTypes) {
    DTensor q = in("attn.q", d), k = in("attn.k", d), v = in("attn.v", d), cu = ints("attnshort.cu"), dout = in("attn.dout", d);
    DTensor out, probs, dq, dk, dv;
    kern::attention(g_gpu, q, k, v, cu, &out, &probs);
    expect("attnshort.out", d, out, "attnshort.out");
    expect("attnshort.probs", d, probs, "attnshort.probs");
    kern::attention_backward(g_gpu, q, k, v, probs, dout, cu, &dq, &dk, &dv);
    expect("attnshort.dq", d, dq, "attnshort.dq");
    expect("attnshort.dk", d, dk, "attnshort.dk");
    expect("attnshort.dv", d, dv, "attnshort.dv");
    expect_tail_zero("attnshort.out", out, 9);
    expect_tail_zero("attnshort.dq", dq, 9);
    expect_tail_zero("attnshort.dk", dk, 9);
    expect_tail_zero("attnshort.dv", dv, 9);
  }
}

TEST(swiglu) {
  for (DType d : kDTypes) {
    DTensor gt = in("swiglu.gate", d), up = in("swiglu.up", d), dy = in("swiglu.dy", d), dg, du;
    expect("swiglu.y", d, kern::swiglu(g_gpu, gt, up), "swiglu.y");
    kern::swiglu_backward(g_gpu, gt, up, dy, &dg, &du);
    expect("swiglu.dgate", d, dg, "swiglu.dgate");
    expect("swiglu.dup", d, du, "swiglu.dup");
  }
}

TEST(embedding_exact) {
  // Rows [2, 5) of a 3-row table shard: ids outside give zeros; the backward sums repeated ids.
  for (DType d : kDTypes) {
    DTensor table = upload(g_gpu, d, {3, 2}, {1, 2, 3, 4, 5, 6}, "table");
    DTensor ids = upload(g_gpu, DType::I32, {2, 2}, {2, 7, 4, 2}, "ids");
    CHECK(download(g_gpu, kern::embedding(g_gpu, ids, table, 2)) == (std::vector<double>{1, 2, 0, 0, 5, 6, 1, 2}));
    DTensor dy = upload(g_gpu, d, {2, 2, 2}, {1, 1, 10, 10, 100, 100, 16, 16}, "dy");  // sums exact in bf16
    CHECK(download(g_gpu, kern::embedding_backward(g_gpu, ids, dy, 2, 3)) == (std::vector<double>{17, 17, 0, 0, 100, 100}));
  }
}

TEST(data_movement) {
  for (DType d : {DType::F32, DType::BF16, DType::F64, DType::I32, DType::I64}) {
    std::vector<double> v(24);
    for (int i = 0; i < 24; i++) v[i] = i;
    DTensor x = upload(g_gpu, d, {2, 3, 4}, v, "x");
    DTensor a = kern::narrow(g_gpu, x, 1, 0, 1), b = kern::narrow(g_gpu, x, 1, 1, 2);
    CHECK(download(g_gpu, a) == (std::vector<double>{0, 1, 2, 3, 12, 13, 14, 15}));
    CHECK(download(g_gpu, kern::concat(g_gpu, {a, b}, 1)) == v);
    CHECK(download(g_gpu, kern::convert(g_gpu, x, DType::F32)) == v);
  }
  CHECK_THROWS(kern::narrow(g_gpu, upload(g_gpu, DType::F32, {2}, {1, 2}, "x"), 0, 1, 2), "narrow");
  DTensor h = upload(g_gpu, DType::F32, {3}, {1, 2, 3}, "h");
  CHECK(download(g_gpu, kern::scale(g_gpu, kern::add(g_gpu, h, h), 0.5)) == (std::vector<double>{1, 2, 3}));
  // 1 + 2^-8 + 2^-12 rounds up to 1 + 2^-7 in bf16 (not a tie).
  CHECK(download(g_gpu, kern::convert(g_gpu, upload(g_gpu, DType::F32, {1}, {1 + 0x1p-8 + 0x1p-12}, "t"), DType::BF16))[0] == 1 + 0x1p-7);
}

// Every generated parameter of the golden emitted plan (both ranks: replicated norms, row and
// column shards, a vocab shard with padding rows) comes out of the GPU with exactly the bits the
// host generates and then rounds (encode), in each dtype.
TEST(generate_is_bit_exact) {
  Emitted e = load_emit(g_testdata + "/emit_tp2");
  int checked = 0;
  for (const Program& p : e.programs)
    for (const auto& kv : load_generated(e, p.rank)) {
      std::vector<double> host = generate_host(kv.second, e.info.seed);
      for (DType d : kDTypes) {
        DTensor t = kern::generate(g_gpu, kv.second, e.info.seed, d, kv.first);
        CHECK_MSG(t.shape == kv.second.local_shape(), "%s: shape %s", kv.first.c_str(), shape_str(t.shape).c_str());
        CHECK_MSG(download_bytes(g_gpu, t) == encode(d, host), "rank %d %s %s: GPU bits differ from the host's", p.rank,
                  kv.first.c_str(), dtype_name(d));
      }
      checked++;
    }
  std::printf("  %d generated tensors bit-exact in %zu dtypes\n", checked, sizeof kDTypes / sizeof kDTypes[0]);
  CHECK(checked > 10);
}

// bf16 rounding of doubles on the GPU (convert from F64) matches the host's encode on the
// rounding corner cases of host_golden.json's inputs: ties, near-ties, subnormals, overflow.
TEST(bf16_from_double_rounds_once) {
  std::vector<double> xs = {1 + 0x1p-8, 1 + 3 * 0x1p-8, 1 + 0x1p-8 + 0x1p-30, 1 + 0x1p-8 - 0x1p-40, 0x1.fep127, 0x1.ffp127,
                            0x1.fefffffp127, 1e39, -1e39, 0x1p-126, 0x1p-130, 0x1.8p-133, 0x1p-134, 0x1p-150, -0.0, 3.14159265358979};
  DTensor x = upload(g_gpu, DType::F64, {static_cast<int64_t>(xs.size())}, xs, "x");
  CHECK(download_bytes(g_gpu, kern::convert(g_gpu, x, DType::BF16)) == encode(DType::BF16, xs));
}

TEST(shape_misuse_is_an_error) {
  DTensor x = upload(g_gpu, DType::F32, {2, 3}, std::vector<double>(6, 1), "x");
  DTensor w = upload(g_gpu, DType::F32, {4, 5}, std::vector<double>(20, 1), "w");
  CHECK_THROWS(kern::linear(g_gpu, x, w), "is not [out, 3]");
  DTensor wb = upload(g_gpu, DType::BF16, {4, 3}, std::vector<double>(12, 1), "wb");
  CHECK_THROWS(kern::linear(g_gpu, x, wb), "dtypes differ");
}

TEST(oom_is_a_clear_error) {
  CHECK_THROWS(dalloc(g_gpu, DType::F32, {int64_t(1) << 40}, "huge test tensor"), "out of GPU memory allocating");
  // The device still works afterwards.
  CHECK(download(g_gpu, upload(g_gpu, DType::F32, {1}, {7}, "after"))[0] == 7);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: kernel_test TESTDATA_DIR [filter]\n");
    return 2;
  }
  try {
    g_testdata = argv[1];
    StFile golden = StFile::read(g_testdata + "/kernels_golden.safetensors");
    g_golden = &golden;
    g_gpu.init(0, 0);
    set_alloc_poison(true);
    int rc = spxtest::run_all(argc > 2 ? argv[2] : nullptr);
    g_gpu.destroy();
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernel_test: %s\n", e.what());
    return 1;
  }
}
