#include "tools/common/json_output.h"

#include "runtime/core/file_io.h"

namespace rwkvlite::tools {
namespace {

void print_row(std::FILE* out, const std::string& key, const nlohmann::ordered_json& v) {
  if (v.is_number_float()) {
    std::fprintf(out, "%-40s %.6g\n", key.c_str(), v.get<double>());
  } else if (!v.is_array()) {
    std::fprintf(out, "%-40s %s\n", key.c_str(), v.is_string() ? v.get<std::string>().c_str() : v.dump().c_str());
  }
}

}  // namespace

void write_json(const std::string& path, const nlohmann::ordered_json& j) {
  const std::string text = j.dump(2) + "\n";
  if (path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return;
  }
  write_file_atomically(path, text);
}

void print_report_table(const nlohmann::ordered_json& report, std::FILE* out) {
  for (const auto& [key, value] : report.items()) {
    if (value.is_object()) {
      for (const auto& [member, v] : value.items()) print_row(out, key + "." + member, v);
    } else {
      print_row(out, key, value);
    }
  }
}

void publish_report(const nlohmann::ordered_json& report, const std::string& json_path) {
  if (json_path != "-") print_report_table(report, stdout);
  if (!json_path.empty()) write_json(json_path, report);
}

}  // namespace rwkvlite::tools
