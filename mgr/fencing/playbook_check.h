// Whether a playbook applies the fencing role (clustermgr_fence) before anything else.
//
// Node fencing (docs/operations.md, "Fencing at the node") works only if the role's check is the
// first thing a play does on a host. clustermgrd checks that statically, from the playbook's
// YAML, before it starts a run (--node-fencing=require refuses the run, warn says so in the job
// log). The rule, for every play of the playbook (following `import_playbook`):
//   * the first entry that runs - of pre_tasks, then roles, then tasks, then post_tasks - is the
//     role: an entry `clustermgr_fence` (or `{role: clustermgr_fence}`) of `roles:`, or a task
//     `import_role` / `include_role` (also as ansible.builtin.* or ansible.legacy.*) naming it;
//   * a play with no tasks at all needs nothing.
// A role name may be a path ending in /clustermgr_fence. A task with a `when:` does not count
// (it may be skipped). Fact gathering runs before it, which changes nothing on a host.
//
// Thread-safety: stateless; reads files only.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace clustermgr::mgr::fencing {

inline constexpr std::string_view kFenceRole = "clustermgr_fence";

// `path` is the playbook file; `name` is how messages call it (e.g. "site.yml"). Ok when every
// play applies the role first. Errors, one line each:
//   kFailedPrecondition  `playbook "site.yml": play "site" does not apply the clustermgr_fence
//                        role first (its first task is "say hello"); ...`
//   kInvalidArgument     `playbook "site.yml" is not valid YAML: ...` / `... is not a list of
//                        plays` / `import_playbook nests deeper than 8`
//   kIoError             `cannot read playbook "x.yml": No such file or directory`
Status CheckPlaybookFenced(const std::string& path, std::string_view name);

}  // namespace clustermgr::mgr::fencing
