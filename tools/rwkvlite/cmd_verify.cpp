// rwkvlite verify FILE: checks every checksum block and padding of a compact file.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "tools/rwkvlite/cli_common.h"
#include "tools/rwkvlite/commands.h"
#include "runtime/core/error.h"
#include "runtime/format/compact_reader.h"

namespace rwkvlite::cli {

void register_verify(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("verify", "Verify every checksum of a compact file");
  auto path = std::make_shared<std::string>();
  cmd->add_option("file", *path, "Compact file")->required();
  cmd->callback([&action, path] {
    action = [path] {
      const auto file = format::CompactFile::open(*path);  // header, sizes and layout checked here
      const std::vector<std::string> problems = file.verify();
      for (const auto& p : problems) std::printf("%s\n", p.c_str());
      if (!problems.empty()) {
        throw InputError("'" + *path + "' failed verification: " + std::to_string(problems.size()) + " problem(s)");
      }
      std::printf("ok: %zu tensors, %llu bytes, every block verified\n", file.tensors().size(),
                  (unsigned long long)file.preamble().file_size);
      return 0;
    };
  });
}

}  // namespace rwkvlite::cli
