#include "peersock/pairing/store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "peersock/error.hpp"
#include "peersock/text.hpp"

namespace peersock::pairing {

namespace {

Error system_error(std::string_view what, const std::string& path) {
  return Error(ExitCode::local, fmt::format("{} {}: {}", what, text::quote(path), std::strerror(errno)));
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// Creates `path` and its missing parents; the last one 0700. An existing
// peers directory that group or others can use is tightened to 0700.
void make_private_dir(const std::string& path) {
  for (size_t at = 1; at <= path.size(); ++at) {
    if (at != path.size() && path[at] != '/') continue;
    std::string part = path.substr(0, at);
    bool last = at == path.size();
    if (mkdir(part.c_str(), last ? 0700 : 0755) != 0 && errno != EEXIST) throw system_error("cannot create", part);
  }
  struct stat st{};
  if (stat(path.c_str(), &st) != 0) throw system_error("cannot read", path);
  if (!S_ISDIR(st.st_mode)) throw Error(ExitCode::local, fmt::format("{} is not a directory", text::quote(path)));
  if ((st.st_mode & 077) != 0 && chmod(path.c_str(), 0700) != 0) throw system_error("cannot make private", path);
}

bool is_pairing_name(const std::string& name) {
  try {
    check_name(name);
    return true;
  } catch (const UsageError&) {
    return false;
  }
}

}  // namespace

Store::Store(std::string dir) : dir_(std::move(dir)) {}

std::string Store::default_dir(const std::function<const char*(const char*)>& getenv) {
  const char* xdg = getenv("XDG_DATA_HOME");
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/peersock/peers";
  const char* home = getenv("HOME");
  if (home != nullptr && home[0] == '/') return std::string(home) + "/.local/share/peersock/peers";
  throw Error(ExitCode::local, "cannot find where pairings are kept: neither XDG_DATA_HOME nor HOME is an absolute path");
}

std::string Store::path_of(const std::string& name) const { return dir_ + "/" + name; }

std::optional<Pairing> Store::load(const std::string& name) const {
  check_name(name);
  const std::string path = path_of(name);
  Fd f(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (f.fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw system_error("cannot open the pairing file", path);
  }
  struct stat st{};
  if (fstat(f.fd, &st) != 0) throw system_error("cannot read the pairing file", path);
  if (!S_ISREG(st.st_mode)) throw Error(ExitCode::local, fmt::format("{} is not a regular file", text::quote(path)));
  if ((st.st_mode & 077) != 0)
    throw Error(ExitCode::local, fmt::format("the pairing file {} can be used by other users (mode {:o}); "
                                             "run chmod 600 on it, or forget the pairing and pair again",
                                             text::quote(path), st.st_mode & 0777));
  std::string textbuf;
  char buf[4096];
  for (;;) {
    ssize_t n = read(f.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw system_error("cannot read the pairing file", path);
    if (n == 0) break;
    textbuf.append(buf, static_cast<size_t>(n));
    if (textbuf.size() > 2 * sizeof buf) break;  // parse() rejects it
  }
  Pairing p = parse(textbuf, name);
  std::fill(textbuf.begin(), textbuf.end(), '\0');
  return p;
}

std::vector<Pairing> Store::list() const {
  std::vector<Pairing> out;
  struct CloseDir {
    void operator()(DIR* d) const { closedir(d); }
  };
  const std::unique_ptr<DIR, CloseDir> d(opendir(dir_.c_str()));
  if (!d) {
    if (errno == ENOENT) return out;
    throw system_error("cannot list", dir_);
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d.get())) {
    std::string name = e->d_name;
    if (is_pairing_name(name)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names)
    if (auto p = load(name)) out.push_back(std::move(*p));
  return out;
}

void Store::save(const Pairing& p, const std::function<void()>& before_rename) const {
  check_name(p.name);
  make_private_dir(dir_);
  const std::string path = path_of(p.name);
  // A leading '.' keeps it out of list() (not a pairing name).
  const std::string tmp = fmt::format("{}/.{}.{}.tmp", dir_, p.name, getpid());
  std::string content = format(p);
  {
    Fd f(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (f.fd < 0) throw system_error("cannot create", tmp);
    // O_CREAT's mode is masked by the umask; the file must be 0600 exactly.
    bool ok = fchmod(f.fd, 0600) == 0;
    for (size_t at = 0; ok && at < content.size();) {
      ssize_t n = write(f.fd, content.data() + at, content.size() - at);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) ok = false;
      else at += static_cast<size_t>(n);
    }
    ok = ok && fsync(f.fd) == 0;
    std::fill(content.begin(), content.end(), '\0');
    if (!ok) {
      Error e = system_error("cannot write", tmp);
      unlink(tmp.c_str());
      throw e;
    }
  }
  try {
    if (before_rename) before_rename();
  } catch (...) {
    unlink(tmp.c_str());
    throw;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    Error e = system_error("cannot replace", path);
    unlink(tmp.c_str());
    throw e;
  }
  Fd d(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd >= 0) fsync(d.fd);
}

}  // namespace peersock::pairing
