#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "cli/command.h"

#ifndef FRUGAL_DEFAULT_MODEL_DIR
#define FRUGAL_DEFAULT_MODEL_DIR "models/tiny-v4"
#endif

namespace frugal::cli {

std::string default_model_dir() {
  struct stat st {};
  if (stat("models/tiny-v4", &st) == 0 && S_ISDIR(st.st_mode)) return "models/tiny-v4";
  return FRUGAL_DEFAULT_MODEL_DIR;
}

CLI::Validator at_least(double min) {
  std::ostringstream name;  // the type shown in --help, as CLI11's own checks name it
  if (min == 1) {
    name << "POSITIVE";
  } else if (min == 0) {
    name << "NONNEGATIVE";
  } else {
    name << ">= " << min;
  }
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE) {
          return "expected a number, got '" + text + "'";
        }
        if (!(v >= min)) {
          std::ostringstream m;
          m << "must be at least " << min << ", got " << text;
          return m.str();
        }
        return std::string();
      },
      name.str());
}

CLI::Option* add_model_option(CLI::App* app, std::string* dir) {
  return app->add_option("-m,--model", *dir,
                         "Model directory (tokenizer.json, ...). Default: ./models/tiny-v4 if "
                         "present, else " FRUGAL_DEFAULT_MODEL_DIR);
}

Result<tokenizer::Tokenizer> load_tokenizer(const std::string& model_dir) {
  return tokenizer::Tokenizer::load_dir(model_dir);
}

Result<std::string> read_input(const std::string& path, const std::string& what) {
  if (path == "-") {
    std::string data((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return io_error(what + ": cannot read standard input");
    return data;
  }
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return not_found(what + " '" + path + "': " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) return invalid_argument(what + " '" + path + "' is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(what + " '" + path + "': cannot open (" + std::strerror(errno) + ")");
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return io_error(what + " '" + path + "': read failed");
  return ss.str();
}

Status write_output(std::string_view bytes) {
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size()) {
    return io_error("cannot write to standard output");
  }
  if (std::fflush(stdout) != 0) return io_error("cannot write to standard output");
  return ok_status();
}

}  // namespace frugal::cli
