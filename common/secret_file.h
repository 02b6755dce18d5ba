// Files that hold a secret (a bearer token, an HMAC key) and the rule for
// who may read them. Shared by the daemon's [auth] metrics token, its
// [alerts] webhook secret and the CURVE key files (curve_keys.h).
#ifndef ANOMALYD_COMMON_SECRET_FILE_H_
#define ANOMALYD_COMMON_SECRET_FILE_H_

#include <string>

#include "proto/status.h"

namespace anomalyd {

// Whether `path` is a credential that systemd handed to this service
// (LoadCredential=): a regular file directly in $CREDENTIALS_DIRECTORY.
// systemd makes it mode 0400 and either owns it by the service's user or
// keeps it root's with an ACL entry that lets the service's user read it;
// stat then shows the ACL mask in the group bits (mode 0440) although no
// group can read it. Nobody can write it: the folder is mounted read-only.
bool IsSystemdCredential(const std::string& path);

// Reads the secret on the first line of `path`, surrounding blanks
// trimmed. INVALID_ARGUMENT when the line is empty, or the file is
// readable or writable by group or others (a systemd credential may show
// the group read bit, see above); IO_ERROR when it cannot be read. The
// messages name the file, never its content.
Status ReadSecretLine(const std::string& path, std::string* secret);

}  // namespace anomalyd

#endif  // ANOMALYD_COMMON_SECRET_FILE_H_
