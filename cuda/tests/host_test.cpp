// host_test: the GPU-free parts of the executor (JSON, dtypes, RNG, safetensors, trace writer,
// communicator planning), checked against golden files generated from the Go sources of truth
// (cuda/gputraces). Usage: host_test TESTDATA_DIR [name filter]
#include <cmath>
#include <cstring>
#include <set>
#include <unistd.h>

#include "../host/commplan.hpp"
#include "../host/dtype.hpp"
#include "../host/emit.hpp"
#include "../host/program.hpp"
#include "../host/schedule.hpp"
#include "../host/error.hpp"
#include "../host/json.hpp"
#include "../host/rng.hpp"
#include "../host/safetensors.hpp"
#include "../host/trace.hpp"
#include "testing.hpp"

using namespace spx;

static std::string g_testdata;

static uint64_t hexbits(const std::string& s) { return std::strtoull(s.c_str(), nullptr, 16); }
static double hexf(const std::string& s) {
  uint64_t b = hexbits(s);
  double d;
  std::memcpy(&d, &b, 8);
  return d;
}
static uint64_t bits_of(double d) {
  uint64_t b;
  std::memcpy(&b, &d, 8);
  return b;
}
static std::string slurp(const std::string& path) {
  auto b = read_file(path);
  return std::string(b.begin(), b.end());
}

TEST(json_roundtrip) {
  std::string src = R"({"a":[1,-2.5e3,true,false,null],"b":{"c":"x\"y\\z\n\u00fc\ud83d\ude00"},"big":18446744073709551615,"neg":-9223372036854775808})";
  Json j = Json::parse(src, "t");
  CHECK(j.at("a", "t").as_array("a").size() == 5);
  CHECK(j.at("a", "t").as_array("a")[1].as_double("x") == -2500);
  CHECK(j.at("big", "t").as_uint("big") == 18446744073709551615ull);
  CHECK(j.at("neg", "t").as_int("neg") == INT64_MIN);
  CHECK(j.at("b", "t").at("c", "b").as_string("c") == "x\"y\\z\n\xc3\xbc\xf0\x9f\x98\x80");
  Json again = Json::parse(j.dump(), "again");
  CHECK(again.dump() == j.dump());
  CHECK(Json::string("<a&b>").dump() == "\"\\u003ca\\u0026b\\u003e\"");
}

TEST(json_rejects_bad_input) {
  const char* bad[] = {"", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "\"\\ud800\"", "tru",
                       "{\"a\":1,\"a\":2}", "[1] 2", "\"a\nb\"", "1e"};
  for (const char* s : bad) CHECK_THROWS(Json::parse(s, "bad"), "bad");
  std::string deep(1000, '[');
  CHECK_THROWS(Json::parse(deep, "deep"), "nested too deeply");
  CHECK_THROWS(Json::parse("1.5", "x").as_int("field"), "field");
  CHECK_THROWS(Json::parse("99999999999999999999", "x").as_int("field"), "int64");
  CHECK_THROWS(Json::parse("{}", "x").at("k", "obj"), "missing field \"k\"");
}

TEST(rng_matches_go) {
  Json g = Json::parse(slurp(g_testdata + "/host_golden.json"), "host_golden.json");
  int n = 0, bad = 0;
  for (const Json& c : g.at("rng", "g").as_array("rng")) {
    RNG r(c.at("seed", "c").as_uint("seed"), c.at("name", "c").as_string("name"));
    uint64_t i = c.at("i", "c").as_uint("i");
    bool ok = r.bits(i) == hexbits(c.at("bits", "c").as_string("")) &&
              bits_of(r.uniform(i)) == hexbits(c.at("uniform", "c").as_string("")) &&
              bits_of(r.normal(i)) == hexbits(c.at("normal", "c").as_string("")) &&
              r.intn(i, c.at("n", "c").as_int("")) == c.at("intn", "c").as_int("");
    if (!ok && bad++ < 5)
      std::printf("  rng seed %s name %s i %llu: normal %.17g want %.17g\n", c.at("seed", "").dump().c_str(), c.at("name", "").as_string("").c_str(),
                  (unsigned long long)i, r.normal(i), hexf(c.at("normal", "c").as_string("")));
    n++;
  }
  CHECK_MSG(bad == 0, "%d of %d RNG cases differ from Go", bad, n);
  CHECK(n > 500);
}

