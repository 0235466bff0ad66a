#include "executor.cuh"

#include <cublas_v2.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "check.cuh"
#include "kernels.cuh"

namespace spx {

namespace {

struct Interp {
  const Gpu& g;
  RankComms& comms;
  const Program& p;
  const ExecConfig& cfg;
  std::map<std::string, DTensor> syms;
  TraceWriter* out;
  ExecTimes* times;
  size_t index = 0;
  bool tracing = true;                                 // this run records its trace ops
  std::map<std::vector<int64_t>, DTensor> int_cache;  // uploaded integer attributes (positions, cu_seqlens)

  const DTensor& sym(const std::string& s) {
    auto it = syms.find(s);
    if (it == syms.end()) fail(thread_context(), ": symbol \"", s, "\" is not defined");
    return it->second;
  }
  void bind(const std::string& s, DTensor t) { syms[s] = std::move(t); }

  // Operand views in the dtype a kernel needs (converted copies when they differ).
  DTensor as(const DTensor& t, DType d) { return t.dtype == d ? t : kern::convert(g, t, d); }
  DTensor work(const DTensor& t) { return as(t, dtype_is_float(t.dtype) && t.dtype != DType::F64 ? t.dtype : cfg.dtype); }
  DTensor wk(const std::string& s) { return as(sym(s), cfg.dtype); }
  DTensor stat(const std::string& s) { return as(sym(s), kern::stat_dtype(cfg.dtype)); }
  DTensor ids(const std::string& s) { return as(sym(s), DType::I32); }

  // ints_tensor uploads an op's integer attribute once per run (uploads synchronise).
  DTensor ints_tensor(const std::vector<int64_t>& v, const char* what) {
    auto it = int_cache.find(v);
    if (it != int_cache.end()) return it->second;
    std::vector<double> d(v.begin(), v.end());
    return int_cache[v] = upload(g, DType::I32, {static_cast<int64_t>(v.size())}, d, what);
  }

  static int dim_of(const IrOp& o, const DTensor& t) {
    int64_t d = o.i("dim");
    if (d < 0 || d >= static_cast<int64_t>(t.shape.size()))
      fail(thread_context(), ": dim ", d, " of a rank-", t.shape.size(), " tensor ", t.str());
    return static_cast<int>(d);
  }

  std::string what(const IrOp& o) const { return cat("op #", index, " ", o.str()); }

