// CURVE keys (ZeroMQ's CurveZMQ, RFC 26): generating key pairs, the key files clustermgr reads
// and writes, and applying keys to sockets. Every key here is a 40-character Z85 string.
//
// File formats (one parser for all of them: this module):
//   Secret key file (`clustermgr keygen` writes it owner-only, 0600):
//       # comment lines start with '#'
//       public-key <Z85>          optional; when present it must match the secret key
//       secret-key <Z85>
//   Public key file (PATH.pub, 0644): one allow-list line, "<Z85> <name>", so that it can be
//   appended to an allow-list as is.
//   Allow-list file (--curve-clients, --curve-peers): see net/allow_list.h.
// Errors name the file and, for content errors, the line: "FILE:LINE: ...".
//
// Thread-safety: all functions are reentrant. ZeroMQ exceptions do not escape
// (ApplyCurve* report them as a Status).
#pragma once

#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "base/status.h"
#include "net/allow_list.h"

namespace clustermgr::net {

inline constexpr std::size_t kZ85KeyLength = 40;

// ZAP domains (ZMQ_ZAP_DOMAIN) of clustermgr's CURVE servers; net/zap_handler.h admits by them.
inline constexpr std::string_view kZapDomainRpc = "rpc";
inline constexpr std::string_view kZapDomainGossip = "gossip";

struct CurveKeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85
};

// A CURVE server socket: the instance secret key and the ZAP domain its clients are judged by.
struct CurveServerConfig {
  std::string secret_key;
  std::string zap_domain;
};

// A CURVE client socket: the server's public key and the client's own key pair.
struct CurveClientConfig {
  std::string server_key;
  CurveKeyPair client;
};

// True when `text` is 40 characters of the Z85 alphabet (it may still be an unusable key).
bool IsZ85Key(std::string_view text);

// Whether this libzmq was built with CURVE (zmq_has("curve")).
bool CurveAvailable();

// A fresh key pair. Errors: kUnavailable (libzmq without CURVE), kInternal.
Result<CurveKeyPair> GenerateCurveKeyPair();

// The public key of `secret_key`. Errors: kInvalidArgument (not a Z85 key), kUnavailable.
Result<std::string> CurvePublicKey(const std::string& secret_key);

// Writes `path` (the secret key file, mode 0600) and `path`.pub (mode 0644), both created with
// O_EXCL: an existing file is never overwritten. `name` labels the .pub line.
// Errors: kFailedPrecondition "PATH already exists; not overwritten", kIoError (cannot create or
// write; a half-written pair is removed).
Status WriteKeyPairFiles(const std::string& path, const CurveKeyPair& pair,
                         const std::string& name);

// Reads a secret key file. Refuses (kFailedPrecondition) a file that the group or others may
// read or write: "FILE is readable by others; chmod 600 it". Errors: kNotFound / kIoError
// (cannot read), kInvalidArgument (no secret-key line, a bad key, a public-key that does not
// match, an unknown line), each naming file and line.
Result<CurveKeyPair> LoadSecretKeyFile(const std::string& path);

// A server public key given as a file holding it (a .pub file, an allow-list whose first entry
// is used, or a key pair file's public-key) or as the key itself. A regular file of that name
// wins, even when the name is also 40 Z85 characters; otherwise the argument must be a key.
// Errors: those of the file readers (saying the file was read); kInvalidArgument when neither a
// file nor a key ("... is neither a readable file nor a 40-character Z85 key").
Result<std::string> LoadPublicKeyArg(const std::string& key_or_file);

// Socket setup; call before bind/connect. Errors: kInvalidArgument (a bad key), kUnavailable
// (libzmq without CURVE), kInternal.
Status ApplyCurveServer(zmq::socket_t& socket, const CurveServerConfig& config);
Status ApplyCurveClient(zmq::socket_t& socket, const CurveClientConfig& config);

// The CURVE key a ZAP handler gave a received message's connection (its "User-Id" property),
// or "" when there is none (a plain connection).
std::string PeerKeyOf(const zmq::message_t& message);

}  // namespace clustermgr::net
