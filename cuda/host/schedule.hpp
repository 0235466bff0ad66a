// schedule.hpp: a static check, before any GPU work, that the ranks' communication matches —
// the same semantics as the simulator's coordinator, on the op lists alone. Every collective
// must meet the same collective (op, attributes) from every member of its communicator (groups
// with the same ordered ranks share one NCCL communicator, so they are matched together, as NCCL
// would), and P2P transfers pair up per peer and direction in issue order with equal shapes.
// A mismatch, a deadlock or a rank that ends while another waits for it is an error naming the
// ranks and their ops. The watchdog remains for what this cannot see (a kernel that hangs, a
// dead process); --no-precheck skips this to exercise it.
#pragma once

#include <string>
#include <vector>

#include "program.hpp"

namespace spx {

// check_schedule throws spx::Error describing the first problem found.
void check_schedule(const std::vector<Program>& progs);

}  // namespace spx