  void run_local(const IrOp& o);
  void run_collective(const IrOp& o);
  void run_p2p(const IrOp& o);
  void run_trace(const IrOp& o);
};

void Interp::run_local(const IrOp& o) {
  const std::string& op = o.op;
  auto in = [&](size_t k) -> const DTensor& { return sym(o.in.at(k)); };
  if (op == "zeros") {
    bind(o.out[0], dzeros(g, cfg.dtype, o.il("shape"), o.out[0]));
  } else if (op == "copy") {
    const DTensor& x = in(0);
    DTensor y = dalloc(g, x.dtype, x.shape, o.out[0]);
    if (x.bytes()) CUDA_OK(cudaMemcpyAsync(y.data(), x.data(), x.bytes(), cudaMemcpyDeviceToDevice, g.stream));
    bind(o.out[0], y);
  } else if (op == "add") {
    DTensor a = work(in(0));
    if (in(0).shape != in(1).shape) fail(thread_context(), ": add of ", in(0).str(), " and ", in(1).str());
    bind(o.out[0], kern::add(g, a, as(in(1), a.dtype)));
  } else if (op == "scale") {
    bind(o.out[0], kern::scale(g, work(in(0)), o.f("c")));
  } else if (op == "reshape") {
    DTensor y = in(0);  // shares the buffer: kernels never write their inputs
    if (numel_of(o.il("shape")) != y.numel()) fail(thread_context(), ": reshape ", y.str(), " to ", shape_str(o.il("shape")));
    y.shape = o.il("shape");
    bind(o.out[0], y);
  } else if (op == "narrow") {
    bind(o.out[0], kern::narrow(g, in(0), dim_of(o, in(0)), o.i("start"), o.i("len")));
  } else if (op == "pad") {
    const DTensor& x = in(0);
    int d = dim_of(o, x);
    int64_t before = o.i("before"), after = o.i("after");
    if (before < 0 || after < 0) fail(thread_context(), ": negative padding");
    std::vector<int64_t> s = x.shape;
    s[d] += before + after;
    DTensor y = dzeros(g, x.dtype, s, o.out[0]);
    int64_t outer, inner;
    kern::outer_inner(x.shape, d, &outer, &inner);
    kern::copy_block(g, x, x.shape[d], 0, y, s[d], before, outer, x.shape[d], inner);
    bind(o.out[0], y);
  } else if (op == "concat") {
    std::vector<DTensor> parts;
    for (const auto& s : o.in) parts.push_back(sym(s));
    bind(o.out[0], kern::concat(g, parts, dim_of(o, parts[0])));
  } else if (op == "split") {
    const DTensor& x = in(0);
    int d = dim_of(o, x);
    const auto& sizes = o.il("sizes");
    if (sizes.size() != o.out.size()) fail(thread_context(), ": split into ", sizes.size(), " sizes but ", o.out.size(), " outputs");
    int64_t off = 0;
    for (size_t k = 0; k < sizes.size(); k++) {
      bind(o.out[k], kern::narrow(g, x, d, off, sizes[k]));
      off += sizes[k];
    }
    if (off != x.shape[d]) fail(thread_context(), ": split sizes sum to ", off, ", dim is ", x.shape[d]);
  } else if (op == "flat_chunk") {
    const DTensor& x = in(0);
    int64_t parts = o.i("parts"), idx = o.i("index"), n = x.numel();
    if (parts < 1 || idx < 0 || idx >= parts || n % parts != 0)
      fail(thread_context(), ": flat chunk ", idx, " of ", parts, " of ", n, " elements");
    DTensor flat = x;
    flat.shape = {n};
    bind(o.out[0], kern::narrow(g, flat, 0, idx * (n / parts), n / parts));
  } else if (op == "embedding") {
    bind(o.out[0], kern::embedding(g, ids(o.in[0]), wk(o.in[1]), o.i("offset")));
  } else if (op == "embedding_grad") {
    bind(o.out[0], kern::embedding_backward(g, ids(o.in[0]), wk(o.in[1]), o.i("offset"), o.i("rows")));
  } else if (op == "linear") {
    bind(o.out[0], kern::linear(g, wk(o.in[0]), wk(o.in[1])));
  } else if (op == "linear_grad_input") {
    DTensor dy = wk(o.in[0]), w = wk(o.in[1]);
    if (w.shape.size() != 2 || dy.shape.empty()) fail(thread_context(), ": linear_grad_input of dy ", dy.str(), " and weight ", w.str());
    std::vector<int64_t> xs(dy.shape.begin(), dy.shape.end() - 1);
    xs.push_back(w.shape[1]);
    bind(o.out[0], kern::linear_grad_input(g, w, dy, xs));
  } else if (op == "linear_grad_weight") {
    bind(o.out[0], kern::linear_grad_weight(g, wk(o.in[1]), wk(o.in[0])));
  } else if (op == "rmsnorm") {
    DTensor y, rstd;
    kern::rmsnorm(g, wk(o.in[0]), wk(o.in[1]), kern::kRMSNormEps, &y, &rstd);
    bind(o.out[0], y);
    bind(o.out[1], rstd);
  } else if (op == "rmsnorm_grad") {
    DTensor dx, dw;
    kern::rmsnorm_backward(g, wk(o.in[0]), wk(o.in[1]), stat(o.in[2]), wk(o.in[3]), &dx, &dw);
    bind(o.out[0], dx);
    bind(o.out[1], dw);
  } else if (op == "rope" || op == "rope_grad") {
    bind(o.out[0], kern::rope(g, wk(o.in[0]), ints_tensor(o.il("pos"), "rope positions"), op == "rope" ? 1 : -1));
  } else if (op == "attention") {
    DTensor outp, probs;
    kern::attention(g, wk(o.in[0]), wk(o.in[1]), wk(o.in[2]), ints_tensor(o.il("cu"), "cu_seqlens"), &outp, &probs);
    bind(o.out[0], outp);
    bind(o.out[1], probs);
  } else if (op == "attention_grad") {
    DTensor dq, dk, dv;
    kern::attention_backward(g, wk(o.in[0]), wk(o.in[1]), wk(o.in[2]), stat(o.in[3]), wk(o.in[4]), ints_tensor(o.il("cu"), "cu_seqlens"),
                             &dq, &dk, &dv);
    bind(o.out[0], dq);
    bind(o.out[1], dk);
    bind(o.out[2], dv);
  } else if (op == "swiglu") {
    bind(o.out[0], kern::swiglu(g, wk(o.in[0]), wk(o.in[1])));
  } else if (op == "swiglu_grad") {
    DTensor dg, du;
    kern::swiglu_backward(g, wk(o.in[0]), wk(o.in[1]), wk(o.in[2]), &dg, &du);
    bind(o.out[0], dg);
    bind(o.out[1], du);
  } else if (op == "vocab_max") {
    bind(o.out[0], kern::vocab_max(g, wk(o.in[0]), o.i("valid")));
  } else if (op == "vocab_sumexp") {
    bind(o.out[0], kern::vocab_sumexp(g, wk(o.in[0]), stat(o.in[1]), o.i("valid")));
  } else if (op == "vocab_target") {
    bind(o.out[0], kern::vocab_target(g, wk(o.in[0]), ids(o.in[1]), o.i("offset"), o.i("valid")));
  } else if (op == "ce_loss") {
    bind(o.out[0], kern::ce_loss(g, stat(o.in[0]), stat(o.in[1]), stat(o.in[2]), stat(o.in[3])));
  } else if (op == "ce_grad") {
    bind(o.out[0], kern::ce_grad(g, wk(o.in[0]), stat(o.in[1]), stat(o.in[2]), ids(o.in[3]), stat(o.in[4]), o.i("offset"), o.i("valid"),
                                 o.f("scale")));
  } else {
    fail(thread_context(), ": no GPU kernel for local op \"", op, "\"");
  }
}

// blocks_to_front lays a tensor out so that chunk k along dim (k = 0…n−1, each of c rows) is the
// k-th contiguous block: the flat layout NCCL's reduce_scatter splits and all_gather fills.
DTensor blocks_to_front(const Gpu& g, const DTensor& x, int dim, int64_t n) {
  if (dim == 0) return x;
  int64_t outer, inner, c = x.shape[dim] / n;
  kern::outer_inner(x.shape, dim, &outer, &inner);
  DTensor y = dalloc(g, x.dtype, x.shape, "collective staging buffer");
  // y viewed as [n, outer, c, inner]; block k = x[:, k·c:(k+1)·c, :]
  for (int64_t k = 0; k < n; k++) {
    DTensor yk = y;  // a view of block k: shift the pointer
    yk.buf = std::shared_ptr<void>(y.buf, y.as<uint8_t>() + k * outer * c * inner * dtype_size(y.dtype));
    yk.shape = {outer, c, inner};
    kern::copy_block(g, x, x.shape[dim], k * c, yk, c, 0, outer, c, inner);
  }
  return y;
}

// blocks_from_front is the inverse: block k of the flat buffer (shape `part`) goes to rows
// k·c… of dim in the result of shape `full`.
DTensor blocks_from_front(const Gpu& g, const DTensor& flat, const std::vector<int64_t>& part, int dim, int64_t n,
                          const std::string& what) {
  std::vector<int64_t> full = part;
  full[dim] *= n;
  DTensor y = dalloc(g, flat.dtype, full, what);
  int64_t outer, inner, c = part[dim];
  kern::outer_inner(part, dim, &outer, &inner);
  for (int64_t k = 0; k < n; k++) {
    DTensor fk = flat;
    fk.buf = std::shared_ptr<void>(flat.buf, flat.as<uint8_t>() + k * outer * c * inner * dtype_size(flat.dtype));
    fk.shape = part;
    kern::copy_block(g, fk, c, 0, y, full[dim], k * c, outer, c, inner);
  }
  return y;
}

void Interp::run_collective(const IrOp& o) {
  const std::vector<int>& ranks = o.group.ranks;
  int64_t n = static_cast<int64_t>(ranks.size());
  std::string w = what(o);
  if (o.op == "all_reduce") {
    const DTensor& x = sym(o.in[0]);
    DTensor y = dalloc(g, x.dtype, x.shape, o.out[0]);
    if (x.bytes()) CUDA_OK(cudaMemcpyAsync(y.data(), x.data(), x.bytes(), cudaMemcpyDeviceToDevice, g.stream));
    comms.all_reduce(ranks, y, o.s("reduce") == "max" ? ncclMax : ncclSum, w);
    bind(o.out[0], y);
  } else if (o.op == "all_gather") {
    const DTensor& x = sym(o.in[0]);
    int d = dim_of(o, x);
    std::vector<int64_t> gs = x.shape;
    gs[0] *= n;  // NCCL's flat result: the members' tensors one after another
    DTensor flat = dalloc(g, x.dtype, gs, "all_gather buffer");
    comms.all_gather(ranks, x, flat, w);
    if (d == 0) {
      bind(o.out[0], flat);
    } else {
      bind(o.out[0], blocks_from_front(g, flat, x.shape, d, n, o.out[0]));
    }
  } else if (o.op == "reduce_scatter") {
    const DTensor& x = sym(o.in[0]);
    int d = dim_of(o, x);
    if (x.shape[d] % n != 0) fail(thread_context(), ": ", w, ": dim ", d, " of ", x.str(), " does not split into ", n);
    DTensor staged = blocks_to_front(g, x, d, n);
    std::vector<int64_t> os = x.shape;
    os[d] /= n;
    DTensor y = dalloc(g, x.dtype, os, o.out[0]);
    comms.reduce_scatter(ranks, staged, y, ncclSum, w);
    bind(o.out[0], y);
  } else if (o.op == "broadcast") {
    int root = static_cast<int>(o.i("root"));
    bool is_root = ranks.at(root) == p.rank;
    // The receivers learn the shape and dtype from the root first: [ndim, dtype, dims…].
    constexpr int kMaxDims = 14;
    std::vector<double> hdr(2 + kMaxDims, 0);
    if (is_root) {
      const DTensor& x = sym(o.in[0]);
      if (x.shape.size() > kMaxDims) fail(thread_context(), ": broadcast of a rank-", x.shape.size(), " tensor");
      hdr[0] = static_cast<double>(x.shape.size());
      hdr[1] = static_cast<double>(static_cast<int>(x.dtype));
      for (size_t i = 0; i < x.shape.size(); i++) hdr[2 + i] = static_cast<double>(x.shape[i]);
    }
    DTensor h = upload(g, DType::I64, {static_cast<int64_t>(hdr.size())}, hdr, "broadcast header");
    comms.broadcast(ranks, h, root, w + " (shape)");
    std::vector<double> hv = download(g, h);
    std::vector<int64_t> shape;
    for (int i = 0; i < static_cast<int>(hv[0]); i++) shape.push_back(static_cast<int64_t>(hv[2 + i]));
    DTensor y = dalloc(g, static_cast<DType>(static_cast<int>(hv[1])), shape, o.out[0]);
    if (is_root && y.bytes())
      CUDA_OK(cudaMemcpyAsync(y.data(), sym(o.in[0]).data(), y.bytes(), cudaMemcpyDeviceToDevice, g.stream));
    comms.broadcast(ranks, y, root, w);
    bind(o.out[0], y);
  } else if (o.op == "all_gather_flat") {
    const DTensor& x = sym(o.in[0]);
    const auto& shape = o.il("shape");
    if (x.numel() * n != numel_of(shape))
      fail(thread_context(), ": ", w, ": ", n, " chunks of ", x.numel(), " elements into shape ", shape_str(shape));
    DTensor y = dalloc(g, x.dtype, shape, o.out[0]);
    comms.all_gather(ranks, x, y, w);
    bind(o.out[0], y);
  } else {
    fail(thread_context(), ": no GPU implementation of collective \"", o.op, "\"");
  }
}

void Interp::run_p2p(const IrOp& o) {
  std::vector<P2POp> ops;
  std::vector<DTensor> bufs;
  bufs.reserve(o.p2p.size());
  for (const IrTransfer& t : o.p2p) {
    if (t.send) {
      // Sent tensors travel in the plan's dtype: the receiver allocates that from the shape.
      DTensor x = as(sym(t.sym), cfg.dtype);
      if (x.shape != t.shape) fail(thread_context(), ": ", what(o), ": sends ", t.sym, " ", x.str(), " declared ", shape_str(t.shape));
      bufs.push_back(x);
    } else {
      bufs.push_back(dalloc(g, cfg.dtype, t.shape, t.sym));
    }
  }
  for (size_t k = 0; k < o.p2p.size(); k++) ops.push_back(P2POp{o.p2p[k].send, o.p2p[k].peer, &bufs[k]});
  comms.p2p(ops, what(o));
  for (size_t k = 0; k < o.p2p.size(); k++)
    if (!o.p2p[k].send) bind(o.p2p[k].sym, bufs[k]);
}

void Interp::run_trace(const IrOp& o) {
  if (!tracing) return;
  const IrTag& t = o.trace;
  if (!cfg.dump_all && !dump_matches(cfg.dump, t.name)) {
    times->skipped++;
    return;
  }
  auto t0 = std::chrono::steady_clock::now();
  const DTensor& x = sym(o.in[0]);
  DType d = t.kind == "input" ? DType::I64 : cfg.info.dtype;
  TensorMeta tm{t.name, t.kind, t.order, t.place, t.shape, t.coord};
  // Converted on the GPU (rounding to nearest even, as the host's encode does), then streamed
  // back into the writer's spill file (no host copy of the tensor is kept).
  DTensor y = as(x, d);
  out->add_stream(t.key, tm, d, x.shape, y.bytes(), [&](FILE* f) {
    download_stream(g, y, [&](const void* p, size_t n) {
      if (std::fwrite(p, 1, n, f) != n) fail(thread_context(), ": writing the trace spill file failed");
    });
  });
  times->trace_bytes += y.bytes();
  times->traced++;
  times->trace += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TraceWriter execute_rank(const Gpu& g, RankComms& comms, const Program& p, const StFile& init,
                         const std::map<std::string, GenTensor>& gen, const ExecConfig& cfg, ExecTimes* times) {
  if (cfg.dtype != DType::F32 && cfg.dtype != DType::BF16 && cfg.dtype != DType::F64)
    fail("the GPU executor computes in F32, BF16 or F64, not ", dtype_name(cfg.dtype));
  using clock = std::chrono::steady_clock;
  auto secs = [](clock::time_point a) { return std::chrono::duration<double>(clock::now() - a).count(); };
  TraceMeta meta;
  meta.rank = p.rank;
  meta.world = p.world;
  meta.mesh_axes = cfg.info.trace_axes;
  meta.mesh_shape = cfg.info.trace_shape;
  meta.coord = p.coord;
  meta.producer = "cuda";
  meta.plan = cfg.info.plan;
  meta.seed = cfg.info.seed;
  meta.extra = cfg.extra;
  TraceWriter out(meta);
  out.spill_to(cat(cfg.spill_dir, "/.", TraceWriter::file_name(p.rank), ".spill"));
  ExecTimes local;
  if (!times) times = &local;
  Interp in{g, comms, p, cfg, {}, &out, times};
  std::string base = thread_context();
  auto t0 = clock::now();
  std::map<std::string, DTensor> inputs;
  for (const std::string& s : p.inputs) {
    ContextScope ctx(cat(base, ", loading input ", s));
    if (auto it = gen.find(s); it != gen.end()) {
      inputs[s] = kern::generate(g, it->second, cfg.info.seed, cfg.dtype, s);
      continue;
    }
    const StTensor* t = init.find(s);
    if (!t) fail(thread_context(), ": neither generated nor in the init file");
    std::vector<double> v = init.values(*t);
    bool integral = true;
    for (double x : v) integral = integral && std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 2147483648.0;
    // Integer inputs (ids, labels, masks, cu_seqlens) stay exact as int32; loss weights keep
    // the statistics' dtype (the loss is computed in fp32, as mixed-precision training does,
    // or fp64); the rest is stored in the plan's dtype.
    DType d = (integral && s.rfind("input/", 0) == 0) ? DType::I32
                                                      : (s.rfind("weights/", 0) == 0 ? kern::stat_dtype(cfg.dtype) : cfg.dtype);
    inputs[s] = upload(g, d, t->shape, v, s);
  }
  g.sync();
  times->setup = secs(t0);
  int repeat = std::max(1, cfg.repeat);
  int profiled = cfg.profile ? (repeat > 1 ? repeat - 2 : 0) : -1;
  std::vector<cudaEvent_t> events;  // two per op of the profiled run
  for (int run = 0; run < repeat; run++) {
    in.syms = inputs;  // free ops erase symbols, inputs included
    in.tracing = run == repeat - 1;
    bool prof = run == profiled;
    auto r0 = clock::now();
    for (in.index = 0; in.index < p.ops.size(); in.index++) {
      const IrOp& o = p.ops[in.index];
      ContextScope ctx(cat(base, ", op #", in.index, " ", o.str()));
      if (prof) {
        events.resize(events.size() + 2);
        CUDA_OK(cudaEventCreate(&events[events.size() - 2]));
        CUDA_OK(cudaEventCreate(&events.back()));
        CUDA_OK(cudaEventRecord(events[events.size() - 2], g.stream));
      }
      switch (op_class(o.op)) {
        case OpClass::Local: in.run_local(o); break;
        case OpClass::Collective: in.run_collective(o); break;
        case OpClass::PointToPoint: in.run_p2p(o); break;
        case OpClass::Meta:
          if (o.op == "trace") {
            in.run_trace(o);
          } else {
            for (const auto& s : o.in) in.syms.erase(s);
          }
          break;
      }
      if (prof) CUDA_OK(cudaEventRecord(events.back(), g.stream));
    }
    g.sync();
    double dt = secs(r0);
    if (in.tracing) {
      times->traced_run = dt;
      if (repeat == 1) times->best_run = dt;
    } else if (run == 0 || dt < times->best_run) {
      times->best_run = dt;
    }
  }
  if (!events.empty()) {
    std::map<std::string, std::pair<int, double>> by_op;
    for (size_t i = 0; i < p.ops.size(); i++) {
      float ms = 0;
      CUDA_OK(cudaEventElapsedTime(&ms, events[2 * i], events[2 * i + 1]));
      auto& e = by_op[p.ops[i].op];
      e.first++;
      e.second += ms;
    }
    for (cudaEvent_t e : events) cudaEventDestroy(e);
    std::vector<std::pair<double, std::string>> rows;
    for (const auto& kv : by_op) rows.push_back({kv.second.second, cat(kv.first, " ", kv.second.first, " ", kv.second.second)});
    std::sort(rows.rbegin(), rows.rend());
    for (const auto& r : rows) times->profile += r.second + "\n";
  }
  return out;
}

std::map<std::string, std::string> device_facts(int device) {
  std::map<std::string, std::string> f;
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, device));
  f["device"] = prop.name;
  f["compute_capability"] = cat(prop.major, ".", prop.minor);
  int drv = 0, rt = 0, nccl = 0;
  CUDA_OK(cudaDriverGetVersion(&drv));
  CUDA_OK(cudaRuntimeGetVersion(&rt));
  ncclGetVersion(&nccl);
  f["cuda_driver_api"] = cat(drv / 1000, ".", (drv % 1000) / 10);
  f["cuda_runtime"] = cat(rt / 1000, ".", (rt % 1000) / 10);
  f["cuda_compiler"] = cat(__CUDACC_VER_MAJOR__, ".", __CUDACC_VER_MINOR__, ".", __CUDACC_VER_BUILD__);
  f["nccl"] = cat(nccl / 10000, ".", (nccl / 100) % 100, ".", nccl % 100);
  f["cublas"] = cat(CUBLAS_VER_MAJOR, ".", CUBLAS_VER_MINOR, ".", CUBLAS_VER_PATCH);
  return f;
}

}  // namespace spx
