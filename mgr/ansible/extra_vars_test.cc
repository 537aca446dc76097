#include "mgr/ansible/extra_vars.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace clustermgr::mgr {
namespace {

using nlohmann::json;

constexpr std::string_view kInvalid = "\"extra_vars\" should be a valid json. Error: ";

TEST(ParseExtraVars, EmptyStringIsEmptyObject) {
  ExtraVarsParse p = ParseExtraVars("");
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.vars, json::object());
}

TEST(ParseExtraVars, ParsesAnObject) {
  ExtraVarsParse p = ParseExtraVars(R"({"a": 1, "b": {"c": [true, null]}, "d.e-f_0": ""})");
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.vars, json({{"a", 1}, {"b", {{"c", {true, nullptr}}}}, {"d.e-f_0", ""}}));
}

TEST(ParseExtraVars, LastDuplicateKeyWins) {
  ExtraVarsParse p = ParseExtraVars(R"({"a": 1, "a": 2})");
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.vars, json({{"a", 2}}));
}

TEST(ParseExtraVars, SyntaxErrorsCarryTheParserMessage) {
  ExtraVarsParse p = ParseExtraVars("{x");
  EXPECT_FALSE(p.ok());
  EXPECT_TRUE(p.vars.is_object() && p.vars.empty());
  EXPECT_EQ(p.error, std::string(kInvalid) +
                         "parse error at line 1, column 2: syntax error while parsing object key "
                         "- invalid literal; last read: '{x'; expected string literal");

  p = ParseExtraVars("{} x");
  EXPECT_EQ(p.error, std::string(kInvalid) +
                         "parse error at line 1, column 4: syntax error while parsing value - "
                         "invalid literal; last read: '{} x'; expected end of input");
}

TEST(ParseExtraVars, WhitespaceOnlyIsNotEmpty) {
  ExtraVarsParse p = ParseExtraVars("  ");
  EXPECT_TRUE(p.error.starts_with(kInvalid)) << p.error;
}

TEST(ParseExtraVars, ErrorTextIsOneCleanLineEvenForBinaryInput) {
  ExtraVarsParse p = ParseExtraVars("{\"a\":\"\xff\n\"}");
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(p.error.starts_with(kInvalid)) << p.error;
  for (char c : p.error) {
    auto u = static_cast<unsigned char>(c);
    EXPECT_TRUE(u >= 0x20 && u < 0x7f) << "byte " << int(u) << " in " << p.error;
  }
}

TEST(ParseExtraVars, NonObjectsAreRefused) {
  for (const char* text : {"[]", "[1,2]", "1", "\"s\"", "true", "null"}) {
    ExtraVarsParse p = ParseExtraVars(text);
    EXPECT_EQ(p.error, std::string(kInvalid) + "not a JSON object") << text;
  }
}

TEST(ParseExtraVars, SizeLimit) {
  ExtraVarsLimits limits;
  limits.max_bytes = 20;
  std::string fits = R"({"a":"0123456789ab"})";  // 20 bytes
  ASSERT_EQ(fits.size(), 20u);
  EXPECT_TRUE(ParseExtraVars(fits, limits).ok());
  std::string big = R"({"a":"0123456789abc"})";
  EXPECT_EQ(ParseExtraVars(big, limits).error,
            "\"extra_vars\" is too large: 21 bytes, the limit is 20 bytes");
  // The default is 64 KiB.
  std::string huge = "{\"a\":\"" + std::string(64 * 1024, 'x') + "\"}";
  EXPECT_EQ(ParseExtraVars(huge).error,
            "\"extra_vars\" is too large: 65544 bytes, the limit is 65536 bytes");
}

std::string Nested(int levels) {
  // levels = 1 is {"k":0}; each further level wraps the value in an array.
  std::string inner = "0";
  for (int i = 1; i < levels; ++i) inner = "[" + inner + "]";
  return "{\"k\":" + inner + "}";
}