TEST(bf16_f16_match_go) {
  Json g = Json::parse(slurp(g_testdata + "/host_golden.json"), "host_golden.json");
  int bad = 0;
  for (const Json& c : g.at("bf16", "g").as_array("bf16")) {
    double x = hexf(c.at("x", "").as_string(""));
    uint16_t want = static_cast<uint16_t>(c.at("bits", "").as_int(""));
    if (bf16_bits(x) != want && bad++ < 5) std::printf("  bf16(%a) = %04x, Go %04x\n", x, bf16_bits(x), want);
    // Encode → decode round trip: a bf16 value encodes to itself.
    if (!std::isnan(x) && bf16_bits(bf16_value(want)) != want && bad++ < 5) std::printf("  bf16 roundtrip %04x\n", want);
  }
  for (const Json& c : g.at("f16", "g").as_array("f16")) {
    double x = hexf(c.at("x", "").as_string(""));
    uint16_t want = static_cast<uint16_t>(c.at("bits", "").as_int(""));
    if (f16_bits(x) != want && bad++ < 10) std::printf("  f16(%a) = %04x, Go %04x\n", x, f16_bits(x), want);
  }
  CHECK(bad == 0);
  // The float32 path (what __float2bfloat16_rn does on the GPU) agrees with the float64 path
  // on every float32 input.
  for (float f : {1.0f, 1.00390625f, 1.01171875f, 3.3e38f, -0.0f, 1e-40f, 1.0f + 0x1p-8f + 0x1p-20f})
    CHECK(bf16_bits_f32(f) == bf16_bits(static_cast<double>(f)));
}

TEST(encode_decode) {
  std::vector<double> v = {1.5, -2, 3.25, 1e9};
  for (DType d : {DType::F64, DType::F32, DType::BF16, DType::F16, DType::I64, DType::I32}) {
    auto b = encode(d, v);
    CHECK(b.size() == v.size() * dtype_size(d));
    auto back = decode(d, b.data(), v.size());
    CHECK(back[0] == (d == DType::I64 || d == DType::I32 ? 2 : 1.5));
  }
  CHECK(decode(DType::I32, encode(DType::I32, {2.5, 3.5, 1e12}).data(), 3) == (std::vector<double>{2, 4, 2147483647}));
}

TEST(trace_writer_is_byte_identical_to_go) {
  std::string path = g_testdata + "/trace_golden.safetensors";
  std::vector<uint8_t> want = read_file(path);
  StFile f = StFile::read(path);
  TraceMeta m = read_trace_meta(f);
  CHECK(m.rank == 1 && m.world == 4 && m.seed == (1ull << 63) + 5);
  CHECK(m.extra["device"] == "NVIDIA H200 <x> & \"y\"");
  TraceMeta empty = m;
  empty.tensors.clear();
  TraceWriter w(empty);
  for (const auto& t : f.tensors) {
    std::vector<uint8_t> b(f.bytes(t), f.bytes(t) + (t.end - t.begin));
    w.add(t.key, m.tensors.at(t.key), t.dtype, t.shape, b);
  }
  std::vector<uint8_t> got = w.render();
  CHECK_MSG(got == want, "C++ render (%zu bytes) differs from Go's (%zu bytes)", got.size(), want.size());
  if (got != want) {
    std::string a(got.begin(), got.end()), b(want.begin(), want.end());
    std::printf("  got:  %s\n  want: %s\n", a.substr(8, 600).c_str(), b.substr(8, 600).c_str());
  }
  // write_dir streams the same bytes to the file.
  char dir[] = "/tmp/spx_trace_XXXXXX";
  CHECK(mkdtemp(dir) != nullptr);
  std::string written = w.write_dir(dir);
  CHECK_MSG(read_file(written) == want, "write_dir's file differs from Go's");
  std::remove(written.c_str());
  // Spilled as they come (the executor's mode), in another order: the same file, spill removed.
  std::string spill = std::string(dir) + "/spill";
  {
    TraceWriter s(empty);
    s.spill_to(spill);
    for (auto it = f.tensors.rbegin(); it != f.tensors.rend(); ++it) {
      const StTensor& t = *it;
      s.add_stream(t.key, m.tensors.at(t.key), t.dtype, t.shape, t.end - t.begin,
                   [&](FILE* out) { std::fwrite(f.bytes(t), 1, t.end - t.begin, out); });
    }
    CHECK_THROWS(s.add_stream("x", m.tensors.begin()->second, DType::F32, {2}, 8, [](FILE* out) { std::fputc(0, out); }),
                 "bytes spilled, want 8");
    written = s.write_dir(dir);
    CHECK_MSG(read_file(written) == want, "the spilled writer's file differs from Go's");
    CHECK_THROWS(s.render(), "is spilled");
  }
  CHECK_MSG(access(spill.c_str(), F_OK) != 0, "the spill file was left behind");
  std::remove(written.c_str());
  rmdir(dir);
}

