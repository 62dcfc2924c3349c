// Pairings on disk: one file per pairing, named after it, in
// $XDG_DATA_HOME/peersock/peers/ (default ~/.local/share/peersock/peers/).
//
// Why these rules: a pairing file is as good as a password that never
// expires, so, as ssh does for private keys, we create the directory 0700
// and the files 0600 whatever the umask, and refuse to use a file that
// others may read or write. Saving writes a temporary file in the same
// directory, fsyncs it and renames it over the old one (then fsyncs the
// directory): a crash at any point leaves either the old pairing or the new
// one, never a mix.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "peersock/pairing/pairing.hpp"

namespace peersock::pairing {

class Store {
 public:
  // `dir`: the peers directory (not created until the first save).
  explicit Store(std::string dir);

  // The directory from the environment: $XDG_DATA_HOME/peersock/peers, or
  // $HOME/.local/share/peersock/peers. Errors: Error(local) when neither
  // variable is set (or they are not absolute paths).
  static std::string default_dir(const std::function<const char*(const char*)>& getenv);

  const std::string& dir() const { return dir_; }

  // The pairing called `name`, if its file exists. Errors: UsageError for a
  // bad name; Error(local) when the file cannot be read, is not a regular
  // file, is readable or writable by group or others, or does not parse.
  std::optional<Pairing> load(const std::string& name) const;

  // Every pairing, by name. Files that are not pairings (temporary files,
  // names that are not pairing names) are skipped; one that fails to load is
  // an error, as for load(). Errors: as load().
  std::vector<Pairing> list() const;

  // Writes `p` atomically (see above), creating the directory if needed.
  // `before_rename` (tests only) runs after the temporary file is complete
  // and may throw, to stand in for a crash. Errors: Error(local) naming the
  // file and the system's reason; the old file is then untouched.
  void save(const Pairing& p, const std::function<void()>& before_rename = {}) const;

  std::string path_of(const std::string& name) const;

 private:
  std::string dir_;
};

}  // namespace peersock::pairing
