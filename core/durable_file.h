// Files that survive a crash at any instant: a whole-file replace that leaves either the old or the new
// complete file (temporary + fsync + rename + fsync of the directory), and an append-only log whose only
// possible damage after a SIGKILL or power loss is a torn last line. Every file the trainer rewrites goes
// through these, so "the old version or the new one, never a mix" is decided in one place.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace rwkv {

// Makes `path`'s contents (or, with directory = true, the entries of the directory `path`) durable.
// Throws rwkv::Error naming the path when it cannot.
void fsync_path(const std::string& path, bool directory = false);

// The temporary name a writer of `path` uses: "<path>.tmp-<pid>", so that concurrent writers never share one
// and a leftover can be traced to a process that no longer exists.
std::string temporary_path_for(const std::string& path);

// Removes the temporaries that writers killed mid-write (SIGKILL, power loss) left in `directory`:
// "<name>.tmp-<pid>" of a process that no longer exists, for the names `ours` accepts (a user's own files with
// such names are left alone). Best effort: what cannot be removed stays for a later call.
void remove_stale_temporaries(const std::string& directory, const std::function<bool(std::string_view)>& ours);

// Replaces `path` with `bytes` atomically and durably: after a crash at any moment, `path` holds either its old
// contents or `bytes`, never a mix or a truncation. Throws rwkv::Error naming the file; on failure the old file
// is untouched and the temporary is removed.
void replace_file_atomically(const std::string& path, std::string_view bytes);

// An append-only text log opened with O_APPEND. Each append is one write(2) of one whole record, so a kill
// between two appends loses nothing and one during an append leaves at most a torn last line (which readers
// skip and `open` cuts off). sync() makes what was appended durable.
class AppendOnlyFile {
public:
  AppendOnlyFile() = default;
  explicit AppendOnlyFile(const std::string& path);  // creates the file if it does not exist
  AppendOnlyFile(AppendOnlyFile&& other) noexcept;
  AppendOnlyFile& operator=(AppendOnlyFile&& other) noexcept;
  AppendOnlyFile(const AppendOnlyFile&) = delete;
  AppendOnlyFile& operator=(const AppendOnlyFile&) = delete;
  ~AppendOnlyFile();

  void append(std::string_view record);  // throws rwkv::Error naming the file on a short or failed write
  void sync();
  const std::string& path() const { return path_; }

private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace rwkv
