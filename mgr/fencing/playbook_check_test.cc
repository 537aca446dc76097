#include "mgr/fencing/playbook_check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "base/testing/temp_dir.h"

namespace clustermgr::mgr::fencing {
namespace {

using ::testing::HasSubstr;

class PlaybookCheckTest : public ::testing::Test {
 protected:
  Status Check(const std::string& text, const std::string& name = "site.yml") {
    std::ofstream(dir_ + "/" + name) << text;
    return CheckPlaybookFenced(dir_ + "/" + name, name);
  }

  TempDir tmp_{"playbook-check"};
  const std::string dir_ = tmp_.path();
};

TEST_F(PlaybookCheckTest, RoleFirstInRolesOrTasksIsFenced) {
  EXPECT_TRUE(Check("- hosts: all\n  roles: [clustermgr_fence, web]\n").ok());
  EXPECT_TRUE(Check("- hosts: all\n  roles:\n    - role: clustermgr_fence\n  tasks:\n"
                    "    - debug: msg=x\n")
                  .ok());
  EXPECT_TRUE(Check("- hosts: all\n  tasks:\n    - ansible.builtin.import_role:\n"
                    "        name: clustermgr_fence\n    - command: /bin/true\n")
                  .ok());
  EXPECT_TRUE(Check("- hosts: all\n  pre_tasks:\n    - include_role: name=clustermgr_fence\n"
                    "  roles: [web]\n")
                  .ok());
  EXPECT_TRUE(Check("- hosts: all\n  roles: [/opt/roles/clustermgr_fence]\n").ok());
  // A play that does nothing needs no fence; nor does an empty playbook.
  EXPECT_TRUE(Check("- hosts: all\n  gather_facts: true\n").ok());
  EXPECT_TRUE(Check("").ok());
}

TEST_F(PlaybookCheckTest, MissingOrLateRoleIsRefusedWithTheFirstTask) {
  Status s = Check(
      "- name: site\n  hosts: all\n  tasks:\n    - name: say hello\n"
      "      debug: msg=hi\n    - import_role: {name: clustermgr_fence}\n");
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "playbook \"site.yml\": play \"site\" does not apply the clustermgr_fence role first "
            "(it starts with \"say hello\"); put \"- ansible.builtin.import_role: {name: "
            "clustermgr_fence}\" first in its tasks, or the role first in its roles");
  // pre_tasks run before roles: a role listed first is not first.
  s = Check("- hosts: all\n  pre_tasks:\n    - command: /bin/true\n  roles: [clustermgr_fence]\n");
  EXPECT_THAT(s.message(), HasSubstr("play 1 does not apply"));
  EXPECT_THAT(s.message(), HasSubstr("starts with a \"command\" task"));
  // A conditional fence may be skipped.
  s = Check(
      "- hosts: all\n  tasks:\n    - import_role: {name: clustermgr_fence}\n"
      "      when: false\n");
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  // Every play counts, not just the first.
  s = Check(
      "- hosts: a\n  roles: [clustermgr_fence]\n- name: second\n  hosts: b\n"
      "  roles: [web]\n");
  EXPECT_THAT(s.message(), HasSubstr("play \"second\" does not apply"));
  EXPECT_THAT(s.message(), HasSubstr("role \"web\""));
}

TEST_F(PlaybookCheckTest, ImportedPlaybooksAreFollowed) {
  std::ofstream(dir_ + "/good.yml") << "- hosts: all\n  roles: [clustermgr_fence]\n";
  std::ofstream(dir_ + "/bad.yml") << "- hosts: all\n  tasks: [{command: /bin/true}]\n";
  EXPECT_TRUE(Check("- import_playbook: good.yml\n").ok());
  Status s = Check("- import_playbook: good.yml\n- ansible.builtin.import_playbook: bad.yml\n");
  EXPECT_THAT(s.message(), HasSubstr("playbook \"bad.yml\": play 1 does not apply"));
  s = Check("- import_playbook: missing.yml\n");
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_THAT(s.message(), HasSubstr("cannot read playbook \"missing.yml\""));
  s = Check("- import_playbook: \"{{ which }}.yml\"\n");
  EXPECT_THAT(s.message(), HasSubstr("cannot follow import_playbook"));
  s = Check("- import_playbook: loop.yml\n", "loop.yml");
  EXPECT_THAT(s.message(), HasSubstr("nests deeper than 8"));
}

TEST_F(PlaybookCheckTest, BadYamlIsAnError) {
  Status s = Check("- hosts: all\n  tasks: [\n");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("playbook \"site.yml\" is not valid YAML"));
  s = Check("hosts: all\n");
  EXPECT_EQ(s.message(), "playbook \"site.yml\" is not a list of plays");
}

}  // namespace
}  // namespace clustermgr::mgr::fencing