TEST(dump_globs_select_logical_names) {
  std::vector<std::string> g = {"loss/*", "grad/layers.7.*", "act/layers.?.output"};
  CHECK(dump_matches(g, "loss/main"));
  CHECK(dump_matches(g, "grad/layers.7.attn.q.weight"));
  CHECK(dump_matches(g, "act/layers.3.output"));
  CHECK(!dump_matches(g, "grad/layers.17.attn.q.weight"));
  CHECK(!dump_matches(g, "agrad/layers.7.output"));
  CHECK(!dump_matches(g, "act/layers.12.output"));
  CHECK(!dump_matches({}, "loss/main"));
  CHECK(dump_matches({"grad/*"}, "grad/layers.0.mlp.up.weight"));
}

TEST(trace_writer_refuses) {
  TraceMeta m;
  m.mesh_axes = {"tp"};
  m.mesh_shape = {2};
  TraceWriter w(m);
  TensorMeta tm{"act/x", "activation", 1, "tp=shard(0)", {}, {}};
  w.add("x", tm, DType::F32, {2}, encode(DType::F32, {1, 2}));
  CHECK_THROWS(w.add("x", tm, DType::F32, {2}, encode(DType::F32, {1, 2})), "added twice");
  tm.kind = "weird";
  CHECK_THROWS(w.add("y", tm, DType::F32, {2}, encode(DType::F32, {1, 2})), "unknown kind");
  tm.kind = "activation";
  tm.place = "pp=stage";
  CHECK_THROWS(w.add("z", tm, DType::F32, {2}, encode(DType::F32, {1, 2})), "not a mesh axis");
  tm.place = "tp=shard(0,block=3)";
  w.add("z", tm, DType::F32, {2}, encode(DType::F32, {1, 2}));
  tm.place = "tp=shard(x)";
  CHECK_THROWS(w.add("q", tm, DType::F32, {2}, encode(DType::F32, {1, 2})), "bad item");
  CHECK_THROWS(w.add("r", TensorMeta{"a", "param", 0, "", {}, {}}, DType::F32, {3}, encode(DType::F32, {1, 2})), "bytes for 3 elements");
}

static std::vector<uint8_t> st_bytes(const std::string& header, size_t data) {
  uint64_t n = header.size();
  uint8_t len[8];
  std::memcpy(len, &n, 8);
  std::string all(reinterpret_cast<const char*>(len), 8);
  all += header;
  all.append(data, '\0');
  return std::vector<uint8_t>(all.begin(), all.end());
}

TEST(safetensors_refuses_bad_files) {
  struct Bad {
    std::vector<uint8_t> bytes;
    const char* want;
  } bad[] = {
      {{1, 2, 3}, "fewer than the 8-byte"},
      {st_bytes("{}", 0), "ok"},
      {st_bytes("[1]", 0), "not a JSON object"},
      {st_bytes("{\"a\":", 0), "invalid JSON"},
      {st_bytes(R"({"a":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}})", 1), "unknown dtype"},
      {st_bytes(R"({"a":{"dtype":"fp32","shape":[1],"data_offsets":[0,4]}})", 4), "unknown dtype"},
      {st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4), "span"},
      {st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 2), "outside the data section"},
      {st_bytes(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4), "out of range"},
      {st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})", 8), "overlaps"},
      {st_bytes(R"({"__metadata__":{"spcheck":1}})", 0), "not a string"},
  };
  for (auto& b : bad) {
    if (std::string(b.want) == "ok") {
      StFile::parse(b.bytes, "mem");
      continue;
    }
    CHECK_THROWS(StFile::parse(b.bytes, "mem"), b.want);
  }
  std::vector<uint8_t> huge(8);
  uint64_t n = 1ull << 40;
  std::memcpy(huge.data(), &n, 8);
  CHECK_THROWS(StFile::parse(huge, "mem"), "claims");
}

