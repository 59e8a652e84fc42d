#include "data/unicode.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace rwkv::data::unicode {

namespace {

// Hangul syllable arithmetic (Unicode chapter 3.12).
constexpr char32_t kHangulFirst = 0xAC00;
constexpr char32_t kJamoLeadFirst = 0x1100;
constexpr char32_t kJamoVowelFirst = 0x1161;
constexpr char32_t kJamoTrailFirst = 0x11A7;
constexpr char32_t kJamoLeadCount = 19;
constexpr char32_t kJamoVowelCount = 21;
constexpr char32_t kJamoTrailCount = 28;
constexpr char32_t kHangulPerLead = kJamoVowelCount * kJamoTrailCount;
constexpr char32_t kHangulCount = kJamoLeadCount * kHangulPerLead;

constexpr char32_t kNoComposition = 0xFFFFFFFF;

// Bytes that may follow a lead byte as its first continuation, per Unicode Table 3-7.
struct LeadRule {
  std::size_t length;
  unsigned char second_low;
  unsigned char second_high;
};

LeadRule lead_rule(unsigned char lead) {
  if (lead >= 0xC2 && lead <= 0xDF) return {2, 0x80, 0xBF};
  if (lead == 0xE0) return {3, 0xA0, 0xBF};
  if (lead == 0xED) return {3, 0x80, 0x9F};
  if (lead >= 0xE1 && lead <= 0xEF) return {3, 0x80, 0xBF};
  if (lead == 0xF0) return {4, 0x90, 0xBF};
  if (lead >= 0xF1 && lead <= 0xF3) return {4, 0x80, 0xBF};
  if (lead == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes of the sequence at text[pos] are well formed: the full length when it is valid, else
// the length of the maximal ill-formed prefix (at least 1), with valid = false.
std::size_t scan_sequence(std::string_view text, std::size_t pos, bool& valid) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const LeadRule rule = lead_rule(lead);
  valid = false;
  if (rule.length == 0) return 1;
  std::size_t seen = 1;
  for (; seen < rule.length && pos + seen < text.size(); ++seen) {
    const auto byte = static_cast<unsigned char>(text[pos + seen]);
    const unsigned char low = seen == 1 ? rule.second_low : 0x80;
    const unsigned char high = seen == 1 ? rule.second_high : 0xBF;
    if (byte < low || byte > high) return seen;
  }
  valid = seen == rule.length;
  return seen;
}

char32_t compose_pair(char32_t first, char32_t second) {
  // Hangul: L + V -> LV, LV + T -> LVT.
  if (first >= kJamoLeadFirst && first < kJamoLeadFirst + kJamoLeadCount && second >= kJamoVowelFirst &&
      second < kJamoVowelFirst + kJamoVowelCount) {
    return kHangulFirst + ((first - kJamoLeadFirst) * kJamoVowelCount + (second - kJamoVowelFirst)) * kJamoTrailCount;
  }
  if (first >= kHangulFirst && first < kHangulFirst + kHangulCount && (first - kHangulFirst) % kJamoTrailCount == 0 &&
      second > kJamoTrailFirst && second < kJamoTrailFirst + kJamoTrailCount) {
    return first + (second - kJamoTrailFirst);
  }
  const auto& table = tables::kCompositions;
  const auto found =
      std::lower_bound(table.begin(), table.end(), std::pair{first, second},
                       [](const tables::Composition& entry, std::pair<char32_t, char32_t> key) {
                         return entry.first < key.first || (entry.first == key.first && entry.second < key.second);
                       });
  if (found != table.end() && found->first == first && found->second == second) return found->composite;
  return kNoComposition;
}

void append_decomposition(std::vector<char32_t>& out, char32_t code_point) {
  if (code_point >= kHangulFirst && code_point < kHangulFirst + kHangulCount) {
    const char32_t index = code_point - kHangulFirst;
    out.push_back(kJamoLeadFirst + index / kHangulPerLead);
    out.push_back(kJamoVowelFirst + (index % kHangulPerLead) / kJamoTrailCount);
    if (index % kJamoTrailCount != 0) out.push_back(kJamoTrailFirst + index % kJamoTrailCount);
    return;
  }
  if (code_point >= 0xC0) {
    const auto& table = tables::kDecompositions;
    const auto found =
        std::lower_bound(table.begin(), table.end(), code_point,
                         [](const tables::Decomposition& entry, char32_t key) { return entry.code_point < key; });
    if (found != table.end() && found->code_point == code_point) {
      const auto data = tables::kDecompositionCodePoints.subspan(found->offset, found->length);
      out.insert(out.end(), data.begin(), data.end());
      return;
    }
  }
  out.push_back(code_point);
}

}  // namespace

std::uint8_t combining_class(char32_t code_point) {
  if ((properties(code_point) & kNonZeroCombiningClass) == 0) return 0;
  const auto& ranges = tables::kCombiningClassRanges;
  const auto found =
      std::upper_bound(ranges.begin(), ranges.end(), code_point,
                       [](char32_t key, const tables::CombiningClassRange& range) { return key < range.first; });
  if (found == ranges.begin()) return 0;
  const auto& range = *(found - 1);
  return code_point <= range.last ? range.combining_class : 0;
}

std::size_t find_invalid_utf8(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    // Skip ASCII eight bytes at a time.
    if (pos + 8 <= text.size()) {
      std::uint64_t word;
      std::memcpy(&word, text.data() + pos, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        pos += 8;
        continue;
      }
    }
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    bool valid;
    const std::size_t length = scan_sequence(text, pos, valid);
    if (!valid) return pos;
    pos += length;
  }
  return std::string_view::npos;
}

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      out += text[pos++];
      continue;
    }
    bool valid;
    const std::size_t length = scan_sequence(text, pos, valid);
    if (valid) {
      out.append(text.data() + pos, length);
    } else {
      out += "\xEF\xBF\xBD";
    }
    pos += length;
  }
  return out;
}

