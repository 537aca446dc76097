#include "net/curve_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "base/testing/temp_dir.h"

namespace clustermgr::net {
namespace {

class CurveKeysTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
    return path;
  }
  static mode_t Mode(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 0777;
  }

  TempDir tmp_{"curve_keys"};
  const std::string dir_ = tmp_.path();
};

TEST_F(CurveKeysTest, GeneratedPairsAreZ85AndThePublicKeyDerives) {
  auto pair = GenerateCurveKeyPair();
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  EXPECT_TRUE(IsZ85Key(pair->public_key));
  EXPECT_TRUE(IsZ85Key(pair->secret_key));
  EXPECT_NE(pair->public_key, pair->secret_key);
  EXPECT_EQ(*CurvePublicKey(pair->secret_key), pair->public_key);
  EXPECT_FALSE(IsZ85Key("short"));
  EXPECT_FALSE(IsZ85Key(std::string(40, '"')));
}

TEST_F(CurveKeysTest, KeygenFilesAreOwnerOnlyAndNeverOverwritten) {
  const auto pair = *GenerateCurveKeyPair();
  const std::string path = dir_ + "/a.key";
  const mode_t old_umask = umask(0);  // the files' modes must not depend on the umask
  Status s = WriteKeyPairFiles(path, pair, "a");
  umask(old_umask);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ(Mode(path + ".pub"), 0644u);
  auto loaded = LoadSecretKeyFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->public_key, pair.public_key);
  EXPECT_EQ(loaded->secret_key, pair.secret_key);
  // The .pub is a one-line allow-list and a server-key file.
  auto list = LoadAllowList(path + ".pub");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].key, pair.public_key);
  EXPECT_EQ((*list)[0].name, "a");
  EXPECT_EQ(*LoadPublicKeyArg(path + ".pub"), pair.public_key);
  EXPECT_EQ(*LoadPublicKeyArg(path), pair.public_key);
  EXPECT_EQ(*LoadPublicKeyArg(pair.public_key), pair.public_key);

  const auto other = *GenerateCurveKeyPair();
  Status again = WriteKeyPairFiles(path, other, "a");
  EXPECT_EQ(again.code(), Code::kFailedPrecondition);
  EXPECT_EQ(again.message(), path + " already exists; not overwritten");
  EXPECT_EQ(LoadSecretKeyFile(path)->secret_key, pair.secret_key);  // untouched
  // Only the .pub left over: still refused, and the secret file is not created.
  std::filesystem::remove(path);
  EXPECT_EQ(WriteKeyPairFiles(path, other, "a").code(), Code::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(CurveKeysTest, SecretKeyFileReadableByOthersIsRefused) {
  const auto pair = *GenerateCurveKeyPair();
  const std::string path = Write("k", "secret-key " + pair.secret_key + "\n", 0644);
  auto r = LoadSecretKeyFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(r.status().message(), path + " is readable by others; chmod 600 it");
  chmod(path.c_str(), 0640);
  EXPECT_FALSE(LoadSecretKeyFile(path).ok());
  chmod(path.c_str(), 0400);
  EXPECT_TRUE(LoadSecretKeyFile(path).ok());
}

TEST_F(CurveKeysTest, SecretKeyFileErrorsNameFileAndLine) {
  const auto a = *GenerateCurveKeyPair();
  const auto b = *GenerateCurveKeyPair();
  auto msg = [](const Result<CurveKeyPair>& r) { return r.ok() ? "ok" : r.status().message(); };
  std::string p =
      Write("mismatch", "# c\npublic-key " + b.public_key + "\nsecret-key " + a.secret_key + "\n");
  EXPECT_EQ(msg(LoadSecretKeyFile(p)), p + ":2: public-key does not belong to the secret-key");
  p = Write("bad", "secret-key tooshort\n");
  EXPECT_EQ(msg(LoadSecretKeyFile(p)), p + ":1: not a 40-character Z85 key");
  p = Write("junk", "\nhello world\n");
  EXPECT_EQ(msg(LoadSecretKeyFile(p)), p + ":2: expected \"public-key KEY\" or \"secret-key KEY\"");
  p = Write("none", "# only a comment\n");
  EXPECT_EQ(msg(LoadSecretKeyFile(p)), p + ": no \"secret-key KEY\" line (not a secret key file)");
  EXPECT_EQ(LoadSecretKeyFile(dir_ + "/missing").status().code(), Code::kNotFound);
}

TEST_F(CurveKeysTest, AllowListParsesNamesEndpointsAndComments) {
  const auto a = *GenerateCurveKeyPair();
  const auto b = *GenerateCurveKeyPair();
  const std::string p = Write("list",
                              "# managers\n\n" + a.public_key + "\n   " + b.public_key +
                                  " mgr-b tcp://10.0.0.2:9008  # the second one\n",
                              0644);
  auto list = LoadAllowList(p);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].key, a.public_key);
  EXPECT_EQ((*list)[0].line, 3);
  EXPECT_EQ((*list)[1].name, "mgr-b");
  EXPECT_EQ((*list)[1].endpoint, "tcp://10.0.0.2:9008");

  auto msg = [](const Result<std::vector<AllowedKey>>& r) {
    return r.ok() ? std::string("ok") : r.status().message();
  };
  std::string bad = Write("bad", a.public_key + "\nnot-a-key\n");
  EXPECT_EQ(msg(LoadAllowList(bad)),
            bad + ":2: expected a 40-character Z85 public key, got \"not-a-key\"");
  bad = Write("twice", a.public_key + " x\n" + a.public_key + " y\n");
  EXPECT_EQ(msg(LoadAllowList(bad)), bad + ":2: key listed twice");
  bad = Write("long", a.public_key + " x tcp://h:1 extra\n");
  EXPECT_EQ(msg(LoadAllowList(bad)), bad + ":1: expected \"KEY [NAME [ENDPOINT]] [role=ROLE]\"");
  bad = Write("empty", "# nobody\n");
  EXPECT_EQ(msg(LoadAllowList(bad)), bad + ": lists no key");
}

TEST_F(CurveKeysTest, PublicKeyArgRejectsWhatIsNeitherKeyNorFile) {
  auto r = LoadPublicKeyArg("nonsense");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "\"nonsense\" is neither a readable file nor a 40-character Z85 key (tried the file "
            "first)");
}

TEST_F(CurveKeysTest, PublicKeyArgPrefersAFileWhosePathLooksLikeAKey) {
  const auto pair = *GenerateCurveKeyPair();
  // A relative path of exactly 40 Z85 characters (letters only), in the test's temp dir.
  const std::string name(40, 'k');
  ASSERT_TRUE(IsZ85Key(name));
  const std::string cwd = std::filesystem::current_path().string();
  std::filesystem::current_path(dir_);
  { std::ofstream(name) << pair.public_key << " server\n"; }
  auto r = LoadPublicKeyArg(name);
  std::filesystem::current_path(cwd);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, pair.public_key);
  // Without such a file the same text is a key.
  EXPECT_EQ(*LoadPublicKeyArg(std::string(40, 'q')), std::string(40, 'q'));
}

}  // namespace
}  // namespace clustermgr::net
