// --set key=value overrides, applied to the parsed TOML before validation. The key is a
// dotted path; numeric segments index arrays: calibration.bytes=50000, pass.0.divisor=4,
// pass.1.rules.0.encoding=f16. The value is parsed as a TOML value (4, 0.5, true,
// ["a", "b"], "text") and taken as a plain string when it is not one (f16, bundled). A path
// may add a key that the file leaves at its default; the added key is then validated like
// any other, so a typo is reported as an unknown key citing the --set. Indexing past an
// array's end, or into a value that is not a table or array, is an error at once.
#pragma once

#include <toml++/toml.h>

#include <string>

#include "compress/pipeline/option_reader.h"

namespace rwkvlite {

// Applies one "key=value" override to a parsed document. Nodes it creates are recorded in
// `sources` so later messages can cite the argument.
void apply_override(toml::table& root, const std::string& assignment, ConfigSources& sources);

}  // namespace rwkvlite