TEST(commplan_split_layout) {
  // tp 2 × pp 2 on 4 GPUs: world + splits; tp groups disjoint (one round), pp groups another.
  CommPlan p = plan_comms(4, 4, {{"tp", {0, 1}}, {"tp", {2, 3}}, {"pp", {0, 2}}, {"pp", {1, 3}}, {"embedding", {0, 2}}}, {{0, 2}, {1, 3}});
  CHECK(p.split);
  CHECK(p.groups.size() == 4);
  CHECK(p.rounds.size() == 2);
  int e = p.find({0, 2});
  CHECK(e >= 0 && p.groups[e].names == (std::vector<std::string>{"embedding", "pp"}));
  CHECK(p.p2p_comm(0, 2) == std::make_pair(-1, 2));
  for (int r = 0; r < 4; r++) CHECK(p.device[r] == r);
}

TEST(commplan_direct_layout) {
  // tp 2 × pp 2 on 2 GPUs: every communicator on distinct GPUs (rank (pp,tp) on (pp+tp) mod 2).
  CommPlan p = plan_comms(4, 2, {{"tp", {0, 1}}, {"tp", {2, 3}}, {"pp", {0, 2}}, {"pp", {1, 3}}}, {{0, 2}, {3, 1}});
  CHECK(!p.split);
  CHECK(p.device == (std::vector<int>{0, 1, 1, 0}));
  for (const auto& g : p.groups) CHECK(p.device[g.ranks[0]] != p.device[g.ranks[1]]);
  CHECK(p.p2p_comm(3, 1).second == 0);
  CHECK(p.p2p_comm(1, 3).second == 1);
  // Rank order inside a group is the listed order, not sorted.
  CommPlan q = plan_comms(2, 2, {{"tp", {1, 0}}}, {});
  CHECK(q.groups[0].index_of(1) == 0);
  CHECK_THROWS(plan_comms(4, 2, {{"tp", {0, 1, 2, 3}}}, {}), "one rank per GPU");
  CHECK_THROWS(plan_comms(3, 2, {{"a", {0, 1}}, {"b", {1, 2}}, {"c", {0, 2}}}, {}), "cannot place");
  CHECK_THROWS(plan_comms(2, 2, {{"tp", {0, 5}}}, {}), "outside world");
  CHECK_THROWS(plan_comms(2, 2, {{"tp", {1, 1}}}, {}), "twice");
}

static Emitted golden_emit() { return load_emit(g_testdata + "/emit_tp2"); }

TEST(emit_loads_simulator_output) {
  Emitted e = golden_emit();
  CHECK(e.info.world == 2);
  CHECK(e.info.dtype == DType::F32);
  CHECK(e.info.seed == 1);
  CHECK(plan_value(e.info.plan, "tp") == "2");
  CHECK(plan_value(e.info.plan, "nope") == "");
  // The trace mesh is the simulator's: dp, pp, mb, tp.
  CHECK(e.info.trace_axes == (std::vector<std::string>{"dp", "pp", "mb", "tp"}));
  CHECK(e.info.trace_shape == (std::vector<int64_t>{1, 1, 1, 2}));
  StFile init = StFile::read(e.init_path(1));
  auto gen = load_generated(e, 1);
  for (const auto& s : e.programs[1].inputs)
    CHECK_MSG((init.find(s) != nullptr) != (gen.count(s) == 1), "input %s must be in exactly one of init and generate", s.c_str());
  CHECK(gen.count("param/embedding.weight") && gen.at("param/embedding.weight").pad == 1);
  int collectives = 0;
  for (const auto& o : e.programs[0].ops) collectives += op_class(o.op) == OpClass::Collective;
  CHECK(collectives > 0);
  CHECK_THROWS(load_emit(g_testdata), "not an emitted plan");
}

