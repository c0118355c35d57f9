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
