#include "net/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace clustermgr::net {
namespace {

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
// A key file is a few lines; anything much larger is not one.
constexpr std::size_t kMaxKeyFileBytes = 1 << 20;

Status Bad(const std::string& text) { return Status(Code::kInvalidArgument, text); }

std::string At(const std::string& path, int line) { return path + ":" + std::to_string(line); }

// The words of a line up to a '#' word (a comment).
std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string w; in >> w;) {
    if (w[0] == '#') break;
    words.push_back(w);
  }
  return words;
}

Result<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    const int err = errno;
    return Status(err == ENOENT ? Code::kNotFound : Code::kIoError,
                  "cannot read " + path + ": " + std::strerror(err));
  }
  std::vector<std::string> lines;
  std::size_t total = 0;
  for (std::string line; std::getline(in, line);) {
    total += line.size() + 1;
    if (total > kMaxKeyFileBytes) return Bad(path + ": too large for a key file");
    lines.push_back(std::move(line));
  }
  if (in.bad()) return Status(Code::kIoError, "cannot read " + path);
  return lines;
}

Status WriteNew(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status(Code::kFailedPrecondition, path + " already exists; not overwritten");
    }
    return Status(Code::kIoError, "cannot create " + path + ": " + std::strerror(errno));
  }
  // The umask may have taken bits away, never added: set exactly the mode asked for.
  bool ok = fchmod(fd, mode) == 0;
  std::size_t done = 0;
  while (ok && done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  ok = ok && fsync(fd) == 0;
  const int err = errno;
  ok = close(fd) == 0 && ok;
  if (!ok) {
    unlink(path.c_str());
    return Status(Code::kIoError, "cannot write " + path + ": " + std::strerror(err));
  }
  return Status::Ok();
}

Status ZmqStatus(const zmq::error_t& e, const char* what) {
  const Code code = e.num() == EINVAL ? Code::kInvalidArgument : Code::kInternal;
  return Status(code, std::string(what) + ": " + e.what());
}

}  // namespace

bool IsZ85Key(std::string_view text) {
  return text.size() == kZ85KeyLength && text.find_first_not_of(kZ85Alphabet) == text.npos;
}

bool CurveAvailable() { return zmq_has("curve") != 0; }

Result<CurveKeyPair> GenerateCurveKeyPair() {
  if (!CurveAvailable()) return Status(Code::kUnavailable, "this libzmq has no CURVE support");
  char pub[kZ85KeyLength + 1] = {};
  char sec[kZ85KeyLength + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Status(Code::kInternal, std::string("zmq_curve_keypair: ") + zmq_strerror(errno));
  }
  return CurveKeyPair{pub, sec};
}

Result<std::string> CurvePublicKey(const std::string& secret_key) {
  if (!IsZ85Key(secret_key)) return Bad("not a 40-character Z85 key");
  if (!CurveAvailable()) return Status(Code::kUnavailable, "this libzmq has no CURVE support");
  char pub[kZ85KeyLength + 1] = {};
  if (zmq_curve_public(pub, secret_key.c_str()) != 0) return Bad("not a usable CURVE secret key");
  return std::string(pub);
}

Status WriteKeyPairFiles(const std::string& path, const CurveKeyPair& pair,
                         const std::string& name) {
  const std::string pub_path = path + ".pub";
  // Check both before creating either, so a refusal leaves nothing behind.
  for (const std::string& p : {path, pub_path}) {
    struct stat st {};
    if (lstat(p.c_str(), &st) == 0) {
      return Status(Code::kFailedPrecondition, p + " already exists; not overwritten");
    }
  }
  const std::string secret_text =
      "# clustermgr CURVE key pair. Keep this file secret and owner-only (chmod 600).\n"
      "public-key " +
      pair.public_key + "\nsecret-key " + pair.secret_key + "\n";
  if (Status s = WriteNew(path, secret_text, 0600); !s.ok()) return s;
  const std::string label = name.empty() ? std::string() : " " + name;
  if (Status s = WriteNew(pub_path, pair.public_key + label + "\n", 0644); !s.ok()) {
    unlink(path.c_str());
    return s;
  }
  return Status::Ok();
}