// generate_host makes exactly the parameter shards Go's Compile makes (generated_golden), for
// every generated tensor of both ranks: row, column and padded vocab shards, norms.
TEST(generated_tensors_match_go) {
  Emitted e = golden_emit();
  StFile want = StFile::read(g_testdata + "/generated_golden.safetensors");
  size_t n = 0;
  for (int r = 0; r < e.info.world; r++)
    for (const auto& kv : load_generated(e, r)) {
      const StTensor& t = want.at("rank" + std::to_string(r) + "/" + kv.first);
      CHECK_MSG(kv.second.local_shape() == t.shape, "rank %d %s: shape differs", r, kv.first.c_str());
      std::vector<double> got = generate_host(kv.second, e.info.seed), ref = want.values(t);
      CHECK_MSG(std::memcmp(got.data(), ref.data(), 8 * ref.size()) == 0 && got.size() == ref.size(), "rank %d %s: values differ", r,
                kv.first.c_str());
      n++;
    }
  CHECK(n == want.tensors.size());
}

TEST(generate_manifest_errors_name_the_tensor) {
  char dir[] = "/tmp/spx_gen_XXXXXX";
  CHECK(mkdtemp(dir) != nullptr);
  std::string d = dir;
  CHECK(std::system(("cp -r " + g_testdata + "/emit_tp2/. " + d).c_str()) == 0);
  auto b = read_file(d + "/generate/rank-00000.json");
  std::string js(b.begin(), b.end());
  size_t at = js.find("\"start\": 0");
  CHECK(at != std::string::npos);
  js.replace(at, 10, "\"start\": 99");
  write_file(d + "/generate/rank-00000.json", std::vector<uint8_t>(js.begin(), js.end()));
  Emitted e = load_emit(d);
  CHECK_THROWS(load_generated(e, 0), "does not fit its shape");
  CHECK(std::system(("rm -rf " + d).c_str()) == 0);
}

TEST(schedule_accepts_the_simulators_programs) { check_schedule(golden_emit().programs); }

// first_op finds the first op of rank r's program satisfying pred.
template <typename F>
static size_t first_op(const Program& p, F pred) {
  for (size_t i = 0; i < p.ops.size(); i++)
    if (pred(p.ops[i])) return i;
  return SIZE_MAX;
}

TEST(schedule_finds_mismatches_and_hangs) {
  auto is_coll = [](const IrOp& o) { return op_class(o.op) == OpClass::Collective; };
  {
    // Rank 1 skips its first collective: a rank waits on a collective its peer never issues
    // (or, further on, meets a different one).
    auto progs = golden_emit().programs;
    size_t i = first_op(progs[1], is_coll);
    progs[1].ops.erase(progs[1].ops.begin() + i);
    bool threw = false;
    try {
      check_schedule(progs);
    } catch (const Error& e) {
      threw = true;
      std::string m = e.what();
      CHECK_MSG(m.find("rank 0") != std::string::npos && m.find("rank 1") != std::string::npos, "message: %s", m.c_str());
    }
    CHECK(threw);
  }
  {
    // Different collectives on one communicator.
    auto progs = golden_emit().programs;
    size_t i = first_op(progs[1], [](const IrOp& o) { return o.op == "all_gather"; });
    CHECK(i != SIZE_MAX);
    progs[1].ops[i].ints["dim"] = {0};
    CHECK_THROWS(check_schedule(progs), "collective mismatch on communicator");
  }
  {
    // A rank that ends early.
    auto progs = golden_emit().programs;
    size_t i = first_op(progs[0], is_coll);
    progs[0].ops.resize(i);
    CHECK_THROWS(check_schedule(progs), "finished its program while");
  }
  {
    // Two ranks that both send first: a classic pipeline deadlock.
    Program a, b;
    a.rank = 0, b.rank = 1, a.world = b.world = 2;
    IrOp send0, recv0, send1, recv1;
    send0.op = recv0.op = send1.op = recv1.op = "p2p";
    send0.p2p = {{true, 1, "x", {2}}};
    recv0.p2p = {{false, 1, "y", {2}}};
    send1.p2p = {{true, 0, "x", {2}}};
    recv1.p2p = {{false, 0, "y", {2}}};
    a.ops = {send0, recv0};
    b.ops = {send1, recv1};
    CHECK_THROWS(check_schedule({a, b}), "no rank can make progress");
    b.ops = {recv1, send1};
    check_schedule({a, b});
    b.ops[0].p2p[0].shape = {3};
    CHECK_THROWS(check_schedule({a, b}), "p2p shape mismatch");
  }
}