bool nfc_quick_check(std::string_view text) {
  std::uint8_t last_class = 0;
  std::size_t checked_end = 0;  // end of the last code point whose class is in last_class
  for (std::size_t pos = 0; pos < text.size(); ++pos) {
    // Everything below U+0300 is NFC_QC=Yes with class 0; its lead bytes are < 0xCC, and continuation
    // bytes (0x80..0xBF) are skipped the same way.
    if (static_cast<unsigned char>(text[pos]) < 0xCC) continue;
    std::size_t length;
    const char32_t code_point = decode_utf8(text, pos, length);
    const std::uint8_t bits = properties(code_point);
    if (bits & kNfcQuickCheckFails) return false;
    if (pos != checked_end) last_class = 0;  // a starter below U+0300 came in between
    const std::uint8_t klass = (bits & kNonZeroCombiningClass) ? combining_class(code_point) : 0;
    if (klass != 0 && last_class > klass) return false;
    last_class = klass;
    checked_end = pos + length;
    pos += length - 1;
  }
  return true;
}

namespace {

// Appends the NFC of text (the full algorithm: decompose, reorder, compose).
void append_nfc(std::string_view text, std::string& out) {
  // Canonical decomposition.
  std::vector<char32_t> code_points;
  code_points.reserve(text.size() + 8);
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t length;
    append_decomposition(code_points, decode_utf8(text, pos, length));
    pos += length;
  }
  std::vector<std::uint8_t> classes(code_points.size());
  for (std::size_t i = 0; i < code_points.size(); ++i) classes[i] = combining_class(code_points[i]);

  // Canonical ordering: stable sort of each run of non-starters by combining class (runs are short).
  for (std::size_t i = 1; i < code_points.size(); ++i) {
    if (classes[i] == 0) continue;
    for (std::size_t j = i; j > 0 && classes[j - 1] > classes[j]; --j) {
      std::swap(classes[j - 1], classes[j]);
      std::swap(code_points[j - 1], code_points[j]);
    }
  }

  // Canonical composition: each character combines with the last starter unless blocked.
  std::size_t kept = 0;
  std::size_t starter = 0;
  bool have_starter = false;
  int last_class = -1;  // class of the last kept character after the starter; -1: none yet
  for (std::size_t i = 0; i < code_points.size(); ++i) {
    const char32_t code_point = code_points[i];
    const int klass = classes[i];
    if (have_starter && (last_class == -1 || last_class < klass)) {
      const char32_t composite = compose_pair(code_points[starter], code_point);
      if (composite != kNoComposition) {
        code_points[starter] = composite;
        continue;
      }
    }
    if (klass == 0) {
      starter = kept;
      have_starter = true;
      last_class = -1;
    } else {
      last_class = klass;
    }
    // A starter followed directly by a starter that did not combine leaves last_class at -1 for the
    // new starter, which is what we want.
    code_points[kept++] = code_point;
  }
  code_points.resize(kept);

  for (const char32_t code_point : code_points) append_utf8(out, code_point);
}

}  // namespace

std::string to_nfc(std::string_view text) {
  // Only the stretches that fail the quick check are normalised. A character with combining class 0 that
  // passes the quick check is a boundary: nothing before it can combine or reorder with anything after.
  std::string out;
  out.reserve(text.size() + 16);
  std::size_t copied = 0;         // text[0, copied) is already in out
  std::size_t last_boundary = 0;  // start of the last boundary character seen
  std::uint8_t last_class = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    if (static_cast<unsigned char>(text[pos]) < 0xCC) {  // below U+0300 (or a continuation byte): a boundary
      if ((static_cast<unsigned char>(text[pos]) & 0xC0) != 0x80) last_boundary = pos;
      last_class = 0;
      ++pos;
      continue;
    }
    std::size_t length;
    const char32_t code_point = decode_utf8(text, pos, length);
    const std::uint8_t bits = properties(code_point);
    const std::uint8_t klass = (bits & kNonZeroCombiningClass) ? combining_class(code_point) : 0;
    if ((bits & kNfcQuickCheckFails) == 0 && (klass == 0 || last_class <= klass)) {
      if (klass == 0) last_boundary = pos;
      last_class = klass;
      pos += length;
      continue;
    }
    // Normalise from the last boundary up to the next one.
    std::size_t end = pos + length;
    while (end < text.size()) {
      std::size_t next_length;
      const char32_t next = decode_utf8(text, end, next_length);
      const std::uint8_t next_bits = properties(next);
      if ((next_bits & (kNfcQuickCheckFails | kNonZeroCombiningClass)) == 0) break;
      end += next_length;
    }
    out.append(text.data() + copied, last_boundary - copied);
    append_nfc(text.substr(last_boundary, end - last_boundary), out);
    copied = end;
    last_boundary = end;
    last_class = 0;
    pos = end;
  }
  out.append(text.data() + copied, text.size() - copied);
  return out;
}

}  // namespace rwkv::data::unicode
