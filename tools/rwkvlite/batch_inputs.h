// The inputs of a batch `rwkvlite compress`: command-line paths and glob patterns, and an
// --inputs list file, resolved to one ordered list of checkpoint paths before anything runs.
#pragma once

#include <string>
#include <vector>

namespace rwkvlite::cli {

// An argument with '*', '?' or '[' is a glob(3) pattern: replaced by the paths it matches,
// sorted bytewise (not by locale, so the order is the same on every machine); a pattern that
// matches nothing is a UsageError. Any other argument is kept as written, even if missing: a
// missing checkpoint fails as that batch item, not the whole command.
std::vector<std::string> expand_input_patterns(const std::vector<std::string>& args);

// The paths of an --inputs list file: one per line, surrounding blanks trimmed, blank lines and
// lines starting with '#' ignored; a relative path is taken from the list file's directory.
// Entries are not glob-expanded. An unreadable list file is an InputError.
std::vector<std::string> read_input_list(const std::string& list_path);

// What a batch output is named after: the input's file name without its last extension
// ("models/a.bin" -> "a"). UsageError when the path has no file name.
std::string input_stem(const std::string& input);

}  // namespace rwkvlite::cli
