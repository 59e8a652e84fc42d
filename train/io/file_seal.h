// A seal on a finished file: its first kSealBytes (an HDF5 user block, which HDF5 skips) record the file's
// length and a checksum of everything after them. Checkpoints are sealed when written; every HDF5 open checks
// a sealed file first, so truncation or damage (bit rot, a bad copy, an edit) is reported by name and never
// reaches the HDF5 library, which can crash on damaged metadata. Files without a seal (other tools' files,
// older checkpoints) are opened as before.
#pragma once

#include <cstddef>
#include <string>

namespace rwkv {

inline constexpr std::size_t kSealBytes = 512;  // HDF5 user blocks are 0 or a power of two >= 512

// Writes the seal into the reserved first kSealBytes of a complete, closed file. Throws naming the file.
void seal_file(const std::string& path);

// Throws naming the file when it carries a seal that does not match its contents; does nothing for a file
// without one. A file that passed is remembered (by inode, size and modification time) and not read again.
void check_seal(const std::string& path);

}  // namespace rwkv
