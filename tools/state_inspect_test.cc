#include "tools/state_inspect.h"

#include <gtest/gtest.h>
#include <leveldb/db.h>

#include <algorithm>
#include <random>
#include <sstream>

#include "net/testing/fake_rpc_handler.h"
#include "store/codec.h"
#include "store/keys.h"
#include "store/store.h"
#include "store/testing/random_replica.h"
#include "base/testing/temp_dir.h"

namespace clustermgr::tools {
namespace {

using crdt::ClusterState;
using crdt::Delta;
using crdt::HlcTimestamp;
using store::RandomReplica;
using store::Store;

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome Inspect(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = RunStateInspect(args, out, err);
  return Outcome{code, out.str(), err.str()};
}

std::unique_ptr<Store> OpenStore(const std::string& dir, const std::string& name) {
  store::Options o;
  o.instance_name = name;
  auto s = Store::Open(dir, o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

// Deltas from two origins, as two instances would exchange them.
std::vector<Delta> SomeDeltas(uint64_t seed, int n) {
  RandomReplica a("a/00000000000000aa", seed), b("b/00000000000000bb", seed + 1);
  std::mt19937_64 rng(seed);
  std::vector<Delta> out;
  for (int i = 0; i < n; ++i) {
    RandomReplica& r = rng() % 2 ? a : b;
    out.push_back(r.Next(5));
    if (rng() % 3 == 0) (&r == &a ? b : a).Receive(out.back());
  }
  return out;
}

TEST(StateInspectTest, DumpOfEqualStatesIsByteIdentical) {
  TempDir tmp;
  const std::vector<Delta> deltas = SomeDeltas(42, 200);
  {
    auto one = OpenStore(tmp.Sub("one"), "one");
    auto two = OpenStore(tmp.Sub("two"), "two");
    // The same deltas, in another order and other groups.
    for (const Delta& d : deltas) ASSERT_TRUE(one->Commit({d}, {}, 0).ok());
    std::vector<Delta> shuffled = deltas;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(7));
    for (size_t i = 0; i < shuffled.size(); i += 3) {
      std::vector<Delta> group(shuffled.begin() + i,
                               shuffled.begin() + std::min(i + 3, shuffled.size()));
      ASSERT_TRUE(two->Commit(group, {}, 0).ok());
    }
    // Dumped while the stores are open, as beside a running daemon.
    const Outcome a = Inspect({"dump", tmp.Sub("one")});
    const Outcome b = Inspect({"dump", tmp.Sub("two")});
    ASSERT_EQ(a.code, kExitOk) << a.err;
    ASSERT_EQ(b.code, kExitOk) << b.err;
    EXPECT_EQ(a.out, b.out);
    EXPECT_TRUE(a.err.empty()) << a.err;
    const auto doc = nlohmann::json::parse(a.out);
    for (const char* s : {"globals", "node_vars", "host_groups", "inventory", "jobs", "job_logs",
                          "config", "token_epoch"}) {
      EXPECT_TRUE(doc.contains(s)) << s;
    }
    EXPECT_FALSE(doc["globals"].empty());
  }
  // And the same again after the stores are closed.
  EXPECT_EQ(Inspect({"dump", tmp.Sub("one")}).out, Inspect({"dump", tmp.Sub("two")}).out);
  EXPECT_EQ(Inspect({"diff", tmp.Sub("one"), tmp.Sub("two")}).code, kExitOk);
  // Meta differs (instance names), as it should.
  EXPECT_NE(Inspect({"dump", tmp.Sub("one"), "--section", "meta"}).out,
            Inspect({"dump", tmp.Sub("two"), "--section", "meta"}).out);
}

TEST(StateInspectTest, DiffShowsExactlyTheInjectedDifferences) {
  TempDir tmp;
  const std::vector<Delta> deltas = SomeDeltas(5, 100);
  auto one = OpenStore(tmp.Sub("one"), "one");
  auto two = OpenStore(tmp.Sub("two"), "two");
  ASSERT_TRUE(one->Commit(deltas, {}, 0).ok());
  ASSERT_TRUE(two->Commit(deltas, {}, 0).ok());
  EXPECT_TRUE(DiffStates(one->State(), two->State()).empty());

  // B gets: a changed global, a new node var, an erased config key that A never had.
  const std::string me = two->origin();
  crdt::DeltaBuilder b(two->State(), {{9, HlcTimestamp::Make(2'000'000'000'000, 0), me}, 1});
  b.SetGlobal("g1", "\"changed\"");
  b.SetNodeVar("n-new", "var", "[1,2]");
  b.SetConfig("only-in-b", "true");
  ASSERT_TRUE(two->Commit({Delta{me, 1, std::move(b).Take()}}, {}, 1).ok());
  // A gets an epoch B does not have.
  crdt::DeltaBuilder a(one->State(), {{0, HlcTimestamp::Make(1, 0), one->origin()}, 1});
  a.RaiseEpoch(1000);
  ASSERT_TRUE(one->Commit({Delta{one->origin(), 1, std::move(a).Take()}}, {}, 1).ok());

  const Outcome r = Inspect({"diff", tmp.Sub("one"), tmp.Sub("two")});
  EXPECT_EQ(r.code, kExitFound) << r.err;
  std::vector<std::string> lines;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0].rfind("globals \"g1\": A ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("| B {\"stamp\":{\"epoch\":9,"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("\"value\":\"changed\""), std::string::npos) << lines[0];
  EXPECT_EQ(lines[1].rfind("node_vars [\"n-new\",\"var\"]: A absent | B ", 0), 0u) << lines[1];
  EXPECT_NE(lines[1].find("\"value\":[1,2]"), std::string::npos) << lines[1];
  EXPECT_EQ(lines[2].rfind("config \"only-in-b\": A absent | B ", 0), 0u) << lines[2];
  EXPECT_EQ(lines[3],
            "token_epoch: A 1000 | B " + std::to_string(two->State().token_epoch.value()));
}

TEST(StateInspectTest, VerifyPassesACleanStoreAndListsEveryProblem) {
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  {
    auto s = OpenStore(dir, "m1");
    RandomReplica r(s->origin(), 3);
    for (int i = 0; i < 50; ++i) {
      Delta d = r.Next(4);
      ASSERT_TRUE(s->Commit({d}, r.hlc(), r.seq()).ok());
    }
  }
  Outcome ok = Inspect({"verify", dir});
  EXPECT_EQ(ok.code, kExitOk) << ok.out << ok.err;
  EXPECT_EQ(ok.out.rfind("ok: ", 0), 0u) << ok.out;

  {
    leveldb::DB* db = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(leveldb::Options(), dir, &db).ok());
    leveldb::WriteOptions w;
    ASSERT_TRUE(db->Put(w, store::GlobalKey("broken"), "garbage!").ok());  // 8 bytes: bad message
    ASSERT_TRUE(db->Put(w, "\x7funknown", "x").ok());
    // An element whose dot the context never saw.
    ASSERT_TRUE(db->Put(w, store::HostGroupKey("ghost", "service-master"),
                        store::EncodeElement({crdt::Dot{"nobody/1", 5}}))
                    .ok());
    delete db;
  }
  Outcome bad = Inspect({"verify", dir});
  EXPECT_EQ(bad.code, kExitFound);
  std::vector<std::string> lines;
  std::istringstream in(bad.out);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 3u) << bad.out;
  EXPECT_EQ(lines[0].rfind("problem: \\x10broken\\x00\\x01: ", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1], "problem: \\x7funknown: key in no known section");
  EXPECT_EQ(lines[2],
            "problem: \\x12ghost\\x00\\x01service-master\\x00\\x01: dot nobody/1:5 is not "
            "covered by the context");
  EXPECT_NE(bad.err.find("3 problem(s)"), std::string::npos) << bad.err;
  // dump still works, with a warning.
  Outcome dump = Inspect({"dump", dir});
  EXPECT_EQ(dump.code, kExitOk);
  EXPECT_NE(dump.err.find("warning"), std::string::npos);
}

TEST(StateInspectTest, StatsAndSections) {
  TempDir tmp;
  const std::string dir = tmp.Sub("data");
  {
    auto s = OpenStore(dir, "m1");
    ASSERT_TRUE(s->Commit(SomeDeltas(9, 60), {}, 0).ok());
  }
  Outcome text = Inspect({"stats", dir});
  ASSERT_EQ(text.code, kExitOk) << text.err;
  EXPECT_NE(text.out.find("globals"), std::string::npos);
  EXPECT_NE(text.out.find("delta log a/00000000000000aa: "), std::string::npos) << text.out;
  Outcome js = Inspect({"stats", dir, "--json"});
  ASSERT_EQ(js.code, kExitOk);
  const auto doc = nlohmann::json::parse(js.out);
  EXPECT_GT(doc["sections"]["globals"]["records"].get<uint64_t>(), 0u);
  EXPECT_EQ(doc["sections"]["meta"]["records"], 1);
  EXPECT_EQ(doc["delta_log"].size(), 2u);
  EXPECT_EQ(doc["meta"]["instance"], "m1");

  for (store::Section s : store::AllSections()) {
    Outcome r = Inspect({"dump", dir, "--section", std::string(store::SectionName(s))});
    EXPECT_EQ(r.code, kExitOk) << store::SectionName(s) << r.err;
    EXPECT_TRUE(nlohmann::json::parse(r.out).contains(std::string(store::SectionName(s))));
  }
  const auto log = nlohmann::json::parse(Inspect({"dump", dir, "--section=delta_log"}).out);
  EXPECT_EQ(log["delta_log"].size(), 60u);
}

TEST(StateInspectTest, UsageAndUnreadableDirs) {
  TempDir tmp;
  EXPECT_EQ(Inspect({}).code, kExitUsage);
  EXPECT_EQ(Inspect({"frobnicate", "x"}).code, kExitUsage);
  EXPECT_EQ(Inspect({"dump"}).code, kExitUsage);
  EXPECT_EQ(Inspect({"diff", "a"}).code, kExitUsage);
  EXPECT_EQ(Inspect({"dump", "x", "--section", "nope"}).code, kExitUsage);
  EXPECT_EQ(Inspect({"verify", "x", "--bogus"}).code, kExitUsage);
  EXPECT_EQ(Inspect({"--help"}).code, kExitOk);
  Outcome missing = Inspect({"verify", tmp.Sub("missing")});
  EXPECT_EQ(missing.code, kExitUnreadable);
  EXPECT_EQ(missing.err, "state-inspect: data dir " + tmp.Sub("missing") + " does not exist\n");
  Outcome empty = Inspect({"dump", tmp.path()});
  EXPECT_EQ(empty.code, kExitUnreadable);
  EXPECT_NE(empty.err.find("holds no store"), std::string::npos);
}

TEST(StateInspectTest, UrlSources) {
  TempDir tmp;
  EXPECT_EQ(Inspect({"dump", "--url"}).code, kExitUsage);
  EXPECT_EQ(Inspect({"dump", "--url="}).code, kExitUsage);
  EXPECT_EQ(Inspect({"dump", "--url", "tcp://127.0.0.1:1", tmp.path()}).code, kExitUsage);
  EXPECT_EQ(Inspect({"diff", "--url", "tcp://127.0.0.1:1"}).code, kExitUsage);
  Outcome verify = Inspect({"verify", "--url", "tcp://127.0.0.1:1"});
  EXPECT_EQ(verify.code, kExitUsage);
  EXPECT_NE(verify.err.find("verify reads a data dir"), std::string::npos) << verify.err;
  Outcome meta = Inspect({"dump", "--url", "tcp://127.0.0.1:1", "--section", "meta"});
  EXPECT_EQ(meta.code, kExitUsage);
  EXPECT_NE(meta.err.find("not part of a live --url's state"), std::string::npos) << meta.err;

  // A daemon that cannot dump its state: unreadable, one line naming the URL.
  net::FakeManager fake;
  Outcome refused = Inspect({"stats", "--url=" + fake.endpoint()});
  EXPECT_EQ(refused.code, kExitUnreadable);
  EXPECT_EQ(refused.err, "state-inspect: " + fake.endpoint() + ": the fake has no state to dump\n");
}

}  // namespace
}  // namespace clustermgr::tools
