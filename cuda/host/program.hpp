// program.hpp: the per-rank program IR of simulate/ir (format "spcheck-program", version 1),
// parsed and validated as ir.Program.Validate does: known ops with their operand counts and
// attributes (ir.Specs), every symbol defined before it is read, groups containing the rank,
// peers in range, unique trace keys. docs/ir.md and simulate/runtime/kernels.go give each op's
// semantics; gpu/executor.cu implements them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "json.hpp"

namespace spx {

constexpr const char* kProgramFormat = "spcheck-program";
constexpr int kProgramVersion = 1;

struct IrGroup {
  std::string name;
  std::vector<int> ranks;
  int index_of(int r) const;
  std::string key() const;  // "tp[0 1]", as ir.Group.Key
};

struct IrTransfer {
  bool send = false;
  int peer = 0;
  std::string sym;
  std::vector<int64_t> shape;
};

struct IrTag {
  std::string key, name, kind, place;
  int64_t order = 0;
  std::vector<int64_t> shape;
  std::map<std::string, int64_t> coord;
};

struct IrOp {
  std::string op;
  std::vector<std::string> in, out;
  std::map<std::string, std::vector<int64_t>> ints;
  std::map<std::string, double> floats;
  std::map<std::string, std::string> strs;
  bool has_group = false;
  IrGroup group;
  std::vector<IrTransfer> p2p;
  bool has_trace = false;
  IrTag trace;
  std::string role;

  int64_t i(const std::string& k) const { return ints.at(k).at(0); }
  const std::vector<int64_t>& il(const std::string& k) const { return ints.at(k); }
  double f(const std::string& k) const { return floats.at(k); }
  const std::string& s(const std::string& k) const { return strs.at(k); }
  std::string str() const;  // one line for messages, like ir.Op.String
};

enum class OpClass { Local, Collective, PointToPoint, Meta };

// OpSpec mirrors ir.Spec: operand counts (-1 one or more, -2 broadcast: 1 on the root, 0
// elsewhere) and required attributes.
struct OpSpec {
  OpClass cls;
  int in, out;
  std::vector<std::string> ints, floats, strs;
};

// op_specs is the op table, ir.Specs in C++; host_test checks it against the Go table
// (tests/testdata/ir_spec.json, written by cuda/gputraces).
const std::map<std::string, OpSpec>& op_specs();
// op_class_name names a class as ir.Class.String does: "local", "collective", "p2p", "meta".
const char* op_class_name(OpClass c);

struct Program {
  std::string plan;
  int rank = 0, world = 1;
  std::vector<std::string> mesh_axes;
  std::vector<int64_t> mesh_shape;
  std::map<std::string, int64_t> coord;
  std::vector<std::string> inputs;
  std::vector<IrOp> ops;
};

// op_class returns the class of a known op; throws for an unknown one.
OpClass op_class(const std::string& op);
// parse_program reads and validates one rank's program; `what` (a path) names it in errors.
Program parse_program(const std::string& text, const std::string& what);
// validate_program repeats parse_program's checks (after a rewrite, say).
void validate_program(const Program& p, const std::string& what);

}  // namespace spx
