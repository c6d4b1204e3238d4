// `.pth` checkpoints whose pickle names a callable outside the tensor-rebuild set, through the
// command line a user runs (`rwkvlite inspect`): every one is refused with exit 3 and a message
// naming the file, and nothing is executed. Each payload, were it run, would create a marker
// file; the test asserts the marker never appears. tests/converters/test_pickle.cpp covers the
// reader's messages for plain non-tensor data; this covers the code-execution opcodes.
#include <sys/stat.h>

#include <array>
#include <cstring>
#include <filesystem>

#include "tests/support/cli_runner.h"
#include "tests/support/test_support.h"

using namespace rwkvlite::test;
using namespace std::string_literals;
namespace fs = std::filesystem;

namespace {

uint32_t crc32_of(const std::string& data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string le(uint64_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

// A zip archive of uncompressed records laid out as torch.save names them (archive/<name>),
// written by hand so the test needs no LibTorch.
std::string stored_zip(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string out, central;
  for (const auto& [short_name, data] : records) {
    const std::string name = "archive/" + short_name;
    const uint32_t crc = crc32_of(data);
    const uint64_t offset = out.size();
    out += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(crc, 4) +
           le(data.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + name + data;
    central += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(crc, 4) +
               le(data.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) +
               le(0, 2) + le(0, 4) + le(offset, 4) + name;
  }
  const uint64_t cd_offset = out.size();
  out += central;
  out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(records.size(), 2) + le(records.size(), 2) +
         le(central.size(), 4) + le(cd_offset, 4) + le(0, 2);
  return out;
}

// Pickle pieces: protocol-2 BINUNICODE, protocol-0 STRING, protocol-4 SHORT_BINUNICODE.
std::string unicode(const std::string& s) { return "X" + le(s.size(), 4) + s; }
std::string string0(const std::string& s) { return "S'" + s + "'\n"; }
std::string short_unicode(const std::string& s) { return "\x8c"s + static_cast<char>(s.size()) + s; }

struct HostileCase {
  const char* name;
  std::string pickle;
  const char* fragment;  // what the message says: the callable's name, or the opcode refused
};

std::vector<HostileCase> hostile_cases(const std::string& command) {
  const std::string arg2 = unicode(command);
  return {
      // Protocol 0's STRING is not among the opcodes torch.save emits: refused at the argument.
      {"os.system, protocol 0 GLOBAL + REDUCE", "cos\nsystem\n(" + string0(command) + "tR.", "unsupported opcode 0x53"},
      {"posix.system, protocol 2 GLOBAL + REDUCE", "\x80\x02" "cposix\nsystem\n"s + arg2 + "\x85R.", "posix.system"},
      {"builtins.eval", "\x80\x02" "cbuiltins\neval\n"s + unicode("__import__('os').system('" + command + "')") + "\x85R.",
       "builtins.eval"},
      {"builtins.exec", "\x80\x02" "cbuiltins\nexec\n"s + unicode("import os; os.system('" + command + "')") + "\x85R.",
       "builtins.exec"},
      {"__builtin__.eval (Python 2 name)", "\x80\x02" "c__builtin__\neval\n"s + unicode("1") + "\x85R.",
       "__builtin__.eval"},
      {"builtins.getattr", "\x80\x02" "cbuiltins\ngetattr\n"s + "cos\nsystem\n" + unicode("__call__") + "\x86R.",
       "builtins.getattr"},
      {"subprocess.Popen", "\x80\x02" "csubprocess\nPopen\n"s + "](" + unicode("sh") + unicode("-c") + arg2 + "e\x85R.",
       "subprocess.Popen"},
      {"os.system, protocol 4 STACK_GLOBAL",
       "\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00"s + short_unicode("os") + "\x94" + short_unicode("system") + "\x94\x93\x94" +
           arg2 + "\x85R.",
       "os.system"},
      {"os.system through INST", "(" + arg2 + "ios\nsystem\n.", "unsupported opcode 0x69"},
      {"os.system through OBJ", "\x80\x02(cos\nsystem\n"s + arg2 + "o.", "unsupported opcode 0x6f"},
      {"os.system through NEWOBJ", "\x80\x02" "cos\nsystem\n"s + arg2 + "\x85\x81.", "os.system"},
      {"os.system through NEWOBJ_EX", "\x80\x04" "cos\nsystem\n"s + arg2 + "\x85}\x92.", "os.system"},
      {"BUILD on a foreign object", "\x80\x02" "cos\nsystem\n)\x81}" + unicode("x") + arg2 + "sb.", "os.system"},
      {"os.system as a dict value",
       "\x80\x02}" + unicode("blocks.0.att.key.weight") + "cos\nsystem\n" + arg2 + "\x85Rs.", "os.system"},
  };
}

}  // namespace

TEST_CASE("A .pth whose pickle calls anything but a tensor rebuild is refused with exit 3 and runs nothing",
          "[tools][pth]") {
  const std::string dir = case_dir("hostile_pth");
  // Builds without LibTorch cannot read .pth at all; a valid file says which build this is.
  const std::string valid = dir + "/valid.pth";
  const Result synth = run("rwkvlite", "synthesize --arch v5.2 --layers 1 --embd 16 --vocab 16 --ffn 32 --head-size 8 "
                                       "--seed 1 -o '" + valid + "'");
  if (synth.exit_code != 0 || run("rwkvlite", "inspect '" + valid + "'").exit_code != 0) {
    WARN("skipped: this rwkvlite reads no .pth (built without LibTorch): " << synth.err);
    return;
  }
  // The hand-written archive is one LibTorch accepts: a harmless pickle reads as far as the pickle.
  const std::string plain = dir + "/plain-int.pth";
  write_file(plain, stored_zip({{"data.pkl", "\x80\x02K\x05."s}, {"version", "3\n"}}));
  const Result plain_result = run("rwkvlite", "inspect '" + plain + "'");
  check_fails(plain_result, 3);
  CHECK_THAT(plain_result.err, Catch::Contains("holds an integer"));

  const std::string marker = dir + "/executed";
  int i = 0;
  for (const HostileCase& c : hostile_cases("touch " + marker)) {
    INFO(c.name);
    const std::string path = dir + "/hostile-" + std::to_string(i++) + ".pth";
    write_file(path, stored_zip({{"data.pkl", c.pickle}, {"version", "3\n"}}));
    const Result r = run("rwkvlite", "inspect '" + path + "'");
    check_fails(r, 3);
    CHECK_THAT(r.err, Catch::Contains(path));
    CHECK_THAT(r.err, Catch::Contains(c.fragment));
    CHECK_FALSE(fs::exists(marker));
  }
}