Result<CurveKeyPair> LoadSecretKeyFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return Status(err == ENOENT ? Code::kNotFound : Code::kIoError,
                  "cannot read " + path + ": " + std::strerror(err));
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return Status(Code::kFailedPrecondition, path + " is readable by others; chmod 600 it");
  }
  auto lines = ReadLines(path);
  if (!lines.ok()) return lines.status();
  std::string public_key;
  std::string secret_key;
  int public_line = 0;
  for (std::size_t i = 0; i < lines->size(); ++i) {
    const int n = static_cast<int>(i) + 1;
    const std::vector<std::string> w = Words((*lines)[i]);
    if (w.empty()) continue;
    if (w.size() != 2 || (w[0] != "public-key" && w[0] != "secret-key")) {
      return Bad(At(path, n) + ": expected \"public-key KEY\" or \"secret-key KEY\"");
    }
    if (!IsZ85Key(w[1])) return Bad(At(path, n) + ": not a 40-character Z85 key");
    if (w[0] == "secret-key") {
      secret_key = w[1];
    } else {
      public_key = w[1];
      public_line = n;
    }
  }
  if (secret_key.empty()) return Bad(path + ": no \"secret-key KEY\" line (not a secret key file)");
  auto derived = CurvePublicKey(secret_key);
  if (!derived.ok())
    return Status(derived.status().code(), path + ": " + derived.status().message());
  if (!public_key.empty() && public_key != *derived) {
    return Bad(At(path, public_line) + ": public-key does not belong to the secret-key");
  }
  return CurveKeyPair{*derived, secret_key};
}

Result<std::string> LoadPublicKeyArg(const std::string& key_or_file) {
  // A file wins: a 40-character path can also look like a Z85 key.
  struct stat st {};
  if (stat(key_or_file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    if (IsZ85Key(key_or_file)) return key_or_file;
    return Bad("\"" + key_or_file +
               "\" is neither a readable file nor a 40-character Z85 key (tried the file first)");
  }
  auto lines = ReadLines(key_or_file);
  if (!lines.ok()) {
    return Status(lines.status().code(),
                  lines.status().message() + " (read as a key file; it is not a Z85 key either)");
  }
  for (std::size_t i = 0; i < lines->size(); ++i) {
    const std::vector<std::string> w = Words((*lines)[i]);
    if (w.empty()) continue;
    if (w[0] == "public-key" && w.size() == 2 && IsZ85Key(w[1])) return w[1];
    if (w[0] == "secret-key") continue;
    if (IsZ85Key(w[0])) return w[0];
    return Bad(At(key_or_file, static_cast<int>(i) + 1) +
               ": expected a 40-character Z85 public key");
  }
  return Bad(key_or_file + ": holds no public key");
}

Status ApplyCurveServer(zmq::socket_t& socket, const CurveServerConfig& config) {
  if (!CurveAvailable()) return Status(Code::kUnavailable, "this libzmq has no CURVE support");
  if (!IsZ85Key(config.secret_key)) return Bad("CURVE secret key: not a Z85 key");
  try {
    socket.set(zmq::sockopt::curve_server, true);
    socket.set(zmq::sockopt::curve_secretkey, config.secret_key);
    socket.set(zmq::sockopt::zap_domain, config.zap_domain);
    return Status::Ok();
  } catch (const zmq::error_t& e) {
    return ZmqStatus(e, "cannot make a CURVE server socket");
  }
}

Status ApplyCurveClient(zmq::socket_t& socket, const CurveClientConfig& config) {
  if (!CurveAvailable()) return Status(Code::kUnavailable, "this libzmq has no CURVE support");
  if (!IsZ85Key(config.server_key)) return Bad("CURVE server key: not a Z85 key");
  if (!IsZ85Key(config.client.public_key) || !IsZ85Key(config.client.secret_key)) {
    return Bad("CURVE client key pair: not Z85 keys");
  }
  try {
    socket.set(zmq::sockopt::curve_serverkey, config.server_key);
    socket.set(zmq::sockopt::curve_publickey, config.client.public_key);
    socket.set(zmq::sockopt::curve_secretkey, config.client.secret_key);
    return Status::Ok();
  } catch (const zmq::error_t& e) {
    return ZmqStatus(e, "cannot make a CURVE client socket");
  }
}

std::string PeerKeyOf(const zmq::message_t& message) {
  // zmq_msg_gets fails (EINVAL) when the connection carries no such property.
  const char* value = zmq_msg_gets(message.handle(), "User-Id");
  return value ? std::string(value) : std::string();
}

}  // namespace clustermgr::net