TEST(ParseExtraVars, DepthLimit) {
  EXPECT_TRUE(ParseExtraVars(Nested(32)).ok());
  EXPECT_EQ(ParseExtraVars(Nested(33)).error,
            "\"extra_vars\" is nested too deeply, the limit is 32 levels");
  ExtraVarsLimits limits;
  limits.max_depth = 2;
  EXPECT_TRUE(ParseExtraVars(R"({"a":{"b":1}})", limits).ok());
  EXPECT_FALSE(ParseExtraVars(R"({"a":{"b":{}}})", limits).ok());
  // Very deep input is refused without recursion (the size limit still applies first).
  std::string deep = "{\"k\":" + std::string(20000, '[') + std::string(20000, ']') + "}";
  EXPECT_EQ(ParseExtraVars(deep).error,
            "\"extra_vars\" is nested too deeply, the limit is 32 levels");
}

TEST(ParseExtraVars, TopLevelKeyCharset) {
  const std::string suffix = ": keys are 1 to 128 letters, digits, '_', '-', '.'";
  EXPECT_EQ(ParseExtraVars(R"({"a b": 1})").error,
            "\"extra_vars\" has an invalid key \"a b\"" + suffix);
  EXPECT_EQ(ParseExtraVars(R"({"": 1})").error, "\"extra_vars\" has an invalid key \"\"" + suffix);
  EXPECT_EQ(ParseExtraVars(R"({"a\nb": 1})").error,
            "\"extra_vars\" has an invalid key \"a\\nb\"" + suffix);
  EXPECT_EQ(ParseExtraVars(R"({"x=y": 1})").error,
            "\"extra_vars\" has an invalid key \"x=y\"" + suffix);
  EXPECT_EQ(ParseExtraVars(R"({"k'": 1})").error,
            "\"extra_vars\" has an invalid key \"k'\"" + suffix);
  std::string long_key(129, 'k');
  EXPECT_EQ(ParseExtraVars("{\"" + long_key + "\": 1}").error,
            "\"extra_vars\" has an invalid key \"" + std::string(64, 'k') + "\"..." + suffix);
  EXPECT_TRUE(ParseExtraVars("{\"" + std::string(128, 'k') + "\": 1}").ok());
  // Nested keys are the playbook's business.
  EXPECT_TRUE(ParseExtraVars(R"({"a": {"any key = fine": 1}})").ok());
}

TEST(CheckExtraVars, SameRulesForDecodedValues) {
  EXPECT_EQ(CheckExtraVars(json::object()), "");
  EXPECT_EQ(CheckExtraVars(json({{"a", {{"b", 1}}}})), "");
  EXPECT_EQ(CheckExtraVars(json::array()), std::string(kInvalid) + "not a JSON object");
  EXPECT_EQ(CheckExtraVars(json({{"bad key", 1}})),
            "\"extra_vars\" has an invalid key \"bad key\": keys are 1 to 128 letters, digits, "
            "'_', '-', '.'");
  json deep = 0;
  for (int i = 0; i < 32; ++i) deep = json::array({deep});
  EXPECT_EQ(CheckExtraVars(json({{"k", deep}})),
            "\"extra_vars\" is nested too deeply, the limit is 32 levels");
  ExtraVarsLimits limits;
  limits.max_bytes = 8;
  EXPECT_EQ(CheckExtraVars(json({{"a", "long"}}), limits),
            "\"extra_vars\" is too large: 12 bytes, the limit is 8 bytes");
}

TEST(MergeExtraVars, HigherLayersWinByTopLevelKey) {
  json config = {{"a", "config"}, {"b", "config"}, {"c", "config"}, {"d", "config"}};
  json globals = {{"b", "globals"}, {"c", "globals"}, {"d", "globals"}};
  json node = {{"c", "node"}, {"d", "node"}};
  json request = {{"d", "request"}, {"e", "request"}};
  EXPECT_EQ(
      MergeExtraVars(config, globals, node, request),
      json({{"a", "config"}, {"b", "globals"}, {"c", "node"}, {"d", "request"}, {"e", "request"}}));
}

TEST(MergeExtraVars, NullDoesNotOverrideOrDelete) {
  json config = {{"a", 1}, {"b", 2}};
  json globals = {{"a", nullptr}};
  json node = {{"b", nullptr}, {"n", nullptr}};
  json request = {{"a", nullptr}, {"b", nullptr}};
  EXPECT_EQ(MergeExtraVars(config, globals, node, request),
            json({{"a", 1}, {"b", 2}, {"n", nullptr}}));
  // A null below is overridden by a value above.
  EXPECT_EQ(
      MergeExtraVars(json({{"a", nullptr}}), json::object(), json::object(), json({{"a", 3}})),
      json({{"a", 3}}));
}

TEST(MergeExtraVars, FalsyValuesOverride) {
  json config = {{"s", "x"}, {"f", true}, {"z", 7}, {"arr", {1}}, {"obj", {{"k", 1}}}};
  json request = {
      {"s", ""}, {"f", false}, {"z", 0}, {"arr", json::array()}, {"obj", json::object()}};
  EXPECT_EQ(MergeExtraVars(config, json::object(), json::object(), request), request);
}

TEST(MergeExtraVars, NestedObjectsReplaceWhole) {
  json globals = {{"net", {{"mtu", 1500}, {"vlan", 10}}}};
  json node = {{"net", {{"mtu", 9000}}}};
  EXPECT_EQ(MergeExtraVars(json::object(), globals, node, json::object()),
            json({{"net", {{"mtu", 9000}}}}));
}

TEST(MergeExtraVars, OrderOfLayersMatters) {
  json lo = {{"k", "lo"}};
  json hi = {{"k", "hi"}};
  EXPECT_EQ(MergeExtraVars(lo, hi, json::object(), json::object())["k"], "hi");
  EXPECT_EQ(MergeExtraVars(hi, lo, json::object(), json::object())["k"], "lo");
  EXPECT_EQ(MergeExtraVars(json::object(), hi, lo, json::object())["k"], "lo");
  EXPECT_EQ(MergeExtraVars(json::object(), json::object(), hi, lo)["k"], "lo");
}

TEST(MergeExtraVars, NonObjectLayersContributeNothing) {
  EXPECT_EQ(MergeExtraVars(nullptr, json::array({1}), json(5), json({{"a", 1}})), json({{"a", 1}}));
  json merged = "not an object";
  MergeExtraVarsLayer(merged, json({{"x", 1}}));
  EXPECT_EQ(merged, json({{"x", 1}}));
}

TEST(MergeExtraVars, OutputIsDeterministic) {
  json a = json::parse(R"({"z":1,"a":2,"m":{"y":1,"b":2}})");
  json b = json::parse(R"({"m":{"b":2,"y":1},"a":2,"z":1})");
  std::string da = MergeExtraVars(a, json::object(), json::object(), json::object()).dump();
  std::string db = MergeExtraVars(json::object(), b, json::object(), json::object()).dump();
  EXPECT_EQ(da, db);
  EXPECT_EQ(da, R"({"a":2,"m":{"b":2,"y":1},"z":1})");
}

TEST(SplitPerHost, SharedKeysAreCommonDifferingOrMissingKeysArePerHost) {
  const RunVars v = SplitPerHost({
      {"n1", json{{"a", 1}, {"b", "red"}, {"c", true}}},
      {"n2", json{{"a", 1}, {"b", "blue"}}},
  });
  EXPECT_EQ(v.common, (json{{"a", 1}}));
  ASSERT_EQ(v.per_host.size(), 2u);
  EXPECT_EQ(v.per_host.at("n1"), (json{{"b", "red"}, {"c", true}}));
  EXPECT_EQ(v.per_host.at("n2"), (json{{"b", "blue"}}));
}

TEST(SplitPerHost, OneHostOrEqualHostsHaveEverythingCommon) {
  const json vars{{"a", 1}, {"b", json::array({1, 2})}};
  RunVars one = SplitPerHost({{"n1", vars}});
  EXPECT_EQ(one.common, vars);
  EXPECT_TRUE(one.per_host.empty());
  RunVars same = SplitPerHost({{"n1", vars}, {"n2", vars}, {"n3", vars}});
  EXPECT_EQ(same.common, vars);
  EXPECT_TRUE(same.per_host.empty());
  EXPECT_EQ(SplitPerHost({}).common, json::object());
}

TEST(SplitPerHost, AKeyIsNeverBothCommonAndPerHost) {
  const RunVars v = SplitPerHost({
      {"n1", json{{"x", json{{"deep", 1}}}, {"y", nullptr}}},
      {"n2", json{{"x", json{{"deep", 2}}}, {"y", nullptr}}},
  });
  EXPECT_EQ(v.common, (json{{"y", nullptr}}));
  for (const auto& [host, own] : v.per_host) {
    for (const auto& [key, value] : own.items()) EXPECT_FALSE(v.common.contains(key)) << key;
  }
  EXPECT_EQ(v.per_host.at("n2"), (json{{"x", json{{"deep", 2}}}}));
}

TEST(ReservedExtraVars, AnsibleMagicAndManagerNamesAreRefused) {
  for (const char* name : {"ansible_connection", "ansible_ssh_common_args", "ANSIBLE_HOST",
                           "ansible_python_interpreter", "ansible_become_exe", "hostvars",
                           "inventory_hostname", "clustermgr_epoch", "clustermgr_job_id"}) {
    EXPECT_TRUE(IsReservedExtraVar(name)) << name;
  }
  for (const char* name : {"ansible", "my_ansible_var", "ntp_server", "clustermgr_other"}) {
    EXPECT_FALSE(IsReservedExtraVar(name)) << name;
  }
  // The operator may allow ansible names, never the manager's own.
  EXPECT_FALSE(IsReservedExtraVar("ansible_port", {"ansible_port"}));
  EXPECT_TRUE(IsReservedExtraVar("clustermgr_epoch", {"clustermgr_epoch"}));

  EXPECT_EQ(CheckReservedExtraVars(json{{"a", 1}, {"ansible_connection", "local"}}),
            "\"extra_vars\" sets the reserved variable \"ansible_connection\": clients cannot "
            "choose how ansible connects or runs (an operator may allow it with "
            "--allow-extra-var)");
  EXPECT_EQ(CheckReservedExtraVars(json{{"clustermgr_job_id", "x"}}),
            "\"extra_vars\" sets the reserved variable \"clustermgr_job_id\": it is set by "
            "clustermgr for every run");
  EXPECT_EQ(CheckReservedExtraVars(json{{"ansible_port", 22}}, {"ansible_port"}), "");
  json vars = {{"ansible_user", "root"}, {"ok", 1}};
  EXPECT_EQ(DropReservedExtraVars(&vars), std::vector<std::string>{"ansible_user"});
  EXPECT_EQ(vars, json({{"ok", 1}}));
}

TEST(UnsafeYaml, TagsEveryStringAndKeepsOtherTypes) {
  const json vars = {{"cmd", "{{ lookup('pipe','id') }}"},
                     {"n", 3},
                     {"f", 1e100},
                     {"b", false},
                     {"z", nullptr},
                     {"nested", {{"k{{x}}", json::array({"a\"b\\c", 2})}}},
                     {"text", "caf\xc3\xa9 \x7f \xf0\x9f\x98\x80"}};
  EXPECT_EQ(ToUnsafeYaml(vars),
            "{!unsafe \"b\": false, !unsafe \"cmd\": !unsafe \"{{ lookup('pipe','id') }}\", "
            "!unsafe \"f\": 1.0e+100, !unsafe \"n\": 3, !unsafe \"nested\": {!unsafe "
            "\"k{{x}}\": [!unsafe \"a\\\"b\\\\c\", 2]}, !unsafe \"text\": !unsafe "
            "\"caf\\u00E9 \\u007F \\U0001F600\", !unsafe \"z\": null}\n");
  EXPECT_EQ(ToUnsafeYaml(json::object()), "{}\n");
}

TEST(SplitRunVars, OperatorValuesStayTheOperatorsUnlessAClientOverrides) {
  const json ops = {{"ntp", "{{ lookup('env','NTP') }}"}, {"dns", "1.1.1.1"}, {"keep", 1}};
  // n1's client layers override dns; n2's set keep to null (the operator's value stays).
  RunVars v = SplitRunVars(
      {{"n1", {{"dns", "9.9.9.9"}, {"app", "x"}}}, {"n2", {{"keep", nullptr}, {"app", "x"}}}}, ops);
  EXPECT_EQ(v.common, json({{"app", "x"}}));
  EXPECT_EQ(v.per_host.at("n1"), json({{"dns", "9.9.9.9"}}));
  EXPECT_EQ(v.per_host.count("n2"), 0u);
  EXPECT_EQ(v.operator_common, json({{"keep", 1}, {"ntp", "{{ lookup('env','NTP') }}"}}));
  EXPECT_EQ(v.operator_per_host.at("n2"), json({{"dns", "1.1.1.1"}}));
  EXPECT_EQ(v.operator_per_host.count("n1"), 0u);
}

}  // namespace
}  // namespace clustermgr::mgr