TEST(program_parser_refuses_bad_programs) {
  auto raw = read_file(g_testdata + "/emit_tp2/programs/rank-00000.json");
  std::string good(raw.begin(), raw.end());
  Program p = parse_program(good, "rank0");
  CHECK(p.rank == 0 && p.world == 2 && !p.ops.empty());
  auto mutate = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    size_t at = s.find(from);
    CHECK_MSG(at != std::string::npos, "no \"%s\" in the golden program", from.c_str());
    return at == std::string::npos ? s : s.replace(at, from.size(), to);
  };
  CHECK_THROWS(parse_program(mutate("\"spcheck-program\"", "\"other\""), "p"), "format");
  CHECK_THROWS(parse_program(mutate("\"version\": 1", "\"version\": 2"), "p"), "version 2");
  CHECK_THROWS(parse_program(mutate("\"op\": \"linear\"", "\"op\": \"conv\""), "p"), "unknown op");
  CHECK_THROWS(parse_program(mutate("\"rank\": 0", "\"rank\": 7"), "p"), "outside world");
  CHECK_THROWS(parse_program(good.substr(0, good.size() / 2), "p"), "invalid JSON");
  // A read of an undefined symbol.
  Program q = p;
  for (auto& o : q.ops)
    if (o.op == "linear") {
      o.in[0] = "nowhere";
      break;
    }
  CHECK_THROWS(validate_program(q, "q"), "before it is defined");
}

// The C++ op table (program.cpp) equals simulate/ir's (ir.Specs, written to ir_spec.json by
// cuda/gputraces): the same program format and version, the same op names, and for each op the
// same class, operand counts and required attributes. A change on one side only fails here.
TEST(op_table_matches_go) {
  Json g = Json::parse(slurp(g_testdata + "/ir_spec.json"), "ir_spec.json");
  CHECK_MSG(g.at("format", "ir_spec.json").as_string("format") == kProgramFormat, "program format: Go \"%s\", C++ \"%s\"",
            g.at("format", "ir_spec.json").as_string("format").c_str(), kProgramFormat);
  CHECK_MSG(g.at("version", "ir_spec.json").as_int("version") == kProgramVersion, "program version: Go %lld, C++ %d",
            static_cast<long long>(g.at("version", "ir_spec.json").as_int("version")), kProgramVersion);
  auto list = [](const std::vector<std::string>& v) {
    std::string r = "[";
    for (size_t i = 0; i < v.size(); i++) r += (i ? " " : "") + v[i];
    return r + "]";
  };
  std::set<std::string> in_go;
  for (const Json& o : g.at("ops", "ir_spec.json").as_array("ops")) {
    const std::string name = o.at("op", "ops[]").as_string("op");
    in_go.insert(name);
    auto it = op_specs().find(name);
    CHECK_MSG(it != op_specs().end(), "op \"%s\" is in ir.Specs but not in program.cpp's table", name.c_str());
    if (it == op_specs().end()) continue;
    const OpSpec& c = it->second;
    const std::string w = "op " + name;
    auto field = [&](const char* f, const std::string& go, const std::string& cpp) {
      CHECK_MSG(go == cpp, "%s %s: Go %s, C++ %s", w.c_str(), f, go.c_str(), cpp.c_str());
    };
    auto strs = [&](const char* f) {
      std::vector<std::string> v;
      for (const Json& x : o.at(f, w).as_array(w + "." + f)) v.push_back(x.as_string(w + "." + f));
      return v;
    };
    field("class", o.at("class", w).as_string(w + ".class"), op_class_name(c.cls));
    field("in", std::to_string(o.at("in", w).as_int(w + ".in")), std::to_string(c.in));
    field("out", std::to_string(o.at("out", w).as_int(w + ".out")), std::to_string(c.out));
    field("ints", list(strs("ints")), list(c.ints));
    field("floats", list(strs("floats")), list(c.floats));
    field("strs", list(strs("strs")), list(c.strs));
  }
  for (const auto& kv : op_specs())
    CHECK_MSG(in_go.count(kv.first), "op \"%s\" is in program.cpp's table but not in ir.Specs", kv.first.c_str());
  CHECK(!in_go.empty());
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: host_test TESTDATA_DIR [filter]\n");
    return 2;
  }
  g_testdata = argv[1];
  return spxtest::run_all(argc > 2 ? argv[2] : nullptr);
}
