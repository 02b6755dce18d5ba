// CURVE key files, shared by anomalyd and its clients. The format is
// ZeroMQ's certificate format (czmq zcert, pyzmq zmq.auth): text with
// `public-key = "<Z85>"` and, in a secret file, `secret-key = "<Z85>"`.
// `anomalyctl keygen` writes NAME.key (public, give it away) and
// NAME.key_secret (both keys, mode 0600). Keys are 40 Z85 characters.
#ifndef ANOMALYD_COMMON_CURVE_KEYS_H_
#define ANOMALYD_COMMON_CURVE_KEYS_H_

#include <string>

#include "proto/status.h"

namespace anomalyd {

// Z85 text; secret_key is empty for a public key file.
struct CurveKeyPair {
  std::string public_key;
  std::string secret_key;
};

// What a client needs to talk to a CURVE endpoint. All empty: plaintext.
struct CurveClientKeys {
  std::string server_key;  // the server's public key
  CurveKeyPair client;     // the client's own pair
  bool enabled() const { return !server_key.empty(); }
};

// A fresh random key pair. INTERNAL when libzmq has no CURVE support.
Status GenerateKeyPair(CurveKeyPair* out);

// Reads a key file. With `need_secret` the file must hold a secret key that
// matches its public key, and be neither readable nor writable by group or
// others; any key file must not be writable by group or others (someone
// else could swap the key). A secret key that systemd passed as a
// credential (directly in $CREDENTIALS_DIRECTORY) may show the group read
// bit: that is how an ACL granting the service's user read access looks.
// INVALID_ARGUMENT naming the file (and its mode) otherwise; IO_ERROR when
// it cannot be read.
Status ReadKeyFile(const std::string& path, bool need_secret, CurveKeyPair* out);

// INVALID_ARGUMENT naming `path` and its mode when it has any of the
// permission bits in `forbidden` (e.g. 077); IO_ERROR when it is missing.
Status CheckMode(const std::string& path, unsigned forbidden, const char* why);

// Writes DIR/NAME.key (0644) and DIR/NAME.key_secret (0600), creating DIR
// (0700) if needed. Refuses to overwrite existing files. On success
// *public_path is the public file.
Status WriteKeyFiles(const std::string& dir, const std::string& name,
                     const CurveKeyPair& keys, std::string* public_path);

// Loads the files given to a client: the server's public key file and the
// client's secret key file. Both empty: *out is cleared (plaintext).
Status LoadClientKeys(const std::string& server_key_file,
                      const std::string& client_key_file, CurveClientKeys* out);

}  // namespace anomalyd

#endif  // ANOMALYD_COMMON_CURVE_KEYS_H_
